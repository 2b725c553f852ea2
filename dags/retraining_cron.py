"""Retrain every week on fresh data; promote the new model only when it is significantly better.

create_bucket -> prepare_data -> fine_tune -> report_metrics -> get_incumbent -> plan_evaluation
  -> deploy_candidate (setup) + deploy_incumbent (setup; deploys nothing without an incumbent)
  -> evaluate -> quality_gate (short-circuits) -> promote
  -> undeploy_candidate, undeploy_incumbent (teardowns)

- Each scheduled run fine-tunes on the data found under the source at that time; the job
  name derives from the run, so a retried or re-run task re-attaches to its week's job.
- ``get_incumbent`` finds the production model of the scope from the custom models' tags
  alone (no Airflow Variable).
- ``evaluate`` asks the candidate and the incumbent the same holdout prompts.
- ``quality_gate`` requires the absolute gates (validation loss, a minimum score) and, when
  an incumbent exists, that the candidate beats it on ``gate_metric`` by ``min_improvement``
  with the paired interval's lower end above zero. The first run, with no incumbent,
  promotes when the absolute gates pass. A candidate that does not pass skips ``promote``
  (the run still succeeds and the incumbent stays); the teardowns run either way.
- ``promote`` tags the new model as production, demotes the incumbent and emits the Asset
  event ``bedrock://custom-model/bedrock-retraining/production``, so downstream DAGs
  scheduled on it run on promotion only.

What changes per run is a DAG param (trigger form in the UI); the environment keeps only
deployment settings: ``BEDROCK_FT_BUCKET``, ``BEDROCK_FT_ROLE_ARN``, ``BEDROCK_FT_POLL_INTERVAL``.
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
from airflow_bedrock_ft.operators.evaluate import BedrockEvaluateOperator, BedrockQualityGateOperator
from airflow_bedrock_ft.operators.metrics import BedrockFineTuneMetricsOperator
from airflow_bedrock_ft.operators.prepare import BedrockFineTunePrepareDataOperator
from airflow_bedrock_ft.operators.registry import BedrockGetIncumbentOperator, BedrockPromoteModelOperator
from airflow_bedrock_ft.operators.serving import (
    BedrockCreateCustomModelDeploymentOperator,
    BedrockDeleteCustomModelDeploymentOperator,
)

DEMO_DATA = Path(airflow_bedrock_ft.__file__).parent / "data" / "demo"
BUCKET = os.environ.get("BEDROCK_FT_BUCKET", "bedrock-ft-demo")
ROLE_ARN = os.environ.get("BEDROCK_FT_ROLE_ARN", "arn:aws:iam::123456789012:role/BedrockFineTuneDemo")
POLL_INTERVAL = float(os.environ.get("BEDROCK_FT_POLL_INTERVAL", "60"))
#: The registry scope; schedule downstream DAGs on ``model_asset(SCOPE)``.
SCOPE = "bedrock-retraining"

with DAG(
    dag_id="bedrock_retraining_cron",
    description="Weekly fine-tuning on fresh data; promote only a significantly better model",
    schedule="@weekly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["bedrock", "fine-tuning", "evaluation", "example"],
    params={
        "base_model": Param("meta.llama3-1-8b-instruct-v1:0:128k", type="string",
                            description="Base model to fine-tune (its customization id)."),
        "source": Param(str(DEMO_DATA / "train.jsonl"), type="string",
                        description="Fresh training data: local path or s3:// file, folder or prefix."),
        "validation_ratio": Param(0.15, type="number", minimum=0, exclusiveMaximum=1,
                                  description="Share of the records held out for validation and evaluation."),
        "epochs": Param(2, type="integer", minimum=1, description="Hyperparameter epochCount."),
        "learning_rate": Param(0.0001, type="number", exclusiveMinimum=0,
                               description="Hyperparameter learningRate."),
        "gate_metric": Param("rouge_l", type="string", description="The metric the score gates use."),
        "max_validation_loss": Param(0.8, type="number", description="Gate: highest acceptable validation loss."),
        "min_score": Param(0.5, type="number", description="Gate: lowest acceptable candidate score."),
        "min_improvement": Param(0.02, type="number", minimum=0,
                                 description="Gate: the candidate must beat the incumbent on gate_metric by "
                                             "this much, with the paired interval above zero."),
    },
) as dag:
    create_bucket = S3CreateBucketOperator(task_id="create_bucket", bucket_name=BUCKET)

    prepare_data = BedrockFineTunePrepareDataOperator(
        task_id="prepare_data",
        source="{{ params.source }}",
        model="{{ params.base_model }}",
        validation_ratio="{{ params.validation_ratio }}",
        seed="{{ ds_nodash }}",
        output_s3_uri=f"s3://{BUCKET}/datasets/retraining",
        hyperparameters={"epochCount": "{{ params.epochs }}"},
    )

    fine_tune = BedrockFineTuneCreateJobOperator(
        task_id="fine_tune",
        base_model="{{ params.base_model }}",
        training_data="{{ ti.xcom_pull(task_ids='prepare_data')['train_s3_uri'] }}",
        validation_data="{{ ti.xcom_pull(task_ids='prepare_data')['validation_s3_uri'] }}",
        output_s3_uri=f"s3://{BUCKET}/retraining-output/",
        role_arn=ROLE_ARN,
        hyperparameters={"epochCount": "{{ params.epochs }}", "learningRate": "{{ params.learning_rate }}"},
        job_tags={"pipeline": "bedrock_retraining_cron", "week": "{{ ds }}"},
        poll_interval=POLL_INTERVAL,
    )

    report_metrics = BedrockFineTuneMetricsOperator(
        task_id="report_metrics", job_arn="{{ ti.xcom_pull(task_ids='fine_tune')['job_arn'] }}", plot=True,
    )

    get_incumbent = BedrockGetIncumbentOperator(task_id="get_incumbent", scope=SCOPE)

    @task(multiple_outputs=True)
    def plan_evaluation(incumbent: str | None, params: Any = None) -> dict[str, Any]:
        """Absolute gates always; beating the incumbent significantly when there is one."""
        metric = params["gate_metric"]
        gates: dict[str, Any] = {
            "max_validation_loss": params["max_validation_loss"],
            "min_metric": {metric: params["min_score"]},
        }
        baselines = []
        if incumbent:
            baselines.append(f"incumbent={incumbent}")
            gates["beats_baseline"] = [
                {"baseline": "incumbent", "metric": metric, "margin": params["min_improvement"]}]
        return {"baselines": baselines, "gates": gates}

    plan = plan_evaluation(get_incumbent.output)

    deploy_candidate = BedrockCreateCustomModelDeploymentOperator(
        task_id="deploy_candidate",
        model_arn="{{ ti.xcom_pull(task_ids='fine_tune')['custom_model_arn'] }}",
        poll_interval=POLL_INTERVAL,
    )
    deploy_incumbent = BedrockCreateCustomModelDeploymentOperator(
        task_id="deploy_incumbent",
        model_arn="{{ ti.xcom_pull(task_ids='get_incumbent') }}",
        skip_without_model=False,
        poll_interval=POLL_INTERVAL,
    )
    evaluate = BedrockEvaluateOperator(
        task_id="evaluate",
        model="candidate={{ ti.xcom_pull(task_ids='deploy_candidate') }}",
        baselines=plan["baselines"],
        data="{{ ti.xcom_pull(task_ids='prepare_data')['validation_s3_uri'] }}",
        metrics=["token_f1", "rouge_l", "chrf"],
        max_tokens=64,
        output_uri=f"s3://{BUCKET}/evaluation/retraining/{{{{ ds_nodash }}}}/results.jsonl",
    )
    quality_gate = BedrockQualityGateOperator(
        task_id="quality_gate",
        gates=plan["gates"],
        metrics="{{ ti.xcom_pull(task_ids='report_metrics')['figures'] | tojson }}",
        evaluation=evaluate.output,
        mode="short_circuit",
    )
    promote = BedrockPromoteModelOperator(
        task_id="promote",
        custom_model_arn="{{ ti.xcom_pull(task_ids='fine_tune')['custom_model_arn'] }}",
        scope=SCOPE,
        evaluation=evaluate.output,
        source_job_arn="{{ ti.xcom_pull(task_ids='fine_tune')['job_arn'] }}",
    )
    undeploy_candidate = BedrockDeleteCustomModelDeploymentOperator(
        task_id="undeploy_candidate",
        deployment="{{ ti.xcom_pull(task_ids='deploy_candidate', key='resource_arn') }}",
        poll_interval=POLL_INTERVAL,
    )
    undeploy_incumbent = BedrockDeleteCustomModelDeploymentOperator(
        task_id="undeploy_incumbent",
        deployment="{{ ti.xcom_pull(task_ids='deploy_incumbent', key='resource_arn') }}",
        poll_interval=POLL_INTERVAL,
    )

    create_bucket >> prepare_data >> fine_tune >> report_metrics >> get_incumbent
    plan >> [deploy_candidate, deploy_incumbent] >> evaluate >> quality_gate >> promote
    promote >> undeploy_candidate.as_teardown(setups=deploy_candidate)
    promote >> undeploy_incumbent.as_teardown(setups=deploy_incumbent)
