"""The counters of one run, named ``stage/outcome``: what a command prints, a DAG task returns and the
operators' counters add up."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ingest.dates import iso_utc


@dataclass
class Report:
    """Counters of one run, named ``stage/outcome`` (for example ``fetch/http_4xx``)."""

    counts: Counter[str] = field(default_factory=Counter)
    feed_counts: Counter[str] = field(default_factory=Counter)
    # counters kept only per hour, not in the totals: the freshness buckets (ingest.lights)
    hourly_counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    # the earliest and latest ``indexed_at`` of the documents this run wrote (None: it wrote none)
    indexed_at_first: datetime | None = None
    indexed_at_last: datetime | None = None
    # CPU seconds of this process spent in each stage (``queue``, ``fetch``, ``extract``, ``dedup``, ``enrich``,
    # ``index``): where a worker's time goes, for operators and the benchmarks
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    def count(self, name: str, n: int = 1, feed_id: str | None = None) -> None:
        self.counts[name] += n
        if feed_id is not None:
            self.feed_counts[f"{feed_id}/{name}"] += n

    def wrote_at(self, indexed_at: datetime) -> None:
        self.indexed_at_first = min(filter(None, (self.indexed_at_first, indexed_at)))
        self.indexed_at_last = max(filter(None, (self.indexed_at_last, indexed_at)))

    @contextmanager
    def cpu(self, stage: str, this_thread: bool = False) -> Iterator[None]:
        """Add the CPU time the block takes to ``stage``: every thread of the process (a stage's helper threads
        count), or only this thread's when other work runs beside it (the bulk writer)."""
        clock = time.thread_time if this_thread else time.process_time
        start = clock()
        try:
            yield
        finally:
            self.cpu_seconds[stage] = self.cpu_seconds.get(stage, 0.0) + clock() - start

    def merge(self, other: Report) -> None:
        self.counts.update(other.counts)
        for stage, seconds in other.cpu_seconds.items():
            self.cpu_seconds[stage] = self.cpu_seconds.get(stage, 0.0) + seconds
        self.feed_counts.update(other.feed_counts)
        self.hourly_counts.update(other.hourly_counts)
        self.errors.extend(other.errors)
        for at in (other.indexed_at_first, other.indexed_at_last):
            if at is not None:
                self.wrote_at(at)

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"counts": dict(sorted(self.counts.items())), "errors": self.errors[:50]}
        if self.cpu_seconds:
            found["cpu_seconds"] = {stage: round(s, 3) for stage, s in sorted(self.cpu_seconds.items())}
        if self.indexed_at_first is not None and self.indexed_at_last is not None:
            found["indexed_at_first"] = iso_utc(self.indexed_at_first)
            found["indexed_at_last"] = iso_utc(self.indexed_at_last)
        return found
