"""The metrics operator against the emulator over real HTTP: figures, the table, the PNG in S3."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from airflow_bedrock_ft.core.metrics import job_metrics
from airflow_bedrock_ft.core.plot import PNG_MAGIC
from airflow_bedrock_ft.core.s3 import split_s3_uri
from airflow_bedrock_ft.operators.metrics import BedrockFineTuneMetricsOperator

from .helpers import wait_for


@pytest.fixture
def finished_job(bedrock: Any, job_request: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """A Completed three-epoch job with validation data."""
    arn = bedrock.create_model_customization_job(**job_request(hyperParameters={"epochCount": "3"}))["jobArn"]
    job = wait_for(bedrock, arn)
    assert job["status"] == "Completed", job.get("failureMessage")
    return job


def test_operator_reports_the_jobs_own_training_loss_and_uploads_a_png(
    emulator: Any, clients: dict[str, Any], finished_job: dict[str, Any], aws_conn: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    op = BedrockFineTuneMetricsOperator(task_id="metrics", job_arn=finished_job["jobArn"], aws_conn_id=aws_conn)
    capsys.readouterr()
    result = op.execute({})  # type: ignore[arg-type]
    log = capsys.readouterr().out

    assert json.loads(json.dumps(result)) == result
    figures = result["figures"]
    # One definition: Bedrock's trainingMetrics.trainingLoss is the summary's final training loss.
    assert figures["final_training_loss"] == pytest.approx(finished_job["trainingMetrics"]["trainingLoss"], rel=1e-9)
    assert figures["final_validation_loss"] == pytest.approx(finished_job["validationMetrics"][0]["validationLoss"])
    assert figures["train_validation_gap"] == pytest.approx(
        figures["final_validation_loss"] - figures["final_training_loss"])
    assert figures["best_validation_loss"] <= figures["final_validation_loss"]
    assert figures["epochs"] == 3 and len(result["per_epoch"]) == 3
    assert result["series_lengths"]["training"] == figures["steps"] > 0
    assert result["series_lengths"]["validation"] == 3
    assert result["warnings"] == []
    assert result["custom_model_arn"] == finished_job["outputModelArn"]

    job_id = finished_job["jobArn"].rsplit("/", 1)[-1]
    bucket, key = split_s3_uri(result["plot_uri"])
    assert key == f"output/model-customization-job-{job_id}/loss_curves.png"
    obj = clients["s3"].get_object(Bucket=bucket, Key=key)
    assert obj["ContentType"] == "image/png"
    assert obj["Body"].read().startswith(PNG_MAGIC)

    assert "final training loss" in log and "best validation loss" in log and "loss_curves.png" in log
    # Rounded for people: no float printed with all its digits.
    assert repr(figures["final_training_loss"]) not in log


def test_operator_without_plot_uploads_nothing(
    clients: dict[str, Any], finished_job: dict[str, Any], aws_conn: str
) -> None:
    op = BedrockFineTuneMetricsOperator(task_id="metrics", job_arn=finished_job["jobName"], plot=False,
                                        aws_conn_id=aws_conn)
    result = op.execute({})  # type: ignore[arg-type]
    assert result["plot_uri"] is None
    bucket, _ = split_s3_uri(finished_job["outputDataConfig"]["s3Uri"])
    keys = [o["Key"] for o in clients["s3"].list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert not any(k.endswith(".png") for k in keys)


def test_missing_csvs_fall_back_to_the_jobs_figures_with_a_warning(
    clients: dict[str, Any], finished_job: dict[str, Any]
) -> None:
    s3 = clients["s3"]
    bucket, _ = split_s3_uri(finished_job["outputDataConfig"]["s3Uri"])
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix="output/").get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=obj["Key"])
    result = job_metrics(finished_job, s3, plot=True)
    assert result["figures"]["final_training_loss"] == finished_job["trainingMetrics"]["trainingLoss"]
    assert result["figures"]["final_validation_loss"] == finished_job["validationMetrics"][-1]["validationLoss"]
    assert result["plot_uri"] is None  # nothing to draw
    assert len(result["warnings"]) == 2 and "no training metrics CSV" in result["warnings"][0]


def test_a_csv_that_disagrees_with_the_job_is_reported(
    clients: dict[str, Any], finished_job: dict[str, Any]
) -> None:
    s3 = clients["s3"]
    bucket, _ = split_s3_uri(finished_job["outputDataConfig"]["s3Uri"])
    job_id = finished_job["jobArn"].rsplit("/", 1)[-1]
    key = f"output/model-customization-job-{job_id}/training_artifacts/step_wise_training_metrics.csv"
    s3.put_object(Bucket=bucket, Key=key, Body=b"step_number,epoch_number,training_loss,perplexity\n0,0,42.0,1\n")
    result = job_metrics(finished_job, s3, plot=False)
    assert result["figures"]["final_training_loss"] == 42.0
    assert any("reports training loss" in w and key in w for w in result["warnings"])
