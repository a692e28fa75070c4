"""When to poll a feed next, and when to give up on it. Pure functions of the feed's state and ``now``."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from ingest.config import FeedSettings
from ingest.errors import StageError, TransientError
from ingest.models import FeedSource, FeedState


def is_due(state: FeedState, now: datetime) -> bool:
    """A feed is due when it is not disabled and its next poll time has come."""
    return not state.disabled and (state.next_poll_at is None or state.next_poll_at <= now)


def after_success(state: FeedState, feed: FeedSource, now: datetime, settings: FeedSettings) -> FeedState:
    """State after a successful poll: failures forgotten, next poll one interval later."""
    interval = timedelta(minutes=feed.poll_interval_minutes or settings.interval_minutes)
    return state.model_copy(
        update={
            "last_success_at": now,
            "last_error": None,
            "failing_since": None,
            "consecutive_failures": 0,
            "next_poll_at": now + _jitter(interval, feed.id),
        }
    )


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
