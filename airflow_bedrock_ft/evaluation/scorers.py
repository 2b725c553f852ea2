"""Scorers: built-in text metrics and user functions given by dotted path.

A scorer is ``f(prediction: str, reference: str) -> float`` with higher meaning better. The
built-in ones score from 0 to 1:

- ``exact_match``: 1 when the answer equals the reference after SQuAD-style normalisation
  (lower case, punctuation and the articles a/an/the removed, whitespace collapsed);
- ``token_f1``: F1 of the normalised tokens (SQuAD's definition);
- ``rouge_l``: ROUGE-L F-measure, from Google's ``rouge-score`` (with stemming);
- ``chrf``: chrF (character n-gram F-score, beta 2), from ``sacrebleu``, divided by 100.

``rouge-score`` and ``sacrebleu`` come with the ``evaluate`` extra and are imported only when
their scorer is built.
"""

from __future__ import annotations

import collections
import importlib
import math
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

ScoreFunction = Callable[[str, str], float]

DEFAULT_METRICS = ("exact_match", "token_f1", "rouge_l", "chrf")

_PUNCT = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


class UnknownMetricError(ValueError):
    """A metric name that is neither built in nor an importable ``module:function``."""


class ScorerError(RuntimeError):
    """A scorer raised or returned something that is not a finite number for one example."""


@dataclass(frozen=True)
class Scorer:
    """A named scoring function.

    :param name: the metric's name in reports (the built-in name or the dotted path).
    :param function: ``f(prediction, reference) -> float``.
    """

    name: str
    function: ScoreFunction

    def score(self, prediction: str, reference: str, example: str) -> float:
        """Score one answer; ``example`` names it (``file:line``) in errors.

        :raises ScorerError: when the function raises or returns a non-finite non-number.
        """
        try:
            value = self.function(prediction, reference)
        except Exception as exc:
            raise ScorerError(
                f"Scorer {self.name} raised {type(exc).__name__} on example {example}: {exc}"
            ) from exc
        if isinstance(value, bool):
            return float(value)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ScorerError(
                f"Scorer {self.name} returned {value!r} on example {example}; "
                "a scorer must return a finite number"
            )
        return float(value)


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation or articles, single spaces."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCT))
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalised answer equals the normalised reference, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    """F1 over normalised tokens (SQuAD): both empty scores 1, one empty scores 0."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((collections.Counter(pred) & collections.Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def _missing(library: str, metric: str) -> UnknownMetricError:
    return UnknownMetricError(
        f"Metric {metric} needs the {library} library: pip install 'airflow-bedrock-ft[evaluate]'"
    )


def _rouge_l() -> ScoreFunction:
    try:
        from rouge_score import rouge_scorer
    except ImportError:
        raise _missing("rouge-score", "rouge_l") from None
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)

    def rouge_l(prediction: str, reference: str) -> float:
        return float(scorer.score(reference, prediction)["rougeL"].fmeasure)

    return rouge_l


def _chrf() -> ScoreFunction:
    try:
        from sacrebleu.metrics import CHRF
    except ImportError:
        raise _missing("sacrebleu", "chrf") from None
    metric = CHRF()

    def chrf(prediction: str, reference: str) -> float:
        return float(metric.sentence_score(prediction, [reference]).score) / 100.0

    return chrf


_BUILTIN: dict[str, Callable[[], ScoreFunction]] = {
    "exact_match": lambda: exact_match,
    "token_f1": lambda: token_f1,
    "rouge_l": _rouge_l,
    "chrf": _chrf,
}

BUILTIN_METRICS = tuple(_BUILTIN)


def _import_function(path: str) -> ScoreFunction:
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise UnknownMetricError(_unknown_message(path))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownMetricError(f"Metric {path}: cannot import module {module_name}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UnknownMetricError(f"Metric {path}: module {module_name} has no attribute {attr}") from None
    if not callable(obj):
        raise UnknownMetricError(f"Metric {path}: {attr} is not callable")
    return obj  # type: ignore[no-any-return]


def _unknown_message(name: str) -> str:
    return (f"Unknown metric {name!r}; built-in metrics: {', '.join(BUILTIN_METRICS)}, "
            "or a function as 'package.module:function'")


def resolve_scorer(name: str) -> Scorer:
    """The scorer for a built-in metric name or a dotted path (``pkg.module:func`` or ``pkg.module.func``).

    :raises UnknownMetricError: naming the metric, and the built-in names when it is neither.
    """
    name = name.strip()
    if name in _BUILTIN:
        return Scorer(name, _BUILTIN[name]())
    if "." not in name and ":" not in name:
        raise UnknownMetricError(_unknown_message(name))
    return Scorer(name, _import_function(name))


def resolve_scorers(names: Sequence[str]) -> list[Scorer]:
    """Scorers for ``names`` (duplicates dropped, order kept); raises :class:`UnknownMetricError`."""
    seen: dict[str, Scorer] = {}
    for name in names:
        if name.strip() not in seen:
            scorer = resolve_scorer(name)
            seen[scorer.name] = scorer
    if not seen:
        raise UnknownMetricError("No metric given")
    return list(seen.values())
