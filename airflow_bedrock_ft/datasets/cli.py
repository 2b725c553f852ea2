"""``airflow-bedrock-ft validate``: check a dataset against a base model's rules.

    airflow-bedrock-ft validate PATH [PATH...] --model MODEL_ID [--type TYPE]
        [--validation PATH] [--hyperparameter k=v] [--media-bucket BUCKET] [--check-media]
        [--max-problems N] [--max-problems-per-rule N] [--json]

Exit status: 0 valid (warnings allowed), 1 invalid data (a missing file is a data problem,
``file.not_found``), 2 bad usage (unknown model, unsupported customization type). Imports
nothing from Airflow, so it starts fast and runs where Airflow is not installed.
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
    return parser


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
    if args.json:
        import json

        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.format_text(max_problems=args.max_problems))
        if not report.ok:
            print(f"\nBedrock would fail with: {report.failure_message()}")
    return EXIT_OK if report.ok else EXIT_INVALID


if __name__ == "__main__":
    raise SystemExit(main())
