"""End to end: the gap the reaper closes, under a real scheduler, api-server and worker.

A deferred task marked failed while no triggerer runs has nobody to call its trigger's
``on_kill``: its job trains on. ``airflow-bedrock-ft reap`` (REST API) reports it, and the
shipped reaper DAG, run by the scheduler on a real worker (Task SDK lookups through the
execution API), stops it, and keeps the job of a task that is still deferred.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .deployment import AirflowDeployment

pytestmark = pytest.mark.e2e

E2E_DAG = "e2e_fine_tune"
REAPER_DAG = "bedrock_reap_orphaned_jobs"
REPO = Path(__file__).resolve().parents[2]


def _job(emulator: Any, arn: str) -> dict[str, Any]:
    return emulator.client("bedrock").get_model_customization_job(jobIdentifier=arn)


def _wait(predicate: Any, timeout: float, message: str, deployment: AirflowDeployment) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise TimeoutError(f"{message}\n{deployment.diagnostics()}")


def test_a_deferred_task_failed_before_any_triggerer_ran_it_has_its_job_reaped(
    airflow_deployment: AirflowDeployment, e2e_emulator: Any
) -> None:
    from airflow_bedrock_ft.core.naming import job_identity

    run_id = "orphan-run"
    airflow_deployment.wait_for_dag(E2E_DAG)
    e2e_emulator.set_config(hold_phases=["training"])
    airflow_deployment.stop("triggerer")
    try:
        bedrock = e2e_emulator.client("bedrock")
        arns = {}
        for run in (run_id, "live-run"):  # live-run stays deferred: its job must be kept
            airflow_deployment.trigger(E2E_DAG, run)
            airflow_deployment.wait_for_task_state(E2E_DAG, run, "fine_tune", {"deferred"}, timeout=180)
            name = job_identity(E2E_DAG, "fine_tune", run).job_name
            summaries = _wait(
                lambda name=name: bedrock.list_model_customization_jobs(nameContains=name)[
                    "modelCustomizationJobSummaries"
                ],
                60, f"no job {name}", airflow_deployment,
            )
            arns[run] = summaries[0]["jobArn"]
        arn = arns[run_id]
        airflow_deployment.set_task_state(E2E_DAG, run_id, "fine_tune", "failed")
        time.sleep(5)
        assert _job(e2e_emulator, arn)["status"] == "InProgress", "expected the gap: nobody stops the job"

        # The command, through the REST API (the simple auth manager's all-admins token).
        dry = subprocess.run(
            [sys.executable, "-m", "airflow_bedrock_ft.cli", "reap", "--json", "--min-age", "0",
             "--airflow-url", f"http://127.0.0.1:{airflow_deployment.port}",
             "--endpoint-url", e2e_emulator.endpoint_url, "--region", "us-east-1"],
            capture_output=True, text=True, timeout=120,
        )
        assert dry.returncode == 0, dry.stderr
        decision = next(d for d in json.loads(dry.stdout)["decisions"] if d["job_arn"] == arn)
        assert decision["action"] == "stop" and decision["outcome"] == "dry-run", decision
        assert decision["ti_state"] == "failed"
        assert _job(e2e_emulator, arn)["status"] == "InProgress"

        # The DAG, scheduled on a real worker.
        shutil.copy(REPO / "dags" / "reap_orphaned_jobs.py", airflow_deployment.dags_folder)
        airflow_deployment.wait_for_dag(REAPER_DAG)
        airflow_deployment.trigger(REAPER_DAG, "reap-now", {"stop": True, "min_age": "0"})
        state = airflow_deployment.wait_for_run(REAPER_DAG, "reap-now", timeout=180)
        assert state == "success", airflow_deployment.diagnostics()
        decisions = airflow_deployment.xcom(REAPER_DAG, "reap-now", "reap_orphaned_jobs")
        mine = next(d for d in decisions if d["job_arn"] == arn)
        assert mine["action"] == "stop" and mine["outcome"] == "stop requested", mine
        assert "fine_tune failed" in mine["reason"]
        live = next(d for d in decisions if d["job_arn"] == arns["live-run"])
        assert live["action"] == "keep" and live["ti_state"] == "deferred", live
        assert _job(e2e_emulator, arns["live-run"])["status"] == "InProgress"
        _wait(lambda: _job(e2e_emulator, arn)["status"] == "Stopped", 60, "the job was not stopped",
              airflow_deployment)
    finally:
        e2e_emulator.set_config(hold_phases=[])
        airflow_deployment.start("triggerer")
