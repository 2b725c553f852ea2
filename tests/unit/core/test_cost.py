"""The cost estimate and the price table: arithmetic on known token counts, overrides,
malformed entries named by file and line, and "unknown" (never zero) without a price."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_bedrock_ft.core.cost import (
    BUILTIN_PRICE_FILE,
    CostEstimate,
    PriceFileError,
    check_budget,
    estimate,
    estimate_from_report,
    load_prices,
)

TITAN = "amazon.titan-text-express-v1"


def _entry(**overrides: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "model": "amazon.nova-micro-v1:0", "customization_type": "FINE_TUNING", "region": "us-east-1",
        "training_usd_per_1k_tokens": 0.5, "storage_usd_per_month": 3.25,
        "source": "test price sheet", "date": "2026-01-02",
    }
    doc.update(overrides)
    return doc


def _write(path: Path, *entries: object, raw: str = "") -> Path:
    lines = ["# my prices", ""] + [json.dumps(e) for e in entries]
    path.write_text("\n".join(lines) + ("\n" + raw if raw else "") + "\n")
    return path


def test_every_builtin_price_has_a_source_and_a_date() -> None:
    table = load_prices()
    assert len(table) >= 1
    for price in table.prices.values():
        assert price.source.strip() and price.date
        assert price.training_usd_per_1k_tokens is None or price.training_usd_per_1k_tokens > 0
        assert price.file.startswith(str(BUILTIN_PRICE_FILE) + ":")


def test_training_cost_is_tokens_times_epochs_times_price_per_thousand(tmp_path: Path) -> None:
    table = load_prices(_write(tmp_path / "p.jsonl", _entry()), include_builtin=False)
    cost = estimate(12_345, 999, 3, "amazon.nova-micro-v1:0:128k", "fine_tuning", "us-east-1", table)
    assert cost.billed_tokens == 37_035
    assert cost.training_usd == pytest.approx(37_035 * 0.5 / 1000)
    assert cost.storage_usd_per_month == 3.25
    assert cost.validation_tokens == 999  # reported, not billed
    assert cost.price_date == "2026-01-02" and cost.price_source == "test price sheet"
    assert cost.known and cost.reason == ""
    text = cost.format_text()
    assert "12345 tokens x 3 epoch(s) x $0.5 per 1,000 tokens = $18.52" in text
    assert "price of 2026-01-02" in text and "$3.25 per month" in text
    assert "999 validation tokens are not billed" in text


def test_builtin_titan_price_and_arn_forms() -> None:
    table = load_prices()
    arn = f"arn:aws:bedrock:us-east-1::foundation-model/{TITAN}:0:8k"
    a = estimate(1000, 0, 2, arn, "FINE_TUNING", "us-east-1", table)
    b = estimate(1000, 0, 2, TITAN, "FINE_TUNING", "US-EAST-1", table)
    assert a.training_usd == b.training_usd == pytest.approx(2000 * 0.008 / 1000)
    assert a.storage_usd_per_month == 1.95


def test_unknown_model_type_or_region_is_unknown_never_zero() -> None:
    table = load_prices()
    for model, ctype, region in [("amazon.nova-pro-v1:0", "FINE_TUNING", "us-east-1"),
                                 (TITAN, "CONTINUED_PRE_TRAINING", "us-east-1"),
                                 (TITAN, "FINE_TUNING", "eu-west-1"),
                                 (TITAN, "FINE_TUNING", None)]:
        cost = estimate(1000, 0, 2, model, ctype, region, table)
        assert cost.training_usd is None and cost.storage_usd_per_month is None
        assert not cost.known and cost.reason
        assert "unknown" in cost.format_text() and "$0.00" not in cost.format_text()
    assert "region" in estimate(1, 0, 1, TITAN, "FINE_TUNING", None, table).reason


def test_user_file_overrides_the_builtin_price(tmp_path: Path) -> None:
    mine = _write(tmp_path / "mine.jsonl", _entry(model=TITAN, training_usd_per_1k_tokens=0.02,
                                                   storage_usd_per_month=None, source="negotiated"))
    table = load_prices(mine)
    cost = estimate(1000, 0, 1, TITAN, "FINE_TUNING", "us-east-1", table)
    assert cost.training_usd == pytest.approx(0.02)
    assert cost.price_source == "negotiated"
    assert cost.storage_usd_per_month is None and "no storage price" in cost.reason
    assert table.files == [str(BUILTIN_PRICE_FILE), str(mine)]


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ('{"model": "x", ', "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (json.dumps(_entry(training_usd_per_1k_tokens=0)), "positive number"),
        (json.dumps(_entry(training_usd_per_1k_tokens="0.5")), "positive number"),
        (json.dumps(_entry(storage_usd_per_month=-1)), "positive number"),
        (json.dumps(_entry(training_usd_per_1k_tokens=None, storage_usd_per_month=None)), "neither"),
        (json.dumps(_entry(source="")), "'source' is required"),
        (json.dumps(_entry(date="last week")), "YYYY-MM-DD"),
        (json.dumps(_entry(region="virginia")), "AWS region"),
        (json.dumps(_entry(customization_type="LORA")), "customization_type"),
        (json.dumps({**_entry(), "price": 1}), "unknown field"),
    ],
)
def test_malformed_entry_fails_with_file_and_line(tmp_path: Path, bad: str, needle: str) -> None:
    path = _write(tmp_path / "p.jsonl", _entry(model=TITAN), raw=bad)
    with pytest.raises(PriceFileError, match=needle) as info:
        load_prices(path)
    assert info.value.file == str(path)
    assert info.value.line == 4  # comment, blank, one good entry, then the bad one
    assert str(info.value).startswith(f"{path}:4: ")


def test_duplicate_entry_names_both_lines(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.jsonl", _entry(), _entry(model="amazon.nova-micro-v1:0:128k"))
    with pytest.raises(PriceFileError, match=r"p.jsonl:4: .*already priced on line 3"):
        load_prices(path)


def test_missing_price_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PriceFileError, match=r"nope\.jsonl: cannot read"):
        load_prices(tmp_path / "nope.jsonl")


def test_budget_check_and_fail_closed(tmp_path: Path) -> None:
    table = load_prices(_write(tmp_path / "p.jsonl", _entry()), include_builtin=False)
    cost = estimate(10_000, 0, 2, "amazon.nova-micro-v1:0", "FINE_TUNING", "us-east-1", table)  # $10
    assert check_budget(cost, 10.0) is None
    refused = check_budget(cost, 9.99)
    assert refused is not None and "$10.00" in refused and "$9.99" in refused
    unknown = estimate(10_000, 0, 2, TITAN, "FINE_TUNING", "us-east-1", table)
    assert "unknown" in (check_budget(unknown, 1000.0) or "")
    assert check_budget(unknown, 1000.0, allow_unknown=True) is None


def test_estimate_from_a_dataset_report_and_round_trip(tmp_path: Path) -> None:
    table = load_prices(_write(tmp_path / "p.jsonl", _entry()), include_builtin=False)
    report = {"model": "amazon.nova-micro-v1:0:128k", "customization_type": "FINE_TUNING", "epochs": 2,
              "totals": {"train": {"tokens": 4000}, "validation": {"tokens": 100}}}
    cost = estimate_from_report(report, prices=table, region="us-east-1")
    assert cost.billed_tokens == 8000 and cost.training_usd == pytest.approx(4.0)
    assert estimate_from_report(report, prices=table, region="us-east-1", epochs=5).billed_tokens == 20_000
    assert CostEstimate.from_dict(json.loads(json.dumps(cost.to_dict()))) == cost
    with pytest.raises(ValueError, match=r"totals\.train\.tokens"):
        estimate_from_report({"epochs": 1}, prices=table, region="us-east-1")
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        estimate(1, 0, 0, TITAN, "FINE_TUNING", "us-east-1", table)
