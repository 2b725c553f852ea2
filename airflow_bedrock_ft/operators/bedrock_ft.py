"""Operator that submits an Amazon Bedrock model-customization job and waits for it."""

from __future__ import annotations

import datetime
import time
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias, BaseOperator, conf
from airflow.sdk.exceptions import AirflowFailException, TaskDeferralTimeout

from airflow_bedrock_ft.core.states import (
    JobStatus,
    Outcome,
    UnknownStatusError,
    classify,
    timeout_allows_stop,
)
from airflow_bedrock_ft.exceptions import (
    BedrockFineTuneError,
    JobFailedError,
    JobFailedNotRetriableError,
    JobNameConflictError,
    JobStoppedOnTimeoutError,
    JobTimeoutError,
    TriggerEventError,
)
from airflow_bedrock_ft.links import JOB_ARN_XCOM_KEY, BedrockFineTuneJobLink, console_url

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook

#: The alias through which the fine-tune step declares the custom model it produces as an outlet:
#: the model's ARN is only known at run time; the Asset event names it (``uri`` = ``name`` = ARN).
CUSTOM_MODELS_ALIAS = "bedrock-custom-models"

#: How many suffixed names (resubmissions, name clashes) one task run may go through.
MAX_GENERATIONS = 50

#: Extra time the hard ``defer(timeout=...)`` allows beyond ``timeout``, so that the trigger's
#: own deadline fires first and reports the job's last state.
DEFER_TIMEOUT_GRACE = datetime.timedelta(minutes=5)

_EVENT_STATUSES = ("success", "error", "timeout")
_NAME_CONFLICT_CHOICES = ("fail", "suffix")
_REQUEST_CHANGE_CHOICES = ("resubmit", "fail")
_RESUBMIT_FAILED_CHOICES = ("retriable", "always", "never")

#: Said of every failure that is not retried, whatever its kind.
_TRAIN_AGAIN = (
    "To train again on purpose: start a new DAG run, or change the request (for example data "
    "under a new S3 URI) and clear the task; a changed request submits a new job. Data fixed in "
    "place under the same URI is the same request: use a new DAG run, or resubmit_failed='always'."
)


def _resubmit_failed_mode(value: bool | str) -> str:
    if value is True:
        return "retriable"
    if value is False:
        return "never"
    if value not in _RESUBMIT_FAILED_CHOICES:
        raise ValueError(
            f"resubmit_failed must be True, False or one of {_RESUBMIT_FAILED_CHOICES}, got {value!r}"
        )
    return str(value)


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


def _request_differences(job: Mapping[str, Any], request: Mapping[str, Any]) -> str:
    """The fields where a GetModelCustomizationJob response differs from a new request, for people."""
    pairs = [
        ("hyperParameters", job.get("hyperParameters"), request.get("hyperParameters")),
        (
            "trainingDataConfig",
            job.get("trainingDataConfig"),
            request.get("trainingDataConfig"),
        ),
        ("validationDataConfig", job.get("validationDataConfig"), request.get("validationDataConfig")),
        ("outputDataConfig.s3Uri", (job.get("outputDataConfig") or {}).get("s3Uri"),
         (request.get("outputDataConfig") or {}).get("s3Uri")),
        ("roleArn", job.get("roleArn"), request.get("roleArn")),
        ("customizationType", job.get("customizationType"), request.get("customizationType")),
    ]
    changed = [f"{name}: {old!r} -> {new!r}" for name, old, new in pairs if new is not None and old != new]
    return "; ".join(changed) if changed else "its content digest differs (tags, model name or other fields)"


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


def raise_for_failed(
    summary: Mapping[str, Any], *, retriable: bool = False, hint: str | None = None
) -> None:
    """Raise for a Failed or Stopped job, with Bedrock's failureMessage and what to do.

    A ``Failed`` job's message is classified by :func:`~airflow_bedrock_ft.core.failures.classify_failure`;
    the error is :class:`JobFailedNotRetriableError` (no Airflow retries) unless ``retriable``.

    :param summary: a job summary or trigger event.
    :param retriable: raise :class:`JobFailedError`, which Airflow retries.
    :param hint: what to do next, instead of the failure kind's advice.
    """
    from airflow_bedrock_ft.core.failures import classify_failure

    status = summary.get("job_status")
    kind = None
    if status not in (JobStatus.STOPPED.value, JobStatus.STOPPING.value):
        rule = classify_failure(summary.get("failure_message"))
        effect = "a retry may succeed" if rule.retriable else "a retry fails the same way"
        kind = f"{rule.kind.value} ({effect})"
        if hint is None:
            hint = (
                "The next try of the task submits a new job."
                if retriable
                else f"Not retried automatically. {rule.advice} {_TRAIN_AGAIN}"
            )
    error = JobFailedError if retriable else JobFailedNotRetriableError
    raise error(
        job_arn=summary.get("job_arn"),
        job_name=summary.get("job_name"),
        job_status=status,
        failure_message=summary.get("failure_message"),
        console_url=console_url(summary.get("job_arn")) or None,
        failure_kind=kind,
        hint=hint,
    )


class BedrockFineTuneCreateJobOperator(BaseOperator):
    """Submit an Amazon Bedrock model-customization job, then wait for it (deferred by default).

    The request is built and validated against botocore's service model and the model
    catalog before any API call; all problems are reported at once and the task fails
    without retrying.

    Submission is idempotent and never pays twice. The job name and custom model name (unless
    given) derive from the run identity ``(dag_id, task_id, run_id, map_index,
    idempotency_namespace)``; the ``clientRequestToken`` (unless given) from that identity and
    the digest of the request's content (every field but the job name and the token). Every
    job carries tags naming its Airflow identity and request digest
    (:func:`airflow_bedrock_ft.core.naming.identity_tags`). Before creating, the operator
    looks the name up:

    - a job of this run with the **same request** is re-attached (a retry after a worker
      crash never creates a second job);
    - a job of this run with a **changed request** (new data, other hyperparameters, a changed
      sweep list) is never re-attached: a new job is submitted under a derived name
      ``<name>-r<n>`` and the log says so, or the task fails with ``on_request_change="fail"``;
    - a job this run did not create is a clash (:class:`JobNameConflictError`, or a derived
      fresh name with ``on_name_conflict="suffix"``).

    A re-attached job that ended ``Stopped`` or is ``Stopping`` (whoever stopped it) is
    re-reported, never resubmitted, unless ``resubmit_stopped=True``. A ``Failed`` one is
    resubmitted only when its ``failureMessage`` says a retry can help (internal or capacity
    errors, :mod:`airflow_bedrock_ft.core.failures`); data, permission, quota, validation and
    unknown failures fail the task without Airflow retries and say what to fix.

    Waiting has no attempt budget by default: jobs can take days. With ``timeout`` the wait
    ends after that long and the job is stopped (unless ``stop_on_timeout=False``). Killing
    the task stops the job unless ``stop_on_kill=False``: on the worker (``execution_timeout``,
    marked failed or success, cleared) and while deferred when the task is marked failed or
    success. Clearing a deferred task does not stop the job: the next try re-attaches to it
    and keeps the training done so far (mark the task failed first to start over).

    Returns (XCom) ``{"job_arn", "job_name", "status", "custom_model_arn",
    "custom_model_name", "output_s3_uri", "training_loss", "validation_loss"}``; with
    ``wait_for_completion=False`` the status is the one at submission. The job ARN is also
    pushed under the XCom key ``job_arn`` as soon as it is known. A reused training (see
    ``reuse_completed``) returns the earlier job's fields plus ``reused_from``.

    The custom model is declared as an outlet through the asset alias
    :data:`CUSTOM_MODELS_ALIAS` (unless ``outlets`` is given): each success emits an event on
    ``Asset(<model ARN>)``. With the OpenLineage provider, the step reports its data and base
    model as inputs, the custom model (by ARN) as output, and a ``bedrockFineTuneJob`` run
    facet (:mod:`airflow_bedrock_ft.lineage`).

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
    :param on_request_change: ``"resubmit"`` (default) submits a new job under a derived name
        when this run's job was created with another request; ``"fail"`` fails the task instead.
    :param resubmit_failed: when this run's job ended Failed: ``"retriable"`` (default, also
        True) submits a new job only for failures a retry can help; ``"always"`` for every
        failure; ``"never"`` (False) re-reports the old failure.
    :param resubmit_stopped: submit a new job when this run's job was stopped (default False:
        a stopped job is re-reported and the task fails without retries).
    :param check_model: also apply the model catalog's rules (known base model, supported
        type, hyperparameter ranges) before submitting (default True).
    :param wait_for_completion: wait for the job to end (default True); False returns after
        submission.
    :param deferrable: wait in the triggerer instead of a worker slot (default from
        ``[bedrock_ft] default_deferrable``, falling back to True).
    :param poll_interval: seconds between status polls (default 60).
    :param max_attempts: give up after this many answered polls (default: no limit); polls that
        failed with throttling, 5xx or connection errors do not count.
    :param timeout: give up waiting after this long (timedelta or seconds; default: never).
    :param stop_on_kill: stop the job when the task is killed (default True).
    :param stop_on_timeout: stop the job when ``timeout`` or ``max_attempts`` runs out
        (default: same as ``stop_on_kill``). A wait that gives up without knowing the job's
        state never stops it.
    :param defer_timeout_grace: extra time the hard deferral deadline allows beyond
        ``timeout`` (default 5 minutes), so that the trigger's own deadline fires first.
    :param max_cost_usd: budget of the job's training cost in USD: before any API call, the
        task fails (without retries) when the estimate from ``cost_estimate`` is above it, or is
        unknown and ``allow_unknown_cost`` is off. None (default): no budget. (templated)
    :param allow_unknown_cost: with ``max_cost_usd``, submit even when the price table has no
        price for the model, type and region (default False: an unknown cost fails closed).
    :param cost_estimate: what the prepare step returned (its XCom), a dataset report or a cost
        estimate; the token totals of a report are priced with this job's base model,
        customization type, ``epochCount`` and region. The estimate is logged. (templated)
    :param price_file: price table overriding the built-in one (default ``[bedrock_ft]
        price_file``). (templated)
    :param reuse_completed: before submitting, look for a ``Completed`` job of an identical
        training (same :func:`~airflow_bedrock_ft.core.reuse.training_digest`: base model,
        customization type, hyperparameters, customization config, training and validation data
        content) whose custom model still exists, in any DAG run, DAG or deployment of the
        account, and return it instead of training (XCom ``reused_from`` = that job's ARN).
        Default False. Data that is not content-addressed costs one HeadObject per URI.
    :param reuse_max_age: only reuse a job created at most this long ago (timedelta or
        seconds; default: any age).
    :param aws_conn_id: The Airflow connection used for AWS credentials. (templated)
    :param region_name: AWS region; defaults to the connection's. (templated)
    """

    template_fields: Sequence[str] = (
        "max_cost_usd",
        "cost_estimate",
        "price_file",
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
        on_request_change: str = "resubmit",
        resubmit_failed: bool | str = "retriable",
        resubmit_stopped: bool = False,
        check_model: bool = True,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("bedrock_ft", "default_deferrable", fallback=True),
        poll_interval: float = 60,
        max_attempts: int | None = None,
        timeout: datetime.timedelta | float | None = None,
        stop_on_kill: bool = True,
        stop_on_timeout: bool | None = None,
        defer_timeout_grace: datetime.timedelta | float = DEFER_TIMEOUT_GRACE,
        max_cost_usd: float | str | None = None,
        allow_unknown_cost: bool = False,
        cost_estimate: Mapping[str, Any] | str | None = None,
        price_file: str | None = None,
        reuse_completed: bool = False,
        reuse_max_age: datetime.timedelta | float | None = None,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if "outlets" not in kwargs:
            kwargs["outlets"] = [AssetAlias(CUSTOM_MODELS_ALIAS)]
        super().__init__(**kwargs)
        self.max_cost_usd = max_cost_usd
        self.allow_unknown_cost = allow_unknown_cost
        self.cost_estimate = cost_estimate
        self.price_file = price_file
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
        if on_request_change not in _REQUEST_CHANGE_CHOICES:
            raise ValueError(
                f"on_request_change must be one of {_REQUEST_CHANGE_CHOICES}, got {on_request_change!r}"
            )
        _seconds(timeout, "timeout")
        _seconds(defer_timeout_grace, "defer_timeout_grace")
        _seconds(reuse_max_age, "reuse_max_age")
        self.reuse_completed = bool(reuse_completed)
        self.reuse_max_age = reuse_max_age
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
        self.on_request_change = on_request_change
        self.resubmit_failed = _resubmit_failed_mode(resubmit_failed)
        self.resubmit_stopped = resubmit_stopped
        self.check_model = check_model
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.stop_on_kill = stop_on_kill
        self.stop_on_timeout = stop_on_kill if stop_on_timeout is None else stop_on_timeout
        self.defer_timeout_grace = defer_timeout_grace
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        # The job this process is responsible for, for on_kill only. execute_complete runs in
        # another process and never reads it.
        self._job_ref: str | None = None
        # For the OpenLineage methods, which run in the process that ran execute or execute_complete.
        self._submitted_request: dict[str, Any] | None = None
        self._lineage_result: dict[str, Any] | None = None

    @cached_property
    def hook(self) -> BedrockFineTuneHook:
        """The Bedrock hook (a cached property, so tests can replace it)."""
        from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook

        return BedrockFineTuneHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    # --- request --------------------------------------------------------------------------------

    def build_request(self, context: Context) -> dict[str, Any]:
        """Build and validate the CreateModelCustomizationJob request for this task run.

        The request carries the run's identity tags (with the digest of its content) and the
        ``clientRequestToken`` derived from both.

        :raises AirflowFailException: listing every problem (path, value, rule) when invalid.
        """
        from airflow_bedrock_ft.core.naming import (
            TAG_PREFIX,
            TAG_TRAINING,
            identity_tags,
            job_identity,
            request_digest,
            request_token,
        )
        from airflow_bedrock_ft.core.request import (
            RequestValidationError,
            build_request,
            check_request,
            distillation_config,
            rft_config,
        )

        ti = context["ti"]
        identity = job_identity(
            ti.dag_id,
            ti.task_id,
            ti.run_id,
            getattr(ti, "map_index", -1),
            namespace=self.idempotency_namespace or None,
        )
        own = sorted(k for k in (self.job_tags or {}) if str(k).startswith(TAG_PREFIX))
        if own:
            raise AirflowFailException(
                f"job_tags: the keys {', '.join(map(repr, own))} start with {TAG_PREFIX!r}, which this "
                f"provider reserves for the job's Airflow identity. Rename them. No job was submitted."
            )
        customization_type = self.customization_type
        config: dict[str, Any] = dict(self.customization_config or {})
        if self.teacher_model:
            max_len: Any = self.max_response_length_for_inference
            if isinstance(max_len, str) and max_len.strip().isdigit():
                max_len = int(max_len)  # rendered from a template such as "{{ params.max_length }}"
            config.update(distillation_config(self.teacher_model, max_len))
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
            checked = check_request(request, check_model=self.check_model)
            content = request_digest(checked)
            tags = identity_tags(
                identity,
                content_digest=content,
                reap=bool(self.wait_for_completion and self.stop_on_kill),
            )
            training = self._training_digest(checked)
            if training is not None:
                tags[TAG_TRAINING] = training
            tag_list = [{"key": k, "value": v} for k, v in tags.items()]
            checked["jobTags"] = [*checked.get("jobTags", []), *tag_list]
            token = self.client_request_token or request_token(identity.digest, content)
            checked["clientRequestToken"] = token
            return check_request(checked, check_model=self.check_model)
        except RequestValidationError as exc:
            raise AirflowFailException(
                f"{exc}\nNo job was submitted. Fix the arguments of task {ti.task_id!r}."
            ) from exc

    # --- reuse of a completed, identical training -------------------------------------------------

    def _s3_client(self) -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn()

    def _training_digest(self, request: Mapping[str, Any]) -> str | None:
        """The training digest of ``request``, or None when its data cannot be fingerprinted.

        Content-addressed data (the prepare step's) is fingerprinted from its keys; other S3
        data by HeadObject, only when ``reuse_completed`` is on (so that a plain submission
        makes no S3 request).
        """
        from botocore.exceptions import BotoCoreError, ClientError

        from airflow_bedrock_ft.core.reuse import TrainingDigestError, compute_training_digest

        try:
            return compute_training_digest(request, self._s3_client() if self.reuse_completed else None)
        except TrainingDigestError as exc:
            if self.reuse_completed:
                self.log.warning(
                    "Cannot identify the training data, so no earlier job can be reused: %s", exc
                )
            return None
        except (ClientError, BotoCoreError) as exc:  # S3 permissions or availability
            # Reuse saves a training; not being able to look for one must not stop it.
            self.log.warning(
                "Could not read the training data's checksums (%s); training without looking for a "
                "job to reuse.",
                exc,
            )
            return None

    def find_reusable(self, request: Mapping[str, Any]) -> dict[str, Any] | None:
        """The result of a completed job of an identical training to return instead, or None.

        Never reuses while this task run has a job of its own under its name (a retry re-attaches
        to it instead).
        """
        from airflow_bedrock_ft.core.naming import TAG_TRAINING
        from airflow_bedrock_ft.core.reuse import find_reusable_job
        from airflow_bedrock_ft.hooks.bedrock_ft import job_summary

        digest = {t["key"]: t["value"] for t in request.get("jobTags", [])}.get(TAG_TRAINING)
        if not digest:
            return None
        own = self.hook.find_job_by_name(request["jobName"])
        if own is not None:
            self.log.info(
                "This task run already has job %s (%s); not looking for another job to reuse.",
                own.get("jobArn"),
                own.get("status"),
            )
            return None
        max_age = _seconds(self.reuse_max_age, "reuse_max_age")
        search = find_reusable_job(
            self.hook.client,
            digest,
            customization_type=request.get("customizationType"),
            max_age=None if max_age is None else datetime.timedelta(seconds=max_age),
        )
        for model_arn in search.deleted_models:
            self.log.info(
                "A completed identical training made %s, which was deleted: not reusing it.", model_arn
            )
        if search.job is None:
            self.log.info(
                "No completed job of an identical training (digest %s%s) among %d completed jobs; training.",
                digest[:16],
                "" if max_age is None else f", created within {datetime.timedelta(seconds=max_age)}",
                search.examined,
            )
            return None
        summary = job_summary(search.job)
        self.log.info(
            "Reusing custom model %s of completed job %s (%s), an identical training (digest %s): "
            "no new job is submitted.",
            summary.get("output_model_arn"),
            summary.get("job_arn"),
            summary.get("job_name"),
            digest[:16],
        )
        return {**result_from_summary(summary), "reused_from": summary.get("job_arn")}

    def _record_model_event(self, result: Mapping[str, Any]) -> None:
        """Name the custom model in the outlets' Asset events (an alias gets the model's Asset).

        Reads the running task's context (``get_current_context``); outside a task run (the
        operator called directly) there are no outlet events to record.
        """
        from airflow.sdk import get_current_context

        self._lineage_result = dict(result)
        model_arn = result.get("custom_model_arn")
        try:
            outlet_events = get_current_context().get("outlet_events")
        except RuntimeError:
            return
        if not model_arn or outlet_events is None:
            return
        extra = {k: result.get(k) for k in ("job_arn", "custom_model_name", "reused_from") if result.get(k)}
        for outlet in self.outlets or []:
            if isinstance(outlet, AssetAlias):
                outlet_events[outlet].add(Asset(uri=model_arn, name=model_arn), extra=extra)
            elif isinstance(outlet, Asset):
                outlet_events[outlet].extra = {"custom_model_arn": model_arn, **extra}

    # --- lineage ------------------------------------------------------------------------------

    def _lineage(self, *, complete: bool) -> Any:
        from airflow.providers.openlineage.extractors import OperatorLineage

        from airflow_bedrock_ft import lineage

        result = (self._lineage_result if complete else None) or {}
        job_arn = result.get("job_arn") or self._job_ref
        base = lineage.base_model_arn(self.base_model, job_arn or result.get("custom_model_arn"))
        facet = lineage.fine_tune_facet(
            base_model=self.base_model,
            customization_type=self.customization_type,
            hyperparameters=self.hyperparameters,
            request=self._submitted_request,
            result=result or None,
            job_ref=self._job_ref,
        )
        return OperatorLineage(
            inputs=lineage.inputs(*lineage.data_locations(self.training_data, self.validation_data), base),
            outputs=lineage.outputs(result.get("custom_model_arn"), result.get("output_s3_uri")),
            run_facets={lineage.FINE_TUNE_FACET: facet},
        )

    def get_openlineage_facets_on_start(self) -> Any:
        """OpenLineage at start: the training and validation data as inputs (needs the provider)."""
        return self._lineage(complete=False)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage at the end: data and base model in, the custom model (by ARN) and the job's
        output prefix out, and the ``bedrockFineTuneJob`` run facet (job, hyperparameters, losses,
        reuse, cost estimate). Also used on failure, with what is known then."""
        return self._lineage(complete=True)

    # --- submission -----------------------------------------------------------------------------

    def submit_or_attach(self, request: Mapping[str, Any]) -> tuple[str, dict[str, Any] | None]:
        """Create the job, or find the one an earlier try of this run created for this request.

        Returns the job ARN and, when an existing job was re-attached, its Get response.

        :raises JobFailedNotRetriableError: when this run's job for this request was stopped (and
            ``resubmit_stopped`` is off) or failed in a way a retry cannot fix.
        """
        from botocore.exceptions import ClientError

        from airflow_bedrock_ft.core.naming import (
            TAG_IDENTITY,
            TAG_REQUEST,
            suffixed_job_name,
            suffixed_token,
        )
        from airflow_bedrock_ft.hooks.bedrock_ft import NAME_IN_USE_ERROR_CODES, error_code, job_summary

        own_tags = {t["key"]: t["value"] for t in request.get("jobTags", [])}
        identity_digest, content = own_tags.get(TAG_IDENTITY), own_tags.get(TAG_REQUEST)
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
                            "ServiceQuotaExceededException",
                            "TooManyTagsException",
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
                    if generation:
                        self.log.info("Submitted job %s (%s) under the derived name.", name, job_arn)
                    else:
                        self.log.info("Submitted Bedrock model customization job %s (%s).", name, job_arn)
                    return job_arn, None

            verdict = self._judge(existing, token, identity_digest, content)
            if verdict == "foreign":
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
            if verdict == "changed":
                differences = _request_differences(existing, request)
                if self.on_request_change == "fail":
                    raise AirflowFailException(
                        f"Job {existing.get('jobArn')} ({name}, status {existing.get('status')}) was "
                        f"submitted by this task run with a different request ({differences}). "
                        "on_request_change='fail', so no new job was submitted: restore the request, "
                        "start a new DAG run, or pass on_request_change='resubmit'."
                    )
                self.log.warning(
                    "Job %s (%s, status %s) of this run was submitted with a different request (%s); "
                    "not re-attaching to it. Submitting a new job under a derived name.",
                    existing.get("jobArn"),
                    name,
                    existing.get("status"),
                    differences,
                )
                continue

            status = existing["status"]
            if status in (JobStatus.STOPPING.value, JobStatus.STOPPED.value):
                if self.resubmit_stopped:
                    self.log.info(
                        "Job %s of this run is %s; resubmit_stopped is on, submitting a new job.",
                        existing.get("jobArn"),
                        status,
                    )
                    continue
                self.log.info(
                    "Job %s of this run is %s; re-reporting it instead of training again.",
                    existing.get("jobArn"),
                    status,
                )
                raise_for_failed(job_summary(existing))
            if status == JobStatus.FAILED.value:
                if self._resubmit_after_failure(existing.get("failureMessage")):
                    self.log.info(
                        "Job %s of this run failed in a way a retry may fix (%s); submitting a new job.",
                        existing.get("jobArn"),
                        existing.get("failureMessage") or "no failureMessage",
                    )
                    continue
                self.log.info("Job %s of this run failed; re-reporting it.", existing.get("jobArn"))
                raise_for_failed(job_summary(existing))
            self._job_ref = existing["jobArn"]
            self.log.info(
                "Re-attaching to job %s (status %s), submitted earlier for this run with the same "
                "request; not creating another.",
                existing["jobArn"],
                status,
            )
            return existing["jobArn"], existing
        raise BedrockFineTuneError(
            f"Gave up after {MAX_GENERATIONS} job names derived from {base_name!r}, all taken or failed. "
            "Set job_name explicitly.",
            job_name=base_name,
        )

    def _judge(
        self,
        existing: Mapping[str, Any],
        token: str,
        identity_digest: str | None,
        content: str | None,
    ) -> str:
        """``"same"``, ``"changed"`` (this run's job, another request) or ``"foreign"``.

        The job's identity tags decide; a job without them (or whose tags cannot be read)
        is judged by its ``clientRequestToken`` alone.
        """
        from botocore.exceptions import ClientError

        from airflow_bedrock_ft.core.naming import identity_from_tags

        tagged = None
        try:
            tagged = identity_from_tags(self.hook.get_tags(existing["jobArn"]))
        except ClientError as exc:
            self.log.warning(
                "Could not read the tags of job %s (%s); judging it by its clientRequestToken only.",
                existing.get("jobArn"),
                exc,
            )
        if tagged is not None and identity_digest and tagged.identity_digest:
            if tagged.identity_digest != identity_digest:
                return "foreign"
            return "same" if tagged.request_digest == content else "changed"
        return "same" if existing.get("clientRequestToken") == token else "foreign"

    def _resubmit_after_failure(self, failure_message: str | None) -> bool:
        from airflow_bedrock_ft.core.failures import classify_failure

        if self.resubmit_failed == "never":
            return False
        return self.resubmit_failed == "always" or classify_failure(failure_message).retriable

    # --- execution ------------------------------------------------------------------------------

    def check_cost(self) -> dict[str, Any] | None:
        """Log the cost estimate and enforce ``max_cost_usd``; makes no API call.

        Returns the estimate (JSON primitives), or None without ``cost_estimate``.

        :raises AirflowFailException: when over budget, or unknown and not allowed.
        """
        from airflow_bedrock_ft.operators.cost import budget_guard

        if self.cost_estimate in (None, "") and self.max_cost_usd in (None, ""):
            return None
        hps = self.hyperparameters or {}
        epochs = hps.get("epochCount", hps.get("epoch_count"))
        return budget_guard(
            self.cost_estimate, self.max_cost_usd, allow_unknown=self.allow_unknown_cost,
            model=self.base_model, customization_type=self.customization_type or "FINE_TUNING",
            epochs=epochs,
            region=self.region_name or self.hook.region_name, price_file=self.price_file, log=self.log,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_bedrock_ft.hooks.bedrock_ft import job_summary

        self.check_cost()
        request = self.build_request(context)
        self._submitted_request = request
        if self.reuse_completed:
            reused = self.find_reusable(request)
            if reused is not None:
                context["ti"].xcom_push(key=JOB_ARN_XCOM_KEY, value=reused["job_arn"])
                self._record_model_event(reused)
                return reused
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
                else datetime.timedelta(
                    seconds=timeout + (_seconds(self.defer_timeout_grace, "defer_timeout_grace") or 0.0)
                ),
            )

        try:
            job = self.hook.wait_for_job(
                job_arn, poll_interval=self.poll_interval, timeout=timeout, max_attempts=self.max_attempts
            )
        except JobTimeoutError as exc:
            return self._give_up(
                job_arn,
                exc.job_name,
                exc.job_status,
                exc.waited,
                status_known=exc.status_known,
                failed_polls=exc.failed_polls,
            )
        return self._finish(job_summary(job))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger fired: return the result or raise with Bedrock's reason."""
        checked = validate_event(event)
        self._job_ref = checked["job_arn"]
        if checked["status"] == "timeout":
            waited = (
                f"{self.max_attempts} answered polls"
                if checked.get("reason") == "max_attempts"
                else self._waited(_seconds(self.timeout, "timeout"))
            )
            # An event without status_known (a trigger of an older version) is taken as not
            # knowing the job's state: the side that never stops a healthy job.
            return self._give_up(
                checked["job_arn"],
                checked.get("job_name"),
                checked.get("job_status"),
                waited,
                status_known=checked.get("status_known") is True,
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
        """Also stop the job when the hard deferral deadline passed before the trigger reported.

        Only this task instance's own job (its map index's ``job_arn`` XCom) is considered, and
        only after its state was read: a job whose state cannot be read is never stopped.
        """
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except TaskDeferralTimeout as exc:
            ti = context["ti"]
            job_arn = ti.xcom_pull(
                task_ids=self.task_id, key=JOB_ARN_XCOM_KEY, map_indexes=getattr(ti, "map_index", -1)
            )
            if not isinstance(job_arn, str) or not job_arn:
                self.log.warning("No job ARN of this task instance in XCom (%r); nothing to stop.", job_arn)
                raise
            try:
                job = self.hook.get_job(job_arn)
            except Exception:
                self.log.warning("Could not read job %s; leaving it as it is.", job_arn, exc_info=True)
                job = {}
            return self._give_up(
                job_arn,
                job.get("jobName"),
                job.get("status"),
                self._waited(_seconds(self.timeout, "timeout")),
                status_known=bool(job.get("status")),
                cause=exc,
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
        return f"{self.max_attempts} answered polls"

    def _give_up(
        self,
        job_arn: str,
        job_name: str | None,
        job_status: str | None,
        waited: str,
        *,
        status_known: bool,
        failed_polls: int = 0,
        cause: BaseException | None = None,
    ) -> dict[str, Any]:
        """End a wait that ran out: stop the job (if asked) and fail, or report how it ended.

        A wait without a recent answer (``status_known`` false: no poll answered, or only
        throttling, 5xx and dropped connections lately) does not know the job's state: the
        job is never stopped and the task fails with a retriable :class:`JobTimeoutError`
        (the next try re-attaches). Only :func:`timeout_allows_stop` lets a stop through.
        """
        from airflow_bedrock_ft.hooks.bedrock_ft import job_summary

        state = {"status_known": status_known and job_status is not None, "job_status": job_status}
        if not state["status_known"]:
            self.log.warning(
                "Gave up waiting for job %s without knowing its state; leaving it running.", job_arn
            )
            raise JobTimeoutError(
                job_arn=job_arn,
                job_name=job_name,
                job_status=job_status,
                waited=waited,
                stopped=False,
                status_known=False,
                failed_polls=failed_polls,
            ) from cause
        assert job_status is not None
        if classify(job_status) is not Outcome.RUNNING:
            return self._finish(job_summary(self.hook.get_job(job_arn)))
        if not self.stop_on_timeout:
            raise JobTimeoutError(
                job_arn=job_arn, job_name=job_name, job_status=job_status, waited=waited, stopped=False
            ) from cause
        if timeout_allows_stop(state):
            self.log.info("Stopping job %s after %s.", job_arn, waited)
            stopped = self.hook.stop_job(job_arn)
        else:  # Stopping already: nothing to ask for
            stopped = False
        if not stopped:
            job = self.hook.get_job(job_arn)
            if job["status"] != JobStatus.STOPPING.value:
                # It ended between the last poll and the stop: report how it really ended.
                return self._finish(job_summary(job))
            raise JobStoppedOnTimeoutError(
                job_arn=job_arn,
                job_name=job_name or job.get("jobName"),
                job_status=job["status"],
                waited=waited,
                stopped=True,
                action=(
                    "The job was already stopping (stopped by someone else, or by an earlier try), so "
                    "it will end as Stopped and produce no model; the task is not retried. Start a new "
                    "DAG run, or set resubmit_stopped=True and clear the task, to train again."
                ),
            ) from cause
        raise JobStoppedOnTimeoutError(
            job_arn=job_arn, job_name=job_name, job_status=job_status, waited=waited, stopped=True
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
            result = result_from_summary(summary)
            self._record_model_event(result)
            return result
        if outcome is Outcome.FAILED:
            if status == JobStatus.STOPPED.value:
                raise_for_failed(summary, retriable=self.resubmit_stopped)
            raise_for_failed(summary, retriable=self._resubmit_after_failure(summary.get("failure_message")))
        raise TriggerEventError(
            f"Job {summary.get('job_arn')} reported as finished while still {status}.",
            job_arn=summary.get("job_arn"),
            job_status=status,
        )
