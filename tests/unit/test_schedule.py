"""Per-feed schedule: backoff, Retry-After, disabling dead feeds. Pure functions, pinned clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

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


def test_publishing_rate_from_entry_dates() -> None:
    from ingest.schedule import publishing_rate

    hourly = [NOW - timedelta(hours=h) for h in range(10)]  # a window on a busy stream: measured over 9 h
    assert publishing_rate(hourly, NOW) == pytest.approx(10 / (9 / 24), rel=1e-3)
    weekly = [NOW - timedelta(days=d) for d in (1, 3, 5, 9, 20)]  # reaches past the week: 3 in 7 days
    assert publishing_rate(weekly, NOW) == pytest.approx(3 / 7, abs=1e-3)
    assert publishing_rate([NOW - timedelta(days=30)], NOW) == 0.0
    assert publishing_rate([None, None], NOW) is None
    assert publishing_rate([NOW - timedelta(minutes=1)], NOW) == 24.0  # one fresh entry: at least an hour
    assert publishing_rate([NOW + timedelta(days=2)], NOW) is None  # future dates are not evidence


def test_adaptive_interval_bounds_hints_and_stretching() -> None:
    from ingest.schedule import feed_hint_minutes, next_interval_minutes

    s = FeedSettings(interval_minutes=15, min_interval_minutes=5, max_interval_minutes=240)
    assert next_interval_minutes(FeedState(), FEED, s, changed=True, max_age=None) == 15  # rate unknown
    busy = FeedState(entries_per_day=48)
    assert next_interval_minutes(busy, FEED, s, changed=True, max_age=None) == 30
    assert next_interval_minutes(FeedState(entries_per_day=1000), FEED, s, changed=True, max_age=None) == 5
    assert next_interval_minutes(FeedState(entries_per_day=0.5), FEED, s, changed=True, max_age=None) == 240
    assert next_interval_minutes(FeedState(entries_per_day=0), FEED, s, changed=True, max_age=None) == 240
    # Nothing new stretches the interval in use by half, up to the maximum; a change goes back to the rate.
    stretched = busy.model_copy(update={"interval_minutes": 100})
    assert next_interval_minutes(stretched, FEED, s, changed=False, max_age=None) == 150
    assert next_interval_minutes(stretched.model_copy(update={"interval_minutes": 200}), FEED, s, changed=False,
                                 max_age=None) == 240
    assert next_interval_minutes(stretched, FEED, s, changed=True, max_age=None) == 30
    # The feed's hints are floors, capped by the maximum.
    assert next_interval_minutes(busy.model_copy(update={"hint_minutes": 60}), FEED, s, changed=True,
                                 max_age=None) == 60
    assert next_interval_minutes(busy, FEED, s, changed=True, max_age=7200) == 120
    assert next_interval_minutes(busy, FEED, s, changed=True, max_age=86400 * 7) == 240
    # A registry override pins it.
    pinned = FEED.model_copy(update={"poll_interval_minutes": 7})
    assert next_interval_minutes(busy, pinned, s, changed=False, max_age=86400) == 7
    assert feed_hint_minutes("60", None, None) == 60
    assert feed_hint_minutes(None, "hourly", "2") == 30
    assert feed_hint_minutes("10", "daily", None) == 1440
    assert feed_hint_minutes("soon", "fortnightly", "x") is None


def test_cache_lifetime_from_headers() -> None:
    from ingest.http import cache_lifetime

    assert cache_lifetime("public, max-age=600", None) == 600
    assert cache_lifetime("no-cache, max-age=600", None) is None
    assert cache_lifetime("max-age=0", None) is None
    assert cache_lifetime(None, "Tue, 24 Nov 2026 13:00:00 GMT", "Tue, 24 Nov 2026 12:00:00 GMT") == 3600
    assert cache_lifetime(None, "0", None) is None and cache_lifetime(None, None) is None
