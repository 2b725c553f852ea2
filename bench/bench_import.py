"""Measure the import time the provider's modules add on top of ``import airflow``.

Each repetition is a fresh interpreter that first imports ``airflow``, then times, in-process,
the import of the operator module, then the sensor module, then the trigger module (each step
only pays for what the earlier ones did not already load). The Amazon provider's Bedrock
modules are measured the same way, interleaved with ours so that machine noise hits both.
The verdict uses the median total over the repetitions.

Usage::

    .venv/bin/python bench/bench_import.py            # 7 repetitions
    .venv/bin/python bench/bench_import.py --runs 5 --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

TARGET_MS = 100.0

MODULES = {
    "ours": [
        "airflow_bedrock_ft.operators.bedrock_ft",
        "airflow_bedrock_ft.sensors.bedrock_ft",
        "airflow_bedrock_ft.triggers.bedrock_ft",
    ],
    "amazon": [
        "airflow.providers.amazon.aws.operators.bedrock",
        "airflow.providers.amazon.aws.sensors.bedrock",
        "airflow.providers.amazon.aws.triggers.bedrock",
    ],
}

# Runs in the fresh interpreter. Prints one JSON line: seconds for `import airflow`, then per module.
_PROBE = """
import importlib, json, sys, time
t0 = time.perf_counter()
import airflow
base = time.perf_counter() - t0
steps = []
for name in sys.argv[1:]:
    t = time.perf_counter()
    importlib.import_module(name)
    steps.append(time.perf_counter() - t)
print("RESULT " + json.dumps({"airflow": base, "steps": steps, "modules": len(sys.modules)}))
"""


def _probe(modules: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *modules],
        env=env, cwd=str(cwd), capture_output=True, text=True, timeout=120, check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"import probe failed (rc={proc.returncode}):\n{proc.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    """Run the probes, print medians and a PASS/FAIL line for our total."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per provider (>= 5)")
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                        help="also write the results as JSON to PATH (stdout if no PATH)")
    args = parser.parse_args(argv)
    runs = max(5, args.runs)
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ)
    env.setdefault("AIRFLOW_HOME", str(Path(os.environ.get("TMPDIR", "/tmp")) / "bench-import-airflow"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH", "")]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)

    # One untimed pass each so that bytecode caches exist before anything is measured.
    for mods in MODULES.values():
        _probe(mods, env, root)
    samples: dict[str, list[dict[str, Any]]] = {k: [] for k in MODULES}
    for _ in range(runs):
        for which, mods in MODULES.items():
            samples[which].append(_probe(mods, env, root))

    summary: dict[str, Any] = {}
    print(f"median over {runs} fresh processes, milliseconds added after `import airflow`")
    header = f"{'provider':<8}  {'import airflow':>14}  {'operator':>8}  {'+sensor':>8}  {'+trigger':>8}  {'total':>8}"
    print(header)
    print("-" * len(header))
    for which, rows in samples.items():
        steps = list(zip(*(r["steps"] for r in rows), strict=True))
        totals = [1e3 * sum(r["steps"]) for r in rows]
        med = {
            "import_airflow_ms": 1e3 * statistics.median(r["airflow"] for r in rows),
            "steps_ms": [1e3 * statistics.median(s) for s in steps],
            "total_ms": statistics.median(totals),
            "total_min_ms": min(totals),
            "total_max_ms": max(totals),
            "modules": MODULES[which],
        }
        summary[which] = med
        s = med["steps_ms"]
        print(f"{which:<8}  {med['import_airflow_ms']:>14.0f}  {s[0]:>8.1f}  {s[1]:>8.1f}  {s[2]:>8.1f}  "
              f"{med['total_ms']:>8.1f}")
    ours = summary["ours"]["total_ms"]
    ok = ours < TARGET_MS
    print()
    print(f"{'PASS' if ok else 'FAIL'}: importing our operator, sensor and trigger modules adds "
          f"{ours:.1f} ms (median; target < {TARGET_MS:.0f} ms; Amazon's Bedrock modules add "
          f"{summary['amazon']['total_ms']:.1f} ms)")
    if args.json is not None:
        doc = json.dumps({"runs": runs, "summary": summary, "samples": samples, "pass": ok}, indent=2)
        if args.json == "-":
            print(doc)
        else:
            Path(args.json).write_text(doc)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
