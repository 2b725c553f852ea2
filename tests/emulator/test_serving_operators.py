"""Serving a custom model for evaluation and tearing it down, against the emulator over HTTP:
the create and delete operators (deferred through the resource trigger, and blocking), their
idempotency, their clean-up after their own failure, and the trigger's delete on a kill."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from unittest import mock

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowSkipException, TaskDeferred

from airflow_bedrock_ft.hooks.bedrock_ft import close_shared_async_clients
from airflow_bedrock_ft.operators.serving import (
    RESOURCE_ARN_KEY,
    BedrockCreateCustomModelDeploymentOperator,
    BedrockCreateProvisionedThroughputOperator,
    BedrockDeleteCustomModelDeploymentOperator,
    BedrockDeleteProvisionedThroughputOperator,
)
from airflow_bedrock_ft.triggers.bedrock_ft import BedrockResourceReadyTrigger

from .helpers import run_deferred_trigger, wait_for


@pytest.fixture
def model_arn(bedrock: Any, job_request: Any) -> str:
    """A custom model the emulator really trained."""
    job = wait_for(
        bedrock,
        bedrock.create_model_customization_job(**job_request(hyperParameters={"epochCount": "1"}))["jobArn"],
    )
    assert job["status"] == "Completed", job.get("failureMessage")
    return str(job["outputModelArn"])


@pytest.fixture
def context() -> dict[str, Any]:
    ti = mock.Mock(dag_id="eval_dag", task_id="deploy", run_id=f"manual__{uuid.uuid4().hex}", map_index=-1)
    return {"ti": ti}


def _pushed(context: dict[str, Any]) -> dict[str, Any]:
    return {c.kwargs["key"]: c.kwargs["value"] for c in context["ti"].xcom_push.call_args_list}


def _deployments(bedrock: Any) -> list[dict[str, Any]]:
    return bedrock.list_custom_model_deployments()["modelDeploymentSummaries"]


def test_deploy_deferred_then_teardown_deferred(emulator, bedrock, model_arn, aws_conn, context):
    emulator.set_config(time_scale=0.005)  # Creating lasts a few polls
    deploy = BedrockCreateCustomModelDeploymentOperator(
        task_id="deploy", model_arn=model_arn, poll_interval=0.2, aws_conn_id=aws_conn
    )
    with pytest.raises(TaskDeferred) as deferred:
        deploy.execute(context)  # type: ignore[arg-type]
    arn = _pushed(context)[RESOURCE_ARN_KEY]
    assert [d["status"] for d in _deployments(bedrock)] == ["Creating"]
    event = run_deferred_trigger(deferred.value)
    assert (event["status"], event["reason"], event["resource_status"]) == ("success", "ready", "Active")
    assert deploy.execute_complete(context, event) == arn  # type: ignore[arg-type]
    # The deployment serves the model.
    answer = emulator.client("bedrock-runtime").converse(
        modelId=arn, messages=[{"role": "user", "content": [{"text": "What language is spoken in Spain?"}]}]
    )
    assert answer["output"]["message"]["content"][0]["text"]

    # A retry of the same task run re-attaches: still one deployment.
    again = BedrockCreateCustomModelDeploymentOperator(
        task_id="deploy", model_arn=model_arn, poll_interval=0.2, aws_conn_id=aws_conn, deferrable=False
    )
    assert again.execute(context) == arn  # type: ignore[arg-type]
    assert len(_deployments(bedrock)) == 1

    undeploy = BedrockDeleteCustomModelDeploymentOperator(
        task_id="undeploy", deployment=arn, poll_interval=0.2, aws_conn_id=aws_conn
    )
    with pytest.raises(TaskDeferred) as deferred:
        undeploy.execute(context)  # type: ignore[arg-type]
    event = run_deferred_trigger(deferred.value)
    assert (event["status"], event["reason"]) == ("success", "deleted")
    assert undeploy.execute_complete(context, event) == arn  # type: ignore[arg-type]
    assert _deployments(bedrock) == []
    # Deleting again, or with nothing to delete (a skipped setup), is success.
    assert undeploy.execute(context) == arn  # type: ignore[arg-type]
    nothing = BedrockDeleteCustomModelDeploymentOperator(
        task_id="undeploy", deployment="None", aws_conn_id=aws_conn
    )
    assert nothing.execute(context) is None  # type: ignore[arg-type]


def test_no_model_skips_and_a_name_serving_another_model_is_refused(bedrock, model_arn, aws_conn, context):
    with pytest.raises(AirflowSkipException):
        BedrockCreateCustomModelDeploymentOperator(
            task_id="deploy", model_arn="None", aws_conn_id=aws_conn
        ).execute(context)  # type: ignore[arg-type]
    bedrock.create_custom_model_deployment(modelDeploymentName="taken", modelArn=model_arn)
    other = model_arn[:-12] + "zzzzzzzzzzzz"
    op = BedrockCreateCustomModelDeploymentOperator(
        task_id="deploy", model_arn=other, deployment_name="taken", aws_conn_id=aws_conn, deferrable=False
    )
    with pytest.raises(AirflowException, match="already exists and serves"):
        op.execute(context)  # type: ignore[arg-type]
    assert len(_deployments(bedrock)) == 1


def test_a_wait_that_times_out_deletes_what_it_created(emulator, bedrock, model_arn, aws_conn, context):
    emulator.set_config(time_scale=1.0)  # Creating lasts minutes
    op = BedrockCreateCustomModelDeploymentOperator(
        task_id="deploy", model_arn=model_arn, poll_interval=0.2, wait_timeout=1.0, aws_conn_id=aws_conn
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)  # type: ignore[arg-type]
    event = run_deferred_trigger(deferred.value)
    assert event["status"] == "timeout"
    with pytest.raises(AirflowException, match="was deleted"):
        op.execute_complete(context, event)  # type: ignore[arg-type]
    assert _deployments(bedrock) == []
    # Blocking, the same.
    blocking = BedrockCreateCustomModelDeploymentOperator(
        task_id="deploy",
        model_arn=model_arn,
        poll_interval=0.2,
        wait_timeout=1.0,
        aws_conn_id=aws_conn,
        deferrable=False,
    )
    with pytest.raises(AirflowException, match="was deleted"):
        blocking.execute(context)  # type: ignore[arg-type]
    assert _deployments(bedrock) == []


@pytest.mark.parametrize("ended", [True, False, None])
def test_the_trigger_deletes_on_a_kill_only_when_the_task_ended(
    emulator, bedrock, model_arn, aws_conn, ended
):
    emulator.set_config(time_scale=1.0)
    arn = bedrock.create_custom_model_deployment(modelDeploymentName="killed", modelArn=model_arn)[
        "customModelDeploymentArn"
    ]
    trigger = BedrockResourceReadyTrigger(
        kind="deployment", identifier=arn, delete_on_kill=True, aws_conn_id=aws_conn, poll_interval=0.2
    )

    async def kill() -> None:
        try:
            with mock.patch.object(
                BedrockResourceReadyTrigger, "_task_ended", mock.AsyncMock(return_value=ended)
            ):
                await trigger.on_kill()
        finally:
            await close_shared_async_clients()

    asyncio.run(kill())
    remaining = _deployments(bedrock)
    assert (remaining == []) is (ended is True), remaining


def test_provisioned_throughput_up_and_down(emulator, bedrock, model_arn, aws_conn, context):
    emulator.set_config(time_scale=0.0)
    create = BedrockCreateProvisionedThroughputOperator(
        task_id="provision", model_id=model_arn, poll_interval=0.2, aws_conn_id=aws_conn, deferrable=False
    )
    arn = create.execute(context)  # type: ignore[arg-type]
    summaries = bedrock.list_provisioned_model_throughputs()["provisionedModelSummaries"]
    assert [(s["provisionedModelArn"], s["status"]) for s in summaries] == [(arn, "InService")]
    delete = BedrockDeleteProvisionedThroughputOperator(
        task_id="unprovision",
        provisioned_model=arn,
        poll_interval=0.2,
        aws_conn_id=aws_conn,
        deferrable=False,
    )
    assert delete.execute(context) == arn  # type: ignore[arg-type]
    assert bedrock.list_provisioned_model_throughputs()["provisionedModelSummaries"] == []
