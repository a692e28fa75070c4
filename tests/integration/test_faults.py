"""Faults at the edges, against the real search server behind a loopback proxy that refuses whole requests as an
overloaded cluster (429, 503) or a proxy's body limit (413) does: nothing lost, nothing wrongly dead-lettered,
one line for a person."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ingest.config import Settings
from ingest.pipeline import poll_feeds, process_pending
from ingest.runtime import build_runtime
from tests.conftest import demo_feeds
from tests.integration.test_cli import run, settings_env

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
_HOP = {"host", "connection", "content-length", "transfer-encoding", "keep-alive"}


class _Proxy(ThreadingHTTPServer):
    """Relays every request to the search server, except ``_bulk`` requests: the statuses in ``refusals`` answer
    the next ones (one each), and a body larger than ``max_body`` gets 413. It counts what it refused and the
    documents of every bulk request it let through."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.refusals: list[int] = []
        self.max_body: int | None = None
        self.refused: list[int] = []
        self.relayed_bulks: list[int] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: _Proxy
    protocol_version = "HTTP/1.1"

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if "/_bulk" in self.path:
            with self.server.lock:
                status = self.server.refusals.pop(0) if self.server.refusals else None
                if status is None and self.server.max_body is not None and len(body) > self.server.max_body:
                    status = 413
                if status is not None:
                    self.server.refused.append(status)
                else:
                    self.server.relayed_bulks.append(body.count(b"\n") // 2)
            if status is not None:
                self._refuse(status)
                return
        conn = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        conn.request(self.command, self.path, body=body or None, headers=headers)
        answer = conn.getresponse()
        data = answer.read()
        conn.close()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in _HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _refuse(self, status: int) -> None:
        if status == 413:  # what nginx in front of a cluster says
            data, kind = b"<html><body><h1>413 Request Entity Too Large</h1></body></html>", "text/html"
        else:
            reason = "circuit_breaking_exception" if status == 503 else "es_rejected_execution_exception"
            data = json.dumps({"error": {"type": reason, "reason": "busy"}, "status": status}).encode()
            kind = "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _relay  # noqa: N815

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def proxy(search_url: str) -> Iterator[_Proxy]:
    server = _Proxy(search_url)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def behind_proxy(settings: Settings, proxy: _Proxy) -> Settings:
    settings.elasticsearch.hosts = [proxy.url]
    settings.elasticsearch.bulk_retries = 2
    return settings


def _queue(settings: Settings, feed_base_url: str, feed: str = "world-wire") -> int:
    rt = build_runtime(settings)
    report = poll_feeds(rt, [f for f in demo_feeds(feed_base_url) if f.id == feed])
    return report.counts["poll/queued"]


def _status(settings: Settings, tmp_path: Path) -> dict[str, Any]:
    result = run(["status", "--json"], env=settings_env(settings, tmp_path), timeout=60)
    assert result.returncode == 0, result.stderr
    status: dict[str, Any] = json.loads(result.stdout)
    return status


def test_bulk_requests_refused_whole_for_load_are_sent_again_and_everything_lands(
    behind_proxy: Settings, proxy: _Proxy, feed_base_url: str
) -> None:
    queued = _queue(behind_proxy, feed_base_url)
    # The client's transport sends a refused request again twice at once; four refusals outlast that, so the
    # sink's own backoff must carry the batch through.
    proxy.refusals = [429, 429, 503, 429]
    report = process_pending(build_runtime(behind_proxy), "w1", NOW)
    assert proxy.refused == [429, 429, 503, 429] and proxy.relayed_bulks == [queued]
    assert report.counts["index/indexed"] == queued
    assert "process/dead_lettered" not in report.counts


def test_a_search_server_refusing_every_bulk_leaves_the_batch_pending_with_one_line(
    behind_proxy: Settings, proxy: _Proxy, feed_base_url: str, tmp_path: Path
) -> None:
    queued = _queue(behind_proxy, feed_base_url)
    proxy.refusals = [503] * 1000
    env = settings_env(behind_proxy, tmp_path) | {"INGEST_ELASTICSEARCH__BULK_RETRIES": "1",
                                                  "INGEST_PIPELINE__RECLAIM_IDLE_SECONDS": "3600"}
    result = run(["process", "--workers", "1"], env=env, timeout=120)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    said = [line for line in result.stderr.splitlines() if "HTTP 503" in line]
    assert len(said) == 1 and "pending" in said[0]
    assert proxy.relayed_bulks == []
    status = _status(behind_proxy, tmp_path)
    assert status["pending"] == queued and status["dead_letters"] == 0

    # The cluster recovers: the next run indexes every entry, none dead-lettered.
    proxy.refusals = []
    report = process_pending(build_runtime(behind_proxy), "w2", NOW)
    assert report.counts["index/indexed"] == queued and "process/dead_lettered" not in report.counts, report.counts
    status = _status(behind_proxy, tmp_path)
    assert status["pending"] == 0 and status["dead_letters"] == 0


def test_a_bulk_refused_as_too_large_is_split_and_only_a_lone_oversized_document_is_dead_lettered(
    behind_proxy: Settings, proxy: _Proxy, feed_base_url: str, tmp_path: Path
) -> None:
    queued = _queue(behind_proxy, feed_base_url)
    proxy.max_body = 25_000  # a proxy's body limit below the longest of the feed's articles, unknown to ingest
    report = process_pending(build_runtime(behind_proxy), "w1", NOW)
    refused = report.counts.get("index/index_rejected", 0)
    indexed = report.counts["index/indexed"]
    assert refused >= 1 and indexed >= 1 and indexed + refused == queued
    assert 413 in proxy.refused and all(n < queued for n in proxy.relayed_bulks)  # split, then sent
    dead = [json.loads(line) for line in
            run(["dlq", "list", "--json"], env=settings_env(behind_proxy, tmp_path)).stdout.splitlines()]
    assert len(dead) == refused
    for letter in dead:
        assert letter["reason"] == "index_rejected" and "HTTP 413" in letter["detail"]
        assert len(json.dumps(letter["document"], ensure_ascii=False).encode()) > 25_000 - 200
