"""Sweep learning rates with one fine-tuning job per value, then pick the best model.

create_bucket -> prepare_data -> grid -> fine_tune (mapped over the grid) -> pick_best

Each mapped task instance derives its own job name and ``clientRequestToken`` from its
``map_index``, so a retried instance re-attaches to its own job and never to a sibling's.
All jobs wait in the triggerer at the same time, holding no worker slot.

The base model, data, learning rates and epochs are DAG params (the UI's trigger form shows
them); the environment keeps only deployment settings: ``BEDROCK_FT_BUCKET``,
``BEDROCK_FT_ROLE_ARN``, ``BEDROCK_FT_POLL_INTERVAL``.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.operators.s3 import S3CreateBucketOperator
from airflow.sdk import DAG, Param, task

import airflow_bedrock_ft
from airflow_bedrock_ft.operators.bedrock_ft import BedrockFineTuneCreateJobOperator
from airflow_bedrock_ft.operators.prepare import BedrockFineTunePrepareDataOperator

DEMO_DATA = Path(airflow_bedrock_ft.__file__).parent / "data" / "demo"
BUCKET = os.environ.get("BEDROCK_FT_BUCKET", "bedrock-ft-demo")
ROLE_ARN = os.environ.get("BEDROCK_FT_ROLE_ARN", "arn:aws:iam::123456789012:role/BedrockFineTuneDemo")
POLL_INTERVAL = float(os.environ.get("BEDROCK_FT_POLL_INTERVAL", "60"))

with DAG(
    dag_id="bedrock_hyperparameter_sweep",
    description="One Bedrock fine-tuning job per learning rate; keep the lowest validation loss",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["bedrock", "fine-tuning", "example"],
    params={
        "base_model": Param("meta.llama3-1-8b-instruct-v1:0:128k", type="string",
                            description="Base model to fine-tune (its customization id)."),
        "source": Param(str(DEMO_DATA / "train.jsonl"), type="string",
                        description="Raw training data: local path or s3:// file, folder or prefix."),
        "learning_rates": Param([0.00001, 0.0001, 0.001], type="array", minItems=1,
                                items={"type": "number", "exclusiveMinimum": 0},
                                description="One fine-tuning job per learning rate."),
        "epochs": Param(2, type="integer", minimum=1, description="Hyperparameter epochCount of every job."),
    },
) as dag:
    create_bucket = S3CreateBucketOperator(task_id="create_bucket", bucket_name=BUCKET)

    prepare_data = BedrockFineTunePrepareDataOperator(
        task_id="prepare_data",
        source="{{ params.source }}",
        model="{{ params.base_model }}",
        output_s3_uri=f"s3://{BUCKET}/datasets/sweep",
        validation_ratio=0.15,
        seed=7,
    )

    @task
    def grid(params: Any = None) -> list[dict[str, Any]]:
        """The hyperparameters of each job, from the params."""
        return [{"epochCount": params["epochs"], "learningRate": lr} for lr in params["learning_rates"]]

    fine_tune = BedrockFineTuneCreateJobOperator.partial(
        task_id="fine_tune",
        base_model="{{ params.base_model }}",
        training_data="{{ ti.xcom_pull(task_ids='prepare_data')['train_s3_uri'] }}",
        validation_data="{{ ti.xcom_pull(task_ids='prepare_data')['validation_s3_uri'] }}",
        output_s3_uri=f"s3://{BUCKET}/sweep-output/",
        role_arn=ROLE_ARN,
        poll_interval=POLL_INTERVAL,
        job_tags={"pipeline": "bedrock_hyperparameter_sweep"},
    ).expand(hyperparameters=grid())

    @task
    def pick_best(results: list[dict[str, Any]]) -> dict[str, Any]:
        """The completed job with the lowest validation loss."""
        scored = [r for r in results if r.get("validation_loss") is not None]
        if not scored:
            raise ValueError("No job reported a validation loss")
        best = min(scored, key=lambda r: r["validation_loss"])
        return {
            "custom_model_arn": best["custom_model_arn"],
            "job_arn": best["job_arn"],
            "validation_loss": best["validation_loss"],
            "candidates": len(results),
        }

    create_bucket >> prepare_data >> fine_tune
    pick_best(fine_tune.output)
