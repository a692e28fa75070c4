"""``ingest …``: the command line, calling the same code paths the DAGs run (``python -m ingest.cli`` too)."""

from __future__ import annotations

from ingest.cli.app import build_parser, main
from ingest.cli.tools import cmd_index_setup

__all__ = ["build_parser", "cmd_index_setup", "main"]
