"""Java-regex semantics of AWS's patterns, checked on the patterns botocore ships."""

from __future__ import annotations

import re

import pytest

from airflow_bedrock_ft.core.java_regex import (
    UnsupportedJavaRegexError,
    compile_java,
    java_fullmatch,
    translate,
)
from airflow_bedrock_ft.core.request import service_model


def _patterns(service: str = "bedrock") -> dict[str, str]:
    """Every pattern in the service model's input and output shapes, by shape name."""
    model = service_model(service)
    found: dict[str, str] = {}
    seen: set[str] = set()

    def walk(shape: object) -> None:
        name = shape.name  # type: ignore[attr-defined]
        if name in seen:
            return
        seen.add(name)
        pattern = shape.metadata.get("pattern")  # type: ignore[attr-defined]
        if pattern:
            found[name] = pattern
        kind = shape.type_name  # type: ignore[attr-defined]
        if kind == "structure":
            for member in shape.members.values():  # type: ignore[attr-defined]
                walk(member)
        elif kind == "list":
            walk(shape.member)  # type: ignore[attr-defined]
        elif kind == "map":
            walk(shape.key)  # type: ignore[attr-defined]
            walk(shape.value)  # type: ignore[attr-defined]

    for op in model.operation_names:
        operation = model.operation_model(op)
        for shape in (operation.input_shape, operation.output_shape):
            if shape is not None:
                walk(shape)
    return found


BEDROCK_PATTERNS = _patterns()


def test_the_model_has_patterns_worth_checking() -> None:
    assert len(BEDROCK_PATTERNS) > 50
    assert {"RoleArn", "TagKey", "BaseModelIdentifier", "LambdaArn", "S3Uri"} <= set(BEDROCK_PATTERNS)


@pytest.mark.parametrize("name", sorted(BEDROCK_PATTERNS))
def test_every_bedrock_pattern_translates_and_compiles(name: str) -> None:
    compiled = compile_java(BEDROCK_PATTERNS[name])
    assert compiled.flags & re.ASCII


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        ("RoleArn", "arn:aws:iam::123456789012:role/x", ["arn:aws:iam::123456789012:role/x\ry", ""]),
        ("TagKey", "team a\tb", ["team\u00a0a", "team\u3000a"]),
        ("RequestMetadataMapKeyString", "k $v", ["k\u2028v"]),
        (
            "LambdaArn",
            "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST",
            [
                "arn:aws:lambda:us-east-\u0661:123456789012:function:f",
                "arn:aws:lambda:us-east-1:123456789012:function:f\n",
            ],
        ),
        ("CustomModelUnitsVersion", "v1.0", ["v\u0661.0", "v1\n0"]),
        ("SubnetId", "subnet-1", ["", "subnet_1"]),
        ("IdempotencyToken", "abc-123", ["abc-", "-abc"]),
        ("PaginationToken", "abc", ["a b", "a\u000bb"]),
        ("AutomatedReasoningPolicyDescription", "any\nthing\u2028", [""]),
        ("AutomatedReasoningPolicyDefinitionTypeName", "Größe_1 Zähler", ["1abc", "a  b", "a-b"]),
        ("AutomatedReasoningPolicyName", "my-policy_1 x", ["my.policy"]),
        ("CustomModelDeploymentIdentifier", "my-deployment", ["my deployment"]),
    ],
)
def test_bedrock_patterns_match_as_java_does(name: str, good: str, bad: list[str]) -> None:
    pattern = BEDROCK_PATTERNS[name]
    assert java_fullmatch(pattern, good), (pattern, good)
    for value in bad:
        assert not java_fullmatch(pattern, value), (pattern, value)


def test_python_would_have_accepted_what_java_rejects() -> None:
    """The reason for the translation: plain re gives other answers on these patterns."""
    assert re.fullmatch(BEDROCK_PATTERNS["TagKey"], "team\u00a0a")
    assert re.fullmatch(BEDROCK_PATTERNS["RoleArn"], "arn:aws:iam::123456789012:role/x\ry")
    assert re.fullmatch(BEDROCK_PATTERNS["CustomModelUnitsVersion"], "v\u0661.0")


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        (r"a$", "a", True),
        (r"a$", "a\n", False),  # whole-match: the terminator itself is not matched
        (r"a$\n", "a\n", True),  # Java's $ matches before a final line terminator
        (r"a$\r\n", "a\r\n", True),
        (r"a\r$\n", "a\r\n", False),  # ... but never between \r and \n
        (r"a\Z\n", "a\n", True),
        (r"a\z\n", "a\n", False),
        (r"\d+", "\u0662", False),
        (r"\w+", "é", False),
        (r"\s", "\u00a0", False),
        (r"\s", "\u000b", True),
        (r"\S", "\u00a0", True),
        (r".", "\u0085", False),
        (r".", "\u000b", True),
        (r"[^a]", "\n", True),
        (r"\p{Lu}\p{Ll}", "Éa", True),
        (r"\P{L}", "a", False),
        (r"\p{Alpha}", "é", False),  # POSIX classes are ASCII in Java
        (r"\p{IsL}", "ж", True),
        (r"[a-c-e]", "-", True),  # a hyphen after a range is literal
        (r"[0-9-_]+", "1-_", True),
        (r"[]a]+", "]a", True),
        (r"\Qa.b\E", "a.b", True),
        (r"\Qa.b\E", "axb", False),
        (r"\x41\u0042\x{43}\0104", "ABCD", True),
        (r"\h", "\u3000", True),
        (r"\v", "\u2028", True),
        (r"(?i)", "", None),
        (r"(a)\1", "aa", True),
        (r"(?<x>a)\k<x>", "aa", True),
        (r"a{2,3}+", "aaa", True),
    ],
)
def test_java_semantics(pattern: str, value: str, matches: bool | None) -> None:
    if matches is None:
        with pytest.raises(UnsupportedJavaRegexError):
            translate(pattern)
        return
    assert java_fullmatch(pattern, value) is matches


@pytest.mark.parametrize(
    "pattern",
    [r"[a[b]]", r"[a-z&&[^b]]", r"(?s).", r"a{,3}", r"a{", r"\p{IsLatin}", r"[z-a]", "\\", r"\y"],
)
def test_constructs_without_a_faithful_translation_are_refused(pattern: str) -> None:
    """Refused rather than matched with Python's meaning (nested classes, intersections,
    inline flags) or accepted where Java itself rejects the pattern."""
    with pytest.raises(UnsupportedJavaRegexError, match="offset"):
        compile_java(pattern)
