from __future__ import annotations

import pytest

from airflow_bedrock_ft.core.models import (
    MODELS,
    CustomizationType,
    DataFormat,
    UnknownModelError,
    UnsupportedCustomizationError,
    resolve_model,
)
from airflow_bedrock_ft.core.request import service_model


@pytest.mark.parametrize(
    ("identifier", "expected"),
    [
        ("amazon.nova-lite-v1:0:300k", "amazon.nova-lite-v1:0"),
        ("amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0"),
        ("meta.llama3-1-8b-instruct-v1:0", "meta.llama3-1-8b-instruct-v1:0"),
        ("meta.llama3-1-8b-instruct-v1:0:128k", "meta.llama3-1-8b-instruct-v1:0"),
        ("amazon.titan-text-express-v1:0:8k", "amazon.titan-text-express-v1"),
        ("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0:128k", "amazon.nova-micro-v1:0"),
        (
            "arn:aws:bedrock:us-west-2:123456789012:custom-model/amazon.nova-lite-v1:0:300k/abcdefghij12",
            "amazon.nova-lite-v1:0",
        ),
    ],
)
def test_resolve_every_form_bedrock_accepts(identifier: str, expected: str) -> None:
    assert resolve_model(identifier).model_id == expected


def test_unknown_model_lists_known_ones() -> None:
    with pytest.raises(UnknownModelError, match=r"amazon\.nova-micro-v1:0:128k"):
        resolve_model("acme.unknown-v1:0")


def test_customization_ids_match_botocore_pattern() -> None:
    import re

    pattern = service_model().shape_for("BaseModelIdentifier").metadata["pattern"]
    for model in MODELS:
        assert re.fullmatch(pattern, model.customization_id), model.customization_id


def test_unsupported_type_names_the_supported_ones() -> None:
    nova = resolve_model("amazon.nova-micro-v1:0:128k")
    with pytest.raises(UnsupportedCustomizationError, match="FINE_TUNING, DISTILLATION"):
        nova.customization(CustomizationType.CONTINUED_PRE_TRAINING)


def test_formats_and_limits_follow_the_guide() -> None:
    assert resolve_model("amazon.nova-lite-v1:0:300k").customization("FINE_TUNING").data_format is (
        DataFormat.CONVERSE
    )
    haiku = resolve_model("anthropic.claude-3-haiku-20240307-v1:0:200k").customization("FINE_TUNING")
    assert haiku.data_format is DataFormat.ANTHROPIC
    assert haiku.limits.min_records == 32
    lite = resolve_model("amazon.titan-text-lite-v1:0:4k").customization("FINE_TUNING").limits
    assert lite.token_limit(1) == 4096
    assert lite.token_limit(2) == 4096
    assert lite.token_limit(3) == 2048


def test_hyperparameter_checks() -> None:
    nova = resolve_model("amazon.nova-micro-v1:0").customization("FINE_TUNING")
    epochs = nova.hyperparameter("epochCount")
    assert epochs is not None
    assert epochs.check("2") is None
    assert "between 1 and 5" in (epochs.check("6") or "")
    assert "integer" in (epochs.check("2.5") or "")
    assert nova.defaults()["epochCount"] == "2"
