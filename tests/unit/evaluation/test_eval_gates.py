"""Quality gates: each figure against its threshold, missing figures fail, config as data."""

from __future__ import annotations

import pytest

from airflow_bedrock_ft.evaluation.gates import (
    BeatsBaseline,
    GateConfigError,
    MaxTrainValidationGap,
    MaxValidationLoss,
    MinMetric,
    evaluate_gates,
    gates_from_config,
)

EVALUATION = {
    "models": [
        {"label": "candidate", "model": "arn:dep", "invoked_as": "arn:dep",
         "metrics": {"rouge_l": {"mean": 0.62, "low": 0.55, "high": 0.69, "n": 40}}},
        {"label": "base", "model": "amazon.nova-micro-v1:0:128k", "invoked_as": "amazon.nova-micro-v1:0",
         "metrics": {"rouge_l": {"mean": 0.30, "low": 0.25, "high": 0.35, "n": 40}}},
        {"label": "incumbent", "model": "arn:old", "invoked_as": "arn:old",
         "metrics": {"rouge_l": {"mean": 0.60, "low": 0.52, "high": 0.68, "n": 40}}},
    ],
    "comparisons": [
        {"baseline": "base", "metric": "rouge_l", "difference": {"mean": 0.32, "low": 0.25, "high": 0.39}},
        {"baseline": "incumbent", "metric": "rouge_l", "difference": {"mean": 0.02, "low": -0.01, "high": 0.05}},
    ],
}
METRICS = {"training_loss": 0.8, "validation_loss": 1.1}


def test_every_gate_reports_its_figure_and_threshold() -> None:
    decision = evaluate_gates(
        [MaxValidationLoss(1.2), MaxTrainValidationGap(0.2), MinMetric("rouge_l", 0.5),
         BeatsBaseline("base", "rouge_l", 0.1), BeatsBaseline("incumbent", "rouge_l", 0.01)],
        METRICS, EVALUATION,
    )
    assert not decision.passed
    assert [r.passed for r in decision.results] == [True, False, True, True, False]
    assert decision.results[1].figure == pytest.approx(0.3)
    message = decision.message
    assert message.splitlines() == [
        "Quality gates failed (2 of 5):",
        "  PASS validation loss 1.1 <= 1.2",
        "  FAIL train/validation gap 0.3 <= 0.2",
        "  PASS candidate rouge_l 0.62 [0.55, 0.69] >= 0.5",
        "  PASS candidate - base on rouge_l 0.32 [0.25, 0.39] >= 0.1, lower end 0.25 > 0",
        "  FAIL candidate - incumbent on rouge_l 0.02 [-0.01, 0.05] >= 0.01, lower end -0.01 > 0",
    ]


def test_margin_met_but_not_significant_fails_unless_waived() -> None:
    strict = evaluate_gates([BeatsBaseline("incumbent", "rouge_l", 0.01)], evaluation=EVALUATION)
    lax = evaluate_gates([BeatsBaseline("incumbent", "rouge_l", 0.01, require_significant=False)],
                         evaluation=EVALUATION)
    assert (strict.passed, lax.passed) == (False, True)


def test_missing_figures_fail_their_gate() -> None:
    decision = evaluate_gates(
        {"max_validation_loss": 2.0, "max_train_validation_gap": 1.0, "min_metric": {"chrf": 0.1},
         "beats_baseline": {"baseline": "nobody", "metric": "rouge_l"}},
        {"training_loss": 0.5}, EVALUATION,
    )
    assert [r.passed for r in decision.results] == [False, False, False, False]
    assert all(r.figure is None for r in decision.results)
    assert "validation loss missing <= 2" in decision.message
    assert "candidate chrf missing >= 0.1" in decision.message


def test_a_baseline_may_be_named_by_its_model_id() -> None:
    decision = evaluate_gates([BeatsBaseline("amazon.nova-micro-v1:0:128k", "rouge_l", 0.3)], evaluation=EVALUATION)
    assert decision.passed and decision.results[0].figure == pytest.approx(0.32)


def test_summary_objects_are_accepted_as_well_as_dicts() -> None:
    from airflow_bedrock_ft.evaluation.report import EvaluationSummary, ModelResult
    from airflow_bedrock_ft.evaluation.stats import Estimate

    cand = ModelResult("candidate", "m", "m", "candidate", metrics={"chrf": Estimate(0.4, 0.3, 0.5, 10, 0.95)})
    summary = EvaluationSummary(["chrf"], [cand], [], 10, None, 1.0, 10, 0.95, 100, 0, 0.05)
    assert evaluate_gates([MinMetric("chrf", 0.35)], evaluation=summary).passed
    assert not evaluate_gates([MinMetric("chrf", 0.45)], evaluation=summary).passed


def test_config_forms_are_equivalent() -> None:
    shorthand = gates_from_config({"max_validation_loss": 1.2, "min_metric": {"rouge_l": 0.5},
                                   "beats_baseline": [{"baseline": "base", "metric": "rouge_l", "margin": 0.1}]})
    typed = gates_from_config([{"gate": "max_validation_loss", "threshold": 1.2},
                               {"gate": "min_metric", "metric": "rouge_l", "threshold": 0.5},
                               {"gate": "beats_baseline", "baseline": "base", "metric": "rouge_l", "margin": 0.1}])
    assert shorthand == typed == [MaxValidationLoss(1.2), MinMetric("rouge_l", 0.5), BeatsBaseline("base", "rouge_l", 0.1)]
    assert evaluate_gates(typed, METRICS, EVALUATION).to_dict()["passed"] is True


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"max_loss": 1}, "unknown gate 'max_loss'"),
        ({"max_validation_loss": "high"}, "max_validation_loss must be a number"),
        ({"min_metric": 0.3}, "min_metric must map metric names"),
        ([{"gate": "min_metric", "metric": "chrf"}], "gates[0]"),
        ([{"gate": "nope"}], "gates[0].gate must be one of"),
        ([], "no quality gate declared"),
    ],
)
def test_bad_gate_config_names_the_key(config: object, message: str) -> None:
    with pytest.raises(GateConfigError) as exc:
        evaluate_gates(config, METRICS, EVALUATION)
    assert message in str(exc.value)
