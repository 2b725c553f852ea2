"""Minimal, fast GetModelCustomizationJob endpoint for the trigger benchmark.

Runs in its own process so that its CPU never counts against the process being measured.
It answers only ``GET /model-customization-jobs/{jobIdentifier}`` (restJson1, the shape
botocore's service model describes) and records every request's arrival time per job.

Protocol with the parent process, one line each on stdout:

- ``PORT <port>`` once listening on 127.0.0.1;
- ``ALLPOLLED <monotonic>`` when every expected job has been polled once (the monotonic
  clock is system-wide on Linux, so the parent can compare it with its own readings);
- ``ALLPOLLED_TIMEOUT <monotonic>`` if that did not happen within ``--all-polled-timeout``
  seconds of the first request.

Job identifiers end in a 12-character id: ``b`` + 11 digits (the job's index) for measured
jobs, ``w`` + 11 digits for warm-up jobs, which are ``Completed`` from the first request, and
``a`` + 11 digits for anchor jobs, which never complete.
A measured job stays ``InProgress`` until ``duration + spread * frac(index * golden ratio)`` s
after the moment every job had been polled once, then reads ``Completed``. With
``--throttle P`` each request for a measured job is answered, with probability P, by a 429
``ThrottlingException`` instead (seeded by ``--seed``, so both triggers meet the same rate).

``GET /_bench/report`` returns everything recorded as JSON. The full emulator lives in
``airflow_bedrock_ft.emulator``; this file deliberately has no dependency on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import resource
import signal
import sys
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

from aiohttp import web

_PREFIX = "/model-customization-jobs/"
_ACCOUNT = "123456789012"
_REGION = "us-east-1"
_BASE_MODEL = "amazon.titan-text-express-v1:0:8k"
_JSON = "application/json"
_GOLDEN = 0.6180339887498949


def job_arn(job_id: str) -> str:
    """Return the ARN the benchmark uses for ``job_id`` (a 12-character ``[a-z0-9]`` id)."""
    return f"arn:aws:bedrock:{_REGION}:{_ACCOUNT}:model-customization-job/{_BASE_MODEL}/{job_id}"


def measured_job_id(index: int) -> str:
    """Return the id of the measured job with the given index."""
    return f"b{index:011d}"


def warmup_job_id(index: int) -> str:
    """Return the id of a warm-up job (completed from its first poll)."""
    return f"w{index:011d}"


def anchor_job_id(index: int) -> str:
    """Return the id of an anchor job (never completes; keeps the triggerer's state warm)."""
    return f"a{index:011d}"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds")


class _Job:
    __slots__ = ("arrivals", "bodies", "completion", "index", "job_id")

    def __init__(self, job_id: str, index: int, completion: float) -> None:
        self.job_id = job_id
        self.index = index
        self.completion = completion
        self.arrivals: list[float] = []
        created = time.time()
        arn = job_arn(job_id)
        doc: dict[str, Any] = {
            "jobArn": arn,
            "jobName": f"bench-{job_id}",
            "outputModelName": f"bench-model-{job_id}",
            "clientRequestToken": f"token-{job_id}",
            "roleArn": f"arn:aws:iam::{_ACCOUNT}:role/bench-bedrock",
            "status": "InProgress",
            "statusDetails": {
                "validationDetails": {"status": "Completed", "creationTime": _iso(created),
                                      "lastModifiedTime": _iso(created)},
                "dataProcessingDetails": {"status": "Completed", "creationTime": _iso(created),
                                          "lastModifiedTime": _iso(created)},
                "trainingDetails": {"status": "InProgress", "creationTime": _iso(created),
                                    "lastModifiedTime": _iso(created)},
            },
            "creationTime": _iso(created),
            "lastModifiedTime": _iso(created),
            "baseModelArn": f"arn:aws:bedrock:{_REGION}::foundation-model/{_BASE_MODEL}",
            "hyperParameters": {"epochCount": "1", "batchSize": "1", "learningRate": "0.00001"},
            "trainingDataConfig": {"s3Uri": "s3://bench-bucket/train.jsonl"},
            "validationDataConfig": {"validators": [{"s3Uri": "s3://bench-bucket/validation.jsonl"}]},
            "outputDataConfig": {"s3Uri": "s3://bench-bucket/output/"},
            "customizationType": "FINE_TUNING",
        }
        running = json.dumps(doc).encode()
        doc["status"] = "Completed"
        doc["statusDetails"]["trainingDetails"]["status"] = "Completed"
        doc["outputModelArn"] = f"arn:aws:bedrock:{_REGION}:{_ACCOUNT}:custom-model/{_BASE_MODEL}/{job_id}"
        doc["endTime"] = doc["lastModifiedTime"]
        doc["trainingMetrics"] = {"trainingLoss": 0.5}
        doc["validationMetrics"] = [{"validationLoss": 0.6}]
        self.bodies = (running, json.dumps(doc).encode())


class BenchEndpoint:
    """State and request handling of the benchmark endpoint."""

    def __init__(
        self,
        expected: int,
        duration: float,
        spread: float,
        all_polled_timeout: float,
        throttle: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.expected = expected
        self.throttle = throttle
        self.rng = random.Random(seed)
        self.throttled = 0
        self.duration = duration
        self.spread = spread
        self.all_polled_timeout = all_polled_timeout
        self.jobs: dict[str, _Job] = {}
        self.first_polled = 0
        self.first_request: float | None = None
        self.t_all: float | None = None
        self.all_polled_timed_out = False
        self.other: dict[str, int] = {}
        self.requests = 0
        # Own CPU time at the start and end of the steady-state window, to show whether this
        # process kept up.
        self.cpu_marks: dict[str, float] = {}

    def _announce(self, word: str, when: float) -> None:
        sys.stdout.write(f"{word} {when:.6f}\n")
        sys.stdout.flush()

    def _schedule_completions(self, start: float) -> None:
        self.t_all = start
        self.cpu_marks["all_polled"] = time.process_time()
        loop = asyncio.get_running_loop()
        loop.call_at(start + self.duration, self._mark_cpu, "first_completion")
        for job in self.jobs.values():
            if job.job_id[0] == "b":
                # Golden-ratio offsets: completions land evenly over one interval, uncorrelated
                # with the order (and so the poll phase) in which the jobs started.
                job.completion = start + self.duration + self.spread * ((job.index * _GOLDEN) % 1.0)

    async def watchdog(self) -> None:
        """Complete the jobs anyway if not every job gets polled in time."""
        while self.t_all is None:
            await asyncio.sleep(0.2)
            if self.first_request is not None and time.monotonic() - self.first_request > self.all_polled_timeout:
                self.all_polled_timed_out = True
                now = time.monotonic()
                self._schedule_completions(now)
                self._announce("ALLPOLLED_TIMEOUT", now)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        now = time.monotonic()
        self.requests += 1
        raw = request.raw_path
        if request.method == "GET" and raw.startswith(_PREFIX):
            ident = unquote(raw[len(_PREFIX):].split("?", 1)[0])
            job_id = ident.rsplit("/", 1)[-1]
            job = self.jobs.get(job_id)
            if job is None:
                if len(job_id) != 12 or job_id[0] not in "abw" or not job_id[1:].isdigit():
                    return self._error(404, "ResourceNotFoundException", f"Job {ident} not found.")
                kind = job_id[0]
                job = _Job(job_id, int(job_id[1:]), -math.inf if kind == "w" else math.inf)
                if kind == "b" and self.t_all is not None:
                    job.completion = self.t_all + self.duration
                self.jobs[job_id] = job
                if self.first_request is None and kind == "b":
                    self.first_request = now
            if not job.arrivals and job.job_id[0] == "b":
                self.first_polled += 1
                if self.first_polled == self.expected and self.t_all is None:
                    self._schedule_completions(now)
                    self._announce("ALLPOLLED", now)
            job.arrivals.append(now)
            if self.throttle and job.job_id[0] == "b" and self.rng.random() < self.throttle:
                self.throttled += 1
                return self._error(429, "ThrottlingException", "Rate exceeded")
            body = job.bodies[1] if now >= job.completion else job.bodies[0]
            return web.Response(body=body, content_type=_JSON)
        if raw.startswith("/_bench/report"):
            return web.Response(body=json.dumps(self.report()).encode(), content_type=_JSON)
        key = f"{request.method} {raw.split('?', 1)[0][:80]}"
        self.other[key] = self.other.get(key, 0) + 1
        return self._error(404, "UnknownOperationException", "Unknown operation.")

    def _mark_cpu(self, name: str) -> None:
        self.cpu_marks[name] = time.process_time()

    @staticmethod
    def _error(status: int, code: str, message: str) -> web.Response:
        return web.Response(
            status=status,
            body=json.dumps({"message": message}).encode(),
            content_type=_JSON,
            headers={"x-amzn-ErrorType": code},
        )

    def report(self) -> dict[str, Any]:
        """Everything recorded so far, JSON-able."""
        return {
            "t_all": self.t_all,
            "all_polled_timed_out": self.all_polled_timed_out,
            "first_request": self.first_request,
            "requests": self.requests,
            "throttled": self.throttled,
            "cpu_marks": self.cpu_marks,
            "other": self.other,
            "jobs": {
                j.job_id: {
                    "arrivals": j.arrivals,
                    "completion": j.completion if math.isfinite(j.completion) else None,
                }
                for j in self.jobs.values()
            },
        }


async def _serve(args: argparse.Namespace) -> None:
    state = BenchEndpoint(
        args.expected, args.duration, args.spread, args.all_polled_timeout, args.throttle, args.seed
    )
    server = web.Server(state.handle, access_log=None)
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(server, "127.0.0.1", args.port, backlog=4096)
    port = srv.sockets[0].getsockname()[1]
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watchdog = asyncio.ensure_future(state.watchdog())
    try:
        await asyncio.wait_for(stop.wait(), timeout=args.lifetime)
    except asyncio.TimeoutError:
        pass
    finally:
        watchdog.cancel()
        srv.close()
        await server.shutdown(1.0)


def main(argv: list[str] | None = None) -> int:
    """Run the endpoint until SIGTERM or ``--lifetime`` seconds have passed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--expected", type=int, required=True, help="number of measured jobs")
    parser.add_argument("--duration", type=float, default=5.0,
                        help="seconds jobs stay InProgress after every job was polled once")
    parser.add_argument("--spread", type=float, default=1.0,
                        help="completions are spread evenly over this many seconds")
    parser.add_argument("--all-polled-timeout", type=float, default=60.0)
    parser.add_argument("--throttle", type=float, default=0.0,
                        help="share of measured-job requests answered with a 429 ThrottlingException")
    parser.add_argument("--seed", type=int, default=0, help="seed of the throttling draws")
    parser.add_argument("--lifetime", type=float, default=600.0, help="hard upper bound on run time")
    args = parser.parse_args(argv)
    # One socket per client connection: the Amazon provider opens a connection pool per trigger.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
