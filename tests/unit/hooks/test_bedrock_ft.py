"""Unit tests of BedrockFineTuneHook: botocore Stubber for the API calls, no sockets."""

from __future__ import annotations

import asyncio
import datetime
import itertools
import threading
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from airflow_bedrock_ft.exceptions import JobTimeoutError
from airflow_bedrock_ft.hooks import bedrock_ft as hook_module
from airflow_bedrock_ft.hooks.bedrock_ft import (
    BedrockFineTuneHook,
    close_shared_async_clients,
    is_transient_error,
    job_summary,
    shared_async_client_stats,
    transient_delay,
)

ARN = (
    "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/amazon.nova-micro-v1:0:128k/abc123def456"
)
NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def _client_error(code: str, status: int = 400, op: str = "GetModelCustomizationJob") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} happened"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        op,
    )


def _job(status: str = "InProgress", **extra: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "jobArn": ARN,
        "jobName": "job-1",
        "outputModelName": "model-1",
        "roleArn": "arn:aws:iam::123456789012:role/r",
        "status": status,
        "creationTime": NOW,
        "baseModelArn": "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0:128k",
        "trainingDataConfig": {"s3Uri": "s3://b/train.jsonl"},
        "validationDataConfig": {"validators": [{"s3Uri": "s3://b/val.jsonl"}]},
        "outputDataConfig": {"s3Uri": "s3://b/out/"},
        "clientRequestToken": "tok",
    }
    job.update(extra)
    return job


@pytest.fixture
def hook() -> BedrockFineTuneHook:
    # No connection id: credentials come from the dummy environment set by tests/conftest.py.
    return BedrockFineTuneHook(aws_conn_id=None, region_name="us-east-1")


def test_client_type_is_bedrock(hook: BedrockFineTuneHook) -> None:
    assert hook.client_type == "bedrock"
    assert hook.conn.meta.service_model.service_name == "bedrock"


def test_get_job_strips_response_metadata(hook: BedrockFineTuneHook) -> None:
    with Stubber(hook.conn) as stub:
        stub.add_response("get_model_customization_job", _job(), {"jobIdentifier": ARN})
        job = hook.get_job(ARN)
    assert job["status"] == "InProgress"
    assert "ResponseMetadata" not in job


def test_create_job_returns_arn(hook: BedrockFineTuneHook) -> None:
    request = {
        "jobName": "job-1",
        "customModelName": "model-1",
        "roleArn": "arn:aws:iam::123456789012:role/r",
        "baseModelIdentifier": "amazon.nova-micro-v1:0:128k",
        "trainingDataConfig": {"s3Uri": "s3://b/train.jsonl"},
        "outputDataConfig": {"s3Uri": "s3://b/out/"},
        "clientRequestToken": "tok",
    }
    with Stubber(hook.conn) as stub:
        stub.add_response("create_model_customization_job", {"jobArn": ARN}, request)
        assert hook.create_job(request) == ARN


def test_create_job_without_arn_in_response_looks_the_name_up(hook: BedrockFineTuneHook) -> None:
    """Bedrock may acknowledge a repeated clientRequestToken without echoing the job ARN."""
    with mock.patch.object(type(hook), "conn", new_callable=mock.PropertyMock) as conn:
        conn.return_value.create_model_customization_job.return_value = {"ResponseMetadata": {}}
        conn.return_value.get_model_customization_job.return_value = _job()
        assert hook.create_job({"jobName": "job-1"}) == ARN
        conn.return_value.get_model_customization_job.assert_called_once_with(jobIdentifier="job-1")


def test_stop_job(hook: BedrockFineTuneHook) -> None:
    with Stubber(hook.conn) as stub:
        stub.add_response("stop_model_customization_job", {}, {"jobIdentifier": ARN})
        assert hook.stop_job(ARN) is True


@pytest.mark.parametrize("status", ["Completed", "Failed", "Stopped", "Stopping"])
def test_stop_job_on_ended_job_returns_false(hook: BedrockFineTuneHook, status: str) -> None:
    with Stubber(hook.conn) as stub:
        stub.add_client_error("stop_model_customization_job", "ConflictException", http_status_code=400)
        stub.add_response("get_model_customization_job", _job(status), {"jobIdentifier": ARN})
        assert hook.stop_job(ARN) is False


def test_stop_job_conflict_on_running_job_raises(hook: BedrockFineTuneHook) -> None:
    with Stubber(hook.conn) as stub:
        stub.add_client_error("stop_model_customization_job", "ConflictException", http_status_code=400)
        stub.add_response("get_model_customization_job", _job("InProgress"), {"jobIdentifier": ARN})
        with pytest.raises(ClientError):
            hook.stop_job(ARN)


def test_find_job_by_name(hook: BedrockFineTuneHook) -> None:
    with Stubber(hook.conn) as stub:
        stub.add_client_error(
            "get_model_customization_job", "ResourceNotFoundException", http_status_code=404
        )
        stub.add_response("get_model_customization_job", _job(), {"jobIdentifier": "job-1"})
        stub.add_client_error("get_model_customization_job", "AccessDeniedException", http_status_code=403)
        assert hook.find_job_by_name("missing") is None
        assert hook.find_job_by_name("job-1")["jobArn"] == ARN
        with pytest.raises(ClientError):
            hook.find_job_by_name("job-1")


def test_find_job_by_token_lists_then_gets(hook: BedrockFineTuneHook) -> None:
    other = ARN.replace("abc123def456", "zzz999zzz999")
    summaries = [
        {
            "jobArn": other,
            "baseModelArn": _job()["baseModelArn"],
            "jobName": "job-0",
            "status": "Completed",
            "creationTime": NOW,
        },
        {
            "jobArn": ARN,
            "baseModelArn": _job()["baseModelArn"],
            "jobName": "job-1",
            "status": "InProgress",
            "creationTime": NOW,
        },
    ]
    with Stubber(hook.conn) as stub:
        stub.add_response(
            "list_model_customization_jobs",
            {"modelCustomizationJobSummaries": summaries},
            {"sortBy": "CreationTime", "sortOrder": "Descending", "nameContains": "job"},
        )
        stub.add_response(
            "get_model_customization_job",
            _job(jobArn=other, clientRequestToken="x"),
            {"jobIdentifier": other},
        )
        stub.add_response("get_model_customization_job", _job(), {"jobIdentifier": ARN})
        assert hook.find_job_by_token("tok", name_contains="job")["jobArn"] == ARN


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (_client_error("ThrottlingException", 429), True),
        (_client_error("InternalServerException", 500), True),
        (_client_error("ServiceUnavailableException", 503), True),
        (_client_error("500", 500), True),
        (_client_error("SomethingNew", 502), True),
        (EndpointConnectionError(endpoint_url="http://x"), True),
        (ConnectionClosedError(endpoint_url="http://x"), True),
        (ReadTimeoutError(endpoint_url="http://x"), True),
        (ConnectionResetError(), True),
        (asyncio.TimeoutError(), True),
        (_client_error("ValidationException", 400), False),
        (_client_error("AccessDeniedException", 403), False),
        (_client_error("ResourceNotFoundException", 404), False),
        (ValueError("bug"), False),
    ],
)
def test_is_transient_error(exc: BaseException, transient: bool) -> None:
    assert is_transient_error(exc) is transient


def test_is_transient_error_ignores_message_text() -> None:
    """A code is what counts: a 400 whose message mentions throttling is not retried."""
    exc = ClientError({"Error": {"Code": "ValidationException", "Message": "Throttling"}}, "Op")
    assert not is_transient_error(exc)


def test_transient_delay_grows_and_is_capped() -> None:
    """First retry after a quarter interval (5 s at most, 0.25 s at least), doubling up to one
    interval: a long burst of throttling never delays noticing the job's end by more than that."""
    with mock.patch("airflow_bedrock_ft.core.retry.random.uniform", return_value=1.0):
        delays = [transient_delay(60, n) for n in range(1, 12)]
        assert delays[:5] == [5, 10, 20, 40, 60]
        assert max(delays) == 60
        assert [transient_delay(1, n) for n in range(1, 5)] == [0.25, 0.5, 1, 1]
        assert transient_delay(0.2, 1) == 0.25  # never a busy loop
        assert transient_delay(0.2, 5) == 0.25
        assert transient_delay(900, 20) == hook_module.MAX_TRANSIENT_DELAY


def test_job_summary_primitives() -> None:
    job = _job(
        "Completed",
        outputModelArn="arn:aws:bedrock:us-east-1:123456789012:custom-model/x/1",
        trainingMetrics={"trainingLoss": 0.5},
        validationMetrics=[{"validationLoss": 0.7}, {"validationLoss": 0.9}],
        failureMessage=None,
        endTime=NOW,
        statusDetails={
            "validationDetails": {"status": "Completed"},
            "trainingDetails": {"status": "Completed"},
        },
    )
    summary = job_summary(job)
    assert summary["job_status"] == "Completed"
    assert summary["training_loss"] == 0.5
    assert summary["validation_loss"] == 0.7
    assert summary["output_s3_uri"] == "s3://b/out/"
    assert summary["end_time"] == NOW.isoformat()
    assert summary["phases"] == "validation=Completed training=Completed"
    assert all(v is None or isinstance(v, (str, int, float)) for v in summary.values())


# --- wait_for_job -------------------------------------------------------------------------------


def _waiting_hook(responses: list[Any]) -> tuple[BedrockFineTuneHook, list[float]]:
    hook = BedrockFineTuneHook(aws_conn_id=None, region_name="us-east-1")
    hook.get_job = mock.Mock(side_effect=responses)  # type: ignore[method-assign]
    return hook, []


def test_wait_for_job_has_no_attempt_budget_by_default() -> None:
    """The Amazon provider gives up after 75 polls (2.5 h); a job may take days."""
    hook, slept = _waiting_hook([_job()] * 500 + [_job("Completed")])
    job = hook.wait_for_job(ARN, poll_interval=60, sleep=slept.append)
    assert job["status"] == "Completed"
    assert len(slept) == 500
    assert all(54 <= s <= 66 for s in slept)


def test_wait_for_job_survives_5xx_throttling_and_dropped_connections() -> None:
    errors = [
        _client_error("InternalServerException", 500),
        EndpointConnectionError(endpoint_url="http://x"),
        _client_error("ThrottlingException", 429),
        ConnectionClosedError(endpoint_url="http://x"),
    ]
    hook, slept = _waiting_hook([_job(), *errors, _job("Failed", failureMessage="bad")])
    job = hook.wait_for_job(ARN, poll_interval=60, sleep=slept.append)
    assert job["status"] == "Failed"
    # One regular poll interval, then four growing backoff delays.
    backoff = slept[1:]
    assert len(backoff) == 4
    assert all(later > earlier for earlier, later in itertools.pairwise(backoff))


def test_wait_for_job_raises_non_transient_errors() -> None:
    hook, slept = _waiting_hook([_job(), _client_error("AccessDeniedException", 403)])
    with pytest.raises(ClientError):
        hook.wait_for_job(ARN, poll_interval=1, sleep=slept.append)


def test_wait_for_job_max_attempts() -> None:
    hook, slept = _waiting_hook([_job()] * 10)
    with pytest.raises(JobTimeoutError) as info:
        hook.wait_for_job(ARN, poll_interval=1, max_attempts=3, sleep=slept.append)
    assert info.value.job_status == "InProgress"
    assert info.value.job_arn == ARN
    assert hook.get_job.call_count == 3  # type: ignore[attr-defined]


def test_wait_for_job_timeout_uses_monotonic_clock() -> None:
    hook, slept = _waiting_hook([_job()] * 10)
    clock = iter([0.0, 0.0, 30.0, 30.0, 61.0, 61.0, 61.0, 61.0])
    with (
        mock.patch.object(hook_module.time, "monotonic", side_effect=lambda: next(clock)),
        pytest.raises(JobTimeoutError) as info,
    ):
        hook.wait_for_job(ARN, poll_interval=40, timeout=60, sleep=slept.append)
    assert "last status InProgress" in str(info.value)
    # The second sleep is cut to the time left before the deadline.
    assert slept[1] == pytest.approx(30.0)


# --- shared async clients -----------------------------------------------------------------------


class _FakeCtx:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.entered = self.exited = 0

    async def __aenter__(self) -> Any:
        self.entered += 1
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        self.exited += 1


async def test_shared_async_client_one_per_key_under_concurrency() -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []
    contexts: list[_FakeCtx] = []

    def fake_new_context(self: BedrockFineTuneHook) -> tuple[tuple[Any, ...], Any]:
        threads.append(threading.get_ident())
        ctx = _FakeCtx(mock.Mock(name=f"client-{self._region_name}"))
        contexts.append(ctx)
        return (self.aws_conn_id, self._region_name, "http://endpoint"), ctx

    with mock.patch.object(BedrockFineTuneHook, "_new_async_client_context", fake_new_context):
        hooks = [BedrockFineTuneHook(aws_conn_id="aws_default", region_name="us-east-1") for _ in range(50)]
        clients = await asyncio.gather(*(h.get_shared_async_client() for h in hooks))
        other = await BedrockFineTuneHook(
            aws_conn_id="aws_default", region_name="eu-west-1"
        ).get_shared_async_client()
        assert len({id(c) for c in clients}) == 1
        assert other is not clients[0]
        assert shared_async_client_stats() == {"clients": 2, "resolutions": 2}
        # The connection was read off the event loop's thread.
        assert threads and loop_thread not in threads
        await close_shared_async_clients()
    assert [c.exited for c in contexts] == [1, 1]
    assert shared_async_client_stats() == {"clients": 0, "resolutions": 0}


def test_shared_async_clients_are_per_event_loop() -> None:
    def fake_new_context(self: BedrockFineTuneHook) -> tuple[tuple[Any, ...], Any]:
        return (self.aws_conn_id, self._region_name, None), _FakeCtx(object())

    async def get() -> Any:
        client = await BedrockFineTuneHook(aws_conn_id="c", region_name="us-east-1").get_shared_async_client()
        await close_shared_async_clients()
        return client

    with mock.patch.object(BedrockFineTuneHook, "_new_async_client_context", fake_new_context):
        assert asyncio.run(get()) is not asyncio.run(get())


async def test_aget_job_uses_the_shared_client() -> None:
    client = mock.Mock()
    client.get_model_customization_job = mock.AsyncMock(return_value={**_job(), "ResponseMetadata": {}})

    def fake_new_context(self: BedrockFineTuneHook) -> tuple[tuple[Any, ...], Any]:
        return ("c", "us-east-1", None), _FakeCtx(client)

    with mock.patch.object(BedrockFineTuneHook, "_new_async_client_context", fake_new_context):
        hook = BedrockFineTuneHook(aws_conn_id="c", region_name="us-east-1")
        job = await hook.aget_job(ARN)
        await hook.aget_job(ARN)
        assert shared_async_client_stats()["resolutions"] == 1
        await close_shared_async_clients()
    assert job["jobArn"] == ARN and "ResponseMetadata" not in job
    client.get_model_customization_job.assert_awaited_with(jobIdentifier=ARN)


async def test_real_async_client_honours_connection_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection's endpoint_url reaches the aiobotocore client: the emulator needs no branch."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_BEDROCK_LOCAL",
        '{"conn_type": "aws", "login": "testing", "password": "testing", '
        '"extra": {"endpoint_url": "http://127.0.0.1:9", "region_name": "us-east-1"}}',
    )
    hook = BedrockFineTuneHook(aws_conn_id="bedrock_local")
    client = await hook.get_shared_async_client()
    try:
        assert client.meta.endpoint_url == "http://127.0.0.1:9"
        assert client.meta.region_name == "us-east-1"
    finally:
        await close_shared_async_clients()


async def test_last_wait_out_closes_the_shared_clients() -> None:
    """Concurrent waits share one client; it is closed only when the last of them ends."""
    from airflow_bedrock_ft.hooks.bedrock_ft import async_clients_in_use

    contexts: list[_FakeCtx] = []

    def fake_new_context(self: BedrockFineTuneHook) -> tuple[tuple[Any, ...], Any]:
        contexts.append(_FakeCtx(object()))
        return ("c", "us-east-1", None), contexts[-1]

    release_first = asyncio.Event()

    async def wait(release: asyncio.Event | None) -> Any:
        async with async_clients_in_use():
            client = await BedrockFineTuneHook(
                aws_conn_id="c", region_name="us-east-1"
            ).get_shared_async_client()
            if release is not None:
                await release.wait()
            return client

    with mock.patch.object(BedrockFineTuneHook, "_new_async_client_context", fake_new_context):
        long_wait = asyncio.ensure_future(wait(release_first))
        await asyncio.sleep(0.01)
        short = await wait(None)
        assert contexts[0].exited == 0  # the long wait still uses it
        release_first.set()
        assert await long_wait is short
    assert [c.exited for c in contexts] == [1]
    assert shared_async_client_stats() == {"clients": 0, "resolutions": 0}


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00.123Z",
        "2026-01-01T00:00:00.123456+00:00",
        1767225600,
        "1767225600",
    ],
)
def test_fast_timestamp_parser_agrees_with_botocore(value: Any) -> None:
    from botocore.utils import parse_timestamp as botocore_parse

    from airflow_bedrock_ft.hooks.bedrock_ft import parse_timestamp

    assert parse_timestamp(value) == botocore_parse(value)
    assert parse_timestamp(value).tzinfo is not None


async def test_shared_client_uses_the_fast_timestamp_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checked through botocore's public parser factory of the session the client was made from."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_BEDROCK_LOCAL",
        '{"conn_type": "aws", "login": "testing", "password": "testing", '
        '"extra": {"endpoint_url": "http://127.0.0.1:9", "region_name": "us-east-1"}}',
    )
    sessions: list[Any] = []
    original = BedrockFineTuneHook.get_session

    def recording(self: BedrockFineTuneHook, *args: Any, **kwargs: Any) -> Any:
        sessions.append(original(self, *args, **kwargs))
        return sessions[-1]

    calls: list[Any] = []
    real_parser = hook_module.parse_timestamp

    def fast(value: Any) -> Any:
        calls.append(value)
        return real_parser(value)

    monkeypatch.setattr(BedrockFineTuneHook, "get_session", recording)
    monkeypatch.setattr(hook_module, "parse_timestamp", fast)
    client = await BedrockFineTuneHook(aws_conn_id="bedrock_local").get_shared_async_client()
    try:
        operation = client.meta.service_model.operation_model("GetModelCustomizationJob")
        parser = sessions[-1].get_component("response_parser_factory").create_parser("rest-json")
        body = b'{"jobArn": "arn", "status": "InProgress", "creationTime": "2026-01-01T00:00:00.5Z"}'
        parsed = await parser.parse(
            {"status_code": 200, "headers": {}, "body": body}, operation.output_shape
        )
        assert calls == ["2026-01-01T00:00:00.5Z"]
        assert parsed["creationTime"].tzinfo is not None
    finally:
        await close_shared_async_clients()
