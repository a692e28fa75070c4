"""The assets the ingest DAGs produce and consume.

``PENDING_ASSET`` is updated by ``ingest_poll_feeds`` when it queued new entries in the pending stream;
``ingest_process_articles`` is scheduled on it. ``INDEXED_ASSET`` is updated by ``ingest_process_articles``
when documents reached the index, for downstream consumers. Event ``extra`` carries the run's counts.
"""

from __future__ import annotations

from airflow.sdk import Asset

__all__ = ["INDEXED_ASSET", "PENDING_ASSET"]

PENDING_ASSET = Asset(
    name="ingest_pending_articles",
    uri="x-ingest://redis/stream/pending",
    group="ingest",
)

INDEXED_ASSET = Asset(
    name="ingest_indexed_articles",
    uri="x-ingest://search/articles",
    group="ingest",
)
