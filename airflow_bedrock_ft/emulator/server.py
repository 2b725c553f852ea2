"""Start and stop the emulator: the aiohttp server in a background thread with its own event
loop, plus an embedded S3 server (moto's ``ThreadedMotoServer``) unless an external S3
endpoint is given.

    from airflow_bedrock_ft.emulator import start_emulator

    with start_emulator(port=0, s3_port=0, time_scale=0.0, state_path=None) as emu:
        emu.endpoint_url          # bedrock + bedrock-runtime
        emu.s3_endpoint_url
        emu.connection_uri_json() # value for AIRFLOW_CONN_AWS_DEFAULT
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from airflow_bedrock_ft.emulator.app import EmulatorApp
from airflow_bedrock_ft.emulator.auth import DEFAULT_CREDENTIALS, SigV4Verifier
from airflow_bedrock_ft.emulator.backend import Backend, Settings
from airflow_bedrock_ft.emulator.faults import Faults, parse_env
from airflow_bedrock_ft.emulator.store import Store

log = logging.getLogger(__name__)

ENV_FAULTS = "BEDROCK_EMULATOR_FAULTS"
ENV_TIME_SCALE = "BEDROCK_EMULATOR_TIME_SCALE"
#: Seconds an idle connection, or one that stopped half-way through a request, stays open.
IDLE_TIMEOUT_S = 15.0
#: Dummy credentials for the local endpoints; they are not secrets.
DUMMY_KEY = "testing"


def _s3_client_factory(endpoint_url: str | None, region: str) -> Any:
    # One boto3 session for all job runners: a new session re-reads the S3 service model from
    # disk (about a second). Client creation from a shared session is not thread-safe: lock it.
    lock = threading.Lock()
    sessions: list[Any] = []

    def make() -> Any:
        import boto3
        from botocore.config import Config

        kwargs: dict[str, Any] = {
            "region_name": region,
            "config": Config(
                s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}
            ),
        }
        if endpoint_url:
            kwargs["endpoint_url"] = endpoint_url
            if not os.environ.get("AWS_ACCESS_KEY_ID"):
                kwargs.update(aws_access_key_id=DUMMY_KEY, aws_secret_access_key=DUMMY_KEY)
        with lock:
            if not sessions:
                sessions.append(boto3.session.Session())
            return sessions[0].client("s3", **kwargs)

    return make


class Emulator:
    """A running emulator (returned by :func:`start_emulator`); a context manager that stops it.

    :param host: interface to bind; loopback unless set explicitly.
    :param port: port of the Bedrock endpoint (0 = a free port).
    :param s3_port: port of the embedded S3 server (0 = a free port); ignored with
        ``s3_endpoint_url``.
    :param s3_endpoint_url: an external S3-compatible endpoint instead of the embedded one.
    :param time_scale: factor on realistic phase durations (0 = as fast as possible).
    :param state_path: SQLite file that keeps the state across restarts (None = memory only).
    :param region: region in ARNs and in the printed connection.
    :param faults: initial fault document (see :mod:`airflow_bedrock_ft.emulator.faults`).
    :param allowed_hosts: more host names accepted in the ``Host`` header (the loopback names
        and ``host`` always are); needed when clients reach it by another name (a container's).
    :param admin_token: token the state-changing ``/_emulator/`` endpoints require; ``"auto"``
        makes a random one (see :attr:`admin_token` and :meth:`admin_headers`); None for none.
    :param idle_timeout: seconds an idle or half-sent connection stays open.
    :param credentials: secret access key per access key id that signed requests may use
        (default ``testing``/``testing``).
    :param auth: False accepts unsigned and wrongly signed requests (``--no-auth``).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        s3_port: int | None = 0,
        s3_endpoint_url: str | None = None,
        time_scale: float = 0.0,
        state_path: str | Path | None = None,
        region: str = "us-east-1",
        faults: Mapping[str, Any] | None = None,
        allowed_hosts: Iterable[str] = (),
        admin_token: str | None = None,
        idle_timeout: float = IDLE_TIMEOUT_S,
        credentials: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> None:
        self.host = host
        self.credentials = dict(credentials or DEFAULT_CREDENTIALS)
        self.auth = auth
        self.allowed_hosts = [h for h in allowed_hosts if h]
        if host not in ("0.0.0.0", "::", ""):
            self.allowed_hosts.append(host)
        self.admin_token = secrets.token_urlsafe(24) if admin_token == "auto" else admin_token
        self.idle_timeout = idle_timeout
        self.region = region
        self._port = port
        self._s3_port = s3_port
        self._s3_server: Any = None
        self.s3_endpoint_url = s3_endpoint_url
        self.faults = Faults()
        if faults:
            self.faults.configure(faults)
        self.store = Store(state_path)
        self.settings = Settings(time_scale=time_scale)
        self.backend: Backend | None = None
        self.app: EmulatorApp | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.port = 0
        self._session: Any = None
        self._client_lock = threading.Lock()

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Start S3 (unless external), the backend (resuming persisted jobs) and the server."""
        if self.s3_endpoint_url is None:
            from moto.server import ThreadedMotoServer

            # werkzeug logs every S3 request at INFO; keep the console for the emulator.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)

            self._s3_server = ThreadedMotoServer(ip_address=self.host, port=self._s3_port or 0, verbose=False)
            self._s3_server.start()
            s3_host, s3_port = self._s3_server.get_host_and_port()
            self.s3_endpoint_url = f"http://{_url_host(s3_host)}:{s3_port}"
        self.backend = Backend(
            self.region,
            store=self.store,
            s3_client_factory=_s3_client_factory(self.s3_endpoint_url, self.region),
            faults=self.faults,
            settings=self.settings,
        )
        self.app = EmulatorApp(
            self.backend,
            self.faults,
            allowed_hosts=self.allowed_hosts,
            admin_token=self.admin_token,
            auth=SigV4Verifier(self.credentials) if self.auth else None,
            s3_upstream=self.s3_endpoint_url,
            s3_is_moto=self._s3_server is not None,
        )
        self._thread = threading.Thread(target=self._serve, name="bedrock-emulator", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None or not self.port:
            self.stop()
            raise RuntimeError(f"the emulator failed to start: {self._error}")
        self.backend.resume_jobs()
        return self

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        assert self.app is not None
        runner = web.AppRunner(
            self.app.build(),
            access_log=None,
            handle_signals=False,
            keepalive_timeout=self.idle_timeout,
            auto_decompress=False,  # S3 bodies are forwarded as sent (Content-Encoding: gzip included)
        )
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, self.host, self._port)
            loop.run_until_complete(site.start())
            self.port = int(runner.addresses[0][1])
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.run_until_complete(runner.cleanup())
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    def stop(self) -> None:
        """Stop the server, the job runners (their jobs resume on the next start) and S3."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
        self._loop = None
        if self.backend is not None:
            self.backend.shutdown()
        self.store.close()
        if self._s3_server is not None:
            self._s3_server.stop()
            self._s3_server = None

    def __enter__(self) -> Emulator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- conveniences ----------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        """Endpoint of ``bedrock`` and ``bedrock-runtime``, and of S3 too (routed by the signature's
        service, as moto serves every service on one port)."""
        return f"http://{_url_host(self.host)}:{self.port}"

    def admin_headers(self) -> dict[str, str]:
        """Headers for a state-changing request to ``/_emulator/`` (JSON, and the token if any)."""
        headers = {"Content-Type": "application/json"}
        if self.admin_token:
            headers["Authorization"] = f"Bearer {self.admin_token}"
        return headers

    def connection(self) -> dict[str, Any]:
        """The Airflow AWS connection (as a dict) that points at this emulator and its S3."""
        return {
            "conn_type": "aws",
            "login": DUMMY_KEY,
            "password": DUMMY_KEY,
            "extra": {
                "endpoint_url": self.endpoint_url,
                "region_name": self.region,
                "service_config": {"s3": {"endpoint_url": self.s3_endpoint_url}},
            },
        }

    def connection_uri_json(self) -> str:
        """The JSON form of :meth:`connection`, for ``AIRFLOW_CONN_AWS_DEFAULT``."""
        return json.dumps(self.connection())

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``bedrock``, ``bedrock-runtime`` or ``s3`` pointed at this emulator."""
        import boto3

        endpoint = self.s3_endpoint_url if service == "s3" else self.endpoint_url
        with self._client_lock:
            if self._session is None:
                self._session = boto3.session.Session()
            session: Any = self._session
            return session.client(
                service,
                endpoint_url=endpoint,
                region_name=self.region,
                aws_access_key_id=DUMMY_KEY,
                aws_secret_access_key=DUMMY_KEY,
                **kwargs,
            )

    def set_faults(self, faults: Mapping[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Replace the fault document: ``set_faults(throttle={"rate": 1.0})``; no args clears."""
        doc = {**(faults or {}), **kwargs}
        self.faults.configure(doc)
        return self.faults.describe()

    def set_config(
        self,
        *,
        time_scale: float | None = None,
        hold_phases: list[str] | None = None,
        polls_per_phase: int | None = None,
        **more: Any,
    ) -> dict[str, Any]:
        """Change the time scale, the held job phases, the polls each phase needs, or any other
        ``/_emulator/config`` key (``max_running_jobs``)."""
        assert self.app is not None
        doc: dict[str, Any] = {}
        if time_scale is not None:
            doc["time_scale"] = time_scale
        if hold_phases is not None:
            doc["hold_phases"] = list(hold_phases)
        if polls_per_phase is not None:
            doc["polls_per_phase"] = polls_per_phase
        doc.update(more)
        self.app.apply_config(doc)
        return self.settings.to_dict()

    def stats(self, clear: bool = False) -> dict[str, Any]:
        """Requests received per operation (``GET /_emulator/stats``); ``clear`` resets the counts after."""
        assert self.app is not None
        doc = self.app.stats.describe()
        if clear:
            self.app.stats.clear()
        return doc

    def reset(self) -> None:
        """Forget all resources, clear faults, restore the start config (S3 is left alone)."""
        assert self.app is not None
        self.app.reset()


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def start_emulator(
    port: int = 0,
    s3_port: int | None = 0,
    time_scale: float | None = None,
    state_path: str | Path | None = None,
    *,
    host: str = "127.0.0.1",
    s3_endpoint_url: str | None = None,
    region: str = "us-east-1",
    faults: Mapping[str, Any] | None = None,
    allowed_hosts: Iterable[str] = (),
    admin_token: str | None = None,
    credentials: Mapping[str, str] | None = None,
    auth: bool = True,
) -> Emulator:
    """Start an emulator and return it; use it as a context manager to stop it.

    ``time_scale`` and ``faults`` default to ``BEDROCK_EMULATOR_TIME_SCALE`` (else 0) and
    ``BEDROCK_EMULATOR_FAULTS`` (a JSON object, else none).
    """
    if time_scale is None:
        raw = os.environ.get(ENV_TIME_SCALE, "").strip()
        time_scale = float(raw) if raw else 0.0
    if faults is None:
        faults = parse_env(os.environ.get(ENV_FAULTS))
    emulator = Emulator(
        host=host,
        port=port,
        s3_port=s3_port,
        s3_endpoint_url=s3_endpoint_url,
        time_scale=time_scale,
        state_path=state_path,
        region=region,
        faults=faults,
        allowed_hosts=allowed_hosts,
        admin_token=admin_token,
        credentials=credentials,
        auth=auth,
    )
    return emulator.start()
