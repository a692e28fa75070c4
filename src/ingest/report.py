"""The counters of one run, named ``stage/outcome``: what a command prints, a DAG task returns and the
operators' counters add up."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ingest.dates import iso_utc


@dataclass
class Report:
    """Counters of one run, named ``stage/outcome`` (for example ``fetch/http_4xx``)."""

    counts: Counter[str] = field(default_factory=Counter)
    feed_counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    # the earliest and latest ``indexed_at`` of the documents this run wrote (None: it wrote none)
    indexed_at_first: datetime | None = None
    indexed_at_last: datetime | None = None

    def count(self, name: str, n: int = 1, feed_id: str | None = None) -> None:
        self.counts[name] += n
        if feed_id is not None:
            self.feed_counts[f"{feed_id}/{name}"] += n

    def wrote_at(self, indexed_at: datetime) -> None:
        self.indexed_at_first = min(filter(None, (self.indexed_at_first, indexed_at)))
        self.indexed_at_last = max(filter(None, (self.indexed_at_last, indexed_at)))

    def merge(self, other: Report) -> None:
        self.counts.update(other.counts)
        self.feed_counts.update(other.feed_counts)
        self.errors.extend(other.errors)
        for at in (other.indexed_at_first, other.indexed_at_last):
            if at is not None:
                self.wrote_at(at)

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"counts": dict(sorted(self.counts.items())), "errors": self.errors[:50]}
        if self.indexed_at_first is not None and self.indexed_at_last is not None:
            found["indexed_at_first"] = iso_utc(self.indexed_at_first)
            found["indexed_at_last"] = iso_utc(self.indexed_at_last)
        return found
