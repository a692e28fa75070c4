"""The data contract of the indexed document: its JSON Schema, shipped with the package.

The schema is written by hand next to ``docs/data-contract.md``; ``tests/unit/test_contract.py`` holds it to the
index template, the ``Article`` model and ``to_document`` field by field.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

SCHEMA_FILE = "document.schema.json"


def document_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the document ``to_document`` writes."""
    raw = resources.files("ingest.search_index").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(raw)
    return schema
