"""JSON lines read from a file or a command's input: one object per non-blank line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from ingest.errors import ConfigError


def json_objects(lines: Iterable[str], source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each non-blank line's JSON object with its line number; a line that is not one is a ``ConfigError`` naming
    ``source`` and the line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{source}:{number}: not a JSON object ({e.msg}); expected one object per line") from e
        if not isinstance(value, dict):
            raise ConfigError(f"{source}:{number}: expected a JSON object per line")
        yield number, value
