"""The example DAGs users copy: every file parses, and each runs end to end with
``dag.test()`` against the emulator through the demo command (the main pipeline runs under a
real scheduler and triggerer in ``test_e2e.py``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({"AIRFLOW_HOME": str(tmp_path / "home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    return env


def test_every_example_dag_parses_without_errors(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(DAGS)!r})\n"
        "params = {d.dag_id: {k: {**d.params.get_param(k).schema, 'description': d.params.get_param(k).description}"
        " for k in d.params} for d in bag.dags.values()}\n"
        "print(json.dumps({'errors': {k: str(v) for k, v in bag.import_errors.items()},"
        " 'dags': sorted(bag.dag_ids), 'params': params}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=_env(tmp_path), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    assert {
        "bedrock_fine_tune_pipeline",
        "bedrock_hyperparameter_sweep",
        "bedrock_continued_pretraining",
        "bedrock_distillation",
        "bedrock_retraining_cron",
        "bedrock_watch_external_job",
    } <= set(result["dags"])
    assert len(result["dags"]) == len(list(DAGS.glob("*.py")))
    # What a user changes per run is a typed, described param, so the UI's trigger form shows it.
    for dag_id, params in result["params"].items():
        assert params, f"{dag_id} has no params"
        for name, schema in params.items():
            assert schema.get("type") and schema.get("description"), (dag_id, name, schema)
    assert {"base_model", "source", "epochs", "learning_rate", "max_validation_loss", "min_score",
            "margin_over_base"} <= set(result["params"]["bedrock_fine_tune_pipeline"])
    assert {"job", "holdout", "baselines"} <= set(result["params"]["bedrock_watch_external_job"])


def test_the_environment_holds_only_deployment_settings() -> None:
    """Per-run choices (models, data, hyperparameters, thresholds) are params, not environment."""
    allowed = {"BEDROCK_FT_BUCKET", "BEDROCK_FT_ROLE_ARN", "BEDROCK_FT_POLL_INTERVAL", "BEDROCK_FT_NAMESPACE",
               "BEDROCK_FT_AWS_CONN_ID"}
    for path in DAGS.glob("*.py"):
        names = set(re.findall(r"os\.environ(?:\.get)?\(\s*[\"'](\w+)", path.read_text()))
        assert names <= allowed, (path.name, names - allowed)


def _demo(tmp_path: Path, dag_file: str, dag_id: str, conf: dict[str, Any] | None = None,
          time_scale: str = "0.001", runs: int = 1) -> str:
    env = _env(tmp_path)
    env["BEDROCK_FT_POLL_INTERVAL"] = "1"
    args = [sys.executable, "-m", "airflow_bedrock_ft.cli", "demo", "--dag-file", str(DAGS / dag_file),
            "--dag-id", dag_id, "--time-scale", time_scale, "--plot-dir", str(tmp_path / "plots")]
    if conf:
        args += ["--conf", json.dumps(conf)]
    if runs > 1:
        args += ["--runs", str(runs)]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout


def _tasks(out: str) -> dict[str, str]:
    line = out.split("Tasks    ", 1)[1].splitlines()[0]
    return dict(part.rsplit("=", 1) for part in line.split(", "))


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("dag_file", "dag_id", "jobs", "conf"),
    [
        ("hyperparameter_sweep.py", "bedrock_hyperparameter_sweep", 2, {"learning_rates": [0.00001, 0.001]}),
        ("continued_pretraining.py", "bedrock_continued_pretraining", 1, {"epochs": 2}),
        ("distillation.py", "bedrock_distillation", 1, {"max_response_length": 800}),
    ],
)
def test_example_dag_runs_its_jobs_to_completion(
    tmp_path: Path, dag_file: str, dag_id: str, jobs: int, conf: dict[str, Any]
) -> None:
    """Each example runs with dag.test() against the emulator, with params given as the trigger
    form would; every job it submits completes."""
    out = _demo(tmp_path, dag_file, dag_id, conf)
    assert out.count("Status   Completed") == jobs, out
    assert "DAG run success" in out, out
    assert set(_tasks(out).values()) == {"success"}, out


@pytest.mark.e2e
def test_retraining_cron_promotes_first_then_only_a_significant_improvement(tmp_path: Path) -> None:
    """Run 1 (no incumbent) promotes on the absolute gates; run 2, a model trained the same way,
    is compared with run 1's model from the registry, is not better by the margin, and is not
    promoted: the run succeeds, the incumbent stays, both deployments are torn down."""
    out = _demo(tmp_path, "retraining_cron.py", "bedrock_retraining_cron", {"min_improvement": 0.1},
                runs=2)
    assert out.count("Status   Completed") == 2, out
    first, second = out.split("=== Run 1 of 2", 1)[1].split("=== Run 2 of 2", 1)
    first_tasks, second_tasks = _tasks(first), _tasks(second)
    assert set(first_tasks.values()) == {"success"}, first_tasks
    assert "Quality gate passed" in first and "incumbent" not in first.split("Quality gate", 1)[1].split("\n\n")[0]
    promoted = re.search(r"Promoted (arn:\S+)", first).group(1)  # type: ignore[union-attr]
    assert "no model held the stage before" in first

    # Run 2: the incumbent is run 1's model, found from its tags, deployed and compared.
    assert re.search(rf"incumbent: {re.escape(promoted)}; 140/140 answered|incumbent: {re.escape(promoted)}", second)
    assert "candidate - incumbent" in second
    assert "Quality gate failed: no promotion" in second
    assert "FAIL  candidate - incumbent on rouge_l" in second and "Not promoted." in second
    assert second_tasks["promote"] == "skipped", second_tasks
    assert {k: v for k, v in second_tasks.items() if k != "promote"} == {
        k: "success" for k in second_tasks if k != "promote"}, second_tasks
    assert "DAG run success" in second
    assert "Deployments still running after the teardown: 0" in out


@pytest.mark.e2e
def test_demo_prints_the_evaluation_the_gate_and_the_promotion(tmp_path: Path) -> None:
    """README's first command: the full pipeline, and what it prints for people."""
    # As README runs it: the demo's own time scale and the pipeline's default params.
    out = _demo(tmp_path, "fine_tune_pipeline.py", "bedrock_fine_tune_pipeline", time_scale="0.01")
    assert set(_tasks(out).values()) == {"success"}, out
    # Progress while the job trains, a line every few seconds.
    progress = [line for line in out.splitlines() if ": InProgress, training" in line]
    assert len(progress) >= 2, out
    # The evaluation table: candidate, base, difference with its interval, per metric.
    table = out.split("Evaluation (candidate vs baselines", 1)[1]
    header = table.splitlines()[1].split()
    assert header[:3] == ["metric", "candidate", "base"], table
    for metric in ("exact_match", "token_f1", "rouge_l", "chrf"):
        row = next(line for line in table.splitlines() if line.strip().startswith(metric))
        assert re.search(r"[+-]\d\.\d{3} \[[+-]?\d\.\d{3}, [+-]?\d\.\d{3}\]", row), row
    assert "PASS  candidate - base on rouge_l" in out and "Quality gate passed" in out
    assert "Promoted arn:aws:bedrock:" in out
    assert "Deployments still running after the teardown: 0" in out
    plot = Path(re.search(r"Loss plot\s+(\S+\.png)", out).group(1))  # type: ignore[union-attr]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert re.search(r"DAG run success in \d+ s \(set-up before it \d+ s; total \d+ s\)", out), out
    assert "What to try next" in out and "airflow standalone" in out
    # Numbers for people, no dependency noise.
    assert not re.search(r"\d\.\d{7,}", out), out
    assert "\x1b[" not in out and "eprecat" not in out, out
