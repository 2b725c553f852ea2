"""The rule catalog (datasets.rules.RULES) lists exactly the rule ids the code can report."""

from __future__ import annotations

import ast
from pathlib import Path

from airflow_bedrock_ft.datasets.rules import RULES

PACKAGE = Path(__file__).resolve().parents[3] / "airflow_bedrock_ft" / "datasets"
_REPORTING_CALLS = {"emit", "file_problem"}


def _rules_in_source() -> set[str]:
    found: set[str] = set()
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                args = node.args
                if name == "emit" and args and isinstance(args[0], ast.Constant):
                    found.add(args[0].value)
                if name == "file_problem" and len(args) > 1 and isinstance(args[1], ast.Constant):
                    found.add(args[1].value)
            # parse_error() returns (rule, message) tuples
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple) and node.value.elts:
                first = node.value.elts[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str) and path.name == "validate.py":
                    found.add(first.value)
    return found


def test_catalog_matches_the_code() -> None:
    in_code = _rules_in_source()
    assert len(in_code) > 40
    assert in_code - set(RULES) == set(), "rules reported but not documented"
    assert set(RULES) - in_code == set(), "rules documented but never reported"
