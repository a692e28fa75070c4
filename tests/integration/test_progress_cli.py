"""The long commands' progress as a person (a terminal) and a log (a pipe) see it: real processes on the real
services. On a terminal a live line on stderr; off one, plain lines every few seconds; stdout as it always was."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import threading
import time
from pathlib import Path

import yaml

from ingest.config import Settings
from ingest.embedded.fixture_server import FixtureServer
from ingest.stores.elasticsearch import ElasticsearchSink, build_es_client
from tests.conftest import demo_feeds
from tests.integration.test_cli import INGEST, _clean_env, _stop_site, run, settings_env
from tests.integration.test_index_migrate import documents, old_deployment

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
STDOUT_LINE = re.compile(r"workers: .*|-- process|   \S.*|cpu seconds: .*|pending after this run: \d+")


def run_on_terminal(args: list[str], env: dict[str, str], timeout: float = 300) -> tuple[int, str, str]:
    """Run `ingest` with its stderr on a pseudo-terminal 250 columns wide and its stdout on a pipe: the exit code,
    stdout, and what the terminal received."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 250, 0, 0))
    proc = subprocess.Popen([*INGEST, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                            env={**_clean_env(), "TERM": "xterm-256color", **env})
    os.close(slave)
    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read() if proc.stdout else b""))
    reader.start()
    received = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every end of the terminal's other side is closed
                    break
                if not chunk:
                    break
                received += chunk
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
        proc.kill()
        reader.join(30)
    return proc.returncode, b"".join(out).decode(), received.decode(errors="replace")


def screen_lines(received: str) -> list[str]:
    """The lines the terminal drew, each as it last stood, colours and cursor moves taken out."""
    return [line.strip() for line in ANSI.sub("", received).replace("\r\n", "\n").replace("\r", "\n").splitlines()
            if line.strip()]


def test_process_off_a_terminal_logs_plain_progress_lines_and_stdout_is_unchanged(
    settings: Settings, fixture_server: FixtureServer, tmp_path: Path
) -> None:
    """Two workers, batches of 2, the site's turn every 2 s: about 12 s of fetching, so the log gets a line every
    5 s or so with the counts and the rate, and a last one; stdout holds only what `ingest process` always printed."""
    env = {**_stop_site(settings, fixture_server, tmp_path), "INGEST_PIPELINE__BATCH_SIZE": "2"}

    started = time.monotonic()
    result = run(["process", "--workers", "2"], env=env)
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr

    lines = [line for line in result.stderr.splitlines() if line.startswith("ingest process:")]
    assert lines and lines[-1].startswith("ingest process: done, 6 articles in "), result.stderr
    assert re.search(r"[\d.]+ articles/s; indexed 6, duplicates 0, already indexed 0, dead-lettered 0$", lines[-1])
    periodic = lines[:-1]
    assert periodic, result.stderr
    for line in periodic:
        assert re.fullmatch(r"ingest process: [0-6]/6 articles \(\d+%\), [\d.]+ articles/s(, \d:\d\d:\d\d left)?; "
                            r"indexed \d, duplicates 0, already indexed 0, dead-lettered 0", line), line
    assert len(periodic) <= took / 5 + 1  # at most one every 5 s
    assert "\x1b" not in result.stderr  # no live display in a log

    assert "\x1b" not in result.stdout and "articles/s" not in result.stdout
    assert [line for line in result.stdout.splitlines() if not STDOUT_LINE.fullmatch(line)] == [], result.stdout
    assert result.stdout.splitlines()[1:3] == ["-- process", "   process  read=6"]
    assert result.stdout.endswith("pending after this run: 0\n")


def test_run_on_a_terminal_draws_a_live_line_for_the_poll_and_the_process(
    settings: Settings, feed_base_url: str, tmp_path: Path
) -> None:
    feeds_file = tmp_path / "feeds.yaml"
    feeds_file.write_text(yaml.safe_dump({"feeds": [f.model_dump(mode="json") for f in demo_feeds(feed_base_url)]}))
    env = settings_env(settings, tmp_path)
    code, stdout, received = run_on_terminal(["run", "--feeds", str(feeds_file)], env)
    assert code == 0, received

    assert "\x1b[?25l" in received and "\x1b[2K" in received  # rich's live display: cursor hidden, line redrawn
    drawn = screen_lines(received)
    assert not [line for line in drawn if line.startswith("ingest ")], drawn  # no plain line on a terminal
    # The demo's registry: 4 feeds, one of them retired (404); 9 entries, one an exact copy, one page gone (404).
    poll = [line for line in drawn if line.startswith("poll ")]
    assert poll and re.fullmatch(r"poll ━+ 4/4 [\d.]+ feeds/s in \d:\d\d:\d\d ok 3 · failed 1 · entries queued 9",
                                 poll[-1]), drawn
    process = [line for line in drawn if line.startswith("process ")]
    assert process and re.fullmatch(r"process ━+ 9/9 [\d.]+ articles/s in \d:\d\d:\d\d indexed 7 · duplicates 1 · "
                                    r"already indexed 0 · dead-lettered 1", process[-1]), drawn
    # stdout: what `ingest run` always printed, on its own stream
    assert "\x1b" not in stdout and "articles/s" not in stdout
    assert stdout.startswith("-- run\n   poll     already_queued=1  entries=10  feeds_ok=3  http_4xx=1  queued=9\n")
    assert "   index    indexed=7\n" in stdout and "   process  dead_lettered=1  read=9\n" in stdout

    code, stdout, received = run_on_terminal(["index", "verify", "--json"], env)
    assert code == 0, received
    drawn = screen_lines(received)
    looked_up = [line for line in drawn if line.startswith("index verify, marks looked up")]
    assert looked_up and re.fullmatch(r"index verify, marks looked up ━+ 7/7 [\d.]+ ids/s in \d:\d\d:\d\d missing 0",
                                      looked_up[-1]), drawn
    assert stdout.startswith("{") and '"consistent": true' in stdout


def test_index_migrate_on_a_terminal_draws_the_copy_and_prints_its_steps_on_stdout(
    settings: Settings, tmp_path: Path
) -> None:
    prefix = settings.elasticsearch.index_prefix
    es = build_es_client(settings.elasticsearch)
    old_deployment(es, prefix)
    ElasticsearchSink(es, settings.elasticsearch).write(documents(25))
    env = {**settings_env(settings, tmp_path), "INGEST_ELASTICSEARCH__BULK_MAX_DOCS": "10"}
    code, stdout, received = run_on_terminal(["index", "migrate"], env)
    assert code == 0, received + stdout

    copy = [line for line in screen_lines(received) if line.startswith("index migrate ")]
    assert copy and re.fullmatch(r"index migrate ━+ 25/25 [\d.]+ documents/s in \d:\d\d:\d\d "
                                 r"copied 25 · already there 0 · failed 0", copy[-1]), received
    assert "\x1b" not in stdout and "documents/s" not in stdout
    assert f"   copied 25, already there 0, failed 0 from {prefix}-v1 into {prefix}-v2 in " in stdout
    assert stdout.splitlines()[-1].startswith(f"-- migrated {prefix}-v1 → {prefix}-v2 in ")
