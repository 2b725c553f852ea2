"""Fixtures for end-to-end tests: the emulator (from the root conftest) plus a real Airflow
deployment whose ``aws_default`` connection points at it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .deployment import AirflowDeployment

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "airflow_bedrock_ft" / "data" / "demo"
E2E_BUCKET = "e2e-bucket"


@pytest.fixture(scope="session")
def e2e_emulator() -> Iterator[Any]:
    """An emulator of its own: other tests reset the shared one between tests.

    Jobs take about 15 s: a trigger that fires before the scheduler has processed the
    executor's report of the deferral makes Airflow 3.3 fail the task ("state changed
    externally"), a race that real jobs, which run for hours, never meet.
    """
    from airflow_bedrock_ft.emulator import start_emulator

    with start_emulator(port=0, s3_port=0, time_scale=0.03) as emu:
        yield emu


@pytest.fixture(scope="session")
def airflow_deployment(
    e2e_emulator: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowDeployment]:
    """api-server, scheduler, dag-processor and triggerer as separate processes (LocalExecutor)."""
    home = tmp_path_factory.mktemp("airflow-home")
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(REPO / "dags" / "fine_tune_pipeline.py", dags)
    shutil.copy(REPO / "dags" / "watch_external_job.py", dags)
    shutil.copy(Path(__file__).parent / "dags" / "e2e_fine_tune.py", dags)
    s3 = e2e_emulator.client("s3")
    if E2E_BUCKET not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket=E2E_BUCKET)
    for name in ("train.jsonl", "validation.jsonl"):
        s3.upload_file(str(DEMO / name), E2E_BUCKET, f"data/{name}")
    deployment = AirflowDeployment(
        home,
        dags,
        {
            "AIRFLOW_CONN_AWS_DEFAULT": e2e_emulator.connection_uri_json(),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "E2E_BUCKET": E2E_BUCKET,
            "BEDROCK_FT_POLL_INTERVAL": "1",
            "BEDROCK_FT_BUCKET": "e2e-pipeline-bucket",
        },
    )
    deployment.migrate()
    deployment.start()
    try:
        yield deployment
    finally:
        deployment.stop()
