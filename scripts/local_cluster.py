"""A distributed Airflow on this machine, without Docker: ``local-cluster.sh up|down|status``.

Starts the local Bedrock emulator (with its S3), then a scheduler, a dag-processor, an
api-server, two triggerers and a Celery worker (CeleryExecutor, PostgreSQL metadata database,
Redis broker), each in its own process group, with the settings of ``deploy/cluster.env``
(plus an optional second env file named by ``$CLUSTER_ENV_OVERRIDE``). Process ids go to a
state directory (``$CLUSTER_STATE_DIR``, default ``.cluster/`` in the repository) so ``down``
stops exactly what ``up`` started. The system tests drive the same :class:`LocalCluster`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ENV_FILE = REPO / "deploy" / "cluster.env"

_LINE = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>'[^']*'|[^'\"\s#][^\s]*|)$")


class SettingsError(ValueError):
    """A line of an env file that the shell, Compose and this loader would not read alike."""


def load_env_file(path: Path) -> dict[str, str]:
    """Read ``KEY=value`` / ``KEY='value'`` lines; anything else is an error naming file and line."""
    settings: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise SettingsError(
                f"{path}:{number}: expected KEY=value or KEY='value' (no spaces, no double quotes, "
                f"no trailing comment), got {raw!r}"
            )
        value = match["value"]
        settings[match["key"]] = value[1:-1] if value.startswith("'") else value
    return settings


def load_settings(override: Path | None = None) -> dict[str, str]:
    """``deploy/cluster.env``, then the override file (``$CLUSTER_ENV_OVERRIDE`` by default)."""
    settings = load_env_file(ENV_FILE)
    override = override or (
        Path(os.environ["CLUSTER_ENV_OVERRIDE"]) if os.environ.get("CLUSTER_ENV_OVERRIDE") else None
    )
    if override is not None:
        settings.update(load_env_file(override))
    return settings


def _port(url: str) -> int:
    parsed = urllib.parse.urlsplit(url)
    if parsed.port is None:
        raise SettingsError(f"{url!r} names no port")
    return parsed.port


@dataclass
class Component:
    """One process of the cluster: its name, command line and extra environment."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


class LocalCluster:
    """Starts, checks and stops the processes of the local cluster, recorded in a state directory.

    :param settings: the merged env-file settings (:func:`load_settings`).
    :param state_dir: where pids, logs, the Airflow home and the emulator's state go.
    """

    def __init__(self, settings: Mapping[str, str], state_dir: Path) -> None:
        self.settings = dict(settings)
        self.state_dir = state_dir
        self.home = state_dir / "home"
        self.logs = state_dir / "logs"
        self.pids = state_dir / "pids"
        self.connection = json.loads(self.settings["AIRFLOW_CONN_AWS_DEFAULT"])
        extra = self.connection["extra"]
        self.emulator_url = str(extra["endpoint_url"])
        self.s3_url = str(extra["service_config"]["s3"]["endpoint_url"])
        self.api_url = f"http://{self.settings['AIRFLOW__API__HOST']}:{self.settings['AIRFLOW__API__PORT']}"
        self.admin_user = (
            self.settings["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(",")[0].split(":")[0]
        )
        self.admin_password = self.settings["CLUSTER_ADMIN_PASSWORD"]
        self.triggerers = [f"triggerer-{i}" for i in range(int(self.settings.get("CLUSTER_TRIGGERERS", "2")))]
        self.workers = [f"worker-{i}" for i in range(int(self.settings.get("CLUSTER_WORKERS", "1")))]
        self.hostname = socket.getfqdn()
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    # --- configuration -------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """The environment every component runs with."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
        env.update({k: v for k, v in self.settings.items() if not k.startswith("CLUSTER_")})
        env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
        env.setdefault("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"{self.api_url}/execution/")
        env["AIRFLOW_HOME"] = str(self.home)
        env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(self.home / "passwords.json")
        # The emulator's dummy keys, for clients that read the environment rather than the connection.
        env.setdefault("AWS_ACCESS_KEY_ID", str(self.connection.get("login", "")))
        env.setdefault("AWS_SECRET_ACCESS_KEY", str(self.connection.get("password", "")))
        return env

    def components(self) -> dict[str, Component]:
        """Every component by name, in start order (the emulator and api-server first)."""
        py = sys.executable
        airflow = [py, "-m", "airflow"]
        comps = [
            Component(
                "emulator",
                [
                    py,
                    "-m",
                    "airflow_bedrock_ft.cli",
                    "emulator",
                    "--host",
                    str(urllib.parse.urlsplit(self.emulator_url).hostname),
                    "--port",
                    str(_port(self.emulator_url)),
                    "--s3-port",
                    str(_port(self.s3_url)),
                    "--state",
                    str(self.state_dir / "emulator.sqlite"),
                ],
            ),
            Component("api-server", [*airflow, "api-server"]),
            Component("scheduler", [*airflow, "scheduler"]),
            Component("dag-processor", [*airflow, "dag-processor"]),
        ]
        port = int(self.settings["CLUSTER_WORKER_LOG_PORT"])
        for i, name in enumerate(self.workers):
            comps.append(
                Component(
                    name,
                    [*airflow, "celery", "worker", "--celery-hostname", f"{name}@{self.hostname}"],
                    {"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port + i)},
                )
            )
        base = int(self.settings["CLUSTER_TRIGGERER_LOG_PORT_BASE"])
        for i, name in enumerate(self.triggerers):
            comps.append(
                Component(
                    name,
                    [*airflow, "triggerer"],
                    {"AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(base + i)},
                )
            )
        return {c.name: c for c in comps}

    # --- lifecycle -----------------------------------------------------------------------

    def up(self, timeout: float = 300) -> None:
        """Create the database if missing, migrate it, start every component, wait until healthy."""
        if self.running():
            raise RuntimeError(
                f"the cluster in {self.state_dir} is already running: {sorted(self.running())}"
            )
        for folder in (self.home, self.logs, self.pids):
            folder.mkdir(parents=True, exist_ok=True)
        users = [
            u.split(":")[0] for u in self.settings["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(",")
        ]
        passwords = self.home / "passwords.json"
        passwords.write_text(json.dumps({u: self.admin_password for u in users}))
        passwords.chmod(0o600)
        self.create_database()
        done = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        try:
            for name in self.components():
                self.start(name)
                if name == "emulator":
                    self._wait(
                        lambda: self._http_ok(f"{self.emulator_url}/_emulator/health"), 60, "the emulator"
                    )
            self.wait_healthy(timeout)
        except BaseException:
            self.down()
            raise

    def start(self, name: str, timeout: float = 120) -> int:
        """Start one component in its own process group and record its pid.

        A triggerer is only recorded once its job row exists: the row's id is what the
        ``trigger`` table names (``triggerer_id``), and the job table holds no pid, so
        triggerers start one at a time and each takes the one new row.
        """
        component = self.components()[name]
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pids.mkdir(parents=True, exist_ok=True)
        before = self._max_triggerer_job() if name in self.triggerers else 0
        with open(self.logs / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                component.argv,
                env={**self.env, **component.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.state_dir,
            )
        self._children[name] = proc
        (self.pids / f"{name}.pid").write_text(f"{proc.pid} {_start_time(proc.pid)}\n")
        if name in self.triggerers:
            deadline = time.monotonic() + timeout
            while (job := self._max_triggerer_job()) <= before:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited:\n{self.log(name)[-4000:]}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} registered no triggerer job within {timeout:.0f} s")
                time.sleep(0.5)
            (self.pids / f"{name}.job").write_text(f"{job}\n")
        return proc.pid

    def triggerer_job(self, name: str) -> int | None:
        """The id of the job row of a running triggerer (what ``trigger.triggerer_id`` holds)."""
        path = self.pids / f"{name}.job"
        return int(path.read_text()) if path.exists() and self.pid(name) is not None else None

    def _max_triggerer_job(self) -> int:
        rows = self.query("SELECT max(id) FROM job WHERE job_type = 'TriggererJob'")
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        """Send ``sig`` to a component's process group; SIGKILL it if still there after ``timeout``."""
        pid = self.pid(name)
        pid_file = self.pids / f"{name}.pid"
        if pid is None:
            pid_file.unlink(missing_ok=True)
            return
        _signal_group(pid, sig)
        deadline = time.monotonic() + timeout
        while self._group_alive(name, pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if self._group_alive(name, pid):
            _signal_group(pid, signal.SIGKILL)
            while self._group_alive(name, pid):
                time.sleep(0.1)
        pid_file.unlink(missing_ok=True)
        (self.pids / f"{name}.job").unlink(missing_ok=True)
        self._children.pop(name, None)

    def down(self) -> None:
        """Stop every recorded component, last started first."""
        names = list(self.components())
        recorded = [p.stem for p in self.pids.glob("*.pid")] if self.pids.exists() else []
        for name in reversed(names + [n for n in recorded if n not in names]):
            self.stop(name)

    def restart(self, name: str, sig: int = signal.SIGTERM) -> int:
        """Stop (with ``sig``; SIGKILL to simulate a crash) and start one component."""
        self.stop(name, sig=sig)
        return self.start(name)

    # --- inspection ----------------------------------------------------------------------

    def pid(self, name: str) -> int | None:
        """The recorded pid (= process group id) of a running component, else None."""
        path = self.pids / f"{name}.pid"
        if not path.exists():
            return None
        pid_text, _, started = path.read_text().strip().partition(" ")
        pid = int(pid_text)
        if self._reap(name) or _start_time(pid) != started:
            return None  # exited, or the pid now belongs to another process
        return pid

    def running(self) -> dict[str, int]:
        """Components whose recorded process is alive, with their pids."""
        if not self.pids.exists():
            return {}
        found = {p.stem: self.pid(p.stem) for p in sorted(self.pids.glob("*.pid"))}
        return {name: pid for name, pid in found.items() if pid is not None}

    def log(self, name: str) -> str:
        """Everything a component has written so far."""
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def health(self) -> dict[str, str]:
        """Each component's state: ``healthy``, ``starting`` or ``down`` with a reason."""
        running = self.running()
        result: dict[str, str] = {}
        # Probe only what runs: a cluster that is down answers without opening a socket.
        api = self._json(f"{self.api_url}/api/v2/monitor/health") if "api-server" in running else None
        heartbeats = self.triggerer_heartbeats() if "api-server" in running else {}
        threshold = float(self.settings.get("AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD", "30"))
        for name in self.components():
            if name not in running:
                result[name] = "down"
            elif name == "emulator":
                result[name] = (
                    "healthy" if self._http_ok(f"{self.emulator_url}/_emulator/health") else "starting"
                )
            elif name in ("api-server", "scheduler", "dag-processor"):
                key = {
                    "api-server": "metadatabase",
                    "scheduler": "scheduler",
                    "dag-processor": "dag_processor",
                }[name]
                status = (api or {}).get(key, {}).get("status")
                result[name] = "healthy" if status == "healthy" else f"starting ({status or 'no answer'})"
            elif name in self.triggerers:
                job = self.triggerer_job(name)
                age = heartbeats.get(job) if job is not None else None
                result[name] = (
                    "healthy"
                    if age is not None and age < threshold
                    else f"starting (last heartbeat {'never' if age is None else f'{age:.0f} s ago'})"
                )
            else:
                result[name] = "healthy" if self.ping_worker(name) else "starting (no reply to ping)"
        return result

    def wait_healthy(self, timeout: float = 300) -> None:
        """Block until every component is healthy; a component that exits fails at once."""
        deadline = time.monotonic() + timeout
        state: dict[str, str] = {}
        while time.monotonic() < deadline:
            for name in self.components():
                if self.pid(name) is None:
                    raise RuntimeError(f"{name} exited:\n{self.log(name)[-4000:]}")
            state = self.health()
            if all(v == "healthy" for v in state.values()):
                return
            time.sleep(1)
        raise TimeoutError(f"not healthy within {timeout:.0f} s: {state}")

    def triggerer_heartbeats(self) -> dict[int, float]:
        """Seconds since the last heartbeat of each running triggerer job, by job id."""
        rows = self.query(
            "SELECT id, latest_heartbeat FROM job WHERE job_type = 'TriggererJob' AND state = 'running'"
        )
        now = datetime.now(timezone.utc)
        return {int(job): (now - beat).total_seconds() for job, beat in rows if beat is not None}

    def ping_worker(self, name: str) -> bool:
        """Whether the Celery worker answers ``celery inspect ping``."""
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "celery",
                "--app",
                "airflow.providers.celery.executors.celery_executor.app",
                "inspect",
                "ping",
                "--destination",
                f"{name}@{self.hostname}",
                "--timeout",
                "5",
            ],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done.returncode == 0 and "pong" in done.stdout

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """Read the metadata database (a fresh connection per call)."""
        from sqlalchemy import create_engine, text

        engine = create_engine(self.settings["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], poolclass=_null_pool())
        try:
            with engine.connect() as con:
                return [tuple(r) for r in con.execute(text(sql), params)]
        except Exception as exc:  # the schema may not exist yet while starting
            if "relation" in str(exc) and "does not exist" in str(exc):
                return []
            raise
        finally:
            engine.dispose()

    def create_database(self) -> None:
        """Create the metadata database on the PostgreSQL server unless it exists."""
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        url = make_url(self.settings["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        name = url.database
        if not name or not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise SettingsError(
                f"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN: database name {name!r} must be [A-Za-z0-9_]+"
            )
        engine = create_engine(
            url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=_null_pool()
        )
        try:
            with engine.connect() as con:
                if not con.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
                    con.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()

    def drop_database(self) -> None:
        """Drop the metadata database (the cluster must be down)."""
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        url = make_url(self.settings["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        engine = create_engine(
            url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=_null_pool()
        )
        try:
            with engine.connect() as con:
                con.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        finally:
            engine.dispose()

    def token(self) -> str:
        """A JWT for the admin user, from ``POST /auth/token`` as the UI's login does."""
        body = json.dumps({"username": self.admin_user, "password": self.admin_password}).encode()
        req = urllib.request.Request(
            f"{self.api_url}/auth/token",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return str(json.loads(resp.read())["access_token"])

    # --- helpers -------------------------------------------------------------------------

    def _reap(self, name: str) -> bool:
        """True when ``name`` is a child of this process that has exited (and is now reaped)."""
        proc = self._children.get(name)
        return proc is not None and proc.poll() is not None

    def _group_alive(self, name: str, pid: int) -> bool:
        self._reap(name)
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # A group whose only members are zombies (not ours to reap) is gone for our purposes.
        return any(_state(p) not in ("Z", None) for p in _group_members(pid))

    def _http_ok(self, url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return bool(resp.status == 200)
        except (OSError, urllib.error.HTTPError):
            return False

    def _json(self, url: str) -> Any:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return json.loads(resp.read())
        except (OSError, ValueError):
            return None

    def _wait(self, predicate: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.5)
        raise TimeoutError(f"{what} did not become healthy within {timeout:.0f} s")


def _null_pool() -> Any:
    from sqlalchemy.pool import NullPool

    return NullPool


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields after the command name


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot: with the pid, a unique identity."""
    fields = _stat_fields(pid)
    return fields[19] if fields else ""


def _state(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def _group_members(pgid: int) -> Iterable[int]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and fields[2] == str(pgid):
                yield int(entry.name)


def free_ports(count: int, consecutive: bool = False) -> list[int]:
    """Ports nobody listens on on 127.0.0.1; ``consecutive`` gives ``count`` adjacent ones."""
    ports: list[int] = []
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            first = int(s.getsockname()[1])
        block = [first + i for i in range(count)] if consecutive else [first]
        try:
            for p in block[1:]:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        ports += [p for p in block if p not in ports]
        if len(ports) >= count:
            return ports[:count]
    raise RuntimeError("no free ports on 127.0.0.1")


def isolated_override(state_dir: Path, dags_folder: Path, extra: Mapping[str, str] | None = None) -> Path:
    """Write an override env file for a cluster that cannot meet another one on this machine.

    Free ports for the api-server, the emulator, its S3 and the log servers, a database and a
    Celery queue named after this process, the given DAGs folder, then ``extra``. Returns
    the file, for :func:`load_settings`.
    """
    base = load_env_file(ENV_FILE)
    api, emu, s3, worker_log = free_ports(4)
    trigger_log = free_ports(2, consecutive=True)[0]
    conn = json.loads(base["AIRFLOW_CONN_AWS_DEFAULT"])
    conn["extra"]["endpoint_url"] = f"http://127.0.0.1:{emu}"
    conn["extra"]["service_config"]["s3"]["endpoint_url"] = f"http://127.0.0.1:{s3}"
    db_url = base["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].rsplit("/", 1)[0] + f"/airflow_cluster_{os.getpid()}"
    override = {
        "AIRFLOW__API__PORT": str(api),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + db_url,
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": f"cluster-{os.getpid()}",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(conn),
        "CLUSTER_WORKER_LOG_PORT": str(worker_log),
        "CLUSTER_TRIGGERER_LOG_PORT_BASE": str(trigger_log),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        **(extra or {}),
    }
    path = state_dir / "override.env"
    state_dir.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}='{v}'\n" for k, v in override.items()))
    return path


def _state_dir() -> Path:
    return Path(os.environ.get("CLUSTER_STATE_DIR", REPO / ".cluster")).resolve()


def main(argv: list[str] | None = None) -> int:
    """``up``, ``down`` or ``status``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="local-cluster.sh", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--timeout", type=float, default=300, help="seconds `up` waits for health")
    args = parser.parse_args(argv)
    cluster = LocalCluster(load_settings(), _state_dir())
    if args.command == "up":
        print(f"starting the cluster (state in {cluster.state_dir}) ...", flush=True)
        try:
            cluster.up(timeout=args.timeout)
        except (RuntimeError, TimeoutError, SettingsError) as exc:
            print(f"local-cluster: {exc}", file=sys.stderr)
            return 1
        for name, state in cluster.health().items():
            print(f"  {name:<14} {state:<10} pid {cluster.pid(name)}")
        print(f"Airflow UI: {cluster.api_url}/")
        print(
            f"  user {cluster.admin_user!r}, password {cluster.admin_password!r} "
            "(CLUSTER_ADMIN_PASSWORD, local use only)"
        )
        print(f"Bedrock emulator: {cluster.emulator_url}  S3: {cluster.s3_url}")
        print(f"Logs: {cluster.logs}")
        return 0
    if args.command == "down":
        cluster.down()
        left = cluster.running()
        print("stopped" if not left else f"still running: {left}")
        return 0 if not left else 1
    states = cluster.health()
    for name, state in states.items():
        print(f"{name:<14} {state:<40} pid {cluster.pid(name) or '-'}")
    return 0 if all(v == "healthy" for v in states.values()) else 3


if __name__ == "__main__":
    raise SystemExit(main())
