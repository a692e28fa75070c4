"""Per-feed poll state and the counters operators read."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from ingest.models import FeedState
from ingest.stores.redis.keys import Keys

# The hourly counters (throughput in the pipeline view) are kept a week.
HOURLY_DAYS = 8


class RedisFeedStateStore:
    """Per-feed poll state (validators, body hash, schedule and health) as one JSON value per feed."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.keys = Keys(prefix)

    def get(self, feed_id: str) -> FeedState:
        raw: Any = self.client.get(self.keys.feed(feed_id))
        return FeedState.model_validate_json(raw) if raw else FeedState()

    def put(self, feed_id: str, state: FeedState) -> None:
        self.client.set(self.keys.feed(feed_id), state.model_dump_json(exclude_defaults=True))

    def clear_validators(self) -> int:
        """Forget every feed's ETag, Last-Modified and body hash, so that the next poll reads each feed whole and
        queues the entries not marked; how many feeds."""
        cleared = 0
        for key in self.client.scan_iter(f"{self.keys.prefix}:feed:*", count=1000):
            raw: Any = self.client.get(key)
            if not raw:
                continue
            state = FeedState.model_validate_json(raw)
            fresh = state.model_copy(update={"etag": None, "last_modified": None, "body_hash": None})
            self.client.set(key, fresh.model_dump_json(exclude_defaults=True))
            cleared += 1
        return cleared


class RedisEpoch:
    """The identity of the pipeline's Redis state (a random id set once), compared with the copy the index keeps
    (``ingest.reconcile``)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.key = Keys(prefix).epoch

    def get(self) -> str | None:
        value: Any = self.client.get(self.key)
        return str(value) if value else None

    def set(self, value: str) -> None:
        self.client.set(self.key, value)

    def create(self, value: str) -> str:
        """Set ``value`` unless an id is there already (another worker starting at once); the id kept."""
        self.client.set(self.key, value, nx=True)
        return self.get() or value


class RedisStats:
    """Counters operators read (``ingest status``, the Airflow plugin): ``stage/reason`` → count."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.keys = Keys(prefix)

    def add(self, counts: Mapping[str, int], feed_counts: Mapping[str, int] | None = None,
            at: datetime | None = None, hour_only: Mapping[str, int] | None = None) -> None:
        """Add to the running totals, and to the counters of the hour ``at`` falls in (kept HOURLY_DAYS);
        ``hour_only`` counters (the freshness buckets) go to the hour's counters alone."""
        pipe = self.client.pipeline(transaction=False)  # counters: on a Redis Cluster their keys lie on any master
        hour = self.keys.stats_hour(at) if at is not None else None
        for name, value in counts.items():
            if value:
                pipe.hincrby(self.keys.stats, name, value)
                if hour:
                    pipe.hincrby(hour, name, value)
        for name, value in (hour_only or {}).items():
            if value and hour:
                pipe.hincrby(hour, name, value)
        if hour:
            pipe.expire(hour, HOURLY_DAYS * 86400)
        for name, value in (feed_counts or {}).items():
            if value:
                pipe.hincrby(self.keys.feed_stats, name, value)
        pipe.execute()

    def hourly(self, now: datetime, hours: int = 24) -> list[tuple[datetime, dict[str, int]]]:
        """The counters of each of the last ``hours`` hours, the current one included, oldest first."""
        current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        starts = [current - timedelta(hours=n) for n in range(hours - 1, -1, -1)]
        pipe = self.client.pipeline(transaction=False)
        for start in starts:
            pipe.hgetall(self.keys.stats_hour(start))
        return [(start, {str(k): int(v) for k, v in raw.items()})
                for start, raw in zip(starts, pipe.execute(), strict=True)]

    def read(self) -> dict[str, int]:
        raw: Any = self.client.hgetall(self.keys.stats)
        return {str(k): int(v) for k, v in raw.items()}

    def read_feeds(self) -> dict[str, int]:
        raw: Any = self.client.hgetall(self.keys.feed_stats)
        return {str(k): int(v) for k, v in raw.items()}
