"""The status tables: one for model-customization jobs, one per serving resource kind.

Every place that must decide whether a job is still running, has succeeded or has failed
(the operator, the trigger, the sensor, the blocking wait and the emulator's tests) calls
:func:`classify`; waits on custom model deployments and provisioned throughput call
:func:`classify_resource`. Nothing else restates the set of statuses.

Job statuses come from botocore's ``ModelCustomizationJobStatus`` enum; sub-phases from
``JobStatusDetails`` (``statusDetails.validationDetails`` / ``dataProcessingDetails`` /
``trainingDetails``); deployment statuses from ``CustomModelDeploymentStatus``; provisioned
throughput statuses from ``ProvisionedModelStatus``.
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


# --- timeouts -----------------------------------------------------------------------------------


def timeout_allows_stop(event_or_exc: Any) -> bool:
    """True when a wait that gave up may stop its job: it knew the job's state, and it was running.

    Accepts a trigger event (a mapping) or a :class:`~airflow_bedrock_ft.exceptions.JobTimeoutError`
    (anything with ``status_known`` and ``job_status`` attributes). False when the wait had no
    recent answer (``status_known`` false or missing: throttling, 5xx, dropped connections say
    nothing about the job), when the last status is missing or unknown to the table, and when
    the job already ended or is ``Stopping``. Stopping loses the training done so far and
    cannot be undone, so every doubt leaves the job running.
    """
    if isinstance(event_or_exc, Mapping):
        known, status = event_or_exc.get("status_known"), event_or_exc.get("job_status")
    else:
        known = getattr(event_or_exc, "status_known", None)
        status = getattr(event_or_exc, "job_status", None)
    if known is not True or not isinstance(status, str):
        return False
    try:
        outcome = classify(status)
    except UnknownStatusError:
        return False
    return outcome is Outcome.RUNNING and status != JobStatus.STOPPING.value


# --- serving resources ----------------------------------------------------------------------------


class ResourceKind(str, enum.Enum):
    """The serving resources a wait can watch (the ``kind`` of a resource trigger)."""

    DEPLOYMENT = "deployment"
    PROVISIONED_THROUGHPUT = "provisioned_throughput"


class DeploymentStatus(str, enum.Enum):
    """Status of an on-demand custom model deployment (GetCustomModelDeployment)."""

    CREATING = "Creating"
    ACTIVE = "Active"
    FAILED = "Failed"


class ProvisionedThroughputStatus(str, enum.Enum):
    """Status of a provisioned model throughput (GetProvisionedModelThroughput)."""

    CREATING = "Creating"
    IN_SERVICE = "InService"
    UPDATING = "Updating"
    FAILED = "Failed"


#: The deployment table: ``Active`` serves requests.
DEPLOYMENT_STATUS_OUTCOME: Mapping[DeploymentStatus, Outcome] = {
    DeploymentStatus.CREATING: Outcome.RUNNING,
    DeploymentStatus.ACTIVE: Outcome.SUCCEEDED,
    DeploymentStatus.FAILED: Outcome.FAILED,
}

#: The provisioned throughput table: ``InService`` serves requests; ``Updating`` (a change of
#: model units or model) is still on its way.
PROVISIONED_THROUGHPUT_STATUS_OUTCOME: Mapping[ProvisionedThroughputStatus, Outcome] = {
    ProvisionedThroughputStatus.CREATING: Outcome.RUNNING,
    ProvisionedThroughputStatus.UPDATING: Outcome.RUNNING,
    ProvisionedThroughputStatus.IN_SERVICE: Outcome.SUCCEEDED,
    ProvisionedThroughputStatus.FAILED: Outcome.FAILED,
}

_RESOURCE_TABLES: Mapping[ResourceKind, tuple[type[enum.Enum], Mapping[Any, Outcome]]] = {
    ResourceKind.DEPLOYMENT: (DeploymentStatus, DEPLOYMENT_STATUS_OUTCOME),
    ResourceKind.PROVISIONED_THROUGHPUT: (ProvisionedThroughputStatus, PROVISIONED_THROUGHPUT_STATUS_OUTCOME),
}


def resource_kind(kind: str | ResourceKind) -> ResourceKind:
    """``kind`` as a :class:`ResourceKind`; a clear ValueError for anything else."""
    try:
        return ResourceKind(kind)
    except ValueError:
        raise ValueError(
            f"Unknown resource kind {kind!r}; known: {', '.join(k.value for k in ResourceKind)}"
        ) from None


def classify_resource(kind: str | ResourceKind, status: str) -> Outcome:
    """Say whether a serving resource in ``status`` is on its way, ready or failed.

    :param kind: ``"deployment"`` or ``"provisioned_throughput"``.
    :param status: the ``status`` field of GetCustomModelDeployment / GetProvisionedModelThroughput.
    :raises UnknownStatusError: for a value outside the kind's enum.
    """
    enum_cls, table = _RESOURCE_TABLES[resource_kind(kind)]
    try:
        return table[enum_cls(status)]
    except ValueError:
        raise UnknownStatusError(
            f"Unknown {resource_kind(kind).value.replace('_', ' ')} status {status!r}; "
            f"known: {', '.join(str(s.value) for s in enum_cls)}"
        ) from None


def judge_resource(
    kind: str | ResourceKind, doc: Mapping[str, Any] | None, wait_for: str, subject: str
) -> tuple[str, str, str] | None:
    """Whether a wait on a serving resource is over, given its latest Get answer.

    Shared by the resource trigger and the blocking wait of the serving operators.

    :param kind: ``"deployment"`` or ``"provisioned_throughput"``.
    :param doc: the Get response, or None for ``ResourceNotFoundException``.
    :param wait_for: ``"ready"`` or ``"deleted"``.
    :param subject: the resource, for messages (``"Custom model deployment arn:..."``).
    :returns: ``(status, reason, message)`` of the event that ends the wait, or None to go on.
    :raises UnknownStatusError: for a status outside the kind's table.
    """
    if doc is None:
        if wait_for == "deleted":
            return "success", "deleted", f"{subject} is deleted."
        return "error", "not_found", f"{subject} does not exist (ResourceNotFoundException)."
    status = doc.get("status") or ""
    outcome = classify_resource(kind, status)
    if wait_for == "deleted":
        return None  # still there, whatever its (known) status
    if outcome is Outcome.SUCCEEDED:
        return "success", "ready", f"{subject} is {status}."
    if outcome is Outcome.FAILED:
        message = f"{subject} ended with status {status}."
        if doc.get("failureMessage"):
            message += f" Bedrock's failureMessage: {doc['failureMessage']}"
        return "error", "failed", message
    return None
