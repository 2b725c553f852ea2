"""Converters (CSV, Parquet, JSON/JSONL -> each format), the deterministic split and the
content-addressed upload (against a real S3 server)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from ds_helpers import HAIKU, LLAMA31, NOVA_2_LITE, NOVA_LITE, TITAN_EXPRESS, TITAN_IMAGE, pc

from airflow_bedrock_ft.datasets import (
    assign_split,
    content_addressed_key,
    convert_file,
    convert_rows,
    read_rows,
    split_file,
    split_records,
    upload_content_addressed,
    validate_dataset,
)
from airflow_bedrock_ft.datasets.convert import ConversionError

ROWS = [{"question": f"What is {i} squared?", "answer": str(i * i), "level": "easy"} for i in range(120)]


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_csv_to_prompt_completion_with_mapping(tmp_path: Path) -> None:
    src = _write_csv(tmp_path / "qa.csv", ROWS)
    out = tmp_path / "train.jsonl"
    n = convert_file(src, out, "prompt-completion", mapping={"prompt": "question", "completion": "answer"})
    assert n == 120
    first = orjson.loads(out.read_bytes().splitlines()[0])
    assert first == {"prompt": "What is 0 squared?", "completion": "0"}
    assert validate_dataset(str(out), model=LLAMA31).ok


def test_template_builds_converse_with_system_prompt(tmp_path: Path) -> None:
    records = list(convert_rows(ROWS[:8], "bedrock-conversation-2024",
                                template={"system": "You are a maths tutor.", "user": "Q: {question} ({level})"},
                                mapping={"assistant": "answer"}))
    assert records[2] == {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "You are a maths tutor."}],
        "messages": [{"role": "user", "content": [{"text": "Q: What is 2 squared? (easy)"}]},
                     {"role": "assistant", "content": [{"text": "4"}]}],
    }
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    assert validate_dataset(str(path), model=NOVA_LITE).ok


def test_parquet_to_anthropic(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = tmp_path / "qa.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS[:40]), src)
    out = tmp_path / "train.jsonl"
    convert_file(src, out, "anthropic-messages", mapping={"user": "question", "assistant": "answer"},
                 template={"system": "Answer with a number."})
    first = orjson.loads(out.read_bytes().splitlines()[1])
    assert first == {"system": "Answer with a number.",
                     "messages": [{"role": "user", "content": "What is 1 squared?"},
                                  {"role": "assistant", "content": "1"}]}
    assert validate_dataset(str(out), model=HAIKU).ok


def test_json_array_and_jsonl_inputs(tmp_path: Path) -> None:
    array = tmp_path / "rows.json"
    array.write_text(json.dumps(ROWS[:3]))
    lines = tmp_path / "rows.jsonl"
    lines.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in ROWS[:3]))
    assert list(read_rows(array)) == list(read_rows(lines)) == ROWS[:3]


def test_each_format_can_be_produced(tmp_path: Path) -> None:
    rows = [{"q": f"Question {i}?", "a": f"Answer {i}.", "img": f"s3://b/img/{i}.jpg", "ans": i} for i in range(2)]
    cpt = list(convert_rows(rows, "continued-pre-training", template={"input": "{q} {a}"}))
    assert cpt[0] == {"input": "Question 0? Answer 0."}
    dist = list(convert_rows(rows, "distillation-prompts", mapping={"user": "q"}))
    assert dist[0]["messages"] == [{"role": "user", "content": [{"text": "Question 0?"}]}]
    rft = list(convert_rows(rows, "rft-chat", mapping={"user": "q", "reference_answer": "ans", "source": "img"},
                            template={"system": "Think."}))
    assert rft[1] == {"messages": [{"role": "system", "content": "Think."},
                                   {"role": "user", "content": "Question 1?"}],
                      "reference_answer": 1, "source": "s3://b/img/1.jpg"}
    cap = list(convert_rows(rows, "image-caption", mapping={"image-ref": "img", "caption": "q"}))
    assert cap[0] == {"image-ref": "s3://b/img/0.jpg", "caption": "Question 0?"}
    mm = list(convert_rows(rows, "bedrock-conversation-2024", mapping={"user": "q", "assistant": "a", "image": "img"}))
    assert mm[0]["messages"][0]["content"][0] == {
        "image": {"format": "jpeg", "source": {"s3Location": {"uri": "s3://b/img/0.jpg"}}}}


def test_messages_column_becomes_multi_turn_converse() -> None:
    rows = [{"conv": json.dumps([{"role": "system", "content": "Be brief."},
                                 {"role": "user", "content": "Hi"},
                                 {"role": "assistant", "content": "Hello"}])}]
    record = next(convert_rows(rows, "bedrock-conversation-2024", mapping={"messages": "conv"}))
    assert record["system"] == [{"text": "Be brief."}]
    assert [m["role"] for m in record["messages"]] == ["user", "assistant"]


def test_rows_already_in_format_pass_through() -> None:
    assert list(convert_rows([pc(1)], "prompt-completion")) == [pc(1)]


def test_missing_column_is_a_clear_error() -> None:
    with pytest.raises(ConversionError, match="Row 1: no column 'nope'"):
        list(convert_rows(ROWS, "prompt-completion", mapping={"prompt": "nope", "completion": "answer"}))
    with pytest.raises(ConversionError, match="template for 'prompt' uses column 'missing'"):
        list(convert_rows(ROWS, "prompt-completion", template={"prompt": "{missing}"}))


# -- split -----------------------------------------------------------------------------------


def test_split_is_deterministic_and_order_independent(tmp_path: Path) -> None:
    records = [pc(i) for i in range(2000)]
    first = {orjson.dumps(r): s for s, r in split_records(records, 0.2, seed=7)}
    again = {orjson.dumps(r): s for s, r in split_records(list(reversed(records)), 0.2, seed=7)}
    assert first == again
    share = sum(1 for s in first.values() if s == "validation") / len(first)
    assert 0.17 < share < 0.23
    other_seed = {orjson.dumps(r): s for s, r in split_records(records, 0.2, seed=8)}
    assert other_seed != first
    # Key order does not matter: the hash is over canonical JSON.
    assert assign_split({"completion": "It is 2.", "prompt": "What is 1 plus 1?"}, 0.2, 7) == \
        first[orjson.dumps(pc(1))]


def test_split_value_is_pinned_across_machines() -> None:
    """The split must not change between releases or machines (sha256 of seed + canonical JSON)."""
    import hashlib

    record = {"prompt": "a", "completion": "b"}
    digest = hashlib.sha256(b"0\x00" + b'{"completion":"b","prompt":"a"}').digest()
    expected = "validation" if int.from_bytes(digest[:8], "big") / 2**64 < 0.5 else "train"
    assert assign_split(record, 0.5, 0) == expected


def test_split_file_copies_lines_unchanged(tmp_path: Path) -> None:
    src = tmp_path / "all.jsonl"
    lines = [orjson.dumps(pc(i)) for i in range(300)] + [b"{broken"]
    src.write_bytes(b"\n".join(lines) + b"\n\n")
    n_train, n_val = split_file(src, tmp_path / "train.jsonl", tmp_path / "val.jsonl", 0.25, seed=3)
    assert n_train + n_val == 301
    train = (tmp_path / "train.jsonl").read_bytes().splitlines()
    val = (tmp_path / "val.jsonl").read_bytes().splitlines()
    assert sorted(train + val) == sorted(lines)
    assert 50 < n_val < 100
    again = split_file(src, tmp_path / "t2.jsonl", tmp_path / "v2.jsonl", 0.25, seed=3)
    assert again == (n_train, n_val)
    assert (tmp_path / "t2.jsonl").read_bytes() == (tmp_path / "train.jsonl").read_bytes()


def test_split_ratio_bounds() -> None:
    with pytest.raises(ValueError, match="validation_ratio"):
        assign_split(pc(1), 1.0)


# -- content-addressed upload (real S3 server) ------------------------------------------------


def test_upload_is_content_addressed_and_skips_existing(tmp_path: Path, s3_client: Any, bucket: str) -> None:
    path = tmp_path / "train.jsonl"
    path.write_bytes(b"".join(orjson.dumps(pc(i)) + b"\n" for i in range(10)))
    first = upload_content_addressed(path, s3_client, bucket, "datasets/support", "train.jsonl")
    assert first.uploaded
    assert first.key == content_addressed_key("datasets/support", first.sha256, "train.jsonl")
    assert first.key.startswith("datasets/support/sha256-") and first.key.endswith("/train.jsonl")
    body = s3_client.get_object(Bucket=bucket, Key=first.key)["Body"].read()
    assert body == path.read_bytes()
    import hashlib

    assert first.sha256 == hashlib.sha256(body).hexdigest()

    second = upload_content_addressed(path, s3_client, bucket, "datasets/support", "train.jsonl")
    assert not second.uploaded and second.uri == first.uri

    path.write_bytes(path.read_bytes() + orjson.dumps(pc(99)) + b"\n")
    third = upload_content_addressed(path, s3_client, bucket, "datasets/support", "train.jsonl")
    assert third.uploaded and third.key != first.key
    # The first object is untouched: a job reading it never sees the new data.
    assert s3_client.get_object(Bucket=bucket, Key=first.key)["Body"].read() == body


def test_converted_titan_and_image_datasets_validate(tmp_path: Path) -> None:
    rows = [{"text": f"Handbook paragraph {i}."} for i in range(10)]
    records = list(convert_rows(rows, "continued-pre-training", mapping={"input": "text"}))
    path = tmp_path / "cpt.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    assert validate_dataset(str(path), model=TITAN_EXPRESS, customization_type="CONTINUED_PRE_TRAINING").ok
    caps = list(convert_rows([{"u": f"s3://b/{i}.png", "c": f"a picture {i}"} for i in range(5)],
                             "image-caption", mapping={"image-ref": "u", "caption": "c"}))
    path = tmp_path / "cap.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in caps))
    assert validate_dataset(str(path), model=TITAN_IMAGE).ok
    rft = list(convert_rows(ROWS[:100], "rft-chat", mapping={"user": "question", "reference_answer": "answer"}))
    path = tmp_path / "rft.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rft))
    assert validate_dataset(str(path), model=NOVA_2_LITE, customization_type="REINFORCEMENT_FINE_TUNING").ok
