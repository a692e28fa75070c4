"""The one HTTP client of the pipeline: timeouts, a size cap, a user agent, redirects followed by hand
so every hop is checked, and a guard against private and loopback addresses."""

from __future__ import annotations

import ipaddress
import logging
import socket
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import httpx

from ingest.config import HttpSettings
from ingest.errors import PermanentError, TransientError
from ingest.models import Page

logger = logging.getLogger(__name__)

_REDIRECTS = {301, 302, 303, 307, 308}


def build_http_client(settings: HttpSettings) -> httpx.Client:
    """A ready client; callers pass it to :func:`fetch_url` and close it when done."""
    timeout = httpx.Timeout(settings.timeout, connect=settings.connect_timeout)
    return httpx.Client(
        timeout=timeout,
        follow_redirects=False,
        headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
    )


def check_address(url: str, allow_private: bool) -> None:
    """Raise ``PermanentError`` when the URL is not http(s) or resolves to a non-public address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PermanentError("bad_url", url, "only http and https URLs with a host are fetched")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 80, proto=socket.IPPROTO_TCP)
    except socket.gaierror as e:
        raise TransientError("dns_error", url, str(e)) from e
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if not ip.is_global:
            raise PermanentError(
                "private_address", url, f"{ip} is not a public address; set INGEST_HTTP__ALLOW_PRIVATE=true to allow"
            )


def fetch_url(
    client: httpx.Client,
    url: str,
    settings: HttpSettings,
    accept: str = "*/*",
    headers: dict[str, str] | None = None,
) -> Page:
    """GET a URL within the size cap, following redirects; errors carry a reason. A 304 answer to
    conditional ``headers`` comes back as a ``Page`` with status 304 and no body."""
    current = url
    request_headers = {"Accept": accept, **(headers or {})}
    for _hop in range(settings.max_redirects + 1):
        check_address(current, settings.allow_private)
        try:
            with client.stream("GET", current, headers=request_headers) as response:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    current = urljoin(current, response.headers["location"])
                    continue
                _raise_for_status(response, url)
                declared = int(response.headers.get("content-length") or 0)
                if declared > settings.max_bytes:
                    raise PermanentError("too_large", url, f"{declared} bytes > cap {settings.max_bytes}")
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > settings.max_bytes:
                        raise PermanentError("too_large", url, f"more than the cap of {settings.max_bytes} bytes")
                    chunks.append(chunk)
                return Page(
                    url=url,
                    final_url=str(response.url),
                    status=response.status_code,
                    content_type=response.headers.get("content-type", "").split(";")[0].strip().lower(),
                    body=b"".join(chunks),
                    encoding=response.charset_encoding,
                    etag=response.headers.get("etag"),
                    last_modified=response.headers.get("last-modified"),
                )
        except httpx.TimeoutException as e:
            raise TransientError("timeout", url, type(e).__name__) from e
        except httpx.TransportError as e:
            raise TransientError("connection_error", url, str(e) or type(e).__name__) from e
    raise PermanentError("too_many_redirects", url, f"more than {settings.max_redirects} redirects")


def _raise_for_status(response: httpx.Response, url: str) -> None:
    status = response.status_code
    if status < 400:
        return
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        raise TransientError("http_5xx" if status >= 500 else "http_429", url, f"HTTP {status}", retry_after)
    raise PermanentError("http_4xx", url, f"HTTP {status}")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or ``None``."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
