"""The stages composed: poll feeds into the pending stream, process it into the index. No Airflow here;
the CLI and the DAG tasks both call these functions."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from ingest.dedup import DedupItem, DedupStep, entries_to_queue, entry_stamp, entry_status
from ingest.enrich import enrich_articles
from ingest.errors import PermanentError, StageError, StopRequestedError, TransientError
from ingest.extract import article_from_page
from ingest.http import build_http_client
from ingest.index import to_document
from ingest.models import Article, FeedSource, FeedState, Mark, QueuedEntry
from ingest.poll import ParsedFeed, poll_feed
from ingest.report import Report
from ingest.runtime import Runtime
from ingest.schedule import after_failure, after_success, is_due
from ingest.urls import article_id, canonical_url, domain_of

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- poll


def poll_feeds(
    rt: Runtime, feeds: Iterable[FeedSource], now: datetime | None = None, due_only: bool = False
) -> Report:
    """Read every feed (or, with ``due_only``, those whose next poll time has come) and queue the entries not
    seen before. A failing feed is counted and backed off, not fatal; one failing for days is disabled.

    Feeds are fetched concurrently (``feeds.concurrency`` at once), each host's feeds in at most
    ``http.host_max_concurrent`` lanes, every request waiting for its host's turn in the shared limiter. A
    host's feeds queue their entries in the registry's order, whichever answered first: the copy one site
    syndicates in two of its feeds is met first where the registry lists it first, on every run.
    """
    report = Report()
    asyncio.run(_poll_all(rt, list(feeds), now or datetime.now(UTC), due_only, report))
    rt.record(report)
    return report


async def _poll_all(rt: Runtime, feeds: list[FeedSource], now: datetime, due_only: bool, report: Report) -> None:
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
                    if polled is None:
                        continue
                    if before is not None:
                        await before.wait()  # the host's previous feed has queued its entries
                    # The Redis work of a polled feed in one hand-off from the event loop (each costs a thread
                    # switch).
                    for name, n in await asyncio.to_thread(_queue_entries, rt, feed, *polled, now):
                        report.count(name, n, feed_id=feed.id)
                finally:
                    done.set()

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
    queued = rt.queue.enqueue(fresh)
    counts.append(("poll/queued", queued))
    if len(fresh) > queued:
        counts.append(("poll/already_queued", len(fresh) - queued))
    if rt.feed_state is not None:
        # Remembered only now that the entries are on the stream: a crash before this re-reads the feed.
        done = after_success(parsed.state or state, feed, now, rt.settings.feeds,
                             changed=parsed.status == "parsed", max_age=parsed.max_age)
        rt.feed_state.put(feed.id, done)
    return counts


# ---------------------------------------------------------------- process


@dataclass
class _Candidate:
    item: QueuedEntry
    entry_id: str  # article id of the URL the feed gave; the claim is held on it
    article: Article
    mark: Mark  # what the exact level keeps of the article once it is indexed


def process_batch(rt: Runtime, consumer: str, now: datetime) -> tuple[int, Report]:
    """Process one batch from the pending stream; returns how many entries were read and the counters.

    An entry is acknowledged only once its document is indexed, it is known to be a duplicate, or it
    is in the dead-letter stream. Transient failures leave it pending for a later delivery.
    """
    settings = rt.settings.pipeline
    report = Report()
    items = rt.queue.read_batch(consumer, settings.batch_size)
    candidates: list[_Candidate] = []
    step = DedupStep(rt.dedup, rt.stories, rt.settings.dedup, now)
    checked = int(now.timestamp())  # when this batch's URLs are fetched, for their marks
    done: list[str] = []
    for n, item in enumerate(items):
        if rt.stop.is_set():  # asked to stop: what is not started goes back to the group at once
            _hand_back(rt, report, items[n:], consumer)
            break
        entry = item.entry
        report.count("process/read", feed_id=entry.feed_id)
        if item.deliveries > settings.max_deliveries:
            last = f"; last: {item.last_failure}" if item.last_failure else ""
            _dead_letter(rt, report, item, "max_deliveries",
                         f"delivered {item.deliveries} times without success{last}")
            continue
        doc_id = article_id(canonical_url(entry.url))
        stamp = entry_stamp(entry)
        (mark,) = rt.dedup.marks([doc_id], now)
        if entry_status(mark, stamp, now, rt.settings.dedup) not in ("new", "updated"):
            report.count("process/already_indexed", feed_id=entry.feed_id)
            done.append(item.message_id)
            continue
        if not rt.dedup.claim(doc_id, consumer, settings.claim_ttl_seconds):
            report.count("process/claimed_elsewhere", feed_id=entry.feed_id)
            rt.queue.not_attempted(item.message_id)
            continue
        try:
            page = rt.fetcher.fetch(entry.url)
        except StopRequestedError:
            rt.dedup.release(doc_id, consumer)
            _hand_back(rt, report, items[n:], consumer)
            break
        except TransientError as e:
            rt.dedup.release(doc_id, consumer)
            report.count(f"fetch/{e.reason}", feed_id=entry.feed_id)
            report.errors.append(f"retry later: {e}")
            rt.queue.failed(item.message_id, f"fetch/{e.reason}: {e}")
            logger.warning("will retry %s: %s", entry.url, e)
            continue
        except PermanentError as e:
            rt.dedup.release(doc_id, consumer)
            _dead_letter(rt, report, item, e.reason, str(e), stage="fetch")
            continue
        try:
            article, outcomes = article_from_page(entry, page, now, settings)
        except PermanentError as e:
            rt.dedup.release(doc_id, consumer)
            _dead_letter(rt, report, item, e.reason, str(e), stage="extract")
            continue
        for outcome in outcomes:
            report.count(outcome, feed_id=entry.feed_id)
        if article.article_id != doc_id:
            (mark,) = rt.dedup.marks([article.article_id], now)
        verdict = step.check(DedupItem(article.article_id, article.text, article.language, article.content_hash,
                                       mark, doc_id, stamp), checked)
        report.count(verdict.counter, feed_id=entry.feed_id)
        if verdict.assignment is None:
            rt.dedup.remember(doc_id, verdict.mark, now)
            done.append(item.message_id)
            continue
        article = article.model_copy(update={"story_id": verdict.assignment.story_id,
                                             "duplicate_of": verdict.assignment.duplicate_of})
        candidates.append(_Candidate(item, doc_id, article, verdict.mark))
    rt.queue.ack(done)
    if candidates:
        try:
            _enrich_and_index(rt, report, candidates, now, consumer)
        except Exception:
            # Leave the batch pending and free its URLs at once, so another worker need not wait for the claims.
            for candidate in candidates:
                rt.dedup.release(candidate.entry_id, consumer)
            raise
    rt.record(report)
    return len(items), report


def process_pending(rt: Runtime, consumer: str, now: datetime, max_batches: int | None = None) -> Report:
    """Process batches until the stream has nothing new for this consumer or ``max_batches`` is reached."""
    report = Report()
    limit = max_batches if max_batches is not None else rt.settings.pipeline.max_batches
    with rt.leased(consumer):  # what this worker holds is taken over soon after it dies, not 15 minutes later
        for _ in range(limit):
            if rt.stop.is_set():
                break
            read, batch = process_batch(rt, consumer, now)
            report.merge(batch)
            if read == 0:
                break
    return report


def _enrich_and_index(rt: Runtime, report: Report, candidates: list[_Candidate], now: datetime, consumer: str) -> None:
    enriched = enrich_articles([c.article for c in candidates], rt.models)
    for article in enriched:
        report.count(f"enrich/{article.enrichment.status}")
    # indexed_at is this batch's own clock reading, not the run's start: a consumer following the change feed on
    # indexed_at must not find a document appear behind its checkpoint (docs/data-contract.md).
    indexed_at = datetime.now(UTC)
    documents = [(a.article_id, to_document(a, indexed_at)) for a in enriched]
    outcomes = rt.sink.write(documents)
    acked: list[str] = []
    for candidate, article, (_, document), outcome in zip(candidates, enriched, documents, outcomes, strict=True):
        feed_id = candidate.item.entry.feed_id
        entry_id = candidate.entry_id
        if outcome.ok:
            rt.dedup.commit(article.article_id, candidate.mark, now, entry_id)
            report.count("index/indexed", feed_id=feed_id)
            report.wrote_at(indexed_at)
            acked.append(candidate.item.message_id)
        elif outcome.retryable:
            rt.dedup.release(entry_id, consumer)
            report.count(f"index/retry_{outcome.status}", feed_id=feed_id)
            rt.queue.failed(candidate.item.message_id, f"index/retry_{outcome.status}: {outcome.error or ''}")
        else:
            rt.dedup.release(entry_id, consumer)
            # The document goes with it: `ingest dlq list --json` shows what the index refused.
            _dead_letter(rt, report, candidate.item, "index_rejected", outcome.error or f"HTTP {outcome.status}",
                         stage="index", document=document)
    rt.queue.ack(acked)


def _hand_back(rt: Runtime, report: Report, items: list[QueuedEntry], consumer: str) -> None:
    rt.queue.hand_back([i.message_id for i in items], consumer)
    report.count("process/handed_back", len(items))


def _dead_letter(rt: Runtime, report: Report, item: QueuedEntry, reason: str, detail: str, stage: str = "process",
                 document: dict[str, Any] | None = None) -> None:
    rt.queue.dead_letter(item, reason, detail, stage=stage, document=document)
    report.count(f"{stage}/{reason}", feed_id=item.entry.feed_id)
    report.count("process/dead_lettered", feed_id=item.entry.feed_id)
    report.errors.append(f"dead-lettered ({reason}): {item.entry.url}: {detail}")
    logger.warning("dead-lettered %s: %s", item.entry.url, detail)
