"""Queries, facets and collapse over the read alias: the request body (pure) and its typed result."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch
from pydantic import BaseModel

from ingest.errors import ConfigError
from ingest.index import ANALYSED_LANGUAGES

# Facet name → indexed keyword field.
FACETS = {
    "persons": "persons",
    "organizations": "organizations",
    "locations": "locations",
    "misc": "misc",
    # One value per thing across spellings and languages: the gazetteer's name of a geo-coded place
    # ("Moscou", "Moscow" → "Moscow"), the entity id of any entity ("per:vladimir-putin").
    "places": "places.gazetteer_name",
    "entity": "entities.entity_id",
    "source": "source.name",
    # The publisher as the page names itself (og:site_name, JSON-LD publisher): "The Guardian" behind a wire feed.
    "site": "site_name",
    "domain": "source.domain",
    "language": "language",
    "authors": "authors",
    "tags": "tags",
    "story": "story_id",
}
# The text fields, weighted. Each is analysed language-neutral (lowercase + ASCII folding) for every document,
# and again for its language under ``i18n.<lang>.`` for French and English documents (index.py).
_TEXT_FIELDS = ("title^3", "summary^2", "text")
# Highlights from whichever analysis matched: the neutral fields and each language's copy.
_HIGHLIGHT: dict[str, dict[str, int]] = {}
for _prefix in ("", *(f"i18n.{lang}." for lang in ANALYSED_LANGUAGES)):
    _HIGHLIGHT[_prefix + "title"] = {}
    _HIGHLIGHT[_prefix + "text"] = {"fragment_size": 160, "number_of_fragments": 2}


class FacetValue(BaseModel):
    value: str
    count: int


class Hit(BaseModel):
    id: str
    title: str | None
    url: str  # the canonical URL: tracking parameters (utm_*, …) and fragments removed
    source: str | None  # the publisher as the page names itself, else the feed's name
    feed: str | None  # the feed's name in the registry
    published_at: str | None
    score: float | None
    highlight: list[str]
    # The story of the hit and how many articles it has in the index (with ``collapse="story"``: how many of them
    # match the search).
    story_id: str | None = None
    story_size: int | None = None


class SearchResult(BaseModel):
    total: int
    hits: list[Hit]
    facets: dict[str, list[FacetValue]]
    # With a collapse: how many stories (distinct story_id, approximate beyond 3,000) the matches make.
    stories: int | None = None


# What a search can collapse on: one hit per value of the field (the best-scoring), with its count.
COLLAPSE = {"story": "story_id"}


# Search sizes a person may ask for: Elasticsearch refuses more than 10,000 hits per page.
MAX_SIZE = 1000
_RELATIVE = re.compile(r"^(\d+)\s*(h|d|w)$")
_DATE_MATH = re.compile(r"^now([+-]\d+[yMwdhHms])*(/[yMwdhHms])?$")
_WHEN_HELP = "a date (2025-07-01), a time back from now (24h, 7d, 2w), today, yesterday, or date math (now-7d/d)"


def parse_when(option: str, text: str | None) -> str | None:
    """A ``--since``/``--until`` value as Elasticsearch reads it: ``24h`` → ``now-24h``, ``yesterday`` →
    ``now-1d/d``; a date or date math as it is. Anything else is a ``ConfigError`` saying what is accepted."""
    if text is None:
        return None
    value = text.strip()
    named = {"now": "now", "today": "now/d", "yesterday": "now-1d/d"}
    if value.lower() in named:
        return named[value.lower()]
    if found := _RELATIVE.match(value):
        return f"now-{found[1]}{found[2]}"
    if _DATE_MATH.match(value):
        return value
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected {_WHEN_HELP}") from None
    return value


def check_size(size: int) -> int:
    if not 0 <= size <= MAX_SIZE:
        raise ConfigError(f"--size {size}: expected 0 to {MAX_SIZE} hits")
    return size


def parse_filters(raw: Sequence[str]) -> list[tuple[str, str]]:
    """``["persons=Vladimir Poutine"]`` → ``[("persons", "Vladimir Poutine")]``; unknown fields are errors."""
    filters = []
    for item in raw:
        name, sep, value = item.partition("=")
        if not sep or not value:
            raise ConfigError(f"--filter {item!r}: expected FIELD=VALUE, for example persons='Vladimir Poutine'")
        filters.append((_field(name.strip()), value.strip()))
    return filters


def _field(name: str) -> str:
    if name not in FACETS:
        raise ConfigError(f"unknown facet or filter field {name!r}; choose from {', '.join(FACETS)}")
    return FACETS[name]


def text_query(query: str) -> dict[str, Any]:
    """The query string (``simple_query_string`` syntax: ``"exact phrase"``, ``-not``, ``a | b``, ``pref*``), read
    against each document with its own language's analysis: a French query "drones Izhevsk" matches "drone" and
    "l'usine" in French articles, without French stemming deciding matches in English ones."""

    def against(prefix: str) -> dict[str, Any]:
        fields = [prefix + f for f in _TEXT_FIELDS]
        return {"simple_query_string": {"query": query, "fields": fields, "default_operator": "and"}}

    # Only a document of that language has i18n.<lang> fields: no language filter needed for those branches.
    per_language = [against(f"i18n.{lang}.") for lang in ANALYSED_LANGUAGES]
    other = {"bool": {"must_not": [{"terms": {"language": list(ANALYSED_LANGUAGES)}}], "must": [against("")]}}
    return {"bool": {"should": [*per_language, other], "minimum_should_match": 1}}


def build_query(
    query: str,
    facets: Sequence[str],
    filters: Sequence[tuple[str, str]],
    size: int,
    collapse: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> dict[str, Any]:
    """The search request body (pure; the tests can look at it). ``since``/``until``: a published_at range,
    inclusive, as Elasticsearch dates or date math (``2025-07-01``, ``now-7d/d``)."""
    must = [text_query(query)] if query.strip() and query.strip() != "*" else [{"match_all": {}}]
    bounds = {k: v for k, v in (("gte", since), ("lte", until)) if v}
    ranges = [{"range": {"published_at": bounds}}] if bounds else []
    body: dict[str, Any] = {
        "query": {"bool": {"must": must, "filter": [*({"term": {f: v}} for f, v in filters), *ranges]}},
        "size": size,
        "_source": ["title", "url", "canonical_url", "site_name", "source", "published_at", "story_id"],
        # Each field with its sub-fields: the fragments come from the analysis that matched.
        "highlight": {"fields": _HIGHLIGHT},
        "aggs": {name: {"terms": {"field": _field(name), "size": 10}} for name in facets},
        "track_total_hits": True,
    }
    if collapse is not None:
        if collapse not in COLLAPSE:
            raise ConfigError(f"cannot collapse on {collapse!r}; choose from {', '.join(COLLAPSE)}")
        field = COLLAPSE[collapse]
        body["collapse"] = {"field": field}
        # Per collapsed hit, its group's size: a terms aggregation over the same matches, read for the hits shown.
        body["aggs"]["_collapse_sizes"] = {"terms": {"field": field, "size": max(size, 10) * 10}}
        body["aggs"]["_collapse_count"] = {"cardinality": {"field": field}}
    return body


def search_articles(
    client: Elasticsearch,
    index: str,
    query: str,
    facets: Sequence[str] = (),
    filters: Sequence[tuple[str, str]] = (),
    size: int = 10,
    collapse: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> SearchResult:
    """Hits, total and facet counts for a query over the read alias; ``collapse="story"`` gives one hit per
    story (its best match) with the number of matching articles in it."""
    body = build_query(query, facets, filters, size, collapse, since, until)
    response = client.search(index=index, **body)
    aggs = response.get("aggregations", {})
    field = COLLAPSE.get(collapse or "")
    if field:
        sizes = {b.value: b.count for b in _buckets(aggs.get("_collapse_sizes", {}))}
    else:
        sizes = story_sizes(client, index, [h.get("_source", {}).get("story_id") for h in response["hits"]["hits"]])
    hits = []
    for raw in response["hits"]["hits"]:
        src = raw.get("_source", {})
        highlight = list(dict.fromkeys(frag for frags in raw.get("highlight", {}).values() for frag in frags))
        hits.append(
            Hit(
                id=raw["_id"],
                title=src.get("title"),
                url=src.get("canonical_url") or src.get("url", ""),
                source=src.get("site_name") or (src.get("source") or {}).get("name"),
                feed=(src.get("source") or {}).get("name"),
                published_at=src.get("published_at"),
                score=raw.get("_score"),
                highlight=highlight,
                story_id=src.get("story_id"),
                story_size=sizes.get(str(src.get("story_id")), 1) if src.get("story_id") else None,
            )
        )
    total = response["hits"]["total"]
    return SearchResult(
        total=int(total["value"] if isinstance(total, dict) else total),
        hits=hits,
        facets={name: _buckets(aggs.get(name, {})) for name in facets},
        stories=int(aggs["_collapse_count"]["value"]) if "_collapse_count" in aggs else None,
    )


def story_sizes(client: Elasticsearch, index: str, story_ids: Sequence[str | None]) -> dict[str, int]:
    """How many articles the index holds in each of these stories (one aggregation)."""
    wanted = sorted({s for s in story_ids if s})
    if not wanted:
        return {}
    response = client.search(index=index, size=0, query={"terms": {"story_id": wanted}},
                             aggs={"sizes": {"terms": {"field": "story_id", "size": len(wanted)}}})
    return {b.value: b.count for b in _buckets(response.get("aggregations", {}).get("sizes", {}))}


def _buckets(agg: dict[str, Any]) -> list[FacetValue]:
    return [FacetValue(value=str(b["key"]), count=int(b["doc_count"])) for b in agg.get("buckets", [])]
