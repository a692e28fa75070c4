"""Feed health, from the registry and the state the poll keeps per feed: what ``ingest feeds status`` prints and
what the ``ingest_maintenance`` DAG reports. Pure: the caller reads the states and counters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from ingest.models import FeedSource, FeedState

FeedHealthState = Literal["ok", "failing", "dead", "disabled", "never polled"]


def feed_state(feed: FeedSource, state: FeedState) -> FeedHealthState:
    """``disabled`` by the registry, ``dead`` (disabled by the poll after too many failures), ``failing``
    (its last poll failed), ``ok``, or ``never polled``."""
    if not feed.enabled:
        return "disabled"
    if state.disabled:
        return "dead"
    if state.consecutive_failures:
        return "failing"
    return "ok" if state.last_success_at else "never polled"


def feed_rows(
    feeds: Sequence[FeedSource], states: Mapping[str, FeedState], per_feed: Mapping[str, int]
) -> list[dict[str, Any]]:
    """One JSON-able row per feed: its health, schedule and what it brought (``per_feed``: the per-feed
    counters, ``<feed id>/<stage>/<outcome>`` → number)."""
    rows: list[dict[str, Any]] = []
    for feed in feeds:
        state = states[feed.id]
        rows.append({
            "id": feed.id,
            "enabled": feed.enabled and not state.disabled,
            "state": feed_state(feed, state),
            "last_success_at": _iso(state.last_success_at),
            "last_error": state.last_error,
            "consecutive_failures": state.consecutive_failures,
            "failing_since": _iso(state.failing_since),
            "next_poll_at": _iso(state.next_poll_at),
            "interval_minutes": state.interval_minutes,
            "entries_per_day": state.entries_per_day,
            "hint_minutes": state.hint_minutes,
            "entries_queued": per_feed.get(f"{feed.id}/poll/queued", 0),
            "articles_indexed": per_feed.get(f"{feed.id}/index/indexed", 0),
        })
    return rows


def summarise_feeds(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Feeds counted by state, and the ones an operator should look at (failing or dead), worst first."""
    trouble = sorted(
        (r for r in rows if r["state"] in ("failing", "dead")),
        key=lambda r: (r["state"] != "dead", -int(r["consecutive_failures"]), r["id"]),
    )
    return {
        "feeds": len(rows),
        "by_state": dict(sorted(Counter(str(r["state"]) for r in rows).items())),
        "attention": [
            {k: r[k] for k in ("id", "state", "consecutive_failures", "failing_since", "last_error")} for r in trouble
        ],
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
