"""Per-host politeness shared by every worker (the host_*.lua scripts) and the robots.txt cache."""

from __future__ import annotations

import uuid
from typing import Any

import redis

from ingest.stores.redis.keys import Keys, load_script


class RedisHostLimiter:
    """Per-host politeness for every worker and DAG run: request starts at least ``min_interval`` seconds
    after the previous request to the host was answered, and at most ``max_inflight`` requests in flight."""

    def __init__(
        self, client: redis.Redis, prefix: str, min_interval: float, max_inflight: int, hold_seconds: float = 60.0,
    ) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self.interval_ms = int(min_interval * 1000)
        self.hold_ms = int(hold_seconds * 1000)
        self.max_inflight = max_inflight
        # How soon to ask again while another request of the host waits for its answer.
        self.poll_ms = max(10, min(100, self.interval_ms // 4 or 10))
        self._acquire = client.register_script(load_script("host_acquire.lua"))
        self._answered = client.register_script(load_script("host_answered.lua"))
        self._penalize = client.register_script(load_script("host_penalize.lua"))

    def _host_keys(self, host: str) -> list[str]:
        return [self.keys.host_next(host), self.keys.host_holder(host), self.keys.host_inflight(host)]

    def try_acquire(self, host: str) -> tuple[str | None, float]:
        token = uuid.uuid4().hex
        wait_ms: Any = self._acquire(keys=self._host_keys(host),
                                     args=[self.max_inflight, self.hold_ms, token, self.poll_ms])
        return (token, 0.0) if int(wait_ms) == 0 else (None, int(wait_ms) / 1000)

    def answered(self, host: str, token: str) -> None:
        self._answered(keys=self._host_keys(host)[:2], args=[token, self.interval_ms])

    def release(self, host: str, token: str) -> None:
        # One round trip: the lease leaves the in-flight set, and a request that failed before its answer frees
        # the host too.
        self._answered(keys=self._host_keys(host), args=[token, self.interval_ms])

    def penalize(self, host: str, seconds: float) -> None:
        self._penalize(keys=[self.keys.host_next(host)], args=[int(seconds * 1000)])


class RedisRobotsCache:
    """robots.txt bodies per origin, kept for a while (an empty string: the site has none)."""

    def __init__(self, client: redis.Redis, prefix: str, ttl_seconds: float) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self.ttl = max(1, int(ttl_seconds))

    def get(self, origin: str) -> str | None:
        value: Any = self.client.get(self.keys.robots(origin))
        return None if value is None else str(value)

    def put(self, origin: str, body: str) -> None:
        self.client.set(self.keys.robots(origin), body, ex=self.ttl)
