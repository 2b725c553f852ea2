"""Clients in moto's server-mode style: every service through ONE endpoint, and
``POST /moto-api/reset`` (unsigned, no body, as moto's decorator sends it) forgetting it all."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from airflow_bedrock_ft.emulator import start_emulator

from .helpers import COUNTRIES, NO_RETRY, NOVA, ROLE, converse_record, jsonl, wait_for


def one_endpoint(emulator: Any, service: str) -> Any:
    """A client as moto's server mode builds it: the one endpoint for every service."""
    return boto3.client(
        service,
        endpoint_url=emulator.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=NO_RETRY,
    )


def post(url: str, body: bytes | None = None, **headers: str) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_s3_and_bedrock_share_one_endpoint_and_moto_reset_forgets_both(emulator):
    s3 = one_endpoint(emulator, "s3")
    bedrock = one_endpoint(emulator, "bedrock")
    bucket = f"moto-style-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="data/train.jsonl", Body=jsonl([converse_record(*c) for c in COUNTRIES]))
    # The same S3 answers on its own port: the objects are the embedded server's.
    own_port = emulator.client("s3")
    assert own_port.get_object(Bucket=bucket, Key="data/train.jsonl")["Body"].read().startswith(b"{")

    job_arn = bedrock.create_model_customization_job(
        jobName="moto-style-job",
        customModelName="moto-style-model",
        roleArn=ROLE,
        baseModelIdentifier=NOVA,
        trainingDataConfig={"s3Uri": f"s3://{bucket}/data/train.jsonl"},
        outputDataConfig={"s3Uri": f"s3://{bucket}/out/"},
        hyperParameters={"epochCount": "1"},
        jobTags=[{"key": "team", "value": "a"}],
    )["jobArn"]
    job = wait_for(bedrock, "moto-style-job")
    assert job["status"] == "Completed", job.get("failureMessage")
    bedrock.tag_resource(resourceARN=job_arn, tags=[{"key": "stage", "value": "dev"}])
    tags = bedrock.list_tags_for_resource(resourceARN=job_arn)["tags"]
    assert {(t["key"], t["value"]) for t in tags} == {("team", "a"), ("stage", "dev")}
    listed = bedrock.list_model_customization_jobs()["modelCustomizationJobSummaries"]
    assert [j["jobArn"] for j in listed] == [job_arn]
    model = bedrock.get_custom_model(modelIdentifier="moto-style-model")
    assert model["jobArn"] == job_arn
    # The job wrote its metrics to the bucket, through the same S3.
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="out/")["Contents"]]
    assert any(k.endswith("step_wise_training_metrics.csv") for k in keys), keys
    bedrock.put_model_invocation_logging_configuration(
        loggingConfig={
            "s3Config": {"bucketName": bucket, "keyPrefix": "logs"},
            "textDataDeliveryEnabled": True,
        }
    )
    assert (
        bedrock.get_model_invocation_logging_configuration()["loggingConfig"]["s3Config"]["bucketName"]
        == bucket
    )

    status, doc = post(emulator.endpoint_url + "/moto-api/reset")  # what moto's decorator sends
    assert (status, doc) == (200, {"status": "ok"})

    assert bedrock.list_model_customization_jobs()["modelCustomizationJobSummaries"] == []
    assert bedrock.list_custom_models()["modelSummaries"] == []
    assert bedrock.get_model_invocation_logging_configuration()["loggingConfig"] == {}
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == []
    with pytest.raises(ClientError) as err:
        bedrock.list_tags_for_resource(resourceARN=job_arn)
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_s3_bodies_travel_unchanged_through_the_shared_endpoint(emulator):
    s3 = one_endpoint(emulator, "s3")
    bucket = f"bodies-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    packed = gzip.compress(b"line\n" * 1000)
    s3.put_object(Bucket=bucket, Key="a.gz", Body=packed, ContentEncoding="gzip", Metadata={"origin": "test"})
    big = bytes(range(256)) * (6 * 4096)  # 6 MiB, past the Bedrock body limit
    s3.put_object(Bucket=bucket, Key="big.bin", Body=big)

    got = s3.get_object(Bucket=bucket, Key="a.gz")
    assert got["Body"].read() == packed  # not decompressed on the way
    assert got["ContentEncoding"] == "gzip" and got["Metadata"] == {"origin": "test"}
    assert s3.head_object(Bucket=bucket, Key="big.bin")["ContentLength"] == len(big)
    assert s3.get_object(Bucket=bucket, Key="big.bin", Range="bytes=10-19")["Body"].read() == big[10:20]
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "big.bin"})
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.read() == big
    s3.delete_object(Bucket=bucket, Key="a.gz")
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="a.gz")
    assert err.value.response["Error"]["Code"] == "404"
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=f"missing-{uuid.uuid4().hex[:8]}", Key="x")
    assert err.value.response["Error"]["Code"] == "NoSuchBucket"  # S3's own XML error, passed through


def test_unsigned_s3_paths_are_bedrock_requests_unless_auth_is_off(emulator):
    bucket = f"unsigned-{uuid.uuid4().hex[:8]}"
    one_endpoint(emulator, "s3").create_bucket(Bucket=bucket)
    req = urllib.request.Request(f"{emulator.endpoint_url}/{bucket}", method="GET")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 403
    assert err.value.headers["x-amzn-ErrorType"].startswith("MissingAuthenticationTokenException")

    # (Embedded S3 servers in one process share moto's state, so this bucket name is reused.)
    with start_emulator(auth=False, admin_token="auto") as open_emu:
        s3 = one_endpoint(open_emu, "s3")
        s3.put_object(Bucket=bucket, Key="k", Body=b"anonymous read", ACL="public-read")
        with urllib.request.urlopen(f"{open_emu.endpoint_url}/{bucket}/k", timeout=10) as resp:
            assert resp.read() == b"anonymous read"
        # With an admin token, moto's reset needs it too.
        status, doc = post(open_emu.endpoint_url + "/moto-api/reset")
        assert status == 401 and "admin token" in doc["message"]
        assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
        status, _ = post(open_emu.endpoint_url + "/moto-api/reset", **open_emu.admin_headers())
        assert status == 200
        assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_other_sites_cannot_reset_through_the_moto_api(emulator, bedrock, job_request):
    bedrock.create_model_customization_job(**job_request())
    url = emulator.endpoint_url + "/moto-api/reset"
    status, doc = post(url, b"", Origin="http://evil.example")
    assert status == 403 and "evil.example" in doc["message"]
    status, doc = post(url, b"x=1", **{"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415
    status, doc = post(url, b"", **{"Content-Type": "text/plain"})
    assert status == 415
    req = urllib.request.Request(url, method="GET")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 405
    assert len(bedrock.list_model_customization_jobs()["modelCustomizationJobSummaries"]) == 1


def test_a_stalled_s3_upload_is_answered_408(emulator, monkeypatch):
    import socket
    import time

    bucket = f"stall-{uuid.uuid4().hex[:8]}"
    one_endpoint(emulator, "s3").create_bucket(Bucket=bucket)
    monkeypatch.setattr(emulator.app, "s3_stall_timeout", 1.0)
    scope = "Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + "0" * 64
    head = (
        f"PUT /{bucket}/half HTTP/1.1\r\nHost: 127.0.0.1:{emulator.port}\r\n"
        f"Authorization: AWS4-HMAC-SHA256 {scope}\r\nContent-Length: 100\r\n\r\n"
    )
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"0123456789")
        answer = sock.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 408") and "RequestTimeoutException" in answer
    assert 0.9 <= time.monotonic() - started < 8
    with pytest.raises(ClientError):
        one_endpoint(emulator, "s3").head_object(Bucket=bucket, Key="half")
