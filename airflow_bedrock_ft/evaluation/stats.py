"""Bootstrap confidence intervals for a mean and for a paired difference of means (NumPy).

Percentile bootstrap: resample the examples with replacement ``n_resamples`` times, take the
mean of each resample, and report the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``
quantiles. The paired version resamples *examples*, not scores, so the candidate's and the
baseline's scores on one prompt stay together: the interval is that of the mean per-example
difference. Seeded, so the same scores always give the same interval. Resamples are drawn in
blocks, so memory stays bounded whatever the number of examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95
_BLOCK_CELLS = 1 << 18  # indices drawn at once: 2 MiB of int64, whatever the number of examples


@dataclass(frozen=True)
class Estimate:
    """A mean with its bootstrap confidence interval.

    :param mean: the observed mean.
    :param low: lower end of the interval.
    :param high: upper end of the interval.
    :param n: the number of examples.
    :param confidence: the interval's confidence level.
    """

    mean: float
    low: float
    high: float
    n: int
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form."""
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n,
                "confidence": self.confidence}


def _check(confidence: float, n_resamples: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")


def _bootstrap_means(values: Any, n_resamples: int, seed: int) -> Any:
    import numpy as np

    n = len(values)
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples, dtype=np.float64)
    block = max(1, _BLOCK_CELLS // max(1, n))
    for start in range(0, n_resamples, block):
        stop = min(n_resamples, start + block)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = values[idx].mean(axis=1)
    return means


def _estimate(values: Any, confidence: float, n_resamples: int, seed: int) -> Estimate:
    import numpy as np

    n = int(values.size)
    if n == 0:
        nan = float("nan")
        return Estimate(nan, nan, nan, 0, confidence)
    mean = float(values.mean())
    if n == 1:
        return Estimate(mean, mean, mean, 1, confidence)
    means = _bootstrap_means(values, n_resamples, seed)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return Estimate(mean, float(low), float(high), n, confidence)


def bootstrap_mean(
    values: Sequence[float] | Any,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """Mean of ``values`` with a percentile-bootstrap interval; NaN values (failed examples) are left out.

    An empty input gives NaN figures with ``n == 0``; a single value a zero-width interval.
    """
    import numpy as np

    _check(confidence, n_resamples)
    arr = np.asarray(values, dtype=np.float64)
    return _estimate(arr[~np.isnan(arr)], confidence, n_resamples, seed)


def paired_difference(
    candidate: Sequence[float] | Any,
    baseline: Sequence[float] | Any,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """Mean of ``candidate - baseline`` per example, with a paired-bootstrap interval.

    Examples where either score is NaN (that model's request failed) are left out of both.

    :raises ValueError: when the two sequences differ in length.
    """
    import numpy as np

    _check(confidence, n_resamples)
    a = np.asarray(candidate, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired scores differ in length: {a.size} and {b.size}")
    both = ~(np.isnan(a) | np.isnan(b))
    return _estimate(a[both] - b[both], confidence, n_resamples, seed)
