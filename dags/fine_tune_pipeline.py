"""Fine-tune a base model on Amazon Bedrock, end to end.

create_bucket -> prepare_data -> fine_tune -> report_metrics -> quality_gate

- ``prepare_data`` validates the raw data against the base model's rules, splits it and
  uploads it under content-addressed keys; bad data fails here, before any job exists.
- ``fine_tune`` submits the customization job (idempotent across retries) and waits for it
  in the triggerer, holding no worker slot.
- ``report_metrics`` reads the step-wise metrics the job wrote to S3, logs the summary
  figures and per-epoch loss, and uploads the loss curves as a PNG next to the job's artifacts.
- ``quality_gate`` fails the run when the validation loss is above a threshold.

Runs unchanged against AWS or against the local emulator: only the ``aws_default``
connection differs. Settings come from the environment so the file can be copied as is:

- ``BEDROCK_FT_BUCKET`` (default ``bedrock-ft-demo``): bucket for data and job output;
- ``BEDROCK_FT_ROLE_ARN``: the service role Bedrock assumes to read and write the bucket;
- ``BEDROCK_FT_BASE_MODEL`` (default ``meta.llama3-1-8b-instruct-v1:0:128k``);
- ``BEDROCK_FT_SOURCE``: raw training data (local path or ``s3://``); defaults to the demo
  dataset shipped with the package;
- ``BEDROCK_FT_POLL_INTERVAL`` (seconds, default 60; the demo uses 2);
- ``BEDROCK_FT_MAX_VALIDATION_LOSS`` (default 10.0).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.operators.s3 import S3CreateBucketOperator
from airflow.sdk import DAG, task
from airflow.sdk.exceptions import AirflowFailException

import airflow_bedrock_ft
from airflow_bedrock_ft.operators.bedrock_ft import BedrockFineTuneCreateJobOperator
from airflow_bedrock_ft.operators.metrics import BedrockFineTuneMetricsOperator
from airflow_bedrock_ft.operators.prepare import BedrockFineTunePrepareDataOperator

DEMO_DATA = Path(airflow_bedrock_ft.__file__).parent / "data" / "demo"
BUCKET = os.environ.get("BEDROCK_FT_BUCKET", "bedrock-ft-demo")
ROLE_ARN = os.environ.get("BEDROCK_FT_ROLE_ARN", "arn:aws:iam::123456789012:role/BedrockFineTuneDemo")
BASE_MODEL = os.environ.get("BEDROCK_FT_BASE_MODEL", "meta.llama3-1-8b-instruct-v1:0:128k")
SOURCE = os.environ.get("BEDROCK_FT_SOURCE", str(DEMO_DATA / "train.jsonl"))
VALIDATION_SOURCE = os.environ.get("BEDROCK_FT_VALIDATION_SOURCE", str(DEMO_DATA / "validation.jsonl"))
POLL_INTERVAL = float(os.environ.get("BEDROCK_FT_POLL_INTERVAL", "60"))
MAX_VALIDATION_LOSS = float(os.environ.get("BEDROCK_FT_MAX_VALIDATION_LOSS", "10.0"))

with DAG(
    dag_id="bedrock_fine_tune_pipeline",
    description="Prepare data, fine-tune on Bedrock, read the metrics, gate on validation loss",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["bedrock", "fine-tuning", "example"],
) as dag:
    create_bucket = S3CreateBucketOperator(task_id="create_bucket", bucket_name=BUCKET)

    # [START howto_prepare_data]
    prepare_data = BedrockFineTunePrepareDataOperator(
        task_id="prepare_data",
        source=SOURCE,
        validation_source=VALIDATION_SOURCE,
        model=BASE_MODEL,
        output_s3_uri=f"s3://{BUCKET}/datasets/demo",
        hyperparameters={"epochCount": 3},
    )
    # [END howto_prepare_data]

    # [START howto_fine_tune]
    fine_tune = BedrockFineTuneCreateJobOperator(
        task_id="fine_tune",
        base_model=BASE_MODEL,
        training_data="{{ ti.xcom_pull(task_ids='prepare_data')['train_s3_uri'] }}",
        validation_data="{{ ti.xcom_pull(task_ids='prepare_data')['validation_s3_uri'] }}",
        output_s3_uri=f"s3://{BUCKET}/output/",
        role_arn=ROLE_ARN,
        hyperparameters={"epochCount": 3, "learningRate": 0.0001},
        job_tags={"pipeline": "bedrock_fine_tune_pipeline"},
        poll_interval=POLL_INTERVAL,
    )
    # [END howto_fine_tune]

    # [START howto_metrics]
    report_metrics = BedrockFineTuneMetricsOperator(
        task_id="report_metrics",
        job_arn="{{ ti.xcom_pull(task_ids='fine_tune')['job_arn'] }}",
        plot=True,
    )
    # [END howto_metrics]

    @task
    def quality_gate(metrics: dict[str, Any]) -> str:
        """Fail the run when the model did not learn well enough to promote."""
        loss = metrics["figures"]["final_validation_loss"]
        if loss is None or loss > MAX_VALIDATION_LOSS:
            raise AirflowFailException(
                f"Validation loss {loss} of {metrics['custom_model_arn']} is above the gate {MAX_VALIDATION_LOSS}"
            )
        return str(metrics["custom_model_arn"])

    create_bucket >> prepare_data >> fine_tune >> report_metrics
    quality_gate(report_metrics.output)
