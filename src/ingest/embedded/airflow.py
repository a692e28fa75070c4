"""A private, live Airflow on loopback for the end-to-end benchmark and the browser test: LocalExecutor, SQLite in
its own AIRFLOW_HOME, the repository's DAGs (all, or those asked for) linked into its DAGs folder, the pipeline's
pool, and every component its own process: ``airflow api-server`` (127.0.0.1, one worker: the UI, the REST API,
the plugin's pipeline view and the execution API the tasks talk to), ``airflow scheduler`` and
``airflow dag-processor``.

Auth: either off (``all_admins``: every request is an admin; what a benchmark needs) or Airflow's simple auth
manager with one ``admin`` user whose generated password :meth:`LocalAirflow.token` trades for a JWT, as the UI's
login does. Nothing listens beyond loopback.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
DAG_IDS = ("ingest_poll_feeds", "ingest_process_articles", "ingest_maintenance")
COMPONENTS = ("api-server", "scheduler", "dag-processor")


class LocalAirflow:
    def __init__(self, home: Path, port: int, ingest_env: Mapping[str, str], dag_ids: Sequence[str] = DAG_IDS,
                 plugins: bool = False, all_admins: bool = True, airflow_env: Mapping[str, str] | None = None,
                 celery_workers: Mapping[str, Mapping[str, str]] | None = None) -> None:
        """``airflow_env``: more AIRFLOW__* settings (another executor, database); ``celery_workers``: name →
        its own environment, one ``airflow celery worker`` each (with CeleryExecutor in ``airflow_env``)."""
        self.home, self.port, self.dag_ids, self.all_admins = home, port, tuple(dag_ids), all_admins
        self.celery_workers = dict(celery_workers or {})
        self.base = f"http://127.0.0.1:{port}"
        dags = home / "dags"
        dags.mkdir(parents=True, exist_ok=True)
        for dag_id in self.dag_ids:
            link = dags / f"{dag_id}.py"
            if not link.exists():
                link.symlink_to(REPO / "dags" / f"{dag_id}.py")
        self.env = {
            **os.environ, **ingest_env,
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins" if plugins else home / "plugins"),
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
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": str(all_admins),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            **(airflow_env or {}),
        }
        self.procs: list[subprocess.Popen[bytes]] = []
        self.components: list[str] = []
        self.killed: set[str] = set()
        self._token: str | None = None

    def cli(self, *args: str, timeout: float = 600) -> None:
        result = subprocess.run([str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True,
                                timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}")

    def start(self, pool_slots: int, pool: str = "ingest_processing", timeout: float = 300) -> None:
        """Migrate the database, create the pool, start the components; wait until every DAG is parsed (and
        unpaused)."""
        self.cli("db", "migrate")
        self.cli("pools", "set", pool, str(pool_slots), "ingest: article processing")
        for component in COMPONENTS:
            args = [component, "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"] \
                if component == "api-server" else [component]
            self._spawn(component, args, self.env)
        for name, env in self.celery_workers.items():
            # One task at a time each; no log server (it binds every interface, and one port for all workers).
            self._spawn(f"celery-{name}", ["celery", "worker", "--celery-hostname", f"{name}@%h", "--concurrency",
                                           "1", "--skip-serve-logs", "--without-gossip", "--without-mingle"],
                        {**self.env, **env})
        deadline = time.monotonic() + timeout
        waiting = list(self.dag_ids)
        while waiting and time.monotonic() < deadline:
            self._check_alive()
            if not self.all_admins and not self._passwords.exists():  # the api-server writes it as it starts
                time.sleep(1.0)
                continue
            try:
                with self.client() as client:
                    r = client.get(f"/api/v2/dags/{waiting[0]}")
                    if r.status_code == 200:
                        if r.json().get("is_paused"):
                            client.patch(f"/api/v2/dags/{waiting[0]}", json={"is_paused": False}).raise_for_status()
                        waiting.pop(0)
                        continue
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        if waiting:
            raise RuntimeError(f"DAG {waiting[0]} did not appear in Airflow within {timeout:.0f} s; "
                               f"logs in {self.home}")

    def _spawn(self, component: str, args: list[str], env: Mapping[str, str]) -> None:
        log = (self.home / f"{component}.log").open("wb")
        self.procs.append(subprocess.Popen([str(BIN / "airflow"), *args], env=dict(env), stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True))
        self.components.append(component)

    def kill(self, component: str) -> None:
        """SIGKILL one component and its children (a Celery worker dies mid-task)."""
        proc = self.procs[self.components.index(component)]
        os.killpg(proc.pid, 9)
        proc.wait()
        self.killed.add(component)

    def token(self) -> str:
        """A JWT for the ``admin`` user (its password is the one the simple auth manager generated)."""
        if self._token is None:
            password = json.loads(self._passwords.read_text(encoding="utf-8"))["admin"]
            with httpx.Client(base_url=self.base, timeout=30, trust_env=False) as client:
                r = client.post("/auth/token", json={"username": "admin", "password": password})
                r.raise_for_status()
                self._token = str(r.json()["access_token"])
        return self._token

    @property
    def _passwords(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json.generated"

    def client(self) -> httpx.Client:
        """An HTTP client for the REST API, logged in unless every request is an admin."""
        headers = {} if self.all_admins else {"Authorization": f"Bearer {self.token()}"}
        return httpx.Client(base_url=self.base, timeout=30, trust_env=False, headers=headers)

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def trigger(self, dag_id: str, attempts: int = 5) -> str:
        """Queue a run of ``dag_id`` now; its run id. A 5xx is asked again a few times (seen once, on a machine
        loaded by a benchmark beside the test suite: the api-server answered 500 to the first trigger); a
        request it refused created no run. The last answer's error is raised."""
        with self.client() as client:
            for attempt in range(attempts):
                r = client.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None})
                if r.status_code < 500 or attempt == attempts - 1:
                    break
                time.sleep(2 * (attempt + 1))
            r.raise_for_status()
            return str(r.json()["dag_run_id"])

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """The runs of ``dag_id``, as the REST API lists them."""
        with self.client() as client:
            r = client.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100})
            r.raise_for_status()
            return list(r.json()["dag_runs"])

    def wait(self, dag_id: str, run_id: str, timeout: float = 7200) -> dict[str, Any]:
        """Wait for the end of a run; its state and how many task instances ended in each state."""
        deadline = time.monotonic() + timeout
        state = "queued"
        with self.client() as client:
            while time.monotonic() < deadline:
                self._check_alive()
                state = client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json()["state"]
                if state in ("success", "failed"):
                    break
                time.sleep(0.5)
            tis = client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()
        states: dict[str, int] = {}
        for ti in tis.get("task_instances", []):
            key = f"{ti['task_id']}:{ti['state']}"
            states[key] = states.get(key, 0) + 1
        return {"run_id": run_id, "state": state, "tasks": states}

    def run_once(self, dag_id: str, timeout: float = 7200) -> dict[str, Any]:
        """Trigger one run of ``dag_id`` and wait for its end."""
        return self.wait(dag_id, self.trigger(dag_id), timeout)

    def logs(self) -> str:
        """The last lines of each component's log, to say why something did not happen."""
        tails = []
        for component in self.components:
            path = self.home / f"{component}.log"
            if path.exists():
                tails.append(f"--- {component}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(tails)

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
        self.components.clear()

    def _check_alive(self) -> None:
        for component, proc in zip(self.components, self.procs, strict=True):
            if proc.poll() is not None and component not in self.killed:
                raise RuntimeError(f"airflow {component} exited with {proc.returncode}; logs in {self.home}")
