"""The pipeline's state for operators, in one place: what ``ingest status`` prints and the Airflow pipeline view
shows. Reads Redis (the stream, the counters, the feed states) and the feed registry; writes nothing but the
consumer group, created when missing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ingest.config import Settings
from ingest.dates import iso_utc
from ingest.feeds import load_feeds
from ingest.health import feed_rows, summarise_feeds
from ingest.models import FeedSource

if TYPE_CHECKING:
    import redis

# The counters the hourly throughput shows, in the order of the flow.
THROUGHPUT = ("poll/queued", "index/indexed", "dedup/near_duplicate", "dedup/same_story", "process/dead_lettered")


def feed_health_rows(client: redis.Redis, settings: Settings, feeds: Sequence[FeedSource]) -> list[dict[str, Any]]:
    """:func:`~ingest.health.feed_rows` of ``feeds`` from the states and per-feed counters kept in Redis."""
    from ingest.stores.redis import RedisFeedStateStore, RedisStats

    states = RedisFeedStateStore(client, settings.redis.prefix)
    return feed_rows(feeds, {f.id: states.get(f.id) for f in feeds},
                     RedisStats(client, settings.redis.prefix).read_feeds())


def pipeline_status(settings: Settings, now: datetime, hours: int = 24) -> dict[str, Any]:
    """``queue`` (:class:`~ingest.stores.redis.QueueHealth`), ``counts`` (totals of all runs), ``hourly`` (the
    THROUGHPUT counters of the last ``hours`` hours, oldest first), ``last_hour`` and ``last_day`` (their sums
    over the current hour and the ``hours``), ``feeds`` (:func:`~ingest.health.summarise_feeds`), plus
    ``pending`` and ``dead_letters`` at the top, as ``ingest status --json`` always gave them."""
    from ingest.stores.redis import RedisPendingQueue, RedisStats, build_redis_client

    client = build_redis_client(settings.redis.url)
    try:
        health = RedisPendingQueue.for_settings(client, settings).health()
        stats = RedisStats(client, settings.redis.prefix)
        hourly = stats.hourly(now, hours)
        feeds = load_feeds(settings.feeds.path) if settings.feeds.path.exists() else []
        rows = feed_health_rows(client, settings, feeds)
        counts = stats.read()
    finally:
        client.close()
    series: list[dict[str, Any]] = [
        {"hour": iso_utc(start), "counts": {k: c.get(k, 0) for k in THROUGHPUT}} for start, c in hourly
    ]
    return {
        "at": iso_utc(now),
        "pending": health.pending,
        "dead_letters": health.dead_letters,
        "queue": vars(health),
        "counts": counts,
        "hourly": series,
        "last_hour": series[-1]["counts"] if series else {},
        "last_day": {k: sum(h["counts"][k] for h in series) for k in THROUGHPUT},
        "feeds": summarise_feeds(rows),
    }
