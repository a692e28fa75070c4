"""What Airflow's metadata database says of the pipeline's DAGs, for the pipeline view's health lines: paused or
not, import errors, the latest run's state and time, when the next scheduled run is due. Read-only; the rules
that turn this into green, amber and red are ``ingest.lights.dag_component``."""

from __future__ import annotations

from ingest.lights import DagInfo

# The DAGs of dags/, in the order of the flow.
PIPELINE_DAGS = ("ingest_poll_feeds", "ingest_process_articles", "ingest_maintenance")


def read_dags(dag_ids: tuple[str, ...] = PIPELINE_DAGS) -> list[DagInfo]:
    """One :class:`DagInfo` per DAG id (``found=False`` for a DAG Airflow does not know)."""
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    found: list[DagInfo] = []
    with create_session() as session:
        models = {m.dag_id: m for m in session.scalars(select(DagModel).where(DagModel.dag_id.in_(dag_ids)))}
        for dag_id in dag_ids:
            model = models.get(dag_id)
            if model is None or model.is_stale:
                found.append(DagInfo(dag_id, found=False))
                continue
            last = session.scalars(
                select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.run_after.desc()).limit(1)
            ).first()
            found.append(DagInfo(
                dag_id,
                paused=bool(model.is_paused),
                import_errors=bool(model.has_import_errors),
                scheduled=model.asset_expression is None,
                last_state=str(last.state) if last is not None and last.state is not None else None,
                last_at=(last.end_date or last.start_date or last.run_after) if last is not None else None,
                next_at=model.next_dagrun_create_after if model.asset_expression is None else None,
            ))
    return found
