"""Benchmark holdout evaluation (``airflow_bedrock_ft.evaluation``) against the local emulator.

The emulator runs in its **own process** (``airflow-bedrock-ft emulator``), so its CPU never
counts against the evaluation being measured; requests go over real HTTP through aiobotocore
(the evaluation) or boto3 (the sequential baseline). Three measurements on one holdout of
``--prompts`` prompt/completion records (default 2,000), each answered by the emulator's
``amazon.nova-micro-v1:0`` with ``--max-tokens`` tokens and scored with the four built-in
metrics:

1. **rate limit**: ``rate=R`` (``--rate``, default 200/s), concurrency 16, no added latency.
   The achieved rate is read from the outside, by the emulator (``GET /_emulator/stats``:
   runtime requests between the first and the last one's arrival). Target: at least 90 % of R,
   and not above R by more than 5 % (a limiter that does not limit would otherwise pass).
2. **speed-up**: every request gets ``--latency-ms`` (default 50 ms) of server-side latency
   (``latency_ms`` fault, a non-blocking wait). The evaluation at concurrency 16 against a
   sequential boto3 ``converse`` loop over the same prompts, in the same run. Target: the
   evaluation is at least 10 times faster.
3. **memory**: fresh processes evaluate ``--memory-sizes`` prompts (default 500 and 2000),
   fast endpoint; each reports its peak RSS above its RSS after a warm-up evaluation (RSS
   sampled every 5 ms) and the tracemalloc peak of the evaluation. Target: the larger run's
   traced peak is at most 1.5 x the smaller's plus 1 MiB, and its RSS growth at most the
   smaller's plus 16 MiB.

Usage::

    .venv/bin/python bench/bench_evaluate.py            # about 2-3 minutes
    .venv/bin/python bench/bench_evaluate.py --prompts 500 --json results.json

Exits 1 when a target fails. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.request
from pathlib import Path
from typing import Any

MODEL = "amazon.nova-micro-v1:0"
REGION = "us-east-1"
CONCURRENCY = 16
PAGE = os.sysconf("SC_PAGE_SIZE")

RATE_MIN_SHARE = 0.90
RATE_MAX_SHARE = 1.05
SPEEDUP_MIN = 10.0
TRACED_RATIO_MAX = 1.5
TRACED_SLACK = 1 << 20
RSS_SLACK = 16 << 20


def _rss() -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * PAGE


def _admin(endpoint: str, path: str, doc: dict[str, Any] | None = None, method: str = "GET") -> Any:
    data = json.dumps(doc).encode() if doc is not None else None
    request = urllib.request.Request(f"{endpoint}/_emulator/{path}", data=data, method=method,
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _write_holdout(path: Path, n: int) -> None:
    countries = ["France", "Spain", "Germany", "Italy", "Japan", "Brazil", "Poland", "Greece"]
    with path.open("w") as f:
        for i in range(n):
            country = countries[i % len(countries)]
            f.write(json.dumps({"prompt": f"Question {i}: what language is spoken in {country}?",
                                "completion": f"The main language of {country} is spoken there."}) + "\n")


class EmulatorProcess:
    """``airflow-bedrock-ft emulator`` in a child process on a free port."""

    def __init__(self) -> None:
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": REGION}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "airflow_bedrock_ft.cli", "emulator", "--port", "0", "--log-level", "WARNING"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        self.endpoint = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                self.endpoint = match.group(1)
                break
            if not line and self.proc.poll() is not None:
                break
        if not self.endpoint:
            self.stop()
            raise SystemExit("the emulator did not start")
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()  # drain

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _evaluate(endpoint: str, data: str, output: str, *, rate: float | None, max_tokens: int) -> Any:
    from airflow_bedrock_ft.evaluation import EvaluationConfig, run_evaluation

    config = EvaluationConfig(model=MODEL, data=data, concurrency=CONCURRENCY, rate=rate, output=output,
                              max_tokens=max_tokens, max_failure_share=0.0)
    return run_evaluation(config, region=REGION, endpoint_url=endpoint)


def _sequential(endpoint: str, data: str, max_tokens: int) -> tuple[float, int]:
    import boto3
    from botocore.config import Config

    from airflow_bedrock_ft.evaluation import read_holdout

    client = boto3.client("bedrock-runtime", endpoint_url=endpoint, region_name=REGION,
                          aws_access_key_id="testing", aws_secret_access_key="testing",
                          config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))
    examples = list(read_holdout(data))
    started = time.monotonic()
    for example in examples:
        client.converse(modelId=MODEL, messages=list(example.messages),
                        inferenceConfig={"maxTokens": max_tokens, "temperature": 0.0})
    return time.monotonic() - started, len(examples)


def memory_child(endpoint: str, data: str, output: str, max_tokens: int, warmup: str) -> dict[str, Any]:
    """One memory measurement (runs in a fresh process)."""
    _evaluate(endpoint, warmup, output, rate=None, max_tokens=max_tokens)  # imports, botocore models, clients
    base = _rss()
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    tracemalloc.start()
    started = time.monotonic()
    summary = _evaluate(endpoint, data, output, rate=None, max_tokens=max_tokens)
    elapsed = time.monotonic() - started
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stop.set()
    sampler.join()
    return {"examples": summary.examples, "rss_growth": peak[0] - base, "traced_peak": traced_peak,
            "seconds": elapsed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--memory-sizes", default="500,2000")
    parser.add_argument("--only", choices=["rate", "speedup", "memory"], action="append",
                        help="run only these measurements (repeatable; default all)")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    parser.add_argument("--memory-child", nargs=4, metavar=("ENDPOINT", "DATA", "OUTPUT", "WARMUP"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": REGION})
    if args.memory_child:
        endpoint, data, output, warmup = args.memory_child
        print("MEMORY " + json.dumps(memory_child(endpoint, data, output, args.max_tokens, warmup)))
        return 0

    results: dict[str, Any] = {"prompts": args.prompts, "rate": args.rate, "latency_ms": args.latency_ms,
                               "concurrency": CONCURRENCY, "max_tokens": args.max_tokens}
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-evaluate-") as tmp:
        folder = Path(tmp)
        data = folder / "holdout.jsonl"
        _write_holdout(data, args.prompts)
        out = str(folder / "results.jsonl")
        emulator = EmulatorProcess()
        try:
            endpoint = emulator.endpoint
            print(f"emulator at {endpoint} (own process); {args.prompts} prompts, max_tokens {args.max_tokens}")
            warm = folder / "warm.jsonl"
            _write_holdout(warm, 20)
            _evaluate(endpoint, str(warm), out, rate=None, max_tokens=args.max_tokens)

            only = set(args.only or ["rate", "speedup", "memory"])
            if "rate" in only:
                ok &= _rate(endpoint, str(data), out, args, results)
            if "speedup" in only:
                ok &= _speedup(endpoint, str(data), out, args, results)
            if "memory" in only:
                ok &= _memory(endpoint, folder, warm, args, results)
        finally:
            emulator.stop()
    results["pass"] = ok
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    print(f"\n{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


def _rate(endpoint: str, data: str, out: str, args: argparse.Namespace, results: dict[str, Any]) -> bool:
    _admin(endpoint, "stats", method="DELETE")
    summary = _evaluate(endpoint, data, out, rate=args.rate, max_tokens=args.max_tokens)
    stats = _admin(endpoint, "stats")
    achieved = stats["runtime_rate"] or 0.0
    share = achieved / args.rate
    rate_ok = RATE_MIN_SHARE <= share <= RATE_MAX_SHARE and summary.candidate.failed == 0
    results["rate_limit"] = {"requests": stats["runtime_requests"], "achieved_rate": achieved,
                             "share_of_limit": share, "client_elapsed_s": summary.elapsed_s,
                             "client_rate": summary.requests_per_second, "pass": rate_ok}
    print(f"\n1. rate limit {args.rate:g}/s, concurrency {CONCURRENCY}: emulator saw "
          f"{stats['runtime_requests']} requests at {achieved:.1f}/s = {share:.1%} of the limit "
          f"(client: {summary.requests_per_second:.1f}/s over {summary.elapsed_s:.1f} s incl. set-up) "
          f"-> {'PASS' if rate_ok else 'FAIL'} (target {RATE_MIN_SHARE:.0%}..{RATE_MAX_SHARE:.0%})")
    return rate_ok


def _speedup(endpoint: str, data: str, out: str, args: argparse.Namespace, results: dict[str, Any]) -> bool:
    _admin(endpoint, "faults", {"latency_ms": args.latency_ms}, method="POST")
    summary = _evaluate(endpoint, data, out, rate=None, max_tokens=args.max_tokens)
    concurrent_s = summary.elapsed_s
    sequential_s, n = _sequential(endpoint, data, args.max_tokens)
    _admin(endpoint, "faults", method="DELETE")
    speedup = sequential_s / concurrent_s
    speed_ok = speedup >= SPEEDUP_MIN and summary.candidate.failed == 0 and n == summary.examples
    results["speedup"] = {"latency_ms": args.latency_ms, "evaluation_s": concurrent_s,
                          "sequential_boto3_s": sequential_s, "speedup": speedup, "pass": speed_ok}
    print(f"2. {args.latency_ms:g} ms per request: evaluation (concurrency {CONCURRENCY}, scoring included) "
          f"{concurrent_s:.1f} s, sequential boto3 loop {sequential_s:.1f} s -> {speedup:.1f}x "
          f"-> {'PASS' if speed_ok else 'FAIL'} (target >= {SPEEDUP_MIN:g}x)")
    return speed_ok


def _memory(endpoint: str, folder: Path, warm: Path, args: argparse.Namespace, results: dict[str, Any]) -> bool:
    sizes = [int(s) for s in args.memory_sizes.split(",")]
    memory = []
    for size in sizes:
        holdout = folder / f"holdout-{size}.jsonl"
        _write_holdout(holdout, size)
        done = subprocess.run(
            [sys.executable, __file__, "--max-tokens", str(args.max_tokens), "--memory-child",
             endpoint, str(holdout), str(folder / f"out-{size}.jsonl"), str(warm)],
            capture_output=True, text=True, timeout=600,
        )
        line = next((x for x in done.stdout.splitlines() if x.startswith("MEMORY ")), None)
        if line is None:
            raise SystemExit(f"memory run failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        memory.append(json.loads(line[len("MEMORY "):]))
    small, large = memory[0], memory[-1]
    mem_ok = (large["traced_peak"] <= small["traced_peak"] * TRACED_RATIO_MAX + TRACED_SLACK
              and large["rss_growth"] <= small["rss_growth"] + RSS_SLACK)
    results["memory"] = {"runs": memory, "pass": mem_ok}
    print("3. memory (fresh process each, after a warm-up evaluation):")
    for m in memory:
        print(f"   {m['examples']:>6} prompts: tracemalloc peak {m['traced_peak'] / 2**20:6.2f} MiB, "
              f"peak RSS growth {m['rss_growth'] / 2**20:6.2f} MiB, {m['seconds']:.1f} s")
    print(f"   -> {'PASS' if mem_ok else 'FAIL'} (target: traced peak <= {TRACED_RATIO_MAX:g}x + 1 MiB, "
          f"RSS growth <= +16 MiB from {small['examples']} to {large['examples']} prompts)")
    return mem_ok

if __name__ == "__main__":
    sys.exit(main())
