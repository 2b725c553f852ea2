"""CPU cost of one GetModelCustomizationJob poll through different client paths.

A diagnostic behind the trigger benchmark's ``CPU/poll`` column: it takes the trigger out
of the picture and polls the benchmark endpoint (``bench/_endpoint.py``, separate process)
from N tasks in one event loop, once per second each, through:

- ``botocore``: one shared aiobotocore client, default configuration (what a hook's
  ``client.get_model_customization_job`` costs);
- ``botocore-lean``: the same client without timestamp parsing and parameter validation,
  with a larger connection pool;
- ``signed-get``: one aiohttp session sending the GET signed with botocore's SigV4 signer,
  the body parsed with ``json.loads``.

Each path runs in a fresh process; CPU per poll is process CPU over a steady window divided
by the polls made in it. Usage::

    .venv/bin/python bench/_poll_paths.py --n 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _endpoint import job_arn, measured_job_id  # noqa: E402

PATHS = ("botocore", "botocore-lean", "signed-get")


async def _poll(path: str, n: int, url: str, warm: float, window: float) -> dict[str, Any]:
    polls = 0
    closers: list[Any] = []
    if path.startswith("botocore"):
        import aiobotocore.session
        from botocore.config import Config

        session = aiobotocore.session.get_session()
        config = None
        if path == "botocore-lean":
            session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=lambda v: v)
            config = Config(parameter_validation=False, max_pool_connections=100)
        ctx = session.create_client("bedrock", region_name="us-east-1", endpoint_url=url,
                                    aws_access_key_id="testing", aws_secret_access_key="testing", config=config)
        client = await ctx.__aenter__()
        closers.append(lambda: ctx.__aexit__(None, None, None))

        async def get(arn: str) -> dict[str, Any]:
            return await client.get_model_customization_job(jobIdentifier=arn)
    else:
        import aiohttp
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        signer = SigV4Auth(Credentials("testing", "testing"), "bedrock", "us-east-1")
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
        closers.append(http.close)

        async def get(arn: str) -> dict[str, Any]:
            target = f"{url}/model-customization-jobs/{quote(arn, safe='')}"
            request = AWSRequest(method="GET", url=target)
            signer.add_auth(request)
            async with http.get(target, headers=dict(request.headers.items())) as resp:
                return json.loads(await resp.read())

    async def one(i: int) -> None:
        nonlocal polls
        arn = job_arn(measured_job_id(i))
        while True:
            job = await get(arn)
            if job.get("status") != "InProgress":
                raise RuntimeError(f"unexpected answer {job!r}")
            polls += 1
            await asyncio.sleep(1.0)

    tasks = [asyncio.ensure_future(one(i)) for i in range(n)]
    await asyncio.sleep(warm)
    p0, c0, t0 = polls, time.process_time(), time.monotonic()
    await asyncio.sleep(window)
    p1, c1, t1 = polls, time.process_time(), time.monotonic()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for close in closers:
        await close()
    return {"path": path, "n": n, "cpu_per_poll_ms": 1e3 * (c1 - c0) / max(1, p1 - p0),
            "polls_per_s": (p1 - p0) / (t1 - t0), "loop_cpu_pct": 100 * (c1 - c0) / (t1 - t0)}


def _child(args: argparse.Namespace) -> int:
    endpoint = subprocess.Popen(
        [sys.executable, str(HERE / "_endpoint.py"), "--expected", str(10**9), "--duration", "3600",
         "--lifetime", str(args.warm + args.window + 60)],
        stdout=subprocess.PIPE,
    )
    try:
        assert endpoint.stdout is not None
        word, _, port = endpoint.stdout.readline().decode().strip().partition(" ")
        if word != "PORT":
            raise RuntimeError("endpoint did not start")
        result = asyncio.run(_poll(args.path, args.n, f"http://127.0.0.1:{port}", args.warm, args.window))
        print("RESULT " + json.dumps(result))
        return 0
    finally:
        endpoint.terminate()
        endpoint.wait(10)


def main(argv: list[str] | None = None) -> int:
    """Measure every path in its own process and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="concurrent jobs, each polled once a second")
    parser.add_argument("--warm", type=float, default=2.0)
    parser.add_argument("--window", type=float, default=6.0)
    parser.add_argument("--path", choices=PATHS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.path:
        return _child(args)
    env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true", "NO_PROXY": "127.0.0.1"}
    print(f"{'path':<14} {'N':>5} {'CPU/poll ms':>11} {'polls/s':>8} {'loop CPU %':>10}")
    for path in PATHS:
        proc = subprocess.run(
            [sys.executable, __file__, "--path", path, "--n", str(args.n), "--warm", str(args.warm),
             "--window", str(args.window)],
            capture_output=True, text=True, env=env, timeout=args.warm + args.window + 120, check=False,
        )
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(f"{path:<14} failed: {proc.stderr[-500:]}")
            continue
        r = json.loads(line[len("RESULT "):])
        print(f"{path:<14} {r['n']:>5} {r['cpu_per_poll_ms']:>11.3f} {r['polls_per_s']:>8.0f} "
              f"{r['loop_cpu_pct']:>10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
