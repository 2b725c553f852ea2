"""bedrock-runtime ``InvokeModel`` and ``Converse`` answered by the emulator's own models.

A custom model answers with the TinyLM its job trained; a foundation model with
:func:`airflow_bedrock_ft.emulator.trainer.base_model`. The ``modelId`` may be a custom-model
deployment ARN (deployment ``Active``), a provisioned-model ARN (``InService``), or a foundation-model
id / ARN / cross-region inference-profile id. A custom-model ARN itself is refused by the
request validation, as botocore's ``modelId`` pattern does not admit one whose base model id
has a context suffix (real Bedrock wants a deployment or provisioned throughput); the resolver
still accepts one for callers that skip validation.

InvokeModel bodies follow the base model family: Nova ``messages-v1``, Titan
``inputText``/``results``, Llama ``prompt``/``generation``, Anthropic messages, Cohere
``prompt``/``generations``. Converse is the same for every family.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_bedrock_ft.core.models import find_model
from airflow_bedrock_ft.core.request import validate_operation
from airflow_bedrock_ft.emulator.catalog import embed, find_inference_model
from airflow_bedrock_ft.emulator.common import raise_problems
from airflow_bedrock_ft.emulator.errors import EmulatorError, not_found, validation

if TYPE_CHECKING:
    from airflow_bedrock_ft.emulator.backend import Backend

_PROFILE_RE = re.compile(r"^(us|eu|apac|global|us-gov|jp|au|ca)\.")
DEFAULT_MAX_TOKENS = 64
#: What Bedrock answers when Converse is called with a model that does not chat (embeddings).
NOT_A_CHAT_MODEL = (
    "This action doesn't support the model that you provided. Try again with a supported text or chat model."
)
MAX_TOKENS_CAP = 512


class Runtime:
    """Model invocation against a backend's custom models and the base-model catalog.

    :param backend: where custom models, deployments and provisioned throughput live.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._cache: dict[str, Any] = {}
        self._lock = threading.Lock()

    # --- model resolution ------------------------------------------------------------------

    def resolve(self, model_id: str) -> tuple[Any, str]:
        """(TinyLM, base model customization id) for a runtime ``modelId``."""
        from airflow_bedrock_ft.emulator import trainer

        backend = self.backend
        with backend.lock:
            if ":custom-model-deployment/" in model_id:
                dep = backend.find_deployment(model_id)
                if dep["status"] != "Active":
                    raise validation(
                        f"The custom model deployment {model_id} is not active (status {dep['status']})."
                    )
                return self._custom(dep["modelArn"])
            if ":provisioned-model/" in model_id:
                pt = backend.find_throughput(model_id)
                if pt["status"] != "InService":
                    raise validation(
                        f"The provisioned model {model_id} is not in service (status {pt['status']})."
                    )
                target = pt["modelArn"]
                if ":custom-model/" in target:
                    return self._custom(target)
                model_id = target
            elif ":custom-model/" in model_id:
                return self._custom(model_id)
        bare = model_id.rsplit("foundation-model/", 1)[-1] if model_id.startswith("arn:") else model_id
        bare = _PROFILE_RE.sub("", bare)
        spec = find_model(bare)
        if spec is None:
            listed = find_inference_model(bare)
            if listed is None:
                raise validation("The provided model identifier is invalid.")
            if listed.is_embedding:
                raise validation(NOT_A_CHAT_MODEL)
            return trainer.base_model(listed.model_id), listed.model_id
        return trainer.base_model(spec.customization_id), spec.customization_id

    def _custom(self, model_arn: str) -> tuple[Any, str]:
        from airflow_bedrock_ft.emulator.trainer import TinyLM

        model = self.backend.models.get(model_arn)
        if model is None:
            raise not_found(f"Could not find a custom model with identifier {model_arn}.")
        with self._lock:
            lm = self._cache.get(model_arn)
            if lm is None:
                data = self.backend.model_bytes(model_arn)
                if data is None:
                    raise EmulatorError("InternalServerException", "The model's weights are missing.")
                lm = TinyLM.from_bytes(data)
                self._cache[model_arn] = lm
        return lm, model["_baseModelId"]

    # --- operations ------------------------------------------------------------------------

    def invoke_model(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """InvokeModel with the request/response body of the model's family."""
        from airflow_bedrock_ft.emulator.trainer import record_text

        raise_problems(validate_operation("InvokeModel", params, service="bedrock-runtime"))
        embedder = find_inference_model(params["modelId"])
        if embedder is None or not embedder.is_embedding:
            lm, base_id = self.resolve(params["modelId"])
        try:
            body = json.loads(params.get("body") or b"")
        except ValueError:
            raise validation("Malformed input request: the body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise validation("Malformed input request: the body must be a JSON object.")
        if embedder is not None and embedder.is_embedding:
            answer = embed(embedder, body)
            return {"body": json.dumps(answer).encode(), "contentType": "application/json", "_base_id": ""}
        family = _family(base_id)
        max_tokens, temperature = _inference_settings(family, body)
        try:
            prompt, _ = record_text(body)
        except ValueError as exc:
            raise validation(
                f"Malformed input request: {exc}, please reformat your input and try again."
            ) from None
        gen = lm.generate(prompt, max_tokens=max_tokens, temperature=temperature)
        out = _family_response(family, gen, base_id)
        # "_base_id" is not an output member: serialization drops it; the stream uses it.
        return {"body": json.dumps(out).encode(), "contentType": "application/json", "_base_id": base_id}

    def _converse_generation(self, params: Mapping[str, Any]) -> tuple[Any, int]:
        from airflow_bedrock_ft.emulator.trainer import record_text

        raise_problems(validate_operation("Converse", params, service="bedrock-runtime"))

        lm, _ = self.resolve(params["modelId"])
        messages = params.get("messages") or []
        if not isinstance(messages, list) or not messages or messages[0].get("role") != "user":
            raise validation(
                "A conversation must start with a user message. Try again with a "
                "conversation that starts with a user message."
            )
        config = params.get("inferenceConfig") or {}
        max_tokens = int(config.get("maxTokens") or DEFAULT_MAX_TOKENS)
        temperature = float(config.get("temperature") or 0.0)
        record = {"system": params.get("system") or [], "messages": messages}
        prompt, _ = record_text(record)
        started = time.monotonic()
        gen = lm.generate(prompt, max_tokens=min(max_tokens, MAX_TOKENS_CAP), temperature=temperature)
        return gen, int((time.monotonic() - started) * 1000)

    def converse(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Converse: the same message format for every model."""
        gen, latency = self._converse_generation(params)
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": gen.text}]}},
            "stopReason": gen.stop_reason,
            "usage": _usage(gen),
            "metrics": {"latencyMs": latency},
        }

    def converse_stream(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """ConverseStream: the Converse answer as messageStart / deltas / stop / metadata events."""
        gen, latency = self._converse_generation(params)
        events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
        events += [
            ("contentBlockDelta", {"delta": {"text": piece}, "contentBlockIndex": 0})
            for piece in _pieces(gen.text)
        ]
        events += [
            ("contentBlockStop", {"contentBlockIndex": 0}),
            ("messageStop", {"stopReason": gen.stop_reason}),
            ("metadata", {"usage": _usage(gen), "metrics": {"latencyMs": latency}}),
        ]
        return {"stream": events}

    def invoke_model_with_response_stream(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """InvokeModelWithResponseStream: the family's streaming chunks, one ``chunk`` event each."""
        raise_problems(validate_operation("InvokeModelWithResponseStream", params, service="bedrock-runtime"))
        listed = find_inference_model(params["modelId"])
        if listed is not None and listed.is_embedding:
            raise validation(f"The model {params['modelId']} does not support response streaming.")
        full = self.invoke_model(params)
        base_id = full.pop("_base_id")
        answer = json.loads(full["body"])
        chunks = _stream_chunks(_family(base_id), answer)
        return {
            "body": [("chunk", {"bytes": json.dumps(c).encode()}) for c in chunks],
            "contentType": "application/json",
        }


def _family(base_id: str) -> str:
    for prefix, family in (
        ("amazon.nova", "nova"),
        ("amazon.titan-text", "titan"),
        ("meta.", "llama"),
        ("anthropic.", "anthropic"),
        ("cohere.", "cohere"),
    ):
        if base_id.startswith(prefix):
            return family
    raise validation(f"The model {base_id} does not support text generation in the emulator.")


def _number(value: Any, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _inference_settings(family: str, body: Mapping[str, Any]) -> tuple[int, float]:
    if family == "nova":
        config = body.get("inferenceConfig") or {}
        tokens = config.get("maxTokens", config.get("max_new_tokens"))
        temp = config.get("temperature")
    elif family == "titan":
        config = body.get("textGenerationConfig") or {}
        tokens, temp = config.get("maxTokenCount"), config.get("temperature")
    elif family == "llama":
        tokens, temp = body.get("max_gen_len"), body.get("temperature")
    else:
        tokens, temp = body.get("max_tokens"), body.get("temperature")
    max_tokens = int(_number(tokens, DEFAULT_MAX_TOKENS))
    if max_tokens < 1:
        raise validation("Malformed input request: the maximum number of tokens must be at least 1.")
    return min(max_tokens, MAX_TOKENS_CAP), max(0.0, _number(temp, 0.0))


def _family_response(family: str, gen: Any, base_id: str) -> dict[str, Any]:
    finished = gen.stop_reason == "end_turn"
    if family == "nova":
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": gen.text}]}},
            "stopReason": gen.stop_reason,
            "usage": {
                "inputTokens": gen.input_tokens,
                "outputTokens": gen.output_tokens,
                "totalTokens": gen.input_tokens + gen.output_tokens,
            },
        }
    if family == "titan":
        return {
            "inputTextTokenCount": gen.input_tokens,
            "results": [
                {
                    "tokenCount": gen.output_tokens,
                    "outputText": gen.text,
                    "completionReason": "FINISH" if finished else "LENGTH",
                }
            ],
        }
    if family == "llama":
        return {
            "generation": gen.text,
            "prompt_token_count": gen.input_tokens,
            "generation_token_count": gen.output_tokens,
            "stop_reason": "stop" if finished else "length",
        }
    if family == "anthropic":
        return {
            "id": f"msg_bdrk_{secrets.token_hex(12)}",
            "type": "message",
            "role": "assistant",
            "model": base_id.split(":")[0],
            "content": [{"type": "text", "text": gen.text}],
            "stop_reason": "end_turn" if finished else "max_tokens",
            "stop_sequence": None,
            "usage": {"input_tokens": gen.input_tokens, "output_tokens": gen.output_tokens},
        }
    return {
        "id": secrets.token_hex(16),
        "prompt": None,
        "generations": [
            {
                "id": secrets.token_hex(16),
                "text": gen.text,
                "finish_reason": "COMPLETE" if finished else "MAX_TOKENS",
            }
        ],
    }


def _usage(gen: Any) -> dict[str, int]:
    return {
        "inputTokens": gen.input_tokens,
        "outputTokens": gen.output_tokens,
        "totalTokens": gen.input_tokens + gen.output_tokens,
    }


_PIECE_RE = re.compile(r"\s*\S+|\s+")


def _pieces(text: str) -> list[str]:
    """The text in word-sized deltas (whitespace kept, so joining restores it)."""
    return _PIECE_RE.findall(text)


def _stream_chunks(family: str, answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Split a complete family-format answer into that family's streaming chunks."""
    if family == "nova":
        text = answer["output"]["message"]["content"][0]["text"]
        return [
            {"messageStart": {"role": "assistant"}},
            *({"contentBlockDelta": {"delta": {"text": p}, "contentBlockIndex": 0}} for p in _pieces(text)),
            {"contentBlockStop": {"contentBlockIndex": 0}},
            {"messageStop": {"stopReason": answer["stopReason"]}},
            {"metadata": {"usage": answer["usage"]}},
        ]
    if family == "titan":
        result = answer["results"][0]
        pieces = _pieces(result["outputText"]) or [""]
        return [
            {
                "outputText": p,
                "index": 0,
                "totalOutputTextTokenCount": result["tokenCount"] if i == len(pieces) - 1 else None,
                "completionReason": result["completionReason"] if i == len(pieces) - 1 else None,
                "inputTextTokenCount": answer["inputTextTokenCount"] if i == 0 else None,
            }
            for i, p in enumerate(pieces)
        ]
    if family == "llama":
        pieces = _pieces(answer["generation"]) or [""]
        return [
            {
                "generation": p,
                "prompt_token_count": answer["prompt_token_count"] if i == 0 else None,
                "generation_token_count": answer["generation_token_count"] if i == len(pieces) - 1 else None,
                "stop_reason": answer["stop_reason"] if i == len(pieces) - 1 else None,
            }
            for i, p in enumerate(pieces)
        ]
    if family == "anthropic":
        text = answer["content"][0]["text"]
        start = {key: answer[key] for key in ("id", "type", "role", "model")}
        return [
            {"type": "message_start", "message": {**start, "content": [], "usage": answer["usage"]}},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            *(
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
                for p in _pieces(text)
            ),
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": answer["stop_reason"]},
                "usage": {"output_tokens": answer["usage"]["output_tokens"]},
            },
            {"type": "message_stop"},
        ]
    return [dict(answer)]
