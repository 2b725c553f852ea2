"""Airflow's own Amazon provider completes a customization job against the emulator.

BedrockCustomizeModelOperator raises on any create status but 201 and string-matches the
duplicate-name message; the completion waiter and the sensor read ``status``.
"""

from __future__ import annotations

import pytest

from .helpers import NOVA, ROLE, phase, wait_for

pytest.importorskip("airflow.providers.amazon.aws.operators.bedrock")


@pytest.fixture
def aws_default(emulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", emulator.connection_uri_json())
    return emulator


def operator(bucket: str, job_name: str, custom_model_name: str | None = None, **kwargs):
    from airflow.providers.amazon.aws.operators.bedrock import BedrockCustomizeModelOperator

    return BedrockCustomizeModelOperator(
        task_id="customize",
        job_name=job_name,
        custom_model_name=custom_model_name or f"{job_name}-model",
        role_arn=ROLE,
        base_model_id=NOVA,
        training_data_uri=f"s3://{bucket}/ft/train.jsonl",
        output_data_uri=f"s3://{bucket}/output/",
        hyperparameters={"epochCount": "1"},
        deferrable=False,
        **kwargs,
    )


def sensor(job_name: str):
    from airflow.providers.amazon.aws.sensors.bedrock import BedrockCustomizeModelCompletedSensor

    return BedrockCustomizeModelCompletedSensor(task_id="wait", job_name=job_name, deferrable=False)


def test_operator_waits_for_completion_and_sensor_agrees(aws_default, bedrock, bucket):
    op = operator(bucket, "airflow-job", wait_for_completion=True, waiter_delay=1, waiter_max_attempts=30)
    arn = op.execute(context={})
    job = bedrock.get_model_customization_job(jobIdentifier=arn)
    assert job["status"] == "Completed"
    assert sensor("airflow-job").poke(context={}) is True
    # A second run with the same names: the operator makes the job name unique, but not the
    # model name, which a completed job keeps taken (Bedrock model names are unique).
    from botocore.exceptions import ClientError

    second = operator(bucket, "airflow-job", wait_for_completion=False)
    with pytest.raises(ClientError, match="airflow-job-model already exists"):
        second.execute(context={})
    third = operator(
        bucket, "airflow-job", wait_for_completion=False, custom_model_name="airflow-job-model-2"
    )
    third_arn = third.execute(context={})
    assert third_arn != arn and third.job_name.startswith("airflow-job-")


def test_sensor_reports_running_then_fails_on_stopped(aws_default, bedrock, bucket):
    from airflow.sdk.exceptions import AirflowException

    aws_default.set_config(hold_phases=["training"])
    arn = operator(bucket, "airflow-stop", wait_for_completion=False).execute(context={})
    wait_for(bedrock, arn, until=lambda j: phase(j, "training") == "InProgress")
    assert sensor("airflow-stop").poke(context={}) is False
    bedrock.stop_model_customization_job(jobIdentifier=arn)
    wait_for(bedrock, arn)
    with pytest.raises(AirflowException):
        sensor("airflow-stop").poke(context={})


def test_sensor_fails_on_a_forced_failure(aws_default, bedrock, bucket):
    from airflow.sdk.exceptions import AirflowException

    aws_default.set_faults(fail_jobs={"next": 1})
    arn = operator(bucket, "airflow-fail", wait_for_completion=False).execute(context={})
    assert wait_for(bedrock, arn)["status"] == "Failed"
    with pytest.raises(AirflowException):
        sensor("airflow-fail").poke(context={})
