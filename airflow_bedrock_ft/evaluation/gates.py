"""Quality gates declared as data, and one decision that lists every figure against its threshold.

Gates::

    MaxValidationLoss(1.2)                       # the job's validation loss <= 1.2
    MaxTrainValidationGap(0.3)                   # validation loss - training loss <= 0.3
    MinMetric("rouge_l", 0.35)                   # the candidate's mean ROUGE-L >= 0.35
    BeatsBaseline("incumbent", "rouge_l", 0.02)  # candidate - incumbent >= 0.02 on ROUGE-L,
                                                 # and the paired interval's lower end > 0

or the same as plain data (what a DAG's params or a JSON file holds)::

    {"max_validation_loss": 1.2, "max_train_validation_gap": 0.3,
     "min_metric": {"rouge_l": 0.35},
     "beats_baseline": [{"baseline": "incumbent", "metric": "rouge_l", "margin": 0.02}]}

A figure that is missing (no validation loss, a metric not evaluated, a baseline not
compared) fails its gate: a gate never passes for want of evidence.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Union

#: Keys tried, in order, for the job's figures in a metrics mapping.
VALIDATION_LOSS_KEYS = ("validation_loss", "final_validation_loss")
TRAINING_LOSS_KEYS = ("training_loss", "final_training_loss")
GAP_KEYS = ("train_validation_gap",)


class GateConfigError(ValueError):
    """A gate declaration that cannot be understood (names the key)."""


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict: the figure, its threshold, and whether it passed."""

    gate: str
    passed: bool
    figure: float | None
    threshold: float
    comparison: str  # "<=", ">="
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form."""
        return {"gate": self.gate, "passed": self.passed, "figure": self.figure, "threshold": self.threshold,
                "comparison": self.comparison, "detail": self.detail}


@dataclass(frozen=True)
class GateDecision:
    """All gates' verdicts: ``passed`` only when every gate passed."""

    passed: bool
    results: tuple[GateResult, ...]

    @property
    def failed(self) -> tuple[GateResult, ...]:
        """The gates that did not pass."""
        return tuple(r for r in self.results if not r.passed)

    @property
    def message(self) -> str:
        """Every figure against its threshold, one gate per line."""
        head = ("Quality gates passed" if self.passed
                else f"Quality gates failed ({len(self.failed)} of {len(self.results)})")
        lines = [f"{head}:"]
        lines += [f"  {'PASS' if r.passed else 'FAIL'} {r.detail}" for r in self.results]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form."""
        return {"passed": self.passed, "results": [r.to_dict() for r in self.results],
                "message": self.message}


def _fmt(x: float | None) -> str:
    return "missing" if x is None else f"{x:.4g}"


def _first(metrics: Mapping[str, Any] | None, keys: Iterable[str]) -> float | None:
    if not metrics:
        return None
    for key in keys:
        value = metrics.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return None


def _evaluation_dict(evaluation: Any) -> Mapping[str, Any] | None:
    if evaluation is None:
        return None
    to_dict = getattr(evaluation, "to_dict", None)
    return to_dict() if callable(to_dict) else evaluation  # type: ignore[no-any-return]


def _model(evaluation: Mapping[str, Any] | None, label: str) -> Mapping[str, Any] | None:
    for m in (evaluation or {}).get("models") or []:
        if label in (m.get("label"), m.get("model"), m.get("invoked_as")):
            return m  # type: ignore[no-any-return]
    return None


@dataclass(frozen=True)
class MaxValidationLoss:
    """The job's validation loss must not exceed ``threshold``.

    :param threshold: the largest acceptable loss.
    :param key: which figure of the metrics to use (default: ``validation_loss``, else
        ``final_validation_loss``); e.g. ``best_validation_loss``.
    """

    threshold: float
    key: str | None = None

    def check(self, metrics: Mapping[str, Any] | None, evaluation: Mapping[str, Any] | None) -> GateResult:
        """The verdict on ``metrics``."""
        name = self.key or "validation loss"
        figure = _first(metrics, [self.key] if self.key else VALIDATION_LOSS_KEYS)
        passed = figure is not None and figure <= self.threshold
        return GateResult("max_validation_loss", passed, figure, self.threshold, "<=",
                          f"{name} {_fmt(figure)} <= {_fmt(self.threshold)}")


@dataclass(frozen=True)
class MaxTrainValidationGap:
    """Validation loss minus training loss must not exceed ``threshold`` (overfitting).

    :param threshold: the largest acceptable gap.
    """

    threshold: float

    def check(self, metrics: Mapping[str, Any] | None, evaluation: Mapping[str, Any] | None) -> GateResult:
        """The verdict on ``metrics``."""
        gap = _first(metrics, GAP_KEYS)
        if gap is None:
            val, train = _first(metrics, VALIDATION_LOSS_KEYS), _first(metrics, TRAINING_LOSS_KEYS)
            gap = val - train if val is not None and train is not None else None
        passed = gap is not None and gap <= self.threshold
        return GateResult("max_train_validation_gap", passed, gap, self.threshold, "<=",
                          f"train/validation gap {_fmt(gap)} <= {_fmt(self.threshold)}")


@dataclass(frozen=True)
class MinMetric:
    """A model's mean score on ``metric`` must be at least ``threshold``.

    :param metric: the metric's name, as evaluated.
    :param threshold: the smallest acceptable mean.
    :param model: which model's score (default the candidate).
    """

    metric: str
    threshold: float
    model: str = "candidate"

    def check(self, metrics: Mapping[str, Any] | None, evaluation: Mapping[str, Any] | None) -> GateResult:
        """The verdict on ``evaluation``."""
        m = _model(evaluation, self.model)
        est = ((m or {}).get("metrics") or {}).get(self.metric) or {}
        figure = est.get("mean")
        figure = float(figure) if isinstance(figure, (int, float)) else None
        passed = figure is not None and figure >= self.threshold
        interval = f" [{_fmt(est.get('low'))}, {_fmt(est.get('high'))}]" if figure is not None else ""
        return GateResult("min_metric", passed, figure, self.threshold, ">=",
                          f"{self.model} {self.metric} {_fmt(figure)}{interval} >= {_fmt(self.threshold)}")


@dataclass(frozen=True)
class BeatsBaseline:
    """The candidate beats ``baseline`` on ``metric`` by at least ``margin``, with the paired
    interval's lower end above zero (unless ``require_significant`` is False).

    :param baseline: the baseline's label (or model id) in the evaluation.
    :param metric: the metric's name.
    :param margin: the smallest acceptable mean difference candidate - baseline.
    :param require_significant: also require the interval's lower end above zero.
    """

    baseline: str
    metric: str
    margin: float = 0.0
    require_significant: bool = True

    def check(self, metrics: Mapping[str, Any] | None, evaluation: Mapping[str, Any] | None) -> GateResult:
        """The verdict on ``evaluation``."""
        m = _model(evaluation, self.baseline)
        label = (m or {}).get("label", self.baseline)
        comparison = next((c for c in (evaluation or {}).get("comparisons") or []
                           if c.get("baseline") == label and c.get("metric") == self.metric), None)
        diff = (comparison or {}).get("difference") or {}
        mean, low, high = diff.get("mean"), diff.get("low"), diff.get("high")
        figure = float(mean) if isinstance(mean, (int, float)) else None
        low_ok = isinstance(low, (int, float)) and low > 0
        passed = figure is not None and figure >= self.margin and (low_ok or not self.require_significant)
        interval = f" [{_fmt(low)}, {_fmt(high)}]" if figure is not None else ""
        detail = (f"candidate - {self.baseline} on {self.metric} {_fmt(figure)}{interval}"
                  f" >= {_fmt(self.margin)}")
        if self.require_significant:
            detail += f", lower end {_fmt(low) if figure is not None else 'missing'} > 0"
        return GateResult("beats_baseline", passed, figure, self.margin, ">=", detail)


Gate = Union[MaxValidationLoss, MaxTrainValidationGap, MinMetric, BeatsBaseline]  # noqa: UP007 - runtime alias on 3.10

_BY_NAME: dict[str, type] = {
    "max_validation_loss": MaxValidationLoss,
    "max_train_validation_gap": MaxTrainValidationGap,
    "min_metric": MinMetric,
    "beats_baseline": BeatsBaseline,
}


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise GateConfigError(f"{where} must be a number, got {value!r}")
    return float(value)


def _typed(doc: Mapping[str, Any], where: str) -> Gate:
    kind = doc.get("gate") or doc.get("type")
    cls = _BY_NAME.get(str(kind))
    if cls is None:
        raise GateConfigError(f"{where}.gate must be one of {', '.join(_BY_NAME)}, got {kind!r}")
    args = {k: v for k, v in doc.items() if k not in ("gate", "type")}
    for key in ("threshold", "margin"):
        if key in args:
            args[key] = _number(args[key], f"{where}.{key}")
    try:
        return cls(**args)  # type: ignore[no-any-return]
    except TypeError as exc:
        raise GateConfigError(f"{where}: {exc}") from None


def gates_from_config(config: Any) -> list[Gate]:
    """Gates from data: gate objects, a list of ``{"gate": NAME, ...}`` dicts, or the shorthand
    mapping shown in the module docstring.

    :raises GateConfigError: naming the key that cannot be understood.
    """
    if config is None:
        return []
    if isinstance(config, Mapping) and "gate" not in config and "type" not in config:
        gates: list[Gate] = []
        for key, value in config.items():
            if key == "max_validation_loss":
                gates.append(MaxValidationLoss(_number(value, key)))
            elif key == "max_train_validation_gap":
                gates.append(MaxTrainValidationGap(_number(value, key)))
            elif key == "min_metric":
                if not isinstance(value, Mapping):
                    raise GateConfigError('min_metric must map metric names to thresholds: {"rouge_l": 0.3}')
                gates += [MinMetric(str(k), _number(v, f"min_metric.{k}")) for k, v in value.items()]
            elif key == "beats_baseline":
                items = [value] if isinstance(value, Mapping) else value
                if not isinstance(items, list):
                    raise GateConfigError("beats_baseline must be an object or a list of objects")
                gates += [_typed({"gate": "beats_baseline", **item}, f"beats_baseline[{i}]")
                          for i, item in enumerate(items)]
            else:
                raise GateConfigError(f"unknown gate {key!r}; known: {', '.join(_BY_NAME)}")
        return gates
    items = [config] if isinstance(config, Mapping) else list(config)
    out: list[Gate] = []
    for i, item in enumerate(items):
        if isinstance(item, (MaxValidationLoss, MaxTrainValidationGap, MinMetric, BeatsBaseline)):
            out.append(item)
        elif isinstance(item, Mapping):
            out.append(_typed(item, f"gates[{i}]"))
        else:
            raise GateConfigError(f"gates[{i}] must be a gate or an object, got {type(item).__name__}")
    return out


def evaluate_gates(
    gates: Any, metrics: Mapping[str, Any] | None = None, evaluation: Any = None
) -> GateDecision:
    """Check every gate and return the decision (all gates are checked, none short-circuits).

    :param gates: anything :func:`gates_from_config` accepts.
    :param metrics: the job's figures (``validation_loss``, ``training_loss``, ...).
    :param evaluation: an :class:`~airflow_bedrock_ft.evaluation.report.EvaluationSummary`
        or its ``to_dict()``.
    :raises GateConfigError: for gates that cannot be understood, or no gates at all.
    """
    declared = gates_from_config(gates)
    if not declared:
        raise GateConfigError("no quality gate declared")
    doc = _evaluation_dict(evaluation)
    results = tuple(g.check(metrics, doc) for g in declared)
    return GateDecision(all(r.passed for r in results), results)
