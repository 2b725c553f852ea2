"""Requests that AWS (or botocore before it) rejects and that validation used to accept.

Each test pins one false accept: it passed validation before and must now be refused, with
the field path and the rule in the message.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_bedrock_ft.core.models import MODELS, HyperParameter, resolve_model
from airflow_bedrock_ft.core.request import (
    RequestValidationError,
    build_request,
    check_request,
    distillation_config,
    hyperparameters_to_strings,
    validate_request,
)

ROLE = "arn:aws:iam::123456789012:role/BedrockFT"
NOVA_MICRO = "amazon.nova-micro-v1:0:128k"


def _request(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(
        job_name="job-1",
        custom_model_name="model-1",
        role_arn=ROLE,
        base_model=NOVA_MICRO,
        training_data="s3://bucket-a/train.jsonl",
        output_s3_uri="s3://bucket-a/output/",
    )
    kwargs.update(overrides)
    return build_request(**kwargs)


def _problems(params: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(p.path, p.rule): p.message for p in validate_request(params)}


def test_the_baseline_request_is_valid() -> None:
    """Every test below changes one field of this request, which passes."""
    assert validate_request(_request()) == []


def test_empty_role_arn_is_checked_against_the_pattern() -> None:
    """roleArn="" has min length 0 in the shape and used to skip the pattern check."""
    problems = _problems(_request(role_arn=""))
    message = problems[("roleArn", "pattern")]
    assert "arn:aws(-[^:]+)?:iam::([0-9]{12})?:role/.+" in message


def test_empty_subnet_id_is_checked_against_the_pattern() -> None:
    """subnetIds=[""]: SubnetId has min length 0, but the pattern needs a character."""
    req = _request(vpc_config={"subnet_ids": [""], "security_group_ids": [""]})
    problems = _problems(req)
    assert "[-0-9a-zA-Z]+" in problems[("vpcConfig.subnetIds[0]", "pattern")]
    assert ("vpcConfig.securityGroupIds[0]", "pattern") in problems


def test_empty_training_data_config_is_refused() -> None:
    """trainingDataConfig={} passes botocore (both members optional) but names no data."""
    req = _request()
    req["trainingDataConfig"] = {}
    message = _problems(req)[("trainingDataConfig", "union")]
    assert "s3Uri" in message and "FINE_TUNING" in message
    with pytest.raises(RequestValidationError, match=r"trainingDataConfig \[union\]"):
        check_request(req)


def test_empty_training_data_config_names_invocation_logs_where_allowed() -> None:
    req = _request(
        customization_type="DISTILLATION",
        customization_config=distillation_config("amazon.nova-pro-v1:0"),
    )
    req["trainingDataConfig"] = {}
    assert "s3Uri | invocationLogsConfig" in _problems(req)[("trainingDataConfig", "union")]


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("customModelKmsKeyId", None, "customModelKmsKeyId"),
        ("validationDataConfig", {"validators": [None]}, "validationDataConfig.validators[0]"),
        ("jobTags", [None], "jobTags[0]"),
        ("hyperParameters", {"epochCount": None}, "hyperParameters.epochCount"),
        ("vpcConfig", {"subnetIds": [None], "securityGroupIds": ["sg-1"]}, "vpcConfig.subnetIds[0]"),
    ],
)
def test_null_members_are_refused_with_their_path(field: str, value: Any, path: str) -> None:
    """botocore's ParamValidator rejects None anywhere; an optional None used to pass."""
    req = _request()
    req[field] = value
    assert "must not be null" in _problems(req)[(path, "null")]


@pytest.mark.parametrize(
    "identifier",
    [
        "amazon.nova-micro-v1:0:999k",
        "amazon.nova-micro-v1:0:300k",  # Nova Lite's suffix
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0:300k",
        "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-micro-v1:0:999k/abcdefghijkl",
    ],
)
def test_context_suffix_must_be_one_the_model_has(identifier: str) -> None:
    """Any suffix used to resolve to the model; the message names the allowed identifiers."""
    message = _problems(_request(base_model=identifier))[("baseModelIdentifier", "model")]
    assert "Nova Micro" in message
    assert "amazon.nova-micro-v1:0:128k" in message


@pytest.mark.parametrize(
    "identifier",
    [
        "amazon.nova-micro-v1:0:128k",
        "amazon.nova-micro-v1:0",
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0:128k",
        "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-micro-v1:0:128k/abcdefghijkl",
        "my-custom-model",
    ],
)
def test_real_identifiers_arns_and_custom_models_still_pass(identifier: str) -> None:
    assert validate_request(_request(base_model=identifier)) == []


def test_every_catalog_identifier_is_accepted_by_its_model_only() -> None:
    for spec in MODELS:
        for identifier in spec.identifiers:
            assert spec.accepts_identifier(identifier)
            assert resolve_model(identifier) is spec
            assert spec.accepts_identifier(f"arn:aws:bedrock:us-east-1::foundation-model/{identifier}")
        assert not spec.accepts_identifier(spec.model_id + ":999k")
    micro, lite = resolve_model("amazon.nova-micro-v1:0"), resolve_model("amazon.nova-lite-v1:0")
    assert not micro.accepts_identifier(lite.customization_id.replace("lite", "micro"))


@pytest.mark.parametrize(
    "raw",
    [
        "\u0662",  # ARABIC-INDIC DIGIT TWO: int() reads it as 2
        "\uff12",  # FULLWIDTH DIGIT TWO
        " 2",
        "2 ",
        "2\n",
        "1_0",
        "2.0",
        "",
    ],
)
def test_integer_hyperparameters_are_plain_ascii(raw: str) -> None:
    """int() accepted Unicode digits, surrounding spaces and underscores."""
    message = _problems(_request(hyperparameters={"epochCount": raw}))[
        ("hyperParameters.epochCount", "hyperparameter")
    ]
    assert "ASCII digits" in message and NOVA_MICRO in message


@pytest.mark.parametrize("raw", ["+2", "2", "-0"])
def test_signed_ascii_integers_are_parsed(raw: str) -> None:
    spec = HyperParameter("n", int, -5, 5, None)
    assert spec.check(raw) is None
    assert spec.parse(raw) == int(raw)


@pytest.mark.parametrize("raw", ["nan", "inf", "1e-5 ", "\u0661e-5", "1_0.5", "0x1p-3", ""])
def test_float_hyperparameters_are_plain_ascii(raw: str) -> None:
    """float() accepted NaN, infinity, spaces, underscores and Unicode digits."""
    message = _problems(_request(hyperparameters={"learningRate": raw}))[
        ("hyperParameters.learningRate", "hyperparameter")
    ]
    assert "decimal number" in message


def test_integer_ranges_are_per_model() -> None:
    assert ("hyperParameters.epochCount", "hyperparameter") in _problems(
        _request(hyperparameters={"epochCount": "6"})
    )
    titan = "amazon.titan-text-express-v1:0:8k"
    assert validate_request(_request(base_model=titan, hyperparameters={"epochCount": "6"})) == []


@pytest.mark.parametrize("value", [1.2345678e-5, 0.1 + 0.2, 1e-7, 5e-05, 3.0000000000000004e-05])
def test_floats_keep_full_precision(value: float) -> None:
    """%g sent 1.2345678e-5 as 1.23457e-05: the job trained at another learning rate."""
    sent = hyperparameters_to_strings({"learningRate": value})
    assert sent is not None
    assert float(sent["learningRate"]) == value
    assert HyperParameter("learningRate", float, 0, 1, None).parse(sent["learningRate"]) == value


def test_float_from_the_issue_is_sent_as_its_shortest_round_trip() -> None:
    assert hyperparameters_to_strings({"learningRate": 1.2345678e-5}) == {"learningRate": "1.2345678e-05"}


def test_numpy_scalars_are_sent_as_numbers() -> None:
    np = pytest.importorskip("numpy")
    sent = hyperparameters_to_strings({"learningRate": np.float64(1.2345678e-5), "epochCount": np.int64(2)})
    assert sent == {"learningRate": "1.2345678e-05", "epochCount": "2"}


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_typed_numbers_are_refused(value: float) -> None:
    """JSON has no NaN: rftConfig's learningRate=NaN slipped through the range check."""
    arn = "arn:aws:lambda:us-east-1:123456789012:function:grader"
    req = _request(
        base_model="amazon.nova-2-lite-v1:0:256k",
        customization_type="REINFORCEMENT_FINE_TUNING",
        customization_config={"rftConfig": {"graderConfig": {"lambdaGrader": {"lambdaArn": arn}}}},
    )
    req["customizationConfig"]["rftConfig"]["hyperParameters"] = {"learningRate": value}
    assert ("customizationConfig.rftConfig.hyperParameters.learningRate", "range") in _problems(req)


@pytest.mark.parametrize(
    ("tags", "path"),
    [
        ({"team\u00a0a": "ml"}, "jobTags[0].key"),  # NO-BREAK SPACE: Python's \s, not Java's
        ({"team": "\u2003"}, "jobTags[0].value"),  # EM SPACE
    ],
)
def test_tag_patterns_use_java_ascii_whitespace(tags: dict[str, str], path: str) -> None:
    """TagKey is [a-zA-Z0-9\\s._:/=+@-]*; Python's Unicode \\s accepted any space."""
    assert (path, "pattern") in _problems(_request(job_tags=tags))


def test_dot_stops_at_java_line_terminators() -> None:
    """RoleArn ends in ".+": Java's "." does not match "\\r", Python's does."""
    for sep in ("\r", "\u2028", "\u0085", "\n"):
        assert ("roleArn", "pattern") in _problems(_request(role_arn=f"{ROLE}{sep}x"))


def test_lambda_arn_digits_are_ascii() -> None:
    """LambdaArn uses \\d{12}: Python's \\d matched Arabic-Indic digits."""
    arn = "arn:aws:lambda:us-east-1:" + "\u0661" * 12 + ":function:grader"
    req = _request(
        base_model="amazon.nova-2-lite-v1:0:256k",
        customization_type="REINFORCEMENT_FINE_TUNING",
        customization_config={"rftConfig": {"graderConfig": {"lambdaGrader": {"lambdaArn": arn}}}},
    )
    assert ("customizationConfig.rftConfig.graderConfig.lambdaGrader.lambdaArn", "pattern") in _problems(req)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("jobTags", ({"key": "a", "value": "b"},)),  # a tuple is fine for botocore ...
        (
            "trainingDataConfig",
            type("M", (dict,), {})(s3Uri="s3://bucket-a/t.jsonl"),
        ),  # ... a dict subclass too
    ],
)
def test_container_types_botocore_accepts_still_pass(field: str, value: Any) -> None:
    req = _request()
    req[field] = value
    assert validate_request(req) == []


def test_container_types_botocore_rejects_are_refused() -> None:
    from types import MappingProxyType

    req = _request()
    req["outputDataConfig"] = MappingProxyType({"s3Uri": "s3://bucket-a/output/"})
    req["jobTags"] = range(0)
    problems = _problems(req)
    assert ("outputDataConfig", "type") in problems
    assert ("jobTags", "type") in problems
