"""A live Airflow (api-server, scheduler, dag-processor on loopback; LocalExecutor) runs the pipeline's three DAGs
on real services, and an operator opens the pipeline view in headless Chromium: after the poll DAG and the
asset-triggered process run, the health page shows what the index holds; with a DAG paused and then the search
server stopped, it turns red and says why. Screenshots are kept in INGEST_TEST_ARTIFACTS (default:
test-artifacts/ at the repository's root).

One Airflow start-up (about a minute) is shared by the tests of this module, which run in order.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.airflow_env import live_env
from tests.conftest import demo_feeds

from ingest.config import Settings, load_settings
from ingest.embedded.airflow import REPO, LocalAirflow
from ingest.embedded.fixture_server import FixtureServer
from ingest.embedded.services import free_port, spawn_search
from ingest.stores.elasticsearch import build_es_client

pytestmark = [pytest.mark.airflow, pytest.mark.browser]

ARTIFACTS = Path(os.environ.get("INGEST_TEST_ARTIFACTS", REPO / "test-artifacts"))
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@dataclass
class Live:
    airflow: LocalAirflow
    settings: Settings
    search: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def live(redis_url: str, fixture_server: FixtureServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """Airflow with the repository's DAGs and plugin, on the test Redis, a search server of this module's own
    (the last test stops it) and the demo's feeds on the loopback site."""
    folder = tmp_path_factory.mktemp("live")
    port = free_port()
    search = spawn_search(port)
    settings = load_settings(
        redis={"url": redis_url, "prefix": f"live{uuid.uuid4().hex[:6]}"},
        elasticsearch={"hosts": [f"http://127.0.0.1:{port}"], "server_mode": "serverless",
                       "index_prefix": f"live-{uuid.uuid4().hex[:6]}"},
        http={"allow_private": True, "timeout": 5.0, "connect_timeout": 2.0, "host_min_interval_seconds": 0.0},
        pipeline={"min_text_chars": 200},
    )
    env, _ = live_env(settings, demo_feeds(fixture_server.base_url), folder)
    airflow = LocalAirflow(folder / "airflow", free_port(), env, plugins=True, all_admins=False)
    try:
        airflow.start(settings.airflow.pool_slots, settings.airflow.pool)
        yield Live(airflow, settings, search)
    finally:
        airflow.stop()
        if search.poll() is None:
            search.terminate()
            search.wait(10)


@pytest.fixture(scope="module")
def browser(live: Live) -> Iterator[Any]:
    """Headless Debian Chromium driven by its chromedriver, logged in to Airflow as the UI's session is."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail("chromium and chromium-driver are not installed: `make test` installs them (Debian packages)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="ingest-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,1500",
                f"--user-data-dir={profile}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(f"{live.airflow.base}/ingest/status.json")  # a page of the site first: cookies belong to it
        driver.add_cookie({"name": "_token", "value": live.airflow.token(), "path": "/"})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait_for_run(airflow: LocalAirflow, dag_id: str, timeout: float = 420) -> dict[str, object]:
    """The first run of ``dag_id`` once it ended (the scheduler creates asset-triggered and scheduled runs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = airflow.runs(dag_id)
        if runs and runs[0]["state"] in ("success", "failed"):
            return runs[0]
        time.sleep(2)
    pytest.fail(f"no run of {dag_id} ended within {timeout:.0f} s; {airflow.runs(dag_id)}\n{airflow.logs()}")


def _settled(airflow: LocalAirflow, timeout: float = 420) -> None:
    """Wait until no run of the three DAGs is queued or running (the health lines then say "last run …")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [r for dag_id in ("ingest_poll_feeds", "ingest_process_articles", "ingest_maintenance")
                for r in airflow.runs(dag_id)]
        if all(r["state"] in ("success", "failed") for r in runs):
            return
        time.sleep(2)
    pytest.fail(f"runs still under way after {timeout:.0f} s\n{airflow.logs()}")


def _open(driver: Any, live: Live, shot: str) -> dict[str, tuple[str, str]]:
    """Load the pipeline view, keep a screenshot, and read its health lines: name → (light, summary)."""
    from selenium.webdriver.common.by import By

    driver.get(f"{live.airflow.base}/ingest/")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(ARTIFACTS / shot))
    rows = driver.find_elements(By.CSS_SELECTOR, "#health tr")
    lines = {}
    for row in rows:
        name, summary = (cell.text for cell in row.find_elements(By.TAG_NAME, "td")[:2])
        lines[name.strip()] = (row.get_attribute("data-light"), summary)
    return lines


def test_the_view_shows_what_a_live_run_indexed(live: Live, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    poll = live.airflow.run_once("ingest_poll_feeds", timeout=300)
    assert poll["state"] == "success", poll
    process = _wait_for_run(live.airflow, "ingest_process_articles")
    assert process["state"] == "success" and process["run_type"] == "asset_triggered", process
    if not live.airflow.runs("ingest_maintenance"):  # the scheduler usually starts one at once (catchup off)
        live.airflow.trigger("ingest_maintenance")
    maintenance = _wait_for_run(live.airflow, "ingest_maintenance")
    assert maintenance["state"] == "success", live.airflow.logs()
    _settled(live.airflow)  # a maintenance run that saw entries waiting wakes the process DAG once more

    es = build_es_client(live.settings.elasticsearch)
    es.indices.refresh(index=live.settings.elasticsearch.index_prefix)
    in_index = int(es.count(index=live.settings.elasticsearch.index_prefix)["count"])  # the read alias
    es.close()
    assert in_index == 7  # the demo's feeds: seven articles kept

    lines = _open(browser, live, "pipeline-view-after-a-run.png")
    cards = {label: int(n) for n, label in re.findall(
        r"<b>(\d+)</b>([^<]+)</div>", browser.page_source)}
    assert cards["indexed in 24 h"] == cards["indexed this hour"] == in_index
    assert cards["dead letters"] == 1 and cards["waiting"] == 0
    assert lines["Redis"][0] == lines["search server"][0] == "green"
    assert lines["queue"] == ("amber", "0 waiting; 7 indexed this hour; 1 dead letter(s): `ingest dlq list`, "
                                       "then `ingest dlq replay`")
    assert lines["feeds"][0] == "amber" and "1 failing" in lines["feeds"][1]  # the demo's dead feed
    assert lines["freshness"][0] == "green" and "queued → indexed p50 ≤" in lines["freshness"][1]
    for dag_id in ("ingest_poll_feeds", "ingest_process_articles", "ingest_maintenance"):
        light, summary = lines[f"DAG {dag_id}"]
        assert light == "green" and summary.startswith("last run success"), (dag_id, summary)
    assert "runs when the poll queues new entries" in lines["DAG ingest_process_articles"][1]
    assert "next run in" in lines["DAG ingest_poll_feeds"][1]
    overall = browser.find_element(By.ID, "overall")
    assert overall.text == "needs a look" and "amber" in overall.get_attribute("class")
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart rect.bar title")
    assert len(bars) == 24 and bars[-1].get_attribute("textContent").endswith(f": {in_index:,} indexed")
    # one link per DAG line, to the DAG's page in the UI (out of the frame the UI shows this page in)
    assert [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#health a")] == [
        f"{live.airflow.base}/dags/{dag_id}"
        for dag_id in ("ingest_poll_feeds", "ingest_process_articles", "ingest_maintenance")]
    failing = browser.find_element(By.ID, "failing")
    assert failing.location["y"] < browser.find_element(By.ID, "chart").location["y"]


def test_the_view_is_embedded_in_airflows_ui(live: Live, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{live.airflow.base}/plugin/ingest-pipeline")
    wait = WebDriverWait(browser, 60)
    frame = wait.until(expected_conditions.presence_of_element_located((By.TAG_NAME, "iframe")))
    assert frame.get_attribute("src").endswith("/ingest/")
    browser.switch_to.frame(frame)
    try:
        wait.until(expected_conditions.presence_of_element_located((By.ID, "health")))
        assert browser.find_element(By.ID, "overall").text == "needs a look"
    finally:
        browser.switch_to.default_content()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)  # whichever test runs first
    assert browser.save_screenshot(str(ARTIFACTS / "airflow-ui-pipeline-page.png"))


def test_a_paused_dag_turns_its_line_red(live: Live, browser: Any) -> None:
    with live.airflow.client() as client:
        client.patch("/api/v2/dags/ingest_maintenance", json={"is_paused": True}).raise_for_status()
    lines = _open(browser, live, "pipeline-view-dag-paused.png")
    light, summary = lines["DAG ingest_maintenance"]
    assert light == "red" and summary.startswith("paused: nothing runs"), summary
    assert lines["DAG ingest_poll_feeds"][0] == "green"


def test_with_the_search_server_stopped_the_view_is_red_and_says_why(live: Live, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    live.search.terminate()
    live.search.wait(10)
    lines = _open(browser, live, "pipeline-view-search-down.png")
    light, summary = lines["search server"]
    host = live.settings.elasticsearch.hosts[0]
    assert light == "red" and summary.startswith(f"the search server does not answer at {host}"), summary
    assert lines["Redis"][0] == "green"
    assert summary == (f"the search server does not answer at {host} ([Errno 111] Connection refused); check "
                       "INGEST_ELASTICSEARCH__HOSTS and that it runs; Redis' state cannot be compared with the index")
    assert browser.find_element(By.ID, "overall").text == "broken"
