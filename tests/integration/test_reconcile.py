"""Redis and the index lose their state apart: a Redis restarted with and without persistence, an index that lost
documents. Nothing silently gone: status and the workers say so (exit 3), `ingest index verify --repair` and a
poll bring back every article the feeds still list, each indexed once."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.config import Settings
from ingest.embedded.services import free_port, redis_server_binary, spawn_redis, wait_for_port
from ingest.feeds import dump_feeds
from ingest.pipeline import poll_feeds, process_pending
from ingest.reconcile import verify_settings
from ingest.runtime import build_runtime
from ingest.stores.elasticsearch import build_es_client
from tests.conftest import demo_feeds
from tests.integration.test_cli import run, settings_env

FEEDS = ("world-wire", "exemple-actu")


def _volatile_redis(port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    """A redis-server that keeps nothing on disk, as many are run."""
    args = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
            "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port("redis-server", port, proc)
    return proc


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


@pytest.fixture
def own_redis(settings: Settings, tmp_path: Path) -> Iterator[tuple[Settings, int]]:
    """The test's settings pointed at a Redis of its own (to kill and restart), on a free port: one server, also
    when the other tests run on a cluster (what is tested is one server losing its state)."""
    port = free_port()
    settings.redis.url = f"redis://127.0.0.1:{port}/0"
    settings.redis.cluster = False
    yield settings, port
    subprocess.run(["pkill", "-f", f"redis-server 127.0.0.1:{port}"], check=False)


def _poll(settings: Settings, base_url: str) -> int:
    with build_runtime(settings) as rt:
        report = poll_feeds(rt, [f for f in demo_feeds(base_url) if f.id in FEEDS])
    return report.counts["poll/queued"]


def _indexed_ids(settings: Settings) -> list[str]:
    es = build_es_client(settings.elasticsearch)
    alias = settings.elasticsearch.index_prefix
    es.indices.refresh(index=alias)
    hits = es.search(index=alias, size=1000, query={"match_all": {}}, source=False)["hits"]["hits"]
    es.close()
    return sorted(h["_id"] for h in hits)


def _cli(settings: Settings, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    registry = tmp_path / "feeds.yaml"
    env = settings_env(settings, tmp_path) | {"INGEST_PIPELINE__RECLAIM_IDLE_SECONDS": "3600",
                                              "INGEST_FEEDS__PATH": str(registry)}
    return run(list(args), env=env, timeout=180)


@pytest.fixture(autouse=True)
def registry(feed_base_url: str, tmp_path: Path) -> None:
    """The feeds the tests poll, as a registry file for the commands."""
    (tmp_path / "feeds.yaml").write_text(dump_feeds([f for f in demo_feeds(feed_base_url) if f.id in FEEDS]))


def test_a_redis_that_lost_its_state_stops_the_work_until_repaired_and_nothing_is_lost(
    own_redis: tuple[Settings, int], feed_base_url: str, tmp_path: Path
) -> None:
    settings, port = own_redis
    redis_proc = _volatile_redis(port, tmp_path)
    settings.pipeline.batch_size = 2
    queued = _poll(settings, feed_base_url)
    with build_runtime(settings) as rt:
        first = process_pending(rt, "w1", datetime.now(UTC), max_batches=1).counts["index/indexed"]
    assert 0 < first < queued  # the rest is pending when Redis dies

    _kill(redis_proc)
    redis_proc = _volatile_redis(port, tmp_path)  # back, empty
    try:
        status = _cli(settings, tmp_path, "status")
        assert status.returncode == 3 and "lost the pipeline's state" in status.stdout + status.stderr
        stopped = _cli(settings, tmp_path, "process", "--workers", "1")
        assert stopped.returncode == 3 and "Traceback" not in stopped.stderr
        assert stopped.stderr.strip().splitlines()[-1].startswith("ingest: error: Redis at redis://127.0.0.1")
        assert "ingest index verify --repair" in stopped.stderr

        repaired = _cli(settings, tmp_path, "index", "verify", "--repair", "--json")
        found = json.loads(repaired.stdout)
        assert repaired.returncode == 0 and found["restored"] == first and found["missing"] == []

        # The way back: poll (the feeds are read whole again), then process: every entry indexed once.
        polled = _cli(settings, tmp_path, "poll")
        processed = _cli(settings, tmp_path, "process", "--workers", "1")
        assert polled.returncode == 0 and processed.returncode == 0
        dead = json.loads(_cli(settings, tmp_path, "status", "--json").stdout)["dead_letters"]  # a page gone: 404
        assert len(_indexed_ids(settings)) + dead == queued, polled.stdout + processed.stdout
        assert dead <= 1
        again = _cli(settings, tmp_path, "index", "verify")
        assert again.returncode == 0 and "0 missing" in again.stdout, again.stdout
        assert _cli(settings, tmp_path, "status").returncode == 0
    finally:
        _kill(redis_proc)


def test_the_embedded_redis_keeps_the_pending_stream_across_a_kill(
    own_redis: tuple[Settings, int], feed_base_url: str, tmp_path: Path
) -> None:
    settings, port = own_redis
    data = tmp_path / "redis"
    redis_proc = spawn_redis(port, data)
    queued = _poll(settings, feed_base_url)
    time.sleep(1.5)  # appendfsync everysec
    _kill(redis_proc)
    redis_proc = spawn_redis(port, data)
    try:
        status = json.loads(_cli(settings, tmp_path, "status", "--json").stdout)
        assert status["pending"] == queued and status["state_problem"] is None
        with build_runtime(settings) as rt:
            counts = process_pending(rt, "w1", datetime.now(UTC)).counts
        assert counts["index/indexed"] + counts["process/dead_lettered"] == queued  # (one page is gone: 404)
    finally:
        _kill(redis_proc)


def test_documents_the_index_lost_are_found_and_indexed_again(
    settings: Settings, feed_base_url: str, tmp_path: Path
) -> None:
    queued = _poll(settings, feed_base_url)
    with build_runtime(settings) as rt:
        counts = process_pending(rt, "w1", datetime.now(UTC)).counts
    assert counts["index/indexed"] + counts["process/dead_lettered"] == queued  # (one page is gone: 404)
    ids = _indexed_ids(settings)
    es = build_es_client(settings.elasticsearch)
    # An older snapshot restored: two documents are gone, the state id is still there.
    for doc_id in ids[:2]:
        es.delete(index=f"{settings.elasticsearch.index_prefix}-write", id=doc_id, refresh=True)
    sampled = verify_settings(settings, sample=100)
    assert sorted(sampled.missing) == ids[:2]
    check = _cli(settings, tmp_path, "index", "verify")
    assert check.returncode == 1 and "2 missing from the index" in check.stdout and "--repair" in check.stdout

    # The search server restarted empty: the index and its state id are gone.
    es.indices.delete(index=f"{settings.elasticsearch.index_prefix}-*")
    es.close()
    status = _cli(settings, tmp_path, "status")
    assert status.returncode == 3 and "the index lost documents" in status.stdout + status.stderr
    repaired = json.loads(_cli(settings, tmp_path, "index", "verify", "--repair", "--json").stdout)
    assert sorted(repaired["missing"]) == ids and repaired["forgot"] == len(ids) and repaired["feeds_cleared"] >= 2
    assert _cli(settings, tmp_path, "poll").returncode == 0
    assert _cli(settings, tmp_path, "process", "--workers", "1").returncode == 0
    assert _indexed_ids(settings) == ids
    assert _cli(settings, tmp_path, "index", "verify").returncode == 0


def test_a_new_deployment_gets_one_state_id_on_both_sides(settings: Settings) -> None:
    settings.redis.prefix = f"t{uuid.uuid4().hex[:8]}"
    with build_runtime(settings) as rt:
        assert rt.sink.epoch(settings.redis.prefix)  # type: ignore[attr-defined]
    with build_runtime(settings):  # the second start finds them equal
        pass
