"""The tag registry against the emulator over real HTTP: promote, demote, find, roll back."""

from __future__ import annotations

import datetime
import itertools
import re
from collections.abc import Callable
from typing import Any

import botocore.session
import pytest

from airflow_bedrock_ft.core.registry import TAG_PREFIX, ModelRegistry, RegistryError

from .helpers import wait_for

_SHAPES = botocore.session.get_session().get_service_model("bedrock")
VALUE_PATTERN = _SHAPES.shape_for("TagValue").metadata["pattern"]


@pytest.fixture
def models(bedrock: Any, job_request: Callable[..., dict[str, Any]]) -> list[str]:
    """Three custom models (A, B, C) trained concurrently, one epoch each."""
    arns = [bedrock.create_model_customization_job(**job_request(hyperParameters={"epochCount": "1"}))["jobArn"]
            for _ in range(3)]
    jobs = [wait_for(bedrock, arn, timeout=60) for arn in arns]
    assert all(j["status"] == "Completed" for j in jobs), [j.get("failureMessage") for j in jobs]
    return [j["outputModelArn"] for j in jobs]


@pytest.fixture
def registry(bedrock: Any) -> ModelRegistry:
    """A registry on the emulator whose clock ticks one second per call."""
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    ticks = itertools.count()
    return ModelRegistry(bedrock, clock=lambda: start + datetime.timedelta(seconds=next(ticks)))


def _tags(bedrock: Any, arn: str) -> dict[str, str]:
    return {t["key"]: t["value"] for t in bedrock.list_tags_for_resource(resourceARN=arn)["tags"]}


def test_promote_demote_find_and_roll_back(bedrock: Any, registry: ModelRegistry, models: list[str]) -> None:
    a, b, _ = models
    assert registry.find_incumbent("support") is None

    first = registry.promote(a, "support", record={"dag_id": "tune", "run_id": "run-1", "scores": {"f1": 0.5}})
    assert first.previous_model_arn is None
    job_a = bedrock.get_custom_model(modelIdentifier=a)["jobArn"]
    assert first.record.source_job_arn == job_a  # taken from the model when not given
    tags_a = _tags(bedrock, a)
    assert tags_a[TAG_PREFIX + "stage"] == "production"
    assert tags_a[TAG_PREFIX + "scope"] == "support"
    assert tags_a[TAG_PREFIX + "scores"] == "f1=0.5"
    assert tags_a[TAG_PREFIX + "run-id"] == "run-1"
    assert tags_a[TAG_PREFIX + "source-job"] == job_a
    assert registry.find_incumbent("support").model_arn == a  # type: ignore[union-attr]

    second = registry.promote(b, "support", record={"scores": {"f1": 0.61}})
    assert second.previous_model_arn == a and second.demoted == (a,)
    tags_a, tags_b = _tags(bedrock, a), _tags(bedrock, b)
    assert tags_a[TAG_PREFIX + "stage"] == "previous"
    assert tags_a[TAG_PREFIX + "superseded-by"] == b
    assert tags_a[TAG_PREFIX + "scores"] == "f1=0.5"  # its record is kept
    assert tags_b[TAG_PREFIX + "replaces"] == a
    # A fresh registry (the next DAG run) finds the incumbent from the tags alone.
    incumbent = ModelRegistry(bedrock).find_incumbent("support")
    assert incumbent is not None and incumbent.model_arn == b and incumbent.scores == {"f1": 0.61}

    back = registry.rollback("support")
    assert back.record.model_arn == a and back.rolled_back_model_arn == b
    assert registry.find_incumbent("support").model_arn == a  # type: ignore[union-attr]
    assert _tags(bedrock, b)[TAG_PREFIX + "stage"] == "rolled-back"
    assert TAG_PREFIX + "superseded-by" not in _tags(bedrock, a)
    with pytest.raises(RegistryError, match="replaced no model"):
        registry.rollback("support")  # A was the first production model


def test_rollback_walks_the_chain_and_scopes_are_separate(registry: ModelRegistry, models: list[str]) -> None:
    a, b, c = models
    registry.promote(a, "support")
    registry.promote(b, "support")
    registry.promote(c, "search")
    assert registry.find_incumbent("search").model_arn == c  # type: ignore[union-attr]
    assert registry.find_incumbent("support").model_arn == b  # type: ignore[union-attr]
    assert registry.find_incumbent("support", "staging") is None
    with pytest.raises(RegistryError, match="holds stage 'production' in scope 'search'"):
        registry.promote(c, "support")
    assert registry.rollback("support").record.model_arn == a
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback("chat")


def test_repromoting_the_incumbent_keeps_its_rollback_target(registry: ModelRegistry, models: list[str]) -> None:
    a, b, _ = models
    registry.promote(a, "support")
    registry.promote(b, "support", record={"scores": {"f1": 0.1}})
    again = registry.promote(b, "support", record={"scores": {"f1": 0.2}})
    assert again.previous_model_arn is None and again.record.replaces == a
    assert again.record.scores == {"f1": 0.2}
    assert registry.rollback("support").record.model_arn == a


def test_an_interrupted_promotion_still_names_one_incumbent(
    bedrock: Any, registry: ModelRegistry, models: list[str]
) -> None:
    a, b, _ = models
    registry.promote(a, "support")
    # Tagging B succeeded, demoting A did not (the task died between the two calls).
    bedrock.tag_resource(resourceARN=b, tags=[
        {"key": TAG_PREFIX + "stage", "value": "production"}, {"key": TAG_PREFIX + "scope", "value": "support"},
        {"key": TAG_PREFIX + "promoted-at", "value": "2027-01-01T00:00:00.000000Z"}])
    assert [r.model_arn for r in registry.holders("support")] == [b, a]
    assert registry.find_incumbent("support").model_arn == b  # type: ignore[union-attr]
    result = registry.promote(b, "support")  # the retry finishes the job
    assert result.demoted == (a,)
    assert [r.model_arn for r in registry.holders("support")] == [b]


def test_long_and_odd_record_values_are_encoded_within_the_tag_rules(
    bedrock: Any, registry: ModelRegistry, models: list[str]
) -> None:
    a = models[0]
    run_id = "manual__2026-01-01T00:00:00+00:00 ünïcødé {json}, #hash & more " * 8
    scores = {"token f1 (macro)": 0.41, "rouge-L": 0.3, "note": "wins on 7/10, loses on \"dates\""}
    result = registry.promote(a, "support", record={"run_id": run_id, "scores": scores, "ticket": "OPS-1\tnew"})
    tags = _tags(bedrock, a)
    assert all(len(v) <= 256 and re.fullmatch(VALUE_PATTERN, v) for v in tags.values())
    assert len([k for k in tags if k.startswith(TAG_PREFIX + "run-id")]) > 1  # continued in run-id/1, ...
    assert result.record.run_id == run_id
    assert result.record.scores == scores
    assert result.record.extra == {"ticket": "OPS-1\tnew"}
    # A shorter value later drops the continuation keys.
    registry.promote(a, "support", record={"run_id": "run-2"})
    tags = _tags(bedrock, a)
    assert [k for k in tags if k.startswith(TAG_PREFIX + "run-id")] == [TAG_PREFIX + "run-id"]
    assert registry.record(a).run_id == "run-2"  # type: ignore[union-attr]


def test_bad_input_names_what_is_wrong(registry: ModelRegistry, models: list[str]) -> None:
    missing = models[0][:-12] + "zzzzzzzzzzzz"
    with pytest.raises(RegistryError, match=re.escape(missing)):
        registry.promote(missing, "support")
    with pytest.raises(RegistryError, match="scope 'bad scope'"):
        registry.promote(models[0], "bad scope")
    with pytest.raises(RegistryError, match="reserved"):
        registry.promote(models[0], "support", stage="previous")
    with pytest.raises(RegistryError, match="record field 'Bad Key'"):
        registry.promote(models[0], "support", record={"Bad Key": "x"})


def test_too_many_tags_is_refused_before_any_tag_is_written(
    bedrock: Any, registry: ModelRegistry, models: list[str]
) -> None:
    a = models[0]
    bedrock.tag_resource(resourceARN=a, tags=[{"key": f"user-{i}", "value": "x"} for i in range(45)])
    with pytest.raises(RegistryError, match="more than the 50"):
        registry.promote(a, "support", record={"dag_id": "d", "run_id": "r"})
    assert not any(k.startswith(TAG_PREFIX) for k in _tags(bedrock, a))


def test_rollback_to_a_deleted_model_names_it(bedrock: Any, registry: ModelRegistry, models: list[str]) -> None:
    a, b, _ = models
    registry.promote(a, "support")
    registry.promote(b, "support")
    bedrock.delete_custom_model(modelIdentifier=a)
    with pytest.raises(RegistryError, match=f"{re.escape(a)}, no longer exists"):
        registry.rollback("support")
    assert registry.find_incumbent("support").model_arn == b  # type: ignore[union-attr]  # nothing changed
