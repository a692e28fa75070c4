"""Article fetch and extraction against a loopback server: compression, charsets, content types, and the
feed standing in for pages without usable text — every outcome indexed with a flag or dead-lettered with a
reason, counted per feed."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.config import Settings
from ingest.embedded.fixture_server import FixtureServer
from ingest.errors import PermanentError
from ingest.extract import extract_article
from ingest.fetch import fetch_article
from ingest.http import build_http_client
from ingest.models import FeedSource, Page
from ingest.pipeline import poll_feeds, process_pending
from ingest.runtime import build_runtime
from ingest.stores.elasticsearch import build_es_client

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DEMO_PAGE = "pages/izhevsk-attaque-drones.html"
DEMO_TITLE = "Izhevsk : une attaque de drones ukrainiens frappe l'usine Kupol et fait trois morts"

PARAGRAPHS = [
    "Le conseil municipal a voté mardi soir un budget révisé pour l'été, après une séance tendue où "
    "l'opposition a dénoncé des économies réalisées sur les écoles et les équipements sportifs du quartier.",
    "Selon le maire, la hausse des coûts de l'énergie a creusé un déficit de près de deux millions d'euros, "
    "que la ville entend combler sans augmenter les impôts locaux ni réduire les aides aux associations.",
    "Les élus écologistes ont réclamé un plan de rénovation thermique des bâtiments publics, jugé plus "
    "efficace à long terme que les coupes budgétaires décidées dans l'urgence à la fin du printemps.",
]


def _article_html(title: str, paragraphs: list[str], head: str = "", charset: str | None = None) -> str:
    meta = f'<meta charset="{charset}">' if charset else ""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f'<!DOCTYPE html><html lang="fr"><head>{meta}<title>{title} - Le Courrier</title>{head}</head>'
        f"<body><nav><a href='/'>Accueil</a></nav><article><h1>{title}</h1>{body}</article>"
        "<footer>Tous droits réservés</footer></body></html>"
    )


def _write(server: FixtureServer, name: str, content: bytes) -> str:
    path = server.root / "pages" / name
    path.write_bytes(content)
    return f"pages/{name}"


def _fetch(settings: Settings, url: str) -> Page:
    """``fetch_article`` of ``url`` with a client of its own, on an event loop of its own."""

    async def fetch() -> Page:
        async with build_http_client(settings.http) as client:
            return await fetch_article(client, url, settings.http)

    return asyncio.run(fetch())


@pytest.mark.parametrize("coding", ["identity", "gzip", "br"])
def test_compressed_pages_are_decoded(settings: Settings, fixture_server: FixtureServer, coding: str) -> None:
    page = _fetch(settings, f"{fixture_server.base_url}/served/{coding}/html-utf8/{DEMO_PAGE}")
    assert page.body.startswith(b"<!DOCTYPE html>")
    assert extract_article(page.body, page.final_url, encoding=page.encoding).title == DEMO_TITLE


def test_charset_from_header_meta_or_bytes(settings: Settings, fixture_server: FixtureServer) -> None:
    title = "Budget révisé : la mairie économise sur l'été"
    base = fixture_server.base_url
    cases = {
        # Windows-1252 bytes declared only by <meta charset>; the server says nothing.
        "html": _write(fixture_server, "cp1252-meta.html",
                       _article_html(title, PARAGRAPHS, charset="windows-1252").encode("cp1252")),
        # UTF-8 bytes the server labels ISO-8859-1 (a server default): the bytes win.
        "html-latin1": _write(fixture_server, "utf8-as-latin1.html", _article_html(title, PARAGRAPHS).encode()),
        # Latin-1 bytes, no meta, the header says so.
        "html-latin1 ": _write(fixture_server, "latin1.html", _article_html(title, PARAGRAPHS).encode("latin-1")),
    }
    for kind, path in cases.items():
        page = _fetch(settings, f"{base}/served/identity/{kind.strip()}/{path}")
        got = extract_article(page.body, page.final_url, encoding=page.encoding)
        assert got.title == title, (path, page.encoding, got.title)
        assert "économies réalisées" in got.text, path
        assert "Ã" not in got.text  # no mojibake


def test_pdf_and_images_are_refused_with_what_they_are(
    settings: Settings, fixture_server: FixtureServer, tmp_path: Path
) -> None:
    base = fixture_server.base_url
    pdf = _write(fixture_server, "report.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 4)
    png = _write(fixture_server, "photo.png", b"\x89PNG\r\n\x1a\n" + bytes(200))
    for kind, path, what in [("pdf", pdf, "PDF"), ("octet", pdf, "PDF"), ("none", png, "PNG")]:
        with pytest.raises(PermanentError) as info:
            _fetch(settings, f"{base}/served/identity/{kind}/{path}")
        assert info.value.reason == "not_html"
        assert what in info.value.detail and base in str(info.value)
    # HTML served without a content type, or as octet-stream, is recognised by its bytes.
    for kind in ("none", "octet"):
        page = _fetch(settings, f"{base}/served/identity/{kind}/{DEMO_PAGE}")
        assert extract_article(page.body, page.final_url).title == DEMO_TITLE


def _feed(server: FixtureServer, name: str, items: list[dict[str, str]]) -> str:
    rows = "".join(
        "<item>" + "".join(f"<{k}>{v}</{k}>" for k, v in item.items()) + "</item>" for item in items
    )
    xml = f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>{rows}</channel></rss>'
    (server.root / "feeds" / name).write_text(xml, encoding="utf-8")
    return f"{server.base_url}/feeds/{name}"


def test_pages_without_usable_text_fall_back_to_the_feed(settings: Settings, fixture_server: FixtureServer) -> None:
    base = fixture_server.base_url
    teaser_ld = json.dumps({"@context": "https://schema.org", "@type": "NewsArticle", "headline": "Réservé",
                            "isAccessibleForFree": False, "datePublished": "2026-11-20T08:00:00+01:00"})
    teaser = _write(fixture_server, "teaser.html", _article_html(
        "Réservé aux abonnés : le budget de la ville", PARAGRAPHS[:2],
        head=f'<script type="application/ld+json">{teaser_ld}</script>').encode())
    shell_html = b"<html><head><title>App</title></head><body><div id=app></div></body></html>"
    empty = _write(fixture_server, "shell.html", shell_html)
    empty_too = _write(fixture_server, "shell-too.html", shell_html)
    pdf = _write(fixture_server, "r.pdf", b"%PDF-1.4 x")
    future_ld = json.dumps({"@type": "NewsArticle", "datePublished": "2027-06-01T00:00:00Z"})
    dated = _write(fixture_server, "dated.html", _article_html(
        "Le budget révisé adopté", PARAGRAPHS,
        head=f'<script type="application/ld+json">{future_ld}</script>'
             '<meta property="article:published_time" content="2026-11-22T18:30:00+01:00">').encode())
    long_summary = " ".join(PARAGRAPHS) + " La suite est réservée aux abonnés du journal, qui la liront demain."
    url = _feed(fixture_server, "fallbacks.xml", [
        {"title": "Budget : la ville économise", "link": f"{base}/{teaser}", "description": long_summary},
        {"title": "Une application sans texte", "link": f"{base}/{empty}",
         "description": "&lt;p&gt;Le résumé &lt;b&gt;du flux&lt;/b&gt; tient lieu de texte.&lt;/p&gt;",
         "pubDate": "Sat, 21 Nov 2026 10:00:00 GMT"},
        {"link": f"{base}/{empty_too}"},  # no title, no summary: nothing to stand in
        {"title": "Le budget révisé adopté", "link": f"{base}/{dated}"},
        {"title": "Le rapport", "link": f"{base}/served/identity/octet/{pdf}"},
    ])
    rt = build_runtime(settings)
    rt.sink.ensure_ready()
    assert poll_feeds(rt, [FeedSource(id="city", url=url, name="City")]).counts["poll/queued"] == 5
    report = process_pending(rt, "w", NOW)

    assert report.counts["index/indexed"] == 3
    assert report.feed_counts["city/extract/paywalled"] == 1
    assert report.feed_counts["city/extract/feed_fallback"] == 2
    assert report.feed_counts["city/extract/extraction_empty"] == 2  # one stood in for, one dead-lettered
    assert report.feed_counts["city/process/dead_lettered"] == 2
    reasons = sorted(d["reason"] for d in rt.queue.dead_letters())  # type: ignore[attr-defined]
    assert reasons == ["extraction_empty", "not_html"]
    assert report.counts["fetch/not_html"] == 1 and report.counts["extract/extraction_empty"] == 2
    assert rt.queue.pending_count() == 0

    es = build_es_client(settings.elasticsearch)
    es.indices.refresh(index=settings.elasticsearch.index_prefix)
    hits = es.search(index=settings.elasticsearch.index_prefix, size=10)["hits"]["hits"]
    docs = {h["_source"]["title"]: h["_source"] for h in hits}

    paywalled = docs["Réservé aux abonnés : le budget de la ville"]
    assert paywalled["flags"] == ["paywalled"] and paywalled["text_source"] == "feed"
    assert paywalled["text"] == long_summary
    assert paywalled["published_source"] == "json_ld"

    shell = docs["Une application sans texte"]
    assert shell["text"] == "Le résumé du flux tient lieu de texte."
    assert shell["flags"] == ["extraction_empty"] and shell["text_source"] == "feed"
    assert shell["published_source"] == "feed" and shell["published_at"].startswith("2026-11-21T10:00")

    dated_doc = docs["Le budget révisé adopté"]
    assert dated_doc["text_source"] == "page" and dated_doc["flags"] == []
    # The JSON-LD date is after the fetch: the next declared one is used.
    assert dated_doc["published_source"] == "meta"
    assert dated_doc["published_at"].startswith("2026-11-22T18:30")
    assert dated_doc["language_declared"] == "fr" and dated_doc["language_detected"] == "fr"
