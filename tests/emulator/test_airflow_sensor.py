"""The completion sensor against the local emulator over real HTTP, in poke and deferrable modes."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout, TaskDeferred

from airflow_bedrock_ft.exceptions import JobFailedError
from airflow_bedrock_ft.sensors.bedrock_ft import BedrockFineTuneJobCompletedSensor

from .helpers import NO_RETRY, phase, run_deferred_trigger, wait_for

FAILURE = "Amazon S3 perms missing (PutObject): Could not validate PutObject permissions"


@pytest.fixture
def context() -> dict[str, Any]:
    return {"ti": mock.Mock(dag_id="d", task_id="wait", run_id="r", map_index=-1)}


def _sensor(job: str, aws_conn: str, **kwargs: Any) -> BedrockFineTuneJobCompletedSensor:
    kwargs.setdefault("deferrable", False)
    return BedrockFineTuneJobCompletedSensor(
        task_id="wait", job_identifier=job, aws_conn_id=aws_conn, poke_interval=0.2, **kwargs
    )


def _deferred_result(sensor: BedrockFineTuneJobCompletedSensor, context: dict[str, Any]) -> Any:
    with pytest.raises(TaskDeferred) as info:
        sensor.execute(context)  # type: ignore[arg-type]
    event = run_deferred_trigger(info.value)
    return sensor.resume_execution(info.value.method_name, {"event": event}, context)  # type: ignore[arg-type]


def _run(sensor: BedrockFineTuneJobCompletedSensor, context: dict[str, Any], deferrable: bool) -> Any:
    if deferrable:
        return _deferred_result(sensor, context)
    return sensor.execute(context)  # type: ignore[arg-type]


def _create(emulator: Any, job_request: Any) -> dict[str, Any]:
    request = job_request()
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    request["jobArn"] = bedrock.create_model_customization_job(**request)["jobArn"]
    return request


def test_poke_mode_by_name_to_completed(
    emulator: Any, job_request: Any, aws_conn: str, context: dict[str, Any]
) -> None:
    job = _create(emulator, job_request)
    result = _sensor(job["jobName"], aws_conn).execute(context)  # type: ignore[arg-type]
    assert result["status"] == "Completed" and result["job_arn"] == job["jobArn"]
    assert result["custom_model_arn"]


def test_deferrable_by_arn_to_completed(
    emulator: Any, job_request: Any, aws_conn: str, context: dict[str, Any]
) -> None:
    emulator.set_config(hold_phases=["training"])
    job = _create(emulator, job_request)
    sensor = _sensor(job["jobArn"], aws_conn, deferrable=True)
    emulator.set_config(hold_phases=[])
    result = _deferred_result(sensor, context)
    assert result["status"] == "Completed"


@pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferrable"])
def test_failure_message_on_both_paths(
    emulator: Any, job_request: Any, aws_conn: str, context: dict[str, Any], deferrable: bool
) -> None:
    emulator.set_config(hold_phases=["training"])
    emulator.set_faults(fail_jobs={"next": 1, "message": FAILURE})
    job = _create(emulator, job_request)
    sensor = _sensor(job["jobName"], aws_conn, deferrable=deferrable)
    emulator.set_config(hold_phases=[])
    with pytest.raises(JobFailedError) as info:
        _run(sensor, context, deferrable)
    assert info.value.failure_message == FAILURE
    assert FAILURE in str(info.value) and job["jobArn"] in str(info.value)


@pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferrable"])
def test_timeout_while_running_fails_never_succeeds(
    emulator: Any, job_request: Any, aws_conn: str, context: dict[str, Any], deferrable: bool
) -> None:
    emulator.set_config(hold_phases=["training"])
    job = _create(emulator, job_request)
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    wait_for(bedrock, job["jobArn"], until=lambda j: phase(j, "training") == "InProgress")
    sensor = _sensor(job["jobName"], aws_conn, deferrable=deferrable, timeout=1, stop_on_timeout=True)
    with pytest.raises(AirflowSensorTimeout):
        _run(sensor, context, deferrable)
    assert wait_for(bedrock, job["jobArn"])["status"] == "Stopped"
