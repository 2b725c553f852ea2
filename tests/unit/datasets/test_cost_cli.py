"""``airflow-bedrock-ft validate --epochs / --max-cost``: the printed estimate and the budget's
exit codes, with the built-in price table and the user's own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ds_helpers import NOVA_LITE, TITAN_EXPRESS, converse, dataset_with, pc

from airflow_bedrock_ft.datasets.cli import EXIT_OVER_BUDGET, EXIT_USAGE, main


@pytest.fixture(autouse=True)
def _region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def _tokens(out: str) -> int:
    doc = json.loads(out)
    return int(doc["totals"]["train"]["tokens"])


def test_epochs_prints_tokens_times_epochs_times_price(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = dataset_with(tmp_path / "train.jsonl", TITAN_EXPRESS, pc)
    assert main([str(path), "--model", TITAN_EXPRESS, "--json"]) == 0
    tokens = _tokens(capsys.readouterr().out)
    assert main([str(path), "--model", TITAN_EXPRESS, "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    usd = tokens * 3 * 0.008 / 1000
    assert f"{tokens} tokens x 3 epoch(s) x $0.008 per 1,000 tokens = " in out
    assert "price of 2024-04-19" in out and "$1.95 per month" in out
    assert main([str(path), "--model", TITAN_EXPRESS, "--epochs", "3", "--json"]) == 0
    cost = json.loads(capsys.readouterr().out)["cost_estimate"]
    assert cost["training_usd"] == pytest.approx(usd) and cost["epochs"] == 3 and cost["known"] is True


def test_max_cost_exits_non_zero_above_the_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = dataset_with(tmp_path / "train.jsonl", TITAN_EXPRESS, pc)
    assert main([str(path), "--model", TITAN_EXPRESS, "--epochs", "2", "--json"]) == 0
    usd = json.loads(capsys.readouterr().out)["cost_estimate"]["training_usd"]
    assert main([str(path), "--model", TITAN_EXPRESS, "--epochs", "2", "--max-cost", str(usd * 2)]) == 0
    capsys.readouterr()
    assert main([str(path), "--model", TITAN_EXPRESS, "--epochs", "2", "--max-cost", str(usd / 2)]) \
        == EXIT_OVER_BUDGET
    assert "Over budget: the estimated training cost" in capsys.readouterr().out


def test_unknown_price_fails_closed_unless_allowed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = dataset_with(tmp_path / "train.jsonl", NOVA_LITE, converse)
    args = [str(path), "--model", NOVA_LITE, "--epochs", "2"]
    assert main(args) == 0
    assert "estimated training cost: unknown" in capsys.readouterr().out
    assert main([*args, "--max-cost", "1000"]) == EXIT_OVER_BUDGET
    assert "cannot be checked" in capsys.readouterr().out
    assert main([*args, "--max-cost", "1000", "--allow-unknown-cost"]) == 0


def test_user_price_file_and_malformed_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = dataset_with(tmp_path / "train.jsonl", NOVA_LITE, converse)
    prices = tmp_path / "prices.jsonl"
    entry = {"model": "amazon.nova-lite-v1:0", "customization_type": "FINE_TUNING", "region": "us-east-1",
             "training_usd_per_1k_tokens": 2.0, "storage_usd_per_month": 1.0, "source": "sheet",
             "date": "2026-02-03"}
    prices.write_text(json.dumps(entry) + "\n")
    assert main([str(path), "--model", NOVA_LITE, "--epochs", "1", "--price-file", str(prices)]) == 0
    assert "x $2 per 1,000 tokens" in capsys.readouterr().out
    prices.write_text(json.dumps(entry) + "\n" + json.dumps({**entry, "date": "soon"}) + "\n")
    assert main([str(path), "--model", NOVA_LITE, "--epochs", "1", "--price-file", str(prices)]) == EXIT_USAGE
    assert f"{prices}:2: field 'date' must be YYYY-MM-DD" in capsys.readouterr().err


def test_bad_cost_arguments_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = dataset_with(tmp_path / "train.jsonl", TITAN_EXPRESS, pc)
    for extra in (["--epochs", "0"], ["--max-cost", "-1"], ["--max-cost", "cheap"],
                  ["--allow-unknown-cost"], ["--epochs", "2", "-p", "epochCount=3"]):
        with pytest.raises(SystemExit) as info:
            main([str(path), "--model", TITAN_EXPRESS, *extra])
        assert info.value.code == 2, extra
    assert "contradicts" in capsys.readouterr().err
