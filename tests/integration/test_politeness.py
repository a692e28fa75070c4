"""Waiting for a host's turn with real Redis, the limiter's calls made in worker threads off the event loop."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from ingest.politeness import host_turn
from ingest.stores.redis import RedisHostLimiter

HOST = "example.org"


class _LateGrants(RedisHostLimiter):
    """The real limiter, each answer to ``try_acquire`` arriving 0.3 s late (a slow Redis round trip)."""

    def try_acquire(self, host: str) -> tuple[str | None, float]:
        time.sleep(0.3)
        return super().try_acquire(host)


def test_a_grant_that_comes_after_the_deadline_is_given_back(redis_client: redis.Redis, prefix: str) -> None:
    """The fetch's deadline runs out while its ``try_acquire`` is still in its thread: the grant that then
    arrives is released, not left to hold the host until its lease expires a minute later."""
    late = _LateGrants(redis_client, prefix, min_interval=0.0, max_inflight=1, hold_seconds=60)

    async def wait_for_turn() -> None:
        async with asyncio.timeout(0.1), host_turn(late, HOST, 10.0, f"http://{HOST}/"):
            pytest.fail("the turn came after the deadline")

    async def give_up() -> None:
        with pytest.raises(TimeoutError):
            await wait_for_turn()
        await asyncio.sleep(0.5)  # the grant arrives meanwhile (and asyncio.run waits for its release)

    asyncio.run(give_up())
    token, wait = RedisHostLimiter(redis_client, prefix, 0.0, 1, hold_seconds=60).try_acquire(HOST)
    assert token is not None and wait == 0.0
