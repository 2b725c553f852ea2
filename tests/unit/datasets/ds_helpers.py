"""Record builders and file writers for the dataset tests (valid examples from the fact sheet)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from airflow_bedrock_ft.core.models import resolve_model

BUCKET = "ft-data"
SV = "bedrock-conversation-2024"

NOVA_LITE = "amazon.nova-lite-v1:0:300k"
NOVA_MICRO = "amazon.nova-micro-v1:0:128k"
LLAMA31 = "meta.llama3-1-8b-instruct-v1:0:128k"
LLAMA32_1B = "meta.llama3-2-1b-instruct-v1:0:128k"
LLAMA32_11B = "meta.llama3-2-11b-instruct-v1:0:128k"
LLAMA32_90B = "meta.llama3-2-90b-instruct-v1:0:128k"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0:200k"
TITAN_EXPRESS = "amazon.titan-text-express-v1:0:8k"
TITAN_LITE = "amazon.titan-text-lite-v1:0:4k"
COHERE = "cohere.command-text-v14:7:4k"
TITAN_IMAGE = "amazon.titan-image-generator-v1:0"
NOVA_2_LITE = "amazon.nova-2-lite-v1:0:256k"


def pc(i: int = 0, prompt: str | None = None, completion: str | None = None) -> dict[str, Any]:
    return {"prompt": prompt if prompt is not None else f"What is {i} plus {i}?",
            "completion": completion if completion is not None else f"It is {2 * i}."}


def converse(i: int = 0, *, system: str | None = "You are a careful calculator.", turns: int = 1,
             user_extra: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for t in range(turns):
        content: list[dict[str, Any]] = [dict(b) for b in user_extra] if t == 0 else []
        content.append({"text": f"Question {i}.{t}: what is {i} times {t + 2}?"})
        messages.append({"role": "user", "content": content})
        messages.append({"role": "assistant", "content": [{"text": f"The answer is {i * (t + 2)}."}]})
    record: dict[str, Any] = {"schemaVersion": SV, "messages": messages}
    if system is not None:
        record["system"] = [{"text": system}]
    return record


def image_block(uri: str = f"s3://{BUCKET}/images/cat.png", fmt: str = "png") -> dict[str, Any]:
    return {"image": {"format": fmt, "source": {"s3Location": {"uri": uri, "bucketOwner": "123456789012"}}}}


def video_block(uri: str = f"s3://{BUCKET}/videos/clip.mp4", fmt: str = "mp4") -> dict[str, Any]:
    return {"video": {"format": fmt, "source": {"s3Location": {"uri": uri}}}}


def haiku(i: int = 0, turns: int = 1) -> dict[str, Any]:
    messages = []
    for t in range(turns):
        messages.append({"role": "user", "content": f"Summarise ticket {i}.{t}."})
        messages.append({"role": "assistant", "content": f"Ticket {i}.{t} asks for a refund."})
    return {"system": "You summarise support tickets.", "messages": messages}


def cpt(i: int = 0) -> dict[str, Any]:
    return {"input": f"Paragraph {i} of the company handbook describes the refund policy."}


def distill(i: int = 0, golden: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {
        "schemaVersion": SV,
        "system": [{"text": "Answer briefly."}],
        "messages": [{"role": "user", "content": [{"text": f"Name a prime above {i}."}]}],
    }
    if golden:
        record["messages"].append({"role": "assistant", "content": [{"text": "Seven."}]})
    return record


def rft(i: int = 0) -> dict[str, Any]:
    return {
        "messages": [{"role": "system", "content": "Solve step by step."},
                     {"role": "user", "content": f"What is {i} + {i}?"}],
        "reference_answer": {"value": 2 * i},
        "difficulty": "easy",
    }


def invocation_log(i: int = 0) -> dict[str, Any]:
    return {
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": "2025-01-01T00:00:00Z",
        "accountId": "123456789012", "region": "us-east-1", "requestId": f"req-{i}",
        "operation": "Converse", "modelId": "amazon.nova-pro-v1:0",
        "input": {"inputContentType": "application/json",
                  "inputBodyJson": {"messages": [{"role": "user", "content": [{"text": f"Question {i}"}]}]},
                  "inputTokenCount": 12},
        "output": {"outputContentType": "application/json",
                   "outputBodyJson": {"output": {"message": {"role": "assistant",
                                                             "content": [{"text": "Answer"}]}}},
                   "outputTokenCount": 5},
        "requestMetadata": {"project": "support"},
    }


def image_caption(i: int = 0) -> dict[str, Any]:
    return {"image-ref": f"s3://{BUCKET}/images/img{i}.png", "caption": f"A red bicycle number {i}."}


def dumps(record: Any) -> bytes:
    return orjson.dumps(record)


def write_lines(path: Path, lines: Iterable[bytes | str | Mapping[str, Any]], *, newline: bytes = b"\n",
                trailing_newline: bool = True) -> Path:
    out = []
    for line in lines:
        if isinstance(line, Mapping):
            out.append(orjson.dumps(line))
        elif isinstance(line, str):
            out.append(line.encode())
        else:
            out.append(line)
    data = newline.join(out) + (newline if trailing_newline and out else b"")
    path.write_bytes(data)
    return path


def min_records(model: str, ctype: str = "FINE_TUNING") -> int:
    limits = resolve_model(model).customization(ctype).limits
    return max(limits.min_records or 1, 10)


def dataset_with(path: Path, model: str, make: Any, bad: Any | None = None, *, at: int = 3,
                 ctype: str = "FINE_TUNING", n: int | None = None) -> Path:
    """A dataset of valid records from ``make(i)`` with ``bad`` (record or raw line) at line ``at``."""
    count = n if n is not None else min_records(model, ctype)
    lines: list[Any] = [make(i) for i in range(count)]
    if bad is not None:
        lines.insert(at - 1, copy.deepcopy(bad) if isinstance(bad, dict) else bad)
    return write_lines(path, lines)


def error_rules(report: Any) -> set[tuple[str, int | None]]:
    return {(p.rule, p.line) for p in report.problems if p.is_error}
