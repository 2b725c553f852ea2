"""Data, request builders and polling helpers shared by the emulator's HTTP tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from airflow_bedrock_ft.core.states import is_terminal

NOVA = "amazon.nova-micro-v1:0:128k"
ROLE = "arn:aws:iam::123456789012:role/BedrockFineTune"
NO_RETRY = Config(retries={"total_max_attempts": 1, "mode": "standard"})


def signed_request(
    url: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    key: tuple[str, str] = ("testing", "testing"),
    region: str = "us-east-1",
) -> Any:
    """A ``urllib`` request to ``url`` signed with SigV4 as an AWS SDK signs it."""
    import urllib.request

    aws = AWSRequest(method=method, url=url, data=body or b"", headers=dict(headers or {}))
    SigV4Auth(Credentials(*key), "bedrock", region).add_auth(aws)
    return urllib.request.Request(url, data=body, method=method, headers=dict(aws.headers.items()))


COUNTRIES = [
    ("France", "French"),
    ("Spain", "Spanish"),
    ("Germany", "German"),
    ("Italy", "Italian"),
    ("Japan", "Japanese"),
    ("Brazil", "Portuguese"),
    ("Poland", "Polish"),
    ("Greece", "Greek"),
    ("Sweden", "Swedish"),
    ("Turkey", "Turkish"),
    ("Egypt", "Arabic"),
    ("China", "Chinese"),
]


def converse_record(country: str, language: str) -> dict[str, Any]:
    """One Nova fine-tuning record (bedrock-conversation-2024)."""
    return {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "Answer in one sentence."}],
        "messages": [
            {"role": "user", "content": [{"text": f"What language is spoken in {country}?"}]},
            {"role": "assistant", "content": [{"text": f"The main language of {country} is {language}."}]},
        ],
    }


def jsonl(records: list[dict[str, Any]]) -> bytes:
    """Records as JSON Lines."""
    return ("\n".join(json.dumps(r) for r in records) + "\n").encode()


def wait_for(
    bedrock: Any, job: str, *, until: Callable[[dict[str, Any]], bool] | None = None, timeout: float = 30.0
) -> dict[str, Any]:
    """Poll GetModelCustomizationJob until ``until`` (default: a terminal status)."""
    until = until or (lambda j: is_terminal(j["status"]))
    deadline = time.monotonic() + timeout
    while True:
        got = bedrock.get_model_customization_job(jobIdentifier=job)
        if until(got):
            return got
        if time.monotonic() > deadline:
            raise AssertionError(
                f"job {job} did not reach the expected state: {got['status']} {got.get('statusDetails')}"
            )
        time.sleep(0.05)


def phase(job: dict[str, Any], name: str) -> str:
    """Status of one phase (``validation``, ``dataProcessing``, ``training``)."""
    return str(job["statusDetails"][f"{name}Details"]["status"])


def run_deferred_trigger(deferred: Any) -> dict[str, Any]:
    """Do what the triggerer does with a ``TaskDeferred``: rebuild the trigger from its
    serialized kwargs, run it to its one event and return the event's payload."""
    import asyncio

    from airflow.sdk.module_loading import import_string
    from airflow.sdk.serde import deserialize, serialize

    from airflow_bedrock_ft.hooks.bedrock_ft import close_shared_async_clients

    classpath, kwargs = deferred.trigger.serialize()
    trigger = import_string(classpath)(**deserialize(serialize(kwargs)))

    async def collect() -> list[Any]:
        try:
            return [event async for event in trigger.run()]
        finally:
            await close_shared_async_clients()

    events = asyncio.run(collect())
    assert len(events) == 1
    return dict(events[0].payload)

