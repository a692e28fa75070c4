"""The roles stores play. Stages depend on these Protocols, never on a client library."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from ingest.models import Assignment, FeedEntry, FeedState, ItemOutcome, Mark, QueuedEntry, Signature


class PendingQueue(Protocol):
    def enqueue(self, entries: Iterable[tuple[str, FeedEntry]]) -> int: ...
    def mark_new(self, entries: Iterable[tuple[str, FeedEntry]]) -> list[tuple[str, FeedEntry]]: ...
    def append(self, rows: Sequence[tuple[str, FeedEntry]]) -> None: ...
    def read_batch(self, consumer: str, count: int) -> list[QueuedEntry]: ...
    def ack(self, message_ids: Sequence[str]) -> None: ...
    def dead_letter(
        self, item: QueuedEntry, reason: str, detail: str, stage: str = ..., document: Mapping[str, Any] | None = ...
    ) -> None: ...
    def pending_count(self) -> int: ...
    def failed(self, message_id: str, why: str) -> None: ...
    def not_attempted(self, message_id: str) -> None: ...
    def hand_back(self, message_ids: Sequence[str], consumer: str) -> None: ...


class DedupStore(Protocol):
    """The exact level: what is remembered of each URL (by article id) and which article first had each text,
    for ``dedup.seen_days``; and the short claims that keep two workers from fetching one URL at once."""

    def marks(self, article_ids: Sequence[str], now: datetime) -> list[Mark | None]:
        """The mark of each id, None for a URL not seen (or forgotten), in one round trip."""
        ...

    def owner_of(self, text_hash: str, now: datetime) -> str | None:
        """The article that first had this text (``content_hash``), if one did."""
        ...

    def claim(self, article_id: str, owner: str, ttl_seconds: int) -> bool: ...
    def release(self, article_id: str, owner: str) -> None: ...

    def remember(self, article_id: str, mark: Mark, now: datetime) -> None:
        """Keep a URL's mark (its text was already indexed, under it or another URL) and free its claim."""
        ...

    def commit(self, article_id: str, mark: Mark, now: datetime, entry_id: str | None = None) -> None:
        """After the index write: keep the article's mark, own its text if no article did, and mark the feed's
        URL (``entry_id``, when another than the article's) as seen; free the claim."""
        ...


class StoryStore(Protocol):
    """Near-duplicate and story state over a sliding window of days."""

    def assign(
        self, article_id: str, signature: Signature, now: datetime, insert: bool = True,
        kept_story: str | None = None,
    ) -> Assignment:
        """Compare an article with those kept and, atomically with the comparison, keep it (unless
        ``insert`` is false): two workers given copies of one story at once end in one story. ``kept_story``
        is the story of an article kept before whose text was updated: it stays in it, with the new text."""
        ...


class FeedStateStore(Protocol):
    def get(self, feed_id: str) -> FeedState: ...
    def put(self, feed_id: str, state: FeedState) -> None: ...


class HostLimiter(Protocol):
    """Per-host politeness shared by every worker: a request starts only with a grant; the holder says when
    the answer came (the interval runs from then) and releases the grant once the body is read. Asynchronous:
    it is waited on inside the event loop that fetches."""

    async def try_acquire(self, host: str) -> tuple[str | None, float]:
        """``(token, 0)`` when the request may start now, else ``(None, seconds to wait before asking again)``."""
        ...

    async def answered(self, host: str, token: str) -> None: ...
    async def release(self, host: str, token: str) -> None: ...

    async def penalize(self, host: str, seconds: float) -> None:
        """No request to ``host`` starts for ``seconds`` (the host answered 429 or 503)."""
        ...

    async def aclose(self) -> None:
        """Close what the running event loop opened (before the loop ends)."""
        ...


class WorkerLeases(Protocol):
    """Workers' leases: what a worker holds is another's to take once its lease is gone."""

    def beat(self, worker: str) -> None: ...
    def gone(self, worker: str) -> None: ...
    def alive(self, workers: Sequence[str]) -> set[str]: ...


class StatsSink(Protocol):
    """The operators' counters: ``stage/outcome`` totals, per feed and per hour."""

    def add(self, counts: Mapping[str, int], feed_counts: Mapping[str, int] | None = None,
            at: datetime | None = None, hour_only: Mapping[str, int] | None = None) -> None: ...


class RobotsCache(Protocol):
    """robots.txt bodies per origin (``scheme://host:port``); ``""`` records that a site has none."""

    def get(self, origin: str) -> str | None: ...
    def put(self, origin: str, body: str) -> None: ...


class ArticleSink(Protocol):
    def ensure_ready(self) -> None: ...
    def write(self, documents: Sequence[tuple[str, dict[str, Any]]]) -> list[ItemOutcome]: ...
    def read(self, ids: Sequence[str], fields: Iterable[str]) -> dict[str, dict[str, Any]]: ...
