"""The one status table for model-customization jobs.

Every place that must decide whether a job is still running, has succeeded or has failed
(the operator, the trigger, the sensor, the blocking wait and the emulator's tests) calls
:func:`classify`. Nothing else restates the set of statuses.

Statuses come from botocore's ``ModelCustomizationJobStatus`` enum; sub-phases from
``JobStatusDetails`` (``statusDetails.validationDetails`` / ``dataProcessingDetails`` /
``trainingDetails``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any


class JobStatus(str, enum.Enum):
    """Top-level status of a model-customization job, as Bedrock reports it."""

    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"


class Outcome(str, enum.Enum):
    """What a status means to a waiter."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PhaseStatus(str, enum.Enum):
    """Status of one sub-phase in ``statusDetails``."""

    NOT_STARTED = "NotStarted"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    FAILED = "Failed"


#: The table. ``Stopping`` is still running from a waiter's point of view: the job has not
#: reached a terminal state and ``endTime`` is not set yet; it always ends in ``Stopped``.
STATUS_OUTCOME: Mapping[JobStatus, Outcome] = {
    JobStatus.IN_PROGRESS: Outcome.RUNNING,
    JobStatus.STOPPING: Outcome.RUNNING,
    JobStatus.COMPLETED: Outcome.SUCCEEDED,
    JobStatus.FAILED: Outcome.FAILED,
    JobStatus.STOPPED: Outcome.FAILED,
}

#: Order in which Bedrock runs the phases of a job.
PHASES: tuple[str, ...] = ("validationDetails", "dataProcessingDetails", "trainingDetails")


class UnknownStatusError(ValueError):
    """Raised for a status this table does not know (a newer API, or a corrupt response)."""


def classify(status: str | JobStatus) -> Outcome:
    """Say whether a job in ``status`` is running, succeeded or failed.

    :param status: the ``status`` field of GetModelCustomizationJob.
    :raises UnknownStatusError: for a value outside Bedrock's enum, so that a new status is
        noticed instead of being waited on forever or taken as success.
    """
    try:
        return STATUS_OUTCOME[JobStatus(status)]
    except ValueError:
        raise UnknownStatusError(
            f"Unknown model customization job status {status!r}; "
            f"known: {', '.join(s.value for s in JobStatus)}"
        ) from None


def is_terminal(status: str | JobStatus) -> bool:
    """True when the job will not change status again."""
    return classify(status) is not Outcome.RUNNING


def phase_summary(job: Mapping[str, Any]) -> str:
    """A short, stable text of the job's sub-phases, e.g. ``validation=Completed training=InProgress``.

    Returns an empty string when the response carries no ``statusDetails``. Used to log phase
    changes: two responses with the same summary are the same phase.
    """
    details = job.get("statusDetails") or {}
    parts = []
    for key in PHASES:
        phase = details.get(key)
        if isinstance(phase, Mapping) and phase.get("status"):
            parts.append(f"{key.removesuffix('Details')}={phase['status']}")
    return " ".join(parts)


def current_phase(job: Mapping[str, Any]) -> str | None:
    """The phase the job is in now: the last phase that has started, or None without details."""
    details = job.get("statusDetails") or {}
    current = None
    for key in PHASES:
        phase = details.get(key)
        if isinstance(phase, Mapping) and phase.get("status") not in (None, PhaseStatus.NOT_STARTED.value):
            current = key.removesuffix("Details")
    return current
