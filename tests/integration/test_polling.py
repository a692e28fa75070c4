"""Polling and fetching against a loopback server that misbehaves on purpose: politeness per host checked from
the server's own log, 429 storms, slow-loris answers, oversized bodies, redirect loops, private addresses,
robots.txt, Google News sitemaps and the adaptive schedule, with real Redis."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.config import Settings
from ingest.embedded.fixture_server import FixtureServer, Request
from ingest.models import FeedSource
from ingest.pipeline import poll_feeds, process_pending
from ingest.runtime import build_poll_runtime, build_runtime

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[FixtureServer]:
    """A loopback site of its own, so its request log holds only this test's requests."""
    root = tmp_path / "site"
    (root / "feeds").mkdir(parents=True)
    (root / "pages").mkdir()
    server = FixtureServer(root)
    server.start_in_thread()
    yield server
    server.shutdown()


def _rss(items: list[tuple[str, str]], extra: str = "", pub_dates: list[str] | None = None) -> str:
    rows = []
    for i, (title, link) in enumerate(items):
        date = f"<pubDate>{pub_dates[i]}</pubDate>" if pub_dates else ""
        rows.append(f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid>{date}</item>")
    return (f'<?xml version="1.0"?><rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">'
            f"<channel><title>t</title>{extra}{''.join(rows)}</channel></rss>")


def _feeds(site: FixtureServer, n: int, prefix: str = "f") -> list[FeedSource]:
    for i in range(n):
        items = [(f"{prefix} {i}", f"{{base}}/pages/{prefix}{i}.html")]
        (site.root / "feeds" / f"{prefix}{i}.xml").write_text(_rss(items))
    return [FeedSource(id=f"{prefix}{i}", url=f"{site.base_url}/feeds/{prefix}{i}.xml", name=f"{prefix}{i}")
            for i in range(n)]


def _log(site: FixtureServer, n: int) -> list[Request]:
    """The server's log once it holds ``n`` requests (a handler logs just after its last write)."""
    deadline = time.monotonic() + 2
    while len(site.log) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return list(site.log)


def _gaps(log: list[Request]) -> list[float]:
    starts = sorted(r.start for r in log)
    return [b - a for a, b in itertools.pairwise(starts)]


def _max_overlap(log: list[Request]) -> int:
    # An answer's end is logged just after its last write; the client may start the next request within
    # that instant, so ends count 5 ms early.
    events = sorted([(r.start, 1) for r in log] + [(r.end - 0.005, -1) for r in log])
    current = peak = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


def test_minimum_interval_per_host_holds_across_workers(settings: Settings, site: FixtureServer) -> None:
    """Two workers (two runtimes, two event loops, one Redis) poll 12 feeds of one host at once: the server
    sees request starts at least the minimum interval apart, and the User-Agent carries the contact URL."""
    settings.http.host_min_interval_seconds = 0.25
    settings.http.host_max_concurrent = 4
    feeds = _feeds(site, 12)
    workers = [build_poll_runtime(settings), build_poll_runtime(settings)]
    threads = [threading.Thread(target=poll_feeds, args=(rt, part))
               for rt, part in zip(workers, (feeds[:6], feeds[6:]), strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(_log(site, 12)) == 12
    # The interval runs from each answer, after the server logged that request: no tolerance is needed
    # beyond the millisecond the Redis clock is read in.
    assert min(_gaps(site.log)) >= 0.25 - 0.001, sorted(_gaps(site.log))[:3]
    assert all("(+https://example.org/ingest-bot)" in r.user_agent for r in site.log)


def test_at_most_n_requests_in_flight_per_host(settings: Settings, site: FixtureServer) -> None:
    """Two workers, each free to run two requests to the host at once: the server never sees more than two.
    (The answers' headers come at once and their bodies take 0.4 s: a request waiting for its headers
    holds the host alone, one streaming its body only counts against the cap.)"""
    settings.http.host_min_interval_seconds = 0.0
    settings.http.host_max_concurrent = 2
    feeds = [FeedSource(id=f"s{i}", url=f"{site.base_url}/trickle/4/0.1?f={i}", name=f"s{i}") for i in range(8)]
    started = time.monotonic()
    threads = [threading.Thread(target=poll_feeds, args=(build_poll_runtime(settings), part))
               for part in (feeds[:4], feeds[4:])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    log = _log(site, 8)
    assert len(log) == 8
    assert _max_overlap(log) == 2
    assert time.monotonic() - started >= 4 * 0.4  # 8 slow answers, two at a time


def test_a_429_storm_pauses_the_whole_host(settings: Settings, site: FixtureServer) -> None:
    """Ten feeds of one host all answer 429: the first answer pauses the host for every worker, so the server
    sees one request, the other feeds are left due (host_busy, not failures), the first backs off."""
    settings.http.host_max_wait_seconds = 1.0
    settings.http.host_max_concurrent = 1
    rt = build_poll_runtime(settings)
    feeds = [FeedSource(id=f"r{i}", url=f"{site.base_url}/retry-after/30/429?f={i}", name=f"r{i}") for i in range(10)]
    report = poll_feeds(rt, feeds, NOW)
    assert len(site.log) == 1
    assert report.counts["poll/http_429"] == 1 and report.counts["poll/host_busy"] == 9
    states = [rt.feed_state.get(f.id) for f in feeds]  # type: ignore[union-attr]
    first = next(s for s in states if s.consecutive_failures)
    assert first.next_poll_at is not None and first.next_poll_at - NOW >= timedelta(seconds=30)
    assert sum(1 for s in states if s.consecutive_failures == 0 and s.next_poll_at is None) == 9
    # Another worker a moment later does not hit the host either.
    again = poll_feeds(build_poll_runtime(settings), feeds[:3], NOW)
    assert again.counts["poll/host_busy"] == 3 and len(site.log) == 1


def test_slow_loris_answers_time_out_on_the_total_deadline(settings: Settings, site: FixtureServer) -> None:
    """A server that trickles one byte every 0.2 s never trips the read timeout; the response deadline stops it."""
    settings.http.total_timeout = 1.5
    rt = build_poll_runtime(settings)
    started = time.monotonic()
    report = poll_feeds(rt, [FeedSource(id="loris", url=f"{site.base_url}/trickle/1000/0.2", name="loris")], NOW)
    elapsed = time.monotonic() - started
    assert report.counts["poll/timeout"] == 1
    assert elapsed < 4, elapsed
    assert "1.5 s" in report.errors[0]


def test_oversized_redirecting_and_private_feeds_get_their_reason(settings: Settings, site: FixtureServer) -> None:
    settings.http.max_bytes = 20_000
    rt = build_poll_runtime(settings)
    base = site.base_url
    report = poll_feeds(rt, [
        FeedSource(id="big", url=f"{base}/big/200000", name="big"),
        FeedSource(id="loop", url=f"{base}/redirect-loop", name="loop"),
    ], NOW)
    assert report.counts["poll/too_large"] == 1 and report.counts["poll/too_many_redirects"] == 1
    assert len([r for r in site.log if r.path == "/redirect-loop"]) == settings.http.max_redirects + 1

    # The guard checks the address a connection is opened to, after DNS: a name ("localhost") is refused for
    # what it resolves to, and a redirect to a loopback address is refused before any request reaches it.
    settings.http.allow_private = False
    strict = build_poll_runtime(settings)
    before = len(site.log)
    by_name = base.replace("127.0.0.1", "localhost")
    report = poll_feeds(strict, [FeedSource(id="name", url=f"{by_name}/feeds/x.xml", name="n")], NOW)
    assert report.counts["poll/private_address"] == 1
    assert "is at 127.0.0.1" in report.errors[0] or "is at ::1" in report.errors[0]
    assert len(site.log) == before


def test_billion_laughs_feed_does_not_expand(settings: Settings, site: FixtureServer) -> None:
    levels = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    bomb = (f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY l0 "lol">{levels}]>'
            '<rss version="2.0"><channel><title>&l9;</title>'
            '<item><title>&l9;</title><link>http://example.org/a</link></item></channel></rss>')
    (site.root / "feeds" / "bomb.xml").write_text(bomb)
    rt = build_poll_runtime(settings)
    started = time.monotonic()
    report = poll_feeds(rt, [FeedSource(id="bomb", url=f"{site.base_url}/feeds/bomb.xml", name="bomb")], NOW)
    assert time.monotonic() - started < 2
    assert report.counts["poll/feeds_ok"] + report.counts["poll/not_a_feed"] == 1
    entries = rt.queue.read_batch("w", 10)  # whatever was queued carries no expansion
    assert all(len(item.entry.title or "") < 100 for item in entries)


def test_google_news_sitemap_is_a_feed_kind(settings: Settings, site: FixtureServer) -> None:
    sitemap = """<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
  <url><loc>{base}/pages/one.html</loc><news:news>
    <news:publication><news:name>Le Site</news:name><news:language>fr</news:language></news:publication>
    <news:publication_date>2026-11-24T08:00:00+01:00</news:publication_date>
    <news:title>Des drones frappent une usine</news:title><news:keywords>Ukraine, Russie</news:keywords>
  </news:news></url>
  <url><loc>{base}/pages/two.html</loc><news:news>
    <news:publication><news:name>Le Site</news:name><news:language>fr</news:language></news:publication>
    <news:publication_date>2026-11-24</news:publication_date><news:title>Second titre</news:title>
  </news:news></url>
</urlset>"""
    (site.root / "feeds" / "news-sitemap.xml").write_text(sitemap)
    rt = build_poll_runtime(settings)
    report = poll_feeds(rt, [FeedSource(id="sm", url=f"{site.base_url}/feeds/news-sitemap.xml", name="sm")], NOW)
    assert report.counts["poll/queued"] == 2
    items = rt.queue.read_batch("w", 10)
    first = next(i.entry for i in items if i.entry.url.endswith("one.html"))
    assert first.title == "Des drones frappent une usine" and first.language == "fr"
    assert first.tags == ("Ukraine", "Russie") and first.published_at == datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


def test_adaptive_interval_follows_rate_and_hints(settings: Settings, site: FixtureServer) -> None:
    """A busy feed (24 entries, one every 30 minutes, the oldest 11.5 hours ago) is polled every 29 minutes;
    the same feed saying ttl=120 is polled every 2 hours; a Cache-Control max-age of 3 hours is honoured;
    nothing new stretches it."""
    dates = [(NOW - timedelta(minutes=30 * i)).strftime("%a, %d %b %Y %H:%M:%S +0000") for i in range(24)]
    items = [(f"n{i}", f"{{base}}/pages/n{i}.html") for i in range(24)]
    (site.root / "feeds" / "busy.xml").write_text(_rss(items, pub_dates=dates))
    (site.root / "feeds" / "ttl.xml").write_text(_rss(items, "<ttl>120</ttl>", dates))
    rt = build_poll_runtime(settings)
    base = site.base_url
    feeds = [FeedSource(id="busy", url=f"{base}/feeds/busy.xml", name="b"),
             FeedSource(id="ttl", url=f"{base}/feeds/ttl.xml", name="t"),
             FeedSource(id="cached", url=f"{base}/max-age/10800/feeds/busy.xml", name="c")]
    poll_feeds(rt, feeds, NOW)
    state = {f.id: rt.feed_state.get(f.id) for f in feeds}  # type: ignore[union-attr]
    assert state["busy"].entries_per_day == pytest.approx(24 / (23 / 48), rel=0.01)
    assert state["busy"].interval_minutes == pytest.approx(28.75, abs=0.1)
    assert state["ttl"].hint_minutes == 120 and state["ttl"].interval_minutes == 120
    assert state["cached"].interval_minutes == 180
    # Polled again with nothing new (304): the interval stretches by half.
    poll_feeds(rt, feeds[:1], NOW + timedelta(hours=1))
    assert rt.feed_state.get("busy").interval_minutes == pytest.approx(28.75 * 1.5, abs=0.1)  # type: ignore[union-attr]


def test_robots_txt_is_honoured_for_article_pages(settings: Settings, site: FixtureServer) -> None:
    """robots.txt disallows /pages/private/ for our agent: that article is dead-lettered with
    robots_disallowed, the other is indexed, and robots.txt is fetched once for both."""
    (site.root / "robots.txt").write_text(
        "User-agent: *\nDisallow: /\n\nUser-agent: ingest-news-bot\nDisallow: /pages/private/\n")
    (site.root / "pages" / "private").mkdir()
    body = "<p>" + "Un texte d'article assez long pour passer le seuil de longueur minimale. " * 8 + "</p>"
    page = (f"<html lang='fr'><head><title>Titre</title></head>"
            f"<body><article><h1>Titre</h1>{body}</article></body></html>")
    (site.root / "pages" / "open.html").write_text(page)
    (site.root / "pages" / "private" / "closed.html").write_text(page.replace("Titre", "Autre titre"))
    (site.root / "feeds" / "r.xml").write_text(
        _rss([("open", "{base}/pages/open.html"), ("closed", "{base}/pages/private/closed.html")]))
    rt = build_runtime(settings)
    rt.sink.ensure_ready()
    poll_feeds(rt, [FeedSource(id="r", url=f"{site.base_url}/feeds/r.xml", name="r")], NOW)
    report = process_pending(rt, "w", NOW)
    assert report.counts["index/indexed"] == 1
    assert report.counts["fetch/robots_disallowed"] == 1
    assert [r.path for r in site.log].count("/robots.txt") == 1
    assert "/pages/private/closed.html" not in [r.path for r in site.log]
    dead = rt.queue.dead_letters()  # type: ignore[attr-defined]
    assert dead[0]["reason"] == "robots_disallowed"


def test_unreachable_robots_txt_leaves_articles_pending(settings: Settings, site: FixtureServer) -> None:
    """RFC 9309: a robots.txt answering 5xx means "assume disallowed for now": the article waits, counted."""
    site.robots_status = 503
    (site.root / "feeds" / "u.xml").write_text(_rss([("x", "{base}/pages/x.html")]))
    rt = build_runtime(settings)
    rt.sink.ensure_ready()
    poll_feeds(rt, [FeedSource(id="u", url=f"{site.base_url}/feeds/u.xml", name="u")], NOW)
    report = process_pending(rt, "w", NOW, max_batches=1)
    assert report.counts["fetch/robots_unavailable"] == 1 and rt.queue.pending_count() == 1
    assert "/pages/x.html" not in [r.path for r in site.log]


def test_a_huge_feed_is_queued_a_slice_per_poll_with_its_entries_capped(settings: Settings,
                                                                         site: FixtureServer) -> None:
    settings.feeds.max_entries_per_poll = 40
    big = "x" * 300_000
    rows = [f"<item><title>{big if i == 0 else f'item {i}'}</title><link>{{base}}/pages/h{i}.html</link>"
            f"<description>{big}</description></item>" for i in range(100)]
    (site.root / "feeds" / "huge.xml").write_text(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{"".join(rows)}</channel></rss>')
    settings.http.max_bytes = 40_000_000
    rt = build_poll_runtime(settings)
    feed = FeedSource(id="huge", url=f"{site.base_url}/feeds/huge.xml", name="huge")
    seen: list[str] = []
    for n, held in enumerate([60, 20, 0]):  # the server's ETag does not change: each poll still reads it whole
        report = poll_feeds(rt, [feed], NOW + timedelta(hours=n))
        assert report.counts["poll/queued"] == min(40, 100 - 40 * n), report.counts
        assert report.counts.get("poll/held_for_next_poll", 0) == held
        entries = rt.queue.read_batch(f"w{n}", 100)
        rt.queue.ack([e.message_id for e in entries])
        seen += [e.entry.url for e in entries]
        assert all(len(e.entry.title or "") <= 1_000 and len(e.entry.summary or "") <= 20_000 for e in entries)
    assert len(seen) == len(set(seen)) == 100  # every entry once, in the feed's order
    assert seen[:2] == [f"{site.base_url}/pages/h0.html", f"{site.base_url}/pages/h1.html"]


def test_polled_entries_go_on_the_stream_one_host_after_another(settings: Settings, site: FixtureServer) -> None:
    """Three feeds link to pages of two hosts (a site's backlog on a first poll): the stream alternates between
    the hosts, each host's entries in the feeds' order, so a batch a worker reads is fetched on both hosts at
    once; the second feed's copy of an entry of the first is queued from the first."""
    pages = {"a": [f"https://a.example/{i}.html" for i in range(5)],
             "b": [f"https://b.example/{i}.html" for i in range(3)]}
    layout = {"fa": pages["a"][:3], "fb": pages["b"], "fa2": [pages["a"][2], *pages["a"][3:]]}
    feeds = []
    for name, links in layout.items():
        (site.root / "feeds" / f"{name}.xml").write_text(_rss([(link, link) for link in links]))
        feeds.append(FeedSource(id=name, url=f"{site.base_url}/feeds/{name}.xml", name=name))
    rt = build_poll_runtime(settings)
    report = poll_feeds(rt, feeds, NOW)
    assert report.counts["poll/queued"] == 8 and report.counts["poll/already_queued"] == 1, report.counts
    queued = [e.entry.url for e in rt.queue.read_batch("w", 100)]
    assert queued == [pages["a"][0], pages["b"][0], pages["a"][1], pages["b"][1], pages["a"][2], pages["b"][2],
                      pages["a"][3], pages["a"][4]]
    assert rt.queue.read_batch("w", 100) == []  # nothing else on the stream
    # Every feed's state was saved once its entries were on the stream: the next poll queues nothing again.
    again = poll_feeds(rt, feeds, NOW + timedelta(hours=1))
    assert again.counts.get("poll/queued", 0) == 0 and again.counts["poll/feeds_ok"] == 3, again.counts
