"""The records that cross stage boundaries. All frozen; a stage returns a new record."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

EntityLabel = Literal["PER", "ORG", "LOC", "MISC"]
# Where a publication date came from: the page's JSON-LD, its meta tags, a <time> element, htmldate's search
# of the page, or the feed entry.
DateSource = Literal["json_ld", "meta", "html", "htmldate", "feed"]
# Why an article's text is not the page's full text: the page marks it for subscribers, its text was empty or
# shorter than pipeline.min_text_chars (then the feed's title and summary are the text).
ArticleFlag = Literal["paywalled", "extraction_empty", "too_short"]


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeedSource(Record):
    """One feed from the registry."""

    id: str
    url: str
    name: str
    language: str | None = None
    tags: tuple[str, ...] = ()
    enabled: bool = True
    poll_interval_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)


# What one feed entry may carry at most: a hostile or broken feed cannot fill the stream with megabytes per entry.
MAX_TITLE_CHARS = 1_000
MAX_SUMMARY_CHARS = 20_000
MAX_TAGS = 50
MAX_TAG_CHARS = 100


class FeedEntry(Record):
    """One item read from a feed: what the poll stage queues for processing. Titles, summaries and tags are cut
    to the caps above (a summary stands in for a paywalled text: 20,000 characters are plenty)."""

    feed_id: str
    feed_name: str
    url: str
    guid: str | None = None
    title: str | None = None
    summary: str | None = None
    published_at: datetime | None = None
    # When the feed says the entry last changed (Atom <updated>, JSON Feed date_modified, sitemap <lastmod>), when
    # it says so apart from the publication date: a later one than remembered means the article was updated.
    updated_at: datetime | None = None
    language: str | None = None
    tags: tuple[str, ...] = ()

    @field_validator("title")
    @classmethod
    def _cap_title(cls, value: str | None) -> str | None:
        return value[:MAX_TITLE_CHARS] if value else value

    @field_validator("summary")
    @classmethod
    def _cap_summary(cls, value: str | None) -> str | None:
        return value[:MAX_SUMMARY_CHARS] if value else value

    @field_validator("tags")
    @classmethod
    def _cap_tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(tag[:MAX_TAG_CHARS] for tag in value[:MAX_TAGS])


class Page(Record):
    """A fetched page: the bytes and what the server said about them."""

    url: str
    final_url: str
    status: int
    content_type: str
    body: bytes
    encoding: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    # Seconds the server says the response stays fresh (Cache-Control max-age or Expires), if it says.
    max_age: float | None = None


class FeedState(Record):
    """What the last successful poll of a feed learned: validators for a conditional GET, and the body hash
    for servers that ignore them."""

    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    failing_since: datetime | None = None
    consecutive_failures: int = 0
    next_poll_at: datetime | None = None
    disabled: bool = False
    # The adaptive schedule: the interval in use, the publishing rate seen in the feed, and the feed's own
    # hint (RSS ttl, sy:updatePeriod/updateFrequency) in minutes.
    interval_minutes: float | None = None
    entries_per_day: float | None = None
    hint_minutes: float | None = None


class Extracted(Record):
    """What extraction finds in one HTML page (pure function of the bytes)."""

    url: str
    canonical_url: str
    title: str | None
    text: str
    summary: str | None = None
    authors: tuple[str, ...] = ()
    published_at: datetime | None = None
    published_source: DateSource | None = None
    modified_at: datetime | None = None
    language: str | None = None
    language_declared: str | None = None
    language_detected: str | None = None
    site_name: str | None = None
    tags: tuple[str, ...] = ()
    image_url: str | None = None
    paywalled: bool = False


class Mention(Record):
    """One span the NER found: character offsets into the text it was found in."""

    text: str
    label: EntityLabel
    start: int
    end: int


class Entity(Record):
    """One entity of an article: a canonical name, its label and the surface forms seen.

    ``entity_id`` is the same for the same thing across articles and languages (``geo:<geonameid>`` for a
    geo-coded place, the alias table's id for a known entity, else ``<label>:<folded name>``); ``first`` is the
    character offset of the first mention; ``salience`` in [0, 1] grows with the count and an early first
    mention.
    """

    name: str
    label: EntityLabel
    mentions: tuple[str, ...]
    count: int
    entity_id: str = ""
    first: int = 0
    salience: float = 0.0


class GeoPoint(Record):
    lat: float
    lon: float


class Place(Record):
    """A LOC entity of an article geo-coded by the gazetteer, for map views."""

    name: str
    entity_id: str
    geo: GeoPoint
    country_code: str | None = None
    # "country" or "city" (a region named after its main city is geo-coded to the city).
    feature: Literal["country", "city"] = "city"
    gazetteer_name: str = ""
    population: int | None = None


class Enrichment(Record):
    status: Literal["ok", "unsupported_language", "skipped"] = "skipped"
    models: tuple[str, ...] = ()
    version: str = "1"
    # The offline gazetteer the places come from, as ``<package>-<version>`` (None when nothing ran).
    gazetteer: str | None = None


class Source(Record):
    feed_id: str
    name: str
    domain: str


class Article(Record):
    """One article as it is indexed: the document downstream consumers read."""

    article_id: str
    url: str
    canonical_url: str
    source: Source
    title: str | None
    text: str
    summary: str | None = None
    authors: tuple[str, ...] = ()
    language: str | None = None
    language_declared: str | None = None
    language_detected: str | None = None
    published_at: datetime | None = None
    published_source: DateSource | None = None
    modified_at: datetime | None = None
    fetched_at: datetime
    site_name: str | None = None
    tags: tuple[str, ...] = ()
    image_url: str | None = None
    text_source: Literal["page", "feed"] = "page"
    flags: tuple[ArticleFlag, ...] = ()
    content_hash: str
    story_id: str | None = None
    duplicate_of: str | None = None
    entities: tuple[Entity, ...] = ()
    places: tuple[Place, ...] = ()
    mentions: tuple[Mention, ...] = Field(default=(), exclude=True)
    enrichment: Enrichment = Field(default_factory=Enrichment)


# ------------------------------------------------------------------ records between the stages and their stores


@dataclass(frozen=True)
class QueuedEntry:
    """A feed entry read from the pending stream, with its stream id, how often it was delivered, and why the
    last delivery that tried it left it pending (None: none did)."""

    message_id: str
    entry: FeedEntry
    deliveries: int
    last_failure: str | None = None
    queued_at: datetime | None = None  # when the poll added it to the stream (None: the queue does not say)


@dataclass(frozen=True)
class ItemOutcome:
    """What the search server said about one document of a bulk request."""

    article_id: str
    ok: bool
    status: int
    error: str | None = None

    @property
    def retryable(self) -> bool:
        return not self.ok and (self.status == 429 or self.status >= 500 or self.status == 0)


@dataclass(frozen=True)
class Signature:
    """What the store keeps of one text: shingle fingerprints in text order, weighted keyword stems, the
    heaviest first (32-bit hashes; weights scaled to one byte), the day the article was published (days
    since 1970; 0 when unknown) and its site (a 16-bit hash of the URL's host, :func:`ingest.dedup.site_of`; 0
    when unknown)."""

    fingerprints: tuple[int, ...]
    keywords: tuple[tuple[int, int], ...]
    day: int = 0
    site: int = 0

    def packed(self) -> bytes:
        """Fingerprints then (keyword, weight) pairs, big-endian: the form the Redis script reads."""
        flat = [x for pair in self.keywords for x in pair]
        return struct.pack(f">{len(self.fingerprints)}I", *self.fingerprints) + struct.pack(
            ">" + "IB" * len(self.keywords), *flat
        )



@dataclass(frozen=True)
class Assignment:
    """What the story store decided for one article."""

    story_id: str
    duplicate_of: str | None = None
    # containment for a duplicate, cosine for a story joined (less the same-site penalty), 0 for a new story
    score: float = 0.0
    # ``new``: first of its story; ``story``: joined an earlier article's story; ``duplicate``: near-verbatim
    # copy of an earlier article; ``updated``: a new text of an article kept before, which keeps its story
    # (and is a copy of an earlier article or not); ``again``: this article (this text of it) was assigned
    # before (a retry), same answer.
    kind: Literal["new", "story", "duplicate", "updated", "again"] = "new"



# The exact level remembers 64 bits of a text's hash: enough to tell the versions of one article apart, and two
# texts among 10^8 remembered share them with odds under 10^-3.
TEXT_KEY_CHARS = 16


def text_key(text_hash: str) -> str:
    """What the exact level keeps of a ``content_hash``."""
    return text_hash[:TEXT_KEY_CHARS]


@dataclass(frozen=True)
class Mark:
    """What the exact level remembers of one URL (by article id): the key of the text found there, the feed's
    date of the entry and when the URL was fetched (seconds since 1970; a stamp of 0: the feed gave no date);
    for an article that was indexed, its story too, which an updated text keeps. A URL whose text was another
    article's (a copy, or a URL that led to an article indexed under its canonical id) is only seen:
    ``story_id`` is None."""

    text_key: str
    stamp: int = 0
    checked_at: int = 0
    story_id: str | None = None

    def seen_only(self) -> Mark:
        return Mark(self.text_key, self.stamp, self.checked_at)



@dataclass(frozen=True)
class Decision:
    """Exact level: ``new``; ``duplicate`` of the article that first had this text (not indexed); ``updated``,
    an indexed article's URL with another text (indexed again, keeping its story; whether the new text is a
    near-verbatim copy is the story store's to say); ``unchanged``, the text already seen under this URL."""

    kind: Literal["new", "duplicate", "updated", "unchanged"]
    story_id: str
    duplicate_of: str | None


@dataclass(frozen=True)
class QueueHealth:
    """The pending stream at one moment (``RedisPendingQueue.health``)."""

    pending: int
    unread: int
    stale: int
    oldest_stale_seconds: float
    dead_letters: int
    dead_by_reason: dict[str, int]
