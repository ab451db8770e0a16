"""Airflow DAG: materialize pitstop's online store every 15 minutes, up to each run's interval end.

Materializing up to ``data_interval_end`` (not "now") makes every run exact: a retry or a backfill
of a past interval writes the same rows again, which the online store's event-time guard makes
harmless, and watermarks only move forward. ``max_active_runs=1`` keeps runs from overlapping.

The task runs ``pitstop`` on an Airflow worker that has it installed and can reach the registry,
Redis and the repo's data. To run it in the pitstop image instead, swap the BashOperator for a
KubernetesPodOperator (or DockerOperator) with ``arguments=["materialize", END]`` and the same
environment.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG

try:  # Airflow 3 moved the bash operator into the standard provider
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

PITSTOP_ENV = {
    "PITSTOP_REPO": "/opt/feature_repos/driver_ranking",
    "PITSTOP_REGISTRY_PATH": "postgresql://pitstop@pitstop-postgres:5432/pitstop",
    "PITSTOP_ONLINE_STORE_URL": "redis://pitstop-redis:6379/0",
}

with DAG(
    dag_id="pitstop_materialize",
    description="pitstop materialize-incremental up to each run's data interval end",
    schedule="*/15 * * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 3, "retry_delay": timedelta(minutes=1), "retry_exponential_backoff": True},
    tags=["pitstop"],
) as dag:
    BashOperator(
        task_id="materialize_incremental",
        bash_command='pitstop materialize-incremental "{{ data_interval_end.isoformat() }}"',
        # the registry password from an Airflow connection, never from the DAG file
        env={**PITSTOP_ENV, "PGPASSWORD": "{{ conn.pitstop_registry.password }}"},
        append_env=True,
        execution_timeout=timedelta(minutes=50),
    )
