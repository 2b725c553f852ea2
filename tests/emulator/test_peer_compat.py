"""What peers' examples need besides customization: base models that cannot be customized
(embeddings, chat), the invocation logging configuration, and a measured Converse latency."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from airflow_bedrock_ft.emulator import start_emulator

EMBED = "amazon.titan-embed-text-v2:0"
SONNET = "anthropic.claude-3-5-sonnet-20240620-v1:0"
ROLE = "arn:aws:iam::123456789012:role/BedrockLogging"


def _embed(runtime: Any, **body: Any) -> dict[str, Any]:
    answer = runtime.invoke_model(modelId=EMBED, body=json.dumps(body), contentType="application/json")
    return dict(json.loads(answer["body"].read()))


def _code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


# --- models that exist but cannot be customized --------------------------------------------------


def test_inference_only_models_are_listed_without_customizations(bedrock):
    summaries = {m["modelId"]: m for m in bedrock.list_foundation_models()["modelSummaries"]}
    embed, sonnet = summaries[EMBED], summaries[SONNET]
    assert embed["customizationsSupported"] == [] and sonnet["customizationsSupported"] == []
    assert embed["outputModalities"] == ["EMBEDDING"] and embed["inputModalities"] == ["TEXT"]
    assert embed["responseStreamingSupported"] is False
    assert sonnet["outputModalities"] == ["TEXT"] and set(sonnet["inputModalities"]) == {"TEXT", "IMAGE"}
    assert sonnet["inferenceTypesSupported"] == ["ON_DEMAND"] and sonnet["providerName"] == "Anthropic"
    fine_tunable = {
        m["modelId"]
        for m in bedrock.list_foundation_models(byCustomizationType="FINE_TUNING")["modelSummaries"]
    }
    assert (
        EMBED not in fine_tunable
        and SONNET not in fine_tunable
        and "amazon.nova-micro-v1:0:128k" in fine_tunable
    )
    embeddings = {
        m["modelId"] for m in bedrock.list_foundation_models(byOutputModality="EMBEDDING")["modelSummaries"]
    }
    assert {EMBED, "amazon.titan-embed-text-v1"} <= embeddings and SONNET not in embeddings
    details = bedrock.get_foundation_model(
        modelIdentifier=f"arn:aws:bedrock:us-east-1::foundation-model/{SONNET}"
    )
    assert details["modelDetails"] == sonnet


@pytest.mark.parametrize("base", [EMBED, SONNET, f"arn:aws:bedrock:us-east-1::foundation-model/{SONNET}"])
def test_customizing_an_inference_only_model_is_a_validation_error(bedrock, job_request, base):
    with pytest.raises(ClientError) as err:
        bedrock.create_model_customization_job(**job_request(baseModelIdentifier=base))
    assert _code(err) == "ValidationException"
    assert "does not support model customization" in err.value.response["Error"]["Message"]
    assert bedrock.list_model_customization_jobs()["modelCustomizationJobSummaries"] == []


def test_titan_embeddings_are_deterministic_normalized_vectors(clients):
    runtime = clients["runtime"]
    first = _embed(runtime, inputText="What color is an orange?")
    again = _embed(runtime, inputText="What color is an orange?")
    assert first == again
    assert len(first["embedding"]) == 1024 and first["inputTextTokenCount"] == 6
    assert math.isclose(math.fsum(v * v for v in first["embedding"]), 1.0, rel_tol=1e-9)
    small = _embed(runtime, inputText="What color is an orange?", dimensions=256, normalize=False)
    assert len(small["embedding"]) == 256 and math.fsum(v * v for v in small["embedding"]) > 2

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    near = _embed(runtime, inputText="What colour is an orange fruit?")["embedding"]
    far = _embed(runtime, inputText="Quarterly revenue grew by 4%.")["embedding"]
    assert cosine(first["embedding"], near) > cosine(first["embedding"], far)

    with pytest.raises(ClientError) as err:
        _embed(runtime, inputText="x", dimensions=300)
    assert _code(err) == "ValidationException" and "dimensions" in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as err:
        _embed(runtime, prompt="x")
    assert _code(err) == "ValidationException" and "inputText" in err.value.response["Error"]["Message"]


def test_an_embeddings_model_does_not_converse(clients):
    with pytest.raises(ClientError) as err:
        clients["runtime"].converse(modelId=EMBED, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    assert _code(err) == "ValidationException"
    assert "doesn't support the model" in err.value.response["Error"]["Message"]


def test_chat_models_answer_in_their_familys_format(clients):
    runtime = clients["runtime"]
    claude = runtime.invoke_model(
        modelId="anthropic.claude-3-5-sonnet-20241022-v2:0",
        body=json.dumps(
            {
                "anthropic_version": "bedrock-2023-05-31",
                "max_tokens": 4000,
                "messages": [{"role": "user", "content": "What color is an orange?"}],
            }
        ),
    )
    answer = json.loads(claude["body"].read())
    assert (
        answer["type"] == "message"
        and answer["content"][0]["type"] == "text"
        and answer["content"][0]["text"]
    )
    assert answer["model"] == "anthropic.claude-3-5-sonnet-20241022-v2"
    llama = json.loads(
        runtime.invoke_model(modelId="meta.llama3-8b-instruct-v1:0", body=json.dumps({"prompt": "Hi"}))[
            "body"
        ].read()
    )
    assert llama["generation"] and llama["stop_reason"] in ("stop", "length")
    chat = runtime.converse(modelId=SONNET, messages=[{"role": "user", "content": [{"text": "Hello"}]}])
    assert chat["output"]["message"]["content"][0]["text"] and chat["usage"]["outputTokens"] > 0


# --- model invocation logging --------------------------------------------------------------------


def test_invocation_logging_configuration_round_trip(bedrock):
    assert bedrock.get_model_invocation_logging_configuration()["loggingConfig"] == {}
    config = {
        "cloudWatchConfig": {
            "logGroupName": "/bedrock/invocations",
            "roleArn": ROLE,
            "largeDataDeliveryS3Config": {"bucketName": "large-payloads", "keyPrefix": "big"},
        },
        "s3Config": {"bucketName": "invocation-logs", "keyPrefix": "logs/"},
        "textDataDeliveryEnabled": True,
        "imageDataDeliveryEnabled": False,
        "embeddingDataDeliveryEnabled": True,
    }
    bedrock.put_model_invocation_logging_configuration(loggingConfig=config)
    assert bedrock.get_model_invocation_logging_configuration()["loggingConfig"] == config
    replacement = {"s3Config": {"bucketName": "other-logs"}}
    bedrock.put_model_invocation_logging_configuration(loggingConfig=replacement)
    assert bedrock.get_model_invocation_logging_configuration()["loggingConfig"] == replacement
    bedrock.delete_model_invocation_logging_configuration()
    assert bedrock.get_model_invocation_logging_configuration()["loggingConfig"] == {}
    bedrock.delete_model_invocation_logging_configuration()  # nothing configured: still fine


@pytest.mark.parametrize(
    ("config", "named"),
    [
        (
            {"cloudWatchConfig": {"logGroupName": "g", "roleArn": "testrole"}},
            "loggingConfig.cloudWatchConfig.roleArn",
        ),
        ({"s3Config": {"bucketName": "ab"}}, "loggingConfig.s3Config.bucketName"),
        ({"s3Config": {"keyPrefix": "logs"}}, "loggingConfig.s3Config.bucketName"),
        ({"textDataDeliveryEnabled": True}, "destination"),
    ],
)
def test_invalid_logging_configuration_is_refused_naming_the_member(emulator, bedrock, config, named):
    unchecked = emulator.client("bedrock", config=Config(parameter_validation=False))  # as the AWS CLI can
    with pytest.raises(ClientError) as err:
        unchecked.put_model_invocation_logging_configuration(loggingConfig=config)
    assert _code(err) == "ValidationException" and named in err.value.response["Error"]["Message"]
    assert bedrock.get_model_invocation_logging_configuration()["loggingConfig"] == {}


def test_logging_configuration_survives_a_restart(bedrock_emulator, tmp_path):
    state = tmp_path / "state.sqlite"
    config = {"s3Config": {"bucketName": "invocation-logs", "keyPrefix": '{"$dt": "x"}'}}
    s3_url = bedrock_emulator.s3_endpoint_url
    with start_emulator(state_path=state, s3_endpoint_url=s3_url) as first:
        first.client("bedrock").put_model_invocation_logging_configuration(loggingConfig=config)
    with start_emulator(state_path=state, s3_endpoint_url=s3_url) as second:
        assert (
            second.client("bedrock").get_model_invocation_logging_configuration()["loggingConfig"] == config
        )


# --- Converse latency ------------------------------------------------------------------------------


def test_converse_latency_is_measured_and_counts_injected_latency(emulator, clients):
    runtime = clients["runtime"]
    messages = [{"role": "user", "content": [{"text": "Hello"}]}]
    plain = runtime.converse(modelId="amazon.nova-micro-v1:0", messages=messages)["metrics"]["latencyMs"]
    assert 0 <= plain < 5000
    emulator.set_faults(latency_ms=400)
    slow = runtime.converse(modelId="amazon.nova-micro-v1:0", messages=messages)["metrics"]["latencyMs"]
    assert slow >= 400
    stream = runtime.converse_stream(modelId="amazon.nova-micro-v1:0", messages=messages)["stream"]
    metadata = [event["metadata"] for event in stream if "metadata" in event]
    assert metadata and metadata[0]["metrics"]["latencyMs"] >= 400


# --- Airflow's Amazon provider example DAG (example_bedrock) ---------------------------------------


def test_the_amazon_provider_example_tasks_run_through_one_endpoint(emulator, monkeypatch):
    """The tasks example_bedrock runs by default (its long and restricted ones are skipped there),
    with a connection that names only ``endpoint_url``: S3 goes through the same endpoint."""
    pytest.importorskip("airflow.providers.amazon.aws.operators.bedrock")
    from airflow.providers.amazon.aws.operators.bedrock import BedrockInvokeModelOperator
    from airflow.providers.amazon.aws.operators.s3 import (
        S3CreateBucketOperator,
        S3CreateObjectOperator,
        S3DeleteBucketOperator,
    )

    conn = emulator.connection()
    del conn["extra"]["service_config"]
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(conn))
    bucket = "env1234-bedrock"
    S3CreateBucketOperator(task_id="create_bucket", bucket_name=bucket).execute(context={})
    S3CreateObjectOperator(
        task_id="upload_data",
        s3_bucket=bucket,
        s3_key="env1234/train.jsonl",
        data=json.dumps({"prompt": "what is AWS", "completion": "it's Amazon Web Services"}),
    ).execute(context={})
    assert emulator.client("s3").get_object(Bucket=bucket, Key="env1234/train.jsonl")["ContentLength"] > 0
    titan = BedrockInvokeModelOperator(
        task_id="invoke_titan", model_id=EMBED, input_data={"inputText": "What color is an orange?"}
    ).execute(context={})
    assert len(titan["embedding"]) == 1024 and titan["inputTextTokenCount"] == 6
    llama = BedrockInvokeModelOperator(
        task_id="invoke_llama", model_id="meta.llama3-8b-instruct-v1:0", input_data={"prompt": "What color?"}
    ).execute(context={})
    assert llama["generation"]
    claude = BedrockInvokeModelOperator(
        task_id="invoke_claude_model",
        model_id="anthropic.claude-3-5-sonnet-20241022-v2:0",
        input_data={
            "max_tokens": 4000,
            "anthropic_version": "bedrock-2023-05-31",
            "messages": [{"role": "user", "content": "\n\nHuman: What color?\n\nAssistant:"}],
        },
    ).execute(context={})
    assert claude["content"][0]["text"]
    S3DeleteBucketOperator(task_id="delete_bucket", bucket_name=bucket, force_delete=True).execute(context={})
    assert bucket not in [b["Name"] for b in emulator.client("s3").list_buckets()["Buckets"]]
