"""A private Airflow for ``bench_e2e.py``: LocalExecutor, SQLite in a temporary AIRFLOW_HOME, only the process DAG
in its DAGs folder, the ``ingest_processing`` pool with the settings' slots (2), every component on loopback.

Components (each its own process, so their CPU and memory are measured with the rest of Airflow's tree):
``airflow api-server`` (127.0.0.1, one worker: the REST API and the execution API the tasks talk to),
``airflow scheduler`` (runs the tasks through LocalExecutor) and ``airflow dag-processor``. Auth is off
(``SIMPLE_AUTH_MANAGER_ALL_ADMINS``): nothing listens beyond loopback.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DAG_ID = "ingest_process_articles"


class Airflow:
    def __init__(self, home: Path, port: int, ingest_env: Mapping[str, str]) -> None:
        self.home, self.port = home, port
        self.base = f"http://127.0.0.1:{port}"
        dags = home / "dags"
        dags.mkdir(parents=True, exist_ok=True)
        link = dags / f"{DAG_ID}.py"
        if not link.exists():
            link.symlink_to(REPO / "dags" / f"{DAG_ID}.py")
        self.env = {
            **os.environ, **ingest_env,
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": self.base,
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
        self.procs: list[subprocess.Popen[bytes]] = []

    def cli(self, *args: str, timeout: float = 600) -> None:
        result = subprocess.run([str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True,
                                timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}")

    def start(self, pool_slots: int, pool: str = "ingest_processing", timeout: float = 300) -> None:
        """Migrate the database, create the pool, start the components; wait until the DAG is parsed."""
        self.cli("db", "migrate")
        self.cli("pools", "set", pool, str(pool_slots), "bench_e2e")
        for component in (["api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
                          ["scheduler"], ["dag-processor"]):
            log = (self.home / f"{component[0]}.log").open("wb")
            self.procs.append(subprocess.Popen([str(BIN / "airflow"), *component], env=self.env, stdout=log,
                                               stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base, timeout=10, trust_env=False) as client:
            while time.monotonic() < deadline:
                for proc in self.procs:
                    if proc.poll() is not None:
                        raise RuntimeError(f"{proc.args[1]} exited with {proc.returncode}; see {self.home}")
                try:
                    r = client.get(f"/api/v2/dags/{DAG_ID}")
                    if r.status_code == 200:
                        if r.json().get("is_paused"):
                            client.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": False}).raise_for_status()
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(1.0)
        raise RuntimeError(f"the process DAG did not appear in Airflow within {timeout:.0f} s; logs in {self.home}")

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def run_once(self, timeout: float = 7200) -> dict[str, Any]:
        """Trigger one run of the process DAG and wait for its end; its state and task states."""
        with httpx.Client(base_url=self.base, timeout=30, trust_env=False) as client:
            r = client.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None})
            r.raise_for_status()
            run_id = r.json()["dag_run_id"]
            deadline = time.monotonic() + timeout
            state = "queued"
            while time.monotonic() < deadline:
                state = client.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}").json()["state"]
                if state in ("success", "failed"):
                    break
                time.sleep(0.5)
            tis = client.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances").json()
        states: dict[str, int] = {}
        for ti in tis.get("task_instances", []):
            key = f"{ti['task_id']}:{ti['state']}"
            states[key] = states.get(key, 0) + 1
        return {"run_id": run_id, "state": state, "tasks": states}

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, 15)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
        self.procs.clear()
