"""What the commands share: exit codes, reading input files, printing counters."""

from __future__ import annotations

import gzip
import os
import socket
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from redis.exceptions import ConnectionError as RedisConnectionError

from ingest.errors import ConfigError, IngestError, ServiceUnavailableError
from ingest.jsonl import json_objects
from ingest.report import Report

# Exit codes: 1 = some input failed, 2 = bad usage or configuration, 3 = a service is down.
EXIT_INPUT, EXIT_CONFIG, EXIT_SERVICE = 1, 2, 3


def describe_error(e: BaseException) -> tuple[int, str] | None:
    """The exit code and the one line for an expected failure; None for a bug (its traceback is worth seeing)."""
    if isinstance(e, ServiceUnavailableError):
        return EXIT_SERVICE, f"ingest: error: {e}"
    if isinstance(e, ConfigError):
        return EXIT_CONFIG, f"ingest: error: {e}"
    if isinstance(e, IngestError):
        return EXIT_INPUT, f"ingest: error: {e}"
    if isinstance(e, RedisConnectionError):
        return EXIT_SERVICE, (f"ingest: error: Redis connection lost ({e}); unfinished entries stay pending, run "
                              "again when it is back")
    return None


def consumer_name() -> str:
    return f"cli-{socket.gethostname()}-{os.getpid()}"


def read_bytes(path: str) -> bytes:
    data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def read_jsonl(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    stream: TextIO = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    with stream:
        yield from json_objects(stream, path)


def print_cpu(report: Report) -> None:
    """Where the worker's CPU time went, per stage (every worker process added up)."""
    if report.cpu_seconds:
        print("cpu seconds: " + " ".join(f"{stage}={seconds:.2f}" for stage, seconds in report.cpu_seconds.items()))


def print_counts(title: str, counts: dict[str, int]) -> None:
    print(f"-- {title}")
    by_stage: dict[str, list[str]] = {}
    for name, value in sorted(counts.items()):
        stage, _, outcome = name.partition("/")
        by_stage.setdefault(stage, []).append(f"{outcome}={value}")
    for stage in ("poll", "process", "fetch", "extract", "dedup", "enrich", "index"):
        if stage in by_stage:
            print(f"   {stage:8} " + "  ".join(by_stage.pop(stage)))
    for stage, items in by_stage.items():
        print(f"   {stage:8} " + "  ".join(items))


def print_errors(errors: Sequence[str]) -> None:
    for line in errors[:20]:
        print(f"   ! {line}")
