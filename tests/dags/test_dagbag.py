"""The DAG files load, are wired as the architecture says and stay cheap to parse; the plugin's links."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from datetime import timedelta

import pytest
from airflow.dag_processing.dagbag import DagBag
from tests.airflow_env import DAGS, PLUGINS

from ingest.airflow.assets import INDEXED_ASSET, PENDING_ASSET
from ingest.config import load_settings

POLL = "ingest_poll_feeds"
PROCESS = "ingest_process_articles"
MAINTENANCE = "ingest_maintenance"
# httpx is not listed: Airflow's Task SDK imports it itself.
HEAVY = ("spacy", "trafilatura", "elasticsearch", "feedparser", "redis", "ingest.pipeline")


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    pool = load_settings().airflow.pool
    return DagBag(dag_folder=DAGS, known_pools={"default_pool", pool})


def test_dag_files_import_without_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert {POLL, PROCESS, MAINTENANCE} <= set(dagbag.dag_ids)
    assert dagbag.dag_warnings == set()  # e.g. a task in a pool the settings do not name


def test_every_dag_runs_once_deployed(dagbag: DagBag) -> None:
    # Paused at creation, a triggered poll run would sit queued and nothing would say why.
    assert {dag_id: dagbag.dags[dag_id].is_paused_upon_creation for dag_id in (POLL, PROCESS, MAINTENANCE)} == {
        POLL: False, PROCESS: False, MAINTENANCE: False}


def test_poll_dag_is_scheduled_sharded_and_announces_the_pending_asset(dagbag: DagBag) -> None:
    dag = dagbag.dags[POLL]
    assert dag.catchup is False
    assert dag.schedule == timedelta(minutes=15)
    assert "ingest" in dag.tags
    poll = dag.task_dict["poll_shard"]
    assert poll.is_mapped
    assert dag.task_dict["plan_shards"].downstream_task_ids == {"poll_shard"}
    announce = dag.task_dict["announce"]
    assert announce.upstream_task_ids == {"poll_shard"}
    assert announce.outlets == [PENDING_ASSET]
    for task in dag.tasks:
        assert task.retries == 2, task.task_id
        assert task.retry_delay > timedelta(0), task.task_id


def test_process_dag_runs_on_the_asset_the_poll_dag_announces(dagbag: DagBag) -> None:
    dag = dagbag.dags[PROCESS]
    announced = dagbag.dags[POLL].task_dict["announce"].outlets
    assert dag.schedule == announced == [PENDING_ASSET]
    assert dag.max_active_runs == 1
    worker = dag.task_dict["process_batch"]
    assert worker.is_mapped
    assert worker.pool == load_settings().airflow.pool
    assert dag.task_dict["plan_batches"].downstream_task_ids == {"process_batch"}
    assert dag.task_dict["prepare_index"].downstream_task_ids == {"plan_batches"}
    assert dag.task_dict["summarise"].outlets == [INDEXED_ASSET]
    for task in dag.tasks:
        assert task.retries == 2, task.task_id


def test_maintenance_dag_is_hourly_replays_on_request_and_can_wake_the_process_dag(dagbag: DagBag) -> None:
    dag = dagbag.dags[MAINTENANCE]
    assert (dag.schedule, dag.catchup, dag.max_active_runs) == (timedelta(hours=1), False, 1)
    # Scheduled runs replay nothing: only a run triggered with one of these does.
    assert {k: dag.params[k] for k in ("replay_reason", "replay_all")} == {"replay_reason": "", "replay_all": False}
    assert dag.task_dict["check_queue"].downstream_task_ids == {"announce"}
    assert dag.task_dict["announce"].outlets == [PENDING_ASSET]  # what the process DAG is scheduled on
    assert "check_feeds" in dag.task_dict


def test_dag_files_do_not_import_the_pipeline_heavy_dependencies() -> None:
    # A fresh interpreter: this test process has imported plenty already.
    script = f"""
import json, runpy, sys
for path in {[str(p) for p in sorted(DAGS.glob("*.py"))]!r} + [{str(PLUGINS / "ingest_plugin.py")!r}]:
    runpy.run_path(path)
print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_airflow_loads_the_plugin_with_the_pipeline_view_and_a_kibana_link() -> None:
    from airflow import plugins_manager
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse

    [info] = [p for p in plugins_manager.get_plugin_info(["external_views", "fastapi_apps"]) if p["name"] == "ingest"]
    assert plugins_manager.get_import_errors() == {}
    pipeline, kibana = (ExternalViewResponse.model_validate(v) for v in info["external_views"])
    # The pipeline view: a page embedded in the UI, served by the plugin's app under /ingest on the API server.
    assert (pipeline.name, pipeline.href, pipeline.destination, pipeline.url_route) == (
        "Pipeline", "ingest/", "nav", "ingest-pipeline")
    assert [a["url_prefix"] for a in info["fastapi_apps"]] == ["/ingest"]
    # Kibana: a link in the navigation (no url_route, so not an embedded page).
    assert kibana.href == load_settings().kibana.url.rstrip("/") + "/app/discover"
    assert (kibana.destination, kibana.url_route) == ("nav", None)


def test_plugin_link_follows_the_kibana_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_KIBANA__URL", "https://kibana.example.org/")
    plugin = runpy.run_path(str(PLUGINS / "ingest_plugin.py"))["IngestPlugin"]
    assert plugin.name == "ingest"
    assert [v["href"] for v in plugin.external_views] == ["ingest/", "https://kibana.example.org/app/discover"]
