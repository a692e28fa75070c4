"""The pipeline's commands: poll, process, run, status, dead letters, the feed registry, the embedded services
and the demo. Each resolves the settings once and calls the code paths the DAGs run."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.cli.output import (
    EXIT_INPUT,
    EXIT_SERVICE,
    consumer_name,
    print_counts,
    print_cpu,
    print_errors,
    read_bytes,
)
from ingest.cli.stopping import stop_on_signals
from ingest.config import Settings, resolve_settings
from ingest.errors import ConfigError, ServiceUnavailableError

if TYPE_CHECKING:
    from ingest.cli.progress import Progress
    from ingest.lights import Component
    from ingest.models import FeedSource
    from ingest.stores.redis import RedisPendingQueue


def cmd_poll(args: argparse.Namespace) -> int:
    from ingest.cli.progress import Progress
    from ingest.feeds import load_feeds
    from ingest.pipeline import poll_feeds
    from ingest.runtime import build_runtime

    settings = resolve_settings()
    feeds = load_feeds(Path(args.feeds) if args.feeds else settings.feeds.path)
    with build_runtime(settings) as rt, Progress() as progress:
        report = poll_feeds(rt, feeds, on_feed=progress.feeds(len(feeds)))
    print_counts("poll", report.counts)
    print_errors(report.errors)
    return 0


def cmd_process(args: argparse.Namespace) -> int:
    from ingest.cli.progress import Progress
    from ingest.cli.workers import run_pool, worker_count
    from ingest.process import process_pending
    from ingest.runtime import build_runtime

    settings = resolve_settings()
    workers = worker_count(settings, args.workers)
    if workers < 1:
        raise ConfigError(f"--workers {args.workers}: give 1 or more (0 or nothing: one per core)")
    consumer = args.consumer or consumer_name()
    failures: list[tuple[int, str]] = []
    with build_runtime(settings) as rt, stop_on_signals(rt.stop, settings.pipeline.stop_seconds) as stopping:
        rt.sink.ensure_ready()  # before any child starts: one clear error when the search server is not there
        batches = args.max_batches if args.max_batches is not None else settings.pipeline.max_batches
        # what this run may take at most: the time left is known from the stream's length at the start
        total = min(rt.queue.pending_count(), workers * batches * settings.pipeline.batch_size)
        with Progress() as progress:
            on_batch = progress.articles(total)
            if workers == 1:
                report = process_pending(rt, consumer, datetime.now(UTC), args.max_batches, on_batch)
            else:
                pool = run_pool(settings, workers, consumer, args.max_batches, rt.stop, on_batch)
        if workers > 1:
            report, failures = pool.report, pool.failures
            print("workers: " + ", ".join(f"{name} indexed={one.counts['index/indexed']}"
                                          for name, one in sorted(pool.workers.items())))
        print_counts("process", report.counts)
        print_cpu(report)
        print_errors(report.errors)
        print(f"pending after this run: {rt.queue.pending_count()}")
    for _, line in failures:
        print(line, file=sys.stderr)
    if stopping.signum is not None:
        print(f"ingest: stopped by {stopping.name}: {report.counts['process/handed_back']} entries handed back to "
              f"the other workers, {report.counts['index/indexed']} indexed before stopping; exit "
              f"{stopping.exit_code}", file=sys.stderr)
        return stopping.exit_code
    return max((code for code, _ in failures), default=0)


def cmd_run(args: argparse.Namespace) -> int:
    from ingest.cli.progress import Progress

    settings = resolve_settings()
    with Progress() as progress:
        summary = run_pipeline(settings, Path(args.feeds) if args.feeds else settings.feeds.path, progress)
    print_counts("run", summary["counts"])
    print_errors(summary["errors"])
    return 0


def run_pipeline(settings: Settings, feeds_path: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Poll every feed of the registry, then process everything pending: the whole pipeline once (a step of
    ``progress`` each, if given)."""
    from ingest.feeds import load_feeds
    from ingest.pipeline import poll_feeds, process_pending
    from ingest.report import Report
    from ingest.runtime import build_runtime

    feeds = load_feeds(feeds_path)
    with build_runtime(settings) as rt:
        rt.sink.ensure_ready()
        report = Report()
        report.merge(poll_feeds(rt, feeds, on_feed=progress.feeds(len(feeds)) if progress else None))
        at_most = settings.pipeline.max_batches * settings.pipeline.batch_size
        on_batch = progress.articles(min(rt.queue.pending_count(), at_most)) if progress else None
        report.merge(process_pending(rt, consumer_name(), datetime.now(UTC), on_batch=on_batch))
        return {"counts": dict(report.counts), "errors": report.errors, "pending": rt.queue.pending_count()}


def _queue(settings: Settings) -> RedisPendingQueue:
    from ingest.stores.redis import RedisPendingQueue, connect_redis

    return RedisPendingQueue.for_settings(connect_redis(settings.redis), settings)


def cmd_status(args: argparse.Namespace) -> int:
    from ingest.status import health_without_redis, pipeline_status

    settings, now = resolve_settings(), datetime.now(UTC)
    try:
        status = pipeline_status(settings, now)
    except ServiceUnavailableError as e:  # Redis: still say whether the search server answers, then fail
        if not args.json:
            print_health(health_without_redis(settings, str(e), [], now))
        raise
    lost = status.state_lost
    if args.json:
        print(json.dumps(status.as_dict(), indent=2, sort_keys=True))
        return EXIT_SERVICE if lost else 0
    print_health(status.health)
    if lost:
        print(f"!! {status.state_problem}")
    q, feeds = status.queue, status.feeds
    reasons = ", ".join(f"{k} {v}" for k, v in q.dead_by_reason.items())
    print(f"pending entries: {q.pending} ({q.unread} never read, {q.stale} stale)    "
          f"dead letters: {q.dead_letters}{f' ({reasons})' if reasons else ''}")
    hour, day = status.last_hour, status.last_day
    print(f"indexed: {hour.get('index/indexed', 0)} this hour, {day.get('index/indexed', 0)} in 24 h    "
          f"queued: {hour.get('poll/queued', 0)} this hour, {day.get('poll/queued', 0)} in 24 h")
    print(f"feeds: {feeds['feeds']} ({', '.join(f'{k} {v}' for k, v in feeds['by_state'].items()) or 'none'})"
          + "".join(f"\n   {f['state']:8} {f['id']}: {f['last_error']}" for f in feeds["attention"]))
    print_counts("all runs", status.counts)
    if lost:
        print(f"ingest: error: {status.state_problem}", file=sys.stderr)
    return EXIT_SERVICE if lost else 0


def print_health(health: Sequence[Component]) -> None:
    """The health lines, worst light first on the heading: what ``ingest status`` and the pipeline view say."""
    from ingest.lights import worst

    print(f"health: {worst(health)}")
    width = max((len(c.name) for c in health), default=0)
    for c in health:
        print(f"  {c.light:5}  {c.name:{width}}  {c.summary}")


def cmd_dlq(args: argparse.Namespace) -> int:
    queue = _queue(resolve_settings())
    if args.action == "list":
        rows = queue.dead_letters(args.limit, args.reason)
        if not rows and not args.json:
            print(f"no dead letters{f' of reason {args.reason}' if args.reason else ''}")
        for row in rows:
            entry = json.loads(row["entry"])
            shown = {"id": row["id"], "reason": row["reason"], "stage": row.get("stage"), "detail": row.get("detail"),
                     "url": entry["url"], "feed_id": entry["feed_id"], "deliveries": int(row.get("deliveries", 0))}
            if args.json:
                shown["entry"] = entry
                shown["document"] = json.loads(row["document"]) if "document" in row else None
                print(json.dumps(shown, ensure_ascii=False))
            else:
                times = f"{shown['deliveries']} time{'' if shown['deliveries'] == 1 else 's'}"
                print(f"{shown['id']}  {shown['reason']} ({shown['stage']}, delivered {times})  {shown['url']}\n"
                      f"    {shown['detail']}")
        return 0
    if not (args.ids or args.reason or args.all):
        raise ConfigError(f"dlq {args.action}: say which dead letters: their ids, --reason REASON or --all")
    if args.action == "replay":
        print(f"{queue.replay(args.ids, args.reason)} dead letter(s) back on the pending stream; "
              "`ingest process` (or the processing DAG) takes them again")
    else:
        print(f"{queue.purge(args.ids, args.reason)} dead letter(s) deleted")
    return 0


def cmd_feeds(args: argparse.Namespace) -> int:
    from ingest.feeds import dump_feeds, load_feeds, merge_feeds, parse_opml, to_opml
    from ingest.urls import domain_of

    settings = resolve_settings()
    path = Path(args.feeds) if args.feeds else settings.feeds.path
    if args.action == "check":
        feeds = load_feeds(path)
        enabled = sum(f.enabled for f in feeds)
        hosts = len({domain_of(f.url) for f in feeds})
        print(f"{path}: {len(feeds)} feed(s), {enabled} enabled, {hosts} host(s)")
        return 0
    if args.action == "export":
        print(to_opml(load_feeds(path)), end="")
        return 0
    if args.action == "status":
        return _feeds_status(settings, load_feeds(path), args.json)
    if not args.file:
        raise ConfigError("ingest feeds import needs an OPML file: ingest feeds import FILE.opml")
    imported = parse_opml(read_bytes(args.file, settings.http.max_bytes), args.file)
    existing = load_feeds(path) if path.exists() else []
    merged, added = merge_feeds(existing, imported)
    path.write_text(dump_feeds(merged), encoding="utf-8")
    print(f"{args.file}: {len(imported)} feed(s) read, {added} added to {path} ({len(merged)} in all)")
    return 0


def _feeds_status(settings: Settings, feeds: Sequence[FeedSource], as_json: bool) -> int:
    from ingest.status import feed_health_rows
    from ingest.stores.redis import connect_redis

    rows = feed_health_rows(connect_redis(settings.redis), settings, feeds)
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    # "per day": entries the feed dated within the last 7 days, per day ("none 7d": it listed only older ones).
    print(f"{'feed':24} {'state':12} {'last success':20} {'next poll':20} {'every':>7} {'per day':>8} "
          f"{'fails':>5} {'queued':>6} {'indexed':>7}  last error")
    for r in rows:
        every = f"{r['interval_minutes']:.0f}m" if r["interval_minutes"] else "-"
        per_day = r["entries_per_day"]
        rate = "-" if per_day is None else ("none 7d" if per_day == 0 else f"{per_day:.1f}")
        print(f"{r['id'][:24]:24} {r['state']:12} {(r['last_success_at'] or '-')[:19]:20} "
              f"{(r['next_poll_at'] or '-')[:19]:20} {every:>7} {rate:>8} {r['consecutive_failures']:>5} "
              f"{r['entries_queued']:>6} {r['articles_indexed']:>7}  {r['last_error'] or ''}")
    return 0


def cmd_services(args: argparse.Namespace) -> int:
    from ingest.embedded.services import EmbeddedServices

    embedded = EmbeddedServices(resolve_settings().embedded)
    if args.action == "start":
        for service in embedded.start():
            print(f"{service.name:7} {service.url}  (pid {service.pid})")
    elif args.action == "stop":
        stopped = embedded.stop()
        print("stopped: " + (", ".join(s.name for s in stopped) or "nothing was running"))
    else:
        running = embedded.running()
        for service in running:
            print(f"{service.name:7} {service.url}  (pid {service.pid})")
        if not running:
            print("no embedded service is running; `ingest services start` or `make demo` starts them")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    args.action = "stop"
    return cmd_services(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from ingest.embedded.services import DEMO_ROOT, EmbeddedServices
    from ingest.search_index.query import search_articles
    from ingest.stores.elasticsearch import build_es_client

    started = time.monotonic()
    embedded = EmbeddedServices(resolve_settings().embedded)
    print("== embedded services (real redis-server, osmem search server, loopback feed server)")
    for service in embedded.start():
        print(f"   {service.name:7} {service.url}")
    settings = resolve_settings()  # again: the services it points at have just started
    _reconcile_embedded(settings)
    feeds_path = settings.feeds.path if "INGEST_FEEDS__PATH" in os.environ else DEMO_ROOT / "feeds.yaml"
    print(f"== pipeline over {feeds_path}")
    summary = run_pipeline(settings, feeds_path)
    print_counts("counts per stage", summary["counts"])
    print_errors(summary["errors"])
    es = build_es_client(settings.elasticsearch)
    alias = settings.elasticsearch.index_prefix
    total = int(es.count(index=alias)["count"])
    print(f"== index {alias!r} holds {total} article(s); pending {summary['pending']}")
    listing = search_articles(es, alias, "*", facets=["source", "language"], size=50)
    for hit in listing.hits:
        print(f"   [{hit.source}] {hit.title}")
    print("== faceted search: ingest search Izhevsk --facet persons --facet locations --facet source --facet language")
    result = search_articles(es, alias, "Izhevsk", facets=["persons", "locations", "source", "language"], size=5)
    print(f"   {result.total} hit(s)")
    for hit in result.hits:
        print(f"   {hit.title}  <{hit.url}>")
    for name, values in result.facets.items():
        print(f"   {name:9}: " + (", ".join(f"{v.value} ({v.count})" for v in values) or "—"))
    print("== places across languages, geo-coded for the map: ingest search '*' --facet places")
    places = search_articles(es, alias, "*", facets=["places"], size=0)
    print("   places   : " + (", ".join(f"{v.value} ({v.count})" for v in places.facets["places"]) or "—"))
    print(f"== done in {time.monotonic() - started:.1f} s. Services keep running: try "
          "`.venv/bin/ingest search drones --facet persons`; `.venv/bin/ingest stop` stops them.")
    return 0


def cmd_index_verify(args: argparse.Namespace) -> int:
    """Compare what Redis marks as indexed with what the index holds; with --repair, make them agree."""
    from ingest.cli.progress import Progress
    from ingest.reconcile import first, verify_settings

    with Progress() as progress:
        result = verify_settings(resolve_settings(), args.repair, args.sample, progress.verification())
    if args.json:
        print(json.dumps(vars(result) | {"consistent": result.consistent}))
    else:
        what = f"a sample of {result.checked}" if result.sampled else f"{result.checked}"
        print(f"-- index verify: {what} article(s) Redis marks as indexed; {len(result.missing)} missing from the "
              f"index{f' ({first(result.missing)})' if result.missing else ''}"
              + ("" if result.sampled else f"; {len(result.unmarked)} in the index that Redis does not mark"))
        if args.repair:
            print(f"   repaired: {result.forgot} mark(s) forgotten, {result.restored} restored from the index, "
                  f"validators of {result.feeds_cleared} feed(s) cleared; both sides share one state id again")
            if result.forgot or result.feeds_cleared:
                print("   next: `ingest poll` (or the poll DAG) reads every feed whole and queues again what they "
                      "still list; `ingest process` indexes it")
        elif not result.consistent:
            print("   `ingest index verify --repair` makes them agree")
    return 0 if result.consistent or args.repair else EXIT_INPUT


def _reconcile_embedded(settings: Settings) -> None:
    """The embedded search server keeps nothing on disk, the embedded Redis does: after a restart of the services,
    make them agree before the demo runs (what an operator does with `ingest index verify --repair`)."""
    from ingest.reconcile import verify_settings
    from ingest.status import state_problem
    from ingest.stores.redis import connect_redis

    client = connect_redis(settings.redis)
    try:
        problem, lost = state_problem(client, settings)
    finally:
        client.close()
    if lost:
        print(f"== {problem}\n   the demo runs `ingest index verify --repair` for you:")
        result = verify_settings(settings, repair=True)
        print(f"   {result.forgot} mark(s) forgotten, {result.restored} restored, validators of "
              f"{result.feeds_cleared} feed(s) cleared")

