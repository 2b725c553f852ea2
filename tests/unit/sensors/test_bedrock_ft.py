"""Unit tests of BedrockFineTuneJobCompletedSensor with a Mock(spec=hook), no sockets."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from airflow.sdk import PokeReturnValue
from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason
from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException, TaskDeferred

from airflow_bedrock_ft.core.states import JobStatus, Outcome, classify
from airflow_bedrock_ft.exceptions import JobFailedError, TriggerEventError
from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook
from airflow_bedrock_ft.sensors.bedrock_ft import BedrockFineTuneJobCompletedSensor
from airflow_bedrock_ft.triggers.bedrock_ft import BedrockFineTuneJobCompletedTrigger

ARN = (
    "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/amazon.nova-micro-v1:0:128k/abc123def456"
)
FAILURE = "Max sum of input and output token length 4097 exceeds total limit of 4096"


def _job(status: str = "InProgress", **extra: Any) -> dict[str, Any]:
    job = {"jobArn": ARN, "jobName": "job-1", "status": status, "outputDataConfig": {"s3Uri": "s3://b/out/"}}
    job.update(extra)
    return job


@pytest.fixture
def context() -> dict[str, Any]:
    return {"ti": mock.Mock(dag_id="d", task_id="wait", run_id="r", map_index=-1)}


def _sensor(
    responses: list[dict[str, Any]] | None = None, **kwargs: Any
) -> BedrockFineTuneJobCompletedSensor:
    kwargs.setdefault("deferrable", False)
    sensor = BedrockFineTuneJobCompletedSensor(task_id="wait", job_identifier="job-1", **kwargs)
    hook = mock.Mock(spec=BedrockFineTuneHook)
    if responses is not None:
        hook.get_job.side_effect = lambda _id: dict(responses.pop(0) if len(responses) > 1 else responses[0])
    sensor.hook = hook  # type: ignore[misc]
    return sensor


@pytest.mark.parametrize("status", list(JobStatus))
def test_poke_every_status(status: JobStatus, context: dict[str, Any]) -> None:
    """The sensor follows classify() for every status: no separate state lists to drift."""
    sensor = _sensor([_job(status.value, failureMessage=FAILURE if status is JobStatus.FAILED else None)])
    outcome = classify(status)
    if outcome is Outcome.RUNNING:
        assert sensor.poke(context) is False  # type: ignore[arg-type]
    elif outcome is Outcome.SUCCEEDED:
        done = sensor.poke(context)  # type: ignore[arg-type]
        assert isinstance(done, PokeReturnValue) and done.is_done
        assert done.xcom_value["status"] == "Completed"
        assert done.xcom_value["job_arn"] == ARN
    else:
        with pytest.raises(JobFailedError) as info:
            sensor.poke(context)  # type: ignore[arg-type]
        assert status.value in str(info.value)


def test_poke_failure_carries_failure_message(context: dict[str, Any]) -> None:
    """The Amazon provider's sensor does not show Bedrock's failureMessage."""
    with pytest.raises(JobFailedError) as info:
        _sensor([_job("Failed", failureMessage=FAILURE)]).poke(context)  # type: ignore[arg-type]
    assert FAILURE in str(info.value) and ARN in str(info.value)


def test_poke_mode_runs_to_success(context: dict[str, Any]) -> None:
    sensor = _sensor([_job(), _job(), _job("Completed")], poke_interval=1)
    with mock.patch("airflow.sdk.bases.sensor.time.sleep") as sleep:
        result = sensor.execute(context)  # type: ignore[arg-type]
    assert result["status"] == "Completed"
    assert sleep.call_count == 2


@pytest.mark.parametrize("stop_on_timeout", [False, True])
def test_poke_mode_timeout_fails_and_stops_only_if_asked(
    stop_on_timeout: bool, context: dict[str, Any]
) -> None:
    sensor = _sensor([_job()], timeout=0, poke_interval=1, stop_on_timeout=stop_on_timeout)
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute(context)  # type: ignore[arg-type]
    assert sensor.hook.stop_job.called is stop_on_timeout  # type: ignore[attr-defined]


def test_deferrable_defers_to_the_operators_trigger(context: dict[str, Any]) -> None:
    sensor = _sensor([_job()], deferrable=True, poke_interval=30, timeout=3600)
    with (
        mock.patch("airflow_bedrock_ft.sensors.bedrock_ft.time.time", return_value=1000.0),
        pytest.raises(TaskDeferred) as info,
    ):
        sensor.execute(context)  # type: ignore[arg-type]
    trigger = info.value.trigger
    assert isinstance(trigger, BedrockFineTuneJobCompletedTrigger)
    assert trigger.job_arn == ARN  # resolved from the name by the first poke
    assert trigger.poll_interval == 30
    assert trigger.timeout_at == 4600.0
    assert trigger.stop_on_kill is False
    assert info.value.method_name == "execute_complete"


def test_deferrable_finished_job_does_not_defer(context: dict[str, Any]) -> None:
    sensor = _sensor([_job("Completed")], deferrable=True)
    assert sensor.execute(context)["status"] == "Completed"  # type: ignore[arg-type]


def _event(status: str, reason: str, **extra: Any) -> dict[str, Any]:
    event = {
        "status": status,
        "reason": reason,
        "message": "m",
        "job_arn": ARN,
        "job_status": "InProgress",
        "status_known": True,
    }
    event.update(extra)
    return event


def test_deferred_timeout_never_reports_success(context: dict[str, Any]) -> None:
    """The Amazon provider's deferrable sensor returns False as a success while the job runs."""
    sensor = _sensor()
    with pytest.raises(AirflowSensorTimeout, match="last status InProgress"):
        sensor.resume_execution("execute_complete", {"event": _event("timeout", "timeout")}, context)  # type: ignore[arg-type]
    sensor.hook.stop_job.assert_not_called()  # type: ignore[attr-defined]


def test_deferred_timeout_stops_when_asked(context: dict[str, Any]) -> None:
    sensor = _sensor(stop_on_timeout=True)
    with pytest.raises(AirflowSensorTimeout):
        sensor.resume_execution("execute_complete", {"event": _event("timeout", "timeout")}, context)  # type: ignore[arg-type]
    sensor.hook.stop_job.assert_called_once_with("job-1")  # type: ignore[attr-defined]


def test_deferred_timeout_with_soft_fail_skips_and_still_stops(context: dict[str, Any]) -> None:
    sensor = _sensor(stop_on_timeout=True, soft_fail=True)
    with pytest.raises(AirflowSkipException):
        sensor.resume_execution("execute_complete", {"event": _event("timeout", "timeout")}, context)  # type: ignore[arg-type]
    sensor.hook.stop_job.assert_called_once()  # type: ignore[attr-defined]


def test_hard_defer_timeout_is_a_sensor_timeout(context: dict[str, Any]) -> None:
    sensor = _sensor([_job()], stop_on_timeout=True)  # read once: the job still runs
    with pytest.raises(AirflowSensorTimeout):
        sensor.resume_execution(TRIGGER_FAIL_REPR, {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, context)  # type: ignore[arg-type]
    sensor.hook.stop_job.assert_called_once_with("job-1")  # type: ignore[attr-defined]


def test_deferred_failure_carries_failure_message(context: dict[str, Any]) -> None:
    sensor = _sensor()
    event = _event("error", "failed", job_status="Failed", failure_message=FAILURE)
    with pytest.raises(JobFailedError) as info:
        sensor.execute_complete(context, event)  # type: ignore[arg-type]
    assert FAILURE in str(info.value) and ARN in str(info.value)


def test_deferred_success_returns_result(context: dict[str, Any]) -> None:
    event = _event(
        "success", "completed", job_status="Completed", output_model_arn="arn:m", training_loss=0.4
    )
    result = _sensor().execute_complete(context, event)  # type: ignore[arg-type]
    assert result["custom_model_arn"] == "arn:m" and result["training_loss"] == 0.4


@pytest.mark.parametrize("event", [None, {"status": "running", "job_arn": ARN}])
def test_execute_complete_rejects_bad_events(event: Any, context: dict[str, Any]) -> None:
    with pytest.raises(TriggerEventError):
        _sensor().execute_complete(context, event)  # type: ignore[arg-type]


def test_on_kill_leaves_foreign_job_by_default() -> None:
    sensor = _sensor()
    sensor.on_kill()
    sensor.hook.stop_job.assert_not_called()  # type: ignore[attr-defined]
    sensor = _sensor(stop_on_kill=True)
    sensor.on_kill()
    sensor.hook.stop_job.assert_called_once_with("job-1")  # type: ignore[attr-defined]


def test_poke_mode_survives_transient_errors(context: dict[str, Any]) -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError

    sensor = _sensor(poke_interval=1)
    server_error = ClientError(
        {"Error": {"Code": "InternalServerException"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "Get"
    )
    sensor.hook.get_job.side_effect = [  # type: ignore[attr-defined]
        server_error,
        EndpointConnectionError(endpoint_url="http://x"),
        _job("Completed"),
    ]
    with mock.patch("airflow.sdk.bases.sensor.time.sleep"):
        assert sensor.execute(context)["status"] == "Completed"  # type: ignore[arg-type]


def test_poke_raises_non_transient_errors(context: dict[str, Any]) -> None:
    from botocore.exceptions import ClientError

    sensor = _sensor()
    sensor.hook.get_job.side_effect = ClientError(  # type: ignore[attr-defined]
        {"Error": {"Code": "ResourceNotFoundException"}, "ResponseMetadata": {"HTTPStatusCode": 404}}, "Get"
    )
    with pytest.raises(ClientError):
        sensor.poke(context)  # type: ignore[arg-type]


def test_deferred_timeout_without_a_recent_answer_never_stops(context: dict[str, Any]) -> None:
    """stop_on_timeout applies only to a job the sensor knew was running."""
    sensor = _sensor(stop_on_timeout=True)
    event = _event("timeout", "timeout", status_known=False)
    with pytest.raises(AirflowSensorTimeout):
        sensor.resume_execution("execute_complete", {"event": event}, context)  # type: ignore[arg-type]
    sensor.hook.stop_job.assert_not_called()  # type: ignore[attr-defined]


def test_poke_mode_timeout_after_only_errors_never_stops(context: dict[str, Any]) -> None:
    from botocore.exceptions import ClientError

    sensor = _sensor(timeout=0, poke_interval=1, stop_on_timeout=True)
    throttled = ClientError(
        {"Error": {"Code": "ThrottlingException"}, "ResponseMetadata": {"HTTPStatusCode": 429}}, "Get"
    )
    sensor.hook.get_job.side_effect = throttled  # type: ignore[attr-defined]
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute(context)  # type: ignore[arg-type]
    sensor.hook.stop_job.assert_not_called()  # type: ignore[attr-defined]
