"""Extraction stage: HTML bytes in, an ``Extracted`` record out. No network here."""

from __future__ import annotations

import logging
import re
from typing import Any

import trafilatura
from trafilatura.utils import load_html

from ingest.dates import parse_iso_datetime
from ingest.errors import PermanentError
from ingest.lang import detect_language, normalise_language
from ingest.models import Extracted
from ingest.urls import canonical_url, domain_of

logger = logging.getLogger(__name__)

# Keep the time of day and the publisher's offset, and prefer the original publication date to updates.
_DATE_PARAMS = {"extensive_search": True, "original_date": True, "outputformat": "%Y-%m-%dT%H:%M:%S%z"}
_AUTHOR_SPLIT = re.compile(r"\s*(?:;|\band\b|\bet\b|&)\s*")


def extract_article(html: bytes | str, url: str, min_text_chars: int = 0) -> Extracted:
    """Main text and metadata of a news page; ``PermanentError`` with a reason when there is none."""
    tree = load_html(html)
    if tree is None:
        raise PermanentError("not_html", url, "the bytes do not parse as HTML")
    declared_lang = normalise_language(tree.get("lang") or tree.get("xml:lang"))
    doc: Any = trafilatura.bare_extraction(
        tree,
        url=url,
        with_metadata=True,
        deduplicate=False,
        include_comments=False,
        include_tables=False,
        favor_precision=False,
        date_extraction_params=_DATE_PARAMS,
    )
    if doc is None or not (doc.text or "").strip():
        raise PermanentError("extraction_empty", url, "no main text found in the page")
    title = (doc.title or "").strip() or None
    text = _drop_leading_title(doc.text.strip(), title)
    if len(text) < min_text_chars:
        raise PermanentError("too_short", url, f"{len(text)} characters < {min_text_chars}")
    canonical = _pick_canonical(url, doc.url)
    return Extracted(
        url=url,
        canonical_url=canonical,
        title=title,
        text=text,
        summary=(doc.description or "").strip() or None,
        authors=split_authors(doc.author),
        published_at=parse_iso_datetime(doc.date, utc=False),
        language=detect_language(text) or declared_lang,
        site_name=doc.sitename or None,
        tags=tuple(dict.fromkeys(t for t in (*(doc.categories or []), *(doc.tags or [])) if t)),
        image_url=doc.image or None,
    )


def split_authors(raw: str | None) -> tuple[str, ...]:
    """``"Le Monde; Bertrand Bissuel"`` → ``("Le Monde", "Bertrand Bissuel")``."""
    if not raw:
        return ()
    names = (n.strip(" ,") for n in _AUTHOR_SPLIT.split(raw))
    return tuple(dict.fromkeys(n for n in names if n))


def _drop_leading_title(text: str, title: str | None) -> str:
    # trafilatura keeps the headline as the first line of the text when it sits inside the article.
    if title:
        first, _, rest = text.partition("\n")
        if first.strip() == title and rest.strip():
            return rest.strip()
    return text


def _pick_canonical(fetched: str, declared: str | None) -> str:
    # A canonical link on another host is more often a syndication or a trick than the truth.
    if declared and domain_of(declared) == domain_of(fetched):
        return canonical_url(declared)
    return canonical_url(fetched)
