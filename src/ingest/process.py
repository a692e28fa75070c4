"""The process stage composed: pending entries in, documents in the index out. No Airflow here; the CLI (one
worker process or several, ``ingest.cli.workers``) and the DAG tasks both call :func:`process_pending`.

One batch goes through four steps: triage (dead letters, already indexed, URL claims), every claimed page
fetched at once (each still waiting for its host's turn), extraction and dedup in the stream's order, then
enrichment and one bulk write. A near-duplicate takes its original's entities instead of running NER again.
Two helper threads keep the CPU busy: the bulk write (it waits for the index's refresh) runs in one while the
next batches are processed, and the next batch is read, triaged and fetched in the other while this one is
extracted and enriched.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ingest.dedup import DedupItem, DedupStep, entry_stamp, entry_status
from ingest.enrich import enrich_articles, reuse_enrichment
from ingest.errors import PermanentError, ServiceUnavailableError, StageError, StopRequestedError, TransientError
from ingest.extract import article_from_page
from ingest.index import to_document
from ingest.lights import latency_counts
from ingest.models import Article, Mark, Page, QueuedEntry
from ingest.report import Report
from ingest.runtime import Runtime
from ingest.urls import article_id, canonical_url

logger = logging.getLogger(__name__)

# What a near-duplicate takes from its original.
_REUSED = {"language", "entities", "places", "enrichment", "title", "text"}


@dataclass
class _Claimed:
    item: QueuedEntry
    entry_id: str  # article id of the URL the feed gave; the claim is held on it
    stamp: int  # the entry's own update stamp (see ingest.dedup.entry_stamp)
    mark: Mark | None  # what the exact level knows of the URL


@dataclass
class _Candidate:
    item: QueuedEntry
    entry_id: str
    article: Article
    mark: Mark  # what the exact level keeps of the article once it is indexed


def process_batch(rt: Runtime, consumer: str, now: datetime) -> tuple[int, Report]:
    """Process one batch from the pending stream; returns how many entries were read and the counters.

    An entry is acknowledged only once its document is indexed, it is known to be a duplicate, or it
    is in the dead-letter stream. Transient failures leave it pending for a later delivery.
    """
    waiting: list[_Writing] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk") as writer:
        read, report = _batch(rt, consumer, now, _fetch_batch(rt, consumer, now, set()), writer, waiting)
        if waiting:
            report.merge(_landed(rt, waiting.pop().future))
    return read, report


def process_pending(rt: Runtime, consumer: str, now: datetime, max_batches: int | None = None,
                    on_batch: Callable[[Mapping[str, int]], None] | None = None) -> Report:
    """Process batches until the stream has nothing new for this consumer or ``max_batches`` is reached.

    While a batch is extracted, checked and enriched, the next one is read, triaged and fetched in a thread
    (``fetch``), and the batch before is written in another (``bulk``: the write waits for the index's refresh).
    A batch's extraction and dedup start only once the write before it has landed, so they see its marks exactly as
    if the batches ran one after the other. Every write has landed, and a batch read ahead but not processed (a stop
    was asked) is handed back, when this returns. ``on_batch(counts)``, after each batch and once the last write has
    landed: the run's counters so far (what a command shows as its progress)."""
    report = Report()

    def took(part: Report) -> None:
        report.merge(part)
        if on_batch is not None:
            on_batch(report.counts)

    limit = max_batches if max_batches is not None else rt.settings.pipeline.max_batches
    waiting: list[_Writing] = []  # the last batch's write, until it has landed
    ahead: Future[_Fetched] | None = None  # the next batch, read and fetched meanwhile
    # (the lease: what this worker holds is taken over soon after it dies, not 15 minutes later)
    with (rt.leased(consumer), ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk") as writer,
          ThreadPoolExecutor(max_workers=1, thread_name_prefix="fetch") as reader):
        try:
            for n in range(limit):
                if rt.stop.is_set():
                    break
                current = ahead.result() if ahead is not None else _fetch_batch(rt, consumer, now, _writing(waiting))
                ahead = None
                if current.items and n + 1 < limit and not rt.stop.is_set():
                    # Entries this worker holds (this batch, the write in flight) are left alone by the next triage.
                    held = _writing(waiting) | {item.message_id for item in current.items}
                    ahead = reader.submit(_fetch_batch, rt, consumer, now, held, True)
                read, batch = _batch(rt, consumer, now, current, writer, waiting)
                took(batch)
                if read == 0:
                    break
        except BaseException:
            if ahead is not None:
                with contextlib.suppress(Exception):
                    _put_back(rt, ahead.result(), consumer)
                ahead = None
            if waiting:  # the first error is the one to tell; the write left its own entries pending if it failed
                with contextlib.suppress(Exception):
                    report.merge(_landed(rt, waiting.pop().future))
            raise
        if ahead is not None:  # a stop was asked: the batch read ahead goes back to the group untouched
            took(_put_back(rt, ahead.result(), consumer))
        if waiting:
            took(_landed(rt, waiting.pop().future))
    return report


@dataclass
class _Writing:
    """A batch's write in the writer thread, and the stream entries it will acknowledge."""

    future: Future[Report]
    message_ids: set[str]


def _landed(rt: Runtime, writing: Future[Report]) -> Report:
    """Wait for a batch's write; its counters, now in the pipeline's."""
    written = writing.result()
    rt.record(written)
    return written


@dataclass
class _Fetched:
    """A batch read, triaged and fetched: what is left to extract, check, enrich and write."""

    items: list[QueuedEntry]
    claimed: list[_Claimed]
    done: list[str]  # message ids already done (indexed before)
    pages: list[Page | StageError | StopRequestedError]
    report: Report


def _writing(waiting: list[_Writing]) -> set[str]:
    return waiting[0].message_ids if waiting else set()


def _fetch_batch(rt: Runtime, consumer: str, now: datetime, held: set[str], ahead: bool = False) -> _Fetched:
    """Read a batch, triage it (``held``: entries this worker has in hand, left alone) and fetch its claimed pages.
    ``ahead``: in the read-ahead thread, while the main thread works (its CPU is counted apart)."""
    report = Report()
    with report.cpu("queue", this_thread=ahead):
        items = rt.queue.read_batch(consumer, rt.settings.pipeline.batch_size)
        claimed, done = _triage(rt, report, items, consumer, now, held)
    with report.cpu("fetch", this_thread=ahead):
        pages = rt.fetcher.fetch_many([c.item.entry.url for c in claimed], rt.settings.pipeline.fetch_concurrency)
    return _Fetched(items, claimed, done, pages, report)


def _put_back(rt: Runtime, fetched: _Fetched, consumer: str) -> Report:
    """A batch read ahead that will not be processed: its URLs freed, its claimed entries handed back (not a
    delivery), the entries found already done acknowledged."""
    report = fetched.report
    _give_back(rt, report, fetched.claimed, consumer, hand_back=True)
    rt.queue.ack(fetched.done)
    rt.record(report)
    return report


def _batch(rt: Runtime, consumer: str, now: datetime, fetched: _Fetched, writer: ThreadPoolExecutor,
           waiting: list[_Writing]) -> tuple[int, Report]:
    """One fetched batch up to its enrichment; its write handed to ``writer`` and left in ``waiting``. The last
    batch's write (in ``waiting``) is waited for first."""
    report, items, claimed, done = fetched.report, fetched.items, fetched.claimed, fetched.done
    written = Report()
    if waiting:
        try:
            written = _landed(rt, waiting.pop().future)
        except Exception:
            # The last write failed (its entries are left pending): so is this batch, untouched.
            _give_back(rt, report, claimed, consumer, hand_back=True)
            raise
    candidates: list[_Candidate] = []
    step = DedupStep(rt.dedup, rt.stories, rt.settings.dedup, now)
    checked = int(now.timestamp())  # when this batch's URLs are fetched, for their marks
    stopped: list[QueuedEntry] = []
    for one, page in zip(claimed, fetched.pages, strict=True):
        if isinstance(page, StopRequestedError):
            rt.dedup.release(one.entry_id, consumer)
            stopped.append(one.item)
            continue
        candidate = _extract_and_check(rt, report, step, one, page, now, checked, consumer)
        if isinstance(candidate, _Candidate):
            candidates.append(candidate)
        elif candidate:
            done.append(one.item.message_id)
    if stopped:
        _hand_back(rt, report, stopped, consumer)
    with report.cpu("queue"):
        rt.queue.ack(done)
    if candidates:
        try:
            with report.cpu("enrich"):
                enriched = _enrich(rt, report, [c.article for c in candidates])
        except Exception:
            _give_back(rt, Report(), candidates, consumer, hand_back=False)
            raise
        waiting.append(_Writing(writer.submit(_index, rt, candidates, enriched, now, consumer),
                                {c.item.message_id for c in candidates}))
    rt.record(report)
    report.merge(written)  # (recorded when it landed)
    return len(items), report


def _triage(rt: Runtime, report: Report, items: list[QueuedEntry], consumer: str, now: datetime,
            inflight: set[str]) -> tuple[list[_Claimed], list[str]]:
    """The entries to fetch, with their URL claimed; and the message ids already done (indexed before).
    ``inflight``: entries this worker's last batch is writing (reclaimed as idle when reclaim_idle is tiny): left
    alone, not counted as a delivery; the write acknowledges them."""
    settings = rt.settings.pipeline
    claimed: list[_Claimed] = []
    done: list[str] = []
    for n, item in enumerate(items):
        if rt.stop.is_set():  # asked to stop: what is not started goes back to the group at once
            _hand_back(rt, report, items[n:], consumer)
            break
        if item.message_id in inflight:
            rt.queue.not_attempted(item.message_id)
            continue
        entry = item.entry
        report.count("process/read", feed_id=entry.feed_id)
        if item.deliveries > settings.max_deliveries:
            last = f"; last: {item.last_failure}" if item.last_failure else ""
            _dead_letter(rt, report, item, "max_deliveries", f"delivered {item.deliveries} times without success{last}")
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
        claimed.append(_Claimed(item, doc_id, stamp, mark))
    return claimed, done


def _extract_and_check(rt: Runtime, report: Report, step: DedupStep, one: _Claimed, page: Page | StageError,
                       now: datetime, checked: int, consumer: str) -> _Candidate | bool:
    """What one fetched page becomes: a candidate to enrich and index, True when its entry is done (a known
    duplicate), False when it was left pending or dead-lettered."""
    item, entry = one.item, one.item.entry
    if isinstance(page, TransientError):
        rt.dedup.release(one.entry_id, consumer)
        report.count(f"fetch/{page.reason}", feed_id=entry.feed_id)
        report.errors.append(f"retry later: {page}")
        rt.queue.failed(item.message_id, f"fetch/{page.reason}: {page}")
        logger.warning("will retry %s: %s", entry.url, page)
        return False
    if isinstance(page, StageError):
        rt.dedup.release(one.entry_id, consumer)
        _dead_letter(rt, report, item, page.reason, page.detail or page.reason, stage="fetch")
        return False
    try:
        with report.cpu("extract"):
            article, outcomes = article_from_page(entry, page, now, rt.settings.pipeline)
    except PermanentError as e:
        rt.dedup.release(one.entry_id, consumer)
        _dead_letter(rt, report, item, e.reason, e.detail or e.reason, stage="extract")
        return False
    for outcome in outcomes:
        report.count(outcome, feed_id=entry.feed_id)
    with report.cpu("dedup"):
        mark = one.mark if article.article_id == one.entry_id else rt.dedup.marks([article.article_id], now)[0]
        verdict = step.check(DedupItem(article.article_id, article.text, article.language, article.content_hash,
                                       mark, one.entry_id, one.stamp, article.published_at, article.canonical_url),
                                   checked)
    report.count(verdict.counter, feed_id=entry.feed_id)
    if verdict.assignment is None:
        rt.dedup.remember(one.entry_id, verdict.mark, now)
        return True
    article = article.model_copy(update={"story_id": verdict.assignment.story_id,
                                         "duplicate_of": verdict.assignment.duplicate_of})
    return _Candidate(item, one.entry_id, article, verdict.mark)


def _give_back(rt: Runtime, report: Report, held: Sequence[_Claimed | _Candidate], consumer: str, hand_back: bool
               ) -> None:
    """Leave a batch pending and free its URLs at once, so another worker need not wait for the claims; handed
    back too when it was not the articles' fault (the search server refused or was gone, a stop, a batch read
    ahead and not processed): not a delivery."""
    for one in held:
        rt.dedup.release(one.entry_id, consumer)
    if hand_back and held:
        _hand_back(rt, report, [one.item for one in held], consumer)


def _index(rt: Runtime, candidates: list[_Candidate], enriched: list[Article], now: datetime, consumer: str
           ) -> Report:
    """Write a batch's documents, then keep the marks and acknowledge what landed (in the writer thread)."""
    report = Report()
    try:
        _write(rt, report, candidates, enriched, now, consumer)
    except Exception as e:
        _give_back(rt, report, candidates, consumer, hand_back=isinstance(e, ServiceUnavailableError))
        raise
    return report


def _write(rt: Runtime, report: Report, candidates: list[_Candidate], enriched: list[Article], now: datetime,
           consumer: str) -> None:
    # indexed_at is this batch's own clock reading, not the run's start: a consumer following the change feed on
    # indexed_at must not find a document appear behind its checkpoint (docs/data-contract.md).
    indexed_at = datetime.now(UTC)
    with report.cpu("index", this_thread=True):  # the next batch runs in the other thread meanwhile
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
            _freshness(report, indexed_at, article, candidate.item)
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


def _freshness(report: Report, indexed_at: datetime, article: Article, item: QueuedEntry) -> None:
    """The article's latencies to its landing in the index, as hourly bucket counts (ingest.lights)."""
    for kind, start in (("published", article.published_at), ("queued", item.queued_at),
                        ("fetched", article.fetched_at)):
        if start is not None:
            report.hourly_counts[latency_counts(kind, (indexed_at - start).total_seconds())] += 1


def _enrich(rt: Runtime, report: Report, articles: list[Article]) -> list[Article]:
    """Entities for every article: a near-duplicate takes its original's (from this batch, else from the index)
    when they came from the same models and rules; the others go through NER, all of a language together."""
    originals = {a.duplicate_of for a in articles if a.duplicate_of}
    in_batch = {a.article_id for a in articles} & originals
    stored = rt.sink.read(sorted(originals - in_batch), _REUSED) if originals - in_batch else {}
    ready = {a.article_id: a for a in enrich_articles([a for a in articles if not a.duplicate_of], rt.models)}
    # An original another worker had in flight is often indexed by the time this batch's NER is done: look again.
    missing = sorted(originals - in_batch - stored.keys())
    if missing:
        stored |= rt.sink.read(missing, _REUSED)
    orphans = [a for a in articles if a.duplicate_of and not (a.duplicate_of in in_batch or a.duplicate_of in stored)]
    ready |= {a.article_id: a for a in enrich_articles(orphans, rt.models)}
    result = []
    for article in articles:  # an original comes before its duplicates: the stream's order is dedup's
        found = ready.get(article.article_id)
        if found is None:
            original = ready.get(article.duplicate_of or "")
            source = (original.model_dump(mode="json", include=_REUSED) if original is not None
                      else stored.get(article.duplicate_of or ""))
            found = reuse_enrichment(article, source, rt.models) if source else None
            if found is None:  # not reusable after all (another language, model or rules)
                found = enrich_articles([article], rt.models)[0]
            else:
                report.count("enrich/reused")
            ready[article.article_id] = found
        result.append(found)
        report.count(f"enrich/{found.enrichment.status}")
    return result


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
