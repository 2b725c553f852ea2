"""The package as a user installs it: an sdist and a wheel built from the repository, checked
with ``twine check``, the wheel installed into a fresh virtualenv, where Airflow lists the
provider, the command line validates the bundled demo data and the emulator starts and
answers a signed Bedrock call."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).parent / "uv"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(*args: object, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    # Outside the repository, so that ``python -c`` imports the installed copy.
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env, cwd="/"
    )
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_the_built_wheel_installs_and_runs(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run(UV, "build", "--quiet", "--out-dir", dist, REPO)
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list(dist.iterdir())
    _run(sys.executable, "-m", "twine", "check", "--strict", wheels[0], sdists[0])

    venv = tmp_path / "venv"
    _run(UV, "venv", "--quiet", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    _run(UV, "pip", "install", "--quiet", "--python", python, f"{wheels[0]}[emulator]", timeout=900)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "VIRTUAL_ENV", "PYTHON"))}
    env.update(AIRFLOW_HOME=str(tmp_path / "airflow-home"), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    providers = json.loads(_run(venv / "bin" / "airflow", "providers", "list", "--output", "json", env=env))
    assert "airflow-bedrock-ft" in {p["package_name"] for p in providers}, providers

    # Package data is installed: the demo dataset validates from the installed copy.
    demo = _run(
        python,
        "-c",
        "import airflow_bedrock_ft, pathlib; print(pathlib.Path(airflow_bedrock_ft.__file__).parent / 'data' / 'demo' / 'train.jsonl')",
        env=env,
    ).strip()
    assert not demo.startswith(str(REPO)), demo
    report = json.loads(
        _run(
            venv / "bin" / "airflow-bedrock-ft",
            "validate",
            demo,
            "--model",
            "meta.llama3-1-8b-instruct-v1:0:128k",
            "--json",
            env=env,
        )
    )
    assert report["errors"] == 0, report

    port = _free_port()
    emulator = subprocess.Popen(
        [venv / "bin" / "airflow-bedrock-ft", "emulator", "--port", str(port), "--s3-port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd="/",
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_emulator/health", timeout=2) as resp:
                    assert json.loads(resp.read())["status"] == "ok"
                    break
            except OSError:
                assert emulator.poll() is None, emulator.stdout.read() if emulator.stdout else ""
                assert time.monotonic() < deadline, "the installed emulator did not start"
                time.sleep(0.5)
        listed = _run(
            python,
            "-c",
            "import boto3, sys; c = boto3.client('bedrock', endpoint_url=sys.argv[1], region_name='us-east-1', "
            "aws_access_key_id='testing', aws_secret_access_key='testing'); "
            "print(len(c.list_foundation_models()['modelSummaries']))",
            f"http://127.0.0.1:{port}",
            env=env,
        )
        assert int(listed) > 5
    finally:
        emulator.terminate()
        emulator.wait(30)
