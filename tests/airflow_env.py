"""A private Airflow for the tests: its own AIRFLOW_HOME and SQLite database, the repo's dags/ and plugins/.

:func:`configure_airflow` must run before anything imports ``airflow`` (Airflow reads its configuration at
import time), so the conftests of ``tests/dags`` and ``tests/e2e`` call it when they are imported. It is
idempotent: every conftest of one session (and subprocesses started by the tests) share one home.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DAGS = REPO / "dags"
PLUGINS = REPO / "plugins"
AIRFLOW_BIN = Path(sys.executable).with_name("airflow")
_HOME_VAR = "INGEST_TEST_AIRFLOW_HOME"


def configure_airflow() -> Path:
    """Set the Airflow environment of this test session; returns AIRFLOW_HOME."""
    home = os.environ.get(_HOME_VAR)
    if home is None:
        home = tempfile.mkdtemp(prefix="ingest-airflow-")
        os.environ[_HOME_VAR] = home
        atexit.register(shutil.rmtree, home, ignore_errors=True)
    if "airflow" in sys.modules and os.environ.get("AIRFLOW_HOME") != home:
        raise RuntimeError("airflow was imported before tests/airflow_env.configure_airflow() ran")
    os.environ.update(
        {
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        }
    )
    return Path(home)


def migrate_airflow_db() -> None:
    """``airflow db migrate`` in a subprocess, once per AIRFLOW_HOME."""
    home = configure_airflow()
    marker = home / ".migrated"
    if marker.exists():
        return
    result = subprocess.run(
        [str(AIRFLOW_BIN), "db", "migrate"], capture_output=True, text=True, timeout=300, env=os.environ.copy()
    )
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    marker.touch()


def settings_env(settings: Any) -> dict[str, str]:
    """``INGEST_<SECTION>__<KEY>`` variables that make ``load_settings()`` return ``settings`` again."""
    env: dict[str, str] = {}
    for section, values in settings.model_dump(mode="json").items():
        for key, value in values.items():
            if value is not None:
                env[f"INGEST_{section.upper()}__{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


def use_settings(settings: Any, monkeypatch: Any, feeds: list[Any], folder: Path) -> Path:
    """Make the tasks' ``load_settings()`` return ``settings`` with a registry of ``feeds`` written in ``folder``
    (environment set through ``monkeypatch``, so undone after the test); returns the registry's path."""
    import yaml

    feeds_path = folder / "feeds.yaml"
    feeds_path.write_text(yaml.safe_dump({"feeds": [f.model_dump(mode="json") for f in feeds]}), encoding="utf-8")
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("INGEST_FEEDS__PATH", str(feeds_path))
    return feeds_path


def live_env(settings: Any, feeds: list[Any], folder: Path) -> tuple[dict[str, str], Path]:
    """The ``INGEST_*`` environment of a live Airflow's processes (``settings`` and a registry of ``feeds``
    written in ``folder``; no embedded-services state), and the registry's path (a test may rewrite it)."""
    import yaml

    feeds_path = folder / "feeds.yaml"
    feeds_path.write_text(yaml.safe_dump({"feeds": [f.model_dump(mode="json") for f in feeds]}), encoding="utf-8")
    env = settings_env(settings) | {"INGEST_FEEDS__PATH": str(feeds_path)}
    return {k: v for k, v in env.items() if not k.startswith("INGEST_EMBEDDED__")}, feeds_path
