"""Cleanup of unused custom models against the emulator over real HTTP: promoted, deployed,
provisioned, young and foreign models are kept, old unused ones deleted (only with delete),
and a listing error keeps every model."""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_bedrock_ft.core.cleanup import DELETE, KEEP, cleanup_models, summarize
from airflow_bedrock_ft.core.cleanup_cli import main as cleanup_main
from airflow_bedrock_ft.core.cost import load_prices
from airflow_bedrock_ft.core.naming import identity_tags, job_identity, request_digest
from airflow_bedrock_ft.core.registry import ModelRegistry

from .helpers import wait_for


def _train(bedrock: Any, job_request: Callable[..., dict[str, Any]], n: int, *, tagged: bool = True) -> list[str]:
    arns = []
    for _ in range(n):
        request = job_request(hyperParameters={"epochCount": "1"})
        if tagged:
            identity = job_identity("tune_dag", "tune", f"manual__{uuid.uuid4().hex}", -1)
            tags = identity_tags(identity, content_digest=request_digest(request), reap=True)
            request["jobTags"] = [{"key": k, "value": v} for k, v in tags.items()]
        arns.append(bedrock.create_model_customization_job(**request)["jobArn"])
    jobs = [wait_for(bedrock, arn, timeout=90) for arn in arns]
    assert all(j["status"] == "Completed" for j in jobs), [j.get("failureMessage") for j in jobs]
    return [j["outputModelArn"] for j in jobs]


@pytest.fixture
def fleet(bedrock: Any, job_request: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """Models: promoted, deployed, provisioned, old (unused), foreign (no plugin tags), then a
    young one trained after all of them; ``now`` is the young one's creation time."""
    promoted, deployed, provisioned, old = _train(bedrock, job_request, 4)
    (foreign,) = _train(bedrock, job_request, 1, tagged=False)
    (young,) = _train(bedrock, job_request, 1)
    ModelRegistry(bedrock).promote(promoted, "support")
    bedrock.create_custom_model_deployment(modelDeploymentName=f"d-{uuid.uuid4().hex[:8]}", modelArn=deployed)
    bedrock.create_provisioned_model_throughput(
        modelUnits=1, provisionedModelName=f"p-{uuid.uuid4().hex[:8]}", modelId=provisioned)
    created = {arn: bedrock.get_custom_model(modelIdentifier=arn)["creationTime"]
               for arn in (promoted, deployed, provisioned, old, foreign, young)}
    now = created[young]
    gap = (now - created[old]).total_seconds()
    assert gap > 0, "the young model must be created after the old one"
    return {"promoted": promoted, "deployed": deployed, "provisioned": provisioned, "old": old,
            "foreign": foreign, "young": young, "now": now, "older_than": gap / 2}


def _prices(tmp_path: Path) -> Any:
    path = tmp_path / "prices.jsonl"
    path.write_text(json.dumps({
        "model": "amazon.nova-micro-v1:0", "customization_type": "FINE_TUNING", "region": "us-east-1",
        "storage_usd_per_month": 1.5, "source": "test sheet", "date": "2026-07-08"}) + "\n")
    return load_prices(path)


def _models(bedrock: Any) -> set[str]:
    return {m["modelArn"] for m in bedrock.list_custom_models()["modelSummaries"]}


def test_keeps_promoted_deployed_provisioned_young_and_foreign_deletes_old(
    bedrock: Any, fleet: dict[str, Any], tmp_path: Path
) -> None:
    prices = _prices(tmp_path)
    before = _models(bedrock)
    seen: list[str] = []
    dry = cleanup_models(bedrock, older_than=fleet["older_than"], now=fleet["now"], prices=prices,
                         echo=lambda d: seen.append(d.line()))
    by_arn = {d.model_arn: d for d in dry}
    assert set(by_arn) == before and len(seen) == len(dry)
    assert by_arn[fleet["promoted"]].action == KEEP and "promoted (stage 'production')" in by_arn[fleet["promoted"]].reason
    assert by_arn[fleet["deployed"]].action == KEEP and "custom-model-deployment/" in by_arn[fleet["deployed"]].reason
    assert by_arn[fleet["provisioned"]].action == KEEP and "provisioned-model/" in by_arn[fleet["provisioned"]].reason
    assert by_arn[fleet["young"]].action == KEEP and "younger than the limit" in by_arn[fleet["young"]].reason
    assert by_arn[fleet["foreign"]].action == KEEP and "not trained by this plugin" in by_arn[fleet["foreign"]].reason
    old = by_arn[fleet["old"]]
    assert old.action == DELETE and old.outcome == "dry-run" and old.storage_usd_per_month == 1.5
    assert "trained by tune_dag/" in old.reason and "saves $1.50 per month" in old.line()
    assert [d.model_arn for d in dry if d.action == DELETE] == [fleet["old"]]
    assert summarize(dry) == f"{len(dry)} custom model(s): would delete 1, kept {len(dry) - 1}; " \
                             "storage saved $1.50 per month"
    assert _models(bedrock) == before  # a dry run deletes nothing

    done = cleanup_models(bedrock, older_than=fleet["older_than"], now=fleet["now"], delete=True)
    assert [(d.model_arn, d.outcome) for d in done if d.action == DELETE] == [(fleet["old"], "deleted")]
    assert "unknown" in summarize(done)  # the built-in table has no Nova Micro price
    assert _models(bedrock) == before - {fleet["old"]}


def test_keep_stage_protects_only_the_stages_named(bedrock: Any, fleet: dict[str, Any]) -> None:
    kept = cleanup_models(bedrock, older_than=fleet["older_than"], now=fleet["now"], keep_stages=["production"])
    assert next(d for d in kept if d.model_arn == fleet["promoted"]).reason == "it is at a kept stage ('production')"
    other = cleanup_models(bedrock, older_than=fleet["older_than"], now=fleet["now"], keep_stages=["staging"])
    promoted = next(d for d in other if d.model_arn == fleet["promoted"])
    assert promoted.action == DELETE and promoted.stage == "production" and promoted.outcome == "dry-run"


def test_a_listing_error_keeps_every_model(emulator: Any, bedrock: Any, fleet: dict[str, Any]) -> None:
    before = _models(bedrock)
    emulator.set_faults(error_5xx={"rate": 1.0, "status": 503, "operations": ["ListProvisionedModelThroughputs"]})
    decisions = cleanup_models(bedrock, older_than=0, now=fleet["now"], delete=True)
    assert {d.action for d in decisions} == {KEEP}
    assert all("cannot prove it unused" in d.reason for d in decisions)
    emulator.set_faults({})
    assert _models(bedrock) == before


def test_command_line_dry_run_by_default_then_delete(
    emulator: Any, bedrock: Any, fleet: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--older-than", "0s", "--endpoint-url", emulator.endpoint_url, "--region", "us-east-1"]
    before = _models(bedrock)
    assert cleanup_main([*base, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["delete"] is False
    chosen = {d["model_arn"] for d in doc["decisions"] if d["action"] == "delete"}
    assert chosen == {fleet["old"], fleet["young"]}  # nothing is young with --older-than 0s
    assert _models(bedrock) == before
    assert cleanup_main([*base, "--delete"]) == 0
    out = capsys.readouterr().out
    assert f"DELETE {fleet['old']}" in out and "[deleted]" in out and "saves unknown per month" in out
    assert f"KEEP   {fleet['promoted']}" in out
    assert _models(bedrock) == before - chosen


def test_command_line_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cleanup_main(["--older-than", "a month"])
    assert info.value.code == 2 and "--older-than: expected a duration" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cleanup_main(["--older-than", "1d", "--delete", "--dry-run"])


def test_young_limit_uses_the_clock_by_default(bedrock: Any, fleet: dict[str, Any]) -> None:
    later = datetime.timedelta(days=30).total_seconds()
    decisions = cleanup_models(bedrock, older_than=later)
    assert all(d.action == KEEP for d in decisions)


def test_operator_dry_run_by_default_and_delete(
    bedrock: Any, fleet: dict[str, Any], aws_conn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_bedrock_ft.operators.cleanup import BedrockCleanupCustomModelsOperator

    prices = tmp_path / "prices.jsonl"
    prices.write_text(json.dumps({
        "model": "amazon.nova-micro-v1:0", "customization_type": "FINE_TUNING", "region": "us-east-1",
        "storage_usd_per_month": 1.5, "source": "test sheet", "date": "2026-07-08"}) + "\n")
    monkeypatch.setenv("AIRFLOW__BEDROCK_FT__PRICE_FILE", str(prices))
    before = _models(bedrock)
    op = BedrockCleanupCustomModelsOperator(task_id="cleanup", older_than="0s", aws_conn_id=aws_conn)
    dry = op.execute(context={})  # type: ignore[arg-type]
    assert json.loads(json.dumps(dry)) == dry
    assert {d["model_arn"] for d in dry if d["action"] == "delete"} == {fleet["old"], fleet["young"]}
    assert all(d["storage_usd_per_month"] == 1.5 for d in dry if d["action"] == "delete")
    assert _models(bedrock) == before
    op = BedrockCleanupCustomModelsOperator(task_id="cleanup", older_than="0s", delete="true",
                                            keep_stages=["production"], aws_conn_id=aws_conn)
    done = op.execute(context={})  # type: ignore[arg-type]
    assert {d["model_arn"] for d in done if d["outcome"] == "deleted"} == {fleet["old"], fleet["young"]}
    assert _models(bedrock) == before - {fleet["old"], fleet["young"]}
