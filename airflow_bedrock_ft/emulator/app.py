"""HTTP front end of the emulator (aiohttp): routing, JSON in/out, faults, admin endpoints.

AWS routes are resolved from botocore's models (:mod:`airflow_bedrock_ft.emulator.wire`);
handlers call the backend or the runtime in a worker thread so the event loop never blocks.
Faults apply to AWS routes only. Admin endpoints (plain JSON, never faulted):

* ``GET /_emulator/health`` - liveness and resource counts
* ``GET|POST|DELETE /_emulator/faults`` - read / replace / clear the fault document
* ``GET|POST /_emulator/config`` - ``{"time_scale": float, "hold_phases": [...],
  "polls_per_phase": int, "max_running_jobs": int | null}``
  (``/_emulator/transitions`` is the same resource)
* ``POST /_emulator/reset`` - forget all resources, clear faults, restore the start config
* ``GET|DELETE /_emulator/stats`` - requests received per operation (faulted ones included)
  and when the first and last runtime request arrived / reset the counts

S3 and moto's ``POST /moto-api/reset`` share the endpoint, as moto serves every service on
one port: a request signed for the ``s3`` service (its SigV4 credential scope) is forwarded to
the S3 server unchanged and its answer streamed back; ``/moto-api/reset`` resets the emulator
and the embedded S3. Unsigned requests are Bedrock's (refused while signatures are checked).

Requests from other sites are refused before anything else (a web page in the user's
browser can reach a loopback port): an ``Origin`` header that is not a loopback origin, a
``Host`` header naming a host the emulator does not serve (DNS rebinding), and a body that is
not JSON where AWS requires JSON (the content types an HTML form or a simple ``fetch`` can
send) are answered with 403 or 415 and change nothing. Admin endpoints that change state
also require ``Content-Type: application/json`` and, when the emulator has an admin token,
``Authorization: Bearer <token>`` (or ``X-Emulator-Token``).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn

from aiohttp import web

from airflow_bedrock_ft.emulator.auth import SigV4Verifier
from airflow_bedrock_ft.emulator.backend import PHASE_NAMES, Backend
from airflow_bedrock_ft.emulator.errors import EmulatorError
from airflow_bedrock_ft.emulator.faults import FaultConfigError, Faults
from airflow_bedrock_ft.emulator.runtime import Runtime
from airflow_bedrock_ft.emulator.wire import error_response, parse_request, resolve, serialize_response

log = logging.getLogger(__name__)

CONTROL_PLANE_MAX_BYTES = 1024 * 1024
RUNTIME_MAX_BYTES = 25 * 1024 * 1024
ADMIN_MAX_BYTES = 64 * 1024
ADMIN_PREFIX = "/_emulator/"
#: Seconds a request body may take to arrive.
BODY_TIMEOUT_S = 30.0

Handler = Callable[[Mapping[str, Any]], Mapping[str, Any]]


class RequestStats:
    """Counts of the AWS requests the emulator received, to check a client's rate from outside.

    Every routed request counts, faulted (throttled, failed, dropped) ones included.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        """Forget every count."""
        with self._lock:
            self.operations: dict[str, int] = {}
            self.faulted: dict[str, int] = {}
            self.runtime_requests = 0
            self.first_runtime: float | None = None  # wall clock, seconds since the epoch
            self.last_runtime: float | None = None

    def count(self, operation: str, service: str, faulted: bool) -> None:
        """Record one request."""
        with self._lock:
            self.operations[operation] = self.operations.get(operation, 0) + 1
            if faulted:
                self.faulted[operation] = self.faulted.get(operation, 0) + 1
            if service == "bedrock-runtime":
                now = time.time()
                self.runtime_requests += 1
                if self.first_runtime is None:
                    self.first_runtime = now
                self.last_runtime = now

    def describe(self) -> dict[str, Any]:
        """The counts as JSON: ``runtime_rate`` is requests per second between the first and last."""
        with self._lock:
            span = (self.last_runtime or 0.0) - (self.first_runtime or 0.0)
            rate = (self.runtime_requests - 1) / span if self.runtime_requests > 1 and span > 0 else None
            return {
                "operations": dict(self.operations),
                "faulted": dict(self.faulted),
                "runtime_requests": self.runtime_requests,
                "first_runtime_request": self.first_runtime,
                "last_runtime_request": self.last_runtime,
                "runtime_rate": rate,
            }


class EmulatorApp:
    """Builds the aiohttp application over one backend.

    :param backend: the state.
    :param faults: the fault state shared with the backend.
    :param initial_config: the config restored by ``POST /_emulator/reset``.
    :param allowed_hosts: host names accepted in the ``Host`` header besides the loopback
        names and the bound host; ``"*"`` accepts any.
    :param admin_token: when set, the admin endpoints that change state require it.
    :param auth: verifies each AWS request's SigV4 signature; None accepts any.
    """

    def __init__(
        self,
        backend: Backend,
        faults: Faults,
        initial_config: Mapping[str, Any] | None = None,
        *,
        allowed_hosts: Iterable[str] = (),
        admin_token: str | None = None,
        auth: SigV4Verifier | None = None,
        s3_upstream: str | None = None,
        s3_is_moto: bool = False,
    ) -> None:
        self.backend = backend
        self.s3_upstream = s3_upstream.rstrip("/") if s3_upstream else None
        self.s3_is_moto = s3_is_moto
        self._s3_session: Any = None
        #: Seconds an S3 request body may stall before the request is dropped with a 408.
        self.s3_stall_timeout = BODY_TIMEOUT_S
        self.auth = auth
        self.allowed_hosts = {h.lower().strip("[]") for h in allowed_hosts} | LOOPBACK_HOSTS
        self.admin_token = admin_token
        self.faults = faults
        self.runtime = Runtime(backend)
        self.stats = RequestStats()
        self.initial_config = dict(initial_config or backend.settings.to_dict())
        b, r = backend, self.runtime
        self.handlers: dict[str, Handler] = {
            "CreateModelCustomizationJob": b.create_job,
            "GetModelCustomizationJob": b.get_job,
            "ListModelCustomizationJobs": b.list_jobs,
            "StopModelCustomizationJob": b.stop_job,
            "GetCustomModel": b.get_custom_model,
            "ListCustomModels": b.list_custom_models,
            "DeleteCustomModel": b.delete_custom_model,
            "TagResource": b.tag_resource,
            "UntagResource": b.untag_resource,
            "ListTagsForResource": b.list_tags,
            "ListFoundationModels": b.list_foundation_models,
            "GetFoundationModel": b.get_foundation_model,
            "CreateCustomModelDeployment": b.create_deployment,
            "GetCustomModelDeployment": b.get_deployment,
            "ListCustomModelDeployments": b.list_deployments,
            "DeleteCustomModelDeployment": b.delete_deployment,
            "CreateProvisionedModelThroughput": b.create_throughput,
            "GetProvisionedModelThroughput": b.get_throughput,
            "ListProvisionedModelThroughputs": b.list_throughputs,
            "DeleteProvisionedModelThroughput": b.delete_throughput,
            "PutModelInvocationLoggingConfiguration": b.put_logging_config,
            "GetModelInvocationLoggingConfiguration": b.get_logging_config,
            "DeleteModelInvocationLoggingConfiguration": b.delete_logging_config,
            "InvokeModel": r.invoke_model,
            "Converse": r.converse,
            "ConverseStream": r.converse_stream,
            "InvokeModelWithResponseStream": r.invoke_model_with_response_stream,
        }

    def build(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(client_max_size=RUNTIME_MAX_BYTES)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        app.on_cleanup.append(self._close_s3_session)
        return app

    async def _close_s3_session(self, app: web.Application) -> None:
        if self._s3_session is not None:
            await self._s3_session.close()
            self._s3_session = None

    # --- entry point -----------------------------------------------------------------------

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """Route one request to the admin API or an AWS operation."""
        try:
            refusal = self._cross_site_refusal(request)
            if refusal is not None:
                return refusal
            if request.path.startswith(ADMIN_PREFIX) or request.path == ADMIN_PREFIX.rstrip("/"):
                return await self._admin(request)
            if request.path == MOTO_RESET_PATH:
                return await self._moto_reset(request)
            if self._is_s3(request):
                return await self._proxy_s3(request)
            return await self._aws(request)
        except Exception:
            log.exception("unexpected error handling %s %s", request.method, request.path)
            return _error(EmulatorError("InternalServerException", "An internal error occurred."))

    def _cross_site_refusal(self, request: web.Request) -> web.StreamResponse | None:
        """A 403 for a request another site made through the user's browser, else None."""
        origin = request.headers.get("Origin")
        if origin is not None and not _is_loopback_origin(origin):
            return _forbidden(
                f"Requests from the origin {origin!r} are refused: the emulator accepts browser "
                "requests only from loopback origins."
            )
        host = request.headers.get("Host")
        if host is not None and "*" not in self.allowed_hosts:
            name = _host_name(host)
            if name not in self.allowed_hosts:
                return _forbidden(
                    f"The Host header {host!r} names a host this emulator does not serve; accepted: "
                    f"{', '.join(sorted(self.allowed_hosts))} (add more with --allowed-host)."
                )
        return None

    # --- S3 and moto's reset on the same endpoint --------------------------------------------

    def _is_s3(self, request: web.Request) -> bool:
        """True when the request is for S3: signed for the ``s3`` service, or (only without
        signature checks) unsigned and not a Bedrock path."""
        authorization = request.headers.get("Authorization")
        if (authorization or "").startswith("AWS ") or "AWSAccessKeyId" in request.query:
            return True  # signature version 2, which only S3 accepts
        service = signing_service(authorization, request.query.get("X-Amz-Credential"))
        if service is not None:
            return service == "s3"
        if self.auth is not None or self.s3_upstream is None:
            return False  # unsigned: Bedrock answers MissingAuthenticationTokenException
        try:
            resolve(request.method, request.raw_path)
        except EmulatorError:
            return True
        return False

    async def _proxy_s3(self, request: web.Request) -> web.StreamResponse:
        """Forward one S3 request to the S3 server and stream its answer back unchanged."""
        import aiohttp

        if self.s3_upstream is None:
            return _error(EmulatorError("UnknownOperationException", "This emulator has no S3 endpoint."))
        if self._s3_session is None:
            self._s3_session = aiohttp.ClientSession(
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=300),
            )
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
        stall = self.s3_stall_timeout

        async def body() -> Any:
            while True:
                chunk = await asyncio.wait_for(request.content.read(64 * 1024), stall)
                if not chunk:
                    return
                yield chunk

        data = body() if request.can_read_body else None
        try:
            async with self._s3_session.request(
                request.method,
                self.s3_upstream + request.raw_path,
                headers=headers,
                data=data,
                allow_redirects=False,
            ) as upstream:
                response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
                for name, value in upstream.headers.items():
                    if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                        response.headers.add(name, value)
                length = upstream.headers.get("Content-Length")
                if length is not None and length.isdigit() and upstream.status not in (204, 304):
                    response.content_length = int(length)
                await response.prepare(request)
                async for chunk in upstream.content.iter_chunked(64 * 1024):
                    await response.write(chunk)
                await response.write_eof()
                return response
        except asyncio.TimeoutError:
            return _error(
                EmulatorError("RequestTimeoutException", f"The request body stalled for {stall:g} s.")
            )
        except aiohttp.ClientError as exc:
            if isinstance(exc.__cause__, asyncio.TimeoutError):
                return _error(
                    EmulatorError("RequestTimeoutException", f"The request body stalled for {stall:g} s.")
                )
            log.warning("the S3 server at %s did not answer: %s", self.s3_upstream, exc)
            return _error(EmulatorError("ServiceUnavailableException", "The S3 server did not answer."))

    async def _moto_reset(self, request: web.Request) -> web.StreamResponse:
        """``POST /moto-api/reset`` as moto's server mode takes it: no body, no signature."""
        import aiohttp

        if request.method.upper() != "POST":
            return _admin_error(405, f"{request.method} {request.path}: only POST is supported")
        ctype = request.headers.get("Content-Type")
        if ctype is not None and not _is_json(ctype):
            return _admin_error(415, f"POST {request.path} takes no body or a JSON one; got {ctype}")
        if self.admin_token is not None and not self._token_ok(request):
            return _admin_error(
                401,
                "this emulator requires its admin token: Authorization: Bearer <token> (printed at start-up)",
            )
        await asyncio.get_running_loop().run_in_executor(None, self.reset)
        if self.s3_is_moto and self.s3_upstream is not None:
            try:
                async with (
                    aiohttp.ClientSession() as session,
                    session.post(self.s3_upstream + MOTO_RESET_PATH) as answer,
                ):
                    if answer.status != 200:
                        return _admin_error(
                            502, f"the embedded S3 server answered {answer.status} to a reset"
                        )
            except aiohttp.ClientError as exc:
                return _admin_error(502, f"the embedded S3 server could not be reset: {exc}")
        return web.json_response({"status": "ok"})

    async def _aws(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        try:
            route, labels = resolve(request.method, request.raw_path)
        except EmulatorError as exc:
            if self.auth is not None and not request.headers.get("Authorization"):
                # As AWS answers an unsigned request to an unknown path; an unsigned S3 request
                # (which moto's clients never send) ends here too.
                try:
                    self.auth.verify(request.method, request.raw_path, request.headers, b"")
                except EmulatorError as missing:
                    return _error(missing)
            return _error(exc)
        ctype = request.headers.get("Content-Type")
        if (
            request.can_read_body
            and not _is_json(ctype)
            and (route.name not in OPAQUE_BODY_OPERATIONS or _is_form_type(ctype))
        ):
            return _error(
                EmulatorError(
                    "UnsupportedMediaTypeException",
                    f"The operation {route.name} takes a JSON body (Content-Type: application/json); "
                    f"got {ctype or 'no Content-Type'}.",
                )
            )
        limit = RUNTIME_MAX_BYTES if route.service == "bedrock-runtime" else CONTROL_PLANE_MAX_BYTES
        try:
            body = await asyncio.wait_for(_read_body(request, limit), BODY_TIMEOUT_S)
        except asyncio.TimeoutError:
            return _error(
                EmulatorError(
                    "RequestTimeoutException", f"The request body did not arrive within {BODY_TIMEOUT_S:g} s."
                )
            )
        if body is None:
            return _error(
                EmulatorError(
                    "RequestEntityTooLargeException", f"The request body exceeds the limit of {limit} bytes."
                )
            )
        if self.auth is not None:
            try:
                self.auth.verify(request.method, request.raw_path, request.headers, body)
            except EmulatorError as exc:
                return _error(exc)
        decision = self.faults.decide(route.name)
        self.stats.count(route.name, route.service, decision.action is not None)
        if decision.latency_s:
            await asyncio.sleep(decision.latency_s)
        if decision.action == "drop" and not decision.after_processing:
            _drop(request)
        if decision.action == "throttle":
            return _error(
                EmulatorError("ThrottlingException", "Too many requests, please wait before trying again.")
            )
        if decision.action == "error":
            if decision.status == 503:
                return _error(
                    EmulatorError("ServiceUnavailableException", "Service is temporarily unavailable.")
                )
            return _error(EmulatorError("InternalServerException", "An internal error occurred."))
        handler = self.handlers.get(route.name)
        if handler is None:
            return _error(
                EmulatorError(
                    "UnknownOperationException",
                    f"The operation {route.name} is not implemented by the emulator.",
                )
            )
        try:
            query = {k: request.query.getall(k) for k in request.query}
            params = parse_request(route, labels, query, dict(request.headers), body)
            result = await asyncio.get_running_loop().run_in_executor(None, handler, params)
        except EmulatorError as exc:
            return _error(exc)
        if decision.action == "drop":
            _drop(request)
        if route.name in ("Converse", "ConverseStream"):
            _stamp_latency(result, int((time.monotonic() - started) * 1000))
        status, headers, payload = serialize_response(route, result)
        headers["x-amzn-RequestId"] = _request_id()
        return web.Response(status=status, headers=headers, body=payload)

    # --- admin -----------------------------------------------------------------------------

    async def _admin(self, request: web.Request) -> web.StreamResponse:
        name = request.path[len(ADMIN_PREFIX) :].strip("/")
        method = request.method.upper()
        doc: Any = None
        if method in ("POST", "PUT", "DELETE"):
            if not _is_json(request.headers.get("Content-Type")):
                return _admin_error(
                    415,
                    f"{method} {request.path} needs Content-Type: application/json (an empty body is {{}})",
                )
            if self.admin_token is not None and not self._token_ok(request):
                return _admin_error(
                    401,
                    "this emulator requires its admin token: Authorization: Bearer <token> "
                    "(printed at start-up)",
                )
        if method in ("POST", "PUT"):
            body = await _read_body(request, ADMIN_MAX_BYTES)
            if body is None:
                return _admin_error(413, "request body too large")
            try:
                doc = json.loads(body) if body.strip() else {}
            except ValueError:
                return _admin_error(400, "the body is not valid JSON")
            if not isinstance(doc, dict):
                return _admin_error(400, "the body must be a JSON object")
        loop = asyncio.get_running_loop()
        if name == "health" and method == "GET":
            with self.backend.lock:
                counts = {
                    "jobs": len(self.backend.jobs),
                    "custom_models": len(self.backend.models),
                    "deployments": len(self.backend.deployments),
                    "provisioned_models": len(self.backend.throughputs),
                }
            return web.json_response(
                {
                    "status": "ok",
                    "region": self.backend.region,
                    "persistent": self.backend.store.persistent,
                    **counts,
                }
            )
        if name == "faults":
            if method == "GET":
                return web.json_response(self.faults.describe())
            if method in ("POST", "PUT", "DELETE"):
                try:
                    self.faults.configure(doc if method != "DELETE" else {})
                except FaultConfigError as exc:
                    return _admin_error(400, str(exc))
                return web.json_response(self.faults.describe())
        if name in ("config", "transitions"):
            if method == "GET":
                return web.json_response(self.backend.settings.to_dict())
            if method in ("POST", "PUT"):
                try:
                    self.apply_config(doc)
                except ValueError as exc:
                    return _admin_error(400, str(exc))
                return web.json_response(self.backend.settings.to_dict())
        if name == "stats":
            if method == "GET":
                return web.json_response(self.stats.describe())
            if method == "DELETE":
                self.stats.clear()
                return web.json_response(self.stats.describe())
        if name == "reset" and method == "POST":
            await loop.run_in_executor(None, self.reset)
            return web.json_response({"status": "reset"})
        return _admin_error(404, f"no admin endpoint {method} {request.path}")

    def _token_ok(self, request: web.Request) -> bool:
        assert self.admin_token is not None
        given = request.headers.get("X-Emulator-Token")
        auth = request.headers.get("Authorization", "")
        if given is None and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return given is not None and hmac.compare_digest(given.encode(), self.admin_token.encode())

    def apply_config(self, doc: Mapping[str, Any]) -> None:
        """Apply ``{"time_scale": ..., "hold_phases": [...], "polls_per_phase": ...}``.

        :raises ValueError: for an unknown key or value.
        """
        known = {"time_scale", "hold_phases", "polls_per_phase", "max_running_jobs", "realistic_seconds"}
        unknown = set(doc) - known
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(sorted(unknown))}")
        settings = self.backend.settings
        if "time_scale" in doc:
            scale = doc["time_scale"]
            if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not 0 <= scale <= 10:
                raise ValueError("time_scale must be a number between 0 and 10")
            settings.time_scale = float(scale)
        if "hold_phases" in doc:
            holds = doc["hold_phases"] or []
            if not isinstance(holds, list) or not set(holds) <= PHASE_NAMES:
                raise ValueError(f"hold_phases must be a list of: {', '.join(sorted(PHASE_NAMES))}")
            settings.hold_phases = set(holds)
        if "polls_per_phase" in doc:
            polls = doc["polls_per_phase"]
            if not isinstance(polls, int) or isinstance(polls, bool) or not 0 <= polls <= 1000:
                raise ValueError("polls_per_phase must be an integer between 0 and 1000")
            settings.polls_per_phase = polls
        if "max_running_jobs" in doc:
            quota = doc["max_running_jobs"]
            if quota is not None and (not isinstance(quota, int) or isinstance(quota, bool) or quota < 0):
                raise ValueError("max_running_jobs must be null or a non-negative integer")
            settings.max_running_jobs = quota

    def reset(self) -> None:
        """Forget every resource, clear faults and restore the start config."""
        self.backend.reset()
        self.faults.clear()
        self.stats.clear()
        self.runtime = Runtime(self.backend)
        self.handlers["InvokeModel"] = self.runtime.invoke_model
        self.handlers["Converse"] = self.runtime.converse
        self.handlers["ConverseStream"] = self.runtime.converse_stream
        self.handlers["InvokeModelWithResponseStream"] = self.runtime.invoke_model_with_response_stream
        self.apply_config({k: v for k, v in self.initial_config.items() if k != "realistic_seconds"})


#: moto's server-mode reset, served on the emulator's own port.
MOTO_RESET_PATH = "/moto-api/reset"

#: Headers that describe one connection, not the request or response (never forwarded).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)

_SCOPE_RE = re.compile(r"Credential=[^/,\s]+/[0-9]{8}/[^/,\s]+/(?P<service>[^/,\s]+)/aws4_request")
_QUERY_SCOPE_RE = re.compile(r"^[^/]+/[0-9]{8}/[^/]+/(?P<service>[^/]+)/aws4_request$")


def signing_service(authorization: str | None, query_credential: str | None = None) -> str | None:
    """The service of a request's SigV4 credential scope (``s3``, ``bedrock``), from the
    ``Authorization`` header or a presigned URL's ``X-Amz-Credential``; None when unsigned."""
    if authorization:
        match = _SCOPE_RE.search(authorization)
        if match:
            return match["service"]
    if query_credential:
        match = _QUERY_SCOPE_RE.match(query_credential)
        if match:
            return match["service"]
    return None


def _stamp_latency(result: Mapping[str, Any], latency_ms: int) -> None:
    """Set ``latencyMs`` to the time the request took here, injected latency included."""
    metrics = result.get("metrics")
    if isinstance(metrics, dict):
        metrics["latencyMs"] = max(int(metrics.get("latencyMs", 0)), latency_ms)
    for event in result.get("stream") or ():
        if event[0] == "metadata" and isinstance(event[1].get("metrics"), dict):
            event[1]["metrics"]["latencyMs"] = max(int(event[1]["metrics"].get("latencyMs", 0)), latency_ms)


#: Host names that always mean this machine.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

#: Operations whose body is the model's own payload, sent with the caller's content type.
OPAQUE_BODY_OPERATIONS = frozenset({"InvokeModel", "InvokeModelWithResponseStream"})

#: Content types a page can send cross-site without a CORS preflight.
_FORM_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_json(content_type: str | None) -> bool:
    media = _media_type(content_type)
    return media == "application/json" or media.startswith("application/x-amz-json-")


def _is_form_type(content_type: str | None) -> bool:
    # botocore sends InvokeModel without a Content-Type when the caller gives none; AWS then
    # takes the body as JSON. Only the types an HTML form can send are refused there.
    return _media_type(content_type) in _FORM_TYPES


def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_loopback_origin(origin: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(origin)
        name = parts.hostname
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and name is not None and name.lower() in LOOPBACK_HOSTS


def _forbidden(message: str) -> web.Response:
    return _error(EmulatorError("AccessDeniedException", message))


def _drop(request: web.Request) -> NoReturn:
    """Close the connection without a response."""
    if request.transport is not None:
        request.transport.abort()
    raise asyncio.CancelledError  # nothing may be written on the aborted connection


async def _read_body(request: web.Request, limit: int) -> bytes | None:
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = await request.content.read(64 * 1024)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            return None
        chunks.append(chunk)


def _error(exc: EmulatorError) -> web.Response:
    status, headers, body = error_response(exc)
    headers["x-amzn-RequestId"] = _request_id()
    return web.Response(status=status, headers=headers, body=body)


def _admin_error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


def _request_id() -> str:
    import uuid

    return str(uuid.uuid4())
