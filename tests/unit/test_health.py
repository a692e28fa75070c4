"""Feed health as ``ingest feeds status`` and the maintenance DAG report it."""

from __future__ import annotations

from datetime import UTC, datetime

from ingest.models import FeedSource, FeedState
from ingest.status import feed_rows, summarise_feeds

AT = datetime(2026, 11, 24, 6, tzinfo=UTC)


def _feed(name: str, enabled: bool = True) -> FeedSource:
    return FeedSource(id=name, url=f"https://{name}.example/rss", name=name, enabled=enabled)


def test_each_feed_gets_one_state_and_the_troubled_ones_come_worst_first() -> None:
    feeds = [_feed("ok"), _feed("new"), _feed("off", enabled=False), _feed("flaky"), _feed("down"), _feed("dead")]
    states = {
        "ok": FeedState(last_success_at=AT),
        "new": FeedState(),
        "off": FeedState(consecutive_failures=9),  # the registry's choice wins
        "flaky": FeedState(last_success_at=AT, consecutive_failures=1, last_error="timeout", failing_since=AT),
        "down": FeedState(consecutive_failures=7, last_error="HTTP 503", failing_since=AT),
        "dead": FeedState(consecutive_failures=40, disabled=True, last_error="HTTP 410", failing_since=AT),
    }
    rows = feed_rows(feeds, states, {"ok/poll/queued": 12, "ok/index/indexed": 10})
    assert [r["state"] for r in rows] == ["ok", "never polled", "disabled", "failing", "failing", "dead"]
    assert (rows[0]["entries_queued"], rows[0]["articles_indexed"], rows[1]["articles_indexed"]) == (12, 10, 0)
    assert [r["enabled"] for r in rows] == [True, True, False, True, True, False]
    summary = summarise_feeds(rows)
    assert summary["feeds"] == 6
    assert summary["by_state"] == {"dead": 1, "disabled": 1, "failing": 2, "never polled": 1, "ok": 1}
    assert [(a["id"], a["last_error"]) for a in summary["attention"]] == [
        ("dead", "HTTP 410"), ("down", "HTTP 503"), ("flaky", "timeout")]
    assert summary["attention"][0]["failing_since"] == AT.isoformat()


def test_a_lost_state_is_the_pipeline_views_first_line() -> None:
    from ingest.airflow.pipeline_view import render
    from ingest.models import QueueHealth
    from ingest.status import PipelineStatus

    queue = QueueHealth(pending=0, unread=0, stale=0, oldest_stale_seconds=0.0, dead_letters=0, dead_by_reason={})
    feeds = summarise_feeds([])
    ok = PipelineStatus(at=AT, queue=queue, counts={}, hourly=[], feeds=feeds)
    lost = PipelineStatus(at=AT, queue=queue, counts={}, hourly=[], feeds=feeds, state_lost=True,
                          state_problem="Redis at redis://:***@h:6379/0 lost the pipeline's state <…>")
    assert 'id="state"' not in render(ok)
    page = render(lost)
    said = "Redis at redis://:***@h:6379/0 lost the pipeline&#x27;s state &lt;…&gt;"
    assert f'<p class="warn" id="state">{said}</p>' in page
    assert page.index('id="state"') < page.index("<h2>Queue</h2>")
