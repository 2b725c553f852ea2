"""Lineage naming, and that nothing imports OpenLineage until a lineage method runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from airflow_bedrock_ft import lineage


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("s3://bucket/prepared/sha256-ab/train.jsonl", ("s3://bucket", "prepared/sha256-ab/train.jsonl")),
        ("s3://bucket", ("s3://bucket", "/")),
        (
            "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-micro-v1:0:128k/abc",
            ("arn:aws:bedrock:us-east-1:123456789012", "custom-model/amazon.nova-micro-v1:0:128k/abc"),
        ),
        (
            "arn:aws:bedrock:eu-west-1::foundation-model/amazon.titan-text-express-v1",
            ("arn:aws:bedrock:eu-west-1:", "foundation-model/amazon.titan-text-express-v1"),
        ),
        ("/data/raw.csv", ("file", "/data/raw.csv")),
        ("file:///data/raw.csv", ("file", "/data/raw.csv")),
    ],
)
def test_dataset_names_follow_openlineage_conventions(location: str, expected: tuple[str, str]) -> None:
    assert lineage.dataset_name(location) == expected
    if location.startswith("arn:"):
        assert ":".join(expected) == location


def test_base_model_arn_takes_the_region_of_the_job() -> None:
    job = "arn:aws:bedrock:eu-west-1:123456789012:model-customization-job/x/abc"
    assert lineage.base_model_arn("amazon.nova-micro-v1:0:128k", job) == (
        "arn:aws:bedrock:eu-west-1::foundation-model/amazon.nova-micro-v1:0:128k"
    )
    assert lineage.base_model_arn("amazon.nova-micro-v1:0:128k", None) is None
    custom = "arn:aws:bedrock:eu-west-1:123456789012:custom-model/x/abc"
    assert lineage.base_model_arn(custom, None) == custom


def test_data_locations_reads_uris_dicts_and_lists() -> None:
    assert lineage.data_locations(
        {"s3Uri": "s3://b/train.jsonl"}, ["s3://b/v1.jsonl", {"validators": [{"s3Uri": "s3://b/v2.jsonl"}]}]
    ) == ["s3://b/train.jsonl", "s3://b/v1.jsonl", "s3://b/v2.jsonl"]


def test_operators_do_not_import_openlineage() -> None:
    code = (
        "import sys\n"
        "import airflow_bedrock_ft.operators.bedrock_ft, airflow_bedrock_ft.operators.prepare\n"
        "import airflow_bedrock_ft.operators.evaluate\n"
        "print(sorted(m for m in sys.modules if m.startswith('openlineage') or m == 'airflow_bedrock_ft.lineage'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
