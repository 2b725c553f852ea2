"""Every 30 minutes, stop Bedrock model customization jobs whose Airflow task instance has ended.

A deferred fine-tuning task marked failed before any triggerer picked it up, or one whose
worker died before it was marked failed, leaves its job training (and billing) with nobody to
stop it. This DAG finds such jobs by their identity tags and stops them; it never stops a job
whose task instance is live, cannot be found, or whose state Airflow cannot report, and never
touches jobs this plugin did not create.

Params (set them when triggering, or change the defaults here):

- ``stop``: stop the orphaned jobs (default True); False only reports what would be stopped.
- ``min_age``: keep jobs younger than this (default ``"10m"``), so that a task that has just
  submitted its job has time to record its own state.

Settings from the environment: ``BEDROCK_FT_NAMESPACE`` (the ``idempotency_namespace`` this
deployment's fine-tuning tasks use; default none), ``BEDROCK_FT_AWS_CONN_ID`` (default
``aws_default``).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from airflow_bedrock_ft.operators.reaper import BedrockFineTuneReapOrphanedJobsOperator

with DAG(
    dag_id="bedrock_reap_orphaned_jobs",
    description="Stop Bedrock customization jobs whose Airflow task instance has ended.",
    schedule=timedelta(minutes=30),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={
        "stop": Param(True, type="boolean", description="Stop orphaned jobs; False reports only."),
        "min_age": Param("10m", type="string", description="Keep jobs younger than this (600, 90s, 10m, 2h)."),
    },
    tags=["bedrock", "maintenance"],
) as dag:
    # [START howto_operator_bedrock_ft_reap]
    BedrockFineTuneReapOrphanedJobsOperator(
        task_id="reap_orphaned_jobs",
        stop="{{ params.stop }}",
        min_age="{{ params.min_age }}",
        namespace=os.environ.get("BEDROCK_FT_NAMESPACE") or None,
        aws_conn_id=os.environ.get("BEDROCK_FT_AWS_CONN_ID", "aws_default"),
        retries=0,
    )
    # [END howto_operator_bedrock_ft_reap]
