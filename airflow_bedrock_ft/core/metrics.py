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
    "FIGURES",
    "LOSS_PLOT_NAME",
    "TRAINING_METRICS_NAME",
    "VALIDATION_METRICS_NAME",
    "MetricsParseError",
    "figures",
    "final_training_loss",
    "find_metric_keys",
    "format_summary",
    "human",
    "job_folder",
    "job_metrics",
    "load_job_metrics",
    "parse_training_metrics",
    "parse_validation_metrics",
    "plot_key",
    "summarize",
    "upload_plot",
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
LOSS_PLOT_NAME = "loss_curves.png"


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


def final_training_loss(training_rows: Sequence[Mapping[str, Any]]) -> float | None:
    """The job's final training loss: the **mean** step loss of its last epoch.

    This is the figure a job reports as ``trainingMetrics.trainingLoss`` (the emulator computes
    it this way, and it is the only definition used in this package): a single step's loss is
    too noisy at small batch sizes to stand for a model. The last epoch is the highest
    ``epoch_number`` in the file (rows without one count as epoch 0). None without rows.
    """
    if not training_rows:
        return None
    by_epoch: dict[int, list[float]] = {}
    for row in training_rows:
        epoch = row.get("epoch_number")
        by_epoch.setdefault(int(epoch) if epoch is not None else 0, []).append(float(row["training_loss"]))
    last = by_epoch[max(by_epoch)]
    return sum(last) / len(last)


def _series(rows: Sequence[Mapping[str, Any]], loss_name: str, split: str) -> list[dict[str, Any]]:
    return [
        {
            "split": split,
            "step": int(row["step_number"]),
            "epoch": int(row["epoch_number"]) if row.get("epoch_number") is not None else None,
            "loss": float(row[loss_name]),
            "perplexity": float(row["perplexity"]) if row.get("perplexity") is not None
            else _exp(float(row[loss_name])),
        }
        for row in rows
    ]


def summarize(training_rows: Sequence[Mapping[str, Any]],
              validation_rows: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Summary figures, per-epoch losses and tidy per-step series of a job.

    Figures (None when the data for them is missing):

    - ``final_training_loss``: :func:`final_training_loss`, the mean step loss of the last
      epoch (Bedrock's ``trainingMetrics.trainingLoss``), and ``final_training_perplexity``,
      its ``exp``;
    - ``final_validation_loss`` / ``final_validation_perplexity`` / ``final_validation_step``:
      the last validation row;
    - ``best_validation_loss`` with its ``best_step`` and ``best_epoch`` (the first row with
      the lowest loss);
    - ``train_validation_gap``: ``final_validation_loss - final_training_loss`` (positive when
      the model does better on its training data than on unseen data);
    - ``steps`` (training rows), ``epochs`` (epochs seen in either file).

    ``per_epoch`` holds one entry per epoch seen in either file, in order:
    ``{"epoch", "training_loss", "training_loss_last", "validation_loss", "steps"}`` where
    ``training_loss`` is the mean of the step losses of that epoch, ``training_loss_last`` the
    loss of its last step and ``validation_loss`` the last validation loss recorded for that
    epoch. Rows without an epoch number count as epoch 0.

    ``series`` is tidy: one ``{"split", "step", "epoch", "loss", "perplexity"}`` row per
    observation, training rows first, each split in file order.
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
    validation = _series(validation_rows, "validation_loss", "validation")
    best = min(validation, key=lambda v: v["loss"]) if validation else None
    last = validation[-1] if validation else None
    train_final = final_training_loss(training_rows)
    return {
        "final_training_loss": train_final,
        "final_training_perplexity": _exp(train_final) if train_final is not None else None,
        "final_validation_loss": last["loss"] if last else None,
        "final_validation_perplexity": last["perplexity"] if last else None,
        "final_validation_step": last["step"] if last else None,
        "best_validation_loss": best["loss"] if best else None,
        "best_step": best["step"] if best else None,
        "best_epoch": best["epoch"] if best else None,
        "train_validation_gap": (
            last["loss"] - train_final if last is not None and train_final is not None else None
        ),
        "steps": len(training_rows),
        "epochs": len(per_epoch),
        "per_epoch": per_epoch,
        "series": _series(training_rows, "training_loss", "training") + validation,
    }


FIGURES = (
    "final_training_loss",
    "final_training_perplexity",
    "final_validation_loss",
    "final_validation_perplexity",
    "final_validation_step",
    "best_validation_loss",
    "best_step",
    "best_epoch",
    "train_validation_gap",
    "steps",
    "epochs",
)
"""The scalar figures of :func:`summarize`, in the order tables show them."""


def figures(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The scalar figures of a :func:`summarize` result (JSON primitives, for XCom)."""
    return {name: summary.get(name) for name in FIGURES}


def human(value: Any) -> str:
    """A number rounded for people: 4 significant digits, no exponent below a million,
    ``-`` for None; integers and other values as they are."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == 0 or 1e-4 <= abs(value) < 1e6:
        digits = max(0, 3 - math.floor(math.log10(abs(value)))) if value else 0
        return f"{value:.{digits}f}"
    return f"{value:.3e}"


def format_summary(summary: Mapping[str, Any]) -> str:
    """A text table of :func:`summarize` output for task logs, numbers rounded for people."""
    rows = [("epoch", "steps", "train_loss(mean)", "validation_loss")]
    for row in summary.get("per_epoch", []):
        rows.append((str(row["epoch"]), str(row["steps"]), human(row["training_loss"]),
                     human(row["validation_loss"])))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    best_at = summary.get("best_step")
    lines += [
        f"final training loss {human(summary.get('final_training_loss'))} (mean of the last epoch), "
        f"perplexity {human(summary.get('final_training_perplexity'))}",
        f"final validation loss {human(summary.get('final_validation_loss'))}, "
        f"perplexity {human(summary.get('final_validation_perplexity'))}",
        f"best validation loss {human(summary.get('best_validation_loss'))}"
        + (f" at step {best_at} (epoch {summary.get('best_epoch')})" if best_at is not None else ""),
        f"train/validation gap {human(summary.get('train_validation_gap'))}",
    ]
    return "\n".join(lines)


def plot_key(output_s3_uri: str, job_id: str, name: str = LOSS_PLOT_NAME) -> tuple[str, str]:
    """``(bucket, key)`` of a file written next to a job's artifacts:
    ``<output s3Uri>/model-customization-job-<id>/<name>``."""
    bucket, prefix = split_s3_uri(output_s3_uri)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, f"{prefix}{job_folder(job_id)}/{name}"


def upload_plot(s3_client: Any, output_s3_uri: str, job_id: str, png: bytes,
                name: str = LOSS_PLOT_NAME) -> str:
    """Upload a PNG next to the job's artifacts and return its ``s3://`` URI.

    :param s3_client: a boto3 S3 client (only ``put_object`` is used).
    :param output_s3_uri: the job's ``outputDataConfig.s3Uri``.
    :param job_id: the job id or ARN.
    :param png: the image, e.g. from :func:`airflow_bedrock_ft.core.plot.render_loss_curves`.
    """
    bucket, key = plot_key(output_s3_uri, job_id, name)
    s3_client.put_object(Bucket=bucket, Key=key, Body=png, ContentType="image/png")
    return f"s3://{bucket}/{key}"


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


def _api_figures(job: Mapping[str, Any]) -> dict[str, Any]:
    training = (job.get("trainingMetrics") or {}).get("trainingLoss")
    validation = [
        v.get("validationLoss") for v in job.get("validationMetrics") or [] if isinstance(v, Mapping)
    ]
    return {
        "training_loss": float(training) if training is not None else None,
        "validation_losses": [float(v) for v in validation if v is not None],
    }


def _agrees(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def job_metrics(job: Mapping[str, Any], s3_client: Any, *, plot: bool = True) -> dict[str, Any]:
    """Everything known about a finished job's losses, as JSON primitives (fit for XCom).

    Reads the job's step-wise CSVs with :func:`load_job_metrics`, checks them against the
    figures on the API (``trainingMetrics.trainingLoss``, ``validationMetrics``), and, when
    ``plot`` is true and there is something to draw, uploads the loss curves as
    ``loss_curves.png`` next to the job's artifacts (:func:`upload_plot`).

    When the CSVs are missing (a job without artifacts, or none readable), the figures fall
    back to the API's: the final training loss has one definition either way (the mean of the
    last epoch). A disagreement between the two is reported in ``warnings``, never hidden.

    :param job: a GetModelCustomizationJob response.
    :param s3_client: a boto3 S3 client (``list_objects_v2``, ``get_object``, ``put_object``).
    :param plot: render and upload the PNG (needs the ``plot`` extra).
    :return: ``job_arn``, ``job_name``, ``job_status``, ``custom_model_arn``,
        ``output_s3_uri``, ``figures`` (see :data:`FIGURES`), ``api`` (the API's figures),
        ``per_epoch``, ``series_lengths`` (rows per split), ``training_key``,
        ``validation_key``, ``plot_uri`` (None when not plotted), ``warnings``, and
        ``summary`` (the full :func:`summarize` output with its series).
    """
    job_arn = str(job.get("jobArn") or "")
    output = (job.get("outputDataConfig") or {}).get("s3Uri")
    if not job_arn or not output:
        raise ValueError(
            "the job has no jobArn or outputDataConfig.s3Uri: pass a GetModelCustomizationJob response"
        )
    summary = load_job_metrics(s3_client, output, job_arn)
    api = _api_figures(job)
    warnings: list[str] = []
    figs = figures(summary)
    if figs["final_training_loss"] is None and api["training_loss"] is not None:
        figs["final_training_loss"] = api["training_loss"]
        figs["final_training_perplexity"] = _exp(api["training_loss"])
        warnings.append(f"no training metrics CSV under {output}; the training loss is the job's own figure")
    elif figs["final_training_loss"] is not None and api["training_loss"] is not None and not _agrees(
        figs["final_training_loss"], api["training_loss"]
    ):
        warnings.append(
            f"the job reports training loss {api['training_loss']!r}, its CSV's last-epoch mean is "
            f"{figs['final_training_loss']!r} ({summary['training_key']})"
        )
    if figs["final_validation_loss"] is None and api["validation_losses"]:
        figs["final_validation_loss"] = api["validation_losses"][-1]
        figs["final_validation_perplexity"] = _exp(api["validation_losses"][-1])
        if figs["final_training_loss"] is not None:
            figs["train_validation_gap"] = figs["final_validation_loss"] - figs["final_training_loss"]
        warnings.append(
            f"no validation metrics CSV under {output}; the validation loss is the job's own figure"
        )
    plot_uri = None
    if plot and summary["series"]:
        from airflow_bedrock_ft.core.plot import render_loss_curves

        png = render_loss_curves(summary, title=str(job.get("jobName") or job_arn))
        plot_uri = upload_plot(s3_client, output, job_arn, png)
    return {
        "job_arn": job_arn,
        "job_name": job.get("jobName"),
        "job_status": job.get("status"),
        "custom_model_arn": job.get("outputModelArn"),
        "output_s3_uri": output,
        "figures": figs,
        "api": api,
        "per_epoch": summary["per_epoch"],
        "series_lengths": {
            split: sum(1 for r in summary["series"] if r["split"] == split)
            for split in ("training", "validation")
        },
        "training_key": summary["training_key"],
        "validation_key": summary["validation_key"],
        "plot_uri": plot_uri,
        "warnings": warnings,
        "summary": {
            **{k: v for k, v in summary.items() if k not in ("training_rows", "validation_rows")},
            **figs,
        },
    }
