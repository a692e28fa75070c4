"""What the commands share: exit codes, reading input files, printing counters."""

from __future__ import annotations

import gzip
import io
import os
import socket
import sys
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

from redis.exceptions import ConnectionError as RedisConnectionError

from ingest.errors import ConfigError, IngestError, PermanentError, ServiceUnavailableError, StateLostError
from ingest.jsonl import json_objects
from ingest.redact import redact
from ingest.report import Report

# Exit codes: 1 = some input failed, 2 = bad usage or configuration, 3 = a service is down.
EXIT_INPUT, EXIT_CONFIG, EXIT_SERVICE = 1, 2, 3


def describe_error(e: BaseException) -> tuple[int, str] | None:
    """The exit code and the one line for an expected failure; None for a bug (its traceback is worth seeing)."""
    if isinstance(e, (ServiceUnavailableError, StateLostError)):
        return EXIT_SERVICE, redact(f"ingest: error: {e}")
    if isinstance(e, ConfigError):
        return EXIT_CONFIG, redact(f"ingest: error: {e}")
    if isinstance(e, IngestError):
        return EXIT_INPUT, redact(f"ingest: error: {e}")
    if isinstance(e, RedisConnectionError):
        return EXIT_SERVICE, redact(f"ingest: error: Redis connection lost ({e}); unfinished entries stay pending, "
                                    "run again when it is back")
    return None


def consumer_name() -> str:
    return f"cli-{socket.gethostname()}-{os.getpid()}"


def read_bytes(path: str, max_bytes: int) -> bytes:
    """A file's bytes ('-': standard input), gzip decompressed as it is read; ``PermanentError`` past ``max_bytes``
    (read or decompressed), so that a gzip bomb or a huge file is refused before it is in memory."""
    raw: BinaryIO = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    with raw:
        gz = isinstance(raw, io.BufferedReader) and raw.peek(2)[:2] == b"\x1f\x8b"
        try:
            data = (gzip.GzipFile(fileobj=raw) if gz else raw).read(max_bytes + 1)
        except (OSError, EOFError) as e:  # a truncated or corrupt .gz
            raise PermanentError("unreadable", path, f"not valid gzip: {e}") from e
    if len(data) > max_bytes:
        raise PermanentError("too_large", path, f"more than {max_bytes} bytes{' once decompressed' if gz else ''}; "
                                                "raise INGEST_HTTP__MAX_BYTES to extract it")
    return data


def read_jsonl(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """The objects of a JSON-lines file ('-': standard input); a line that is not UTF-8 is a ``ConfigError`` with
    its number."""
    raw: BinaryIO = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    with raw:
        yield from json_objects(_utf8_lines(raw, path), path)


def _utf8_lines(raw: BinaryIO, path: str) -> Iterator[str]:
    for number, line in enumerate(raw, start=1):
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path}:{number}: not UTF-8 text (byte 0x{line[e.start]:02x} at column {e.start + 1}); "
                              "convert the file, for example `iconv -f latin1 -t utf-8`") from None


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
