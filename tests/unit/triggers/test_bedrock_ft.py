"""Unit tests of the Bedrock triggers: a fake hook, a recorded asyncio.sleep, no sockets."""

from __future__ import annotations

import asyncio
import json
import types
from typing import Any
from unittest import mock

import pytest
from airflow.sdk.serde import deserialize, serialize
from airflow.triggers.base import TriggerEvent
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from airflow_bedrock_ft.core.states import (
    DeploymentStatus,
    JobStatus,
    Outcome,
    ProvisionedThroughputStatus,
    classify,
    classify_resource,
)
from airflow_bedrock_ft.triggers import bedrock_ft as trigger_module
from airflow_bedrock_ft.triggers.bedrock_ft import (
    EVENT_STATUSES,
    BedrockFineTuneJobCompletedTrigger,
    BedrockResourceReadyTrigger,
)

ARN = (
    "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/amazon.nova-micro-v1:0:128k/abc123def456"
)
CLASSPATH = "airflow_bedrock_ft.triggers.bedrock_ft.BedrockFineTuneJobCompletedTrigger"
EVENT_KEYS = {
    "status",
    "reason",
    "message",
    "job_arn",
    "job_name",
    "job_status",
    "failure_message",
    "output_model_arn",
    "output_model_name",
    "training_loss",
    "validation_loss",
    "output_s3_uri",
    "phases",
    "end_time",
    "error_code",
    "status_known",
}


def _job(status: str = "InProgress", **extra: Any) -> dict[str, Any]:
    job = {
        "jobArn": ARN,
        "jobName": "job-1",
        "status": status,
        "outputDataConfig": {"s3Uri": "s3://b/out/"},
        "outputModelName": "model-1",
    }
    job.update(extra)
    return job


def _error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Get"
    )


class FakeHook:
    """Stands in for BedrockFineTuneHook: replays responses (dicts) or raises (exceptions)."""

    def __init__(self, responses: list[Any]) -> None:
        self.responses = list(responses)
        self.calls = 0
        self.stopped: list[str] = []

    async def aget_job(self, job_identifier: str) -> dict[str, Any]:
        assert job_identifier == ARN
        self.calls += 1
        item = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        if isinstance(item, BaseException):
            raise item
        return item

    async def astop_job(self, job_identifier: str) -> bool:
        self.stopped.append(job_identifier)
        return True


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []

    async def fake_sleep(delay: float, *args: Any) -> None:
        recorded.append(delay)

    monkeypatch.setattr(trigger_module.asyncio, "sleep", fake_sleep)
    return recorded


def _trigger(hook: FakeHook, **kwargs: Any) -> BedrockFineTuneJobCompletedTrigger:
    kwargs.setdefault("poll_interval", 60)
    trigger = BedrockFineTuneJobCompletedTrigger(job_arn=ARN, **kwargs)
    trigger._hook = lambda: hook  # type: ignore[method-assign]
    return trigger


async def _events(trigger: BedrockFineTuneJobCompletedTrigger) -> list[TriggerEvent]:
    return [event async for event in trigger.run()]


def _one(events: list[TriggerEvent]) -> dict[str, Any]:
    assert len(events) == 1, events
    payload = events[0].payload
    assert set(payload) == EVENT_KEYS
    assert payload["status"] in EVENT_STATUSES
    # Only JSON primitives cross the trigger boundary.
    assert json.loads(json.dumps(payload)) == payload
    return payload


# --- serialization ------------------------------------------------------------------------------


def test_serialize_classpath_and_round_trip_through_serde() -> None:
    trigger = BedrockFineTuneJobCompletedTrigger(
        job_arn=ARN,
        aws_conn_id="conn",
        region_name="eu-west-1",
        poll_interval=30,
        max_attempts=5,
        timeout_at=1_900_000_000.5,
        last_phase="validation=Completed",
        stop_on_kill=False,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == CLASSPATH
    rebuilt = type(trigger)(**deserialize(serialize(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs)
    assert type(trigger)(**kwargs).serialize() == (classpath, kwargs)


def test_serialize_uses_the_subclass_path() -> None:
    class Custom(BedrockFineTuneJobCompletedTrigger):
        """A user subclass."""

    classpath, _ = Custom(job_arn=ARN).serialize()
    assert classpath.endswith(".Custom")
    assert classpath.startswith(__name__)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"job_arn": ""},
        {"job_arn": ARN, "poll_interval": 0},
        {"job_arn": ARN, "poll_interval": True},
        {"job_arn": ARN, "max_attempts": 0},
        {"job_arn": ARN, "max_attempts": 2.5},
        {"job_arn": ARN, "timeout_at": "tomorrow"},
        {"job_arn": ARN, "aws_conn_id": 3},
    ],
)
def test_bad_kwargs_rejected_at_construction(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        BedrockFineTuneJobCompletedTrigger(**kwargs)


def test_constructor_builds_no_hook() -> None:
    """The hook is built inside run(), not __init__ (#35992)."""
    with mock.patch("airflow_bedrock_ft.hooks.bedrock_ft.BedrockFineTuneHook") as hook_cls:
        BedrockFineTuneJobCompletedTrigger(job_arn=ARN)
    hook_cls.assert_not_called()


# --- statuses -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(JobStatus))
async def test_every_status(status: JobStatus, sleeps: list[float]) -> None:
    """Every status of the enum is handled as classify() says, with one event."""
    hook = FakeHook(
        [_job(status.value, failureMessage="why" if status is JobStatus.FAILED else None), _job("Completed")]
    )
    payload = _one(await _events(_trigger(hook)))
    outcome = classify(status)
    if outcome is Outcome.RUNNING:
        assert hook.calls == 2 and payload["status"] == "success"
    elif outcome is Outcome.SUCCEEDED:
        assert hook.calls == 1 and payload["status"] == "success"
    else:
        assert hook.calls == 1 and payload["status"] == "error"
        assert payload["reason"] == status.value.lower()


async def test_success_event_carries_the_job_summary(sleeps: list[float]) -> None:
    done = _job(
        "Completed",
        outputModelArn="arn:aws:bedrock:us-east-1:123456789012:custom-model/x/1",
        trainingMetrics={"trainingLoss": 0.25},
        validationMetrics=[{"validationLoss": 0.5}],
    )
    payload = _one(await _events(_trigger(FakeHook([_job(), _job(), done]))))
    assert payload["status"] == "success"
    assert payload["reason"] == "completed"
    assert payload["job_arn"] == ARN
    assert payload["output_model_arn"].endswith("custom-model/x/1")
    assert payload["training_loss"] == 0.25
    assert payload["validation_loss"] == 0.5
    assert payload["output_s3_uri"] == "s3://b/out/"


async def test_failure_message_verbatim(sleeps: list[float]) -> None:
    message = "Unable to parse Amazon S3 file: train.jsonl. Data files must conform to JSONL format."
    payload = _one(await _events(_trigger(FakeHook([_job("Failed", failureMessage=message)]))))
    assert payload["status"] == "error"
    assert payload["failure_message"] == message
    assert message in payload["message"]
    assert payload["job_status"] == "Failed"


async def test_unknown_status_is_an_error_not_a_wait(sleeps: list[float]) -> None:
    payload = _one(await _events(_trigger(FakeHook([_job("Paused")]))))
    assert payload["status"] == "error"
    assert payload["reason"] == "unknown_status"
    assert sleeps == []


async def test_non_transient_api_error_is_an_error_event(sleeps: list[float]) -> None:
    payload = _one(await _events(_trigger(FakeHook([_job(), _error("AccessDeniedException", 403)]))))
    assert payload["status"] == "error"
    assert payload["reason"] == "api_error"
    assert payload["error_code"] == "AccessDeniedException"
    assert payload["job_arn"] == ARN


# --- polling and resilience ---------------------------------------------------------------------


async def test_polls_every_poll_interval_with_jitter(sleeps: list[float]) -> None:
    hook = FakeHook([_job()] * 20 + [_job("Completed")])
    _one(await _events(_trigger(hook)))
    assert len(sleeps) == 20
    assert all(54 <= s <= 66 for s in sleeps)
    assert len(set(sleeps)) > 1  # jittered, not lockstep


async def test_no_attempt_budget_by_default(sleeps: list[float]) -> None:
    """The Amazon provider's trigger gives up after 75 polls although the job still runs."""
    hook = FakeHook([_job()] * 1000 + [_job("Completed")])
    assert _one(await _events(_trigger(hook)))["status"] == "success"
    assert hook.calls == 1001


@pytest.mark.parametrize(
    "failure",
    [
        _error("InternalServerException", 500),
        _error("ServiceUnavailableException", 503),
        _error("ThrottlingException", 429),
        EndpointConnectionError(endpoint_url="http://x"),
        ConnectionClosedError(endpoint_url="http://x"),
        ConnectionResetError(),
    ],
)
async def test_burst_of_transient_errors_is_survived_with_growing_delay(
    failure: BaseException, sleeps: list[float]
) -> None:
    """The Amazon provider's trigger fails on the first 500 or dropped connection."""
    hook = FakeHook([_job()] + [failure] * 6 + [_job("Completed")])
    payload = _one(await _events(_trigger(hook)))
    assert payload["status"] == "success"
    backoff = sleeps[1:]
    assert len(backoff) == 6
    # 5, 10, 20, 40 s, then capped at one poll interval (all ±10 %).
    assert all(b < a for a, b in zip(backoff[1:5], backoff[:4], strict=True))
    assert backoff[0] <= 5.5
    assert all(54 <= b <= 66 for b in backoff[4:])


async def test_transient_errors_never_fatal_even_for_hours(sleeps: list[float]) -> None:
    hook = FakeHook([_error("InternalServerException", 500)] * 200 + [_job("Completed")])
    assert _one(await _events(_trigger(hook)))["status"] == "success"
    assert max(sleeps) <= 300 * 1.1


async def test_max_attempts_gives_a_timeout_event(sleeps: list[float]) -> None:
    hook = FakeHook([_job()])
    payload = _one(await _events(_trigger(hook, max_attempts=3)))
    assert payload["status"] == "timeout"
    assert payload["reason"] == "max_attempts"
    assert payload["job_status"] == "InProgress"
    assert hook.calls == 3


async def test_timeout_at_gives_a_timeout_event_with_fresh_status(
    sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(trigger_module.time, "time", lambda: now[0])

    async def advancing_sleep(delay: float, *args: Any) -> None:
        sleeps.append(delay)
        now[0] += delay

    monkeypatch.setattr(trigger_module.asyncio, "sleep", advancing_sleep)
    hook = FakeHook([_job()])
    payload = _one(await _events(_trigger(hook, timeout_at=1100.0)))
    assert payload["status"] == "timeout"
    assert payload["reason"] == "timeout"
    # 60 s, then the 40 s left to the deadline, then one last poll at the deadline.
    assert sleeps[-1] == pytest.approx(1100.0 - (1000.0 + sleeps[0]))
    assert hook.calls == 3


async def test_resumes_after_triggerer_restart_without_resubmitting() -> None:
    """A trigger rebuilt from its serialized kwargs polls the same job again; nothing is stopped."""
    first_hook = FakeHook([_job()])
    first = _trigger(first_hook)
    _classpath, kwargs = first.serialize()
    task = asyncio.ensure_future(_events(first))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert first_hook.calls == 1
    rebuilt = BedrockFineTuneJobCompletedTrigger(**deserialize(serialize(kwargs)))
    hook = FakeHook([_job("Completed")])
    rebuilt._hook = lambda: hook  # type: ignore[method-assign]
    assert _one(await _events(rebuilt))["status"] == "success"
    assert first_hook.stopped == hook.stopped == []


# --- on_kill ------------------------------------------------------------------------------------


def _ti() -> Any:
    return types.SimpleNamespace(dag_id="dag", task_id="tune", run_id="run-1", map_index=-1)


class FakeTaskStates:
    """Answers RuntimeTaskInstance.get_ti_count from one task instance's current state."""

    def __init__(self, state: str | None) -> None:
        self.state = state
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> int:
        self.calls.append(kwargs)
        return int(self.state in (kwargs.get("states") or []))


@pytest.fixture
def ti_state(monkeypatch: pytest.MonkeyPatch) -> FakeTaskStates:
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    fake = FakeTaskStates("deferred")
    monkeypatch.setattr(RuntimeTaskInstance, "get_ti_count", staticmethod(fake))
    return fake


@pytest.mark.parametrize("state", ["failed", "success"])
async def test_on_kill_stops_job_when_task_was_ended(state: str, ti_state: FakeTaskStates) -> None:
    """Marking the task failed (or success) while deferred stops the job; the Amazon provider never does."""
    ti_state.state = state
    hook = FakeHook([_job()])
    trigger = _trigger(hook)
    trigger.task_instance = _ti()
    await trigger.on_kill()
    assert hook.stopped == [ARN]
    (call,) = ti_state.calls
    assert call["dag_id"] == "dag" and call["task_ids"] == ["tune"] and call["run_ids"] == ["run-1"]
    assert call["map_index"] == -1


@pytest.mark.parametrize("state", ["deferred", None, "scheduled", "queued", "running"])
async def test_on_kill_while_deferred_elsewhere_or_cleared_does_not_stop(
    state: str | None, ti_state: FakeTaskStates
) -> None:
    """The triggerer also calls on_kill when it hands the trigger to another triggerer (task
    still deferred); a cleared task's next try re-attaches to the job (None .. running)."""
    ti_state.state = state
    hook = FakeHook([_job()])
    trigger = _trigger(hook)
    trigger.task_instance = _ti()
    await trigger.on_kill()
    assert hook.stopped == []


async def test_on_kill_without_proof_does_not_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    hook = FakeHook([_job()])
    trigger = _trigger(hook)
    await trigger.on_kill()  # no task instance attached
    unreachable = mock.Mock(side_effect=RuntimeError("supervisor unreachable"))
    monkeypatch.setattr(RuntimeTaskInstance, "get_ti_count", staticmethod(unreachable))
    trigger.task_instance = _ti()
    await trigger.on_kill()
    assert unreachable.called
    assert hook.stopped == []


async def test_on_kill_respects_stop_on_kill_false(ti_state: FakeTaskStates) -> None:
    ti_state.state = "failed"
    hook = FakeHook([_job()])
    trigger = _trigger(hook, stop_on_kill=False)
    trigger.task_instance = _ti()
    await trigger.on_kill()
    assert hook.stopped == []
    assert ti_state.calls == []


async def test_cancellation_never_stops_the_job(ti_state: FakeTaskStates) -> None:
    """A triggerer restart cancels run() without on_kill; nothing may stop the job (#36090)."""
    hook = FakeHook([_job()])
    trigger = _trigger(hook, poll_interval=3600)
    task = asyncio.ensure_future(_events(trigger))
    await asyncio.sleep(0.01)
    assert hook.calls == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await trigger.cleanup()
    assert hook.stopped == []


async def test_run_releases_shared_clients_when_done(sleeps: list[float]) -> None:
    from airflow_bedrock_ft.hooks.bedrock_ft import shared_async_client_stats

    _one(await _events(_trigger(FakeHook([_job("Completed")]))))
    assert shared_async_client_stats() == {"clients": 0, "resolutions": 0}


async def test_on_kill_cancelled_half_way_still_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    """The triggerer re-sends the cancellation while on_kill runs; seen in a real triggerer,
    where the task-state query took 5 s and the stop was lost."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    def slow_count(**kwargs: Any) -> int:
        import time as _time

        _time.sleep(0.2)
        return int("failed" in kwargs["states"])

    monkeypatch.setattr(RuntimeTaskInstance, "get_ti_count", staticmethod(slow_count))
    hook = FakeHook([_job()])
    trigger = _trigger(hook)
    trigger.task_instance = _ti()
    killing = asyncio.ensure_future(trigger.on_kill())
    await asyncio.sleep(0.05)
    killing.cancel()  # the repeated user-action cancellation
    with pytest.raises(asyncio.CancelledError):
        await killing
    for _ in range(100):
        if hook.stopped:
            break
        await asyncio.sleep(0.01)
    assert hook.stopped == [ARN]


async def test_unexpected_exception_propagates_with_traceback(sleeps: list[float]) -> None:
    """A bug is not an AWS answer: no blanket ``except Exception`` turning it into an event."""
    with pytest.raises(KeyError):
        await _events(_trigger(FakeHook([_job(), KeyError("jobArn")])))


async def test_missing_credentials_is_an_error_event(sleeps: list[float]) -> None:
    from botocore.exceptions import NoCredentialsError

    payload = _one(await _events(_trigger(FakeHook([NoCredentialsError()]))))
    assert payload["status"] == "error" and payload["error_code"] == "NoCredentialsError"


async def test_logs_phase_changes_with_job_age(sleeps: list[float]) -> None:
    import datetime

    created = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=2, minutes=3)
    details = {"validationDetails": {"status": "InProgress"}}
    later = {"validationDetails": {"status": "Completed"}, "trainingDetails": {"status": "InProgress"}}
    hook = FakeHook(
        [
            _job(statusDetails=details, creationTime=created),
            _job(statusDetails=details, creationTime=created),
            _job(statusDetails=later, creationTime=created),
            _job("Completed", statusDetails=later, creationTime=created),
        ]
    )
    trigger = _trigger(hook)
    log = mock.Mock()
    with mock.patch.object(BedrockFineTuneJobCompletedTrigger, "log", new_callable=mock.PropertyMock) as prop:
        prop.return_value = log
        _one(await _events(trigger))
    lines = [c.args[0] % c.args[1:] for c in log.info.call_args_list if "job age" in c.args[0]]
    # Three distinct (status, phases) pairs: the repeated poll is not logged again.
    assert len(lines) == 3
    assert "validation=InProgress" in lines[0] and "job age 2:03:" in lines[0]
    assert "training=InProgress" in lines[1]



# --- attempts and status_known ------------------------------------------------------------------


async def test_transient_errors_do_not_use_up_max_attempts(sleeps: list[float]) -> None:
    """Today's main: throttling counted toward max_attempts and the wait gave up on a healthy job."""
    throttled = _error("ThrottlingException", 429)
    hook = FakeHook([_job(), *[throttled] * 10, _job()])
    payload = _one(await _events(_trigger(hook, max_attempts=2)))
    assert hook.calls == 12
    assert payload["status"] == "timeout" and payload["reason"] == "max_attempts"
    assert payload["status_known"] is True and payload["job_status"] == "InProgress"
    # After the burst the backoff was reset: the delays grew, then polling went on as usual.
    assert sleeps[1] < 5.5 < sleeps[4]


async def test_deadline_under_constant_throttling_reports_an_unknown_state(
    sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(trigger_module.time, "time", lambda: now[0])

    async def advancing_sleep(delay: float, *args: Any) -> None:
        sleeps.append(delay)
        now[0] += delay

    monkeypatch.setattr(trigger_module.asyncio, "sleep", advancing_sleep)
    hook = FakeHook([_error("ThrottlingException", 429)])
    payload = _one(await _events(_trigger(hook, poll_interval=60, max_attempts=3, timeout_at=1600.0)))
    assert payload["status"] == "timeout" and payload["reason"] == "timeout"
    assert payload["status_known"] is False and payload["job_status"] is None
    assert "without knowing its state" in payload["message"]
    assert hook.calls > 3  # max_attempts never ran out: no poll was answered


async def test_every_event_says_whether_the_status_is_known(sleeps: list[float]) -> None:
    assert _one(await _events(_trigger(FakeHook([_job("Completed")]))))["status_known"] is True
    denied = _one(await _events(_trigger(FakeHook([_error("AccessDeniedException", 403)]))))
    assert denied["status_known"] is False and denied["reason"] == "api_error"


# --- BedrockResourceReadyTrigger ------------------------------------------------------------------

DEP_ARN = "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abcdef123456"
PT_ARN = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdef123456"
RESOURCE_EVENT_KEYS = {
    "status",
    "reason",
    "message",
    "status_known",
    "kind",
    "identifier",
    "wait_for",
    "resource_arn",
    "resource_name",
    "resource_status",
    "model_arn",
    "failure_message",
    "error_code",
}


class FakeResourceHook:
    """Replays GetCustomModelDeployment / GetProvisionedModelThroughput answers (or errors)."""

    def __init__(self, kind: str, responses: list[Any]) -> None:
        self.kind = kind
        self.responses = list(responses)
        self.calls = 0

    async def aget_resource(self, kind: str, identifier: str) -> dict[str, Any]:
        assert kind == self.kind
        self.calls += 1
        item = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        if isinstance(item, BaseException):
            raise item
        return item


def _resource(kind: str, status: str, **extra: Any) -> dict[str, Any]:
    if kind == "deployment":
        doc = {"customModelDeploymentArn": DEP_ARN, "modelDeploymentName": "dep", "status": status}
    else:
        doc = {"provisionedModelArn": PT_ARN, "provisionedModelName": "pt", "status": status}
    doc["modelArn"] = "arn:aws:bedrock:us-east-1:123456789012:custom-model/x/1"
    doc.update(extra)
    return doc


def _resource_trigger(hook: FakeResourceHook, **kwargs: Any) -> BedrockResourceReadyTrigger:
    kwargs.setdefault("poll_interval", 30)
    kwargs.setdefault("identifier", DEP_ARN if hook.kind == "deployment" else PT_ARN)
    trigger = BedrockResourceReadyTrigger(kind=hook.kind, **kwargs)
    trigger._hook = lambda: hook  # type: ignore[assignment,method-assign,return-value]
    return trigger


def _one_resource(events: list[TriggerEvent]) -> dict[str, Any]:
    assert len(events) == 1, events
    payload = events[0].payload
    assert set(payload) == RESOURCE_EVENT_KEYS
    assert json.loads(json.dumps(payload)) == payload
    return payload


def test_resource_trigger_serialize_round_trip() -> None:
    trigger = BedrockResourceReadyTrigger(
        kind="provisioned_throughput",
        identifier=PT_ARN,
        wait_for="deleted",
        aws_conn_id="conn",
        region_name="us-west-2",
        poll_interval=15,
        max_attempts=40,
        timeout_at=1_900_000_000.0,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_bedrock_ft.triggers.bedrock_ft.BedrockResourceReadyTrigger"
    rebuilt = type(trigger)(**deserialize(serialize(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["kind"] == "provisioned_throughput" and kwargs["wait_for"] == "deleted"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "endpoint", "identifier": DEP_ARN}, "Unknown resource kind"),
        ({"kind": "deployment", "identifier": ""}, "identifier must be"),
        ({"kind": "deployment", "identifier": DEP_ARN, "wait_for": "gone"}, "wait_for must be"),
        ({"kind": "deployment", "identifier": DEP_ARN, "poll_interval": -1}, "poll_interval must be"),
    ],
)
def test_resource_trigger_rejects_bad_kwargs(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BedrockResourceReadyTrigger(**kwargs)


@pytest.mark.parametrize(
    ("kind", "status"),
    [("deployment", s.value) for s in DeploymentStatus]
    + [("provisioned_throughput", s.value) for s in ProvisionedThroughputStatus],
)
async def test_resource_trigger_every_status(kind: str, status: str, sleeps: list[float]) -> None:
    ready = "Active" if kind == "deployment" else "InService"
    hook = FakeResourceHook(kind, [_resource(kind, status, failureMessage="no capacity"), _resource(kind, ready)])
    payload = _one_resource(await _events(_resource_trigger(hook)))  # type: ignore[arg-type]
    outcome = classify_resource(kind, status)
    if outcome is Outcome.RUNNING:
        assert hook.calls == 2 and payload["status"] == "success" and payload["reason"] == "ready"
    elif outcome is Outcome.SUCCEEDED:
        assert hook.calls == 1 and payload["resource_status"] == ready
    else:
        assert hook.calls == 1 and payload["status"] == "error" and payload["reason"] == "failed"
        assert "no capacity" in payload["message"] and payload["failure_message"] == "no capacity"
    assert payload["status_known"] is True and payload["kind"] == kind


async def test_resource_trigger_waits_for_deletion(sleeps: list[float]) -> None:
    gone = _error("ResourceNotFoundException", 404)
    throttled = _error("ThrottlingException", 429)
    hook = FakeResourceHook("deployment", [_resource("deployment", "Active"), throttled, gone])
    payload = _one_resource(await _events(_resource_trigger(hook, wait_for="deleted")))  # type: ignore[arg-type]
    assert payload["status"] == "success" and payload["reason"] == "deleted"
    assert payload["resource_status"] is None and payload["resource_arn"] == DEP_ARN
    assert hook.calls == 3


async def test_resource_trigger_ready_wait_on_a_missing_resource_is_an_error(sleeps: list[float]) -> None:
    hook = FakeResourceHook("deployment", [_error("ResourceNotFoundException", 404)])
    payload = _one_resource(await _events(_resource_trigger(hook)))  # type: ignore[arg-type]
    assert payload["status"] == "error" and payload["reason"] == "not_found"


async def test_resource_trigger_unknown_status_and_max_attempts(sleeps: list[float]) -> None:
    hook = FakeResourceHook("deployment", [_resource("deployment", "Deleting")])
    payload = _one_resource(await _events(_resource_trigger(hook)))  # type: ignore[arg-type]
    assert payload["reason"] == "unknown_status"
    hook = FakeResourceHook("provisioned_throughput", [_resource("provisioned_throughput", "Creating")])
    payload = _one_resource(await _events(_resource_trigger(hook, max_attempts=4)))  # type: ignore[arg-type]
    assert payload["status"] == "timeout" and payload["reason"] == "max_attempts"
    assert payload["resource_status"] == "Creating" and payload["status_known"] is True
    assert hook.calls == 4
