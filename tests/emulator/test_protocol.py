"""Malformed and hostile requests get AWS-shaped errors, never a stack trace or a hang."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from .helpers import signed_request


def call(emulator, method: str, path: str, body: bytes | None = None, headers=None):
    if headers is None:
        headers = {"Content-Type": "application/json"} if body is not None else {}
    if path.startswith("/_emulator"):
        req = urllib.request.Request(emulator.endpoint_url + path, data=body, method=method, headers=headers)
    else:
        req = signed_request(emulator.endpoint_url + path, method, body, headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def assert_aws_error(result, status: int, code: str) -> dict:
    got_status, headers, body = result
    assert got_status == status, body
    assert headers.get("x-amzn-ErrorType") == code
    doc = json.loads(body)
    assert isinstance(doc["message"], str) and "Traceback" not in doc["message"]
    return doc


def test_bad_json_is_serialization_exception(emulator):
    assert_aws_error(
        call(emulator, "POST", "/model-customization-jobs", b"{not json"), 400, "SerializationException"
    )
    assert_aws_error(
        call(emulator, "POST", "/model-customization-jobs", b"[1, 2]"), 400, "SerializationException"
    )


def test_wrong_types_are_validation_exceptions(emulator):
    body = json.dumps({"jobName": 5, "customModelName": ["x"], "roleArn": None}).encode()
    doc = assert_aws_error(
        call(emulator, "POST", "/model-customization-jobs", body), 400, "ValidationException"
    )
    assert "jobName" in doc["message"] and "baseModelIdentifier" in doc["message"]
    doc = assert_aws_error(
        call(emulator, "GET", "/model-customization-jobs?maxResults=lots"), 400, "ValidationException"
    )
    assert "maxResults" in doc["message"]


def test_unknown_route_and_wrong_method(emulator):
    assert_aws_error(call(emulator, "GET", "/no/such/route"), 404, "UnknownOperationException")
    assert_aws_error(call(emulator, "DELETE", "/model-customization-jobs"), 404, "UnknownOperationException")
    status, _, body = call(emulator, "GET", "/_emulator/nothing")
    assert status == 404 and json.loads(body)["message"]


def test_unimplemented_operation_is_named(emulator):
    doc = assert_aws_error(call(emulator, "GET", "/evaluation-jobs"), 404, "UnknownOperationException")
    assert "ListEvaluationJobs" in doc["message"]


def test_oversized_body_is_rejected(emulator):
    body = b'{"jobName": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    assert_aws_error(
        call(emulator, "POST", "/model-customization-jobs", body), 413, "RequestEntityTooLargeException"
    )


def test_unexpected_exception_is_a_generic_500(emulator, monkeypatch):
    def boom(params):
        raise RuntimeError("secret internal detail")

    monkeypatch.setitem(emulator.app.handlers, "ListModelCustomizationJobs", boom)
    doc = assert_aws_error(call(emulator, "GET", "/model-customization-jobs"), 500, "InternalServerException")
    assert "secret" not in doc["message"]


@pytest.mark.parametrize(
    "uri",
    ["s3://bucket/../other/key", "s3://../x", "http://bucket/key", "s3://UPPER/key"],
)
def test_s3_uris_cannot_escape_their_bucket(uri):
    from airflow_bedrock_ft.emulator.jobs import JobFailure, split_s3_uri

    with pytest.raises(JobFailure):
        split_s3_uri(uri)


def test_default_bind_is_loopback(bedrock_emulator):
    assert bedrock_emulator.host == "127.0.0.1"
    assert bedrock_emulator.endpoint_url.startswith("http://127.0.0.1:")
