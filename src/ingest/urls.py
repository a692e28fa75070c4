"""Canonical URLs and the ids derived from them. Pure functions."""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit, urlunsplit

from courlan import normalize_url

# Parameters that identify a click, not a page.
_TRACKING_PREFIXES = ("utm_", "at_", "xtor", "fbclid", "gclid", "mc_", "ocid", "cmpid", "ns_", "icid", "_ga")


def canonical_url(url: str) -> str:
    """The URL with tracking parameters, fragments and case noise removed."""
    url = url.strip()
    try:
        cleaned = normalize_url(url, strict=False, trailing_slash=True)
    except (ValueError, TypeError):
        cleaned = url
    parts = urlsplit(cleaned)
    if parts.query:
        kept = [
            kv
            for kv in parts.query.split("&")
            if kv and not kv.split("=", 1)[0].lower().startswith(_TRACKING_PREFIXES)
        ]
        parts = parts._replace(query="&".join(kept))
    return urlunsplit(parts._replace(fragment=""))


def article_id(canonical: str) -> str:
    """Document id of an article: a stable hash of its canonical URL."""
    return hashlib.sha1(canonical.encode("utf-8")).hexdigest()[:20]


def domain_of(url: str) -> str:
    """Host of a URL without a leading ``www.``."""
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host
