"""Hostile inputs: work bounded by decompressed bytes, bulk counting of junk lines, per-rule
problem caps, streaming converters, and clear problems for broken folders."""

from __future__ import annotations

import gzip
import io
import os
import time
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from ds_helpers import LLAMA31, NOVA_LITE, TITAN_EXPRESS, converse, image_block, pc, video_block, write_lines

from airflow_bedrock_ft.core.models import CustomizationType, resolve_model
from airflow_bedrock_ft.datasets import ConversionError, convert_file, read_rows, split_file, validate_dataset
from airflow_bedrock_ft.datasets.sources import (
    DatasetTooLargeError,
    LineTooLongError,
    list_files,
    open_decompressed,
    skip_blank_lines,
    skip_repeats,
)
from airflow_bedrock_ft.datasets.validate import dataset_byte_limit

MB = 1024 * 1024


def _gzip_members(path: Path, unit: bytes, members: int, member_bytes: int = 4 * MB) -> Path:
    packed = gzip.compress(unit * (member_bytes // len(unit)), compresslevel=9)
    path.write_bytes(packed * members)
    return path


def _limit(monkeypatch: pytest.MonkeyPatch, model: str, **limits: Any) -> None:
    """Shrink a model's documented limits for the test (the catalog is shared state)."""
    import dataclasses

    spec = resolve_model(model)
    custom = spec.customizations[CustomizationType.FINE_TUNING]
    small = dataclasses.replace(custom, limits=dataclasses.replace(custom.limits, **limits))
    monkeypatch.setitem(spec.customizations, CustomizationType.FINE_TUNING, small)  # type: ignore[arg-type]


# -- 6. bounded work --------------------------------------------------------------------------

def test_gzip_of_newlines_is_counted_exactly_and_fast(tmp_path: Path) -> None:
    """Regression: a 16 KB gzip of newlines took 61 s (a JSONDecodeError and a problem per line)."""
    path = _gzip_members(tmp_path / "nl.jsonl.gz", b"\n", 4)  # 16 MiB of newlines, ~16 KB of gzip
    assert path.stat().st_size < 20_000
    t0 = time.process_time()
    report = validate_dataset(str(path), model=LLAMA31)
    elapsed = time.process_time() - t0
    assert report.counts_by_rule["blank_line"] == 16 * MB
    assert report.totals["train"].bytes == 16 * MB  # decompressed, not the 16 KB on disk
    assert report.files[0]["decompressed_bytes"] == 16 * MB
    blank = [p for p in report.problems if p.rule == "blank_line"]
    assert [p.line for p in blank] == list(range(1, 21))  # the first 20, with their line numbers
    assert elapsed < 3.0, f"{elapsed:.1f} s of CPU for 16 MiB of newlines"


def test_bulk_counting_keeps_line_numbers_right(tmp_path: Path) -> None:
    lines: list[bytes | dict[str, Any]] = [pc(i) for i in range(100)]
    lines += [b"", b"  ", b"\t"] * 10 + [b""] * 1000 + [b"  \r"]  # 1031 whitespace-only lines
    lines += [b"x"] * 5000  # identical broken lines
    lines += [b"1"] * 3000  # identical JSON that is not an object
    lines += [pc(1), {"prompt": 1, "completion": "c"}]
    path = write_lines(tmp_path / "t.jsonl", lines)
    report = validate_dataset(str(path), model=LLAMA31, max_problems_per_rule=5)
    assert report.counts_by_rule == {"blank_line": 1031, "json": 5000, "record.type": 3000, "field.type": 1}
    assert report.totals["train"].records == 102
    assert report.files[0]["lines"] == 100 + 1031 + 5000 + 3000 + 2
    lines_of = {rule: [p.line for p in report.problems if p.rule == rule] for rule in report.counts_by_rule}
    assert lines_of["blank_line"] == list(range(101, 106))
    assert lines_of["json"] == list(range(1132, 1137))
    assert lines_of["record.type"] == list(range(6132, 6137))
    # The line after all the runs counted in bulk keeps its own line number.
    assert lines_of["field.type"] == [9133]


def test_line_numbers_after_bulk_runs_are_exact(tmp_path: Path) -> None:
    lines: list[bytes | dict[str, Any]] = [b""] * 50 + [b"x"] * 50 + [pc(1), {"prompt": 1, "completion": "c"}]
    path = write_lines(tmp_path / "t.jsonl", lines)
    report = validate_dataset(str(path), model=LLAMA31, max_problems_per_rule=2)
    typed = [p for p in report.problems if p.rule == "field.type"]
    assert [p.line for p in typed] == [102]


def test_skip_helpers_leave_other_lines_alone() -> None:
    stream = open_decompressed(io.BytesIO(b" \n\r\n\n  x\n"))
    assert skip_blank_lines(stream) == 3
    assert stream.readline() == b"  x\n"
    stream = open_decompressed(io.BytesIO(b"ab\n" * 70_000 + b"ab"))
    assert skip_repeats(stream, b"ab\n") == 70_000
    assert stream.read() == b"ab"


def test_gzip_bomb_counts_decompressed_bytes_and_stops_at_the_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _limit(monkeypatch, TITAN_EXPRESS, max_train_bytes=8 * MB)
    path = _gzip_members(tmp_path / "bomb.jsonl.gz", b"\0", 16)  # 64 MiB of zeros, ~64 KB
    report = validate_dataset(str(path), model=TITAN_EXPRESS)
    size = [p for p in report.problems if p.rule == "file_size.max"]
    assert len(size) == 1 and report.counts_by_rule["file_size.max"] == 1
    assert size[0].file == str(path) and size[0].line is None
    assert "accepts (8388608 bytes)" in size[0].message
    read = report.totals["train"].bytes
    assert 8 * MB < read <= 9 * MB + 1  # stopped within one read buffer of the limit
    assert "record_count.min" not in report.counts_by_rule  # the count is partial, no minimum applies
    assert f"Data validation failed for {path.name}" in report.failure_message()


def test_gzip_bomb_in_s3_stops_at_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_client: Any,
                                            bucket: str) -> None:
    _limit(monkeypatch, TITAN_EXPRESS, max_train_bytes=4 * MB)
    bomb = _gzip_members(tmp_path / "bomb.jsonl.gz", orjson.dumps(pc(1)) + b"\n", 8)  # 32 MiB of records
    s3_client.put_object(Bucket=bucket, Key="in/bomb.jsonl.gz", Body=bomb.read_bytes())
    report = validate_dataset(f"s3://{bucket}/in/bomb.jsonl.gz", model=TITAN_EXPRESS, s3_client=s3_client)
    size = [p for p in report.problems if p.rule == "file_size.max"]
    assert [p.file for p in size] == [f"s3://{bucket}/in/bomb.jsonl.gz"]
    assert 4 * MB < report.totals["train"].bytes <= 5 * MB + 1
    assert report.files[0]["bytes"] == bomb.stat().st_size  # stored size kept beside the decompressed one


def test_split_limit_spans_files_and_stops_the_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _limit(monkeypatch, LLAMA31, max_train_bytes=3 * MB)
    folder = tmp_path / "data"
    folder.mkdir()
    record = orjson.dumps(pc(0, prompt="p" * 1000)) + b"\n"
    for name in ("a", "b", "c", "d"):
        (folder / f"{name}.jsonl").write_bytes(record * (2 * MB // len(record)))
    report = validate_dataset(str(folder), model=LLAMA31)
    size = [p for p in report.problems if p.rule == "file_size.max"]
    assert [p.file for p in size] == [str(folder / "b.jsonl")]
    assert size[0].message.endswith("; the 2 later file(s) of this split were not read")
    assert [f["file"] for f in report.files] == [str(folder / "a.jsonl"), str(folder / "b.jsonl")]


def test_models_without_a_size_limit_get_one_from_records_and_tokens() -> None:
    spec = resolve_model(NOVA_LITE)
    custom = spec.customization("FINE_TUNING")
    limits = custom.limits
    assert limits.max_train_bytes is None
    bound = dataset_byte_limit(spec, custom, "train")
    assert bound is not None
    per_record = bound // limits.max_records  # type: ignore[operator]
    # Every record of the largest valid dataset fits: tokens x chars per token x 6 bytes.
    assert per_record >= limits.max_total_tokens * limits.chars_per_token * 6  # type: ignore[operator]
    titan = resolve_model(TITAN_EXPRESS)
    assert dataset_byte_limit(titan, titan.customization("FINE_TUNING"), "validation") == 100 * MB


def test_problems_are_capped_per_rule_and_counted_exactly(tmp_path: Path) -> None:
    lines: list[bytes | dict[str, Any]] = [b"{bad"] * 100 + [{"prompt": "p"}] * 30 + [pc(i) for i in range(100)]
    path = write_lines(tmp_path / "t.jsonl", lines)
    report = validate_dataset(str(path), model=LLAMA31, max_problems_per_rule=20)
    assert report.counts_by_rule == {"json": 100, "field.required": 30}
    assert {p.rule for p in report.problems} == {"json", "field.required"}
    assert sum(p.rule == "json" for p in report.problems) == 20
    assert sum(p.rule == "field.required" for p in report.problems) == 20
    text = report.format_text()
    assert "json: 100 (first 20 listed)" in text
    assert report.to_dict()["problems_not_shown"] == 130 - 40
    uncapped = validate_dataset(str(path), model=LLAMA31, max_problems_per_rule=None)
    assert len(uncapped.problems) == 130
    counted_only = validate_dataset(str(path), model=LLAMA31, max_problems_per_rule=0)
    assert counted_only.problems == [] and counted_only.counts_by_rule == report.counts_by_rule
    assert "json: 100 (none listed)" in counted_only.format_text()


# -- 7. streaming converters ----------------------------------------------------------------

def test_json_array_streams_item_by_item(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ijson

    path = tmp_path / "rows.json"
    path.write_bytes(b"\xef\xbb\xbf [" + b",".join(orjson.dumps({"q": f"q{i}", "a": i, "f": 0.5})
                                                   for i in range(3000)) + b"]")
    reads: list[int] = []
    real_items = ijson.items

    def spy(reader: Any, *args: Any, **kwargs: Any) -> Any:
        real_read = reader.read

        def read(n: int = -1) -> bytes:
            data = real_read(n)
            reads.append(len(data))
            return data

        reader.read = read
        return real_items(reader, *args, **kwargs)

    monkeypatch.setattr(ijson, "items", spy)
    rows = read_rows(str(path))
    first = next(rows)
    assert first == {"q": "q0", "a": 0, "f": 0.5}
    assert sum(reads) < path.stat().st_size  # the first row came before the array was read whole
    assert len(list(rows)) == 2999
    assert max(reads) <= 64 * 1024


def test_json_array_errors_name_the_file_and_item(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_bytes(b'[{"a": 1}, 2]')
    with pytest.raises(ConversionError, match=r"rows.json: array items must be objects \(item 2"):
        list(read_rows(str(path)))
    path.write_bytes(b'[{"a": 1}, {"a": ')
    with pytest.raises(ConversionError, match=r"rows.json: invalid JSON array \(item 2\)"):
        list(read_rows(str(path)))


def test_oversized_array_item_stops_without_buffering_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_bedrock_ft.datasets import convert as convert_module

    monkeypatch.setattr(convert_module, "MAX_LINE_BYTES", 100_000)
    path = tmp_path / "rows.json"
    path.write_bytes(b'[{"a": "ok"}, {"a": "' + b"x" * 1_000_000 + b'"}]')
    with pytest.raises(ConversionError, match=r"item 2 of the JSON array is larger than 100000 bytes"):
        list(read_rows(str(path)))


@pytest.mark.parametrize("name", ["long.jsonl", "long.csv"])
def test_converter_reads_lines_with_the_line_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   name: str) -> None:
    from airflow_bedrock_ft.datasets import convert as convert_module

    monkeypatch.setattr(convert_module, "MAX_LINE_BYTES", 4096)
    path = tmp_path / name
    if name.endswith(".csv"):
        path.write_bytes(b"prompt,completion\np,c\n" + b"z" * 100_000 + b"\n")
        line = 3
    else:
        path.write_bytes(b'{"prompt": "p", "completion": "c"}\n' + b"z" * 100_000 + b"\n")
        line = 2
    with pytest.raises(LineTooLongError, match=rf"{name}:{line}: line is longer than 4096 bytes"):
        convert_file(str(path), tmp_path / "out.jsonl", "prompt-completion")


def test_csv_errors_are_conversion_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"prompt,completion\n\xff\xfe,x\n")
    with pytest.raises(ConversionError, match=r"bad.csv:2: invalid UTF-8"):
        list(read_rows(str(path)))


def test_converter_bounds_input_and_output(tmp_path: Path) -> None:
    path = _gzip_members(tmp_path / "rows.jsonl.gz", orjson.dumps(pc(1)) + b"\n", 4, member_bytes=MB)
    with pytest.raises(DatasetTooLargeError, match=r"past the limit of 1000000 bytes"):
        list(read_rows(str(path), max_bytes=1_000_000))
    with pytest.raises(ConversionError, match=r"rows.jsonl.gz: stopped converting at record \d+: the converted "
                                              r"records pass 500000 bytes"):
        convert_file(str(path), tmp_path / "out.jsonl", "prompt-completion", max_output_bytes=500_000)
    records = 4 * (MB // len(orjson.dumps(pc(1)) + b"\n"))
    assert convert_file(str(path), tmp_path / "out.jsonl", "prompt-completion") == records


def test_split_file_is_bounded(tmp_path: Path) -> None:
    path = _gzip_members(tmp_path / "t.jsonl.gz", orjson.dumps(pc(1)) + b"\n", 2, member_bytes=MB)
    with pytest.raises(DatasetTooLargeError):
        split_file(str(path), tmp_path / "a", tmp_path / "b", 0.1, max_bytes=MB)
    long = tmp_path / "long.jsonl"
    long.write_bytes(b"z" * (9 * MB) + b"\n")
    with pytest.raises(LineTooLongError, match=r"long.jsonl:1: line is longer than"):
        split_file(str(long), tmp_path / "a", tmp_path / "b", 0.1)


def test_converter_memory_stays_flat_on_a_large_array(tmp_path: Path) -> None:
    """A 40 MB JSON array converts in a child process whose peak RSS stays under 100 MB."""
    import subprocess
    import sys

    path = tmp_path / "rows.json"
    with open(path, "wb") as f:
        f.write(b"[")
        row = orjson.dumps({"question": "w " * 200, "answer": "a " * 100})
        for i in range(40 * MB // len(row)):
            f.write((b"," if i else b"") + row)
        f.write(b"]")
    # VmHWM is this process's own peak: ru_maxrss would include the (large) pytest process it
    # was forked from, as Linux carries the peak across fork and exec.
    code = ("import sys; from airflow_bedrock_ft.datasets import convert_file; "
            "n = convert_file(sys.argv[1], sys.argv[2], 'prompt-completion', "
            "mapping={'prompt': 'question', 'completion': 'answer'}); "
            "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]; "
            "print(n, hwm)")
    out = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "out.jsonl")],
                         check=True, capture_output=True, text=True).stdout.split()
    rows, rss_kb = int(out[0]), int(out[1])
    assert rows == 40 * MB // len(row)
    assert rss_kb < 100 * 1024, f"peak RSS {rss_kb / 1024:.0f} MB"


# -- 8. broken folders and media ------------------------------------------------------------

def test_dangling_symlink_in_a_folder_is_a_problem(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    write_lines(folder / "a.jsonl", [pc(i) for i in range(100)])
    os.symlink(tmp_path / "gone.jsonl", folder / "b.jsonl")
    report = validate_dataset(str(folder), model=LLAMA31)
    problems = [(p.file, p.rule) for p in report.errors]
    assert problems == [(str(folder / "b.jsonl"), "file.read")]
    assert "is a symbolic link to" in report.errors[0].message and "does not exist" in report.errors[0].message
    assert report.totals["train"].records == 100
    assert [f.name for f in list_files(str(folder))] == [str(folder / "a.jsonl"), str(folder / "b.jsonl")]


def test_dangling_symlink_named_directly_is_not_found(tmp_path: Path) -> None:
    os.symlink(tmp_path / "gone.jsonl", tmp_path / "link.jsonl")
    report = validate_dataset(str(tmp_path / "link.jsonl"), model=LLAMA31)
    not_found = [p for p in report.errors if p.rule == "file.not_found"]
    assert [p.file for p in not_found] == [str(tmp_path / "link.jsonl")]
    assert "is a symbolic link to" in not_found[0].message


def test_fifo_in_a_folder_is_reported_not_read(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    write_lines(folder / "a.jsonl", [pc(i) for i in range(100)])
    os.mkfifo(folder / "pipe.jsonl")
    report = validate_dataset(str(folder), model=LLAMA31)  # would block forever if opened
    assert [(p.file, p.rule) for p in report.errors] == [(str(folder / "pipe.jsonl"), "file.read")]
    assert "not a regular file" in report.errors[0].message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    write_lines(folder / "a.jsonl", [pc(i) for i in range(100)])
    secret = write_lines(folder / "b.jsonl", [pc(1)])
    secret.chmod(0)
    report = validate_dataset(str(folder), model=LLAMA31)
    assert [(p.file, p.rule) for p in report.errors] == [(str(secret), "file.read")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists folders whatever their mode")
def test_unlistable_subfolder_is_a_problem(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    (folder / "locked").mkdir(parents=True)
    write_lines(folder / "a.jsonl", [pc(i) for i in range(100)])
    write_lines(folder / "locked" / "b.jsonl", [pc(1)])
    (folder / "locked").chmod(0)
    try:
        report = validate_dataset(str(folder), model=LLAMA31)
    finally:
        (folder / "locked").chmod(0o755)
    assert [(p.file, p.rule) for p in report.errors] == [(str(folder / "locked"), "file.read")]
    assert report.errors[0].message.startswith(f"Cannot list folder {folder / 'locked'}: ")


def test_media_bucket_applies_to_local_images_and_videos(tmp_path: Path) -> None:
    recs = [converse(i, user_extra=[image_block()]) for i in range(8)]
    recs[2] = converse(2, user_extra=[image_block(uri="s3://other-bucket/cat.png")])
    path = write_lines(tmp_path / "t.jsonl", recs)
    assert validate_dataset(str(path), model=NOVA_LITE).ok  # local data: no bucket to compare with
    report = validate_dataset(str(path), model=NOVA_LITE, media_bucket="ft-data")
    assert [(p.rule, p.line) for p in report.errors] == [("media.bucket", 3)]
    assert "'other-bucket'" in report.errors[0].message and "'ft-data'" in report.errors[0].message
    videos = [converse(i, user_extra=[video_block(uri=f"s3://b{i % 2}/v.mp4")]) for i in range(8)]
    vpath = write_lines(tmp_path / "v.jsonl", videos)
    assert validate_dataset(str(vpath), model=NOVA_LITE, media_bucket="b0").counts_by_rule == {"media.bucket": 4}


def test_gzip_stream_reports_compression() -> None:
    assert open_decompressed(io.BytesIO(gzip.compress(b"{}\n"))).compressed
    assert not open_decompressed(io.BytesIO(b"{}\n")).compressed
    stream = open_decompressed(io.BytesIO(zlib.compress(b"x")))  # zlib, not gzip: read as is
    assert stream.read() == zlib.compress(b"x") and stream.bytes_read == len(zlib.compress(b"x"))
