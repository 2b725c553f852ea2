"""BedrockResourceReadyTrigger against the emulator over real HTTP: a custom model deployment
and a provisioned throughput become ready, then are deleted; the hook's calls create them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook, close_shared_async_clients
from airflow_bedrock_ft.triggers.bedrock_ft import BedrockResourceReadyTrigger

from .helpers import NO_RETRY, wait_for


@pytest.fixture
def model_arn(emulator: Any, job_request: Any) -> str:
    """A custom model trained by the emulator (time_scale 0, so only real compute)."""
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    job = wait_for(bedrock, bedrock.create_model_customization_job(**job_request())["jobArn"], timeout=120)
    assert job["status"] == "Completed", job
    return str(job["outputModelArn"])


async def _run(trigger: BedrockResourceReadyTrigger) -> list[dict[str, Any]]:
    try:
        return [event.payload async for event in trigger.run()]
    finally:
        await close_shared_async_clients()


def _round_trip(trigger: BedrockResourceReadyTrigger) -> BedrockResourceReadyTrigger:
    """The triggerer rebuilds the trigger from its serialized form: use that one."""
    from airflow.sdk.serde import deserialize, serialize

    classpath, kwargs = trigger.serialize()
    assert classpath.endswith(".BedrockResourceReadyTrigger")
    return BedrockResourceReadyTrigger(**deserialize(serialize(kwargs)))


def test_deployment_becomes_active_then_is_deleted(emulator: Any, model_arn: str, aws_conn: str) -> None:
    hook = BedrockFineTuneHook(aws_conn_id=aws_conn)
    emulator.set_config(time_scale=0.002)  # Creating for 480 s x 0.002 = 0.96 s
    arn = hook.create_deployment("dep-eval", model_arn, tags={"stage": "candidate"})
    assert hook.get_deployment(arn)["status"] == "Creating"

    started = time.monotonic()
    ready = _round_trip(
        BedrockResourceReadyTrigger(kind="deployment", identifier=arn, aws_conn_id=aws_conn, poll_interval=0.2)
    )
    (event,) = asyncio.run(_run(ready))
    assert time.monotonic() - started >= 0.5  # it really waited through Creating
    assert event["status"] == "success" and event["reason"] == "ready", event
    assert event["resource_status"] == "Active" and event["status_known"] is True
    assert event["resource_arn"] == arn and event["resource_name"] == "dep-eval"
    assert event["model_arn"] == model_arn
    assert hook.get_resource("deployment", "dep-eval")["status"] == "Active"

    gone = _round_trip(
        BedrockResourceReadyTrigger(
            kind="deployment", identifier=arn, wait_for="deleted", aws_conn_id=aws_conn, poll_interval=0.2
        )
    )

    async def delete_while_waiting() -> list[dict[str, Any]]:
        waiting = asyncio.ensure_future(_run(gone))
        await asyncio.sleep(0.6)
        assert not waiting.done(), "an Active deployment is not deleted"
        assert await asyncio.to_thread(hook.delete_deployment, arn) is True
        return await asyncio.wait_for(waiting, 30)

    (deleted,) = asyncio.run(delete_while_waiting())
    assert deleted["status"] == "success" and deleted["reason"] == "deleted", deleted
    assert deleted["resource_status"] is None
    assert hook.delete_deployment(arn) is False  # nothing left to delete
    assert emulator.client("bedrock", config=NO_RETRY).list_custom_model_deployments()[
        "modelDeploymentSummaries"
    ] == []


def test_provisioned_throughput_becomes_in_service_then_is_deleted(
    emulator: Any, model_arn: str, aws_conn: str
) -> None:
    hook = BedrockFineTuneHook(aws_conn_id=aws_conn)
    emulator.set_config(time_scale=0.001)  # Creating for 600 s x 0.001 = 0.6 s
    arn = hook.create_provisioned_throughput("pt-eval", model_arn, 1)
    assert hook.get_provisioned_throughput(arn)["status"] == "Creating"
    trigger = BedrockResourceReadyTrigger(
        kind="provisioned_throughput", identifier="pt-eval", aws_conn_id=aws_conn, poll_interval=0.2
    )
    (event,) = asyncio.run(_run(_round_trip(trigger)))
    assert event["status"] == "success" and event["resource_status"] == "InService", event
    assert event["resource_arn"] == arn

    async def delete_through_the_shared_client() -> bool:
        try:
            return await hook.adelete_resource("provisioned_throughput", arn)
        finally:
            await close_shared_async_clients()

    assert asyncio.run(delete_through_the_shared_client()) is True
    gone = BedrockResourceReadyTrigger(
        kind="provisioned_throughput", identifier=arn, wait_for="deleted", aws_conn_id=aws_conn, poll_interval=0.2
    )
    (deleted,) = asyncio.run(_run(gone))
    assert deleted["status"] == "success" and deleted["reason"] == "deleted"
    assert hook.delete_provisioned_throughput(arn) is False  # already gone


def test_waiting_for_a_missing_deployment_is_an_error_and_throttling_is_survived(
    emulator: Any, aws_conn: str
) -> None:
    emulator.set_faults(throttle={"count": 3, "operations": ["GetCustomModelDeployment"]})
    trigger = BedrockResourceReadyTrigger(
        kind="deployment", identifier="no-such-deployment", aws_conn_id=aws_conn, poll_interval=0.2, max_attempts=1
    )
    (event,) = asyncio.run(_run(trigger))
    # Three throttled polls did not use up max_attempts=1; the answer was "not found".
    assert event["status"] == "error" and event["reason"] == "not_found", event
    assert event["status_known"] is True
