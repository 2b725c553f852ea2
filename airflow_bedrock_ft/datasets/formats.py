"""Record-shape detection and the rule-set parameters that differ between base models.

Shape detection tells a record of the wrong format ("a Converse record in a prompt/completion
dataset") from a record of the right format with a missing field, so the report can say
``format.mixed`` instead of a confusing ``field.required``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_bedrock_ft.core.models import DataFormat

CONVERSE_SCHEMA_VERSION = "bedrock-conversation-2024"

# Shape names returned by detect_shape().
PROMPT_COMPLETION = "prompt-completion"
CONVERSE = "converse"
STRING_MESSAGES = "string-messages"  # Claude 3 Haiku style (content is a string)
MESSAGES = "messages"  # has messages but not enough to tell which style
RFT = "rft"
CPT = "continued-pre-training"
INVOCATION_LOG = "invocation-log"
IMAGE_CAPTION = "image-caption"

#: Shapes a record may have for each expected format without being "the wrong format".
COMPATIBLE_SHAPES: Mapping[DataFormat, frozenset[str]] = {
    DataFormat.PROMPT_COMPLETION: frozenset({PROMPT_COMPLETION}),
    DataFormat.CONVERSE: frozenset({CONVERSE, MESSAGES}),
    DataFormat.DISTILLATION_PROMPTS: frozenset({CONVERSE, MESSAGES}),
    DataFormat.ANTHROPIC: frozenset({STRING_MESSAGES, MESSAGES}),
    DataFormat.RFT: frozenset({RFT, STRING_MESSAGES, CONVERSE, MESSAGES}),
    DataFormat.CONTINUED_PRE_TRAINING: frozenset({CPT}),
    DataFormat.INVOCATION_LOGS: frozenset({INVOCATION_LOG}),
    DataFormat.IMAGE_CAPTION: frozenset({IMAGE_CAPTION}),
}

#: Human description of each expected record shape, used in messages.
FORMAT_EXAMPLES: Mapping[DataFormat, str] = {
    DataFormat.PROMPT_COMPLETION: '{"prompt": "...", "completion": "..."}',
    DataFormat.CONVERSE: '{"schemaVersion": "bedrock-conversation-2024", "system": [{"text": "..."}], '
    '"messages": [{"role": "user", "content": [{"text": "..."}]}, '
    '{"role": "assistant", "content": [{"text": "..."}]}]}',
    DataFormat.DISTILLATION_PROMPTS: '{"schemaVersion": "bedrock-conversation-2024", '
    '"messages": [{"role": "user", "content": [{"text": "..."}]}]}',
    DataFormat.ANTHROPIC: '{"system": "...", "messages": [{"role": "user", "content": "..."}, '
    '{"role": "assistant", "content": "..."}]}',
    DataFormat.RFT: '{"messages": [{"role": "system", "content": "..."}, '
    '{"role": "user", "content": "..."}], '
    '"reference_answer": ...}',
    DataFormat.CONTINUED_PRE_TRAINING: '{"input": "..."}',
    DataFormat.INVOCATION_LOGS: "a Bedrock model-invocation log record (modelId, input, output)",
    DataFormat.IMAGE_CAPTION: '{"image-ref": "s3://...", "caption": "..."}',
}


def detect_shape(record: Mapping[str, Any]) -> str | None:
    """Best guess at which record format ``record`` was written in, or None."""
    if "messages" in record:
        if "reference_answer" in record:
            return RFT
        msgs = record["messages"]
        if isinstance(msgs, list):
            first = next((m for m in msgs if isinstance(m, dict)), None)
            if first is not None:
                content = first.get("content")
                if isinstance(content, list):
                    return CONVERSE
                if isinstance(content, str):
                    if any(isinstance(m, dict) and m.get("role") == "system" for m in msgs):
                        return RFT
                    return STRING_MESSAGES
        system = record.get("system")
        if isinstance(system, str):
            return STRING_MESSAGES
        if isinstance(system, list) or "schemaVersion" in record:
            return CONVERSE
        return MESSAGES
    if "prompt" in record and "completion" in record:
        return PROMPT_COMPLETION
    if "modelId" in record and ("input" in record or "output" in record):
        return INVOCATION_LOG
    if "input" in record:
        return CPT
    if "image-ref" in record:
        return IMAGE_CAPTION
    return None


SHAPE_FORMATS: Mapping[str, str] = {
    PROMPT_COMPLETION: DataFormat.PROMPT_COMPLETION.value,
    CONVERSE: DataFormat.CONVERSE.value,
    STRING_MESSAGES: DataFormat.ANTHROPIC.value,
    RFT: DataFormat.RFT.value,
    CPT: DataFormat.CONTINUED_PRE_TRAINING.value,
    INVOCATION_LOG: DataFormat.INVOCATION_LOGS.value,
    IMAGE_CAPTION: DataFormat.IMAGE_CAPTION.value,
    MESSAGES: "messages",
}

#: Nova's reserved strings (Nova User Guide; the aws-samples Nova validator's reserved-token
#: list, which adds the upper-case variants and "Thought:").
NOVA_RESERVED = (
    "System:", "SYSTEM:", "User:", "USER:", "Bot:", "BOT:", "Assistant:", "ASSISTANT:",
    "Thought:", "[EOS]", "<image>", "<video>",
)
#: Claude 3 Haiku: Anthropic's legacy turn markers (variants without the colon are allowed).
CLAUDE_RESERVED = ("\nHuman:", "\nAssistant:")

#: Caption length (min, max) characters for the image models (bedrock-facts §1.2).
CAPTION_LIMITS: Mapping[str, tuple[int, int]] = {
    "amazon.titan-image-generator-v1": (3, 1024),
    "amazon.nova-canvas-v1:0": (3, 1024),
    "amazon.titan-embed-image-v1": (1, 2560),
}

#: Llama 3.2 Vision counts at least this many tokens per image (one 560x560 tile).
LLAMA_IMAGE_MIN_TOKENS = 1601
