"""Airflow steps that evaluate a model on a holdout and gate its promotion on the evidence.

Thin layers over :mod:`airflow_bedrock_ft.evaluation`: the evaluation runs in the worker (one
``asyncio.run``), the gate is :func:`airflow_bedrock_ft.evaluation.evaluate_gates`.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.python import ShortCircuitOperator
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

if TYPE_CHECKING:
    from airflow.sdk import Context

GATE_MODES = ("fail", "short_circuit")
_DEFAULT_METRICS = ("exact_match", "token_f1", "rouge_l", "chrf")


class BedrockEvaluateOperator(BaseOperator):
    """Evaluate a Bedrock model and its baselines on a holdout set through Converse.

    Every model answers the same prompts (bounded concurrency, a request-rate limit, backoff
    on throttling); answers are scored with the chosen metrics; each metric's mean gets a
    bootstrap interval and the candidate's paired difference to every baseline its own.
    Per-example results go to ``output_uri`` as JSONL. Returns (XCom) the summary as a dict:
    ``models`` (label, model, invoked_as, examples, failed, requests, throttled, and per
    metric ``mean``/``low``/``high``), ``comparisons`` (baseline, metric, ``difference``,
    ``significant``), ``examples``, ``output``; the task log shows it as a table.

    A bad holdout, an unknown metric, a scorer that raises, or a model that cannot be invoked
    (unknown, not deployed) fails the task without retries; more failed examples than
    ``max_failure_share`` fails it with retries allowed (throttling or an outage may pass).

    The connection's ``endpoint_url`` (or ``service_config.bedrock-runtime.endpoint_url``)
    applies, so the same task runs against the local emulator and AWS.

    .. seealso::
        `Converse <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html>`__

    :param model: the candidate: model id, custom-model ARN (served by its Active deployment
        or provisioned throughput), deployment ARN or provisioned-model ARN; ``LABEL=MODEL``
        names it in the summary (default label ``candidate``). (templated)
    :param data: the holdout: local path or ``s3://`` URI (file, folder or prefix), or a
        list, in a training format (prompt/completion, Converse, ...). (templated)
    :param baselines: models to compare with, each ``MODEL`` or ``LABEL=MODEL``, e.g.
        ``["base=amazon.nova-micro-v1:0:128k"]`` (a base model's customization id is invoked
        by its on-demand id). (templated)
    :param metrics: built-in metrics (``exact_match``, ``token_f1``, ``rouge_l``, ``chrf``)
        or dotted paths ``package.module:function``. (templated)
    :param concurrency: requests in flight at most. (templated)
    :param rate: requests per second at most, retries included; None for no limit. (templated)
    :param output_uri: where to write per-example JSONL (``s3://`` or local path). (templated)
    :param max_failure_share: fail when more than this share of a model's examples failed. (templated)
    :param max_tokens: ``inferenceConfig.maxTokens``.
    :param temperature: ``inferenceConfig.temperature``.
    :param limit: evaluate only the first ``limit`` examples.
    :param confidence: confidence level of the intervals.
    :param n_resamples: bootstrap resamples.
    :param seed: bootstrap seed.
    :param aws_conn_id: Airflow AWS connection.
    :param region_name: AWS region; default from the connection.
    """

    template_fields: Sequence[str] = (
        "model", "data", "baselines", "metrics", "concurrency", "rate", "output_uri", "max_failure_share",
    )
    ui_color = "#fdf0d5"

    def __init__(
        self,
        *,
        model: str,
        data: str | list[str],
        baselines: Sequence[str] = (),
        metrics: Sequence[str] = _DEFAULT_METRICS,
        concurrency: int = 8,
        rate: float | None = None,
        output_uri: str | None = None,
        max_failure_share: float = 0.05,
        max_tokens: int = 512,
        temperature: float = 0.0,
        limit: int | None = None,
        confidence: float = 0.95,
        n_resamples: int = 2000,
        seed: int = 0,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.data = data
        # A template or an XComArg (another task's output) is resolved when the task runs.
        self.baselines = list(baselines) if isinstance(baselines, (list, tuple)) else baselines
        self.metrics = list(metrics) if isinstance(metrics, (list, tuple)) else metrics
        self.concurrency = concurrency
        self.rate = rate
        self.output_uri = output_uri
        self.max_failure_share = max_failure_share
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.limit = limit
        self.confidence = confidence
        self.n_resamples = n_resamples
        self.seed = seed
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self._lineage_result: dict[str, Any] | None = None

    def _config(self) -> Any:
        from airflow_bedrock_ft.evaluation import EvaluationConfig

        return EvaluationConfig(
            model=str(self.model), data=self.data, baselines=_str_list(self.baselines, "baselines"),
            metrics=_str_list(self.metrics, "metrics") or _DEFAULT_METRICS,
            concurrency=int(self.concurrency), rate=float(self.rate) if self.rate not in (None, "") else None,
            output=self.output_uri or None, max_failure_share=float(self.max_failure_share),
            max_tokens=int(self.max_tokens), temperature=float(self.temperature),
            limit=int(self.limit) if self.limit else None, confidence=float(self.confidence),
            n_resamples=int(self.n_resamples), seed=int(self.seed),
        )

    def _client_factory(self, concurrency: int) -> Any:
        """aiobotocore clients with the connection's credentials, region, endpoint and config."""
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        from airflow_bedrock_ft.evaluation import default_client_factory

        hook = AwsBaseHook(aws_conn_id=self.aws_conn_id, client_type="bedrock-runtime",
                           region_name=self.region_name)
        region = self.region_name or hook.conn_config.region_name
        endpoints = {service: hook.conn_config.get_service_endpoint_url(service)
                     for service in ("bedrock", "bedrock-runtime")}
        return default_client_factory(
            region=region, endpoint_url=endpoints, max_pool_connections=concurrency,
            session=hook.get_session(region_name=region, deferrable=True), config=hook.config,
            verify=hook.verify,
        )

    def _s3_client(self) -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn()

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_bedrock_ft.evaluation import (
            EvaluationError,
            FailureShareExceededError,
            HoldoutError,
            ScorerError,
            UnknownMetricError,
            resolve_scorers,
            run_evaluation,
        )

        try:
            config = self._config()
            config.check()
            config.specifiers()
            resolve_scorers(config.metrics)
        except (ValueError, TypeError, UnknownMetricError) as exc:
            raise AirflowFailException(f"Cannot evaluate: {exc}") from None
        sources = [config.data] if isinstance(config.data, str) else list(config.data)
        needs_s3 = any(str(s).startswith("s3://") for s in [*sources, config.output or ""])
        try:
            summary = run_evaluation(
                config, client_factory=self._client_factory(config.concurrency),
                s3_client=self._s3_client() if needs_s3 else None,
            )
        except FailureShareExceededError as exc:
            self.log.info("Evaluation:\n%s", exc.summary.format_table())
            raise AirflowException(str(exc)) from None
        except (HoldoutError, EvaluationError, ScorerError) as exc:
            raise AirflowFailException(str(exc)) from None
        self.log.info("Evaluation:\n%s", summary.format_table())
        result = summary.to_dict()
        self._lineage_result = result
        return result

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the holdout and the evaluated models named by ARN in (a model given by
        id is not a dataset); the per-example results out; the ``bedrockEvaluation`` run facet
        with every model's scores and the comparisons. Needs the OpenLineage provider."""
        from airflow.providers.openlineage.extractors import OperatorLineage

        from airflow_bedrock_ft import lineage

        models = [str(spec).partition("=")[2] if "=" in str(spec) else str(spec)
                  for spec in [self.model, *_str_list(self.baselines, "baselines")]]
        run_facets = {}
        if self._lineage_result:
            run_facets[lineage.EVALUATION_FACET] = lineage.evaluation_facet(self._lineage_result)
        return OperatorLineage(
            inputs=lineage.inputs(*lineage.as_list(self.data), *(m for m in models if m.startswith("arn:"))),
            outputs=lineage.outputs(self.output_uri) if run_facets else [],
            run_facets=run_facets,
        )


def _str_list(value: Any, name: str) -> list[str]:
    value = _native(value, name)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list of strings, got {type(value).__name__}")
    return [str(v) for v in value]


def _native(value: Any, name: str) -> Any:
    """A rendered template of a list or dict back to the object (JSON or Python literal text)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text or text[0] not in "[{":
        return value
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise TypeError(f"{name} is neither JSON nor a Python literal: {text[:80]!r}") from None


class BedrockQualityGateOperator(ShortCircuitOperator):
    """Decide on evidence whether a model may be promoted: quality gates over its figures.

    Gates are data (see :mod:`airflow_bedrock_ft.evaluation.gates`): maximum validation loss,
    maximum train/validation gap, minimum metric score, and "beats baseline B on METRIC by at
    least MARGIN with the lower end of the paired interval above zero". Every gate is checked
    and the log shows each figure against its threshold. The decision goes to XCom
    (``return_value``) whatever the outcome, as a dict: ``passed``, ``results`` (gate, figure,
    threshold, passed, detail) and ``message``.

    On failure, ``mode="fail"`` fails the task (no retries) with the message listing every
    figure; ``mode="short_circuit"`` succeeds and skips the downstream tasks (the promotion
    branch) as :class:`~airflow.providers.standard.operators.python.ShortCircuitOperator`
    does; teardown tasks still run.

    .. seealso::
        :class:`BedrockEvaluateOperator`, whose XCom is ``evaluation``.

    :param gates: the gates: a mapping such as ``{"max_validation_loss": 1.2,
        "min_metric": {"rouge_l": 0.3}, "beats_baseline": [{"baseline": "base",
        "metric": "rouge_l", "margin": 0.02}]}``, or a list of gate dicts or objects. (templated)
    :param metrics: the job's figures (``validation_loss``, ``training_loss``), e.g. the
        fine-tuning task's XCom. (templated)
    :param evaluation: the evaluation summary, e.g. ``BedrockEvaluateOperator``'s XCom. (templated)
    :param mode: ``fail`` or ``short_circuit``.
    :param ignore_downstream_trigger_rules: in ``short_circuit`` mode, skip every downstream
        task (True, default) or only the direct ones.
    """

    template_fields: Sequence[str] = ("gates", "metrics", "evaluation")
    ui_color = "#e8e1f5"

    def __init__(
        self,
        *,
        gates: Any,
        metrics: Mapping[str, Any] | str | None = None,
        evaluation: Mapping[str, Any] | str | None = None,
        mode: str = "fail",
        ignore_downstream_trigger_rules: bool = True,
        **kwargs: Any,
    ) -> None:
        if mode not in GATE_MODES:
            raise ValueError(f"mode must be one of {', '.join(GATE_MODES)}, got {mode!r}")
        super().__init__(python_callable=self._passes,
                         ignore_downstream_trigger_rules=ignore_downstream_trigger_rules, **kwargs)
        self.gates = gates
        self.metrics = metrics
        self.evaluation = evaluation
        self.mode = mode
        self._decision: dict[str, Any] | None = None

    def _passes(self) -> bool:
        from airflow_bedrock_ft.evaluation.gates import GateConfigError, evaluate_gates

        try:
            decision = evaluate_gates(_native(self.gates, "gates"), _native(self.metrics, "metrics"),
                                      _native(self.evaluation, "evaluation"))
        except (GateConfigError, TypeError) as exc:
            raise AirflowFailException(f"Cannot check the quality gates: {exc}") from None
        self._decision = decision.to_dict()
        self.log.info("%s", decision.message)
        if not decision.passed and self.mode == "fail":
            raise AirflowFailException(decision.message)
        if not decision.passed:
            self.log.info("Skipping the promotion: the model did not pass its quality gates")
        return decision.passed

    def execute_callable(self) -> Any:
        # ``python_callable`` is bound to the operator as declared; templates are rendered into
        # the copy that runs, which is ``self`` here.
        return self._passes()

    def execute(self, context: Context) -> Any:
        try:
            super().execute(context)
        finally:
            # Skipping the downstream tasks ends execute with an exception, and so does the
            # fail mode: the decision is pushed here so that XCom holds it in every outcome.
            if self._decision is not None:
                context["ti"].xcom_push(key="return_value", value=self._decision)
        return self._decision
