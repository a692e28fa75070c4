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


def test_latencies_fall_in_buckets_and_percentiles_read_back_their_bounds() -> None:
    from ingest.lights import bucket, latency_counts, measured, percentile, say_within

    assert [bucket(s) for s in (-3, 0.4, 1, 1.5, 59, 61, 8 * 86400)] == ["1", "1", "1", "2", "60", "120", "inf"]
    counts: dict[str, int] = {}
    for seconds in [4] * 90 + [200] * 8 + [5000] * 2:  # 90 within 5 s, 8 within 5 min, 2 within 2 h
        name = latency_counts("queued", seconds)
        counts[name] = counts.get(name, 0) + 1
    counts["index/indexed"] = 100  # other counters of the hour are not latencies
    assert measured(counts, "queued") == 100 and measured(counts, "published") == 0
    assert percentile(counts, "queued", 0.5) == 5 and percentile(counts, "queued", 0.95) == 300
    assert percentile(counts, "queued", 0.99) == 7200 and percentile(counts, "published", 0.5) is None
    assert [say_within(v) for v in (5, 300, 7200, float("inf"), None)] == ["≤ 5 s", "≤ 5 min", "≤ 2 h", "> 7 d", "–"]


def test_the_queue_is_amber_when_entries_wait_and_nothing_is_indexed() -> None:
    from ingest.lights import queue_component

    def light(**kw: int) -> str:
        args = {"pending": 0, "stale": 0, "oldest_stale_seconds": 0, "dead_letters": 0, "indexed_this_hour": 0,
                "indexed_last_hour": 0} | kw
        return queue_component(**args).light

    assert light() == "green" and light(pending=9, indexed_last_hour=3) == "green"
    assert light(pending=9) == "amber"  # the "9 waiting and nothing red" of a stopped worker or search server
    assert light(stale=2, indexed_this_hour=5) == "amber" and light(dead_letters=1) == "amber"
    said = queue_component(pending=9, stale=0, oldest_stale_seconds=0, dead_letters=0, indexed_this_hour=0,
                           indexed_last_hour=0).summary
    assert said.startswith("9 waiting; 0 indexed this hour; nothing indexed for an hour")


def test_feeds_are_red_when_every_enabled_feed_fails() -> None:
    from ingest.lights import feeds_component

    assert feeds_component({"ok": 3}).light == "green"
    assert feeds_component({"ok": 3, "failing": 1}).light == "amber"
    assert feeds_component({"failing": 2, "dead": 1, "disabled": 4}).light == "red"
    assert feeds_component({"never polled": 2}).light == "amber"
    assert feeds_component({}).light == "amber"  # an empty registry polls nothing


def test_each_dag_gets_its_light_from_airflows_state() -> None:
    from datetime import timedelta

    from ingest.lights import DagInfo, dag_component

    now = AT
    ok = DagInfo("poll", last_state="success", last_at=now - timedelta(minutes=3),
                 next_at=now + timedelta(minutes=12))
    c = dag_component(ok, now)
    assert (c.light, c.summary, c.link) == ("green", "last run success 3 min ago; next run in 12 min", "dags/poll")
    assert dag_component(DagInfo("poll", found=False), now).light == "red"
    paused = dag_component(DagInfo("poll", paused=True, last_state="success", last_at=now), now)
    assert paused.light == "red" and "airflow dags unpause poll" in paused.summary
    assert dag_component(DagInfo("poll", last_state="failed", last_at=now), now).light == "red"
    assert dag_component(DagInfo("poll", import_errors=True), now).light == "red"
    late = dag_component(DagInfo("poll", last_state="success", last_at=now - timedelta(hours=1),
                                 next_at=now - timedelta(minutes=40)), now)
    assert late.light == "amber" and "overdue by 40 min: is the scheduler running?" in late.summary
    assert dag_component(DagInfo("poll", next_at=now + timedelta(minutes=5)), now).light == "amber"  # never run
    waits = dag_component(DagInfo("process", scheduled=False), now)  # asset-triggered: no run yet is fine
    assert (waits.light, waits.summary) == ("green", "never run; runs when the poll queues new entries")


def test_the_view_puts_health_first_and_the_chart_shows_each_hour() -> None:
    from datetime import timedelta

    from ingest.airflow.pipeline_view import render
    from ingest.lights import latency_counts
    from ingest.models import QueueHealth
    from ingest.status import THROUGHPUT, HourCounts, PipelineStatus

    queue = QueueHealth(pending=9, unread=9, stale=0, oldest_stale_seconds=0.0, dead_letters=0, dead_by_reason={})
    hourly = [HourCounts(AT - timedelta(hours=23 - n), dict.fromkeys(THROUGHPUT, 0) | {"index/indexed": n},
                         {latency_counts("queued", 3): n})
              for n in range(24)]
    status = PipelineStatus(at=AT, queue=queue, counts={}, hourly=hourly, feeds=summarise_feeds([]),
                            state_problem="the search server does not answer at http://h:9200 (x)")
    page = render(status)
    assert page.index('id="health"') < page.index("<h2>Queue</h2>") < page.index('id="chart"')
    assert 'id="overall">broken<' in page and 'id="state"' not in page  # said on the search server's line
    assert page.count('<rect class="bar"') == 24
    assert page.index("05:00 UTC: 22 indexed") < page.index("06:00 UTC: 23 indexed")  # the current hour right
    assert page.index("2026-11-24 05:00") < page.index("2026-11-24 04:00")  # newest hour first in the tables
