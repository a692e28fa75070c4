"""The roles stores play. Stages depend on these Protocols, never on a client library."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from ingest.models import FeedEntry, FeedState

if TYPE_CHECKING:
    from ingest.dedup import Assignment, Signature


@dataclass(frozen=True)
class QueuedEntry:
    """A feed entry read from the pending stream, with its stream id and how often it was delivered."""

    message_id: str
    entry: FeedEntry
    deliveries: int


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


class PendingQueue(Protocol):
    def enqueue(self, entries: Iterable[tuple[str, FeedEntry]]) -> int: ...
    def read_batch(self, consumer: str, count: int) -> list[QueuedEntry]: ...
    def ack(self, message_ids: Sequence[str]) -> None: ...
    def dead_letter(self, item: QueuedEntry, reason: str, detail: str) -> None: ...
    def pending_count(self) -> int: ...


class DedupStore(Protocol):
    def is_seen(self, article_id: str) -> bool: ...
    def seen_many(self, article_ids: Sequence[str]) -> list[bool]: ...
    def claim(self, article_id: str, owner: str, ttl_seconds: int) -> bool: ...
    def release(self, article_id: str, owner: str) -> None: ...
    def story_of_hash(self, content_hash: str) -> str | None: ...
    def mark_seen(self, article_id: str) -> None: ...
    def commit(self, article_id: str, content_hash: str) -> str: ...


class StoryStore(Protocol):
    """Near-duplicate and story state over a sliding window of days."""

    def assign(self, article_id: str, signature: Signature, now: datetime, insert: bool = True) -> Assignment:
        """Compare an article with those kept and, atomically with the comparison, keep it (unless
        ``insert`` is false): two workers given copies of one story at once end in one story."""
        ...


class FeedStateStore(Protocol):
    def get(self, feed_id: str) -> FeedState: ...
    def put(self, feed_id: str, state: FeedState) -> None: ...


class HostLimiter(Protocol):
    """Per-host politeness shared by every worker: a request starts only with a grant; the holder says when
    the answer came (the interval runs from then) and releases the grant once the body is read."""

    def try_acquire(self, host: str) -> tuple[str | None, float]:
        """``(token, 0)`` when the request may start now, else ``(None, seconds to wait before asking again)``."""
        ...

    def answered(self, host: str, token: str) -> None: ...
    def release(self, host: str, token: str) -> None: ...

    def penalize(self, host: str, seconds: float) -> None:
        """No request to ``host`` starts for ``seconds`` (the host answered 429 or 503)."""
        ...


class RobotsCache(Protocol):
    """robots.txt bodies per origin (``scheme://host:port``); ``""`` records that a site has none."""

    def get(self, origin: str) -> str | None: ...
    def put(self, origin: str, body: str) -> None: ...


class ArticleSink(Protocol):
    def ensure_ready(self) -> None: ...
    def write(self, documents: Sequence[tuple[str, dict[str, Any]]]) -> list[ItemOutcome]: ...
