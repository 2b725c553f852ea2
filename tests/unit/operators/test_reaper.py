"""Unit tests of BedrockFineTuneReapOrphanedJobsOperator: botocore Stubber, a task instance whose
``get_task_states`` answers in the execution API's shape, no sockets."""

from __future__ import annotations

import datetime
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.stub import Stubber

from airflow_bedrock_ft.core.naming import identity_tags, job_identity
from airflow_bedrock_ft.core.reaper import TaskInstanceRef
from airflow_bedrock_ft.operators.reaper import (
    BedrockFineTuneReapOrphanedJobsOperator,
    SdkTaskStateLookup,
    _flag,
)

CREATED = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
ARN = "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/base/{}"


def _tag_list(task_id: str, map_index: int) -> list[dict[str, str]]:
    tags = identity_tags(job_identity("dag", task_id, "run1", map_index), content_digest="d" * 64, reap=True)
    return [{"key": k, "value": v} for k, v in tags.items()]


class FakeTi:
    """``get_task_states`` as the supervisor answers it: ``{run_id: {key: state}}``, mapped
    instances keyed ``<task_id>_<map_index>``."""

    def __init__(self, rows: dict[tuple[str, int], str]) -> None:
        self.rows = rows
        self.calls: list[dict[str, Any]] = []

    def get_task_states(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        out: dict[str, Any] = {}
        for (task_id, map_index), state in self.rows.items():
            if task_id in kwargs["task_ids"] and map_index == kwargs["map_index"]:
                key = task_id if map_index < 0 else f"{task_id}_{map_index}"
                out.setdefault("run1", {})[key] = state
        return out


def test_sdk_lookup_reads_mapped_and_unmapped_keys() -> None:
    ti = FakeTi({("tune", -1): "failed", ("tune", 2): "deferred", ("tune_2", -1): "success"})
    lookup = SdkTaskStateLookup(ti)  # type: ignore[arg-type]
    assert lookup.task_state(TaskInstanceRef("dag", "run1", "tune")).state == "failed"  # type: ignore[union-attr]
    assert lookup.task_state(TaskInstanceRef("dag", "run1", "tune", 2)).state == "deferred"  # type: ignore[union-attr]
    assert lookup.task_state(TaskInstanceRef("dag", "run1", "tune_2")).state == "success"  # type: ignore[union-attr]
    assert lookup.task_state(TaskInstanceRef("dag", "run1", "tune", 5)) is None
    assert lookup.task_state(TaskInstanceRef("dag", "other", "tune")) is None
    assert ti.calls[1] == {"dag_id": "dag", "task_ids": ["tune"], "run_ids": ["run1"], "map_index": 2}


@pytest.mark.parametrize(("value", "expected"), [(True, True), ("True", True), ("false", False), ("", False),
                                                 (False, False), ("1", True), ("off", False)])
def test_flag(value: Any, expected: bool) -> None:
    assert _flag(value, "stop") is expected


def test_flag_rejects_anything_else() -> None:
    with pytest.raises(ValueError, match="stop must be true or false, got 'maybe'"):
        _flag("maybe", "stop")


@pytest.mark.parametrize("stop", [False, "True"])
def test_execute_stops_only_the_ended_task_instances_job(stop: Any) -> None:
    client = boto3.client("bedrock", region_name="us-east-1")
    op = BedrockFineTuneReapOrphanedJobsOperator(task_id="reap", stop=stop, min_age="10m")
    summaries = [
        {"jobArn": ARN.format("a"), "jobName": "a", "status": "InProgress", "creationTime": CREATED,
         "baseModelArn": "arn:aws:bedrock:us-east-1::foundation-model/m"},
        {"jobArn": ARN.format("b"), "jobName": "b", "status": "InProgress", "creationTime": CREATED,
         "baseModelArn": "arn:aws:bedrock:us-east-1::foundation-model/m"},
    ]
    with Stubber(client) as stub:
        stub.add_response("list_model_customization_jobs", {"modelCustomizationJobSummaries": summaries},
                          {"statusEquals": "InProgress"})
        stub.add_response("list_tags_for_resource", {"tags": _tag_list("tune", 0)}, {"resourceARN": ARN.format("a")})
        if _flag(stop, "stop"):
            stub.add_response("list_tags_for_resource", {"tags": _tag_list("tune", 0)},
                              {"resourceARN": ARN.format("a")})
            stub.add_response("stop_model_customization_job", {}, {"jobIdentifier": ARN.format("a")})
        stub.add_response("list_tags_for_resource", {"tags": _tag_list("tune", 1)}, {"resourceARN": ARN.format("b")})
        hook = mock.Mock(client=client)
        with mock.patch.object(type(op), "hook", hook):
            result = op.execute({"ti": FakeTi({("tune", 0): "failed", ("tune", 1): "deferred"})})  # type: ignore[arg-type]
        stub.assert_no_pending_responses()
    assert [d["action"] for d in result] == ["stop", "keep"]
    assert result[0]["outcome"] == ("stop requested" if _flag(stop, "stop") else "dry-run")
    assert result[1]["outcome"] is None and "deferred" in result[1]["reason"]
