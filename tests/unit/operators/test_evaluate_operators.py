"""The evaluation and gate operators without an endpoint: inputs, modes, light imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_bedrock_ft.operators.evaluate import BedrockEvaluateOperator, BedrockQualityGateOperator, _native

EVALUATION = {
    "models": [{"label": "candidate", "model": "m", "invoked_as": "m",
                "metrics": {"chrf": {"mean": 0.5, "low": 0.4, "high": 0.6, "n": 10}}}],
    "comparisons": [],
}


def test_module_imports_no_heavy_dependency() -> None:
    """Parsing a DAG that uses the evaluation operators loads neither boto3 nor the evaluation
    library and its NumPy / rouge-score / sacrebleu."""
    code = (
        "import sys\n"
        "import airflow_bedrock_ft.operators.evaluate\n"
        "heavy = ('boto3', 'aiobotocore', 'numpy', 'rouge_score', 'sacrebleu', 'nltk',\n"
        "         'airflow.providers.amazon.aws.hooks.base_aws', 'airflow_bedrock_ft.evaluation')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == ""


def test_rendered_templates_become_objects_again() -> None:
    assert _native(json.dumps(EVALUATION), "evaluation") == EVALUATION
    assert _native(repr(EVALUATION), "evaluation") == EVALUATION  # Jinja's default rendering
    assert _native("rouge_l", "metrics") == "rouge_l"
    with pytest.raises(TypeError, match="evaluation is neither JSON nor a Python literal"):
        _native("{not: valid", "evaluation")


def test_gate_decides_in_both_modes() -> None:
    passing = BedrockQualityGateOperator(task_id="g1", gates={"min_metric": {"chrf": 0.45}},
                                         evaluation=EVALUATION, mode="short_circuit")
    assert passing.execute_callable() is True
    skipping = BedrockQualityGateOperator(task_id="g2", gates={"min_metric": {"chrf": 0.55}},
                                          evaluation=json.dumps(EVALUATION), mode="short_circuit")
    assert skipping.execute_callable() is False
    failing = BedrockQualityGateOperator(task_id="g3", gates={"min_metric": {"chrf": 0.55}, "max_validation_loss": 1},
                                         metrics={"validation_loss": 0.7}, evaluation=EVALUATION)
    with pytest.raises(AirflowFailException) as exc:
        failing.execute_callable()
    assert str(exc.value).splitlines() == ["Quality gates failed (1 of 2):",
                                           "  FAIL candidate chrf 0.5 [0.4, 0.6] >= 0.55",
                                           "  PASS validation loss 0.7 <= 1"]


def test_gate_rejects_bad_mode_and_bad_gates() -> None:
    with pytest.raises(ValueError, match="mode must be one of fail, short_circuit"):
        BedrockQualityGateOperator(task_id="g", gates={}, mode="warn")
    bad = BedrockQualityGateOperator(task_id="g", gates={"max_loss": 1}, evaluation=EVALUATION)
    with pytest.raises(AirflowFailException, match="unknown gate 'max_loss'"):
        bad.execute_callable()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"metrics": ["bleu"]}, "Unknown metric 'bleu'"), ({"concurrency": 0}, "concurrency must be at least 1"),
     ({"baselines": ["a=x", "a=y"]}, "repeated: a")],
)
def test_evaluate_rejects_bad_settings_before_any_request(kwargs: dict, message: str) -> None:
    op = BedrockEvaluateOperator(task_id="e", model="amazon.nova-micro-v1:0", data="h.jsonl", **kwargs)
    with pytest.raises(AirflowFailException, match=message):
        op.execute({})  # type: ignore[arg-type]


def test_baselines_and_metrics_may_come_from_another_task() -> None:
    """An XComArg (a planning task's output) is kept for the run to resolve, not iterated at parse time."""
    from airflow.sdk import DAG, task

    with DAG("plan_then_evaluate", schedule=None):
        @task(multiple_outputs=True)
        def plan() -> dict[str, list[str]]:
            return {"baselines": ["base=amazon.nova-micro-v1:0:128k"], "metrics": ["rouge_l"]}

        planned = plan()
        op = BedrockEvaluateOperator(task_id="evaluate", model="m", data="d.jsonl",
                                     baselines=planned["baselines"], metrics=planned["metrics"])
    assert op.baselines == planned["baselines"] and op.metrics == planned["metrics"]
    assert "plan" in op.upstream_task_ids
