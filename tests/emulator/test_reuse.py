"""Reuse of a completed, identical training (``reuse_completed=True``) against the emulator over
HTTP: the second identical run submits no job, a changed record trains again, the age limit
and deleted models are respected. Jobs are counted at the emulator."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from airflow_bedrock_ft.core.naming import TAG_TRAINING
from airflow_bedrock_ft.core.reuse import TrainingDigestError, fingerprint_s3_uri
from airflow_bedrock_ft.datasets.upload import upload_content_addressed
from airflow_bedrock_ft.operators.bedrock_ft import BedrockFineTuneCreateJobOperator

from .helpers import COUNTRIES, NO_RETRY, NOVA, ROLE, converse_record, jsonl


def _context(dag_id: str = "tune_dag") -> dict[str, Any]:
    ti = mock.Mock(dag_id=dag_id, task_id="tune", run_id=f"manual__{uuid.uuid4().hex}", map_index=-1)
    return {"ti": ti}


def _prepared(tmp_path: Path, s3: Any, bucket: str, records: list[tuple[str, str]]) -> tuple[str, str]:
    """Upload training and validation data the way the prepare step does (content-addressed)."""
    train = tmp_path / f"train-{uuid.uuid4().hex[:6]}.jsonl"
    train.write_bytes(jsonl([converse_record(*c) for c in records]))
    val = tmp_path / f"val-{uuid.uuid4().hex[:6]}.jsonl"
    val.write_bytes(jsonl([converse_record(*c) for c in records[:6]]))
    t = upload_content_addressed(train, s3, bucket, "prepared", "train.jsonl")
    v = upload_content_addressed(val, s3, bucket, "prepared", "validation.jsonl")
    return t.uri, v.uri


def _operator(bucket: str, aws_conn: str, train: str, validation: str, **kwargs: Any) -> Any:
    args: dict[str, Any] = dict(
        task_id="tune",
        base_model=NOVA,
        training_data=train,
        validation_data=validation,
        output_s3_uri=f"s3://{bucket}/output/",
        role_arn=ROLE,
        hyperparameters={"epochCount": 1},
        poll_interval=0.1,
        aws_conn_id=aws_conn,
        deferrable=False,
        reuse_completed=True,
    )
    args.update(kwargs)
    return BedrockFineTuneCreateJobOperator(**args)


def _creates(emulator: Any) -> int:
    return int(emulator.stats()["operations"].get("CreateModelCustomizationJob", 0))


def test_identical_training_is_reused_across_dags_and_a_changed_record_trains_again(
    emulator: Any, bucket: str, aws_conn: str, clients: dict[str, Any], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    train, val = _prepared(tmp_path, clients["s3"], bucket, COUNTRIES)
    emulator.stats(clear=True)
    first = _operator(bucket, aws_conn, train, val).execute(_context("dag_a"))
    assert first["status"] == "Completed" and "reused_from" not in first
    assert _creates(emulator) == 1
    tags = {t["key"]: t["value"] for t in clients["bedrock"].list_tags_for_resource(
        resourceARN=first["job_arn"])["tags"]}
    assert len(tags[TAG_TRAINING]) == 64

    # Another DAG, another run, the same data re-uploaded (same content, same key): reused.
    train2, val2 = _prepared(tmp_path, clients["s3"], bucket, COUNTRIES)
    assert (train2, val2) == (train, val)
    emulator.stats(clear=True)
    capsys.readouterr()
    second = _operator(bucket, aws_conn, train2, val2, job_tags={"team": "x"},
                       idempotency_namespace="prod").execute(_context("dag_b"))
    assert _creates(emulator) == 0
    assert second["reused_from"] == first["job_arn"] == second["job_arn"]
    assert second["custom_model_arn"] == first["custom_model_arn"]
    assert second["status"] == "Completed" and second["training_loss"] == first["training_loss"]
    assert f"Reusing custom model {first['custom_model_arn']} of completed job {first['job_arn']}" in capsys.readouterr().out

    # A retry of the first task run re-attaches to its own job, it does not "reuse" it.
    retry_context = _context("dag_c")
    own = _operator(bucket, aws_conn, train, val, reuse_completed=False).execute(retry_context)
    again = _operator(bucket, aws_conn, train, val).execute(retry_context)
    assert "reused_from" not in again and again["job_arn"] == own["job_arn"] != first["job_arn"]
    assert _creates(emulator) == 1

    # One changed record: new content, new digest, a new job.
    changed = [*COUNTRIES[:-1], ("China", "Mandarin")]
    train3, val3 = _prepared(tmp_path, clients["s3"], bucket, changed)
    assert train3 != train and val3 == val
    emulator.stats(clear=True)
    third = _operator(bucket, aws_conn, train3, val3).execute(_context("dag_a"))
    assert _creates(emulator) == 1
    assert "reused_from" not in third and third["job_arn"] != first["job_arn"]

    # Other hyperparameters: trained again too.
    emulator.stats(clear=True)
    fourth = _operator(bucket, aws_conn, train, val, hyperparameters={"epochCount": 2}).execute(_context())
    assert _creates(emulator) == 1 and "reused_from" not in fourth


def test_data_fixed_in_place_is_told_apart_by_its_checksum(
    emulator: Any, bucket: str, aws_conn: str, clients: dict[str, Any]
) -> None:
    """Not content-addressed data (a plain key) is identified by HeadObject (ETag and size)."""
    train, val = f"s3://{bucket}/ft/train.jsonl", f"s3://{bucket}/ft/validation.jsonl"
    emulator.stats(clear=True)
    first = _operator(bucket, aws_conn, train, val).execute(_context())
    second = _operator(bucket, aws_conn, train, val).execute(_context())
    assert second["reused_from"] == first["job_arn"]
    assert _creates(emulator) == 1

    clients["s3"].put_object(Bucket=bucket, Key="ft/train.jsonl", Body=jsonl(
        [converse_record(*c) for c in [*COUNTRIES[:-1], ("China", "Mandarin")]]))
    third = _operator(bucket, aws_conn, train, val).execute(_context())
    assert "reused_from" not in third
    assert _creates(emulator) == 2


def test_age_limit_and_deleted_model_are_respected(
    emulator: Any, bucket: str, aws_conn: str, clients: dict[str, Any], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    train, val = _prepared(tmp_path, clients["s3"], bucket, COUNTRIES)
    first = _operator(bucket, aws_conn, train, val).execute(_context())
    created = clients["bedrock"].get_model_customization_job(jobIdentifier=first["job_arn"])["creationTime"]
    time.sleep(1.5)
    age = time.time() - created.timestamp()

    emulator.stats(clear=True)
    young_enough = _operator(bucket, aws_conn, train, val, reuse_max_age=age + 3600).execute(_context())
    assert young_enough["reused_from"] == first["job_arn"] and _creates(emulator) == 0

    # The first job is older than the limit: trained again.
    too_old = _operator(bucket, aws_conn, train, val, reuse_max_age=1.0).execute(_context())
    assert "reused_from" not in too_old and _creates(emulator) == 1

    # The newest identical training's model is deleted: the older one is reused instead; with
    # both deleted, it trains again.
    clients["bedrock"].delete_custom_model(modelIdentifier=too_old["custom_model_arn"])
    emulator.stats(clear=True)
    capsys.readouterr()
    older = _operator(bucket, aws_conn, train, val).execute(_context())
    assert older["reused_from"] == first["job_arn"] and _creates(emulator) == 0
    assert f"made {too_old['custom_model_arn']}, which was deleted" in capsys.readouterr().out
    clients["bedrock"].delete_custom_model(modelIdentifier=first["custom_model_arn"])
    again = _operator(bucket, aws_conn, train, val).execute(_context())
    assert "reused_from" not in again and _creates(emulator) == 1


def test_reuse_off_submits_every_time(
    emulator: Any, bucket: str, aws_conn: str, clients: dict[str, Any], tmp_path: Path
) -> None:
    train, val = _prepared(tmp_path, clients["s3"], bucket, COUNTRIES)
    emulator.stats(clear=True)
    first = _operator(bucket, aws_conn, train, val, reuse_completed=False).execute(_context())
    second = _operator(bucket, aws_conn, train, val, reuse_completed=False).execute(_context())
    assert _creates(emulator) == 2 and first["job_arn"] != second["job_arn"]
    # Content-addressed data is tagged even without reuse, so a later run may reuse it.
    bedrock = emulator.client("bedrock", config=NO_RETRY)
    tags = {t["key"]: t["value"] for t in bedrock.list_tags_for_resource(resourceARN=first["job_arn"])["tags"]}
    third = _operator(bucket, aws_conn, train, val).execute(_context())
    assert third["reused_from"] == second["job_arn"]
    assert TAG_TRAINING in tags


def test_folder_fingerprint_covers_every_object(emulator: Any, clients: dict[str, Any]) -> None:
    s3 = clients["s3"]
    name = f"fold-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="data/a.jsonl", Body=b'{"a": 1}\n')
    s3.put_object(Bucket=name, Key="data/b.jsonl", Body=b'{"b": 1}\n')
    s3.put_object(Bucket=name, Key="data/", Body=b"")
    with_slash = fingerprint_s3_uri(f"s3://{name}/data/", s3)
    assert with_slash.startswith("folder:") and with_slash.endswith(":2")
    assert fingerprint_s3_uri(f"s3://{name}/data", s3) == with_slash
    s3.put_object(Bucket=name, Key="data/b.jsonl", Body=b'{"b": 2}\n')
    assert fingerprint_s3_uri(f"s3://{name}/data/", s3) != with_slash
    assert fingerprint_s3_uri(f"s3://{name}/data/a.jsonl", s3).startswith("etag:")
    with pytest.raises(TrainingDigestError, match="no object"):
        fingerprint_s3_uri(f"s3://{name}/nothing/", s3)
