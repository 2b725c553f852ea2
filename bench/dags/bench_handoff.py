"""One deferrable fine-tuning job and the task after it, for bench/bench_cluster_handoff.py."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_bedrock_ft.operators.bedrock_ft import BedrockFineTuneCreateJobOperator

BUCKET = os.environ.get("E2E_BUCKET", "bench-bucket")

with DAG(dag_id="bench_handoff", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    fine_tune = BedrockFineTuneCreateJobOperator(
        task_id="fine_tune",
        base_model="meta.llama3-1-8b-instruct-v1:0:128k",
        training_data=f"s3://{BUCKET}/data/train.jsonl",
        output_s3_uri=f"s3://{BUCKET}/output/",
        role_arn="arn:aws:iam::123456789012:role/BedrockBench",
        hyperparameters={"epochCount": 1},
        poll_interval=float(os.environ.get("BEDROCK_FT_POLL_INTERVAL", "2")),
        deferrable=True,
    )

    @task
    def next_step(result: dict[str, Any]) -> str:
        """The task whose start the benchmark times."""
        return str(result["job_arn"])

    next_step(fine_tune.output)
