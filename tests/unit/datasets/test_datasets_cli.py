"""``airflow-bedrock-ft validate``: output, exit codes, and no Airflow import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ds_helpers import NOVA_LITE, TITAN_EXPRESS, converse, dataset_with, pc

from airflow_bedrock_ft.datasets.cli import main

REPO = Path(__file__).resolve().parents[3]


def test_valid_dataset_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = dataset_with(tmp_path / "train.jsonl", NOVA_LITE, converse)
    assert main([str(path), "--model", "amazon.nova-lite-v1:0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Dataset VALID for amazon.nova-lite-v1:0:300k (FINE_TUNING")
    assert "train: 1 file(s), 10 record(s)" in out


def test_invalid_dataset_exits_one_and_lists_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = dataset_with(tmp_path / "train.jsonl", TITAN_EXPRESS, pc, pc(0, prompt="x" * 18_000), at=4)
    # 3,000 tokens: within 4,096 at batch size 1, over 2,048 at batch size 2.
    assert main([str(path), "--model", TITAN_EXPRESS]) == 0
    capsys.readouterr()
    assert main([str(path), "--model", TITAN_EXPRESS, "--hyperparameter", "batchSize=2"]) == 1
    out = capsys.readouterr().out
    assert f"{path}:4: error [tokens.max]" in out
    assert "Bedrock would fail with: Input size exceeded in file train.jsonl" in out


def test_json_output_and_validation_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = dataset_with(tmp_path / "train.jsonl", NOVA_LITE, converse)
    val = dataset_with(tmp_path / "val.jsonl", NOVA_LITE, converse, b"{oops", at=2, n=3)
    code = main([str(train), "--validation", str(val), "--model", NOVA_LITE, "--json", "-p", "epochCount=3"])
    assert code == 1
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert data["counts_by_rule"] == {"json": 1}
    assert data["problems"][0]["file"] == str(val) and data["problems"][0]["line"] == 2
    assert data["totals"]["validation"]["records"] == 3
    assert data["epochs"] == 3


def test_type_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cpt.jsonl"
    path.write_text("\n".join(json.dumps({"input": f"text {i}"}) for i in range(5)) + "\n")
    assert main([str(path), "--model", TITAN_EXPRESS, "--type", "continued_pre_training"]) == 0
    assert main([str(path), "--model", TITAN_EXPRESS]) == 1  # FINE_TUNING wants prompt/completion
    assert "format.wrong" in capsys.readouterr().out


def test_bad_usage_exits_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = dataset_with(tmp_path / "train.jsonl", NOVA_LITE, converse)
    assert main([str(path), "--model", "acme.unknown-v1"]) == 2
    assert "Unknown base model" in capsys.readouterr().err
    assert main([str(path), "--model", NOVA_LITE, "--type", "CONTINUED_PRE_TRAINING"]) == 2
    with pytest.raises(SystemExit) as exc:
        main([str(path), "--model", NOVA_LITE, "--hyperparameter", "novalue"])
    assert exc.value.code == 2


def test_command_line_does_not_import_airflow(tmp_path: Path) -> None:
    """The validator must run where Airflow is absent, and start fast."""
    path = dataset_with(tmp_path / "train.jsonl", NOVA_LITE, converse)
    code = (
        "import sys\n"
        "from airflow_bedrock_ft.datasets.cli import main\n"
        f"rc = main([{str(path)!r}, '--model', {NOVA_LITE!r}])\n"
        "loaded = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.'))\n"
        "print('AIRFLOW_MODULES=' + ','.join(loaded))\n"
        "sys.exit(rc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env,
                          cwd=str(REPO))
    assert done.returncode == 0, done.stderr
    assert "Dataset VALID" in done.stdout
    assert "AIRFLOW_MODULES=\n" in done.stdout


def test_module_entry_point(tmp_path: Path) -> None:
    path = dataset_with(tmp_path / "train.jsonl", NOVA_LITE, converse, b"[]", at=1)
    done = subprocess.run([sys.executable, "-m", "airflow_bedrock_ft.datasets.cli", str(path), "--model", NOVA_LITE],
                          capture_output=True, text=True, timeout=60, cwd=str(REPO),
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 1
    assert f"{path}:1: error [record.type]" in done.stdout


def test_package_command_dispatches_to_validate(tmp_path: Path) -> None:
    """``airflow-bedrock-ft validate ...`` reaches this command without importing Airflow."""
    path = dataset_with(tmp_path / "train.jsonl", NOVA_LITE, converse)
    code = (
        "import sys\n"
        "from airflow_bedrock_ft.cli import main\n"
        f"rc = main(['validate', {str(path)!r}, '--model', {NOVA_LITE!r}, '--json'])\n"
        "print('AIRFLOW=' + str(any(m == 'airflow' or m.startswith('airflow.') for m in sys.modules)))\n"
        "sys.exit(rc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=str(REPO), env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert '"ok": true' in done.stdout
    assert "AIRFLOW=False" in done.stdout


def test_dangling_symlink_in_a_folder_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    """Regression: a dangling symlink in a folder crashed the command with a traceback."""
    folder = tmp_path / "data"
    folder.mkdir()
    dataset_with(folder / "a.jsonl", NOVA_LITE, converse)
    os.symlink(tmp_path / "moved-away.jsonl", folder / "b.jsonl")
    done = subprocess.run([sys.executable, "-m", "airflow_bedrock_ft.datasets.cli", str(folder), "--model", NOVA_LITE],
                          capture_output=True, text=True, timeout=60, cwd=str(REPO),
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert f"{folder / 'b.jsonl'}: error [file.read] Cannot open file: {folder / 'b.jsonl'} is a symbolic link " \
           f"to '{tmp_path / 'moved-away.jsonl'}', which does not exist" in done.stdout
    assert "train: 2 file(s), 10 record(s)" in done.stdout


def _image_dataset(path: Path, other_bucket_at: int) -> Path:
    from ds_helpers import image_block

    recs = [converse(i, user_extra=[image_block()]) for i in range(8)]
    recs[other_bucket_at] = converse(0, user_extra=[image_block(uri="s3://someone-elses/cat.png")])
    return dataset_with(path, NOVA_LITE, lambda i: recs[i], n=8)


def test_media_bucket_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ds_helpers import BUCKET

    path = _image_dataset(tmp_path / "train.jsonl", 5)
    assert main([str(path), "--model", NOVA_LITE]) == 0  # local data: no bucket known, rule not applied
    capsys.readouterr()
    assert main([str(path), "--model", NOVA_LITE, "--media-bucket", f"s3://{BUCKET}/"]) == 1
    out = capsys.readouterr().out
    assert f"{path}:6: error [media.bucket]" in out
    assert f"is in bucket 'someone-elses'; media must be in the dataset's bucket '{BUCKET}'" in out
    assert main([str(path), "--model", NOVA_LITE, "--media-bucket", "someone-elses", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["counts_by_rule"] == {"media.bucket": 7}


def test_media_bucket_must_be_a_bucket(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _image_dataset(tmp_path / "train.jsonl", 5)
    with pytest.raises(SystemExit) as exc:
        main([str(path), "--model", NOVA_LITE, "--media-bucket", "s3://bucket/prefix"])
    assert exc.value.code == 2
    assert "expected a bucket name such as my-bucket" in capsys.readouterr().err


def test_problems_per_rule_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = dataset_with(tmp_path / "train.jsonl", NOVA_LITE, converse, n=10)
    path.write_bytes(path.read_bytes() + b"{bad\n" * 50)
    assert main([str(path), "--model", NOVA_LITE, "--json", "--max-problems-per-rule", "3"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["counts_by_rule"] == {"json": 50}
    assert [p["line"] for p in data["problems"]] == [11, 12, 13]
    assert main([str(path), "--model", NOVA_LITE, "--max-problems-per-rule", "0"]) == 1
    assert "json: 50\n" in capsys.readouterr().out
    assert main([str(path), "--model", NOVA_LITE]) == 1
    assert "json: 50 (first 20 listed)" in capsys.readouterr().out
