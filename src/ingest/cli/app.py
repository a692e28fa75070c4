"""The parser and ``main``: every command, its options, and one line and an exit code for an expected failure."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence

from redis.exceptions import ConnectionError as RedisConnectionError

from ingest.cli.output import EXIT_INPUT, describe_error
from ingest.cli.pipeline import (
    cmd_demo,
    cmd_dlq,
    cmd_feeds,
    cmd_index_verify,
    cmd_poll,
    cmd_process,
    cmd_run,
    cmd_services,
    cmd_status,
    cmd_stop,
)
from ingest.cli.tools import (
    cmd_cluster,
    cmd_entities,
    cmd_extract,
    cmd_index_migrate,
    cmd_index_schema,
    cmd_index_setup,
    cmd_kibana,
    cmd_search,
)
from ingest.errors import IngestError
from ingest.redact import redact


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ingest", description="News ingestion: feeds → articles → Elasticsearch.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="run the whole pipeline on embedded services and the bundled sample feeds",
                       description="Start the embedded services (redis-server, the osmem search server, a loopback "
                       "site with the sample feeds) unless they run, poll and process every feed, then print what "
                       "was indexed and a faceted search. The services keep running: `ingest stop` stops them.")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("poll", help="poll the feeds of the registry and queue new entries")
    p.add_argument("--feeds", help="feed registry (default: INGEST_FEEDS__PATH)")
    p.set_defaults(func=cmd_poll)
    p = sub.add_parser("process", help="process pending entries into the index")
    p.add_argument("--max-batches", type=int, default=None,
                   help="stop after this many batches per worker (default: INGEST_PIPELINE__MAX_BATCHES)")
    p.add_argument("--consumer", help="consumer name in the Redis group (default: host and pid; workers add -w<i>)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes (default: INGEST_PIPELINE__WORKERS, 0 = one per core)")
    p.set_defaults(func=cmd_process)
    p = sub.add_parser("run", help="poll, then process everything pending")
    p.add_argument("--feeds", help="feed registry (default: INGEST_FEEDS__PATH)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("search", help="full-text search with facets and filters")
    p.add_argument("query", help="query string; '*' matches everything")
    p.add_argument("--facet", action="append", default=[], help="facet field (persons, source, language, …)")
    p.add_argument("--filter", action="append", default=[], help="FIELD=VALUE, for example language=fr")
    p.add_argument("--since", help="published on or after: a date (2025-07-01), a time back from now (24h, 7d, 2w), "
                   "today, yesterday, or date math (now-7d/d)")
    p.add_argument("--until", help="published on or before, same forms")
    p.add_argument("--size", type=int, default=10, help="hits to show, 0 to 1000 (default 10)")
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
    p = sub.add_parser("cluster", help="story and duplicate of JSON lines {id, text, title?, lang?, published?, url?}")
    p.add_argument("path", nargs="?", default="-", metavar="PATH|-")
    p.set_defaults(func=cmd_cluster)
    p = sub.add_parser("feeds", help="the feed registry: check it, export it as OPML, import OPML into it")
    p.add_argument("action", choices=["check", "export", "import", "status"])
    p.add_argument("file", nargs="?", help="OPML file to import ('-' for stdin)")
    p.add_argument("--json", action="store_true", help="status as JSON")
    p.add_argument("--feeds", help="feed registry (default: INGEST_FEEDS__PATH)")
    p.set_defaults(func=cmd_feeds)
    p = sub.add_parser("status", help="queue depth, dead letters and counters of all runs")
    p.add_argument("--json", action="store_true", help="one JSON object (what the pipeline view's status.json gives)")
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
    q = index_actions.add_parser("verify", help="compare what Redis marks as indexed with what the index holds "
                                 "(exit 1 when they differ); --repair makes them agree")
    q.add_argument("--repair", action="store_true", help="forget marks of missing documents, restore marks from "
                   "the index, clear feed validators so the next poll re-queues what the feeds list")
    q.add_argument("--sample", type=int, metavar="N", help="check N marked ids only (a quick check of a large store)")
    q.add_argument("--json", action="store_true", help="one JSON object")
    q.set_defaults(func=cmd_index_verify)
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
    handler = logging.StreamHandler()
    handler.setFormatter(_RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    if not args.verbose:  # its ERROR lines on a page that is not HTML repeat the one line ingest says itself
        logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
    try:
        return int(args.func(args))
    except (IngestError, RedisConnectionError) as e:
        code, line = describe_error(e) or (EXIT_INPUT, f"ingest: error: {e}")
        print(line, file=sys.stderr)
        return code
    except BrokenPipeError:
        return 0
    except Exception:  # a bug: its traceback is worth seeing, without the secrets it may hold
        print(redact(traceback.format_exc()), file=sys.stderr, end="")
        return EXIT_INPUT


class _RedactingFormatter(logging.Formatter):
    """Log lines (tracebacks included) with secrets hidden, as every message is."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
