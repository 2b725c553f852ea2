"""Fault injection: throttling, 5xx, dropped connections, latency; admin routes stay clean."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from airflow_bedrock_ft.emulator.faults import FaultConfigError, Faults, parse_env


def admin(emulator, method: str, name: str, doc=None):
    data = json.dumps(doc).encode() if doc is not None else None
    req = urllib.request.Request(
        f"{emulator.endpoint_url}/_emulator/{name}",
        data=data,
        method=method,
        headers=emulator.admin_headers(),
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, json.loads(resp.read())


def test_throttling_is_429_and_botocore_retries_it(emulator, bedrock):
    admin(emulator, "POST", "faults", {"throttle": {"rate": 1.0}})
    with pytest.raises(ClientError) as exc:
        bedrock.list_model_customization_jobs()
    assert exc.value.response["Error"]["Code"] == "ThrottlingException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    # A burst ends: a retrying client gets through once it is over. The client is built first
    # so that the burst is still on when its first request arrives.
    retrying = emulator.client("bedrock", config=Config(retries={"max_attempts": 10, "mode": "standard"}))
    emulator.set_faults(throttle={"burst_seconds": 0.3})
    response = retrying.list_model_customization_jobs()
    assert response["ResponseMetadata"]["RetryAttempts"] >= 1


@pytest.mark.parametrize(
    ("status", "code"), [(500, "InternalServerException"), (503, "ServiceUnavailableException")]
)
def test_server_errors(emulator, bedrock, status, code):
    emulator.set_faults(error_5xx={"rate": 1.0, "status": status})
    with pytest.raises(ClientError) as exc:
        bedrock.get_model_customization_job(jobIdentifier="any")
    assert exc.value.response["Error"]["Code"] == code
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_faults_can_target_operations(emulator, bedrock):
    emulator.set_faults(error_5xx={"rate": 1.0, "operations": ["GetModelCustomizationJob"]})
    assert bedrock.list_model_customization_jobs()["modelCustomizationJobSummaries"] == []
    with pytest.raises(ClientError):
        bedrock.get_model_customization_job(jobIdentifier="any")


def test_dropped_connection_has_no_response(emulator, bedrock):
    emulator.set_faults(drop_connections={"rate": 1.0})
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        bedrock.list_model_customization_jobs()
    # The admin API is never faulted, and clearing the faults restores service.
    status, _ = admin(emulator, "DELETE", "faults")
    assert status == 200
    assert bedrock.list_model_customization_jobs()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_latency_is_added_to_aws_routes_only(emulator, bedrock):
    emulator.set_faults(latency_ms=800)
    started = time.monotonic()
    bedrock.list_model_customization_jobs()
    assert time.monotonic() - started >= 0.8
    started = time.monotonic()
    admin(emulator, "GET", "health")
    assert time.monotonic() - started < 0.8


def test_admin_faults_config_and_health(emulator):
    status, doc = admin(emulator, "POST", "faults", {"throttle": {"rate": 0.5}, "fail_jobs": {"next": 2}})
    assert status == 200 and doc["fail_jobs"]["next"] == 2
    assert admin(emulator, "GET", "faults")[1]["throttle"] == {"rate": 0.5}
    with pytest.raises(urllib.error.HTTPError) as exc:
        admin(emulator, "POST", "faults", {"throttle": {"rate": 2}})
    assert exc.value.code == 400
    status, config = admin(emulator, "POST", "config", {"time_scale": 0.5, "hold_phases": ["training"]})
    assert config["time_scale"] == 0.5 and config["hold_phases"] == ["training"]
    assert admin(emulator, "GET", "transitions")[1]["hold_phases"] == ["training"]
    with pytest.raises(urllib.error.HTTPError):
        admin(emulator, "POST", "config", {"time_scale": -1})
    status, health = admin(emulator, "GET", "health")
    assert health["status"] == "ok" and health["jobs"] == 0
    admin(emulator, "POST", "reset")
    assert admin(emulator, "GET", "config")[1]["time_scale"] == 0.0
    assert admin(emulator, "GET", "faults")[1]["fail_jobs"]["next"] == 0


def test_rate_faults_hit_about_that_share_of_requests():
    faults = Faults()
    faults.configure({"throttle": {"rate": 0.3}, "seed": 1})
    hits = sum(faults.decide("ListModelCustomizationJobs").action == "throttle" for _ in range(2000))
    assert 500 <= hits <= 700


def test_env_faults_document():
    assert parse_env('{"throttle": {"rate": 0.2}}') == {"throttle": {"rate": 0.2}}
    assert parse_env("") == {}
    with pytest.raises(FaultConfigError):
        parse_env("[1]")
    with pytest.raises(FaultConfigError):
        Faults().configure({"explode": True})


def test_lost_create_response_is_retried_into_the_same_job(emulator, job_request):
    """A create whose response is lost is retried by botocore with the same clientRequestToken."""
    emulator.set_faults(
        drop_connections={"count": 1, "after_processing": True, "operations": ["CreateModelCustomizationJob"]}
    )
    retrying = emulator.client("bedrock", config=Config(retries={"max_attempts": 3, "mode": "standard"}))
    response = retrying.create_model_customization_job(**job_request())
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    jobs = retrying.list_model_customization_jobs()["modelCustomizationJobSummaries"]
    assert [j["jobArn"] for j in jobs] == [response["jobArn"]]


def test_count_faults_hit_exactly_the_next_requests(emulator, bedrock):
    emulator.set_faults(error_5xx={"count": 2})
    for _ in range(2):
        with pytest.raises(ClientError):
            bedrock.list_model_customization_jobs()
    assert bedrock.list_model_customization_jobs()["ResponseMetadata"]["HTTPStatusCode"] == 200
