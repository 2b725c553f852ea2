from __future__ import annotations

from typing import Any

import pytest

from airflow_bedrock_ft.core.request import (
    RequestValidationError,
    build_request,
    check_request,
    distillation_config,
    rft_config,
    validate_request,
)

ROLE = "arn:aws:iam::123456789012:role/BedrockFT"


def _request(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(
        job_name="job-1",
        custom_model_name="model-1",
        role_arn=ROLE,
        base_model="amazon.nova-micro-v1:0:128k",
        training_data="s3://bucket-a/train.jsonl",
        output_s3_uri="s3://bucket-a/output/",
    )
    kwargs.update(overrides)
    return build_request(**kwargs)


def _rules(params: dict[str, Any]) -> set[tuple[str, str]]:
    return {(p.path, p.rule) for p in validate_request(params)}


def test_minimal_request_is_valid() -> None:
    assert validate_request(_request()) == []


def test_every_field_and_the_conveniences() -> None:
    req = _request(
        customization_type="FINE_TUNING",
        validation_data=["s3://bucket-a/val1.jsonl", "s3://bucket-a/val2.jsonl"],
        hyperparameters={"epochCount": 2, "learningRate": 0.00001, "learningRateWarmupSteps": 5},
        job_tags={"team": "ml", "cost-center": "42"},
        custom_model_tags=[{"key": "stage", "value": "dev"}],
        custom_model_kms_key_id="alias/my-key",
        vpc_config={"subnet_ids": ["subnet-1"], "security_group_ids": ["sg-1"]},
        client_request_token="abc-123",
    )
    assert req["hyperParameters"] == {"epochCount": "2", "learningRate": "1e-05", "learningRateWarmupSteps": "5"}
    assert req["jobTags"] == [{"key": "team", "value": "ml"}, {"key": "cost-center", "value": "42"}]
    assert req["validationDataConfig"] == {
        "validators": [{"s3Uri": "s3://bucket-a/val1.jsonl"}, {"s3Uri": "s3://bucket-a/val2.jsonl"}]
    }
    assert req["vpcConfig"] == {"subnetIds": ["subnet-1"], "securityGroupIds": ["sg-1"]}
    assert validate_request(req) == []


def test_all_problems_at_once_with_path_value_and_rule() -> None:
    req = _request(job_name="bad name!", role_arn="not-an-arn", training_data="http://x/y")
    req["outputDataConfig"] = {}
    req["jobTags"] = [{"key": "k"}]
    with pytest.raises(RequestValidationError) as info:
        check_request(req)
    got = {(p.path, p.rule) for p in info.value.problems}
    assert {
        ("jobName", "pattern"),
        ("roleArn", "pattern"),
        ("trainingDataConfig.s3Uri", "pattern"),
        ("outputDataConfig.s3Uri", "required"),
        ("jobTags[0].value", "required"),
    } <= got
    text = str(info.value)
    assert "'bad name!'" in text and "jobName [pattern]" in text
    assert info.value.aws_message().startswith(f"{len(info.value.problems)} validation errors detected: ")


def test_lengths_enums_lists_and_unknown_fields() -> None:
    req = _request(job_name="a" * 64, customization_type="SOMETHING")
    req["validationDataConfig"] = {"validators": [{"s3Uri": "s3://bucket-a/v.jsonl"}] * 11}
    req["vpcConfig"] = {"subnetIds": [], "securityGroupIds": ["sg-1"] * 6}
    req["surprise"] = 1
    rules = _rules(req)
    assert ("jobName", "max_length") in rules
    assert ("customizationType", "enum") in rules
    assert ("validationDataConfig.validators", "max_items") in rules
    assert ("vpcConfig.subnetIds", "min_items") in rules
    assert ("vpcConfig.securityGroupIds", "max_items") in rules
    assert ("surprise", "unknown_field") in rules


def test_types_are_checked() -> None:
    req = _request()
    req["hyperParameters"] = {"epochCount": 2}  # not stringified
    req["jobName"] = 5
    rules = _rules(req)
    assert ("hyperParameters.epochCount", "type") in rules
    assert ("jobName", "type") in rules


def test_tagged_union_needs_exactly_one_member() -> None:
    req = _request(
        customization_type="DISTILLATION",
        training_data={
            "invocation_logs_config": {
                "invocation_log_source": {"s3Uri": "s3://logs-bucket/AWSLogs/"},
                "request_metadata_filters": {"equals": {"a": "1"}, "notEquals": {"b": "2"}},
            }
        },
        customization_config=distillation_config("amazon.nova-pro-v1:0", 1000),
    )
    assert ("trainingDataConfig.invocationLogsConfig.requestMetadataFilters", "union") in _rules(req)
    req["trainingDataConfig"]["invocationLogsConfig"]["requestMetadataFilters"] = {
        "andAll": [{"equals": {"a": "1"}}, {"notEquals": {"b": "2"}}]
    }
    assert _rules(req) == set()


def test_sensitive_values_are_not_echoed() -> None:
    req = _request(
        customization_type="DISTILLATION",
        training_data={
            "invocationLogsConfig": {
                "invocationLogSource": {"s3Uri": "s3://logs-bucket/AWSLogs/"},
                "requestMetadataFilters": {"equals": {"secret key!": "x", "k2": "y"}},
            }
        },
        customization_config=distillation_config("amazon.nova-pro-v1:0"),
    )
    problems = validate_request(req)
    assert problems
    for problem in problems:
        assert "secret key!" not in problem.message
        assert "secret key!" not in problem.aws_message()


@pytest.mark.parametrize(
    ("ctype", "config", "path"),
    [
        ("DISTILLATION", None, "customizationConfig.distillationConfig"),
        ("REINFORCEMENT_FINE_TUNING", None, "customizationConfig.rftConfig"),
        ("FINE_TUNING", distillation_config("amazon.nova-pro-v1:0"), "customizationConfig.distillationConfig"),
        ("IMPORTED", None, "customizationType"),
    ],
)
def test_cross_field_rules(ctype: str, config: dict[str, Any] | None, path: str) -> None:
    base = "amazon.nova-2-lite-v1:0:256k" if ctype == "REINFORCEMENT_FINE_TUNING" else "amazon.nova-micro-v1:0:128k"
    req = _request(customization_type=ctype, customization_config=config, base_model=base)
    assert path in {p.path for p in validate_request(req) if p.rule == "cross_field"}


def test_rft_request_with_typed_hyperparameters() -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:grader:$LATEST"
    req = _request(
        base_model="amazon.nova-2-lite-v1:0:256k",
        customization_type="REINFORCEMENT_FINE_TUNING",
        customization_config=rft_config(arn, {"epoch_count": 1, "batch_size": 32, "reasoning_effort": "high"}),
    )
    assert validate_request(req) == []
    req["customizationConfig"]["rftConfig"]["hyperParameters"]["batchSize"] = 8
    assert ("customizationConfig.rftConfig.hyperParameters.batchSize", "range") in _rules(req)


def test_model_rules_type_support_and_hyperparameters() -> None:
    req = _request(customization_type="CONTINUED_PRE_TRAINING")
    assert ("customizationType", "model") in _rules(req)
    req = _request(hyperparameters={"epochCount": 9, "batchSize": 1, "dropout": 0.1})
    problems = {p.path: p.message for p in validate_request(req)}
    assert "between 1 and 5" in problems["hyperParameters.epochCount"]
    assert "not a hyperparameter" in problems["hyperParameters.dropout"]
    assert "hyperParameters.batchSize" not in problems
    req = _request(base_model="acme.unknown-v1:0")
    assert ("baseModelIdentifier", "model") in _rules(req)
    # A bare name can be the caller's own custom model: only the service can tell.
    assert validate_request(_request(base_model="my-custom-model")) == []
    assert validate_request(_request(base_model="acme.unknown-v1:0"), check_model=False) == []


def test_tag_limits() -> None:
    req = _request(job_tags={f"k{i}": "v" for i in range(51)})
    assert ("jobTags", "too_many_tags") in _rules(req)
    req = _request(job_tags=[{"key": "a", "value": "1"}, {"key": "a", "value": "2"}])
    assert ("jobTags", "duplicate_key") in _rules(req)
