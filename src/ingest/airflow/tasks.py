"""Task bodies of the ingest DAGs: plain functions that take and return small JSON-able data.

Each one resolves the settings when it runs (``ingest.config.resolve_settings``) and makes a single call into
the pipeline, closing what it opened. The pipeline and its
clients are imported inside the functions so that parsing a DAG file stays cheap (no spaCy, trafilatura or
Elasticsearch client at import time). Nothing here imports Airflow: the DAG files decide what becomes an
asset event or a skip.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis

    from ingest.config import Settings
    from ingest.enrich import NerModels

__all__ = [
    "check_feeds",
    "consumer_name",
    "maintain_queue",
    "plan_batches",
    "plan_poll_shards",
    "poll_shard",
    "prepare_index",
    "process_batch_worker",
    "summarise_poll",
    "summarise_process",
    "worker_count",
]


def plan_poll_shards() -> list[list[dict[str, Any]]]:
    """The enabled feeds of the registry grouped into shards by host, each feed as a JSON dict."""
    from ingest.config import resolve_settings
    from ingest.feeds import load_feeds, shard_feeds

    settings = resolve_settings()
    feeds = load_feeds(settings.feeds.path)
    return [[feed.model_dump(mode="json") for feed in shard] for shard in shard_feeds(feeds, settings.feeds.shards)]


def poll_shard(shard: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Poll the feeds of one shard into the pending stream; the run's counters plus ``queued``."""
    from ingest.config import resolve_settings
    from ingest.models import FeedSource
    from ingest.pipeline import poll_feeds
    from ingest.runtime import build_poll_runtime

    feeds = [FeedSource.model_validate(row) for row in shard]
    with build_poll_runtime(resolve_settings()) as rt:  # polling needs Redis only
        report = poll_feeds(rt, feeds, datetime.now(UTC), due_only=True)
    return {**report.as_dict(), "feeds": len(feeds), "queued": report.counts["poll/queued"]}


def summarise_poll(results: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals over the shards: entries ``queued``, ``feeds`` polled, ``shards``, ``errors`` and summed ``counts``."""
    rows = list(results)
    return {
        "queued": sum(int(r.get("queued", 0)) for r in rows),
        "feeds": sum(int(r.get("feeds", 0)) for r in rows),
        "shards": len(rows),
        "errors": sum(len(r.get("errors", ())) for r in rows),
        "counts": _sum_counts(rows),
    }


def prepare_index() -> dict[str, Any]:
    """Install the index template, the first index and its aliases when missing (idempotent)."""
    from ingest.config import resolve_settings
    from ingest.stores.elasticsearch import (
        ElasticsearchSink,
        build_es_client,
        check_search_server,
        read_index_state,
    )

    settings = resolve_settings()
    with build_es_client(settings.elasticsearch) as client:
        check_search_server(client, ", ".join(settings.elasticsearch.hosts))
        ElasticsearchSink(client, settings.elasticsearch).ensure_ready()
        state = read_index_state(client, settings.elasticsearch.index_prefix)
    # The index new documents go to (after `ingest index migrate`, not v1 any more).
    index = ", ".join(state.name(v) for v in state.write)
    return {"index": index, "read_alias": state.read_alias, "write_alias": state.write_alias}


def worker_count(pending: int, batch_size: int, max_batches: int, slots: int, most: int) -> int:
    """How many batch workers ``pending`` entries deserve: enough that the run drains them all (each worker
    handles at most ``max_batches`` batches) and at least one per pool slot, but never more than one per batch
    nor more than ``most``. Every worker drains the one stream until it is empty, so the work spreads over the
    slots by itself; a worker planned beyond that would start (imports, models: seconds of CPU) to find nothing."""
    if pending <= 0:
        return 0
    batches = math.ceil(pending / batch_size)
    return min(most, batches, max(math.ceil(batches / max_batches), slots))


def plan_batches() -> list[int]:
    """Worker numbers to map the processing over: empty when nothing is pending."""
    from ingest.config import resolve_settings
    from ingest.stores.redis import RedisPendingQueue

    settings = resolve_settings()
    with _redis(settings) as client:
        pending = RedisPendingQueue.for_settings(client, settings).pending_count()
    # The tasks wait for the pool's slots: a backlog is drained by one run, in tasks of bounded length, instead of
    # a few tasks a run and the rest left for the next asset event.
    workers = worker_count(pending, settings.pipeline.batch_size, settings.pipeline.max_batches,
                           settings.airflow.pool_slots, settings.airflow.max_workers_per_run)
    return list(range(workers))


def consumer_name(worker: int) -> str:
    """The Redis consumer name of one mapped worker. Stable across runs (the process DAG runs one at a time),
    so the consumer group holds at most ``max_workers_per_run`` consumers instead of one per worker per run
    (``ingest_maintenance`` forgets those idle for a day)."""
    return f"airflow-worker-{worker}"


def process_batch_worker(worker: int) -> dict[str, Any]:
    """Drain the pending stream as consumer ``worker``; the run's counters plus ``indexed``."""
    from ingest.config import resolve_settings
    from ingest.index import SCHEMA_VERSION
    from ingest.pipeline import process_pending
    from ingest.runtime import build_runtime

    settings = resolve_settings()
    with build_runtime(settings, models=_models(settings)) as rt:
        # The one clock reading of the run, at the edge: it becomes the articles' fetched_at/indexed_at.
        report = process_pending(rt, consumer_name(worker), datetime.now(UTC), settings.pipeline.max_batches)
    return {
        **report.as_dict(),
        "worker": worker,
        "indexed": report.counts["index/indexed"],
        "dead_lettered": report.counts["process/dead_lettered"],
        "index": settings.elasticsearch.index_prefix,
        "schema_version": SCHEMA_VERSION,
    }


_MODELS: dict[str, NerModels] = {}


def _models(settings: Settings) -> NerModels:
    """The NER models of this process, loaded once whatever number of tasks it runs (all of them under
    ``dag.test()``; under LocalExecutor and Celery each task has a process of its own, which loads them)."""
    from ingest.enrich import NerModels

    key = settings.nlp.model_dump_json()
    if key not in _MODELS:
        _MODELS[key] = NerModels(settings.nlp)
    return _MODELS[key]


def summarise_process(results: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals over the workers: documents ``indexed``, ``dead_lettered``, ``workers`` and summed ``counts``; the
    read alias (``index``) and ``schema_version`` the documents were written with, and the earliest and latest
    ``indexed_at`` of the run's documents (ISO strings of one format, so they compare as text)."""
    rows = list(results)
    first = [r["indexed_at_first"] for r in rows if r.get("indexed_at_first")]
    last = [r["indexed_at_last"] for r in rows if r.get("indexed_at_last")]
    return {
        "indexed": sum(int(r.get("indexed", 0)) for r in rows),
        "dead_lettered": sum(int(r.get("dead_lettered", 0)) for r in rows),
        "workers": len(rows),
        "errors": sum(len(r.get("errors", ())) for r in rows),
        "counts": _sum_counts(rows),
        "index": next((r["index"] for r in rows if r.get("index")), None),
        "schema_version": next((r["schema_version"] for r in rows if r.get("schema_version")), None),
        "indexed_at_first": min(first, default=None),
        "indexed_at_last": max(last, default=None),
    }


def _sum_counts(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        for name, value in row.get("counts", {}).items():
            counts[name] = counts.get(name, 0) + int(value)
    return dict(sorted(counts.items()))


def maintain_queue(replay_reason: str | None = None, replay_all: bool = False) -> dict[str, Any]:
    """The pending stream's health after housekeeping: consumers that hold nothing and were idle for
    ``forget_consumers_after_hours`` removed from the group (``consumers_removed``); dead letters replayed when
    asked (all of them, or one ``reason``: ``replayed``); ``announce`` is true when there is work the process
    DAG should take (entries never read, entries a dead worker left, or replayed ones)."""
    from ingest.config import resolve_settings
    from ingest.stores.redis import RedisPendingQueue

    settings = resolve_settings()
    with _redis(settings) as client:
        queue = RedisPendingQueue.for_settings(client, settings)
        removed = queue.forget_idle_consumers(settings.airflow.forget_consumers_after_hours * 3600)
        replayed = queue.replay(reason=replay_reason or None) if replay_all or replay_reason else 0
        health = queue.health()
    return {
        **vars(health),
        "replayed": replayed,
        "consumers_removed": removed,
        "announce": bool(health.unread or health.stale or replayed),
    }


def check_feeds() -> dict[str, Any]:
    """Feeds counted by state, with the failing and dead ones listed (``ingest feeds status`` for the detail)."""
    from ingest.config import resolve_settings
    from ingest.feeds import load_feeds
    from ingest.status import feed_health_rows, summarise_feeds

    settings = resolve_settings()
    feeds = load_feeds(settings.feeds.path)
    with _redis(settings) as client:
        return summarise_feeds(feed_health_rows(client, settings, feeds))


def check_index(sample: int = 1000) -> dict[str, Any]:
    """A sampled ``ingest index verify``: ``sample`` ids Redis marks as indexed looked up in the index, and whether
    both sides still hold the same state id. ``problem`` says what an operator must do, or is None."""
    from ingest.config import resolve_settings
    from ingest.reconcile import first, verify_settings
    from ingest.status import state_problem

    settings = resolve_settings()
    with _redis(settings) as client:
        lost, _ = state_problem(client, settings)
    result = verify_settings(settings, sample=sample)
    problem = lost
    if problem is None and result.missing:
        problem = (f"{len(result.missing)} of {result.checked} sampled articles marked as indexed are missing from "
                   f"the index ({first(result.missing)}); run `ingest index verify --repair`, then `ingest poll`")
    return {"checked": result.checked, "missing": len(result.missing), "first_missing": result.missing[:5],
            "problem": problem}


@contextmanager
def _redis(settings: Settings) -> Iterator[redis.Redis]:
    """A Redis client for one task, closed when the task is done."""
    from ingest.stores.redis import connect_redis

    client = connect_redis(settings.redis)
    try:
        yield client
    finally:
        client.close()
