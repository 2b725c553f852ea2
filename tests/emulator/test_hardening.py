"""The emulator on a developer's machine: no cross-site control, state that user data cannot
poison, crafted tokens and half-sent requests answered as AWS would."""

from __future__ import annotations

import base64
import json
import socket
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from airflow_bedrock_ft.emulator import start_emulator
from airflow_bedrock_ft.emulator.store import Store, dumps, loads

from .helpers import NO_RETRY, signed_request, wait_for


def raw(emulator: Any, method: str, path: str, body: bytes | None = None, **headers: str) -> tuple[int, Any]:
    if path.startswith("/_emulator"):
        req = urllib.request.Request(emulator.endpoint_url + path, data=body, method=method, headers=headers)
    else:
        req = signed_request(emulator.endpoint_url + path, method, body, headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _job_count(emulator: Any) -> int:
    status, doc = raw(emulator, "GET", "/_emulator/health")
    assert status == 200
    return int(doc["jobs"])


def test_a_foreign_origin_cannot_reset_the_emulator(emulator, bedrock, job_request):
    bedrock.create_model_customization_job(**job_request())
    status, doc = raw(
        emulator,
        "POST",
        "/_emulator/reset",
        b"",
        Origin="http://evil.example",
        **{"Content-Type": "application/json"},
    )
    assert status == 403 and "http://evil.example" in doc["message"]
    # A form post (no preflight) with an empty body, from any origin or none.
    status, doc = raw(
        emulator, "POST", "/_emulator/reset", b"", **{"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 415 and "application/json" in doc["message"]
    assert _job_count(emulator) == 1
    # A loopback page (a local notebook, the Airflow UI) is allowed.
    status, _ = raw(
        emulator,
        "POST",
        "/_emulator/reset",
        b"{}",
        Origin="http://localhost:8080",
        **{"Content-Type": "application/json"},
    )
    assert status == 200 and _job_count(emulator) == 0


def test_dns_rebinding_is_refused_by_the_host_header(emulator, bedrock, job_request):
    bedrock.create_model_customization_job(**job_request())
    host = f"evil.example:{emulator.port}"
    status, doc = raw(
        emulator, "POST", "/_emulator/reset", b"{}", Host=host, **{"Content-Type": "application/json"}
    )
    assert status == 403 and "evil.example" in doc["message"] and "127.0.0.1" in doc["message"]
    status, doc = raw(emulator, "GET", "/model-customization-jobs", Host=host)
    assert status == 403
    assert _job_count(emulator) == 1
    assert raw(emulator, "GET", "/model-customization-jobs", Host=f"localhost:{emulator.port}")[0] == 200


def test_text_plain_bodies_create_nothing_and_turn_on_no_faults(emulator, job_request):
    body = json.dumps(job_request()).encode()
    status, doc = raw(emulator, "POST", "/model-customization-jobs", body, **{"Content-Type": "text/plain"})
    assert status == 415 and "CreateModelCustomizationJob" in doc["message"]
    status, _ = raw(emulator, "POST", "/model-customization-jobs", body)  # urllib: form-urlencoded
    assert status == 415
    assert _job_count(emulator) == 0
    status, _ = raw(
        emulator,
        "POST",
        "/_emulator/faults",
        b'{"throttle": {"rate": 1.0}}',
        **{"Content-Type": "text/plain"},
    )
    assert status == 415
    assert raw(emulator, "GET", "/_emulator/faults")[1] == emulator.faults.describe()
    assert not emulator.faults.describe().get("throttle")


def test_admin_token_guards_state_changes(bedrock_emulator, tmp_path):
    with start_emulator(s3_endpoint_url=bedrock_emulator.s3_endpoint_url, admin_token="auto") as emu:
        assert emu.admin_token and len(emu.admin_token) >= 24
        status, doc = raw(emu, "POST", "/_emulator/reset", b"{}", **{"Content-Type": "application/json"})
        assert status == 401 and "token" in doc["message"]
        status, _ = raw(
            emu, "POST", "/_emulator/reset", b"{}", **{**emu.admin_headers(), "Authorization": "Bearer wrong"}
        )
        assert status == 401
        assert raw(emu, "POST", "/_emulator/reset", b"{}", **emu.admin_headers())[0] == 200
        assert raw(emu, "GET", "/_emulator/health")[0] == 200  # reading needs no token


def test_user_data_that_looks_like_the_stores_tags_survives_a_restart(bedrock_emulator, bucket, tmp_path):
    """Every request member, with values shaped like the store's own encoding, comes back."""
    state = tmp_path / "state.sqlite"
    poison = {"$dt": "team-a", "$hex": "zz", "$$x": "y", "$": "$"}
    request = {
        "jobName": "poison-job",
        "customModelName": "poison-model",
        "roleArn": "arn:aws:iam::123456789012:role/BedrockRole",
        "clientRequestToken": "poison-token",
        "baseModelIdentifier": "amazon.nova-micro-v1:0:128k",
        "customizationType": "DISTILLATION",
        "customModelKmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "jobTags": [{"key": "team", "value": "dt"}],
        "customModelTags": [{"key": "hex", "value": "dt"}],
        "trainingDataConfig": {
            "invocationLogsConfig": {
                "usePromptResponse": True,
                "invocationLogSource": {"s3Uri": f"s3://{bucket}/logs/"},
                "requestMetadataFilters": {"equals": {"$dt": "team-a"}},
            }
        },
        "outputDataConfig": {"s3Uri": f"s3://{bucket}/output/"},
        "customizationConfig": {
            "distillationConfig": {
                "teacherModelConfig": {
                    "teacherModelIdentifier": "amazon.nova-pro-v1:0",
                    "maxResponseLengthForInference": 1000,
                }
            }
        },
        "vpcConfig": {
            "subnetIds": ["subnet-0123456789abcdef0"],
            "securityGroupIds": ["sg-0123456789abcdef0"],
        },
    }
    with start_emulator(state_path=state, s3_endpoint_url=bedrock_emulator.s3_endpoint_url) as first:
        bedrock = first.client("bedrock", config=NO_RETRY)
        arn = bedrock.create_model_customization_job(**request)["jobArn"]
        before = wait_for(bedrock, arn)
    with start_emulator(state_path=state, s3_endpoint_url=bedrock_emulator.s3_endpoint_url) as second:
        bedrock = second.client("bedrock", config=NO_RETRY)
        after = bedrock.get_model_customization_job(jobIdentifier=arn)
        assert after["trainingDataConfig"] == before["trainingDataConfig"]
        equals = after["trainingDataConfig"]["invocationLogsConfig"]["requestMetadataFilters"]["equals"]
        assert equals == {"$dt": "team-a"}
        for key in ("customizationConfig", "vpcConfig", "outputModelKmsKeyArn", "status", "creationTime"):
            assert after.get(key) == before.get(key), key
        assert bedrock.list_tags_for_resource(resourceARN=arn)["tags"] == [{"key": "team", "value": "dt"}]
        # The same token and request still find the same job after the restart.
        assert bedrock.create_model_customization_job(**request)["jobArn"] == arn
    # The encoding on its own: adversarial keys at every depth round-trip exactly.
    import datetime as dt

    doc = {
        "a": [poison, {"nested": poison}],
        "when": dt.datetime(2026, 1, 2, 3, 4, 5),
        "blob": b"\x00\xff",
        **poison,
    }
    assert loads(dumps(doc)) == doc


def test_a_state_file_of_the_previous_format_is_migrated(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    store = Store(path)
    store.close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 1")
    db.execute(
        "INSERT INTO objects (kind, id, doc) VALUES ('job', 'j1', ?)",
        (json.dumps({"creationTime": {"$dt": "2026-01-02T03:04:05"}, "x": {"k": "v"}}),),
    )
    db.commit()
    db.close()
    store = Store(path)
    [(key, doc)] = list(store.items("job"))
    assert key == "j1" and doc["creationTime"].year == 2026 and doc["x"] == {"k": "v"}
    store.close()


@pytest.mark.parametrize(
    "token",
    [
        base64.urlsafe_b64encode(b'{"o": 1e400}').decode(),
        base64.urlsafe_b64encode(b'{"o": 99999999999999999999999999}').decode(),
        base64.urlsafe_b64encode(b'{"o": -1}').decode(),
        base64.urlsafe_b64encode(b'{"o": true}').decode(),
        base64.urlsafe_b64encode(b"[1]").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        "not base64 at all!",
    ],
)
def test_a_crafted_next_token_is_a_validation_exception(emulator, bedrock, token):
    with pytest.raises(ClientError) as exc:
        bedrock.list_model_customization_jobs(nextToken=token)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_idle_and_half_sent_connections_are_closed(bedrock_emulator):
    from airflow_bedrock_ft.emulator.server import IDLE_TIMEOUT_S, Emulator

    assert IDLE_TIMEOUT_S <= 60

    emu = Emulator(s3_endpoint_url=bedrock_emulator.s3_endpoint_url, idle_timeout=1.0).start()
    try:
        for opening in (b"", b"GET /model-customization-jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"):
            sock = socket.create_connection(("127.0.0.1", emu.port), timeout=20)
            sock.sendall(opening)
            started = time.monotonic()
            try:
                data = sock.recv(4096)
                while data:
                    data = sock.recv(4096)
            except ConnectionResetError:
                pass
            elapsed = time.monotonic() - started
            sock.close()
            assert elapsed < 10, f"connection with {opening!r} stayed open {elapsed:.1f} s"
    finally:
        emu.stop()


def test_two_custom_models_cannot_share_a_name(emulator, bedrock, job_request):
    first = wait_for(
        bedrock, bedrock.create_model_customization_job(**job_request(customModelName="shared"))["jobArn"]
    )
    assert first["status"] == "Completed"
    with pytest.raises(ClientError) as exc:
        bedrock.create_model_customization_job(**job_request(customModelName="shared"))
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert "shared" in exc.value.response["Error"]["Message"]
    assert len(bedrock.list_custom_models(nameContains="shared")["modelSummaries"]) == 1


def _client(emulator: Any, key: str, secret: str) -> Any:
    import boto3

    return boto3.client(
        "bedrock",
        endpoint_url=emulator.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=NO_RETRY,
    )


def test_requests_must_be_signed_by_a_known_key(emulator):
    status, _ = raw(emulator, "GET", "/model-customization-jobs", Host=f"127.0.0.1:{emulator.port}")
    assert status == 200  # raw() signs with testing/testing
    req = urllib.request.Request(emulator.endpoint_url + "/model-customization-jobs")
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(req, timeout=10)
    assert unsigned.value.code == 403
    assert unsigned.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert "testing" in json.loads(unsigned.value.read())["message"]

    with pytest.raises(ClientError) as unknown:
        _client(emulator, "AKIAOTHERKEY", "testing").list_model_customization_jobs()
    error = unknown.value.response["Error"]
    assert (error["Code"], unknown.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "UnrecognizedClientException",
        403,
    )
    assert "AKIAOTHERKEY" in error["Message"] and "accepts: testing" in error["Message"]

    with pytest.raises(ClientError) as wrong:
        _client(emulator, "testing", "not-the-secret").list_model_customization_jobs()
    assert wrong.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert "not-the-secret" not in wrong.value.response["Error"]["Message"]


def test_a_tampered_body_or_an_old_signature_is_refused(emulator, job_request):
    url = emulator.endpoint_url + "/model-customization-jobs"
    body = json.dumps(job_request()).encode()
    req = signed_request(url, "POST", body, {"Content-Type": "application/json"})
    tampered = urllib.request.Request(
        url, data=body.replace(b"job-", b"jab-"), method="POST", headers=dict(req.headers)
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(tampered, timeout=10)
    assert exc.value.code == 403 and exc.value.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert _job_count(emulator) == 0

    from unittest import mock

    import botocore.auth

    with mock.patch.object(
        botocore.auth, "get_current_datetime", return_value=__import__("datetime").datetime(2020, 1, 1)
    ):
        old = signed_request(url, "POST", body, {"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(old, timeout=10)
    assert exc.value.code == 403 and "expired" in json.loads(exc.value.read())["message"]
    assert _job_count(emulator) == 0


def test_extra_key_pairs_and_no_auth(bedrock_emulator):
    s3 = bedrock_emulator.s3_endpoint_url
    with start_emulator(
        s3_endpoint_url=s3, credentials={"AKIATEAM": "team-secret", "testing": "testing"}
    ) as emu:
        assert (
            _client(emu, "AKIATEAM", "team-secret").list_model_customization_jobs()[
                "modelCustomizationJobSummaries"
            ]
            == []
        )
        assert _client(emu, "testing", "testing").list_custom_models()["modelSummaries"] == []
    with (
        start_emulator(s3_endpoint_url=s3, auth=False) as emu,
        urllib.request.urlopen(emu.endpoint_url + "/model-customization-jobs", timeout=10) as resp,
    ):
        assert resp.status == 200
