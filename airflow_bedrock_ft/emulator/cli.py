"""``airflow-bedrock-ft emulator``: run the local Bedrock emulator until SIGINT/SIGTERM.

    airflow-bedrock-ft emulator --port 5055 [--s3-port 5056 | --s3-endpoint-url URL]
        [--host 127.0.0.1] [--state emulator.sqlite] [--time-scale 0.01] [--region us-east-1]

Prints the Airflow connection that points at it (``AIRFLOW_CONN_AWS_DEFAULT``, JSON form).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

#: Default for the command line: phases take 1% of their realistic duration (a job finishes in
#: about half a minute), unlike tests, which run as fast as possible.
CLI_TIME_SCALE = 0.01


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``emulator`` subcommand."""
    parser = argparse.ArgumentParser(
        prog="airflow-bedrock-ft emulator",
        description="Run a local Amazon Bedrock emulator (model customization, runtime, embedded S3).",
    )
    parser.add_argument("--port", type=int, default=5055, help="port of the Bedrock endpoint (0 = any)")
    s3 = parser.add_mutually_exclusive_group()
    s3.add_argument("--s3-port", type=int, default=None, help="port of the embedded S3 server (default: any)")
    s3.add_argument("--s3-endpoint-url", default=None, help="use this S3-compatible endpoint instead")
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default loopback only; be careful)"
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[h for h in os.environ.get("BEDROCK_EMULATOR_ALLOWED_HOSTS", "").split(",") if h],
        help="host name clients use to reach it besides loopback (repeatable; '*' for any; "
        "default $BEDROCK_EMULATOR_ALLOWED_HOSTS)",
    )
    parser.add_argument(
        "--admin-token",
        default=os.environ.get("BEDROCK_EMULATOR_ADMIN_TOKEN") or None,
        help="token required by the state-changing /_emulator/ endpoints ('auto' = random, printed); "
        "default $BEDROCK_EMULATOR_ADMIN_TOKEN, else none",
    )
    parser.add_argument(
        "--credentials",
        action="append",
        default=[c for c in os.environ.get("BEDROCK_EMULATOR_CREDENTIALS", "").split(",") if c],
        metavar="AKID:SECRET",
        help="a key pair signed requests may use (repeatable; default testing:testing; "
        "$BEDROCK_EMULATOR_CREDENTIALS, comma-separated)",
    )
    parser.add_argument(
        "--no-auth", action="store_true", help="accept unsigned and wrongly signed requests"
    )
    parser.add_argument("--state", default=None, help="SQLite file that keeps state across restarts")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=None,
        help="factor on realistic phase durations "
        f"(default $BEDROCK_EMULATOR_TIME_SCALE or {CLI_TIME_SCALE})",
    )
    parser.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    parser.add_argument("--log-level", default="INFO")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator; returns the process exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["emulator"]:
        args_list = args_list[1:]
    args = build_parser().parse_args(args_list)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    time_scale = args.time_scale
    if time_scale is None:
        raw = os.environ.get("BEDROCK_EMULATOR_TIME_SCALE", "").strip()
        time_scale = float(raw) if raw else CLI_TIME_SCALE
    if time_scale < 0:
        print("--time-scale must be >= 0", file=sys.stderr)
        return 2

    from airflow_bedrock_ft.emulator.auth import parse_credentials
    from airflow_bedrock_ft.emulator.faults import FaultConfigError

    try:
        credentials = parse_credentials(args.credentials) or None
    except ValueError as exc:
        print(f"--credentials: {exc}", file=sys.stderr)
        return 2
    from airflow_bedrock_ft.emulator.server import start_emulator

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        emu = start_emulator(
            port=args.port,
            s3_port=args.s3_port or 0,
            time_scale=time_scale,
            state_path=args.state,
            host=args.host,
            s3_endpoint_url=args.s3_endpoint_url,
            region=args.region,
            allowed_hosts=args.allowed_host,
            admin_token=args.admin_token,
            credentials=credentials,
            auth=not args.no_auth,
        )
    except (OSError, RuntimeError, FaultConfigError, ValueError) as exc:
        print(f"cannot start the emulator: {exc}", file=sys.stderr)
        return 1
    with emu:
        print(
            f"Bedrock emulator listening on {emu.endpoint_url} (S3 there too, and at {emu.s3_endpoint_url})",
            flush=True,
        )
        print(f"time scale {time_scale}; state {args.state or 'in memory'}", flush=True)
        print(
            "requests must be SigV4-signed with access key id(s): " + ", ".join(sorted(emu.credentials))
            if emu.auth
            else "signatures are not checked (--no-auth)",
            flush=True,
        )
        if emu.admin_token:
            print(f"admin token (Authorization: Bearer ...): {emu.admin_token}", flush=True)
        print("Airflow connection (AIRFLOW_CONN_AWS_DEFAULT):", flush=True)
        print(emu.connection_uri_json(), flush=True)
        print(f"export AIRFLOW_CONN_AWS_DEFAULT='{emu.connection_uri_json()}'", flush=True)
        while not stop.wait(0.5):
            pass
        print("stopping the emulator", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
