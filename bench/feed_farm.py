"""A loopback "internet" of RSS feeds for the poll benchmark: many hosts, realistic answers, its own request log.

    python bench/feed_farm.py --hosts 200 --port 0 --log /tmp/farm.jsonl

Standalone (stdlib only) and meant to run as its own process, so its CPU is not counted with the poller's.
It listens on one socket per loopback address 127.0.1.1 … 127.0.1.250, 127.0.2.1 … (Linux routes all of
127.0.0.0/8 to ``lo``), all on the same port; each address is one "host" for politeness. Once every socket is
listening it prints ``READY <port>`` on stdout.

``GET /feed/<n>.xml`` answers an RSS 2.0 feed of 20 items (~8–15 KB, gzipped when the client accepts it) whose
item links point at ``http://<same address>:<port>/article/<n>-<k>.html``. What feed ``n`` does is fixed by a
hash of ``n`` (see :func:`behaviour`), so a client can know what to expect:

- 70% ``etag``: ETag and Last-Modified; ``If-None-Match``/``If-Modified-Since`` that match get a 304;
- 20% ``static``: no validators; the identical body on every request;
- 10% ``fresh``: :data:`NEW_PER_REQUEST` new items on each request (the item window moves with a per-feed
  request counter) and a new ETag;

and, independently of that, 2 in 1000 are ``slow`` (answer after :data:`SLOW_SECONDS`), 1 in 1000 answers 500
and 1 in 1000 answers 429 with ``Retry-After: 120``.

Every request is logged as one JSON line ``{"t_start", "t_end", "host", "path", "status"}``: ``t_start`` is
``time.time()`` when the request line arrived, ``t_end`` when the response was handed to the socket, ``host`` the
local address the request came in on. Lines are buffered in memory and appended to the log file every second
and on exit (SIGTERM or SIGINT stop the server cleanly). ``--stats FILE`` also writes, at exit, how late the
farm's own event loop woke up (probed every 5 ms; every lateness over 1 ms with its time): that bounds the error
of the logged timestamps.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Literal, TextIO

Kind = Literal["etag", "static", "fresh"]
Fault = Literal["slow", "http_500", "http_429"] | None

ITEMS_PER_FEED = 20
NEW_PER_REQUEST = 2
SLOW_SECONDS = 3.0
RETRY_AFTER_SECONDS = 120
KEEPALIVE_IDLE_SECONDS = 75.0
LAG_PROBE_SECONDS = 0.005
LAG_RECORDED_ABOVE = 0.001
MAX_HEADER_LINES = 100
EPOCH = 1_767_225_600  # 2026-01-01T00:00:00Z: item dates are fixed, derived from the item number
FEED_LAST_MODIFIED = formatdate(EPOCH, usegmt=True)

_REASONS = {200: "OK", 304: "Not Modified", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            429: "Too Many Requests", 500: "Internal Server Error"}
_WORDS = (
    "government", "minister", "announced", "budget", "reform", "parliament", "vote", "energy", "prices",
    "inflation", "central", "bank", "election", "campaign", "court", "ruling", "climate", "summit", "drone",
    "attack", "factory", "border", "talks", "ceasefire", "hospital", "strike", "union", "wages", "railway",
    "airport", "football", "championship", "museum", "festival", "research", "university", "satellite", "launch",
    "storm", "flooding", "harvest", "exports", "shipping", "port", "regional", "council", "mayor"
)


def address_of(index: int) -> str:
    """Loopback address of host ``index`` (0-based): 127.0.1.1 … 127.0.1.250, then 127.0.2.1 …"""
    return f"127.0.{1 + index // 250}.{1 + index % 250}"


# Fixed shuffles of 0…999: every block of 1000 consecutive feeds has exactly 700/200/100 kinds and 2/1/1 faults,
# and the per-block shift keeps feeds that share a host (n ≡ h mod hosts) from all sharing one behaviour.
_KIND_KEYS = random.Random(20260101).sample(range(1000), 1000)
_FAULT_KEYS = random.Random(20260102).sample(range(1000), 1000)


def behaviour(n: int) -> tuple[Kind, Fault]:
    """What feed ``n`` does: its content kind (70/20/10) and an optional fault (slow, 500, 429)."""
    block = n // 1000
    key = _KIND_KEYS[(n + 7 * block) % 1000]
    fault_key = _FAULT_KEYS[(n + 13 * block) % 1000]
    kind: Kind = "etag" if key < 700 else "static" if key < 900 else "fresh"
    fault: Fault = None
    if fault_key < 2:
        fault = "slow"
    elif fault_key == 2:
        fault = "http_500"
    elif fault_key == 3:
        fault = "http_429"
    return kind, fault


def _text(seed: int, words: int) -> str:
    return " ".join(_WORDS[(seed * 7 + i * (seed % 13 + 1)) % len(_WORDS)] for i in range(words))


def render_feed(n: int, base: str, first_item: int) -> bytes:
    """RSS 2.0 of feed ``n``: items ``first_item`` … ``first_item + 19``, newest first, links on ``base``."""
    items = []
    for k in range(first_item + ITEMS_PER_FEED - 1, first_item - 1, -1):
        seed = n * 1009 + k
        items.append(
            "    <item>\n"
            f"      <title>{_text(seed, 9).capitalize()}</title>\n"
            f"      <link>{base}/article/{n}-{k}.html</link>\n"
            f'      <guid isPermaLink="false">farm-{n}-{k}</guid>\n'
            f"      <pubDate>{formatdate(EPOCH + k * 600, usegmt=True)}</pubDate>\n"
            f"      <dc:creator>Reporter {seed % 37}</dc:creator>\n"
            f"      <category>{_WORDS[seed % len(_WORDS)]}</category>\n"
            f"      <description>{_text(seed + 1, 38).capitalize()}.</description>\n"
            "    </item>\n"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">\n'
        "  <channel>\n"
        f"    <title>Farm feed {n}</title>\n"
        f"    <link>{base}/</link>\n"
        f"    <description>Synthetic news feed number {n} of the benchmark farm</description>\n"
        f"    <language>{'fr' if n % 3 else 'en'}</language>\n"
        f"    <lastBuildDate>{formatdate(EPOCH + (first_item + ITEMS_PER_FEED) * 600, usegmt=True)}</lastBuildDate>\n"
        + "".join(items)
        + "  </channel>\n</rss>\n"
    ).encode()


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class Farm:
    def __init__(self, log: TextIO) -> None:
        self.log = log
        self.port = 0
        self.counters: dict[int, int] = {}
        self.pending: list[str] = []
        self.requests = 0
        self.lag_samples = 0
        self.lags: list[tuple[float, float]] = []  # (time.time(), seconds late) above LAG_RECORDED_ABOVE

    # ------------------------------------------------------------ routing

    async def respond(self, method: str, path: str, headers: dict[str, str], host: str) -> Response:
        if method not in ("GET", "HEAD"):
            return Response(405, {"Allow": "GET, HEAD"})
        path = path.split("?", 1)[0]
        if not (path.startswith("/feed/") and path.endswith(".xml") and path[6:-4].isdigit()):
            return Response(404, {"Content-Type": "text/plain"}, b"not found\n")
        n = int(path[6:-4])
        kind, fault = behaviour(n)
        if fault == "slow":
            await asyncio.sleep(SLOW_SECONDS)
        elif fault == "http_500":
            return Response(500, {"Content-Type": "text/plain"}, b"upstream error\n")
        elif fault == "http_429":
            return Response(429, {"Content-Type": "text/plain", "Retry-After": str(RETRY_AFTER_SECONDS)},
                            b"slow down\n")
        base = f"http://{host}:{self.port}"
        out = {"Content-Type": "application/rss+xml; charset=utf-8", "Cache-Control": "max-age=300"}
        if kind == "static":
            return Response(200, out, render_feed(n, base, 0))
        if kind == "fresh":
            count = self.counters.get(n, 0)
            self.counters[n] = count + 1
            out["ETag"] = f'"fresh-{n}-{count}"'
            out["Last-Modified"] = formatdate(EPOCH + (count * NEW_PER_REQUEST + ITEMS_PER_FEED) * 600, usegmt=True)
            return Response(200, out, render_feed(n, base, count * NEW_PER_REQUEST))
        etag = f'"v1-{n}"'
        out["ETag"] = etag
        out["Last-Modified"] = FEED_LAST_MODIFIED
        if_none_match = headers.get("if-none-match")
        if if_none_match is not None:
            fresh = etag in (t.strip() for t in if_none_match.split(",")) or if_none_match.strip() == "*"
        else:
            fresh = headers.get("if-modified-since") == FEED_LAST_MODIFIED
        if fresh:
            return Response(304, out)
        return Response(200, out, render_feed(n, base, 0))

    # ------------------------------------------------------------ HTTP/1.1

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = str(writer.get_extra_info("sockname")[0])
        try:
            while True:
                try:
                    line = await asyncio.wait_for(reader.readline(), KEEPALIVE_IDLE_SECONDS)
                except (TimeoutError, ConnectionError):
                    return
                t_start = time.time()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):  # tolerated stray CRLF between requests
                    continue
                parts = line.decode("latin-1").split()
                headers: dict[str, str] = {}
                for _ in range(MAX_HEADER_LINES):
                    raw = await reader.readline()
                    if raw in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = raw.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                    response, method, path, version = Response(400), "?", "?", "HTTP/1.0"
                else:
                    method, path, version = parts
                    length = int(headers.get("content-length") or 0)
                    if length:
                        await reader.readexactly(length)
                    response = await self.respond(method, path, headers, host)
                connection = headers.get("connection", "").lower()
                keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
                self.write(writer, response, method, headers, keep_alive)
                try:
                    await writer.drain()
                finally:
                    self.record(t_start, time.time(), host, path, response.status)
                if not keep_alive or response.status == 400:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):  # ValueError: line over the limit
            return
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def write(self, writer: asyncio.StreamWriter, response: Response, method: str, request_headers: dict[str, str],
              keep_alive: bool) -> None:
        body = response.body
        headers = {"Date": formatdate(usegmt=True), "Server": "feed-farm", **response.headers}
        if body and "gzip" in request_headers.get("accept-encoding", ""):
            body = gzip.compress(body, compresslevel=5, mtime=0)
            headers["Content-Encoding"] = "gzip"
            headers["Vary"] = "Accept-Encoding"
        if response.status != 304:
            headers["Content-Length"] = str(len(body))
        headers["Connection"] = "keep-alive" if keep_alive else "close"
        head = f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        writer.write(head.encode("latin-1") + (b"" if method == "HEAD" or response.status == 304 else body))

    # ------------------------------------------------------------ log

    def record(self, t_start: float, t_end: float, host: str, path: str, status: int) -> None:
        self.requests += 1
        self.pending.append(json.dumps({"t_start": t_start, "t_end": t_end, "host": host, "path": path,
                                        "status": status}))

    def flush(self) -> None:
        if self.pending:
            lines, self.pending = self.pending, []
            self.log.write("\n".join(lines) + "\n")
            self.log.flush()

    async def flush_every_second(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.flush()

    async def watch_lag(self) -> None:
        """How late the loop wakes up from a short sleep: a request line waits at most that long to be seen."""
        while True:
            before = time.perf_counter()
            await asyncio.sleep(LAG_PROBE_SECONDS)
            late = time.perf_counter() - before - LAG_PROBE_SECONDS
            self.lag_samples += 1
            if late > LAG_RECORDED_ABOVE:
                self.lags.append((time.time(), round(late, 5)))

    def stats(self) -> dict[str, object]:
        return {"requests": self.requests, "lag_probe_s": LAG_PROBE_SECONDS, "lag_samples": self.lag_samples,
                "lag_recorded_above_s": LAG_RECORDED_ABOVE, "lags": self.lags}


async def start(farm: Farm, hosts: int, port: int) -> list[asyncio.Server]:
    """One listening socket per host address, all on one port (the first bind picks it when ``port`` is 0)."""
    for _attempt in range(5):
        servers: list[asyncio.Server] = []
        try:
            first = await asyncio.start_server(farm.serve, address_of(0), port, backlog=512)
            servers.append(first)
            farm.port = int(first.sockets[0].getsockname()[1])
            for index in range(1, hosts):
                servers.append(await asyncio.start_server(farm.serve, address_of(index), farm.port, backlog=512))
            return servers
        except OSError:
            for server in servers:
                server.close()
            if port:
                raise
    raise OSError(f"could not bind {hosts} loopback addresses on one port")


async def main_async(args: argparse.Namespace) -> None:
    with Path(args.log).open("w", encoding="utf-8") as log:
        farm = Farm(log)
        servers = await start(farm, args.hosts, args.port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        helpers = [asyncio.create_task(farm.flush_every_second()), asyncio.create_task(farm.watch_lag())]
        print(f"READY {farm.port}", flush=True)
        try:
            await stop.wait()
        finally:
            for task in helpers:
                task.cancel()
            for server in servers:
                server.close()
            farm.flush()
            if args.stats:
                Path(args.stats).write_text(json.dumps(farm.stats()), encoding="utf-8")
        print(f"feed_farm: {farm.requests} requests logged to {args.log}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=200, help="number of loopback addresses (hosts) to serve")
    parser.add_argument("--port", type=int, default=0, help="port on every address; 0 picks a free one")
    parser.add_argument("--log", required=True, help="JSON-lines request log (truncated at start)")
    parser.add_argument("--stats", help="JSON file written at exit: the farm's own event-loop lag")
    args = parser.parse_args()
    if not 1 <= args.hosts <= 250 * 254:
        parser.error("--hosts must be between 1 and 63500")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
