"""Built-in scorers against values worked out by hand, and user scorers by dotted path."""

from __future__ import annotations

import math

import pytest

from airflow_bedrock_ft.evaluation.scorers import (
    BUILTIN_METRICS,
    Scorer,
    ScorerError,
    UnknownMetricError,
    exact_match,
    normalize_answer,
    resolve_scorer,
    resolve_scorers,
    token_f1,
)


def test_exact_match_normalises_case_punctuation_and_articles() -> None:
    assert normalize_answer("  The  Cat, sat! ") == "cat sat"
    assert exact_match("The cat sat.", "cat sat") == 1.0
    assert exact_match("A cat sat", "the dog sat") == 0.0


def test_token_f1_is_squad_f1() -> None:
    # pred {cat, sat}, ref {cat, sat, on, mat}: precision 1, recall 1/2 -> F1 2/3.
    assert token_f1("the cat sat", "cat sat on mat") == pytest.approx(2 / 3)
    # Repeated tokens match once per occurrence in both: "b b c" and "b c c" share one b, one c.
    assert token_f1("b b c", "b c c") == pytest.approx(2 / 3)
    assert token_f1("", "") == 1.0
    assert token_f1("", "cat") == 0.0
    assert token_f1("dog", "cat") == 0.0


def test_rouge_l_is_the_lcs_f_measure() -> None:
    rouge = resolve_scorer("rouge_l")
    # LCS of "the cat sat on the mat" and "the cat was on the mat" is 5 of 6 tokens both ways.
    assert rouge.function("the cat sat on the mat", "the cat was on the mat") == pytest.approx(5 / 6)
    assert rouge.function("alpha beta", "gamma delta") == 0.0


def test_chrf_is_sacrebleu_sentence_chrf_scaled_to_one() -> None:
    from sacrebleu.metrics import CHRF

    chrf = resolve_scorer("chrf")
    assert chrf.function("The main language is French.", "The main language is French.") == pytest.approx(1.0)
    assert chrf.function("xyz", "abc") == 0.0
    pred, ref = "The language of Spain is Spanish.", "The main language of Spain is Spanish."
    expected = CHRF().sentence_score(pred, [ref]).score / 100
    got = chrf.function(pred, ref)
    assert got == pytest.approx(expected)
    assert 0.5 < got < 1.0


@pytest.mark.parametrize("path", ["operator:eq", "operator.eq"])
def test_user_scorer_by_dotted_path(path: str) -> None:
    scorer = resolve_scorer(path)
    assert scorer.name == path
    assert scorer.score("a", "a", "f:1") == 1.0  # a bool result counts as 0/1
    assert scorer.score("a", "b", "f:1") == 0.0


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bleu", "Unknown metric 'bleu'; built-in metrics: exact_match, token_f1, rouge_l, chrf"),
        ("no_such_module_xyz:f", "cannot import module no_such_module_xyz"),
        ("operator:no_such_function", "module operator has no attribute no_such_function"),
        ("math:pi", "pi is not callable"),
    ],
)
def test_unknown_metric_names_it(name: str, expected: str) -> None:
    with pytest.raises(UnknownMetricError) as exc:
        resolve_scorers(["exact_match", name])
    assert expected in str(exc.value)


def test_scorer_that_raises_names_the_example_and_metric() -> None:
    scorer = Scorer("mine", lambda p, r: 1 / 0)
    with pytest.raises(ScorerError) as exc:
        scorer.score("a", "b", "holdout.jsonl:7")
    assert "Scorer mine raised ZeroDivisionError on example holdout.jsonl:7" in str(exc.value)


@pytest.mark.parametrize("bad", [math.nan, math.inf, "0.5", None])
def test_scorer_must_return_a_finite_number(bad: object) -> None:
    with pytest.raises(ScorerError) as exc:
        Scorer("mine", lambda p, r: bad).score("a", "b", "h.jsonl:2")  # type: ignore[arg-type,return-value]
    assert "h.jsonl:2" in str(exc.value) and "finite number" in str(exc.value)


def test_resolve_scorers_keeps_order_and_drops_duplicates() -> None:
    names = [s.name for s in resolve_scorers(["chrf", "exact_match", "chrf"])]
    assert names == ["chrf", "exact_match"]
    assert set(BUILTIN_METRICS) == {"exact_match", "token_f1", "rouge_l", "chrf"}
    with pytest.raises(UnknownMetricError):
        resolve_scorers([])
