"""When to poll a feed next, and when to give up on it. Pure functions of the feed's state and ``now``.

The interval adapts to each feed (unless the registry pins it with ``poll_interval_minutes``):

- from the publishing rate seen in the feed: one new entry per poll on average (a feed with 48 entries a
  day is polled every 30 minutes, one with 2 a day every 12 hours, within the bounds);
- a poll that finds nothing new (304 or the same body) stretches the interval by half, up to the maximum;
  the next change goes back to the rate;
- never more often than the feed asks (RSS ``ttl``, ``sy:updatePeriod``/``sy:updateFrequency``, the HTTP
  ``Cache-Control: max-age``/``Expires`` of the answer), as long as that stays under the maximum;
- always between ``min_interval_minutes`` and ``max_interval_minutes``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta

from ingest.config import FeedSettings
from ingest.errors import StageError, TransientError
from ingest.models import FeedSource, FeedState

RATE_WINDOW = timedelta(days=7)
_SY_PERIODS = {"hourly": 60.0, "daily": 1440.0, "weekly": 7 * 1440.0, "monthly": 30 * 1440.0, "yearly": 365 * 1440.0}


def is_due(state: FeedState, now: datetime) -> bool:
    """A feed is due when it is not disabled and its next poll time has come."""
    return not state.disabled and (state.next_poll_at is None or state.next_poll_at <= now)


def after_success(
    state: FeedState, feed: FeedSource, now: datetime, settings: FeedSettings, *, changed: bool = True,
    max_age: float | None = None,
) -> FeedState:
    """State after a successful poll: failures forgotten, next poll one adaptive interval later.

    ``changed`` is false when the feed answered 304 or the same body; ``max_age`` is the freshness lifetime
    the HTTP answer declared, in seconds.
    """
    minutes = next_interval_minutes(state, feed, settings, changed=changed, max_age=max_age)
    return state.model_copy(
        update={
            "last_success_at": now,
            "last_error": None,
            "failing_since": None,
            "consecutive_failures": 0,
            "interval_minutes": minutes,
            "next_poll_at": now + _jitter(timedelta(minutes=minutes), feed.id),
        }
    )


def next_interval_minutes(
    state: FeedState, feed: FeedSource, settings: FeedSettings, *, changed: bool, max_age: float | None
) -> float:
    """The adaptive interval (see the module docstring) in minutes."""
    if feed.poll_interval_minutes:
        return float(feed.poll_interval_minutes)
    low = float(settings.min_interval_minutes)
    high = float(max(settings.max_interval_minutes, settings.min_interval_minutes))
    if state.entries_per_day is None:
        minutes = float(settings.interval_minutes)
    elif state.entries_per_day <= 0:
        minutes = high
    else:
        minutes = 1440.0 / state.entries_per_day
    if not changed and state.interval_minutes:
        minutes = max(minutes, state.interval_minutes * 1.5)
    hints = [h for h in (state.hint_minutes, max_age / 60 if max_age else None) if h]
    if hints:
        minutes = max(minutes, min(max(hints), high))
    return round(min(max(minutes, low), high), 2)


def publishing_rate(dates: Iterable[datetime | None], now: datetime) -> float | None:
    """Entries per day from the dates of a feed's entries, over the last week (``None``: no dates at all).

    A feed whose oldest entry is inside the week is a window on a busier stream, so the rate is measured over
    the time its entries span (at least an hour); a feed reaching back further is measured over the week.
    """
    dated = [d for d in dates if d is not None and d <= now + timedelta(minutes=5)]
    if not dated:
        return None
    recent = [d for d in dated if now - d <= RATE_WINDOW]
    if not recent:
        return 0.0
    span = RATE_WINDOW if len(recent) < len(dated) else max(now - min(recent), timedelta(hours=1))
    return round(len(recent) / (span / timedelta(days=1)), 3)


def feed_hint_minutes(ttl: str | None, update_period: str | None, update_frequency: str | None) -> float | None:
    """The feed's own "don't poll more often than" hint in minutes: RSS ``ttl`` or the syndication module."""
    hints = []
    if ttl and ttl.strip().isdigit() and int(ttl) > 0:
        hints.append(float(ttl))
    period = _SY_PERIODS.get((update_period or "").strip().lower())
    if period:
        frequency = (update_frequency or "1").strip()
        hints.append(period / max(1, int(frequency) if frequency.isdigit() else 1))
    return max(hints) if hints else None


def after_failure(
    state: FeedState, feed: FeedSource, error: StageError, now: datetime, settings: FeedSettings
) -> FeedState:
    """State after a failed poll: exponential backoff (or the server's Retry-After, if longer), and the feed
    disabled once it has failed for ``disable_after_hours`` without a success."""
    failures = state.consecutive_failures + 1
    interval = timedelta(minutes=feed.poll_interval_minutes or settings.interval_minutes)
    delay = min(interval * 2 ** min(failures, 16), timedelta(minutes=settings.max_backoff_minutes))
    if isinstance(error, TransientError) and error.retry_after is not None:
        delay = max(delay, timedelta(seconds=error.retry_after))
    failing_since = state.failing_since or now
    disabled = now - failing_since >= timedelta(hours=settings.disable_after_hours)
    return state.model_copy(
        update={
            "last_error": f"{error.reason}: {error.detail}"[:300],
            "failing_since": failing_since,
            "consecutive_failures": failures,
            "next_poll_at": now + _jitter(delay, feed.id),
            "disabled": disabled,
        }
    )


def _jitter(delay: timedelta, feed_id: str) -> timedelta:
    # Up to +10%, fixed per feed (no randomness in a stage): feeds with one interval spread out over time.
    fraction = int(hashlib.sha1(feed_id.encode()).hexdigest()[:4], 16) / 0xFFFF / 10
    return delay * (1 + fraction)
