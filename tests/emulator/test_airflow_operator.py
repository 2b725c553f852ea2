"""The fine-tuning operator against the local emulator over real HTTP (boto3 and aiobotocore)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any
from unittest import mock

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_bedrock_ft.exceptions import JobFailedError
from airflow_bedrock_ft.operators.bedrock_ft import BedrockFineTuneCreateJobOperator

from .helpers import NO_RETRY, NOVA, ROLE, phase, run_deferred_trigger, wait_for

FAILURE = "Encountered an internal error when processing the request."


@pytest.fixture
def context() -> dict[str, Any]:
    ti = mock.Mock(dag_id="tune_dag", task_id="tune", run_id=f"manual__{uuid.uuid4().hex}", map_index=-1)
    return {"ti": ti}


def _operator(bucket: str, aws_conn: str, **kwargs: Any) -> BedrockFineTuneCreateJobOperator:
    args: dict[str, Any] = dict(
        task_id="tune",
        base_model=NOVA,
        training_data=f"s3://{bucket}/ft/train.jsonl",
        validation_data=f"s3://{bucket}/ft/validation.jsonl",
        output_s3_uri=f"s3://{bucket}/output/",
        role_arn=ROLE,
        hyperparameters={"epochCount": 2},
        poll_interval=0.2,
        aws_conn_id=aws_conn,
        deferrable=False,
    )
    args.update(kwargs)
    return BedrockFineTuneCreateJobOperator(**args)


def test_blocking_run_to_completed(
    emulator: Any, bucket: str, aws_conn: str, context: dict[str, Any]
) -> None:
    result = _operator(bucket, aws_conn).execute(context)  # type: ignore[arg-type]
    assert result["status"] == "Completed"
    assert result["custom_model_arn"].startswith("arn:aws:bedrock:us-east-1:")
    assert isinstance(result["training_loss"], float)
    assert isinstance(result["validation_loss"], float)
    assert result["output_s3_uri"] == f"s3://{bucket}/output/"
    assert json.loads(json.dumps(result)) == result


def test_deferred_run_through_trigger_to_completed(
    emulator: Any, bucket: str, aws_conn: str, context: dict[str, Any]
) -> None:
    with pytest.raises(TaskDeferred) as info:
        _operator(bucket, aws_conn, deferrable=True).execute(context)  # type: ignore[arg-type]
    event = run_deferred_trigger(info.value)
    assert event["status"] == "success"
    # execute_complete runs in another process: a fresh operator instance.
    result = _operator(bucket, aws_conn, deferrable=True).execute_complete(context, event)  # type: ignore[arg-type]
    assert result["status"] == "Completed"
    assert result["job_arn"] == info.value.trigger.job_arn
    assert result["custom_model_arn"]


def test_failed_job_reports_failure_message_verbatim_on_both_paths(
    emulator: Any, bucket: str, aws_conn: str, context: dict[str, Any]
) -> None:
    emulator.set_faults(fail_jobs={"next": 2, "message": FAILURE})
    with pytest.raises(JobFailedError) as blocking:
        _operator(bucket, aws_conn).execute(context)  # type: ignore[arg-type]
    assert blocking.value.failure_message == FAILURE
    assert FAILURE in str(blocking.value) and "status Failed" in str(blocking.value)

    other_run = {"ti": mock.Mock(dag_id="tune_dag", task_id="tune", run_id="other", map_index=-1)}
    with pytest.raises(TaskDeferred) as info:
        _operator(bucket, aws_conn, deferrable=True).execute(other_run)  # type: ignore[arg-type]
    event = run_deferred_trigger(info.value)
    assert event["failure_message"] == FAILURE
    with pytest.raises(JobFailedError) as deferred:
        _operator(bucket, aws_conn, deferrable=True).execute_complete(other_run, event)  # type: ignore[arg-type]
    assert FAILURE in str(deferred.value) and info.value.trigger.job_arn in str(deferred.value)


def test_retry_after_worker_crash_reattaches_over_http(
    emulator: Any, bucket: str, aws_conn: str, context: dict[str, Any]
) -> None:
    emulator.set_config(hold_phases=["training"])
    with pytest.raises(TaskDeferred) as first:
        _operator(bucket, aws_conn, deferrable=True).execute(context)  # type: ignore[arg-type]
    with pytest.raises(TaskDeferred) as second:
        _operator(bucket, aws_conn, deferrable=True).execute(context)  # type: ignore[arg-type]
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    jobs = bedrock.list_model_customization_jobs()["modelCustomizationJobSummaries"]
    assert len(jobs) == 1
    assert first.value.trigger.job_arn == second.value.trigger.job_arn == jobs[0]["jobArn"]


def test_killing_the_task_stops_the_job(
    emulator: Any, bucket: str, aws_conn: str, context: dict[str, Any]
) -> None:
    """on_kill (SIGTERM on mark-failed, or execution_timeout) stops the job; it ends Stopped."""
    emulator.set_config(hold_phases=["training"])
    op = _operator(bucket, aws_conn)
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            op.execute(context)  # type: ignore[arg-type]
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    deadline = time.monotonic() + 30
    while not bedrock.list_model_customization_jobs()["modelCustomizationJobSummaries"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    arn = bedrock.list_model_customization_jobs()["modelCustomizationJobSummaries"][0]["jobArn"]
    wait_for(bedrock, arn, until=lambda j: phase(j, "training") == "InProgress")
    op.on_kill()
    worker.join(30)
    error = outcome["error"]
    assert isinstance(error, JobFailedError)
    assert error.job_status == "Stopped" and error.job_arn == arn
    assert bedrock.get_model_customization_job(jobIdentifier=arn)["status"] == "Stopped"


def test_timeout_stops_the_job(emulator: Any, bucket: str, aws_conn: str, context: dict[str, Any]) -> None:
    from airflow_bedrock_ft.exceptions import JobTimeoutError

    emulator.set_config(hold_phases=["training"])
    with pytest.raises(JobTimeoutError) as info:
        _operator(bucket, aws_conn, timeout=1.0).execute(context)  # type: ignore[arg-type]
    assert "stop was requested" in str(info.value)
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    assert wait_for(bedrock, info.value.job_arn)["status"] == "Stopped"


def test_retry_after_failed_job_resubmits_and_completes(
    emulator: Any, bucket: str, aws_conn: str, context: dict[str, Any]
) -> None:
    """Task retries really retry: the failed job of the first try is not re-reported forever."""
    emulator.set_faults(fail_jobs={"next": 1, "message": FAILURE})
    with pytest.raises(JobFailedError):
        _operator(bucket, aws_conn).execute(context)  # type: ignore[arg-type]
    result = _operator(bucket, aws_conn).execute(context)  # the retry, in a fresh process
    assert result["status"] == "Completed"
    assert result["job_name"].endswith("-r1")
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    statuses = sorted(
        j["status"] for j in bedrock.list_model_customization_jobs()["modelCustomizationJobSummaries"]
    )
    assert statuses == ["Completed", "Failed"]
