"""OpenLineage events of the prepare, fine-tune and evaluate steps in real DAG runs (``dag.test()``
on a migrated SQLite metadata DB, in a fresh process, with the OpenLineage provider and its file
transport) against the emulator over HTTP. A second DAG with the same data reuses the first
DAG's model: no new job, and its lineage names the model and the job it came from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

from .helpers import COUNTRIES, NOVA, ROLE, converse_record, jsonl

DAG_FILE = '''
from airflow.sdk import DAG

from airflow_bedrock_ft.operators.bedrock_ft import BedrockFineTuneCreateJobOperator
from airflow_bedrock_ft.operators.evaluate import BedrockEvaluateOperator
from airflow_bedrock_ft.operators.prepare import BedrockFineTunePrepareDataOperator
from airflow_bedrock_ft.operators.serving import (
    BedrockCreateCustomModelDeploymentOperator,
    BedrockDeleteCustomModelDeploymentOperator,
)

SOURCE = {source!r}
HOLDOUT = {holdout!r}
BUCKET = {bucket!r}
OUT = {out!r}

for dag_id, evaluate_too in (("lineage_train", True), ("lineage_again", False)):
    with DAG(dag_id, schedule=None, catchup=False) as dag:
        prepare = BedrockFineTunePrepareDataOperator(
            task_id="prepare", source=SOURCE, model={nova!r}, output_s3_uri=f"s3://{{BUCKET}}/prepared",
            validation_ratio=0.3, hyperparameters={{"epochCount": 1}},
        )
        tune = BedrockFineTuneCreateJobOperator(
            task_id="tune", base_model={nova!r},
            training_data="{{{{ ti.xcom_pull(task_ids='prepare')['train_s3_uri'] }}}}",
            validation_data="{{{{ ti.xcom_pull(task_ids='prepare')['validation_s3_uri'] }}}}",
            output_s3_uri=f"s3://{{BUCKET}}/output/", role_arn={role!r},
            hyperparameters={{"epochCount": 1, "learningRate": 0.0001}},
            deferrable=False, poll_interval=0.2, reuse_completed=True,
        )
        prepare >> tune
        if evaluate_too:
            deploy = BedrockCreateCustomModelDeploymentOperator(
                task_id="deploy", model_arn="{{{{ ti.xcom_pull(task_ids='tune')['custom_model_arn'] }}}}",
                poll_interval=0.2,
            )
            evaluate = BedrockEvaluateOperator(
                task_id="evaluate", model="{{{{ ti.xcom_pull(task_ids='tune')['custom_model_arn'] }}}}",
                data=HOLDOUT, metrics=["token_f1", "exact_match"], concurrency=2, max_tokens=8,
                output_uri=OUT, n_resamples=200,
            )
            undeploy = BedrockDeleteCustomModelDeploymentOperator(
                task_id="undeploy",
                deployment="{{{{ ti.xcom_pull(task_ids='deploy', key='resource_arn') }}}}",
                poll_interval=0.2,
            )
            tune >> deploy >> evaluate >> undeploy.as_teardown(setups=deploy)
    globals()[dag_id] = dag
'''

RUNNER = '''
import importlib.util, json, sys
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session

spec = importlib.util.spec_from_file_location("lineage_dags", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
out = {}
for dag_id in ("lineage_train", "lineage_again"):
    run = getattr(module, dag_id).test()
    xcoms = {}
    with create_session() as session:
        for row in session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=dag_id, key="return_value")):
            xcoms[row.task_id] = XComModel.deserialize_value(row)
    out[dag_id] = {"state": str(run.state), "tasks": {ti.task_id: str(ti.state) for ti in run.get_task_instances()},
                   "xcom": xcoms}
from sqlalchemy import select
from airflow.models.asset import AssetEvent, AssetModel
with create_session() as session:
    rows = session.execute(select(AssetModel.uri, AssetEvent.extra, AssetEvent.source_dag_id)
                           .join(AssetModel, AssetEvent.asset_id == AssetModel.id))
    out["asset_events"] = [[uri, extra, dag_id] for uri, extra, dag_id in rows]
print("RESULT " + json.dumps(out, default=str))
'''


def _events(folder: Path) -> list[dict[str, Any]]:
    events = []
    for path in sorted(folder.iterdir()):
        for line in path.read_text().splitlines():
            if line.strip():
                events.append(json.loads(line))
    return events


def _one(events: list[dict[str, Any]], dag_id: str, task_id: str, event_type: str) -> dict[str, Any]:
    found = [e for e in events if e.get("eventType") == event_type and e["job"]["name"] == f"{dag_id}.{task_id}"]
    assert len(found) == 1, (dag_id, task_id, event_type, [(e["eventType"], e["job"]["name"]) for e in events])
    return found[0]


def _names(datasets: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in datasets}


def test_lineage_events_of_prepare_fine_tune_and_evaluate(emulator: Any, tmp_path: Path) -> None:
    s3 = emulator.client("s3")
    bucket = f"lineage-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    source = tmp_path / "raw.jsonl"
    source.write_bytes(jsonl([converse_record(*c) for c in COUNTRIES]))
    holdout = tmp_path / "holdout.jsonl"
    holdout.write_text("".join(json.dumps({"prompt": f"What language is spoken in {c}?",
                                           "completion": f"The main language of {c} is {lang}."}) + "\n"
                               for c, lang in COUNTRIES[:4]))
    out = str(tmp_path / "results.jsonl")
    dags = tmp_path / "dags"
    dags.mkdir()
    dag_file = dags / "lineage_dags.py"
    dag_file.write_text(DAG_FILE.format(source=str(source), holdout=str(holdout), bucket=bucket, out=out,
                                        nova=NOVA, role=ROLE))
    lineage_dir = tmp_path / "lineage"
    lineage_dir.mkdir()
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW_CONN_AWS_DEFAULT": emulator.connection_uri_json(),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "bedrock-ft-test",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(lineage_dir / "events.jsonl"), "append": True}),
    })
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True,
                   capture_output=True, timeout=300)
    emulator.stats(clear=True)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(RUNNER), str(dag_file)], env=env,
                          capture_output=True, text=True, timeout=600)
    (tmp_path / "logs.txt").write_text(done.stdout + done.stderr)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    first, again = result["lineage_train"], result["lineage_again"]
    assert set(first["tasks"].values()) == {"success"}, first["tasks"]
    assert set(again["tasks"].values()) == {"success"}, again["tasks"]

    # One training for both DAGs: the second reused the first's model.
    assert emulator.stats()["operations"]["CreateModelCustomizationJob"] == 1
    tuned = first["xcom"]["tune"]
    reused = again["xcom"]["tune"]
    assert reused["reused_from"] == tuned["job_arn"] and reused["custom_model_arn"] == tuned["custom_model_arn"]
    prepared = first["xcom"]["prepare"]
    assert again["xcom"]["prepare"]["train_s3_uri"] == prepared["train_s3_uri"]

    # Airflow Assets: the prepared prefix as before, and the custom model through its alias.
    model_events = [(extra, dag_id) for uri, extra, dag_id in result["asset_events"]
                    if uri == tuned["custom_model_arn"]]
    assert [dag_id for _, dag_id in model_events] == ["lineage_train", "lineage_again"]
    assert model_events[0][0]["job_arn"] == tuned["job_arn"]
    assert model_events[1][0]["reused_from"] == tuned["job_arn"]
    assert f"s3://{bucket}/prepared" in {uri for uri, _, _ in result["asset_events"]}

    events = _events(lineage_dir)
    model_arn = tuned["custom_model_arn"]
    model_ns, _, model_name = model_arn.rpartition(":custom-model/")
    model_dataset = (model_ns, "custom-model/" + model_name)
    assert model_ns == "arn:aws:bedrock:us-east-1:123456789012"
    train_bucket, _, train_key = prepared["train_s3_uri"][len("s3://"):].partition("/")
    val_key = prepared["validation_s3_uri"][len(f"s3://{bucket}/"):]

    # prepare: the local source in, the content-addressed datasets out, with their statistics.
    prep = _one(events, "lineage_train", "prepare", "COMPLETE")
    assert _names(prep["inputs"]) == {("file", str(source))}
    assert _names(prep["outputs"]) == {(f"s3://{bucket}", train_key), (f"s3://{bucket}", val_key)}
    stats = {o["name"]: o["outputFacets"]["outputStatistics"] for o in prep["outputs"]}
    totals = prepared["report"]["totals"]
    assert stats[train_key]["rowCount"] == totals["train"]["records"]
    assert stats[val_key]["rowCount"] == totals["validation"]["records"]
    assert totals["train"]["records"] + totals["validation"]["records"] == len(COUNTRIES)
    facet = prep["run"]["facets"]["bedrockDatasetPreparation"]
    assert facet["model"] == NOVA and facet["errors"] == 0
    assert facet["estimatedTrainingTokens"] == prepared["report"]["estimated_training_tokens"]

    # fine-tune: the prepared data and the base model in, the custom model (by ARN) out.
    tune = _one(events, "lineage_train", "tune", "COMPLETE")
    assert _names(tune["inputs"]) == {
        (f"s3://{train_bucket}", train_key), (f"s3://{bucket}", val_key),
        ("arn:aws:bedrock:us-east-1:", f"foundation-model/{NOVA}"),
    }
    assert model_dataset in _names(tune["outputs"])
    assert (f"s3://{bucket}", "output/") in _names(tune["outputs"])
    job = tune["run"]["facets"]["bedrockFineTuneJob"]
    assert job["jobArn"] == tuned["job_arn"] and job["status"] == "Completed"
    assert job["hyperParameters"] == {"epochCount": "1", "learningRate": "0.0001"}
    assert job["trainingLoss"] == tuned["training_loss"] and job["validationLoss"] == tuned["validation_loss"]
    assert job["customModelArn"] == model_arn and job.get("reusedFrom") is None
    assert len(job["trainingDigest"]) == 64
    assert job["_schemaURL"].startswith("urn:airflow-bedrock-ft:")
    start = _one(events, "lineage_train", "tune", "START")
    assert (f"s3://{bucket}", "output/") not in _names(start.get("outputs", []))

    # evaluate: the custom model (the same dataset as the fine-tune output) and the holdout in.
    evaluation = _one(events, "lineage_train", "evaluate", "COMPLETE")
    assert _names(evaluation["inputs"]) == {model_dataset, ("file", str(holdout))}
    assert _names(evaluation["outputs"]) == {("file", out)}
    scores = evaluation["run"]["facets"]["bedrockEvaluation"]
    summary = first["xcom"]["evaluate"]
    assert scores["examples"] == summary["examples"] == 4
    assert scores["models"][0]["metrics"]["token_f1"]["mean"] == summary["models"][0]["metrics"]["token_f1"]["mean"]

    # The reusing DAG's fine-tune names the same model, and the job it came from.
    second = _one(events, "lineage_again", "tune", "COMPLETE")
    assert model_dataset in _names(second["outputs"])
    assert second["run"]["facets"]["bedrockFineTuneJob"]["reusedFrom"] == tuned["job_arn"]
    assert second["run"]["facets"]["bedrockFineTuneJob"]["trainingDigest"] == job["trainingDigest"]
