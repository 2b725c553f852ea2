"""Fixtures for the emulator's HTTP tests: an Airflow connection, clients, a bucket with data,
job requests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from .helpers import COUNTRIES, NO_RETRY, NOVA, ROLE, converse_record, jsonl


@pytest.fixture
def aws_conn(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Id of an Airflow connection to the emulator whose clients do not retry by themselves,
    so operators, sensors and triggers must cope with errors alone."""
    conn = emulator.connection()
    conn["extra"]["config_kwargs"] = {"retries": {"total_max_attempts": 1, "mode": "standard"}}
    monkeypatch.setenv("AIRFLOW_CONN_BEDROCK_EMU", json.dumps(conn))
    return "bedrock_emu"


@pytest.fixture
def clients(emulator: Any) -> dict[str, Any]:
    """boto3 clients for bedrock, bedrock-runtime and s3 pointed at the emulator."""
    return {
        "bedrock": emulator.client("bedrock", config=NO_RETRY),
        "runtime": emulator.client("bedrock-runtime", config=NO_RETRY),
        "s3": emulator.client("s3"),
    }


@pytest.fixture
def bedrock(clients: dict[str, Any]) -> Any:
    """A bedrock client without retries (so faults and errors surface at once)."""
    return clients["bedrock"]


@pytest.fixture
def bucket(clients: dict[str, Any]) -> str:
    """A fresh bucket holding ``train.jsonl`` (12 records) and ``validation.jsonl`` (8)."""
    name = f"data-{uuid.uuid4().hex[:12]}"
    s3 = clients["s3"]
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="ft/train.jsonl", Body=jsonl([converse_record(*c) for c in COUNTRIES]))
    s3.put_object(
        Bucket=name, Key="ft/validation.jsonl", Body=jsonl([converse_record(*c) for c in COUNTRIES[:8]])
    )
    return name


@pytest.fixture
def job_request(bucket: str) -> Callable[..., dict[str, Any]]:
    """Build a valid CreateModelCustomizationJob request; keyword arguments override fields."""

    def make(**overrides: Any) -> dict[str, Any]:
        suffix = uuid.uuid4().hex[:8]
        request: dict[str, Any] = {
            "jobName": f"job-{suffix}",
            "customModelName": f"model-{suffix}",
            "roleArn": ROLE,
            "baseModelIdentifier": NOVA,
            "trainingDataConfig": {"s3Uri": f"s3://{bucket}/ft/train.jsonl"},
            "validationDataConfig": {"validators": [{"s3Uri": f"s3://{bucket}/ft/validation.jsonl"}]},
            "outputDataConfig": {"s3Uri": f"s3://{bucket}/output/"},
            "hyperParameters": {"epochCount": "2"},
        }
        request.update(overrides)
        return {k: v for k, v in request.items() if v is not None}

    return make
