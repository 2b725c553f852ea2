"""The routing table built from botocore's models reaches every operation (no socket)."""

from __future__ import annotations

import re

import pytest

from airflow_bedrock_ft.emulator.errors import EmulatorError, error_statuses
from airflow_bedrock_ft.emulator.wire import encode_event, resolve, routes

ROUTES = routes()


def sample_path(uri: str) -> str:
    path = uri.split("?", 1)[0]
    path = re.sub(r"\{[^}]+\+\}", "deep/er", path)
    return re.sub(r"\{[^}]+\}", "label-1", path)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.service}:{r.name}")
def test_every_operation_is_reachable(route):
    found, labels = resolve(route.method, sample_path(route.operation.http["requestUri"]))
    assert (found.service, found.name) == (route.service, route.name)
    assert all(v in ("label-1", "deep/er") for v in labels.values())


def test_percent_encoded_labels_are_decoded():
    arn = "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/amazon.nova-micro-v1:0:128k/abcdefabcdef"
    encoded = arn.replace(":", "%3A").replace("/", "%2F")
    route, labels = resolve("GET", f"/model-customization-jobs/{encoded}")
    assert route.name == "GetModelCustomizationJob" and labels == {"jobIdentifier": arn}


def test_error_statuses_come_from_the_models():
    statuses = error_statuses()
    assert statuses["ThrottlingException"] == 429
    assert statuses["ResourceNotFoundException"] == 404
    assert statuses["ServiceUnavailableException"] == 503
    assert statuses["ModelTimeoutException"] == 408  # bedrock-runtime only
    with pytest.raises(ValueError, match="unknown AWS error code"):
        EmulatorError("NoSuchCode", "x")


def test_event_stream_messages_decode_with_botocore():
    from botocore.eventstream import EventStreamBuffer

    buffer = EventStreamBuffer()
    buffer.add_data(encode_event("chunk", b'{"bytes": "e30="}') + encode_event("messageStop", b"{}"))
    messages = list(buffer)
    assert [m.headers[":event-type"] for m in messages] == ["chunk", "messageStop"]
    assert messages[0].payload == b'{"bytes": "e30="}'
