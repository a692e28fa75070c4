"""The long commands' progress (ingest.cli.progress): plain lines at most every few seconds off a terminal, a live
line on one, both with the counts by outcome, the rate and the time left; and only the CLI's module draws it."""

from __future__ import annotations

import ast
import io
import logging
import os
import re
import time
from pathlib import Path

import pytest

from ingest.cli.progress import Progress, is_live
from ingest.reconcile import VerifyProgress
from ingest.search_index.migrate import CopyCounts

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "ingest"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def batches(n: int) -> dict[str, int]:
    """A process run's counters after ``n`` batches of 10 entries."""
    return {"process/read": 10 * n, "index/indexed": 8 * n, "dedup/duplicate_text": n, "process/already_indexed": n,
            "process/dead_lettered": 1 if n else 0, "enrich/ok": 8 * n}


def test_off_a_terminal_plain_lines_at_most_every_few_seconds_with_counts_rate_and_time_left() -> None:
    clock, out = Clock(), io.StringIO()
    with Progress(stream=out, clock=clock) as progress:  # a StringIO is not a terminal
        on_batch = progress.articles(100)
        for n in range(1, 11):  # a batch every 2 s: 20 s in all
            clock.now += 2
            on_batch(batches(n))
    lines = out.getvalue().splitlines()
    assert lines == [
        "ingest process: 30/100 articles (30%), 5.0 articles/s, 0:00:14 left; "
        "indexed 24, duplicates 3, already indexed 3, dead-lettered 1",
        "ingest process: 60/100 articles (60%), 5.0 articles/s, 0:00:08 left; "
        "indexed 48, duplicates 6, already indexed 6, dead-lettered 1",
        "ingest process: 90/100 articles (90%), 5.0 articles/s, 0:00:02 left; "
        "indexed 72, duplicates 9, already indexed 9, dead-lettered 1",
        "ingest process: done, 100 articles in 0:00:20, 5.0 articles/s; "
        "indexed 80, duplicates 10, already indexed 10, dead-lettered 1",
    ]
    assert "\x1b" not in out.getvalue()


def test_off_a_terminal_a_batch_every_second_still_gives_a_line_every_five() -> None:
    clock, out = Clock(), io.StringIO()
    with Progress(stream=out, clock=clock) as progress:
        on_batch = progress.articles(None)  # total not known: no percentage, no time left
        for n in range(1, 61):
            clock.now += 1
            on_batch(batches(n))
    lines = out.getvalue().splitlines()
    assert len(lines) == 60 // 5 + 1  # one every 5 s, and the last
    assert lines[0].startswith("ingest process: 50 articles, 10.0 articles/s; indexed 40")
    assert " left" not in out.getvalue() and "%" not in out.getvalue()


def test_off_a_terminal_a_short_or_failed_step_adds_no_line() -> None:
    """A command that fails says one line (tests/integration/test_cli.py counts them): no progress line before it
    when it failed early, and no "done" line after a step that did not end well."""
    clock, out = Clock(), io.StringIO()
    with Progress(stream=out, clock=clock) as progress:
        on_batch = progress.articles(10)
        clock.now += 4
        on_batch(batches(1))
    assert out.getvalue() == ""

    with pytest.raises(RuntimeError), Progress(stream=out, clock=clock) as progress:
        on_batch = progress.articles(100)
        clock.now += 6
        on_batch(batches(2))
        raise RuntimeError("the search server went away")
    assert out.getvalue().splitlines() == [
        "ingest process: 20/100 articles (20%), 3.3 articles/s, 0:00:24 left; "
        "indexed 16, duplicates 2, already indexed 2, dead-lettered 1"]


def test_on_a_terminal_the_live_line_has_the_counts_the_rate_and_the_time_left(monkeypatch: pytest.MonkeyPatch
                                                                              ) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    clock, out = Clock(), io.StringIO()
    with Progress(stream=out, live=True, clock=clock) as progress:
        on_batch = progress.articles(100)
        for n in range(1, 6):
            clock.now += 2
            on_batch(batches(n))
        deadline = time.monotonic() + 10
        while "50/100" not in out.getvalue():  # rich redraws the line 4 times a second, from a thread
            assert time.monotonic() < deadline, out.getvalue()
            time.sleep(0.05)
        midway = ANSI.sub("", out.getvalue()).replace("\r", "\n").splitlines()[-1]
        clock.now += 1
    drawn = out.getvalue()
    assert "\x1b[?25l" in drawn and "\x1b[2K" in drawn  # a live display: cursor hidden, the line redrawn
    assert not re.search(r"^ingest process:", ANSI.sub("", drawn), re.M)  # no plain line
    assert re.fullmatch(r"process ━+╺━+ +50/100 5\.0 articles/s 0:00:\d\d left "
                        r"indexed 40 · duplicates 5 · already indexed 5 · dead-lettered 1", midway), midway
    last = ANSI.sub("", drawn).replace("\r", "\n").splitlines()[-1]
    # done: the time it took instead of the time left, the bar where the run left it (half the stream was taken)
    assert re.fullmatch(r"process ━+╺━+ +50/100 4\.5 articles/s in 0:00:11 "
                        r"indexed 40 · duplicates 5 · already indexed 5 · dead-lettered 1", last), last


def test_on_a_narrow_terminal_the_line_stays_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # an xterm's
    clock, out = Clock(), io.StringIO()
    with Progress(stream=out, live=True, clock=clock) as progress:
        on_batch = progress.articles(100)
        clock.now += 2
        on_batch(batches(5))
    last = ANSI.sub("", out.getvalue()).replace("\r", "\n").splitlines()[-1]
    assert last.startswith("process ") and "50/100" in last and "articles/s" in last and last.endswith("…")
    assert len(last) <= 80


def test_is_live_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as terminal:
            monkeypatch.setenv("TERM", "xterm-256color")
            assert is_live(terminal)
            root = logging.getLogger()
            level = root.level
            try:
                root.setLevel(logging.WARNING)  # what the CLI sets without -v (other tests leave it at INFO)
                assert Progress(stream=terminal).live
                root.setLevel(logging.INFO)  # `ingest -v`: log lines on stderr, plain progress lines between them
                assert not Progress(stream=terminal).live
            finally:
                root.setLevel(level)
            monkeypatch.setenv("TERM", "dumb")
            assert not is_live(terminal)
    finally:
        os.close(master)
        os.close(slave)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert not is_live(io.StringIO())
    with open(os.devnull, "w") as log_file:
        assert not is_live(log_file)


def test_poll_counts_feeds_by_outcome() -> None:
    clock, out = Clock(), io.StringIO()
    with Progress(stream=out, clock=clock, every=0) as progress:
        on_feed = progress.feeds(4)
        clock.now += 1
        on_feed({"poll/feeds_ok": 1, "poll/entries": 5, "poll/queued": 5})
        clock.now += 1
        on_feed({"poll/feeds_ok": 1, "poll/entries": 5, "poll/queued": 5, "poll/http_4xx": 1})
        clock.now += 2
        on_feed({"poll/feeds_ok": 1, "poll/queued": 5, "poll/http_4xx": 1, "poll/feed_disabled": 1})
    lines = out.getvalue().splitlines()
    assert lines[1] == "ingest poll: 2/4 feeds (50%), 1.0 feeds/s, 0:00:02 left; ok 1, failed 1, entries queued 5"
    assert lines[-1] == "ingest poll: done, 3 feeds in 0:00:04, 0.8 feeds/s; ok 1, failed 1, entries queued 5"


def test_the_copy_of_a_migration_counts_from_its_own_start() -> None:
    """``on_copy`` is first called after the first bulk request: the rate counts the time it took."""
    clock, out = Clock(), io.StringIO()
    with Progress(stream=out, clock=clock, every=0) as progress:
        on_copy = progress.copies()
        on_copy(CopyCounts(copied=500, seconds=5.0, passes=1, in_source=2000))
        clock.now += 5
        on_copy(CopyCounts(copied=900, already_there=100, seconds=10.0, passes=1, in_source=2000))
    assert out.getvalue().splitlines() == [
        "ingest index migrate: 500/2000 documents (25%), 100 documents/s, 0:00:15 left; "
        "copied 500, already there 0, failed 0",
        "ingest index migrate: 1000/2000 documents (50%), 100 documents/s, 0:00:10 left; "
        "copied 900, already there 100, failed 0",
        "ingest index migrate: done, 1000 documents in 0:00:10, 100 documents/s; "
        "copied 900, already there 100, failed 0",
    ]


def test_verify_shows_each_of_its_steps_in_turn() -> None:
    clock, out = Clock(), io.StringIO()
    with Progress(stream=out, clock=clock, every=0) as progress:
        on_progress = progress.verification()
        for where in (VerifyProgress("marks", 0), VerifyProgress("marks", 1000), VerifyProgress("marks", 1500, 1500),
                      VerifyProgress("lookups", 0, 1500), VerifyProgress("lookups", 1000, 1500, 3),
                      VerifyProgress("lookups", 1500, 1500, 4), VerifyProgress("documents", 0),
                      VerifyProgress("documents", 1000, found=1)):
            clock.now += 1
            on_progress(where)
    lines = out.getvalue().splitlines()
    assert "ingest index verify, marks read: 1000 ids, 1000 ids/s" in lines
    assert "ingest index verify, marks read: done, 1500 ids in 0:00:03, 500 ids/s" in lines  # till the next step
    assert "ingest index verify, marks looked up: 1000/1500 ids (66%), 1000 ids/s, 0:00:01 left; missing 3" in lines
    assert lines[-1] == "ingest index verify, documents read: done, 1000 documents in 0:00:01, 1000 documents/s; " \
                        "not marked 1"


def test_only_the_cli_progress_module_draws_progress() -> None:
    """The stages, the stores and the Airflow tasks take a callback; none of them imports rich or tqdm."""
    drawing = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name.split(".")[0] in ("rich", "tqdm") for name in names):
                drawing.add(str(path.relative_to(PACKAGE)))
    assert drawing == {"cli/progress.py"}
