"""Polling through the shared public aiobotocore client against the emulator over real HTTP.

It must return what boto3 returns, raise the errors botocore raises (one attempt per call:
waits retry themselves), and let the completion trigger survive throttling, 5xx and
dropped-connection bursts.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from airflow_bedrock_ft.hooks.bedrock_ft import (
    BedrockFineTuneHook,
    close_shared_async_clients,
    is_transient_error,
    job_summary,
)
from airflow_bedrock_ft.triggers.bedrock_ft import BedrockFineTuneJobCompletedTrigger

from .helpers import NO_RETRY, phase, wait_for

BURST_SECONDS = 3.0
MISSING_JOB = "no-such-job-0000"


class CountingHook(BedrockFineTuneHook):
    """The real hook, counting the errors its polls ran into."""

    errors: list[str]

    async def aget_job(self, job_identifier: str) -> dict[str, Any]:
        try:
            return await super().aget_job(job_identifier)
        except Exception as exc:
            self.errors.append(type(exc).__name__)
            raise


async def _poll(aws_conn: str, job_identifier: str) -> Any:
    """The async poll's result, or the error it raised."""
    hook = BedrockFineTuneHook(aws_conn_id=aws_conn)
    try:
        return await hook.aget_job(job_identifier)
    except ClientError as exc:
        return exc
    finally:
        await close_shared_async_clients()


def _sync(emulator: Any, job_identifier: str) -> Any:
    try:
        job = emulator.client("bedrock", config=NO_RETRY).get_model_customization_job(
            jobIdentifier=job_identifier
        )
    except ClientError as exc:
        return exc
    job.pop("ResponseMetadata")
    return job


def _held_job(emulator: Any, job_request: Any) -> str:
    emulator.set_config(hold_phases=["training"])
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    arn = bedrock.create_model_customization_job(**job_request())["jobArn"]
    wait_for(bedrock, arn, until=lambda j: phase(j, "training") == "InProgress")
    return arn


@pytest.mark.parametrize("state", ["running", "completed", "failed"])
def test_async_poll_returns_what_boto3_returns(
    emulator: Any, job_request: Any, aws_conn: str, state: str
) -> None:
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    if state == "running":
        arn = _held_job(emulator, job_request)
    else:
        if state == "failed":
            emulator.set_faults(fail_jobs={"next": 1, "message": "Training failed: bad data"})
        arn = bedrock.create_model_customization_job(**job_request())["jobArn"]
        wait_for(bedrock, arn, until=lambda j: j["status"] in ("Completed", "Failed"))

    polled, synced = asyncio.run(_poll(aws_conn, arn)), _sync(emulator, arn)
    assert polled == synced
    assert "ResponseMetadata" not in polled
    assert job_summary(polled) == job_summary(synced)
    assert polled["creationTime"].tzinfo is not None
    if state == "failed":
        assert job_summary(polled)["failure_message"] == "Training failed: bad data"


def test_async_poll_by_name_matches_boto3(emulator: Any, job_request: Any, aws_conn: str) -> None:
    arn = _held_job(emulator, job_request)  # held, so the two polls see the same state
    name = _sync(emulator, arn)["jobName"]
    assert asyncio.run(_poll(aws_conn, name)) == _sync(emulator, name)


def test_missing_job_raises_the_same_client_error(emulator: Any, aws_conn: str) -> None:
    polled, synced = asyncio.run(_poll(aws_conn, MISSING_JOB)), _sync(emulator, MISSING_JOB)
    assert isinstance(polled, ClientError) and isinstance(synced, ClientError)
    assert type(polled).__name__ == type(synced).__name__ == "ResourceNotFoundException"
    assert polled.response["Error"] == synced.response["Error"]
    assert polled.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert not is_transient_error(polled)


@pytest.mark.parametrize(
    ("fault", "code", "status"),
    [
        ({"throttle": {"count": 1}}, "ThrottlingException", 429),
        ({"error_5xx": {"count": 1, "status": 503}}, "ServiceUnavailableException", 503),
        ({"error_5xx": {"count": 1, "status": 500}}, "InternalServerException", 500),
    ],
    ids=["429", "503", "500"],
)
def test_faults_raise_transient_client_errors(
    emulator: Any, job_request: Any, aws_conn: str, fault: dict[str, Any], code: str, status: int
) -> None:
    arn = _held_job(emulator, job_request)
    emulator.set_faults(**fault)

    async def poll() -> BaseException:
        hook = BedrockFineTuneHook(aws_conn_id=aws_conn)
        try:
            with pytest.raises(ClientError) as info:
                await hook.aget_job(arn)
            return info.value
        finally:
            await close_shared_async_clients()

    error = asyncio.run(poll())
    assert isinstance(error, ClientError)
    assert error.response["Error"]["Code"] == code
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert is_transient_error(error)


def test_dropped_connection_is_transient(emulator: Any, job_request: Any, aws_conn: str) -> None:
    arn = _held_job(emulator, job_request)
    # aiohttp resends an idempotent GET once by itself; a burst defeats that.
    emulator.set_faults(drop_connections={"burst_seconds": 2})

    async def poll() -> BaseException | None:
        hook = BedrockFineTuneHook(aws_conn_id=aws_conn)
        try:
            await hook.aget_job(arn)
        except Exception as exc:
            return exc
        finally:
            await close_shared_async_clients()
        return None

    error = asyncio.run(poll())
    assert error is not None and is_transient_error(error), repr(error)


@pytest.mark.parametrize(
    "fault",
    [
        {"throttle": {"burst_seconds": BURST_SECONDS}},
        {"error_5xx": {"burst_seconds": BURST_SECONDS, "status": 503}},
        {"error_5xx": {"burst_seconds": BURST_SECONDS, "status": 500}},
        {"drop_connections": {"burst_seconds": BURST_SECONDS}},
    ],
    ids=["throttling", "http-503", "http-500", "dropped-connections"],
)
def test_trigger_survives_a_burst_through_the_public_client(
    emulator: Any, job_request: Any, aws_conn: str, fault: dict[str, Any]
) -> None:
    arn = _held_job(emulator, job_request)
    trigger = BedrockFineTuneJobCompletedTrigger(job_arn=arn, aws_conn_id=aws_conn, poll_interval=0.2)
    hook = CountingHook(aws_conn_id=aws_conn)
    hook.errors = []
    trigger._hook = lambda: hook  # type: ignore[method-assign]

    async def scenario() -> list[dict[str, Any]]:
        emulator.set_faults(**fault)
        started = time.monotonic()
        try:
            waiting = asyncio.ensure_future(_events(trigger))
            await asyncio.sleep(BURST_SECONDS + 0.5)
            assert not waiting.done(), "the trigger gave up during the burst"
            emulator.set_config(hold_phases=[])
            events = await asyncio.wait_for(waiting, 60)
        finally:
            await close_shared_async_clients()
        assert time.monotonic() - started >= BURST_SECONDS
        return events

    (event,) = asyncio.run(scenario())
    assert event["status"] == "success", event
    assert event["job_status"] == "Completed"
    assert len(hook.errors) >= 2, hook.errors


async def _events(trigger: BedrockFineTuneJobCompletedTrigger) -> list[dict[str, Any]]:
    return [event.payload async for event in trigger.run()]
