"""The completion trigger against the local emulator over real HTTP (aiobotocore)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any

import pytest

from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook, close_shared_async_clients
from airflow_bedrock_ft.triggers.bedrock_ft import BedrockFineTuneJobCompletedTrigger

from .helpers import NO_RETRY, phase, wait_for

BURST_SECONDS = 5.0


class CountingHook(BedrockFineTuneHook):
    """The real hook, counting the errors its polls ran into."""

    errors: list[str]

    async def aget_job(self, job_identifier: str) -> dict[str, Any]:
        try:
            return await super().aget_job(job_identifier)
        except Exception as exc:
            self.errors.append(type(exc).__name__)
            raise


def _trigger(
    arn: str, aws_conn: str, **kwargs: Any
) -> tuple[BedrockFineTuneJobCompletedTrigger, CountingHook]:
    kwargs.setdefault("poll_interval", 0.2)
    trigger = BedrockFineTuneJobCompletedTrigger(job_arn=arn, aws_conn_id=aws_conn, **kwargs)
    hook = CountingHook(aws_conn_id=aws_conn)
    hook.errors = []
    trigger._hook = lambda: hook  # type: ignore[method-assign]
    return trigger, hook


async def _collect(trigger: BedrockFineTuneJobCompletedTrigger) -> list[dict[str, Any]]:
    try:
        return [event.payload async for event in trigger.run()]
    finally:
        await close_shared_async_clients()


def _post_faults(endpoint_url: str, fault: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"{endpoint_url}/_emulator/faults",
        data=json.dumps(fault).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def _held_job(emulator: Any, job_request: Any) -> str:
    emulator.set_config(hold_phases=["training"])
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    arn = bedrock.create_model_customization_job(**job_request())["jobArn"]
    wait_for(bedrock, arn, until=lambda j: phase(j, "training") == "InProgress")
    return arn


@pytest.mark.parametrize(
    "fault",
    [
        {"error_5xx": {"burst_seconds": BURST_SECONDS, "status": 500}},
        {"drop_connections": {"burst_seconds": BURST_SECONDS}},
    ],
    ids=["http-500", "dropped-connections"],
)
def test_survives_a_five_second_burst(
    emulator: Any, job_request: Any, aws_conn: str, fault: dict[str, Any]
) -> None:
    """The Amazon provider's trigger fails every deferred task on such a burst."""
    arn = _held_job(emulator, job_request)
    trigger, hook = _trigger(arn, aws_conn)

    async def scenario() -> list[dict[str, Any]]:
        # Through the admin endpoint, as an operator of a shared emulator would.
        await asyncio.to_thread(_post_faults, emulator.endpoint_url, fault)
        started = time.monotonic()
        waiting = asyncio.ensure_future(_collect(trigger))
        await asyncio.sleep(BURST_SECONDS + 0.5)
        assert not waiting.done(), "the trigger gave up during the burst"
        emulator.set_config(hold_phases=[])
        events = await asyncio.wait_for(waiting, 60)
        assert time.monotonic() - started >= BURST_SECONDS
        return events

    (event,) = asyncio.run(scenario())
    assert event["status"] == "success", event
    assert event["job_status"] == "Completed"
    assert len(hook.errors) >= 2, hook.errors


def test_failed_job_event_carries_failure_message(emulator: Any, job_request: Any, aws_conn: str) -> None:
    message = "Input size exceeded in file train.jsonl for record starting with..."
    emulator.set_faults(fail_jobs={"next": 1, "message": message})
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    arn = bedrock.create_model_customization_job(**job_request())["jobArn"]
    trigger, _ = _trigger(arn, aws_conn)
    (event,) = asyncio.run(_collect(trigger))
    assert event["status"] == "error" and event["reason"] == "failed"
    assert event["failure_message"] == message


def test_stopped_job_event(emulator: Any, job_request: Any, aws_conn: str) -> None:
    arn = _held_job(emulator, job_request)
    emulator.client("bedrock", config=NO_RETRY).stop_model_customization_job(jobIdentifier=arn)
    trigger, _ = _trigger(arn, aws_conn)
    (event,) = asyncio.run(_collect(trigger))
    assert event["status"] == "error" and event["reason"] == "stopped"
    assert event["job_status"] == "Stopped"


def test_deadline_gives_timeout_event_and_leaves_job_alone(
    emulator: Any, job_request: Any, aws_conn: str
) -> None:
    arn = _held_job(emulator, job_request)
    trigger, _ = _trigger(arn, aws_conn, timeout_at=time.time() + 1.0)
    (event,) = asyncio.run(_collect(trigger))
    assert event["status"] == "timeout" and event["job_status"] == "InProgress"
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    assert bedrock.get_model_customization_job(jobIdentifier=arn)["status"] == "InProgress"


def test_on_kill_after_user_action_stops_the_job(
    emulator: Any, job_request: Any, aws_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    # The task was marked failed: the API server already shows it so.
    monkeypatch.setattr(
        RuntimeTaskInstance, "get_ti_count", staticmethod(lambda **kwargs: int("failed" in kwargs["states"]))
    )
    arn = _held_job(emulator, job_request)
    trigger, _ = _trigger(arn, aws_conn)
    trigger.task_instance = SimpleNamespace(dag_id="d", task_id="t", run_id="r", map_index=-1)  # type: ignore[assignment]

    async def kill() -> None:
        try:
            await trigger.on_kill()
        finally:
            await close_shared_async_clients()

    asyncio.run(kill())
    assert wait_for(emulator.client("bedrock", config=NO_RETRY), arn)["status"] == "Stopped"


def test_triggerer_restart_and_reassignment_never_stop_the_job(
    emulator: Any, job_request: Any, aws_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancellation without on_kill (restart) and on_kill while the task is still deferred
    (the trigger moved to another triggerer) both leave the job running."""
    from types import SimpleNamespace

    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    # The task is still deferred, now on another triggerer.
    monkeypatch.setattr(
        RuntimeTaskInstance,
        "get_ti_count",
        staticmethod(lambda **kwargs: int("deferred" in kwargs["states"])),
    )
    arn = _held_job(emulator, job_request)
    trigger, hook = _trigger(arn, aws_conn, poll_interval=0.1)
    trigger.task_instance = SimpleNamespace(dag_id="d", task_id="t", run_id="r", map_index=-1)  # type: ignore[assignment]

    async def restart_then_reassign() -> None:
        running = asyncio.ensure_future(_collect(trigger))
        await asyncio.sleep(0.5)
        running.cancel()  # triggerer shutdown: cancelled, no on_kill
        with pytest.raises(asyncio.CancelledError):
            await running
        try:
            await trigger.on_kill()  # reassignment: on_kill although the task is still deferred
        finally:
            await close_shared_async_clients()

    asyncio.run(restart_then_reassign())
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    assert bedrock.get_model_customization_job(jobIdentifier=arn)["status"] == "InProgress"
    assert hook.errors == []
