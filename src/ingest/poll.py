"""Poll stage: feed bytes in, ``FeedEntry`` records out."""

from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser
import httpx

from ingest.config import HttpSettings
from ingest.errors import PermanentError
from ingest.http import fetch_url
from ingest.models import FeedEntry, FeedSource

logger = logging.getLogger(__name__)

FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"


@dataclass(frozen=True)
class ParsedFeed:
    """The usable entries of a feed and how many items were skipped (items without a link)."""

    entries: list[FeedEntry]
    skipped_without_link: int = 0


def read_feed(body: bytes, feed: FeedSource) -> ParsedFeed:
    """Entries of a feed document; ``PermanentError('not_a_feed')`` when nothing usable is in it.

    A feed feedparser flags as malformed (bozo) is kept as long as it still yields entries.
    """
    parsed = feedparser.parse(body)
    if not parsed.entries:
        # A real feed with no items still has a version; anything else (HTML, other XML, nothing) is not a feed.
        if not parsed.get("version"):
            detail = str(parsed.get("bozo_exception", "")) or "no RSS, Atom or RDF structure found"
            raise PermanentError("not_a_feed", feed.url, detail[:120])
        return ParsedFeed([])
    language = feed.language or _short_language(parsed.feed.get("language"))
    entries = []
    for item in parsed.entries:
        entry = _to_entry(item, feed, language)
        if entry is not None:
            entries.append(entry)
    return ParsedFeed(entries, len(parsed.entries) - len(entries))


def parse_feed(body: bytes, feed: FeedSource) -> list[FeedEntry]:
    """The usable entries of a feed document (see :func:`read_feed`)."""
    return read_feed(body, feed).entries


def poll_feed(client: httpx.Client, feed: FeedSource, settings: HttpSettings) -> ParsedFeed:
    """Fetch one feed and parse it."""
    page = fetch_url(client, feed.url, settings, accept=FEED_ACCEPT)
    return read_feed(page.body, feed)


def _to_entry(item: Any, feed: FeedSource, language: str | None) -> FeedEntry | None:
    link = item.get("link") or _first_alternate(item)
    if not link:
        return None
    published = item.get("published_parsed") or item.get("updated_parsed")
    tags = tuple(t.get("term", "") for t in item.get("tags", []) if t.get("term"))
    return FeedEntry(
        feed_id=feed.id,
        feed_name=feed.name,
        url=link.strip(),
        guid=item.get("id"),
        title=item.get("title"),
        summary=item.get("summary"),
        published_at=datetime.fromtimestamp(calendar.timegm(published), tz=UTC) if published else None,
        language=language,
        tags=tags,
    )


def _first_alternate(item: Any) -> str | None:
    for link in item.get("links", []):
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            return str(link["href"])
    return None


def _short_language(value: str | None) -> str | None:
    if not value:
        return None
    return value.split("-")[0].split("_")[0].lower() or None
