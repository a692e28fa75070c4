"""Airflow's environment is set when this conftest is imported, before any test module imports airflow."""

from __future__ import annotations

from tests.airflow_env import configure_airflow

configure_airflow()
