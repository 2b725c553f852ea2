"""Bedrock-shaped output artifacts of an emulated customization job.

Bedrock writes, under ``<outputDataConfig.s3Uri>/model-customization-job-<jobId>/``, a CSV of
step-wise training metrics and, when the job had validation data, a CSV of validation metrics
(bedrock-facts §3): one training row per optimisation step, one validation row per epoch
end, with ``step_number`` and ``epoch_number`` counted from 0 (a validation row carries the
last step of its epoch). :func:`render_artifacts` produces those files from a
:class:`~airflow_bedrock_ft.emulator.trainer.TrainingResult`; the emulator uploads them. The
model weights are not written: Bedrock keeps them in its own storage, and so does the emulator.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_bedrock_ft.emulator.trainer import TrainingResult

TRAINING_METRICS_PATH = "training_artifacts/step_wise_training_metrics.csv"
VALIDATION_METRICS_PATH = "validation_artifacts/post_fine_tuning_validation/validation_metrics.csv"
TRAINING_COLUMNS = ("step_number", "epoch_number", "training_loss", "perplexity")
VALIDATION_COLUMNS = ("step_number", "epoch_number", "validation_loss", "perplexity")


def _csv(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        # repr() keeps every digit of a float, as Bedrock's files do.
        writer.writerow([repr(float(row[c])) if isinstance(row[c], float) else row[c] for c in columns])
    return buf.getvalue().encode("utf-8")


def render_artifacts(result: TrainingResult) -> dict[str, bytes]:
    """The metric files of a finished job, keyed by path relative to the job's output folder.

    The validation file is present only when the job computed validation metrics.
    """
    files = {TRAINING_METRICS_PATH: _csv(TRAINING_COLUMNS, result.step_metrics)}
    if result.validation_metrics:
        files[VALIDATION_METRICS_PATH] = _csv(VALIDATION_COLUMNS, result.validation_metrics)
    return files
