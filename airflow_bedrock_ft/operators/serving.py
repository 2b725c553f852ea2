"""Operators that serve a custom model for evaluation and tear the serving down again.

* :class:`BedrockCreateCustomModelDeploymentOperator` / :class:`BedrockDeleteCustomModelDeploymentOperator`
  - an on-demand custom model deployment (``CreateCustomModelDeployment``), billed per token;
* :class:`BedrockCreateProvisionedThroughputOperator` / :class:`BedrockDeleteProvisionedThroughputOperator`
  - provisioned throughput, for models that on-demand deployment does not serve.

Their waits defer to :class:`~airflow_bedrock_ft.triggers.bedrock_ft.BedrockResourceReadyTrigger`
(the job trigger's polling, backoff and status-table design, one table per resource kind).
Use the create operator as a *setup* task and the delete operator as its *teardown*, so the
resource is deleted whether the evaluation succeeds, fails, is killed, or the run is marked
failed::

    deploy = BedrockCreateCustomModelDeploymentOperator(task_id="deploy", model_arn=...)
    undeploy = BedrockDeleteCustomModelDeploymentOperator(
        task_id="undeploy", deployment="{{ ti.xcom_pull(task_ids='deploy', key='resource_arn') }}"
    )
    deploy >> evaluate >> undeploy.as_teardown(setups=deploy)

A teardown runs only when its setup succeeded, so the create operator cleans up after itself
when it fails: a resource that ends ``Failed``, a wait that times out, and a kill while it
waits (``on_kill`` in the worker; the trigger's ``on_kill`` when deferred and the task
instance really ended) all delete what it created.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook

#: XCom key under which the create operators push the resource ARN as soon as it exists.
RESOURCE_ARN_KEY = "resource_arn"


def _absent(value: Any) -> bool:
    """True for "no model / no resource" as templates render it."""
    return value is None or (isinstance(value, str) and value.strip() in ("", "None", "null"))


class _ServingOperator(BaseOperator):
    """What the create and delete operators of one resource kind share."""

    kind: ClassVar[str]
    noun: ClassVar[str]

    def __init__(
        self,
        *,
        wait_for_completion: bool = True,
        deferrable: bool = True,
        poll_interval: float = 30.0,
        max_attempts: int | None = None,
        wait_timeout: float | None = 3600.0,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.wait_timeout = wait_timeout
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    @cached_property
    def hook(self) -> BedrockFineTuneHook:
        """The Bedrock hook (a cached property, so tests can replace it)."""
        from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook

        return BedrockFineTuneHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    def _wait(
        self, context: Context, identifier: str, wait_for: str, *, delete_on_kill: bool
    ) -> dict[str, Any] | None:
        """Defer until the resource is ready / deleted; or, not deferrable, block until it is.

        Returns the final event when it blocked; deferring raises instead.
        """
        from airflow_bedrock_ft.triggers.bedrock_ft import BedrockResourceReadyTrigger

        timeout_at = time.time() + self.wait_timeout if self.wait_timeout else None
        trigger = BedrockResourceReadyTrigger(
            kind=self.kind,
            identifier=identifier,
            wait_for=wait_for,
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            poll_interval=self.poll_interval,
            max_attempts=self.max_attempts,
            timeout_at=timeout_at,
            delete_on_kill=delete_on_kill,
        )
        if self.deferrable:
            self.defer(
                trigger=trigger,
                method_name="execute_complete",
                timeout=dt.timedelta(seconds=self.wait_timeout + 60) if self.wait_timeout else None,
            )
        return self._blocking_wait(identifier, wait_for, timeout_at)

    def _blocking_wait(self, identifier: str, wait_for: str, timeout_at: float | None) -> dict[str, Any]:
        """The trigger's decisions (:func:`~airflow_bedrock_ft.core.states.judge_resource`) and
        bookkeeping (:class:`~airflow_bedrock_ft.core.retry.PollTracker`), in the worker
        (``deferrable=False``)."""
        from botocore.exceptions import ClientError

        from airflow_bedrock_ft.core.retry import PollTracker, error_code, is_transient_error
        from airflow_bedrock_ft.core.states import judge_resource

        subject = f"{self.noun} {identifier}"
        tracker = PollTracker(self.poll_interval, self.max_attempts)
        while True:
            try:
                doc: dict[str, Any] | None = self.hook.get_resource(self.kind, identifier)
            except Exception as exc:
                if isinstance(exc, ClientError) and error_code(exc) == "ResourceNotFoundException":
                    doc = None
                elif is_transient_error(exc):
                    time.sleep(tracker.transient_error())
                    continue
                else:
                    raise
            status = None if doc is None else doc.get("status")
            tracker.answered(status)
            event = {
                "kind": self.kind,
                "identifier": identifier,
                "resource_status": status,
                "resource_arn": identifier,
                "failure_message": (doc or {}).get("failureMessage"),
            }
            verdict = judge_resource(self.kind, doc, wait_for, subject)
            if verdict is not None:
                return {**event, "status": verdict[0], "reason": verdict[1], "message": verdict[2]}
            if (timeout_at is not None and time.time() >= timeout_at) or tracker.out_of_attempts:
                return {
                    **event,
                    "status": "timeout",
                    "reason": "timeout",
                    "message": f"Gave up waiting for {subject} (last status {status}).",
                }
            time.sleep(tracker.next_delay())


class _CreateServingOperator(_ServingOperator):
    """Create a serving resource for a model, idempotently, and wait until it serves."""

    def __init__(
        self,
        *,
        delete_on_failure: bool = True,
        idempotency_namespace: str | None = None,
        skip_without_model: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.delete_on_failure = delete_on_failure
        self.idempotency_namespace = idempotency_namespace
        self.skip_without_model = skip_without_model

    # Subclasses: the create call, and how to read a Get response.
    def _create(self, name: str, token: str, tags: dict[str, str]) -> str:
        raise NotImplementedError

    def _model_of(self, doc: Mapping[str, Any]) -> str | None:
        return doc.get("modelArn")

    def _target_model(self) -> str:
        raise NotImplementedError

    def _names(self, context: Context) -> tuple[str, str, dict[str, str]]:
        """(name, clientRequestToken, tags) derived from the task run and the model."""
        from airflow_bedrock_ft.core.naming import identity_tags, job_identity, request_digest, request_token

        ti = context["ti"]
        identity = job_identity(
            ti.dag_id,
            ti.task_id,
            ti.run_id,
            getattr(ti, "map_index", -1),
            namespace=self.idempotency_namespace,
        )
        name = self._explicit_name() or identity.custom_model_name
        content = request_digest({"kind": self.kind, "model": self._target_model(), "name": name})
        tags = identity_tags(identity, content_digest=content, reap=False)
        return name, request_token(identity.digest, content), tags

    def _explicit_name(self) -> str | None:
        raise NotImplementedError

    def execute(self, context: Context) -> str | None:
        from botocore.exceptions import ClientError

        from airflow_bedrock_ft.core.retry import error_code

        model = self._target_model()
        if _absent(model):
            if not self.skip_without_model:
                # Airflow requires ALL_SUCCESS after a setup task, so a skip would skip them too.
                self.log.info("No model to serve (got %r); nothing to create.", model)
                context["ti"].xcom_push(key=RESOURCE_ARN_KEY, value=None)
                return None
            raise AirflowSkipException(f"No model to serve (got {model!r}); nothing to create.")
        name, token, tags = self._names(context)
        existing = None
        try:
            existing = self.hook.get_resource(self.kind, name)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
        if existing is not None and existing.get("status") != "Failed":
            if self._model_of(existing) != model:
                raise AirflowException(
                    f"{self.noun} {name!r} already exists and serves {self._model_of(existing)}, "
                    f"not {model}. "
                    "Delete it or choose another name."
                )
            arn = str(existing.get(self._arn_field))
            self.log.info(
                "%s %s already exists for %s (status %s); re-attaching.",
                self.noun,
                arn,
                model,
                existing.get("status"),
            )
        else:
            if existing is not None:  # a Failed one holds the name: replace it
                self.log.info("%s %s is Failed; deleting it before creating it again.", self.noun, name)
                self._delete(name)
                self._wait_gone(name)
            arn = self._create(name, token, tags)
            self.log.info("Created %s %s for %s.", self.noun, arn, model)
        context["ti"].xcom_push(key=RESOURCE_ARN_KEY, value=arn)
        if not self.wait_for_completion:
            return arn
        event = self._wait(context, arn, "ready", delete_on_kill=self.delete_on_failure)
        assert event is not None
        return self._finish(arn, event)

    _arn_field: ClassVar[str]

    def _delete(self, identifier: str) -> bool:
        return self.hook.delete_resource(self.kind, identifier)

    def _wait_gone(self, identifier: str) -> None:
        event = self._blocking_wait(identifier, "deleted", time.time() + (self.wait_timeout or 3600.0))
        if event["status"] != "success":
            raise AirflowException(event["message"])

    def execute_complete(self, context: Context, event: dict[str, Any]) -> str:
        """Back from the trigger: the resource's ARN, or clean up and fail."""
        arn = str(event.get("resource_arn") or event.get("identifier"))
        return self._finish(arn, event)

    def _finish(self, arn: str, event: Mapping[str, Any]) -> str:
        if event.get("status") == "success":
            self.log.info("%s", event.get("message"))
            return arn
        message = str(event.get("message") or f"{self.noun} {arn} is not ready: {event}")
        if self.delete_on_failure:
            self.log.warning("%s Deleting %s so that nothing is left running.", message, arn)
            self._delete(arn)
            message += f" {self.noun} {arn} was deleted."
        raise AirflowException(message)

    def on_kill(self) -> None:
        """Killed while waiting in the worker: delete what this task created."""
        if not self.delete_on_failure:
            return
        try:
            name = self._explicit_name()
            ident = getattr(self, "_created_arn", None) or name
            if ident:
                self._delete(ident)
        except Exception:  # on_kill must not raise
            self.log.warning("Could not delete the %s on kill.", self.noun, exc_info=True)


class BedrockCreateCustomModelDeploymentOperator(_CreateServingOperator):
    """Serve a custom model on demand (``CreateCustomModelDeployment``) and wait until ``Active``.

    Idempotent per task run: the deployment name and ``clientRequestToken`` derive from the
    run (or ``deployment_name``), so a retry re-attaches to the deployment it created instead
    of creating a second one; an existing deployment of that name that serves another model is
    an error. The ARN is pushed to XCom under ``resource_arn`` as soon as the deployment
    exists, and is the return value once it is ``Active``. A ``Failed`` deployment, a wait that
    times out and a kill during the wait delete the deployment (``delete_on_failure``).
    Without a model (``model_arn`` None, e.g. no incumbent yet) the task is skipped, or with
    ``skip_without_model=False`` succeeds and returns None.

    .. seealso::
        https://docs.aws.amazon.com/bedrock/latest/APIReference/API_CreateCustomModelDeployment.html

    :param model_arn: the custom model to serve. (templated)
    :param deployment_name: the deployment's name; default derived from the task run. (templated)
    :param description: the deployment's description. (templated)
    :param tags: more tags for the deployment. (templated)
    :param wait_for_completion: wait until the deployment is ``Active`` (default True).
    :param deferrable: wait in the triggerer (default True) instead of the worker.
    :param poll_interval: seconds between polls.
    :param max_attempts: polls that got an answer before giving up (default: no limit).
    :param wait_timeout: seconds before giving up the wait (default one hour).
    :param delete_on_failure: delete the deployment when it fails, times out or the task is killed.
    :param idempotency_namespace: mixed into the derived name and token.
    :param skip_without_model: without a model, skip the task (True, default); False succeeds
        with None instead, so that the tasks after this setup (which Airflow requires to
        follow it with ``ALL_SUCCESS``) still run, e.g. an optional incumbent.
    :param aws_conn_id: the Airflow AWS connection.
    :param region_name: AWS region; default from the connection.
    """

    kind = "deployment"
    noun = "Custom model deployment"
    _arn_field = "customModelDeploymentArn"
    template_fields: Sequence[str] = ("model_arn", "deployment_name", "description", "tags")
    ui_color = "#e0f2e9"

    def __init__(
        self,
        *,
        model_arn: str | None,
        deployment_name: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_arn = model_arn
        self.deployment_name = deployment_name
        self.description = description
        self.tags = dict(tags or {})

    def _target_model(self) -> str:
        return self.model_arn  # type: ignore[return-value]

    def _explicit_name(self) -> str | None:
        return self.deployment_name or None

    def _create(self, name: str, token: str, tags: dict[str, str]) -> str:
        arn = self.hook.create_deployment(
            name,
            str(self.model_arn),
            description=self.description or f"Served by Airflow task {self.task_id}",
            tags={**tags, **self.tags},
            client_request_token=token,
        )
        self._created_arn = arn
        return arn


class BedrockCreateProvisionedThroughputOperator(_CreateServingOperator):
    """Buy provisioned throughput for a model (``CreateProvisionedModelThroughput``) and wait
    until ``InService``.

    For models that on-demand deployment does not serve. The same idempotency, XCom and
    clean-up rules as :class:`BedrockCreateCustomModelDeploymentOperator`. Provisioned
    throughput is billed per hour from creation: pair it with
    :class:`BedrockDeleteProvisionedThroughputOperator` as a teardown. Without a commitment
    (the default) it can be deleted at any time.

    .. seealso::
        https://docs.aws.amazon.com/bedrock/latest/APIReference/API_CreateProvisionedModelThroughput.html

    :param model_id: custom model ARN (or foundation model) to serve. (templated)
    :param model_units: model units to buy (default 1).
    :param provisioned_model_name: the name; default derived from the task run. (templated)
    :param commitment_duration: ``OneMonth`` or ``SixMonths``; None (default) for no commitment.
    :param tags: more tags. (templated)
    """

    kind = "provisioned_throughput"
    noun = "Provisioned throughput"
    _arn_field = "provisionedModelArn"
    template_fields: Sequence[str] = ("model_id", "provisioned_model_name", "tags")
    ui_color = "#e0f2e9"

    def __init__(
        self,
        *,
        model_id: str | None,
        model_units: int = 1,
        provisioned_model_name: str | None = None,
        commitment_duration: str | None = None,
        tags: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if model_units < 1:
            raise ValueError(f"model_units must be at least 1, got {model_units}")
        self.model_id = model_id
        self.model_units = model_units
        self.provisioned_model_name = provisioned_model_name
        self.commitment_duration = commitment_duration
        self.tags = dict(tags or {})

    def _target_model(self) -> str:
        return self.model_id  # type: ignore[return-value]

    def _explicit_name(self) -> str | None:
        return self.provisioned_model_name or None

    def _create(self, name: str, token: str, tags: dict[str, str]) -> str:
        arn = self.hook.create_provisioned_throughput(
            name,
            str(self.model_id),
            self.model_units,
            commitment_duration=self.commitment_duration,
            tags={**tags, **self.tags},
            client_request_token=token,
        )
        self._created_arn = arn
        return arn


class _DeleteServingOperator(_ServingOperator):
    """Delete a serving resource and wait until it is gone; nothing to delete is success."""

    def __init__(self, *, resource: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.resource = resource

    def execute(self, context: Context) -> str | None:
        ident = self.resource
        if _absent(ident):
            self.log.info("No %s to delete (got %r).", self.noun.lower(), ident)
            return None
        assert ident is not None
        existed = self.hook.delete_resource(self.kind, ident)
        if not existed:
            self.log.info("%s %s does not exist (already deleted).", self.noun, ident)
            return ident
        self.log.info("Deleting %s %s.", self.noun, ident)
        if not self.wait_for_completion:
            return ident
        event = self._wait(context, ident, "deleted", delete_on_kill=False)
        assert event is not None
        return self.execute_complete(context, event)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> str:
        """Back from the trigger: the resource is gone, or fail with why."""
        if event.get("status") != "success":
            raise AirflowException(str(event.get("message")))
        self.log.info("%s", event.get("message"))
        return str(event.get("identifier"))


class BedrockDeleteCustomModelDeploymentOperator(_DeleteServingOperator):
    """Delete a custom model deployment (``DeleteCustomModelDeployment``) and wait until gone.

    Meant as the teardown of :class:`BedrockCreateCustomModelDeploymentOperator`. A deployment
    that does not exist (already deleted, never created) and an empty ``deployment`` (the
    setup was skipped) are success.

    :param deployment: deployment ARN or name. (templated)
    """

    kind = "deployment"
    noun = "Custom model deployment"
    template_fields: Sequence[str] = ("resource",)
    ui_color = "#f2e0e0"

    def __init__(self, *, deployment: str | None, **kwargs: Any) -> None:
        super().__init__(resource=deployment, **kwargs)


class BedrockDeleteProvisionedThroughputOperator(_DeleteServingOperator):
    """Delete provisioned throughput (``DeleteProvisionedModelThroughput``) and wait until gone.

    :param provisioned_model: provisioned model ARN or name. (templated)
    """

    kind = "provisioned_throughput"
    noun = "Provisioned throughput"
    template_fields: Sequence[str] = ("resource",)
    ui_color = "#f2e0e0"

    def __init__(self, *, provisioned_model: str | None, **kwargs: Any) -> None:
        super().__init__(resource=provisioned_model, **kwargs)
