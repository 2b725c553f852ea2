"""Fine-tune a base model on Amazon Bedrock, evaluate it, and promote it on the evidence.

create_bucket -> prepare_data -> fine_tune -> report_metrics -> get_incumbent -> plan_evaluation
  -> deploy_candidate (setup) + deploy_incumbent (setup; deploys nothing without an incumbent)
  -> evaluate -> quality_gate -> promote
  -> undeploy_candidate, undeploy_incumbent (teardowns: run whatever happened)

- ``prepare_data`` validates the raw data against the base model's rules, splits it (or
  takes the given validation file) and uploads it under content-addressed keys; bad data
  fails here, before any job exists.
- ``fine_tune`` submits the customization job (idempotent across retries) and waits for it
  in the triggerer, holding no worker slot.
- ``report_metrics`` reads the step-wise metrics the job wrote to S3, logs the summary
  figures and uploads the loss curves as a PNG next to the job's artifacts.
- ``get_incumbent`` finds the model in production for this pipeline's scope from the custom
  models' tags (no Airflow Variable); ``plan_evaluation`` declares the baselines and gates.
- ``deploy_candidate`` / ``deploy_incumbent`` serve the models on demand; the teardowns
  delete the deployments when the evaluation fails, the run is marked failed or a task is
  killed.
- ``evaluate`` sends every holdout prompt to the candidate, the base model (by its on-demand
  id) and the incumbent, and compares them with paired bootstrap intervals.
- ``quality_gate`` fails the run unless every gate passes (validation loss and the
  train/validation gap from ``report_metrics``, a minimum score,
  beating the base model by a margin with the interval's lower end above zero, and, when
  ``margin_over_incumbent`` is set and an incumbent exists, beating it too).
- ``promote`` tags the new model as the scope's production model, demotes the incumbent and
  emits the Asset event ``bedrock://custom-model/bedrock-fine-tune-pipeline/production``.

What changes per run (base model, data, hyperparameters, thresholds) is a DAG param: the
trigger form in the UI shows them. The environment keeps only deployment settings, so the
file runs unchanged against AWS or the local emulator (only the ``aws_default`` connection
differs):

- ``BEDROCK_FT_BUCKET`` (default ``bedrock-ft-demo``): bucket for data and job output;
- ``BEDROCK_FT_ROLE_ARN``: the service role Bedrock assumes to read and write the bucket;
- ``BEDROCK_FT_POLL_INTERVAL`` (seconds, default 60; the demo uses 2).
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
#: The registry scope this pipeline promotes in; schedule downstream DAGs on ``model_asset(SCOPE)``.
SCOPE = "bedrock-fine-tune-pipeline"
METRICS = ["exact_match", "token_f1", "rouge_l", "chrf"]

with DAG(
    dag_id="bedrock_fine_tune_pipeline",
    description="Prepare data, fine-tune on Bedrock, evaluate against the base model and the incumbent, promote",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["bedrock", "fine-tuning", "evaluation", "example"],
    params={
        "base_model": Param("meta.llama3-1-8b-instruct-v1:0:128k", type="string",
                            description="Base model to fine-tune (its customization id)."),
        "source": Param(str(DEMO_DATA / "train.jsonl"), type="string",
                        description="Raw training data: local path or s3:// file, folder or prefix."),
        "validation_source": Param(str(DEMO_DATA / "validation.jsonl"), type=["string", "null"],
                                   description="Validation data; empty to split it off the training data."),
        "holdout": Param(None, type=["string", "null"],
                         description="Evaluation holdout (local path or s3://); empty for the prepared "
                                     "validation split."),
        "epochs": Param(3, type="integer", minimum=1, description="Hyperparameter epochCount."),
        "learning_rate": Param(0.0001, type="number", exclusiveMinimum=0,
                               description="Hyperparameter learningRate."),
        "metrics": Param(METRICS, type="array", items={"type": "string"},
                         description="Evaluation metrics (built-in names or package.module:function)."),
        "gate_metric": Param("rouge_l", type="string", description="The metric the score gates use."),
        "max_validation_loss": Param(0.5, type="number", description="Gate: highest acceptable validation loss."),
        "max_train_validation_gap": Param(0.2, type="number",
                                          description="Gate: highest acceptable validation minus training loss."),
        "min_score": Param(0.5, type="number", description="Gate: lowest acceptable candidate score on gate_metric."),
        "margin_over_base": Param(0.1, type="number",
                                  description="Gate: the candidate must beat the base model on gate_metric by "
                                              "this much, with the paired interval above zero."),
        "margin_over_incumbent": Param(None, type=["number", "null"],
                                       description="Gate: when set and an incumbent exists, the candidate must "
                                                   "beat it by this much (interval above zero)."),
    },
) as dag:
    create_bucket = S3CreateBucketOperator(task_id="create_bucket", bucket_name=BUCKET)

    # [START howto_prepare_data]
    prepare_data = BedrockFineTunePrepareDataOperator(
        task_id="prepare_data",
        source="{{ params.source }}",
        validation_source="{{ params.validation_source or '' }}",
        validation_ratio=0.15,
        model="{{ params.base_model }}",
        output_s3_uri=f"s3://{BUCKET}/datasets/demo",
        hyperparameters={"epochCount": "{{ params.epochs }}"},
    )
    # [END howto_prepare_data]

    # [START howto_fine_tune]
    fine_tune = BedrockFineTuneCreateJobOperator(
        task_id="fine_tune",
        base_model="{{ params.base_model }}",
        training_data="{{ ti.xcom_pull(task_ids='prepare_data')['train_s3_uri'] }}",
        validation_data="{{ ti.xcom_pull(task_ids='prepare_data')['validation_s3_uri'] }}",
        output_s3_uri=f"s3://{BUCKET}/output/",
        role_arn=ROLE_ARN,
        hyperparameters={"epochCount": "{{ params.epochs }}", "learningRate": "{{ params.learning_rate }}"},
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

    get_incumbent = BedrockGetIncumbentOperator(task_id="get_incumbent", scope=SCOPE)

    @task(multiple_outputs=True)
    def plan_evaluation(incumbent: str | None, params: Any = None) -> dict[str, Any]:
        """The baselines to compare with and the gates to pass, from the params."""
        baselines = [f"base={params['base_model']}"]
        metric = params["gate_metric"]
        gates: dict[str, Any] = {
            "max_validation_loss": params["max_validation_loss"],
            "max_train_validation_gap": params["max_train_validation_gap"],
            "min_metric": {metric: params["min_score"]},
            "beats_baseline": [{"baseline": "base", "metric": metric, "margin": params["margin_over_base"]}],
        }
        if incumbent:
            baselines.append(f"incumbent={incumbent}")
            if params.get("margin_over_incumbent") is not None:
                gates["beats_baseline"].append(
                    {"baseline": "incumbent", "metric": metric, "margin": params["margin_over_incumbent"]})
        return {"baselines": baselines, "gates": gates}

    plan = plan_evaluation(get_incumbent.output)

    # [START howto_serve_and_evaluate]
    deploy_candidate = BedrockCreateCustomModelDeploymentOperator(
        task_id="deploy_candidate",
        model_arn="{{ ti.xcom_pull(task_ids='fine_tune')['custom_model_arn'] }}",
        poll_interval=POLL_INTERVAL,
    )
    deploy_incumbent = BedrockCreateCustomModelDeploymentOperator(
        task_id="deploy_incumbent",
        model_arn="{{ ti.xcom_pull(task_ids='get_incumbent') }}",
        # No incumbent yet: succeed with nothing deployed, so that the evaluation still runs.
        skip_without_model=False,
        poll_interval=POLL_INTERVAL,
    )
    evaluate = BedrockEvaluateOperator(
        task_id="evaluate",
        model="candidate={{ ti.xcom_pull(task_ids='deploy_candidate') }}",
        baselines=plan["baselines"],
        data="{{ params.holdout or ti.xcom_pull(task_ids='prepare_data')['validation_s3_uri'] }}",
        metrics="{{ params.metrics }}",
        max_tokens=64,
        concurrency=8,
        output_uri=f"s3://{BUCKET}/evaluation/{{{{ run_id }}}}/results.jsonl",
    )
    quality_gate = BedrockQualityGateOperator(
        task_id="quality_gate",
        gates=plan["gates"],
        metrics="{{ ti.xcom_pull(task_ids='report_metrics')['figures'] | tojson }}",
        evaluation=evaluate.output,
        mode="fail",
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
    # [END howto_serve_and_evaluate]
