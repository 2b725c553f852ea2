"""The reaper and ``airflow-bedrock-ft reap`` against the emulator over HTTP, asking a real
Airflow api-server (REST API v2, simple auth manager with a password) about task instances of
a real, migrated metadata database.

Task instances are created by triggering a DAG run through the REST API (no scheduler runs
them); their states are set as users set them (PATCH through the API: success, failed,
skipped) or, for the states only Airflow itself sets (deferred, running, ...), in the database.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_bedrock_ft.core.airflow_api import AirflowApiClient, AirflowApiError
from airflow_bedrock_ft.core.naming import identity_tags, job_identity, request_digest
from airflow_bedrock_ft.core.reaper import KEEP, STOP, TaskInstanceRef, reap

from .helpers import NO_RETRY, wait_for

HERE = Path(__file__).parent / "airflow_reaper"
DAG_ID = "reaper_states"
RUN_ID = "manual__2026-12-01T00:00:00+00:00"  # "+" and ":" must survive the URL
PASSWORD = "reaper-pass-1"
ENDED = ("success", "failed", "skipped", "upstream_failed")
LIVE = ("deferred", "running", "queued", "up_for_retry", "restarting", "none")


class ApiServer:
    """A migrated SQLite metadata DB with the test DAG serialized, and an api-server on it."""

    def __init__(self, home: Path) -> None:
        from system.deployment import AirflowDeployment  # tests/ is on sys.path (rootdir conftest)

        dags = home / "dags"
        dags.mkdir(parents=True)
        (dags / "api_dag.py").write_text((HERE / "api_dag.py").read_text())
        passwords = home / "passwords.json"
        passwords.write_text(json.dumps({"admin": "admin-pass", "reaper": PASSWORD}))
        self.deployment = AirflowDeployment(
            home,
            dags,
            {
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,reaper:viewer",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            },
        )
        self.url = f"http://127.0.0.1:{self.deployment.port}"

    def start(self) -> None:
        self.deployment.migrate()
        self.deployment.cli("dags", "reserialize")
        self.deployment.start("api-server")

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            token = http.post("/auth/token", json={"username": "admin", "password": "admin-pass"})
            token.raise_for_status()
            response = http.request(method, f"/api/v2{path}", json=body,
                                    headers={"Authorization": f"Bearer {token.json()['access_token']}"})
        assert response.status_code < 300, response.text
        return response.json()

    def set_state_in_db(self, task_id: str, state: str | None) -> None:
        con = sqlite3.connect(self.deployment.db_path, timeout=30)
        try:
            with con:
                changed = con.execute(
                    "UPDATE task_instance SET state=? WHERE dag_id=? AND run_id=? AND task_id=?",
                    (state, DAG_ID, RUN_ID, task_id),
                ).rowcount
        finally:
            con.close()
        assert changed == 1, task_id


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    server = ApiServer(tmp_path_factory.mktemp("reaper-api-home"))
    server.start()
    try:
        server.admin("POST", f"/dags/{DAG_ID}/dagRuns", {"dag_run_id": RUN_ID, "logical_date": None})
        for state in ENDED[:3]:
            server.admin("PATCH", f"/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances/t_{state}",
                         {"new_state": state})
        for state in (*ENDED[3:], *LIVE):
            server.set_state_in_db(f"t_{state}", None if state == "none" else state)
        yield server
    finally:
        server.deployment.stop()


def _create(bedrock: Any, job_request: Callable[..., dict[str, Any]], task_id: str, *,
            run_id: str = RUN_ID, namespace: str | None = None, reap_tag: bool = True) -> str:
    identity = job_identity(DAG_ID, task_id, run_id, -1, namespace=namespace)
    request = job_request(jobName=identity.job_name + ("-ns" if namespace else ""))
    tags = identity_tags(identity, content_digest=request_digest(request), reap=reap_tag)
    request["jobTags"] = [{"key": k, "value": v} for k, v in tags.items()]
    return str(bedrock.create_model_customization_job(**request)["jobArn"])


@pytest.fixture
def jobs(emulator: Any, job_request: Callable[..., dict[str, Any]]) -> dict[str, str]:
    """One training job per task state, plus jobs the reaper must never touch."""
    emulator.set_config(hold_phases=["training"])
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    made = {state: _create(bedrock, job_request, f"t_{state}") for state in (*ENDED, *LIVE)}
    made["missing_run"] = _create(bedrock, job_request, "t_failed", run_id="manual__deleted-run")
    made["other_namespace"] = _create(bedrock, job_request, "t_failed", namespace="prod")
    made["not_owned"] = _create(bedrock, job_request, "t_success", run_id="manual__x", reap_tag=False)
    made["foreign"] = str(bedrock.create_model_customization_job(**job_request())["jobArn"])
    for arn in made.values():
        wait_for(bedrock, arn, until=lambda j: j["statusDetails"]["trainingDetails"]["status"] == "InProgress")
    return made


def _statuses(emulator: Any, jobs: dict[str, str]) -> dict[str, str]:
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    return {k: bedrock.get_model_customization_job(jobIdentifier=a)["status"] for k, a in jobs.items()}


def test_the_api_client_reads_real_task_instance_states(api_server: ApiServer) -> None:
    with AirflowApiClient(api_server.url, username="reaper", password=PASSWORD) as api:
        for state in (*ENDED, *LIVE):
            got = api.task_state(TaskInstanceRef(DAG_ID, RUN_ID, f"t_{state}"))
            assert got is not None
            assert got.state == (None if state == "none" else state)
        patched = api.task_state(TaskInstanceRef(DAG_ID, RUN_ID, "t_failed"))
        assert patched is not None and patched.end_date is not None and patched.end_date.tzinfo
        assert api.task_state(TaskInstanceRef(DAG_ID, "no-such-run", "t_failed")) is None
        assert api.task_state(TaskInstanceRef(DAG_ID, RUN_ID, "t_failed", 4)) is None
        assert api.task_state(TaskInstanceRef("no_such_dag", RUN_ID, "t_failed")) is None
    with AirflowApiClient(api_server.url, username="reaper", password="wrong") as api, \
            pytest.raises(AirflowApiError, match=r"POST /auth/token as 'reaper' answered HTTP 401") as info:
        api.task_state(TaskInstanceRef(DAG_ID, RUN_ID, "t_failed"))
    assert "wrong" not in str(info.value)
    with AirflowApiClient(api_server.url, token="not-a-jwt") as api, \
            pytest.raises(AirflowApiError, match=r"HTTP 40[13]") as info:
        api.task_state(TaskInstanceRef(DAG_ID, RUN_ID, "t_failed"))
    assert "not-a-jwt" not in str(info.value)


def test_reap_stops_only_jobs_whose_task_instance_ended(
    emulator: Any, api_server: ApiServer, jobs: dict[str, str]
) -> None:
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    with AirflowApiClient(api_server.url, username="reaper", password=PASSWORD) as api:
        dry = reap(bedrock, api, min_age=0)
        assert set(_statuses(emulator, jobs).values()) == {"InProgress"}, "a dry run stopped a job"
        assert {d.job_arn for d in dry if d.action == STOP} == {jobs[s] for s in ENDED}
        assert {d.outcome for d in dry if d.action == STOP} == {"dry-run"}

        decisions = {d.job_arn: d for d in reap(bedrock, api, stop=True, min_age=0)}
    assert set(decisions) == set(jobs.values())
    for state in ENDED:
        decision = decisions[jobs[state]]
        assert decision.action == STOP and decision.outcome == "stop requested", decision
        assert decision.ti_state == state
        assert wait_for(bedrock, jobs[state])["status"] == "Stopped"
    kept = {k: a for k, a in jobs.items() if k not in ENDED}
    assert all(decisions[a].action == KEEP for a in kept.values())
    assert set(_statuses(emulator, kept).values()) == {"InProgress"}
    assert "is deferred" in decisions[jobs["deferred"]].reason
    assert "has no state" in decisions[jobs["none"]].reason
    assert "no task instance" in decisions[jobs["missing_run"]].reason
    assert "namespace 'prod'" in decisions[jobs["other_namespace"]].reason
    assert "reap=false" in decisions[jobs["not_owned"]].reason
    assert "not created by this plugin" in decisions[jobs["foreign"]].reason


def test_nothing_is_stopped_when_airflow_or_bedrock_cannot_answer(
    emulator: Any, api_server: ApiServer, jobs: dict[str, str]
) -> None:
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    with AirflowApiClient(api_server.url, token="expired-or-forged") as api:
        decisions = reap(bedrock, api, stop=True, min_age=0)
    owned = [d for d in decisions if d.task_instance]
    assert owned and all(d.action == KEEP and re.search("HTTP 40[13]", d.reason) for d in owned)

    from system.deployment import free_port

    with AirflowApiClient(f"http://127.0.0.1:{free_port()}", token="t", timeout=2) as api:
        decisions = reap(bedrock, api, stop=True, min_age=0)
    assert all(d.action == KEEP for d in decisions)
    assert any("ConnectError" in d.reason for d in decisions)

    emulator.set_faults(error_5xx={"rate": 1.0, "status": 503, "operations": ["ListTagsForResource"]})
    with AirflowApiClient(api_server.url, username="reaper", password=PASSWORD) as api:
        decisions = reap(bedrock, api, stop=True, min_age=0)
    emulator.set_faults({})
    assert len(decisions) == len(jobs)
    assert all(d.action == KEEP and "tags could not be read" in d.reason for d in decisions)

    with AirflowApiClient(api_server.url, username="reaper", password=PASSWORD) as api:
        decisions = reap(bedrock, api, stop=True, min_age=3600)
    assert all(d.action == KEEP and "grace period" in d.reason for d in decisions)
    assert set(_statuses(emulator, jobs).values()) == {"InProgress"}


def test_the_reap_command_dry_runs_then_stops(emulator: Any, api_server: ApiServer, jobs: dict[str, str]) -> None:
    env = {**os.environ, "AIRFLOW_API_PASSWORD": PASSWORD}
    base = [sys.executable, "-m", "airflow_bedrock_ft.cli", "reap", "--airflow-url", api_server.url,
            "--username", "reaper", "--endpoint-url", emulator.endpoint_url, "--region", "us-east-1",
            "--min-age", "0s"]
    dry = subprocess.run([*base, "--dry-run"], env=env, capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("STOP ") == len(ENDED) and "[dry-run]" in dry.stdout
    assert "orphaned (dry run: not stopped" in dry.stdout
    assert PASSWORD not in dry.stdout + dry.stderr
    assert set(_statuses(emulator, jobs).values()) == {"InProgress"}

    done = subprocess.run([*base, "--stop", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["stop"] is True
    stopped = {d["job_arn"] for d in report["decisions"] if d["outcome"] == "stop requested"}
    assert stopped == {jobs[s] for s in ENDED}
    statuses = _statuses(emulator, jobs)
    assert {statuses[s] for s in ENDED} <= {"Stopping", "Stopped"}
    assert {statuses[k] for k in jobs if k not in ENDED} == {"InProgress"}


def test_the_reap_command_rejects_bad_arguments() -> None:
    run = [sys.executable, "-m", "airflow_bedrock_ft.cli", "reap"]
    for args, message in [
        (["--airflow-url", "http://x", "--min-age", "ten"], "--min-age"),
        ([], "--airflow-url"),
        (["--airflow-url", "http://x", "--token", "t", "--username", "u", "--password", "p"], "not both"),
        (["--stop", "--dry-run", "--airflow-url", "http://x"], "not allowed with"),
    ]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_API_")}
        done = subprocess.run([*run, *args], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr, (args, done.stderr)


def test_the_reap_command_fails_clearly_when_bedrock_cannot_be_listed(emulator: Any) -> None:
    from system.deployment import free_port

    env = {**os.environ, "AWS_MAX_ATTEMPTS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "airflow_bedrock_ft.cli", "reap", "--airflow-url", "http://127.0.0.1:1",
         "--token", "t", "--endpoint-url", f"http://127.0.0.1:{free_port()}", "--region", "us-east-1"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "could not list the jobs" in done.stderr and "Traceback" not in done.stderr
