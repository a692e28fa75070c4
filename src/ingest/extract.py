"""Extraction stage: HTML bytes in, an ``Extracted`` record out (:func:`extract_article`); a feed entry and its
fetched page in, the ``Article`` out (:func:`article_from_page`). No network here.

trafilatura finds the main text; the page's own metadata (``ingest.metadata``) decides the headline, the dates,
the authors and the canonical URL, with trafilatura's guesses as the fallback. The feed entry fills what the
page does not say, and stands in for a page with no usable text.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import logging
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import lxml.html
import trafilatura
from lxml.etree import ParserError
from trafilatura.utils import detect_encoding, load_html

from ingest import authors, metadata
from ingest.config import PipelineSettings
from ingest.dates import parse_iso_datetime
from ingest.dedup import content_hash
from ingest.errors import PermanentError
from ingest.lang import choose_language, detect_language, normalise_language
from ingest.metadata import not_future
from ingest.models import Article, ArticleFlag, DateSource, Extracted, FeedEntry, Page, Source
from ingest.text import clean, fold
from ingest.urls import article_id, canonical_url, domain_of

logger = logging.getLogger(__name__)

# Keep the time of day and the publisher's offset, and prefer the original publication date to updates.
_DATE_PARAMS = {"extensive_search": True, "original_date": True, "outputformat": "%Y-%m-%dT%H:%M:%S%z"}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)""", re.IGNORECASE)
# WHATWG: these labels mean windows-1252 in a browser, and pages written for browsers rely on it.
_LATIN1_LABELS = {"iso-8859-1", "latin-1", "latin1", "l1", "us-ascii", "ascii", "iso8859-1", "cp819"}
# Lines a paywall or a photo caption adds to the main text (French, English, German).
_SUBSCRIBE = re.compile(
    r"(?:pour lire la suite|pour accéder en illimité|abonnez-vous|déjà abonné|cet article est réservé aux abonnés"
    r"|subscribe (?:now|today|to (?:continue|read))|already a subscriber|to continue reading"
    r"|sign in to (?:continue|read)"
    r"|jetzt abonnieren|bereits abonnent|weiterlesen mit|dieser artikel ist (?:nur )?für abonnenten)",
    re.IGNORECASE,
)
_CREDIT = re.compile(r"(?:crédits? photos?|photo credits?|bildquelle|fotos?:)\s*:?", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def extract_article(
    html: bytes | str,
    url: str,
    min_text_chars: int = 0,
    *,
    encoding: str | None = None,
    now: datetime | None = None,
) -> Extracted:
    """Main text and metadata of a news page; ``PermanentError`` with a reason when there is none.

    ``encoding`` is the charset the server declared; ``now`` (the fetch time) rules out dates in the future.
    """
    text_html = decode_html(html, encoding) if isinstance(html, bytes) else html
    tree = load_html(text_html)
    if tree is None:
        raise PermanentError("not_html", url, "the bytes do not parse as HTML")
    facts = metadata.read_page(tree, url)
    title = metadata.pick_title(tree, facts)
    # The byline links are read before trafilatura prunes the tree: the last resort, after trafilatura's own
    # byline guess (before it, they also picked up the authors of teasers inside <main>); not read when the page
    # declares someone other than the site itself.
    declared = metadata.declared_authors(facts)
    site_only = authors.is_site(authors.clean_authors(declared, facts.site_names), facts.site_names)
    byline = metadata.byline_authors(tree) if site_only else []
    standfirst = _standfirst(tree, facts)
    canonical = metadata.pick_canonical(facts)
    declared_lang = normalise_language(tree.get("lang") or tree.get("xml:lang") or facts.first_meta("og:locale"))
    # The page's JSON-LD was read into ``facts``; trafilatura's metadata pass would parse it again, and where its
    # minifier breaks valid JSON it falls back to slow regular expressions (a quarter of a second on some pages).
    # Only JSON-LD that does not parse is left to it: its regular expressions still find an author there.
    for script in tree.xpath('//script[@type="application/ld+json"]'):
        if _parses_as_json(script.text_content()):
            script.getparent().remove(script)
    doc: Any = trafilatura.bare_extraction(
        tree,
        url=url,
        with_metadata=True,
        deduplicate=False,
        include_comments=False,
        include_tables=True,
        favor_precision=False,
        date_extraction_params=_DATE_PARAMS,
    )
    if doc is None or not (doc.text or "").strip():
        raise PermanentError("extraction_empty", url, "no main text found in the page")
    title = title or (doc.title or "").strip() or None
    text, prompted = _drop_prompts(_drop_leading_title(doc.text.strip(), title))
    if standfirst and fold(standfirst) not in fold(text):
        text = f"{standfirst}\n{text}"
    if not text:
        raise PermanentError("extraction_empty", url, "the page's text is only a subscription prompt")
    if len(text) < min_text_chars:
        raise PermanentError("too_short", url, f"{len(text)} characters < {min_text_chars}")
    published, published_source = _published(tree, facts, doc.date, now)
    modified = metadata.modified_date(facts)
    detected_lang = detect_language(text)
    return Extracted(
        url=url,
        canonical_url=canonical,
        title=title,
        text=text,
        summary=(doc.description or "").strip() or None,
        authors=authors.pick_authors((declared, doc.author, byline), facts.site_names),
        published_at=published,
        published_source=published_source,
        modified_at=modified if metadata.not_future(modified, now) else None,
        # Pages copied from a template often declare the template's language: the text decides.
        language=detected_lang or declared_lang,
        language_declared=declared_lang,
        language_detected=detected_lang,
        site_name=doc.sitename or None,
        tags=tuple(dict.fromkeys(t for t in (*(doc.categories or []), *(doc.tags or [])) if t)),
        image_url=doc.image or None,
        paywalled=prompted or metadata.is_paywalled(facts),
    )


def _parses_as_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _published(
    tree: Any, facts: metadata.PageFacts, htmldate: str | None, now: datetime | None
) -> tuple[datetime | None, DateSource | None]:
    """The first declared publication date not in the future, else htmldate's guess from the page."""
    for value, source in metadata.published_candidates(tree, facts):
        if metadata.not_future(value, now):
            return value, source
    guessed = parse_iso_datetime(htmldate, utc=False)
    if metadata.not_future(guessed, now):
        return guessed, "htmldate"
    return None, None


def decode_html(body: bytes, declared: str | None = None) -> str:
    """Text of an HTML page: byte-order mark, then the server's charset, then the page's ``<meta charset>``,
    then detection. A page that is valid UTF-8 but labelled Latin-1 is read as UTF-8 (a server default
    that lies far more often than a Latin-1 text happens to be valid UTF-8)."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body.decode(name, errors="replace")
    meta = _META_CHARSET.search(body[:4096])
    for label in (declared, meta.group(1).decode("ascii", "ignore") if meta else None):
        codec = _codec(label)
        if codec is None:
            continue
        if codec == "cp1252" and not body.isascii():
            try:
                return body.decode("utf-8")
            except UnicodeDecodeError:
                pass
        try:
            return body.decode(codec)
        except UnicodeDecodeError:
            continue
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    for guess in detect_encoding(body):
        try:
            return body.decode(guess)
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("utf-8", errors="replace")


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().lower()
    if label in _LATIN1_LABELS:
        return "cp1252"
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def feed_text(entry: FeedEntry) -> str:
    """The text a feed gives for an entry (its summary without markup, else its title): what is indexed when
    the page itself has no usable text."""
    summary = entry.summary or ""
    if "<" in summary:
        with contextlib.suppress(ParserError):
            summary = lxml.html.fragment_fromstring(summary, create_parent="div").text_content()
    summary = " ".join(summary.split())
    return summary or " ".join((entry.title or "").split())


def split_authors(raw: str | None) -> tuple[str, ...]:
    """``"Le Monde; Bertrand Bissuel"`` → ``("Le Monde", "Bertrand Bissuel")``."""
    return authors.clean_authors(raw)


def _drop_prompts(text: str) -> tuple[str, bool]:
    """The text without the short lines that ask the reader to subscribe or credit a photo; and whether a
    subscription prompt was among them (the page is then a paywalled one)."""
    kept, prompted = [], False
    for line in text.split("\n"):
        short = len(line) <= 160
        if short and _SUBSCRIBE.match(line.strip()):
            prompted = True
        elif not (short and _CREDIT.match(line.strip())):
            kept.append(line)
    return "\n".join(kept).strip(), prompted


# The elements a standfirst is printed in, and the containers it must be inside (not a teaser in a sidebar).
_STANDFIRST_TAGS = ("p", "div", "h2", "span")
_ARTICLE_PARTS = frozenset({"article", "main", "header"})


def _standfirst(tree: Any, facts: metadata.PageFacts) -> str | None:
    """The article's standfirst as printed on the page: the element inside the article (or its header) whose
    text is the page's declared description (og:description, description, twitter:description; the declared
    one may be cut short with "…"). trafilatura leaves it out when it sits above the body; it is the
    article's first paragraph. None when the description is not printed there."""
    declared = facts.first_meta("og:description", "description", "twitter:description")
    wanted = fold(declared.rstrip(" .…")) if declared else ""
    if len(wanted) < 40:
        return None
    for element in tree.iter(*_STANDFIRST_TAGS):
        head = fold((element.text or "")[:60])
        if len(head) < 12 or not wanted.startswith(head[:40]):
            continue  # cheap test on the element's own first words before reading all its text
        printed = clean(element.text_content())
        folded = fold(printed)
        if not folded.startswith(wanted) or len(folded) > 2 * len(wanted) + 40:
            continue
        if any(a.tag in _ARTICLE_PARTS for a in element.iterancestors()):
            return printed
    return None


def _drop_leading_title(text: str, title: str | None) -> str:
    # trafilatura keeps the headline as the first line of the text when it sits inside the article.
    if title:
        first, _, rest = text.partition("\n")
        if first.strip() == title and rest.strip():
            return rest.strip()
    return text


# ------------------------------------------------------------------ the article of a feed entry


def build_article(entry: FeedEntry, extracted: Extracted, fetched_at: datetime) -> Article:
    """The article record from what the feed said and what the page holds (the page wins)."""
    published, source = extracted.published_at, extracted.published_source
    if published is None and not_future(entry.published_at, fetched_at):
        published, source = entry.published_at, "feed"
    return Article(
        article_id=article_id(extracted.canonical_url),
        url=entry.url,
        canonical_url=extracted.canonical_url,
        source=Source(feed_id=entry.feed_id, name=entry.feed_name, domain=domain_of(extracted.canonical_url)),
        title=extracted.title or entry.title,
        text=extracted.text,
        summary=extracted.summary or entry.summary,
        authors=extracted.authors,
        language=choose_language(extracted.text, extracted.language_detected, extracted.language_declared,
                                 entry.language) or extracted.language,
        language_declared=extracted.language_declared,
        language_detected=extracted.language_detected,
        published_at=published,
        published_source=source,
        modified_at=extracted.modified_at or feed_modified(entry, published, fetched_at),
        fetched_at=fetched_at,
        site_name=extracted.site_name,
        tags=normalise_tags((*extracted.tags, *entry.tags)),
        image_url=extracted.image_url,
        flags=("paywalled",) if extracted.paywalled else (),
        content_hash=content_hash(extracted.text),
    )


def feed_modified(entry: FeedEntry, published: datetime | None, fetched_at: datetime) -> datetime | None:
    """The feed's date of the entry's last change, when it is later than the publication date and not future
    (Atom requires <updated> even for an entry never changed: then it equals the publication date)."""
    updated = entry.updated_at
    if updated is None or not not_future(updated, fetched_at):
        return None
    return updated if published is None or updated > published else None


def article_from_feed(entry: FeedEntry, fetched_at: datetime, flag: ArticleFlag) -> Article:
    """The article as the feed tells it (title, and the summary as its text), for a page with no usable text;
    ``flag`` says why. ``PermanentError`` with the flag as reason when the feed gives no text either."""
    text = feed_text(entry)
    if not text:
        raise PermanentError(flag, entry.url, "the page has no usable text and the feed entry none either")
    canonical = canonical_url(entry.url)
    dated = not_future(entry.published_at, fetched_at)
    detected = detect_language(text)
    return Article(
        article_id=article_id(canonical),
        url=entry.url,
        canonical_url=canonical,
        source=Source(feed_id=entry.feed_id, name=entry.feed_name, domain=domain_of(canonical)),
        title=entry.title,
        text=text,
        summary=entry.summary,
        language=entry.language or detected,
        language_detected=detected,
        published_at=entry.published_at if dated else None,
        published_source="feed" if dated else None,
        modified_at=feed_modified(entry, entry.published_at if dated else None, fetched_at),
        fetched_at=fetched_at,
        tags=normalise_tags(entry.tags),
        text_source="feed",
        flags=(flag,),
        content_hash=content_hash(text),
    )


def article_from_page(
    entry: FeedEntry, page: Page, now: datetime, settings: PipelineSettings
) -> tuple[Article, tuple[str, ...]]:
    """The article of a fetched page and the outcomes to count (``extract/<outcome>``); the feed's title and
    summary stand in for a page whose text is empty, too short or a paywall stub (counted, flagged on the
    document). ``PermanentError`` when neither has text."""
    try:
        extracted = extract_article(page.body, page.final_url, settings.min_text_chars, encoding=page.encoding,
                                    now=now)
    except PermanentError as e:
        if e.reason not in ("extraction_empty", "too_short"):
            raise
        flag: ArticleFlag = "extraction_empty" if e.reason == "extraction_empty" else "too_short"
        return article_from_feed(entry, now, flag), (f"extract/{e.reason}", "extract/feed_fallback")
    article = build_article(entry, extracted, now)
    if not extracted.paywalled:
        return article, ()
    stand_in = feed_text(entry)
    if len(extracted.text) < settings.paywall_stub_chars and len(stand_in) > len(extracted.text):
        article = article.model_copy(
            update={"text": stand_in, "text_source": "feed", "content_hash": content_hash(stand_in)}
        )
        return article, ("extract/paywalled", "extract/feed_fallback")
    return article, ("extract/paywalled",)


_TAG_SEPARATORS = re.compile(r"\s*[,;|]\s*")
MAX_TAG_CHARS = 100


def normalise_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Facet-ready tags: a keyword list given as one string split on ``,``, ``;`` and ``|``; whitespace folded;
    longer than 100 characters or empty dropped; the first spelling of a tag kept, case aside."""
    seen: dict[str, str] = {}
    for raw in tags:
        for part in _TAG_SEPARATORS.split(raw):
            tag = " ".join(part.split())
            if tag and len(tag) <= MAX_TAG_CHARS:
                seen.setdefault(tag.casefold(), tag)
    return tuple(seen.values())

