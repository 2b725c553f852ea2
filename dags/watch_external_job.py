"""Wait for a customization job submitted outside Airflow, then serve, evaluate and tear down.

wait_for_job (sensor, deferred) -> deploy (setup) -> evaluate -> undeploy (teardown)

For jobs started from the console, the AWS CLI, a notebook or another system: trigger the DAG
with the job's name or ARN (``{"job": "my-job"}``). The sensor waits in the triggerer, holding
no worker slot, and fails with Bedrock's ``failureMessage`` if the job fails; it never stops a
job it did not submit. The custom model is then served on demand, asked every holdout prompt
next to the baselines, and the deployment is deleted whatever happened.

What changes per run is a DAG param (trigger form in the UI); the environment keeps only the
deployment setting ``BEDROCK_FT_POLL_INTERVAL``. The sensor gives up after seven days (the
job keeps running).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Param

import airflow_bedrock_ft
from airflow_bedrock_ft.operators.evaluate import BedrockEvaluateOperator
from airflow_bedrock_ft.operators.serving import (
    BedrockCreateCustomModelDeploymentOperator,
    BedrockDeleteCustomModelDeploymentOperator,
)
from airflow_bedrock_ft.sensors.bedrock_ft import BedrockFineTuneJobCompletedSensor

DEMO_DATA = Path(airflow_bedrock_ft.__file__).parent / "data" / "demo"
POLL_INTERVAL = float(os.environ.get("BEDROCK_FT_POLL_INTERVAL", "60"))

with DAG(
    dag_id="bedrock_watch_external_job",
    description="Wait for a Bedrock customization job submitted elsewhere, then evaluate its model",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["bedrock", "evaluation", "example"],
    params={
        "job": Param(type="string", minLength=1,
                     description="Name or ARN of the model customization job to wait for."),
        "holdout": Param(str(DEMO_DATA / "validation.jsonl"), type="string",
                         description="Evaluation holdout: local path or s3:// (any training format)."),
        "baselines": Param(["base=meta.llama3-1-8b-instruct-v1:0"], type="array", items={"type": "string"},
                           description="Models to compare with, each MODEL or LABEL=MODEL."),
        "metrics": Param(["exact_match", "token_f1", "rouge_l", "chrf"], type="array",
                         items={"type": "string"}, description="Evaluation metrics."),
        "output_uri": Param(None, type=["string", "null"],
                            description="Where to write per-example results (s3:// or local path); "
                                        "empty for nowhere."),
    },
) as dag:
    # [START howto_sensor_external_job]
    wait_for_job = BedrockFineTuneJobCompletedSensor(
        task_id="wait_for_job",
        job_identifier="{{ params.job }}",
        poke_interval=POLL_INTERVAL,
        timeout=timedelta(days=7).total_seconds(),
    )
    # [END howto_sensor_external_job]

    deploy = BedrockCreateCustomModelDeploymentOperator(
        task_id="deploy",
        model_arn="{{ ti.xcom_pull(task_ids='wait_for_job')['custom_model_arn'] }}",
        poll_interval=POLL_INTERVAL,
    )
    evaluate = BedrockEvaluateOperator(
        task_id="evaluate",
        model="candidate={{ ti.xcom_pull(task_ids='deploy') }}",
        baselines="{{ params.baselines }}",
        data="{{ params.holdout }}",
        metrics="{{ params.metrics }}",
        max_tokens=64,
        output_uri="{{ params.output_uri or '' }}",
    )
    undeploy = BedrockDeleteCustomModelDeploymentOperator(
        task_id="undeploy",
        deployment="{{ ti.xcom_pull(task_ids='deploy', key='resource_arn') }}",
        poll_interval=POLL_INTERVAL,
    )

    wait_for_job >> deploy >> evaluate >> undeploy.as_teardown(setups=deploy)
