"""The worker's throughput features, on real services: several worker processes on one stream, the batch's pages
fetched at once, and near-duplicates that take their original's entities instead of running NER again."""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import yaml

from ingest.config import Settings
from ingest.embedded.fixture_server import FixtureServer
from ingest.enrich import enrich_articles
from ingest.models import Article, FeedSource
from ingest.pipeline import poll_feeds, process_pending
from ingest.runtime import build_runtime
from ingest.stores.elasticsearch import build_es_client
from ingest.stores.redis import RedisPendingQueue, connect_redis
from tests.conftest import shared_fixtures
from tests.integration.test_cli import run, settings_env

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _copy_with_boilerplate(html: str, n: int) -> str:
    """The page with a byline and a footer of its own: what a syndicating site changes, not the story."""
    byline = f"<p>Par la rédaction numérique {n}, avec AFP. Publié dans l'édition {n} du soir.</p>"
    footer = f"<p>Cet article vous a plu ? Abonnez-vous à la lettre {n} de la rédaction.</p>"
    html = re.sub(r"(<article[^>]*>)", r"\1" + byline, html, count=1)
    return html.replace("</article>", footer + "</article>", 1)


def _feed(server: FixtureServer, name: str, pages: list[str]) -> FeedSource:
    base = server.base_url
    items = "".join(f"<item><title>item {i}</title><link>{base}/pages/{p}</link></item>" for i, p in enumerate(pages))
    (server.root / "feeds" / name).write_text(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>', encoding="utf-8")
    return FeedSource(id=name.removesuffix(".xml"), url=f"{base}/feeds/{name}", name="Copies")


def _sources(settings: Settings) -> dict[str, dict]:
    es = build_es_client(settings.elasticsearch)
    es.indices.refresh(index=settings.elasticsearch.index_prefix)
    hits = es.search(index=settings.elasticsearch.index_prefix, size=100)["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def test_a_near_duplicate_takes_its_originals_entities(settings: Settings, fixture_server: FixtureServer) -> None:
    """Three copies of the Izhevsk article that differ in byline and footer: the first runs NER, the copy in the
    same batch takes its entities from it, the copy in a later batch from the index. Each copy's entities are
    what NER gives on the copy itself."""
    original = (fixture_server.root / "pages" / "izhevsk-attaque-drones.html").read_text(encoding="utf-8")
    pages = []
    for n in range(3):
        name = f"izhevsk-copy-{settings.redis.prefix}-{n}.html"
        (fixture_server.root / "pages" / name).write_text(_copy_with_boilerplate(original, n), encoding="utf-8")
        pages.append(name)
    settings.pipeline.batch_size = 2
    with build_runtime(settings) as rt:
        rt.sink.ensure_ready()
        poll_feeds(rt, [_feed(fixture_server, f"copies-{settings.redis.prefix}.xml", pages)])
        report = process_pending(rt, "w", NOW)
        assert report.counts["index/indexed"] == 3
        assert report.counts["dedup/near_duplicate"] == 2
        assert report.counts["enrich/reused"] == 2
        assert report.counts["enrich/ok"] == 3
        assert report.cpu_seconds["enrich"] > 0 and report.cpu_seconds["extract"] > 0

        docs = _sources(settings)
        assert len(docs) == 3
        first = next(d for d in docs.values() if d["duplicate_of"] is None)
        for doc in docs.values():
            assert doc["enrichment"] == first["enrichment"]
            article = Article.model_validate({k: v for k, v in doc.items() if k in Article.model_fields})
            fresh = enrich_articles([article], rt.models)[0]
            assert sorted((e.entity_id, e.label, e.count) for e in fresh.entities) == sorted(
                (e["entity_id"], e["label"], e["count"]) for e in doc["entities"])
            assert {p.entity_id for p in fresh.places} == {p["entity_id"] for p in doc["places"]}
            assert {e["first"] for e in doc["entities"]} == {e.first for e in fresh.entities}
        assert any(e["label"] == "PER" for e in first["entities"])


def test_several_worker_processes_share_one_stream(settings: Settings, fixture_server: FixtureServer,
                                                   tmp_path: Path) -> None:
    """`ingest process --workers 2` on 24 real articles in small batches: both workers take batches, every
    article is indexed exactly once, nothing is left pending or dead-lettered."""
    index = json.loads((shared_fixtures() / "pages" / "fundus" / "index.json").read_text())[:24]
    pages = []
    for row in index:
        name = f"fundus-{Path(row['html']).name.removesuffix('.gz')}"
        html = gzip.decompress((shared_fixtures() / "pages" / "fundus" / row["html"]).read_bytes())
        (fixture_server.root / "pages" / name).write_bytes(html)
        pages.append(name)
    feed = _feed(fixture_server, f"fundus-{settings.redis.prefix}.xml", pages)
    registry = tmp_path / "feeds.yaml"
    registry.write_text(yaml.safe_dump({"feeds": [feed.model_dump(mode="json", include={"id", "url", "name"})]}))
    env = {**settings_env(settings, tmp_path), "INGEST_FEEDS__PATH": str(registry),
           "INGEST_PIPELINE__BATCH_SIZE": "3"}
    assert "queued=24" in run(["poll"], env=env).stdout

    done = run(["process", "--workers", "2"], env=env)
    assert done.returncode == 0, done.stderr
    [workers] = [line for line in done.stdout.splitlines() if line.startswith("workers: ")]
    indexed = [int(n) for n in re.findall(r"indexed=(\d+)", workers)]
    assert len(indexed) == 2 and all(n > 0 for n in indexed), workers
    assert re.search(r"^cpu seconds: .*enrich=", done.stdout, re.M)

    queue = RedisPendingQueue.for_settings(connect_redis(settings.redis), settings)
    assert queue.pending_count() == 0 and queue.dead_letters() == []
    docs = _sources(settings)
    assert sum(indexed) == len(docs)  # none indexed twice (an _id written twice would count twice above)
    urls = {doc["url"].rsplit("/", 1)[1] for doc in docs.values()}
    gone = set(pages) - urls
    # what is not a document of its own is a counted duplicate of one that is
    assert len(docs) + int(re.search(r"duplicate_text=(\d+)", done.stdout).group(1) if "duplicate_text=" in
                           done.stdout else 0) == 24, (gone, done.stdout)
