"""Benchmark: the dataset tools on hostile inputs stay bounded in time and memory.

Generates these inputs under ``/tmp`` (``--workdir``), then runs each case in a fresh child
process and reads that child's CPU time and peak RSS from ``os.wait4`` (the kernel's
``ru_maxrss``, so nothing is sampled and nothing is missed):

======================  ===============================================  =====================
case                    input                                            step
======================  ===============================================  =====================
newlines-16k            gzip of 16 MiB of newlines (~16 KB compressed)   ``validate_dataset``
newlines-260k           gzip of 250 MiB of newlines (~250 KB)            ``validate_dataset``
gzip-bomb               2 GiB of zero bytes as ~2 MB of gzip members     ``validate_dataset``
                        (Titan Text Express: 1 GiB training limit)
junk-objects            gzip of 4 Mi lines ``{}`` (12 MiB, ~12 KB):      ``validate_dataset``
                        the most work per byte, two problems a line
json-array-160mb        a 160 MB JSON array of 200k objects              ``convert_file`` (the
                                                                         prepare step's)
long-line-200mb         one 200 MB line                                  ``convert_file`` and
                                                                         ``validate_dataset``
======================  ===============================================  =====================

Targets, each printed with PASS/FAIL (exit status 1 on any FAIL):

- time proportional to the decompressed size: at least ``--floor-mbs`` (default 50) MiB of
  decompressed input per CPU second of the child (interpreter start-up included) in every case
  but junk-objects; there, where each 3-byte line is a record to check, at least
  ``--floor-lines`` (default 500,000) lines per CPU second;
- the bomb stops at the limit: one ``file_size.max`` problem and at most 1 GiB + 2 MiB read;
- the converter streams: all 200k rows written from the array, and the 200 MB line ends in
  one error naming the file, line and limit;
- peak RSS of every child < 100 MB (the whole process: interpreter and imports included).

A child that exceeds ``--timeout`` seconds (default 120) is killed and FAILs. The whole run
takes well under a minute (inputs included).

    python bench/bench_hostile_inputs.py
    python bench/bench_hostile_inputs.py --src /path/to/other/checkout   # measure another tree
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

MB = 1024 * 1024
GIB = 1024 * MB
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TITAN = "amazon.titan-text-express-v1"
ARRAY_ROWS = 200_000
JUNK_LINES = 4 * 1024 * 1024


# -- inputs --------------------------------------------------------------------------------

def _gzip_of(path: str, unit: bytes, total: int, member: int = 64 * MB) -> None:
    """Write ``total`` bytes of ``unit`` repeated as gzip; one member compressed, then repeated.

    A multi-member gzip is one valid gzip file (RFC 1952), so a 2 GiB bomb takes seconds to
    make instead of a minute of compression.
    """
    block = unit * (member // len(unit))
    packed = gzip.compress(block, compresslevel=9)
    with open(path, "wb") as f:
        for _ in range(total // len(block)):
            f.write(packed)


def generate(workdir: str) -> dict[str, str]:
    os.makedirs(workdir, exist_ok=True)
    paths = {
        "newlines-16k": os.path.join(workdir, "newlines-16k.jsonl.gz"),
        "newlines-260k": os.path.join(workdir, "newlines-260k.jsonl.gz"),
        "gzip-bomb": os.path.join(workdir, "bomb.jsonl.gz"),
        "junk-objects": os.path.join(workdir, "junk-objects.jsonl.gz"),
        "json-array-160mb": os.path.join(workdir, "rows.json"),
        "long-line-200mb": os.path.join(workdir, "long-line.jsonl"),
    }
    if not os.path.exists(paths["newlines-16k"]):
        _gzip_of(paths["newlines-16k"], b"\n", 16 * MB, member=16 * MB)
    if not os.path.exists(paths["newlines-260k"]):
        _gzip_of(paths["newlines-260k"], b"\n", 250 * MB, member=250 * MB)
    if not os.path.exists(paths["gzip-bomb"]):
        _gzip_of(paths["gzip-bomb"], b"\0", 2 * GIB)
    if not os.path.exists(paths["junk-objects"]):
        _gzip_of(paths["junk-objects"], b"{}\n", JUNK_LINES * 3, member=JUNK_LINES * 3)
    if not os.path.exists(paths["json-array-160mb"]):
        # ~800 bytes per row: prompt and completion columns, as a table export would have them.
        body = "word " * 95
        with open(paths["json-array-160mb"], "w") as f:
            f.write("[\n")
            for i in range(ARRAY_ROWS):
                sep = ",\n" if i else ""
                f.write(f'{sep}{{"id": {i}, "question": "{body}{i}?", "answer": "{body[:300]}{i}."}}')
            f.write("\n]\n")
    if not os.path.exists(paths["long-line-200mb"]):
        with open(paths["long-line-200mb"], "wb") as f:
            f.write(b'{"prompt": "')
            chunk = b"a" * MB
            for _ in range(200):
                f.write(chunk)
            f.write(b'", "completion": "b"}\n{"prompt": "p", "completion": "c"}\n')
    return paths


# -- children ------------------------------------------------------------------------------

def child(case: str, path: str, out_dir: str) -> dict[str, Any]:
    """Run one case in this (fresh) process; return what it found."""
    from airflow_bedrock_ft.datasets import validate_dataset

    result: dict[str, Any] = {}
    if case in ("newlines-16k", "newlines-260k", "gzip-bomb", "junk-objects", "long-line-200mb"):
        report = validate_dataset(path, model=TITAN, max_problems=100)
        result["counts_by_rule"] = report.counts_by_rule
        result["decompressed_bytes"] = report.totals["train"].bytes
        result["size_problems"] = [p.format() for p in report.problems if p.rule == "file_size.max"]
    if case in ("json-array-160mb", "long-line-200mb"):
        from airflow_bedrock_ft.datasets import ConversionError, DatasetSourceError, convert_file

        dest = os.path.join(out_dir, f"{case}.out.jsonl")
        try:
            n = convert_file(path, dest, "prompt-completion", input_format="json" if case.startswith("json")
                             else None, mapping={"prompt": "question", "completion": "answer"}
                             if case.startswith("json") else None)
            result["converted"] = n
        except (ConversionError, DatasetSourceError) as exc:
            result["convert_error"] = str(exc)
        finally:
            if os.path.exists(dest):
                result["converted_bytes"] = os.path.getsize(dest)
                os.remove(dest)
        result.setdefault("decompressed_bytes", os.path.getsize(path))
    return result


def run_case(case: str, path: str, src: str, out_dir: str, timeout: float) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": src}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", case, path, "--workdir", out_dir],
                            stdout=subprocess.PIPE, env=env, cwd=out_dir)
    assert proc.stdout is not None
    deadline = t0 + timeout
    status = usage = None
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            os.kill(proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    out = proc.stdout.read().decode()
    proc.stdout.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    data: dict[str, Any] = json.loads(out.strip().splitlines()[-1]) if proc.returncode == 0 and out.strip() else {}
    data.update(case=case, wall_s=wall, cpu_s=usage.ru_utime + usage.ru_stime,
                peak_rss_mb=usage.ru_maxrss / 1024, exit=proc.returncode, timed_out=wall > timeout)
    return data


# -- verdicts ------------------------------------------------------------------------------

#: Bytes each case decompresses to (the bomb: to the limit, where reading must stop).
WORK_BYTES = {"newlines-16k": 16 * MB, "newlines-260k": 250 * MB, "gzip-bomb": GIB,
              "junk-objects": JUNK_LINES * 3}


def work_bytes(case: str, path: str) -> int:
    return WORK_BYTES.get(case) or os.path.getsize(path)


def verdicts(r: dict[str, Any], floor_mbs: float, floor_lines: float) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = [("finished", r["exit"] == 0 and not r["timed_out"])]
    if r["exit"] != 0:
        return out
    mb = r["work_bytes"] / MB
    cpu = max(r["cpu_s"], 1e-3)
    if r["case"] == "junk-objects":
        out.append((f">= {floor_lines:,.0f} lines per CPU s", JUNK_LINES / cpu >= floor_lines))
        out.append(("two problems a line, all counted",
                    r["counts_by_rule"].get("field.required") == 2 * JUNK_LINES))
    else:
        out.append((f">= {floor_mbs:g} MiB of input per CPU s", mb / cpu >= floor_mbs))
    out.append(("peak RSS < 100 MB", r["peak_rss_mb"] < 100))
    case = r["case"]
    if case.startswith("newlines"):
        out.append(("every blank line counted, decompressed size reported",
                    r["counts_by_rule"].get("blank_line") == r["work_bytes"] == r["decompressed_bytes"]))
    if case == "gzip-bomb":
        out.append(("stops at the 1 GiB limit, one problem",
                    len(r["size_problems"]) == 1 and GIB < r["decompressed_bytes"] <= GIB + 2 * MB))
    if case == "json-array-160mb":
        out.append((f"all {ARRAY_ROWS} rows converted", r.get("converted") == ARRAY_ROWS))
    if case == "long-line-200mb":
        out.append(("converter: one error naming file, line and limit",
                    "long-line.jsonl:1: line is longer than" in r.get("convert_error", "")))
        out.append(("validator: one line.too_long, next line read",
                    r["counts_by_rule"].get("line.too_long") == 1))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/bench_hostile_inputs", help="where inputs are generated")
    parser.add_argument("--src", default=ROOT, help="source tree to import airflow_bedrock_ft from")
    parser.add_argument("--floor-mbs", type=float, default=50.0,
                        help="minimum decompressed MB per CPU second (default 50)")
    parser.add_argument("--floor-lines", type=float, default=500_000.0,
                        help="minimum lines per CPU second for junk-objects (default 500000)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per case before it is killed")
    parser.add_argument("--cases", nargs="*", help="run only these cases")
    parser.add_argument("--keep", action="store_true", help="keep the generated inputs")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.workdir)))
        return 0
    if args.generate:
        print(json.dumps(generate(args.workdir)))
        return 0

    t0 = time.perf_counter()
    # Generated in a child: Linux carries a process's peak RSS across fork and exec into
    # ru_maxrss, so this process must stay small for the children's numbers to be their own.
    paths = json.loads(subprocess.run([sys.executable, os.path.abspath(__file__), "--generate",
                                       "--workdir", args.workdir], check=True, capture_output=True,
                                      text=True).stdout)
    print(f"inputs in {args.workdir} ({time.perf_counter() - t0:.1f} s): "
          + ", ".join(f"{c} {os.path.getsize(p) / 1e3:.0f} KB" for c, p in paths.items()))
    failed = False
    try:
        for case, path in paths.items():
            if args.cases and case not in args.cases:
                continue
            r = run_case(case, path, args.src, args.workdir, args.timeout)
            r["work_bytes"] = work_bytes(case, path)
            mb = r["work_bytes"] / MB
            print(f"\n{case}: {r['wall_s']:.2f} s wall, {r['cpu_s']:.2f} s CPU, peak RSS {r['peak_rss_mb']:.1f} MB, "
                  f"{mb:.0f} MiB of input to get through ({mb / max(r['cpu_s'], 1e-3):.0f} MiB/CPU s)"
                  + (" [killed at timeout]" if r["timed_out"] else ""))
            for key in ("decompressed_bytes", "counts_by_rule", "converted", "convert_error", "size_problems"):
                if r.get(key):
                    print(f"  {key}: {r[key]}")
            for name, ok in verdicts(r, args.floor_mbs, args.floor_lines):
                failed |= not ok
                print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    finally:
        if not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s: {'FAIL' if failed else 'PASS'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
