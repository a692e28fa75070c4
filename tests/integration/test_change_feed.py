"""The change feed docs/data-contract.md promises: paging the read alias in (indexed_at, article_id) order with
search_after returns every document once, in write order, an updated article last, and a horizon on indexed_at
leaves out a later run."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from ingest.config import ElasticsearchSettings
from ingest.index import to_document
from ingest.stores.elasticsearch import ElasticsearchSink, build_es_client
from tests.documents import INDEXED_AT, sample_article

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "data-contract.md"


def _documented_request() -> dict[str, Any]:
    """The first JSON request of the page's "Reading in `indexed_at` order" section."""
    text = CONTRACT.read_text(encoding="utf-8")
    section = text[text.index("### Reading in `indexed_at` order") :]
    match = re.search(r"```json\n(.*?)\n```", section, re.DOTALL)
    assert match, "the section shows the request as a ```json block"
    request: dict[str, Any] = json.loads(match.group(1))
    return request


def _follow(es: Elasticsearch, alias: str, horizon: str, size: int) -> list[tuple[str, str]]:
    documented = _documented_request()
    seen: list[tuple[str, str]] = []
    after: list[Any] | None = None
    while True:
        body = {**documented, "size": size, "query": {"range": {"indexed_at": {"lte": horizon}}}}
        body.pop("search_after")
        if after is not None:
            body["search_after"] = after  # the checkpoint, sent back as it came
        hits = es.search(index=alias, **body)["hits"]["hits"]
        if not hits:
            return seen
        seen += [(h["_id"], h["_source"]["indexed_at"]) for h in hits]
        after = hits[-1]["sort"]


def test_search_after_on_indexed_at_follows_every_write_in_order(es_settings: ElasticsearchSettings) -> None:
    es = build_es_client(es_settings)
    sink = ElasticsearchSink(es, es_settings)
    sink.ensure_ready()
    a1, a2, a3, a4, a5, a6 = (f"{n:020x}" for n in range(1, 7))
    # Four runs: four articles share one clock (the tie-breaker orders them, and a page ends inside the tie),
    # one run a microsecond later, then a3 is written again; a4 comes after the reader's horizon.
    first, second, third = INDEXED_AT, INDEXED_AT + timedelta(microseconds=1), INDEXED_AT + timedelta(minutes=5)
    runs = [(first, [a3, a6, a1, a5]), (second, [a2]), (third, [a3]), (third + timedelta(minutes=1), [a4])]
    for clock, run in runs:
        articles = [sample_article(article_id=i, canonical_url=f"http://127.0.0.1:8765/{i}") for i in run]
        outcomes = sink.write([(a.article_id, to_document(a, clock, 1)) for a in articles])
        assert all(o.ok for o in outcomes), outcomes

    seen = _follow(es, es_settings.index_prefix, horizon=third.isoformat().replace("+00:00", "Z"), size=2)

    assert [i for i, _ in seen] == [a1, a5, a6, a2, a3]  # a3 moved to its update; a4 is past the horizon
    assert seen[3][1] == "2025-07-01T13:00:00.000001Z"
