"""Model distillation: a large teacher answers the prompts, a small student learns from it.

create_bucket -> prepare_data -> distill -> report

The training data holds prompts in the ``bedrock-conversation-2024`` format (one user turn,
optionally a "golden" assistant answer); Bedrock has the teacher generate the responses the
student is trained on. ``teacher_model`` makes the operator send ``customizationType``
DISTILLATION with the matching ``customizationConfig``.

The student, the teacher, the prompts and the response length are DAG params (the UI's
trigger form shows them); the environment keeps only deployment settings:
``BEDROCK_FT_BUCKET``, ``BEDROCK_FT_ROLE_ARN``, ``BEDROCK_FT_POLL_INTERVAL``.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.operators.s3 import S3CreateBucketOperator
from airflow.sdk import DAG, Param, task

import airflow_bedrock_ft
from airflow_bedrock_ft.operators.bedrock_ft import BedrockFineTuneCreateJobOperator
from airflow_bedrock_ft.operators.prepare import BedrockFineTunePrepareDataOperator

log = logging.getLogger(__name__)

DEMO_DATA = Path(airflow_bedrock_ft.__file__).parent / "data" / "demo"
BUCKET = os.environ.get("BEDROCK_FT_BUCKET", "bedrock-ft-demo")
ROLE_ARN = os.environ.get("BEDROCK_FT_ROLE_ARN", "arn:aws:iam::123456789012:role/BedrockFineTuneDemo")
POLL_INTERVAL = float(os.environ.get("BEDROCK_FT_POLL_INTERVAL", "60"))

with DAG(
    dag_id="bedrock_distillation",
    description="Distil a teacher model into a smaller student on Bedrock",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["bedrock", "distillation", "example"],
    params={
        "student_model": Param("amazon.nova-micro-v1:0:128k", type="string",
                               description="The model that learns (its customization id)."),
        "teacher_model": Param("amazon.nova-pro-v1:0", type="string",
                               description="The model that answers the prompts."),
        "prompts": Param(str(DEMO_DATA / "converse_train.jsonl"), type="string",
                         description="Prompts in bedrock-conversation-2024 format: local path or s3://."),
        "max_response_length": Param(1000, type="integer", minimum=1,
                                     description="maxResponseLengthForInference of the teacher."),
    },
) as dag:
    create_bucket = S3CreateBucketOperator(task_id="create_bucket", bucket_name=BUCKET)

    prepare_data = BedrockFineTunePrepareDataOperator(
        task_id="prepare_data",
        source="{{ params.prompts }}",
        model="{{ params.student_model }}",
        customization_type="DISTILLATION",
        output_s3_uri=f"s3://{BUCKET}/datasets/distillation",
    )

    distill = BedrockFineTuneCreateJobOperator(
        task_id="distill",
        base_model="{{ params.student_model }}",
        teacher_model="{{ params.teacher_model }}",
        max_response_length_for_inference="{{ params.max_response_length }}",
        training_data="{{ ti.xcom_pull(task_ids='prepare_data')['train_s3_uri'] }}",
        output_s3_uri=f"s3://{BUCKET}/distillation-output/",
        role_arn=ROLE_ARN,
        poll_interval=POLL_INTERVAL,
    )

    @task
    def report(job: dict[str, Any], params: Any = None) -> dict[str, Any]:
        """Log what the distillation produced."""
        log.info("Distilled %s from %s: training loss %s", job["custom_model_arn"], params["teacher_model"],
                 job["training_loss"])
        return {k: job[k] for k in ("custom_model_arn", "training_loss")}

    create_bucket >> prepare_data >> distill
    report(distill.output)
