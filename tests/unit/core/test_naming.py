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


def test_namespace_is_not_confused_with_a_run_id_holding_a_slash() -> None:
    from airflow_bedrock_ft.core.naming import job_identity

    with_ns = job_identity("dag", "task", "X", -1, namespace="prod")
    slash_run = job_identity("dag", "task", "prod/X", -1)
    assert with_ns.digest != slash_run.digest
    assert with_ns.job_name != slash_run.job_name
    # No namespace and an empty namespace are the same identity; a namespace is another one.
    assert job_identity("d", "t", "r", namespace="").digest == job_identity("d", "t", "r").digest


def _req(**over):
    base = {
        "jobName": "j",
        "clientRequestToken": "t",
        "customModelName": "m",
        "roleArn": "arn:aws:iam::123456789012:role/r",
        "baseModelIdentifier": "meta.llama3-1-8b-instruct-v1:0:128k",
        "trainingDataConfig": {"s3Uri": "s3://b/train.jsonl"},
        "outputDataConfig": {"s3Uri": "s3://b/out/"},
        "hyperParameters": {"epochCount": "2"},
        "jobTags": [{"key": "team", "value": "ml"}],
    }
    base.update(over)
    return base


def test_request_digest_covers_content_but_not_name_token_or_own_tags() -> None:
    from airflow_bedrock_ft.core.naming import TAG_RUN_ID, request_digest

    d = request_digest(_req())
    assert request_digest(_req(jobName="other", clientRequestToken="x")) == d
    own = [{"key": TAG_RUN_ID, "value": "r"}, {"key": "team", "value": "ml"}]
    assert request_digest(_req(jobTags=own)) == d
    assert request_digest(_req(hyperParameters={"epochCount": "5"})) != d
    assert request_digest(_req(trainingDataConfig={"s3Uri": "s3://b/train2.jsonl"})) != d
    assert request_digest(_req(jobTags=[{"key": "team", "value": "ops"}])) != d
    assert request_digest(_req(customModelName="m2")) != d


def test_request_token_changes_with_either_part() -> None:
    from airflow_bedrock_ft.core.naming import request_token

    assert request_token("a", "b") == request_token("a", "b")
    assert len({request_token("a", "b"), request_token("a", "c"), request_token("c", "b")}) == 3
    assert _valid("IdempotencyToken", request_token("a", "b"))


def test_identity_tags_round_trip_and_fit_the_tag_shapes() -> None:
    from airflow_bedrock_ft.core.naming import (
        identity_from_tags,
        identity_tags,
        job_identity,
    )

    for run_id in ["manual__2026-12-01T00:00:00+00:00", "odd #run, id!", "é" * 40, "x" * 600]:
        ident = job_identity("dag", "task", run_id, 3, namespace="prod")
        tags = identity_tags(ident, content_digest="c" * 64, reap=True)
        for key, value in tags.items():
            assert _valid("TagKey", key), key
            assert _valid("TagValue", value), value
        back = identity_from_tags([{"key": k, "value": v} for k, v in tags.items()])
        assert back is not None and back.reap and back.request_digest == "c" * 64
        assert back.dag_id == "dag" and back.task_id == "task" and back.map_index == 3
        assert back.namespace == "prod"
        if len(run_id) < 100:
            assert back.run_id == run_id
            assert back.complete and back.matches_digest()
        else:  # too long even encoded: kept as a hash, so never claimed to be known
            assert back.run_id is None and not back.complete and not back.matches_digest()
    assert identity_from_tags({"team": "ml"}) is None


def test_tampered_identity_tags_do_not_match_their_digest() -> None:
    from airflow_bedrock_ft.core.naming import TAG_RUN_ID, identity_from_tags, identity_tags, job_identity

    tags = identity_tags(job_identity("d", "t", "r"), content_digest="c", reap=True)
    tags[TAG_RUN_ID] = "other"
    back = identity_from_tags(tags)
    assert back is not None and not back.matches_digest()
