"""Commands over the index and over files: search, index administration, Kibana, and the stages run on files
(extract, entities, cluster)."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from ingest.cli.output import (
    EXIT_INPUT,
    read_bytes,
    read_jsonl,
)
from ingest.config import resolve_settings
from ingest.errors import ConfigError, PermanentError
from ingest.redact import redact


def cmd_search(args: argparse.Namespace) -> int:
    from ingest.search_index.query import check_size, parse_filters, parse_when, search_articles
    from ingest.stores.elasticsearch import build_es_client, check_search_server

    settings = resolve_settings()
    filters = parse_filters(args.filter)
    since, until = parse_when("--since", args.since), parse_when("--until", args.until)
    size = check_size(args.size)
    es = build_es_client(settings.elasticsearch)
    check_search_server(es, ", ".join(settings.elasticsearch.hosts))
    result = search_articles(es, settings.elasticsearch.index_prefix, args.query, args.facet, filters, size,
                             collapse=args.collapse, since=since, until=until)
    if args.json:
        print(result.model_dump_json(indent=2))
        return 0
    stories = "" if result.stories is None else f" in {result.stories} stor{'y' if result.stories == 1 else 'ies'}"
    print(f"{result.total} article(s) match {args.query!r}{stories}")
    for hit in result.hits:
        date = (hit.published_at or "")[:10]
        more = f" (+{hit.story_size - 1} more in this story)" if hit.story_size and hit.story_size > 1 else ""
        print(f"  {hit.score or 0:6.2f}  {date:10}  [{hit.source}] {hit.title}{more}")
        print(f"          {hit.url}")
    for name, values in result.facets.items():
        shown = ", ".join(f"{v.value} ({v.count})" for v in values) or "—"
        print(f"  facet {name}: {shown}")
    return 0


def cmd_index_setup(args: argparse.Namespace) -> int:
    from ingest.search_index.setup import configured_template, setup_index, stale_reason
    from ingest.search_index.template import template_fingerprint
    from ingest.stores.elasticsearch import build_es_client, check_search_server

    settings = resolve_settings().elasticsearch
    es = build_es_client(settings)
    check_search_server(es, ", ".join(settings.hosts))
    result = setup_index(es, settings)
    state = result.state
    read, write = (", ".join(state.name(v) for v in versions) or "nothing" for versions in (state.read, state.write))
    stale = stale_reason(state, settings, template_fingerprint(configured_template(settings)))
    replicas = (f"; {settings.number_of_replicas} replica(s) now set on {', '.join(result.replicas_changed)}"
                if result.replicas_changed else "")
    print(f"index template {settings.index_prefix!r} installed; readers see {read} (alias "
          f"{state.read_alias!r}), new documents go to {write} (alias {state.write_alias!r}){replicas}"
          + (f"; {stale}: `ingest index migrate` moves to a new index made from this template" if stale else ""))
    return 0


def cmd_index_migrate(args: argparse.Namespace) -> int:
    from ingest.cli.progress import Progress
    from ingest.search_index.migrate import describe_plan, migrate_index
    from ingest.search_index.template import MigrationStep
    from ingest.stores.elasticsearch import build_es_client, check_search_server

    settings = resolve_settings()
    hosts = ", ".join(settings.elasticsearch.hosts)
    es = build_es_client(settings.elasticsearch)
    check_search_server(es, hosts)

    def on_step(step: MigrationStep, done: str) -> None:
        progress.finish()  # the copy's line (stderr) ends before the step's own (stdout)
        print(f"   {done}", flush=True)

    with Progress() as progress:
        result = migrate_index(es, settings.elasticsearch, dry_run=args.dry_run, on_step=on_step,
                               on_copy=progress.copies())
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
          f"curl -X DELETE {redact(settings.elasticsearch.hosts[0].rstrip('/'))}/{result.source}")
    return 0


def cmd_index_schema(args: argparse.Namespace) -> int:
    from ingest.search_index.contract import document_schema

    print(json.dumps(document_schema(), indent=2, ensure_ascii=False))
    return 0


def cmd_kibana(args: argparse.Namespace) -> int:
    from ingest.search_index.kibana import build_kibana_client, dashboard_url, setup_kibana

    settings = resolve_settings()
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
    print(f"dashboard: {redact(dashboard_url(kibana.url, kibana.space, report.dashboard_id))}")
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    from ingest.extract import extract_article

    max_bytes = resolve_settings().http.max_bytes  # what the pipeline would fetch at most
    failed = 0
    for path in args.paths:
        url = args.url or ("file://" + str(Path(path).resolve()) if path != "-" else "file:///dev/stdin")
        try:
            html = read_bytes(path, max_bytes)
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

    settings = resolve_settings()
    models = NerModels(settings.nlp)
    for number, row in read_jsonl(args.path):
        text = str(row.get("text") or "")
        language = row.get("lang") if args.lang == "auto" else args.lang
        source = "given"
        if not language or language == "auto":
            language = detect_language(text)
            source = "detected" if language else "unknown"
        found = analyse_texts([text], language, models)[0]  # the code the pipeline's enrich stage runs
        note = {"note": "too short to tell its language: give --lang or a \"lang\" field"} if not language else {}
        print(json.dumps({
            "id": row.get("id", number),
            "language": language,
            "language_source": source,
            **note,
            "mentions": [m.model_dump() for m in found.mentions],
            "entities": [e.model_dump(mode="json") for e in found.entities],
            "places": [p.model_dump(mode="json") for p in found.places],
        }, ensure_ascii=False))
    return 0


def cmd_cluster(args: argparse.Namespace) -> int:
    """The pipeline's dedup step (same code, same settings) over a file, in a Redis namespace of its own that
    is deleted afterwards, so it neither sees nor changes what the pipeline keeps."""
    from ingest.dates import parse_iso_datetime
    from ingest.dedup import ClusterInput, cluster
    from ingest.stores.redis import RedisDedupStore, RedisStoryStore, connect_redis, delete_namespace

    settings = resolve_settings()
    client = connect_redis(settings.redis)
    prefix = f"{settings.redis.prefix}:cluster:{uuid.uuid4().hex[:12]}"

    def records() -> Iterator[ClusterInput]:
        for number, row in read_jsonl(args.path):
            text = row.get("text")
            if not isinstance(text, str) or not text.strip():
                raise ConfigError(f"{args.path}:{number}: no \"text\"; "
                                  "expected {id, text, title?, lang?, published?, url?}")
            record_id = str(row.get("id", number))
            if len(record_id.encode()) > 127:
                raise ConfigError(f"{args.path}:{number}: \"id\" is longer than 127 bytes; give shorter ids")
            published = row.get("published")
            when = parse_iso_datetime(published) if published is not None else None
            if published is not None and when is None:
                raise ConfigError(f"{args.path}:{number}: \"published\" is not an ISO 8601 date: "
                                  f"{str(published)[:40]!r}")
            url = row.get("url")
            if url is not None and not isinstance(url, str):
                raise ConfigError(f"{args.path}:{number}: \"url\" is not a string; give the article's URL or leave "
                                  "it out")
            yield ClusterInput(id=record_id, text=text, title=row.get("title"), lang=row.get("lang"),
                               published=when, url=url)

    try:
        exact = RedisDedupStore(client, prefix, settings.dedup)
        stories = RedisStoryStore(client, prefix, settings.dedup)
        for result in cluster(records(), exact, stories, settings.dedup, datetime.now(UTC)):
            print(json.dumps({"id": result.id, "story_id": result.story_id, "duplicate_of": result.duplicate_of,
                              "kind": result.kind, "score": round(result.score, 4)}))
    finally:
        delete_namespace(client, prefix)
    return 0
