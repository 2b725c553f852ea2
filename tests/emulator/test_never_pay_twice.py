"""Retries, stops, failures and changed requests against the emulator over real HTTP.

Each test plays what a user meets: a task that times out and is retried, a job stopped from
the console, a failure a retry cannot fix, a run cleared and rerun with another request. The
job table of the emulator is the proof: it must hold exactly the jobs the user wanted.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any
from unittest import mock

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from airflow_bedrock_ft.core.naming import identity_from_tags, job_identity, suffixed_job_name
from airflow_bedrock_ft.exceptions import (
    JobFailedError,
    JobFailedNotRetriableError,
    JobStoppedOnTimeoutError,
)
from airflow_bedrock_ft.operators.bedrock_ft import BedrockFineTuneCreateJobOperator

from .helpers import NO_RETRY, NOVA, ROLE, converse_record, jsonl, wait_for

DATA_FAILURE = "Unable to parse Amazon S3 file: train.jsonl. Data files must conform to JSONL format."
INTERNAL_FAILURE = "Encountered an unexpected error when processing the request, please try again"


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


def _jobs(emulator: Any, context: dict[str, Any]) -> list[dict[str, Any]]:
    """Every job of this task run (the derived names share the run's name prefix)."""
    ti = context["ti"]
    name = job_identity(ti.dag_id, ti.task_id, ti.run_id, ti.map_index).job_name
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    summaries = bedrock.list_model_customization_jobs(nameContains=name, maxResults=100)
    return [
        bedrock.get_model_customization_job(jobIdentifier=s["jobArn"])
        for s in summaries["modelCustomizationJobSummaries"]
    ]


def test_a_timeout_with_retries_trains_once_and_fails_without_retrying(
    emulator: Any, bucket: str, aws_conn: str, context: dict[str, Any]
) -> None:
    """Today's main: X, X-r1, X-r2, each trained until the timeout and stopped."""
    emulator.set_config(hold_phases=["training"])
    for _ in range(3):  # the first try and two automatic retries
        with pytest.raises(AirflowFailException) as info:
            _operator(bucket, aws_conn, timeout=1.5, retries=2).execute(context)  # type: ignore[arg-type]
        assert isinstance(info.value, (JobStoppedOnTimeoutError, JobFailedNotRetriableError))
    jobs = _jobs(emulator, context)
    assert len(jobs) == 1, [j["jobName"] for j in jobs]
    assert jobs[0]["status"] in ("Stopping", "Stopped")
    assert "resubmit_stopped=True" in str(info.value)


def test_a_job_stopped_from_the_console_is_re_reported_not_re_created(
    emulator: Any, bucket: str, aws_conn: str, context: dict[str, Any]
) -> None:
    emulator.set_config(hold_phases=["training"])
    with pytest.raises(TaskDeferred) as deferred:
        _operator(bucket, aws_conn, deferrable=True).execute(context)  # type: ignore[arg-type]
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    arn = deferred.value.trigger.job_arn
    bedrock.stop_model_customization_job(jobIdentifier=arn)
    wait_for(bedrock, arn)
    with pytest.raises(JobFailedNotRetriableError) as info:
        _operator(bucket, aws_conn).execute(context)  # type: ignore[arg-type]
    assert arn in str(info.value) and "Stopped" in str(info.value)
    assert [j["jobArn"] for j in _jobs(emulator, context)] == [arn]
    # Opting in trains again, once.
    emulator.set_config(hold_phases=[])
    result = _operator(bucket, aws_conn, resubmit_stopped=True).execute(context)  # type: ignore[arg-type]
    assert result["status"] == "Completed"
    assert result["job_name"] == suffixed_job_name(
        bedrock.get_model_customization_job(jobIdentifier=arn)["jobName"], 1
    )
    assert len(_jobs(emulator, context)) == 2


def test_a_data_failure_fails_at_once_and_is_never_resubmitted(
    emulator: Any, bucket: str, aws_conn: str, context: dict[str, Any]
) -> None:
    emulator.set_faults(fail_jobs={"next": 1, "message": DATA_FAILURE})
    for _ in range(2):
        with pytest.raises(JobFailedNotRetriableError) as info:
            _operator(bucket, aws_conn).execute(context)  # type: ignore[arg-type]
        assert DATA_FAILURE in str(info.value) and "data" in str(info.value)
    assert len(_jobs(emulator, context)) == 1


def test_an_internal_failure_is_resubmitted_by_the_retry(
    emulator: Any, bucket: str, aws_conn: str, context: dict[str, Any]
) -> None:
    emulator.set_faults(fail_jobs={"next": 1, "message": INTERNAL_FAILURE})
    with pytest.raises(JobFailedError) as info:
        _operator(bucket, aws_conn).execute(context)  # type: ignore[arg-type]
    assert not isinstance(info.value, AirflowFailException)
    result = _operator(bucket, aws_conn).execute(context)  # type: ignore[arg-type]
    assert result["status"] == "Completed"
    assert len(_jobs(emulator, context)) == 2


def test_a_cleared_run_with_a_changed_request_trains_the_new_request(
    emulator: Any, bucket: str, aws_conn: str, context: dict[str, Any], clients: dict[str, Any]
) -> None:
    """Today's main reports success with the old job: old data, epochCount 2."""
    first = _operator(bucket, aws_conn).execute(context)  # type: ignore[arg-type]
    clients["s3"].put_object(
        Bucket=bucket, Key="ft/train-v2.jsonl", Body=jsonl([converse_record("Peru", "Spanish")] * 12)
    )
    changed = _operator(
        bucket, aws_conn, training_data=f"s3://{bucket}/ft/train-v2.jsonl", hyperparameters={"epochCount": 5}
    )
    second = changed.execute(context)  # type: ignore[arg-type]
    assert second["job_arn"] != first["job_arn"]
    assert second["custom_model_arn"] != first["custom_model_arn"]
    job = clients["bedrock"].get_model_customization_job(jobIdentifier=second["job_arn"])
    assert job["hyperParameters"]["epochCount"] == "5"
    assert job["trainingDataConfig"]["s3Uri"].endswith("train-v2.jsonl")
    # The same request again re-attaches instead of training a third time.
    assert _operator(bucket, aws_conn).execute(context)["job_arn"] == first["job_arn"]  # type: ignore[arg-type]
    assert len(_jobs(emulator, context)) == 2


def test_every_job_carries_its_airflow_identity_in_tags(
    emulator: Any, bucket: str, aws_conn: str, context: dict[str, Any], clients: dict[str, Any]
) -> None:
    result = _operator(bucket, aws_conn, wait_for_completion=False, job_tags={"team": "ml"}).execute(context)  # type: ignore[arg-type]
    tags = clients["bedrock"].list_tags_for_resource(resourceARN=result["job_arn"])["tags"]
    assert {"key": "team", "value": "ml"} in tags
    tagged = identity_from_tags(tags)
    ti = context["ti"]
    assert tagged is not None and tagged.matches_digest()
    assert (tagged.dag_id, tagged.task_id, tagged.run_id, tagged.map_index) == (
        ti.dag_id,
        ti.task_id,
        ti.run_id,
        -1,
    )
    assert tagged.reap is False  # submitted without waiting: the task does not own its life


def test_a_timeout_on_a_job_already_stopping_reports_a_timeout_with_its_status(
    emulator: Any, bucket: str, aws_conn: str, context: dict[str, Any]
) -> None:
    # Held in validation and slow to stop (Stopping lasts 60 s x time_scale).
    emulator.set_config(hold_phases=["validation"], time_scale=0.1)
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    name = job_identity("tune_dag", "tune", context["ti"].run_id).job_name

    def stop_from_the_console() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            jobs = bedrock.list_model_customization_jobs(nameContains=name)["modelCustomizationJobSummaries"]
            if jobs:
                bedrock.stop_model_customization_job(jobIdentifier=jobs[0]["jobArn"])
                return
            time.sleep(0.05)

    stopper = threading.Thread(target=stop_from_the_console)
    stopper.start()
    with pytest.raises(JobStoppedOnTimeoutError) as info:
        _operator(bucket, aws_conn, timeout=2).execute(context)  # type: ignore[arg-type]
    stopper.join()
    assert info.value.job_status == "Stopping"
    assert "already stopping" in str(info.value)
