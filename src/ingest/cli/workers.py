"""`ingest process --workers N`: N worker processes on the same stream, so that extraction and NER keep every
core busy. Each child is a whole worker (its own runtime, models loaded once, its own consumer name and lease);
the stream's consumer group shares the entries out, and the URL claims keep two of them off one article.

The parent only supervises: it forwards SIGTERM/SIGINT once (the children are in their own process group, so a
terminal's Ctrl-C reaches them through it, never twice), adds up their counters, and says once what failed. A
child dies with its parent (a SIGKILL of ``ingest process`` stops them all, as it would stop one worker).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import queue
import signal
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ingest.cli.output import describe_error
from ingest.cli.stopping import stop_on_signals
from ingest.config import Settings
from ingest.report import Report

_PR_SET_PDEATHSIG = 1


@dataclass
class PoolResult:
    report: Report = field(default_factory=Report)
    # each worker's own counters, by consumer name
    workers: dict[str, Report] = field(default_factory=dict)
    # (exit code, one line) of each child that failed, without repeats
    failures: list[tuple[int, str]] = field(default_factory=list)


def worker_count(settings: Settings, asked: int | None) -> int:
    """``--workers`` if given, else the setting; 0 means one per core this process may run on."""
    n = asked if asked is not None else settings.pipeline.workers
    return n if n > 0 else len(os.sched_getaffinity(0))


def run_pool(settings: Settings, workers: int, consumer: str, max_batches: int | None, stop: threading.Event,
             on_batch: Callable[[Mapping[str, int]], None] | None = None) -> PoolResult:
    """Run ``workers`` child workers named ``<consumer>-w<i>`` until each has nothing left (or ``max_batches``
    each); once ``stop`` is set, ask them to stop too. ``on_batch(counts)`` each time a worker has done a batch:
    every worker's counters so far, added up (what ``process_pending`` says of one worker)."""
    context = multiprocessing.get_context("spawn")  # a clean interpreter: no lock or thread of the parent's
    results: Any = context.Queue()
    children = [
        context.Process(target=_child, args=(settings, f"{consumer}-w{i}", max_batches, results,
                                             on_batch is not None),
                        name=f"ingest-worker-{i}")
        for i in range(1, workers + 1)
    ]
    for child in children:
        child.start()
    result, heard, forwarded = PoolResult(), 0, False
    so_far: dict[str, Mapping[str, int]] = {}  # each worker's counters, as its last batch left them

    def take(kind: str, name: str, payload: Any) -> int:
        """Take one message; 1 when it is a worker's last word (its report, or why it failed)."""
        if kind == "batch":
            so_far[name] = payload
            if on_batch is not None:
                on_batch(sum((Counter(counts) for counts in so_far.values()), Counter()))
            return 0
        _take(result, kind, name, payload)
        return 1

    while heard < len(children):
        if stop.is_set() and not forwarded:
            forwarded = True
            for child in children:
                if child.pid is not None and child.is_alive():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child.pid, signal.SIGTERM)
        try:
            kind, name, payload = results.get(timeout=0.2)
        except queue.Empty:
            if any(child.is_alive() for child in children):
                continue
            with contextlib.suppress(queue.Empty):  # last messages may have arrived with the exits
                while heard < len(children):
                    heard += take(*results.get(timeout=1.0))
            break
        heard += take(kind, name, payload)
    for child in children:
        child.join()
        if child.exitcode and heard < len(children):  # it ended without a word: killed, or a bug's traceback above
            how = f"was killed by signal {-child.exitcode}" if child.exitcode < 0 else f"failed (exit {child.exitcode})"
            result.failures.append((1, f"ingest: error: worker {child.name} {how}; its entries stay pending and are "
                                       "taken over once its lease lapses"))
    return result


def _take(result: PoolResult, kind: str, name: str, payload: Any) -> None:
    if kind == "report":
        result.report.merge(payload)
        result.workers[name] = payload
    elif (payload[0], payload[1]) not in result.failures:
        result.failures.append((payload[0], payload[1]))


def _child(settings: Settings, consumer: str, max_batches: int | None, results: Any, progress: bool) -> None:
    os.setpgrp()  # the parent forwards a stop once; a terminal's Ctrl-C must not reach the child twice
    _die_with_parent()
    if os.getppid() == 1:  # the parent died before the line above
        return
    from ingest.process import process_pending
    from ingest.runtime import build_runtime

    def tell(counts: Mapping[str, int]) -> None:  # for the parent's progress line
        results.put(("batch", consumer, dict(counts)))

    try:
        with build_runtime(settings) as rt, stop_on_signals(rt.stop, settings.pipeline.stop_seconds):
            report = process_pending(rt, consumer, datetime.now(UTC), max_batches, tell if progress else None)
        results.put(("report", consumer, report))
    except Exception as e:  # said once by the parent, in the command's words
        described = describe_error(e)
        if described is None:
            raise
        results.put(("failed", consumer, described))


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (elsewhere: nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
