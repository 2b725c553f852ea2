"""``scripts/local-cluster.sh``: status of a cluster that is not up, and ``down`` signals exactly
the process groups it recorded, never a process that merely reuses a recorded pid."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "local-cluster.sh"


def _run(state: Path, *args: str, override: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLUSTER_STATE_DIR": str(state), "PYTHON": sys.executable}
    env.pop("CLUSTER_ENV_OVERRIDE", None)
    if override is not None:
        env["CLUSTER_ENV_OVERRIDE"] = str(override)
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def _start_time(pid: int) -> str:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2 :].split()[19]


def test_status_of_a_cluster_that_is_not_up_lists_every_component_down(tmp_path: Path) -> None:
    done = _run(tmp_path, "status")
    assert done.returncode == 3, done.stdout + done.stderr
    lines = dict(line.split(None, 1) for line in done.stdout.splitlines())
    assert set(lines) == {
        "emulator",
        "api-server",
        "scheduler",
        "dag-processor",
        "worker-0",
        "triggerer-0",
        "triggerer-1",
    }
    assert all(v.startswith("down") for v in lines.values()), lines


def test_a_bad_override_line_names_file_and_line(tmp_path: Path) -> None:
    override = tmp_path / "override.env"
    override.write_text("AIRFLOW__API__PORT=9999\nBROKEN LINE\n")
    done = _run(tmp_path, "status", override=override)
    assert done.returncode != 0
    assert f"{override}:2: expected KEY=value" in done.stderr


def _live_members(pgid: int) -> list[int]:
    """Processes of the group that are not zombies (an orphan's zombie waits for init)."""
    live = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        if fields[2] == str(pgid) and fields[0] != "Z":
            live.append(int(entry.name))
    return live


@pytest.mark.parametrize("recorded_correctly", [True, False])
def test_down_stops_only_the_recorded_process_group(tmp_path: Path, recorded_correctly: bool) -> None:
    # A stand-in component: a group with a leader and a child, as the real ones have.
    proc = subprocess.Popen(["sh", "-c", "sleep 60 & wait"], start_new_session=True)
    try:
        time.sleep(0.3)
        pids = tmp_path / "pids"
        pids.mkdir()
        started = _start_time(proc.pid) if recorded_correctly else "1"  # "1": a pid since reused
        (pids / "scheduler.pid").write_text(f"{proc.pid} {started}\n")
        done = _run(tmp_path, "down")
        assert done.returncode == 0, done.stdout + done.stderr
        if recorded_correctly:
            proc.wait(timeout=10)
            assert _live_members(proc.pid) == [], "the child did not go with its group"
        else:
            assert proc.poll() is None, "down signalled a process it did not start"
        assert not (pids / "scheduler.pid").exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
