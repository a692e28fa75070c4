"""Event-driven news ingestion: feeds → articles → dedup → entities → Elasticsearch.

For programs, ``ingest.search`` searches the index the pipeline writes and returns typed results::

    import ingest

    result = ingest.search("drones Izhevsk", facets=["persons"], filters={"language": "fr"}, since="now-7d/d")
    for hit in result.hits:
        print(hit.title, hit.url)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from ingest.config import Settings
    from ingest.search_index.query import SearchResult

__all__ = ["__version__", "search"]
__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())


def search(
    query: str = "*",
    *,
    facets: Sequence[str] = (),
    filters: Mapping[str, str] | None = None,
    since: str | None = None,
    until: str | None = None,
    collapse: str | None = None,
    size: int = 10,
    settings: Settings | None = None,
    client: Elasticsearch | None = None,
) -> SearchResult:
    """Search the read alias, as ``ingest search`` does: ``query`` in simple query string syntax (``*`` for
    everything), ``facets`` and ``filters`` by facet name (persons, places, entity, source, language, …),
    ``since``/``until`` on ``published_at`` (dates, ``24h``/``7d``/``2w`` back from now, ``today``, ``yesterday``
    or date math), ``collapse="story"`` for one hit per story.
    Settings come from the environment (``INGEST_*``, or the demo's running services: ``resolve_settings``)
    unless given; a client can be passed in and is then used as it is. Unknown facet or filter names raise
    ``ingest.errors.ConfigError``; a search server that does not answer, ``ingest.errors.ServiceUnavailableError``
    naming it."""
    # Imported here so that ``import ingest`` stays light (the search client takes seconds to import).
    from ingest.config import resolve_settings
    from ingest.search_index.query import check_size, parse_filters, parse_when, search_articles
    from ingest.stores.elasticsearch import build_es_client, check_search_server

    settings = settings or resolve_settings()
    pairs = parse_filters([f"{name}={value}" for name, value in (filters or {}).items()])
    es = client
    if es is None:
        es = build_es_client(settings.elasticsearch)
        check_search_server(es, ", ".join(settings.elasticsearch.hosts))
    return search_articles(es, settings.elasticsearch.index_prefix, query, facets, pairs, check_size(size), collapse,
                           parse_when("since", since), parse_when("until", until))
