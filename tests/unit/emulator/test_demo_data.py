"""The demo dataset shipped with the package: current, within model limits, meaningful."""

from __future__ import annotations

import importlib.util
import json
from importlib import resources
from pathlib import Path
from types import ModuleType

import pytest

from airflow_bedrock_ft.core.models import resolve_model

DEMO = Path(str(resources.files("airflow_bedrock_ft") / "data" / "demo"))
FILES = ("train.jsonl", "validation.jsonl", "converse_train.jsonl", "converse_validation.jsonl")


def _load(name: str) -> list[dict]:
    return [json.loads(line) for line in (DEMO / name).read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def make_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_demo", DEMO / "make_demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_files_match_the_generator(make_demo: ModuleType) -> None:
    train, validation = make_demo.records()
    assert _load("train.jsonl") == train
    assert _load("validation.jsonl") == validation
    assert _load("converse_train.jsonl") == [make_demo.to_converse(r) for r in train]
    assert _load("converse_validation.jsonl") == [make_demo.to_converse(r) for r in validation]


def test_files_are_small() -> None:
    assert sum((DEMO / name).stat().st_size for name in FILES) < 300_000


def test_record_counts_fit_the_target_models() -> None:
    n_train, n_val = len(_load("train.jsonl")), len(_load("validation.jsonl"))
    llama = resolve_model("meta.llama3-1-8b-instruct-v1:0").customization("FINE_TUNING").limits
    nova = resolve_model("amazon.nova-micro-v1:0:128k").customization("FINE_TUNING").limits
    assert llama.min_records is not None and llama.max_validation_records is not None
    assert nova.min_records is not None
    assert n_train + n_val >= llama.min_records
    assert n_val <= llama.max_validation_records
    assert n_train >= nova.min_records
    assert len(_load("converse_train.jsonl")) == n_train


def test_validation_asks_known_facts_in_unseen_words() -> None:
    train, validation = _load("train.jsonl"), _load("validation.jsonl")
    train_prompts = {r["prompt"] for r in train}
    train_answers = {r["completion"] for r in train}
    assert not any(r["prompt"] in train_prompts for r in validation)
    assert all(r["completion"] in train_answers for r in validation)


def test_converse_records_are_well_formed() -> None:
    for record in _load("converse_train.jsonl")[:50]:
        assert record["schemaVersion"] == "bedrock-conversation-2024"
        assert [m["role"] for m in record["messages"]] == ["user", "assistant"]
        assert all(isinstance(m["content"][0]["text"], str) for m in record["messages"])
