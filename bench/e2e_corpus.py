"""The corpus and the loopback "sites" of ``bench_e2e.py``: N copies of the 68 real fixture pages, RSS feeds
that link to them, and a stdlib server for both on many loopback addresses (one "host" each).

    python bench/e2e_corpus.py serve --root DIR --hosts H    # prints READY <port>, stops on SIGTERM

Copies (none an exact duplicate of another, all the publishers' real HTML around the text):

- about half are *unique*: a word of the page's own vocabulary inserted after every 5th word of every ``<p>``, so
  every 5-word shingle the dedup fingerprints differ from every other copy's (a copy shares under 1/6 of its
  shingles with another copy of the same page; ``duplicate_containment`` is 0.75): ``dedup/new_story`` or
  ``same_story``, never ``near_duplicate``;
- the other half are *near-duplicates* of a unique copy at least ``LAG`` articles earlier on the same host (a
  host's feeds are queued in registry order, so the original is processed first): the same HTML with one sentence
  holding a token of its own added to the longest paragraph (``dedup/near_duplicate``, indexed with
  ``duplicate_of``).

Layout written under ROOT: ``a/<i>.html.gz`` (gzip, served as ``Content-Encoding: gzip``), ``feed/<k>.xml`` (RSS
2.0, ``PER_FEED`` items, on host ``k % hosts``), ``robots.txt`` (allows everything), ``feeds.yaml``.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import random
import re
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import yaml
from feed_farm import Farm, Response, address_of, start  # bench/ is on sys.path when run as a script

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "pages"
PER_FEED = 100
LAG = 100  # a near-duplicate's original is at least this many articles earlier on its host (less when N < 600)
INSERT_EVERY = 5
_SKIP = re.compile(r"<(script|style|noscript|template|svg)\b.*?</\1\s*>|<!--.*?-->|<[^>]*>", re.S | re.I)
_VOCAB = re.compile(r"\b[a-zàâäçéèêëîïôöùûüÿœæß]{4,}\b")


@dataclass(frozen=True)
class Page:
    url: str
    lang: str
    html: str  # decoded as UTF-8 with surrogateescape: re-encoded byte for byte


@dataclass(frozen=True)
class Item:
    index: int
    page: int  # which fixture page
    original: int | None  # a near-duplicate: the index of its original


def load_pages() -> list[Page]:
    """The 55 fundus pages and the 13 French trafilatura pages."""
    pages = []
    for row in json.loads((FIXTURES / "fundus" / "index.json").read_text()):
        raw = gzip.decompress((FIXTURES / "fundus" / row["html"]).read_bytes())
        pages.append(Page(row["url"], row["lang"], raw.decode("utf-8", "surrogateescape")))
    for url, row in json.loads((FIXTURES / "trafilatura_fr" / "evaldata_fr_dev.json").read_text()).items():
        raw = (FIXTURES / "trafilatura_fr" / "html" / row["file"]).read_bytes()
        pages.append(Page(url, "fr", raw.decode("utf-8", "surrogateescape")))
    return pages


def plan(n: int, hosts: int, pages: int, seed: int = 7) -> list[Item]:
    """Which page each article copies and which are near-duplicates (``n // 2`` of them)."""
    rng = random.Random(seed)
    lag = max(25, min(LAG, n // 6))
    head = min(n, 2 * lag)  # unique articles only, so that every host has originals for the copies after them
    kinds = [False] * head
    tail = n - head
    dups = min(n // 2, tail)
    rest = [True] * dups + [False] * (tail - dups)
    rng.shuffle(rest)
    kinds += rest
    items: list[Item] = []
    uniques: dict[int, list[int]] = {}  # host -> indexes of its unique articles
    for i, dup in enumerate(kinds):
        host = i % hosts
        older = [j for j in uniques.get(host, ()) if j <= i - lag] if dup else []
        if older:
            original = rng.choice(older[-200:])
            items.append(Item(i, items[original].page, original))
        else:
            items.append(Item(i, i % pages, None))
            uniques.setdefault(host, []).append(i)
    return items


def text_spans(html: str) -> list[tuple[int, int]]:
    """(start, end) of the body's text nodes of at least 5 words, outside scripts, styles and comments."""
    body = html.lower().find("<body")
    pos = max(0, body)
    spans = []
    for m in _SKIP.finditer(html, pos):
        if m.start() > pos and len(html[pos:m.start()].split()) >= 5:
            spans.append((pos, m.start()))
        pos = m.end()
    return spans


def _edit(html: str, spans: list[tuple[int, int]], edit: Callable[[int, str], str]) -> str:
    out, pos = [], 0
    for k, (a, b) in enumerate(spans):
        out += [html[pos:a], edit(k, html[a:b])]
        pos = b
    return "".join([*out, html[pos:]])


def make_unique(page: Page, rng: random.Random) -> str:
    """A word of the page's own vocabulary after every 5th word of every text node."""
    spans = text_spans(page.html)
    vocab = sorted(set(_VOCAB.findall(" ".join(page.html[a:b] for a, b in spans).lower())))[:3000] or ["word"]
    count = 0

    def edit(_: int, text: str) -> str:
        nonlocal count
        out = []
        for word in re.split(r"(\s+)", text):
            out.append(word)
            if word and not word.isspace():
                count += 1
                if count % INSERT_EVERY == 0:
                    out.append(" " + rng.choice(vocab))
        return "".join(out)

    return _edit(page.html, spans, edit)


def anchor(page: Page) -> int:
    """Where a near-duplicate's own sentence goes: the first text node of 12 words or more that is in the page's
    extracted text and where an inserted sentence is extracted too (else the longest node)."""
    from ingest.dedup import normalise_text
    from ingest.errors import PermanentError
    from ingest.extract import extract_article

    def text_of(html: str) -> str:
        try:
            return normalise_text(extract_article(html.encode("utf-8", "surrogateescape"), page.url).text)
        except PermanentError:
            return ""

    spans, text = text_spans(page.html), text_of(page.html)
    found = [k for k, (a, b) in enumerate(spans)
             if len(words := normalise_text(page.html[a:b]).split()) >= 12 and " ".join(words[:8]) in text]
    for k in found[:6]:
        if "ref 000000 updated" in text_of(make_near_duplicate(page.html, k, 0)):
            return k
    return found[0] if found else max(range(len(spans)), key=lambda k: spans[k][1] - spans[k][0], default=0)


def make_near_duplicate(html: str, at: int, index: int) -> str:
    """The original's HTML with one sentence of its own at the start of text node ``at``."""
    return _edit(html, text_spans(html), lambda k, text: f" Ref {index:06d} updated. {text}" if k == at else text)


def write_site(root: Path, n: int, hosts: int, port: int) -> tuple[Path, list[Item], list[Page]]:
    """Write ROOT's pages, feeds, robots.txt and feeds.yaml; the registry's path, the plan and the pages."""
    pages = load_pages()
    items = plan(n, hosts, len(pages))
    rng = random.Random(11)
    (root / "a").mkdir(parents=True, exist_ok=True)
    (root / "feed").mkdir(exist_ok=True)
    (root / "robots.txt").write_text("User-agent: *\nAllow: /\n")
    anchors = {k: anchor(pages[k]) for k in sorted({it.page for it in items if it.original is not None})}
    html: dict[int, str] = {}
    for item in items:
        if item.original is None:
            html[item.index] = make_unique(pages[item.page], rng)
            text = html[item.index]
        else:
            text = make_near_duplicate(html[item.original], anchors[item.page], item.index)
        data = text.encode("utf-8", "surrogateescape")
        (root / "a" / f"{item.index}.html.gz").write_bytes(gzip.compress(data, compresslevel=5, mtime=0))
    by_host: dict[int, list[Item]] = {}
    for item in items:
        by_host.setdefault(item.index % hosts, []).append(item)
    feeds = []
    now = datetime.now(UTC)
    for host, host_items in sorted(by_host.items()):
        base = f"http://{address_of(host)}:{port}"
        for start_at in range(0, len(host_items), PER_FEED):
            k = len(feeds)
            chunk = host_items[start_at:start_at + PER_FEED]
            rows = "".join(
                f"<item><title>Article {it.index}</title><link>{base}/a/{it.index}.html</link>"
                f"<guid>{base}/a/{it.index}.html</guid>"
                f"<pubDate>{format_datetime(now - timedelta(seconds=n - it.index), usegmt=True)}</pubDate>"
                f"<description>{escape(pages[it.page].url)}</description></item>\n" for it in chunk)
            (root / "feed" / f"{k}.xml").write_text(
                f'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>E2E feed {k}</title>'
                f"<link>{base}/</link><description>bench_e2e</description>\n{rows}</channel></rss>\n")
            feeds.append({"id": f"e2e-{k:04d}", "url": f"{base}/feed/{k}.xml", "name": f"E2E feed {k}"})
    registry = root / "feeds.yaml"
    registry.write_text(yaml.safe_dump({"feeds": feeds}, sort_keys=False))
    return registry, items, pages


# ---------------------------------------------------------------- the server


class Site(Farm):
    """The feed farm's HTTP/1.1 plumbing, serving ROOT's files (pages as stored, gzipped)."""

    def __init__(self, root: Path, latency: float = 0.0) -> None:
        super().__init__(open("/dev/null", "w"))  # noqa: SIM115 - no request log
        self.root = root
        self.latency = latency  # seconds before a page's answer: a real server's time to first byte

    async def respond(self, method: str, path: str, headers: dict[str, str], host: str) -> Response:
        path = path.split("?", 1)[0]
        if path == "/robots.txt":
            return Response(200, {"Content-Type": "text/plain"}, (self.root / "robots.txt").read_bytes())
        if path.startswith("/feed/") and ".." not in path:
            file = self.root / path.lstrip("/")
            if file.is_file():
                return Response(200, {"Content-Type": "application/rss+xml; charset=utf-8"}, file.read_bytes())
        if path.startswith("/a/") and path.endswith(".html") and path[3:-5].isdigit():
            file = self.root / "a" / f"{path[3:-5]}.html.gz"
            if file.is_file():
                if self.latency:
                    await asyncio.sleep(self.latency)
                return Response(200, {"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"},
                                file.read_bytes())
        return Response(404, {"Content-Type": "text/plain"}, b"not found\n")

    def write(self, writer: asyncio.StreamWriter, response: Response, method: str, request_headers: dict[str, str],
              keep_alive: bool) -> None:
        body, headers = response.body, dict(response.headers)
        if headers.get("Content-Encoding") == "gzip" and "gzip" not in request_headers.get("accept-encoding", ""):
            body = gzip.decompress(body)
            del headers["Content-Encoding"]
        headers["Content-Length"] = str(len(body))
        headers["Connection"] = "keep-alive" if keep_alive else "close"
        head = f"HTTP/1.1 {response.status} OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        writer.write(head.encode("latin-1") + (b"" if method == "HEAD" else body))

    def record(self, t_start: float, t_end: float, host: str, path: str, status: int) -> None:
        self.requests += 1


async def serve(root: Path, hosts: int, latency: float = 0.0) -> None:
    site = Site(root, latency)
    servers = await start(site, hosts, 0)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {site.port}", flush=True)
    await stop.wait()
    for server in servers:
        server.close()
    print(f"e2e site: {site.requests} requests", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["serve"])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="wait this long before answering a page")
    args = parser.parse_args()
    asyncio.run(serve(args.root, args.hosts, args.latency_ms / 1000))


if __name__ == "__main__":
    main()
