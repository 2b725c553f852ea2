"""bedrock-runtime: InvokeModel and Converse on foundation models and on trained custom models,
through custom-model deployments and provisioned throughput."""

from __future__ import annotations

import json
import time

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from .helpers import wait_for


def invoke(runtime, model_id: str, body: dict) -> dict:
    response = runtime.invoke_model(modelId=model_id, body=json.dumps(body), contentType="application/json")
    assert response["contentType"] == "application/json"
    return json.loads(response["body"].read())


def test_invoke_model_in_each_family_format(clients):
    runtime = clients["runtime"]
    nova = invoke(
        runtime,
        "amazon.nova-micro-v1:0",
        {
            "schemaVersion": "messages-v1",
            "messages": [{"role": "user", "content": [{"text": "Hello there"}]}],
            "inferenceConfig": {"maxTokens": 8},
        },
    )
    assert nova["output"]["message"]["role"] == "assistant"
    assert isinstance(nova["output"]["message"]["content"][0]["text"], str)
    assert nova["stopReason"] in ("end_turn", "max_tokens")
    assert 1 <= nova["usage"]["outputTokens"] <= 8
    titan = invoke(
        runtime,
        "amazon.titan-text-express-v1",
        {"inputText": "Hello", "textGenerationConfig": {"maxTokenCount": 5}},
    )
    assert titan["results"][0]["completionReason"] in ("FINISH", "LENGTH")
    assert titan["results"][0]["tokenCount"] <= 5 and titan["inputTextTokenCount"] >= 1
    llama = invoke(runtime, "us.meta.llama3-1-8b-instruct-v1:0", {"prompt": "Hello", "max_gen_len": 4})
    assert llama["stop_reason"] in ("stop", "length") and llama["generation_token_count"] <= 4
    claude = invoke(
        runtime,
        "anthropic.claude-3-haiku-20240307-v1:0",
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 4,
            "messages": [{"role": "user", "content": "Hello"}],
        },
    )
    assert claude["type"] == "message" and claude["content"][0]["type"] == "text"


def test_unknown_model_and_bad_body_are_validation_errors(clients):
    runtime = clients["runtime"]
    with pytest.raises(ClientError) as exc:
        runtime.invoke_model(modelId="acme.unknown-v1", body=b"{}")
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        runtime.invoke_model(modelId="amazon.nova-micro-v1:0", body=b"not json")
    assert exc.value.response["Error"]["Code"] == "ValidationException"


def test_custom_model_answers_through_deployment_and_provisioned_throughput(emulator, clients, job_request):
    bedrock, runtime = clients["bedrock"], clients["runtime"]
    job = wait_for(
        bedrock,
        bedrock.create_model_customization_job(
            **job_request(hyperParameters={"epochCount": "5", "learningRate": "0.0001"})
        )["jobArn"],
    )
    model_arn = job["outputModelArn"]
    emulator.set_config(time_scale=0.001)  # deployment 480 s -> 0.48 s
    created = bedrock.create_custom_model_deployment(modelDeploymentName="dep-1", modelArn=model_arn)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    dep_arn = created["customModelDeploymentArn"]
    assert dep_arn.startswith("arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/")
    assert (
        bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=dep_arn)["status"] == "Creating"
    )
    with pytest.raises(ClientError) as exc:
        runtime.converse(modelId=dep_arn, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    deadline = time.monotonic() + 10
    while bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=dep_arn)["status"] != "Active":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    listed = bedrock.list_custom_model_deployments(statusEquals="Active")["modelDeploymentSummaries"]
    assert [d["customModelDeploymentArn"] for d in listed] == [dep_arn]

    question = "What language is spoken in France?"
    answer = runtime.converse(
        modelId=dep_arn,
        system=[{"text": "Answer in one sentence."}],
        messages=[{"role": "user", "content": [{"text": question}]}],
        inferenceConfig={"maxTokens": 20},
    )
    text = answer["output"]["message"]["content"][0]["text"]
    assert "French" in text, text  # the fine-tuned model learned its training data
    assert answer["usage"]["outputTokens"] >= 1
    base = runtime.converse(
        modelId="amazon.nova-micro-v1:0",
        system=[{"text": "Answer in one sentence."}],
        messages=[{"role": "user", "content": [{"text": question}]}],
        inferenceConfig={"maxTokens": 20},
    )
    assert base["output"]["message"]["content"][0]["text"] != text

    nova_body = {
        "schemaVersion": "messages-v1",
        "system": [{"text": "Answer in one sentence."}],
        "messages": [{"role": "user", "content": [{"text": question}]}],
        "inferenceConfig": {"maxTokens": 20},
    }
    via_invoke = invoke(runtime, dep_arn, nova_body)
    assert via_invoke["output"]["message"]["content"][0]["text"] == text

    pt = bedrock.create_provisioned_model_throughput(
        modelUnits=1, provisionedModelName="pt-1", modelId=model_arn
    )
    assert pt["ResponseMetadata"]["HTTPStatusCode"] == 201
    pt_arn = pt["provisionedModelArn"]
    deadline = time.monotonic() + 10
    while bedrock.get_provisioned_model_throughput(provisionedModelId=pt_arn)["status"] != "InService":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert invoke(runtime, pt_arn, nova_body)["output"]["message"]["content"][0]["text"] == text
    # As in botocore's modelId pattern, a custom-model ARN itself cannot be invoked.
    with pytest.raises(ClientError) as exc:
        invoke(runtime, model_arn, nova_body)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    summaries = bedrock.list_provisioned_model_throughputs()["provisionedModelSummaries"]
    assert [p["provisionedModelArn"] for p in summaries] == [pt_arn]

    with pytest.raises(ClientError) as exc:
        bedrock.delete_custom_model(modelIdentifier=model_arn)
    assert exc.value.response["Error"]["Code"] == "ConflictException"
    bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=dep_arn)
    bedrock.delete_provisioned_model_throughput(provisionedModelId=pt_arn)
    with pytest.raises(ClientError) as exc:
        bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=dep_arn)
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
    bedrock.delete_custom_model(modelIdentifier=model_arn)


def test_streaming_converse_and_invoke_reassemble_the_full_answer(clients):
    runtime = clients["runtime"]
    messages = [{"role": "user", "content": [{"text": "Tell me about languages"}]}]
    full = runtime.converse(
        modelId="amazon.nova-micro-v1:0", messages=messages, inferenceConfig={"maxTokens": 12}
    )
    streamed = runtime.converse_stream(
        modelId="amazon.nova-micro-v1:0", messages=messages, inferenceConfig={"maxTokens": 12}
    )
    events = list(streamed["stream"])
    assert next(iter(events[0])) == "messageStart" and next(iter(events[-1])) == "metadata"
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert text == full["output"]["message"]["content"][0]["text"]
    assert events[-2]["messageStop"]["stopReason"] == full["stopReason"]
    assert events[-1]["metadata"]["usage"] == full["usage"]

    body = {"inputText": "Hello", "textGenerationConfig": {"maxTokenCount": 10}}
    whole = invoke(runtime, "amazon.titan-text-express-v1", body)
    response = runtime.invoke_model_with_response_stream(
        modelId="amazon.titan-text-express-v1", body=json.dumps(body)
    )
    chunks = [json.loads(e["chunk"]["bytes"]) for e in response["body"]]
    assert "".join(c["outputText"] for c in chunks) == whole["results"][0]["outputText"]
    assert chunks[-1]["completionReason"] == whole["results"][0]["completionReason"]


def test_converse_requests_are_validated_against_the_shape(emulator):
    # Skip boto3's own checks so that the request reaches the server as a raw caller sends it.
    runtime = emulator.client("bedrock-runtime", config=Config(parameter_validation=False))
    with pytest.raises(ClientError) as exc:
        runtime.converse(
            modelId="amazon.nova-micro-v1:0",
            messages=[{"role": "user", "content": [{"text": "hi"}]}],
            inferenceConfig={"maxTokens": 0},
        )
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert "inferenceConfig.maxTokens" in exc.value.response["Error"]["Message"]
