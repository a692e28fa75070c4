"""The stages composed: poll feeds into the pending stream (here), process it into the index
(:mod:`ingest.process`, re-exported). No Airflow here; the CLI and the DAG tasks both call these functions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from ingest.dedup import entries_to_queue
from ingest.errors import StageError
from ingest.http import build_http_client
from ingest.models import FeedEntry, FeedSource, FeedState
from ingest.poll import ParsedFeed, poll_feed
from ingest.process import process_batch, process_pending
from ingest.report import Report
from ingest.runtime import Runtime
from ingest.schedule import after_failure, after_success, is_due
from ingest.urls import article_id, canonical_url, domain_of

__all__ = ["poll_feeds", "process_batch", "process_pending"]

logger = logging.getLogger(__name__)

# How long the poll collects polled feeds before appending their entries to the stream together, interleaved by
# host: longer interleaves more of a big poll; shorter starts the workers sooner.
QUEUE_WINDOW_SECONDS = 1.0


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
    # Per host: (feed, the event of the feed before it, its own event, set once its entries are picked).
    by_host: dict[str, deque[tuple[FeedSource, asyncio.Event | None, asyncio.Event]]] = {}
    for feed in feeds:
        queue = by_host.setdefault(domain_of(feed.url), deque())
        queue.append((feed, queue[-1][2] if queue else None, asyncio.Event()))
    slots = asyncio.Semaphore(rt.settings.feeds.concurrency)
    picked: list[_Picked] = []  # feeds whose entries are marked, waiting to be appended to the stream
    lanes_done = asyncio.Event()
    async with build_http_client(rt.settings.http) as client:

        async def lane(queue: deque[tuple[FeedSource, asyncio.Event | None, asyncio.Event]]) -> None:
            while queue:
                feed, before, done = queue.popleft()
                try:
                    async with slots:
                        polled = await _poll_one(rt, client, feed, now, due_only, report)
                    if polled is not None:
                        if before is not None:
                            await before.wait()  # the host's previous feed has picked its entries
                        # The Redis work of a polled feed in one hand-off from the event loop (each costs a thread
                        # switch).
                        one = await asyncio.to_thread(_pick_entries, rt, feed, *polled, now)
                        for name, n in one.counts:
                            report.count(name, n, feed_id=feed.id)
                        picked.append(one)
                finally:
                    done.set()
                if on_feed is not None:
                    on_feed(report.counts)

        async def appender() -> None:
            """Appends the picked feeds' entries to the stream, interleaved by host, then saves their states:
            every ``QUEUE_WINDOW_SECONDS`` while feeds are being polled, and once they all are."""
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lanes_done.wait(), QUEUE_WINDOW_SECONDS)
                finished = lanes_done.is_set()  # then no feed is picked after this
                if picked:
                    ready = picked[:]
                    del picked[:]
                    await asyncio.to_thread(_append_picked, rt, ready, now)
                if finished:
                    return

        async def polling() -> None:
            try:
                await asyncio.gather(*(lane(queue) for queue in by_host.values()
                                       for _ in range(min(len(queue), rt.settings.http.host_max_concurrent))))
            finally:
                lanes_done.set()

        tasks = [asyncio.ensure_future(polling()), asyncio.ensure_future(appender())]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:  # a failure stops the other: marks not appended lapse, their feeds are read again
                task.cancel()
            raise
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


@dataclass(frozen=True)
class _Picked:
    """A polled feed's entries to append (marked as queued), its counters, and the state to save after."""

    feed: FeedSource
    rows: list[tuple[str, FeedEntry]]
    counts: list[tuple[str, int]]
    state: FeedState


def _pick_entries(rt: Runtime, feed: FeedSource, parsed: ParsedFeed, state: FeedState, now: datetime) -> _Picked:
    """The entries of a polled feed to queue: not seen before, not on the stream yet (marked now, appended by
    :func:`_append_picked`), at most ``feeds.max_entries_per_poll``; the counters, and the feed's state to save
    once they are on the stream. Blocking (Redis): run off the event loop."""
    ids = [article_id(canonical_url(entry.url)) for entry in parsed.entries]
    fresh, counts = entries_to_queue(ids, parsed.entries, rt.dedup.marks(ids, now), now, rt.settings.dedup)
    cap, already = rt.settings.feeds.max_entries_per_poll, 0
    rows: list[tuple[str, FeedEntry]] = []
    held = fresh
    while held and len(rows) < cap:  # the first `cap` entries not on the stream yet, in the feed's order
        take, held = held[: cap - len(rows)], held[cap - len(rows) :]
        marked = rt.queue.mark_new(take)
        rows, already = rows + marked, already + len(take) - len(marked)
    counts.append(("poll/queued", len(rows)))
    if already:
        counts.append(("poll/already_queued", already))
    if held:
        counts.append(("poll/held_for_next_poll", len(held)))
    known = parsed.state or state
    if held:  # read whole next time: behind a 304 or the same body hash, the held entries would never come
        known = known.model_copy(update={"etag": None, "last_modified": None, "body_hash": None})
    done = after_success(known, feed, now, rt.settings.feeds, changed=parsed.status == "parsed",
                         max_age=parsed.max_age)
    return _Picked(feed, rows, counts, done)


def _append_picked(rt: Runtime, picked: list[_Picked], now: datetime) -> None:
    """Append the picked entries to the stream, one host after another in turn (a batch a worker reads then
    spans many hosts, whose pages are fetched side by side instead of one host's in its politeness turns),
    each host's in the order picked; then save the feeds' states. Blocking (Redis)."""
    by_host: dict[str, deque[tuple[str, FeedEntry]]] = {}
    for one in picked:
        for row in one.rows:
            by_host.setdefault(domain_of(row[1].url), deque()).append(row)
    lanes = list(by_host.values())
    order: list[tuple[str, FeedEntry]] = []
    while lanes:
        order.extend(lane.popleft() for lane in lanes)
        lanes = [lane for lane in lanes if lane]
    rt.queue.append(order)
    if rt.feed_state is not None:
        # Saved only now that the entries are on the stream: a crash before this re-reads the feed.
        for one in picked:
            rt.feed_state.put(one.feed.id, one.state)
