"""Articles updated in place: the exact level in a real Redis, and the pipeline against a loopback site whose
page changes under the same URL while its feed re-dates the entry."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import redis
from elasticsearch import Elasticsearch

from ingest.config import DedupSettings, Settings
from ingest.dedup import ClusterInput, cluster, signature
from ingest.embedded.fixture_server import FixtureServer
from ingest.models import FeedSource, Mark
from ingest.pipeline import poll_feeds, process_pending
from ingest.runtime import Runtime, build_runtime
from ingest.stores.elasticsearch import build_es_client
from ingest.stores.redis import RedisDedupStore, RedisStoryStore

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
SETTINGS = DedupSettings()
MERLU = ("Le merlu de l'Atlantique Nord a été sauvé de l'extinction grâce aux quotas de pêche européens. Le Conseil "
         "international pour l'exploration de la mer publie mardi un rapport qui montre que les stocks ont retrouvé "
         "leur niveau des années 1980 après vingt ans de restrictions sévères imposées aux flottes de chalutiers.")



def test_marks_are_kept_a_generation_or_two_then_forgotten(redis_client: redis.Redis, prefix: str) -> None:
    settings = DedupSettings(seen_days=2)
    store = RedisDedupStore(redis_client, prefix, settings)
    article = Mark("0123456789abcdef", 1795000000, 1795100000, "earlier story")
    store.commit("a1", article, NOW, entry_id="e1")  # e1: the feed's URL, which led to a1
    store.remember("a2", Mark("fedcba9876543210", 0, 5, "a2"), NOW)  # in its own story
    assert store.marks(["a1", "e1", "a2", "nope"], NOW) == [
        article, article.seen_only(), Mark("fedcba9876543210", 0, 5, "a2"), None]
    assert store.owner_of("0123456789abcdef" + "0" * 24, NOW) == "a1"  # by the text key, 64 bits of the hash
    assert store.owner_of("f" * 40, NOW) is None
    # Remembered at least seen_days, at most twice that; every key expires by then.
    assert store.marks(["a1"], NOW + timedelta(days=2)) == [article]
    assert store.marks(["a1"], NOW + timedelta(days=4)) == [None]
    assert store.owner_of("0123456789abcdef", NOW + timedelta(days=4)) is None
    ttls = [redis_client.ttl(k) for k in redis_client.scan_iter(f"{prefix}:*")]
    assert ttls and all(2 * 86400 <= t <= 4 * 86400 for t in ttls)


def test_an_update_keeps_its_story_and_its_new_text_is_found(redis_client: redis.Redis, prefix: str,
                                                             seed_text: str) -> None:
    store = RedisStoryStore(redis_client, prefix, SETTINGS)
    assert store.assign("a", signature(seed_text, "fr", SETTINGS), NOW).kind == "new"
    copy = store.assign("b", signature(f"Par la rédaction\n{seed_text}", "fr", SETTINGS), NOW)
    assert (copy.kind, copy.story_id, copy.duplicate_of) == ("duplicate", "a", "a")
    # b corrected: still a copy of a, in a's story.
    corrected = signature(f"Mise à jour : le bilan s'alourdit à quatre morts.\nPar la rédaction\n{seed_text}",
                          "fr", SETTINGS)
    updated = store.assign("b", corrected, NOW, kept_story="a")
    assert (updated.kind, updated.story_id, updated.duplicate_of) == ("updated", "a", "a")
    # b's text replaced by another story altogether: b stays in its story, and is no copy any more ...
    replaced = signature(MERLU, "fr", SETTINGS)
    updated = store.assign("b", replaced, NOW, kept_story="a")
    assert (updated.kind, updated.story_id, updated.duplicate_of) == ("updated", "a", None)
    # ... once: a retry of the update keeps nothing more ...
    keys = set(redis_client.scan_iter(f"{prefix}:*"))
    sizes = {k: redis_client.strlen(k) for k in keys if ":r:" in k}
    retried = store.assign("b", replaced, NOW + timedelta(hours=1), kept_story="a")
    assert (retried.kind, retried.story_id, retried.duplicate_of) == ("again", "a", None)
    assert set(redis_client.scan_iter(f"{prefix}:*")) == keys
    assert {k: redis_client.strlen(k) for k in keys if ":r:" in k} == sizes
    # ... and a copy of its new text is found: a copy of b, in b's story.
    later = store.assign("c", signature(f"{MERLU}\nLire aussi sur notre site.", "fr", SETTINGS), NOW, insert=False)
    assert (later.kind, later.story_id, later.duplicate_of) == ("duplicate", "a", "b")


def test_cluster_takes_a_record_met_again_with_another_text_as_an_update(redis_client: redis.Redis, prefix: str,
                                                                          seed_text: str) -> None:
    records = [ClusterInput("x", seed_text, lang="fr"), ClusterInput("x", seed_text, lang="fr"),
               ClusterInput("x", MERLU, lang="fr")]
    results = list(cluster(records, RedisDedupStore(redis_client, prefix),
                           RedisStoryStore(redis_client, prefix, SETTINGS), SETTINGS, NOW))
    assert [(r.kind, r.story_id) for r in results] == [("new", "x"), ("unchanged", "x"), ("updated", "x")]


# ---------------------------------------------------------------- the pipeline, end to end

PARAGRAPHS = [
    "Fishermen in the Bay of Biscay reported on Monday that hake catches had doubled since the spring, a recovery "
    "that scientists at the International Council for the Exploration of the Sea attribute to twenty years of "
    "strict European quotas and to a ban on trawling in the main spawning grounds off the Galician coast.",
    "The council's annual report, published in Copenhagen, estimates the spawning stock at more than 300,000 "
    "tonnes, its highest level since the early 1980s, and recommends that ministers raise next year's total "
    "allowable catch by about a tenth while keeping the seasonal closures that protected the young fish.",
    "Fishing organisations in Brittany welcomed the figures but warned that fuel prices and the loss of access "
    "to British waters still weighed on the smaller boats, several of which have been laid up in Lorient and "
    "Concarneau since the autumn because their owners could no longer cover the cost of a week at sea.",
]
CORRECTION = ("Correction: an earlier version of this article misstated the size of the stock; the council "
              "estimates it at 310,000 tonnes, not 300,000, and its report was published in Brussels.")


def _page(paragraphs: list[str]) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Hake is back</title></head>'
            f"<body><article><h1>Hake is back in the Bay of Biscay</h1>{body}</article></body></html>")


def _feed(server: FixtureServer, name: str, link: str, date: str, title: str = "Hake is back") -> None:
    xml = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Sea news</title><language>en</language>'
           f"<item><title>{title}</title><link>{link}</link><pubDate>{date}</pubDate></item></channel></rss>")
    (server.root / "feeds" / f"{name}.xml").write_text(xml, encoding="utf-8")


class _Site(NamedTuple):
    rt: Runtime
    es: Elasticsearch
    alias: str  # the read alias
    name: str
    page: Path  # the article's page on the loopback site, under the URL ``link``
    link: str
    feed: FeedSource  # its feed, written by _feed or _atom


def _site(settings: Settings, server: FixtureServer, kind: str) -> _Site:
    """A runtime with its index ready, and the names of one article's page and feed on the loopback site."""
    rt = build_runtime(settings)
    rt.sink.ensure_ready()
    name = f"{kind}-{uuid.uuid4().hex[:8]}"
    base = server.base_url
    return _Site(rt, build_es_client(settings.elasticsearch), settings.elasticsearch.index_prefix, name,
                 server.root / "pages" / f"{name}.html", f"{base}/pages/{name}.html",
                 FeedSource(id=name, url=f"{base}/feeds/{name}.xml", name="Sea news"))


def test_an_updated_article_is_indexed_again_under_its_id_and_story(settings: Settings,
                                                                     fixture_server: FixtureServer) -> None:
    rt, es, index, name, page, link, feed = _site(settings, fixture_server, "hake")

    page.write_text(_page(PARAGRAPHS), encoding="utf-8")
    _feed(fixture_server, name, link, "Mon, 23 Nov 2026 08:00:00 GMT")
    assert poll_feeds(rt, [feed], NOW).counts["poll/queued"] == 1
    first = process_pending(rt, "w", NOW)
    assert first.counts["index/indexed"] == 1 and first.counts["dedup/new_story"] == 1
    es.indices.refresh(index=index)
    (hit,) = es.search(index=index, query={"match_all": {}})["hits"]["hits"]
    doc_id, story_id = hit["_id"], hit["_source"]["story_id"]
    assert "Correction" not in hit["_source"]["text"]

    # The site corrects the article under the same URL; the feed re-dates the entry. Fetched again, though not
    # within recheck_minutes of the last fetch.
    page.write_text(_page([*PARAGRAPHS, CORRECTION]), encoding="utf-8")
    _feed(fixture_server, name, link, "Mon, 23 Nov 2026 15:30:00 GMT")
    soon = poll_feeds(rt, [feed], NOW + timedelta(minutes=10))
    assert soon.counts["poll/update_later"] == 1 and soon.counts["poll/queued"] == 0
    _feed(fixture_server, name, link, "Mon, 23 Nov 2026 15:30:00 GMT", title="Hake is back (corrected)")
    polled = poll_feeds(rt, [feed], NOW + timedelta(hours=2))
    assert polled.counts["poll/updated"] == 1 and polled.counts["poll/queued"] == 1
    second = process_pending(rt, "w", NOW + timedelta(hours=2))
    assert second.counts["dedup/updated"] == 1 and second.counts["index/indexed"] == 1
    es.indices.refresh(index=index)
    (hit,) = es.search(index=index, query={"match_all": {}})["hits"]["hits"]  # the same document, not a second
    assert (hit["_id"], hit["_source"]["story_id"]) == (doc_id, story_id)
    assert CORRECTION in hit["_source"]["text"]

    # Re-dated again with the same text: fetched, found unchanged, not indexed; the new date is remembered.
    _feed(fixture_server, name, link, "Tue, 24 Nov 2026 09:00:00 GMT")
    assert poll_feeds(rt, [feed], NOW + timedelta(hours=4)).counts["poll/updated"] == 1
    third = process_pending(rt, "w", NOW + timedelta(hours=4))
    assert third.counts["process/already_indexed"] == 1 and third.counts["index/indexed"] == 0
    _feed(fixture_server, name, link, "Tue, 24 Nov 2026 09:00:00 GMT", title="Hake is back (updated)")
    again = poll_feeds(rt, [feed], NOW + timedelta(hours=6))
    assert again.counts["poll/already_indexed"] == 1 and again.counts["poll/queued"] == 0
    assert again.counts["poll/updated"] == 0


def _atom(server: FixtureServer, name: str, link: str, published: str, updated: str) -> None:
    xml = (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">'
           f"<title>Sea news</title><id>urn:{name}</id><updated>{updated}</updated>"
           f'<entry><title>Hake is back</title><id>urn:{name}:1</id><link href="{link}"/>'
           f"<published>{published}</published><updated>{updated}</updated></entry></feed>")
    (server.root / "feeds" / f"{name}.xml").write_text(xml, encoding="utf-8")


def test_an_atom_entry_updated_in_place_is_indexed_again(settings: Settings, fixture_server: FixtureServer) -> None:
    """Atom keeps <published> and moves <updated>: the update is found by <updated>, and the feed's date of the
    change becomes the document's modified_at when the page does not say it."""
    rt, es, index, name, page, link, feed = _site(settings, fixture_server, "hake-atom")
    published = "2026-11-23T08:00:00Z"

    page.write_text(_page(PARAGRAPHS), encoding="utf-8")
    _atom(fixture_server, name, link, published, published)
    assert poll_feeds(rt, [feed], NOW).counts["poll/queued"] == 1
    assert process_pending(rt, "w", NOW).counts["index/indexed"] == 1
    es.indices.refresh(index=index)
    (hit,) = es.search(index=index, query={"match_all": {}})["hits"]["hits"]
    assert hit["_source"]["modified_at"] is None  # <updated> = <published>: never changed

    page.write_text(_page([*PARAGRAPHS, CORRECTION]), encoding="utf-8")
    _atom(fixture_server, name, link, published, "2026-11-23T15:30:00Z")
    polled = poll_feeds(rt, [feed], NOW + timedelta(hours=2))
    assert polled.counts["poll/updated"] == 1 and polled.counts["poll/queued"] == 1
    second = process_pending(rt, "w", NOW + timedelta(hours=2))
    assert second.counts["dedup/updated"] == 1 and second.counts["index/indexed"] == 1
    es.indices.refresh(index=index)
    (updated,) = es.search(index=index, query={"match_all": {}})["hits"]["hits"]
    assert (updated["_id"], updated["_source"]["story_id"]) == (hit["_id"], hit["_source"]["story_id"])
    assert CORRECTION in updated["_source"]["text"]
    assert updated["_source"]["published_at"].startswith("2026-11-23T08:00:00")
    assert updated["_source"]["modified_at"].startswith("2026-11-23T15:30:00")
