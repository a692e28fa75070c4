"""The clients and stores one worker uses: built from settings in one place (:func:`build_runtime`), closed in
one place (:meth:`Runtime.close`, or ``with build_runtime(settings) as rt``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType

from ingest.config import Settings
from ingest.enrich import NerModels
from ingest.fetch import PageFetcher
from ingest.reconcile import check_state
from ingest.report import Report
from ingest.stores.base import (
    ArticleSink,
    DedupStore,
    FeedStateStore,
    HostLimiter,
    PendingQueue,
    StatsSink,
    StoryStore,
    WorkerLeases,
)
from ingest.stores.elasticsearch import ElasticsearchSink, build_es_client, check_search_server
from ingest.stores.redis import (
    RedisDedupStore,
    RedisEpoch,
    RedisFeedStateStore,
    RedisHostLimiter,
    RedisPendingQueue,
    RedisRobotsCache,
    RedisStats,
    RedisStoryStore,
    RedisWorkers,
    connect_redis,
)


@dataclass
class Runtime:
    """The ready clients one worker uses, built once by :func:`build_runtime`."""

    settings: Settings
    queue: PendingQueue
    dedup: DedupStore
    stories: StoryStore
    sink: ArticleSink
    fetcher: PageFetcher
    models: NerModels
    feed_state: FeedStateStore | None = None
    limiter: HostLimiter | None = None
    stats: StatsSink | None = None  # when counters are kept for operators
    # set when the worker is asked to stop (ingest.cli sets it on SIGTERM/SIGINT): no new entry is started
    stop: threading.Event = field(default_factory=threading.Event)
    workers: WorkerLeases | None = None
    # what close() closes, in order (the page fetcher, the search and Redis clients)
    closers: list[Callable[[], object]] = field(default_factory=list, repr=False)

    def record(self, report: Report) -> None:
        if self.stats is not None:
            # The clock when the counts are written: what the pipeline view's hourly throughput shows.
            self.stats.add(report.counts, report.feed_counts, at=datetime.now(UTC), hour_only=report.hourly_counts)

    @contextmanager
    def leased(self, worker: str) -> Iterator[None]:
        """Keep ``worker``'s lease alive (a beat every third of it, from a thread) for the block; on leaving,
        the lease ends at once. Without a lease store: nothing."""
        if self.workers is None:
            yield
            return
        workers, every = self.workers, self.settings.pipeline.lease_seconds / 3
        done = threading.Event()

        def beat() -> None:
            while not done.wait(every):
                workers.beat(worker)

        workers.beat(worker)
        beating = threading.Thread(target=beat, name=f"lease-{worker}", daemon=True)
        beating.start()
        try:
            yield
        finally:
            done.set()
            beating.join()
            workers.gone(worker)

    def close(self) -> None:
        """Close every client the runtime opened (idempotent)."""
        closers, self.closers = self.closers, []
        for close in closers:
            close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def build_runtime(settings: Settings, models: NerModels | None = None, search: bool = True) -> Runtime:
    """Connect to Redis and the search server (failing fast with a clear error) and wire the stores.

    ``search=False`` skips the search-server check, for workers that only poll feeds.
    """
    redis_client = connect_redis(settings.redis)
    es = build_es_client(settings.elasticsearch)
    if search:
        check_search_server(es, ", ".join(settings.elasticsearch.hosts))
    prefix = settings.redis.prefix
    workers = RedisWorkers(redis_client, prefix, settings.pipeline.lease_seconds)
    limiter = RedisHostLimiter(
        settings.redis.url, prefix, settings.http.host_min_interval_seconds, settings.http.host_max_concurrent,
        hold_seconds=settings.http.total_timeout + settings.http.connect_timeout, cluster=settings.redis.cluster,
    )
    sink = ElasticsearchSink(es, settings.elasticsearch)
    if search:  # Redis and the index must remember the same state (ingest.reconcile); a poll-only worker skips it
        try:
            check_state(RedisEpoch(redis_client, prefix), sink, prefix, settings.redis.url)
        except BaseException:
            es.close()
            redis_client.close()
            raise
    robots = RedisRobotsCache(redis_client, prefix, settings.http.robots_cache_hours * 3600)
    stop = threading.Event()
    fetcher = PageFetcher(settings.http, limiter, robots, stop)
    return Runtime(
        settings=settings,
        queue=RedisPendingQueue.for_settings(redis_client, settings),
        dedup=RedisDedupStore(redis_client, prefix, settings.dedup, workers),
        stories=RedisStoryStore(redis_client, prefix, settings.dedup),
        feed_state=RedisFeedStateStore(redis_client, prefix),
        sink=sink,
        fetcher=fetcher,
        models=models or NerModels(settings.nlp),
        stats=RedisStats(redis_client, prefix),
        limiter=limiter,
        stop=stop,
        workers=workers,
        closers=[fetcher.close, es.close, redis_client.close],
    )


def build_poll_runtime(settings: Settings) -> Runtime:
    """A runtime for polling only: Redis, no search server needed."""
    return build_runtime(settings, search=False)
