"""Drain the pending stream into the search index whenever ``ingest_pending_articles`` is updated.

The work is mapped over batch workers (how many depends on the stream's length), all in one pool so the
fetch/NER/index load stays bounded. ``summarise`` updates ``ingest_indexed_articles`` with the counts when
documents were indexed.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException

from ingest.airflow.assets import INDEXED_ASSET, PENDING_ASSET
from ingest.airflow.declared import declared_settings

log = logging.getLogger(__name__)

# The pool's name is an operator's setting, read from the environment at parse time (no I/O).
POOL = declared_settings().airflow.pool


@dag(
    dag_id="ingest_process_articles",
    # Deployed means running: a paused pipeline queues nothing and says nothing (README, "Airflow").
    is_paused_upon_creation=False,
    schedule=[PENDING_ASSET],
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    default_args={"retries": 2, "retry_delay": timedelta(seconds=declared_settings().airflow.retry_delay_seconds),
                  "retry_exponential_backoff": True},
    tags=["ingest", "process"],
    doc_md=__doc__,
)
def ingest_process_articles() -> None:
    @task
    def prepare_index() -> dict[str, Any]:
        from ingest.airflow.tasks import prepare_index

        return prepare_index()

    @task
    def plan_batches() -> list[int]:
        from ingest.airflow.tasks import plan_batches

        return plan_batches()

    @task(pool=POOL, execution_timeout=timedelta(hours=1))
    def process_batch(worker: int) -> dict[str, Any]:
        from ingest.airflow.tasks import process_batch_worker

        return process_batch_worker(worker)

    @task(outlets=[INDEXED_ASSET])
    def summarise(results: list[dict[str, Any]], *, outlet_events: Any = None) -> dict[str, Any]:
        from ingest.airflow.tasks import summarise_process

        # One slice request: iterating the lazy sequence asks for one item past the end, which Airflow logs as an
        # error ("XCom not found") on every run.
        summary = summarise_process(results[:])
        log.info("summary: %s", json.dumps(summary, sort_keys=True))
        if not summary["indexed"]:
            # No new documents, no event for downstream consumers.
            raise AirflowSkipException(f"nothing indexed ({summary['dead_lettered']} dead-lettered)")
        outlet_events[INDEXED_ASSET].extra = summary
        return summary

    workers = plan_batches()
    prepare_index() >> workers
    summarise(process_batch.expand(worker=workers))


ingest_process_articles()
