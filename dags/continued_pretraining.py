"""Continued pre-training on unlabeled text: the base model reads domain text, no answers.

create_bucket -> prepare_data (text -> {"input": ...}) -> pretrain -> report

The raw data has no input/output pairs, so the prepare step builds each record from a
template over the source's fields. Titan Text G1 models accept CONTINUED_PRE_TRAINING.

The base model, data, template and hyperparameters are DAG params (the UI's trigger form
shows them); the environment keeps only deployment settings: ``BEDROCK_FT_BUCKET``,
``BEDROCK_FT_ROLE_ARN``, ``BEDROCK_FT_POLL_INTERVAL``.
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
    dag_id="bedrock_continued_pretraining",
    description="Continued pre-training of a Titan model on unlabeled domain text",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["bedrock", "continued-pre-training", "example"],
    params={
        "base_model": Param("amazon.titan-text-express-v1:0:8k", type="string",
                            description="Base model (a Titan Text G1 model accepts CONTINUED_PRE_TRAINING)."),
        "source": Param(str(DEMO_DATA / "train.jsonl"), type="string",
                        description="Raw unlabeled data: local path or s3:// file, folder or prefix."),
        "template": Param("{prompt} {completion}", type="string",
                          description="How each record's text is built from the source's fields."),
        "epochs": Param(1, type="integer", minimum=1, description="Hyperparameter epochCount."),
        "learning_rate": Param(0.00001, type="number", exclusiveMinimum=0,
                               description="Hyperparameter learningRate."),
    },
) as dag:
    create_bucket = S3CreateBucketOperator(task_id="create_bucket", bucket_name=BUCKET)

    prepare_data = BedrockFineTunePrepareDataOperator(
        task_id="prepare_data",
        source="{{ params.source }}",
        input_format="jsonl",
        model="{{ params.base_model }}",
        customization_type="CONTINUED_PRE_TRAINING",
        template={"input": "{{ params.template }}"},
        validation_ratio=0.1,
        output_s3_uri=f"s3://{BUCKET}/datasets/cpt",
    )

    pretrain = BedrockFineTuneCreateJobOperator(
        task_id="pretrain",
        base_model="{{ params.base_model }}",
        customization_type="CONTINUED_PRE_TRAINING",
        training_data="{{ ti.xcom_pull(task_ids='prepare_data')['train_s3_uri'] }}",
        validation_data="{{ ti.xcom_pull(task_ids='prepare_data')['validation_s3_uri'] }}",
        output_s3_uri=f"s3://{BUCKET}/cpt-output/",
        role_arn=ROLE_ARN,
        hyperparameters={"epochCount": "{{ params.epochs }}", "batchSize": 1,
                         "learningRate": "{{ params.learning_rate }}"},
        poll_interval=POLL_INTERVAL,
    )

    @task
    def report(job: dict[str, Any]) -> dict[str, Any]:
        """Log the losses the job reported."""
        log.info("Continued pre-training %s: training loss %s, validation loss %s",
                 job["custom_model_arn"], job["training_loss"], job["validation_loss"])
        return {k: job[k] for k in ("custom_model_arn", "training_loss", "validation_loss")}

    create_bucket >> prepare_data >> pretrain
    report(pretrain.output)
