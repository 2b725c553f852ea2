"""Property: the project never accepts a request that botocore or AWS's patterns reject.

Requests are generated from botocore's own ``CreateModelCustomizationJob`` input shape:
strings that match each pattern (then mutated: an appended space, NO-BREAK SPACE, line
terminator or non-ASCII digit, truncation, padding past the maximum length, empty), lengths
around min and max, lists around their size limits, nested structures, unions with zero, one
or two members, nulls, unknown keys, wrong types and non-finite numbers. Whatever
:func:`validate_request` accepts must pass botocore's ``ParamValidator`` on the input shape
and match every pattern both as a Java regex (:func:`java_fullmatch`) and, as an
independent second engine, with Python's ``re`` in ASCII mode: Java's ``.`` and ``$`` are
stricter than Python's, so a value Java matches always matches there too.
"""

from __future__ import annotations

import math
import re
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from airflow_bedrock_ft.core.java_regex import java_fullmatch
from airflow_bedrock_ft.core.models import MODELS, TEACHER_MODELS
from airflow_bedrock_ft.core.request import OPERATION, service_model, validate_request

INPUT_SHAPE = service_model().operation_model(OPERATION).input_shape

PROFILE = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI is stable without a database
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

#: Characters that tell Java's ASCII classes and line terminators from Python's defaults.
TRICKY = [
    " ",
    "\t",
    "\n",
    "\r",
    "\u000b",
    "\u0085",
    "\u00a0",
    "\u2028",
    "\u3000",
    "\u0662",
    "é",
    "-",
    "_",
    "a",
    "0",
]

HP_NAMES = sorted({hp.name for m in MODELS for c in m.customizations.values() for hp in c.hyperparameters})
MODEL_IDS = sorted({i for m in MODELS for i in m.identifiers})
TEACHERS = sorted(set(TEACHER_MODELS) | {f"us.{t}" for t in TEACHER_MODELS})


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly ``strategy``; sometimes a value of the wrong type or a null."""
    return st.one_of(
        strategy, strategy, strategy, strategy, strategy, strategy, st.none(), st.integers(-1, 1), st.just([])
    )


def _matching(pattern: str) -> st.SearchStrategy[str]:
    try:
        # Python's reading of the pattern: close to Java's, with Unicode \s \d \w, so it also
        # yields the characters where the two differ.
        return st.from_regex(pattern, fullmatch=True)
    except Exception:  # pragma: no cover - patterns from_regex cannot generate from
        return st.text(max_size=8)


def _mutate(draw: st.DrawFn, value: str, lo: int | None, hi: int | None) -> str:
    how = draw(
        st.sampled_from(["keep", "keep", "keep", "append", "prepend", "cut", "pad", "empty", "tricky"])
    )
    if how == "append":
        return value + draw(st.sampled_from(TRICKY))
    if how == "prepend":
        return draw(st.sampled_from(TRICKY)) + value
    if how == "cut" and value:
        return value[: draw(st.integers(0, len(value) - 1))]
    if how == "pad" and value and hi is not None:
        target = draw(st.sampled_from([hi - 1, hi, hi + 1]))
        return (value * (target // len(value) + 1))[: max(target, 0)]
    if how == "empty":
        return ""
    if how == "tricky":
        return draw(st.text(alphabet=st.sampled_from(TRICKY), min_size=0, max_size=max(3, (lo or 0) + 1)))
    return value


def _string(shape: Any, path: str) -> st.SearchStrategy[str]:
    if shape.enum:
        return st.one_of(
            st.sampled_from(list(shape.enum)), st.sampled_from(["", "fine_tuning", "FINE_TUNING "])
        )
    lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
    pattern = shape.metadata.get("pattern")
    if path == "baseModelIdentifier":
        base = st.one_of(
            st.sampled_from(MODEL_IDS),
            st.sampled_from(MODEL_IDS).map(lambda m: f"arn:aws:bedrock:us-east-1::foundation-model/{m}"),
            st.sampled_from(MODEL_IDS).map(
                lambda m: f"arn:aws:bedrock:us-east-1:123456789012:custom-model/{m}/abcdefghij12"
            ),
            st.sampled_from(MODEL_IDS).map(lambda m: m + ":999k"),
            st.sampled_from(["amazon.nova-micro-v1:0:300k", "my-custom-model"]),
        )
    elif path.endswith("teacherModelIdentifier"):
        base = st.sampled_from(TEACHERS)
    elif pattern:
        base = _matching(pattern)
    else:
        base = st.text(max_size=6)

    @st.composite
    def build(draw: st.DrawFn) -> str:
        return _mutate(draw, draw(base), lo, hi)

    return build()


def _number_text() -> st.SearchStrategy[str]:
    """Hyperparameter values as Bedrock receives them: strings, not all of them numbers."""
    plain = st.one_of(
        st.integers(-2, 300).map(str),
        st.floats(1e-8, 2.0).map(repr),
        st.floats(1e-8, 2.0).map(lambda x: f"{x:g}"),
    )
    return st.one_of(
        plain,
        plain,
        plain,
        plain.map(lambda s: f" {s}"),
        plain.map(lambda s: s.replace("1", "\u0661")),
        st.sampled_from(["", "nan", "inf", "1_0", "+3", "2.0", "Auto", "0x10"]),
    )


def strategy_for(shape: Any, path: str = "") -> st.SearchStrategy[Any]:
    kind = shape.type_name
    if kind == "structure":
        return _structure(shape, path)
    if kind == "list":
        lo, hi = shape.metadata.get("min", 0), shape.metadata.get("max")
        cap = 3 if hi is None or hi > 17 else hi + 1
        return st.lists(
            _maybe(strategy_for(shape.member, path + "[]")), min_size=max(0, lo - 1), max_size=cap
        )
    if kind == "map":
        if path == "hyperParameters":
            keys: st.SearchStrategy[Any] = st.one_of(st.sampled_from(HP_NAMES), st.text(max_size=4))
            values: st.SearchStrategy[Any] = _maybe(_number_text())
        else:
            keys = strategy_for(shape.key, path + ".<key>")
            values = _maybe(strategy_for(shape.value, path + ".<value>"))
        lo, hi = shape.metadata.get("min", 0), shape.metadata.get("max")
        return st.dictionaries(keys, values, min_size=max(0, lo - 1), max_size=min(hi + 1, 4) if hi else 4)
    if kind == "string":
        return _string(shape, path)
    if kind in ("integer", "long"):
        lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
        edges = [v for b in (lo, hi) if b is not None for v in (b - 1, b, b + 1)]
        return st.one_of(st.integers(-5, 1000), st.sampled_from(edges or [0]), st.booleans())
    if kind in ("float", "double"):
        lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
        return st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.sampled_from([b for b in (lo, hi) if b is not None] or [0.0]),
            st.floats(lo or 0.0, hi or 1.0),
        )
    if kind == "boolean":
        return st.one_of(st.booleans(), st.sampled_from(["true", 0]))
    raise AssertionError(f"no strategy for {kind} at {path}")


def _structure(shape: Any, path: str) -> st.SearchStrategy[dict[str, Any]]:
    members = shape.members
    required = set(shape.required_members)
    union = bool(shape.metadata.get("union"))

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        names = list(members)
        if union:
            count = draw(st.sampled_from([1, 1, 1, 1, 0, 2]))
            chosen = draw(st.permutations(names))[: min(count, len(names))]
        else:
            # customizationConfig is for DISTILLATION / RFT only: include it less often.
            chosen = [
                n
                for n in names
                if n in required
                or draw(
                    st.sampled_from([True, False, False] if n == "customizationConfig" else [True, False])
                )
            ]
            if draw(st.integers(0, 20)) == 0 and required:
                chosen.remove(draw(st.sampled_from(sorted(required))))
        value: dict[str, Any] = {}
        for name in chosen:
            child = strategy_for(members[name], f"{path}.{name}" if path else name)
            value[name] = draw(child if name in required else _maybe(child))
        if draw(st.integers(0, 30)) == 0:
            value["surprise"] = "x"
        return value

    return build()


REQUESTS = strategy_for(INPUT_SHAPE)


def _pattern_mismatches(shape: Any, value: Any, path: str = "") -> list[str]:
    """Strings in ``value`` that fail their shape's pattern with either engine."""
    kind = shape.type_name
    bad: list[str] = []
    if kind == "structure" and isinstance(value, dict):
        for name, item in value.items():
            if name in shape.members:
                bad += _pattern_mismatches(shape.members[name], item, f"{path}.{name}")
    elif kind == "list" and isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            bad += _pattern_mismatches(shape.member, item, f"{path}[{i}]")
    elif kind == "map" and isinstance(value, dict):
        for key, item in value.items():
            bad += _pattern_mismatches(shape.key, key, f"{path}.<key>")
            bad += _pattern_mismatches(shape.value, item, f"{path}.{key}")
    elif kind == "string" and isinstance(value, str):
        pattern = shape.metadata.get("pattern")
        if pattern and not java_fullmatch(pattern, value):
            bad.append(f"{path}: {value!r} fails Java pattern {pattern}")
        if pattern and not re.fullmatch(pattern, value, re.ASCII):
            bad.append(f"{path}: {value!r} fails pattern {pattern} in Python's re (ASCII)")
    return bad


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_non_finite(v) for v in value)
    return False


@PROFILE
@given(request=REQUESTS, check_model=st.booleans())
def test_accepted_requests_pass_botocore_and_the_api_patterns(
    request: dict[str, Any], check_model: bool
) -> None:
    from botocore.validate import ParamValidator

    if validate_request(request, check_model=check_model):
        event("refused")
        return
    event("accepted")
    report = ParamValidator().validate(request, INPUT_SHAPE)
    assert not report.has_errors(), report.generate_report()
    assert _pattern_mismatches(INPUT_SHAPE, request) == []
    assert not _non_finite(request), "JSON cannot carry NaN or infinity"
