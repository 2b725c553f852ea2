"""Stopping a model-customization job, the one way the hook and the reaper both do it.

Plain Python (botocore only). Bedrock refuses StopModelCustomizationJob for a job that has
already ended; the error code for that is not documented (a ``ConflictException`` or a
``ValidationException``), so a refusal is judged by looking at the job, never by the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from airflow_bedrock_ft.core.retry import error_code
from airflow_bedrock_ft.core.states import JobStatus, Outcome, classify

#: Codes with which Bedrock (or a compatible server) refuses to stop a job.
STOP_REFUSED_CODES = frozenset({"ConflictException", "ValidationException"})


def nothing_to_stop(status: str) -> bool:
    """True when a job in ``status`` needs no stop request: it has ended or is already stopping."""
    return classify(status) is not Outcome.RUNNING or status == JobStatus.STOPPING.value


def stop_refused(exc: BaseException) -> bool:
    """True when ``exc`` may be Bedrock refusing to stop a job that already ended (look at the job)."""
    return error_code(exc) in STOP_REFUSED_CODES


@dataclass(frozen=True)
class StopResult:
    """What a stop request did.

    :param requested: True when Bedrock accepted the stop request.
    :param status: the job's status when the request was refused because it had already ended
        or was already stopping; None when the request was accepted.
    """

    requested: bool
    status: str | None = None


def stop_job(client: Any, job_identifier: str) -> StopResult:
    """Ask Bedrock to stop a job through a boto3 ``bedrock`` client.

    :param client: a boto3 ``bedrock`` client.
    :param job_identifier: job ARN or job name.
    :raises botocore.exceptions.ClientError: when the stop is refused and the job is still
        running, or for any other error.
    """
    try:
        client.stop_model_customization_job(jobIdentifier=job_identifier)
    except ClientError as exc:
        if stop_refused(exc):
            status = client.get_model_customization_job(jobIdentifier=job_identifier)["status"]
            if nothing_to_stop(status):
                return StopResult(requested=False, status=status)
        raise
    return StopResult(requested=True)
