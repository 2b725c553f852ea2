"""Provider registration: metadata shape, importable class paths, and ``airflow providers list``."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
from airflow.sdk import BaseOperator, BaseOperatorLink, BaseSensorOperator
from airflow.triggers.base import BaseTrigger

from airflow_bedrock_ft.get_provider_info import get_provider_info

INFO = get_provider_info()


def _modules(kind: str) -> list[str]:
    return [m for entry in INFO[kind] for m in entry["python-modules"]]


def test_required_keys_and_package_name() -> None:
    assert INFO["package-name"] == "airflow-bedrock-ft"
    assert INFO["name"] and INFO["description"]
    integrations = {i["integration-name"] for i in INFO["integrations"]}
    for kind in ("operators", "sensors", "triggers", "hooks"):
        assert {e["integration-name"] for e in INFO[kind]} <= integrations


def test_version_matches_the_distribution() -> None:
    try:
        version = importlib.metadata.version("airflow-bedrock-ft")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("package not installed")
    assert version in INFO["versions"]


@pytest.mark.parametrize(
    ("kind", "base"),
    [
        ("operators", BaseOperator),
        ("sensors", BaseSensorOperator),
        ("triggers", BaseTrigger),
        ("hooks", object),
    ],
)
def test_listed_modules_import_and_hold_classes(kind: str, base: type) -> None:
    for name in _modules(kind):
        module = importlib.import_module(name)
        own = [
            c
            for _, c in inspect.getmembers(module, inspect.isclass)
            if c.__module__ == name and issubclass(c, base)
        ]
        assert own, f"{name} defines no {kind[:-1]} class"


def test_extra_links_import() -> None:
    for path in INFO["extra-links"]:
        module_name, _, class_name = path.rpartition(".")
        cls = getattr(importlib.import_module(module_name), class_name)
        assert issubclass(cls, BaseOperatorLink)


def test_airflow_providers_list_shows_the_provider(tmp_path: Path) -> None:
    try:
        importlib.metadata.distribution("airflow-bedrock-ft")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("needs `uv pip install -e . --no-deps` for the entry point")
    airflow = Path(sys.executable).with_name("airflow")
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    done = subprocess.run(
        [str(airflow), "providers", "list", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"airflow-bedrock-ft"' in done.stdout


def test_operator_modules_import_light() -> None:
    """Parsing a DAG that uses the operators must not load boto3, aiobotocore or the AWS hook.

    Measured in a fresh process after ``import airflow``; the time bound is loose (the measured
    median here is about 10 ms) so a slow CI runner does not fail it, the module list is exact.
    """
    code = (
        "import sys, time\n"
        "import airflow\n"
        "t = time.perf_counter()\n"
        "import airflow_bedrock_ft.operators.bedrock_ft, airflow_bedrock_ft.sensors.bedrock_ft\n"
        "import airflow_bedrock_ft.triggers.bedrock_ft, airflow_bedrock_ft.links\n"
        "print((time.perf_counter() - t) * 1000)\n"
        "heavy = ('boto3', 'aiobotocore', 'airflow.providers.amazon.aws.hooks.base_aws',\n"
        "         'airflow_bedrock_ft.hooks.bedrock_ft', 'airflow_bedrock_ft.core.request')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    millis, heavy = [*done.stdout.splitlines(), ""][:2]
    assert heavy == "", f"imported eagerly: {heavy}"
    assert float(millis) < 100
