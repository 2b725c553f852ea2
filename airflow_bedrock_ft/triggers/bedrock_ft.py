"""Trigger that waits in the triggerer for a model-customization job to end."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import importlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_bedrock_ft.core.states import Outcome, UnknownStatusError, classify, phase_summary

if TYPE_CHECKING:
    from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook

#: Every status an event can carry. Anything else is rejected by the operator and sensor.
EVENT_STATUSES = ("success", "error", "timeout")

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


def _check_kwargs(
    job_arn: Any, poll_interval: Any, max_attempts: Any, timeout_at: Any, aws_conn_id: Any, region_name: Any
) -> None:
    # Checked at construction, on the worker, so a bad value fails the task there instead of
    # failing later in the triggerer.
    if not isinstance(job_arn, str) or not job_arn:
        raise ValueError(f"job_arn must be a non-empty string, got {job_arn!r}")
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


class BedrockFineTuneJobCompletedTrigger(BaseTrigger):
    """Poll a Bedrock model-customization job until it ends, then fire one event.

    Polls GetModelCustomizationJob every ``poll_interval`` seconds (jittered by ±10 %).
    Throttling, 5xx and connection errors never end the wait: they are retried with a
    growing delay. Sub-phase changes and elapsed time are logged.

    The trigger holds only its keyword arguments, so a triggerer restart (or a move to
    another triggerer) resumes polling where it left off: ``timeout_at`` is an absolute wall
    clock deadline and survives the move, while ``max_attempts`` counts polls of this
    instance only and restarts from zero.

    Every path yields exactly one :class:`TriggerEvent` with one flat schema:
    ``status`` (``success`` | ``error`` | ``timeout``), ``reason`` (``completed``, ``failed``,
    ``stopped``, ``api_error``, ``unknown_status``, ``timeout``, ``max_attempts``),
    ``message``, ``job_arn``, ``job_name``, ``job_status``, ``failure_message``,
    ``output_model_arn``, ``output_model_name``, ``training_loss``, ``validation_loss``,
    ``output_s3_uri``, ``phases``, ``end_time``, ``error_code`` — JSON primitives only, so the
    task resumes without another API call.

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
    :param max_attempts: give up after this many polls of this trigger instance (default: no limit).
    :param timeout_at: give up at this POSIX time (seconds since the epoch; default: never).
    :param last_phase: the sub-phase summary last logged, so a resumed trigger logs only changes.
    :param stop_on_kill: stop the job from ``on_kill`` (default True).
    """

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
        super().__init__()
        _check_kwargs(job_arn, poll_interval, max_attempts, timeout_at, aws_conn_id, region_name)
        self.job_arn = job_arn
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.poll_interval = float(poll_interval)
        self.max_attempts = max_attempts
        self.timeout_at = None if timeout_at is None else float(timeout_at)
        self.last_phase = last_phase
        self.stop_on_kill = bool(stop_on_kill)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and the keyword arguments that rebuild this trigger."""
        cls = type(self)
        return (
            f"{cls.__module__}.{cls.__qualname__}",
            {
                "job_arn": self.job_arn,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "poll_interval": self.poll_interval,
                "max_attempts": self.max_attempts,
                "timeout_at": self.timeout_at,
                "last_phase": self.last_phase,
                "stop_on_kill": self.stop_on_kill,
            },
        )

    def _hook(self) -> BedrockFineTuneHook:
        # Imported here: the module is loaded by operators at parse time and must stay light.
        from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook

        return BedrockFineTuneHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    def _event(
        self, status: str, reason: str, message: str, job: dict[str, Any] | None, **extra: Any
    ) -> TriggerEvent:
        from airflow_bedrock_ft.hooks.bedrock_ft import job_summary

        payload: dict[str, Any] = {
            "status": status,
            "reason": reason,
            "message": message,
            **job_summary(job or {}),
            "error_code": None,
        }
        payload["job_arn"] = payload["job_arn"] or self.job_arn
        payload.update(extra)
        return TriggerEvent(payload)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the job ends or the wait runs out; yield exactly one event."""
        hooks = await _hook_module()
        async with hooks.async_clients_in_use(), contextlib.aclosing(self._poll()) as events:
            async for event in events:
                yield event
                return

    async def _poll(self) -> AsyncGenerator[TriggerEvent, None]:
        """The polling loop behind :meth:`run`."""
        from botocore.exceptions import BotoCoreError, ClientError

        from airflow_bedrock_ft.hooks.bedrock_ft import PollTracker, error_code, is_transient_error

        hook = self._hook()
        started = time.monotonic()
        tracker = PollTracker(self.poll_interval, self.max_attempts)
        job: dict[str, Any] | None = None
        while True:
            try:
                job = await hook.aget_job(self.job_arn)
            except Exception as exc:
                if not is_transient_error(exc):
                    if not isinstance(exc, (ClientError, BotoCoreError)):
                        raise  # a bug, not an answer from AWS: keep the traceback
                    code = error_code(exc)
                    yield self._event(
                        "error",
                        "api_error",
                        f"GetModelCustomizationJob for {self.job_arn} failed with "
                        f"{code or type(exc).__name__}: {exc}",
                        job,
                        error_code=code or type(exc).__name__,
                    )
                    return
                delay = tracker.transient_error()
                self.log.warning(
                    "Transient error polling %s (%s, %d in a row); retrying in %.1f s.",
                    self.job_arn,
                    error_code(exc) or type(exc).__name__,
                    tracker.failures,
                    delay,
                )
            else:
                status = job.get("status")
                if tracker.answered(job):
                    self.log.info(
                        "Job %s: status %s %s (job age %s, %.0f s in this trigger).",
                        self.job_arn,
                        status,
                        phase_summary(job),
                        _age(job.get("creationTime")),
                        time.monotonic() - started,
                    )
                try:
                    outcome = classify(status or "")
                except UnknownStatusError as exc:
                    yield self._event("error", "unknown_status", str(exc), job)
                    return
                if outcome is Outcome.SUCCEEDED:
                    yield self._event("success", "completed", f"Job {self.job_arn} completed.", job)
                    return
                if outcome is Outcome.FAILED:
                    message = f"Job {self.job_arn} ended with status {status}."
                    if job.get("failureMessage"):
                        message += f" Bedrock's failureMessage: {job['failureMessage']}"
                    reason = "stopped" if status == "Stopped" else "failed"
                    yield self._event("error", reason, message, job)
                    return
                delay = tracker.next_delay()

            if tracker.out_of_attempts:
                yield self._event(
                    "timeout",
                    "max_attempts",
                    f"Job {self.job_arn} still {(job or {}).get('status')} after {tracker.attempts} polls.",
                    job,
                )
                return
            if self.timeout_at is not None:
                remaining = self.timeout_at - time.time()
                if remaining <= 0:
                    yield self._event(
                        "timeout",
                        "timeout",
                        f"Job {self.job_arn} still {(job or {}).get('status')} at the deadline.",
                        job,
                    )
                    return
                # Wake at the deadline to report a fresh status rather than one a poll old.
                delay = min(delay, remaining)
            await asyncio.sleep(delay)

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

    async def on_kill(self) -> None:
        """Stop the job when the user acted on the deferred task (not on a triggerer move).

        The triggerer keeps re-sending the cancellation while the trigger is listed, which can
        cancel ``on_kill`` itself half way (the task-state query alone can take seconds). The
        check and the stop therefore run as a task of their own that such a cancellation does
        not interrupt.
        """
        task = asyncio.ensure_future(self._stop_if_killed())
        _BACKGROUND.add(task)
        task.add_done_callback(self._stop_done)
        await asyncio.shield(task)

    def _stop_done(self, task: asyncio.Future[None]) -> None:
        _BACKGROUND.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.warning("Could not stop job %s.", self.job_arn, exc_info=task.exception())

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
