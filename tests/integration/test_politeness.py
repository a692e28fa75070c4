"""Waiting for a host's turn with real Redis, the limiter asynchronous (redis.asyncio) on the event loop."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from ingest.config import Settings
from ingest.embedded.fixture_server import FixtureServer
from ingest.errors import TransientError
from ingest.pipeline import poll_feeds
from ingest.politeness import host_turn
from ingest.runtime import build_poll_runtime
from ingest.stores.redis import RedisFeedStateStore, RedisHostLimiter, connect_redis
from tests.conftest import demo_feeds

HOST = "example.org"


class _LateGrants(RedisHostLimiter):
    """The real limiter, each answer to ``try_acquire`` arriving 0.3 s late (a slow Redis round trip)."""

    async def try_acquire(self, host: str) -> tuple[str | None, float]:
        await asyncio.sleep(0.3)
        return await super().try_acquire(host)


def test_a_grant_that_comes_after_the_deadline_is_given_back(redis_url: str, redis_cluster: bool, prefix: str
                                                             ) -> None:
    """The fetch's deadline runs out while its ``try_acquire`` is still waiting for Redis: the grant that then
    arrives is released, not left to hold the host until its lease expires a minute later."""
    late = _LateGrants(redis_url, prefix, min_interval=0.0, max_inflight=1, hold_seconds=60, cluster=redis_cluster)

    async def wait_for_turn() -> None:
        async with asyncio.timeout(0.1), host_turn(late, HOST, 10.0, f"http://{HOST}/"):
            pytest.fail("the turn came after the deadline")

    async def give_up() -> None:
        with pytest.raises(TimeoutError):
            await wait_for_turn()
        await asyncio.sleep(0.5)  # the grant arrives meanwhile, and is given back
        await late.aclose()

    async def ask_again() -> tuple[str | None, float]:
        limiter = RedisHostLimiter(redis_url, prefix, 0.0, 1, hold_seconds=60, cluster=redis_cluster)
        try:
            return await limiter.try_acquire(HOST)
        finally:
            await limiter.aclose()

    asyncio.run(give_up())
    token, wait = asyncio.run(ask_again())
    assert token is not None and wait == 0.0


def test_a_dead_workers_host_lease_delays_a_feed_but_never_fails_it(settings: Settings,
                                                                    fixture_server: FixtureServer) -> None:
    """A worker killed while it held a host's turn leaves its lease until it expires. Another feed of that host
    waits for it (within host_max_wait) and is polled normally: the wait is not the response's time, so a
    short response deadline does not turn it into a ``timeout`` failure."""
    settings.http.total_timeout = 1.0
    settings.http.host_max_wait_seconds = 15.0
    feeds = demo_feeds(fixture_server.base_url)[:1]
    host = urlsplit(feeds[0].url).hostname or ""
    dead = RedisHostLimiter(settings.redis.url, settings.redis.prefix, 0.0, 2, hold_seconds=3.0,
                            cluster=settings.redis.cluster)

    async def die_holding_the_host() -> None:
        token, _ = await dead.try_acquire(host)
        assert token is not None
        await dead.aclose()  # the process is gone; its lease stays until it expires

    asyncio.run(die_holding_the_host())
    started = time.monotonic()
    with build_poll_runtime(settings) as rt:
        report = poll_feeds(rt, feeds, datetime.now(UTC))
    assert time.monotonic() - started >= 2.0  # it did wait for the lease to lapse
    assert report.counts["poll/feeds_ok"] == 1 and report.counts["poll/timeout"] == 0
    state = RedisFeedStateStore(connect_redis(settings.redis), settings.redis.prefix).get(feeds[0].id)
    assert state.consecutive_failures == 0 and state.last_error is None


class _Counted(RedisHostLimiter):
    """The real limiter, counting the questions it is asked."""

    asked = 0

    async def try_acquire(self, host: str) -> tuple[str | None, float]:
        self.asked += 1
        return await super().try_acquire(host)


def test_fetches_waiting_for_one_host_ask_redis_one_at_a_time(redis_url: str, redis_cluster: bool, prefix: str
                                                             ) -> None:
    """Twelve fetches of one event loop want one host whose answers take 0.1 s: the requests still start one
    after the previous was answered, and only one of the waiting fetches polls Redis at a time (each polling
    every 10 ms, the twelve together would ask it hundreds of times)."""
    limiter = _Counted(redis_url, prefix, min_interval=0.0, max_inflight=4, hold_seconds=60, cluster=redis_cluster)
    starts: list[float] = []

    async def fetch() -> None:
        async with host_turn(limiter, HOST, 30.0, f"http://{HOST}/") as turn:
            starts.append(time.monotonic())
            await asyncio.sleep(0.1)  # the time to the response's headers
            await turn.answered()

    async def main() -> None:
        try:
            await asyncio.gather(*(fetch() for _ in range(12)))
        finally:
            await limiter.aclose()

    asyncio.run(main())
    assert len(starts) == 12
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.095, gaps  # one after the other: politeness unchanged
    # about one poll per 10 ms of the 1.2 s, plus one per fetch; twelve pollers would ask about 12 times that
    assert limiter.asked < 12 + 1.5 * sum(gaps) / 0.010, limiter.asked


def test_a_fetch_waiting_behind_others_for_too_long_is_left_for_a_later_run(redis_url: str, redis_cluster: bool,
                                                                           prefix: str) -> None:
    limiter = RedisHostLimiter(redis_url, prefix, min_interval=0.0, max_inflight=4, hold_seconds=60,
                               cluster=redis_cluster)
    outcomes: list[str] = []

    async def fetch(answer_after: float) -> None:
        try:
            async with host_turn(limiter, HOST, 0.3, f"http://{HOST}/") as turn:
                await asyncio.sleep(answer_after)
                await turn.answered()
                outcomes.append("fetched")
        except TransientError as e:
            outcomes.append(e.reason)

    async def main() -> None:
        try:
            await asyncio.gather(fetch(1.0), fetch(0.0), fetch(0.0))
        finally:
            await limiter.aclose()

    asyncio.run(main())
    assert sorted(outcomes) == ["fetched", "host_busy", "host_busy"], outcomes
