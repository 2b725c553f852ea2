"""Task instances for the reaper to judge: one fails, one is later marked deferred, two mapped."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task
from airflow.sdk.exceptions import AirflowFailException

with DAG(dag_id="reaper_victim", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:

    @task
    def tune_failed() -> None:
        raise AirflowFailException("the worker of this try died; the task was marked failed")

    @task
    def tune_deferred() -> None:
        """Ends as success; the test then puts it in the deferred state, as a deferral would."""

    @task
    def tune_mapped(index: int) -> None:
        if index == 1:
            raise AirflowFailException("map index 1 fails")

    tune_failed()
    tune_deferred()
    tune_mapped.expand(index=[0, 1])
