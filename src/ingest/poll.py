"""Poll stage: feed bytes in, ``FeedEntry`` records out."""

from __future__ import annotations

import calendar
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import feedparser
import httpx

from ingest.config import HttpSettings
from ingest.dates import parse_iso_datetime
from ingest.errors import PermanentError
from ingest.http import fetch_url
from ingest.lang import normalise_language
from ingest.models import FeedEntry, FeedSource, FeedState
from ingest.schedule import feed_hint_minutes, publishing_rate
from ingest.sitemap import is_sitemap, read_news_sitemap
from ingest.stores.base import HostLimiter

logger = logging.getLogger(__name__)

# An internal DTD subset (``<!DOCTYPE rss [ <!ENTITY …> ]>``) is where entity bombs live; no real feed needs one.
_INTERNAL_SUBSET = re.compile(rb"<!DOCTYPE[^\[>]*\[.*?\]\s*>", re.DOTALL | re.IGNORECASE)
FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"


@dataclass(frozen=True)
class ParsedFeed:
    """The usable entries of a feed (RSS, Atom, RDF or JSON Feed) and how many items had no link.

    ``status`` says why there may be nothing to read: ``not_modified`` (HTTP 304) or ``unchanged`` (same
    body as last time); ``state`` is what to remember for the next poll once the entries are queued;
    ``hint_minutes`` is the feed's own polling hint (RSS ttl, sy:updatePeriod) and ``max_age`` the HTTP
    freshness lifetime of the answer, in seconds.
    """

    entries: list[FeedEntry]
    skipped_without_link: int = 0
    status: Literal["parsed", "not_modified", "unchanged"] = "parsed"
    state: FeedState | None = None
    hint_minutes: float | None = None
    max_age: float | None = None


def read_feed(body: bytes, feed: FeedSource) -> ParsedFeed:
    """Entries of a feed document (RSS 0.9x/1.0/2.0, Atom, RDF, JSON Feed, or a Google News sitemap);
    ``PermanentError('not_a_feed')`` when nothing usable is in it.

    A feed feedparser flags as malformed (bozo) is kept as long as it still yields entries.
    """
    if _looks_like_json(body):
        return _read_json_feed(body, feed)
    if is_sitemap(body):
        entries, skipped = read_news_sitemap(body, feed)
        return ParsedFeed(entries, skipped)
    parsed = feedparser.parse(_without_entity_declarations(body))
    if not parsed.entries:
        # A real feed with no items still has a version; anything else (HTML, other XML, nothing) is not a feed.
        if not parsed.get("version"):
            detail = str(parsed.get("bozo_exception", "")) or "no RSS, Atom or RDF structure found"
            raise PermanentError("not_a_feed", feed.url, detail[:120])
        return ParsedFeed([])
    language = feed.language or normalise_language(parsed.feed.get("language"))
    entries = []
    for item in parsed.entries:
        entry = _to_entry(item, feed, language)
        if entry is not None:
            entries.append(entry)
    hint = feed_hint_minutes(parsed.feed.get("ttl"), parsed.feed.get("sy_updateperiod"),
                             parsed.feed.get("sy_updatefrequency"))
    return ParsedFeed(entries, len(parsed.entries) - len(entries), hint_minutes=hint)


def parse_feed(body: bytes, feed: FeedSource) -> list[FeedEntry]:
    """The usable entries of a feed document (see :func:`read_feed`)."""
    return read_feed(body, feed).entries


async def poll_feed(
    client: httpx.AsyncClient,
    feed: FeedSource,
    settings: HttpSettings,
    previous: FeedState | None = None,
    limiter: HostLimiter | None = None,
    now: datetime | None = None,
) -> ParsedFeed:
    """Fetch one feed (in its host's turn), conditionally when an earlier poll left validators, and parse it
    if it changed. A 304 costs no parse; a 200 whose body hashes like the last one (servers that ignore
    validators) is not parsed either. The returned state carries the new validators, body hash, publishing
    rate and hint; the caller stores it once the entries are queued.
    """
    previous = previous or FeedState()
    headers = {}
    if previous.etag:
        headers["If-None-Match"] = previous.etag
    if previous.last_modified:
        headers["If-Modified-Since"] = previous.last_modified
    page = await fetch_url(client, feed.url, settings, accept=FEED_ACCEPT, headers=headers, limiter=limiter)
    if page.status == 304:
        return ParsedFeed([], status="not_modified", state=previous, max_age=page.max_age)
    body_hash = hashlib.sha1(page.body).hexdigest()
    state = previous.model_copy(update={"etag": page.etag, "last_modified": page.last_modified, "body_hash": body_hash})
    if state.body_hash == previous.body_hash:
        return ParsedFeed([], status="unchanged", state=state, max_age=page.max_age)
    parsed = read_feed(page.body, feed)
    rate = publishing_rate((e.published_at for e in parsed.entries), now or datetime.now(UTC))
    state = state.model_copy(update={
        "entries_per_day": rate if rate is not None else previous.entries_per_day,
        "hint_minutes": parsed.hint_minutes,
    })
    return ParsedFeed(parsed.entries, parsed.skipped_without_link, state=state, hint_minutes=parsed.hint_minutes,
                      max_age=page.max_age)


def _without_entity_declarations(body: bytes) -> bytes:
    """The feed without an internal DTD subset that declares entities. Expat stops a billion-laughs bomb only
    at its amplification limit, after a second and some 70 MB of feedparser callbacks; dropped here, the
    references stay unexpanded text. (UTF-16 feeds are left to expat's own limit.)"""
    head = body[:65536]
    root = re.search(rb"<(?![?!])", head)
    prolog = head[: root.start()] if root else head
    if b"<!ENTITY" not in prolog.upper():
        return body
    return _INTERNAL_SUBSET.sub(b"", body, count=1)


def _looks_like_json(body: bytes) -> bool:
    return body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def _read_json_feed(body: bytes, feed: FeedSource) -> ParsedFeed:
    """JSON Feed 1.0/1.1 (https://jsonfeed.org), which feedparser does not read, into the same entry model."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise PermanentError("not_a_feed", feed.url, f"invalid JSON: {e}") from e
    version = doc.get("version") if isinstance(doc, dict) else None
    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(version, str) or "jsonfeed.org/version/" not in version or not isinstance(items, list):
        raise PermanentError("not_a_feed", feed.url, "JSON without a jsonfeed.org version and an items list")
    language = feed.language or normalise_language(doc.get("language"))
    entries = []
    for item in items:
        if not isinstance(item, dict):
            continue
        link = item.get("url") or item.get("external_url")
        if not isinstance(link, str) or not link.strip():
            continue
        summary = item.get("summary") or item.get("content_text") or item.get("content_html")
        entries.append(
            FeedEntry(
                feed_id=feed.id,
                feed_name=feed.name,
                url=link.strip(),
                guid=str(item["id"]) if item.get("id") is not None else None,
                title=item.get("title") or None,
                summary=summary or None,
                published_at=parse_iso_datetime(item.get("date_published") or item.get("date_modified")),
                updated_at=parse_iso_datetime(item.get("date_modified")),
                language=normalise_language(item.get("language")) or language,
                tags=tuple(str(t) for t in item.get("tags") or [] if t),
            )
        )
    return ParsedFeed(entries, len(items) - len(entries))


def _to_entry(item: Any, feed: FeedSource, language: str | None) -> FeedEntry | None:
    link = item.get("link") or _first_alternate(item)
    if not link:
        return None
    published = item.get("published_parsed") or item.get("updated_parsed")
    updated = item.get("updated_parsed")
    tags = tuple(t.get("term", "") for t in item.get("tags", []) if t.get("term"))
    return FeedEntry(
        feed_id=feed.id,
        feed_name=feed.name,
        url=link.strip(),
        guid=item.get("id"),
        title=item.get("title"),
        summary=item.get("summary"),
        published_at=datetime.fromtimestamp(calendar.timegm(published), tz=UTC) if published else None,
        updated_at=datetime.fromtimestamp(calendar.timegm(updated), tz=UTC) if updated else None,
        language=language,
        tags=tags,
    )


def _first_alternate(item: Any) -> str | None:
    for link in item.get("links", []):
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            return str(link["href"])
    return None
