"""Errors raised by the Airflow layer.

Every message names the job (ARN, or name when no ARN is known), its last status and
Bedrock's own ``failureMessage`` verbatim, and says what to do next, so the task log alone is
enough to act on a failure.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException, AirflowFailException


class BedrockFineTuneError(AirflowException):
    """Base class of this provider's errors; carries the job's identity and last known state.

    :param message: the full text shown to the user.
    :param job_arn: ARN of the job, when known.
    :param job_name: name of the job, when known.
    :param job_status: last status Bedrock reported.
    :param failure_message: Bedrock's ``failureMessage``, verbatim.
    """

    def __init__(
        self,
        message: str,
        *,
        job_arn: str | None = None,
        job_name: str | None = None,
        job_status: str | None = None,
        failure_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.job_arn = job_arn
        self.job_name = job_name
        self.job_status = job_status
        self.failure_message = failure_message


def _job_ref(job_arn: str | None, job_name: str | None) -> str:
    if job_arn:
        return job_arn
    if job_name:
        return f"named {job_name!r}"
    return "(unknown job)"


class JobFailedError(BedrockFineTuneError):
    """The job ended ``Failed`` or ``Stopped``; the message quotes Bedrock's ``failureMessage``.

    Raised as is when an automatic retry may help (the next try submits a new job); see
    :class:`JobFailedNotRetriableError` for failures a retry cannot fix.

    :param job_arn: ARN of the job.
    :param job_status: the terminal status (``Failed`` or ``Stopped``).
    :param failure_message: Bedrock's ``failureMessage``, verbatim (may be empty for a stop).
    :param job_name: name of the job.
    :param console_url: link to the job in the Bedrock console, added to the message.
    :param failure_kind: the kind :func:`airflow_bedrock_ft.core.failures.classify_failure` gave.
    :param hint: what to do next; a default for the status is used when not given.
    """

    def __init__(
        self,
        *,
        job_arn: str | None,
        job_status: str | None,
        failure_message: str | None,
        job_name: str | None = None,
        console_url: str | None = None,
        failure_kind: str | None = None,
        hint: str | None = None,
    ) -> None:
        ref = _job_ref(job_arn, job_name)
        if job_status in ("Stopped", "Stopping"):
            head = f"Bedrock model customization job {ref} was stopped (status {job_status})."
            default_hint = (
                "A stopped job cannot be resumed and produced no custom model. Automatic retries "
                "do not train it again. To train again on purpose, start a new DAG run, or set "
                "resubmit_stopped=True on the task and clear it."
            )
        else:
            head = f"Bedrock model customization job {ref} ended with status {job_status}."
            default_hint = "The next try of the task submits a new job."
        reason = (
            f"Bedrock's failureMessage: {failure_message}"
            if failure_message
            else "Bedrock gave no failureMessage."
        )
        lines = [head, reason]
        if failure_kind:
            lines.append(f"Failure kind: {failure_kind}.")
        lines.append(hint or default_hint)
        if console_url:
            lines.append(f"Console: {console_url}")
        super().__init__(
            "\n".join(lines),
            job_arn=job_arn,
            job_name=job_name,
            job_status=job_status,
            failure_message=failure_message,
        )
        self.failure_kind = failure_kind


class JobFailedNotRetriableError(JobFailedError, AirflowFailException):
    """The job was stopped, or failed in a way a retry fails again: the task fails without retries.

    Data, permission, quota, validation and unknown failures, and every stop (whoever stopped
    the job), end here; the message says what to fix and how to train again on purpose.
    """


class JobTimeoutError(BedrockFineTuneError):
    """Waiting gave up (timeout or attempt budget) while the job had not finished.

    ``status_known`` says whether the wait had a recent answer about the job. Without one
    (throttling, 5xx or dropped connections until the end) the job's state is unknown, the
    message says the wait "gave up without knowing the job's state", and nothing stops the
    job (:func:`~airflow_bedrock_ft.core.states.timeout_allows_stop`).

    :param job_arn: ARN of the job.
    :param job_status: the last status seen (None when no poll was answered).
    :param waited: what ran out, e.g. ``"timeout of 2 days, 0:00:00"`` or ``"10 answered polls"``.
    :param stopped: whether a stop of the job was requested.
    :param job_name: name of the job.
    :param failure_message: Bedrock's ``failureMessage`` if any (normally none).
    :param action: what happened to the job and what to do, instead of the default text.
    :param status_known: whether ``job_status`` is recent (default: True when a status is given).
    :param failed_polls: polls that failed with transient errors, said in the message when not 0.
    """

    def __init__(
        self,
        *,
        job_arn: str | None,
        job_status: str | None,
        waited: str,
        stopped: bool,
        job_name: str | None = None,
        failure_message: str | None = None,
        action: str | None = None,
        status_known: bool | None = None,
        failed_polls: int = 0,
    ) -> None:
        ref = _job_ref(job_arn, job_name)
        known = job_status is not None if status_known is None else bool(status_known)
        if action:
            pass
        elif not known:
            action = (
                "The job was left running: without a recent answer from Bedrock nothing may stop "
                "it. The next try of the task re-attaches to it; check it in the console, or stop "
                "it with StopModelCustomizationJob if you no longer want it."
            )
        elif stopped:
            action = (
                "A stop was requested, so the job will end as Stopped and produce no model; the "
                "task is not retried. Raise the timeout (jobs can take days), then start a new DAG "
                "run, or set resubmit_stopped=True and clear the task, to train again."
            )
        else:
            action = (
                "The job was left running (stopping on timeout is off). Wait for it with "
                "BedrockFineTuneJobCompletedSensor, or stop it with StopModelCustomizationJob."
            )
        errors = ""
        if failed_polls:
            errors = f" ({failed_polls} polls failed with throttling, 5xx or connection errors)"
        if known:
            head = (
                f"Gave up waiting for Bedrock model customization job {ref} after {waited}{errors}; "
                f"last status {job_status}."
            )
        else:
            last = f"last status seen {job_status}, not recent" if job_status else "no poll was answered"
            head = (
                f"Gave up without knowing the job's state: waiting for Bedrock model customization "
                f"job {ref} ended after {waited}{errors}; {last}."
            )
        lines = [head]
        if failure_message:
            lines.append(f"Bedrock's failureMessage: {failure_message}")
        lines.append(action)
        super().__init__(
            "\n".join(lines),
            job_arn=job_arn,
            job_name=job_name,
            job_status=job_status,
            failure_message=failure_message,
        )
        self.status_known = known
        self.waited = waited
        self.stopped = stopped
        self.failed_polls = failed_polls


class JobStoppedOnTimeoutError(JobTimeoutError, AirflowFailException):
    """Waiting gave up and the job was stopped (or was already stopping): nothing is left to retry.

    Fails the task without Airflow retries: a retry would only re-report the stopped job.
    """


class TriggerEventError(BedrockFineTuneError):
    """A trigger event was missing or malformed, or reported an error that is not a job outcome."""


class JobNameConflictError(BedrockFineTuneError):
    """A job with the requested name exists but was not submitted by this task.

    :param job_name: the contested name.
    :param job_arn: ARN of the existing job.
    :param job_status: status of the existing job.
    """

    def __init__(self, *, job_name: str, job_arn: str | None, job_status: str | None) -> None:
        super().__init__(
            f"A Bedrock model customization job named {job_name!r} already exists ({job_arn}, status "
            f"{job_status}) and was not created by this task (its clientRequestToken differs). "
            "Job names are unique per account and region and stay taken after the job ends. "
            "Choose another job_name, leave job_name unset to use the name derived from the DAG "
            "run, or pass on_name_conflict='suffix' to submit under a derived fresh name.",
            job_arn=job_arn,
            job_name=job_name,
            job_status=job_status,
        )
