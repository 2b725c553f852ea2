"""The evaluation and quality-gate operators in real DAG runs (``dag.test()`` on a migrated
SQLite metadata DB, in a fresh process) against the emulator over HTTP, through the Airflow
AWS connection: XCom between the tasks, the gate failing the run or skipping promotion while
the teardown still runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from .helpers import COUNTRIES

DAG_FILE = '''
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

from airflow_bedrock_ft.operators.evaluate import BedrockEvaluateOperator, BedrockQualityGateOperator

DATA = {data!r}
OUT = {out!r}

for mode in ("short_circuit", "fail"):
    with DAG(f"eval_{{mode}}", schedule=None, catchup=False) as dag:
        deploy = EmptyOperator(task_id="deploy")
        evaluate = BedrockEvaluateOperator(
            task_id="evaluate", model="amazon.nova-micro-v1:0:128k",
            baselines=["titan=amazon.titan-text-express-v1"], data=DATA, metrics=["token_f1", "exact_match"],
            concurrency=4, rate=50, max_tokens=8, output_uri=OUT + "/{{{{ dag.dag_id }}}}.jsonl",
        )
        sane = BedrockQualityGateOperator(
            task_id="sane", gates={{"min_metric": {{"token_f1": 0.0}}}}, evaluation=evaluate.output, mode=mode,
        )
        gate = BedrockQualityGateOperator(
            task_id="gate",
            gates={{"max_validation_loss": 1.0, "min_metric": {{"token_f1": 0.99}},
                    "beats_baseline": [{{"baseline": "titan", "metric": "token_f1", "margin": 0.5}}]}},
            metrics={{"training_loss": 0.4, "validation_loss": 0.5}},
            evaluation="{{{{ ti.xcom_pull(task_ids='evaluate') | tojson }}}}",
            mode=mode,
        )
        promote = EmptyOperator(task_id="promote")
        cleanup = EmptyOperator(task_id="cleanup")
        deploy >> evaluate >> sane >> gate >> promote >> cleanup.as_teardown(setups=deploy)
    globals()[dag.dag_id] = dag
'''

RUNNER = '''
import importlib.util, json, sys
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session

spec = importlib.util.spec_from_file_location("eval_dags", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
out = {}
for dag_id in ("eval_short_circuit", "eval_fail"):
    dag = getattr(module, dag_id)
    run = dag.test()
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    xcoms = {}
    with create_session() as session:
        for row in session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=dag_id, key="return_value")):
            xcoms[row.task_id] = XComModel.deserialize_value(row)
    out[dag_id] = {"state": str(run.state), "tasks": states, "xcom": xcoms}
print("RESULT " + json.dumps(out, default=str))
'''


def test_gate_fails_or_skips_promotion_on_the_evaluation(emulator: Any, tmp_path: Path) -> None:
    data = tmp_path / "holdout.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"What language is spoken in {c}?",
                                        "completion": f"The main language of {c} is {lang}."}) + "\n"
                            for c, lang in COUNTRIES[:6]))
    dags = tmp_path / "dags"
    dags.mkdir()
    dag_file = dags / "eval_dags.py"
    dag_file.write_text(DAG_FILE.format(data=str(data), out=str(tmp_path / "results")))
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW_CONN_AWS_DEFAULT": emulator.connection_uri_json(),
    })
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True,
                   capture_output=True, timeout=300)
    emulator.stats(clear=True)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(RUNNER), str(dag_file)], env=env,
                          capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    logs = done.stdout + done.stderr
    (tmp_path / "logs.txt").write_text(logs)

    short = result["eval_short_circuit"]
    assert short["tasks"] == {"deploy": "success", "evaluate": "success", "sane": "success", "gate": "success",
                              "promote": "skipped", "cleanup": "success"}, short
    summary = short["xcom"]["evaluate"]
    assert summary["examples"] == 6
    assert [m["label"] for m in summary["models"]] == ["candidate", "titan"]
    assert summary["models"][0]["invoked_as"] == "amazon.nova-micro-v1:0"
    assert summary["comparisons"][0]["baseline"] == "titan"
    decision = short["xcom"]["gate"]
    assert decision["passed"] is False
    assert [r["passed"] for r in decision["results"]] == [True, False, False]
    token_f1 = summary["models"][0]["metrics"]["token_f1"]["mean"]
    assert decision["results"][1]["figure"] == token_f1
    assert short["xcom"]["sane"]["passed"] is True

    fail = result["eval_fail"]
    assert fail["state"].endswith("failed")
    assert fail["tasks"]["gate"] == "failed" and fail["tasks"]["promote"] == "upstream_failed"
    assert fail["tasks"]["cleanup"] == "success" and fail["tasks"]["evaluate"] == "success"
    assert fail["xcom"]["gate"]["passed"] is False and fail["xcom"]["gate"]["message"] == decision["message"]
    # The failure lists every figure against its threshold.
    assert "Quality gates failed (2 of 3)" in logs
    assert "PASS validation loss 0.5 <= 1" in logs and "FAIL candidate token_f1" in logs
    assert "FAIL candidate - titan on token_f1" in logs

    # Both runs evaluated two models on six prompts over HTTP, through the Airflow connection.
    assert emulator.stats()["operations"]["Converse"] == 2 * 2 * 6
    for dag_id in ("eval_short_circuit", "eval_fail"):
        assert len((tmp_path / "results" / f"{dag_id}.jsonl").read_text().splitlines()) == 12
