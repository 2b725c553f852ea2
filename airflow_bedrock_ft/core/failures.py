"""The one table that says whether a failed job is worth submitting again.

Bedrock's ``failureMessage`` is free text. A job that failed on its data, its permissions, a
quota or a validation rule fails the same way when it is submitted again, and every try costs
money; a job that failed on an internal error or a lack of capacity may succeed on the next
try. :func:`classify_failure` matches the message against :data:`FAILURE_TABLE`, first match
wins. A message that matches nothing is **not** retried: resubmitting it could pay twice for
the same failure, and a user can always start a new run on purpose.

Sources (``../shared/bedrock-facts.md`` of the project's design notes, §4 "Job lifecycle",
list "failureMessage examples", from the Bedrock user guide's fine-tuning troubleshooting page
unless marked [3P]; §6 "Quotas and throttling"; the Bedrock API error-code troubleshooting
page for capacity). Each row quotes the message(s) it was written for.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class FailureKind(str, enum.Enum):
    """Why a job failed, as far as its ``failureMessage`` tells."""

    DATA = "data"
    PERMISSION = "permission"
    QUOTA = "quota"
    VALIDATION = "validation"
    POLICY = "policy"
    INTERNAL = "internal"
    CAPACITY = "capacity"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class FailureRule:
    """One row of the table: a pattern over ``failureMessage`` and what it means."""

    kind: FailureKind
    pattern: re.Pattern[str]
    retriable: bool
    advice: str
    examples: tuple[str, ...]


def _rule(kind: FailureKind, pattern: str, retriable: bool, advice: str, *examples: str) -> FailureRule:
    return FailureRule(kind, re.compile(pattern, re.IGNORECASE), retriable, advice, examples)


_DATA_ADVICE = (
    "Fix the training or validation data (format, record size, token counts) and start a new "
    "DAG run; `airflow-bedrock-ft validate` finds most of these problems before a job is created."
)
_PERMISSION_ADVICE = (
    "Give the job's service role (roleArn) access to the S3 input and output locations (and the "
    "KMS key, if any), then start a new DAG run."
)

#: The table, checked in order. Permission rows come before data rows because permission
#: messages also name files.
FAILURE_TABLE: tuple[FailureRule, ...] = (
    _rule(
        FailureKind.PERMISSION,
        r"perms missing|permissions? to access|access ?denied|not authorized|kms",
        False,
        _PERMISSION_ADVICE,
        "Could not validate GetObject permissions to access Amazon S3 bucket: <bucket> at key <train.jsonl>",
        "Amazon S3 perms missing (PutObject): Could not validate PutObject permissions to access S3 "
        "bucket: <bucket> at key output/.write_access_check_file.tmp",
    ),
    _rule(
        FailureKind.DATA,
        r"unable to parse|must conform to|must follow|input size exceeded|token count .* exceeds"
        r"|token length .* exceeds|exceeds (total )?limit|invalid (json|record|data)"
        r"|record .* (invalid|malformed)",
        False,
        _DATA_ADVICE,
        "Unable to parse Amazon S3 file: <file>.jsonl. Data files must conform to JSONL format.",
        "Input size exceeded in file <file>.jsonl for record starting with...",
        "Maximum input token count 4097 exceeds limit of 4096",
        "Max sum of input and output token length 4097 exceeds total limit of 4096",
        "[3P] Input data at <key>.jsonl must follow '{\"prompt\": ..., \"completion\": ...}' format",
        "[3P] Maximum input token count 4919 exceeds limit of 4096 for train data",
    ),
    _rule(
        FailureKind.POLICY,
        r"license terms|flagged|contact support",
        False,
        "Bedrock refused the data on policy grounds; contact AWS Support before training again.",
        "Automated tests flagged this fine-tuning job as including materials that are potentially "
        "inconsistent with Anthropic's third-party license terms. Please contact support.",
    ),
    _rule(
        FailureKind.QUOTA,
        r"quota|limit exceeded|too many|maximum number of",
        False,
        "Raise the service quota (Service Quotas, e.g. '(Model customization) Sum of training and "
        "validation records') or reduce the data, then start a new DAG run.",
        "Record-count and concurrency quotas (§6); their failure texts are not documented.",
    ),
    _rule(
        FailureKind.VALIDATION,
        r"validation ?exception|invalid|not supported|unsupported|hyper ?parameter",
        False,
        "Fix the request (base model, customization type, hyperparameters) and start a new DAG run.",
        "Validation failures of the request (no documented failureMessage text).",
    ),
    _rule(
        FailureKind.CAPACITY,
        r"insufficient capacity|capacity|temporarily unable|service unavailable|try again later",
        True,
        "Bedrock lacked capacity; the retry submits a new job.",
        "ServiceUnavailable: 'temporarily unable to handle the request ... capacity constraints' "
        "(API error-code troubleshooting page)",
    ),
    _rule(
        FailureKind.INTERNAL,
        r"unexpected error|internal (server )?error|internal failure|please try again",
        True,
        "Bedrock reported an internal error; the retry submits a new job.",
        "Encountered an unexpected error when processing the request, please try again",
        "[3P] Encountered an internal error when processing the request.",
    ),
)

_UNKNOWN = FailureRule(
    FailureKind.UNKNOWN,
    re.compile(r"(?!)"),
    False,
    "The failure is not one Bedrock documents as transient, so it is not retried automatically "
    "(a retry could pay for the same failure twice). Fix the cause, or start a new DAG run to try again.",
    (),
)


def classify_failure(failure_message: str | None) -> FailureRule:
    """The table row for ``failure_message``; the 'unknown' row (not retriable) when none matches.

    An empty message (Bedrock gave no reason) is unknown as well.
    """
    if failure_message:
        for rule in FAILURE_TABLE:
            if rule.pattern.search(failure_message):
                return rule
    return _UNKNOWN
