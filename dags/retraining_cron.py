"""Retrain every week on fresh data; promote the new model only when it beats the current one.

prepare_data -> fine_tune -> compare -> promote

- Each scheduled run fine-tunes on the data found under the source at that time; the job
  name derives from the run, so a retried or re-run task re-attaches to its week's job.
- ``compare`` reads the validation loss of the promoted model from an Airflow Variable;
  ``promote`` records the new model when it is better (or when none was promoted yet) and
  emits an Asset event, and is skipped otherwise, so downstream DAGs (deployment,
  evaluation) scheduled on the Asset run on promotion only.

Settings from the environment: ``BEDROCK_FT_BUCKET``, ``BEDROCK_FT_ROLE_ARN``,
``BEDROCK_FT_BASE_MODEL``, ``BEDROCK_FT_SOURCE`` (a file, folder or ``s3://`` prefix; default:
the demo data), ``BEDROCK_FT_POLL_INTERVAL``.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.operators.s3 import S3CreateBucketOperator
from airflow.sdk import DAG, Asset, Variable, task
from airflow.sdk.exceptions import AirflowSkipException

import airflow_bedrock_ft
from airflow_bedrock_ft.operators.bedrock_ft import BedrockFineTuneCreateJobOperator
from airflow_bedrock_ft.operators.prepare import BedrockFineTunePrepareDataOperator

log = logging.getLogger(__name__)

DEMO_DATA = Path(airflow_bedrock_ft.__file__).parent / "data" / "demo"
BUCKET = os.environ.get("BEDROCK_FT_BUCKET", "bedrock-ft-demo")
ROLE_ARN = os.environ.get("BEDROCK_FT_ROLE_ARN", "arn:aws:iam::123456789012:role/BedrockFineTuneDemo")
BASE_MODEL = os.environ.get("BEDROCK_FT_BASE_MODEL", "meta.llama3-1-8b-instruct-v1:0:128k")
SOURCE = os.environ.get("BEDROCK_FT_SOURCE", str(DEMO_DATA / "train.jsonl"))
POLL_INTERVAL = float(os.environ.get("BEDROCK_FT_POLL_INTERVAL", "60"))
PROMOTED_VARIABLE = "bedrock_retraining_promoted_model"
PROMOTED_MODEL = Asset("bedrock://custom-models/retraining-promoted")

with DAG(
    dag_id="bedrock_retraining_cron",
    description="Weekly fine-tuning on fresh data; promote only a better model",
    schedule="@weekly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["bedrock", "fine-tuning", "example"],
) as dag:
    create_bucket = S3CreateBucketOperator(task_id="create_bucket", bucket_name=BUCKET)

    prepare_data = BedrockFineTunePrepareDataOperator(
        task_id="prepare_data",
        source=SOURCE,
        model=BASE_MODEL,
        validation_ratio=0.15,
        seed="{{ ds_nodash }}",
        output_s3_uri=f"s3://{BUCKET}/datasets/retraining",
    )

    fine_tune = BedrockFineTuneCreateJobOperator(
        task_id="fine_tune",
        base_model=BASE_MODEL,
        training_data="{{ ti.xcom_pull(task_ids='prepare_data')['train_s3_uri'] }}",
        validation_data="{{ ti.xcom_pull(task_ids='prepare_data')['validation_s3_uri'] }}",
        output_s3_uri=f"s3://{BUCKET}/retraining-output/",
        role_arn=ROLE_ARN,
        hyperparameters={"epochCount": 2},
        job_tags={"pipeline": "bedrock_retraining_cron", "week": "{{ ds }}"},
        poll_interval=POLL_INTERVAL,
    )

    @task
    def compare(job: dict[str, Any]) -> dict[str, Any]:
        """Decide whether the new model beats the promoted one on validation loss."""
        current = json.loads(Variable.get(PROMOTED_VARIABLE, default="null") or "null")
        new_loss = job["validation_loss"]
        better = new_loss is not None and (current is None or new_loss < current["validation_loss"])
        log.info("Candidate %s (validation loss %s) vs promoted %s: %s", job["custom_model_arn"], new_loss,
                 current, "promote" if better else "keep")
        return {
            "promote": better,
            "custom_model_arn": job["custom_model_arn"],
            "validation_loss": new_loss,
            "job_arn": job["job_arn"],
        }

    @task(outlets=[PROMOTED_MODEL])
    def promote(decision: dict[str, Any], outlet_events: Any = None) -> dict[str, Any]:
        """Record the new model and emit the Asset event; skipped (no event) when not better."""
        if not decision["promote"]:
            raise AirflowSkipException("The promoted model is at least as good; keeping it.")
        promoted = {k: decision[k] for k in ("custom_model_arn", "validation_loss", "job_arn")}
        Variable.set(PROMOTED_VARIABLE, json.dumps(promoted))
        if outlet_events is not None:
            outlet_events[PROMOTED_MODEL].extra = promoted
        return promoted

    create_bucket >> prepare_data >> fine_tune
    promote(compare(fine_tune.output))
