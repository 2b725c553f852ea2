"""``airflow-bedrock-ft emulator`` starts, prints a working connection and stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import boto3
import pytest


def test_cli_prints_the_connection_and_stops_on_sigterm(tmp_path):
    env = {**os.environ, "BEDROCK_EMULATOR_FAULTS": '{"latency_ms": 1}'}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_bedrock_ft.emulator.cli",
            "emulator",
            "--port",
            "0",
            "--state",
            str(tmp_path / "state.sqlite"),
            "--time-scale",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        connection = None
        deadline = time.monotonic() + 60
        lines = []
        while connection is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
            if line.startswith("{"):
                connection = json.loads(line)
        assert connection is not None
        extra = connection["extra"]
        assert connection["conn_type"] == "aws" and extra["region_name"] == "us-east-1"
        assert extra["endpoint_url"].startswith("http://127.0.0.1:")
        bedrock = boto3.client(
            "bedrock",
            endpoint_url=extra["endpoint_url"],
            region_name=extra["region_name"],
            aws_access_key_id=connection["login"],
            aws_secret_access_key=connection["password"],
        )
        assert bedrock.list_model_customization_jobs()["modelCustomizationJobSummaries"] == []
        s3 = boto3.client(
            "s3",
            endpoint_url=extra["service_config"]["s3"]["endpoint_url"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        assert "Buckets" in s3.list_buckets()
        with urllib.request.urlopen(f"{extra['endpoint_url']}/_emulator/faults") as resp:
            assert json.loads(resp.read())["latency_ms"] == 1  # from BEDROCK_EMULATOR_FAULTS
        with urllib.request.urlopen(f"{extra['endpoint_url']}/_emulator/health") as resp:
            assert json.loads(resp.read())["persistent"] is True
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (tmp_path / "state.sqlite").exists()


def test_cli_rejects_conflicting_s3_options():
    from airflow_bedrock_ft.emulator.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["--port", "0", "--s3-endpoint-url", "http://127.0.0.1:9000"])
    assert args.s3_endpoint_url == "http://127.0.0.1:9000" and args.host == "127.0.0.1"
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--s3-port", "1", "--s3-endpoint-url", "http://x"])
    assert exc.value.code == 2
