"""Model distillation: a large teacher answers the prompts, a small student learns from it.

create_bucket -> prepare_data -> distill -> report

The training data holds prompts in the ``bedrock-conversation-2024`` format (one user turn,
optionally a "golden" assistant answer); Bedrock has the teacher generate the responses the
student is trained on. ``teacher_model`` makes the operator send ``customizationType``
DISTILLATION with the matching ``customizationConfig``.

Settings from the environment: ``BEDROCK_FT_BUCKET``, ``BEDROCK_FT_ROLE_ARN``,
``BEDROCK_FT_STUDENT_MODEL`` (default ``amazon.nova-micro-v1:0:128k``),
``BEDROCK_FT_TEACHER_MODEL`` (default ``amazon.nova-pro-v1:0``), ``BEDROCK_FT_PROMPTS``
(default: the demo prompts), ``BEDROCK_FT_POLL_INTERVAL``.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.operators.s3 import S3CreateBucketOperator
from airflow.sdk import DAG, task

import airflow_bedrock_ft
from airflow_bedrock_ft.operators.bedrock_ft import BedrockFineTuneCreateJobOperator
from airflow_bedrock_ft.operators.prepare import BedrockFineTunePrepareDataOperator

log = logging.getLogger(__name__)

DEMO_DATA = Path(airflow_bedrock_ft.__file__).parent / "data" / "demo"
BUCKET = os.environ.get("BEDROCK_FT_BUCKET", "bedrock-ft-demo")
ROLE_ARN = os.environ.get("BEDROCK_FT_ROLE_ARN", "arn:aws:iam::123456789012:role/BedrockFineTuneDemo")
STUDENT = os.environ.get("BEDROCK_FT_STUDENT_MODEL", "amazon.nova-micro-v1:0:128k")
TEACHER = os.environ.get("BEDROCK_FT_TEACHER_MODEL", "amazon.nova-pro-v1:0")
PROMPTS = os.environ.get("BEDROCK_FT_PROMPTS", str(DEMO_DATA / "converse_train.jsonl"))
POLL_INTERVAL = float(os.environ.get("BEDROCK_FT_POLL_INTERVAL", "60"))

with DAG(
    dag_id="bedrock_distillation",
    description="Distil a teacher model into a smaller student on Bedrock",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["bedrock", "distillation", "example"],
) as dag:
    create_bucket = S3CreateBucketOperator(task_id="create_bucket", bucket_name=BUCKET)

    prepare_data = BedrockFineTunePrepareDataOperator(
        task_id="prepare_data",
        source=PROMPTS,
        model=STUDENT,
        customization_type="DISTILLATION",
        output_s3_uri=f"s3://{BUCKET}/datasets/distillation",
    )

    distill = BedrockFineTuneCreateJobOperator(
        task_id="distill",
        base_model=STUDENT,
        teacher_model=TEACHER,
        max_response_length_for_inference=1000,
        training_data="{{ ti.xcom_pull(task_ids='prepare_data')['train_s3_uri'] }}",
        output_s3_uri=f"s3://{BUCKET}/distillation-output/",
        role_arn=ROLE_ARN,
        poll_interval=POLL_INTERVAL,
    )

    @task
    def report(job: dict[str, Any]) -> dict[str, Any]:
        """Log what the distillation produced."""
        log.info("Distilled %s from %s: training loss %s", job["custom_model_arn"], TEACHER, job["training_loss"])
        return {k: job[k] for k in ("custom_model_arn", "training_loss")}

    create_bucket >> prepare_data >> distill
    report(distill.output)
