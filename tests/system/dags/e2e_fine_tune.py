"""One deferrable fine-tuning task, for end-to-end tests against a real scheduler and triggerer."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_bedrock_ft.operators.bedrock_ft import BedrockFineTuneCreateJobOperator

BUCKET = os.environ.get("E2E_BUCKET", "e2e-bucket")

with DAG(dag_id="e2e_fine_tune", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    BedrockFineTuneCreateJobOperator(
        task_id="fine_tune",
        base_model="meta.llama3-1-8b-instruct-v1:0:128k",
        training_data=f"s3://{BUCKET}/data/train.jsonl",
        validation_data=f"s3://{BUCKET}/data/validation.jsonl",
        output_s3_uri=f"s3://{BUCKET}/output/",
        role_arn="arn:aws:iam::123456789012:role/BedrockE2E",
        hyperparameters={"epochCount": 2},
        poll_interval=1,
        deferrable=True,
    )

with DAG(
    dag_id="e2e_mapped_timeout", schedule=None, start_date=datetime(2026, 1, 1), catchup=False
) as mapped_dag:
    # Two mapped jobs whose wait has a hard deferral deadline a few seconds out: with no
    # triggerer to report, the scheduler times the deferral out and each task instance must
    # stop its own job, found by its own map index.
    BedrockFineTuneCreateJobOperator.partial(
        task_id="fine_tune",
        base_model="meta.llama3-1-8b-instruct-v1:0:128k",
        training_data=f"s3://{BUCKET}/data/train.jsonl",
        validation_data=f"s3://{BUCKET}/data/validation.jsonl",
        output_s3_uri=f"s3://{BUCKET}/output/",
        role_arn="arn:aws:iam::123456789012:role/BedrockE2E",
        poll_interval=1,
        # Long enough for the scheduler to process the executor's report of the deferral
        # first (a deferral that times out before that is failed by Airflow itself).
        timeout=15,
        defer_timeout_grace=1,
        deferrable=True,
    ).expand(
        hyperparameters=[{"epochCount": 1, "learningRate": 1e-5}, {"epochCount": 1, "learningRate": 2e-5}]
    )

with DAG(
    dag_id="e2e_serving",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"model_arn": None},
) as serving_dag:
    # A deployment as the setup of a slow evaluation: whatever a user does to the evaluation
    # or the run, the teardown deletes the deployment.
    from airflow.sdk import task

    from airflow_bedrock_ft.operators.serving import (
        BedrockCreateCustomModelDeploymentOperator,
        BedrockDeleteCustomModelDeploymentOperator,
    )

    deploy = BedrockCreateCustomModelDeploymentOperator(
        task_id="deploy", model_arn="{{ params.model_arn }}", poll_interval=1
    )

    @task(task_id="evaluate")
    def slow_evaluation(arn: str) -> str:
        import time

        time.sleep(600)
        return arn

    undeploy = BedrockDeleteCustomModelDeploymentOperator(
        task_id="undeploy",
        deployment="{{ ti.xcom_pull(task_ids='deploy', key='resource_arn') }}",
        poll_interval=1,
    )
    slow_evaluation(deploy.output) >> undeploy.as_teardown(setups=deploy)
