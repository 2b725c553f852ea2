"""Pieces of the runner that need no endpoint: the token bucket, settings, model ids."""

from __future__ import annotations

import pytest

from airflow_bedrock_ft.core.models import on_demand_model_id
from airflow_bedrock_ft.core.retry import is_transient_error
from airflow_bedrock_ft.evaluation.runner import EvaluationConfig, ModelSpecifier, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_spaces_requests_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(4.0, clock=clock)
    waits = [bucket.reserve() for _ in range(5)]  # all asked at once
    assert waits == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    clock.now += 10.0  # idle: no credit beyond the burst
    assert [bucket.reserve(), bucket.reserve()] == pytest.approx([0.0, 0.25])


def test_token_bucket_burst_after_idle() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, burst=3, clock=clock)
    clock.now += 5.0
    assert [bucket.reserve() for _ in range(4)] == pytest.approx([0.0, 0.0, 0.0, 0.5])
    with pytest.raises(ValueError, match="rate must be positive"):
        TokenBucket(0)


@pytest.mark.parametrize(
    ("identifier", "expected"),
    [
        ("amazon.nova-micro-v1:0:128k", "amazon.nova-micro-v1:0"),
        ("amazon.titan-text-express-v1:0:8k", "amazon.titan-text-express-v1"),
        ("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0:300k", "amazon.nova-lite-v1:0"),
        ("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0"),
        ("amazon.nova-micro-v1:0", "amazon.nova-micro-v1:0"),
        ("us.amazon.nova-micro-v1:0", "us.amazon.nova-micro-v1:0"),
        ("arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abcdefghijkl",
         "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abcdefghijkl"),
        ("acme.unknown-v1:0:4k", "acme.unknown-v1:0:4k"),
    ],
)
def test_on_demand_model_id(identifier: str, expected: str) -> None:
    assert on_demand_model_id(identifier) == expected


def test_model_not_ready_is_transient() -> None:
    from botocore.exceptions import ClientError

    err = ClientError({"Error": {"Code": "ModelNotReadyException", "Message": "loading"},
                       "ResponseMetadata": {"HTTPStatusCode": 429}}, "Converse")
    assert is_transient_error(err)
    bad = ClientError({"Error": {"Code": "ValidationException", "Message": "no"},
                       "ResponseMetadata": {"HTTPStatusCode": 400}}, "Converse")
    assert not is_transient_error(bad)


def test_labels() -> None:
    assert ModelSpecifier.parse("amazon.nova-micro-v1:0") == ModelSpecifier("amazon.nova-micro-v1:0", "amazon.nova-micro-v1:0")
    assert ModelSpecifier.parse("base=amazon.nova-micro-v1:0") == ModelSpecifier("base", "amazon.nova-micro-v1:0")
    config = EvaluationConfig(model="arn:x", data="h.jsonl", baselines=["base=m1", "m2"])
    assert [s.label for s in config.specifiers()] == ["candidate", "base", "m2"]
    with pytest.raises(ValueError, match="repeated: base"):
        EvaluationConfig(model="m", data="h", baselines=["base=a", "base=b"]).specifiers()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"concurrency": 0}, "concurrency"), ({"rate": -1.0}, "rate"), ({"max_failure_share": 2.0}, "max_failure_share"),
     ({"max_tokens": 0}, "max_tokens"), ({"max_attempts": 0}, "max_attempts")],
)
def test_bad_settings_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EvaluationConfig(model="m", data="h", **kwargs).check()
