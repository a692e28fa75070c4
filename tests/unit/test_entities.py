"""Canonical entities, context cues, chunking and the gazetteer: pure functions on hand-made inputs."""

from __future__ import annotations

import re

import pytest

from ingest.enrich import chunk_text
from ingest.entities import CUES as ENTITY_CUES
from ingest.entities import AliasTable, canonical_entities, clean_mentions, cue_label, fold, relabel_by_context
from ingest.gazetteer import Gazetteer, load_gazetteer
from ingest.models import EntityLabel, Mention


def _find(text: str, *items: tuple[str, EntityLabel]) -> list[Mention]:
    """Every occurrence of each form in ``text`` (longest forms first, no overlaps), in text order."""
    labels = dict(items)
    pattern = re.compile("|".join(re.escape(t) for t in sorted(labels, key=len, reverse=True)))
    return [Mention(text=m.group(), label=labels[m.group()], start=m.start(), end=m.end())
            for m in pattern.finditer(text)]


def test_fold_ignores_accents_case_and_punctuation() -> None:
    assert fold("États-Unis") == fold("etats unis") == "etats unis"
    assert fold("Service de sécurité d’Ukraine") == fold("SERVICE DE SECURITE D'UKRAINE")


@pytest.mark.parametrize(
    ("before", "label"),
    [
        ("Le gouverneur de l'", "LOC"),
        ("dans la région de ", "LOC"),
        ("ont frappé l'usine ", "ORG"),
        ("l'autorité de l'aviation civile russe, ", "ORG"),
        ("produire des systèmes de missiles surface-air ", "MISC"),
        ("systèmes de défense aérienne ", "MISC"),
        ("Le président ukrainien ", "PER"),
        ("selon M. ", "PER"),
        # No cue: a preposition, another name in between, or "de" right before a product word's complement.
        ("des drones et missiles sur ", None),
        ("le gouverneur de l'Udmurtie, ", None),
        ("un drone de ", None),
        ("", None),
    ],
)
def test_cue_label_reads_the_words_before_a_name(before: str, label: str | None) -> None:
    assert cue_label(before, ENTITY_CUES["fr"]) == label


def test_cues_relabel_only_for_known_languages() -> None:
    text = "Les forces avancent dans la région de Sumy."
    mention = Mention(text="Sumy", label="PER", start=text.index("Sumy"), end=text.index("Sumy") + 4)
    assert relabel_by_context(text, [mention], "fr")[0].label == "LOC"
    assert relabel_by_context(text, [mention], "de")[0].label == "PER"


def test_acronym_defined_in_parentheses_joins_its_expansion_and_takes_its_label() -> None:
    text = "Deux drones opérés par le Service de sécurité d'Ukraine (SBU) ont frappé. Le SBU a confirmé."
    mentions = _find(text, ("Service de sécurité d'Ukraine", "ORG"), ("SBU", "MISC"))
    entities, settled = canonical_entities(mentions, text)
    assert [(e.name, e.label, e.count, e.mentions) for e in entities] == [
        ("Service de sécurité d'Ukraine", "ORG", 3, ("Service de sécurité d'Ukraine", "SBU"))
    ]
    assert {m.label for m in settled} == {"ORG"}


def test_acronym_without_parentheses_joins_by_initials() -> None:
    text = "L'Organisation du traité de l'Atlantique nord se réunit. Plus tard, l'OTAN a publié un communiqué."
    mentions = _find(text, ("Organisation du traité de l'Atlantique nord", "ORG"), ("OTAN", "ORG"))
    entities, _ = canonical_entities(mentions, text)
    assert len(entities) == 1 and entities[0].name == "Organisation du traité de l'Atlantique nord"


def test_short_person_name_joins_only_an_unambiguous_full_name() -> None:
    text = "Marine Le Pen et Jean-Marie Le Pen. Le Pen a parlé. Vladimir Poutine, puis Poutine."
    mentions = _find(
        text, ("Marine Le Pen", "PER"), ("Jean-Marie Le Pen", "PER"), ("Le Pen", "PER"),
        ("Vladimir Poutine", "PER"), ("Poutine", "PER"),
    )
    names = {e.name: e for e in canonical_entities(mentions, text)[0]}
    assert set(names) == {"Marine Le Pen", "Jean-Marie Le Pen", "Le Pen", "Vladimir Poutine"}
    assert names["Vladimir Poutine"].count == 2


def test_label_fixed_by_majority_and_first_position_and_salience() -> None:
    text = "Kupol produit des radars. L'usine Kupol a été visée. Kupol est à Izhevsk."
    mentions = _find(text, ("Kupol", "ORG"), ("Izhevsk", "LOC"))
    mentions[1] = mentions[1].model_copy(update={"label": "LOC"})  # the model disagreeing once
    entities, settled = canonical_entities(mentions, text)
    kupol, izhevsk = entities
    assert (kupol.label, kupol.count, kupol.first) == ("ORG", 3, 0)
    assert izhevsk.first == text.index("Izhevsk")
    assert kupol.entity_id == "org:kupol" and izhevsk.entity_id == "loc:izhevsk"
    assert 0 <= izhevsk.salience < kupol.salience <= 1
    assert [m.label for m in settled] == ["ORG", "ORG", "ORG", "LOC"]


def test_alias_table_gives_one_id_and_label_across_languages() -> None:
    table = AliasTable.from_json({"entities": [
        {"id": "per:vladimir-putin", "label": "PER", "name": "Vladimir Putin", "aliases": ["Vladimir Poutine"]},
        {"id": "org:un", "label": "ORG", "name": "United Nations", "aliases": ["UN"]},
    ]})
    french = canonical_entities(_find("Vladimir Poutine", ("Vladimir Poutine", "LOC")), None, table)[0]
    english = canonical_entities(_find("VLADIMIR PUTIN", ("VLADIMIR PUTIN", "PER")), None, table)[0]
    assert french[0].entity_id == english[0].entity_id == "per:vladimir-putin"
    assert french[0].label == "PER"
    # Acronyms match exactly: the French article "Un" is not the United Nations.
    assert table.get("UN") is not None and table.get("Un") is None
    with pytest.raises(ValueError, match="names both"):
        AliasTable.from_json({"entities": [
            {"id": "a", "label": "PER", "name": "X Y"}, {"id": "b", "label": "PER", "name": "x y"}]})


def test_clean_mentions_trims_and_drops_what_is_not_a_name() -> None:
    text = "« Kupol » et 12 et L."
    raw = [Mention(text="« Kupol »", label="ORG", start=0, end=9), Mention(text="12", label="MISC", start=13, end=15),
           Mention(text="L", label="PER", start=19, end=20)]
    assert clean_mentions(text, raw) == [Mention(text="Kupol", label="ORG", start=2, end=7)]


def test_chunks_cover_the_text_on_sentence_boundaries() -> None:
    sentence = "Le gouverneur de la région a informé le président. "
    text = sentence * 400 + "x" * 3000  # plus one "sentence" longer than a chunk
    pieces = chunk_text(text, 1000)
    assert "".join(p for _, p in pieces) == text
    assert all(text[o : o + len(p)] == p for o, p in pieces)
    assert all(len(p) <= 1000 for _, p in pieces)
    assert all(p.endswith(". ") for _, p in pieces[:-4])  # cut after full stops, not inside words
    assert chunk_text("court.", 1000) == [(0, "court.")]


# Gazetteer


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return load_gazetteer()


def test_spellings_in_several_languages_are_one_place(gazetteer: Gazetteer) -> None:
    located = gazetteer.locate(["Moscou", "Moscow", "Moskau", "Russie", "Russland", "Russia"])
    assert all(p is not None for p in located)
    ids = {p.entity_id for p in located if p is not None}
    assert len(ids) == 2 and "geo:524901" in ids  # GeoNames Moscow, and Russia
    moscow = located[0]
    assert moscow is not None and moscow.country_code == "RU" and abs(moscow.lat - 55.75) < 0.1


def test_population_and_the_article_countries_disambiguate() -> None:
    cities = [
        {"geonameid": 1, "name": "Paris", "latitude": 48.85, "longitude": 2.35, "countrycode": "FR",
         "population": 2_138_551, "alternatenames": []},
        {"geonameid": 2, "name": "Paris", "latitude": 33.66, "longitude": -95.56, "countrycode": "US",
         "population": 24_782, "alternatenames": []},
        {"geonameid": 3, "name": "Washington", "latitude": 38.9, "longitude": -77.0, "countrycode": "US",
         "population": 689_545, "alternatenames": []},
    ]
    countries = [{"geonameid": 10, "iso": "US", "name": "United States", "capital": "Washington",
                  "population": 327_000_000}]
    small = Gazetteer(cities, countries, {"US": ["États-Unis"]}, version="test")
    alone = small.locate(["Paris"])[0]
    assert alone is not None and alone.country_code == "FR"
    with_country = small.locate(["Paris", "États-Unis"])
    assert [p.geonameid if p else None for p in with_country] == [2, 10]
    assert with_country[1] is not None and with_country[1].feature == "country"
    assert small.locate(["Atlantis"]) == [None]
