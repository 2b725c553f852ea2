"""The metrics operator without sockets: a Mock hook and an in-memory S3."""

from __future__ import annotations

import io
import json
from typing import Any
from unittest import mock

import pytest

from airflow_bedrock_ft.core.plot import PNG_MAGIC
from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook
from airflow_bedrock_ft.operators.metrics import BedrockFineTuneMetricsOperator

JOB_ID = "a1b2c3d4e5f6"
ARN = f"arn:aws:bedrock:us-east-1:123456789012:model-customization-job/base/{JOB_ID}"
FOLDER = f"out/model-customization-job-{JOB_ID}/"
TRAINING = b"step_number,epoch_number,training_loss,perplexity\n0,0,2.0,7.4\n1,0,1.0,2.7\n2,1,0.6,1.8\n3,1,0.4,1.5\n"
VALIDATION = b"step_number,epoch_number,validation_loss,perplexity\n1,0,1.2,3.3\n3,1,0.7,2.0\n"


class _S3:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.content_types: dict[str, str] = {}

    def list_objects_v2(self, *, Bucket: str, Prefix: str, **_: Any) -> dict[str, Any]:
        return {"Contents": [{"Key": k} for k in sorted(self.objects) if k.startswith(Prefix)]}

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        return {"Body": io.BytesIO(self.objects[Key])}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, ContentType: str) -> None:
        self.objects[Key] = Body
        self.content_types[Key] = ContentType


def _job(status: str = "Completed", training_loss: float = 0.5) -> dict[str, Any]:
    return {"jobArn": ARN, "jobName": "tune", "status": status, "outputModelArn": "arn:model",
            "outputDataConfig": {"s3Uri": "s3://bucket/out"},
            "trainingMetrics": {"trainingLoss": training_loss}, "validationMetrics": [{"validationLoss": 0.7}]}


def _operator(job: dict[str, Any], s3: _S3, **kwargs: Any) -> BedrockFineTuneMetricsOperator:
    op = BedrockFineTuneMetricsOperator(task_id="metrics", job_arn=ARN, **kwargs)
    hook = mock.Mock(spec=BedrockFineTuneHook)
    hook.get_job.return_value = job
    op.hook = hook  # type: ignore[misc]
    op.s3_client = s3
    return op


def test_returns_figures_for_xcom_and_uploads_the_plot() -> None:
    s3 = _S3({FOLDER + "training_artifacts/step_wise_training_metrics.csv": TRAINING,
              FOLDER + "validation_artifacts/post_fine_tuning_validation/validation_metrics.csv": VALIDATION})
    result = _operator(_job(), s3).execute({})  # type: ignore[arg-type]
    assert json.loads(json.dumps(result)) == result
    assert "summary" not in result and "\"series\"" not in json.dumps(result)  # per-step series stay out of XCom
    assert result["figures"]["final_training_loss"] == pytest.approx(0.5)  # mean of epoch 1, = the job's
    assert result["figures"]["best_step"] == 3
    assert result["series_lengths"] == {"training": 4, "validation": 2}
    assert result["warnings"] == []
    assert result["plot_uri"] == f"s3://bucket/{FOLDER}loss_curves.png"
    assert s3.objects[FOLDER + "loss_curves.png"].startswith(PNG_MAGIC)
    assert s3.content_types[FOLDER + "loss_curves.png"] == "image/png"


def test_a_disagreeing_job_figure_is_a_warning_not_a_silent_swap() -> None:
    s3 = _S3({FOLDER + "training_artifacts/step_wise_training_metrics.csv": TRAINING})
    result = _operator(_job(training_loss=0.9), s3, plot=False).execute({})  # type: ignore[arg-type]
    assert result["figures"]["final_training_loss"] == pytest.approx(0.5)
    assert result["api"]["training_loss"] == 0.9
    assert "reports training loss 0.9" in result["warnings"][0]
    assert result["plot_uri"] is None and FOLDER + "loss_curves.png" not in s3.objects


def test_bad_job_arn_is_refused() -> None:
    op = _operator(_job(), _S3({}))
    op.job_arn = ""
    with pytest.raises(ValueError, match="job_arn"):
        op.execute({})  # type: ignore[arg-type]
