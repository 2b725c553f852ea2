"""``airflow-bedrock-ft validate``: check a dataset against a base model's rules.

    airflow-bedrock-ft validate PATH [PATH...] --model MODEL_ID [--type TYPE]
        [--validation PATH] [--hyperparameter k=v] [--media-bucket BUCKET] [--check-media]
        [--max-problems N] [--max-problems-per-rule N] [--json]
        [--epochs N] [--region REGION] [--price-file FILE] [--max-cost USD] [--allow-unknown-cost]

With ``--epochs`` (or ``--max-cost`` / ``--price-file``) it also prints the cost estimate:
training tokens x epochs x the price per 1,000 tokens, with the price's date and source, and
the monthly storage of the custom model (:mod:`airflow_bedrock_ft.core.cost`).

Exit status: 0 valid (warnings allowed) and within budget, 1 invalid data (a missing file is
a data problem, ``file.not_found``), 2 bad usage (unknown model, unsupported customization
type, malformed price file), 3 over budget (the estimate exceeds ``--max-cost``, or it is
unknown and ``--allow-unknown-cost`` is not given). Imports nothing from Airflow, so it starts
fast and runs where Airflow is not installed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from airflow_bedrock_ft.core.models import (
    CustomizationType,
    DataFormat,
    UnknownModelError,
    UnsupportedCustomizationError,
)

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_OVER_BUDGET = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airflow-bedrock-ft validate",
        description="Validate Amazon Bedrock model-customization training data, offline.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="training data: local file or folder, s3://bucket/key or s3://bucket/prefix/")
    parser.add_argument("--model", required=True, metavar="MODEL_ID",
                        help="base model: id (with or without context suffix) or ARN")
    parser.add_argument("--type", dest="customization_type", default=CustomizationType.FINE_TUNING.value,
                        type=str.upper, choices=[t.value for t in CustomizationType if t.value != "IMPORTED"],
                        help="customization type (default FINE_TUNING)")
    parser.add_argument("--validation", action="append", default=[], metavar="PATH",
                        help="validation data (repeatable)")
    parser.add_argument("--hyperparameter", "-p", action="append", default=[], metavar="K=V",
                        help="job hyperparameter, e.g. batchSize=2 (changes Titan's token limit)")
    parser.add_argument("--format", dest="data_format", choices=[f.value for f in DataFormat],
                        help="override the record format, e.g. invocation-logs")
    parser.add_argument("--check-media", action="store_true",
                        help="also check that every image/video exists in S3 and is within the size limit")
    parser.add_argument("--media-bucket", metavar="BUCKET", type=_bucket,
                        help="bucket the dataset will be uploaded to: images and videos must be in it "
                             "(default: the bucket of an s3:// PATH; not checked for local data without it)")
    parser.add_argument("--max-problems", type=int, default=1000, help="problems to keep in the report")
    parser.add_argument("--max-problems-per-rule", type=int, default=20, metavar="N",
                        help="problems of any one rule to keep (all are counted; default 20, 0 for no cap)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    cost = parser.add_argument_group("cost estimate")
    cost.add_argument("--epochs", type=_positive_int, metavar="N",
                      help="epochs of the job (epochCount): print the cost estimate for them")
    cost.add_argument("--region", default=None,
                      help="region of the job, for its prices (default: AWS_REGION / AWS_DEFAULT_REGION)")
    cost.add_argument("--price-file", action="append", default=[], metavar="FILE",
                      help="price table overriding the built-in one (JSON lines, repeatable)")
    cost.add_argument("--max-cost", type=_budget, metavar="USD",
                      help="exit 3 when the estimated training cost is above this many USD")
    cost.add_argument("--allow-unknown-cost", action="store_true",
                      help="with --max-cost: accept an estimate whose price is unknown (default: exit 3)")
    return parser


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}")
    return n


def _budget(value: str) -> float:
    import math

    try:
        amount = float(value.strip().removeprefix("$"))
    except ValueError:
        amount = -1.0
    if not math.isfinite(amount) or amount < 0:
        raise argparse.ArgumentTypeError(f"expected an amount of USD such as 25 or 12.50, got {value!r}")
    return amount


def _bucket(value: str) -> str:
    """``my-bucket`` or ``s3://my-bucket[/]`` -> ``my-bucket``."""
    name = value.removeprefix("s3://").rstrip("/")
    if not name or "/" in name:
        raise argparse.ArgumentTypeError(
            f"expected a bucket name such as my-bucket or s3://my-bucket, got {value!r}")
    return name


def _hyperparameters(items: Sequence[str], parser: argparse.ArgumentParser) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            parser.error(f"--hyperparameter must be KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the ``validate`` command; ``argv`` excludes the program name and the word ``validate``."""
    parser = _parser()
    args = parser.parse_args(argv)
    hyperparameters = _hyperparameters(args.hyperparameter, parser)
    if args.epochs is not None:
        given = hyperparameters.get("epochCount")
        if given is not None and given != str(args.epochs):
            parser.error(f"--epochs {args.epochs} contradicts --hyperparameter epochCount={given}")
        hyperparameters["epochCount"] = str(args.epochs)
    want_cost = args.epochs is not None or args.max_cost is not None or bool(args.price_file)
    if args.allow_unknown_cost and args.max_cost is None:
        parser.error("--allow-unknown-cost only applies with --max-cost")
    prices = None
    if want_cost:
        from airflow_bedrock_ft.core.cost import PriceFileError, load_prices

        try:
            prices = load_prices(args.price_file)
        except PriceFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE

    # Imported here so that `--help` stays instant.
    from .validate import validate_dataset

    s3_client: Any = None
    if args.check_media or any(p.startswith("s3://") for p in [*args.paths, *args.validation]):
        from .sources import default_s3_client

        s3_client = default_s3_client()
    try:
        report = validate_dataset(
            args.paths, args.validation or None, model=args.model,
            customization_type=args.customization_type, hyperparameters=hyperparameters,
            s3_client=s3_client, max_problems=args.max_problems, data_format=args.data_format,
            check_media=args.check_media, media_bucket=args.media_bucket,
            max_problems_per_rule=args.max_problems_per_rule or None,
        )
    except (UnknownModelError, UnsupportedCustomizationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    doc: dict[str, Any] = report.to_dict()
    over_budget: str | None = None
    cost_text = ""
    if prices is not None:
        import os

        from airflow_bedrock_ft.core.cost import check_budget, estimate_from_report

        region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        cost = estimate_from_report(doc, prices=prices, region=region, epochs=args.epochs or report.epochs)
        doc["cost_estimate"] = cost.to_dict()
        cost_text = cost.format_text()
        if args.max_cost is not None:
            over_budget = check_budget(cost, args.max_cost, allow_unknown=args.allow_unknown_cost)
            doc["budget"] = {"max_cost_usd": args.max_cost, "ok": over_budget is None, "reason": over_budget}
    if args.json:
        import json

        print(json.dumps(doc, indent=2))
    else:
        print(report.format_text(max_problems=args.max_problems))
        if cost_text:
            print(cost_text)
        if not report.ok:
            print(f"\nBedrock would fail with: {report.failure_message()}")
        if over_budget:
            print(f"\nOver budget: {over_budget}")
    if not report.ok:
        return EXIT_INVALID
    return EXIT_OVER_BUDGET if over_budget else EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
