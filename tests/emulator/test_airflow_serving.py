"""Setup and teardown of a deployment in real DAG runs (``dag.test()`` on a migrated SQLite
metadata DB, in a fresh process) against the emulator over HTTP: whether the evaluation
succeeds or fails, and when the setup itself fails, nothing is left running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from .helpers import wait_for

DAG_FILE = """
from airflow.sdk import DAG, task

from airflow_bedrock_ft.operators.serving import (
    BedrockCreateCustomModelDeploymentOperator,
    BedrockDeleteCustomModelDeploymentOperator,
)

MODEL = {model!r}

for name, outcome in (("serve_ok", "ok"), ("serve_eval_fails", "raise"), ("serve_setup_fails", "ok")):
    with DAG(name, schedule=None, catchup=False) as dag:
        deploy = BedrockCreateCustomModelDeploymentOperator(
            task_id="deploy", model_arn=MODEL, poll_interval=0.2,
            wait_timeout=1.0 if name == "serve_setup_fails" else 60.0,
        )

        @task(task_id="evaluate")
        def evaluate(arn: str, outcome: str = outcome) -> str:
            if outcome == "raise":
                raise RuntimeError("the evaluation broke")
            return arn

        undeploy = BedrockDeleteCustomModelDeploymentOperator(
            task_id="undeploy",
            deployment="{{{{ ti.xcom_pull(task_ids='deploy', key='resource_arn') }}}}",
            poll_interval=0.2,
        )
        evaluate(deploy.output) >> undeploy.as_teardown(setups=deploy)
    globals()[dag.dag_id] = dag
"""

RUNNER = """
import importlib.util, json, sys, urllib.request
spec = importlib.util.spec_from_file_location("serve_dags", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
import boto3
bedrock = boto3.client("bedrock", endpoint_url=sys.argv[2], region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
out = {}
for dag_id, scale in (("serve_ok", 0.002), ("serve_eval_fails", 0.002), ("serve_setup_fails", 1.0)):
    req = urllib.request.Request(sys.argv[2] + "/_emulator/config", data=json.dumps({"time_scale": scale}).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
    run = getattr(module, dag_id).test()
    out[dag_id] = {
        "state": str(run.state),
        "tasks": {ti.task_id: str(ti.state) for ti in run.get_task_instances()},
        "deployments": [d["status"] for d in bedrock.list_custom_model_deployments()["modelDeploymentSummaries"]],
    }
print("RESULT " + json.dumps(out))
"""


def test_teardown_leaves_nothing_running_whatever_happens(
    emulator: Any, bedrock: Any, job_request: Any, tmp_path: Path
) -> None:
    job = wait_for(
        bedrock,
        bedrock.create_model_customization_job(**job_request(hyperParameters={"epochCount": "1"}))["jobArn"],
    )
    dags = tmp_path / "dags"
    dags.mkdir()
    dag_file = dags / "serve_dags.py"
    dag_file.write_text(DAG_FILE.format(model=job["outputModelArn"]))
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW_CONN_AWS_DEFAULT": emulator.connection_uri_json(),
        }
    )
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(RUNNER), str(dag_file), emulator.endpoint_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT ") :])

    ok = result["serve_ok"]
    assert ok["tasks"] == {"deploy": "success", "evaluate": "success", "undeploy": "success"}, ok
    assert ok["deployments"] == [] and ok["state"].endswith("success")

    failed = result["serve_eval_fails"]
    assert failed["tasks"] == {"deploy": "success", "evaluate": "failed", "undeploy": "success"}, failed
    assert failed["deployments"] == [] and failed["state"].endswith("failed")

    # The setup fails (its wait times out): the teardown does not run, the setup cleaned up.
    setup = result["serve_setup_fails"]
    assert setup["tasks"]["deploy"] == "failed" and setup["tasks"]["evaluate"] == "upstream_failed", setup
    assert setup["deployments"] == [], setup
