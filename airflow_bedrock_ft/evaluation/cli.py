"""``airflow-bedrock-ft evaluate``: score a model (and baselines) on a holdout through Converse.

    airflow-bedrock-ft evaluate --model MODEL [--baseline [LABEL=]MODEL ...] --data PATH_OR_S3
        [--metric NAME ...] [--concurrency N] [--rate R] [--json] [--output PATH_OR_S3]
        [--endpoint-url URL] [--region R]

Credentials come the usual AWS ways (environment, profile, instance role). ``--endpoint-url``
applies to ``bedrock`` and ``bedrock-runtime``; an ``s3://`` holdout or output uses the
environment's S3 settings (``AWS_ENDPOINT_URL_S3`` for a local S3).

Exit status: 0 evaluated, 1 the evaluation failed (bad holdout, model cannot be invoked,
too many failed examples, scorer error), 2 bad usage (unknown metric, bad option).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    from .scorers import BUILTIN_METRICS, DEFAULT_METRICS

    parser = argparse.ArgumentParser(
        prog="airflow-bedrock-ft evaluate",
        description="Evaluate a Bedrock model on a holdout set, against baselines, through Converse.",
    )
    parser.add_argument("--model", required=True, metavar="MODEL",
                        help="candidate: model id, custom-model ARN, deployment ARN or provisioned-model ARN")
    parser.add_argument("--baseline", action="append", default=[], metavar="[LABEL=]MODEL",
                        help="model to compare with, e.g. base=amazon.nova-micro-v1:0 (repeatable)")
    parser.add_argument("--data", required=True, action="append", metavar="PATH_OR_S3",
                        help="holdout (prompt/completion or Converse JSONL): file, folder, s3:// URI")
    parser.add_argument("--metric", action="append", default=[], metavar="NAME",
                        help=f"built-in ({', '.join(BUILTIN_METRICS)}) or package.module:function "
                             f"(repeatable; default: {', '.join(DEFAULT_METRICS)})")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight at most (default 8)")
    parser.add_argument("--rate", type=float, default=None,
                        help="requests per second at most (default no limit)")
    parser.add_argument("--output", metavar="PATH_OR_S3", help="write per-example results as JSONL here")
    parser.add_argument("--max-failure-share", type=float, default=0.05,
                        help="fail when more than this share of a model's examples failed (default 0.05)")
    parser.add_argument("--max-tokens", type=int, default=512, help="inferenceConfig.maxTokens (default 512)")
    parser.add_argument("--temperature", type=float, default=0.0,
                        help="inferenceConfig.temperature (default 0)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N examples")
    parser.add_argument("--confidence", type=float, default=0.95, help="interval confidence (default 0.95)")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--endpoint-url", help="endpoint of bedrock and bedrock-runtime (e.g. the emulator)")
    parser.add_argument("--region", help="AWS region (default from the environment)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``evaluate`` command; ``argv`` excludes the program name and the word ``evaluate``."""
    parser = _parser()
    args = parser.parse_args(argv)

    from .holdout import HoldoutError
    from .runner import EvaluationConfig, EvaluationError, FailureShareExceededError, run_evaluation
    from .scorers import DEFAULT_METRICS, ScorerError, UnknownMetricError, resolve_scorers

    config = EvaluationConfig(
        model=args.model, data=args.data, baselines=args.baseline, metrics=args.metric or DEFAULT_METRICS,
        concurrency=args.concurrency, rate=args.rate, output=args.output,
        max_failure_share=args.max_failure_share, max_tokens=args.max_tokens, temperature=args.temperature,
        confidence=args.confidence, n_resamples=args.resamples, seed=args.seed, limit=args.limit,
    )
    try:
        config.check()
        config.specifiers()
        resolve_scorers(config.metrics)  # before any request: a typo costs nothing
    except (ValueError, UnknownMetricError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    s3_client: Any = None
    if any(p.startswith("s3://") for p in [*args.data, args.output or ""]):
        from airflow_bedrock_ft.datasets.sources import default_s3_client

        s3_client = default_s3_client()
    try:
        summary = run_evaluation(config, s3_client=s3_client, region=args.region,
                                 endpoint_url=args.endpoint_url)
    except FailureShareExceededError as exc:
        _print(exc.summary, args.json)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (HoldoutError, EvaluationError, ScorerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    _print(summary, args.json)
    return EXIT_OK


def _print(summary: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(summary.format_table())


if __name__ == "__main__":
    raise SystemExit(main())
