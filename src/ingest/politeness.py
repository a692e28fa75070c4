"""Waiting for a host's turn: the loop around :class:`ingest.stores.base.HostLimiter`, for coroutines.

The limiter is asynchronous (redis.asyncio): a slow Redis answer holds up only the fetch that asked, never the
event loop and the other fetches on it.

The fetch holding a :class:`Turn` awaits :meth:`Turn.answered` as soon as the response headers arrive (the
host's interval runs from then) and the turn is released when the body is read or the request failed.
A request that would wait longer than ``max_wait`` in all (a host that answered 429 with a long
Retry-After, or one shared by too many feeds for this run) raises ``TransientError('host_busy')``: the feed
or article is left for a later run, not failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ingest.errors import TransientError
from ingest.stores.base import HostLimiter


class Turn:
    """One granted request to a host (or no limiter at all)."""

    def __init__(self, limiter: HostLimiter | None = None, host: str = "", token: str = "") -> None:
        self.limiter, self.host, self.token = limiter, host, token
        self._answered = False

    async def answered(self) -> None:
        if self.limiter is not None and not self._answered:
            self._answered = True
            await self.limiter.answered(self.host, self.token)

    async def release(self) -> None:
        if self.limiter is not None:
            await self.limiter.release(self.host, self.token)


async def _try_acquire(limiter: HostLimiter, host: str) -> tuple[str | None, float]:
    """``limiter.try_acquire``, shielded: a grant that arrives after the caller was cancelled (its response
    deadline ran out meanwhile) is given back, not held until its lease expires."""
    abandoned = asyncio.Event()

    async def ask() -> tuple[str | None, float]:
        token, wait = await limiter.try_acquire(host)
        if token is not None and abandoned.is_set():
            await limiter.release(host, token)
        return token, wait

    asking = asyncio.ensure_future(ask())
    try:
        return await asyncio.shield(asking)
    except asyncio.CancelledError:
        abandoned.set()
        raise


def _busy(host: str, url: str, waited: float, max_wait: float, retry_after: float) -> TransientError:
    return TransientError("host_busy", url, f"{host} is not available for {waited:.0f} s (limit {max_wait:g} s); "
                          "left for a later run", retry_after=retry_after)


async def _ask(limiter: HostLimiter, host: str, waited: float, max_wait: float, url: str) -> tuple[str | None, float]:
    token, wait = await _try_acquire(limiter, host)
    if token is None and waited + wait > max_wait:
        raise _busy(host, url, waited + wait, max_wait, retry_after=wait)
    return token, wait


# Per event loop and host, the lock its coroutines take to ask the limiter, and how many hold or want it.
_askers: dict[tuple[int, str], tuple[asyncio.Lock, list[int]]] = {}


@asynccontextmanager
async def _one_asking(host: str, max_wait: float, url: str) -> AsyncIterator[float]:
    """Wait until no other coroutine of this event loop is asking for ``host``'s turn (they would all poll the
    limiter: a host's requests start one after another anyway); the seconds waited. Longer than ``max_wait``:
    ``TransientError('host_busy')``."""
    loop = asyncio.get_running_loop()
    key = (id(loop), host)
    lock, users = _askers.setdefault(key, (asyncio.Lock(), [0]))
    users[0] += 1
    started = loop.time()
    try:
        try:
            async with asyncio.timeout(max_wait):
                await lock.acquire()
        except TimeoutError:
            raise _busy(host, url, max_wait, max_wait, retry_after=max_wait) from None
        try:
            yield loop.time() - started
        finally:
            lock.release()
    finally:
        users[0] -= 1
        if not users[0]:
            del _askers[key]


@asynccontextmanager
async def host_turn(limiter: HostLimiter | None, host: str, max_wait: float, url: str) -> AsyncIterator[Turn]:
    """Hold one of ``host``'s request slots for the duration of the block (no limiter: no waiting); the wait
    does not block the other fetches on the event loop. Of this event loop's coroutines waiting for one host,
    one asks the limiter at a time, the others wait for it (they would otherwise poll Redis all together)."""
    if limiter is None:
        yield Turn()
        return
    async with _one_asking(host, max_wait, url) as waited:
        token, wait = await _ask(limiter, host, waited, max_wait, url)
        while token is None:
            await asyncio.sleep(wait)
            waited += wait
            token, wait = await _ask(limiter, host, waited, max_wait, url)
    turn = Turn(limiter, host, token)
    try:
        yield turn
    finally:
        await turn.release()
