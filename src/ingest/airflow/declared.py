"""What Airflow reads while it parses a DAG file or imports the plugin: the settings that shape the DAGs and the
UI (the processing pool's name, the Kibana link). From the environment alone, no I/O, so parsing stays cheap and
the same on every Airflow component; what a task does is decided by the settings it resolves when it runs
(``ingest.config.resolve_settings``)."""

from __future__ import annotations

from ingest.config import Settings, load_settings


def declared_settings() -> Settings:
    """The settings from the environment (``INGEST_*``), for DAG files and the plugin at import time."""
    return load_settings()
