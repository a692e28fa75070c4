"""The one HTTP client of the pipeline: timeouts (per read and per response), a size cap, a user agent with
a contact URL, redirects followed by hand so every hop is checked and waits for its host's turn, and a guard
that checks the address every connection is really opened to (after DNS, so a name that resolves to a
private address is refused however it was reached).

One mode, async: feeds (many at once inside a shard), article pages and robots.txt all go through
:func:`fetch_url` on an ``httpx.AsyncClient`` from :func:`build_http_client`. The host limiter is asynchronous
too (redis.asyncio), so waiting on Redis never stalls the other fetches.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ipaddress
import logging
import re
import socket
import typing
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from ingest.config import HttpSettings
from ingest.errors import PermanentError, TransientError
from ingest.models import Page
from ingest.politeness import Turn, host_turn
from ingest.stores.base import HostLimiter

logger = logging.getLogger(__name__)

_REDIRECTS = {301, 302, 303, 307, 308}
HOST_PAUSE_MAX_SECONDS = 600.0
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
_SocketOptions = Iterable[tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]]


def user_agent(settings: HttpSettings) -> str:
    """``name/version (+contact URL)``: what a site owner sees in their logs and robots.txt matches on."""
    return f"{settings.user_agent} (+{settings.contact_url})" if settings.contact_url else settings.user_agent


def build_http_client(settings: HttpSettings) -> httpx.AsyncClient:
    """A ready async client for :func:`fetch_url`; open it (``async with``) and use it inside one event loop."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(network_backend=_GuardedBackend(settings.allow_private))
    return httpx.AsyncClient(transport=transport, trust_env=False, **_client_options(settings))


def _accept_encoding() -> str:
    # Ask only for the codings httpx can decode here (brotli and zstandard are optional packages).
    codings = ["gzip", "deflate"]
    for coding, module in (("br", "brotli"), ("zstd", "zstandard")):
        if importlib.util.find_spec(module) is not None:
            codings.append(coding)
    return ", ".join(codings)


ACCEPT_ENCODING = _accept_encoding()


def _client_options(settings: HttpSettings) -> dict[str, typing.Any]:
    return {
        "timeout": httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
        "follow_redirects": False,
        "headers": {"User-Agent": user_agent(settings), "Accept-Encoding": ACCEPT_ENCODING},
    }


def check_url(url: str) -> str:
    """The host of an http(s) URL; ``PermanentError('bad_url')`` for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PermanentError("bad_url", url, "only http and https URLs with a host are fetched")
    return parts.hostname


def check_ip(host: str, address: str, allow_private: bool) -> None:
    """``PermanentError('private_address')`` unless ``address`` is public (or private ones are allowed)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if not ip.is_global and not allow_private:
        raise PermanentError(
            "private_address", host, f"{host} is at {ip}, not a public address; "
            "set INGEST_HTTP__ALLOW_PRIVATE=true to allow it"
        )


def _checked_addresses(host: str, infos: list[typing.Any], allow_private: bool) -> list[str]:
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:  # one private answer refuses the name: DNS rebinding mixes them
        check_ip(host, address, allow_private)
    return addresses


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, checks every address, and connects to a checked one (TLS still uses the
    name), so the address used is the address checked."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
        socket_options: _SocketOptions | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as e:
            raise TransientError("dns_error", host, str(e)) from e
        error: Exception | None = None
        for address in _checked_addresses(host, infos, self.allow_private):
            try:
                return await self._backend.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as e:
                error = e
        raise error or httpcore.ConnectError(f"no address for {host}")

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: _SocketOptions | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise PermanentError("bad_url", path, "unix sockets are not fetched")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


async def fetch_url(
    client: httpx.AsyncClient,
    url: str,
    settings: HttpSettings,
    accept: str = "*/*",
    headers: dict[str, str] | None = None,
    limiter: HostLimiter | None = None,
) -> Page:
    """GET a URL within the size cap and the response deadline (enforced by the event loop), following
    redirects, each hop waiting for its host's turn when a ``limiter`` is given; errors carry a reason. A 304
    answer to conditional ``headers`` comes back as a ``Page`` with status 304 and no body.

    The deadline (``total_timeout``) counts the time requests are in flight, not the time spent waiting for a
    host's turn: that wait has its own bound (``host_max_wait_seconds``, then ``host_busy``), so a host held by
    another worker, or by a dead one's lease until it expires, never makes a feed fail as ``timeout``."""
    current = url
    request_headers = {"Accept": accept, **(headers or {})}
    loop = asyncio.get_running_loop()
    remaining = settings.total_timeout
    try:
        with _transport_errors(url):
            async with asyncio.timeout(None) as deadline:
                for _hop in range(settings.max_redirects + 1):
                    host = check_url(current)
                    deadline.reschedule(None)
                    async with host_turn(limiter, host, settings.host_max_wait_seconds, current) as turn:
                        started = loop.time()
                        deadline.reschedule(started + remaining)
                        async with client.stream("GET", current, headers=request_headers) as response:
                            step = await _answered(response, turn, url, current, settings, limiter, host)
                            if isinstance(step, str):
                                current = step
                                remaining -= loop.time() - started
                                continue
                            async for chunk in response.aiter_bytes():
                                step.add(chunk)
                            return step.page()
    except TimeoutError as e:
        raise _too_slow(url, settings) from e
    raise PermanentError("too_many_redirects", url, f"more than {settings.max_redirects} redirects")


@contextmanager
def _transport_errors(url: str) -> Iterator[None]:
    """httpx's timeouts and transport errors as the pipeline's transient reasons."""
    try:
        yield
    except httpx.TimeoutException as e:
        raise TransientError("timeout", url, type(e).__name__) from e
    except httpx.TransportError as e:
        raise TransientError("connection_error", url, str(e) or type(e).__name__) from e


async def _answered(
    response: httpx.Response, turn: Turn, url: str, current: str, settings: HttpSettings,
    limiter: HostLimiter | None, host: str,
) -> str | _Body:
    """What the headers of an answer mean: the next hop's URL for a redirect, else the body to collect
    (or an error with its reason). The host's interval starts now."""
    await turn.answered()
    if response.status_code in _REDIRECTS and "location" in response.headers:
        return urljoin(current, response.headers["location"])
    await _raise_for_status(response, url, limiter, host)
    return _Body(url, settings, response)


def _too_slow(url: str, settings: HttpSettings) -> TransientError:
    return TransientError("timeout", url, f"the response took more than {settings.total_timeout:g} s")


class _Body:
    """Collects a response body within the size cap and turns it into a ``Page``."""

    def __init__(self, url: str, settings: HttpSettings, response: httpx.Response) -> None:
        self.url, self.cap, self.response = url, settings.max_bytes, response
        declared = int(response.headers.get("content-length") or 0)
        if declared > self.cap:
            raise PermanentError("too_large", url, f"{declared} bytes > cap {self.cap}")
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.cap:
            raise PermanentError("too_large", self.url, f"more than the cap of {self.cap} bytes")
        self.chunks.append(chunk)

    def page(self) -> Page:
        headers = self.response.headers
        return Page(
            url=self.url,
            final_url=str(self.response.url),
            status=self.response.status_code,
            content_type=headers.get("content-type", "").split(";")[0].strip().lower(),
            body=b"".join(self.chunks),
            encoding=self.response.charset_encoding,
            etag=headers.get("etag"),
            last_modified=headers.get("last-modified"),
            max_age=cache_lifetime(headers.get("cache-control"), headers.get("expires"), headers.get("date")),
        )


async def _raise_for_status(response: httpx.Response, url: str, limiter: HostLimiter | None, host: str) -> None:
    status = response.status_code
    if status < 400:
        return
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        pause = retry_after if retry_after is not None else (60.0 if status == 429 else None)
        if limiter is not None and pause is not None and status in (429, 503):
            # The host said it is overloaded (429, or 503 with a Retry-After): every worker leaves it alone
            # for a while, not only this URL (whose own schedule honours the whole Retry-After). One answer
            # pauses a host for a poll cycle at most, so one misconfigured URL cannot stall a publisher's
            # other feeds for hours.
            await limiter.penalize(host, min(pause, HOST_PAUSE_MAX_SECONDS))
        raise TransientError("http_5xx" if status >= 500 else "http_429", url, f"HTTP {status}", retry_after)
    raise PermanentError("http_4xx", url, f"HTTP {status}")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or ``None``."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    when = _http_date(value)
    if when is None:
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def cache_lifetime(cache_control: str | None, expires: str | None, date: str | None = None) -> float | None:
    """How long the server says the response stays fresh, in seconds (``max-age``, else ``Expires`` minus
    ``Date``); ``None`` when it says nothing useful (``no-cache``, ``no-store``, absent, in the past)."""
    if cache_control:
        if re.search(r"no-(?:cache|store)", cache_control, re.IGNORECASE):
            return None
        match = _MAX_AGE.search(cache_control)
        if match:
            return float(match.group(1)) or None
    expires_at = _http_date(expires) if expires else None
    if expires_at is None:
        return None
    served_at = (_http_date(date) if date else None) or datetime.now(UTC)
    seconds = (expires_at - served_at).total_seconds()
    return seconds if seconds > 0 else None


def _http_date(value: str) -> datetime | None:
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
