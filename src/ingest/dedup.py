"""Dedup stage: is an article new, a copy of an earlier one, and which story is it part of?

Three levels, each decided from what the article's text alone gives (pure functions here) and the state a
:class:`~ingest.stores.base.StoryStore` keeps for the last ``dedup.window_days`` days:

- exact: the same canonical URL (the article id) or the same normalised text (``content_hash``) → not indexed
  again, unless the URL's text changed: an update is indexed again under the same id and keeps its story. What
  the store remembers of a URL is a :class:`Mark` (``dedup.seen_days``); :func:`entry_status` tells from it
  whether a feed entry needs processing, :func:`decide` what to do with the text found;
- ``duplicate_of``: a near-verbatim copy (syndication with another byline or boilerplate, a teaser cut short,
  a corrected typo). Fingerprints are a content-defined sample of the text's word shingles, so a copy's sample
  is (nearly) a subset of the original's; a copy shares ``min_shared`` of them and ``duplicate_containment``
  of the shorter text's;
- ``story_id``: the same event told by other outlets in other words. Keywords are word stems weighted by how
  rare the word is in its language (``wordfreq``, no corpus state, the same weights whatever arrived before);
  the same story when the weighted cosine of two keyword sets reaches ``story_similarity`` and, when both
  publication dates are known, they are at most ``story_days`` apart: a story is an event, and two articles on
  one topic a month apart (the same war, the same politician) are two stories. Two articles of one site count
  ``same_site_penalty`` less: a site's pages share its template words, a story is told by several outlets.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Literal

from ingest.config import DedupSettings
from ingest.models import Assignment, Decision, FeedEntry, Mark, Signature, text_key
from ingest.stores.base import DedupStore, StoryStore
from ingest.urls import domain_of

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_WORD = re.compile(r"\w+", re.UNICODE)
# Keyword stems: the first letters of a word, so "drone"/"drones", "Dschungelcamp"/"Dschungelcamps" match.
STEM_CHARS = 4
# A keyword's weight is (1 + ln tf) × (RARE_ZIPF − the word's Zipf frequency in its language), at least
# COMMON_WEIGHT; words the language's list does not know count as rare.
RARE_ZIPF = 8.0
COMMON_WEIGHT = 0.3
# Weights are stored as one byte: weight × WEIGHT_SCALE, 1..255.
WEIGHT_SCALE = 16


def normalise_text(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form of a text, for hashing."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in folded if not unicodedata.combining(c))
    return _NON_WORD.sub(" ", stripped).strip()


def content_hash(text: str) -> str:
    """Hash of the normalised text: equal for copies that differ only in case, accents or spacing."""
    return hashlib.sha1(normalise_text(text).encode("utf-8")).hexdigest()


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def fingerprints(words: list[str], settings: DedupSettings) -> tuple[int, ...]:
    """Hashes of the word shingles whose hash is 0 modulo ``sample_every``, from the start of the text.

    The sample depends on the shingle alone, so a text cut short keeps the sample of the part it keeps, and a
    line of boilerplate added or a word corrected changes only the few shingles that contain it.
    """
    k = settings.shingle_words
    found: dict[int, None] = {}
    for i in range(max(1, len(words) - k + 1)):
        value = _hash64(" ".join(words[i : i + k]))
        if value % settings.sample_every == 0:
            found[value >> 32] = None
            if len(found) == settings.max_fingerprints:
                break
    return tuple(found)


@lru_cache(maxsize=64)
def stop_words(language: str | None) -> frozenset[str]:
    """spaCy's stop word list for a language (folded like the text), empty when spaCy has none."""
    if not language:
        return frozenset()
    import importlib

    try:
        module = importlib.import_module(f"spacy.lang.{language}.stop_words")
    except ImportError:
        return frozenset()
    return frozenset(normalise_text(w) for w in module.STOP_WORDS)


# Scripts written without spaces between words (Han, kana, Thai, Lao, Khmer, Myanmar): a run of them is cut
# into overlapping two-character tokens, which is how search engines index them without a dictionary.
_UNSPACED = re.compile(r"[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
                       r"\uf900-\ufaff]+")


def words_of(text: str) -> list[str]:
    """The text's words for fingerprints and keywords: its normalised words, a run of an unspaced script cut
    into character bigrams ("北京发生地震" → 北京 京发 发生 生地 地震)."""
    out: list[str] = []
    for word in normalise_text(text).split():
        if not _UNSPACED.search(word):
            out.append(word)
            continue
        for part in re.split(f"({_UNSPACED.pattern})", word):
            if _UNSPACED.fullmatch(part):
                out.extend([part] if len(part) == 1 else [part[i : i + 2] for i in range(len(part) - 1)])
            elif part:
                out.append(part)
    return out


@lru_cache(maxsize=64)
def _frequencies(language: str) -> dict[str, float] | None:
    """wordfreq's word list for a language, read directly (no tokenizer needed), or None when it has none."""
    from wordfreq import available_languages, get_frequency_dict

    return get_frequency_dict(language, "small") if language in available_languages("small") else None


@lru_cache(maxsize=200_000)
def rarity(word: str, language: str | None) -> float:
    """How informative a word is in its language: high for names and rare words, low for common ones. A
    language wordfreq has no list for counts every word as rare (the same weight for all: the text decides)."""
    frequencies = _frequencies(language or "en")
    frequency = frequencies.get(word, 0.0) if frequencies is not None else 0.0
    zipf = math.log10(frequency * 1e9) if frequency > 0 else 0.0
    return max(COMMON_WEIGHT, RARE_ZIPF - zipf)


def keywords(words: list[str], language: str | None, limit: int) -> tuple[tuple[int, int], ...]:
    """The ``limit`` heaviest keyword stems of a text as (32-bit hash, weight byte), heaviest first."""
    stops = stop_words(language)
    counts: Counter[str] = Counter()
    weight: dict[str, float] = {}
    for word in words:
        if (len(word) < 3 and not _UNSPACED.match(word)) or word.isdigit() or word in stops:
            continue
        stem = word[:STEM_CHARS]
        counts[stem] += 1
        weight[stem] = max(weight.get(stem, 0.0), rarity(word, language))
    scored = (((1 + math.log(n)) * weight[s], s) for s, n in counts.items())
    top = sorted(scored, key=lambda x: (-x[0], x[1]))[:limit]
    return tuple((_hash64(s) >> 32, max(1, min(255, round(w * WEIGHT_SCALE)))) for w, s in top)


def signature(text: str, language: str | None, settings: DedupSettings, published: datetime | None = None,
              url: str | None = None) -> Signature:
    words = words_of(text)
    return Signature(fingerprints(words, settings), keywords(words, language, settings.keywords),
                     publication_day(published), site_of(url))


def site_of(url: str | None) -> int:
    """A 16-bit hash of a URL's host without ``www.`` (1..65535; 0: no URL or no host), which the story store
    compares to tell two articles of one site."""
    host = domain_of(url) if url else ""
    return 1 + _hash64(host) % 65535 if host else 0


def publication_day(published: datetime | None) -> int:
    """Days since 1970 of a publication date (0: unknown, or before 1970-01-02)."""
    if published is None:
        return 0
    day = int(published.timestamp() // 86400)
    return day if 0 < day < 65536 else 0


def cosine(a: Iterable[tuple[Hashable, float]], b: Iterable[tuple[Hashable, float]]) -> float:
    """Weighted cosine of two (term, weight) lists (the store computes the same for keywords in its script)."""
    wa, wb = dict(a), dict(b)
    dot = sum(w * wb.get(k, 0) for k, w in wa.items())
    norm = math.sqrt(sum(w * w for w in wa.values())) * math.sqrt(sum(w * w for w in wb.values()))
    return dot / norm if norm else 0.0


def entry_stamp(entry: FeedEntry) -> int:
    """The feed's latest date of an entry, in seconds since 1970 (0: none). A later date than the one remembered
    for its URL says the article was updated: feeds that update in place re-date the entry (RSS) or keep its
    publication date and move its ``updated_at`` (Atom <updated>, JSON Feed date_modified, sitemap <lastmod>)."""
    dates = [d for d in (entry.published_at, entry.updated_at) if d is not None]
    return int(max(dates).timestamp()) if dates else 0


EntryStatus = Literal["new", "updated", "update_later", "seen"]


def entry_status(mark: Mark | None, stamp: int, now: datetime, settings: DedupSettings) -> EntryStatus:
    """Whether a feed entry is to be processed: its URL was never seen (``new``), or the feed dates it later than
    when it was (``updated``: fetched again, and indexed again if the text changed) — at most once per
    ``recheck_minutes`` (``update_later`` until then: a feed that re-dates its entries at every poll costs no
    more); else ``seen``."""
    if mark is None:
        return "new"
    if stamp <= mark.stamp:
        return "seen"
    due = now.timestamp() - mark.checked_at >= 60 * settings.recheck_minutes
    return "updated" if due else "update_later"


def decide(article_id: str, text_hash: str, mark: Mark | None, owner: str | None) -> Decision:
    """Exact level of an article from what the store remembers of its id (``mark``) and of its text (``owner``:
    the article that first had it)."""
    if mark is not None and mark.text_key == text_key(text_hash):
        return Decision("unchanged", mark.story_id or article_id, None)
    if mark is not None and mark.story_id is not None:
        return Decision("updated", mark.story_id, None)
    if owner is not None and owner != article_id:
        return Decision("duplicate", story_id=owner, duplicate_of=owner)
    return Decision("new", story_id=article_id, duplicate_of=None)


def entries_to_queue(
    ids: Sequence[str], entries: Sequence[FeedEntry], marks: Sequence[Mark | None], now: datetime,
    settings: DedupSettings,
) -> tuple[list[tuple[str, FeedEntry]], list[tuple[str, int]]]:
    """The polled entries to queue (new, or updated and due: :func:`entry_status`) with their article ids, and
    the poll's counters for the others (``poll/already_indexed``, ``poll/update_later``) and ``poll/updated``."""
    counts: list[tuple[str, int]] = []
    fresh: list[tuple[str, FeedEntry]] = []
    for doc_id, entry, mark in zip(ids, entries, marks, strict=True):
        status = entry_status(mark, entry_stamp(entry), now, settings)
        if status in ("seen", "update_later"):
            counts.append(("poll/already_indexed" if status == "seen" else "poll/update_later", 1))
            continue
        if status == "updated":
            counts.append(("poll/updated", 1))
        fresh.append((doc_id, entry))
    return fresh, counts


@dataclass(frozen=True)
class ClusterInput:
    id: str
    text: str
    title: str | None = None
    lang: str | None = None
    published: datetime | None = None
    url: str | None = None


@dataclass(frozen=True)
class ClusterResult:
    id: str
    story_id: str
    duplicate_of: str | None
    kind: str = "new"
    score: float = 0.0


def assign_story(
    article_id: str, text: str, language: str | None, decision: Decision, stories: StoryStore,
    settings: DedupSettings, now: datetime, published: datetime | None = None, url: str | None = None,
) -> Assignment:
    """The story store's step for an article to index (``new`` or ``updated``): an updated text keeps the
    article's story, and is kept in the store in it so that copies of it are found."""
    kept_story = decision.story_id if decision.kind == "updated" else None
    return stories.assign(article_id, signature(text, language, settings, published, url), now,
                          kept_story=kept_story)


# Counter names (``dedup/<name>``) of the story store's decisions; docs/operations.md lists them.
_ASSIGNED = {"new": "new_story", "story": "same_story", "duplicate": "near_duplicate", "updated": "updated",
             "again": "assigned_before"}


@dataclass(frozen=True)
class DedupItem:
    """One article for the dedup step: its id, text and language, the hash of its text, what the exact level
    remembers of its id (``mark``), the id of the URL the feed gave (``entry_id``: the claim and the re-poll
    check are on it), the feed's date of the entry (``stamp``, :func:`entry_stamp`), the article's
    publication date (stories are events: :func:`publication_day`) and its URL (its site: :func:`site_of`)."""

    article_id: str
    text: str
    language: str | None
    text_hash: str
    mark: Mark | None
    entry_id: str
    stamp: int = 0
    published: datetime | None = None
    url: str | None = None


@dataclass(frozen=True)
class Verdict:
    """The dedup step's answer. ``assignment`` is the story store's (``None``: not to index, the text is
    unchanged or an exact copy); ``mark`` is what the exact level keeps: for an article to index, its mark
    (committed after the index write), else what to remember of the entry's URL now."""

    decision: Decision
    assignment: Assignment | None
    mark: Mark

    @property
    def counter(self) -> str:
        """The run's counter for this verdict (``stage/outcome``). An update counts as one even when its
        signature is the one kept before (the store says "again")."""
        if self.assignment is None:
            return "process/already_indexed" if self.decision.kind == "unchanged" else "dedup/duplicate_text"
        return "dedup/" + ("updated" if self.decision.kind == "updated" else _ASSIGNED[self.assignment.kind])


class DedupStep:
    """The dedup stage over a sequence of articles (a batch, or ``ingest cluster``'s file), in arrival order:
    exact level → near-duplicate → story. Copies within the sequence are found before the first one is
    committed (its mark is written only after the index write)."""

    def __init__(self, exact: DedupStore, stories: StoryStore, settings: DedupSettings, now: datetime) -> None:
        self.exact, self.stories, self.settings, self.now = exact, stories, settings, now
        self._first: dict[str, str] = {}  # content hash → the first article id with it in this sequence

    def check(self, item: DedupItem, checked_at: int) -> Verdict:
        """The verdict on one article; ``checked_at`` (seconds since 1970) is when its URL was fetched."""
        owner = self.exact.owner_of(item.text_hash, self.now)
        decision = decide(item.article_id, item.text_hash, item.mark, owner)
        first = self._first.get(item.text_hash, item.article_id)
        if decision.kind == "new" and first != item.article_id:
            decision = Decision("duplicate", story_id=first, duplicate_of=first)
        key = text_key(item.text_hash)
        if decision.kind in ("unchanged", "duplicate"):
            # The feed's URL is remembered with the entry's date, so that a re-poll does not queue it again.
            own = item.mark if decision.kind == "unchanged" and item.entry_id == item.article_id else None
            seen = replace(own, stamp=item.stamp, checked_at=checked_at) if own else Mark(key, item.stamp, checked_at)
            return Verdict(decision, None, seen)
        self._first[item.text_hash] = item.article_id
        # Near-verbatim copies and stories: decided and kept in one atomic step, so a copy later in this batch
        # or in another worker's sees this article. An updated text keeps the article's story.
        assigned = assign_story(item.article_id, item.text, item.language, decision, self.stories, self.settings,
                                self.now, item.published, item.url)
        return Verdict(decision, assigned, Mark(key, item.stamp, checked_at, assigned.story_id))


def cluster(
    records: Iterable[ClusterInput], exact: DedupStore, stories: StoryStore, settings: DedupSettings,
    now: datetime,
) -> Iterator[ClusterResult]:
    """Story and duplicate of each record, in arrival order: the pipeline's dedup step without the fetch (a
    record met again with another text is an update), each article kept at once as if indexed. A record's site
    is its ``url``'s, else its id's when the id is an http(s) URL."""
    step = DedupStep(exact, stories, settings, now)
    checked_at = int(now.timestamp())
    for record in records:
        (mark,) = exact.marks([record.id], now)
        url = record.url or (record.id if record.id.startswith(("http://", "https://")) else None)
        item = DedupItem(record.id, record.text, record.lang, content_hash(record.text), mark, record.id,
                         published=record.published, url=url)
        verdict = step.check(item, checked_at)
        decision, assigned = verdict.decision, verdict.assignment
        if assigned is None and decision.kind == "unchanged":
            yield ClusterResult(record.id, decision.story_id, decision.duplicate_of, "unchanged", 1.0)
        elif assigned is None:
            # An exact copy: the story its original was given.
            found = stories.assign(record.id, signature(record.text, record.lang, settings, record.published, url),
                                   now, insert=False)
            yield ClusterResult(record.id, found.story_id if found.duplicate_of else decision.story_id,
                                decision.duplicate_of, "exact", 1.0)
        else:
            exact.commit(record.id, verdict.mark, now)
            yield ClusterResult(record.id, assigned.story_id, assigned.duplicate_of, assigned.kind, assigned.score)
