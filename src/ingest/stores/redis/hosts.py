"""Per-host politeness shared by every worker (the host_*.lua scripts) and the robots.txt cache."""

from __future__ import annotations

import asyncio
import uuid
import weakref
from dataclasses import dataclass
from typing import Any, cast

import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.commands.core import AsyncScript

from ingest.stores.redis.keys import Keys, load_script


@dataclass
class _LoopClient:
    """The limiter's connection and scripts on one event loop."""

    client: aredis.Redis
    acquire: AsyncScript
    answered: AsyncScript
    penalize: AsyncScript


class RedisHostLimiter:
    """Per-host politeness for every worker and DAG run: request starts at least ``min_interval`` seconds
    after the previous request to the host was answered, and at most ``max_inflight`` requests in flight.

    Asynchronous (redis.asyncio): its callers wait for their turn inside an event loop, which a blocking call
    would stall (and handing each call to a thread costs twice the call). A redis.asyncio connection belongs
    to the event loop that opened it, so the limiter opens one per loop that uses it; :meth:`aclose` closes the
    running loop's before that loop ends."""

    def __init__(
        self, url: str, prefix: str, min_interval: float, max_inflight: int, hold_seconds: float = 60.0,
        cluster: bool = False,
    ) -> None:
        self.url, self.cluster = url, cluster
        self.keys = Keys(prefix)
        self.interval_ms = int(min_interval * 1000)
        self.hold_ms = int(hold_seconds * 1000)
        self.max_inflight = max_inflight
        # How soon to ask again while another request of the host waits for its answer.
        self.poll_ms = max(10, min(100, self.interval_ms // 4 or 10))
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient] = (
            weakref.WeakKeyDictionary())

    def _on_loop(self) -> _LoopClient:
        loop = asyncio.get_running_loop()
        found = self._by_loop.get(loop)
        if found is None:
            # (a host's three keys share its hash tag: on a Redis Cluster each script runs on the host's master)
            client = cast(aredis.Redis, AsyncRedisCluster.from_url(
                self.url, decode_responses=True, socket_connect_timeout=3, socket_timeout=30)) if self.cluster else \
                aredis.Redis.from_url(self.url, decode_responses=True, socket_connect_timeout=3, socket_timeout=30)
            found = _LoopClient(client, *(client.register_script(load_script(name)) for name in (
                "host_acquire.lua", "host_answered.lua", "host_penalize.lua")))
            self._by_loop[loop] = found
        return found

    def _host_keys(self, host: str) -> list[str]:
        return [self.keys.host_next(host), self.keys.host_holder(host), self.keys.host_inflight(host)]

    async def try_acquire(self, host: str) -> tuple[str | None, float]:
        token = uuid.uuid4().hex
        wait_ms: Any = await self._on_loop().acquire(keys=self._host_keys(host),
                                                     args=[self.max_inflight, self.hold_ms, token, self.poll_ms])
        return (token, 0.0) if int(wait_ms) == 0 else (None, int(wait_ms) / 1000)

    async def answered(self, host: str, token: str) -> None:
        await self._on_loop().answered(keys=self._host_keys(host)[:2], args=[token, self.interval_ms])

    async def release(self, host: str, token: str) -> None:
        # One round trip: the lease leaves the in-flight set, and a request that failed before its answer frees
        # the host too.
        await self._on_loop().answered(keys=self._host_keys(host), args=[token, self.interval_ms])

    async def penalize(self, host: str, seconds: float) -> None:
        await self._on_loop().penalize(keys=[self.keys.host_next(host)], args=[int(seconds * 1000)])

    async def aclose(self) -> None:
        """Close the running event loop's connection, if it opened one."""
        found = self._by_loop.pop(asyncio.get_running_loop(), None)
        if found is not None:
            await found.client.aclose()


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
