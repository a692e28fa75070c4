"""Waiting for a host's turn with real Redis, the limiter asynchronous (redis.asyncio) on the event loop."""

from __future__ import annotations

import asyncio

import pytest

from ingest.politeness import host_turn
from ingest.stores.redis import RedisHostLimiter

HOST = "example.org"


class _LateGrants(RedisHostLimiter):
    """The real limiter, each answer to ``try_acquire`` arriving 0.3 s late (a slow Redis round trip)."""

    async def try_acquire(self, host: str) -> tuple[str | None, float]:
        await asyncio.sleep(0.3)
        return await super().try_acquire(host)


def test_a_grant_that_comes_after_the_deadline_is_given_back(redis_url: str, prefix: str) -> None:
    """The fetch's deadline runs out while its ``try_acquire`` is still waiting for Redis: the grant that then
    arrives is released, not left to hold the host until its lease expires a minute later."""
    late = _LateGrants(redis_url, prefix, min_interval=0.0, max_inflight=1, hold_seconds=60)

    async def wait_for_turn() -> None:
        async with asyncio.timeout(0.1), host_turn(late, HOST, 10.0, f"http://{HOST}/"):
            pytest.fail("the turn came after the deadline")

    async def give_up() -> None:
        with pytest.raises(TimeoutError):
            await wait_for_turn()
        await asyncio.sleep(0.5)  # the grant arrives meanwhile, and is given back
        await late.aclose()

    async def ask_again() -> tuple[str | None, float]:
        limiter = RedisHostLimiter(redis_url, prefix, 0.0, 1, hold_seconds=60)
        try:
            return await limiter.try_acquire(HOST)
        finally:
            await limiter.aclose()

    asyncio.run(give_up())
    token, wait = asyncio.run(ask_again())
    assert token is not None and wait == 0.0
