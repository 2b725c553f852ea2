"""The fine-tune operator's budget guard against the emulator: over budget, or unknown without
``allow_unknown_cost``, the task fails before any request reaches Bedrock (counted at the
emulator); within budget the job is submitted."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_bedrock_ft.operators.bedrock_ft import BedrockFineTuneCreateJobOperator

from .helpers import NOVA, ROLE

# A prepare step's XCom for 10,000 training tokens (the token totals are all the guard reads).
PREPARED = {
    "train_s3_uri": "s3://unused/train.jsonl",
    "validation_s3_uri": None,
    "report": {"model": NOVA, "customization_type": "FINE_TUNING", "epochs": 1,
               "totals": {"train": {"tokens": 10_000}, "validation": {"tokens": 500}}},
}


@pytest.fixture
def price_file(tmp_path: Path) -> str:
    """$0.5 per 1,000 tokens for the emulator's Nova Micro: 10,000 tokens x 2 epochs = $10."""
    path = tmp_path / "prices.jsonl"
    path.write_text(json.dumps({
        "model": "amazon.nova-micro-v1:0", "customization_type": "FINE_TUNING", "region": "us-east-1",
        "training_usd_per_1k_tokens": 0.5, "storage_usd_per_month": 2.0, "source": "test sheet",
        "date": "2026-05-06"}) + "\n")
    return str(path)


def _context() -> dict[str, Any]:
    return {"ti": mock.Mock(dag_id="cost_dag", task_id="tune", run_id=f"manual__{uuid.uuid4().hex}",
                            map_index=-1)}


def _operator(bucket: str, aws_conn: str, **kwargs: Any) -> BedrockFineTuneCreateJobOperator:
    return BedrockFineTuneCreateJobOperator(
        task_id="tune", base_model=NOVA, training_data=f"s3://{bucket}/ft/train.jsonl",
        output_s3_uri=f"s3://{bucket}/output/", role_arn=ROLE, hyperparameters={"epochCount": 2},
        aws_conn_id=aws_conn, deferrable=False, wait_for_completion=False, **kwargs,
    )


def _requests(emulator: Any) -> dict[str, int]:
    return dict(emulator.stats()["operations"])


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"max_cost_usd": 9.99, "cost_estimate": PREPARED}, r"\$10\.00 .* exceeds the budget of \$9\.99"),
        ({"max_cost_usd": "9.99", "cost_estimate": repr(PREPARED)}, r"exceeds the budget"),  # Jinja-rendered
        ({"max_cost_usd": 1000, "cost_estimate": PREPARED, "price_file": None}, r"unknown .* cannot be checked"),
        ({"max_cost_usd": 1000}, r"needs the token counts"),
        ({"max_cost_usd": "lots", "cost_estimate": PREPARED}, r"max_cost_usd must be"),
        ({"max_cost_usd": 5, "cost_estimate": {"totals": "?"}}, r"cost_estimate: .*no token totals"),
    ],
)
def test_over_budget_or_unknown_fails_before_any_request(
    emulator: Any, bucket: str, aws_conn: str, price_file: str, kwargs: dict[str, Any], needle: str
) -> None:
    kwargs = {"price_file": price_file, **kwargs}
    emulator.stats(clear=True)
    with pytest.raises(AirflowFailException, match=needle) as info:
        _operator(bucket, aws_conn, **kwargs).execute(_context())  # type: ignore[arg-type]
    assert "No job was submitted" in str(info.value)
    assert _requests(emulator) == {}
    assert emulator.client("bedrock").list_model_customization_jobs()["modelCustomizationJobSummaries"] == []


def test_within_budget_or_allowed_unknown_submits(
    emulator: Any, bucket: str, aws_conn: str, price_file: str, capfd: pytest.CaptureFixture[str]
) -> None:
    emulator.stats(clear=True)
    result = _operator(bucket, aws_conn, max_cost_usd=10, cost_estimate=PREPARED,
                       price_file=price_file).execute(_context())  # type: ignore[arg-type]
    assert result["job_arn"]
    assert _requests(emulator).get("CreateModelCustomizationJob") == 1
    assert "10000 tokens x 2 epoch(s) x $0.5 per 1,000 tokens = $10.00" in capfd.readouterr().out

    second = _operator(bucket, aws_conn, max_cost_usd=1, cost_estimate=PREPARED,
                       allow_unknown_cost=True).execute(_context())  # type: ignore[arg-type]
    assert second["job_arn"] != result["job_arn"]
    assert "estimated training cost: unknown" in capfd.readouterr().out
