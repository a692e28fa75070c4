"""Dedup stage: is an article new, a copy of an earlier one, and which story is it part of?

Three levels, each decided from what the article's text alone gives (pure functions here) and the state a
:class:`~ingest.stores.base.StoryStore` keeps for the last ``dedup.window_days`` days:

- exact: the same canonical URL (the article id) or the same normalised text (``content_hash``) → not indexed
  again;
- ``duplicate_of``: a near-verbatim copy (syndication with another byline or boilerplate, a teaser cut short,
  a corrected typo). Fingerprints are a content-defined sample of the text's word shingles, so a copy's sample
  is (nearly) a subset of the original's; a copy shares ``min_shared`` of them and ``duplicate_containment``
  of the shorter text's;
- ``story_id``: the same story told by other outlets in other words. Keywords are word stems weighted by how
  rare the word is in its language (``wordfreq``, no corpus state, the same weights whatever arrived before);
  the same story when the weighted cosine of two keyword sets reaches ``story_similarity``.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import unicodedata
from collections import Counter
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Literal

from ingest.config import DedupSettings
from ingest.stores.base import DedupStore, StoryStore

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_WORD = re.compile(r"\w+", re.UNICODE)
# Keyword stems: the first letters of a word, so "drone"/"drones", "Dschungelcamp"/"Dschungelcamps" match.
STEM_CHARS = 5
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


@dataclass(frozen=True)
class Signature:
    """What the store keeps of one text: shingle fingerprints in text order and weighted keyword stems, the
    heaviest first (32-bit hashes; weights scaled to one byte)."""

    fingerprints: tuple[int, ...]
    keywords: tuple[tuple[int, int], ...]

    def packed(self) -> bytes:
        """Fingerprints then (keyword, weight) pairs, big-endian: the form the Redis script reads."""
        flat = [x for pair in self.keywords for x in pair]
        return struct.pack(f">{len(self.fingerprints)}I", *self.fingerprints) + struct.pack(
            ">" + "IB" * len(self.keywords), *flat
        )


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


@lru_cache(maxsize=200_000)
def rarity(word: str, language: str | None) -> float:
    """How informative a word is in its language: high for names and rare words, low for common ones."""
    from wordfreq import zipf_frequency

    try:
        zipf = zipf_frequency(word, language or "en", wordlist="small")
    except LookupError:  # a language wordfreq does not know: every word counts as rare
        zipf = 0.0
    return max(COMMON_WEIGHT, RARE_ZIPF - zipf)


def keywords(words: list[str], language: str | None, limit: int) -> tuple[tuple[int, int], ...]:
    """The ``limit`` heaviest keyword stems of a text as (32-bit hash, weight byte), heaviest first."""
    stops = stop_words(language)
    counts: Counter[str] = Counter()
    weight: dict[str, float] = {}
    for word in words:
        if len(word) < 3 or word.isdigit() or word in stops:
            continue
        stem = word[:STEM_CHARS]
        counts[stem] += 1
        weight[stem] = max(weight.get(stem, 0.0), rarity(word, language))
    scored = (((1 + math.log(n)) * weight[s], s) for s, n in counts.items())
    top = sorted(scored, key=lambda x: (-x[0], x[1]))[:limit]
    return tuple((_hash64(s) >> 32, max(1, min(255, round(w * WEIGHT_SCALE)))) for w, s in top)


def signature(text: str, language: str | None, settings: DedupSettings) -> Signature:
    words = normalise_text(text).split()
    return Signature(fingerprints(words, settings), keywords(words, language, settings.keywords))


def cosine(a: Iterable[tuple[Hashable, float]], b: Iterable[tuple[Hashable, float]]) -> float:
    """Weighted cosine of two (term, weight) lists (the store computes the same for keywords in its script)."""
    wa, wb = dict(a), dict(b)
    dot = sum(w * wb.get(k, 0) for k, w in wa.items())
    norm = math.sqrt(sum(w * w for w in wa.values())) * math.sqrt(sum(w * w for w in wb.values()))
    return dot / norm if norm else 0.0


@dataclass(frozen=True)
class Assignment:
    """What the story store decided for one article."""

    story_id: str
    duplicate_of: str | None = None
    # containment for a duplicate, cosine for a story joined, 0 for a new story
    score: float = 0.0
    # ``new``: first of its story; ``story``: joined an earlier article's story; ``duplicate``: near-verbatim
    # copy of an earlier article; ``again``: this article was assigned before (a retry), same answer.
    kind: Literal["new", "story", "duplicate", "again"] = "new"


@dataclass(frozen=True)
class Decision:
    kind: Literal["new", "duplicate"]
    story_id: str
    duplicate_of: str | None


def decide(article_id: str, text_hash: str, store: DedupStore) -> Decision:
    """Exact level: ``new``, or ``duplicate`` of the article that first had this normalised text."""
    owner = store.story_of_hash(text_hash)
    if owner is None or owner == article_id:
        return Decision("new", story_id=article_id, duplicate_of=None)
    return Decision("duplicate", story_id=owner, duplicate_of=owner)


@dataclass(frozen=True)
class ClusterInput:
    id: str
    text: str
    title: str | None = None
    lang: str | None = None


@dataclass(frozen=True)
class ClusterResult:
    id: str
    story_id: str
    duplicate_of: str | None
    kind: str = "new"
    score: float = 0.0


def cluster(
    records: Iterable[ClusterInput], exact: DedupStore, stories: StoryStore, settings: DedupSettings,
    now: datetime,
) -> Iterator[ClusterResult]:
    """Story and duplicate of each record, in arrival order: the pipeline's dedup step without the fetch."""
    for record in records:
        text_hash = content_hash(record.text)
        decision = decide(record.id, text_hash, exact)
        sig = signature(record.text, record.lang, settings)
        if decision.kind == "duplicate":
            found = stories.assign(record.id, sig, now, insert=False)
            yield ClusterResult(record.id, found.story_id if found.duplicate_of else decision.story_id,
                                decision.duplicate_of, "exact", 1.0)
            continue
        assigned = stories.assign(record.id, sig, now)
        exact.commit(record.id, text_hash)
        yield ClusterResult(record.id, assigned.story_id, assigned.duplicate_of, assigned.kind, assigned.score)
