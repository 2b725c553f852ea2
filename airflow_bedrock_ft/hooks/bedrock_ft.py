"""Hook for Amazon Bedrock model-customization jobs and the resources that serve their models.

The hook owns credentials and clients and offers a few named calls that return plain dicts.
It decides nothing about statuses itself: :func:`airflow_bedrock_ft.core.states.classify`
(jobs) and :func:`~airflow_bedrock_ft.core.states.classify_resource` (custom model
deployments, provisioned throughput) do.

Asynchronous calls share one aiobotocore client per event loop and per (connection id,
region, endpoint): a triggerer running hundreds of waits keeps a handful of clients and
connection pools instead of building a session, resolving credentials and opening a pool per
trigger and per poll.

Polls go through the shared client's public operations (``get_model_customization_job``,
``get_custom_model_deployment``, ``get_provisioned_model_throughput``). Unless the connection
configures ``retries`` itself, that client makes one attempt per call: waits retry transient
errors with their own backoff (:class:`~airflow_bedrock_ft.core.retry.PollTracker`), which
counts only answered polls and resets on the first answer, and one-off calls go through
:func:`~airflow_bedrock_ft.core.retry.aretry_transient`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from asgiref.sync import sync_to_async
from botocore.config import Config
from botocore.exceptions import ClientError

from airflow_bedrock_ft.core.retry import (  # noqa: F401 - re-exported for callers of the hook
    MAX_TRANSIENT_DELAY,
    TRANSIENT_ERROR_CODES,
    PollTracker,
    aretry_transient,
    error_code,
    is_transient_error,
    jittered,
    transient_delay,
)
from airflow_bedrock_ft.core.states import Outcome, ResourceKind, classify, phase_summary, resource_kind
from airflow_bedrock_ft.exceptions import JobTimeoutError

#: Error codes Bedrock (or a compatible server) uses when a job name is already taken. The
#: documented duplicate-name error is a ValidationException; moto answers with an unmodelled
#: ResourceInUseException. A code alone is not proof (ValidationException has many causes),
#: so the operator confirms a clash by looking the name up.
NAME_IN_USE_ERROR_CODES = frozenset({"ValidationException", "ConflictException", "ResourceInUseException"})

log = logging.getLogger(__name__)

def parse_timestamp(value: Any) -> datetime.datetime:
    """Parse a timestamp of a Bedrock response, quickly for the ISO 8601 strings it sends.

    Falls back to botocore's own parser (dateutil) for anything else, so results are the
    same timezone-aware datetimes.
    """
    if isinstance(value, str):
        try:
            parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)
    from botocore.utils import parse_timestamp as botocore_parse_timestamp

    return botocore_parse_timestamp(value)


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return None if value is None else str(value)


def job_summary(job: Mapping[str, Any]) -> dict[str, Any]:
    """The facts about a job that waiters report, as JSON primitives.

    :param job: a GetModelCustomizationJob response.
    """
    validation = job.get("validationMetrics") or []
    validation_loss = None
    if validation and isinstance(validation[0], Mapping):
        validation_loss = validation[0].get("validationLoss")
    return {
        "job_arn": job.get("jobArn"),
        "job_name": job.get("jobName"),
        "job_status": job.get("status"),
        "failure_message": job.get("failureMessage"),
        "output_model_arn": job.get("outputModelArn"),
        "output_model_name": job.get("outputModelName"),
        "training_loss": (job.get("trainingMetrics") or {}).get("trainingLoss"),
        "validation_loss": validation_loss,
        "output_s3_uri": (job.get("outputDataConfig") or {}).get("s3Uri"),
        "phases": phase_summary(job),
        "end_time": _iso(job.get("endTime")),
    }


def _strip_metadata(response: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


# --- shared async clients ---------------------------------------------------------------------


@dataclass
class _LoopClients:
    """The async clients of one event loop."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: (aws_conn_id, requested region) -> (aws_conn_id, resolved region, endpoint url)
    aliases: dict[tuple[Any, ...], tuple[Any, ...]] = field(default_factory=dict)
    clients: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    contexts: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    resolutions: int = 0
    #: Waits currently running on this loop (see :func:`async_clients_in_use`).
    users: int = 0


# Keyed by the loop object itself so a closed, collected loop drops its clients with it.
_LOOP_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = (
    weakref.WeakKeyDictionary()
)


def _loop_clients() -> _LoopClients:
    loop = asyncio.get_running_loop()
    entry = _LOOP_CLIENTS.get(loop)
    if entry is None:
        entry = _LOOP_CLIENTS[loop] = _LoopClients()
    return entry


async def close_shared_async_clients() -> None:
    """Close every shared async client of the running event loop (tests, orderly shutdown)."""
    loop = asyncio.get_running_loop()
    entry = _LOOP_CLIENTS.pop(loop, None)
    if entry is None:
        return
    for ctx in entry.contexts.values():
        await ctx.__aexit__(None, None, None)


@contextlib.asynccontextmanager
async def async_clients_in_use() -> AsyncIterator[None]:
    """Mark a wait as using the loop's shared clients; the last one out closes them.

    A long-lived triggerer keeps its clients while any wait runs; a loop that only lives for
    one wait (``dag.test()``, tests) does not leak open connection pools when it ends.
    """
    entry = _loop_clients()
    entry.users += 1
    try:
        yield
    finally:
        entry.users -= 1
        # No await between the check and the pop inside close: a wait starting meanwhile gets
        # a fresh entry instead of a client that is being closed.
        if entry.users == 0 and _LOOP_CLIENTS.get(asyncio.get_running_loop()) is entry:
            await close_shared_async_clients()


def shared_async_client_stats() -> dict[str, int]:
    """How many clients and connection resolutions the running loop has (for tests and benchmarks)."""
    entry = _LOOP_CLIENTS.get(asyncio.get_running_loop())
    if entry is None:
        return {"clients": 0, "resolutions": 0}
    return {"clients": len(entry.clients), "resolutions": entry.resolutions}


class BedrockFineTuneHook(AwsBaseHook):
    """Bedrock customization jobs, custom model deployments and provisioned throughput.

    Sync calls go through boto3, async ones through the loop's shared aiobotocore client.

    The connection's ``endpoint_url`` (or ``service_config.bedrock.endpoint_url``) applies to
    both the sync and the async client, so the local emulator needs no special code.

    .. seealso::
        - :class:`airflow.providers.amazon.aws.hooks.base_aws.AwsBaseHook`
        - https://docs.aws.amazon.com/bedrock/latest/APIReference/API_GetModelCustomizationJob.html
        - https://docs.aws.amazon.com/bedrock/latest/APIReference/API_CreateCustomModelDeployment.html
        - https://docs.aws.amazon.com/bedrock/latest/APIReference/API_CreateProvisionedModelThroughput.html

    :param aws_conn_id: The Airflow connection used for AWS credentials.
    :param region_name: AWS region; defaults to the connection's region.
    """

    hook_name = "Amazon Bedrock Fine-Tuning"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "bedrock"
        # The region as asked for (None: the connection's), to key shared clients without
        # reading the connection inside the event loop. AwsGenericHook's positional order is
        # (aws_conn_id, verify, region_name, ...).
        self.requested_region: str | None = kwargs.get("region_name", args[2] if len(args) > 2 else None)
        super().__init__(*args, **kwargs)

    # --- sync ---------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The cached boto3 ``bedrock`` client (``conn``), typed loosely for the dynamic boto3 API."""
        return self.conn

    def create_job(self, request: Mapping[str, Any]) -> str:
        """Submit a CreateModelCustomizationJob request and return the job ARN.

        :param request: the camelCase request (see :func:`airflow_bedrock_ft.core.request.build_request`).
        """
        response = self.client.create_model_customization_job(**request)
        job_arn = response.get("jobArn")
        if not job_arn:
            # Bedrock may acknowledge a repeated clientRequestToken without echoing the ARN;
            # the name then identifies the job that the first request created.
            job_arn = self.get_job(request["jobName"])["jobArn"]
        return job_arn

    def get_job(self, job_identifier: str) -> dict[str, Any]:
        """Return GetModelCustomizationJob for a job ARN or name.

        :param job_identifier: job ARN or job name.
        """
        return _strip_metadata(self.client.get_model_customization_job(jobIdentifier=job_identifier))

    def stop_job(self, job_identifier: str) -> bool:
        """Ask Bedrock to stop a job; return False when it had already ended.

        :param job_identifier: job ARN or job name.
        """
        from airflow_bedrock_ft.core.stop import stop_job

        result = stop_job(self.client, job_identifier)
        if not result.requested:
            self.log.info("Job %s is already %s; nothing to stop.", job_identifier, result.status)
            return False
        self.log.info("Requested stop of Bedrock model customization job %s.", job_identifier)
        return True

    def find_job_by_name(self, job_name: str) -> dict[str, Any] | None:
        """Return the job called ``job_name``, or None when there is none.

        :param job_name: the job name.
        """
        try:
            return self.get_job(job_name)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise

    def get_tags(self, resource_arn: str) -> dict[str, str]:
        """ListTagsForResource of a job, custom model or other Bedrock resource, as a dict.

        :param resource_arn: the resource's ARN.
        """
        from airflow_bedrock_ft.core.naming import resource_tags

        return resource_tags(self.client, resource_arn)

    def iter_job_summaries(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Yield ListModelCustomizationJobs summaries, following pagination.

        :param filters: ListModelCustomizationJobs arguments (``nameContains``, ``statusEquals``, ...).
        """
        paginator = self.client.get_paginator("list_model_customization_jobs")
        for page in paginator.paginate(**filters):
            yield from page.get("modelCustomizationJobSummaries", [])

    def find_job_by_token(
        self, client_request_token: str, *, name_contains: str | None = None
    ) -> dict[str, Any] | None:
        """Return the job submitted with ``client_request_token``, or None.

        List summaries carry no token, so each candidate is fetched; narrow the search with
        ``name_contains``.

        :param client_request_token: the token sent with CreateModelCustomizationJob.
        :param name_contains: only consider jobs whose name contains this text.
        """
        filters: dict[str, Any] = {"sortBy": "CreationTime", "sortOrder": "Descending"}
        if name_contains:
            filters["nameContains"] = name_contains
        for summary in self.iter_job_summaries(**filters):
            job = self.get_job(summary["jobArn"])
            if job.get("clientRequestToken") == client_request_token:
                return job
        return None

    def wait_for_job(
        self,
        job_identifier: str,
        *,
        poll_interval: float = 60,
        timeout: float | None = None,
        max_attempts: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, Any]:
        """Block until the job ends and return its final GetModelCustomizationJob response.

        There is no attempt budget by default: jobs can run for days. Throttling, 5xx and
        connection errors are retried with growing delay, never end the wait and never count
        toward ``max_attempts``.

        :param job_identifier: job ARN or name.
        :param poll_interval: seconds between polls.
        :param timeout: give up after this many seconds (monotonic clock).
        :param max_attempts: give up after this many answered polls.
        :param sleep: the sleep function (tests replace it).
        :raises JobTimeoutError: when ``timeout`` or ``max_attempts`` runs out first; the job
            is left running (the caller decides whether to stop it, see
            :func:`~airflow_bedrock_ft.core.states.timeout_allows_stop`).
        """
        started = time.monotonic()
        tracker = PollTracker(poll_interval, max_attempts)
        job: dict[str, Any] = {}
        while True:
            try:
                job = self.get_job(job_identifier)
            except Exception as exc:
                if not is_transient_error(exc):
                    raise
                delay = tracker.transient_error()
                self.log.warning(
                    "Transient error polling job %s (%s, %d in a row); retrying in %.1f s.",
                    job_identifier,
                    error_code(exc) or type(exc).__name__,
                    tracker.failures,
                    delay,
                )
            else:
                status = job["status"]
                if tracker.answered(status, phase_summary(job)):
                    self.log.info(
                        "Job %s: status %s %s (%.0f s elapsed).",
                        job.get("jobArn", job_identifier),
                        status,
                        phase_summary(job),
                        time.monotonic() - started,
                    )
                if classify(status) is not Outcome.RUNNING:
                    return job
                delay = tracker.next_delay()
            elapsed = time.monotonic() - started
            waited = None
            if tracker.out_of_attempts:
                waited = f"{tracker.attempts} answered polls"
            elif timeout is not None and elapsed >= timeout:
                waited = f"a timeout of {datetime.timedelta(seconds=timeout)}"
            if waited is not None:
                raise JobTimeoutError(
                    job_arn=job.get("jobArn") or job_identifier,
                    job_name=job.get("jobName"),
                    job_status=tracker.last_status,
                    waited=waited,
                    stopped=False,
                    status_known=tracker.status_known,
                    failed_polls=tracker.errors,
                )
            if timeout is not None:
                delay = min(delay, max(0.0, timeout - elapsed))
            sleep(delay)

    # --- async --------------------------------------------------------------------------------

    def _new_async_client_context(self) -> tuple[tuple[Any, ...], Any]:
        # Runs in a worker thread: reading the connection (secrets backend, API server) and
        # building the aiobotocore session are blocking.
        endpoint = self.conn_config.get_service_endpoint_url(service_name="bedrock")
        key = (self.aws_conn_id, self.region_name, endpoint)
        self._warm_client_data()
        return key, self._async_client_context(endpoint)

    def async_client_config(self) -> Config:
        """The botocore config of the shared async client: the connection's, one attempt per call
        unless the connection sets ``retries`` (waits and :func:`aretry_transient` retry instead)."""
        config = self.config
        if getattr(config, "retries", None) is None:  # a public option; botocore types it loosely
            config = config.merge(Config(retries={"total_max_attempts": 1, "mode": "standard"}))
        return config

    def _async_client_context(self, endpoint: str | None) -> Any:
        # What AwsBaseHook.get_client_type(deferrable=True) does, plus a faster timestamp
        # parser: botocore parses every timestamp of a response with dateutil, which was a
        # third of the CPU of a poll (eight timestamps per GetModelCustomizationJob).
        session: Any = self.get_session(region_name=self.region_name, deferrable=True)
        session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=parse_timestamp)
        return session.create_client(
            service_name="bedrock",
            endpoint_url=endpoint,
            config=self.async_client_config(),
            verify=self.verify,
        )

    def _warm_client_data(self) -> None:
        # Creating an aiobotocore client reads and parses botocore's endpoint and service JSON
        # files (about 0.15 s) inside the event loop. Those files go through a data loader
        # shared by every async session, which caches them: creating and dropping one client
        # here, in this thread's own short-lived loop, leaves only cached lookups for the
        # triggerer's loop.
        async def create_and_close() -> None:
            async with self._async_client_context(self.conn_config.get_service_endpoint_url("bedrock")):
                pass

        asyncio.run(create_and_close())

    async def get_shared_async_client(self) -> Any:
        """Return the event loop's aiobotocore client for this hook's connection and region.

        Created lazily on first use inside the running loop; concurrent first uses wait for one
        creation. The connection is read once per (connection id, region) in a thread.
        """
        entry = _loop_clients()
        alias = (self.aws_conn_id, self.requested_region)
        resolved = entry.aliases.get(alias)
        if resolved is not None:
            return entry.clients[resolved]
        async with entry.lock:
            resolved = entry.aliases.get(alias)
            if resolved is not None:
                return entry.clients[resolved]
            key, ctx = await sync_to_async(self._new_async_client_context)()
            entry.resolutions += 1
            if key not in entry.clients:
                entry.clients[key] = await ctx.__aenter__()
                entry.contexts[key] = ctx
            entry.aliases[alias] = key
            return entry.clients[key]

    async def aget_job(self, job_identifier: str) -> dict[str, Any]:
        """Return GetModelCustomizationJob for a job ARN or name, without blocking the loop.

        One attempt through the shared client (unless the connection configures retries): the
        wait that polls retries transient errors itself.

        :param job_identifier: job ARN or job name.
        """
        client = await self.get_shared_async_client()
        return _strip_metadata(await client.get_model_customization_job(jobIdentifier=job_identifier))

    async def astop_job(self, job_identifier: str) -> bool:
        """Ask Bedrock to stop a job without blocking the loop; False when it had already ended.

        :param job_identifier: job ARN or job name.
        """
        client = await self.get_shared_async_client()
        try:
            await aretry_transient(lambda: client.stop_model_customization_job(jobIdentifier=job_identifier))
        except ClientError as exc:
            from airflow_bedrock_ft.core.stop import nothing_to_stop, stop_refused

            if stop_refused(exc):
                job = await aretry_transient(lambda: self.aget_job(job_identifier))
                if nothing_to_stop(job["status"]):
                    return False
            raise
        return True

    # --- serving resources (custom model deployments, provisioned throughput) ---------------------

    def create_deployment(
        self,
        name: str,
        model_arn: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        client_request_token: str | None = None,
    ) -> str:
        """CreateCustomModelDeployment; returns the deployment ARN.

        :param name: ``modelDeploymentName`` (unique per account and region).
        :param model_arn: ARN of the custom model to serve on demand.
        :param description: the deployment's description.
        :param tags: tags of the deployment, as a dict.
        :param client_request_token: idempotency token.
        """
        request: dict[str, Any] = {"modelDeploymentName": name, "modelArn": model_arn}
        if description:
            request["description"] = description
        if tags:
            request["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        if client_request_token:
            request["clientRequestToken"] = client_request_token
        return str(self.client.create_custom_model_deployment(**request)["customModelDeploymentArn"])

    def get_deployment(self, identifier: str) -> dict[str, Any]:
        """GetCustomModelDeployment for a deployment ARN or name.

        :param identifier: deployment ARN or name.
        """
        return _strip_metadata(
            self.client.get_custom_model_deployment(customModelDeploymentIdentifier=identifier)
        )

    def delete_deployment(self, identifier: str) -> bool:
        """DeleteCustomModelDeployment; False when there was no such deployment.

        :param identifier: deployment ARN or name.
        """
        return self._delete_resource(
            lambda: self.client.delete_custom_model_deployment(customModelDeploymentIdentifier=identifier)
        )

    def create_provisioned_throughput(
        self,
        name: str,
        model_id: str,
        model_units: int,
        *,
        commitment_duration: str | None = None,
        tags: Mapping[str, str] | None = None,
        client_request_token: str | None = None,
    ) -> str:
        """CreateProvisionedModelThroughput; returns the provisioned model ARN.

        :param name: ``provisionedModelName``.
        :param model_id: custom model ARN or name (or a foundation model id).
        :param model_units: model units to buy (at least 1).
        :param commitment_duration: ``OneMonth``, ``SixMonths`` or None for no commitment.
        :param tags: tags of the provisioned throughput, as a dict.
        :param client_request_token: idempotency token.
        """
        request: dict[str, Any] = {
            "provisionedModelName": name,
            "modelId": model_id,
            "modelUnits": model_units,
        }
        if commitment_duration:
            request["commitmentDuration"] = commitment_duration
        if tags:
            request["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        if client_request_token:
            request["clientRequestToken"] = client_request_token
        return str(self.client.create_provisioned_model_throughput(**request)["provisionedModelArn"])

    def get_provisioned_throughput(self, identifier: str) -> dict[str, Any]:
        """GetProvisionedModelThroughput for a provisioned model ARN or name.

        :param identifier: provisioned model ARN or name.
        """
        return _strip_metadata(self.client.get_provisioned_model_throughput(provisionedModelId=identifier))

    def delete_provisioned_throughput(self, identifier: str) -> bool:
        """DeleteProvisionedModelThroughput; False when there was no such provisioned throughput.

        :param identifier: provisioned model ARN or name.
        """
        return self._delete_resource(
            lambda: self.client.delete_provisioned_model_throughput(provisionedModelId=identifier)
        )

    @staticmethod
    def _delete_resource(delete: Callable[[], Any]) -> bool:
        try:
            delete()
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return False
            raise
        return True

    def get_resource(self, kind: str | ResourceKind, identifier: str) -> dict[str, Any]:
        """The Get response of a serving resource of ``kind``.

        :param kind: ``"deployment"`` or ``"provisioned_throughput"``.
        :param identifier: its ARN or name.
        """
        if resource_kind(kind) is ResourceKind.DEPLOYMENT:
            return self.get_deployment(identifier)
        return self.get_provisioned_throughput(identifier)

    def delete_resource(self, kind: str | ResourceKind, identifier: str) -> bool:
        """Delete a serving resource of ``kind``; False when there was no such resource.

        :param kind: ``"deployment"`` or ``"provisioned_throughput"``.
        :param identifier: its ARN or name.
        """
        if resource_kind(kind) is ResourceKind.DEPLOYMENT:
            return self.delete_deployment(identifier)
        return self.delete_provisioned_throughput(identifier)

    async def aget_resource(self, kind: str | ResourceKind, identifier: str) -> dict[str, Any]:
        """The Get response of a serving resource of ``kind``, without blocking the loop.

        One attempt through the shared client, like :meth:`aget_job`.

        :param kind: ``"deployment"`` or ``"provisioned_throughput"``.
        :param identifier: its ARN or name.
        :raises ClientError: ``ResourceNotFoundException`` when it does not exist (any more).
        """
        client = await self.get_shared_async_client()
        if resource_kind(kind) is ResourceKind.DEPLOYMENT:
            response = await client.get_custom_model_deployment(customModelDeploymentIdentifier=identifier)
        else:
            response = await client.get_provisioned_model_throughput(provisionedModelId=identifier)
        return _strip_metadata(response)

    async def adelete_resource(self, kind: str | ResourceKind, identifier: str) -> bool:
        """Delete a serving resource without blocking the loop; False when it did not exist.

        Transient errors are retried (:func:`aretry_transient`).

        :param kind: ``"deployment"`` or ``"provisioned_throughput"``.
        :param identifier: its ARN or name.
        """
        client = await self.get_shared_async_client()
        if resource_kind(kind) is ResourceKind.DEPLOYMENT:
            call = lambda: client.delete_custom_model_deployment(  # noqa: E731
                customModelDeploymentIdentifier=identifier
            )
        else:
            call = lambda: client.delete_provisioned_model_throughput(provisionedModelId=identifier)  # noqa: E731
        try:
            await aretry_transient(call)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return False
            raise
        return True
