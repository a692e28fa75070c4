"""Dedup stage: decide whether an article is new, and which story it belongs to.

This first version matches exactly: the same canonical URL (its article id) or the same normalised text.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from ingest.stores.base import DedupStore

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise_text(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form of a text, for hashing."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in folded if not unicodedata.combining(c))
    return _NON_WORD.sub(" ", stripped).strip()


def content_hash(text: str) -> str:
    """Hash of the normalised text: equal for copies that differ only in case, accents or spacing."""
    return hashlib.sha1(normalise_text(text).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Decision:
    kind: Literal["new", "duplicate"]
    story_id: str
    duplicate_of: str | None


def decide(article_id: str, text_hash: str, store: DedupStore) -> Decision:
    """``new`` with its own story, or ``duplicate`` of the article that first had this text."""
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


def cluster(records: Iterable[ClusterInput], store: DedupStore) -> Iterator[ClusterResult]:
    """Story and duplicate of each record, in arrival order, with the same rules as the pipeline."""
    for record in records:
        text_hash = content_hash(record.text)
        decision = decide(record.id, text_hash, store)
        if decision.kind == "new":
            store.commit(record.id, text_hash)
        yield ClusterResult(record.id, decision.story_id, decision.duplicate_of)
