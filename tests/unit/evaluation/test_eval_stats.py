"""Bootstrap intervals on data whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from airflow_bedrock_ft.evaluation.stats import bootstrap_mean, paired_difference


def test_constant_scores_have_a_zero_width_interval() -> None:
    est = bootstrap_mean([0.25] * 50)
    assert (est.mean, est.low, est.high, est.n) == (0.25, 0.25, 0.25, 50)


def test_interval_matches_the_normal_approximation_on_a_large_sample() -> None:
    rng = np.random.default_rng(42)
    values = rng.normal(0.6, 0.2, size=4000)
    est = bootstrap_mean(values, n_resamples=2000, seed=1)
    half = 1.96 * values.std(ddof=1) / math.sqrt(values.size)
    assert est.mean == pytest.approx(values.mean())
    assert est.low == pytest.approx(values.mean() - half, abs=half * 0.1)
    assert est.high == pytest.approx(values.mean() + half, abs=half * 0.1)


def test_seeded_and_the_confidence_level_widens_the_interval() -> None:
    values = [0, 1, 1, 0, 1, 1, 1, 0, 1, 1]
    a, b = bootstrap_mean(values, seed=3), bootstrap_mean(values, seed=3)
    assert a == b
    wide = bootstrap_mean(values, seed=3, confidence=0.99)
    assert wide.low <= a.low <= a.mean == 0.7 <= a.high <= wide.high
    assert wide.high - wide.low > a.high - a.low


def test_failed_examples_nan_are_left_out() -> None:
    est = bootstrap_mean([1.0, math.nan, 0.0, math.nan])
    assert est.n == 2 and est.mean == 0.5
    empty = bootstrap_mean([math.nan])
    assert empty.n == 0 and math.isnan(empty.mean)


def test_paired_difference_keeps_examples_together() -> None:
    """A constant per-example improvement is certain, however noisy the scores themselves are."""
    rng = np.random.default_rng(0)
    baseline = rng.uniform(0, 1, size=30)
    candidate = baseline + 0.05
    paired = paired_difference(candidate, baseline)
    assert paired.mean == pytest.approx(0.05)
    assert paired.low == pytest.approx(0.05) and paired.high == pytest.approx(0.05)
    # The unpaired intervals of the two means overlap widely: only pairing shows the gain.
    a, b = bootstrap_mean(candidate), bootstrap_mean(baseline)
    assert a.low < b.high


def test_paired_difference_of_known_data() -> None:
    candidate = [1, 1, 1, 0, 1, 1, 0, 1]
    baseline = [0, 1, 0, 0, 1, 0, 0, 1]
    diff = paired_difference(candidate, baseline, n_resamples=5000, seed=7)
    assert diff.mean == pytest.approx(3 / 8) and diff.n == 8
    # Per-example differences are 0 or 1 (three ones in eight): the interval lies within [0, 1].
    assert 0.0 <= diff.low < 3 / 8 < diff.high <= 1.0


def test_paired_difference_drops_examples_either_model_failed() -> None:
    diff = paired_difference([1.0, math.nan, 0.5, 1.0], [0.0, 1.0, math.nan, 0.5])
    assert diff.n == 2 and diff.mean == pytest.approx(0.75)
    with pytest.raises(ValueError, match="differ in length"):
        paired_difference([1.0], [1.0, 0.0])


@pytest.mark.parametrize(("kwargs", "message"), [({"confidence": 1.0}, "confidence"), ({"n_resamples": 0}, "n_resamples")])
def test_bad_settings_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bootstrap_mean([1.0, 2.0], **kwargs)
