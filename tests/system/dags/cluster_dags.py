"""A blocking (non-deferrable) fine-tuning task with retries, for the worker-crash test on the
local cluster: the wait runs on the Celery worker, so killing the worker kills the try."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_bedrock_ft.operators.bedrock_ft import BedrockFineTuneCreateJobOperator

BUCKET = os.environ.get("E2E_BUCKET", "e2e-bucket")

with DAG(dag_id="cluster_worker_kill", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    BedrockFineTuneCreateJobOperator(
        task_id="fine_tune",
        base_model="meta.llama3-1-8b-instruct-v1:0:128k",
        training_data=f"s3://{BUCKET}/data/train.jsonl",
        validation_data=f"s3://{BUCKET}/data/validation.jsonl",
        output_s3_uri=f"s3://{BUCKET}/output/",
        role_arn="arn:aws:iam::123456789012:role/BedrockE2E",
        hyperparameters={"epochCount": 1},
        poll_interval=1,
        deferrable=False,
        retries=2,
        retry_delay=timedelta(seconds=2),
    )
