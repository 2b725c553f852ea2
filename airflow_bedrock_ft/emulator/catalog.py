"""Foundation models that exist in Bedrock but cannot be customized.

The customizable models (and their rules) live in :mod:`airflow_bedrock_ft.core.models`,
which the plugin validates requests against. The emulator also lists, describes and invokes a
few models that an account reaches for inference only: embeddings models, chat models used
as distillation teachers or as the "incumbent" in an evaluation, and the models Airflow's
Amazon provider and moto's tests name. ``ListFoundationModels`` gives them an empty
``customizationsSupported``; ``CreateModelCustomizationJob`` refuses them with a
``ValidationException``.

Embeddings (:func:`embed`) are deterministic: hashed word and character-trigram features, so
the same text always gives the same vector and texts sharing words are closer than texts that
share none.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_bedrock_ft.emulator.errors import validation

EMBEDDING = "EMBEDDING"


@dataclass(frozen=True)
class InferenceModel:
    """A foundation model that serves inference but takes no customization job.

    :param model_id: the id ListFoundationModels reports.
    :param name: ``modelName``.
    :param provider: ``providerName``.
    :param input_modalities: ``inputModalities``.
    :param output: ``TEXT`` or ``EMBEDDING``.
    :param inference_types: ``inferenceTypesSupported``.
    :param dimensions: embedding sizes the model accepts (first = default); empty for text.
    """

    model_id: str
    name: str
    provider: str
    input_modalities: tuple[str, ...]
    output: str
    inference_types: tuple[str, ...]
    dimensions: tuple[int, ...] = ()

    @property
    def is_embedding(self) -> bool:
        """True for an embeddings model (InvokeModel only, no Converse)."""
        return self.output == EMBEDDING

    def summary(self, arn: str) -> dict[str, Any]:
        """The ``FoundationModelSummary`` / ``FoundationModelDetails`` members."""
        return {
            "modelArn": arn,
            "modelId": self.model_id,
            "modelName": self.name,
            "providerName": self.provider,
            "inputModalities": list(self.input_modalities),
            "outputModalities": [self.output],
            "responseStreamingSupported": self.output == "TEXT",
            "customizationsSupported": [],
            "inferenceTypesSupported": list(self.inference_types),
            "modelLifecycle": {"status": "ACTIVE"},
        }


_ON_DEMAND = ("ON_DEMAND",)

INFERENCE_MODELS: tuple[InferenceModel, ...] = (
    InferenceModel(
        "amazon.titan-embed-text-v2:0",
        "Titan Text Embeddings V2",
        "Amazon",
        ("TEXT",),
        EMBEDDING,
        _ON_DEMAND,
        (1024, 512, 256),
    ),
    InferenceModel(
        "amazon.titan-embed-text-v1",
        "Titan Embeddings G1 - Text",
        "Amazon",
        ("TEXT",),
        EMBEDDING,
        _ON_DEMAND,
        (1536,),
    ),
    InferenceModel(
        "amazon.nova-premier-v1:0",
        "Nova Premier",
        "Amazon",
        ("TEXT", "IMAGE", "VIDEO"),
        "TEXT",
        ("INFERENCE_PROFILE",),
    ),
    InferenceModel(
        "anthropic.claude-3-sonnet-20240229-v1:0",
        "Claude 3 Sonnet",
        "Anthropic",
        ("TEXT", "IMAGE"),
        "TEXT",
        _ON_DEMAND,
    ),
    InferenceModel(
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "Claude 3.5 Sonnet",
        "Anthropic",
        ("TEXT", "IMAGE"),
        "TEXT",
        _ON_DEMAND,
    ),
    InferenceModel(
        "anthropic.claude-3-5-sonnet-20241022-v2:0",
        "Claude 3.5 Sonnet v2",
        "Anthropic",
        ("TEXT", "IMAGE"),
        "TEXT",
        _ON_DEMAND,
    ),
    InferenceModel(
        "meta.llama3-8b-instruct-v1:0", "Llama 3 8B Instruct", "Meta", ("TEXT",), "TEXT", _ON_DEMAND
    ),
    InferenceModel(
        "meta.llama3-1-405b-instruct-v1:0", "Llama 3.1 405B Instruct", "Meta", ("TEXT",), "TEXT", _ON_DEMAND
    ),
)

_BY_ID = {m.model_id: m for m in INFERENCE_MODELS}
_PROFILE_RE = re.compile(r"^(us|eu|apac|global|us-gov|jp|au|ca)\.")


def find_inference_model(identifier: str) -> InferenceModel | None:
    """The inference-only model a model id, foundation-model ARN or inference profile names."""
    bare = identifier.rsplit("foundation-model/", 1)[-1] if identifier.startswith("arn:") else identifier
    return _BY_ID.get(_PROFILE_RE.sub("", bare))


_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def token_count(text: str) -> int:
    """Words and punctuation marks, the emulator's token count for embeddings input."""
    return len(_TOKEN_RE.findall(text))


def embed(model: InferenceModel, body: Mapping[str, Any]) -> dict[str, Any]:
    """The Titan embeddings answer to an InvokeModel body ``{"inputText", "dimensions", "normalize"}``.

    :raises EmulatorError: ``ValidationException`` for a body Titan would refuse.
    """
    text = body.get("inputText")
    if not isinstance(text, str) or not text:
        raise validation("Malformed input request: #: required key [inputText] not found or empty.")
    known = (
        {"inputText", "dimensions", "normalize", "embeddingTypes"}
        if len(model.dimensions) > 1
        else {"inputText"}
    )
    unknown = set(body) - known
    if unknown:
        extra = sorted(unknown)[0]
        raise validation(f"Malformed input request: #: extraneous key [{extra}] is not permitted.")
    size = body.get("dimensions", model.dimensions[0])
    if isinstance(size, bool) or size not in model.dimensions:
        allowed = ", ".join(str(d) for d in model.dimensions)
        raise validation(
            f"Malformed input request: #/dimensions: {size!r} is not a valid enum value ({allowed})."
        )
    normalize = body.get("normalize", True)
    if not isinstance(normalize, bool):
        raise validation("Malformed input request: #/normalize: expected type: Boolean.")
    vector = _hashed_features(text, int(size))
    if normalize:
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        vector = [v / norm for v in vector]
    out: dict[str, Any] = {"embedding": vector, "inputTextTokenCount": token_count(text)}
    if "embeddingTypes" in body:
        out["embeddingsByType"] = {"float": vector}
    return out


def _hashed_features(text: str, size: int) -> list[float]:
    vector = [0.0] * size
    lowered = text.lower()
    features = _TOKEN_RE.findall(lowered)
    features += [lowered[i : i + 3] for i in range(max(0, len(lowered) - 2))]
    for feature in features:
        digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % size
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    return vector
