"""Finding the embedded services a demo left running: ``<state dir>/services.json``, written by
``ingest.embedded.services.EmbeddedServices.start``, keeps each service's name, pid and URL until ``ingest stop``.
Standard library only: the settings resolution (``ingest.config.resolve_settings``) reads it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

STATE_FILE = "services.json"


@dataclass
class Service:
    name: str
    pid: int
    url: str


def state_file(state_dir: Path) -> Path:
    return state_dir.expanduser().resolve() / STATE_FILE


def running_services(state_dir: Path) -> list[Service]:
    """Services recorded as started under ``state_dir`` whose process is still alive."""
    path = state_file(state_dir)
    if not path.exists():
        return []
    rows = json.loads(path.read_text())
    return [Service(**row) for row in rows if alive(row["pid"])]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # a zombie left by a parent that did not wait is not alive
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "State:\tZ" not in status
