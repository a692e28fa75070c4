"""The pipeline view inside Airflow's own API app (the plugin as the API server loads it), on a real Redis:
refused without a login, then the queue, throughput, dead letters and failing feeds the state holds."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.airflow_env import use_settings
from tests.conftest import demo_feeds

from ingest.config import Settings
from ingest.models import FeedEntry, FeedState
from ingest.stores.redis import RedisFeedStateStore, RedisPendingQueue, RedisStats, connect_redis

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]


@pytest.fixture
def api(settings: Settings, feed_base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> Iterator[TestClient]:
    use_settings(settings, monkeypatch, demo_feeds(feed_base_url), tmp_path)
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "pipeline-view-test")  # what a deployment configures
    from airflow.api_fastapi.app import create_app

    with TestClient(create_app()) as client:
        yield client


def _login(client: TestClient) -> None:
    import os

    passwords = Path(os.environ["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
    password = json.loads(passwords.read_text(encoding="utf-8"))["admin"]
    token = client.post("/auth/token", json={"username": "admin", "password": password})
    assert token.status_code == 201, token.text
    client.cookies.set("_token", token.json()["access_token"])  # what the UI's session holds


def test_the_pipeline_view_shows_the_state_to_a_logged_in_operator(api: TestClient, settings: Settings,
                                                                   feed_base_url: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_PIPELINE__RECLAIM_IDLE_SECONDS", "0")  # a delivered entry is stale at once
    client = connect_redis(settings.redis)
    queue = RedisPendingQueue(client, settings.redis.prefix, settings.pipeline.consumer_group, 0)
    feeds = demo_feeds(feed_base_url)
    queue.enqueue([(f"v{i}", FeedEntry(feed_id=feeds[0].id, feed_name="F", url=f"{feed_base_url}/v{i}.html"))
                   for i in range(4)])
    taken = queue.read_batch("worker-1", 2)
    queue.dead_letter(taken[0], "http_5xx", "HTTP 503")
    RedisStats(client, settings.redis.prefix).add({"index/indexed": 1234, "poll/queued": 1500}, at=datetime.now(UTC))
    RedisFeedStateStore(client, settings.redis.prefix).put(feeds[1].id, FeedState(
        consecutive_failures=4, last_error="HTTP 503 <script>alert(1)</script>", failing_since=datetime.now(UTC)))

    assert api.get("/ingest/").status_code == 401  # plugin routes are behind Airflow's login too
    assert api.get("/ingest/status.json").status_code == 401
    _login(api)

    status = api.get("/ingest/status.json").json()
    assert status["queue"] | {"oldest_stale_seconds": 0} == {
        "pending": 3, "unread": 2, "stale": 1, "oldest_stale_seconds": 0, "dead_letters": 1,
        "dead_by_reason": {"http_5xx": 1}}
    assert status["last_hour"]["index/indexed"] == status["last_day"]["index/indexed"] == 1234
    assert len(status["hourly"]) == 24
    assert [(f["id"], f["state"]) for f in status["feeds"]["attention"]] == [(feeds[1].id, "failing")]

    page = api.get("/ingest/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    cards = dict((label, int(n)) for n, label in re.findall(r"<b>(\d+)</b>([^<]+)</div>", html))
    assert cards == {"waiting": 3, "never read": 2, "stale": 1, "dead letters": 1, "indexed this hour": 1234,
                     "indexed in 24 h": 1234}
    assert "http_5xx" in html and feeds[1].id in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html  # what a feed said is escaped
    assert "1,234" in html  # the hour's row in the throughput table


def test_the_view_says_what_is_wrong_when_redis_is_down(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    _login(api)
    monkeypatch.setenv("INGEST_REDIS__URL", "redis://127.0.0.1:1/0")
    page = api.get("/ingest/")
    assert page.status_code == 503
    assert "Redis" in page.text and "INGEST_REDIS__URL" in page.text
    said = api.get("/ingest/status.json")
    assert said.status_code == 503 and said.json()["error"] in unescape(page.text)
    assert said.json()["light"] == "red"
    # what can still be known is said: the search server answers; each DAG as Airflow's database has it
    lines = said.json()["health"]
    assert [(c["name"], c["light"]) for c in lines][:2] == [("Redis", "red"), ("search server", "green")]
    assert [c["name"] for c in lines][2:] == [
        "DAG ingest_poll_feeds", "DAG ingest_process_articles", "DAG ingest_maintenance"]
