"""The reaper's decision table: which jobs it stops, which it keeps, and why."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from airflow_bedrock_ft.core.naming import (
    TAG_DAG_ID,
    TAG_IDENTITY,
    TAG_MAP_INDEX,
    TAG_NAMESPACE,
    TAG_RUN_ID,
    identity_tags,
    job_identity,
)
from airflow_bedrock_ft.core.reaper import (
    DEFAULT_MIN_AGE,
    ENDED_STATES,
    KEEP,
    LIVE_STATES,
    STOP,
    TaskInstanceRef,
    TaskInstanceState,
    decide,
    parse_duration,
    summarize,
)

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc)
OLD = NOW - datetime.timedelta(hours=2)
RUN = "scheduled__2026-12-01T00:00:00+00:00"


class Table:
    """A lookup that answers from a dict and records what it was asked."""

    def __init__(self, states: dict[TaskInstanceRef, TaskInstanceState | Exception]) -> None:
        self.states = states
        self.asked: list[TaskInstanceRef] = []

    def task_state(self, ti: TaskInstanceRef) -> TaskInstanceState | None:
        self.asked.append(ti)
        found = self.states.get(ti)
        if isinstance(found, Exception):
            raise found
        return found


def _job(created: datetime.datetime | None = OLD, status: str = "InProgress") -> dict[str, Any]:
    job: dict[str, Any] = {"jobArn": "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/j1",
                           "jobName": "j1", "status": status}
    if created is not None:
        job["creationTime"] = created
    return job


def _tags(dag_id: str = "tune", task_id: str = "fine_tune", run_id: str = RUN, map_index: int = -1,
          namespace: str | None = None, reap: bool = True) -> dict[str, str]:
    identity = job_identity(dag_id, task_id, run_id, map_index, namespace=namespace)
    return identity_tags(identity, content_digest="c" * 64, reap=reap)


REF = TaskInstanceRef("tune", RUN, "fine_tune", -1)


def _decide(tags: Any, states: dict[TaskInstanceRef, Any], **kwargs: Any) -> tuple[Any, Table]:
    lookup = Table(states)
    kwargs.setdefault("now", NOW)
    return decide(kwargs.pop("job", _job()), tags, lookup, **kwargs), lookup


@pytest.mark.parametrize("state", sorted(ENDED_STATES))
def test_an_ended_task_instance_gets_its_job_stopped(state: str) -> None:
    decision, lookup = _decide(_tags(), {REF: TaskInstanceState(state)})
    assert decision.action == STOP
    assert decision.ti_state == state
    assert str(REF) in decision.reason and "nobody else will stop" in decision.reason
    assert lookup.asked == [REF]


@pytest.mark.parametrize("state", sorted(LIVE_STATES))
def test_a_live_task_instance_keeps_its_job(state: str) -> None:
    decision, _ = _decide(_tags(), {REF: TaskInstanceState(state)})
    assert decision.action == KEEP
    assert state in decision.reason and LIVE_STATES[state] in decision.reason


def test_every_airflow_task_instance_state_is_in_the_table() -> None:
    """The table restates Airflow's states (the core imports no Airflow): hold them in sync."""
    from airflow.utils.state import TaskInstanceState as AirflowState

    known = set(ENDED_STATES) | set(LIVE_STATES)
    assert {s.value for s in AirflowState} == known
    assert not set(ENDED_STATES) & set(LIVE_STATES)


@pytest.mark.parametrize("state", [None, "none"])
def test_a_task_instance_without_state_keeps_its_job(state: str | None) -> None:
    decision, _ = _decide(_tags(), {REF: TaskInstanceState(state)})
    assert decision.action == KEEP
    assert "no state" in decision.reason


def test_an_unknown_state_keeps_the_job() -> None:
    decision, _ = _decide(_tags(), {REF: TaskInstanceState("levitating")})
    assert decision.action == KEEP
    assert "'levitating'" in decision.reason


def test_a_task_instance_airflow_cannot_find_keeps_its_job() -> None:
    decision, _ = _decide(_tags(), {})
    assert decision.action == KEEP
    assert "has no task instance" in decision.reason


@pytest.mark.parametrize("error", [RuntimeError("HTTP 503"), ConnectionError("refused"), TimeoutError()])
def test_an_airflow_error_keeps_the_job(error: Exception) -> None:
    decision, _ = _decide(_tags(), {REF: error})
    assert decision.action == KEEP
    assert "could not say" in decision.reason and type(error).__name__ in decision.reason


def test_unreadable_tags_keep_the_job() -> None:
    error = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "ListTagsForResource")
    decision, lookup = _decide(error, {REF: TaskInstanceState("failed")})
    assert decision.action == KEEP
    assert "AccessDeniedException" in decision.reason
    assert lookup.asked == []
    decision, _ = _decide(EndpointConnectionError(endpoint_url="http://x"), {REF: TaskInstanceState("failed")})
    assert decision.action == KEEP


def test_foreign_jobs_are_kept() -> None:
    decision, lookup = _decide({"team": "ml", "cost-center": "42"}, {REF: TaskInstanceState("failed")})
    assert decision.action == KEEP
    assert "not created by this plugin" in decision.reason
    assert lookup.asked == []
    decision, _ = _decide({}, {REF: TaskInstanceState("failed")})
    assert decision.action == KEEP


@pytest.mark.parametrize("drop", [TAG_DAG_ID, TAG_RUN_ID, TAG_MAP_INDEX])
def test_missing_identity_tags_keep_the_job(drop: str) -> None:
    tags = _tags()
    del tags[drop]
    decision, lookup = _decide(tags, {REF: TaskInstanceState("failed")})
    assert decision.action == KEEP
    assert drop in decision.reason
    assert lookup.asked == []


@pytest.mark.parametrize("bad", ["b64:!!!not-base64", "sha256:" + "0" * 64, "b64:" + "//79"])
def test_undecodable_tags_keep_the_job(bad: str) -> None:
    tags = _tags()
    tags[TAG_RUN_ID] = bad
    decision, lookup = _decide(tags, {REF: TaskInstanceState("failed")})
    assert decision.action == KEEP
    assert "cannot be decoded" in decision.reason
    assert lookup.asked == []


def test_tags_that_do_not_match_their_digest_keep_the_job() -> None:
    tags = _tags()
    tags[TAG_IDENTITY] = "0" * 64
    decision, _ = _decide(tags, {REF: TaskInstanceState("failed")})
    assert decision.action == KEEP
    assert "do not hash" in decision.reason
    # An edited run id with the old digest is the same case.
    tags = _tags()
    tags[TAG_RUN_ID] = "another-run"
    decision, _ = _decide(tags, {TaskInstanceRef("tune", "another-run", "fine_tune"): TaskInstanceState("failed")})
    assert decision.action == KEEP


def test_encoded_tags_are_decoded() -> None:
    run_id = "manual__2026-12-01T00:00:00+00:00 <weird> run ✓"
    tags = _tags(run_id=run_id)
    assert tags[TAG_RUN_ID].startswith("b64:")
    ref = TaskInstanceRef("tune", run_id, "fine_tune")
    decision, lookup = _decide(tags, {ref: TaskInstanceState("failed")})
    assert decision.action == STOP
    assert lookup.asked == [ref]


def test_mapped_task_instances_are_looked_up_by_map_index() -> None:
    ref = TaskInstanceRef("tune", RUN, "fine_tune", 3)
    decision, lookup = _decide(
        _tags(map_index=3), {ref: TaskInstanceState("failed"), REF: TaskInstanceState("running")}
    )
    assert decision.action == STOP
    assert lookup.asked == [ref]
    assert decision.task_instance == "tune/" + RUN + "/fine_tune[3]"


def test_namespaces_must_match_exactly() -> None:
    states = {REF: TaskInstanceState("failed")}
    decision, lookup = _decide(_tags(namespace="prod"), states)
    assert decision.action == KEEP and "namespace 'prod'" in decision.reason
    assert lookup.asked == []
    decision, _ = _decide(_tags(), states, namespace="prod")
    assert decision.action == KEEP and "another deployment" in decision.reason
    decision, _ = _decide(_tags(namespace="staging"), states, namespace="prod")
    assert decision.action == KEEP
    decision, _ = _decide(_tags(namespace="prod"), states, namespace="prod")
    assert decision.action == STOP


def test_a_namespace_tag_that_cannot_be_read_is_not_taken_for_none() -> None:
    tags = _tags(namespace="prod")
    tags[TAG_NAMESPACE] = "sha256:" + "1" * 64
    decision, _ = _decide(tags, {REF: TaskInstanceState("failed")})
    assert decision.action == KEEP


def test_jobs_not_owned_by_their_task_are_kept() -> None:
    decision, lookup = _decide(_tags(reap=False), {REF: TaskInstanceState("failed")})
    assert decision.action == KEEP
    assert "reap=false" in decision.reason
    assert lookup.asked == []


@pytest.mark.parametrize(
    ("age", "action"),
    [(0, KEEP), (DEFAULT_MIN_AGE - 1, KEEP), (DEFAULT_MIN_AGE, STOP), (DEFAULT_MIN_AGE * 10, STOP)],
)
def test_young_jobs_are_kept_for_the_grace_period(age: float, action: str) -> None:
    job = _job(created=NOW - datetime.timedelta(seconds=age))
    decision, lookup = _decide(_tags(), {REF: TaskInstanceState("failed")}, job=job)
    assert decision.action == action
    if action == KEEP:
        assert "grace period" in decision.reason
        assert lookup.asked == []


def test_the_grace_period_is_configurable() -> None:
    job = _job(created=NOW - datetime.timedelta(seconds=30))
    decision, _ = _decide(_tags(), {REF: TaskInstanceState("failed")}, job=job, min_age=10)
    assert decision.action == STOP
    decision, _ = _decide(_tags(), {REF: TaskInstanceState("failed")}, job=job, min_age=60)
    assert decision.action == KEEP


def test_a_job_without_creation_time_is_kept() -> None:
    decision, _ = _decide(_tags(), {REF: TaskInstanceState("failed")}, job=_job(created=None))
    assert decision.action == KEEP and "creationTime" in decision.reason


@pytest.mark.parametrize("status", ["Stopping", "Stopped", "Completed", "Failed"])
def test_jobs_that_are_not_in_progress_are_kept(status: str) -> None:
    decision, _ = _decide(_tags(), {REF: TaskInstanceState("failed")}, job=_job(status=status))
    assert decision.action == KEEP and status in decision.reason


def test_a_job_created_after_its_task_instance_ended_is_kept() -> None:
    ended = OLD - datetime.timedelta(hours=1)
    decision, _ = _decide(_tags(), {REF: TaskInstanceState("success", end_date=ended)})
    assert decision.action == KEEP and "after task instance" in decision.reason
    # Within the clock-skew allowance, or ended after the job was created: orphaned.
    for end in (OLD - datetime.timedelta(seconds=30), OLD + datetime.timedelta(minutes=5)):
        decision, _ = _decide(_tags(), {REF: TaskInstanceState("failed", end_date=end)})
        assert decision.action == STOP, end
        assert end.isoformat() in decision.reason


def test_creation_time_as_text_is_read() -> None:
    decision, _ = _decide(_tags(), {REF: TaskInstanceState("failed")}, job=_job(created=None) | {
        "creationTime": "2026-12-01T09:00:00Z"})
    assert decision.action == STOP
    assert decision.created == "2026-12-01T09:00:00+00:00"


def test_decisions_are_json_primitives_with_one_line_each() -> None:
    import json

    decision, _ = _decide(_tags(), {REF: TaskInstanceState("failed")})
    assert json.loads(json.dumps(decision.to_dict())) == decision.to_dict()
    assert decision.line().startswith("STOP arn:aws:bedrock:")
    assert "1 in-progress job(s)" in summarize([decision])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("600", 600), ("90s", 90), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1.5m", 90), (0, 0),
     (datetime.timedelta(minutes=3), 180), (12.5, 12.5)],
)
def test_parse_duration(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["ten minutes", "10 m", "-5", "5w", "", True, "\uff11\uff10m", -1])
def test_parse_duration_rejects_anything_else(bad: Any) -> None:
    with pytest.raises(ValueError, match="min_age"):
        parse_duration(bad)
