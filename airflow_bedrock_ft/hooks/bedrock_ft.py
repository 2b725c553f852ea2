"""Hook for Amazon Bedrock model-customization jobs.

The hook owns credentials and clients and offers a few named calls that return plain dicts.
It decides nothing about job statuses itself: :func:`airflow_bedrock_ft.core.states.classify`
does.

Asynchronous calls share one aiobotocore client per event loop and per (connection id,
region, endpoint): a triggerer running hundreds of waits keeps a handful of clients and
connection pools instead of building a session, resolving credentials and opening a pool per
trigger and per poll.

The poll of a wait (:meth:`BedrockFineTuneHook.aget_job`) skips botocore's per-request
machinery: it signs a GET with the shared client's own signer and credentials and sends it
through the client's own HTTP session (see :class:`_LeanJobGetter`), falling back to the
client's ``get_model_customization_job`` when those pieces are not available.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import http.client
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from asgiref.sync import sync_to_async
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError

from airflow_bedrock_ft.core.retry import (  # noqa: F401 - re-exported for callers of the hook
    MAX_TRANSIENT_DELAY,
    TRANSIENT_ERROR_CODES,
    error_code,
    is_transient_error,
    jittered,
    transient_delay,
)
from airflow_bedrock_ft.core.states import Outcome, classify, phase_summary
from airflow_bedrock_ft.exceptions import JobTimeoutError

#: Error codes Bedrock (or a compatible server) uses when a job name is already taken. The
#: documented duplicate-name error is a ValidationException; moto answers with an unmodelled
#: ResourceInUseException. A code alone is not proof (ValidationException has many causes),
#: so the operator confirms a clash by looking the name up.
NAME_IN_USE_ERROR_CODES = frozenset({"ValidationException", "ConflictException", "ResourceInUseException"})

log = logging.getLogger(__name__)

class PollTracker:
    """Bookkeeping of one wait, shared by the blocking wait and the trigger so that both count
    attempts, back off after transient errors and notice status or phase changes alike.

    :param poll_interval: seconds between polls while the job runs.
    :param max_attempts: polls before giving up; None for no limit.
    """

    def __init__(self, poll_interval: float, max_attempts: int | None = None) -> None:
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.attempts = 0
        self.failures = 0
        self._seen: tuple[Any, str] | None = None

    def transient_error(self) -> float:
        """Record a poll that failed transiently; returns the delay before the next one."""
        self.attempts += 1
        self.failures += 1
        return transient_delay(self.poll_interval, self.failures)

    def answered(self, job: Mapping[str, Any]) -> bool:
        """Record a poll that returned ``job``; True when its status or phases changed."""
        self.attempts += 1
        self.failures = 0
        seen = (job.get("status"), phase_summary(job))
        changed, self._seen = seen != self._seen, seen
        return changed

    def next_delay(self) -> float:
        """Delay before the next poll of a running job."""
        return jittered(self.poll_interval)

    @property
    def out_of_attempts(self) -> bool:
        """True once ``max_attempts`` polls have been made."""
        return self.max_attempts is not None and self.attempts >= self.max_attempts


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


# --- lean GetModelCustomizationJob --------------------------------------------------------------

_GET_JOB = "GetModelCustomizationJob"
_GET_JOB_PATH = "/model-customization-jobs/"


def client_error_from_response(
    status: int, headers: Mapping[str, str], body: bytes, exceptions: Any = None
) -> ClientError:
    """The ``ClientError`` botocore raises for a non-2xx restJson answer of GetModelCustomizationJob.

    The code comes from the ``x-amzn-ErrorType`` header, else the body's ``code``/``Code``, else
    its ``__type``, else the HTTP status, with any ``:``/``#`` decoration removed; the message
    from the body's ``message``/``Message`` (the body itself when it is not JSON). An empty or
    HTML 5xx answer gets the status as code and the reason phrase as message. ``exceptions``
    is a client's ``exceptions`` factory: when given, the error is the modeled class
    (``ResourceNotFoundException``, ...) the client itself would raise.

    :param status: HTTP status.
    :param headers: response headers with lower-case names.
    :param body: response body.
    :param exceptions: ``client.exceptions`` of the client the request stands in for.
    """
    stripped = body.strip()
    code: Any
    if status >= 500 and (not stripped or stripped.startswith(b"<html>")):
        # A load balancer's page rather than the service's answer: botocore ignores headers
        # and body alike here.
        code, message = str(status), http.client.responses.get(status, "")
    else:
        document: Any
        try:
            document = orjson.loads(stripped) if stripped else {}
        except orjson.JSONDecodeError:
            document = {"message": body.decode("utf-8", "replace")}
        if not isinstance(document, dict):
            document = {}
        code = headers.get("x-amzn-errortype")
        if code is None:
            code = document.get("code", document.get("Code"))
        if code is None:
            code = document.get("__type") or str(status)
        message = document.get("message", document.get("Message", ""))
    if isinstance(code, str):
        code = code.split(":", 1)[0].rsplit("#", 1)[-1]
    metadata: dict[str, Any] = {"HTTPStatusCode": status, "HTTPHeaders": dict(headers), "RetryAttempts": 0}
    if "x-amzn-requestid" in headers:
        metadata["RequestId"] = headers["x-amzn-requestid"]
    response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": metadata}
    error_class = ClientError
    if exceptions is not None:
        with contextlib.suppress(Exception):
            error_class = exceptions.from_code(code)
    return error_class(response, _GET_JOB)


class _UnsupportedShape(Exception):
    """The response shape has members the lean parser does not reproduce."""


def _conversion_plan(shape: Any) -> Any:
    """What must change in a JSON document of ``shape`` to equal botocore's parse of it.

    A callable for a leaf to convert (timestamps, floats), a dict of member plans for a
    structure, ``("list"|"map", plan)`` for containers, or None when nothing changes.

    :raises _UnsupportedShape: for members bound to headers or renamed on the wire, blobs and
        event streams, which would need botocore's parser.
    """
    kind = shape.type_name
    if kind == "timestamp":
        return parse_timestamp
    if kind in ("float", "double"):
        return float
    if kind == "blob" or shape.serialization.get("eventstream"):
        raise _UnsupportedShape(shape.name)
    if kind == "structure":
        plan = {}
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            if location or member.serialization.get("name", name) != name:
                raise _UnsupportedShape(f"{shape.name}.{name}")
            sub = _conversion_plan(member)
            if sub is not None:
                plan[name] = sub
        return plan or None
    if kind == "list":
        sub = _conversion_plan(shape.member)
        return None if sub is None else ("list", sub)
    if kind == "map":
        sub = _conversion_plan(shape.value)
        return None if sub is None else ("map", sub)
    return None


def _apply_plan(plan: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(plan, dict):
        if isinstance(value, dict):
            for name, sub in plan.items():
                if name in value:
                    value[name] = _apply_plan(sub, value[name])
        return value
    if isinstance(plan, tuple):
        kind, sub = plan
        if kind == "list" and isinstance(value, list):
            return [_apply_plan(sub, item) for item in value]
        if kind == "map" and isinstance(value, dict):
            return {key: _apply_plan(sub, item) for key, item in value.items()}
        return value
    return plan(value)


class _LeanJobGetter:
    """GetModelCustomizationJob through the pieces of one aiobotocore client, without its pipeline.

    botocore spends most of a poll's CPU on work that is the same for every poll of a job:
    validating and serialising parameters, resolving the endpoint, running event handlers,
    building the user agent, parsing the response against the model. This getter does that
    work once per client, through botocore itself (endpoint rules, auth scheme, output shape),
    and per request only signs a GET with the client's signer (SigV4, with the client's
    credentials frozen for the request, so refreshable and assumed-role credentials keep
    refreshing) and sends it through the client's own HTTP session (its proxies, TLS
    settings, timeouts and connection pool; connection failures become botocore's
    exceptions there). Bodies are parsed with orjson and converted where the model says
    botocore would (timestamps, floats); non-2xx answers raise the client's own
    ``ClientError`` classes. There are no automatic retries: waits retry transient errors
    themselves with backoff.
    """

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str],
        http_session: Any,
        signer: Any,
        signing_name: str,
        region_name: str,
        plan: Any,
        exceptions: Any,
    ) -> None:
        self.base_url = base_url.rstrip("/") + _GET_JOB_PATH
        self.headers = dict(headers)
        self.http_session = http_session
        self.signer = signer
        self.signing_name = signing_name
        self.region_name = region_name
        self.plan = plan
        self.exceptions = exceptions

    @classmethod
    async def for_client(cls, client: Any) -> _LeanJobGetter:
        """Look up, once, everything a poll needs from ``client``.

        :raises Exception: when a piece is missing or the configuration needs botocore's
            full pipeline (non-SigV4 auth such as bearer tokens, an unexpected model).
        """
        from aiobotocore.httpsession import AIOHTTPSession
        from aiobotocore.signers import AioRequestSigner

        signer = client._request_signer
        http_session = client._endpoint.http_session
        if not isinstance(signer, AioRequestSigner) or not isinstance(http_session, AIOHTTPSession):
            raise TypeError(f"unexpected signer {signer!r} or HTTP session {http_session!r}")
        if signer.signature_version != "v4":
            raise ValueError(f"signature version {signer.signature_version!r} is not SigV4")
        service_model = client.meta.service_model
        operation = service_model.operation_model(_GET_JOB)
        if operation.http.get("method") != "GET" or operation.http.get("requestUri") != (
            _GET_JOB_PATH + "{jobIdentifier}"
        ):
            raise ValueError(f"unexpected HTTP binding {operation.http!r}")
        if operation.auth_type not in (None, "v4") or service_model.resolved_protocol != "rest-json":
            raise ValueError("operation needs botocore's own auth or protocol handling")
        # The endpoint is resolved once per client below, which holds only while no endpoint
        # parameter comes from the request; checksums and streams need botocore's handlers.
        if (
            operation.context_parameters
            or operation.static_context_parameters
            or operation.operation_context_parameters
            or operation.http_checksum
            or operation.has_streaming_output
            or operation.has_event_stream_output
        ):
            raise ValueError("operation needs per-request endpoint, checksum or stream handling")
        base_url = client.meta.endpoint_url
        headers: dict[str, str] = {}
        signing_name = signer.signing_name
        region_name = signer.region_name
        resolver = getattr(client, "_ruleset_resolver", None)
        if resolver is not None:
            # The same endpoint rules botocore applies per call (FIPS, dual-stack, custom
            # endpoints); their inputs do not depend on the job identifier.
            endpoint = await resolver.construct_endpoint(
                operation_model=operation, call_args={"jobIdentifier": "x"}, request_context={}
            )
            base_url = endpoint.url
            headers.update(endpoint.headers)
            schemes = endpoint.properties.get("authSchemes")
            if schemes:
                auth_type, signing = resolver.auth_schemes_to_signing_ctx(schemes)
                if auth_type != "v4":
                    raise ValueError(f"endpoint auth scheme {auth_type!r} is not SigV4")
                signing_name = signing.get("signing_name", signing_name)
                region_name = signing.get("region", region_name)
        user_agent = getattr(client, "_user_agent_creator", None)
        if user_agent is not None:
            headers["User-Agent"] = user_agent.to_string()
        return cls(
            base_url=base_url,
            headers=headers,
            http_session=http_session,
            signer=signer,
            signing_name=signing_name,
            region_name=region_name,
            plan=_conversion_plan(operation.output_shape),
            exceptions=client.exceptions,
        )

    async def get_job(self, job_identifier: str) -> dict[str, Any]:
        """GetModelCustomizationJob as botocore returns it, without ``ResponseMetadata``.

        :param job_identifier: job ARN or job name.
        """
        request = AWSRequest(
            method="GET", url=self.base_url + quote(job_identifier, safe=""), headers=self.headers
        )
        # get_auth_instance freezes the signer's credentials per call: refreshable ones
        # (assumed roles, SSO, instance profiles) renew themselves here as in botocore.
        auth = await self.signer.get_auth_instance(
            signing_name=self.signing_name, region_name=self.region_name, signature_version="v4"
        )
        auth.add_auth(request)
        response = await self.http_session.send(request.prepare())
        body = await response.content
        if not 200 <= response.status_code < 300:
            raise client_error_from_response(response.status_code, response.headers, body, self.exceptions)
        job = orjson.loads(body)
        if self.plan is not None:
            _apply_plan(self.plan, job)
        return job


# One getter per client, or None where the client needs its full pipeline. A task, so that the
# polls that start together on a new client wait for one lookup.
_LEAN_GETTERS: weakref.WeakKeyDictionary[Any, asyncio.Future[_LeanJobGetter | None]] = (
    weakref.WeakKeyDictionary()
)
_fallback_logged = False


async def _build_lean_getter(client: Any) -> _LeanJobGetter | None:
    global _fallback_logged
    try:
        return await _LeanJobGetter.for_client(client)
    except Exception as exc:
        if not _fallback_logged:
            _fallback_logged = True
            log.debug("Polling through botocore's full pipeline: %r", exc)
        return None


async def lean_job_getter(client: Any) -> _LeanJobGetter | None:
    """The lean GetModelCustomizationJob of ``client``, or None to call the client itself.

    :param client: an aiobotocore ``bedrock`` client.
    """
    try:
        future = _LEAN_GETTERS.get(client)
    except TypeError:  # not weakly referenceable: not an aiobotocore client
        return None
    if future is None:
        future = _LEAN_GETTERS[client] = asyncio.ensure_future(_build_lean_getter(client))
    # Shielded: one poll being cancelled must not cancel the lookup the others wait for.
    return await asyncio.shield(future)


class BedrockFineTuneHook(AwsBaseHook):
    """Interact with Amazon Bedrock model-customization jobs through boto3 and aiobotocore.

    The connection's ``endpoint_url`` (or ``service_config.bedrock.endpoint_url``) applies to
    both the sync and the async client, so the local emulator needs no special code.

    .. seealso::
        - :class:`airflow.providers.amazon.aws.hooks.base_aws.AwsBaseHook`
        - https://docs.aws.amazon.com/bedrock/latest/APIReference/API_GetModelCustomizationJob.html

    :param aws_conn_id: The Airflow connection used for AWS credentials.
    :param region_name: AWS region; defaults to the connection's region.
    """

    hook_name = "Amazon Bedrock Fine-Tuning"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "bedrock"
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
        response = self.client.list_tags_for_resource(resourceARN=resource_arn)
        return {tag["key"]: tag["value"] for tag in response.get("tags", [])}

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
        connection errors are retried with growing delay and never end the wait.

        :param job_identifier: job ARN or name.
        :param poll_interval: seconds between polls.
        :param timeout: give up after this many seconds (monotonic clock).
        :param max_attempts: give up after this many polls.
        :param sleep: the sleep function (tests replace it).
        :raises JobTimeoutError: when ``timeout`` or ``max_attempts`` runs out first; the job
            is left running (the caller decides whether to stop it).
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
                if tracker.answered(job):
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
            if tracker.out_of_attempts:
                raise JobTimeoutError(
                    job_arn=job.get("jobArn") or job_identifier,
                    job_name=job.get("jobName"),
                    job_status=job.get("status"),
                    waited=f"{tracker.attempts} attempts",
                    stopped=False,
                )
            if timeout is not None:
                if elapsed >= timeout:
                    raise JobTimeoutError(
                        job_arn=job.get("jobArn") or job_identifier,
                        job_name=job.get("jobName"),
                        job_status=job.get("status"),
                        waited=f"a timeout of {datetime.timedelta(seconds=timeout)}",
                        stopped=False,
                    )
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

    def _async_client_context(self, endpoint: str | None) -> Any:
        # What AwsBaseHook.get_client_type(deferrable=True) does, plus a faster timestamp
        # parser: botocore parses every timestamp of a response with dateutil, which was a
        # third of the CPU of a poll (eight timestamps per GetModelCustomizationJob).
        session: Any = self.get_session(region_name=self.region_name, deferrable=True)
        session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=parse_timestamp)
        return session.create_client(
            service_name="bedrock", endpoint_url=endpoint, config=self._get_config(), verify=self.verify
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
        alias = (self.aws_conn_id, self._region_name)
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

        Sent through :class:`_LeanJobGetter` when the shared client allows it; the result is
        the same dict either way.

        :param job_identifier: job ARN or job name.
        """
        client = await self.get_shared_async_client()
        getter = await lean_job_getter(client)
        if getter is not None:
            return await getter.get_job(job_identifier)
        response = await client.get_model_customization_job(jobIdentifier=job_identifier)
        return _strip_metadata(response)

    async def astop_job(self, job_identifier: str) -> bool:
        """Ask Bedrock to stop a job without blocking the loop; False when it had already ended.

        :param job_identifier: job ARN or job name.
        """
        client = await self.get_shared_async_client()
        try:
            await client.stop_model_customization_job(jobIdentifier=job_identifier)
        except ClientError as exc:
            from airflow_bedrock_ft.core.stop import nothing_to_stop, stop_refused

            if stop_refused(exc) and nothing_to_stop((await self.aget_job(job_identifier))["status"]):
                return False
            raise
        return True
