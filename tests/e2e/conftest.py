"""Airflow's environment is set when this conftest is imported, before any test module imports airflow;
the metadata database is migrated once per session and the processing pool created."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.airflow_env import configure_airflow, migrate_airflow_db

configure_airflow()


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[None]:
    """A migrated metadata database with the pipeline's pool (named by the ``airflow.pool`` setting)."""
    migrate_airflow_db()
    from airflow.models.pool import Pool

    from ingest.config import load_settings

    pool = load_settings().airflow
    Pool.create_or_update_pool(
        pool.pool, slots=pool.pool_slots, description="ingest: article processing", include_deferred=False
    )
    yield
