"""Per-feed schedule: backoff, Retry-After, disabling dead feeds. Pure functions, pinned clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.config import FeedSettings
from ingest.errors import PermanentError, TransientError
from ingest.http import parse_retry_after
from ingest.models import FeedSource, FeedState
from ingest.schedule import after_failure, after_success, is_due

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SETTINGS = FeedSettings(interval_minutes=15, max_backoff_minutes=240, disable_after_hours=72)
FEED = FeedSource(id="f", url="https://example.org/rss", name="f")


def test_success_schedules_one_interval_later_with_a_fixed_jitter() -> None:
    state = after_success(FeedState(consecutive_failures=3, last_error="x"), FEED, NOW, SETTINGS)
    assert state.consecutive_failures == 0 and state.last_error is None and state.last_success_at == NOW
    assert state.next_poll_at is not None
    assert timedelta(minutes=15) <= state.next_poll_at - NOW <= timedelta(minutes=16.5)
    assert after_success(FeedState(), FEED, NOW, SETTINGS).next_poll_at == state.next_poll_at  # deterministic
    custom = FEED.model_copy(update={"poll_interval_minutes": 60})
    assert after_success(FeedState(), custom, NOW, SETTINGS).next_poll_at - NOW >= timedelta(hours=1)  # type: ignore[operator]


def test_failures_back_off_exponentially_up_to_the_cap() -> None:
    error = TransientError("http_5xx", FEED.url, "HTTP 503")
    state = FeedState()
    delays = []
    for _ in range(6):
        state = after_failure(state, FEED, error, NOW, SETTINGS)
        assert state.next_poll_at is not None
        delays.append(state.next_poll_at - NOW)
    assert delays == sorted(delays)
    assert delays[0] >= timedelta(minutes=30)
    assert delays[-1] <= timedelta(minutes=240 * 1.1)
    assert state.consecutive_failures == 6 and state.failing_since == NOW
    assert state.last_error == "http_5xx: HTTP 503"
    assert not is_due(state, NOW) and is_due(state, NOW + timedelta(hours=5))


def test_retry_after_wins_when_longer() -> None:
    error = TransientError("http_429", FEED.url, "HTTP 429", retry_after=3 * 3600)
    state = after_failure(FeedState(), FEED, error, NOW, SETTINGS)
    assert state.next_poll_at is not None and state.next_poll_at - NOW >= timedelta(hours=3)


def test_a_feed_failing_for_days_is_disabled() -> None:
    error = PermanentError("http_4xx", FEED.url, "HTTP 410")
    state = after_failure(FeedState(), FEED, error, NOW, SETTINGS)
    state = after_failure(state, FEED, error, NOW + timedelta(hours=71), SETTINGS)
    assert not state.disabled
    state = after_failure(state, FEED, error, NOW + timedelta(hours=72), SETTINGS)
    assert state.disabled and not is_due(state, NOW + timedelta(days=30))


def test_parse_retry_after() -> None:
    assert parse_retry_after("120") == 120
    assert parse_retry_after("Mon, 23 Nov 2026 12:10:00 GMT", now=NOW) == 600
    assert parse_retry_after("Mon, 23 Nov 2026 11:00:00 GMT", now=NOW) == 0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
