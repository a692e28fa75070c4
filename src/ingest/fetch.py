"""Fetch stage: an article URL in, a ``Page`` of HTML out, or an error with a reason.

The HTTP mechanics (timeouts, size cap, redirects, address guard, host politeness) are ``ingest.http``'s; this
module adds what an article page must be: allowed by robots.txt, and HTML rather than a PDF or an image.

:func:`fetch_article` is a coroutine, like every fetch. A worker (``ingest.process.process_batch``) fetches a
batch's pages at once through a :class:`PageFetcher`: one event loop and one client of its own, kept for the
worker's life, so the connections are reused from one batch to the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence

import httpx

from ingest.config import HttpSettings
from ingest.errors import PermanentError, StageError, StopRequestedError
from ingest.http import build_http_client, fetch_url
from ingest.models import Page
from ingest.robots import check_robots
from ingest.stores.base import HostLimiter, RobotsCache

# How often a fetch in progress looks whether the worker was asked to stop.
STOP_POLL_SECONDS = 0.1
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Types servers use when they do not know: the bytes decide.
_UNKNOWN_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream", "text/plain"})
_SIGNATURES = (
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive (an office document?)"),
    (b"\x1f\x8b", "gzip-compressed bytes"),
    (b"ID3", "an MP3 file"),
    (b"OggS", "an Ogg file"),
)
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<!--", b"<meta", b"<title", b"<div", b"<p")


async def fetch_article(
    client: httpx.AsyncClient,
    url: str,
    settings: HttpSettings,
    limiter: HostLimiter | None = None,
    robots: RobotsCache | None = None,
) -> Page:
    """The HTML page at ``url``. ``PermanentError`` reasons: ``robots_disallowed``, ``not_html``, and the HTTP
    ones (``http_4xx``, ``too_large``, …); ``TransientError`` for what may work later."""
    if robots is not None and settings.respect_robots:
        await check_robots(client, url, settings, robots, limiter)
    page = await fetch_url(client, url, settings, accept="text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
                           limiter=limiter)
    check_html(page)
    return page


class PageFetcher:
    """Fetches article pages from synchronous code: an event loop of its own and one client opened for it, both
    kept until :meth:`close`. Use it from one thread at a time."""

    def __init__(
        self, settings: HttpSettings, limiter: HostLimiter | None = None, robots: RobotsCache | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings, self.limiter, self.robots = settings, limiter, robots
        self.stop = stop
        self.loop = asyncio.new_event_loop()
        self.client = build_http_client(settings)

    def fetch_many(self, urls: Sequence[str], concurrency: int) -> list[Page | StageError | StopRequestedError]:
        """Each URL's page or the error that ended its fetch, in order; at most ``concurrency`` fetches at once, each
        waiting for its host's turn as :meth:`fetch` does. Once ``stop`` is set, what has not been fetched yet
        ends as ``StopRequestedError``."""
        return self.loop.run_until_complete(self._fetch_many(urls, concurrency)) if urls else []

    async def _fetch_many(self, urls: Sequence[str], concurrency: int) -> list[Page | StageError | StopRequestedError]:
        slots = asyncio.Semaphore(concurrency)

        async def one(url: str) -> Page | StageError | StopRequestedError:
            async with slots:
                if self.stop is not None and self.stop.is_set():
                    return StopRequestedError(url)
                try:
                    return await self._fetch(url)
                except (StageError, StopRequestedError) as e:
                    return e

        return list(await asyncio.gather(*(one(url) for url in urls)))

    async def _fetch(self, url: str) -> Page:
        """:func:`fetch_article` of ``url``; ``StopRequestedError`` when ``stop`` is set meanwhile (a fetch can wait a
        minute for its host's turn and as long for its answer)."""
        fetching = asyncio.ensure_future(fetch_article(self.client, url, self.settings, self.limiter, self.robots))
        if self.stop is None:
            return await fetching
        watching = asyncio.ensure_future(self._stopped())
        await asyncio.wait({fetching, watching}, return_when=asyncio.FIRST_COMPLETED)
        if not fetching.done():
            fetching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await fetching
            raise StopRequestedError(url)
        watching.cancel()
        return fetching.result()

    async def _stopped(self) -> None:
        while self.stop is not None and not self.stop.is_set():
            await asyncio.sleep(STOP_POLL_SECONDS)

    def close(self) -> None:
        """Close the client on its loop, then the loop (idempotent)."""
        if self.loop.is_closed():
            return
        try:
            self.loop.run_until_complete(self.client.aclose())
            if self.limiter is not None:
                self.loop.run_until_complete(self.limiter.aclose())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()


def check_html(page: Page) -> None:
    """``PermanentError('not_html')`` unless the page is HTML by its declared type, or by its bytes when the
    server does not say (or says ``application/octet-stream``)."""
    declared = page.content_type
    if declared in HTML_TYPES:
        return
    what = sniff(page.body)
    if declared in _UNKNOWN_TYPES and what == "HTML":
        return
    shown = declared or "no content type"
    detail = f"{shown}, {what}" if what != "HTML" else shown
    raise PermanentError("not_html", page.url, f"{detail}: only HTML pages are extracted")


def sniff(body: bytes) -> str:
    """What the first bytes look like: ``"HTML"``, a known binary format, or ``"not HTML"``."""
    head = body[:512].lstrip()
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    lowered = head.lstrip(b"\xef\xbb\xbf").lstrip().lower()
    if lowered.startswith(_HTML_STARTS) or b"<html" in body[:2048].lower():
        return "HTML"
    return "not HTML"
