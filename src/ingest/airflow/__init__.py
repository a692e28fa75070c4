"""The only part of ``ingest`` that knows Airflow: the assets the DAGs exchange (:mod:`ingest.airflow.assets`)
and the task bodies they call (:mod:`ingest.airflow.tasks`).

Nothing is imported here on purpose: DAG files import the submodule they need, and the scheduler parsing a
DAG file must not pay for the pipeline's heavy dependencies.
"""
