from __future__ import annotations

import pytest

from airflow_bedrock_ft.core.failures import FAILURE_TABLE, FailureKind, classify_failure

# The documented failureMessage texts (bedrock-facts §4), each with the kind it must get.
DOCUMENTED = [
    ("Could not validate GetObject permissions to access Amazon S3 bucket: b at key train.jsonl", "permission"),
    (
        "Amazon S3 perms missing (PutObject): Could not validate PutObject permissions to access S3 "
        "bucket: b at key output/.write_access_check_file.tmp",
        "permission",
    ),
    ("Unable to parse Amazon S3 file: train.jsonl. Data files must conform to JSONL format.", "data"),
    ("Input size exceeded in file train.jsonl for record starting with...", "data"),
    ("Maximum input token count 4097 exceeds limit of 4096", "data"),
    ("Maximum output token count 4097 exceeds limit of 4096", "data"),
    ("Max sum of input and output token length 4097 exceeds total limit of 4096", "data"),
    ("Maximum input token count 4919 exceeds limit of 4096 for train data", "data"),
    (
        "Input data at data/train.jsonl must follow '{\"prompt\": \"<input text>\", \"completion\": "
        "\"<output text>\"}' format",
        "data",
    ),
    (
        "Automated tests flagged this fine-tuning job as including materials that are potentially "
        "inconsistent with Anthropic's third-party license terms. Please contact support.",
        "policy",
    ),
    ("Encountered an unexpected error when processing the request, please try again", "internal"),
    ("Encountered an internal error when processing the request.", "internal"),
    ("Insufficient capacity to run the job at this time.", "capacity"),
]


@pytest.mark.parametrize(("message", "kind"), DOCUMENTED)
def test_documented_messages_get_their_kind(message: str, kind: str) -> None:
    rule = classify_failure(message)
    assert rule.kind is FailureKind(kind)
    assert rule.retriable is (kind in ("internal", "capacity"))
    assert rule.advice


@pytest.mark.parametrize("message", [None, "", "Something nobody has seen before", "Stopped by user"])
def test_unknown_messages_are_never_retried(message: str | None) -> None:
    rule = classify_failure(message)
    assert rule.kind is FailureKind.UNKNOWN
    assert not rule.retriable
    assert "not retried" in rule.advice


def test_every_row_matches_its_own_quoted_examples() -> None:
    for rule in FAILURE_TABLE:
        for example in rule.examples:
            if "documented" in example:
                continue  # a description of the source, not a quoted message
            assert classify_failure(example.removeprefix("[3P] ")) is rule, (rule.kind, example)
