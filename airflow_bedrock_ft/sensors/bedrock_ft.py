"""Sensor that waits for a model-customization job submitted by anything."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException

from airflow_bedrock_ft.core.states import Outcome, classify, timeout_allows_stop
from airflow_bedrock_ft.exceptions import TriggerEventError
from airflow_bedrock_ft.links import JOB_ARN_XCOM_KEY, BedrockFineTuneJobLink
from airflow_bedrock_ft.operators.bedrock_ft import raise_for_failed, result_from_summary, validate_event

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook


class BedrockFineTuneJobCompletedSensor(BaseSensorOperator):
    """Wait until a Bedrock model-customization job ends; fail with Bedrock's reason if it fails.

    Works for any job, by name or ARN, whoever submitted it. ``poke`` and ``reschedule`` modes
    poll with :func:`~airflow_bedrock_ft.core.states.classify`; deferrable mode hands the wait
    to :class:`~airflow_bedrock_ft.triggers.bedrock_ft.BedrockFineTuneJobCompletedTrigger`,
    the same trigger the operator uses.

    A ``Failed`` or ``Stopped`` job fails the sensor with Bedrock's ``failureMessage``. When
    the sensor's ``timeout`` runs out while the job still runs, the sensor fails (or skips
    with ``soft_fail``); it never reports success for an unfinished job.

    Because a sensor may watch a job it did not submit, it leaves the job running when it
    times out or is killed, unless ``stop_on_timeout`` / ``stop_on_kill`` say otherwise. Even
    then a timeout stops the job only when the sensor knew its state (a recent answered poll
    saying it runs): a wait that only saw throttling or 5xx lately never stops a job.

    Returns (XCom) the same dict as the operator: ``{"job_arn", "job_name", "status",
    "custom_model_arn", "custom_model_name", "output_s3_uri", "training_loss",
    "validation_loss"}``.

    .. seealso::
        :class:`~airflow_bedrock_ft.operators.bedrock_ft.BedrockFineTuneCreateJobOperator`

    :param job_identifier: job name or ARN. (templated)
    :param deferrable: wait in the triggerer (default from ``[bedrock_ft] default_deferrable``,
        falling back to True).
    :param poke_interval: seconds between polls (default 60).
    :param stop_on_timeout: stop the job when the sensor times out (default False).
    :param stop_on_kill: stop the job when the sensor is killed while deferred (default False).
    :param aws_conn_id: The Airflow connection used for AWS credentials. (templated)
    :param region_name: AWS region; defaults to the connection's. (templated)
    """

    template_fields: Sequence[str] = ("job_identifier", "aws_conn_id", "region_name")
    operator_extra_links = (BedrockFineTuneJobLink(),)
    ui_color = "#66c3ff"

    def __init__(
        self,
        *,
        job_identifier: str,
        deferrable: bool = conf.getboolean("bedrock_ft", "default_deferrable", fallback=True),
        poke_interval: float = 60,
        stop_on_timeout: bool = False,
        stop_on_kill: bool = False,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.job_identifier = job_identifier
        self.deferrable = deferrable
        self.stop_on_timeout = stop_on_timeout
        self.stop_on_kill = stop_on_kill
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        # Last response seen by poke in this process, to name the job's state on timeout, and
        # whether the latest poke was answered.
        self._last_job: dict[str, Any] | None = None
        self._last_poke_answered = False
        self._timeout_event: dict[str, Any] | None = None

    @cached_property
    def hook(self) -> BedrockFineTuneHook:
        """The Bedrock hook (a cached property, so tests can replace it)."""
        from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook

        return BedrockFineTuneHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """Check the job once: done (with the result as XCom), still running, or failed."""
        from airflow_bedrock_ft.hooks.bedrock_ft import error_code, is_transient_error, job_summary

        try:
            job = self.hook.get_job(self.job_identifier)
        except Exception as exc:
            if not is_transient_error(exc):
                raise
            self._last_poke_answered = False
            # A burst of throttling, 5xx or dropped connections says nothing about the job.
            self.log.warning(
                "Transient error reading job %s (%s); will check again.",
                self.job_identifier,
                error_code(exc) or type(exc).__name__,
            )
            return False
        if self._last_job is None:
            context["ti"].xcom_push(key=JOB_ARN_XCOM_KEY, value=job.get("jobArn"))
        self._last_job = job
        self._last_poke_answered = True
        outcome = classify(job["status"])
        if outcome is Outcome.RUNNING:
            self.log.info("Job %s is %s.", job.get("jobArn"), job["status"])
            return False
        summary = job_summary(job)
        if outcome is Outcome.FAILED:
            raise_for_failed(summary)
        return PokeReturnValue(is_done=True, xcom_value=result_from_summary(summary))

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            try:
                return super().execute(context)
            except (AirflowSensorTimeout, AirflowSkipException) as exc:
                self._handle_timeout(exc)
                raise
        done = self.poke(context)
        if done:
            return done.xcom_value if isinstance(done, PokeReturnValue) else None
        from airflow_bedrock_ft.triggers.bedrock_ft import BedrockFineTuneJobCompletedTrigger

        job_arn = (self._last_job or {}).get("jobArn") or self.job_identifier
        self.defer(
            trigger=BedrockFineTuneJobCompletedTrigger(
                job_arn=job_arn,
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                poll_interval=float(self.poke_interval),
                timeout_at=time.time() + float(self.timeout),
                stop_on_kill=self.stop_on_kill,
            ),
            method_name="execute_complete",
            # Backstop only: the trigger's own deadline reports first, with the job's state.
            timeout=timedelta(seconds=float(self.timeout)) + timedelta(minutes=5),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger fired: return the result, or fail, never succeed early."""
        checked = validate_event(event)
        if checked["status"] == "success":
            return result_from_summary(checked)
        if checked["status"] == "timeout":
            self._timeout_event = checked
            raise AirflowSensorTimeout(
                f"Sensor timed out waiting for Bedrock model customization job {checked['job_arn']}; "
                f"last status {checked.get('job_status')}. The job was not reported as finished."
            )
        if checked.get("reason") in ("failed", "stopped"):
            raise_for_failed(checked)
        raise TriggerEventError(
            f"Waiting for job {checked['job_arn']} failed: {checked.get('message')}",
            job_arn=checked["job_arn"],
            job_status=checked.get("job_status"),
        )

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """Apply ``stop_on_timeout`` to deferred timeouts too (event or hard deadline)."""
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except (AirflowSensorTimeout, AirflowSkipException) as exc:
            self._handle_timeout(exc)
            raise

    def _handle_timeout(self, exc: BaseException) -> None:
        timed_out = isinstance(exc, AirflowSensorTimeout) or isinstance(exc.__cause__, AirflowSensorTimeout)
        if not timed_out:
            return
        if not self.stop_on_timeout:
            self.log.info(
                "Sensor timed out; job %s left running (stop_on_timeout is off).", self.job_identifier
            )
            return
        state = self._timeout_state()
        if not timeout_allows_stop(state):
            self.log.warning(
                "Sensor timed out; job %s left running: %s.",
                self.job_identifier,
                f"it is already {state.get('job_status')}"
                if state.get("status_known")
                else "gave up without knowing the job's state",
            )
            return
        self.log.info("Sensor timed out; stopping job %s.", self.job_identifier)
        self.hook.stop_job(self.job_identifier)

    def _timeout_state(self) -> dict[str, Any]:
        """What the sensor knew of the job when it timed out (``status_known``, ``job_status``)."""
        if self._timeout_event is not None:
            return self._timeout_event
        if self._last_job is not None:
            return {"status_known": self._last_poke_answered, "job_status": self._last_job.get("status")}
        # The hard deferral deadline, in a fresh process: read the job once.
        try:
            job = self.hook.get_job(self.job_identifier)
        except Exception:
            self.log.warning("Could not read job %s.", self.job_identifier, exc_info=True)
            return {"status_known": False, "job_status": None}
        return {"status_known": True, "job_status": job.get("status")}

    def on_kill(self) -> None:
        """Stop the job when the sensor is killed on the worker, if ``stop_on_kill`` is set."""
        if self.stop_on_kill:
            self.log.info("Sensor killed; stopping job %s.", self.job_identifier)
            self.hook.stop_job(self.job_identifier)
