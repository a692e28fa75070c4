"""Indexing throughput through the project's sink against the client's ``helpers.streaming_bulk`` alone.

    .venv/bin/python bench/bench_index.py [--docs 10000] [--repeat 3] [--chunk 500] [--url URL --mode stack] [--json]

Both write the same documents into a fresh index made from the project's template (created before the clock
starts, deleted after each round), in bulk requests of ``--chunk`` documents and with the same ``refresh`` the sink
asks for (``wait_for``: the pipeline acknowledges an entry only once its document is searchable):

- ``sink``: ``ElasticsearchSink.write`` over all the documents (it serialises, splits by documents and bytes,
  reads every item's outcome, retries 429/5xx items);
- ``streaming_bulk``: ``elasticsearch.helpers.streaming_bulk`` over the same ``(id, document)`` pairs, results
  consumed and counted.

Documents: the 55 news pages of ``shared/fixtures/pages/fundus`` (fr, en, de), extracted by the pipeline's code
(``extract_article`` + ``build_article``) and turned into documents by ``ingest.index.to_document``, not enriched
(no entities), cycled to ``--docs`` with their own ids. Rounds are interleaved (the order alternates) and the best
round of each counts: this machine is shared, read the ratio. Also printed: this process's CPU time per 1,000
documents for each, the client-side cost whatever the server's speed. The server is an osmem spawned on a free
port unless ``--url`` names one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench_pipeline import FIXTURES, load_pages
from elasticsearch import Elasticsearch, helpers

from ingest.config import ElasticsearchSettings
from ingest.embedded.services import search_server
from ingest.errors import PermanentError
from ingest.extract import build_article, extract_article
from ingest.index import to_document
from ingest.models import FeedEntry
from ingest.search_index.template import index_names
from ingest.stores.elasticsearch import ElasticsearchSink, build_es_client

FETCHED_AT = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
TARGET = 0.80
Documents = list[tuple[str, dict[str, Any]]]


def fixture_documents(count: int) -> Documents:
    """``count`` indexed documents from the fundus pages, each with its own id."""
    base = []
    for url, html in load_pages():
        with contextlib.suppress(PermanentError):
            entry = FeedEntry(feed_id="bench", feed_name="Bench", url=url)
            base.append(to_document(build_article(entry, extract_article(html, url), FETCHED_AT), FETCHED_AT, 1))
    out: Documents = []
    for i in range(count):
        doc_id = f"bench{i:07d}"
        out.append((doc_id, {**base[i % len(base)], "article_id": doc_id}))
    return out


def run_sink(sink: ElasticsearchSink, docs: Documents) -> int:
    return sum(o.ok for o in sink.write(docs))


def run_streaming_bulk(sink: ElasticsearchSink, docs: Documents) -> int:
    """The client alone, into the index and alias the sink set up (the sink writes nothing here)."""
    settings = sink.settings
    actions = ({"_index": sink.write_alias, "_id": doc_id, "_source": doc} for doc_id, doc in docs)
    ok = 0
    for good, _ in helpers.streaming_bulk(sink.client, actions, chunk_size=settings.bulk_max_docs,
                                          max_chunk_bytes=settings.bulk_max_bytes, raise_on_error=False,
                                          refresh="wait_for"):
        ok += good
    return ok


RUNNERS: dict[str, Callable[[ElasticsearchSink, Documents], int]] = {
    "sink": run_sink,
    "streaming_bulk": run_streaming_bulk,
}


def bench(es: Elasticsearch, base: ElasticsearchSettings, docs: Documents, repeat: int) -> dict[str, Any]:
    rounds: list[dict[str, float]] = []
    cpu: dict[str, float] = {}
    for number in range(repeat):
        order = list(RUNNERS) if number % 2 == 0 else list(reversed(RUNNERS))
        rates: dict[str, float] = {}
        for name in order:
            prefix = f"bench-index-{name.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
            sink = ElasticsearchSink(es, base.model_copy(update={"index_prefix": prefix}))
            sink.ensure_ready()  # template, index and aliases made before the clock starts
            try:
                started, cpu_started = time.perf_counter(), time.process_time()
                ok = RUNNERS[name](sink, docs)
                seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
                if ok != len(docs):
                    raise SystemExit(f"bench_index: {name} indexed {ok} of {len(docs)} documents")
                es.indices.refresh(index=prefix)
                if (count := int(es.count(index=prefix)["count"])) != len(docs):
                    raise SystemExit(f"bench_index: {name} left {count} of {len(docs)} documents searchable")
            finally:
                es.indices.delete(index=index_names(prefix)[0], ignore_unavailable=True)
                es.indices.delete_index_template(name=prefix)
            rates[name] = len(docs) / seconds
            # This process's CPU per 1,000 documents: the client-side cost, whatever the server's speed.
            cpu[name] = min(cpu.get(name, float("inf")), cpu_seconds * 1000 / len(docs))
            print(f"  round {number + 1} {name:15} {rates[name]:9.1f} docs/s", file=sys.stderr, flush=True)
        rounds.append(rates)
    best = {name: max(r[name] for r in rounds) for name in RUNNERS}
    return {
        "documents": len(docs),
        "source_mb": round(sum(len(json.dumps(d, ensure_ascii=False).encode()) for _, d in docs) / 1e6, 2),
        "chunk": base.bulk_max_docs,
        "repeat": repeat,
        "rounds": [{k: round(v, 1) for k, v in r.items()} for r in rounds],
        "docs_per_s": {k: round(v, 1) for k, v in best.items()},
        "sink_over_streaming_bulk": round(best["sink"] / best["streaming_bulk"], 3),
        "client_cpu_s_per_1000_docs": {k: round(v, 3) for k, v in cpu.items()},
        "target": TARGET,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=ElasticsearchSettings().bulk_max_docs,
                        help="documents per bulk request, for both (INGEST_ELASTICSEARCH__BULK_MAX_DOCS)")
    parser.add_argument("--url", help="a search server to use instead of a spawned osmem")
    parser.add_argument("--mode", choices=["stack", "serverless"], default="stack")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args()
    if not FIXTURES.is_dir():
        raise SystemExit(f"bench_index: {FIXTURES} not found; clone the project next to shared/")
    with search_server(args.url, args.mode) as (url, mode):
        # A long request timeout: an in-memory test server under load can take a minute for one request.
        settings = ElasticsearchSettings(hosts=[url], server_mode=mode, bulk_max_docs=args.chunk,
                                         request_timeout=600)
        es = build_es_client(settings)
        docs = fixture_documents(args.docs)
        result = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "server": es.info()["version"]["number"],
                  **bench(es, settings, docs, args.repeat)}
        if args.json:
            print(json.dumps(result))
        else:
            print(f"{result['documents']} documents ({result['source_mb']} MB), bulk of {result['chunk']}, "
                  f"best of {args.repeat}")
            for name, rate in result["docs_per_s"].items():
                client = result["client_cpu_s_per_1000_docs"][name]
                print(f"  {name:15} {rate:9.1f} docs/s   client CPU {client:.3f} s per 1,000 documents")
            verdict = "meets" if result["sink_over_streaming_bulk"] >= TARGET else "MISSES"
            print(f"  sink ÷ streaming_bulk: {result['sink_over_streaming_bulk']} ({verdict} the {TARGET} target)")
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
