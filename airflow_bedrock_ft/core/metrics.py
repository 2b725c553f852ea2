"""Read the metric CSVs that a Bedrock customization job writes to its output S3 location.

Layout (bedrock-facts §3), under ``<output s3Uri>/model-customization-job-<jobId>/``::

    training_artifacts/step_wise_training_metrics.csv
        step_number,epoch_number,training_loss,perplexity
    validation_artifacts/post_fine_tuning_validation/validation_metrics.csv
        step_number,epoch_number,validation_loss,perplexity

Jobs have been seen writing the validation file one level deeper
(``post_fine_tuning_validation/validation/validation_metrics.csv``) or directly under
``validation_artifacts/``; :func:`find_metric_keys` accepts all three. The parsers accept a
byte-order mark, CRLF line ends, column names in any case, extra columns, and a loss column
under another name (AWS's own samples read "the last two columns" as loss and perplexity).

The parsers do no I/O; :func:`load_job_metrics` lists and fetches the files with an S3 client
the caller passes in (a boto3 client, or any object with ``list_objects_v2``/``get_object``).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow_bedrock_ft.core.s3 import split_s3_uri

__all__ = [
    "TRAINING_METRICS_NAME",
    "VALIDATION_METRICS_NAME",
    "MetricsParseError",
    "find_metric_keys",
    "format_summary",
    "job_folder",
    "load_job_metrics",
    "parse_training_metrics",
    "parse_validation_metrics",
    "summarize",
]

TRAINING_METRICS_NAME = "step_wise_training_metrics.csv"
VALIDATION_METRICS_NAME = "validation_metrics.csv"

# Preference order of the validation-file locations, documented first.
_VALIDATION_SUFFIXES = (
    "validation_artifacts/post_fine_tuning_validation/validation_metrics.csv",
    "validation_artifacts/post_fine_tuning_validation/validation/validation_metrics.csv",
    "validation_artifacts/validation_metrics.csv",
)
_TRAINING_SUFFIX = "training_artifacts/step_wise_training_metrics.csv"


class MetricsParseError(ValueError):
    """Raised when a metrics file is not a CSV with the expected columns."""


def _text(data: bytes | str) -> str:
    if isinstance(data, bytes):
        data = data.decode("utf-8-sig", errors="replace")
    return data.lstrip("\ufeff")


def _number(cell: str) -> float | None:
    cell = cell.strip()
    if not cell:
        return None
    try:
        value = float(cell)
    except ValueError:
        return None
    return value


def _parse(data: bytes | str, loss_name: str) -> list[dict[str, Any]]:
    reader = csv.reader(io.StringIO(_text(data)))
    header: list[str] | None = None
    for row in reader:
        if any(cell.strip() for cell in row):
            header = [cell.strip().lower() for cell in row]
            break
    if header is None:
        return []
    if len(header) < 2:
        raise MetricsParseError(f"metrics CSV needs at least a loss and a perplexity column, got {header}")
    idx = {name: i for i, name in enumerate(header)}
    loss_i = idx.get(loss_name, idx.get("loss"))
    ppl_i = idx.get("perplexity")
    if loss_i is None:
        # Fall back to AWS's sample-code reading: loss and perplexity are the last two columns.
        loss_i = len(header) - 2 if ppl_i in (None, len(header) - 1) else len(header) - 1
        if ppl_i is None:
            ppl_i = len(header) - 1
    step_i, epoch_i = idx.get("step_number", idx.get("step")), idx.get("epoch_number", idx.get("epoch"))
    rows: list[dict[str, Any]] = []
    for n, row in enumerate(reader):
        if not any(cell.strip() for cell in row):
            continue
        cells = row + [""] * (len(header) - len(row))
        loss = _number(cells[loss_i])
        if loss is None:
            continue  # a header repeated by concatenated files, or an empty cell
        ppl = _number(cells[ppl_i]) if ppl_i is not None else None
        step = _number(cells[step_i]) if step_i is not None else None
        epoch = _number(cells[epoch_i]) if epoch_i is not None else None
        rows.append({
            "step_number": int(step) if step is not None else n,
            "epoch_number": int(epoch) if epoch is not None else None,
            loss_name: loss,
            "perplexity": ppl if ppl is not None else _exp(loss),
        })
    return rows


def _exp(x: float) -> float:
    return math.exp(min(x, 700.0))


def parse_training_metrics(data: bytes | str) -> list[dict[str, Any]]:
    """Rows of ``step_wise_training_metrics.csv``.

    Each row: ``step_number`` (int), ``epoch_number`` (int, or None when the file has no such
    column), ``training_loss`` and ``perplexity`` (floats; perplexity is ``exp(loss)`` when the
    file lacks it). Rows without a numeric loss are skipped.

    :raises MetricsParseError: when the header has fewer than two columns.
    """
    return _parse(data, "training_loss")


def parse_validation_metrics(data: bytes | str) -> list[dict[str, Any]]:
    """Rows of ``validation_metrics.csv``, like :func:`parse_training_metrics` with
    ``validation_loss`` instead of ``training_loss``."""
    return _parse(data, "validation_loss")


def job_folder(job_id: str) -> str:
    """``model-customization-job-<id>`` for a job id or a job ARN."""
    return f"model-customization-job-{job_id.rstrip('/').rsplit('/', 1)[-1]}"


def find_metric_keys(keys: Iterable[str], job_id: str) -> dict[str, str | None]:
    """Pick the metric files of job ``job_id`` (id or ARN) from a listing of S3 keys.

    Returns ``{"training": key or None, "validation": key or None}``. Keys must lie in the
    job's ``model-customization-job-<id>/`` folder; when no key names any job folder (the
    listing was made inside it), keys are matched on their relative path alone. Of several
    validation files the documented location wins, then the extra ``validation/`` level, then
    ``validation_artifacts/validation_metrics.csv``, then any other
    ``validation_metrics.csv`` under ``validation_artifacts/``.
    """
    keys = list(keys)
    folder = job_folder(job_id) + "/"
    if any(folder in key for key in keys):
        rel = {key: key.split(folder, 1)[1] for key in keys if folder in key}
    elif not any("model-customization-job-" in key for key in keys):
        rel = {key: key for key in keys}
    else:
        rel = {}

    training = None
    ranked: list[tuple[int, str]] = []
    for key, path in rel.items():
        if path.endswith(_TRAINING_SUFFIX) and training is None:
            training = key
        if path.endswith(VALIDATION_METRICS_NAME) and "validation_artifacts/" in path:
            rank = next((i for i, s in enumerate(_VALIDATION_SUFFIXES) if path.endswith(s)),
                        len(_VALIDATION_SUFFIXES))
            ranked.append((rank, key))
    validation = min(ranked)[1] if ranked else None
    return {"training": training, "validation": validation}


def summarize(training_rows: Sequence[Mapping[str, Any]],
              validation_rows: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Per-epoch losses and final values of a job.

    ``per_epoch`` holds one entry per epoch seen in either file, in order:
    ``{"epoch", "training_loss", "training_loss_last", "validation_loss", "steps"}`` where
    ``training_loss`` is the **mean** of the step losses of that epoch, ``training_loss_last``
    the loss of its last step and ``validation_loss`` the last validation loss recorded for
    that epoch (None when there is none). Rows without an epoch number count as epoch 0.
    Also returned: ``final_training_loss`` (the last step's loss), ``final_validation_loss``
    (the last validation row), ``best_validation_loss`` and ``best_epoch``, ``steps`` and
    ``epochs``.
    """
    epochs: dict[int, dict[str, Any]] = {}

    def entry(epoch: Any) -> dict[str, Any]:
        e = int(epoch) if epoch is not None else 0
        if e not in epochs:
            epochs[e] = {"epoch": e, "losses": [], "validation_loss": None}
        return epochs[e]

    for row in training_rows:
        entry(row.get("epoch_number"))["losses"].append(float(row["training_loss"]))
    for row in validation_rows:
        entry(row.get("epoch_number"))["validation_loss"] = float(row["validation_loss"])

    per_epoch = []
    for e in sorted(epochs):
        losses = epochs[e]["losses"]
        per_epoch.append({
            "epoch": e,
            "training_loss": sum(losses) / len(losses) if losses else None,
            "training_loss_last": losses[-1] if losses else None,
            "validation_loss": epochs[e]["validation_loss"],
            "steps": len(losses),
        })
    val = [(float(r["validation_loss"]), r.get("epoch_number")) for r in validation_rows]
    best = min(val, key=lambda v: v[0]) if val else None
    return {
        "per_epoch": per_epoch,
        "final_training_loss": float(training_rows[-1]["training_loss"]) if training_rows else None,
        "final_validation_loss": val[-1][0] if val else None,
        "best_validation_loss": best[0] if best else None,
        "best_epoch": best[1] if best else None,
        "steps": len(training_rows),
        "epochs": len(per_epoch),
    }


def format_summary(summary: Mapping[str, Any]) -> str:
    """A small text table of :func:`summarize` output, for task logs."""

    def f(x: Any) -> str:
        return "-" if x is None else f"{x:.4f}"

    lines = ["epoch  train_loss(mean)  validation_loss"]
    for row in summary.get("per_epoch", []):
        lines.append(f"{row['epoch']:>5}  {f(row['training_loss']):>16}  {f(row['validation_loss']):>15}")
    lines.append(f"final training loss {f(summary.get('final_training_loss'))}, "
                 f"final validation loss {f(summary.get('final_validation_loss'))}")
    return "\n".join(lines)


def load_job_metrics(s3_client: Any, output_s3_uri: str, job_id: str) -> dict[str, Any]:
    """Find, fetch and summarise the metric files of one job.

    :param s3_client: a boto3 S3 client (only ``list_objects_v2`` and ``get_object`` are used).
    :param output_s3_uri: the job's ``outputDataConfig.s3Uri``.
    :param job_id: the job id or ARN.
    :return: :func:`summarize` output plus ``training_key``, ``validation_key`` (None when
        absent), ``training_rows`` and ``validation_rows``.
    """
    bucket, prefix = split_s3_uri(output_s3_uri)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    folder = prefix + job_folder(job_id) + "/"
    keys: list[str] = []
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": folder}
    while True:
        page = s3_client.list_objects_v2(**kwargs)
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
        if not page.get("IsTruncated"):
            break
        kwargs["ContinuationToken"] = page["NextContinuationToken"]
    found = find_metric_keys(keys, job_id)

    def fetch(key: str | None) -> bytes | None:
        if key is None:
            return None
        return bytes(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())

    training_data, validation_data = fetch(found["training"]), fetch(found["validation"])
    training = parse_training_metrics(training_data) if training_data is not None else []
    validation = parse_validation_metrics(validation_data) if validation_data is not None else []
    summary = summarize(training, validation)
    summary.update({
        "training_key": found["training"],
        "validation_key": found["validation"],
        "training_rows": training,
        "validation_rows": validation,
    })
    return summary
