"""Airflow's Celery executor, for real: PostgreSQL (a throwaway cluster of Debian's package) for the metadata
database and the Celery result backend, a Redis server of its own as the broker, the api-server, scheduler and
dag-processor, and two Celery workers, all on loopback. The poll DAG is triggered; the asset-triggered process run
maps its batches over both workers; the index holds every article once. Then a worker is killed mid-task and the
next run, on the other worker, still leaves every article indexed exactly once.

One start-up (about a minute) for the module; its tests run in order.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.airflow_env import live_env
from tests.conftest import demo_feeds, shared_fixtures

from ingest.config import Settings, load_settings
from ingest.embedded.airflow import LocalAirflow
from ingest.embedded.fixture_server import FixtureServer
from ingest.embedded.services import free_port, spawn_postgres, spawn_redis
from ingest.stores.elasticsearch import build_es_client
from ingest.stores.redis import RedisPendingQueue, RedisStats, connect_redis

pytestmark = [pytest.mark.airflow]

WORKERS = ("worker-a", "worker-b")
# Each Celery worker's task instances report its name as their hostname (two workers share this machine's).
HOSTNAME_MODULE = '''import os


def name() -> str:
    return os.environ["INGEST_TEST_WORKER_NAME"]
'''


@dataclass
class Celery:
    airflow: LocalAirflow
    settings: Settings
    feeds_path: Path
    site: FixtureServer


@pytest.fixture(scope="module")
def celery(redis_url: str, redis_cluster: bool, search_url: str, fixture_server: FixtureServer,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Celery]:
    if not shutil.which("runuser") and os.geteuid() == 0:
        pytest.fail("runuser is missing: PostgreSQL runs as the postgres user")
    folder = tmp_path_factory.mktemp("celery")
    pg_port, broker_port = free_port(), free_port()
    postgres, pg_data = spawn_postgres(pg_port)
    broker = spawn_redis(broker_port, folder / "broker")
    settings = load_settings(
        redis={"url": redis_url, "prefix": f"cel{uuid.uuid4().hex[:6]}", "cluster": redis_cluster},
        elasticsearch={"hosts": [search_url], "server_mode": "serverless",
                       "index_prefix": f"cel-{uuid.uuid4().hex[:6]}"},
        http={"allow_private": True, "timeout": 5.0, "connect_timeout": 2.0, "host_min_interval_seconds": 0.0},
        # small batches: the process run maps several of them, for both workers; a dead worker's lease lapses soon
        pipeline={"min_text_chars": 200, "batch_size": 2, "lease_seconds": 3},
        # a batch whose Celery worker died is run again 5 s after Airflow noticed (15 s without heartbeat)
        airflow={"retry_delay_seconds": 5},
    )
    env, feeds_path = live_env(settings, demo_feeds(fixture_server.base_url), folder)
    names = folder / "names"
    names.mkdir()
    (names / "ingest_test_hostname.py").write_text(HOSTNAME_MODULE, encoding="utf-8")
    database = f"postgresql+psycopg2://postgres@127.0.0.1:{pg_port}/airflow"
    airflow = LocalAirflow(
        folder / "airflow", free_port(), env, dag_ids=("ingest_poll_feeds", "ingest_process_articles"),
        airflow_env={
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{broker_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://postgres@127.0.0.1:{pg_port}/airflow",
            "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "15",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
        },
        celery_workers={name: {"INGEST_TEST_WORKER_NAME": name,
                               "AIRFLOW__CORE__HOSTNAME_CALLABLE": "ingest_test_hostname.name",
                               "PYTHONPATH": f"{names}:{os.environ.get('PYTHONPATH', '')}"} for name in WORKERS},
    )
    try:
        airflow.start(settings.airflow.pool_slots, settings.airflow.pool)
        yield Celery(airflow, settings, feeds_path, fixture_server)
    finally:
        airflow.stop()
        for proc in (broker, postgres):
            proc.terminate()
            proc.wait(30)
        shutil.rmtree(pg_data, ignore_errors=True)


def _process_runs(airflow: LocalAirflow, count: int, timeout: float = 600) -> list[dict[str, Any]]:
    """The process DAG's runs once ``count`` of them have ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = airflow.runs("ingest_process_articles")
        if len(runs) >= count and all(r["state"] in ("success", "failed") for r in runs[:count]):
            return runs
        time.sleep(2)
    pytest.fail(f"the process DAG did not end {count} run(s) within {timeout:.0f} s: "
                f"{airflow.runs('ingest_process_articles')}\n{airflow.logs()}")


def _task_hosts(airflow: LocalAirflow, dag_id: str, run_id: str, task_id: str | None = None) -> list[str]:
    """The hostnames of a run's task instances (of ``task_id`` and successful, when given)."""
    with airflow.client() as client:
        tis = client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                         params={"limit": 100}).json()["task_instances"]
    return [ti["hostname"] for ti in tis if ti["hostname"]
            and (task_id is None or (ti["task_id"] == task_id and ti["state"] == "success"))]


def _indexed(settings: Settings, copies: bool = True) -> list[str]:
    """The indexed documents' URLs; without the near-verbatim copies (``duplicate_of`` set) unless ``copies``."""
    es = build_es_client(settings.elasticsearch)
    try:
        es.indices.refresh(index=settings.elasticsearch.index_prefix)
        hits = es.search(index=settings.elasticsearch.index_prefix, size=100, query={"match_all": {}},
                         source=["canonical_url", "duplicate_of"])["hits"]["hits"]
    finally:
        es.close()
    return sorted(h["_source"]["canonical_url"] for h in hits if copies or not h["_source"].get("duplicate_of"))


def test_the_process_runs_batches_mapped_over_both_celery_workers(celery: Celery) -> None:
    poll = celery.airflow.run_once("ingest_poll_feeds", timeout=300)
    assert poll["state"] == "success", (poll, celery.airflow.logs())
    assert {host for host in _task_hosts(celery.airflow, "ingest_poll_feeds", poll["run_id"])} <= set(WORKERS)
    run = _process_runs(celery.airflow, 1)[0]
    assert run["state"] == "success" and run["run_type"] == "asset_triggered", (run, celery.airflow.logs())
    hosts = _task_hosts(celery.airflow, "ingest_process_articles", run["dag_run_id"], "process_batch")
    assert len(hosts) >= 2 and set(hosts) == set(WORKERS), hosts  # the mapped batches ran on both workers
    urls, originals = _indexed(celery.settings), _indexed(celery.settings, copies=False)
    assert len(originals) == len(set(originals)) == 7, originals  # the demo's seven articles, each once
    # The demo's exact copy is skipped when its original was indexed first; when the two workers held both at once
    # it is indexed as a copy of the other (duplicate_of): never twice, never lost.
    assert len(urls) == len(set(urls)) in (7, 8) and set(originals) <= set(urls), urls



def test_a_celery_worker_killed_mid_task_leaves_every_article_indexed_once(celery: Celery) -> None:
    """Twelve more real pages (fundus fixtures) in a new feed; while the process run works on them, the Celery
    worker running one of its batches is killed (SIGKILL, its task processes with it). Airflow notices the missing
    heartbeat, fails the task and retries it on the other worker; the dead worker's stream entries are taken over
    once its lease lapses. The run ends in success, nothing is left pending, and the index holds each article
    once: as many documents as the pipeline counted indexed."""
    pages = sorted((shared_fixtures() / "pages" / "fundus").glob("*/*.html.gz"))[:12]
    for page in pages:
        shutil.copy(page, celery.site.root / "pages" / page.name)
    base = celery.site.base_url
    items = "".join(f"<item><title>{p.name}</title><link>{base}/pages/{p.name.removesuffix('.gz')}</link></item>"
                    for p in pages)
    (celery.site.root / "feeds" / "more.xml").write_text(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>more</title>{items}</channel></rss>',
        encoding="utf-8")
    celery.feeds_path.write_text(yaml.safe_dump({"feeds": [{"id": "more", "url": f"{base}/feeds/more.xml",
                                                            "name": "More"}]}), encoding="utf-8")
    poll = celery.airflow.run_once("ingest_poll_feeds", timeout=300)
    assert poll["state"] == "success", poll

    victim = _running_batch_host(celery.airflow)
    time.sleep(2)  # mid-task: the batch has its models loading or its pages in hand
    celery.airflow.kill(f"celery-{victim}")
    run = _process_runs(celery.airflow, 2, timeout=900)[1]
    assert run["state"] == "success", (run, celery.airflow.logs())
    with celery.airflow.client() as client:
        tis = client.get(f"/api/v2/dags/ingest_process_articles/dagRuns/{run['dag_run_id']}/taskInstances",
                         params={"limit": 100}).json()["task_instances"]
    batches = [ti for ti in tis if ti["task_id"] == "process_batch"]
    retried = [ti for ti in batches if ti["try_number"] > 1]
    assert retried, batches  # Airflow ran the killed batch again…
    assert all(ti["state"] == "success" and ti["hostname"] != victim for ti in retried), retried  # …elsewhere

    client = connect_redis(celery.settings.redis)
    queue = RedisPendingQueue.for_settings(client, celery.settings)
    assert queue.pending_count() == 0
    indexed = RedisStats(client, celery.settings.redis.prefix).read().get("index/indexed", 0)
    urls = _indexed(celery.settings)
    assert len(urls) == len(set(urls)) == indexed > 7, (len(urls), indexed)  # none twice, none lost


def _running_batch_host(airflow: LocalAirflow, timeout: float = 300) -> str:
    """The worker running a ``process_batch`` task instance of the newest process run, once one runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = airflow.runs("ingest_process_articles")
        if len(runs) >= 2:
            with airflow.client() as client:
                tis = client.get(f"/api/v2/dags/ingest_process_articles/dagRuns/{runs[1]['dag_run_id']}"
                                 "/taskInstances", params={"limit": 100}).json()["task_instances"]
            running = [ti["hostname"] for ti in tis if ti["task_id"] == "process_batch" and ti["state"] == "running"
                       and ti["hostname"] in WORKERS]
            if running:
                return str(running[0])
        time.sleep(0.5)
    pytest.fail(f"no process_batch task ran within {timeout:.0f} s\n{airflow.logs()}")
