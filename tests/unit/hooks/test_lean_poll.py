"""Unit tests of the lean GetModelCustomizationJob poll: fake HTTP answers, no sockets."""

from __future__ import annotations

import datetime
import logging
from typing import Any
from unittest import mock

import orjson
import pytest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from airflow_bedrock_ft.hooks import bedrock_ft as hook_module
from airflow_bedrock_ft.hooks.bedrock_ft import (
    BedrockFineTuneHook,
    client_error_from_response,
    close_shared_async_clients,
    is_transient_error,
    job_summary,
    lean_job_getter,
)

ARN = "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/amazon.nova-micro-v1:0:128k/abc123"
CONN = (
    '{"conn_type": "aws", "login": "testing", "password": "testing", '
    '"extra": {"endpoint_url": "http://127.0.0.1:9", "region_name": "us-east-1"}}'
)
BODY = {
    "jobArn": ARN,
    "jobName": "job-1",
    "outputModelName": "model-1",
    "status": "Completed",
    "creationTime": "2026-01-01T00:00:00Z",
    "lastModifiedTime": "2026-01-01T01:00:00.123Z",
    "endTime": "2026-01-01T02:00:00Z",
    "statusDetails": {
        "validationDetails": {"status": "Completed", "creationTime": "2026-01-01T00:00:01Z"},
        "trainingDetails": {"status": "Completed", "lastModifiedTime": "2026-01-01T01:59:00Z"},
    },
    "trainingMetrics": {"trainingLoss": 1},
    "validationMetrics": [{"validationLoss": 2}],
    "outputDataConfig": {"s3Uri": "s3://b/out/"},
}


class FakeResponse:
    """What the client's HTTP session returns: status, lower-case headers, awaitable content."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.headers = headers or {}
        self._body = body

    @property
    def content(self) -> Any:
        async def read() -> bytes:
            return self._body

        return read()


class FakeSession:
    """Stands in for the client's HTTP session and records what was sent."""

    def __init__(self, *responses: FakeResponse) -> None:
        self.responses = list(responses)
        self.sent: list[Any] = []

    async def send(self, request: Any) -> FakeResponse:
        self.sent.append(request)
        return self.responses.pop(0)


@pytest.fixture
def local_conn(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_BEDROCK_LOCAL", CONN)
    return "bedrock_local"


@pytest.mark.parametrize(
    ("status", "headers", "body", "code", "message", "transient"),
    [
        (
            429,
            {"x-amzn-errortype": "ThrottlingException:http://internal.amazon.com/"},
            b'{"message": "slow"}',
            "ThrottlingException",
            "slow",
            True,
        ),
        (
            400,
            {},
            b'{"__type": "com.amazon.bedrock#ValidationException", "Message": "bad"}',
            "ValidationException",
            "bad",
            False,
        ),
        (
            404,
            {},
            b'{"code": "ResourceNotFoundException", "message": "no job"}',
            "ResourceNotFoundException",
            "no job",
            False,
        ),
        (403, {"x-amzn-errortype": "AccessDeniedException"}, b"{}", "AccessDeniedException", "", False),
        (
            500,
            {"x-amzn-errortype": "InternalServerException"},
            b'{"message": "oops"}',
            "InternalServerException",
            "oops",
            True,
        ),
        (503, {}, b"", "503", "Service Unavailable", True),
        (503, {"x-amzn-errortype": "ServiceUnavailableException"}, b"", "503", "Service Unavailable", True),
        (429, {}, b"<html>Too Many Requests</html>", "429", "<html>Too Many Requests</html>", True),
        (400, {}, b"not json", "400", "not json", False),
        (404, {}, b"", "404", "", False),
        (502, {}, b"<html>Bad Gateway</html>", "502", "Bad Gateway", True),
    ],
)
def test_client_error_from_response(
    status: int, headers: dict[str, str], body: bytes, code: str, message: str, transient: bool
) -> None:
    headers = {**headers, "x-amzn-requestid": "req-1"}
    error = client_error_from_response(status, headers, body)
    assert error.response["Error"] == {"Code": code, "Message": message}
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert error.response["ResponseMetadata"]["RequestId"] == "req-1"
    assert error.operation_name == "GetModelCustomizationJob"
    assert is_transient_error(error) is transient


async def _getter(local_conn: str) -> Any:
    client = await BedrockFineTuneHook(aws_conn_id=local_conn).get_shared_async_client()
    getter = await lean_job_getter(client)
    assert getter is not None
    return client, getter


async def test_lean_get_signs_with_the_client_and_converts_like_botocore(local_conn: str) -> None:
    try:
        _, getter = await _getter(local_conn)
        getter.http_session = FakeSession(FakeResponse(200, orjson.dumps(BODY)))
        job = await BedrockFineTuneHook(aws_conn_id=local_conn).aget_job(ARN)
        (request,) = getter.http_session.sent
        assert request.method == "GET"
        assert request.url == "http://127.0.0.1:9/model-customization-jobs/" + ARN.replace(
            ":", "%3A"
        ).replace("/", "%2F")
        auth = request.headers["Authorization"]
        assert auth.startswith("AWS4-HMAC-SHA256 Credential=testing/")
        assert "/us-east-1/bedrock/aws4_request" in auth
    finally:
        await close_shared_async_clients()
    utc = datetime.timezone.utc
    assert job["creationTime"] == datetime.datetime(2026, 1, 1, tzinfo=utc)
    assert job["lastModifiedTime"] == datetime.datetime(2026, 1, 1, 1, 0, 0, 123000, tzinfo=utc)
    assert job["statusDetails"]["trainingDetails"]["lastModifiedTime"].tzinfo is not None
    assert job["trainingMetrics"]["trainingLoss"] == 1.0
    assert isinstance(job["validationMetrics"][0]["validationLoss"], float)
    summary = job_summary(job)
    assert summary["end_time"] == "2026-01-01T02:00:00+00:00"
    assert summary["training_loss"] == 1.0 and summary["validation_loss"] == 2.0


async def test_lean_get_raises_the_clients_modeled_errors(local_conn: str) -> None:
    try:
        client, getter = await _getter(local_conn)
        getter.http_session = FakeSession(
            FakeResponse(404, b'{"message": "gone"}', {"x-amzn-errortype": "ResourceNotFoundException"}),
            FakeResponse(429, b'{"message": "slow"}', {"x-amzn-errortype": "ThrottlingException"}),
        )
        hook = BedrockFineTuneHook(aws_conn_id=local_conn)
        with pytest.raises(client.exceptions.ResourceNotFoundException) as missing:
            await hook.aget_job(ARN)
        with pytest.raises(client.exceptions.ThrottlingException) as throttled:
            await hook.aget_job(ARN)
    finally:
        await close_shared_async_clients()
    assert not is_transient_error(missing.value)
    assert is_transient_error(throttled.value)


async def test_lean_get_freezes_credentials_for_every_request(local_conn: str) -> None:
    """Refreshable credentials (assumed roles) are asked for fresh keys on every poll."""
    keys = iter(["AKIDFIRST", "AKIDSECOND"])

    class Refreshing:
        async def get_frozen_credentials(self) -> Any:
            return Credentials(next(keys), "secret", "token").get_frozen_credentials()

    try:
        client, getter = await _getter(local_conn)
        client._request_signer._credentials = Refreshing()
        getter.http_session = FakeSession(*(FakeResponse(200, orjson.dumps(BODY)) for _ in range(2)))
        hook = BedrockFineTuneHook(aws_conn_id=local_conn)
        await hook.aget_job(ARN)
        await hook.aget_job(ARN)
    finally:
        await close_shared_async_clients()
    first, second = getter.http_session.sent
    assert "Credential=AKIDFIRST/" in first.headers["Authorization"]
    assert "Credential=AKIDSECOND/" in second.headers["Authorization"]
    assert second.headers["X-Amz-Security-Token"] == "token"


async def test_falls_back_to_the_client_without_the_pieces_it_needs(
    local_conn: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A future aiobotocore without the private pieces keeps polling, through the client."""
    monkeypatch.setattr(hook_module, "_fallback_logged", False)
    hook = BedrockFineTuneHook(aws_conn_id=local_conn)
    try:
        client = await hook.get_shared_async_client()
        monkeypatch.delattr(client, "_request_signer")
        answer = {**BODY, "ResponseMetadata": {"HTTPStatusCode": 200}}
        with (
            caplog.at_level(logging.DEBUG, logger=hook_module.__name__),
            mock.patch.object(
                client, "get_model_customization_job", mock.AsyncMock(return_value=answer)
            ) as get,
        ):
            first = await hook.aget_job(ARN)
            await hook.aget_job(ARN)
    finally:
        await close_shared_async_clients()
    assert first == BODY
    assert get.await_count == 2
    get.assert_awaited_with(jobIdentifier=ARN)
    assert [r.levelno for r in caplog.records if "full pipeline" in r.getMessage()] == [logging.DEBUG]


async def test_bearer_token_auth_uses_the_client(local_conn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Auth other than SigV4 (Bedrock API keys) goes through botocore's own signer selection."""
    try:
        client = await BedrockFineTuneHook(aws_conn_id=local_conn).get_shared_async_client()
        monkeypatch.setattr(client._request_signer, "_signature_version", "bearer")
        assert await lean_job_getter(client) is None
    finally:
        await close_shared_async_clients()


async def test_one_lookup_for_concurrent_first_polls(local_conn: str) -> None:
    import asyncio

    calls = 0
    original = hook_module._LeanJobGetter.for_client

    async def counting(client: Any) -> Any:
        nonlocal calls
        calls += 1
        return await original(client)

    try:
        client = await BedrockFineTuneHook(aws_conn_id=local_conn).get_shared_async_client()
        with mock.patch.object(hook_module._LeanJobGetter, "for_client", counting):
            getters = await asyncio.gather(*(lean_job_getter(client) for _ in range(20)))
    finally:
        await close_shared_async_clients()
    assert calls == 1 and len({id(g) for g in getters}) == 1


def test_client_error_is_a_client_error() -> None:
    assert isinstance(client_error_from_response(400, {}, b"not json"), ClientError)


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (429, {"x-amzn-errortype": "ThrottlingException:http://internal.amazon.com/"}, b'{"message": "m"}'),
        (400, {}, b'{"__type": "com.amazon.bedrock#ValidationException", "Message": "bad"}'),
        (404, {}, b'{"code": "ResourceNotFoundException", "message": "no job"}'),
        (403, {"x-amzn-errortype": "AccessDeniedException"}, b"{}"),
        (503, {"x-amzn-errortype": "ServiceUnavailableException"}, b""),
        (502, {}, b"<html>Bad Gateway</html>"),
        (429, {}, b"<html>Too Many Requests</html>"),
        (400, {}, b"not json"),
        (404, {}, b""),
    ],
)
def test_error_mapping_agrees_with_botocores_parser(
    status: int, headers: dict[str, str], body: bytes
) -> None:
    import botocore.session
    from botocore.parsers import create_parser

    model = botocore.session.get_session().get_service_model("bedrock")
    shape = model.operation_model("GetModelCustomizationJob").output_shape
    parsed = create_parser("rest-json").parse(
        {"status_code": status, "headers": headers, "body": body}, shape
    )
    assert client_error_from_response(status, headers, body).response["Error"] == parsed["Error"]
