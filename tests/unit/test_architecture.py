"""The tree's layering, checked: the core, the dataset tools and the emulator never import
Airflow, and every public class says what it is for."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys

import pytest

import airflow_bedrock_ft

AIRFLOW_FREE = (
    "airflow_bedrock_ft.core",
    "airflow_bedrock_ft.datasets",
    "airflow_bedrock_ft.emulator",
    "airflow_bedrock_ft.evaluation",
)


def _modules(prefix: str = "airflow_bedrock_ft") -> list[str]:
    names = [prefix]
    for info in pkgutil.walk_packages(airflow_bedrock_ft.__path__, prefix + "."):
        names.append(info.name)
    return names


def _airflow_free_modules() -> list[str]:
    return [m for m in _modules() if m.startswith(AIRFLOW_FREE) and ".data." not in m and not m.endswith("make_demo")]


def test_plain_layers_do_not_import_airflow() -> None:
    modules = [*_airflow_free_modules(), "airflow_bedrock_ft", "airflow_bedrock_ft.cli"]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.'))\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"these layers pulled in Airflow modules: {done.stdout.strip()}"


@pytest.mark.parametrize("module_name", [m for m in _modules() if not m.endswith("make_demo")])
def test_every_public_class_has_a_docstring(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [
        name
        for name, obj in vars(module).items()
        if inspect.isclass(obj)
        and obj.__module__ == module_name
        and not name.startswith("_")
        and not (obj.__doc__ or "").strip()
    ]
    assert not missing, f"{module_name}: public classes without a docstring: {missing}"
