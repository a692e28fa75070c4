"""The feed registry: ``feeds.yaml`` read and validated, one clear error per bad row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ingest.errors import ConfigError
from ingest.models import FeedSource


def load_feeds(path: Path) -> list[FeedSource]:
    """Enabled and disabled feeds from a YAML file shaped ``feeds: [{id, url, name, ...}]``."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"feed registry {path} does not exist; set INGEST_FEEDS__PATH to your feeds.yaml") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"feed registry {path} is not valid YAML: {e}") from e
    return parse_feeds(raw, str(path))


def parse_feeds(raw: Any, where: str) -> list[FeedSource]:
    """Validate the registry's content; raises ``ConfigError`` naming every bad row."""
    rows = raw.get("feeds") if isinstance(raw, dict) else None
    if not isinstance(rows, list):
        raise ConfigError(f"{where}: expected a top-level 'feeds:' list")
    feeds: list[FeedSource] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, row in enumerate(rows, start=1):
        try:
            feed = FeedSource.model_validate(row)
        except ValidationError as e:
            first = e.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "row"
            problems.append(f"{where}: feed #{number}: {field}: {first['msg']}")
            continue
        if not feed.url.startswith(("http://", "https://")):
            problems.append(f"{where}: feed #{number} ({feed.id}): url must start with http:// or https://")
        elif feed.id in seen:
            problems.append(f"{where}: feed #{number}: duplicate id {feed.id!r}")
        else:
            seen.add(feed.id)
            feeds.append(feed)
    if problems:
        raise ConfigError("\n".join(problems))
    return feeds
