"""The reaper operator inside Airflow: the shipped DAG runs with ``dag.test()`` against a real,
migrated metadata database and reads task states through the Task SDK, while the jobs live in
the emulator and are judged by their real tags over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_bedrock_ft.core.naming import identity_tags, job_identity, request_digest

from .helpers import NO_RETRY, wait_for

HERE = Path(__file__).parent / "airflow_reaper"
REPO = Path(__file__).resolve().parents[2]
REAPER_DAG = REPO / "dags" / "reap_orphaned_jobs.py"


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment of a throw-away Airflow home with a migrated SQLite metadata database."""
    home = tmp_path_factory.mktemp("reaper-airflow-home")
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(HERE / "victim_dag.py", dags)
    shutil.copy(REAPER_DAG, dags)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
    )
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True,
                   capture_output=True, timeout=300)
    return env


def _run(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, str(HERE / "run.py"), *args], env=env, capture_output=True,
                          text=True, timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-4000:] + done.stderr[-6000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


def _tagged_job(bedrock: Any, job_request: Callable[..., dict[str, Any]], dag_id: str, task_id: str,
                run_id: str, map_index: int = -1) -> str:
    identity = job_identity(dag_id, task_id, run_id, map_index)
    request = job_request(jobName=identity.job_name)
    tags = identity_tags(identity, content_digest=request_digest(request), reap=True)
    request["jobTags"] = [{"key": k, "value": v} for k, v in tags.items()]
    return str(bedrock.create_model_customization_job(**request)["jobArn"])


def test_the_reaper_dag_stops_jobs_of_failed_task_instances_and_keeps_deferred_ones(
    emulator: Any, airflow_home: dict[str, str], job_request: Callable[..., dict[str, Any]]
) -> None:
    victim = _run(airflow_home, "victim")
    run_id = victim["run_id"]
    assert victim["states"] == {
        "tune_failed": "failed",
        "tune_deferred": "deferred",
        "tune_mapped[0]": "deferred",
        "tune_mapped[1]": "failed",
    }

    emulator.set_config(hold_phases=["training"])
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    jobs = {
        "tune_failed": _tagged_job(bedrock, job_request, "reaper_victim", "tune_failed", run_id),
        "tune_deferred": _tagged_job(bedrock, job_request, "reaper_victim", "tune_deferred", run_id),
        "tune_mapped[0]": _tagged_job(bedrock, job_request, "reaper_victim", "tune_mapped", run_id, 0),
        "tune_mapped[1]": _tagged_job(bedrock, job_request, "reaper_victim", "tune_mapped", run_id, 1),
        "no_such_run": _tagged_job(bedrock, job_request, "reaper_victim", "tune_failed", "gone"),
        "foreign": str(bedrock.create_model_customization_job(**job_request())["jobArn"]),
    }
    for arn in jobs.values():
        wait_for(bedrock, arn, until=lambda j: j["statusDetails"]["trainingDetails"]["status"] == "InProgress")

    env = {**airflow_home, "AIRFLOW_CONN_AWS_DEFAULT": emulator.connection_uri_json()}
    # A dry run first: the DAG's params turned off; nothing is stopped.
    dry = _run(env, "reap", json.dumps({"stop": False, "min_age": "0"}))
    assert dry["ti"] == {"reap_orphaned_jobs": "success"}, dry
    by_arn = {d["job_arn"]: d for d in dry["decisions"]}
    assert {by_arn[jobs[k]]["outcome"] for k in ("tune_failed", "tune_mapped[1]")} == {"dry-run"}
    assert all(bedrock.get_model_customization_job(jobIdentifier=a)["status"] == "InProgress" for a in jobs.values())

    done = _run(env, "reap", json.dumps({"stop": True, "min_age": "0"}))
    assert done["ti"] == {"reap_orphaned_jobs": "success"}, done
    by_arn = {d["job_arn"]: d for d in done["decisions"]}
    assert set(by_arn) == set(jobs.values())
    for key in ("tune_failed", "tune_mapped[1]"):
        decision = by_arn[jobs[key]]
        assert decision["action"] == "stop" and decision["outcome"] == "stop requested", decision
        assert decision["ti_state"] == "failed"
        assert wait_for(bedrock, jobs[key])["status"] == "Stopped"
    for key in ("tune_deferred", "tune_mapped[0]", "no_such_run", "foreign"):
        decision = by_arn[jobs[key]]
        assert decision["action"] == "keep", decision
        assert bedrock.get_model_customization_job(jobIdentifier=jobs[key])["status"] == "InProgress"
    assert by_arn[jobs["tune_deferred"]]["ti_state"] == "deferred"
    assert by_arn[jobs["tune_mapped[0]"]]["task_instance"].endswith("/tune_mapped[0]")
    assert "no task instance" in by_arn[jobs["no_such_run"]]["reason"]
    assert "not created by this plugin" in by_arn[jobs["foreign"]]["reason"]

    # The DAG's default grace period keeps every job this young.
    young = _run(env, "reap", json.dumps({}))
    assert all(d["action"] == "keep" and "grace period" in d["reason"] for d in young["decisions"])
