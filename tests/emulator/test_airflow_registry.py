"""The registry operators as Airflow tasks against a real metadata database (SQLite, migrated)
and the emulator: the promotion's Asset event is stored with its extra, the incumbent goes to
XCom, a rollback emits its own event."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_bedrock_ft.core.registry import ModelRegistry

from .helpers import wait_for

DAG_FILE = textwrap.dedent('''
    import datetime
    from airflow.sdk import DAG
    from airflow_bedrock_ft.operators.registry import (
        BedrockGetIncumbentOperator, BedrockPromoteModelOperator, BedrockRollbackModelOperator)

    with DAG("registry_promote", schedule=None, start_date=datetime.datetime(2026, 1, 1),
             params={"model_arn": ""}) as promote_dag:
        incumbent = BedrockGetIncumbentOperator(task_id="incumbent", scope="support", aws_conn_id="bedrock_emu")
        promote = BedrockPromoteModelOperator(
            task_id="promote", custom_model_arn="{{ params.model_arn }}", scope="support",
            scores={"f1": 0.61, "rouge_l": 0.4}, aws_conn_id="bedrock_emu")
        incumbent >> promote

    with DAG("registry_rollback", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as rollback_dag:
        BedrockRollbackModelOperator(task_id="rollback", scope="support", aws_conn_id="bedrock_emu")

    with DAG("registry_promote_templated", schedule=None, start_date=datetime.datetime(2026, 1, 1),
             params={"model_arn": "", "scope": ""}) as templated_dag:
        BedrockPromoteModelOperator(
            task_id="promote", custom_model_arn="{{ params.model_arn }}", scope="{{ params.scope }}",
            aws_conn_id="bedrock_emu")
''')

RUNNER = textwrap.dedent('''
    import json, sys, warnings
    warnings.filterwarnings("ignore")
    import importlib.util
    spec = importlib.util.spec_from_file_location("registry_dags", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    results = []
    for dag_name, conf in json.loads(sys.argv[2]):
        dag = getattr(module, dag_name)
        run = dag.test(run_conf=conf)
        with create_session() as session:
            events = [
                {"uri": uri, "extra": event.extra, "task_id": event.source_task_id, "run_id": event.source_run_id}
                for event, uri in session.query(AssetEvent, AssetModel.uri)
                .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .filter(AssetEvent.source_run_id == run.run_id)
            ]
            xcoms = {
                f"{x.task_id}:{x.key}": x.value
                for x in session.query(XComModel).filter(XComModel.run_id == run.run_id,
                                                         XComModel.dag_id == dag.dag_id)
            }
            states = {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}
        results.append({"state": str(run.state), "run_id": run.run_id, "states": states,
                        "events": events, "xcoms": xcoms})
    print("RESULT " + json.dumps(results, default=str))
''')


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment of a throw-away Airflow home with a migrated SQLite metadata database."""
    home = tmp_path_factory.mktemp("airflow-home")
    (home / "dags").mkdir()
    (home / "dags" / "registry_dags.py").write_text(DAG_FILE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    })
    done = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return env


def _run(env: dict[str, str], conn: dict[str, Any], *steps: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Run DAGs one after another with dag.test() in one Airflow process; each run's state,
    task states, Asset events and XComs as read back from the metadata database."""
    dag_file = Path(env["AIRFLOW__CORE__DAGS_FOLDER"]) / "registry_dags.py"
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(dag_file), json.dumps(steps)],
        env={**env, "AIRFLOW_CONN_BEDROCK_EMU": json.dumps(conn)},
        capture_output=True, text=True, timeout=300,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    return list(json.loads(lines[-1][len("RESULT "):]))


@pytest.fixture
def two_models(bedrock: Any, job_request: Callable[..., dict[str, Any]]) -> list[str]:
    """Two custom models trained in the emulator."""
    arns = [bedrock.create_model_customization_job(**job_request(hyperParameters={"epochCount": "1"}))["jobArn"]
            for _ in range(2)]
    jobs = [wait_for(bedrock, arn, timeout=60) for arn in arns]
    assert all(j["status"] == "Completed" for j in jobs)
    return [j["outputModelArn"] for j in jobs]


def test_promotion_emits_an_asset_event_with_the_model_and_scores(
    emulator: Any, bedrock: Any, airflow_env: dict[str, str], two_models: list[str]
) -> None:
    """Five DAG runs: a failed promotion (no event), promote A, promote B (A found as the
    incumbent and demoted), roll back (A restored), promote B again with a scope given at run
    time (the event goes through the Asset alias to the same Asset)."""
    a, b = two_models
    missing = a[:-12] + "zzzzzzzzzzzz"
    failed, first, second, back, templated = _run(
        airflow_env, emulator.connection(),
        ("promote_dag", {"model_arn": missing}),
        ("promote_dag", {"model_arn": a}),
        ("promote_dag", {"model_arn": b}),
        ("rollback_dag", {}),
        ("templated_dag", {"model_arn": b, "scope": "support"}),
    )
    assert failed["state"].endswith("failed") and failed["states"]["promote"].endswith("failed"), failed
    assert failed["events"] == []

    assert first["state"].endswith("success"), first
    assert first["xcoms"].get("incumbent:return_value") is None, first["xcoms"]
    assert "incumbent:record" in first["xcoms"] and first["xcoms"]["incumbent:record"] is None
    [event] = first["events"]
    assert event["uri"] == "bedrock://custom-model/support/production"
    assert event["task_id"] == "promote"
    assert event["extra"]["model_arn"] == a
    assert event["extra"]["scores"] == {"f1": 0.61, "rouge_l": 0.4}
    assert event["extra"]["previous_model_arn"] is None
    assert event["extra"]["dag_id"] == "registry_promote" and event["extra"]["run_id"] == first["run_id"]
    assert event["extra"]["source_job_arn"] == bedrock.get_custom_model(modelIdentifier=a)["jobArn"]

    assert second["state"].endswith("success"), second
    assert second["xcoms"]["incumbent:return_value"] == a  # found from the tags alone
    assert second["xcoms"]["incumbent:record"]["scores"] == {"f1": 0.61, "rouge_l": 0.4}
    [event] = second["events"]
    assert event["extra"]["model_arn"] == b and event["extra"]["previous_model_arn"] == a

    assert back["state"].endswith("success"), back
    [event] = back["events"]
    assert event["uri"] == "bedrock://custom-model/support/production"
    assert event["extra"]["model_arn"] == a and event["extra"]["rolled_back_model_arn"] == b

    assert templated["state"].endswith("success"), templated
    [event] = templated["events"]
    assert event["uri"] == "bedrock://custom-model/support/production"
    assert event["extra"]["model_arn"] == b and event["extra"]["previous_model_arn"] == a
    incumbent = ModelRegistry(bedrock).find_incumbent("support")
    assert incumbent is not None and incumbent.model_arn == b and incumbent.run_id == templated["run_id"]
