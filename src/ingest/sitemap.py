"""Google News sitemaps (and plain sitemaps.org ``<urlset>`` files) read as feeds: a pure function of the bytes.

A news sitemap lists a site's articles of the last two days, one ``<url>`` each::

    <url>
      <loc>https://example.fr/a.html</loc>
      <news:news>
        <news:publication><news:name>Le Monde</news:name><news:language>fr</news:language></news:publication>
        <news:publication_date>2024-03-27T10:00:00+01:00</news:publication_date>
        <news:title>…</news:title>
        <news:keywords>a, b</news:keywords>
      </news:news>
    </url>

The bytes come from the internet, so they are parsed with entity expansion, DTD loading and network access
all off: a "billion laughs" document or an external entity (``<!ENTITY x SYSTEM "file:///etc/passwd">``) is
never expanded into an entry.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

from ingest.dates import parse_iso_datetime
from ingest.errors import PermanentError
from ingest.lang import normalise_language
from ingest.models import FeedEntry, FeedSource

__all__ = ["is_sitemap", "read_news_sitemap"]

# How much of the body is_sitemap looks at: enough for an XML declaration, an xml-stylesheet PI (common on
# sitemaps), a licence comment and a root tag with a few namespace declarations.
_HEAD_BYTES = 4096
# The prolog, then the root start tag. The prolog repetition is possessive (*+): once a comment or PI has
# matched it is never re-split on failure, which would otherwise be exponential in the number of comments.
_ROOT = re.compile(
    rb"\A(?:\xef\xbb\xbf)?"
    rb"(?:\s|<!--.*?-->|<\?.*?\?>|<!DOCTYPE[^>\[]*(?:\[.*?\]\s*)?>)*+"
    rb"<(?:[\w.-]+:)?(?:urlset|sitemapindex)\b([^>]*)",
    re.DOTALL,
)
_SITEMAP_NS_ATTR = re.compile(
    rb"""\bxmlns(?::[\w.-]+)?\s*=\s*["']https?://www\.sitemaps\.org/schemas/sitemap/0\.9/?["']"""
)


def is_sitemap(body: bytes) -> bool:
    """Whether the body's root element is a sitemaps.org ``<urlset>`` or ``<sitemapindex>``.

    Looks only at the first few KB (prolog and root start tag); nothing is parsed.
    """
    head = body[:_HEAD_BYTES]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        head = head.decode("utf-16", errors="ignore").encode("utf-8")
    match = _ROOT.match(head)
    return match is not None and _SITEMAP_NS_ATTR.search(match.group(1)) is not None


def read_news_sitemap(body: bytes, feed: FeedSource) -> tuple[list[FeedEntry], int]:
    """The entries of a (news) sitemap and how many ``<url>`` elements had no usable ``<loc>``.

    ``PermanentError('not_a_feed')`` for malformed XML, a sitemap index, or any other root element.
    Elements are matched by local name, since sitemaps in the wild carry old or mistyped namespace URIs.
    """
    try:
        root = etree.fromstring(body, _safe_parser())
    except etree.XMLSyntaxError as e:
        raise PermanentError("not_a_feed", feed.url, str(e.msg or e)[:120]) from e
    name = _local(root)
    if name == "sitemapindex":
        raise PermanentError(
            "not_a_feed", feed.url, "a sitemap index: register the news sitemap it lists, not the index"
        )
    if name != "urlset":
        raise PermanentError("not_a_feed", feed.url, f"root element <{name}> is not a sitemap <urlset>")
    entries = []
    skipped = 0
    for url in _children(root, "url"):
        entry = _to_entry(url, feed)
        if entry is None:
            skipped += 1
        else:
            entries.append(entry)
    return entries, skipped


def _safe_parser() -> Any:
    # A new parser per call: lxml parsers keep state and are not meant to be shared across threads.
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)


def _to_entry(url: Any, feed: FeedSource) -> FeedEntry | None:
    loc = _child_text(url, "loc")
    if loc is None or not _is_absolute_http(loc):
        return None
    news = _child(url, "news")
    publication = _child(news, "publication") if news is not None else None
    published = parse_iso_datetime(_child_text(news, "publication_date")) if news is not None else None
    keywords = _child_text(news, "keywords") if news is not None else None
    language = _child_text(publication, "language") if publication is not None else None
    lastmod = parse_iso_datetime(_child_text(url, "lastmod"))
    return FeedEntry(
        feed_id=feed.id,
        feed_name=feed.name,
        url=loc,
        guid=loc,
        title=_child_text(news, "title") if news is not None else None,
        # A news URL without a publication date still says when it last changed.
        published_at=published or lastmod,
        updated_at=lastmod,
        language=feed.language or normalise_language(language),
        tags=tuple(k.strip() for k in (keywords or "").split(",") if k.strip()),
    )


def _local(element: Any) -> str:
    return str(etree.QName(element).localname)


def _children(parent: Any, name: str) -> list[Any]:
    # Comments, PIs and entity references have a non-string tag: not elements.
    return [c for c in parent if isinstance(c.tag, str) and _local(c) == name]


def _child(parent: Any, name: str) -> Any | None:
    found = _children(parent, name)
    return found[0] if found else None


def _child_text(parent: Any, name: str) -> str | None:
    child = _child(parent, name)
    return _text(child) if child is not None else None


def _text(element: Any) -> str | None:
    """The stripped character data of an element, comments and PIs left out; ``None`` when empty or when it
    holds an entity reference the safe parser left unexpanded (its value is unknown, so the text is too)."""
    if any(node.tag is etree.Entity for node in element.iter()):
        return None
    # itertext skips comments and PIs (and CDATA is already plain text).
    text = "".join(element.itertext()).strip()
    return text or None


def _is_absolute_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)
