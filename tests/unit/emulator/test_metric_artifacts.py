"""Bedrock-shaped metric CSVs rendered from a training result, read back by core.metrics."""

from __future__ import annotations

import csv
import io
import math

import pytest

from airflow_bedrock_ft.core import metrics
from airflow_bedrock_ft.emulator.artifacts import (
    TRAINING_METRICS_PATH,
    VALIDATION_METRICS_PATH,
    render_artifacts,
)
from airflow_bedrock_ft.emulator.trainer import TrainingResult, train

RECORDS = [{"prompt": f"What is {a} plus {b}?", "completion": f"{a} plus {b} is {a + b}."}
           for a in range(6) for b in range(6)]


@pytest.fixture(scope="module")
def result() -> TrainingResult:
    return train(RECORDS[:30], RECORDS[30:], {"epochCount": "3", "batchSize": "4"},
                 customization_type="FINE_TUNING", base_model_id="amazon.titan-text-express-v1:0:8k")


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


def test_paths_are_the_documented_ones(result: TrainingResult) -> None:
    files = render_artifacts(result)
    assert set(files) == {
        "training_artifacts/step_wise_training_metrics.csv",
        "validation_artifacts/post_fine_tuning_validation/validation_metrics.csv",
    }
    assert TRAINING_METRICS_PATH in files
    assert VALIDATION_METRICS_PATH in files


def test_training_csv_has_one_row_per_step(result: TrainingResult) -> None:
    rows = _rows(render_artifacts(result)[TRAINING_METRICS_PATH])
    assert rows[0] == ["step_number", "epoch_number", "training_loss", "perplexity"]
    body = rows[1:]
    assert len(body) == result.steps == 3 * math.ceil(30 / 4)
    assert [int(r[0]) for r in body] == list(range(result.steps))
    assert [int(r[1]) for r in body] == [e for e in range(3) for _ in range(8)]
    for r, metric in zip(body, result.step_metrics, strict=True):
        assert float(r[2]) == metric["training_loss"]  # every digit survives
        assert float(r[3]) == pytest.approx(math.exp(float(r[2])))


def test_validation_csv_has_one_row_per_epoch(result: TrainingResult) -> None:
    rows = _rows(render_artifacts(result)[VALIDATION_METRICS_PATH])
    assert rows[0] == ["step_number", "epoch_number", "validation_loss", "perplexity"]
    assert [(int(r[0]), int(r[1])) for r in rows[1:]] == [(7, 0), (15, 1), (23, 2)]
    assert float(rows[-1][2]) == result.validation_loss


def test_no_validation_file_without_validation_data() -> None:
    result = train(RECORDS, None, {"epochCount": "1"}, customization_type="FINE_TUNING",
                   base_model_id="meta.llama3-1-8b-instruct-v1:0")
    assert set(render_artifacts(result)) == {TRAINING_METRICS_PATH}


def test_rendered_files_parse_back_with_core_metrics(result: TrainingResult) -> None:
    files = render_artifacts(result)
    training = metrics.parse_training_metrics(files[TRAINING_METRICS_PATH])
    validation = metrics.parse_validation_metrics(files[VALIDATION_METRICS_PATH])
    assert training == result.step_metrics
    assert validation == result.validation_metrics
    summary = metrics.summarize(training, validation)
    assert [e["epoch"] for e in summary["per_epoch"]] == [0, 1, 2]
    assert summary["per_epoch"][-1]["training_loss"] == pytest.approx(result.training_loss)
    # The job's trainingMetrics.trainingLoss and the summary's final training loss are one figure.
    assert summary["final_training_loss"] == pytest.approx(result.training_loss, rel=1e-12)
    assert summary["final_validation_loss"] == result.validation_loss
