"""ISO 8601 / W3C datetimes from feeds, sitemaps and pages: one parser, timezone-aware results."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def parse_iso_datetime(value: Any, *, utc: bool = True) -> datetime | None:
    """A datetime (or a date alone) from ISO text; a naive value counts as UTC. ``utc=False`` keeps the
    publisher's own offset (the local calendar day matters for an article's date). ``None`` for anything else."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC) if utc else parsed


def iso_utc(at: datetime) -> str:
    """A UTC time as the contract writes ``indexed_at``: ISO 8601 with ``Z`` and always six decimals, so that
    two such strings compare as the times do."""
    return at.isoformat(timespec="microseconds").replace("+00:00", "Z")
