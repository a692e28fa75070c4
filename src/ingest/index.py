"""Index stage: an ``Article`` becomes the document downstream consumers read, written idempotently."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ingest.dates import iso_utc
from ingest.lang import normalise_language
from ingest.models import Article, Entity

# The version of the document's contract (docs/data-contract.md, document.schema.json), written into every
# document. A code constant, not a setting: the template, the schema and this code change together.
SCHEMA_VERSION = 1
FACET_FIELDS = {"PER": "persons", "ORG": "organizations", "LOC": "locations", "MISC": "misc"}
# Languages analysed in their own right (index_template.json: ``i18n.<lang>.*``); the others are searched through
# the language-neutral analysis of ``title``, ``summary`` and ``text`` alone. docs/benchmarks.md ("Per-language
# analysis") measures this layout against multi-fields analysed every way for every document.
ANALYSED_LANGUAGES = ("fr", "en")
ANALYSED_FIELDS = ("title", "summary", "text")


def to_document(article: Article, indexed_at: datetime, schema_version: int = SCHEMA_VERSION) -> dict[str, Any]:
    """The indexed document of an article (the data contract in ``docs/data-contract.md``)."""
    doc = article.model_dump(mode="json", exclude={"mentions"})
    doc["indexed_at"] = iso_utc(indexed_at)
    doc["schema_version"] = schema_version
    doc["entities"] = [e.model_dump(mode="json") for e in article.entities]
    for label, field in FACET_FIELDS.items():
        doc[field] = _names(article.entities, label)
    doc["places"] = [p.model_dump(mode="json") for p in article.places]
    doc["enrichment"] = article.enrichment.model_dump(mode="json")
    doc["i18n"] = language_fields(article.language, doc)
    return doc


def language_fields(language: str | None, values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The search copy of the text fields (``values``: ``ANALYSED_FIELDS`` of a document) under the document's
    language, analysed for that language (French: elision, stop words, stemming, folding); empty for others."""
    code = normalise_language(language)
    if code not in ANALYSED_LANGUAGES:
        return {}
    return {code: {field: values.get(field) for field in ANALYSED_FIELDS}}


def _names(entities: Sequence[Entity], label: str) -> list[str]:
    return [e.name for e in entities if e.label == label]
