"""``airflow-bedrock-ft cleanup-models``: list custom models nobody uses, and delete them with ``--delete``.

    airflow-bedrock-ft cleanup-models --older-than 30d [--keep-stage production]
        [--dry-run | --delete] [--price-file FILE] [--endpoint-url URL] [--region REGION] [--json]

A dry run unless ``--delete`` is given. Prints each decision with its reason and the monthly
storage it saves. Exit status: 0 done, 1 listing the models failed or a delete failed, 2 bad
arguments. AWS credentials from boto3's usual chain. No Airflow import.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from airflow_bedrock_ft.core.cleanup import ModelDecision, cleanup_models, summarize
from airflow_bedrock_ft.core.reaper import parse_duration


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airflow-bedrock-ft cleanup-models",
        description=(
            "Find the custom models this plugin trained that are not promoted, not used by a "
            "deployment or provisioned throughput and older than a limit, and, with --delete, "
            "delete them. Anything that cannot be read is kept."
        ),
    )
    parser.add_argument("--older-than", required=True,
                        help="keep models younger than this: 30d, 12h, 90m, 600s or seconds")
    parser.add_argument("--keep-stage", action="append", default=None, metavar="STAGE",
                        help="keep models at this registry stage (repeatable); default: keep every "
                             "model with a stage")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--delete", action="store_true", help="delete the unused models (default: dry run)")
    mode.add_argument("--dry-run", action="store_true", help="only report (the default)")
    parser.add_argument("--price-file", action="append", default=[], metavar="FILE",
                        help="price table overriding the built-in one, for the storage saved (repeatable)")
    parser.add_argument("--endpoint-url", default=None, help="Bedrock endpoint (e.g. the local emulator)")
    parser.add_argument("--region", default=None, help="AWS region (default: boto3's)")
    parser.add_argument("--json", action="store_true", help="print the decisions as one JSON document")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        older_than = parse_duration(args.older_than)
    except ValueError:
        parser.error(
            f"--older-than: expected a duration such as 30d, 12h, 90m or 600s, got {args.older_than!r}"
        )
    keep = [s.strip() for s in args.keep_stage] if args.keep_stage is not None else None
    if keep is not None and not all(keep):
        parser.error("--keep-stage needs a stage name")

    from airflow_bedrock_ft.core.cost import PriceFileError, load_prices

    try:
        prices = load_prices(args.price_file)
    except PriceFileError as exc:
        print(f"airflow-bedrock-ft cleanup-models: {exc}", file=sys.stderr)
        return 2

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client("bedrock", endpoint_url=args.endpoint_url, region_name=args.region)

    def echo(decision: ModelDecision) -> None:
        if not args.json:
            print(decision.line(), flush=True)

    try:
        decisions = cleanup_models(client, older_than=older_than, keep_stages=keep, delete=args.delete,
                                   prices=prices, echo=echo)
    except (ClientError, BotoCoreError) as exc:
        print(f"airflow-bedrock-ft cleanup-models: could not list the custom models: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"delete": args.delete, "summary": summarize(decisions),
                          "decisions": [d.to_dict() for d in decisions]}, indent=2))
    else:
        print(summarize(decisions))
    failed = [d for d in decisions if (d.outcome or "").startswith("delete failed")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
