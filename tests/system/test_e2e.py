"""End to end: a real api-server, scheduler, dag-processor and triggerer (LocalExecutor,
separate processes) run the DAGs against the local emulator over HTTP.

These prove what ``dag.test()`` cannot: the wait really happens in the triggerer, a
triggerer restart resumes polling without stopping or resubmitting the job, and marking a
deferred task failed stops its job.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from .deployment import AirflowDeployment

pytestmark = pytest.mark.e2e

E2E_DAG = "e2e_fine_tune"


def _jobs(emulator: Any) -> list[dict[str, Any]]:
    bedrock = emulator.client("bedrock")
    return bedrock.list_model_customization_jobs(maxResults=100)["modelCustomizationJobSummaries"]


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


def _job_of_run(emulator: Any, run_id: str, deployment: AirflowDeployment) -> dict[str, Any]:
    """The one job a run submitted: its name carries the hash of the run's identity."""
    from airflow_bedrock_ft.core.naming import job_identity

    name = job_identity(E2E_DAG, "fine_tune", run_id).job_name
    summaries = _wait(
        lambda: [j for j in _jobs(emulator) if j["jobName"] == name],
        120,
        f"no job {name} was submitted",
        deployment,
    )
    assert len(summaries) == 1, summaries
    return summaries[0]


def _deployments_of(emulator: Any, model_arn: str) -> list[dict[str, Any]]:
    bedrock = emulator.client("bedrock")
    found = bedrock.list_custom_model_deployments(maxResults=100)["modelDeploymentSummaries"]
    return [d for d in found if d.get("modelArn") == model_arn]


def test_pipeline_runs_end_to_end_through_the_triggerer(
    airflow_deployment: AirflowDeployment, e2e_emulator: Any
) -> None:
    dag_id = "bedrock_fine_tune_pipeline"
    airflow_deployment.wait_for_dag(dag_id)
    airflow_deployment.trigger(dag_id, "e2e-pipeline", {"epochs": 3})
    # The wait must happen in the triggerer, not on a worker.
    airflow_deployment.wait_for_task_state(
        dag_id, "e2e-pipeline", "fine_tune", {"deferred", "success"}, timeout=180
    )
    state = airflow_deployment.wait_for_run(dag_id, "e2e-pipeline", timeout=480)
    assert state == "success", airflow_deployment.diagnostics()
    trigger_log = airflow_deployment.trigger_log(dag_id, "e2e-pipeline", "fine_tune")
    assert "BedrockFineTuneJobCompletedTrigger" in trigger_log, "the wait did not run in the triggerer"

    def xcom(task_id: str, key: str = "return_value") -> Any:
        return airflow_deployment.xcom(dag_id, "e2e-pipeline", task_id, key)

    result = xcom("fine_tune")
    assert result["status"] == "Completed"
    job = _job(e2e_emulator, result["job_arn"])
    model_arn = result["custom_model_arn"]
    assert job["outputModelArn"] == model_arn
    assert result["training_loss"] == pytest.approx(job["trainingMetrics"]["trainingLoss"])
    metrics = xcom("report_metrics")
    assert len(metrics["per_epoch"]) == 3
    losses = [row["training_loss"] for row in metrics["per_epoch"]]
    assert losses == sorted(losses, reverse=True), "training loss must fall epoch by epoch"
    # One definition of the final training loss: the job's figure is our summary's.
    assert metrics["figures"]["final_training_loss"] == pytest.approx(job["trainingMetrics"]["trainingLoss"])
    assert metrics["plot_uri"].endswith("/loss_curves.png")

    # No incumbent in a fresh registry: nothing else was deployed or compared.
    assert xcom("get_incumbent") is None
    assert xcom("deploy_incumbent", "resource_arn") is None
    deployment_arn = xcom("deploy_candidate")
    assert deployment_arn == xcom("deploy_candidate", "resource_arn")
    assert "trigger" in airflow_deployment.trigger_log(dag_id, "e2e-pipeline", "deploy_candidate").lower()

    # The evaluation: the candidate through its deployment, the base model by its on-demand id.
    summary = xcom("evaluate")
    assert summary["examples"] == 140
    candidate, base = summary["models"]
    assert (candidate["label"], candidate["invoked_as"]) == ("candidate", deployment_arn)
    assert (base["label"], base["invoked_as"]) == ("base", "meta.llama3-1-8b-instruct-v1:0")
    assert candidate["failed"] == base["failed"] == 0
    rouge = next(c for c in summary["comparisons"] if c["baseline"] == "base" and c["metric"] == "rouge_l")
    assert rouge["significant"] and rouge["difference"]["low"] > 0.1

    decision = xcom("quality_gate")
    assert decision["passed"] is True and all(r["passed"] for r in decision["results"])
    assert {r["gate"] for r in decision["results"]} >= {"max_validation_loss", "min_metric", "beats_baseline"}

    # Promoted, with the evaluated scores, and found again from the tags alone.
    promotion = xcom("promote")
    assert promotion["model_arn"] == model_arn and promotion["stage"] == "production"
    assert promotion["scores"]["rouge_l"] == pytest.approx(candidate["metrics"]["rouge_l"]["mean"], abs=1e-4)
    from airflow_bedrock_ft.core.registry import ModelRegistry

    incumbent = ModelRegistry(e2e_emulator.client("bedrock")).find_incumbent("bedrock-fine-tune-pipeline")
    assert incumbent is not None and incumbent.model_arn == model_arn and incumbent.run_id == "e2e-pipeline"

    # Torn down: nothing of this run is still deployed.
    assert airflow_deployment.task_state(dag_id, "e2e-pipeline", "undeploy_candidate") == "success"
    assert _deployments_of(e2e_emulator, model_arn) == []


def test_watch_external_job_waits_for_a_job_submitted_elsewhere_and_evaluates_it(
    airflow_deployment: AirflowDeployment, e2e_emulator: Any, tmp_path: Any
) -> None:
    import uuid

    from .conftest import DEMO, E2E_BUCKET

    dag_id = "bedrock_watch_external_job"
    airflow_deployment.wait_for_dag(dag_id)
    name = f"external-{uuid.uuid4().hex[:8]}"
    job_arn = e2e_emulator.client("bedrock").create_model_customization_job(
        jobName=name,
        customModelName=f"{name}-model",
        roleArn="arn:aws:iam::123456789012:role/BedrockFineTuneDemo",
        baseModelIdentifier="meta.llama3-1-8b-instruct-v1:0:128k",
        trainingDataConfig={"s3Uri": f"s3://{E2E_BUCKET}/data/train.jsonl"},
        validationDataConfig={"validators": [{"s3Uri": f"s3://{E2E_BUCKET}/data/validation.jsonl"}]},
        outputDataConfig={"s3Uri": f"s3://{E2E_BUCKET}/external-output/"},
        hyperParameters={"epochCount": "2"},
    )["jobArn"]
    holdout = tmp_path / "holdout.jsonl"
    holdout.write_text("".join((DEMO / "validation.jsonl").read_text().splitlines(keepends=True)[:40]))
    airflow_deployment.trigger(dag_id, "e2e-watch", {
        "job": name,
        "holdout": str(holdout),
        "baselines": ["base=meta.llama3-1-8b-instruct-v1:0:128k"],
        "metrics": ["token_f1", "rouge_l"],
    })
    # The sensor waits in the triggerer while the job trains.
    airflow_deployment.wait_for_task_state(dag_id, "e2e-watch", "wait_for_job", {"deferred"}, timeout=120)
    state = airflow_deployment.wait_for_run(dag_id, "e2e-watch", timeout=300)
    assert state == "success", airflow_deployment.diagnostics()

    waited = airflow_deployment.xcom(dag_id, "e2e-watch", "wait_for_job")
    job = _job(e2e_emulator, job_arn)
    assert waited["job_arn"] == job_arn and waited["custom_model_arn"] == job["outputModelArn"]
    summary = airflow_deployment.xcom(dag_id, "e2e-watch", "evaluate")
    assert summary["metrics"] == ["token_f1", "rouge_l"] and summary["examples"] == 40
    candidate, base = summary["models"]
    assert candidate["invoked_as"] == airflow_deployment.xcom(dag_id, "e2e-watch", "deploy")
    assert base["invoked_as"] == "meta.llama3-1-8b-instruct-v1:0"
    assert candidate["metrics"]["rouge_l"]["mean"] > base["metrics"]["rouge_l"]["mean"]
    assert airflow_deployment.task_state(dag_id, "e2e-watch", "undeploy") == "success"
    assert _deployments_of(e2e_emulator, job["outputModelArn"]) == []


def test_triggerer_restart_resumes_polling_and_never_stops_the_job(
    airflow_deployment: AirflowDeployment, e2e_emulator: Any
) -> None:
    airflow_deployment.wait_for_dag(E2E_DAG)
    e2e_emulator.set_config(hold_phases=["training"])  # the job stays InProgress until released
    try:
        airflow_deployment.trigger(E2E_DAG, "restart-run")
        airflow_deployment.wait_for_task_state(E2E_DAG, "restart-run", "fine_tune", {"deferred"}, timeout=180)
        job = _job_of_run(e2e_emulator, "restart-run", airflow_deployment)

        airflow_deployment.restart("triggerer")  # SIGTERM, as a redeploy does
        time.sleep(5)
        assert _job(e2e_emulator, job["jobArn"])["status"] == "InProgress"
        assert airflow_deployment.task_state(E2E_DAG, "restart-run", "fine_tune") == "deferred"
    finally:
        e2e_emulator.set_config(hold_phases=[])
    assert airflow_deployment.wait_for_run(E2E_DAG, "restart-run", timeout=240) == "success"
    assert _job(e2e_emulator, job["jobArn"])["status"] == "Completed"
    # Exactly one job for the run: the restart neither stopped nor resubmitted it.
    _job_of_run(e2e_emulator, "restart-run", airflow_deployment)


def test_marking_a_deferred_task_failed_stops_its_job(
    airflow_deployment: AirflowDeployment, e2e_emulator: Any
) -> None:
    airflow_deployment.wait_for_dag(E2E_DAG)
    e2e_emulator.set_config(hold_phases=["training"])
    try:
        airflow_deployment.trigger(E2E_DAG, "kill-run")
        airflow_deployment.wait_for_task_state(E2E_DAG, "kill-run", "fine_tune", {"deferred"}, timeout=180)
        job = _job_of_run(e2e_emulator, "kill-run", airflow_deployment)
        # Act once the triggerer really runs the wait (a trigger that no triggerer has picked
        # up yet has nobody to call its on_kill).
        _wait(
            lambda: (
                "BedrockFineTuneJobCompletedTrigger"
                in airflow_deployment.trigger_log(E2E_DAG, "kill-run", "fine_tune")
            ),
            60,
            "the triggerer never ran the wait",
            airflow_deployment,
        )
        airflow_deployment.set_task_state(E2E_DAG, "kill-run", "fine_tune", "failed")
        final = _wait(
            lambda: _job(e2e_emulator, job["jobArn"])["status"] in ("Stopping", "Stopped"),
            60,
            "the job was not stopped after its deferred task was marked failed",
            airflow_deployment,
        )
        assert final
    finally:
        e2e_emulator.set_config(hold_phases=[])
    assert airflow_deployment.task_state(E2E_DAG, "kill-run", "fine_tune") == "failed"


def test_hard_deferral_timeout_of_mapped_tasks_stops_each_own_job(
    airflow_deployment: AirflowDeployment, e2e_emulator: Any
) -> None:
    """No triggerer reports, so the scheduler times the deferrals out: each map index stops its job.

    The fallback used to pull the ``job_arn`` XCom without a map index, got every index's ARN
    and stopped none.
    """
    from airflow_bedrock_ft.core.naming import job_identity

    dag_id, run_id = "e2e_mapped_timeout", "mapped-timeout"
    airflow_deployment.wait_for_dag(dag_id)
    e2e_emulator.set_config(hold_phases=["training"])
    airflow_deployment.stop("triggerer")
    try:
        airflow_deployment.trigger(dag_id, run_id)
        names = {job_identity(dag_id, "fine_tune", run_id, i).job_name: i for i in (0, 1)}

        def states() -> list[str]:
            rows = airflow_deployment.query(
                "SELECT state FROM task_instance WHERE dag_id=? AND run_id=? AND task_id='fine_tune'",
                dag_id,
                run_id,
            )
            return [r[0] for r in rows]

        _wait(
            lambda: states() and all(s == "failed" for s in states()),
            180,
            "tasks did not fail",
            airflow_deployment,
        )
        jobs = [j for j in _jobs(e2e_emulator) if j["jobName"] in names]
        assert len(jobs) == 2, jobs
        for summary in jobs:
            assert _job(e2e_emulator, summary["jobArn"])["status"] in ("Stopping", "Stopped"), summary
        for i in (0, 1):
            arn = airflow_deployment.query(
                "SELECT value FROM xcom WHERE dag_id=? AND run_id=? AND task_id='fine_tune' AND key='job_arn' "
                "AND map_index=?",
                dag_id,
                run_id,
                i,
            )
            assert arn, f"no job_arn XCom for map index {i}"
    finally:
        e2e_emulator.set_config(hold_phases=[])
        airflow_deployment.start("triggerer")


@pytest.mark.parametrize("action", ["kill_the_evaluation", "mark_the_run_failed"])
def test_the_deployment_is_torn_down_when_the_evaluation_is_killed_or_the_run_failed(
    airflow_deployment: AirflowDeployment, e2e_emulator: Any, action: str
) -> None:
    dag_id, run_id = "e2e_serving", f"serving-{action}"
    bedrock = e2e_emulator.client("bedrock")
    model_arn = _trained_model(e2e_emulator)
    airflow_deployment.wait_for_dag(dag_id)
    airflow_deployment.trigger(dag_id, run_id, {"model_arn": model_arn})
    airflow_deployment.wait_for_task_state(dag_id, run_id, "evaluate", {"running"}, timeout=180)
    arn = airflow_deployment.xcom(dag_id, run_id, "deploy")
    assert bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=arn)["status"] == "Active"
    if action == "kill_the_evaluation":
        airflow_deployment.set_task_state(dag_id, run_id, "evaluate", "failed")  # SIGTERM to the task
    else:
        airflow_deployment.api("PATCH", f"/dags/{dag_id}/dagRuns/{run_id}", {"state": "failed"})
    airflow_deployment.wait_for_task_state(dag_id, run_id, "undeploy", {"success"}, timeout=120)
    assert airflow_deployment.task_state(dag_id, run_id, "evaluate") == "failed"
    remaining = [
        d
        for d in bedrock.list_custom_model_deployments()["modelDeploymentSummaries"]
        if d["customModelDeploymentArn"] == arn
    ]
    assert remaining == [], remaining
    assert airflow_deployment.wait_for_run(dag_id, run_id, timeout=60) == "failed"


def _trained_model(emulator: Any) -> str:
    """A custom model the emulator trained (once per session)."""
    if not hasattr(_trained_model, "arn"):
        bedrock = emulator.client("bedrock")
        suffix = uuid.uuid4().hex[:8]
        arn = bedrock.create_model_customization_job(
            jobName=f"serving-{suffix}",
            customModelName=f"serving-{suffix}",
            roleArn="arn:aws:iam::123456789012:role/BedrockE2E",
            baseModelIdentifier="meta.llama3-1-8b-instruct-v1:0:128k",
            trainingDataConfig={"s3Uri": "s3://e2e-bucket/data/train.jsonl"},
            outputDataConfig={"s3Uri": "s3://e2e-bucket/output/"},
            hyperParameters={"epochCount": "1"},
        )["jobArn"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job = bedrock.get_model_customization_job(jobIdentifier=arn)
            if job["status"] != "InProgress":
                break
            time.sleep(1)
        assert job["status"] == "Completed", job.get("failureMessage")
        _trained_model.arn = job["outputModelArn"]  # type: ignore[attr-defined]
    return str(_trained_model.arn)  # type: ignore[attr-defined]
