"""Triggers that wait in the triggerer for a model-customization job, or a serving resource.

One polling loop (:class:`BedrockPollingTrigger`) serves every kind of wait: a subclass says
what to fetch and what a response means (through the status tables of
:mod:`airflow_bedrock_ft.core.states`); counting attempts, backing off after transient errors,
deadlines and the event's common fields are the base's.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import importlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Hashable
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_bedrock_ft.core.states import (
    Outcome,
    ResourceKind,
    UnknownStatusError,
    classify,
    judge_resource,
    phase_summary,
    resource_kind,
)

if TYPE_CHECKING:
    from airflow_bedrock_ft.core.retry import PollTracker
    from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook

#: Every status an event can carry. Anything else is rejected by the operator and sensor.
EVENT_STATUSES = ("success", "error", "timeout")

#: What a resource wait can wait for.
WAIT_FOR_CHOICES = ("ready", "deleted")

#: Task-instance states that mean a user ended the deferred task (mark failed / success / skipped).
#: Any other state (still ``deferred`` after a move to another triggerer, or cleared and about
#: to run again) leaves the job running.
ENDED_TASK_STATES = ("failed", "success", "skipped", "upstream_failed", "removed")

#: Bound on stopping the job from ``on_kill``; the triggerer allows ``on_kill`` 30 s in all.
ON_KILL_STOP_TIMEOUT = 20.0


_HOOK_MODULE = "airflow_bedrock_ft.hooks.bedrock_ft"

#: Stops started by ``on_kill`` that must outlive a cancellation of ``on_kill`` (strong refs).
_BACKGROUND: set[asyncio.Future[None]] = set()


_HOOKS: Any = None


async def _hook_module() -> Any:
    """The hook module, imported in a thread the first time.

    Importing it pulls in boto3 and aiobotocore (over a second when cold): done inside the
    triggerer's event loop, that would stall every other trigger.
    """
    global _HOOKS
    if _HOOKS is None:
        # Not sys.modules: while one wait's thread is still importing, the entry is there but
        # half initialised. import_module blocks on the module's import lock until it is done.
        _HOOKS = await asyncio.to_thread(importlib.import_module, _HOOK_MODULE)
    return _HOOKS


def _age(created: Any) -> str:
    """Time since ``created`` (a timezone-aware datetime) as ``H:MM:SS``, or ``?``."""
    if not isinstance(created, datetime.datetime) or created.tzinfo is None:
        return "?"
    age = datetime.datetime.now(datetime.timezone.utc) - created
    return str(datetime.timedelta(seconds=max(0, int(age.total_seconds()))))


def _check_common(
    poll_interval: Any, max_attempts: Any, timeout_at: Any, aws_conn_id: Any, region_name: Any
) -> None:
    # Checked at construction, on the worker, so a bad value fails the task there instead of
    # failing later in the triggerer.
    if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)) or poll_interval <= 0:
        raise ValueError(f"poll_interval must be a positive number of seconds, got {poll_interval!r}")
    if max_attempts is not None and (
        isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1
    ):
        raise ValueError(f"max_attempts must be None or a positive integer, got {max_attempts!r}")
    if timeout_at is not None and (isinstance(timeout_at, bool) or not isinstance(timeout_at, (int, float))):
        raise ValueError(f"timeout_at must be None or a POSIX timestamp (float), got {timeout_at!r}")
    for name, value in (("aws_conn_id", aws_conn_id), ("region_name", region_name)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be a string or None, got {value!r}")


def _non_empty(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")


class BedrockPollingTrigger(BaseTrigger):
    """Base of the Bedrock triggers: poll one resource until the wait is over, then fire one event.

    Polls every ``poll_interval`` seconds (jittered by ±10 %) through the hook's shared async
    client. Only answered polls count toward ``max_attempts``; throttling, 5xx and connection
    errors never end the wait: they are retried after a quarter of the interval (at most 5 s,
    at least 0.25 s), doubling up to one interval, and the first answer resets that backoff
    (:class:`~airflow_bedrock_ft.core.retry.PollTracker`).

    The trigger holds only its keyword arguments, so a triggerer restart (or a move to another
    triggerer) resumes polling: ``timeout_at`` is an absolute wall-clock deadline and survives
    the move, while ``max_attempts`` counts answered polls of this instance only and restarts
    from zero.

    Every event has ``status`` (``success`` | ``error`` | ``timeout``), ``reason``,
    ``message``, ``status_known`` (whether the wait had a recent answer when it ended: a
    ``timeout`` without one must never lead to stopping anything) and ``error_code``, plus the
    subclass's fields, which include the last known status. JSON primitives only.

    Subclasses implement :meth:`serialize`, :meth:`_fetch`, :meth:`_judge`, :meth:`_payload`
    and :attr:`subject`.

    :param aws_conn_id: The Airflow connection used for AWS credentials.
    :param region_name: AWS region; defaults to the connection's region.
    :param poll_interval: seconds between polls.
    :param max_attempts: give up after this many answered polls of this instance (default: no limit).
    :param timeout_at: give up at this POSIX time (seconds since the epoch; default: never).
    """

    #: The Get operation, for messages.
    operation = "Get"

    def __init__(
        self,
        *,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        poll_interval: float = 60.0,
        max_attempts: int | None = None,
        timeout_at: float | None = None,
    ) -> None:
        super().__init__()
        _check_common(poll_interval, max_attempts, timeout_at, aws_conn_id, region_name)
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.poll_interval = float(poll_interval)
        self.max_attempts = max_attempts
        self.timeout_at = None if timeout_at is None else float(timeout_at)

    def _common_kwargs(self) -> dict[str, Any]:
        return {
            "aws_conn_id": self.aws_conn_id,
            "region_name": self.region_name,
            "poll_interval": self.poll_interval,
            "max_attempts": self.max_attempts,
            "timeout_at": self.timeout_at,
        }

    def _classpath(self) -> str:
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}"

    @property
    def subject(self) -> str:
        """What is waited on, for messages (e.g. ``job arn:...``)."""
        raise NotImplementedError

    def _hook(self) -> BedrockFineTuneHook:
        # Imported here: the module is loaded by operators at parse time and must stay light.
        from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook

        return BedrockFineTuneHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    async def _task_ended(self) -> bool | None:
        """Whether this trigger's task instance was ended (marked failed, success, ...).

        None when it cannot be told (no task instance attached, or the query failed).
        """
        ti = self.task_instance
        if ti is None:
            return None
        try:
            from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
            from asgiref.sync import sync_to_async

            count = await sync_to_async(RuntimeTaskInstance.get_ti_count)(
                dag_id=ti.dag_id,
                map_index=ti.map_index,
                task_ids=[ti.task_id],
                run_ids=[ti.run_id],
                states=list(ENDED_TASK_STATES),
            )
        except Exception:
            self.log.warning("Could not read the state of task %s.", ti.task_id, exc_info=True)
            return None
        return count > 0

    async def _shielded(self, work: Coroutine[Any, Any, None], failure: str) -> None:
        """Run ``work`` (what ``on_kill`` does) as a task of its own that the triggerer's repeated
        cancellation cannot interrupt half way; an error it raises is logged with ``failure``."""
        task = asyncio.ensure_future(work)
        _BACKGROUND.add(task)

        def done(finished: asyncio.Future[None]) -> None:
            _BACKGROUND.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                self.log.warning("%s", failure, exc_info=finished.exception())

        task.add_done_callback(done)
        await asyncio.shield(task)

    async def _fetch(self, hook: BedrockFineTuneHook) -> dict[str, Any] | None:
        """One poll: the resource's Get response, or None when "not found" is an answer."""
        raise NotImplementedError

    def _judge(self, doc: dict[str, Any] | None) -> tuple[str, str, str] | None:
        """``(event status, reason, message)`` when the wait is over, None to keep polling.

        :raises UnknownStatusError: for a status outside the table.
        """
        raise NotImplementedError

    def _payload(self, doc: dict[str, Any] | None) -> dict[str, Any]:
        """The subclass's event fields for the last answer ``doc`` (None: none, or gone)."""
        raise NotImplementedError

    @staticmethod
    def _status_of(doc: dict[str, Any] | None) -> str | None:
        return None if doc is None else doc.get("status")

    def _detail_of(self, doc: dict[str, Any] | None) -> Hashable:
        return None

    def _log_answer(self, doc: dict[str, Any] | None, in_trigger: float) -> None:
        self.log.info(
            "%s: status %s (%.0f s in this trigger).", self.subject, self._status_of(doc), in_trigger
        )

    def _event(
        self,
        status: str,
        reason: str,
        message: str,
        doc: dict[str, Any] | None,
        tracker: PollTracker,
        **extra: Any,
    ) -> TriggerEvent:
        payload: dict[str, Any] = {
            "status": status,
            "reason": reason,
            "message": message,
            **self._payload(doc),
            "status_known": tracker.status_known,
            "error_code": None,
        }
        payload.update(extra)
        return TriggerEvent(payload)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the wait is over or runs out; yield exactly one event."""
        hooks = await _hook_module()
        async with hooks.async_clients_in_use(), contextlib.aclosing(self._poll()) as events:
            async for event in events:
                yield event
                return

    def _gave_up_message(self, tracker: PollTracker, what: str) -> str:
        last = tracker.last_status
        if tracker.status_known:
            return f"{self.subject} still {last} {what}."
        seen = f"last status seen {last}, not recent" if tracker.attempts else "no poll was answered"
        return (
            f"Gave up waiting for {self.subject} {what} without knowing its state ({seen}; "
            f"{tracker.failures} polls in a row failed with throttling, 5xx or connection errors)."
        )

    async def _poll(self) -> AsyncGenerator[TriggerEvent, None]:
        """The one polling loop behind :meth:`run`."""
        from botocore.exceptions import BotoCoreError, ClientError

        from airflow_bedrock_ft.core.retry import PollTracker, error_code, is_transient_error

        hook = self._hook()
        started = time.monotonic()
        tracker = PollTracker(self.poll_interval, self.max_attempts)
        doc: dict[str, Any] | None = None
        while True:
            try:
                fetched = await self._fetch(hook)
            except Exception as exc:
                if not is_transient_error(exc):
                    if not isinstance(exc, (ClientError, BotoCoreError)):
                        raise  # a bug, not an answer from AWS: keep the traceback
                    code = error_code(exc) or type(exc).__name__
                    yield self._event(
                        "error",
                        "api_error",
                        f"{self.operation} for {self.subject} failed with {code}: {exc}",
                        doc,
                        tracker,
                        error_code=code,
                    )
                    return
                delay = tracker.transient_error()
                self.log.warning(
                    "Transient error polling %s (%s, %d in a row); retrying in %.1f s.",
                    self.subject,
                    error_code(exc) or type(exc).__name__,
                    tracker.failures,
                    delay,
                )
            else:
                doc = fetched
                if tracker.answered(self._status_of(doc), self._detail_of(doc)):
                    self._log_answer(doc, time.monotonic() - started)
                try:
                    verdict = self._judge(doc)
                except UnknownStatusError as exc:
                    yield self._event("error", "unknown_status", str(exc), doc, tracker)
                    return
                if verdict is not None:
                    yield self._event(*verdict, doc, tracker)
                    return
                delay = tracker.next_delay()

            if tracker.out_of_attempts:
                yield self._event(
                    "timeout",
                    "max_attempts",
                    self._gave_up_message(tracker, f"after {tracker.attempts} answered polls"),
                    doc,
                    tracker,
                )
                return
            if self.timeout_at is not None:
                remaining = self.timeout_at - time.time()
                if remaining <= 0:
                    yield self._event(
                        "timeout", "timeout", self._gave_up_message(tracker, "at the deadline"), doc, tracker
                    )
                    return
                # Wake at the deadline to report a fresh status rather than one a poll old.
                delay = min(delay, remaining)
            await asyncio.sleep(delay)


class BedrockFineTuneJobCompletedTrigger(BedrockPollingTrigger):
    """Poll a Bedrock model-customization job until it ends, then fire one event.

    Polls GetModelCustomizationJob as :class:`BedrockPollingTrigger` describes; sub-phase
    changes and elapsed time are logged. Only answered polls count toward ``max_attempts``.

    Every path yields exactly one :class:`TriggerEvent` with one flat schema:
    ``status`` (``success`` | ``error`` | ``timeout``), ``reason`` (``completed``, ``failed``,
    ``stopped``, ``api_error``, ``unknown_status``, ``timeout``, ``max_attempts``),
    ``message``, ``status_known``, ``job_arn``, ``job_name``, ``job_status`` (the last status
    answered), ``failure_message``, ``output_model_arn``, ``output_model_name``,
    ``training_loss``, ``validation_loss``, ``output_s3_uri``, ``phases``, ``end_time``,
    ``error_code`` — JSON primitives only, so the task resumes without another API call. A
    ``timeout`` event with ``status_known`` false means the job's state is unknown: the
    operator then never stops the job (:func:`~airflow_bedrock_ft.core.states.timeout_allows_stop`).

    ``on_kill`` (Airflow 3.3: the task was marked failed/success or cleared while deferred)
    stops the job only after checking that the task instance really ended (``failed``,
    ``success``, ...): the triggerer also calls ``on_kill`` when it hands a trigger to another
    triggerer, where the task is still ``deferred``. A cleared task is left alone too: its
    next try re-attaches to the same job instead of losing the training done so far (mark
    it failed first to stop the job, then clear it to submit a new one). A plain
    cancellation (triggerer restart, defer timeout) never stops the job.

    .. seealso::
        https://docs.aws.amazon.com/bedrock/latest/APIReference/API_GetModelCustomizationJob.html

    :param job_arn: ARN (or name) of the job to watch.
    :param aws_conn_id: The Airflow connection used for AWS credentials.
    :param region_name: AWS region; defaults to the connection's region.
    :param poll_interval: seconds between polls (default 60).
    :param max_attempts: give up after this many answered polls of this trigger instance
        (default: no limit).
    :param timeout_at: give up at this POSIX time (seconds since the epoch; default: never).
    :param last_phase: the sub-phase summary last logged, so a resumed trigger logs only changes.
    :param stop_on_kill: stop the job from ``on_kill`` (default True).
    """

    operation = "GetModelCustomizationJob"

    def __init__(
        self,
        *,
        job_arn: str,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        poll_interval: float = 60.0,
        max_attempts: int | None = None,
        timeout_at: float | None = None,
        last_phase: str | None = None,
        stop_on_kill: bool = True,
    ) -> None:
        _non_empty("job_arn", job_arn)
        super().__init__(
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            poll_interval=poll_interval,
            max_attempts=max_attempts,
            timeout_at=timeout_at,
        )
        self.job_arn = job_arn
        self.last_phase = last_phase
        self.stop_on_kill = bool(stop_on_kill)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and the keyword arguments that rebuild this trigger."""
        return (
            self._classpath(),
            {
                "job_arn": self.job_arn,
                **self._common_kwargs(),
                "last_phase": self.last_phase,
                "stop_on_kill": self.stop_on_kill,
            },
        )

    @property
    def subject(self) -> str:
        """The job, for messages."""
        return f"Job {self.job_arn}"

    async def _fetch(self, hook: BedrockFineTuneHook) -> dict[str, Any] | None:
        return await hook.aget_job(self.job_arn)

    def _detail_of(self, doc: dict[str, Any] | None) -> Hashable:
        return phase_summary(doc or {})

    def _log_answer(self, doc: dict[str, Any] | None, in_trigger: float) -> None:
        job = doc or {}
        self.log.info(
            "Job %s: status %s %s (job age %s, %.0f s in this trigger).",
            self.job_arn,
            job.get("status"),
            phase_summary(job),
            _age(job.get("creationTime")),
            in_trigger,
        )

    def _judge(self, doc: dict[str, Any] | None) -> tuple[str, str, str] | None:
        job = doc or {}
        status = job.get("status")
        outcome = classify(status or "")
        if outcome is Outcome.SUCCEEDED:
            return "success", "completed", f"Job {self.job_arn} completed."
        if outcome is Outcome.FAILED:
            message = f"Job {self.job_arn} ended with status {status}."
            if job.get("failureMessage"):
                message += f" Bedrock's failureMessage: {job['failureMessage']}"
            return "error", "stopped" if status == "Stopped" else "failed", message
        return None

    def _payload(self, doc: dict[str, Any] | None) -> dict[str, Any]:
        from airflow_bedrock_ft.hooks.bedrock_ft import job_summary

        payload = job_summary(doc or {})
        payload["job_arn"] = payload["job_arn"] or self.job_arn
        return payload

    async def on_kill(self) -> None:
        """Stop the job when the user acted on the deferred task (not on a triggerer move).

        The triggerer keeps re-sending the cancellation while the trigger is listed, which can
        cancel ``on_kill`` itself half way (the task-state query alone can take seconds). The
        check and the stop therefore run as a task of their own that such a cancellation does
        not interrupt.
        """
        await self._shielded(self._stop_if_killed(), f"Could not stop job {self.job_arn}.")

    async def _stop_if_killed(self) -> None:
        if not self.stop_on_kill:
            self.log.info("stop_on_kill is off; leaving job %s running.", self.job_arn)
            return
        ended = await self._task_ended()
        if ended is None:
            # Stopping loses days of training and cannot be undone: without proof that the
            # task was really killed, leave the job alone.
            self.log.warning("Cannot tell whether the task was ended; leaving job %s running.", self.job_arn)
            return
        if not ended:
            self.log.info(
                "Task is still deferred (trigger moved to another triggerer) or was cleared to run "
                "again (the new try re-attaches to the job); leaving job %s running.",
                self.job_arn,
            )
            return
        self.log.info("Task was ended while deferred; stopping job %s.", self.job_arn)
        stopped = await asyncio.wait_for(self._hook().astop_job(self.job_arn), timeout=ON_KILL_STOP_TIMEOUT)
        self.log.info("Stop of job %s requested." if stopped else "Job %s had already ended.", self.job_arn)


class BedrockResourceReadyTrigger(BedrockPollingTrigger):
    """Poll a custom model deployment or provisioned throughput until it is ready, or deleted.

    ``kind="deployment"`` polls GetCustomModelDeployment (``Creating`` -> ``Active`` |
    ``Failed``); ``kind="provisioned_throughput"`` polls GetProvisionedModelThroughput
    (``Creating`` | ``Updating`` -> ``InService`` | ``Failed``). The meaning of each status
    comes from :func:`~airflow_bedrock_ft.core.states.classify_resource`. With
    ``wait_for="deleted"`` the wait ends when the Get answers ``ResourceNotFoundException``,
    whatever status the resource showed meanwhile.

    Polling, backoff, attempts and deadlines are :class:`BedrockPollingTrigger`'s. One event:
    ``status`` (``success`` | ``error`` | ``timeout``), ``reason`` (``ready``, ``deleted``,
    ``failed``, ``not_found``, ``api_error``, ``unknown_status``, ``timeout``,
    ``max_attempts``), ``message``, ``status_known``, ``kind``, ``identifier``, ``wait_for``,
    ``resource_arn``, ``resource_name``, ``resource_status`` (the last status answered; None
    once deleted), ``model_arn``, ``failure_message``, ``error_code``.

    .. seealso::
        - https://docs.aws.amazon.com/bedrock/latest/APIReference/API_GetCustomModelDeployment.html
        - https://docs.aws.amazon.com/bedrock/latest/APIReference/API_GetProvisionedModelThroughput.html

    :param kind: ``"deployment"`` or ``"provisioned_throughput"``.
    :param identifier: ARN (or name) of the deployment or provisioned model.
    :param wait_for: ``"ready"`` (default) or ``"deleted"``.
    :param aws_conn_id: The Airflow connection used for AWS credentials.
    :param region_name: AWS region; defaults to the connection's region.
    :param poll_interval: seconds between polls (default 30).
    :param max_attempts: give up after this many answered polls of this instance (default: no limit).
    :param timeout_at: give up at this POSIX time (seconds since the epoch; default: never).
    :param delete_on_kill: when the task is ended while deferred (marked failed or success by
        a user, not moved to another triggerer), delete the resource: the create operator's
        teardown does not run when its setup did not succeed.
    """

    def __init__(
        self,
        *,
        kind: str,
        identifier: str,
        wait_for: str = "ready",
        delete_on_kill: bool = False,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        poll_interval: float = 30.0,
        max_attempts: int | None = None,
        timeout_at: float | None = None,
    ) -> None:
        self.kind = resource_kind(kind).value
        _non_empty("identifier", identifier)
        if wait_for not in WAIT_FOR_CHOICES:
            raise ValueError(f"wait_for must be one of {WAIT_FOR_CHOICES}, got {wait_for!r}")
        super().__init__(
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            poll_interval=poll_interval,
            max_attempts=max_attempts,
            timeout_at=timeout_at,
        )
        self.identifier = identifier
        self.wait_for = wait_for
        self.delete_on_kill = bool(delete_on_kill)

    @property
    def operation(self) -> str:  # type: ignore[override]
        """The Get operation of this kind."""
        if self.kind == ResourceKind.DEPLOYMENT.value:
            return "GetCustomModelDeployment"
        return "GetProvisionedModelThroughput"

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and the keyword arguments that rebuild this trigger."""
        return (
            self._classpath(),
            {
                "kind": self.kind,
                "identifier": self.identifier,
                "wait_for": self.wait_for,
                "delete_on_kill": self.delete_on_kill,
                **self._common_kwargs(),
            },
        )

    @property
    def subject(self) -> str:
        """The resource, for messages."""
        if self.kind == ResourceKind.DEPLOYMENT.value:
            return f"Custom model deployment {self.identifier}"
        return f"Provisioned throughput {self.identifier}"

    async def _fetch(self, hook: BedrockFineTuneHook) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        from airflow_bedrock_ft.core.retry import error_code

        try:
            return await hook.aget_resource(self.kind, self.identifier)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None  # an answer: it does not exist (any more)
            raise

    def _judge(self, doc: dict[str, Any] | None) -> tuple[str, str, str] | None:
        return judge_resource(self.kind, doc, self.wait_for, self.subject)

    def _payload(self, doc: dict[str, Any] | None) -> dict[str, Any]:
        doc = doc or {}
        if self.kind == ResourceKind.DEPLOYMENT.value:
            arn, name = doc.get("customModelDeploymentArn"), doc.get("modelDeploymentName")
        else:
            arn, name = doc.get("provisionedModelArn"), doc.get("provisionedModelName")
        return {
            "kind": self.kind,
            "identifier": self.identifier,
            "wait_for": self.wait_for,
            "resource_arn": arn or (self.identifier if self.identifier.startswith("arn:") else None),
            "resource_name": name,
            "resource_status": doc.get("status"),
            "model_arn": doc.get("modelArn"),
            "failure_message": doc.get("failureMessage"),
        }

    async def on_kill(self) -> None:
        """Delete the resource when the user ended the deferred task (``delete_on_kill``).

        Runs as a task of its own, shielded from the triggerer's repeated cancellation, like
        the job trigger's stop. Without proof that the task instance ended (a move to another
        triggerer, a failed state query) the resource is left alone.
        """
        if not self.delete_on_kill:
            return
        await self._shielded(self._delete_if_killed(), f"Could not delete {self.subject}.")

    async def _delete_if_killed(self) -> None:
        ended = await self._task_ended()
        if not ended:
            self.log.info(
                "Task not proven ended (%s); leaving %s in place.",
                "unknown" if ended is None else "still deferred",
                self.subject,
            )
            return
        self.log.info("Task was ended while deferred; deleting %s.", self.subject)
        try:
            deleted = await asyncio.wait_for(
                self._hook().adelete_resource(self.kind, self.identifier), timeout=ON_KILL_STOP_TIMEOUT
            )
        except Exception:
            self.log.warning("Could not delete %s.", self.subject, exc_info=True)
            return
        self.log.info("%s: delete requested." if deleted else "%s was already gone.", self.subject)
