"""A loopback HTTP server for feeds and pages saved on disk: the demo's "internet" and the tests'.

``/feeds/x.xml`` and ``/pages/y.html`` are served from ``ROOT/feeds`` and ``ROOT/pages`` (a ``.gz`` twin is
decompressed on the fly); ``{base}`` in a served file is replaced by the server's own base URL so feeds can
link to pages on it. A few routes misbehave on purpose for tests: ``/status/<code>``,
``/retry-after/<seconds>/<code>``, ``/redirect-loop``,
``/slow/<seconds>``, ``/big/<bytes>``, ``/binary``, ``/trickle/<bytes>/<seconds>`` (a slow-loris answer: one
byte every so often), ``/served/<coding>/<type>/<file>`` (a file compressed and labelled as asked).
Files carry ``ETag``/``Last-Modified`` and answer conditional
requests with 304, except under ``/no-validators/…`` (a server that ignores them); under
``/max-age/<seconds>/…`` they also carry ``Cache-Control: max-age``.

Every request is logged (``server.log``: start and end times, path, Host and User-Agent), so tests check
politeness from the server's side.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import threading
import time
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import brotli

_TYPES = {".xml": "application/xml", ".rss": "application/rss+xml", ".atom": "application/atom+xml",
          ".html": "text/html; charset=utf-8", ".json": "application/json", ".txt": "text/plain"}


_SERVED_AS = {"html": "text/html", "html-utf8": "text/html; charset=utf-8",
              "html-latin1": "text/html; charset=iso-8859-1", "octet": "application/octet-stream",
              "none": "", "pdf": "application/pdf"}


@dataclass(frozen=True)
class Request:
    start: float
    end: float
    path: str
    host: str
    user_agent: str


class FixtureServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), _Handler)
        self.root = root
        self.hits: list[str] = []
        self.log: list[Request] = []
        self.robots_status: int | None = None  # set to answer /robots.txt with this status instead of the file

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up early (timeouts, size caps) are part of the tests

    def start_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: FixtureServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        start = time.time()
        path = self.path.split("?", 1)[0]
        self.server.hits.append(path)
        try:
            self._answer(path)
        finally:
            self.server.log.append(Request(start, time.time(), path, self.headers.get("Host", ""),
                                           self.headers.get("User-Agent", "")))

    def _answer(self, path: str) -> None:
        parts = [p for p in path.split("/") if p]
        if parts == ["robots.txt"] and self.server.robots_status:
            self._send(self.server.robots_status, b"unavailable", "text/plain")
        elif parts[:1] == ["status"] and len(parts) == 2:
            self._send(int(parts[1]), b"status page", "text/plain")
        elif parts[:1] == ["retry-after"] and len(parts) == 3:
            self._send(int(parts[2]), b"busy", "text/plain", {"Retry-After": parts[1]})
        elif parts == ["redirect-loop"]:
            self._redirect("/redirect-loop")
        elif parts[:1] == ["redirect"] and len(parts) > 1:
            self._redirect("/" + "/".join(parts[1:]))
        elif parts[:1] == ["slow"] and len(parts) == 2:
            time.sleep(float(parts[1]))
            self._send(200, b"<html><body>late</body></html>", "text/html")
        elif parts[:1] == ["big"] and len(parts) == 2:
            self._send(200, b"<html><body>" + b"x" * int(parts[1]) + b"</body></html>", "text/html")
        elif parts[:1] == ["trickle"] and len(parts) == 3:
            self._trickle(int(parts[1]), float(parts[2]))
        elif parts[:1] == ["served"] and len(parts) > 3:
            self._serve_as(parts[1], parts[2], parts[3:])
        elif parts == ["binary"]:
            self._send(200, b"%PDF-1.4\n" + bytes(range(256)) * 8, "application/pdf")
        else:
            self._serve_file(parts)

    def _serve_as(self, coding: str, kind: str, parts: list[str]) -> None:
        """A file with the Content-Encoding (identity, gzip, br) and the Content-Type (a key of _SERVED_AS) asked
        for in the path, whatever the file is: how the tests meet compressed pages and lying servers."""
        target = self.server.root.joinpath(*parts)
        if kind not in _SERVED_AS or coding not in ("identity", "gzip", "br") or not target.is_file():
            self._send(404, b"not found", "text/plain")
            return
        body = target.read_bytes().replace(b"{base}", self.server.base_url.encode())
        headers = {}
        if coding != "identity":
            body = gzip.compress(body) if coding == "gzip" else brotli.compress(body)
            headers["Content-Encoding"] = coding
        self._send(200, body, _SERVED_AS[kind], headers)

    def _trickle(self, size: int, every: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(size):
                time.sleep(every)
                self.wfile.write(b" ")
                self.wfile.flush()

    def _serve_file(self, parts: list[str]) -> None:
        cache: dict[str, str] = {}
        if parts[:1] == ["max-age"] and len(parts) > 2:
            cache = {"Cache-Control": f"max-age={parts[1]}"}
            parts = parts[2:]
        validators = parts[:1] != ["no-validators"]
        parts = parts if validators else parts[1:]
        if not parts or any(p in ("..", ".") for p in parts):
            self._send(404, b"not found", "text/plain")
            return
        target = self.server.root.joinpath(*parts)
        zipped = target.with_name(target.name + ".gz")
        if target.is_file():
            body = target.read_bytes()
        elif zipped.is_file():
            body = gzip.decompress(zipped.read_bytes())
        else:
            self._send(404, b"not found", "text/plain")
            return
        body = body.replace(b"{base}", self.server.base_url.encode())
        if not validators:  # a server that ignores conditional requests
            self._send(200, body, _TYPES.get(target.suffix, "application/octet-stream"), cache)
            return
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        modified = formatdate((zipped if not target.is_file() else target).stat().st_mtime, usegmt=True)
        extra = {"ETag": etag, "Last-Modified": modified, **cache}
        if self.headers.get("If-None-Match") == etag or (
            "If-None-Match" not in self.headers and self.headers.get("If-Modified-Since") == modified
        ):
            self._send(304, b"", "", extra)
            return
        self._send(200, body, _TYPES.get(target.suffix, "application/octet-stream"), extra)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = FixtureServer(args.root, port=args.port)
    print(server.base_url, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
