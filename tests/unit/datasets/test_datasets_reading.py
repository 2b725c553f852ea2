"""Reading and reporting: line-level edge cases (BOM, CRLF, blank lines, bad bytes), file
sources (folders, gzip, S3 objects and prefixes on a real S3 server), and the report."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from ds_helpers import (
    BUCKET,
    HAIKU,
    LLAMA31,
    NOVA_2_LITE,
    NOVA_LITE,
    TITAN_EXPRESS,
    TITAN_IMAGE,
    converse,
    cpt,
    dataset_with,
    distill,
    error_rules,
    haiku,
    image_block,
    image_caption,
    invocation_log,
    pc,
    rft,
    video_block,
    write_lines,
)

from airflow_bedrock_ft.datasets import (
    DatasetRecordError,
    DatasetSourceError,
    iter_records,
    validate_dataset,
)
from airflow_bedrock_ft.datasets.sources import iter_lines

# -- valid examples from the fact sheet (§1.1) pass ------------------------------------------

VALID = [
    ("prompt-completion/titan", TITAN_EXPRESS, "FINE_TUNING", pc, 10, None),
    ("prompt-completion/llama3.1", LLAMA31, "FINE_TUNING", pc, 100, None),
    ("converse/nova", NOVA_LITE, "FINE_TUNING", converse, 8, None),
    ("converse/nova-multiturn", NOVA_LITE, "FINE_TUNING", lambda i: converse(i, turns=3), 8, None),
    ("converse/nova-image", NOVA_LITE, "FINE_TUNING", lambda i: converse(i, user_extra=[image_block()]), 8, None),
    ("converse/nova-video", NOVA_LITE, "FINE_TUNING", lambda i: converse(i, user_extra=[video_block()]), 8, None),
    ("converse/llama3.2", "meta.llama3-2-3b-instruct-v1:0", "FINE_TUNING", converse, 100, None),
    ("converse/llama3.3", "meta.llama3-3-70b-instruct-v1:0:128k", "FINE_TUNING",
     lambda i: converse(i, system=None), 100, None),
    ("anthropic/haiku", HAIKU, "FINE_TUNING", haiku, 32, None),
    ("anthropic/haiku-multiturn", HAIKU, "FINE_TUNING", lambda i: haiku(i, turns=2), 32, None),
    ("cpt/titan", TITAN_EXPRESS, "CONTINUED_PRE_TRAINING", cpt, 10, None),
    ("distillation/prompt", NOVA_LITE, "DISTILLATION", distill, 100, None),
    ("distillation/golden", LLAMA31, "DISTILLATION", lambda i: distill(i, golden=True), 100, None),
    ("rft", NOVA_2_LITE, "REINFORCEMENT_FINE_TUNING", rft, 100, None),
    ("invocation-logs", NOVA_LITE, "DISTILLATION", invocation_log, 100, "invocation-logs"),
    ("image-caption", TITAN_IMAGE, "FINE_TUNING", image_caption, 5, None),
]


@pytest.mark.parametrize(("model", "ctype", "make", "n", "fmt"), [v[1:] for v in VALID], ids=[v[0] for v in VALID])
def test_valid_examples_pass(tmp_path: Path, model: str, ctype: str, make: Any, n: int, fmt: str | None) -> None:
    path = dataset_with(tmp_path / "train.jsonl", model, make, n=n)
    report = validate_dataset(str(path), model=model, customization_type=ctype, data_format=fmt,
                              media_bucket=BUCKET)
    assert report.ok, report.format_text()
    assert report.problems == []
    assert report.totals["train"].records == n
    assert report.totals["train"].tokens > 0
    assert report.failure_message() == ""


# -- line-level edge cases ---------------------------------------------------------------------


def test_bom_at_file_start_is_accepted_with_a_warning(tmp_path: Path) -> None:
    path = dataset_with(tmp_path / "t.jsonl", LLAMA31, pc, n=100)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    report = validate_dataset(str(path), model=LLAMA31)
    assert report.ok
    assert [(p.rule, p.line, p.severity) for p in report.problems] == [("bom", 1, "warning")]
    assert report.totals["train"].records == 100
    assert sum(1 for _ in iter_records(str(path))) == 100


def test_bom_in_the_middle_is_an_error(tmp_path: Path) -> None:
    path = dataset_with(tmp_path / "t.jsonl", LLAMA31, pc, b"\xef\xbb\xbf" + orjson.dumps(pc(9)), at=4, n=100)
    report = validate_dataset(str(path), model=LLAMA31)
    assert error_rules(report) == {("json", 4)}


def test_crlf_line_endings_are_accepted(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "t.jsonl", [pc(i) for i in range(100)], newline=b"\r\n")
    report = validate_dataset(str(path), model=LLAMA31)
    assert report.ok and report.problems == []
    assert report.totals["train"].records == 100


def test_missing_final_newline_is_fine(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "t.jsonl", [pc(i) for i in range(100)], trailing_newline=False)
    report = validate_dataset(str(path), model=LLAMA31)
    assert report.ok and report.totals["train"].records == 100


def test_blank_lines_are_errors_even_at_the_end(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "t.jsonl", [*[pc(i) for i in range(50)], b"", *[pc(i) for i in range(50)]])
    path.write_bytes(path.read_bytes() + b"\n")  # one extra empty line at the end
    report = validate_dataset(str(path), model=LLAMA31)
    assert error_rules(report) == {("blank_line", 51), ("blank_line", 102)}
    assert report.totals["train"].records == 100
    # iter_records skips them, so the emulator trains on the same records
    assert sum(1 for _ in iter_records(str(path))) == 100


def test_invalid_utf8_names_line_and_byte(tmp_path: Path) -> None:
    path = dataset_with(tmp_path / "t.jsonl", LLAMA31, pc, b'{"prompt": "\xc3\x28", "completion": "x"}', at=7,
                        n=100)
    report = validate_dataset(str(path), model=LLAMA31)
    assert error_rules(report) == {("utf8", 7)}
    assert "0xc3" in report.problems[0].message and "column 13" in report.problems[0].message
    with pytest.raises(DatasetRecordError, match=r":7: Invalid UTF-8"):
        list(iter_records(str(path)))


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    report = validate_dataset(str(path), model=NOVA_LITE)
    assert ("empty_file", None) in error_rules(report)
    assert report.problems[0].file == str(path)
    assert report.failure_message().startswith("Unable to parse Amazon S3 file: empty.jsonl.")


def test_truncated_last_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "t.jsonl", [*[pc(i) for i in range(100)], b'{"prompt": "cut'],
                       trailing_newline=False)
    report = validate_dataset(str(path), model=LLAMA31)
    assert error_rules(report) == {("json", 101)}
    assert "Truncated JSON" in report.problems[0].message


def test_line_without_newlines_does_not_buffer_whole(tmp_path: Path) -> None:
    import io

    stream = io.BytesIO(b"a" * 1000 + b"\n" + b'{"x": 1}\n')
    lines = list(iter_lines(stream, max_line_bytes=64))
    assert lines == [(b"a" * 64, True), (b'{"x": 1}\n', False)]


def test_too_long_line_is_reported_and_reading_continues(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_bedrock_ft.datasets import validate as validate_module

    monkeypatch.setattr(validate_module, "MAX_LINE_BYTES", 256)
    path = dataset_with(tmp_path / "t.jsonl", LLAMA31, pc, pc(0, prompt="z" * 2000), at=2, n=100)
    report = validate_dataset(str(path), model=LLAMA31)
    assert error_rules(report) == {("line.too_long", 2)}
    assert report.totals["train"].records == 100


def test_gzip_file_is_read_with_a_warning(tmp_path: Path) -> None:
    raw = b"".join(orjson.dumps(pc(i)) + b"\n" for i in range(100))
    path = tmp_path / "train.jsonl.gz"
    path.write_bytes(gzip.compress(raw))
    report = validate_dataset(str(path), model=LLAMA31)
    assert report.ok
    assert {p.rule for p in report.warnings} == {"file.gzip", "file.extension"}
    assert report.totals["train"].records == 100
    assert [r["prompt"] for _, _, r in iter_records(str(path))][:2] == [pc(0)["prompt"], pc(1)["prompt"]]


def test_truncated_gzip_is_a_read_error(tmp_path: Path) -> None:
    raw = gzip.compress(b"".join(orjson.dumps(pc(i)) + b"\n" for i in range(2000)))
    path = tmp_path / "logs.json.gz"
    path.write_bytes(raw[: len(raw) // 2])
    report = validate_dataset(str(path), model=LLAMA31)
    assert "file.read" in report.counts_by_rule


def test_folder_of_files_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    write_lines(folder / "b.jsonl", [pc(i) for i in range(50)])
    write_lines(folder / "sub" / "c.jsonl", [pc(i) for i in range(30)] + [b"{bad"])
    write_lines(folder / "a.jsonl", [pc(i) for i in range(20)])
    (folder / ".hidden").write_text("ignored")
    (folder / "README.md").write_text("not data")
    report = validate_dataset(str(folder), model=LLAMA31)
    assert [f["file"] for f in report.files] == [str(folder / n) for n in ("a.jsonl", "b.jsonl", "sub/c.jsonl")]
    assert [(p.file, p.rule) for p in report.warnings] == [(str(folder / "README.md"), "file.skipped")]
    assert report.totals["train"].records == 100
    assert [(p.file, p.line, p.rule) for p in report.errors] == [(str(folder / "sub" / "c.jsonl"), 31, "json")]


def test_missing_source_is_reported(tmp_path: Path) -> None:
    report = validate_dataset(str(tmp_path / "nope.jsonl"), model=LLAMA31)
    assert ("file.not_found", None) in error_rules(report)
    with pytest.raises(DatasetSourceError):
        list(iter_records(str(tmp_path / "nope.jsonl")))


def test_problems_are_capped_but_all_counted(tmp_path: Path) -> None:
    lines = [b"{bad"] * 500 + [orjson.dumps(pc(i)) for i in range(100)]
    path = write_lines(tmp_path / "t.jsonl", lines)
    report = validate_dataset(str(path), model=LLAMA31, max_problems=10)
    assert len(report.problems) == 10
    assert report.counts_by_rule == {"json": 500}
    assert report.error_count == 500
    assert report.problems_truncated == 490
    assert report.totals["train"].records == 100
    assert "... and 490 more" in report.format_text(max_problems=50)


def test_report_outputs(tmp_path: Path) -> None:
    path = dataset_with(tmp_path / "train.jsonl", LLAMA31, pc, {"prompt": "a", "completion": 1}, at=3, n=100)
    val = dataset_with(tmp_path / "validation.jsonl", LLAMA31, pc, n=20)
    report = validate_dataset(str(path), str(val), model=LLAMA31, hyperparameters={"epochCount": "3"})
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data  # JSON-able
    assert data["ok"] is False
    assert data["counts_by_rule"] == {"field.type": 1}
    assert data["totals"]["train"]["records"] == 101
    assert data["totals"]["validation"]["records"] == 20
    assert data["epochs"] == 3
    assert data["estimated_training_tokens"] == 3 * data["totals"]["train"]["tokens"]
    assert data["problems"][0] == {"file": str(path), "line": 3, "rule": "field.type",
                                   "message": "Field 'completion' must be a string, got number 1",
                                   "excerpt": '{"prompt":"a","completion":1}', "severity": "error"}
    message = report.failure_message()
    assert message.startswith("Input data at train.jsonl does not follow the required format")
    assert "line 3: field.type" in message
    text = report.format_text()
    assert "INVALID" in text and f"{path}:3: error [field.type]" in text and "field.type: 1" in text


def test_token_totals_follow_chars_per_token(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "t.jsonl", [pc(0, prompt="a" * 12, completion="b" * 7)] * 10)
    # Totals are the split's characters divided once (rounded up), not per-record roundings.
    titan = validate_dataset(str(path), model=TITAN_EXPRESS)  # 6 chars per token
    assert (titan.totals["train"].input_tokens, titan.totals["train"].output_tokens) == (20, 12)
    llama = validate_dataset(str(path), model=LLAMA31)  # 4 chars per token
    assert (llama.totals["train"].input_tokens, llama.totals["train"].output_tokens) == (30, 18)
    assert llama.totals["train"].max_record_tokens == 5


def test_unknown_model_and_unsupported_type_raise(tmp_path: Path) -> None:
    from airflow_bedrock_ft.core.models import UnknownModelError, UnsupportedCustomizationError

    path = dataset_with(tmp_path / "t.jsonl", LLAMA31, pc, n=1)
    with pytest.raises(UnknownModelError):
        validate_dataset(str(path), model="acme.nothing-v1")
    with pytest.raises(UnsupportedCustomizationError):
        validate_dataset(str(path), model=LLAMA31, customization_type="CONTINUED_PRE_TRAINING")


def test_model_arn_forms_are_accepted(tmp_path: Path) -> None:
    path = dataset_with(tmp_path / "t.jsonl", NOVA_LITE, converse, n=8)
    for form in ("amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0:300k",
                 "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0:300k"):
        assert validate_dataset(str(path), model=form).ok


# -- S3 (real HTTP server) -------------------------------------------------------------------


def _put(client: Any, bucket: str, key: str, body: bytes) -> str:
    client.put_object(Bucket=bucket, Key=key, Body=body)
    return f"s3://{bucket}/{key}"


def test_s3_object_prefix_gzip_and_errors(s3_client: Any, bucket: str) -> None:
    good = b"".join(orjson.dumps(pc(i)) + b"\n" for i in range(60))
    bad = b"".join(orjson.dumps(pc(i)) + b"\n" for i in range(39)) + b'{"prompt": 1, "completion": "x"}\n'
    _put(s3_client, bucket, "data/part-1.jsonl", good)
    _put(s3_client, bucket, "data/part-2.jsonl", bad)
    _put(s3_client, bucket, "data/", b"")  # a console "folder" marker, skipped
    _put(s3_client, bucket, "logs/x.json.gz", gzip.compress(good))
    _put(s3_client, bucket, "empty.jsonl", b"")

    single = validate_dataset(f"s3://{bucket}/data/part-1.jsonl", model=LLAMA31, s3_client=s3_client)
    assert single.totals["train"].records == 60
    assert single.counts_by_rule == {"record_count.min": 1}

    prefix = validate_dataset(f"s3://{bucket}/data", model=LLAMA31, s3_client=s3_client)
    assert prefix.totals["train"].records == 100
    assert prefix.totals["train"].bytes == len(good) + len(bad)
    assert [(p.file, p.line, p.rule) for p in prefix.errors] == [
        (f"s3://{bucket}/data/part-2.jsonl", 40, "field.type")]
    assert prefix.failure_message().startswith("Input data at part-2.jsonl")

    gz = validate_dataset(f"s3://{bucket}/logs/x.json.gz", model=LLAMA31, s3_client=s3_client)
    assert gz.totals["train"].records == 60 and gz.counts_by_rule.get("json") is None
    # Bedrock reads .jsonl objects only: in S3 (unlike a local file) that is an error.
    assert ("file.extension", None) in error_rules(gz)
    # Under a prefix, Bedrock ignores other files: they are skipped with a warning.
    listed = validate_dataset(f"s3://{bucket}/logs/", model=LLAMA31, s3_client=s3_client)
    assert [(p.rule, p.severity) for p in listed.problems[:1]] == [("file.skipped", "warning")]
    assert listed.totals["train"].records == 0

    empty = validate_dataset(f"s3://{bucket}/empty.jsonl", model=LLAMA31, s3_client=s3_client)
    assert ("empty_file", None) in error_rules(empty)

    missing = validate_dataset(f"s3://{bucket}/nothing-here", model=LLAMA31, s3_client=s3_client)
    assert ("file.not_found", None) in error_rules(missing)

    records = list(iter_records(f"s3://{bucket}/data/", s3_client=s3_client))
    assert len(records) == 100
    assert records[60][:2] == (f"s3://{bucket}/data/part-2.jsonl", 1)


def test_s3_media_bucket_is_the_dataset_bucket(s3_client: Any, bucket: str) -> None:
    records = [converse(i, user_extra=[image_block(uri=f"s3://{bucket}/img/{i}.png")]) for i in range(8)]
    records[3] = converse(3, user_extra=[image_block(uri="s3://some-other-bucket/img/3.png")])
    uri = _put(s3_client, bucket, "train.jsonl", b"".join(orjson.dumps(r) + b"\n" for r in records))
    report = validate_dataset(uri, model=NOVA_LITE, s3_client=s3_client)
    assert error_rules(report) == {("media.bucket", 4)}


def test_check_media_heads_each_object(s3_client: Any, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from airflow_bedrock_ft.core.models import CustomizationType, resolve_model

    spec = resolve_model(NOVA_LITE)
    custom = spec.customizations[CustomizationType.FINE_TUNING]
    small = dataclasses.replace(custom, limits=dataclasses.replace(custom.limits, max_image_bytes=100))
    monkeypatch.setitem(spec.customizations, CustomizationType.FINE_TUNING, small)  # type: ignore[arg-type]
    _put(s3_client, bucket, "img/ok.png", b"x" * 50)
    _put(s3_client, bucket, "img/big.png", b"x" * 500)
    uris = ["ok", "ok", "big", "none", "ok", "ok", "ok", "ok"]
    records = [converse(i, user_extra=[image_block(uri=f"s3://{bucket}/img/{name}.png")])
               for i, name in enumerate(uris)]
    uri = _put(s3_client, bucket, "train.jsonl", b"".join(orjson.dumps(r) + b"\n" for r in records))
    report = validate_dataset(uri, model=NOVA_LITE, s3_client=s3_client, check_media=True)
    assert error_rules(report) == {("media.size", 3), ("media.missing", 4)}
    assert "500 bytes" in report.errors[0].message
    # Off by default: no request per image, so nothing is reported.
    assert validate_dataset(uri, model=NOVA_LITE, s3_client=s3_client).ok


def test_memory_does_not_grow_with_file_size(tmp_path: Path) -> None:
    """Streaming: validating a 24 MB file allocates a small, size-independent amount."""
    import tracemalloc

    record = orjson.dumps(pc(1, prompt="word " * 300)) + b"\n"
    path = tmp_path / "big.jsonl"
    with open(path, "wb") as f:
        for _ in range(24 * 1024 * 1024 // len(record)):
            f.write(record)
    tracemalloc.start()
    try:
        report = validate_dataset(str(path), model=TITAN_EXPRESS, max_problems=10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.totals["train"].bytes == path.stat().st_size
    assert report.counts_by_rule == {"record_count.max": 1}
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes for a {path.stat().st_size}-byte file"


def test_invocation_log_prefix_reads_log_files_only(s3_client: Any, bucket: str) -> None:
    prefix = "AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2025/01/01/00"
    body = gzip.compress(b"".join(orjson.dumps(invocation_log(i)) + b"\n" for i in range(60)))
    _put(s3_client, bucket, f"{prefix}/part-a.json.gz", body)
    _put(s3_client, bucket, f"{prefix}/part-b.json.gz", body)
    _put(s3_client, bucket, "AWSLogs/123456789012/BedrockModelInvocationLogs/amazon-bedrock-logs-permission-check",
         b"")
    report = validate_dataset(f"s3://{bucket}/AWSLogs/", model=NOVA_LITE, customization_type="DISTILLATION",
                              data_format="invocation-logs", s3_client=s3_client)
    assert report.ok, report.format_text()
    assert report.totals["train"].records == 120
    assert [p.rule for p in report.problems] == ["file.skipped"]


def test_excerpts_carry_no_control_characters(tmp_path: Path) -> None:
    path = dataset_with(tmp_path / "t.jsonl", LLAMA31, pc, b"\x1b[31mred\x07 not json", at=2, n=100)
    report = validate_dataset(str(path), model=LLAMA31)
    assert error_rules(report) == {("json", 2)}
    assert report.problems[0].excerpt == "\ufffd[31mred\ufffd not json"
