from __future__ import annotations

import pytest

from airflow_bedrock_ft.core.request import service_model
from airflow_bedrock_ft.core.states import (
    DeploymentStatus,
    JobStatus,
    Outcome,
    PhaseStatus,
    ProvisionedThroughputStatus,
    ResourceKind,
    UnknownStatusError,
    classify,
    classify_resource,
    current_phase,
    is_terminal,
    phase_summary,
    timeout_allows_stop,
)

EXPECTED = {
    "InProgress": Outcome.RUNNING,
    "Stopping": Outcome.RUNNING,
    "Completed": Outcome.SUCCEEDED,
    "Failed": Outcome.FAILED,
    "Stopped": Outcome.FAILED,
}


@pytest.mark.parametrize("status", list(JobStatus))
def test_classify_covers_every_status(status: JobStatus) -> None:
    assert classify(status.value) is EXPECTED[status.value]
    assert is_terminal(status) is (EXPECTED[status.value] is not Outcome.RUNNING)


def test_enum_matches_botocore_model() -> None:
    """The table must cover exactly the statuses botocore knows, so a new one is noticed."""
    model = service_model("bedrock")
    assert set(model.shape_for("ModelCustomizationJobStatus").enum) == {s.value for s in JobStatus}
    assert set(model.shape_for("JobStatusDetails").enum) == {s.value for s in PhaseStatus}


@pytest.mark.parametrize("bad", ["", "inprogress", "Deleting", None])
def test_unknown_status_is_an_error_not_running_or_success(bad: object) -> None:
    with pytest.raises(UnknownStatusError, match="Unknown model customization job status"):
        classify(bad)  # type: ignore[arg-type]


def test_phase_summary_and_current_phase() -> None:
    job = {
        "status": "InProgress",
        "statusDetails": {
            "validationDetails": {"status": "Completed"},
            "dataProcessingDetails": {"status": "Completed"},
            "trainingDetails": {"status": "InProgress"},
        },
    }
    assert phase_summary(job) == "validation=Completed dataProcessing=Completed training=InProgress"
    assert current_phase(job) == "training"
    job["statusDetails"]["trainingDetails"]["status"] = "NotStarted"
    assert current_phase(job) == "dataProcessing"
    assert phase_summary({"status": "InProgress"}) == ""
    assert current_phase({}) is None


# --- serving resources ----------------------------------------------------------------------------

RESOURCE_EXPECTED = {
    ("deployment", "Creating"): Outcome.RUNNING,
    ("deployment", "Active"): Outcome.SUCCEEDED,
    ("deployment", "Failed"): Outcome.FAILED,
    ("provisioned_throughput", "Creating"): Outcome.RUNNING,
    ("provisioned_throughput", "Updating"): Outcome.RUNNING,
    ("provisioned_throughput", "InService"): Outcome.SUCCEEDED,
    ("provisioned_throughput", "Failed"): Outcome.FAILED,
}


@pytest.mark.parametrize(
    ("kind", "status"),
    [("deployment", s.value) for s in DeploymentStatus]
    + [("provisioned_throughput", s.value) for s in ProvisionedThroughputStatus],
)
def test_classify_resource_covers_every_status(kind: str, status: str) -> None:
    assert classify_resource(kind, status) is RESOURCE_EXPECTED[(kind, status)]


def test_resource_enums_match_botocore_model() -> None:
    model = service_model("bedrock")
    assert set(model.shape_for("CustomModelDeploymentStatus").enum) == {s.value for s in DeploymentStatus}
    assert set(model.shape_for("ProvisionedModelStatus").enum) == {s.value for s in ProvisionedThroughputStatus}


def test_unknown_resource_status_and_kind_are_errors() -> None:
    with pytest.raises(UnknownStatusError, match="deployment status 'InService'"):
        classify_resource("deployment", "InService")
    with pytest.raises(UnknownStatusError, match="known: Creating, InService, Updating, Failed"):
        classify_resource(ResourceKind.PROVISIONED_THROUGHPUT, "Active")
    with pytest.raises(ValueError, match="Unknown resource kind 'endpoint'"):
        classify_resource("endpoint", "Active")


# --- timeout_allows_stop --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "allowed"),
    [
        ({"status_known": True, "job_status": "InProgress"}, True),
        ({"status_known": False, "job_status": "InProgress"}, False),  # stale: throttled lately
        ({"job_status": "InProgress"}, False),  # an event that does not say
        ({"status_known": "yes", "job_status": "InProgress"}, False),
        ({"status_known": True, "job_status": None}, False),
        ({"status_known": True, "job_status": "Stopping"}, False),
        ({"status_known": True, "job_status": "Completed"}, False),
        ({"status_known": True, "job_status": "Stopped"}, False),
        ({"status_known": True, "job_status": "Paused"}, False),  # unknown to the table
    ],
)
def test_timeout_allows_stop_only_a_known_running_job(state: dict[str, object], allowed: bool) -> None:
    assert timeout_allows_stop(state) is allowed


def test_timeout_allows_stop_reads_a_timeout_error() -> None:
    from airflow_bedrock_ft.exceptions import JobTimeoutError

    known = JobTimeoutError(job_arn="arn", job_status="InProgress", waited="1 h", stopped=False)
    assert known.status_known and timeout_allows_stop(known)
    unknown = JobTimeoutError(
        job_arn="arn", job_status="InProgress", waited="1 h", stopped=False, status_known=False, failed_polls=7
    )
    assert not timeout_allows_stop(unknown)
    assert "gave up without knowing the job's state" in str(unknown).lower()
    assert "7 polls failed" in str(unknown)
    never = JobTimeoutError(job_arn="arn", job_status=None, waited="1 h", stopped=False)
    assert not never.status_known and "no poll was answered" in str(never)
