"""``ingest …``: the command line, calling the same code paths the DAGs run."""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from redis.exceptions import ConnectionError as RedisConnectionError

from ingest.config import Settings, load_settings
from ingest.errors import ConfigError, IngestError, PermanentError, ServiceUnavailableError
from ingest.jsonl import json_objects

if TYPE_CHECKING:
    from ingest.models import FeedSource
    from ingest.stores.redis import RedisPendingQueue

logger = logging.getLogger("ingest.cli")

# Exit codes: 1 = some input failed, 2 = bad usage or configuration, 3 = a service is down.
EXIT_INPUT, EXIT_CONFIG, EXIT_SERVICE = 1, 2, 3


# ------------------------------------------------------------------ settings


def resolve_settings() -> Settings:
    """Settings from the environment; when the demo's embedded services run and the environment does not
    name other servers, point at them so ``ingest search`` works after ``make demo``."""
    settings = load_settings()
    from ingest.embedded.services import EmbeddedServices

    embedded = EmbeddedServices(settings.embedded)
    running = {s.name for s in embedded.running()}
    if {"redis", "search"} <= running:
        urls = embedded.urls()
        if "INGEST_REDIS__URL" not in os.environ:
            settings.redis.url = urls["redis"]
        if "INGEST_ELASTICSEARCH__HOSTS" not in os.environ:
            settings.elasticsearch.hosts = [urls["search"]]
            settings.elasticsearch.server_mode = "serverless"
        if "INGEST_HTTP__ALLOW_PRIVATE" not in os.environ:
            settings.http.allow_private = True
        if "INGEST_HTTP__HOST_MIN_INTERVAL_SECONDS" not in os.environ:
            settings.http.host_min_interval_seconds = 0.1  # the demo's one loopback site stands for many
    return settings


# ------------------------------------------------------------------ pipeline commands


def cmd_poll(args: argparse.Namespace) -> int:
    from ingest.feeds import load_feeds
    from ingest.pipeline import poll_feeds
    from ingest.runtime import build_runtime

    settings = resolve_settings()
    feeds = load_feeds(Path(args.feeds) if args.feeds else settings.feeds.path)
    rt = build_runtime(settings)
    report = poll_feeds(rt, feeds)
    _print_counts("poll", report.counts)
    _print_errors(report.errors)
    return 0


def cmd_process(args: argparse.Namespace) -> int:
    from ingest.pipeline import process_pending
    from ingest.runtime import build_runtime

    settings = resolve_settings()
    rt = build_runtime(settings)
    rt.sink.ensure_ready()
    report = process_pending(rt, args.consumer or _consumer(), datetime.now(UTC), args.max_batches)
    _print_counts("process", report.counts)
    _print_errors(report.errors)
    print(f"pending after this run: {rt.queue.pending_count()}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    settings = resolve_settings()
    summary = run_pipeline(settings, Path(args.feeds) if args.feeds else settings.feeds.path)
    _print_counts("run", summary["counts"])
    _print_errors(summary["errors"])
    return 0


def run_pipeline(settings: Settings, feeds_path: Path) -> dict[str, Any]:
    """Poll every feed of the registry, then process everything pending: the whole pipeline once."""
    from ingest.feeds import load_feeds
    from ingest.pipeline import poll_feeds, process_pending
    from ingest.report import Report
    from ingest.runtime import build_runtime

    feeds = load_feeds(feeds_path)
    rt = build_runtime(settings)
    rt.sink.ensure_ready()
    report = Report()
    report.merge(poll_feeds(rt, feeds))
    report.merge(process_pending(rt, _consumer(), datetime.now(UTC)))
    return {"counts": dict(report.counts), "errors": report.errors, "pending": rt.queue.pending_count()}


def cmd_index_setup(args: argparse.Namespace) -> int:
    from ingest.search_index.template import index_template, template_fingerprint
    from ingest.stores.elasticsearch import ElasticsearchSink, build_es_client, check_search_server, read_index_state

    settings = resolve_settings()
    es = build_es_client(settings.elasticsearch)
    check_search_server(es, ", ".join(settings.elasticsearch.hosts))
    sink = ElasticsearchSink(es, settings.elasticsearch)
    sink.ensure_ready()
    state = read_index_state(es, settings.elasticsearch.index_prefix)
    read, write = (", ".join(state.name(v) for v in versions) or "nothing" for versions in (state.read, state.write))
    stale = state.current is not None and state.versions[state.current] != template_fingerprint(
        index_template(settings.elasticsearch.index_prefix))
    print(f"index template {settings.elasticsearch.index_prefix!r} installed; readers see {read} (alias "
          f"{state.read_alias!r}), new documents go to {write} (alias {state.write_alias!r})"
          + ("; that index was made from another template: `ingest index migrate` moves to one made from this one"
             if stale else ""))
    return 0


def cmd_index_migrate(args: argparse.Namespace) -> int:
    from ingest.search_index.migrate import describe_plan, migrate_index
    from ingest.stores.elasticsearch import build_es_client, check_search_server

    settings = resolve_settings()
    hosts = ", ".join(settings.elasticsearch.hosts)
    es = build_es_client(settings.elasticsearch)
    check_search_server(es, hosts)
    result = migrate_index(es, settings.elasticsearch, dry_run=args.dry_run,
                           on_step=lambda step, done: print(f"   {done}", flush=True))
    if not result.plan.steps:
        print(f"{result.source} already has the current template (fingerprint {result.fingerprint}): "
              "nothing to migrate")
        return 0
    if args.dry_run:
        documents = int(es.count(index=result.source)["count"])
        print(f"-- index migrate {result.source} → {result.target} would (dry run, nothing changed):")
        for line in describe_plan(result, documents):
            print(f"   {line}")
        return 0
    kept = int(es.count(index=result.source)["count"])
    print(f"-- migrated {result.source} → {result.target} in {result.seconds:.1f} s; {result.source} is kept "
          f"({kept} documents): once nothing reads it by name, delete it with "
          f"curl -X DELETE {settings.elasticsearch.hosts[0].rstrip('/')}/{result.source}")
    return 0


def cmd_index_schema(args: argparse.Namespace) -> int:
    from ingest.search_index.contract import document_schema

    print(json.dumps(document_schema(), indent=2, ensure_ascii=False))
    return 0


def cmd_kibana(args: argparse.Namespace) -> int:
    from ingest.search_index.kibana import build_kibana_client, dashboard_url, setup_kibana

    settings = load_settings()
    overrides = {"url": args.url, "space": args.space}
    kibana = settings.kibana.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    with build_kibana_client() as client:
        report = setup_kibana(client, kibana, settings.elasticsearch.index_prefix)
    print(f"kibana: {report.success_count} saved object(s) imported at {report.where} (overwrite=true), "
          f"{len(report.errors)} refused")
    for line in report.errors:
        print(f"ingest: error: kibana refused {line}", file=sys.stderr)
    if report.errors:
        return EXIT_INPUT
    print(f"dashboard: {dashboard_url(kibana.url, kibana.space, report.dashboard_id)}")
    return 0


def _queue(settings: Settings) -> RedisPendingQueue:
    from ingest.stores.redis import RedisPendingQueue, build_redis_client

    return RedisPendingQueue.for_settings(build_redis_client(settings.redis.url), settings)


def cmd_status(args: argparse.Namespace) -> int:
    from ingest.status import pipeline_status

    status = pipeline_status(resolve_settings(), datetime.now(UTC))
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
        return 0
    q, feeds = status["queue"], status["feeds"]
    reasons = ", ".join(f"{k} {v}" for k, v in q["dead_by_reason"].items())
    print(f"pending entries: {q['pending']} ({q['unread']} never read, {q['stale']} stale)    "
          f"dead letters: {q['dead_letters']}{f' ({reasons})' if reasons else ''}")
    hour, day = status["last_hour"], status["last_day"]
    print(f"indexed: {hour.get('index/indexed', 0)} this hour, {day.get('index/indexed', 0)} in 24 h    "
          f"queued: {hour.get('poll/queued', 0)} this hour, {day.get('poll/queued', 0)} in 24 h")
    print(f"feeds: {feeds['feeds']} ({', '.join(f'{k} {v}' for k, v in feeds['by_state'].items()) or 'none'})"
          + "".join(f"\n   {f['state']:8} {f['id']}: {f['last_error']}" for f in feeds["attention"]))
    _print_counts("all runs", status["counts"])
    return 0


def cmd_dlq(args: argparse.Namespace) -> int:
    queue = _queue(resolve_settings())
    if args.action == "list":
        for row in queue.dead_letters(args.limit, args.reason):
            entry = json.loads(row["entry"])
            shown = {"id": row["id"], "reason": row["reason"], "stage": row.get("stage"), "detail": row.get("detail"),
                     "url": entry["url"], "feed_id": entry["feed_id"], "deliveries": int(row.get("deliveries", 0))}
            if args.json:
                shown["entry"] = entry
                shown["document"] = json.loads(row["document"]) if "document" in row else None
            print(json.dumps(shown, ensure_ascii=False))
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
    imported = parse_opml(_read_bytes(args.file), args.file)
    existing = load_feeds(path) if path.exists() else []
    merged, added = merge_feeds(existing, imported)
    path.write_text(dump_feeds(merged), encoding="utf-8")
    print(f"{args.file}: {len(imported)} feed(s) read, {added} added to {path} ({len(merged)} in all)")
    return 0


def _feeds_status(settings: Settings, feeds: Sequence[FeedSource], as_json: bool) -> int:
    from ingest.status import feed_health_rows
    from ingest.stores.redis import build_redis_client

    rows = feed_health_rows(build_redis_client(settings.redis.url), settings, feeds)
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'feed':24} {'state':12} {'last success':20} {'next poll':20} {'every':>7} {'per day':>7} "
          f"{'fails':>5} {'queued':>6} {'indexed':>7}  last error")
    for r in rows:
        every = f"{r['interval_minutes']:.0f}m" if r["interval_minutes"] else "-"
        rate = f"{r['entries_per_day']:.1f}" if r["entries_per_day"] is not None else "-"
        print(f"{r['id'][:24]:24} {r['state']:12} {(r['last_success_at'] or '-')[:19]:20} "
              f"{(r['next_poll_at'] or '-')[:19]:20} {every:>7} {rate:>7} {r['consecutive_failures']:>5} "
              f"{r['entries_queued']:>6} {r['articles_indexed']:>7}  {r['last_error'] or ''}")
    return 0


# ------------------------------------------------------------------ search


def cmd_search(args: argparse.Namespace) -> int:
    from ingest.search_index.query import parse_filters, search_articles
    from ingest.stores.elasticsearch import build_es_client, check_search_server

    settings = resolve_settings()
    filters = parse_filters(args.filter)
    es = build_es_client(settings.elasticsearch)
    check_search_server(es, ", ".join(settings.elasticsearch.hosts))
    result = search_articles(es, settings.elasticsearch.index_prefix, args.query, args.facet, filters, args.size,
                             collapse=args.collapse, since=args.since, until=args.until)
    if args.json:
        print(result.model_dump_json(indent=2))
        return 0
    stories = f" in {result.stories} stories" if result.stories is not None else ""
    print(f"{result.total} article(s) match {args.query!r}{stories}")
    for hit in result.hits:
        date = (hit.published_at or "")[:10]
        size = f" (+{hit.story_size - 1} more in this story)" if hit.story_size and hit.story_size > 1 else ""
        print(f"  {hit.score or 0:6.2f}  {date:10}  [{hit.source}] {hit.title}{size}")
        print(f"          {hit.url}")
    for name, values in result.facets.items():
        shown = ", ".join(f"{v.value} ({v.count})" for v in values) or "—"
        print(f"  facet {name}: {shown}")
    return 0


# ------------------------------------------------------------------ batch tools (no services)


def cmd_extract(args: argparse.Namespace) -> int:
    from ingest.extract import extract_article

    failed = 0
    for path in args.paths:
        url = args.url or ("file://" + str(Path(path).resolve()) if path != "-" else "file:///dev/stdin")
        try:
            html = _read_bytes(path)
            result = extract_article(html, url)
        except (PermanentError, OSError) as e:
            failed += 1
            print(json.dumps({"path": path, "error": str(e)}, ensure_ascii=False))
            continue
        row = {"path": path, **result.model_dump(mode="json")}
        print(json.dumps(row, ensure_ascii=False))
    return EXIT_INPUT if failed and failed == len(args.paths) else 0


def cmd_entities(args: argparse.Namespace) -> int:
    from ingest.enrich import NerModels, analyse_texts
    from ingest.lang import detect_language

    settings = load_settings()
    models = NerModels(settings.nlp)
    for number, row in _read_jsonl(args.path):
        text = str(row.get("text") or "")
        language = row.get("lang") if args.lang == "auto" else args.lang
        if not language or language == "auto":
            language = detect_language(text)
        found = analyse_texts([text], language, models)[0]  # the code the pipeline's enrich stage runs
        print(json.dumps({
            "id": row.get("id", number),
            "language": language,
            "mentions": [m.model_dump() for m in found.mentions],
            "entities": [e.model_dump(mode="json") for e in found.entities],
            "places": [p.model_dump(mode="json") for p in found.places],
        }, ensure_ascii=False))
    return 0


def cmd_cluster(args: argparse.Namespace) -> int:
    """The pipeline's dedup step (same code, same settings) over a file, in a Redis namespace of its own that
    is deleted afterwards, so it neither sees nor changes what the pipeline keeps."""
    from ingest.dedup import ClusterInput, cluster
    from ingest.stores.redis import RedisDedupStore, RedisStoryStore, build_redis_client, delete_namespace

    settings = load_settings()
    client = build_redis_client(settings.redis.url)
    prefix = f"{settings.redis.prefix}:cluster:{uuid.uuid4().hex[:12]}"

    def records() -> Iterator[ClusterInput]:
        for number, row in _read_jsonl(args.path):
            text = row.get("text")
            if not isinstance(text, str) or not text.strip():
                raise ConfigError(f"{args.path}:{number}: no \"text\"; expected {{id, text, title?, lang?}}")
            record_id = str(row.get("id", number))
            if len(record_id.encode()) > 127:
                raise ConfigError(f"{args.path}:{number}: \"id\" is longer than 127 bytes; give shorter ids")
            yield ClusterInput(id=record_id, text=text, title=row.get("title"), lang=row.get("lang"))

    try:
        exact = RedisDedupStore(client, prefix, settings.dedup)
        stories = RedisStoryStore(client, prefix, settings.dedup)
        for result in cluster(records(), exact, stories, settings.dedup, datetime.now(UTC)):
            print(json.dumps({"id": result.id, "story_id": result.story_id, "duplicate_of": result.duplicate_of,
                              "kind": result.kind, "score": round(result.score, 4)}))
    finally:
        delete_namespace(client, prefix)
    return 0


# ------------------------------------------------------------------ embedded services and the demo


def cmd_services(args: argparse.Namespace) -> int:
    from ingest.embedded.services import EmbeddedServices

    embedded = EmbeddedServices(load_settings().embedded)
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
    embedded = EmbeddedServices(load_settings().embedded)
    print("== embedded services (real redis-server, osmem search server, loopback feed server)")
    for service in embedded.start():
        print(f"   {service.name:7} {service.url}")
    settings = resolve_settings()
    feeds_path = settings.feeds.path if "INGEST_FEEDS__PATH" in os.environ else DEMO_ROOT / "feeds.yaml"
    print(f"== pipeline over {feeds_path}")
    summary = run_pipeline(settings, feeds_path)
    _print_counts("counts per stage", summary["counts"])
    _print_errors(summary["errors"])
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


# ------------------------------------------------------------------ helpers


def _consumer() -> str:
    return f"cli-{socket.gethostname()}-{os.getpid()}"


def _read_bytes(path: str) -> bytes:
    data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def _read_jsonl(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    stream: TextIO = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    with stream:
        yield from json_objects(stream, path)


def _print_counts(title: str, counts: dict[str, int]) -> None:
    print(f"-- {title}")
    by_stage: dict[str, list[str]] = {}
    for name, value in sorted(counts.items()):
        stage, _, outcome = name.partition("/")
        by_stage.setdefault(stage, []).append(f"{outcome}={value}")
    for stage in ("poll", "process", "fetch", "extract", "dedup", "enrich", "index"):
        if stage in by_stage:
            print(f"   {stage:8} " + "  ".join(by_stage.pop(stage)))
    for stage, items in by_stage.items():
        print(f"   {stage:8} " + "  ".join(items))


def _print_errors(errors: Sequence[str]) -> None:
    for line in errors[:20]:
        print(f"   ! {line}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ingest", description="News ingestion: feeds → articles → Elasticsearch.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="run the whole pipeline on embedded services and the bundled sample feeds")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("poll", help="poll the feeds of the registry and queue new entries")
    p.add_argument("--feeds", help="feed registry (default: INGEST_FEEDS__PATH)")
    p.set_defaults(func=cmd_poll)
    p = sub.add_parser("process", help="process pending entries into the index")
    p.add_argument("--max-batches", type=int, default=None)
    p.add_argument("--consumer", help="consumer name in the Redis group (default: host and pid)")
    p.set_defaults(func=cmd_process)
    p = sub.add_parser("run", help="poll, then process everything pending")
    p.add_argument("--feeds", help="feed registry (default: INGEST_FEEDS__PATH)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("search", help="full-text search with facets and filters")
    p.add_argument("query", help="query string; '*' matches everything")
    p.add_argument("--facet", action="append", default=[], help="facet field (persons, source, language, …)")
    p.add_argument("--filter", action="append", default=[], help="FIELD=VALUE, for example language=fr")
    p.add_argument("--since", help="published on or after: a date (2025-07-01) or date math (now-7d/d)")
    p.add_argument("--until", help="published on or before, same forms")
    p.add_argument("--size", type=int, default=10)
    p.add_argument("--collapse", choices=["story"], help="one hit per story, with how many articles it has")
    p.add_argument("--json", action="store_true", help="one JSON object: total, hits, facets")
    p.set_defaults(func=cmd_search)
    p = sub.add_parser("extract", help="extract saved HTML pages to JSON lines (no network)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="HTML file, .gz accepted, '-' for stdin")
    p.add_argument("--url", help="URL the page was fetched from")
    p.set_defaults(func=cmd_extract)
    p = sub.add_parser("entities", help="named entities of JSON lines {id, text, lang?}")
    p.add_argument("--lang", choices=["auto", "fr", "en"], default="auto")
    p.add_argument("path", nargs="?", default="-", metavar="PATH|-")
    p.set_defaults(func=cmd_entities)
    p = sub.add_parser("cluster", help="story and duplicate of JSON lines {id, text, title?, lang?}")
    p.add_argument("path", nargs="?", default="-", metavar="PATH|-")
    p.set_defaults(func=cmd_cluster)
    p = sub.add_parser("feeds", help="the feed registry: check it, export it as OPML, import OPML into it")
    p.add_argument("action", choices=["check", "export", "import", "status"])
    p.add_argument("file", nargs="?", help="OPML file to import ('-' for stdin)")
    p.add_argument("--json", action="store_true", help="status as JSON")
    p.add_argument("--feeds", help="feed registry (default: INGEST_FEEDS__PATH)")
    p.set_defaults(func=cmd_feeds)
    p = sub.add_parser("status", help="queue depth, dead letters and counters of all runs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("dlq", help="dead-lettered entries: list them, replay them into the pending stream, purge them")
    p.add_argument("action", choices=["list", "replay", "purge"])
    p.add_argument("ids", nargs="*", metavar="ID", help="dead letter ids (from `dlq list`) for replay or purge")
    p.add_argument("--reason", help="only the dead letters of this reason (for example index_rejected)")
    p.add_argument("--all", action="store_true", help="replay or purge every dead letter")
    p.add_argument("--limit", type=int, default=50, help="list: how many, newest first")
    p.add_argument("--json", action="store_true", help="list: with the whole entry and the refused document")
    p.set_defaults(func=cmd_dlq)
    p = sub.add_parser("index", help="index administration")
    index_actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = index_actions.add_parser("setup", help="install the index template, the first index and its aliases")
    q.set_defaults(func=cmd_index_setup)
    q = index_actions.add_parser("schema", help="print the JSON Schema of the indexed document")
    q.set_defaults(func=cmd_index_schema)
    q = index_actions.add_parser("migrate", help="move the aliases to a new index version made from the current "
                                 "template, copying every document (resumable)")
    q.add_argument("--dry-run", action="store_true", help="print the steps left, change nothing")
    q.set_defaults(func=cmd_index_migrate)
    p = sub.add_parser("kibana", help="install the data view, saved search and dashboard into Kibana (idempotent)")
    p.add_argument("action", choices=["setup"])
    p.add_argument("--url", help="Kibana base URL (default: INGEST_KIBANA__URL)")
    p.add_argument("--space", help="Kibana space id (default: INGEST_KIBANA__SPACE)")
    p.set_defaults(func=cmd_kibana)
    p = sub.add_parser("services", help="start, stop or list the embedded services")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.set_defaults(func=cmd_services)
    p = sub.add_parser("stop", help="stop the embedded services the demo left running")
    p.set_defaults(func=cmd_stop)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.INFO if args.verbose else logging.ERROR
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except ServiceUnavailableError as e:
        print(f"ingest: error: {e}", file=sys.stderr)
        return EXIT_SERVICE
    except ConfigError as e:
        print(f"ingest: error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except IngestError as e:
        print(f"ingest: error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except RedisConnectionError as e:
        print(f"ingest: error: Redis connection lost ({e}); unfinished entries stay pending, run again when it is back",
              file=sys.stderr)
        return EXIT_SERVICE
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
