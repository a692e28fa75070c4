"""Poll the feed registry every 15 minutes into the pending stream; announce new work as an asset event.

The feeds are grouped into shards by host and the poll is mapped over shards, not feeds. ``announce``
updates ``ingest_pending_articles`` (with the counts in the event's extra) only when something was queued:
when nothing was, it is skipped and no event is emitted, so the process DAG does not run for nothing.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException

from ingest.airflow.assets import PENDING_ASSET

log = logging.getLogger(__name__)


@dag(
    dag_id="ingest_poll_feeds",
    # Deployed means running: a paused pipeline queues nothing and says nothing (README, "Airflow").
    is_paused_upon_creation=False,
    schedule=timedelta(minutes=15),
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1), "retry_exponential_backoff": True},
    tags=["ingest", "poll"],
    doc_md=__doc__,
)
def ingest_poll_feeds() -> None:
    @task
    def plan_shards() -> list[list[dict[str, Any]]]:
        from ingest.airflow.tasks import plan_poll_shards

        return plan_poll_shards()

    @task(max_active_tis_per_dagrun=8)
    def poll_shard(shard: list[dict[str, Any]]) -> dict[str, Any]:
        from ingest.airflow.tasks import poll_shard

        return poll_shard(shard)

    @task(outlets=[PENDING_ASSET])
    def announce(results: list[dict[str, Any]], *, outlet_events: Any = None) -> dict[str, Any]:
        from ingest.airflow.tasks import summarise_poll

        summary = summarise_poll(results[:])  # one slice request, not an iteration past the end (an error log)
        log.info("summary: %s", json.dumps(summary, sort_keys=True))
        if not summary["queued"]:
            # A skipped task emits no asset event: the process DAG is not triggered.
            raise AirflowSkipException("no new entries queued")
        outlet_events[PENDING_ASSET].extra = summary
        return summary

    announce(poll_shard.expand(shard=plan_shards()))


ingest_poll_feeds()
