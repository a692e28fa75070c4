"""Both DAGs run with ``dag.test()`` against the real services: poll → asset event → process → index.

The second poll finds nothing new: its ``announce`` task is skipped and no asset event is added.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
from airflow.models.dagrun import DagRun
from airflow.models.xcom import XComModel
from airflow.sdk import DAG
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState
from sqlalchemy import select
from tests.airflow_env import DAGS, use_settings
from tests.conftest import demo_feeds

from ingest.airflow.assets import INDEXED_ASSET, PENDING_ASSET
from ingest.config import Settings, load_settings
from ingest.index import SCHEMA_VERSION
from ingest.models import FeedEntry, FeedState
from ingest.stores.elasticsearch import build_es_client
from ingest.stores.redis import RedisFeedStateStore, RedisPendingQueue, connect_redis

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]


def _dag(dag_id: str) -> DAG:
    bag = DagBag(dag_folder=DAGS)
    assert bag.import_errors == {}
    dag = bag.dags[dag_id]
    # A failing task should fail the test now, not wait out its production retry delay.
    for task in dag.tasks:
        task.retries = 0
    return dag


def _run(dag_id: str, conf: dict[str, Any] | None = None) -> DagRun:
    run = _dag(dag_id).test(run_conf=conf)
    assert run is not None
    return run


def _task_states(run: DagRun) -> dict[str, list[TaskInstanceState | None]]:
    with create_session() as session:
        tis = run.get_task_instances(session=session)
    states: dict[str, list[TaskInstanceState | None]] = {}
    for ti in sorted(tis, key=lambda t: (t.task_id, t.map_index)):
        states.setdefault(ti.task_id, []).append(ti.state)
    return states


def _events(asset_name: str) -> list[dict[str, Any]]:
    with create_session() as session:
        rows = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == asset_name)
            .order_by(AssetEvent.id)
        ).all()
        return [{"run_id": e.source_run_id, "task_id": e.source_task_id, "extra": dict(e.extra)} for e in rows]


def _queued_runs(dag_id: str, *, clear: bool = False) -> int:
    """Asset-triggered runs of ``dag_id`` the scheduler has been asked for (and, optionally, forget them)."""
    with create_session() as session:
        rows = session.scalars(select(AssetDagRunQueue).where(AssetDagRunQueue.target_dag_id == dag_id)).all()
        if clear:
            for row in rows:
                session.delete(row)
        return len(rows)


def _queue(settings: Settings) -> RedisPendingQueue:
    client = connect_redis(settings.redis)
    return RedisPendingQueue(client, settings.redis.prefix, settings.pipeline.consumer_group, 3600)


def test_poll_then_process_through_airflow(
    settings: Settings, feed_base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feeds = demo_feeds(feed_base_url)
    feeds_path = use_settings(settings, monkeypatch, feeds, tmp_path)
    settings = load_settings()  # what the tasks will read
    assert settings.feeds.path == feeds_path
    queue = _queue(settings)
    pending_before = len(_events(PENDING_ASSET.name))

    # ---- poll: entries queued, one asset event carrying the counts
    poll = _run("ingest_poll_feeds")
    assert poll.state == DagRunState.SUCCESS
    states = _task_states(poll)
    assert states["announce"] == [TaskInstanceState.SUCCESS]
    assert len(states["poll_shard"]) >= 1
    assert set(states["poll_shard"]) == {TaskInstanceState.SUCCESS}
    queued = queue.pending_count()
    assert queued > 0

    events = _events(PENDING_ASSET.name)
    assert len(events) == pending_before + 1
    event = events[-1]
    assert (event["run_id"], event["task_id"]) == (poll.run_id, "announce")
    assert event["extra"]["queued"] == queued
    assert event["extra"]["feeds"] == len([f for f in feeds if f.enabled])
    assert event["extra"]["counts"]["poll/queued"] == queued
    assert event["extra"]["counts"]["poll/http_4xx"] == 1  # the retired feed: counted, not fatal

    # The scheduler would now start the process DAG: it is queued on the asset.
    assert _queued_runs("ingest_process_articles") == 1

    # ---- process: the pending stream drained into the index
    process = _run("ingest_process_articles")
    assert process.state == DagRunState.SUCCESS
    states = _task_states(process)
    assert set(states["process_batch"]) == {TaskInstanceState.SUCCESS}
    assert states["summarise"] == [TaskInstanceState.SUCCESS]

    es = build_es_client(settings.elasticsearch)
    alias = settings.elasticsearch.index_prefix
    es.indices.refresh(index=alias)
    indexed = int(es.count(index=alias)["count"])
    assert indexed > 0
    hits = es.search(index=alias, query={"match": {"title": "Izhevsk"}}, size=10)["hits"]["hits"]
    izhevsk = [h["_source"] for h in hits if "Izhevsk" in h["_source"]["title"]]
    assert len(izhevsk) == 1  # the syndicated copy is a duplicate, not a second document
    assert izhevsk[0]["language"] == "fr"
    assert "Vladimir Poutine" in izhevsk[0]["persons"]

    assert queue.pending_count() == 0
    dead = queue.dead_letters()
    assert [d["reason"] for d in dead] == ["http_4xx"]
    assert "article-retire.html" in dead[0]["entry"]

    [indexed_event] = [e for e in _events(INDEXED_ASSET.name) if e["run_id"] == process.run_id]
    assert indexed_event["extra"]["indexed"] == indexed
    assert indexed_event["extra"]["dead_lettered"] == 1
    assert indexed_event["extra"]["workers"] == len(states["process_batch"])
    # The exact range of the run's indexed_at, the read alias and the schema version the documents carry.
    extra = indexed_event["extra"]
    assert (extra["index"], extra["schema_version"]) == (alias, SCHEMA_VERSION)
    stamps = sorted(h["_source"]["indexed_at"] for h in es.search(index=alias, size=100)["hits"]["hits"])
    assert len(stamps) == indexed and (stamps[0], stamps[-1]) == (extra["indexed_at_first"], extra["indexed_at_last"])

    # ---- poll again: nothing new, announce skipped, no asset event, no process run requested
    _queued_runs("ingest_process_articles", clear=True)  # dag.test() does not consume the scheduler's queue
    again = _run("ingest_poll_feeds")
    assert again.state == DagRunState.SUCCESS
    assert queue.pending_count() == 0
    assert len(_events(PENDING_ASSET.name)) == pending_before + 1
    assert _queued_runs("ingest_process_articles") == 0
    assert _task_states(again)["announce"] == [TaskInstanceState.SKIPPED]
    assert int(es.count(index=alias)["count"]) == indexed


def _returned(run: DagRun, task_id: str) -> Any:
    with create_session() as session:
        row = session.scalars(select(XComModel).where(
            XComModel.dag_id == run.dag_id, XComModel.run_id == run.run_id, XComModel.task_id == task_id,
            XComModel.key == "return_value")).one()
        return XComModel.deserialize_value(row)


def test_maintenance_reclaims_replays_on_request_and_reports_feeds(
    settings: Settings, feed_base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feeds = demo_feeds(feed_base_url)
    settings = settings.model_copy(update={
        "pipeline": settings.pipeline.model_copy(update={"reclaim_idle_seconds": 0}),
        "airflow": settings.airflow.model_copy(update={"forget_consumers_after_hours": 0}),
    })
    use_settings(settings, monkeypatch, feeds, tmp_path)
    queue = RedisPendingQueue(connect_redis(settings.redis), settings.redis.prefix,
                              settings.pipeline.consumer_group, 0)
    # A worker took three entries and died with them; two more went to the dead letters; one was never read.
    entries = [(f"a{i}", FeedEntry(feed_id=feeds[0].id, feed_name="F", url=f"{feed_base_url}/gone-{i}.html"))
               for i in range(6)]
    assert queue.enqueue(entries) == 6
    taken = queue.read_batch("crashed-worker", 5)
    queue.dead_letter(taken[3], "http_5xx", "HTTP 503 from the site")
    queue.dead_letter(taken[4], "http_4xx", "HTTP 404 from the site")
    queue.client.xgroup_createconsumer(queue.keys.pending, queue.group, "cli-host-1234")  # holds nothing
    failing = FeedState(consecutive_failures=3, last_error="HTTP 503", failing_since=datetime(2026, 11, 24, tzinfo=UTC))
    RedisFeedStateStore(queue.client, settings.redis.prefix).put(feeds[1].id, failing)
    before = len(_events(PENDING_ASSET.name))

    run = _run("ingest_maintenance", {"replay_reason": "http_5xx"})
    assert run.state == DagRunState.SUCCESS
    report = _returned(run, "check_queue")
    assert report["replayed"] == 1 and report["consumers_removed"] == ["cli-host-1234"]
    assert (report["pending"], report["unread"], report["stale"]) == (5, 2, 3)  # 3 stale + 1 unread + 1 replayed
    assert report["dead_by_reason"] == {"http_4xx": 1}
    names = [c["name"] for c in queue.client.xinfo_consumers(queue.keys.pending, queue.group)]
    assert names == ["crashed-worker"]  # it still holds entries: kept until they are reclaimed
    events = _events(PENDING_ASSET.name)
    assert len(events) == before + 1 and events[-1]["task_id"] == "announce"
    assert events[-1]["extra"] == {"source": "ingest_maintenance", "pending": 5, "unread": 2, "stale": 3,
                                   "replayed": 1}
    feeds_report = _returned(run, "check_feeds")
    assert feeds_report["feeds"] == len(feeds)
    assert [(f["id"], f["state"], f["consecutive_failures"]) for f in feeds_report["attention"]] == [
        (feeds[1].id, "failing", 3)]

    # The process DAG reclaims what the dead worker held and takes the rest: nothing waits any more, and the
    # next maintenance run has nothing to announce.
    assert _run("ingest_process_articles").state == DagRunState.SUCCESS
    assert queue.pending_count() == 0
    quiet = _run("ingest_maintenance")
    assert _task_states(quiet)["announce"] == [TaskInstanceState.SKIPPED]
    assert _returned(quiet, "check_queue")["replayed"] == 0
    assert _returned(quiet, "check_index")["problem"] is None  # Redis and the index agree
    assert len(_events(PENDING_ASSET.name)) == before + 1
