"""Registry operators without sockets: outlets, the Asset event's extra, the record they pass on."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from airflow.sdk import Asset, AssetAlias

from airflow_bedrock_ft.core.registry import (
    ModelRecord,
    ModelRegistry,
    PromotionResult,
    RegistryError,
    RollbackResult,
)
from airflow_bedrock_ft.operators.registry import (
    PROMOTIONS_ALIAS,
    BedrockGetIncumbentOperator,
    BedrockPromoteModelOperator,
    BedrockRollbackModelOperator,
    model_asset,
)

A = "arn:aws:bedrock:us-east-1:123456789012:custom-model/base/aaaaaaaaaaaa"
B = "arn:aws:bedrock:us-east-1:123456789012:custom-model/base/bbbbbbbbbbbb"


class _Events:
    """outlet_events as a task sees it: one accessor per outlet."""

    def __init__(self) -> None:
        self.accessors: dict[Any, mock.Mock] = {}

    def __getitem__(self, key: Any) -> mock.Mock:
        return self.accessors.setdefault(key, mock.Mock(extra={}))


def _context() -> dict[str, Any]:
    return {"ti": mock.Mock(dag_id="tune", run_id="run-7"), "outlet_events": _Events()}


def _registry(op: Any) -> mock.Mock:
    registry = mock.Mock(spec=ModelRegistry)
    op.registry = registry
    return registry


def test_promote_declares_the_stage_asset_and_sets_its_extra() -> None:
    op = BedrockPromoteModelOperator(task_id="p", custom_model_arn=B, scope="support", scores='{"f1": 0.7}')
    assert op.outlets == [Asset("bedrock://custom-model/support/production")] == [model_asset("support")]
    registry = _registry(op)
    rec = ModelRecord(B, "support", "production", promoted_at="2026-01-01T00:00:00.000000Z",
                      source_job_arn="job", dag_id="tune", run_id="run-7", scores={"f1": 0.7}, replaces=A)
    registry.promote.return_value = PromotionResult(rec, A, (A,))
    context = _context()
    result = op.execute(context)  # type: ignore[arg-type]
    registry.promote.assert_called_once_with(
        B, "support", "production", record={"dag_id": "tune", "run_id": "run-7", "scores": {"f1": 0.7}})
    extra = context["outlet_events"].accessors[model_asset("support")].extra
    assert extra["model_arn"] == B and extra["scores"] == {"f1": 0.7} and extra["previous_model_arn"] == A
    assert result["previous_model_arn"] == A and result["demoted"] == [A]


def test_templated_scope_emits_through_an_alias() -> None:
    op = BedrockPromoteModelOperator(task_id="p", custom_model_arn=B, scope="{{ params.scope }}")
    assert op.outlets == [AssetAlias(PROMOTIONS_ALIAS)]
    op.scope = "search"  # as rendered
    registry = _registry(op)
    registry.promote.return_value = PromotionResult(ModelRecord(B, "search", "production"), None)
    context = _context()
    op.execute(context)  # type: ignore[arg-type]
    alias = context["outlet_events"].accessors[AssetAlias(PROMOTIONS_ALIAS)]
    alias.add.assert_called_once()
    asset, = alias.add.call_args.args
    assert asset == model_asset("search", "production")
    assert alias.add.call_args.kwargs["extra"]["model_arn"] == B


def test_bad_scope_or_scores_fail_clearly() -> None:
    with pytest.raises(RegistryError, match="scope 'two words'"):
        BedrockPromoteModelOperator(task_id="p", custom_model_arn=B, scope="two words")
    op = BedrockPromoteModelOperator(task_id="p", custom_model_arn=B, scope="support", scores="{not json")
    _registry(op)
    with pytest.raises(ValueError, match="scores must be a mapping or its JSON"):
        op.execute(_context())  # type: ignore[arg-type]


def test_rollback_emits_the_restored_model() -> None:
    op = BedrockRollbackModelOperator(task_id="r", scope="support")
    registry = _registry(op)
    registry.rollback.return_value = RollbackResult(ModelRecord(A, "support", "production"), B)
    context = _context()
    result = op.execute(context)  # type: ignore[arg-type]
    extra = context["outlet_events"].accessors[model_asset("support")].extra
    assert (extra["model_arn"], extra["rolled_back_model_arn"]) == (A, B)
    assert result["model_arn"] == A and result["rolled_back_model_arn"] == B


@pytest.mark.parametrize("found", [None, ModelRecord(A, "support", "production", scores={"f1": 0.5})])
def test_get_incumbent_returns_the_arn_or_none(found: ModelRecord | None) -> None:
    op = BedrockGetIncumbentOperator(task_id="i", scope="support")
    assert not op.outlets
    _registry(op).find_incumbent.return_value = found
    context = _context()
    assert op.execute(context) == (found.model_arn if found else None)  # type: ignore[arg-type]
    pushed = [c.kwargs for c in context["ti"].xcom_push.call_args_list]
    assert pushed[0] == {"key": "record", "value": found.to_dict() if found else None}
    # No incumbent is an explicit None, so the tasks that pull it find a value.
    assert pushed[1:] == ([] if found else [{"key": "return_value", "value": None}])


def test_promote_records_the_candidates_evaluated_means_as_scores() -> None:
    summary = {"models": [
        {"label": "candidate", "metrics": {"rouge_l": {"mean": 0.812345, "low": 0.7, "high": 0.9},
                                           "chrf": {"mean": None}}},
        {"label": "base", "metrics": {"rouge_l": {"mean": 0.1}}},
    ]}
    import json

    op = BedrockPromoteModelOperator(task_id="p", custom_model_arn=B, scope="support",
                                     evaluation=json.dumps(summary), scores={"chrf": 55.0})
    registry = _registry(op)
    registry.promote.return_value = PromotionResult(ModelRecord(B, "support", "production"), None)
    op.execute(_context())  # type: ignore[arg-type]
    record = registry.promote.call_args.kwargs["record"]
    # The candidate's means (not a baseline's), rounded; an explicit score wins.
    assert record["scores"] == {"rouge_l": 0.8123, "chrf": 55.0}


def test_promote_rejects_an_evaluation_that_is_not_a_summary() -> None:
    op = BedrockPromoteModelOperator(task_id="p", custom_model_arn=B, scope="support", evaluation={"x": 1})
    _registry(op)
    with pytest.raises(ValueError, match="'models' list"):
        op.execute(_context())  # type: ignore[arg-type]
