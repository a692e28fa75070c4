"""Waiting for a host's turn: the loops around :class:`ingest.stores.base.HostLimiter`, sync and async.

A request that would wait longer than ``max_wait`` in all (a host that answered 429 with a long Retry-After,
or one shared by too many feeds for this run) raises ``TransientError('host_busy')``: the feed or article is
left for a later run, not failed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from ingest.errors import TransientError
from ingest.stores.base import HostLimiter


def _ask(limiter: HostLimiter, host: str, waited: float, max_wait: float, url: str) -> tuple[str | None, float]:
    token, wait = limiter.try_acquire(host)
    if token is None and waited + wait > max_wait:
        raise TransientError(
            "host_busy", url, f"{host} is not available for {waited + wait:.0f} s (limit {max_wait:g} s); "
            "left for a later run", retry_after=wait,
        )
    return token, wait


@contextmanager
def host_turn(limiter: HostLimiter | None, host: str, max_wait: float, url: str) -> Iterator[None]:
    """Hold one of ``host``'s request slots for the duration of the block (no limiter: no waiting)."""
    if limiter is None:
        yield
        return
    waited = 0.0
    token, wait = _ask(limiter, host, waited, max_wait, url)
    while token is None:
        time.sleep(wait)
        waited += wait
        token, wait = _ask(limiter, host, waited, max_wait, url)
    try:
        yield
    finally:
        limiter.release(host, token)


@asynccontextmanager
async def host_turn_async(limiter: HostLimiter | None, host: str, max_wait: float, url: str) -> AsyncIterator[None]:
    """:func:`host_turn` for coroutines: the wait does not block the other feeds of the shard."""
    if limiter is None:
        yield
        return
    waited = 0.0
    token, wait = _ask(limiter, host, waited, max_wait, url)
    while token is None:
        await asyncio.sleep(wait)
        waited += wait
        token, wait = _ask(limiter, host, waited, max_wait, url)
    try:
        yield
    finally:
        limiter.release(host, token)
