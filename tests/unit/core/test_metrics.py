"""Parsing Bedrock's metric CSVs, finding them in an S3 listing, and summarising per epoch."""

from __future__ import annotations

import io
import json
import math

import pytest

from airflow_bedrock_ft.core.metrics import (
    FIGURES,
    MetricsParseError,
    figures,
    final_training_loss,
    find_metric_keys,
    format_summary,
    human,
    job_folder,
    load_job_metrics,
    parse_training_metrics,
    parse_validation_metrics,
    summarize,
)

TRAINING_CSV = b"""step_number,epoch_number,training_loss,perplexity
0,0,2.5,12.182493960703473
1,0,1.5,4.4816890703380645
2,1,1.0,2.718281828459045
3,1,0.5,1.6487212707001282
"""
VALIDATION_CSV = b"""step_number,epoch_number,validation_loss,perplexity
1,0,1.75,5.754602676005731
3,1,0.75,2.117000016612675
"""

JOB_ID = "a1b2c3d4e5f6"
JOB_ARN = f"arn:aws:bedrock:us-east-1:123456789012:model-customization-job/{JOB_ID}"
PREFIX = "out/run-1/"


def test_parse_training_metrics() -> None:
    rows = parse_training_metrics(TRAINING_CSV)
    assert rows[0] == {"step_number": 0, "epoch_number": 0, "training_loss": 2.5,
                       "perplexity": pytest.approx(math.exp(2.5))}
    assert [r["step_number"] for r in rows] == [0, 1, 2, 3]
    assert [r["epoch_number"] for r in rows] == [0, 0, 1, 1]
    assert all(isinstance(r["step_number"], int) for r in rows)


def test_parse_validation_metrics() -> None:
    rows = parse_validation_metrics(VALIDATION_CSV)
    assert [(r["step_number"], r["epoch_number"], r["validation_loss"]) for r in rows] == [
        (1, 0, 1.75), (3, 1, 0.75)]


def test_parser_tolerates_bom_crlf_case_and_extra_columns() -> None:
    data = ("\ufeffStep_Number,Epoch_Number,Training_Loss,Perplexity,learning_rate\r\n"
            "0,0,2.0,7.38905609893065,0.0001\r\n\r\n"
            "step_number,epoch_number,training_loss,perplexity,learning_rate\r\n"  # concatenated files
            "1,0,1.0,2.718281828459045,0.0001\r\n").encode("utf-8")
    rows = parse_training_metrics(data)
    assert [(r["step_number"], r["training_loss"]) for r in rows] == [(0, 2.0), (1, 1.0)]


def test_parser_reads_the_last_two_columns_when_the_loss_column_has_another_name() -> None:
    rows = parse_validation_metrics("step_number,epoch_number,eval_loss,perplexity\n5,2,0.25,1.28\n")
    assert rows == [{"step_number": 5, "epoch_number": 2, "validation_loss": 0.25, "perplexity": 1.28}]


def test_parser_computes_missing_perplexity_and_numbers_missing_steps() -> None:
    rows = parse_training_metrics("epoch_number,training_loss\n1,0.5\n1,\n2,0.25\n")
    assert [r["step_number"] for r in rows] == [0, 2]
    assert rows[1]["perplexity"] == pytest.approx(math.exp(0.25))


def test_parser_handles_empty_and_malformed_files() -> None:
    assert parse_training_metrics(b"") == []
    assert parse_training_metrics(b"step_number,epoch_number,training_loss,perplexity\n") == []
    with pytest.raises(MetricsParseError):
        parse_training_metrics(b"loss\n1.0\n")


def test_job_folder_accepts_id_or_arn() -> None:
    assert job_folder(JOB_ID) == job_folder(JOB_ARN) == f"model-customization-job-{JOB_ID}"


@pytest.mark.parametrize("validation_rel", [
    "validation_artifacts/post_fine_tuning_validation/validation_metrics.csv",
    "validation_artifacts/post_fine_tuning_validation/validation/validation_metrics.csv",
    "validation_artifacts/validation_metrics.csv",
])
def test_find_metric_keys_tolerates_layout_variants(validation_rel: str) -> None:
    base = f"{PREFIX}model-customization-job-{JOB_ID}/"
    keys = [f"{PREFIX}.write_access_check_file.tmp", base + "training_artifacts/step_wise_training_metrics.csv",
            base + validation_rel, base + "input_status/train/manifest.report.csv"]
    assert find_metric_keys(keys, JOB_ARN) == {
        "training": base + "training_artifacts/step_wise_training_metrics.csv",
        "validation": base + validation_rel,
    }


def test_find_metric_keys_prefers_the_documented_location() -> None:
    base = f"{PREFIX}model-customization-job-{JOB_ID}/validation_artifacts/"
    keys = [base + "validation_metrics.csv",
            base + "post_fine_tuning_validation/validation/validation_metrics.csv",
            base + "post_fine_tuning_validation/validation_metrics.csv"]
    assert find_metric_keys(keys, JOB_ID)["validation"] == keys[2]
    assert find_metric_keys(keys[:2], JOB_ID)["validation"] == keys[1]


def test_find_metric_keys_ignores_other_jobs() -> None:
    other = f"{PREFIX}model-customization-job-zzzzzzzzzzzz/training_artifacts/step_wise_training_metrics.csv"
    assert find_metric_keys([other], JOB_ID) == {"training": None, "validation": None}


def test_find_metric_keys_in_a_listing_of_the_job_folder_itself() -> None:
    keys = ["training_artifacts/step_wise_training_metrics.csv",
            "validation_artifacts/post_fine_tuning_validation/validation_metrics.csv"]
    assert find_metric_keys(keys, JOB_ID) == {"training": keys[0], "validation": keys[1]}


def test_summarize_reports_mean_training_loss_and_validation_loss_per_epoch() -> None:
    summary = summarize(parse_training_metrics(TRAINING_CSV), parse_validation_metrics(VALIDATION_CSV))
    assert summary["per_epoch"] == [
        {"epoch": 0, "training_loss": 2.0, "training_loss_last": 1.5, "validation_loss": 1.75, "steps": 2},
        {"epoch": 1, "training_loss": 0.75, "training_loss_last": 0.5, "validation_loss": 0.75, "steps": 2},
    ]
    assert summary["steps"] == 4
    assert summary["epochs"] == 2


def test_final_training_loss_is_the_mean_of_the_last_epoch_not_the_last_step() -> None:
    """report_metrics once showed the last step's loss (0.5) under the name the job uses for
    the last-epoch mean (0.75): one name, two numbers."""
    rows = parse_training_metrics(TRAINING_CSV)
    assert final_training_loss(rows) == 0.75
    assert summarize(rows)["final_training_loss"] == 0.75
    assert summarize(rows)["final_training_perplexity"] == pytest.approx(math.exp(0.75))
    # Epochs out of file order, uneven epoch sizes, no epoch column.
    shuffled = parse_training_metrics("step_number,epoch_number,training_loss\n0,2,0.3\n1,2,0.1\n2,2,0.2\n3,1,9\n")
    assert final_training_loss(shuffled) == pytest.approx(0.2)
    assert final_training_loss(parse_training_metrics("training_loss,perplexity\n4,1\n2,1\n")) == 3.0
    assert final_training_loss([]) is None


def test_summary_figures_on_known_csvs() -> None:
    validation = (b"step_number,epoch_number,validation_loss,perplexity\n"
                  b"1,0,1.75,5.75\n3,1,0.5,1.65\n5,2,0.9,2.46\n")
    training = TRAINING_CSV + b"4,2,0.25,1.28\n5,2,0.35,1.42\n"
    summary = summarize(parse_training_metrics(training), parse_validation_metrics(validation))
    assert summary["final_training_loss"] == pytest.approx(0.3)
    assert summary["final_validation_loss"] == 0.9
    assert summary["final_validation_perplexity"] == 2.46  # the file's own column
    assert summary["final_validation_step"] == 5
    assert (summary["best_validation_loss"], summary["best_step"], summary["best_epoch"]) == (0.5, 3, 1)
    assert summary["train_validation_gap"] == pytest.approx(0.9 - 0.3)
    assert summary["epochs"] == 3 and summary["steps"] == 6


def test_best_validation_loss_is_the_first_of_equal_minima() -> None:
    validation = parse_validation_metrics("step_number,epoch_number,validation_loss\n1,0,0.5\n3,1,0.5\n")
    summary = summarize([], validation)
    assert (summary["best_step"], summary["best_epoch"]) == (1, 0)
    assert summary["final_training_loss"] is None and summary["train_validation_gap"] is None


def test_series_is_tidy_one_row_per_observation() -> None:
    summary = summarize(parse_training_metrics(TRAINING_CSV), parse_validation_metrics(VALIDATION_CSV))
    series = summary["series"]
    assert len(series) == 4 + 2
    assert {tuple(sorted(r)) for r in series} == {("epoch", "loss", "perplexity", "split", "step")}
    assert [(r["split"], r["step"], r["loss"]) for r in series] == [
        ("training", 0, 2.5), ("training", 1, 1.5), ("training", 2, 1.0), ("training", 3, 0.5),
        ("validation", 1, 1.75), ("validation", 3, 0.75)]
    assert series[0]["perplexity"] == pytest.approx(math.exp(2.5))
    assert figures(summary) == {name: summary[name] for name in FIGURES}
    assert json.loads(json.dumps(summary)) == summary


def test_summarize_without_validation() -> None:
    summary = summarize(parse_training_metrics(TRAINING_CSV))
    assert [e["validation_loss"] for e in summary["per_epoch"]] == [None, None]
    assert summary["final_validation_loss"] is None
    assert summary["best_epoch"] is None
    assert summary["train_validation_gap"] is None
    assert summarize([])["per_epoch"] == []
    assert summarize([])["series"] == []


@pytest.mark.parametrize(("value", "text"), [
    (0.028593593788924745, "0.02859"), (1.0, "1.000"), (12.3456, "12.35"), (1234.567, "1235"),
    (3e-7, "3.000e-07"), (None, "-"), (7, "7"),
])
def test_human_rounding(value: object, text: str) -> None:
    assert human(value) == text


def test_format_summary_lists_each_epoch_rounded() -> None:
    text = format_summary(summarize(parse_training_metrics(TRAINING_CSV), parse_validation_metrics(VALIDATION_CSV)))
    lines = text.splitlines()
    assert lines[1].split() == ["0", "2", "2.000", "1.750"]
    assert lines[2].split() == ["1", "2", "0.7500", "0.7500"]
    assert "final training loss 0.7500 (mean of the last epoch)" in text
    assert "best validation loss 0.7500 at step 3 (epoch 1)" in text
    assert "train/validation gap 0" in text


class _FakeS3:
    """The two S3 calls load_job_metrics makes, over an in-memory bucket, two keys a page."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def list_objects_v2(self, *, Bucket: str, Prefix: str, ContinuationToken: str | None = None) -> dict:
        assert Bucket == "bucket"
        keys = sorted(k for k in self.objects if k.startswith(Prefix))
        start = int(ContinuationToken or 0)
        page = keys[start:start + 2]
        more = start + 2 < len(keys)
        return {"Contents": [{"Key": k} for k in page], "IsTruncated": more,
                **({"NextContinuationToken": str(start + 2)} if more else {})}

    def get_object(self, *, Bucket: str, Key: str) -> dict:
        return {"Body": io.BytesIO(self.objects[Key])}


def test_load_job_metrics_lists_fetches_and_summarises() -> None:
    base = f"{PREFIX}model-customization-job-{JOB_ID}/"
    s3 = _FakeS3({
        f"{PREFIX}.write_access_check_file.tmp": b"",
        base + "training_artifacts/step_wise_training_metrics.csv": TRAINING_CSV,
        base + "validation_artifacts/post_fine_tuning_validation/validation/validation_metrics.csv":
            VALIDATION_CSV,
        base + "input_status/a.csv": b"x",
        base + "validated_data/b.jsonl": b"{}",
    })
    result = load_job_metrics(s3, f"s3://bucket/{PREFIX.rstrip('/')}", JOB_ARN)
    assert result["training_key"] == base + "training_artifacts/step_wise_training_metrics.csv"
    assert result["validation_key"].endswith("validation/validation_metrics.csv")
    assert [e["validation_loss"] for e in result["per_epoch"]] == [1.75, 0.75]
    assert len(result["training_rows"]) == 4


def test_load_job_metrics_without_files() -> None:
    result = load_job_metrics(_FakeS3({}), "s3://bucket/out/", JOB_ID)
    assert result["training_key"] is None
    assert result["per_epoch"] == []
    with pytest.raises(ValueError, match="s3://"):
        load_job_metrics(_FakeS3({}), "bucket/out", JOB_ID)
