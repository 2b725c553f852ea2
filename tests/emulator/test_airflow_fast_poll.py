"""The lean GetModelCustomizationJob poll against the emulator over real HTTP.

It must return what the aiobotocore client returns, raise the errors the client raises, and
let the completion trigger survive throttling, 5xx and dropped-connection bursts.
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
    lean_job_getter,
)
from airflow_bedrock_ft.triggers.bedrock_ft import BedrockFineTuneJobCompletedTrigger

from .helpers import NO_RETRY, phase, wait_for

BURST_SECONDS = 3.0
MISSING_JOB = "no-such-job-0000"


class CountingHook(BedrockFineTuneHook):
    """The real hook, counting the errors its polls ran into and checking they were lean."""

    errors: list[str]
    lean_polls: int

    async def aget_job(self, job_identifier: str) -> dict[str, Any]:
        if await lean_job_getter(await self.get_shared_async_client()) is not None:
            self.lean_polls += 1
        try:
            return await super().aget_job(job_identifier)
        except Exception as exc:
            self.errors.append(type(exc).__name__)
            raise


async def _both_paths(aws_conn: str, job_identifier: str) -> tuple[Any, Any]:
    """(lean result or error, botocore result or error) for one job."""
    hook = BedrockFineTuneHook(aws_conn_id=aws_conn)
    try:
        client = await hook.get_shared_async_client()
        assert await lean_job_getter(client) is not None, "the emulator connection should poll lean"
        results: list[Any] = []
        for call in (
            lambda: hook.aget_job(job_identifier),
            lambda: client.get_model_customization_job(jobIdentifier=job_identifier),
        ):
            try:
                results.append(await call())
            except ClientError as exc:
                results.append(exc)
        return results[0], results[1]
    finally:
        await close_shared_async_clients()


def _held_job(emulator: Any, job_request: Any) -> str:
    emulator.set_config(hold_phases=["training"])
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    arn = bedrock.create_model_customization_job(**job_request())["jobArn"]
    wait_for(bedrock, arn, until=lambda j: phase(j, "training") == "InProgress")
    return arn


@pytest.mark.parametrize("state", ["running", "completed", "failed"])
def test_lean_poll_returns_what_botocore_returns(
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

    lean, full = asyncio.run(_both_paths(aws_conn, arn))
    full.pop("ResponseMetadata")
    assert lean == full
    assert job_summary(lean) == job_summary(full)
    assert isinstance(lean["creationTime"], type(full["creationTime"]))
    if state == "failed":
        assert job_summary(lean)["failure_message"] == "Training failed: bad data"


def test_lean_poll_by_name_matches_botocore(emulator: Any, job_request: Any, aws_conn: str) -> None:
    arn = _held_job(emulator, job_request)  # held, so the two polls see the same state
    name = emulator.client("bedrock", config=NO_RETRY).get_model_customization_job(jobIdentifier=arn)[
        "jobName"
    ]
    lean, full = asyncio.run(_both_paths(aws_conn, name))
    full.pop("ResponseMetadata")
    assert lean == full


def test_missing_job_raises_the_same_client_error(emulator: Any, aws_conn: str) -> None:
    lean, full = asyncio.run(_both_paths(aws_conn, MISSING_JOB))
    assert isinstance(lean, ClientError) and isinstance(full, ClientError)
    assert type(lean) is type(full)  # the client's modeled ResourceNotFoundException
    assert lean.response["Error"] == full.response["Error"]
    assert lean.response["Error"]["Code"] == "ResourceNotFoundException"
    assert lean.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert not is_transient_error(lean)


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
def test_trigger_survives_a_burst_through_the_lean_poll(
    emulator: Any, job_request: Any, aws_conn: str, fault: dict[str, Any]
) -> None:
    arn = _held_job(emulator, job_request)
    trigger = BedrockFineTuneJobCompletedTrigger(job_arn=arn, aws_conn_id=aws_conn, poll_interval=0.2)
    hook = CountingHook(aws_conn_id=aws_conn)
    hook.errors, hook.lean_polls = [], 0
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
    assert hook.lean_polls >= len(hook.errors) + 1


async def _events(trigger: BedrockFineTuneJobCompletedTrigger) -> list[dict[str, Any]]:
    return [event.payload async for event in trigger.run()]
