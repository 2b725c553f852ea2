"""End to end on the local distributed cluster (``scripts/local-cluster.sh``): CeleryExecutor on
Redis, PostgreSQL, scheduler, dag-processor, api-server, two triggerers, a Celery worker and the
emulator as separate processes, started from ``deploy/cluster.env`` with only ports, database
and queue changed so the tests never meet a cluster a developer has up.

Every DAG run is triggered and steered through the REST API with a JWT from ``/auth/token``,
as the UI does. Crashes are SIGKILLs of whole process groups.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import signal
import socket
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "airflow_bedrock_ft" / "data" / "demo"
BUCKET = "cluster-e2e-bucket"
PIPELINE = "bedrock_fine_tune_pipeline"
DEFERRED_DAG = "e2e_fine_tune"
BLOCKING_DAG = "cluster_worker_kill"
TRIGGER_CLASS = "BedrockFineTuneJobCompletedTrigger"


def _load_cluster_module() -> Any:
    spec = importlib.util.spec_from_file_location("local_cluster", REPO / "scripts" / "local_cluster.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["local_cluster"] = module
    spec.loader.exec_module(module)
    return module


local_cluster = _load_cluster_module()


def _services_reachable(settings: dict[str, str]) -> str | None:
    """Why PostgreSQL or Redis is not reachable, or None."""
    from sqlalchemy.engine import make_url

    db = make_url(settings["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    broker = urllib.parse.urlsplit(settings["AIRFLOW__CELERY__BROKER_URL"])
    for what, host, port in (
        ("PostgreSQL", db.host, db.port or 5432),
        ("Redis", broker.hostname, broker.port),
    ):
        try:
            socket.create_connection((host, port), timeout=3).close()
        except OSError as exc:
            return f"{what} at {host}:{port}: {exc} (.ci/run starts it from Debian's packages)"
    return None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The local cluster of ``deploy/cluster.env``, on free ports, its own database and queue."""
    base = local_cluster.load_settings()
    problem = _services_reachable(base)
    if problem:
        pytest.fail(problem)
    state = tmp_path_factory.mktemp("cluster")
    dags = state / "dags"
    dags.mkdir()
    shutil.copy(REPO / "dags" / "fine_tune_pipeline.py", dags)
    shutil.copy(REPO / "tests" / "system" / "dags" / "e2e_fine_tune.py", dags)
    shutil.copy(REPO / "tests" / "system" / "dags" / "cluster_dags.py", dags)

    override_file = local_cluster.isolated_override(
        state, dags, {"E2E_BUCKET": BUCKET, "BEDROCK_FT_BUCKET": "cluster-pipeline-bucket"}
    )
    c = local_cluster.LocalCluster(local_cluster.load_settings(override_file), state)
    c.drop_database()
    started = time.monotonic()
    try:
        c.up(timeout=300)
        print(f"cluster up in {time.monotonic() - started:.0f} s")
        s3_client = _client(c, "s3")
        s3_client.create_bucket(Bucket=BUCKET)
        for name in ("train.jsonl", "validation.jsonl"):
            s3_client.upload_file(str(DEMO / name), BUCKET, f"data/{name}")
        yield c
    finally:
        c.down()
        assert not c.running(), f"left running: {c.running()}"
        c.drop_database()


# --- helpers ------------------------------------------------------------------------------


def _client(c: Any, service: str) -> Any:
    import boto3

    factory: Any = boto3.client  # the service is chosen at run time
    return factory(
        service,
        endpoint_url=c.s3_url if service == "s3" else c.emulator_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _api(c: Any, method: str, path: str, body: Any = None) -> Any:
    """The public REST API (v2) with the admin's JWT, as the UI calls it."""
    req = urllib.request.Request(
        f"{c.api_url}/api/v2{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {c.token()}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def _emulator_config(c: Any, **doc: Any) -> None:
    req = urllib.request.Request(
        f"{c.emulator_url}/_emulator/config",
        data=json.dumps(doc).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(req, timeout=10).close()


def _diagnostics(c: Any) -> str:
    parts = [f"health: {c.health()}"]
    parts.append(
        f"task instances: {c.query('SELECT dag_id, run_id, task_id, state, try_number FROM task_instance')}"
    )
    for name in c.components():
        parts.append(f"--- {name} (tail) ---\n{c.log(name)[-2000:]}")
    return "\n".join(parts)


def _wait(c: Any, predicate: Callable[[], Any], timeout: float, message: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise TimeoutError(f"{message} within {timeout:.0f} s\n{_diagnostics(c)}")


def _trigger(c: Any, dag_id: str, run_id: str) -> None:
    _wait(
        c, lambda: c.query("SELECT 1 FROM dag WHERE dag_id = :d", d=dag_id), 120, f"{dag_id} was not parsed"
    )
    _api(c, "PATCH", f"/dags/{dag_id}", {"is_paused": False})
    _api(c, "POST", f"/dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "logical_date": None})


def _run_state(c: Any, dag_id: str, run_id: str) -> str:
    return str(_api(c, "GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])


def _wait_run(c: Any, dag_id: str, run_id: str, timeout: float = 240) -> str:
    return str(
        _wait(
            c,
            lambda: (s := _run_state(c, dag_id, run_id)) in ("success", "failed") and s,
            timeout,
            f"run {run_id} of {dag_id} did not finish",
        )
    )


def _ti(c: Any, dag_id: str, run_id: str, task_id: str = "fine_tune") -> dict[str, Any]:
    return dict(_api(c, "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"))


def _xcom(c: Any, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
    rows = c.query(
        "SELECT value::text FROM xcom WHERE dag_id = :d AND run_id = :r AND task_id = :t AND key = :k",
        d=dag_id,
        r=run_id,
        t=task_id,
        k=key,
    )
    if not rows:
        return None
    return json.loads(rows[0][0])


def _jobs_named(c: Any, name: str) -> list[dict[str, Any]]:
    summaries = _client(c, "bedrock").list_model_customization_jobs(maxResults=100)
    return [j for j in summaries["modelCustomizationJobSummaries"] if j["jobName"] == name]


def _job_status(c: Any, arn: str) -> str:
    return str(_client(c, "bedrock").get_model_customization_job(jobIdentifier=arn)["status"])


def _the_job(c: Any, dag_id: str, run_id: str) -> dict[str, Any]:
    """The one job of a run (its name carries the hash of the run's identity)."""
    from airflow_bedrock_ft.core.naming import job_identity

    name = job_identity(dag_id, "fine_tune", run_id).job_name
    jobs = _wait(c, lambda: _jobs_named(c, name), 120, f"no job {name} was submitted")
    assert len(jobs) == 1, jobs
    return dict(jobs[0])


def _trigger_owner(c: Any, dag_id: str, run_id: str) -> int | None:
    """The job id of the triggerer that runs the task's trigger."""
    rows = c.query(
        "SELECT t.triggerer_id FROM task_instance ti JOIN trigger t ON ti.trigger_id = t.id "
        "WHERE ti.dag_id = :d AND ti.run_id = :r AND ti.task_id = 'fine_tune'",
        d=dag_id,
        r=run_id,
    )
    return int(rows[0][0]) if rows and rows[0][0] is not None else None


def _triggerer_named(c: Any, job_id: int) -> str:
    names = [t for t in c.triggerers if c.triggerer_job(t) == job_id]
    assert names, f"triggerer job {job_id} is none of ours: {[c.triggerer_job(t) for t in c.triggerers]}"
    return str(names[0])


def _trigger_log(c: Any, dag_id: str, run_id: str, job_id: int) -> str:
    """What the trigger wrote while run by triggerer job ``job_id`` (``*.trigger.<job id>.log``)."""
    folder = c.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / "task_id=fine_tune"
    return "".join(p.read_text(errors="replace") for p in sorted(folder.glob(f"*.trigger.{job_id}.log")))


def _task_log(c: Any, dag_id: str, run_id: str, attempt: int) -> str:
    path = (
        c.home
        / "logs"
        / f"dag_id={dag_id}"
        / f"run_id={run_id}"
        / "task_id=fine_tune"
        / f"attempt={attempt}.log"
    )
    return path.read_text(errors="replace") if path.exists() else ""


def _workloads_received(c: Any) -> int:
    """Airflow workloads the Celery worker has taken from the broker so far."""
    return len(re.findall(r"Task \S*execute_workload\[[0-9a-f-]+\] received", c.log("worker-0")))


@pytest.fixture
def held_training(cluster: Any) -> Iterator[Callable[[], None]]:
    """Jobs stay in training until the test calls the release function (or the test ends)."""
    _emulator_config(cluster, hold_phases=["training"])
    yield lambda: _emulator_config(cluster, hold_phases=[])
    _emulator_config(cluster, hold_phases=[])


# --- tests --------------------------------------------------------------------------------


def test_pipeline_runs_green_with_wait_in_a_triggerer_and_tasks_on_the_celery_worker(cluster: Any) -> None:
    run_id = "cluster-pipeline"
    received_before = _workloads_received(cluster)
    _trigger(cluster, PIPELINE, run_id)
    assert _wait_run(cluster, PIPELINE, run_id, timeout=300) == "success", _diagnostics(cluster)

    # The wait ran in one of the two triggerers: its per-trigger log names that triggerer's job.
    logs = {t: _trigger_log(cluster, PIPELINE, run_id, cluster.triggerer_job(t)) for t in cluster.triggerers}
    assert any(TRIGGER_CLASS in text for text in logs.values()), f"no triggerer ran the wait: {list(logs)}"
    # Every task try went through Celery: the worker received one workload per try, and the
    # REST API reports the worker's host.
    tis = _api(cluster, "GET", f"/dags/{PIPELINE}/dagRuns/{run_id}/taskInstances")["task_instances"]
    assert {ti["task_id"] for ti in tis} == {
        "create_bucket",
        "prepare_data",
        "fine_tune",
        "report_metrics",
        "get_incumbent",
        "plan_evaluation",
        "deploy_candidate",
        "deploy_incumbent",
        "evaluate",
        "quality_gate",
        "promote",
        "undeploy_incumbent",
        "undeploy_candidate",
    }
    assert all(ti["state"] == "success" for ti in tis), tis
    assert all(ti["hostname"] for ti in tis), tis
    # Each try went to the worker; the deferring tasks (the job's wait, the deployment's wait
    # for Active and for its deletion) once more each to resume after their trigger.
    received = _workloads_received(cluster) - received_before
    assert len(tis) + 1 <= received <= len(tis) + 3, f"the Celery worker received {received} workloads"

    result = _xcom(cluster, PIPELINE, run_id, "fine_tune")
    assert result["status"] == "Completed"
    assert _job_status(cluster, result["job_arn"]) == "Completed"
    assert _xcom(cluster, PIPELINE, run_id, "quality_gate")["passed"] is True
    assert _xcom(cluster, PIPELINE, run_id, "promote")["model_arn"] == result["custom_model_arn"]


def test_sigkill_of_the_triggerer_holding_the_trigger_hands_it_to_the_other(
    cluster: Any, held_training: Callable[[], None]
) -> None:
    run_id = "cluster-triggerer-kill"
    _trigger(cluster, DEFERRED_DAG, run_id)
    owner = _wait(
        cluster, lambda: _trigger_owner(cluster, DEFERRED_DAG, run_id), 180, "no triggerer took the trigger"
    )
    victim = _triggerer_named(cluster, owner)
    job = _the_job(cluster, DEFERRED_DAG, run_id)
    _wait(
        cluster,
        lambda: TRIGGER_CLASS in _trigger_log(cluster, DEFERRED_DAG, run_id, owner),
        60,
        f"{victim} never ran the wait",
    )
    assert _job_status(cluster, job["jobArn"]) == "InProgress"

    cluster.stop(victim, sig=signal.SIGKILL)
    survivor = next(t for t in cluster.triggerers if t != victim)
    new_owner = _wait(
        cluster,
        lambda: (o := _trigger_owner(cluster, DEFERRED_DAG, run_id)) not in (None, owner) and o,
        90,
        "the trigger was not taken over",
    )
    assert new_owner == cluster.triggerer_job(survivor)
    _wait(
        cluster,
        lambda: "status InProgress" in _trigger_log(cluster, DEFERRED_DAG, run_id, new_owner),
        60,
        f"{survivor} did not poll the job",
    )
    assert _job_status(cluster, job["jobArn"]) == "InProgress"
    assert _ti(cluster, DEFERRED_DAG, run_id)["state"] == "deferred"

    held_training()
    cluster.start(victim)  # back to two triggerers for the next tests
    assert _wait_run(cluster, DEFERRED_DAG, run_id) == "success", _diagnostics(cluster)
    assert _job_status(cluster, job["jobArn"]) == "Completed"  # never stopped, ran to the end
    assert _the_job(cluster, DEFERRED_DAG, run_id)["jobArn"] == job["jobArn"]  # and the only one


def test_sigkill_of_the_worker_after_submit_retries_onto_the_same_job(
    cluster: Any, held_training: Callable[[], None]
) -> None:
    run_id = "cluster-worker-kill"
    _trigger(cluster, BLOCKING_DAG, run_id)
    arn = _wait(
        cluster, lambda: _xcom(cluster, BLOCKING_DAG, run_id, "fine_tune", "job_arn"), 180, "no job_arn"
    )
    assert _ti(cluster, BLOCKING_DAG, run_id)["state"] == "running"

    cluster.stop("worker-0", sig=signal.SIGKILL)
    cluster.start("worker-0")
    _wait(
        cluster,
        lambda: (ti := _ti(cluster, BLOCKING_DAG, run_id))["try_number"] >= 2 and ti["state"] == "running",
        180,
        "the killed try was not retried",
    )
    _wait(
        cluster,
        lambda: "Re-attaching to job" in _task_log(cluster, BLOCKING_DAG, run_id, 2),
        90,
        "the retry did not re-attach",
    )
    held_training()
    assert _wait_run(cluster, BLOCKING_DAG, run_id) == "success", _diagnostics(cluster)
    assert _the_job(cluster, BLOCKING_DAG, run_id)["jobArn"] == arn  # exactly one job
    assert _job_status(cluster, arn) == "Completed"
    assert _ti(cluster, BLOCKING_DAG, run_id)["try_number"] >= 2


def test_scheduler_restart_mid_run(cluster: Any, held_training: Callable[[], None]) -> None:
    run_id = "cluster-scheduler-restart"
    _trigger(cluster, DEFERRED_DAG, run_id)
    _wait(cluster, lambda: _ti(cluster, DEFERRED_DAG, run_id)["state"] == "deferred", 180, "never deferred")
    job = _the_job(cluster, DEFERRED_DAG, run_id)
    cluster.restart("scheduler")
    held_training()
    assert _wait_run(cluster, DEFERRED_DAG, run_id) == "success", _diagnostics(cluster)
    assert _job_status(cluster, job["jobArn"]) == "Completed"
    assert _the_job(cluster, DEFERRED_DAG, run_id)["jobArn"] == job["jobArn"]


def test_marking_a_deferred_task_failed_stops_its_job(
    cluster: Any, held_training: Callable[[], None]
) -> None:
    run_id = "cluster-mark-failed"
    _trigger(cluster, DEFERRED_DAG, run_id)
    owner = _wait(cluster, lambda: _trigger_owner(cluster, DEFERRED_DAG, run_id), 180, "no triggerer took it")
    job = _the_job(cluster, DEFERRED_DAG, run_id)
    # A trigger that no triggerer runs yet has nobody to call its on_kill.
    _wait(
        cluster,
        lambda: TRIGGER_CLASS in _trigger_log(cluster, DEFERRED_DAG, run_id, owner),
        60,
        "the triggerer never ran the wait",
    )
    _api(
        cluster,
        "PATCH",
        f"/dags/{DEFERRED_DAG}/dagRuns/{run_id}/taskInstances/fine_tune",
        {"new_state": "failed"},
    )
    _wait(
        cluster,
        lambda: _job_status(cluster, job["jobArn"]) == "Stopped",
        90,
        "the job was not stopped after its deferred task was marked failed",
    )
    assert _ti(cluster, DEFERRED_DAG, run_id)["state"] == "failed"
