"""The summary of one evaluation: per-model scores, paired differences, failures; as a table or JSON."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .stats import Estimate


@dataclass
class ModelResult:
    """What one model scored on the holdout, and what it cost to get there.

    :param label: the name reports use (``candidate``, a baseline's label, or its id).
    :param model: the identifier as given.
    :param invoked_as: the ``modelId`` sent to Converse (after resolution).
    :param role: ``candidate`` or ``baseline``.
    """

    label: str
    model: str
    invoked_as: str
    role: str
    examples: int = 0
    succeeded: int = 0
    failed: int = 0
    requests: int = 0
    throttled: int = 0
    retried: int = 0
    failure_examples: list[str] = field(default_factory=list)  # the first few, "file:line: code"
    metrics: dict[str, Estimate] = field(default_factory=dict)

    @property
    def failure_share(self) -> float:
        """Failed examples over all examples (0 when there were none)."""
        return self.failed / self.examples if self.examples else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form."""
        return {
            "label": self.label, "model": self.model, "invoked_as": self.invoked_as, "role": self.role,
            "examples": self.examples, "succeeded": self.succeeded, "failed": self.failed,
            "failure_share": self.failure_share, "requests": self.requests, "throttled": self.throttled,
            "retried": self.retried, "failure_examples": list(self.failure_examples),
            "metrics": {name: est.to_dict() for name, est in self.metrics.items()},
        }


@dataclass
class Comparison:
    """The paired difference candidate - baseline on one metric."""

    baseline: str
    metric: str
    difference: Estimate

    @property
    def significant(self) -> bool:
        """True when the whole interval is above zero."""
        return self.difference.n > 0 and self.difference.low > 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form."""
        return {"baseline": self.baseline, "metric": self.metric, "difference": self.difference.to_dict(),
                "significant": self.significant}


@dataclass
class EvaluationSummary:
    """Everything an evaluation run found; :meth:`to_dict` is what goes to XCom and ``--json``."""

    metrics: list[str]
    models: list[ModelResult]
    comparisons: list[Comparison]
    examples: int
    output: str | None
    elapsed_s: float
    requests: int
    confidence: float
    n_resamples: int
    seed: int
    max_failure_share: float

    @property
    def candidate(self) -> ModelResult:
        """The candidate's result."""
        return self.models[0]

    def model(self, label: str) -> ModelResult:
        """The result of the model with ``label`` (or identifier).

        :raises KeyError: naming the known labels.
        """
        for m in self.models:
            if label in (m.label, m.model, m.invoked_as):
                return m
        known = ", ".join(m.label for m in self.models)
        raise KeyError(f"No model {label!r} in the evaluation; models: {known}")

    def comparison(self, baseline: str, metric: str) -> Comparison:
        """The paired difference to ``baseline`` on ``metric``.

        :raises KeyError: when that pair was not evaluated.
        """
        label = self.model(baseline).label
        for c in self.comparisons:
            if c.baseline == label and c.metric == metric:
                return c
        raise KeyError(f"No comparison of the candidate with {baseline!r} on {metric!r}")

    @property
    def requests_per_second(self) -> float:
        """Runtime requests (retries included) per second of the run."""
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form (NaN becomes None)."""
        return _clean({
            "metrics": list(self.metrics),
            "examples": self.examples,
            "models": [m.to_dict() for m in self.models],
            "comparisons": [c.to_dict() for c in self.comparisons],
            "output": self.output,
            "elapsed_s": self.elapsed_s,
            "requests": self.requests,
            "requests_per_second": self.requests_per_second,
            "confidence": self.confidence,
            "n_resamples": self.n_resamples,
            "seed": self.seed,
            "max_failure_share": self.max_failure_share,
        })

    def format_table(self) -> str:
        """A text table: each model's mean [interval] per metric, then candidate - baseline."""
        pct = f"{self.confidence:.0%}"
        header = ["", *self.metrics]
        rows: list[list[str]] = []
        for m in self.models:
            rows.append([m.label, *(_cell(m.metrics.get(name)) for name in self.metrics)])
        for b in self.models[1:]:
            cells = []
            for name in self.metrics:
                c = next((c for c in self.comparisons if c.baseline == b.label and c.metric == name), None)
                cells.append(_cell(c.difference, signed=True, mark=c.significant) if c else "-")
            rows.append([f"{self.candidate.label} - {b.label}", *cells])
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = [_row(header, widths), _row(["-" * w for w in widths], widths)]
        lines += [_row(r, widths) for r in rows]
        lines.append("")
        lines.append(f"mean [{pct} bootstrap interval], {self.n_resamples} resamples; "
                     "* = interval above zero")
        for m in self.models:
            invoked = f" (invoked as {m.invoked_as})" if m.invoked_as != m.model else ""
            note = (f"{m.label}: {m.model}{invoked}"
                    + f"; {m.succeeded}/{m.examples} answered, {m.failed} failed"
                    + f", {m.requests} requests, {m.throttled} throttled, {m.retried} retried")
            lines.append(note)
            lines.extend(f"  failed: {f}" for f in m.failure_examples)
        lines.append(f"{self.examples} examples in {self.elapsed_s:.1f} s "
                     f"({self.requests_per_second:.1f} requests/s)"
                     + (f"; per-example results: {self.output}" if self.output else ""))
        return "\n".join(lines)


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    first = cells[0].ljust(widths[0])
    return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))]).rstrip()


def _cell(est: Estimate | None, *, signed: bool = False, mark: bool = False) -> str:
    if est is None or est.n == 0 or math.isnan(est.mean):
        return "-"
    fmt = "{:+.3f}" if signed else "{:.3f}"
    text = f"{fmt.format(est.mean)} [{fmt.format(est.low)}, {fmt.format(est.high)}]"
    return text + ("*" if mark else "")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def estimate_from_dict(doc: Mapping[str, Any]) -> Estimate:
    """Rebuild an :class:`Estimate` from :meth:`Estimate.to_dict` output (None means NaN)."""
    def num(key: str) -> float:
        v = doc.get(key)
        return float("nan") if v is None else float(v)

    return Estimate(num("mean"), num("low"), num("high"), int(doc.get("n") or 0),
                    float(doc.get("confidence") or 0.95))
