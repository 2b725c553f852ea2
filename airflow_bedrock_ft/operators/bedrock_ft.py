"""Operator that submits an Amazon Bedrock model-customization job and waits for it."""

from __future__ import annotations

import datetime
import time
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, conf
from airflow.sdk.exceptions import AirflowFailException, TaskDeferralTimeout

from airflow_bedrock_ft.core.states import JobStatus, Outcome, UnknownStatusError, classify
from airflow_bedrock_ft.exceptions import (
    BedrockFineTuneError,
    JobFailedError,
    JobNameConflictError,
    JobTimeoutError,
    TriggerEventError,
)
from airflow_bedrock_ft.links import JOB_ARN_XCOM_KEY, BedrockFineTuneJobLink, console_url

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook

#: How many suffixed names (resubmissions, name clashes) one task run may go through.
MAX_GENERATIONS = 50

#: Extra time the hard ``defer(timeout=...)`` allows beyond ``timeout``, so that the trigger's
#: own deadline fires first and reports the job's last state.
DEFER_TIMEOUT_GRACE = datetime.timedelta(minutes=5)

_EVENT_STATUSES = ("success", "error", "timeout")
_NAME_CONFLICT_CHOICES = ("fail", "suffix")


def _seconds(value: datetime.timedelta | float | int | None, name: str) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, datetime.timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
        raise ValueError(f"{name} must be a positive timedelta or number of seconds, got {value!r}")
    return float(seconds)


def suffixed_model_name(name: str, generation: int) -> str:
    """``name`` with ``-r<generation>``, within the 63 characters and pattern of customModelName."""
    suffix = f"-r{generation}"
    return name[: 63 - len(suffix)].rstrip("-_") + suffix


def result_from_summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The XCom returned for a job: JSON primitives only, never credentials.

    :param summary: a job summary (``job_summary`` output or a trigger event).
    """
    return {
        "job_arn": summary.get("job_arn"),
        "job_name": summary.get("job_name"),
        "status": summary.get("job_status"),
        "custom_model_arn": summary.get("output_model_arn"),
        "custom_model_name": summary.get("output_model_name"),
        "output_s3_uri": summary.get("output_s3_uri"),
        "training_loss": summary.get("training_loss"),
        "validation_loss": summary.get("validation_loss"),
    }


def validate_event(event: Any) -> dict[str, Any]:
    """Check a trigger event before acting on it; raise :class:`TriggerEventError` if malformed.

    :param event: the payload the task resumed with.
    """
    if not isinstance(event, Mapping):
        raise TriggerEventError(f"Expected a trigger event dict, got {event!r}.")
    status = event.get("status")
    if status not in _EVENT_STATUSES:
        raise TriggerEventError(
            f"Trigger event has unknown status {status!r} (expected one of {', '.join(_EVENT_STATUSES)}): "
            f"{dict(event)!r}",
            job_arn=event.get("job_arn"),
        )
    if not event.get("job_arn"):
        raise TriggerEventError(f"Trigger event names no job: {dict(event)!r}")
    return dict(event)


def raise_for_failed(summary: Mapping[str, Any]) -> None:
    """Raise :class:`JobFailedError` with Bedrock's failureMessage for a Failed or Stopped job.

    :param summary: a job summary or trigger event.
    """
    raise JobFailedError(
        job_arn=summary.get("job_arn"),
        job_name=summary.get("job_name"),
        job_status=summary.get("job_status"),
        failure_message=summary.get("failure_message"),
        console_url=console_url(summary.get("job_arn")) or None,
    )


class BedrockFineTuneCreateJobOperator(BaseOperator):
    """Submit an Amazon Bedrock model-customization job, then wait for it (deferred by default).

    The request is built and validated against botocore's service model and the model
    catalog before any API call; all problems are reported at once and the task fails
    without retrying.

    Submission is idempotent. The job name (unless given) and the ``clientRequestToken``
    (unless given) are derived from ``(dag_id, task_id, run_id, map_index)``. Before creating,
    the operator looks the name up: a job with that name and this run's token is re-attached
    (a retry after a worker crash never creates a second job); a job with another token is a
    clash (:class:`JobNameConflictError`, or a derived fresh name with
    ``on_name_conflict="suffix"``). A re-attached job that already ended ``Failed`` or
    ``Stopped`` is resubmitted under a derived name ``<name>-r<n>`` when ``resubmit_failed``
    is true, so task retries really retry; so is a job still ``Stopping`` after an earlier try
    was killed.

    Waiting has no attempt budget by default: jobs can take days. With ``timeout`` the wait
    ends after that long and the job is stopped (unless ``stop_on_timeout=False``). Killing
    the task stops the job unless ``stop_on_kill=False``: on the worker (``execution_timeout``,
    marked failed or success, cleared) and while deferred when the task is marked failed or
    success. Clearing a deferred task does not stop the job: the next try re-attaches to it
    and keeps the training done so far (mark the task failed first to start over).

    Returns (XCom) ``{"job_arn", "job_name", "status", "custom_model_arn",
    "custom_model_name", "output_s3_uri", "training_loss", "validation_loss"}``; with
    ``wait_for_completion=False`` the status is the one at submission. The job ARN is also
    pushed under the XCom key ``job_arn`` as soon as it is known.

    .. seealso::
        https://docs.aws.amazon.com/bedrock/latest/APIReference/API_CreateModelCustomizationJob.html

    :param base_model: base model id or ARN, or a custom model ARN to tune further. (templated)
    :param training_data: ``s3://`` URI of the training data, or a ``trainingDataConfig`` dict
        (e.g. ``invocation_logs_config``). (templated)
    :param output_s3_uri: ``s3://`` URI for the job's output. (templated)
    :param role_arn: IAM role Bedrock assumes to read and write S3. (templated)
    :param custom_model_name: name of the resulting model; default derived from the run. (templated)
    :param job_name: job name; default derived from the run. (templated)
    :param customization_type: ``FINE_TUNING``, ``CONTINUED_PRE_TRAINING``, ``DISTILLATION`` or
        ``REINFORCEMENT_FINE_TUNING``; default ``FINE_TUNING``, or ``DISTILLATION`` /
        ``REINFORCEMENT_FINE_TUNING`` when ``teacher_model`` / ``rft_lambda_arn`` is given. (templated)
    :param validation_data: ``s3://`` URI, list of URIs, or ``validationDataConfig`` dict. (templated)
    :param hyperparameters: hyperparameters; numbers are converted to strings. (templated)
    :param job_tags: tags of the job, as a dict. (templated)
    :param custom_model_tags: tags of the custom model, as a dict. (templated)
    :param custom_model_kms_key_id: KMS key for the custom model. (templated)
    :param vpc_config: ``{"subnet_ids": [...], "security_group_ids": [...]}``. (templated)
    :param customization_config: ``customizationConfig`` dict (snake or camel case). (templated)
    :param teacher_model: distillation teacher model id (sets ``distillationConfig``). (templated)
    :param max_response_length_for_inference: distillation teacher response length. (templated)
    :param rft_lambda_arn: Lambda grader of a reinforcement fine-tuning job. (templated)
    :param rft_hyperparameters: RFT hyperparameters (``epoch_count``, ...). (templated)
    :param client_request_token: idempotency token; default derived from the run. (templated)
    :param idempotency_namespace: mixed into the derived job name, model name and token. Set it
        (e.g. ``"prod"``) when several Airflow deployments run the same DAG against one AWS
        account and region: their scheduled runs have equal run ids and would otherwise
        re-attach to each other's jobs. (templated)
    :param on_name_conflict: ``"fail"`` (default) or ``"suffix"`` when the job name belongs to
        a job this run did not create.
    :param resubmit_failed: on retry, submit a new job when this run's job ended Failed or
        Stopped (default True); False re-reports the old failure.
    :param check_model: also apply the model catalog's rules (known base model, supported
        type, hyperparameter ranges) before submitting (default True).
    :param wait_for_completion: wait for the job to end (default True); False returns after
        submission.
    :param deferrable: wait in the triggerer instead of a worker slot (default from
        ``[bedrock_ft] default_deferrable``, falling back to True).
    :param poll_interval: seconds between status polls (default 60).
    :param max_attempts: give up after this many polls (default: no limit).
    :param timeout: give up waiting after this long (timedelta or seconds; default: never).
    :param stop_on_kill: stop the job when the task is killed (default True).
    :param stop_on_timeout: stop the job when ``timeout`` or ``max_attempts`` runs out
        (default: same as ``stop_on_kill``).
    :param aws_conn_id: The Airflow connection used for AWS credentials. (templated)
    :param region_name: AWS region; defaults to the connection's. (templated)
    """

    template_fields: Sequence[str] = (
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
        "idempotency_namespace",
        "aws_conn_id",
        "region_name",
    )
    template_fields_renderers = {
        "hyperparameters": "json",
        "job_tags": "json",
        "custom_model_tags": "json",
        "vpc_config": "json",
        "customization_config": "json",
        "rft_hyperparameters": "json",
        "training_data": "json",
        "validation_data": "json",
    }
    operator_extra_links = (BedrockFineTuneJobLink(),)
    ui_color = "#66c3ff"

    def __init__(
        self,
        *,
        base_model: str,
        training_data: str | Mapping[str, Any],
        output_s3_uri: str,
        role_arn: str,
        custom_model_name: str | None = None,
        job_name: str | None = None,
        customization_type: str | None = None,
        validation_data: str | Sequence[str] | Mapping[str, Any] | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        job_tags: Mapping[str, Any] | None = None,
        custom_model_tags: Mapping[str, Any] | None = None,
        custom_model_kms_key_id: str | None = None,
        vpc_config: Mapping[str, Any] | None = None,
        customization_config: Mapping[str, Any] | None = None,
        teacher_model: str | None = None,
        max_response_length_for_inference: int | None = None,
        rft_lambda_arn: str | None = None,
        rft_hyperparameters: Mapping[str, Any] | None = None,
        client_request_token: str | None = None,
        idempotency_namespace: str | None = None,
        on_name_conflict: str = "fail",
        resubmit_failed: bool = True,
        check_model: bool = True,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("bedrock_ft", "default_deferrable", fallback=True),
        poll_interval: float = 60,
        max_attempts: int | None = None,
        timeout: datetime.timedelta | float | None = None,
        stop_on_kill: bool = True,
        stop_on_timeout: bool | None = None,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if on_name_conflict not in _NAME_CONFLICT_CHOICES:
            raise ValueError(
                f"on_name_conflict must be one of {_NAME_CONFLICT_CHOICES}, got {on_name_conflict!r}"
            )
        if (
            isinstance(poll_interval, bool)
            or not isinstance(poll_interval, (int, float))
            or poll_interval <= 0
        ):
            raise ValueError(f"poll_interval must be a positive number of seconds, got {poll_interval!r}")
        if max_attempts is not None and (not isinstance(max_attempts, int) or max_attempts < 1):
            raise ValueError(f"max_attempts must be None or a positive integer, got {max_attempts!r}")
        _seconds(timeout, "timeout")
        self.base_model = base_model
        self.training_data = training_data
        self.output_s3_uri = output_s3_uri
        self.role_arn = role_arn
        self.custom_model_name = custom_model_name
        self.job_name = job_name
        self.customization_type = customization_type
        self.validation_data = validation_data
        self.hyperparameters = hyperparameters
        self.job_tags = job_tags
        self.custom_model_tags = custom_model_tags
        self.custom_model_kms_key_id = custom_model_kms_key_id
        self.vpc_config = vpc_config
        self.customization_config = customization_config
        self.teacher_model = teacher_model
        self.max_response_length_for_inference = max_response_length_for_inference
        self.rft_lambda_arn = rft_lambda_arn
        self.rft_hyperparameters = rft_hyperparameters
        self.client_request_token = client_request_token
        self.idempotency_namespace = idempotency_namespace
        self.on_name_conflict = on_name_conflict
        self.resubmit_failed = resubmit_failed
        self.check_model = check_model
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.stop_on_kill = stop_on_kill
        self.stop_on_timeout = stop_on_kill if stop_on_timeout is None else stop_on_timeout
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        # The job this process is responsible for, for on_kill only. execute_complete runs in
        # another process and never reads it.
        self._job_ref: str | None = None

    @cached_property
    def hook(self) -> BedrockFineTuneHook:
        """The Bedrock hook (a cached property, so tests can replace it)."""
        from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook

        return BedrockFineTuneHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    # --- request --------------------------------------------------------------------------------

    def build_request(self, context: Context) -> dict[str, Any]:
        """Build and validate the CreateModelCustomizationJob request for this task run.

        :raises AirflowFailException: listing every problem (path, value, rule) when invalid.
        """
        from airflow_bedrock_ft.core.naming import job_identity
        from airflow_bedrock_ft.core.request import (
            RequestValidationError,
            build_request,
            check_request,
            distillation_config,
            rft_config,
        )

        ti = context["ti"]
        ns = self.idempotency_namespace
        identity = job_identity(
            ti.dag_id,
            ti.task_id,
            ti.run_id if not ns else f"{ns}/{ti.run_id}",
            getattr(ti, "map_index", -1),
            prefix=f"{ns}-{ti.dag_id}-{ti.task_id}" if ns else None,
        )
        customization_type = self.customization_type
        config: dict[str, Any] = dict(self.customization_config or {})
        if self.teacher_model:
            config.update(distillation_config(self.teacher_model, self.max_response_length_for_inference))
            customization_type = customization_type or "DISTILLATION"
        if self.rft_lambda_arn:
            config.update(rft_config(self.rft_lambda_arn, self.rft_hyperparameters))
            customization_type = customization_type or "REINFORCEMENT_FINE_TUNING"
        request = build_request(
            job_name=self.job_name or identity.job_name,
            custom_model_name=self.custom_model_name or identity.custom_model_name,
            role_arn=self.role_arn,
            base_model=self.base_model,
            training_data=self.training_data,
            output_s3_uri=self.output_s3_uri,
            validation_data=self.validation_data,
            customization_type=customization_type or "FINE_TUNING",
            hyperparameters=self.hyperparameters,
            job_tags=self.job_tags,
            custom_model_tags=self.custom_model_tags,
            custom_model_kms_key_id=self.custom_model_kms_key_id,
            vpc_config=self.vpc_config,
            customization_config=config or None,
            client_request_token=self.client_request_token or identity.client_request_token,
        )
        try:
            return check_request(request, check_model=self.check_model)
        except RequestValidationError as exc:
            raise AirflowFailException(
                f"{exc}\nNo job was submitted. Fix the arguments of task {ti.task_id!r}."
            ) from exc

    # --- submission -----------------------------------------------------------------------------

    def submit_or_attach(self, request: Mapping[str, Any]) -> tuple[str, dict[str, Any] | None]:
        """Create the job, or find the one an earlier try of this run created.

        Returns the job ARN and, when an existing job was re-attached, its Get response.
        """
        from botocore.exceptions import ClientError

        from airflow_bedrock_ft.core.naming import suffixed_job_name, suffixed_token
        from airflow_bedrock_ft.hooks.bedrock_ft import NAME_IN_USE_ERROR_CODES, error_code

        base_name, base_token = request["jobName"], request["clientRequestToken"]
        for generation in range(MAX_GENERATIONS):
            name = base_name if generation == 0 else suffixed_job_name(base_name, generation)
            token = base_token if generation == 0 else suffixed_token(base_token, generation)
            existing = self.hook.find_job_by_name(name)
            if existing is None:
                self._job_ref = name
                try:
                    attempt = {**request, "jobName": name, "clientRequestToken": token}
                    if generation and not self.custom_model_name:
                        # Whether Bedrock frees the model name of a job that failed is not
                        # documented: a derived name gets the same suffix as the job.
                        attempt["customModelName"] = suffixed_model_name(
                            request["customModelName"], generation
                        )
                    job_arn = self.hook.create_job(attempt)
                except ClientError as exc:
                    code = error_code(exc)
                    existing = self.hook.find_job_by_name(name) if code in NAME_IN_USE_ERROR_CODES else None
                    if existing is None:
                        self._job_ref = None
                        if code in (
                            "ValidationException",
                            "AccessDeniedException",
                            "ResourceNotFoundException",
                        ):
                            # The request itself is refused; retrying the task cannot help.
                            raise AirflowFailException(
                                f"Bedrock refused CreateModelCustomizationJob for job {name!r} with {code}: "
                                f"{exc.response.get('Error', {}).get('Message')}"
                            ) from exc
                        raise
                    # Created concurrently (or by a request whose response was lost): judge it below.
                else:
                    self._job_ref = job_arn
                    self.log.info("Submitted Bedrock model customization job %s (%s).", name, job_arn)
                    return job_arn, None
            if existing.get("clientRequestToken") != token:
                if self.on_name_conflict == "suffix":
                    self.log.info(
                        "Job name %r belongs to another job (%s); trying a derived name.",
                        name,
                        existing.get("jobArn"),
                    )
                    continue
                raise JobNameConflictError(
                    job_name=name, job_arn=existing.get("jobArn"), job_status=existing.get("status")
                )
            # A Stopping job (stopped by a kill or timeout of an earlier try) can only end
            # Stopped: waiting for it would just fail this try as well.
            ended_badly = existing["status"] == JobStatus.STOPPING.value or (
                classify(existing["status"]) is Outcome.FAILED
            )
            if self.resubmit_failed and ended_badly:
                self.log.info(
                    "Job %s of this run ended %s (%s); submitting a new job.",
                    existing.get("jobArn"),
                    existing["status"],
                    existing.get("failureMessage") or "no failureMessage",
                )
                continue
            self._job_ref = existing["jobArn"]
            self.log.info(
                "Re-attaching to job %s (status %s), submitted earlier for this run; not creating another.",
                existing["jobArn"],
                existing["status"],
            )
            return existing["jobArn"], existing
        raise BedrockFineTuneError(
            f"Gave up after {MAX_GENERATIONS} job names derived from {base_name!r}, all taken or failed. "
            "Set job_name explicitly.",
            job_name=base_name,
        )

    # --- execution ------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_bedrock_ft.hooks.bedrock_ft import job_summary

        request = self.build_request(context)
        job_arn, existing = self.submit_or_attach(request)
        context["ti"].xcom_push(key=JOB_ARN_XCOM_KEY, value=job_arn)
        self.log.info("Console: %s", console_url(job_arn))

        if not self.wait_for_completion:
            job = existing or self.hook.get_job(job_arn)
            return result_from_summary(job_summary(job))

        if existing is not None and classify(existing["status"]) is not Outcome.RUNNING:
            return self._finish(job_summary(existing))

        timeout = _seconds(self.timeout, "timeout")
        if self.deferrable:
            from airflow_bedrock_ft.triggers.bedrock_ft import BedrockFineTuneJobCompletedTrigger

            self.defer(
                trigger=BedrockFineTuneJobCompletedTrigger(
                    job_arn=job_arn,
                    aws_conn_id=self.aws_conn_id,
                    region_name=self.region_name,
                    poll_interval=float(self.poll_interval),
                    max_attempts=self.max_attempts,
                    timeout_at=None if timeout is None else time.time() + timeout,
                    stop_on_kill=self.stop_on_kill,
                ),
                method_name="execute_complete",
                timeout=None
                if timeout is None
                else datetime.timedelta(seconds=timeout) + DEFER_TIMEOUT_GRACE,
            )

        try:
            job = self.hook.wait_for_job(
                job_arn, poll_interval=self.poll_interval, timeout=timeout, max_attempts=self.max_attempts
            )
        except JobTimeoutError as exc:
            return self._give_up(job_arn, exc.job_name, exc.job_status, self._waited(timeout))
        return self._finish(job_summary(job))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger fired: return the result or raise with Bedrock's reason."""
        checked = validate_event(event)
        self._job_ref = checked["job_arn"]
        if checked["status"] == "timeout":
            waited = (
                f"{self.max_attempts} polls"
                if checked.get("reason") == "max_attempts"
                else self._waited(_seconds(self.timeout, "timeout"))
            )
            return self._give_up(
                checked["job_arn"], checked.get("job_name"), checked.get("job_status"), waited
            )
        if checked["status"] == "error" and checked.get("reason") not in ("failed", "stopped"):
            raise TriggerEventError(
                f"Waiting for job {checked['job_arn']} failed: {checked.get('message')}",
                job_arn=checked["job_arn"],
                job_name=checked.get("job_name"),
                job_status=checked.get("job_status"),
                failure_message=checked.get("failure_message"),
            )
        return self._finish(checked)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """Also stop the job when the hard deferral deadline passed before the trigger reported."""
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except TaskDeferralTimeout as exc:
            job_arn = context["ti"].xcom_pull(task_ids=self.task_id, key=JOB_ARN_XCOM_KEY)
            if not job_arn:
                raise
            return self._give_up(
                job_arn, None, None, self._waited(_seconds(self.timeout, "timeout")), cause=exc
            )

    def on_kill(self) -> None:
        """Stop the job when the task is killed on the worker, unless ``stop_on_kill`` is off."""
        if not self._job_ref:
            return
        if not self.stop_on_kill:
            self.log.info("stop_on_kill is off; leaving job %s running.", self._job_ref)
            return
        self.log.info("Task killed; stopping Bedrock model customization job %s.", self._job_ref)
        try:
            self.hook.stop_job(self._job_ref)
        except Exception:
            self.log.exception(
                "Could not stop job %s; stop it with StopModelCustomizationJob.", self._job_ref
            )

    # --- helpers --------------------------------------------------------------------------------

    def _waited(self, timeout: float | None) -> str:
        if timeout is not None:
            return f"a timeout of {datetime.timedelta(seconds=timeout)}"
        return f"{self.max_attempts} polls"

    def _give_up(
        self,
        job_arn: str,
        job_name: str | None,
        job_status: str | None,
        waited: str,
        cause: BaseException | None = None,
    ) -> dict[str, Any]:
        from airflow_bedrock_ft.hooks.bedrock_ft import job_summary

        stopped = False
        if self.stop_on_timeout:
            self.log.info("Stopping job %s after %s.", job_arn, waited)
            stopped = self.hook.stop_job(job_arn)
            if not stopped:
                # It ended between the last poll and the stop: report how it really ended.
                return self._finish(job_summary(self.hook.get_job(job_arn)))
        raise JobTimeoutError(
            job_arn=job_arn, job_name=job_name, job_status=job_status, waited=waited, stopped=stopped
        ) from cause

    def _finish(self, summary: Mapping[str, Any]) -> dict[str, Any]:
        status = summary.get("job_status")
        try:
            outcome = classify(status or "")
        except UnknownStatusError as exc:
            raise TriggerEventError(str(exc), job_arn=summary.get("job_arn"), job_status=status) from exc
        if outcome is Outcome.SUCCEEDED:
            self.log.info(
                "Job %s completed: custom model %s, training loss %s, validation loss %s.",
                summary.get("job_arn"),
                summary.get("output_model_arn"),
                summary.get("training_loss"),
                summary.get("validation_loss"),
            )
            return result_from_summary(summary)
        if outcome is Outcome.FAILED:
            raise_for_failed(summary)
        raise TriggerEventError(
            f"Job {summary.get('job_arn')} reported as finished while still {status}.",
            job_arn=summary.get("job_arn"),
            job_status=status,
        )
