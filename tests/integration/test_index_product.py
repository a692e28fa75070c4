"""The index as analysts and programs meet it: per-language analysis, date ranges and highlights through the
search API; bulk writes that index every good item of a batch and dead-letter exactly the bad ones, with the
refused document, and an operator's replay and purge of dead letters."""

from __future__ import annotations

import json
import subprocess
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import ingest
from ingest.config import Settings
from ingest.errors import ConfigError
from ingest.index import to_document
from ingest.pipeline import poll_feeds, process_pending
from ingest.runtime import build_runtime
from ingest.search_index.query import SearchResult, search_articles
from ingest.stores.elasticsearch import ElasticsearchSink, build_es_client, chunks
from tests.conftest import demo_feeds, shared_fixtures
from tests.documents import INDEXED_AT, sample_article
from tests.integration.test_cli import run, settings_env

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def _sink(settings: Settings) -> ElasticsearchSink:
    sink = ElasticsearchSink(build_es_client(settings.elasticsearch), settings.elasticsearch)
    sink.ensure_ready()
    return sink


def _refresh(sink: ElasticsearchSink) -> None:
    sink.client.indices.refresh(index=sink.read_alias)


def test_each_document_is_searched_with_its_own_language_analysis(settings: Settings) -> None:
    sink = _sink(settings)
    seed = (shared_fixtures() / "seed" / "izhevsk_drone_attack_fr.txt").read_text(encoding="utf-8")
    french = sample_article(text=seed)
    english = sample_article(
        article_id="en1", language="en", title="Drone strikes hit factories near Moscow", summary=None,
        text="Ukrainian drones struck two factories overnight, officials said.",
        published_at=datetime(2026, 5, 1, tzinfo=UTC),
    )
    german = sample_article(article_id="de1", language="de", title="Drohnenangriff", summary=None,
                            text="Drohnen trafen die Fabrik in der Nacht.", published_at=None)
    outcomes = sink.write([(a.article_id, to_document(a, INDEXED_AT, 1)) for a in (french, english, german)])
    assert all(o.ok for o in outcomes), outcomes
    _refresh(sink)

    def ids(query: str, **kw: str) -> list[str]:
        return sorted(h.id for h in search_articles(sink.client, sink.read_alias, query, **kw).hits)  # type: ignore[arg-type]

    # French: "drones" meets "drone" (stemming), "usine" meets "l'usine" (elision), accents folded.
    assert ids("drones Izhevsk") == [french.article_id]
    assert ids("usine") == [french.article_id]
    assert ids("frontiere") == [french.article_id]  # "frontière" in the text
    # English: "factory" meets "factories" and "strike" meets "strikes" in the English article only.
    assert ids("factory strike") == ["en1"]
    # Another language: the neutral analysis (no stemming), so the exact word form is needed.
    assert ids("Drohnen") == ["de1"]
    assert ids("Drohne") == []
    # Date ranges on published_at (the German article has none and falls outside any range).
    assert ids("*", since="2026-01-01") == ["en1"]
    assert ids("*", until="2025-12-31") == [french.article_id]
    hit = search_articles(sink.client, sink.read_alias, "drones Izhevsk").hits[0]
    assert any("<em>" in fragment for fragment in hit.highlight)

    # The Python API programs use: the same search, filters by facet name, typed results.
    result = ingest.search("drone", filters={"language": "fr"}, facets=["persons"], settings=settings)
    assert isinstance(result, SearchResult) and [h.id for h in result.hits] == [french.article_id]
    assert {v.value for v in result.facets["persons"]} == {"Vladimir Poutine", "Volodymyr Zelensky"}
    with pytest.raises(ConfigError, match="unknown facet"):
        ingest.search("drone", filters={"nope": "x"}, settings=settings)


def test_a_bulk_of_10000_with_1_percent_poisoned_indexes_the_rest(settings: Settings) -> None:
    settings.elasticsearch.bulk_max_docs = 700
    sink = _sink(settings)
    # Small documents keep the test quick on the in-memory server; the bulk bookkeeping is the same.
    base = {"title": "Article", "language": "en", "schema_version": 1}
    documents = []
    poisoned = set()
    for i in range(10_000):
        doc = dict(base, article_id=f"d{i}", title=f"Article {i}")
        if i % 100 == 37:
            # Every other poisoned item is a wrong type, the rest a field outside the contract.
            doc = dict(doc, published_at="not a date") if i % 200 == 37 else dict(doc, not_in_the_contract=i)
            poisoned.add(f"d{i}")
        documents.append((f"d{i}", doc))
    outcomes = sink.write(documents)
    assert [o.article_id for o in outcomes] == [d for d, _ in documents]
    refused = {o.article_id for o in outcomes if not o.ok}
    assert refused == poisoned and len(refused) == 100
    assert all(400 <= o.status < 500 and not o.retryable and o.error for o in outcomes if not o.ok)
    _refresh(sink)
    assert int(sink.client.count(index=sink.read_alias)["count"]) == 9_900


def test_requests_are_cut_by_documents_and_bytes() -> None:
    lines = [(f"d{i}", b"x" * size) for i, size in enumerate([40, 40, 40, 90, 10, 10, 10, 10])]
    groups = chunks(lines, max_docs=3, max_bytes=100)
    assert [[d for d, _ in g] for g in groups] == [["d0", "d1"], ["d2"], ["d3", "d4"], ["d5", "d6", "d7"]]
    assert all(sum(len(b) for _, b in g) <= 100 and len(g) <= 3 for g in groups)


def _cli(settings: Settings, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(list(args), env=settings_env(settings, tmp_path), timeout=120)


def test_too_large_documents_are_dead_lettered_with_the_document_then_replayed(
    settings: Settings, feed_base_url: str, tmp_path: Path
) -> None:
    settings.elasticsearch.bulk_max_bytes = 6_000  # smaller than the longest of the three articles
    rt = build_runtime(settings)
    poll_feeds(rt, [f for f in demo_feeds(feed_base_url) if f.id == "world-wire"])
    report = process_pending(rt, "w1", NOW)
    refused = report.counts["index/index_rejected"]
    assert refused >= 1 and report.counts["index/indexed"] == 3 - refused
    dead = json.loads(_cli(settings, tmp_path, "dlq", "list", "--json").stdout.splitlines()[0])
    assert dead["reason"] == "index_rejected" and dead["stage"] == "index"
    assert "INGEST_ELASTICSEARCH__BULK_MAX_BYTES" in dead["detail"]
    assert dead["document"]["url"] == dead["url"] and dead["document"]["text"]

    refusal = _cli(settings, tmp_path, "dlq", "replay")
    assert refusal.returncode != 0 and "--all" in refusal.stderr and len(refusal.stderr.strip().splitlines()) == 1
    assert _cli(settings, tmp_path, "dlq", "purge", "0-1").returncode != 0  # an id that is not there: nothing deleted

    # The operator raises the limit and replays: the entries are processed again and indexed.
    replayed = _cli(settings, tmp_path, "dlq", "replay", "--reason", "index_rejected")
    assert replayed.returncode == 0 and replayed.stdout.startswith(f"{refused} dead letter(s)")
    settings.elasticsearch.bulk_max_bytes = 10_000_000
    again = process_pending(build_runtime(settings), "w2", NOW)
    assert again.counts["index/indexed"] == refused
    assert rt.queue.dead_letters() == []  # type: ignore[attr-defined]


def test_purge_deletes_only_the_chosen_dead_letters(settings: Settings, feed_base_url: str, tmp_path: Path) -> None:
    rt = build_runtime(settings)
    poll_feeds(rt, [f for f in demo_feeds(feed_base_url) if f.id == "exemple-actu"])
    process_pending(rt, "w1", NOW)
    before = rt.queue.dead_letters()  # type: ignore[attr-defined]
    assert [d["reason"] for d in before] == ["http_4xx"]
    assert _cli(settings, tmp_path, "dlq", "purge", "--reason", "paywalled").stdout.startswith("0 dead letter(s)")
    assert _cli(settings, tmp_path, "dlq", "purge", before[0]["id"]).stdout.startswith("1 dead letter(s)")
    assert rt.queue.dead_letters() == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("action", ["replay", "purge"])
def test_replay_and_purge_need_a_choice(settings: Settings, action: str, tmp_path: Path) -> None:
    result = _cli(settings, tmp_path, "dlq", action)
    assert result.returncode == 2 and "say which dead letters" in result.stderr


class _BusyServer(ThreadingHTTPServer):
    """A search server that sheds load per item, as Elasticsearch does under pressure (osmem never does): the
    ids in ``flaky`` get one 429 then succeed, the ids in ``down`` get 503 every time. It records every id sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _BusyHandler)
        self.flaky = {"flaky"}
        self.down = {"down"}
        self.sent: list[str] = []


class _BusyHandler(BaseHTTPRequestHandler):
    server: _BusyServer

    def _answer(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"])).decode()
        actions = [json.loads(line) for line in raw.splitlines() if line.strip()][::2]
        items = []
        for action in actions:
            doc_id = action["index"]["_id"]
            self.server.sent.append(doc_id)
            status = 201
            if doc_id in self.server.down:
                status = 503
            elif doc_id in self.server.flaky:
                self.server.flaky.discard(doc_id)
                status = 429
            error = {"type": "es_rejected_execution_exception", "reason": "busy"} if status >= 400 else None
            items.append({"index": {"_id": doc_id, "status": status, **({"error": error} if error else {})}})
        self._answer({"errors": any(i["index"]["status"] >= 400 for i in items), "items": items})

    do_PUT = do_POST  # noqa: N815 - the client sends bulk requests as PUT

    def log_message(self, *args: Any) -> None:
        pass


def test_items_refused_for_load_are_retried_alone(settings: Settings) -> None:
    server = _BusyServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        es_settings = settings.elasticsearch.model_copy(update={
            "hosts": [f"http://127.0.0.1:{server.server_address[1]}"], "bulk_retries": 2})
        sink = ElasticsearchSink(build_es_client(es_settings), es_settings)
        sink._ready = True  # the fake server has no index API; setup is tested against the real one
        outcomes = sink.write([("ok", {"title": "a"}), ("flaky", {"title": "b"}), ("down", {"title": "c"})])
    finally:
        server.shutdown()
    assert [(o.article_id, o.ok, o.status) for o in outcomes] == [("ok", True, 201), ("flaky", True, 201),
                                                                  ("down", False, 503)]
    assert outcomes[2].retryable  # the pipeline leaves it pending for a later run
    # Only the refused items were sent again, never the whole request.
    assert server.sent == ["ok", "flaky", "down", "flaky", "down", "down"]


def test_urls_are_found_by_pattern(settings: Settings) -> None:
    sink = _sink(settings)
    article = sample_article()
    assert sink.write([(article.article_id, to_document(article, INDEXED_AT, 1))])[0].ok
    _refresh(sink)
    for query in ({"wildcard": {"url.wildcard": {"value": "*attaque-drones*"}}},
                  {"prefix": {"canonical_url": "http://127.0.0.1:8765/pages/"}},
                  {"term": {"url": article.url}}):
        hits = sink.client.search(index=sink.read_alias, query=query)["hits"]["hits"]
        assert [h["_id"] for h in hits] == [article.article_id], query
