"""A real Airflow 3 deployment for end-to-end tests: separate api-server, scheduler,
dag-processor and triggerer processes (LocalExecutor), a migrated SQLite metadata database,
and the ``aws_default`` connection pointing at the local emulator.

Components run as their own process groups so a test can restart the triggerer or kill a
worker the way an operator or a crash would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

AIRFLOW = [sys.executable, "-m", "airflow"]
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AirflowDeployment:
    """Starts, inspects and stops the Airflow components of one test session."""

    def __init__(self, home: Path, dags_folder: Path, extra_env: Mapping[str, str]) -> None:
        self.home = home
        self.dags_folder = dags_folder
        self.port = free_port()
        self.db_path = home / "airflow.db"
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db_path}",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": "e2e-test-secret",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            **extra_env,
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    # --- lifecycle ------------------------------------------------------------------------

    def migrate(self) -> None:
        """Create the metadata database."""
        self.home.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [*AIRFLOW, "db", "migrate"], env=self.env, check=True, capture_output=True, timeout=180
        )

    def start(self, *components: str) -> None:
        """Start components (all of them by default), each in its own process group."""
        for name in components or COMPONENTS:
            log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
            self.procs[name] = subprocess.Popen(
                [*AIRFLOW, *name.split()],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if "api-server" in (components or COMPONENTS):
            self._wait_http(f"http://127.0.0.1:{self.port}/api/v2/version", timeout=90)

    def stop(self, *components: str, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        """Stop components (all by default): the signal to the whole group, SIGKILL after ``timeout``."""
        names = components or tuple(reversed(list(self.procs)))
        for name in names:
            proc = self.procs.pop(name, None)
            if proc is None:
                continue
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                continue
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def restart(self, component: str, sig: int = signal.SIGTERM) -> None:
        """Stop and start one component, as a redeploy or a crash (``sig=SIGKILL``) would."""
        self.stop(component, sig=sig)
        self.start(component)

    def log(self, component: str) -> str:
        """Everything a component has written so far."""
        path = self.home / f"{component}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- acting ---------------------------------------------------------------------------

    def cli(self, *args: str, timeout: float = 120) -> str:
        """Run an ``airflow`` CLI command against this deployment and return its stdout."""
        done = subprocess.run(
            [*AIRFLOW, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call the public REST API (v2) with a token from the simple auth manager."""
        token = self._token()
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/v2{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def _token(self) -> str:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/auth/token", method="GET")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return str(json.loads(resp.read())["access_token"])

    def wait_for_dag(self, dag_id: str, timeout: float = 90) -> None:
        """Wait until the dag-processor has parsed ``dag_id`` into the database."""
        self._until(
            lambda: self.query("SELECT 1 FROM dag WHERE dag_id=?", dag_id),
            timeout,
            f"DAG {dag_id} was not parsed",
        )

    def trigger(self, dag_id: str, run_id: str, conf: Mapping[str, Any] | None = None) -> None:
        """Trigger a DAG run through the REST API."""
        self.api(
            "POST",
            f"/dags/{dag_id}/dagRuns",
            {"dag_run_id": run_id, "logical_date": None, "conf": dict(conf or {})},
        )

    def set_task_state(self, dag_id: str, run_id: str, task_id: str, state: str) -> None:
        """Mark a task instance, as a user does in the UI."""
        self.api("PATCH", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}", {"new_state": state})

    # --- inspecting -----------------------------------------------------------------------

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the metadata database directly (read-only, short timeout)."""
        if not self.db_path.exists():
            return []
        con = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            return con.execute(sql, params).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            con.close()

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        rows = self.query("SELECT state FROM dag_run WHERE dag_id=? AND run_id=?", dag_id, run_id)
        return rows[0][0] if rows else None

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        rows = self.query(
            "SELECT state FROM task_instance WHERE dag_id=? AND run_id=? AND task_id=?",
            dag_id,
            run_id,
            task_id,
        )
        return rows[0][0] if rows else None

    def wait_for_task_state(
        self, dag_id: str, run_id: str, task_id: str, states: Iterable[str], timeout: float = 180
    ) -> str:
        wanted = set(states)
        self._until(
            lambda: self.task_state(dag_id, run_id, task_id) in wanted,
            timeout,
            f"{task_id} never reached {wanted}",
        )
        return str(self.task_state(dag_id, run_id, task_id))

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        """Wait until the run ends; returns its final state."""
        self._until(
            lambda: self.run_state(dag_id, run_id) in ("success", "failed"),
            timeout,
            f"run {run_id} of {dag_id} did not finish",
        )
        return str(self.run_state(dag_id, run_id))

    def trigger_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        """What triggers wrote for a task (``<task log>.trigger.<triggerer id>.log`` files)."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return "".join(p.read_text(errors="replace") for p in sorted(folder.glob("*.trigger.*.log")))

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        rows = self.query(
            "SELECT value FROM xcom WHERE dag_id=? AND run_id=? AND task_id=? AND key=?",
            dag_id,
            run_id,
            task_id,
            key,
        )
        if not rows:
            return None
        value = rows[0][0]
        return json.loads(value) if isinstance(value, (str, bytes)) else value

    # --- helpers --------------------------------------------------------------------------

    def _until(self, predicate: Any, timeout: float, message: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            self._check_alive()
            time.sleep(0.5)
        raise TimeoutError(f"{message} within {timeout:.0f} s.\n{self.diagnostics()}")

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"airflow {name} exited with {proc.returncode}:\n{self.log(name)[-4000:]}")

    def _wait_http(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=5):
                    return
            except urllib.error.HTTPError:
                return  # it answers: up
            except OSError:
                self._check_alive()
                time.sleep(0.5)
        raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")

    def diagnostics(self) -> str:
        """Task states and the tail of every component's log, for a failing test's message."""
        parts = [f"task instances: {self.query('SELECT task_id, state, try_number FROM task_instance')}"]
        for name in COMPONENTS:
            parts.append(f"--- {name} (tail) ---\n{self.log(name)[-2500:]}")
        return "\n".join(parts)
