"""Operators over the tag registry of custom models: promote, roll back, look up the incumbent.

The registry itself is :mod:`airflow_bedrock_ft.core.registry` (plain Python); these operators
add the Airflow parts: the DAG run's identity in the promotion record, and an Asset event
``bedrock://custom-model/<scope>/<stage>`` whenever the model holding a stage changes, so
downstream DAGs can be scheduled on it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias, BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_bedrock_ft.core.registry import ModelRegistry

#: Alias that carries the events of operators whose scope or stage is only known at run time.
PROMOTIONS_ALIAS = "bedrock-custom-model-promotions"


def model_asset_uri(scope: str, stage: str = "production") -> str:
    """The Asset URI of the model holding ``stage`` in ``scope``.

    :param scope: the registry scope.
    :param stage: the stage.
    """
    from airflow_bedrock_ft.core.registry import validate_name

    return f"bedrock://custom-model/{validate_name(scope, 'scope')}/{validate_name(stage, 'stage')}"


def model_asset(scope: str, stage: str = "production") -> Asset:
    """The Asset a promotion or rollback in ``scope``/``stage`` updates; schedule a DAG on it
    with ``schedule=[model_asset("support-bot")]``.

    :param scope: the registry scope.
    :param stage: the stage.
    """
    return Asset(model_asset_uri(scope, stage))


def _templated(*values: Any) -> bool:
    return any(isinstance(v, str) and ("{{" in v or "{%" in v) for v in values)


def _default_outlets(scope: str, stage: str) -> list[Asset | AssetAlias]:
    # A templated scope or stage is only known at run time, so it cannot name an Asset at
    # parse time: the event then goes through an alias.
    if _templated(scope, stage):
        return [AssetAlias(PROMOTIONS_ALIAS)]
    return [model_asset(scope, stage)]


class _RegistryOperator(BaseOperator):
    """Shared parts: connection, registry, Asset events."""

    def __init__(
        self, *, aws_conn_id: str | None = "aws_default", region_name: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    @cached_property
    def registry(self) -> ModelRegistry:
        """The tag registry over this connection's Bedrock client (a cached property, so tests
        can replace it)."""
        from airflow_bedrock_ft.core.registry import ModelRegistry
        from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook

        hook = BedrockFineTuneHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)
        return ModelRegistry(hook.client)

    def _emit(self, context: Context, scope: str, stage: str, extra: Mapping[str, Any]) -> None:
        outlet_events = context.get("outlet_events") if hasattr(context, "get") else None
        if outlet_events is None:
            return
        asset = model_asset(scope, stage)
        for outlet in self.outlets or []:
            if isinstance(outlet, Asset):
                outlet_events[outlet].extra = dict(extra)
            elif isinstance(outlet, AssetAlias):
                outlet_events[outlet].add(asset, extra=dict(extra))


class BedrockPromoteModelOperator(_RegistryOperator):
    """Promote a Bedrock custom model to a stage of a scope, with a record, in its tags.

    Tags the model with its stage, scope, promotion time, source job, DAG run and scores, and
    demotes the model that held the stage to ``previous`` (it keeps its record, and the new
    model's ``replaces`` tag points at it, which is what :class:`BedrockRollbackModelOperator`
    follows). Emits an Asset event on ``bedrock://custom-model/<scope>/<stage>`` whose extra
    carries ``model_arn``, ``scores``, ``previous_model_arn``, ``source_job_arn``, ``dag_id``,
    ``run_id`` and ``promoted_at``; with a templated scope or stage, the event goes through the
    Asset alias ``bedrock-custom-model-promotions``.

    Returns (XCom) the promotion: the model's record plus ``previous_model_arn`` and ``demoted``.

    .. seealso::
        :mod:`airflow_bedrock_ft.core.registry` for the tags, and
        `Tagging Amazon Bedrock resources <https://docs.aws.amazon.com/bedrock/latest/userguide/tagging.html>`__

    :param custom_model_arn: ARN (or name) of the custom model to promote. (templated)
    :param scope: the use case the model serves, e.g. ``support-bot``. (templated)
    :param stage: the stage to take; default ``production``. (templated)
    :param scores: metric name -> score, recorded with the promotion (a dict, or its JSON). (templated)
    :param evaluation: an evaluation summary (``BedrockEvaluateOperator``'s XCom, or its JSON):
        the candidate's mean of every metric is recorded as its score; ``scores`` wins where
        both name a metric. (templated)
    :param source_job_arn: the job that trained the model; default the model's own ``jobArn``. (templated)
    :param record: further record fields (lower-case names), written to tags. (templated)
    :param aws_conn_id: Airflow AWS connection; its ``endpoint_url`` is honoured.
    :param region_name: AWS region; default from the connection.
    """

    template_fields: Sequence[str] = (
        "custom_model_arn", "scope", "stage", "scores", "evaluation", "source_job_arn", "record",
    )
    template_fields_renderers = {"scores": "json", "evaluation": "json", "record": "json"}
    ui_color = "#d8f3dc"

    def __init__(
        self,
        *,
        custom_model_arn: str,
        scope: str,
        stage: str = "production",
        scores: Mapping[str, Any] | str | None = None,
        evaluation: Mapping[str, Any] | str | None = None,
        source_job_arn: str | None = None,
        record: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if "outlets" not in kwargs:
            kwargs["outlets"] = _default_outlets(scope, stage)
        super().__init__(**kwargs)
        self.custom_model_arn = custom_model_arn
        self.scope = scope
        self.stage = stage
        self.scores = scores
        self.evaluation = evaluation
        self.source_job_arn = source_job_arn
        self.record = record

    def _scores(self) -> dict[str, Any]:
        scores: Any = self.scores
        if isinstance(scores, str):
            try:
                scores = json.loads(scores) if scores.strip() else {}
            except ValueError as exc:
                raise ValueError(
                    f"scores must be a mapping or its JSON, got {self.scores!r}: {exc}"
                ) from None
        if scores is None:
            scores = {}
        if not isinstance(scores, Mapping):
            raise ValueError(f"scores must be a mapping of metric name to score, got {scores!r}")
        return {**self._evaluated_scores(), **scores}

    def _evaluated_scores(self) -> dict[str, float]:
        """The candidate's metric means from ``evaluation`` (the first model of the summary)."""
        summary: Any = self.evaluation
        if isinstance(summary, str):
            if not summary.strip() or summary.strip() == "None":
                return {}
            try:
                summary = json.loads(summary)
            except ValueError as exc:
                raise ValueError(f"evaluation must be an evaluation summary or its JSON: {exc}") from None
        if not summary:
            return {}
        models = summary.get("models") if isinstance(summary, Mapping) else None
        if not models or not isinstance(models[0], Mapping):
            raise ValueError("evaluation must be an evaluation summary with a 'models' list, "
                             f"got {str(summary)[:120]!r}")
        out: dict[str, float] = {}
        for name, estimate in (models[0].get("metrics") or {}).items():
            mean = estimate.get("mean") if isinstance(estimate, Mapping) else None
            if isinstance(mean, (int, float)) and not isinstance(mean, bool):
                out[str(name)] = round(float(mean), 4)
        return out

    def execute(self, context: Context) -> dict[str, Any]:
        ti = context["ti"]
        record: dict[str, Any] = {**dict(self.record or {}), "dag_id": ti.dag_id, "run_id": ti.run_id}
        record["scores"] = self._scores()
        if self.source_job_arn:
            record["source_job_arn"] = self.source_job_arn
        result = self.registry.promote(self.custom_model_arn, self.scope, self.stage, record=record)
        rec = result.record
        if result.previous_model_arn:
            self.log.info("Promoted %s to %s in scope %s; %s is now previous.",
                          rec.model_arn, rec.stage, rec.scope, result.previous_model_arn)
        else:
            self.log.info("Promoted %s to %s in scope %s (no model held it before).",
                          rec.model_arn, rec.stage, rec.scope)
        self._emit(context, rec.scope, rec.stage, {
            "model_arn": rec.model_arn, "scope": rec.scope, "stage": rec.stage, "scores": rec.scores,
            "previous_model_arn": result.previous_model_arn, "source_job_arn": rec.source_job_arn,
            "dag_id": rec.dag_id, "run_id": rec.run_id, "promoted_at": rec.promoted_at,
        })
        return result.to_dict()


class BedrockRollbackModelOperator(_RegistryOperator):
    """Give a stage of a scope back to the custom model its incumbent replaced.

    The incumbent becomes ``rolled-back``; rolling back again goes one more model back. Emits
    the same Asset event as :class:`BedrockPromoteModelOperator`, its extra naming the restored
    ``model_arn`` and the ``rolled_back_model_arn``. Fails when no model holds the stage or the
    incumbent replaced none.

    Returns (XCom) the restored model's record plus ``rolled_back_model_arn``.

    .. seealso::
        :mod:`airflow_bedrock_ft.core.registry`

    :param scope: the use case, as promoted. (templated)
    :param stage: the stage to roll back; default ``production``. (templated)
    :param aws_conn_id: Airflow AWS connection; its ``endpoint_url`` is honoured.
    :param region_name: AWS region; default from the connection.
    """

    template_fields: Sequence[str] = ("scope", "stage")
    ui_color = "#ffe5d9"

    def __init__(self, *, scope: str, stage: str = "production", **kwargs: Any) -> None:
        if "outlets" not in kwargs:
            kwargs["outlets"] = _default_outlets(scope, stage)
        super().__init__(**kwargs)
        self.scope = scope
        self.stage = stage

    def execute(self, context: Context) -> dict[str, Any]:
        result = self.registry.rollback(self.scope, self.stage)
        rec = result.record
        self.log.info("Rolled back %s in scope %s: %s restored, %s is now rolled-back.",
                      rec.stage, rec.scope, rec.model_arn, result.rolled_back_model_arn)
        self._emit(context, rec.scope, rec.stage, {
            "model_arn": rec.model_arn, "scope": rec.scope, "stage": rec.stage, "scores": rec.scores,
            "rolled_back_model_arn": result.rolled_back_model_arn, "source_job_arn": rec.source_job_arn,
            "promoted_at": rec.promoted_at,
        })
        return result.to_dict()


class BedrockGetIncumbentOperator(_RegistryOperator):
    """Look up the custom model that holds a stage of a scope, from its tags alone.

    Returns (XCom) the incumbent's ARN, or None when no model holds the stage; its full record
    (scores, source job, promoting run) goes to the XCom key ``record``.

    .. seealso::
        :meth:`airflow_bedrock_ft.core.registry.ModelRegistry.find_incumbent`

    :param scope: the use case, as promoted. (templated)
    :param stage: the stage; default ``production``. (templated)
    :param aws_conn_id: Airflow AWS connection; its ``endpoint_url`` is honoured.
    :param region_name: AWS region; default from the connection.
    """

    template_fields: Sequence[str] = ("scope", "stage")
    ui_color = "#e9ecef"

    def __init__(self, *, scope: str, stage: str = "production", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scope = scope
        self.stage = stage

    def execute(self, context: Context) -> str | None:
        incumbent = self.registry.find_incumbent(self.scope, self.stage)
        if incumbent is None:
            self.log.info("No custom model holds %s in scope %s.", self.stage, self.scope)
            context["ti"].xcom_push(key="record", value=None)
            # Airflow stores no XCom for a task that returns None, and pulling a missing XCom
            # logs an error: store the None, so the tasks that read it see "no incumbent".
            context["ti"].xcom_push(key="return_value", value=None)
            return None
        self.log.info("%s holds %s in scope %s (promoted %s).",
                      incumbent.model_arn, self.stage, self.scope, incumbent.promoted_at)
        context["ti"].xcom_push(key="record", value=incumbent.to_dict())
        return incumbent.model_arn
