"""Unit tests of BedrockFineTuneCreateJobOperator with a Mock(spec=hook) over an in-memory job table."""

from __future__ import annotations

import datetime
import itertools
import json
import os
import re
import subprocess
import sys
from typing import Any
from unittest import mock

import pytest
from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred
from botocore.exceptions import ClientError, EndpointConnectionError

from airflow_bedrock_ft.core.naming import job_identity, suffixed_job_name
from airflow_bedrock_ft.exceptions import (
    JobFailedError,
    JobFailedNotRetriableError,
    JobNameConflictError,
    JobStoppedOnTimeoutError,
    JobTimeoutError,
    TriggerEventError,
)
from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook
from airflow_bedrock_ft.links import JOB_ARN_XCOM_KEY, BedrockFineTuneJobLink, console_url
from airflow_bedrock_ft.operators.bedrock_ft import BedrockFineTuneCreateJobOperator
from airflow_bedrock_ft.triggers.bedrock_ft import BedrockFineTuneJobCompletedTrigger

ROLE = "arn:aws:iam::123456789012:role/BedrockFT"
BASE = "amazon.nova-micro-v1:0:128k"
RESULT_KEYS = {
    "job_arn",
    "job_name",
    "status",
    "custom_model_arn",
    "custom_model_name",
    "output_s3_uri",
    "training_loss",
    "validation_loss",
}
FAILURE = "Unable to parse Amazon S3 file: train.jsonl. Data files must conform to JSONL format."


def _client_error(
    code: str, status: int = 400, message: str = "The provided job name is currently in use."
) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "CreateModelCustomizationJob",
    )


class FakeBedrock:
    """An in-memory job table behind a Mock(spec=BedrockFineTuneHook)."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []
        self.stopped: list[str] = []
        self._ids = itertools.count(1)
        self.hook = mock.Mock(spec=BedrockFineTuneHook)
        self.hook.find_job_by_name.side_effect = self.find_job_by_name
        self.hook.create_job.side_effect = self.create_job
        self.hook.get_job.side_effect = self.get_job
        self.hook.stop_job.side_effect = self.stop_job
        self.hook.get_tags.side_effect = self.get_tags
        self.tags: dict[str, dict[str, str]] = {}

    def add(self, name: str, token: str, status: str = "InProgress", **extra: Any) -> dict[str, Any]:
        arn = f"arn:aws:bedrock:us-east-1:123456789012:model-customization-job/{BASE}/{next(self._ids):012d}"
        job = {
            "jobArn": arn,
            "jobName": name,
            "clientRequestToken": token,
            "status": status,
            "outputModelName": f"model-{name}",
            "outputDataConfig": {"s3Uri": "s3://bucket-a/output/"},
        }
        job.update(extra)
        self.jobs[name] = job
        return job

    def find_job_by_name(self, name: str) -> dict[str, Any] | None:
        job = self.jobs.get(name)
        return dict(job) if job else None

    def create_job(self, request: dict[str, Any]) -> str:
        if request["jobName"] in self.jobs:
            raise _client_error("ValidationException")
        self.created.append(request)
        arn = self.add(request["jobName"], request["clientRequestToken"])["jobArn"]
        self.tags[arn] = {t["key"]: t["value"] for t in request.get("jobTags", [])}
        return arn

    def get_tags(self, arn: str) -> dict[str, str]:
        return dict(self.tags.get(arn, {}))

    def get_job(self, identifier: str) -> dict[str, Any]:
        for job in self.jobs.values():
            if identifier in (job["jobArn"], job["jobName"]):
                return dict(job)
        raise _client_error("ResourceNotFoundException", 404, "not found")

    def stop_job(self, identifier: str) -> bool:
        job = self.get_job(identifier)
        if job["status"] != "InProgress":
            return False
        self.stopped.append(identifier)
        self.jobs[job["jobName"]]["status"] = "Stopping"
        return True


@pytest.fixture
def bedrock() -> FakeBedrock:
    return FakeBedrock()


@pytest.fixture
def context() -> dict[str, Any]:
    ti = mock.Mock(dag_id="tune_dag", task_id="tune", run_id="scheduled__2026-01-01", map_index=-1)
    ti.xcom_pull.side_effect = lambda task_ids=None, key=None, map_indexes=None: next(
        (c.kwargs["value"] for c in ti.xcom_push.call_args_list if c.kwargs["key"] == key), None
    )
    return {"ti": ti}


def _earlier_try(
    bedrock: FakeBedrock, context: dict[str, Any], status: str = "InProgress", **extra: Any
) -> dict[str, Any]:
    """The job an earlier try of this run created for the default request, now in ``status``."""
    _operator(bedrock, wait_for_completion=False).execute(context)  # type: ignore[arg-type]
    (request,) = bedrock.created
    bedrock.created.clear()
    job = bedrock.jobs[request["jobName"]]
    job.update(status=status, **extra)
    return job


def _identity(context: dict[str, Any]) -> Any:
    ti = context["ti"]
    return job_identity(ti.dag_id, ti.task_id, ti.run_id, ti.map_index)


def _operator(bedrock: FakeBedrock | None = None, **kwargs: Any) -> BedrockFineTuneCreateJobOperator:
    args: dict[str, Any] = dict(
        task_id="tune",
        base_model=BASE,
        training_data="s3://bucket-a/train.jsonl",
        output_s3_uri="s3://bucket-a/output/",
        role_arn=ROLE,
        deferrable=True,
    )
    args.update(kwargs)
    op = BedrockFineTuneCreateJobOperator(**args)
    if bedrock is not None:
        op.hook = bedrock.hook  # type: ignore[misc]
    return op


def _deferred(op: BedrockFineTuneCreateJobOperator, context: dict[str, Any]) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)  # type: ignore[arg-type]
    return info.value


# --- validation before any call -----------------------------------------------------------------


def test_invalid_request_fails_before_any_api_call_listing_all_problems(context: dict[str, Any]) -> None:
    hook = mock.Mock(spec=BedrockFineTuneHook)
    op = _operator(
        role_arn="not-an-arn",
        training_data="http://example.com/train.jsonl",
        hyperparameters={"epochCount": 99},
    )
    op.hook = hook  # type: ignore[misc]
    with pytest.raises(AirflowFailException) as info:
        op.execute(context)  # type: ignore[arg-type]
    text = str(info.value)
    for path in ("roleArn", "trainingDataConfig.s3Uri", "hyperParameters.epochCount"):
        assert path in text
    assert "not-an-arn" in text
    assert hook.mock_calls == []


def test_constructor_rejects_bad_knobs() -> None:
    with pytest.raises(ValueError, match="on_name_conflict"):
        _operator(on_name_conflict="rename")
    with pytest.raises(ValueError, match="poll_interval"):
        _operator(poll_interval=0)
    with pytest.raises(ValueError, match="timeout"):
        _operator(timeout=datetime.timedelta(0))


def test_all_fields_and_conveniences_reach_the_request(bedrock: FakeBedrock, context: dict[str, Any]) -> None:
    op = _operator(
        bedrock,
        validation_data=["s3://bucket-a/val.jsonl"],
        hyperparameters={"epochCount": 2, "learningRate": 0.00001},
        job_tags={"team": "ml"},
        custom_model_tags={"stage": "dev"},
        custom_model_kms_key_id="alias/key",
        vpc_config={"subnet_ids": ["subnet-1"], "security_group_ids": ["sg-1"]},
        wait_for_completion=False,
    )
    op.execute(context)  # type: ignore[arg-type]
    (request,) = bedrock.created
    identity = _identity(context)
    assert request["jobName"] == identity.job_name
    from airflow_bedrock_ft.core.naming import identity_from_tags, request_digest, request_token

    assert request["clientRequestToken"] == request_token(identity.digest, request_digest(request))
    tagged = identity_from_tags(request["jobTags"])
    assert tagged is not None and tagged.matches_digest() and not tagged.reap  # submit-only
    assert (tagged.dag_id, tagged.task_id, tagged.run_id) == ("tune_dag", "tune", "scheduled__2026-01-01")
    assert request["customModelName"] == identity.custom_model_name
    assert request["customizationType"] == "FINE_TUNING"
    assert request["hyperParameters"] == {"epochCount": "2", "learningRate": "1e-05"}
    assert [t for t in request["jobTags"] if not t["key"].startswith("airflow-bedrock-ft:")] == [{"key": "team", "value": "ml"}]
    assert request["vpcConfig"] == {"subnetIds": ["subnet-1"], "securityGroupIds": ["sg-1"]}
    assert request["validationDataConfig"] == {"validators": [{"s3Uri": "s3://bucket-a/val.jsonl"}]}


@pytest.mark.parametrize("max_length", [1000, "1000"])
def test_distillation_convenience(bedrock: FakeBedrock, context: dict[str, Any], max_length: Any) -> None:
    """The response length may come from a template ("{{ params.max_response_length }}" renders "1000")."""
    op = _operator(
        bedrock,
        teacher_model="amazon.nova-pro-v1:0",
        max_response_length_for_inference=max_length,
        wait_for_completion=False,
    )
    op.execute(context)  # type: ignore[arg-type]
    (request,) = bedrock.created
    assert request["customizationType"] == "DISTILLATION"
    teacher = request["customizationConfig"]["distillationConfig"]["teacherModelConfig"]
    assert teacher == {
        "teacherModelIdentifier": "amazon.nova-pro-v1:0",
        "maxResponseLengthForInference": 1000,
    }


def test_rft_convenience(bedrock: FakeBedrock, context: dict[str, Any]) -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:grader"
    op = _operator(
        bedrock,
        base_model="amazon.nova-2-lite-v1:0:256k",
        rft_lambda_arn=arn,
        rft_hyperparameters={"epoch_count": 1},
        wait_for_completion=False,
    )
    op.execute(context)  # type: ignore[arg-type]
    (request,) = bedrock.created
    assert request["customizationType"] == "REINFORCEMENT_FINE_TUNING"
    assert request["customizationConfig"]["rftConfig"]["graderConfig"]["lambdaGrader"]["lambdaArn"] == arn
    assert request["customizationConfig"]["rftConfig"]["hyperParameters"] == {"epochCount": 1}


def test_every_constructor_argument_is_templated() -> None:
    op = _operator()
    for name in (
        "base_model",
        "training_data",
        "output_s3_uri",
        "role_arn",
        "custom_model_name",
        "job_name",
        "customization_type",
        "validation_data",
        "hyperparameters",
        "job_tags",
        "custom_model_tags",
        "custom_model_kms_key_id",
        "vpc_config",
        "customization_config",
        "teacher_model",
        "max_response_length_for_inference",
        "rft_lambda_arn",
        "rft_hyperparameters",
        "client_request_token",
    ):
        assert name in op.template_fields


# --- deferral -----------------------------------------------------------------------------------


def test_defers_to_the_trigger_with_json_kwargs(bedrock: FakeBedrock, context: dict[str, Any]) -> None:
    op = _operator(bedrock, poll_interval=30, aws_conn_id="conn", region_name="us-east-1")
    deferred = _deferred(op, context)
    assert isinstance(deferred.trigger, BedrockFineTuneJobCompletedTrigger)
    assert deferred.method_name == "execute_complete"
    assert deferred.timeout is None
    _, kwargs = deferred.trigger.serialize()
    job = bedrock.jobs[_identity(context).job_name]
    assert kwargs["job_arn"] == job["jobArn"]
    assert kwargs["poll_interval"] == 30.0
    assert kwargs["max_attempts"] is None
    assert kwargs["timeout_at"] is None
    assert kwargs["aws_conn_id"] == "conn"
    assert json.loads(json.dumps(kwargs)) == kwargs
    context["ti"].xcom_push.assert_any_call(key=JOB_ARN_XCOM_KEY, value=job["jobArn"])


def test_timeout_sets_trigger_deadline_and_hard_defer_timeout(
    bedrock: FakeBedrock, context: dict[str, Any]
) -> None:
    op = _operator(bedrock, timeout=datetime.timedelta(hours=2))
    with mock.patch("airflow_bedrock_ft.operators.bedrock_ft.time.time", return_value=1000.0):
        deferred = _deferred(op, context)
    assert deferred.trigger.timeout_at == 1000.0 + 7200
    assert deferred.timeout is not None and deferred.timeout > datetime.timedelta(hours=2)


@pytest.mark.parametrize(("setting", "expected"), [(None, "True"), ("False", "False"), ("True", "True")])
def test_default_deferrable_follows_config(setting: str | None, expected: str) -> None:
    """Deferrable by default, even though Airflow ships ``[operators] default_deferrable = False``;
    ``[bedrock_ft] default_deferrable`` opts out. Read when the module is imported."""
    code = (
        "import inspect\n"
        "from airflow_bedrock_ft.operators.bedrock_ft import BedrockFineTuneCreateJobOperator as Op\n"
        "from airflow_bedrock_ft.sensors.bedrock_ft import BedrockFineTuneJobCompletedSensor as S\n"
        "print(inspect.signature(Op.__init__).parameters['deferrable'].default,"
        " inspect.signature(S.__init__).parameters['deferrable'].default)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env["AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"] = "False"  # Airflow's own default
    if setting is not None:
        env["AIRFLOW__BEDROCK_FT__DEFAULT_DEFERRABLE"] = setting
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == [expected, expected], done.stderr


# --- idempotency --------------------------------------------------------------------------------


def test_execute_twice_after_worker_crash_creates_one_job(
    bedrock: FakeBedrock, context: dict[str, Any]
) -> None:
    """The Amazon provider creates '<name>-<timestamp>' or fails while the first job trains unwatched."""
    first = _deferred(_operator(bedrock), context)
    # The worker died; the retry runs in a fresh process with a fresh operator instance.
    second = _deferred(_operator(bedrock), context)
    assert len(bedrock.created) == 1
    assert len(bedrock.jobs) == 1
    assert first.trigger.job_arn == second.trigger.job_arn


def test_response_lost_after_create_is_reattached_on_retry(
    bedrock: FakeBedrock, context: dict[str, Any]
) -> None:
    """The job was created but the connection dropped before the response arrived."""
    real_create = bedrock.create_job

    def create_then_drop(request: dict[str, Any]) -> str:
        real_create(request)
        raise EndpointConnectionError(endpoint_url="http://bedrock")

    bedrock.hook.create_job.side_effect = create_then_drop
    with pytest.raises(EndpointConnectionError):
        _operator(bedrock).execute(context)  # type: ignore[arg-type]
    bedrock.hook.create_job.side_effect = bedrock.create_job
    deferred = _deferred(_operator(bedrock), context)
    assert len(bedrock.jobs) == 1
    assert deferred.trigger.job_arn == next(iter(bedrock.jobs.values()))["jobArn"]


def test_reattached_completed_job_returns_result_without_waiting(
    bedrock: FakeBedrock, context: dict[str, Any]
) -> None:
    _earlier_try(
        bedrock,
        context,
        "Completed",
        outputModelArn="arn:aws:bedrock:us-east-1:123456789012:custom-model/x/1",
        trainingMetrics={"trainingLoss": 0.1},
    )
    result = _operator(bedrock).execute(context)  # type: ignore[arg-type]
    assert set(result) == RESULT_KEYS
    assert result["status"] == "Completed"
    assert result["training_loss"] == 0.1
    assert bedrock.created == []


def test_name_taken_by_another_job_is_a_clear_conflict(bedrock: FakeBedrock, context: dict[str, Any]) -> None:
    other = bedrock.add("shared-name", "someone-elses-token")
    with pytest.raises(JobNameConflictError) as info:
        _operator(bedrock, job_name="shared-name").execute(context)  # type: ignore[arg-type]
    assert other["jobArn"] in str(info.value)
    assert "on_name_conflict='suffix'" in str(info.value)
    assert bedrock.created == []


def test_name_conflict_suffix_is_deterministic(bedrock: FakeBedrock, context: dict[str, Any]) -> None:
    bedrock.add("shared-name", "someone-elses-token")
    first = _deferred(_operator(bedrock, job_name="shared-name", on_name_conflict="suffix"), context)
    second = _deferred(_operator(bedrock, job_name="shared-name", on_name_conflict="suffix"), context)
    assert [r["jobName"] for r in bedrock.created] == [suffixed_job_name("shared-name", 1)]
    assert first.trigger.job_arn == second.trigger.job_arn


def test_create_name_in_use_race_is_decided_by_error_code(
    bedrock: FakeBedrock, context: dict[str, Any]
) -> None:
    """Another try created the job between our lookup and our create: re-attach, by code not text."""
    identity = _identity(context)

    def create_races(request: dict[str, Any]) -> str:
        bedrock.add(request["jobName"], request["clientRequestToken"])
        raise _client_error("ConflictException", message="something worded differently")

    bedrock.hook.create_job.side_effect = create_races
    bedrock.hook.find_job_by_name.side_effect = lambda name: (
        bedrock.find_job_by_name(name) if bedrock.jobs else None
    )
    deferred = _deferred(_operator(bedrock), context)
    assert deferred.trigger.job_arn == bedrock.jobs[identity.job_name]["jobArn"]


def test_create_validation_error_not_about_the_name_fails_without_retry(
    bedrock: FakeBedrock, context: dict[str, Any]
) -> None:
    bedrock.hook.create_job.side_effect = _client_error(
        "ValidationException", message="Role cannot be assumed"
    )
    with pytest.raises(AirflowFailException, match="Role cannot be assumed"):
        _operator(bedrock).execute(context)  # type: ignore[arg-type]


RETRIABLE = "Encountered an unexpected error when processing the request, please try again"


def test_retry_after_a_retriable_failure_submits_a_new_job(
    bedrock: FakeBedrock, context: dict[str, Any]
) -> None:
    identity = _identity(context)
    _earlier_try(bedrock, context, "Failed", failureMessage=RETRIABLE)
    first = _deferred(_operator(bedrock), context)
    second = _deferred(_operator(bedrock), context)
    assert [r["jobName"] for r in bedrock.created] == [suffixed_job_name(identity.job_name, 1)]
    assert first.trigger.job_arn == second.trigger.job_arn


@pytest.mark.parametrize("message", [FAILURE, "Something never seen before", None])
def test_a_failure_a_retry_cannot_fix_is_re_reported_without_retries(
    message: str | None, bedrock: FakeBedrock, context: dict[str, Any]
) -> None:
    _earlier_try(bedrock, context, "Failed", failureMessage=message)
    with pytest.raises(JobFailedNotRetriableError) as info:
        _operator(bedrock).execute(context)  # type: ignore[arg-type]
    assert isinstance(info.value, AirflowFailException)
    if message:
        assert message in str(info.value)
    assert "new DAG run" in str(info.value)
    assert bedrock.created == []


def test_resubmit_failed_always_resubmits_even_a_data_failure(
    bedrock: FakeBedrock, context: dict[str, Any]
) -> None:
    _earlier_try(bedrock, context, "Failed", failureMessage=FAILURE)
    _deferred(_operator(bedrock, resubmit_failed="always"), context)
    assert len(bedrock.created) == 1


@pytest.mark.parametrize("status", ["Stopped", "Stopping"])
def test_a_stopped_job_is_re_reported_not_resubmitted(
    status: str, bedrock: FakeBedrock, context: dict[str, Any]
) -> None:
    """Whoever stopped it (a timeout, on_kill, the console): a retry must not train again."""
    job = _earlier_try(bedrock, context, status)
    with pytest.raises(JobFailedNotRetriableError) as info:
        _operator(bedrock).execute(context)  # type: ignore[arg-type]
    text = str(info.value)
    assert job["jobArn"] in text and status in text
    assert "resubmit_stopped=True" in text and "new DAG run" in text
    assert bedrock.created == []
    # Opting in trains again, under a derived name.
    _deferred(_operator(bedrock, resubmit_stopped=True), context)
    assert [r["jobName"] for r in bedrock.created] == [suffixed_job_name(job["jobName"], 1)]


def test_resubmit_failed_off_reports_the_old_failure(bedrock: FakeBedrock, context: dict[str, Any]) -> None:
    _earlier_try(bedrock, context, "Failed", failureMessage=RETRIABLE)
    with pytest.raises(JobFailedNotRetriableError) as info:
        _operator(bedrock, resubmit_failed=False).execute(context)  # type: ignore[arg-type]
    assert RETRIABLE in str(info.value)
    assert bedrock.created == []


def test_failure_seen_by_the_wait_is_retried_only_when_retriable(context: dict[str, Any]) -> None:
    op = _operator()
    with pytest.raises(JobFailedError) as retriable:
        op.execute_complete(context, _event("error", "failed", job_status="Failed", failure_message=RETRIABLE))  # type: ignore[arg-type]
    assert not isinstance(retriable.value, AirflowFailException)
    with pytest.raises(JobFailedNotRetriableError):
        op.execute_complete(context, _event("error", "failed", job_status="Failed", failure_message=FAILURE))  # type: ignore[arg-type]
    with pytest.raises(JobFailedNotRetriableError):
        op.execute_complete(context, _event("error", "stopped", job_status="Stopped"))  # type: ignore[arg-type]


# --- changed requests ---------------------------------------------------------------------------


def test_a_changed_request_never_re_attaches_to_the_old_job(
    bedrock: FakeBedrock, context: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Cleared and rerun with new data and epochCount 2 -> 5: the old job must not be reported."""
    old = _earlier_try(bedrock, context, "Completed", outputModelArn="arn:old-model")
    changed = _operator(
        bedrock, training_data="s3://bucket-a/train-v2.jsonl", hyperparameters={"epochCount": 5}
    )
    deferred = _deferred(changed, context)
    assert deferred.trigger.job_arn != old["jobArn"]
    (new_request,) = bedrock.created
    assert new_request["jobName"] == suffixed_job_name(old["jobName"], 1)
    assert new_request["hyperParameters"]["epochCount"] == "5"
    log = capsys.readouterr().out
    assert "different request" in log and "epochCount" in log
    # The same changed request again re-attaches to the new job; the original request to the old one.
    again = _deferred(
        _operator(bedrock, training_data="s3://bucket-a/train-v2.jsonl", hyperparameters={"epochCount": 5}),
        context,
    )
    assert again.trigger.job_arn == deferred.trigger.job_arn
    assert _operator(bedrock).execute(context)["custom_model_arn"] == "arn:old-model"  # type: ignore[arg-type]
    assert len(bedrock.created) == 1


def test_a_changed_request_fails_when_asked_to(bedrock: FakeBedrock, context: dict[str, Any]) -> None:
    _earlier_try(bedrock, context)
    with pytest.raises(AirflowFailException, match="different request") as info:
        _operator(bedrock, hyperparameters={"epochCount": 3}, on_request_change="fail").execute(context)  # type: ignore[arg-type]
    assert "epochCount" in str(info.value)
    assert bedrock.created == []


def test_a_sweep_whose_list_changed_does_not_mix_up_map_indexes(bedrock: FakeBedrock) -> None:
    def ctx(i: int) -> dict[str, Any]:
        return {"ti": mock.Mock(dag_id="sweep", task_id="tune", run_id="r1", map_index=i)}

    for i, lr in enumerate([1e-5, 2e-5]):
        _operator(bedrock, hyperparameters={"learningRate": lr}, wait_for_completion=False).execute(ctx(i))  # type: ignore[arg-type]
    before = {r["jobName"]: r["hyperParameters"] for r in bedrock.created}
    bedrock.created.clear()
    # The list changed: index 0 now has another learning rate, index 1 the same.
    for i, lr in enumerate([3e-5, 2e-5]):
        _operator(bedrock, hyperparameters={"learningRate": lr}, wait_for_completion=False).execute(ctx(i))  # type: ignore[arg-type]
    assert len(bedrock.created) == 1
    assert bedrock.created[0]["hyperParameters"]["learningRate"] == "3e-05"
    assert len(before) == 2


def test_a_job_of_another_run_with_tags_is_a_conflict_even_with_our_name(
    bedrock: FakeBedrock, context: dict[str, Any]
) -> None:
    other = {"ti": mock.Mock(dag_id="other_dag", task_id="t", run_id="r", map_index=-1)}
    _operator(bedrock, job_name="shared", wait_for_completion=False).execute(other)  # type: ignore[arg-type]
    with pytest.raises(JobNameConflictError):
        _operator(bedrock, job_name="shared").execute(context)  # type: ignore[arg-type]


def test_reserved_tag_keys_are_refused_before_any_call(context: dict[str, Any]) -> None:
    hook = mock.Mock(spec=BedrockFineTuneHook)
    op = _operator(job_tags={"airflow-bedrock-ft:run-id": "x"})
    op.hook = hook  # type: ignore[misc]
    with pytest.raises(AirflowFailException, match="reserves"):
        op.execute(context)  # type: ignore[arg-type]
    assert hook.mock_calls == []


# --- blocking and submit-only -------------------------------------------------------------------


def test_submit_only(bedrock: FakeBedrock, context: dict[str, Any]) -> None:
    result = _operator(bedrock, wait_for_completion=False).execute(context)  # type: ignore[arg-type]
    assert set(result) == RESULT_KEYS
    assert result["status"] == "InProgress"
    bedrock.hook.wait_for_job.assert_not_called()


def test_blocking_success(bedrock: FakeBedrock, context: dict[str, Any]) -> None:
    def finish(arn: str, **kwargs: Any) -> dict[str, Any]:
        job = bedrock.get_job(arn)
        job.update(status="Completed", outputModelArn="arn:aws:bedrock:us-east-1:1:custom-model/m/1")
        job["validationMetrics"] = [{"validationLoss": 0.3}]
        return job

    bedrock.hook.wait_for_job.side_effect = finish
    result = _operator(bedrock, deferrable=False, poll_interval=5).execute(context)  # type: ignore[arg-type]
    assert result["status"] == "Completed"
    assert result["validation_loss"] == 0.3
    assert json.loads(json.dumps(result)) == result
    assert bedrock.hook.wait_for_job.call_args.kwargs == {
        "poll_interval": 5,
        "timeout": None,
        "max_attempts": None,
    }


def test_blocking_failure_carries_failure_message(bedrock: FakeBedrock, context: dict[str, Any]) -> None:
    """The Amazon provider's blocking wait hides Bedrock's failureMessage."""
    bedrock.hook.wait_for_job.side_effect = lambda arn, **kw: {
        **bedrock.get_job(arn),
        "status": "Failed",
        "failureMessage": FAILURE,
    }
    with pytest.raises(JobFailedError) as info:
        _operator(bedrock, deferrable=False).execute(context)  # type: ignore[arg-type]
    job = next(iter(bedrock.jobs.values()))
    assert FAILURE in str(info.value)
    assert job["jobArn"] in str(info.value)
    assert "status Failed" in str(info.value)
    assert info.value.failure_message == FAILURE


def test_blocking_timeout_stops_the_job(bedrock: FakeBedrock, context: dict[str, Any]) -> None:
    """The Amazon provider leaves the job running when its attempt budget runs out."""

    def give_up(arn: str, **kwargs: Any) -> dict[str, Any]:
        raise JobTimeoutError(job_arn=arn, job_status="InProgress", waited="x", stopped=False)

    bedrock.hook.wait_for_job.side_effect = give_up
    with pytest.raises(JobTimeoutError) as info:
        _operator(bedrock, deferrable=False, timeout=60).execute(context)  # type: ignore[arg-type]
    job = next(iter(bedrock.jobs.values()))
    assert bedrock.stopped == [job["jobArn"]]
    assert "stop was requested" in str(info.value)


def test_blocking_timeout_with_stop_on_timeout_false_leaves_job(
    bedrock: FakeBedrock, context: dict[str, Any]
) -> None:
    bedrock.hook.wait_for_job.side_effect = JobTimeoutError(
        job_arn="a", job_status="InProgress", waited="x", stopped=False
    )
    with pytest.raises(JobTimeoutError, match="left running"):
        _operator(bedrock, deferrable=False, max_attempts=3, stop_on_timeout=False).execute(context)  # type: ignore[arg-type]
    assert bedrock.stopped == []


def test_on_kill_during_blocking_wait_stops_the_job(bedrock: FakeBedrock, context: dict[str, Any]) -> None:
    """The Amazon provider never stops the job when the task is killed."""
    op = _operator(bedrock, deferrable=False)

    def killed(arn: str, **kwargs: Any) -> dict[str, Any]:
        op.on_kill()  # what the SIGTERM handler does when the task is marked failed
        raise SystemExit(1)

    bedrock.hook.wait_for_job.side_effect = killed
    with pytest.raises(SystemExit):
        op.execute(context)  # type: ignore[arg-type]
    assert bedrock.stopped == [next(iter(bedrock.jobs.values()))["jobArn"]]


def test_on_kill_opt_out(bedrock: FakeBedrock, context: dict[str, Any]) -> None:
    op = _operator(bedrock, deferrable=False, stop_on_kill=False)
    bedrock.hook.wait_for_job.side_effect = lambda arn, **kw: (
        op.on_kill(),
        bedrock.get_job(arn) | {"status": "Completed"},
    )[1]
    op.execute(context)  # type: ignore[arg-type]
    assert bedrock.stopped == []


def test_on_kill_before_any_job_does_nothing(bedrock: FakeBedrock) -> None:
    _operator(bedrock).on_kill()
    bedrock.hook.stop_job.assert_not_called()


# --- execute_complete ---------------------------------------------------------------------------

ARN = (
    "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/amazon.nova-micro-v1:0:128k/abc123def456"
)


def _event(status: str, reason: str, **extra: Any) -> dict[str, Any]:
    event = {
        "status": status,
        "reason": reason,
        "message": "m",
        "job_arn": ARN,
        "job_name": "job-1",
        "job_status": {"completed": "Completed", "failed": "Failed", "stopped": "Stopped"}.get(
            reason, "InProgress"
        ),
        "failure_message": None,
        "output_model_arn": None,
        "output_model_name": "model-1",
        "training_loss": None,
        "validation_loss": None,
        "output_s3_uri": "s3://b/out/",
        "phases": "",
        "end_time": None,
        "error_code": None,
        "status_known": True,
    }
    event.update(extra)
    return event


@pytest.mark.parametrize(
    "event", [None, "success", {"status": "done", "job_arn": ARN}, {"status": "success"}]
)
def test_execute_complete_rejects_bad_events(event: Any, context: dict[str, Any]) -> None:
    with pytest.raises(TriggerEventError):
        _operator().execute_complete(context, event)  # type: ignore[arg-type]


def test_execute_complete_success_needs_no_api_call(context: dict[str, Any]) -> None:
    op = _operator()
    op.hook = mock.Mock(spec=BedrockFineTuneHook)  # type: ignore[misc]
    result = op.execute_complete(  # type: ignore[arg-type]
        context,
        _event("success", "completed", output_model_arn="arn:m", training_loss=0.2, validation_loss=0.3),
    )
    assert result == {
        "job_arn": ARN,
        "job_name": "job-1",
        "status": "Completed",
        "custom_model_arn": "arn:m",
        "custom_model_name": "model-1",
        "output_s3_uri": "s3://b/out/",
        "training_loss": 0.2,
        "validation_loss": 0.3,
    }
    assert op.hook.mock_calls == []


@pytest.mark.parametrize(("reason", "status"), [("failed", "Failed"), ("stopped", "Stopped")])
def test_execute_complete_failure_carries_failure_message(
    reason: str, status: str, context: dict[str, Any]
) -> None:
    """The Amazon provider's deferrable path reports only 'Error while running job'."""
    with pytest.raises(JobFailedError) as info:
        _operator().execute_complete(context, _event("error", reason, failure_message=FAILURE))  # type: ignore[arg-type]
    text = str(info.value)
    assert FAILURE in text and ARN in text and status in text
    assert console_url(ARN) in text


def test_execute_complete_api_error(context: dict[str, Any]) -> None:
    with pytest.raises(TriggerEventError, match="AccessDenied"):
        _operator().execute_complete(  # type: ignore[arg-type]
            context,
            _event("error", "api_error", message="AccessDeniedException", error_code="AccessDeniedException"),
        )


def test_execute_complete_timeout_stops_the_job(context: dict[str, Any]) -> None:
    op = _operator(timeout=3600)
    op.hook = mock.Mock(spec=BedrockFineTuneHook)  # type: ignore[misc]
    op.hook.stop_job.return_value = True
    with pytest.raises(JobTimeoutError) as info:
        op.execute_complete(context, _event("timeout", "timeout"))  # type: ignore[arg-type]
    op.hook.stop_job.assert_called_once_with(ARN)
    assert "1:00:00" in str(info.value) and ARN in str(info.value)


def test_execute_complete_timeout_when_job_just_finished_reports_real_outcome(
    context: dict[str, Any],
) -> None:
    op = _operator(max_attempts=3)
    op.hook = mock.Mock(spec=BedrockFineTuneHook)  # type: ignore[misc]
    op.hook.stop_job.return_value = False
    op.hook.get_job.return_value = {"jobArn": ARN, "jobName": "job-1", "status": "Completed"}
    assert op.execute_complete(context, _event("timeout", "max_attempts"))["status"] == "Completed"  # type: ignore[arg-type]


def test_hard_defer_timeout_stops_the_job(bedrock: FakeBedrock, context: dict[str, Any]) -> None:
    op = _operator(bedrock, timeout=60)
    deferred = _deferred(op, context)
    fresh = _operator(bedrock, timeout=60)  # execute_complete runs in another process
    with pytest.raises(JobTimeoutError):
        fresh.resume_execution(  # type: ignore[arg-type]
            TRIGGER_FAIL_REPR, {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, context
        )
    assert bedrock.stopped == [deferred.trigger.job_arn]


# --- link ---------------------------------------------------------------------------------------


def test_console_link() -> None:
    url = console_url(ARN)
    assert url.startswith(
        "https://us-east-1.console.aws.amazon.com/bedrock/home?region=us-east-1#/custom-models/item?arn="
    )
    assert "arn%3Aaws%3Abedrock%3Aus-east-1" in url and "/abc123def456" not in url
    gov = ARN.replace("arn:aws:", "arn:aws-us-gov:").replace("us-east-1", "us-gov-west-1")
    assert console_url(gov).startswith("https://us-gov-west-1.console.amazonaws-us-gov.com/")
    assert console_url("nonsense") == "" and console_url(None) == ""


def test_link_reads_the_job_arn_from_xcom() -> None:
    with mock.patch("airflow.sdk.execution_time.xcom.XCom.get_value", return_value=ARN) as get_value:
        assert BedrockFineTuneJobLink().get_link(_operator(), ti_key=mock.sentinel.key) == console_url(ARN)
    get_value.assert_called_once_with(ti_key=mock.sentinel.key, key=JOB_ARN_XCOM_KEY)
    assert any(isinstance(link, BedrockFineTuneJobLink) for link in _operator().operator_extra_links)


def test_resubmission_suffixes_a_derived_model_name_only(
    bedrock: FakeBedrock, context: dict[str, Any]
) -> None:
    identity = _identity(context)
    _earlier_try(bedrock, context, "Failed", failureMessage=RETRIABLE)
    _deferred(_operator(bedrock), context)
    assert bedrock.created[-1]["customModelName"] == identity.custom_model_name[:60] + "-r1"
    other = {"ti": mock.Mock(dag_id="d2", task_id="t", run_id="r", map_index=-1)}
    _operator(bedrock, custom_model_name="my-model", wait_for_completion=False).execute(other)  # type: ignore[arg-type]
    bedrock.jobs[bedrock.created[-1]["jobName"]]["status"] = "Stopped"
    _deferred(_operator(bedrock, custom_model_name="my-model", resubmit_stopped=True), other)
    assert bedrock.created[-1]["customModelName"] == "my-model"


@pytest.mark.parametrize("name", ["a" * 63, "model_" * 11, "x-y_z" * 12])
def test_suffixed_model_name_stays_valid(name: str) -> None:
    from airflow_bedrock_ft.core.request import validate_operation
    from airflow_bedrock_ft.operators.bedrock_ft import suffixed_model_name

    for generation in (1, 9, 49):
        value = suffixed_model_name(name[:63], generation)
        problems = validate_operation("GetCustomModel", {"modelIdentifier": value})
        assert len(value) <= 63 and value.endswith(f"-r{generation}")
        assert not [p for p in problems if p.path == "modelIdentifier" and p.rule == "max_length"]
        assert re.fullmatch(r"([0-9a-zA-Z][_-]?){1,63}", value), value


def test_idempotency_namespace_separates_deployments(bedrock: FakeBedrock, context: dict[str, Any]) -> None:
    """Two deployments running the same DAG at the same logical date must not share a job."""
    prod = _deferred(_operator(bedrock, idempotency_namespace="prod"), context)
    dev = _deferred(_operator(bedrock, idempotency_namespace="dev"), context)
    again = _deferred(_operator(bedrock, idempotency_namespace="prod"), context)
    assert len(bedrock.created) == 2
    assert prod.trigger.job_arn == again.trigger.job_arn != dev.trigger.job_arn
    assert bedrock.created[0]["jobName"].startswith("prod-tune-dag-tune-")


# --- giving up --------------------------------------------------------------------------------------


def test_timeout_that_stops_the_job_fails_without_retries(bedrock: FakeBedrock, context: dict[str, Any]) -> None:
    deferred = _deferred(_operator(bedrock, timeout=60), context)
    event = _event("timeout", "timeout") | {"job_arn": deferred.trigger.job_arn}
    with pytest.raises(JobStoppedOnTimeoutError) as info:
        _operator(bedrock, timeout=60).execute_complete(context, event)  # type: ignore[arg-type]
    assert isinstance(info.value, AirflowFailException)
    assert bedrock.stopped == [deferred.trigger.job_arn]
    assert "resubmit_stopped=True" in str(info.value)


def test_timeout_on_a_job_already_stopping_is_a_timeout_with_its_status(
    bedrock: FakeBedrock, context: dict[str, Any]
) -> None:
    deferred = _deferred(_operator(bedrock, timeout=60), context)
    job = next(iter(bedrock.jobs.values()))
    job["status"] = "Stopping"  # stopped from the console while the wait ran
    event = _event("timeout", "timeout") | {"job_arn": deferred.trigger.job_arn, "job_status": "Stopping"}
    with pytest.raises(JobStoppedOnTimeoutError) as info:
        _operator(bedrock, timeout=60).execute_complete(context, event)  # type: ignore[arg-type]
    assert info.value.job_status == "Stopping"
    assert "already stopping" in str(info.value)
    assert bedrock.stopped == []
    # Also when the trigger saw InProgress but the job is Stopping by the time of the stop.
    event["job_status"] = "InProgress"
    with pytest.raises(JobStoppedOnTimeoutError, match="already stopping"):
        _operator(bedrock, timeout=60).execute_complete(context, event)  # type: ignore[arg-type]


def test_a_wait_that_never_got_an_answer_never_stops_the_job(
    bedrock: FakeBedrock, context: dict[str, Any]
) -> None:
    deferred = _deferred(_operator(bedrock, max_attempts=5), context)
    event = _event("timeout", "max_attempts") | {"job_arn": deferred.trigger.job_arn, "job_status": None}
    with pytest.raises(JobTimeoutError) as info:
        _operator(bedrock, max_attempts=5).execute_complete(context, event)  # type: ignore[arg-type]
    assert not isinstance(info.value, AirflowFailException)  # the next try re-attaches
    assert "left running" in str(info.value)
    assert bedrock.stopped == []


def test_hard_defer_timeout_of_a_mapped_task_pulls_only_its_own_job_arn(
    bedrock: FakeBedrock,
) -> None:
    ti = mock.Mock(dag_id="d", task_id="tune", run_id="r", map_index=2)
    ti.xcom_pull.return_value = None
    with pytest.raises(Exception, match="TRIGGER_TIMEOUT"):
        _operator(bedrock, timeout=60).resume_execution(  # type: ignore[arg-type]
            TRIGGER_FAIL_REPR, {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, {"ti": ti}
        )
    assert ti.xcom_pull.call_args.kwargs["map_indexes"] == 2
    assert bedrock.stopped == []


@pytest.mark.parametrize(
    "state",
    [
        {"status_known": False, "job_status": "InProgress"},  # last answer long ago, errors since
        {"status_known": False, "job_status": None},  # no poll answered
        {"job_status": "InProgress"},  # an event that does not say: taken as unknown
    ],
    ids=["stale", "never-answered", "unsaid"],
)
def test_a_timeout_without_a_recent_answer_never_stops_the_job(
    bedrock: FakeBedrock, context: dict[str, Any], state: dict[str, Any]
) -> None:
    """Today's main stopped a training job after 20 s of throttling with a budget of 5 polls."""
    deferred = _deferred(_operator(bedrock, timeout=60), context)
    event = _event("timeout", "timeout") | {"job_arn": deferred.trigger.job_arn} | state
    if "status_known" not in state:
        del event["status_known"]
    with pytest.raises(JobTimeoutError) as info:
        _operator(bedrock, timeout=60).execute_complete(context, event)  # type: ignore[arg-type]
    assert "gave up without knowing the job's state" in str(info.value).lower()
    assert not isinstance(info.value, AirflowFailException)  # the next try re-attaches
    assert info.value.status_known is False
    assert bedrock.stopped == []


def test_blocking_timeout_without_a_recent_answer_never_stops_the_job(
    bedrock: FakeBedrock, context: dict[str, Any]
) -> None:
    bedrock.hook.wait_for_job.side_effect = JobTimeoutError(
        job_arn="a", job_status="InProgress", waited="x", stopped=False, status_known=False, failed_polls=9
    )
    with pytest.raises(JobTimeoutError) as info:
        _operator(bedrock, deferrable=False, timeout=60).execute(context)  # type: ignore[arg-type]
    assert "gave up without knowing the job's state" in str(info.value).lower()
    assert "9 polls failed" in str(info.value)
    assert bedrock.stopped == []
