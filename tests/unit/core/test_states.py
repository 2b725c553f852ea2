from __future__ import annotations

import pytest

from airflow_bedrock_ft.core.request import service_model
from airflow_bedrock_ft.core.states import (
    JobStatus,
    Outcome,
    PhaseStatus,
    UnknownStatusError,
    classify,
    current_phase,
    is_terminal,
    phase_summary,
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
