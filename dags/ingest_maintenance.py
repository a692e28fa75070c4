"""Hourly housekeeping of the pending stream, dead letters on request, and feed health for operators.

``check_queue`` removes from the consumer group the consumers that hold nothing and sat idle (one per
``ingest process`` command would otherwise pile up), replays dead letters when the run is triggered with
``replay_reason`` (one reason, for example ``http_5xx``) or ``replay_all``, and reports the stream: entries
waiting, never read, left by a dead worker (``stale``), dead letters by reason. ``announce`` updates
``ingest_pending_articles`` when there is work the process DAG should take (entries never read, stale ones, or
replayed ones), so entries a failed run left behind are reclaimed without waiting for the next new article.
``check_feeds`` counts the feeds by state and lists the failing and dead ones (the task's return value and log).
``check_index`` looks up 1,000 of the articles Redis marks as indexed in the index and compares the state ids
both keep: it fails, saying what to run, when the index lost documents or Redis lost its state
(`ingest index verify --repair`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from ingest.airflow.assets import PENDING_ASSET

log = logging.getLogger(__name__)


@dag(
    dag_id="ingest_maintenance",
    # Deployed means running: a paused pipeline queues nothing and says nothing (README, "Airflow").
    is_paused_upon_creation=False,
    schedule=timedelta(hours=1),
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    default_args={"retries": 1, "retry_delay": timedelta(minutes=5)},
    params={
        "replay_reason": Param("", type="string", description="replay the dead letters of this reason (`ingest dlq "
                               "list` shows them), for example http_5xx; empty: none"),
        "replay_all": Param(False, type="boolean", description="replay every dead letter"),
    },
    tags=["ingest", "maintenance"],
    doc_md=__doc__,
)
def ingest_maintenance() -> None:
    @task
    def check_queue(*, params: Any = None) -> dict[str, Any]:
        from ingest.airflow.tasks import maintain_queue

        return maintain_queue(params["replay_reason"] or None, bool(params["replay_all"]))

    @task(outlets=[PENDING_ASSET])
    def announce(queue: dict[str, Any], *, outlet_events: Any = None) -> dict[str, Any]:
        if not queue["announce"]:
            raise AirflowSkipException("no entry waiting for the process DAG")
        extra = {k: queue[k] for k in ("pending", "unread", "stale", "replayed")}
        outlet_events[PENDING_ASSET].extra = {"source": "ingest_maintenance", **extra}
        return extra

    @task
    def check_feeds() -> dict[str, Any]:
        from ingest.airflow.tasks import check_feeds

        summary = check_feeds()
        for feed in summary["attention"]:
            log.warning("feed %s is %s: %s failure(s) since %s, last error: %s", feed["id"], feed["state"],
                        feed["consecutive_failures"], feed["failing_since"], feed["last_error"])
        return summary

    @task
    def check_index() -> dict[str, Any]:
        from ingest.airflow.tasks import check_index

        found = check_index()
        if found["problem"]:
            raise AirflowFailException(found["problem"])
        return found

    announce(check_queue())
    check_feeds()
    check_index()


ingest_maintenance()
