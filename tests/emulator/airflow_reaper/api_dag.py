"""One task per task-instance state the reaper must judge; nothing runs them (no scheduler):
the tests set their states through the REST API or in the metadata database."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

STATES = ("success", "failed", "skipped", "upstream_failed", "deferred", "running", "queued",
          "up_for_retry", "restarting", "none")

with DAG(dag_id="reaper_states", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    for state in STATES:

        @task(task_id=f"t_{state}")
        def noop() -> None:
            """Never runs."""

        noop()
