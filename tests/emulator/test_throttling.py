"""API errors never stop a healthy job, and never delay noticing its end: against the emulator
over real HTTP, with its fault injection on GetModelCustomizationJob."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any
from unittest import mock

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_bedrock_ft.exceptions import JobTimeoutError
from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook, close_shared_async_clients
from airflow_bedrock_ft.operators.bedrock_ft import BedrockFineTuneCreateJobOperator
from airflow_bedrock_ft.triggers.bedrock_ft import BedrockFineTuneJobCompletedTrigger

from .helpers import NO_RETRY, NOVA, ROLE, phase, wait_for

POLLS_ONLY = ["GetModelCustomizationJob"]


@pytest.fixture
def context() -> dict[str, Any]:
    ti = mock.Mock(dag_id="tune_dag", task_id="tune", run_id=f"manual__{uuid.uuid4().hex}", map_index=-1)
    return {"ti": ti}


def _operator(bucket: str, aws_conn: str, **kwargs: Any) -> BedrockFineTuneCreateJobOperator:
    return BedrockFineTuneCreateJobOperator(
        task_id="tune",
        base_model=NOVA,
        training_data=f"s3://{bucket}/ft/train.jsonl",
        validation_data=f"s3://{bucket}/ft/validation.jsonl",
        output_s3_uri=f"s3://{bucket}/output/",
        role_arn=ROLE,
        hyperparameters={"epochCount": 2},
        aws_conn_id=aws_conn,
        **kwargs,
    )


def _status_by_list(emulator: Any, arn: str) -> str:
    """The job's status read through ListModelCustomizationJobs, which the faults spare."""
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    for summary in bedrock.list_model_customization_jobs(maxResults=100)["modelCustomizationJobSummaries"]:
        if summary["jobArn"] == arn:
            return str(summary["status"])
    raise AssertionError(f"job {arn} not listed")


async def _run(trigger: BedrockFineTuneJobCompletedTrigger) -> list[dict[str, Any]]:
    try:
        return [event.payload async for event in trigger.run()]
    finally:
        await close_shared_async_clients()


def test_throttling_past_the_attempt_budget_never_stops_the_job(
    emulator: Any, bucket: str, aws_conn: str, context: dict[str, Any]
) -> None:
    """Today's main: with a budget of 5 and 20 s of throttling the wait gives up after zero
    answered polls and stops a training job. Here every poll is throttled for 3 s, five times
    max_attempts * poll_interval: the wait gives up only at its deadline, says it does not know
    the job's state, and the job trains on."""
    emulator.set_config(hold_phases=["training"])
    kwargs: dict[str, Any] = dict(deferrable=True, poll_interval=0.2, max_attempts=3, timeout=3)
    with pytest.raises(TaskDeferred) as deferred:
        _operator(bucket, aws_conn, **kwargs).execute(context)  # type: ignore[arg-type]
    trigger = deferred.value.trigger
    assert isinstance(trigger, BedrockFineTuneJobCompletedTrigger)
    arn = trigger.job_arn
    emulator.set_faults(throttle={"rate": 1.0, "operations": POLLS_ONLY})

    started = time.monotonic()
    (event,) = asyncio.run(_run(trigger))
    assert time.monotonic() - started >= 2.5  # max_attempts (3 x 0.2 s) did not end it
    assert event["status"] == "timeout" and event["reason"] == "timeout"
    assert event["status_known"] is False and event["job_status"] is None

    # execute_complete runs in a fresh process, with the throttling still on.
    with pytest.raises(JobTimeoutError) as info:
        _operator(bucket, aws_conn, **kwargs).execute_complete(context, event)  # type: ignore[arg-type]
    message = str(info.value)
    assert "gave up without knowing the job's state" in message.lower()
    assert arn in message and "left running" in message
    assert _status_by_list(emulator, arn) == "InProgress"

    emulator.set_faults({})
    job = emulator.client("bedrock", config=NO_RETRY).get_model_customization_job(jobIdentifier=arn)
    assert job["status"] == "InProgress" and phase(job, "training") == "InProgress"


def test_blocking_wait_under_constant_throttling_gives_up_without_knowing(
    emulator: Any, job_request: Any, aws_conn: str
) -> None:
    emulator.set_config(hold_phases=["training"])
    arn = emulator.client("bedrock", config=NO_RETRY).create_model_customization_job(**job_request())["jobArn"]
    emulator.set_faults(throttle={"rate": 1.0, "operations": POLLS_ONLY})
    with pytest.raises(JobTimeoutError) as info:
        BedrockFineTuneHook(aws_conn_id=aws_conn).wait_for_job(arn, poll_interval=0.2, max_attempts=2, timeout=2)
    assert info.value.status_known is False and info.value.failed_polls >= 4
    assert "gave up without knowing the job's state" in str(info.value).lower()
    assert _status_by_list(emulator, arn) == "InProgress"


def test_detection_after_throttling_is_prompt(emulator: Any, job_request: Any, aws_conn: str) -> None:
    """The job ends while every poll is throttled; once the throttling stops, the event comes
    within about one poll interval, because the backoff never grows past one interval and
    resets on the first answer (today's main: up to 300 s)."""
    poll_interval = 1.0
    emulator.set_config(hold_phases=["training"])
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    arn = bedrock.create_model_customization_job(**job_request())["jobArn"]
    wait_for(bedrock, arn, until=lambda j: phase(j, "training") == "InProgress")
    trigger = BedrockFineTuneJobCompletedTrigger(job_arn=arn, aws_conn_id=aws_conn, poll_interval=poll_interval)

    async def scenario() -> tuple[dict[str, Any], float]:
        waiting = asyncio.ensure_future(_run(trigger))
        await asyncio.sleep(1.5)  # a couple of answered polls first
        throttled_at = time.monotonic()
        emulator.set_faults(throttle={"rate": 1.0, "operations": POLLS_ONLY})
        emulator.set_config(hold_phases=[])
        deadline = time.monotonic() + 60
        while await asyncio.to_thread(_status_by_list, emulator, arn) != "Completed":
            assert time.monotonic() < deadline, "the job did not complete"
            await asyncio.sleep(0.1)
        # At least 8 s of throttling in all. Today's main backs off 1, 2, 4, 8 s from the
        # first throttled poll, so its next poll would come 7 s or more after the end.
        await asyncio.sleep(max(0.0, throttled_at + 8.0 - time.monotonic()))
        assert not waiting.done()
        emulator.set_faults({})
        cleared_at = time.monotonic()
        (event,) = await asyncio.wait_for(waiting, 30)
        return event, time.monotonic() - cleared_at

    event, lag = asyncio.run(scenario())
    assert event["status"] == "success" and event["job_status"] == "Completed"
    assert lag <= poll_interval * 1.1 + 0.5, f"{lag:.2f} s from the end of the throttling to the event"
