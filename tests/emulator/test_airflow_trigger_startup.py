"""The first waits of a fresh triggerer process, against the emulator over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def test_concurrent_first_waits_share_one_complete_hook_import(bedrock_emulator: Any, tmp_path: Path) -> None:
    """Regression: the first waits of a fresh triggerer raced on the hook import, and one got
    a half-initialised module ("partially initialized module ... has no attribute")."""
    script = tmp_path / "race.py"
    script.write_text(
        "import asyncio, json, sys\n"
        "import airflow\n"
        "from airflow_bedrock_ft.triggers.bedrock_ft import BedrockFineTuneJobCompletedTrigger as T\n"
        "ARN = 'arn:aws:bedrock:us-east-1:123456789012:model-customization-job/amazon.nova-micro-v1:0:128k/abcdefabcdef'\n"
        "async def one():\n"
        "    try:\n"
        "        async for ev in T(job_arn=ARN, poll_interval=0.1, max_attempts=1).run():\n"
        "            return ev.payload['status']\n"
        "    except Exception as exc:\n"
        "        return f'{type(exc).__name__}: {exc}'\n"
        "async def main():\n"
        "    print(json.dumps(await asyncio.gather(*(one() for _ in range(4)))))\n"
        "asyncio.run(main())\n"
    )
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "home"),
        "AIRFLOW_CONN_AWS_DEFAULT": bedrock_emulator.connection_uri_json(),
    }
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    # The job does not exist: each wait must end with its one error event, none with a crash.
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["error"] * 4
