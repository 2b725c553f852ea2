"""BedrockFineTunePrepareDataOperator against a real S3 server through an Airflow connection
from the environment (``extra.endpoint_url``), as a deployment would configure it."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from ds_helpers import NOVA_LITE, converse, pc


@pytest.fixture
def aws_conn(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str) -> str:
    conn = {"conn_type": "aws", "login": "testing", "password": "testing",
            "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(conn))
    return "aws_default"


def _csv(path: Path, n: int) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["question", "answer"])
        for i in range(n):
            writer.writerow([f"What is {i} plus one?", str(i + 1)])
    return path


def test_convert_validate_split_upload(tmp_path: Path, aws_conn: str, s3_client: Any, bucket: str) -> None:
    from airflow.sdk import Asset

    from airflow_bedrock_ft.operators.prepare import BedrockFineTunePrepareDataOperator

    op = BedrockFineTunePrepareDataOperator(
        task_id="prepare", source=str(_csv(tmp_path / "qa.csv", 60)), model="amazon.nova-micro-v1:0",
        output_s3_uri=f"s3://{bucket}/datasets/qa", validation_ratio=0.2, seed=1,
        template={"system": "Add one.", "user": "{question}"}, mapping={"assistant": "answer"},
        aws_conn_id=aws_conn,
    )
    assert op.outlets == [Asset(f"s3://{bucket}/datasets/qa")]
    assert {"source", "model", "output_s3_uri", "mapping", "template"} <= set(op.template_fields)

    from airflow.sdk.execution_time.context import OutletEventAccessors

    events = OutletEventAccessors()
    result = op.execute(context={"outlet_events": events})  # type: ignore[arg-type]
    assert events[Asset(f"s3://{bucket}/datasets/qa")].extra == {
        "train_s3_uri": result["train_s3_uri"], "validation_s3_uri": result["validation_s3_uri"],
        "model": "amazon.nova-micro-v1:0", "records": result["report"]["totals"]["train"]["records"]}
    assert set(result) == {"train_s3_uri", "validation_s3_uri", "report", "cost_estimate"}
    # No price for Nova Micro in the built-in table: the estimate says unknown, never $0.
    assert result["cost_estimate"]["known"] is False and result["cost_estimate"]["training_usd"] is None
    assert result["train_s3_uri"].startswith(f"s3://{bucket}/datasets/qa/sha256-")
    assert result["train_s3_uri"].endswith("/train.jsonl")
    assert result["validation_s3_uri"].endswith("/validation.jsonl")
    totals = result["report"]["totals"]
    assert totals["train"]["records"] + totals["validation"]["records"] == 60
    assert 3 <= totals["validation"]["records"] <= 25
    assert result["report"]["ok"] is True
    json.dumps(result)  # XCom-able

    key = result["train_s3_uri"].split("/", 3)[3]
    first = orjson.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()[0])
    assert first["system"] == [{"text": "Add one."}]
    assert first["messages"][0]["content"] == [{"text": first["messages"][0]["content"][0]["text"]}]

    # Same input, same keys: nothing new is uploaded and the XCom is identical.
    assert op.execute(context={}) == result  # type: ignore[arg-type]


def test_invalid_data_fails_with_the_report(tmp_path: Path, aws_conn: str, s3_client: Any, bucket: str) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_bedrock_ft.operators.prepare import BedrockFineTunePrepareDataOperator

    src = tmp_path / "data.jsonl"
    records = [orjson.dumps(converse(i)) for i in range(10)]
    records[4] = orjson.dumps(pc(4))
    records[7] = b'{"schemaVersion": "bedrock-conversation-2024", "messages": ['
    src.write_bytes(b"\n".join(records) + b"\n")
    s3_client.put_object(Bucket=bucket, Key="raw/data.jsonl", Body=src.read_bytes())

    op = BedrockFineTunePrepareDataOperator(
        task_id="prepare", source=f"s3://{bucket}/raw/data.jsonl", model=NOVA_LITE,
        output_s3_uri=f"s3://{bucket}/datasets/bad", aws_conn_id=aws_conn,
    )
    with pytest.raises(AirflowFailException) as exc:
        op.execute(context={})  # type: ignore[arg-type]
    message = str(exc.value)
    assert "train.jsonl:5: error [format.mixed]" in message
    assert "train.jsonl:8: error [json]" in message
    assert "nothing was uploaded" in message
    assert "Contents" not in s3_client.list_objects_v2(Bucket=bucket, Prefix="datasets/")


def test_parquet_from_s3_with_separate_validation(tmp_path: Path, aws_conn: str, s3_client: Any,
                                                  bucket: str) -> None:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from airflow_bedrock_ft.operators.prepare import BedrockFineTunePrepareDataOperator

    rows = [{"q": f"Capital of country {i}?", "a": f"City {i}."} for i in range(120)]
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    s3_client.put_object(Bucket=bucket, Key="raw/qa.parquet", Body=buf.getvalue())
    val = tmp_path / "val.csv"
    val.write_text("q,a\n" + "".join(f"Capital of land {i}?,Town {i}.\n" for i in range(10)))

    op = BedrockFineTunePrepareDataOperator(
        task_id="prepare", source=f"s3://{bucket}/raw/qa.parquet", validation_source=str(val),
        model="meta.llama3-1-8b-instruct-v1:0:128k", output_s3_uri=f"s3://{bucket}/ds",
        mapping={"prompt": "q", "completion": "a"}, hyperparameters={"epochCount": 2}, aws_conn_id=aws_conn,
    )
    result = op.execute(context={})  # type: ignore[arg-type]
    assert result["report"]["totals"]["train"]["records"] == 120
    assert result["report"]["totals"]["validation"]["records"] == 10
    assert result["report"]["epochs"] == 2
    key = result["validation_s3_uri"].split("/", 3)[3]
    first = orjson.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()[0])
    assert first == {"prompt": "Capital of land 0?", "completion": "Town 0."}


def test_templated_destination_declares_no_static_asset() -> None:
    from airflow_bedrock_ft.operators.prepare import BedrockFineTunePrepareDataOperator

    op = BedrockFineTunePrepareDataOperator(task_id="p", source="x.jsonl", model=NOVA_LITE,
                                            output_s3_uri="s3://{{ var.value.bucket }}/ds")
    assert op.outlets == []


def test_unknown_model_fails_the_task(aws_conn: str, bucket: str) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_bedrock_ft.operators.prepare import BedrockFineTunePrepareDataOperator

    op = BedrockFineTunePrepareDataOperator(task_id="p", source="x.jsonl", model="acme.none-v1",
                                            output_s3_uri=f"s3://{bucket}/ds", aws_conn_id=aws_conn)
    with pytest.raises(AirflowFailException, match="Unknown base model"):
        op.execute(context={})  # type: ignore[arg-type]


def test_split_that_selects_nothing_drops_the_validation_set(tmp_path: Path, aws_conn: str,
                                                            bucket: str) -> None:
    from airflow_bedrock_ft.operators.prepare import BedrockFineTunePrepareDataOperator

    src = tmp_path / "train.jsonl"
    src.write_bytes(b"".join(orjson.dumps(converse(i)) + b"\n" for i in range(8)))
    op = BedrockFineTunePrepareDataOperator(task_id="p", source=str(src), model=NOVA_LITE,
                                            output_s3_uri=f"s3://{bucket}/ds", validation_ratio=0.001,
                                            aws_conn_id=aws_conn)
    result = op.execute(context={})  # type: ignore[arg-type]
    assert result["validation_s3_uri"] is None
    assert result["report"]["totals"]["train"]["records"] == 8


def test_media_bucket_defaults_to_the_output_bucket(tmp_path: Path, aws_conn: str, bucket: str) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from ds_helpers import image_block

    from airflow_bedrock_ft.operators.prepare import BedrockFineTunePrepareDataOperator

    src = tmp_path / "train.jsonl"
    src.write_bytes(b"".join(orjson.dumps(converse(i, user_extra=[image_block(uri="s3://media-store/c.png")]))
                             + b"\n" for i in range(8)))
    op = BedrockFineTunePrepareDataOperator(task_id="p", source=str(src), model=NOVA_LITE,
                                            output_s3_uri=f"s3://{bucket}/ds", aws_conn_id=aws_conn)
    assert "media_bucket" in op.template_fields
    with pytest.raises(AirflowFailException) as exc:
        op.execute(context={})  # type: ignore[arg-type]
    assert f"train.jsonl:1: error [media.bucket] messages[0].content[0].image is in bucket 'media-store'; " \
           f"media must be in the dataset's bucket '{bucket}'" in str(exc.value)
    op = BedrockFineTunePrepareDataOperator(task_id="p", source=str(src), model=NOVA_LITE,
                                            output_s3_uri=f"s3://{bucket}/ds", media_bucket="s3://media-store",
                                            aws_conn_id=aws_conn)
    assert op.execute(context={})["report"]["ok"] is True  # type: ignore[arg-type]


def test_gzip_bomb_stops_preparing_at_the_model_limit(tmp_path: Path, aws_conn: str, s3_client: Any,
                                                      bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses
    import gzip

    from airflow.sdk.exceptions import AirflowFailException

    from airflow_bedrock_ft.core.models import CustomizationType, resolve_model
    from airflow_bedrock_ft.operators.prepare import BedrockFineTunePrepareDataOperator

    model = "amazon.titan-text-express-v1"
    spec = resolve_model(model)
    custom = spec.customizations[CustomizationType.FINE_TUNING]
    small = dataclasses.replace(custom, limits=dataclasses.replace(custom.limits, max_train_bytes=2 << 20))
    monkeypatch.setitem(spec.customizations, CustomizationType.FINE_TUNING, small)  # type: ignore[arg-type]
    member = gzip.compress(orjson.dumps(pc(1)) + b"\n" * (1 << 20))
    for name, kwargs in (("bomb.jsonl.gz", {}), ("bomb.json.gz", {"mapping": {"prompt": "prompt"}})):
        src = tmp_path / name
        src.write_bytes(member * 64)  # 64 MiB of lines from ~64 KB
        if name.endswith(".json.gz"):
            src.write_bytes(gzip.compress(b"[" + b",".join([orjson.dumps(pc(1))] * 200_000) + b"]"))
        op = BedrockFineTunePrepareDataOperator(task_id="p", source=str(src), model=model,
                                                output_s3_uri=f"s3://{bucket}/ds", aws_conn_id=aws_conn,
                                                **kwargs)  # type: ignore[arg-type]
        with pytest.raises(AirflowFailException) as exc:
            op.execute(context={})  # type: ignore[arg-type]
        assert f"Cannot prepare the dataset from {str(src)!r}" in str(exc.value)
        assert str(2 << 20) in str(exc.value)
    assert "Contents" not in s3_client.list_objects_v2(Bucket=bucket, Prefix="ds/")


def test_cost_estimate_in_xcom_with_the_configured_price_file(
    tmp_path: Path, aws_conn: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_bedrock_ft.operators.prepare import BedrockFineTunePrepareDataOperator

    prices = tmp_path / "prices.jsonl"
    prices.write_text(json.dumps({
        "model": "amazon.nova-micro-v1:0", "customization_type": "FINE_TUNING", "region": "us-east-1",
        "training_usd_per_1k_tokens": 0.25, "storage_usd_per_month": 2.5, "source": "test sheet",
        "date": "2026-03-04"}) + "\n")
    monkeypatch.setenv("AIRFLOW__BEDROCK_FT__PRICE_FILE", str(prices))
    op = BedrockFineTunePrepareDataOperator(
        task_id="prepare", source=str(_csv(tmp_path / "qa.csv", 40)), model="amazon.nova-micro-v1:0",
        output_s3_uri=f"s3://{bucket}/datasets/qa", validation_ratio=0.25, seed=1,
        template={"system": "Add one.", "user": "{question}"}, mapping={"assistant": "answer"},
        hyperparameters={"epochCount": 3}, aws_conn_id=aws_conn,
    )
    result = op.execute(context={})  # type: ignore[arg-type]
    cost, totals = result["cost_estimate"], result["report"]["totals"]
    assert cost["training_tokens"] == totals["train"]["tokens"] > 0
    assert cost["validation_tokens"] == totals["validation"]["tokens"] > 0
    assert cost["epochs"] == 3 and cost["region"] == "us-east-1"
    assert cost["training_usd"] == pytest.approx(totals["train"]["tokens"] * 3 * 0.25 / 1000)
    assert cost["storage_usd_per_month"] == 2.5 and cost["price_date"] == "2026-03-04"

    prices.write_text("{not json}\n")
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match=r"prices\.jsonl:1: not valid JSON"):
        op.execute(context={})  # type: ignore[arg-type]
