"""Holdout evaluation of Bedrock models: read holdouts, invoke models, score, compare, gate.

Plain Python (no Airflow): the ``evaluate`` command and the Airflow operators are thin layers
over it. NumPy, rouge-score and sacrebleu (the ``evaluate`` extra) are imported only when
statistics are computed or their metric is used.
"""

from __future__ import annotations

from .gates import (
    BeatsBaseline,
    Gate,
    GateDecision,
    GateResult,
    MaxTrainValidationGap,
    MaxValidationLoss,
    MinMetric,
    evaluate_gates,
    gates_from_config,
)
from .holdout import HoldoutError, HoldoutExample, read_holdout
from .report import Comparison, EvaluationSummary, ModelResult
from .runner import (
    EvaluationConfig,
    EvaluationError,
    FailureShareExceededError,
    ModelInvocationError,
    ModelSpecifier,
    TokenBucket,
    default_client_factory,
    evaluate,
    resolve_invocation_id,
    run_evaluation,
)
from .scorers import (
    BUILTIN_METRICS,
    DEFAULT_METRICS,
    Scorer,
    ScorerError,
    UnknownMetricError,
    resolve_scorer,
    resolve_scorers,
)
from .stats import Estimate, bootstrap_mean, paired_difference

__all__ = [
    "BUILTIN_METRICS",
    "DEFAULT_METRICS",
    "BeatsBaseline",
    "Comparison",
    "Estimate",
    "EvaluationConfig",
    "EvaluationError",
    "EvaluationSummary",
    "FailureShareExceededError",
    "Gate",
    "GateDecision",
    "GateResult",
    "HoldoutError",
    "HoldoutExample",
    "MaxTrainValidationGap",
    "MaxValidationLoss",
    "MinMetric",
    "ModelInvocationError",
    "ModelResult",
    "ModelSpecifier",
    "Scorer",
    "ScorerError",
    "TokenBucket",
    "UnknownMetricError",
    "bootstrap_mean",
    "default_client_factory",
    "evaluate",
    "evaluate_gates",
    "gates_from_config",
    "paired_difference",
    "read_holdout",
    "resolve_invocation_id",
    "resolve_scorer",
    "resolve_scorers",
    "run_evaluation",
]
