"""The feed registry: ``feeds.yaml`` read and validated (one clear error per bad row), and OPML in and out."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import yaml
from pydantic import ValidationError

from ingest.errors import ConfigError
from ingest.models import FeedSource
from ingest.urls import domain_of


def load_feeds(path: Path) -> list[FeedSource]:
    """Enabled and disabled feeds from a YAML file shaped ``feeds: [{id, url, name, ...}]``."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"feed registry {path} does not exist; set INGEST_FEEDS__PATH to your feeds.yaml") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"feed registry {path} is not valid YAML: {e}") from e
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise ConfigError(f"feed registry {path}:{line}: not UTF-8 text; save it as UTF-8") from None
    return parse_feeds(raw, str(path))


def parse_feeds(raw: Any, where: str) -> list[FeedSource]:
    """Validate the registry's content; raises ``ConfigError`` naming every bad row."""
    rows = raw.get("feeds") if isinstance(raw, dict) else None
    if not isinstance(rows, list):
        raise ConfigError(f"{where}: expected a top-level 'feeds:' list")
    feeds: list[FeedSource] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, row in enumerate(rows, start=1):
        try:
            feed = FeedSource.model_validate(row)
        except ValidationError as e:
            first = e.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "row"
            problems.append(f"{where}: feed #{number}: {field}: {first['msg']}")
            continue
        if not feed.url.startswith(("http://", "https://")):
            problems.append(f"{where}: feed #{number} ({feed.id}): url must start with http:// or https://")
        elif feed.id in seen:
            problems.append(f"{where}: feed #{number}: duplicate id {feed.id!r}")
        else:
            seen.add(feed.id)
            feeds.append(feed)
    if problems:
        raise ConfigError("\n".join(problems))
    return feeds


def dump_feeds(feeds: Sequence[FeedSource]) -> str:
    """The registry as YAML, in the shape :func:`load_feeds` reads (defaults left out)."""
    rows = [f.model_dump(mode="json", exclude_defaults=True) for f in feeds]
    return yaml.safe_dump({"feeds": rows}, allow_unicode=True, sort_keys=False)


def parse_opml(data: bytes, where: str) -> list[FeedSource]:
    """Feeds of an OPML subscription list; nested outlines give their titles as tags."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise ConfigError(f"{where}: not valid OPML/XML ({e})") from e
    body = root.find("body")
    if root.tag != "opml" or body is None:
        raise ConfigError(f"{where}: not an OPML document (no <opml><body>)")
    rows: list[dict[str, Any]] = []
    _walk_outlines(body, (), rows)
    taken: set[str] = set()
    for row in rows:
        row["id"] = _unique(_slug(row.pop("title") or domain_of(row["url"])), taken)
    return parse_feeds({"feeds": rows}, where)


def to_opml(feeds: Sequence[FeedSource], title: str = "ingest feeds") -> str:
    """An OPML 2.0 subscription list of the registry."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<opml version="2.0">',
             f"  <head><title>{_escape(title)}</title></head>", "  <body>"]
    for feed in feeds:
        attrs = {"type": "rss", "text": feed.name, "title": feed.name, "xmlUrl": feed.url}
        if feed.language:
            attrs["language"] = feed.language
        if feed.tags:
            attrs["category"] = ",".join(feed.tags)
        lines.append("    <outline " + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items()) + "/>")
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines)


def merge_feeds(existing: Sequence[FeedSource], new: Sequence[FeedSource]) -> tuple[list[FeedSource], int]:
    """``existing`` plus the feeds of ``new`` whose URL is not there yet (ids kept unique)."""
    urls = {f.url for f in existing}
    taken = {f.id for f in existing}
    merged = list(existing)
    for feed in new:
        if feed.url in urls:
            continue
        merged.append(feed.model_copy(update={"id": _unique(feed.id, taken)}))
        urls.add(feed.url)
    return merged, len(merged) - len(existing)


def _walk_outlines(node: ET.Element, tags: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    for outline in node.findall("outline"):
        url = outline.get("xmlUrl")
        title = outline.get("title") or outline.get("text")
        if url:
            categories = tuple(c.strip() for c in (outline.get("category") or "").split(",") if c.strip())
            row: dict[str, Any] = {"url": url.strip(), "name": title or url, "title": title,
                                   "tags": list(dict.fromkeys((*tags, *categories)))}
            if outline.get("language"):
                row["language"] = outline.get("language")
            rows.append(row)
        else:
            _walk_outlines(outline, (*tags, title) if title else tags, rows)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "feed"


def _unique(candidate: str, taken: set[str]) -> str:
    name, n = candidate, 2
    while name in taken:
        name, n = f"{candidate}-{n}", n + 1
    taken.add(name)
    return name


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def shard_feeds(feeds: Sequence[FeedSource], shards: int) -> list[list[FeedSource]]:
    """Feeds grouped by host, hosts spread over at most ``shards`` non-empty groups."""
    by_host: dict[str, list[FeedSource]] = {}
    for feed in feeds:
        if feed.enabled:
            by_host.setdefault(domain_of(feed.url), []).append(feed)
    groups: list[list[FeedSource]] = [[] for _ in range(max(1, shards))]
    for host_feeds in sorted(by_host.values(), key=len, reverse=True):
        min(groups, key=len).extend(host_feeds)
    return [g for g in groups if g]
