"""robots.txt for article pages (RFC 9309, parsed by Protego), fetched once per origin and cached.

What the answer to ``/robots.txt`` means, as the RFC says:

- 2xx: the rules apply (matched on the product token of our user agent, else ``*``);
- 4xx (and a file over the size cap): no rules, everything may be fetched;
- 5xx, 429, timeouts, connection errors: the site is "unreachable", so nothing is fetched; the article is
  left pending (``TransientError('robots_unavailable')``) and tried again later, not dropped.
"""

from __future__ import annotations

import asyncio
import weakref
from functools import lru_cache
from urllib.parse import urlsplit

import httpx
from protego import Protego

from ingest.config import HttpSettings
from ingest.errors import PermanentError, TransientError
from ingest.http import fetch_url
from ingest.stores.base import HostLimiter, RobotsCache


def origin_of(url: str) -> str:
    """``scheme://host[:port]``: the scope one robots.txt governs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1].lower()}"


def agent_token(settings: HttpSettings) -> str:
    """The product token robots.txt groups are matched on (``ingest-news-bot`` in ``ingest-news-bot/0.1``)."""
    return settings.user_agent.split("/", 1)[0].strip()


def is_allowed(robots_txt: str, url: str, agent: str) -> bool:
    """Whether ``robots_txt`` lets ``agent`` fetch ``url`` (pure)."""
    return bool(_rules(robots_txt).can_fetch(url, agent)) if robots_txt.strip() else True


@lru_cache(maxsize=256)
def _rules(robots_txt: str) -> Protego:
    # A batch checks many pages of few sites: each site's file is parsed once per worker, not once per page.
    return Protego.parse(robots_txt)


async def check_robots(
    client: httpx.AsyncClient, url: str, settings: HttpSettings, cache: RobotsCache,
    limiter: HostLimiter | None = None,
) -> None:
    """Raise ``PermanentError('robots_disallowed')`` when the site's robots.txt disallows ``url`` for us. The
    cache (Redis) is read and written in a worker thread, off the event loop."""
    origin = origin_of(url)
    async with _origin_lock(origin):  # a batch's pages of one new site: one of them fetches robots.txt
        body = await asyncio.to_thread(cache.get, origin)
        if body is None:
            body = await _fetch_robots(client, origin, settings, limiter)
            await asyncio.to_thread(cache.put, origin, body)
    agent = agent_token(settings)
    if not is_allowed(body, url, agent):
        raise PermanentError("robots_disallowed", url, f"{origin}/robots.txt disallows it for {agent}")


_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()


def _origin_lock(origin: str) -> asyncio.Lock:
    """The lock of ``origin``'s robots.txt on the running event loop."""
    return _LOCKS.setdefault(asyncio.get_running_loop(), {}).setdefault(origin, asyncio.Lock())


async def _fetch_robots(
    client: httpx.AsyncClient, origin: str, settings: HttpSettings, limiter: HostLimiter | None
) -> str:
    robots_url = f"{origin}/robots.txt"
    try:
        page = await fetch_url(client, robots_url, settings, accept="text/plain", limiter=limiter)
    except PermanentError as e:
        if e.reason in ("http_4xx", "too_large"):
            return ""
        raise
    except TransientError as e:
        raise TransientError("robots_unavailable", robots_url, f"{e.reason}: {e.detail}", e.retry_after) from e
    return page.body.decode(page.encoding or "utf-8", errors="replace")
