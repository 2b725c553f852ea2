"""The example DAGs users copy: every file parses, and each runs end to end with
``dag.test()`` against the emulator through the demo command (the main pipeline runs under a
real scheduler and triggerer in ``test_e2e.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
        "print(json.dumps({'errors': {k: str(v) for k, v in bag.import_errors.items()},"
        " 'dags': sorted(bag.dag_ids)}))\n"
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
    } <= set(result["dags"])
    assert len(result["dags"]) == len(list(DAGS.glob("*.py")))


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("dag_file", "dag_id", "jobs", "extra_env"),
    [
        ("hyperparameter_sweep.py", "bedrock_hyperparameter_sweep", 2, {"BEDROCK_FT_LEARNING_RATES": "0.00001,0.001"}),
        ("continued_pretraining.py", "bedrock_continued_pretraining", 1, {}),
        ("distillation.py", "bedrock_distillation", 1, {}),
        ("retraining_cron.py", "bedrock_retraining_cron", 1, {}),
    ],
)
def test_example_dag_runs_its_jobs_to_completion(
    tmp_path: Path, dag_file: str, dag_id: str, jobs: int, extra_env: dict[str, str]
) -> None:
    """Each example runs with dag.test() against the emulator; every job it submits completes."""
    env = _env(tmp_path)
    env.update({"BEDROCK_FT_POLL_INTERVAL": "1", **extra_env})
    done = subprocess.run(
        [sys.executable, "-m", "airflow_bedrock_ft.cli", "demo", "--dag-file", str(DAGS / dag_file),
         "--dag-id", dag_id, "--time-scale", "0.001"],
        env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    out = done.stdout
    assert out.count("Status   Completed") == jobs, out
    assert "DAG run success" in out, out
    tasks = out.split("Tasks    ", 1)[1].splitlines()[0]
    assert all(part.endswith("=success") for part in tasks.split(", ")), tasks
