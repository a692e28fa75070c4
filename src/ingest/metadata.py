"""What a news page says about itself: headline, dates, authors, canonical URL, paywall. Pure functions of a
parsed page (an lxml tree), read before trafilatura prunes it.

The sources, strongest first: the article object of the page's JSON-LD (schema.org ``NewsArticle`` and kin),
the ``<meta>`` tags publishers write for search engines and social networks, then the visible page. Each
choice says where it came from, so a wrong field can be traced to its source.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml.html import HtmlElement

from ingest.authors import author_page_name
from ingest.dates import parse_iso_datetime
from ingest.models import DateSource
from ingest.text import clean, fold, initials, similarity
from ingest.urls import canonical_url, domain_of

ARTICLE_TYPES = frozenset(
    {
        "Article", "NewsArticle", "ReportageNewsArticle", "AnalysisNewsArticle", "OpinionNewsArticle",
        "ReviewNewsArticle", "BackgroundNewsArticle", "AskPublicNewsArticle", "LiveBlogPosting", "BlogPosting",
        "SatiricalArticle", "ScholarlyArticle", "TechArticle", "Report", "SocialMediaPosting",
    }
)  # fmt: skip

_PUBLISHED_META = (
    "article:published_time", "og:article:published_time", "datepublished", "parsely-pub-date",
    "sailthru.date", "pubdate", "publishdate", "publish-date", "dc.date.issued", "dcterms.issued", "dc.date",
    "dcterms.created", "date",
)  # fmt: skip
_MODIFIED_META = ("article:modified_time", "og:article:modified_time", "og:updated_time", "datemodified",
                  "dcterms.modified", "last-modified")  # fmt: skip
_AUTHOR_META = ("parsely-author", "sailthru.author", "article:author", "og:article:author", "author",
                "dc.creator", "dcterms.creator")  # fmt: skip
_WRITTEN_BY = re.compile(r"\s*(?:written by|écrit par|verfasst von|escrito por|scritto da|geschreven door)\s*", re.I)
_SECOND_LEVEL = frozenset({"co", "com", "org", "net", "gov", "ac", "ne", "or", "go", "gv", "edu"})
_SITE_META = ("og:site_name", "application-name", "apple-mobile-web-app-title", "twitter:site")

# A title's parts: "Headline | Section | Site", "Headline - Site".
_SEPARATOR = re.compile(r"\s+(?:\||-|–|—|·|::|»|•)\s+")
_KICKER_SEPARATOR = re.compile(r"\s+(?:/|\||-|–|—|·|»|•)\s+|:\s+")
# Parts of a headline element that are not the headline: the kicker above it, text for screen readers.
_NOT_HEADLINE = re.compile(
    r"kicker|overline|dachzeile|spitzmarke|eyebrow|supertitle|pretitle|catchline|rubric|topline|flag|label"
    r"|sr-only|visually-hidden|screen-reader|visuallyhidden|offscreen|a11y",
    re.IGNORECASE,
)
# An <h1> that only search engines or screen readers see.
_HIDDEN_HEADING = re.compile(r"seo|breadcrumb|sr-only|visually-hidden|screen-reader|offscreen|hidden", re.I)


@dataclass(frozen=True)
class PageFacts:
    """What the page's structured data and meta tags hold, read once."""

    url: str
    article: dict[str, Any] = field(default_factory=dict)  # the JSON-LD article object, if any
    page_objects: tuple[dict[str, Any], ...] = ()  # other top-level JSON-LD objects (WebPage …)
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    meta: dict[str, tuple[str, ...]] = field(default_factory=dict)
    html_title: str = ""
    canonical_links: tuple[str, ...] = ()  # hrefs of <link rel=canonical>

    def first_meta(self, *names: str) -> str | None:
        for name in names:
            for value in self.meta.get(name, ()):
                if value.strip():
                    return value.strip()
        return None

    @cached_property
    def site_names(self) -> list[str]:
        names = [v for n in _SITE_META for v in self.meta.get(n, ())]
        publisher = self.article.get("publisher")
        names.extend(_names_of(publisher, self.by_id))
        host = domain_of(self.url)
        names.append(host)
        labels = host.split(".")
        # "example" of example.com and of example.co.uk (not "co")
        second_level = len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL
        names.append(labels[-3] if second_level else labels[-2] if len(labels) >= 2 else host)
        return [n.strip().lstrip("@") for n in names if n and n.strip()]


def read_page(tree: HtmlElement, url: str) -> PageFacts:
    """JSON-LD objects, ``<meta>`` tags and ``<title>`` of a parsed page."""
    objects: list[dict[str, Any]] = []
    for script in tree.iter("script"):
        if (script.get("type") or "").strip().lower() == "application/ld+json" and script.text:
            objects.extend(_json_ld_objects(script.text))
    by_id = {str(o["@id"]): o for o in objects if isinstance(o.get("@id"), str)}
    article = next((o for o in objects if _types(o) & ARTICLE_TYPES), {})
    meta: dict[str, list[str]] = {}
    for element in tree.iter("meta"):
        name = element.get("property") or element.get("name") or element.get("itemprop")
        content = element.get("content")
        if name and content is not None:
            meta.setdefault(name.strip().lower(), []).append(content)
    title = tree.find(".//title")
    canonical = tuple(
        link.get("href", "") for link in tree.iter("link") if "canonical" in (link.get("rel") or "").lower().split()
    )
    return PageFacts(
        url=url,
        article=article,
        page_objects=tuple(o for o in objects if o is not article),
        by_id=by_id,
        meta={k: tuple(v) for k, v in meta.items()},
        html_title=clean(title.text_content()) if title is not None else "",
        canonical_links=canonical,
    )


def _json_ld_objects(text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except ValueError:
        return []
    found: list[dict[str, Any]] = []
    stack = [data]
    while stack:
        item = stack.pop(0)
        if isinstance(item, list):
            stack[:0] = item
        elif isinstance(item, dict):
            found.append(item)
            for key in ("@graph", "mainEntity"):  # a WebPage's mainEntity is often the article
                if isinstance(item.get(key), list | dict):
                    stack.append(item[key])
    return found


def _types(obj: dict[str, Any]) -> set[str]:
    kind = obj.get("@type")
    kinds = kind if isinstance(kind, list) else [kind]
    return {k.rsplit("/", 1)[-1] for k in kinds if isinstance(k, str)}


def _names_of(value: Any, by_id: dict[str, dict[str, Any]]) -> list[str]:
    """Names in a schema.org ``author``/``publisher`` value: a string, a Person (``name``, else ``givenName``
    and ``familyName``), a list, an ``@id`` reference."""
    items = value if isinstance(value, list) else [value]
    names = []
    for item in items:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict):
            if "name" not in item and isinstance(item.get("@id"), str):
                item = by_id.get(item["@id"], item)
            name = item.get("name") or " ".join(n for n in (item.get("givenName"), item.get("familyName"))
                                                if isinstance(n, str))
            if isinstance(name, str):
                names.append(name)
            elif isinstance(name, list):
                names.extend(n for n in name if isinstance(n, str))
    return names


# ---------------------------------------------------------------- headline


def pick_title(tree: HtmlElement, facts: PageFacts) -> str | None:
    """The headline a reader sees, chosen by agreement between what the page declares and what it prints.

    Candidates: ``og:title``, the JSON-LD ``headline``, ``twitter:title`` and ``<title>``, each with the site name
    taken off (a declared name, the domain, or a suffix that another candidate does without), and the page's
    ``<h1>`` elements (kickers left out, those inside ``<article>``/``<main>`` first). An ``<h1>`` that a
    declared title matches (letters and digits compared) wins, in its printed spelling; an ``<h1>`` that is a
    kicker run into a declared title gives the declared title; else the ``<h1>`` most like a declared title;
    else the first declared title in the order above (a majority vote between the declared titles was tried:
    the SEO headline is the one repeated, see docs/benchmarks.md)."""
    headline = facts.article.get("headline")
    declared = [
        strip_site_name(clean(t), facts.site_names)
        for t in (
            facts.first_meta("og:title"),
            headline if isinstance(headline, str) else None,
            facts.first_meta("twitter:title"),
            facts.html_title,
        )
        if t and t.strip()
    ]
    headings = list(_headings(tree))
    cleaned = _agree_on_suffix([c for c in declared if c], headings)
    if not cleaned:
        return next((h for h in headings if len(h.split()) >= 3), None)
    folded = {fold(c): c for c in reversed(cleaned)}
    for heading in headings:
        if (same := folded.get(fold(heading))) is not None:
            # The printed spelling of a declared title (its quotes, its dashes), unless the <h1> only lost the
            # separator after its kicker ("Kicker / Headline" declared, two lines printed).
            seps = _KICKER_SEPARATOR.finditer(same)
            return same if any(same[: m.start()] + " " + same[m.end():] == heading for m in seps) else heading
    for heading in headings:
        for candidate in cleaned:
            if _is_kicker_and(heading, candidate):
                return candidate
    best: tuple[float, str] | None = None
    for heading in headings:
        score = max(similarity(heading, c) for c in cleaned)
        if score >= 0.5 and (best is None or score > best[0]):
            best = (score, heading)
    if best is not None:
        return best[1]
    # A declared title cut short for a social card ("Headline that goes…") gives way to the one it cuts.
    stem = fold(cleaned[0].rstrip(".… ")) if cleaned[0].endswith(("...", "…")) else ""
    return next((c for c in cleaned if stem and fold(c).startswith(stem) and fold(c) != stem), cleaned[0])


def _agree_on_suffix(candidates: list[str], headings: list[str]) -> list[str]:
    """Each candidate cut to the part before (or after) a separator when another candidate or an ``<h1>`` is
    exactly that part: ``"Headline - The Daily Example"`` next to ``og:title`` ``"Headline"`` loses its site
    name even when the page never declares it."""
    others = {fold(t) for t in (*candidates, *headings)}
    result = []
    for candidate in candidates:
        parts = _SEPARATOR.split(candidate)
        if len(parts) > 1:
            seps = _SEPARATOR.findall(candidate)
            for i in range(len(parts) - 1, 0, -1):
                head = parts[0] + "".join(sep + part for sep, part in zip(seps[: i - 1], parts[1:i], strict=True))
                tail = parts[i] + "".join(sep + part for sep, part in zip(seps[i:], parts[i + 1:], strict=True))
                if fold(head) in others and len(head.split()) >= 3:
                    candidate = head
                    break
                if fold(tail) in others and len(tail.split()) >= 3:
                    candidate = tail
                    break
        result.append(candidate)
    return result


def _is_kicker_and(heading: str, candidate: str) -> bool:
    """Whether ``heading`` is a few words of kicker run into ``candidate``, the headline proper
    (``"Eskalation «Die Zurückhaltung …»"``, the kicker's markup unmarked)."""
    words, tail = heading.split(), candidate.split()
    extra = len(words) - len(tail)
    return len(tail) >= 4 and 0 < extra <= 4 and fold(" ".join(words[extra:])) == fold(candidate)


def _headings(tree: HtmlElement) -> Iterator[str]:
    """Texts of the page's visible ``<h1>`` elements, those inside ``<article>`` or ``<main>`` first."""
    inside: list[str] = []
    outside: list[str] = []
    for heading in tree.iter("h1"):
        ancestors = {a.tag for a in heading.iterancestors()}
        if _HIDDEN_HEADING.search(heading.get("class", "")) or ancestors & {"nav", "footer"}:
            continue
        text = clean(_join_inline(_headline_text(heading)))
        if text:
            (inside if ancestors & {"article", "main"} else outside).append(text)
    yield from inside
    yield from outside


def _join_inline(pieces: Iterator[str]) -> str:
    # "<span>Kicker</span>Headline" renders on two lines: keep a space where two elements' words meet.
    text = ""
    for piece in pieces:
        if text and piece and text[-1].isalnum() and piece[0].isalnum():
            text += " "
        text += piece
    return text


def _headline_text(element: HtmlElement) -> Iterator[str]:
    if element.text:
        yield element.text
    for child in element:
        if isinstance(child.tag, str) and child.tag not in ("script", "style", "template", "button"):
            marker = f"{child.get('class', '')} {child.get('id', '')} {child.get('data-testid', '')}"
            if not _NOT_HEADLINE.search(marker) and child.get("aria-hidden") != "true":
                yield from _headline_text(child)
            elif child.tail:
                yield " "
        if child.tail:
            yield child.tail


def strip_site_name(title: str, site_names: Sequence[str]) -> str:
    """``"Headline - National | Globalnews.ca"`` → ``"Headline"``: trailing (or leading) parts naming the site,
    and the section names between it and the headline, are dropped; the headline itself is never cut."""
    parts = _SEPARATOR.split(title)
    if len(parts) < 2:
        return title
    seps = _SEPARATOR.findall(title)
    sites = {fold(s) for s in site_names if fold(s)}
    # A name's initials, alone or with the domain's ending: "NZZ", "SZ.de" for "Neue Zürcher Zeitung" …
    endings = {"", *(s.rsplit(".", 1)[1].casefold() for s in site_names if "." in s)}
    acronyms = {i + e for s in site_names for i in initials(s) for e in endings}

    def is_site(part: str) -> bool:
        folded = fold(part)
        return bool(folded) and (folded in acronyms or any(
            folded == s or (len(s) >= 4 and (s in folded or folded in s)) for s in sites))

    start, end = 0, len(parts)
    if is_site(parts[-1]):
        end -= 1
        # Sections between headline and site name: short parts ("World News", "National").
        while end - start > 1 and len(parts[end - 1].split()) <= 3 and len(" ".join(parts[start:end - 1]).split()) >= 4:
            end -= 1
    elif is_site(parts[0]):
        start = 1
    if (start, end) == (0, len(parts)):
        return title
    kept = parts[start]
    for sep, part in zip(seps[start:end - 1], parts[start + 1:end], strict=True):
        kept += sep + part
    return kept.strip()


# ---------------------------------------------------------------- dates


def published_candidates(tree: HtmlElement, facts: PageFacts) -> Iterator[tuple[datetime, DateSource]]:
    """Publication dates the page declares, strongest first."""
    for key in ("datePublished", "dateCreated"):
        if (parsed := parse_page_date(facts.article.get(key))) is not None:
            yield parsed, "json_ld"
    if (parsed := parse_page_date(facts.first_meta(*_PUBLISHED_META))) is not None:
        yield parsed, "meta"
    for element in tree.iter("time"):
        declared = element.get("itemprop") == "datePublished" or "pubdate" in element.attrib
        if declared and (parsed := parse_page_date(element.get("datetime"))) is not None:
            yield parsed, "html"
    for obj in facts.page_objects:
        if (parsed := parse_page_date(obj.get("datePublished"))) is not None:
            yield parsed, "json_ld"


def modified_date(facts: PageFacts) -> datetime | None:
    """When the page says it was last changed (JSON-LD ``dateModified`` or the modified-time meta tags)."""
    return parse_page_date(facts.article.get("dateModified")) or parse_page_date(facts.first_meta(*_MODIFIED_META))


def parse_page_date(value: Any) -> datetime | None:
    """ISO 8601 (``2024-08-08T08:00Z``, ``2019-02-05 16:07``) or RFC 2822; the publisher's offset kept."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if (parsed := parse_iso_datetime(text, utc=False)) is not None:
        return parsed
    try:
        return parse_iso_datetime(parsedate_to_datetime(text).isoformat(), utc=False)
    except (TypeError, ValueError, IndexError):
        return None


def not_future(value: datetime | None, now: datetime | None, slack: timedelta = timedelta(minutes=15)) -> bool:
    return value is not None and (now is None or value <= now + slack)


# ---------------------------------------------------------------- authors, canonical, paywall


def declared_authors(facts: PageFacts) -> list[str]:
    """Author names from the JSON-LD article, else the author meta tags (``Last, First`` turned around).
    Organisations stay: news agencies are authors (the site's own name is dropped by :func:`clean_authors`)."""
    names = _names_of(facts.article.get("author") or facts.article.get("creator"), facts.by_id)
    if names:
        return names
    for name in _AUTHOR_META:
        values = [v for v in facts.meta.get(name, ()) if v.strip() and not v.strip().startswith("http")]
        if values:
            if name in ("dc.creator", "dcterms.creator"):
                return [_turn_around(v) for v in values]
            return values
    for n in range(1, 5):  # Yoast SEO: twitter:label1 "Written by", twitter:data1 the name
        if _WRITTEN_BY.fullmatch(facts.first_meta(f"twitter:label{n}") or "") and facts.first_meta(f"twitter:data{n}"):
            return [facts.first_meta(f"twitter:data{n}") or ""]
    return []


def byline_authors(tree: HtmlElement, limit: int = 5) -> list[str]:
    """Names the article's own markup links as its authors (``rel=author`` links, ``itemprop=author``) inside
    ``<article>`` or ``<main>``: outside them they are the authors of other stories (teasers, sidebars). Without
    any, the links there to the writers' own pages ("/author/jane-doe/") whose text spells the page's slug."""
    names: list[str] = []
    for element in tree.xpath(
        "//article//a[contains(concat(' ', normalize-space(@rel), ' '), ' author ')]"
        "|//main//a[contains(concat(' ', normalize-space(@rel), ' '), ' author ')]"
        "|//article//*[@itemprop='author']|//main//*[@itemprop='author']"
    ):
        named = element.find(".//*[@itemprop='name']")
        text = clean((named if named is not None else element).text_content())
        if text and text not in names:
            names.append(text)
        if len(names) >= limit:
            break
    for link in [] if names else tree.xpath("//article//a[@href]|//main//a[@href]"):
        name = author_page_name(link.get("href", ""), link.text_content())
        if name and name not in names:
            names.append(name)
        if len(names) >= limit:
            break
    return names


def _turn_around(name: str) -> str:
    last, sep, first = name.partition(",")
    return f"{first.strip()} {last.strip()}" if sep and first.strip() and " " not in last.strip() else name


def pick_canonical(facts: PageFacts) -> str:
    """``<link rel=canonical>``, else ``og:url``, when on the fetched page's site and not the site's home page
    (a common template bug); otherwise the fetched URL. Tracking parameters removed."""
    fetched_url = facts.url
    candidates = [*facts.canonical_links, *facts.meta.get("og:url", ())]
    fetched_path = urlsplit(fetched_url).path
    for candidate in candidates:
        if not candidate or not candidate.strip():
            continue
        absolute = urljoin(fetched_url, candidate.strip())
        parts = urlsplit(absolute)
        if parts.scheme not in ("http", "https") or not _same_site(domain_of(absolute), domain_of(fetched_url)):
            continue
        if parts.path in ("", "/") and fetched_path not in ("", "/"):
            continue
        return canonical_url(absolute)
    return canonical_url(fetched_url)


def _same_site(a: str, b: str) -> bool:
    """Same host, or one a subdomain of the other (``m.example.com`` and ``example.com``)."""
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def is_paywalled(facts: PageFacts) -> bool:
    """The page marks its content as for subscribers (schema.org ``isAccessibleForFree: false``, the
    ``article:content_tier`` meta tag)."""
    objects = [facts.article, *facts.page_objects]
    for obj in objects:
        parts = obj.get("hasPart")
        for item in [obj, *(parts if isinstance(parts, list) else [parts] if isinstance(parts, dict) else [])]:
            if str(item.get("isAccessibleForFree", "")).strip().lower() in ("false", "no", "0"):
                return True
    tier = (facts.first_meta("article:content_tier") or "").lower()
    return tier in ("locked", "premium")
