from __future__ import annotations

import re

from airflow_bedrock_ft.core.naming import job_identity, suffixed_job_name, suffixed_token
from airflow_bedrock_ft.core.request import service_model


def _shape(name: str):
    return service_model("bedrock").shape_for(name)


def _valid(shape_name: str, value: str) -> bool:
    shape = _shape(shape_name)
    meta = shape.metadata
    return meta["min"] <= len(value) <= meta["max"] and re.fullmatch(meta["pattern"], value) is not None


def test_same_run_same_identity_and_retry_does_not_change_it() -> None:
    a = job_identity("dag", "task", "manual__2026-11-28T00:00:00+00:00", -1)
    b = job_identity("dag", "task", "manual__2026-11-28T00:00:00+00:00", None)
    assert a == b


def test_each_part_of_the_identity_changes_the_names() -> None:
    base = job_identity("dag", "task", "run", -1)
    others = [
        job_identity("dag2", "task", "run", -1),
        job_identity("dag", "task2", "run", -1),
        job_identity("dag", "task", "run2", -1),
        job_identity("dag", "task", "run", 0),
    ]
    for other in others:
        assert other.job_name != base.job_name
        assert other.client_request_token != base.client_request_token
        assert other.custom_model_name != base.custom_model_name


def test_names_fit_the_api_patterns_even_for_hostile_ids() -> None:
    ids = [
        ("a" * 250, "b" * 250, "scheduled__2026-01-01T00:00:00+00:00", 12345),
        ("dag.with.dots", "group.task_id", "manual__x", -1),
        ("__weird__", "--", "++", 0),
        ("ünïcödé dag", "täsk", "r", 1),
    ]
    for dag_id, task_id, run_id, mi in ids:
        ident = job_identity(dag_id, task_id, run_id, mi)
        assert _valid("JobName", ident.job_name), ident.job_name
        assert _valid("CustomModelName", ident.custom_model_name), ident.custom_model_name
        assert _valid("IdempotencyToken", ident.client_request_token)


def test_truncated_readable_parts_still_differ_by_hash() -> None:
    long_dag = "x" * 100
    a = job_identity(long_dag, "task_a", "run")
    b = job_identity(long_dag, "task_b", "run")
    assert a.job_name != b.job_name


def test_suffixed_names_are_deterministic_and_valid() -> None:
    name = job_identity("d" * 80, "t", "r").job_name
    assert suffixed_job_name(name, 1) == suffixed_job_name(name, 1)
    assert suffixed_job_name(name, 1) != suffixed_job_name(name, 2)
    assert _valid("JobName", suffixed_job_name(name, 1))
    assert _valid("IdempotencyToken", suffixed_token("abc", 3))
