"""``airflow-bedrock-ft reap``: list orphaned model-customization jobs, and stop them with ``--stop``.

A dry run unless ``--stop`` is given. Task instance states come from Airflow's REST API
(:class:`~airflow_bedrock_ft.core.airflow_api.AirflowApiClient`); AWS credentials from boto3's
usual chain (environment, profile, instance role). No Airflow import.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from airflow_bedrock_ft.core.reaper import DEFAULT_MIN_AGE, Decision, parse_duration, reap, summarize


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airflow-bedrock-ft reap",
        description=(
            "Find in-progress Bedrock model customization jobs whose Airflow task instance has "
            "ended (orphaned jobs) and, with --stop, stop them. A job is stopped only when Airflow "
            "says its task instance ended and no try of it is live; anything uncertain is kept."
        ),
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--stop", action="store_true", help="stop the orphaned jobs (default: dry run)")
    mode.add_argument("--dry-run", action="store_true", help="only report (the default)")
    parser.add_argument(
        "--airflow-url",
        default=os.environ.get("AIRFLOW_API_URL"),
        help="Airflow api-server, e.g. http://localhost:8080 (env AIRFLOW_API_URL)",
    )
    parser.add_argument("--username", default=os.environ.get("AIRFLOW_API_USERNAME"),
                        help="user for POST /auth/token (env AIRFLOW_API_USERNAME)")
    parser.add_argument("--password", default=os.environ.get("AIRFLOW_API_PASSWORD"),
                        help="that user's password (env AIRFLOW_API_PASSWORD, preferred over the flag)")
    parser.add_argument("--token", default=os.environ.get("AIRFLOW_API_TOKEN"),
                        help="a JWT for the API instead of username and password (env AIRFLOW_API_TOKEN)")
    parser.add_argument(
        "--min-age",
        default=str(int(DEFAULT_MIN_AGE)),
        help="keep jobs younger than this: 600, 90s, 10m, 2h (default 10m)",
    )
    parser.add_argument("--namespace", default=None,
                        help="idempotency_namespace of this deployment's jobs (default: none)")
    parser.add_argument("--endpoint-url", default=None, help="Bedrock endpoint (e.g. the local emulator)")
    parser.add_argument("--region", default=None, help="AWS region (default: boto3's)")
    parser.add_argument("--json", action="store_true", help="print the decisions as one JSON document")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (1 when a stop failed, 2 for bad arguments)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        min_age = parse_duration(args.min_age)
    except ValueError as exc:
        parser.error(f"--min-age: {exc}")
    if not args.airflow_url:
        parser.error(
            "--airflow-url (or AIRFLOW_API_URL) is required: the reaper asks Airflow who owns each job"
        )
    if args.token and (args.username or args.password):
        parser.error("give --token or --username/--password, not both")
    if (args.username is None) != (args.password is None):
        parser.error("--username and --password go together")

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from airflow_bedrock_ft.core.airflow_api import AirflowApiClient

    client = boto3.client("bedrock", endpoint_url=args.endpoint_url, region_name=args.region)

    def echo(decision: Decision) -> None:
        if not args.json:
            print(decision.line(), flush=True)

    with AirflowApiClient(
        args.airflow_url, token=args.token, username=args.username, password=args.password
    ) as lookup:
        try:
            decisions = reap(
                client, lookup, stop=args.stop, namespace=args.namespace, min_age=min_age, echo=echo
            )
        except (ClientError, BotoCoreError) as exc:
            # Only listing the jobs can fail here: every per-job error becomes a "keep" decision.
            print(f"airflow-bedrock-ft reap: could not list the jobs: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps({"stop": args.stop, "decisions": [d.to_dict() for d in decisions]}, indent=2))
    else:
        print(summarize(decisions))
    failed = [d for d in decisions if (d.outcome or "").startswith("stop failed")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
