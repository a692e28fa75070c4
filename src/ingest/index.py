"""Index stage: an ``Article`` becomes the document downstream consumers read, written idempotently."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from importlib import resources
from typing import Any

from ingest.models import Article, Entity

FACET_FIELDS = {"PER": "persons", "ORG": "organizations", "LOC": "locations", "MISC": "misc"}


def index_template(prefix: str) -> dict[str, Any]:
    """The index template kept in the repo, with the index name prefix filled in."""
    raw = resources.files("ingest").joinpath("index_template.json").read_text(encoding="utf-8")
    template: dict[str, Any] = json.loads(raw.replace("{prefix}", prefix))
    return template


def index_names(prefix: str, version: int = 1) -> tuple[str, str, str]:
    """``(concrete index, read alias, write alias)``."""
    return f"{prefix}-v{version}", prefix, f"{prefix}-write"


def to_document(article: Article, indexed_at: datetime, schema_version: int) -> dict[str, Any]:
    """The indexed document of an article (the data contract in ``docs/data-contract.md``)."""
    doc = article.model_dump(mode="json", exclude={"mentions"})
    doc["indexed_at"] = indexed_at.isoformat().replace("+00:00", "Z")
    doc["schema_version"] = schema_version
    doc["entities"] = [e.model_dump(mode="json") for e in article.entities]
    for label, field in FACET_FIELDS.items():
        doc[field] = _names(article.entities, label)
    doc["places"] = [p.model_dump(mode="json") for p in article.places]
    doc["enrichment"] = article.enrichment.model_dump(mode="json")
    return doc


def _names(entities: Sequence[Entity], label: str) -> list[str]:
    return [e.name for e in entities if e.label == label]
