"""The stages composed: poll feeds into the pending stream (here), process it into the index
(:mod:`ingest.process`, re-exported). No Airflow here; the CLI and the DAG tasks both call these functions."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

import httpx

from ingest.dedup import entries_to_queue
from ingest.errors import StageError
from ingest.http import build_http_client
from ingest.models import FeedSource, FeedState
from ingest.poll import ParsedFeed, poll_feed
from ingest.process import process_batch, process_pending
from ingest.report import Report
from ingest.runtime import Runtime
from ingest.schedule import after_failure, after_success, is_due
from ingest.urls import article_id, canonical_url, domain_of

__all__ = ["poll_feeds", "process_batch", "process_pending"]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- poll


def poll_feeds(
    rt: Runtime, feeds: Iterable[FeedSource], now: datetime | None = None, due_only: bool = False,
    on_feed: Callable[[Mapping[str, int]], None] | None = None,
) -> Report:
    """Read every feed (or, with ``due_only``, those whose next poll time has come) and queue the entries not
    seen before. A failing feed is counted and backed off, not fatal; one failing for days is disabled.

    Feeds are fetched concurrently (``feeds.concurrency`` at once), each host's feeds in at most
    ``http.host_max_concurrent`` lanes, every request waiting for its host's turn in the shared limiter. A
    host's feeds queue their entries in the registry's order, whichever answered first: the copy one site
    syndicates in two of its feeds is met first where the registry lists it first, on every run.

    ``on_feed(counts)`` each time a feed is done (polled, skipped or failed): the run's counters so far (what a
    command shows as its progress).
    """
    report = Report()
    asyncio.run(_poll_all(rt, list(feeds), now or datetime.now(UTC), due_only, report, on_feed))
    rt.record(report)
    return report


async def _poll_all(rt: Runtime, feeds: list[FeedSource], now: datetime, due_only: bool, report: Report,
                    on_feed: Callable[[Mapping[str, int]], None] | None) -> None:
    # Per host: (feed, the event of the feed before it, its own event, set once it is done).
    by_host: dict[str, deque[tuple[FeedSource, asyncio.Event | None, asyncio.Event]]] = {}
    for feed in feeds:
        queue = by_host.setdefault(domain_of(feed.url), deque())
        queue.append((feed, queue[-1][2] if queue else None, asyncio.Event()))
    slots = asyncio.Semaphore(rt.settings.feeds.concurrency)
    async with build_http_client(rt.settings.http) as client:

        async def lane(queue: deque[tuple[FeedSource, asyncio.Event | None, asyncio.Event]]) -> None:
            while queue:
                feed, before, done = queue.popleft()
                try:
                    async with slots:
                        polled = await _poll_one(rt, client, feed, now, due_only, report)
                    if polled is not None:
                        if before is not None:
                            await before.wait()  # the host's previous feed has queued its entries
                        # The Redis work of a polled feed in one hand-off from the event loop (each costs a thread
                        # switch).
                        for name, n in await asyncio.to_thread(_queue_entries, rt, feed, *polled, now):
                            report.count(name, n, feed_id=feed.id)
                finally:
                    done.set()
                if on_feed is not None:
                    on_feed(report.counts)

        lanes = [lane(queue) for queue in by_host.values()
                 for _ in range(min(len(queue), rt.settings.http.host_max_concurrent))]
        try:
            await asyncio.gather(*lanes)
        finally:
            if rt.limiter is not None:
                await rt.limiter.aclose()  # its connection belongs to this run's event loop


async def _poll_one(
    rt: Runtime, client: httpx.AsyncClient, feed: FeedSource, now: datetime, due_only: bool, report: Report
) -> tuple[ParsedFeed, FeedState] | None:
    """Fetch and parse one feed if it is due; the feed and its state before this poll, or None when there is
    nothing to queue (not due, disabled, failed: counted, and a failure remembered in its state)."""
    if not feed.enabled:
        report.count("poll/feed_disabled", feed_id=feed.id)
        return None
    state = await asyncio.to_thread(rt.feed_state.get, feed.id) if rt.feed_state else FeedState()
    if due_only and not is_due(state, now):
        report.count("poll/feed_dead" if state.disabled else "poll/not_due", feed_id=feed.id)
        return None
    try:
        parsed = await poll_feed(client, feed, rt.settings.http, state, rt.limiter, now)
    except StageError as e:
        report.count(f"poll/{e.reason}", feed_id=feed.id)
        if e.reason == "host_busy":
            return None  # not the feed's fault: it stays due and is polled by a later run
        report.errors.append(f"feed {feed.id}: {e}")
        logger.warning("feed %s failed: %s", feed.id, e)
        if rt.feed_state is not None:
            failed = after_failure(state, feed, e, now, rt.settings.feeds)
            if failed.disabled and not state.disabled:
                report.count("poll/feed_dead", feed_id=feed.id)
                report.errors.append(f"feed {feed.id}: failing since {failed.failing_since}; disabled until "
                                     "it is fixed (`ingest feeds status` lists it)")
            await asyncio.to_thread(rt.feed_state.put, feed.id, failed)
        return None
    report.count("poll/feeds_ok", feed_id=feed.id)
    if parsed.status != "parsed":
        report.count(f"poll/{parsed.status}", feed_id=feed.id)
    report.count("poll/entries", len(parsed.entries), feed_id=feed.id)
    if parsed.skipped_without_link:
        report.count("poll/entry_without_link", parsed.skipped_without_link, feed_id=feed.id)
    return parsed, state


def _queue_entries(rt: Runtime, feed: FeedSource, parsed: ParsedFeed, state: FeedState, now: datetime
                   ) -> list[tuple[str, int]]:
    """Queue the entries not seen before and remember the feed's new state; the counters to add. Blocking
    (Redis): run off the event loop."""
    ids = [article_id(canonical_url(entry.url)) for entry in parsed.entries]
    fresh, counts = entries_to_queue(ids, parsed.entries, rt.dedup.marks(ids, now), now, rt.settings.dedup)
    cap, queued, already = rt.settings.feeds.max_entries_per_poll, 0, 0
    held = fresh
    while held and queued < cap:  # the first `cap` entries not on the stream yet, in the feed's order
        take, held = held[: cap - queued], held[cap - queued :]
        added = rt.queue.enqueue(take)
        queued, already = queued + added, already + len(take) - added
    counts.append(("poll/queued", queued))
    if already:
        counts.append(("poll/already_queued", already))
    if held:
        counts.append(("poll/held_for_next_poll", len(held)))
    if rt.feed_state is not None:
        # Remembered only now that the entries are on the stream: a crash before this re-reads the feed.
        known = parsed.state or state
        if held:  # read whole next time: behind a 304 or the same body hash, the held entries would never come
            known = known.model_copy(update={"etag": None, "last_modified": None, "body_hash": None})
        done = after_success(known, feed, now, rt.settings.feeds,
                             changed=parsed.status == "parsed", max_age=parsed.max_age)
        rt.feed_state.put(feed.id, done)
    return counts
