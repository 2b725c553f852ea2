"""Catalog of the base models that Bedrock can customize, with their data formats and limits.

One table, read by request validation (customization types, hyperparameters), the dataset
validators (record format, record counts, token and file-size limits) and the emulator
(ListFoundationModels, which types a base model supports). Values come from
``bedrock-facts.md`` §1.2 and §2 (Bedrock User Guide, Nova User Guide); where the guide gives
no number, the value is marked ``unconfirmed`` in a comment and chosen conservatively.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field


class CustomizationType(str, enum.Enum):
    """Values of ``customizationType`` (botocore ``CustomizationType``)."""

    FINE_TUNING = "FINE_TUNING"
    CONTINUED_PRE_TRAINING = "CONTINUED_PRE_TRAINING"
    DISTILLATION = "DISTILLATION"
    REINFORCEMENT_FINE_TUNING = "REINFORCEMENT_FINE_TUNING"
    IMPORTED = "IMPORTED"


class DataFormat(str, enum.Enum):
    """Record shapes of training data (bedrock-facts §1.1)."""

    PROMPT_COMPLETION = "prompt-completion"  # {"prompt", "completion"}
    CONVERSE = "bedrock-conversation-2024"  # schemaVersion/system/messages with content blocks
    ANTHROPIC = "anthropic-messages"  # Claude 3 Haiku: system string, content strings
    CONTINUED_PRE_TRAINING = "continued-pre-training"  # {"input"}
    IMAGE_CAPTION = "image-caption"  # {"image-ref", "caption"}
    DISTILLATION_PROMPTS = "distillation-prompts"  # Converse, 1 user turn (+ optional golden answer)
    INVOCATION_LOGS = "invocation-logs"  # Bedrock model-invocation log records
    RFT = "rft-chat"  # OpenAI chat style + reference_answer


@dataclass(frozen=True)
class HyperParameter:
    """One documented hyperparameter of a model family, with its range and default."""

    name: str
    type: type  # int or float
    min: float
    max: float
    default: float | None

    def parse(self, raw: object) -> float | int:
        """Parse ``raw`` (Bedrock sends strings) to this parameter's type.

        Only plain ASCII numbers are accepted, the way the service reads them: an optional
        sign and digits for integers; for floats also a fraction and an exponent. No
        surrounding spaces, no underscores, no non-ASCII digits, no NaN or infinity (Python's
        ``int()`` and ``float()`` accept all of these). Python numbers of the right type are
        taken as they are.

        :raises ValueError: with the rule when the value is not a number of the right type.
        """
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw if self.type is int else float(raw)
        if isinstance(raw, float) and self.type is float and math.isfinite(raw):
            return raw
        text = raw if isinstance(raw, str) else None
        if self.type is int:
            if text is None or not _INT_RE.fullmatch(text):
                raise ValueError(f"must be an integer (ASCII digits with an optional sign), got {raw!r}")
            return int(text)
        if text is None or not _FLOAT_RE.fullmatch(text):
            raise ValueError(
                f"must be a decimal number (ASCII digits, optional sign, fraction and exponent), got {raw!r}"
            )
        return float(text)

    def check(self, raw: object) -> str | None:
        """Return the broken rule for ``raw``, or None when it is a valid value."""
        try:
            value = self.parse(raw)
        except ValueError as exc:
            return str(exc)
        if not (self.min <= value <= self.max):
            return f"must be between {_num(self.min)} and {_num(self.max)}, got {raw!r}"
        return None


# The service parses hyperparameter strings as Java numbers: plain ASCII only. Written out
# rather than with \d, which is Unicode in Python.
_INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _num(x: float) -> str:
    # repr is the shortest string that reads back as the same float: no precision lost.
    return str(int(x)) if float(x).is_integer() and abs(x) >= 1 else repr(float(x))


@dataclass(frozen=True)
class DataLimits:
    """Dataset limits for one base model and customization type.

    ``None`` means no documented limit. Token counts are estimated from characters with
    ``chars_per_token`` where no tokenizer is available (Titan's guide gives 6; the Claude
    validator uses 3; 4 is the common estimate elsewhere).
    """

    min_records: int | None = None  # train (+ validation where the guide says "sum")
    max_records: int | None = None  # train + validation
    max_train_records: int | None = None
    max_validation_records: int | None = None
    min_validation_records: int | None = None
    max_total_tokens: int | None = None  # input + output per record
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    # (largest batch size, token limit) pairs: Titan's per-record limit depends on batchSize.
    tokens_by_batch_size: tuple[tuple[int, int], ...] = ()
    max_train_bytes: int | None = None
    max_validation_bytes: int | None = None
    chars_per_token: float = 4.0
    max_images_per_record: int | None = None
    max_videos_per_record: int | None = None
    max_image_bytes: int | None = None
    max_video_bytes: int | None = None
    image_formats: frozenset[str] = frozenset()
    video_formats: frozenset[str] = frozenset()
    validation_allowed: bool = True

    def token_limit(self, batch_size: int | None = None) -> int | None:
        """Per-record token limit, taking the batch size into account where it matters."""
        if self.tokens_by_batch_size:
            bs = batch_size or 1
            for largest, limit in self.tokens_by_batch_size:
                if bs <= largest:
                    return limit
            return self.tokens_by_batch_size[-1][1]
        return self.max_total_tokens


@dataclass(frozen=True)
class Customization:
    """How one base model supports one customization type."""

    type: CustomizationType
    data_format: DataFormat
    limits: DataLimits
    hyperparameters: tuple[HyperParameter, ...] = ()

    def hyperparameter(self, name: str) -> HyperParameter | None:
        """The spec of hyperparameter ``name``, or None when the model has no such parameter."""
        for hp in self.hyperparameters:
            if hp.name == name:
                return hp
        return None

    def defaults(self) -> dict[str, str]:
        """Documented defaults, as Bedrock fills them in on GetModelCustomizationJob."""
        return {hp.name: _num(hp.default) for hp in self.hyperparameters if hp.default is not None}


@dataclass(frozen=True)
class ModelSpec:
    """A base model that can be customized."""

    model_id: str  # without the context suffix, e.g. "amazon.nova-lite-v1:0"
    name: str
    provider: str
    context_suffix: str  # appended for customization, e.g. ":300k"
    input_modalities: tuple[str, ...]
    customizations: Mapping[CustomizationType, Customization] = field(default_factory=dict)

    @property
    def customization_id(self) -> str:
        """The identifier used as ``baseModelIdentifier``, e.g. ``amazon.nova-lite-v1:0:300k``."""
        return self.model_id + self.context_suffix

    @property
    def identifiers(self) -> tuple[str, ...]:
        """The model ids Bedrock has for this model: the plain id and, where the model has
        one, the context-suffixed id it lists for customization. No other suffix exists."""
        if self.context_suffix:
            return (self.model_id, self.customization_id)
        return (self.model_id,)

    def accepts_identifier(self, identifier: str) -> bool:
        """True when ``identifier`` names this model as ``baseModelIdentifier`` may.

        That is one of :attr:`identifiers`, a foundation-model ARN ending in one, or a
        custom-model ARN (re-tuning a custom model) whose base model is one.
        """
        return base_model_id(identifier) in self.identifiers

    def supports(self, ctype: CustomizationType | str) -> bool:
        """True when this model accepts customization type ``ctype``."""
        return CustomizationType(ctype) in self.customizations

    def customization(self, ctype: CustomizationType | str) -> Customization:
        """The customization of type ``ctype``.

        :raises UnsupportedCustomizationError: when the model does not support it.
        """
        try:
            return self.customizations[CustomizationType(ctype)]
        except (KeyError, ValueError):
            supported = ", ".join(t.value for t in self.customizations) or "none"
            raise UnsupportedCustomizationError(
                f"Model {self.customization_id} does not support customization type {ctype}; "
                f"it supports: {supported}"
            ) from None


class UnknownModelError(LookupError):
    """Raised when a model identifier names no model in the catalog."""


class UnsupportedCustomizationError(ValueError):
    """Raised when a base model does not support the requested customization type."""


# --- hyperparameter tables (bedrock-facts §2) -------------------------------------------------

_HP = HyperParameter

TITAN_TEXT_HP = (
    _HP("epochCount", int, 1, 10, 5),
    _HP("batchSize", int, 1, 64, 1),
    _HP("learningRate", float, 0.0, 1.0, 1e-5),
    _HP("learningRateWarmupSteps", int, 0, 250, 5),
)
TITAN_PREMIER_HP = (
    _HP("epochCount", int, 1, 5, 2),
    _HP("batchSize", int, 1, 1, 1),
    _HP("learningRate", float, 1e-7, 1e-5, 1e-6),
    _HP("learningRateWarmupSteps", int, 0, 20, 5),
)
NOVA_HP = (
    _HP("epochCount", int, 1, 5, 2),
    _HP("learningRate", float, 1e-6, 1e-4, 1e-5),
    _HP("learningRateWarmupSteps", int, 0, 100, 10),
    # Not in the guide's table, but AWS's own Nova notebooks pass it (unconfirmed whether
    # Bedrock uses it); accepted so that those notebooks' requests validate.
    _HP("batchSize", int, 1, 1, None),
)
CLAUDE_HAIKU_HP = (
    _HP("epochCount", int, 1, 10, 2),
    _HP("batchSize", int, 4, 256, 32),
    _HP("learningRateMultiplier", float, 0.1, 2.0, 1.0),
    _HP("earlyStoppingThreshold", float, 0.0, 0.1, 0.001),
    _HP("earlyStoppingPatience", int, 1, 10, 2),
)
LLAMA_HP = (
    _HP("epochCount", int, 1, 10, 5),
    _HP("batchSize", int, 1, 1, 1),
    _HP("learningRate", float, 5e-6, 0.1, 1e-4),
)
COHERE_HP_COMMON = (
    _HP("epochCount", int, 1, 100, 1),
    _HP("learningRate", float, 5e-6, 0.1, 1e-5),
    _HP("earlyStoppingThreshold", float, 0.0, 0.1, 0.01),
    _HP("earlyStoppingPatience", int, 1, 10, 6),
    _HP("evalPercentage", float, 5.0, 50.0, 20.0),
)
TITAN_IMAGE_HP = (
    _HP("batchSize", int, 8, 192, 8),
    _HP("stepCount", int, 10, 20_000, 500),
    _HP("learningRate", float, 1e-7, 1e-4, 1e-5),
)
TITAN_MM_EMBED_HP = (
    _HP("epochCount", int, 1, 100, None),
    _HP("batchSize", int, 256, 9_216, 576),
    _HP("learningRate", float, 5e-8, 1.0, 5e-5),
)

GB = 1024**3
MB = 1024**2

_IMAGE_FORMATS = frozenset({"png", "jpeg", "gif", "webp"})
_VIDEO_FORMATS = frozenset({"mov", "mkv", "mp4", "webm"})

# --- limits (bedrock-facts §1.2) --------------------------------------------------------------


def _titan_ft(tokens_by_batch_size: tuple[tuple[int, int], ...]) -> DataLimits:
    # Record quota value unconfirmed (recalled 10,000).
    return DataLimits(
        max_records=10_000,
        max_train_bytes=1 * GB,
        max_validation_bytes=100 * MB,
        chars_per_token=6.0,
        tokens_by_batch_size=tokens_by_batch_size,
    )


_TITAN_CPT = DataLimits(
    max_records=100_000,
    max_input_tokens=4_096,
    max_train_bytes=10 * GB,
    max_validation_bytes=100 * MB,
    chars_per_token=6.0,
)  # sizes unconfirmed

_NOVA_TEXT = DataLimits(min_records=8, max_records=20_000, max_total_tokens=32_000)
_NOVA_MM = DataLimits(
    min_records=8,
    max_records=20_000,
    max_total_tokens=32_000,
    max_images_per_record=10,
    max_videos_per_record=1,
    max_image_bytes=10 * MB,
    max_video_bytes=50 * MB,
    image_formats=_IMAGE_FORMATS,
    video_formats=_VIDEO_FORMATS,
)
_HAIKU = DataLimits(
    min_records=32,
    max_records=10_000,
    max_train_records=10_000,
    max_validation_records=1_000,
    min_validation_records=32,
    max_total_tokens=32_000,
    max_train_bytes=10 * GB,
    max_validation_bytes=1 * GB,
    chars_per_token=3.0,
)
_LLAMA31 = DataLimits(
    min_records=100,
    max_records=10_000,
    max_train_records=10_000,
    max_validation_records=1_000,
    max_total_tokens=16_000,
    max_input_tokens=16_000,
    max_output_tokens=16_000,
)
_LLAMA32_TEXT = DataLimits(
    min_records=100,
    max_records=10_000,
    max_train_records=10_000,
    max_validation_records=1_000,
    max_total_tokens=16_000,
)
_LLAMA32_VISION = DataLimits(
    min_records=100,
    max_records=10_000,
    max_train_records=10_000,
    max_validation_records=1_000,
    max_total_tokens=16_000,
    max_images_per_record=10,
    max_image_bytes=10 * MB,
    image_formats=_IMAGE_FORMATS,
)
_LLAMA32_90B = DataLimits(
    min_records=100,
    max_records=10_000,
    max_train_records=10_000,
    max_validation_records=1_000,
    max_total_tokens=10_000,
    max_images_per_record=10,
    max_image_bytes=10 * MB,
    image_formats=_IMAGE_FORMATS,
)
_COHERE = DataLimits(
    min_records=32,
    max_train_records=10_000,
    max_validation_records=1_000,
    max_input_tokens=4_096,
    max_output_tokens=2_048,
)
_DISTILLATION = DataLimits(min_records=100, max_records=15_000, max_train_bytes=1 * GB)
_RFT = DataLimits(min_records=100, max_records=20_000)
_TITAN_IMAGE = DataLimits(
    min_records=5,
    max_records=10_000,
    max_image_bytes=50 * MB,
    image_formats=frozenset({"png", "jpeg"}),
    validation_allowed=False,
)
_TITAN_MM_EMBED = DataLimits(
    min_records=1_000,
    max_records=500_000,
    max_image_bytes=5 * MB,
    image_formats=frozenset({"png", "jpeg"}),
    validation_allowed=False,
)

FT, CPT, DIST, RFT = (
    CustomizationType.FINE_TUNING,
    CustomizationType.CONTINUED_PRE_TRAINING,
    CustomizationType.DISTILLATION,
    CustomizationType.REINFORCEMENT_FINE_TUNING,
)
_C = Customization

_RFT_CUSTOMIZATION = _C(RFT, DataFormat.RFT, _RFT)  # RFT hyperparameters are typed, in rftConfig


def _nova_distill() -> Customization:
    return _C(DIST, DataFormat.DISTILLATION_PROMPTS, _DISTILLATION)


def _m(
    model_id: str, name: str, suffix: str, modalities: tuple[str, ...], *customizations: Customization
) -> ModelSpec:
    return ModelSpec(
        model_id=model_id,
        name=name,
        provider=model_id.split(".", 1)[0],
        context_suffix=suffix,
        input_modalities=modalities,
        customizations={c.type: c for c in customizations},
    )


TEXT, IMAGE, VIDEO = "TEXT", "IMAGE", "VIDEO"

MODELS: tuple[ModelSpec, ...] = (
    _m(
        "amazon.titan-text-express-v1",
        "Titan Text G1 - Express",
        ":0:8k",
        (TEXT,),
        _C(FT, DataFormat.PROMPT_COMPLETION, _titan_ft(((1, 4_096), (4, 2_048))), TITAN_TEXT_HP),
        _C(CPT, DataFormat.CONTINUED_PRE_TRAINING, _TITAN_CPT, TITAN_TEXT_HP),
    ),
    _m(
        "amazon.titan-text-lite-v1",
        "Titan Text G1 - Lite",
        ":0:4k",
        (TEXT,),
        _C(FT, DataFormat.PROMPT_COMPLETION, _titan_ft(((2, 4_096), (6, 2_048))), TITAN_TEXT_HP),
        _C(CPT, DataFormat.CONTINUED_PRE_TRAINING, _TITAN_CPT, TITAN_TEXT_HP),
    ),
    _m(
        "amazon.titan-text-premier-v1:0",
        "Titan Text G1 - Premier",
        ":32k",
        (TEXT,),
        _C(FT, DataFormat.PROMPT_COMPLETION, _titan_ft(((1, 4_096),)), TITAN_PREMIER_HP),
    ),
    _m(
        "amazon.nova-micro-v1:0",
        "Nova Micro",
        ":128k",
        (TEXT,),
        _C(FT, DataFormat.CONVERSE, _NOVA_TEXT, NOVA_HP),
        _nova_distill(),
    ),
    _m(
        "amazon.nova-lite-v1:0",
        "Nova Lite",
        ":300k",
        (TEXT, IMAGE, VIDEO),
        _C(FT, DataFormat.CONVERSE, _NOVA_MM, NOVA_HP),
        _nova_distill(),
    ),
    _m(
        "amazon.nova-pro-v1:0",
        "Nova Pro",
        ":300k",
        (TEXT, IMAGE, VIDEO),
        _C(FT, DataFormat.CONVERSE, _NOVA_MM, NOVA_HP),
        _nova_distill(),
    ),
    _m(
        "amazon.nova-2-lite-v1:0",
        "Nova 2 Lite",
        ":256k",
        (TEXT, IMAGE, VIDEO),
        _C(FT, DataFormat.CONVERSE, _NOVA_MM, NOVA_HP),
        _RFT_CUSTOMIZATION,
    ),
    _m(
        "anthropic.claude-3-haiku-20240307-v1:0",
        "Claude 3 Haiku",
        ":200k",
        (TEXT,),
        _C(FT, DataFormat.ANTHROPIC, _HAIKU, CLAUDE_HAIKU_HP),
        _C(DIST, DataFormat.DISTILLATION_PROMPTS, _DISTILLATION),
    ),
    _m(
        "meta.llama3-1-8b-instruct-v1:0",
        "Llama 3.1 8B Instruct",
        ":128k",
        (TEXT,),
        _C(FT, DataFormat.PROMPT_COMPLETION, _LLAMA31, LLAMA_HP),
        _C(DIST, DataFormat.DISTILLATION_PROMPTS, _DISTILLATION),
    ),
    _m(
        "meta.llama3-1-70b-instruct-v1:0",
        "Llama 3.1 70B Instruct",
        ":128k",
        (TEXT,),
        _C(FT, DataFormat.PROMPT_COMPLETION, _LLAMA31, LLAMA_HP),
        _C(DIST, DataFormat.DISTILLATION_PROMPTS, _DISTILLATION),
    ),
    _m(
        "meta.llama3-2-1b-instruct-v1:0",
        "Llama 3.2 1B Instruct",
        ":128k",
        (TEXT,),
        _C(FT, DataFormat.CONVERSE, _LLAMA32_TEXT, LLAMA_HP),
    ),
    _m(
        "meta.llama3-2-3b-instruct-v1:0",
        "Llama 3.2 3B Instruct",
        ":128k",
        (TEXT,),
        _C(FT, DataFormat.CONVERSE, _LLAMA32_TEXT, LLAMA_HP),
    ),
    _m(
        "meta.llama3-2-11b-instruct-v1:0",
        "Llama 3.2 11B Vision Instruct",
        ":128k",
        (TEXT, IMAGE),
        _C(FT, DataFormat.CONVERSE, _LLAMA32_VISION, LLAMA_HP),
    ),
    _m(
        "meta.llama3-2-90b-instruct-v1:0",
        "Llama 3.2 90B Vision Instruct",
        ":128k",
        (TEXT, IMAGE),
        _C(FT, DataFormat.CONVERSE, _LLAMA32_90B, LLAMA_HP),
    ),
    _m(
        "meta.llama3-3-70b-instruct-v1:0",
        "Llama 3.3 70B Instruct",
        ":128k",
        (TEXT,),
        _C(FT, DataFormat.CONVERSE, _LLAMA32_TEXT, LLAMA_HP),
    ),
    _m(
        "cohere.command-text-v14",
        "Command",
        ":7:4k",
        (TEXT,),
        _C(FT, DataFormat.PROMPT_COMPLETION, _COHERE, (*COHERE_HP_COMMON, _HP("batchSize", int, 8, 8, 8))),
    ),
    _m(
        "cohere.command-light-text-v14",
        "Command Light",
        ":7:4k",
        (TEXT,),
        _C(FT, DataFormat.PROMPT_COMPLETION, _COHERE, (*COHERE_HP_COMMON, _HP("batchSize", int, 8, 32, 8))),
    ),
    _m(
        "amazon.titan-image-generator-v1",
        "Titan Image Generator G1",
        ":0",
        (TEXT, IMAGE),
        _C(FT, DataFormat.IMAGE_CAPTION, _TITAN_IMAGE, TITAN_IMAGE_HP),
    ),
    _m(
        "amazon.titan-embed-image-v1",
        "Titan Multimodal Embeddings G1",
        ":0",
        (TEXT, IMAGE),
        _C(FT, DataFormat.IMAGE_CAPTION, _TITAN_MM_EMBED, TITAN_MM_EMBED_HP),
    ),
    _m(
        "amazon.nova-canvas-v1:0",
        "Nova Canvas",
        "",
        (TEXT, IMAGE),
        _C(FT, DataFormat.IMAGE_CAPTION, _TITAN_IMAGE, TITAN_IMAGE_HP),
    ),
)

#: Models that may serve as a distillation teacher (not customizable themselves here).
TEACHER_MODELS: tuple[str, ...] = (
    "amazon.nova-premier-v1:0",
    "amazon.nova-pro-v1:0",
    "anthropic.claude-3-5-sonnet-20241022-v2:0",
    "meta.llama3-1-405b-instruct-v1:0",
    "meta.llama3-1-70b-instruct-v1:0",
)

_BY_ID: dict[str, ModelSpec] = {m.model_id: m for m in MODELS}
_BY_IDENTIFIER: dict[str, ModelSpec] = {ident: m for m in MODELS for ident in m.identifiers}
# Explicit [0-9] (Python's \d is Unicode) and fullmatch (Python's $ also matches before "\n").
_ARN_RE = re.compile(r"arn:aws(?:-[^:]+)?:bedrock:[a-z0-9-]*:[0-9]*:foundation-model/(?P<id>.+)")
_CUSTOM_ARN_RE = re.compile(
    r"arn:aws(?:-[^:]+)?:bedrock:[a-z0-9-]+:[0-9]{12}:custom-model/(?P<id>[^/]+)/[a-z0-9]{12}"
)
_SUFFIX_RE = re.compile(r":[0-9a-z]+\Z")


def base_model_id(identifier: str) -> str:
    """Strip an ARN prefix from ``identifier`` and return the model id as written.

    A custom-model ARN (re-tuning a custom model) yields the base model it was tuned from.
    """
    for regex in (_ARN_RE, _CUSTOM_ARN_RE):
        match = regex.fullmatch(identifier)
        if match:
            return match.group("id")
    return identifier


def on_demand_model_id(identifier: str) -> str:
    """The identifier to invoke a base model on demand with (Converse, InvokeModel).

    A customization id with its context suffix (``amazon.nova-micro-v1:0:128k``) or a
    foundation-model ARN of one becomes the model's on-demand id (``amazon.nova-micro-v1:0``):
    Bedrock serves the suffixed variants only through provisioned throughput. Anything else
    (on-demand ids, inference profiles, custom-model, deployment and provisioned-model ARNs,
    ids not in the catalog) is returned unchanged.
    """
    identifier = identifier.strip()
    match = _ARN_RE.match(identifier)
    model_id = match.group("id") if match else identifier
    for spec in MODELS:
        if spec.context_suffix and model_id == spec.customization_id:
            return spec.model_id
    if match and model_id in _BY_ID:
        return model_id
    return identifier


def model_family(identifier: str) -> ModelSpec | None:
    """The catalog model that ``identifier`` is a variant of, whatever its context suffix.

    Unlike :func:`find_model` this also answers for suffixes the model does not have
    (``amazon.nova-micro-v1:0:999k`` -> Nova Micro), so that an error can name the model and
    the identifiers it really has.
    """
    candidate = base_model_id(identifier)
    # Strip context suffixes one at a time: "amazon.titan-text-express-v1:0:8k" -> ":0" -> "".
    while True:
        if candidate in _BY_ID:
            return _BY_ID[candidate]
        stripped = _SUFFIX_RE.sub("", candidate)
        if stripped == candidate:
            return None
        candidate = stripped


def resolve_model(identifier: str) -> ModelSpec:
    """Find the catalog entry for any form Bedrock accepts for customization.

    Accepts one of a model's :attr:`ModelSpec.identifiers` (``amazon.nova-lite-v1:0:300k``,
    ``amazon.nova-lite-v1:0``), a foundation-model ARN of one, or a custom-model ARN (which
    resolves to its base model). A context suffix the model does not have is refused.

    :raises UnknownModelError: naming the model's identifiers when only the suffix is wrong,
        else listing the known ids.
    """
    spec = _BY_IDENTIFIER.get(base_model_id(identifier))
    if spec is not None:
        return spec
    family = model_family(identifier)
    if family is not None:
        raise UnknownModelError(
            f"{identifier!r} is not an identifier of {family.name}: it has no such context variant; "
            f"use one of {', '.join(family.identifiers)}"
        )
    known = ", ".join(m.customization_id for m in MODELS)
    raise UnknownModelError(f"Unknown base model {identifier!r}; customizable models: {known}")


def find_model(identifier: str) -> ModelSpec | None:
    """Like :func:`resolve_model` but returns None for an unknown model."""
    try:
        return resolve_model(identifier)
    except UnknownModelError:
        return None
