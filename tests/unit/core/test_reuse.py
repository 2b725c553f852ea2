"""The training digest: what makes two trainings identical, and what does not matter."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_bedrock_ft.core.reuse import (
    TrainingDigestError,
    compute_training_digest,
    content_addressed_sha256,
    fingerprint_s3_uri,
    training_digest,
)

SHA_T = "a" * 64
SHA_V = "b" * 64
TRAIN = f"s3://bucket/prepared/sha256-{SHA_T}/train.jsonl"
VAL = f"s3://bucket/prepared/sha256-{SHA_V}/validation.jsonl"


def _request(**overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "jobName": "job-1",
        "customModelName": "model-1",
        "roleArn": "arn:aws:iam::123456789012:role/A",
        "baseModelIdentifier": "amazon.nova-micro-v1:0:128k",
        "customizationType": "FINE_TUNING",
        "trainingDataConfig": {"s3Uri": TRAIN},
        "validationDataConfig": {"validators": [{"s3Uri": VAL}]},
        "outputDataConfig": {"s3Uri": "s3://bucket/out/"},
        "hyperParameters": {"epochCount": "2", "learningRate": "0.0001"},
        "clientRequestToken": "t1",
        "jobTags": [{"key": "team", "value": "a"}],
    }
    request.update(overrides)
    return {k: v for k, v in request.items() if v is not None}


def test_content_addressed_keys_need_no_request() -> None:
    assert content_addressed_sha256(TRAIN) == SHA_T
    assert content_addressed_sha256("s3://bucket/ft/train.jsonl") is None
    assert fingerprint_s3_uri(TRAIN, None) == f"sha256:{SHA_T}"
    assert len(compute_training_digest(_request(), None)) == 64


@pytest.mark.parametrize(
    "change",
    [
        {"jobName": "other", "customModelName": "other", "clientRequestToken": "t2"},
        {"roleArn": "arn:aws:iam::123456789012:role/B"},
        {"outputDataConfig": {"s3Uri": "s3://elsewhere/out/"}},
        {"jobTags": [{"key": "team", "value": "b"}]},
        {"customModelKmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/k"},
        {"hyperParameters": {"learningRate": "0.0001", "epochCount": "2"}},
        {"baseModelIdentifier": "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0:128k"},
        {"trainingDataConfig": {"s3Uri": f"s3://other-bucket/x/sha256-{SHA_T}/train.jsonl"}},
    ],
)
def test_what_does_not_change_the_training_leaves_the_digest(change: dict[str, Any]) -> None:
    assert compute_training_digest(_request(**change), None) == compute_training_digest(_request(), None)


@pytest.mark.parametrize(
    "change",
    [
        {"baseModelIdentifier": "amazon.titan-text-express-v1"},
        {"customizationType": "CONTINUED_PRE_TRAINING"},
        {"hyperParameters": {"epochCount": "3", "learningRate": "0.0001"}},
        {"hyperParameters": {"epochCount": "2"}},
        {"trainingDataConfig": {"s3Uri": f"s3://bucket/prepared/sha256-{'c' * 64}/train.jsonl"}},
        {"validationDataConfig": None},
        {"validationDataConfig": {"validators": [{"s3Uri": VAL}, {"s3Uri": TRAIN}]}},
        {"customizationConfig": {"distillationConfig": {"teacherModelConfig": {"teacherModelIdentifier": "x"}}}},
    ],
)
def test_what_changes_the_training_changes_the_digest(change: dict[str, Any]) -> None:
    assert compute_training_digest(_request(**change), None) != compute_training_digest(_request(), None)


def test_data_that_cannot_be_fingerprinted_is_named() -> None:
    with pytest.raises(TrainingDigestError, match=r"s3://bucket/ft/train\.jsonl: not content-addressed"):
        compute_training_digest(_request(trainingDataConfig={"s3Uri": "s3://bucket/ft/train.jsonl"}), None)
    logs = {"invocationLogsConfig": {"invocationLogSource": {"s3Uri": "s3://logs/"}}}
    with pytest.raises(TrainingDigestError, match="trainingDataConfig has no s3Uri"):
        compute_training_digest(_request(trainingDataConfig=logs), None)
    with pytest.raises(TrainingDigestError, match=r"no fingerprint for"):
        training_digest(_request(), {TRAIN: "sha256:x"})
    with pytest.raises(TrainingDigestError, match=r"Not an s3:// URI"):
        fingerprint_s3_uri("/local/train.jsonl", None)
