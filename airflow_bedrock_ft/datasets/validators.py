"""Per-record validators, one per record format, parameterised by the model catalog.

Shared machinery is in ``validator_base``; the Converse-format validators are in ``converse``.
``VALIDATORS`` maps each ``core.models.DataFormat`` to its validator class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_bedrock_ft.core.models import DataFormat

from . import formats as F
from .converse import ConverseValidator, DistillationPromptValidator
from .report import WARNING
from .validator_base import Emit, RecordValidator, ReservedScanner, alternation_message, quote, type_name

__all__ = [
    "VALIDATORS", "AnthropicValidator", "ContinuedPreTrainingValidator", "ConverseValidator",
    "DistillationPromptValidator", "Emit", "ImageCaptionValidator", "InvocationLogValidator",
    "PromptCompletionValidator", "RecordValidator", "ReservedScanner", "RftValidator",
]


class PromptCompletionValidator(RecordValidator):
    """``{"prompt", "completion"}`` records (Titan, Cohere, Llama 3.1)."""

    data_format = DataFormat.PROMPT_COMPLETION

    def check(self, record: dict[str, Any]) -> tuple[int, int, int] | None:
        prompt = record.get("prompt")
        completion = record.get("completion")
        # Fast path: the common, valid record.
        if type(prompt) is str and type(completion) is str and prompt and completion \
                and not prompt.isspace() and not completion.isspace():
            self.file_seen_expected = True
            return len(prompt), len(completion), 0
        if (prompt is None or completion is None) and self.wrong_shape(record):
            return None
        p = self.check_text(prompt, "prompt")
        c = self.check_text(completion, "completion")
        self.file_seen_expected = True
        return p, c, 0


class ContinuedPreTrainingValidator(RecordValidator):
    """``{"input"}`` records for continued pre-training."""

    data_format = DataFormat.CONTINUED_PRE_TRAINING
    allowed = frozenset({"input"})

    def check(self, record: dict[str, Any]) -> tuple[int, int, int] | None:
        text = record.get("input")
        if type(text) is str and text and not text.isspace() and len(record) == 1:
            self.file_seen_expected = True
            return len(text), 0, 0
        if text is None and self.wrong_shape(record):
            return None
        n = self.check_text(text, "input")
        self.check_unknown_keys(record, self.allowed)
        self.file_seen_expected = True
        return n, 0, 0


class ImageCaptionValidator(RecordValidator):
    """``{"image-ref", "caption"}`` records (Titan Image Generator, Titan MM Embeddings, Nova Canvas)."""

    data_format = DataFormat.IMAGE_CAPTION
    allowed = frozenset({"image-ref", "caption"})
    _EXTENSIONS = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "gif": "gif", "webp": "webp"}

    def check(self, record: dict[str, Any]) -> tuple[int, int, int] | None:
        ref = record.get("image-ref")
        caption = record.get("caption")
        if ref is None and caption is None and self.wrong_shape(record):
            return None
        self.file_seen_expected = True
        if type(ref) is str:
            self.check_s3_uri(ref, "image-ref", "image")
            ext = ref.rsplit(".", 1)[-1].lower() if "." in ref.rsplit("/", 1)[-1] else ""
            fmt = self._EXTENSIONS.get(ext)
            if fmt is None or fmt not in self.limits.image_formats:
                self.emit("media.format", f"image-ref {quote(ref, 60)} must be a "
                                          f"{' or '.join(sorted(self.limits.image_formats))} image")
            self.images += 1
        else:
            self.check_text(ref, "image-ref")
        n = self.check_text(caption, "caption")
        lo, hi = F.CAPTION_LIMITS.get(self.spec.model_id, (1, None))  # type: ignore[arg-type]
        if type(caption) is str and caption and (n < lo or (hi is not None and n > hi)):
            self.emit("caption.length", f"Caption has {n} characters; {self.spec.name} needs "
                                        f"{lo} to {hi} characters")
        self.check_unknown_keys(record, self.allowed)
        return n, 0, 0

class AnthropicValidator(RecordValidator):
    """Claude 3 Haiku records: ``system`` string, ``messages`` with string content."""

    data_format = DataFormat.ANTHROPIC
    allowed = frozenset({"system", "messages"})

    def check(self, record: dict[str, Any]) -> tuple[int, int, int] | None:
        emit = self.emit
        msgs = self.messages_of(record)
        if msgs is None:
            return None
        # A whole Converse record is the wrong format; a string-content record with one list
        # content is this format with a type error, reported per field below.
        if ("schemaVersion" in record or type(record.get("system")) is list
                or all(type(m) is dict and type(m.get("content")) is list for m in msgs)) \
                and self.wrong_shape(record):
            return None
        self.file_seen_expected = True
        in_chars = out_chars = 0
        if len(record) > 2 or any(k not in self.allowed for k in record):
            self.check_unknown_keys(record, self.allowed)
        system = record.get("system")
        if system is not None:
            if type(system) is str:
                in_chars += len(system)
                self.check_reserved(system, "system")
            else:
                emit("field.type", f"Field 'system' must be a string, got {type_name(system)}")
        if len(msgs) < 2:
            emit("messages.count", f"'messages' has {len(msgs)} item(s); at least 2 needed "
                                   f"(a user turn then an assistant turn)")
        prev: str | None = None
        for i, msg in enumerate(msgs):
            where = f"messages[{i}]"
            if type(msg) is not dict:
                emit("field.type", f"{where} must be an object with role and content, got {type_name(msg)}")
                prev = None
                continue
            role = msg.get("role")
            prev = self.check_role(role, i, prev, where)
            content = msg.get("content")
            if type(content) is str:
                if not content or content.isspace():
                    emit("empty_text", f"{where}.content is empty")
                self.check_reserved(content, f"{where}.content")
                if role == "assistant":
                    out_chars += len(content)
                else:
                    in_chars += len(content)
            elif content is None:
                emit("field.required", f"{where} is missing 'content'")
            else:
                emit("field.type", f"{where}.content must be a string, got {type_name(content)}")
        self.check_last_role(prev)
        return in_chars, out_chars, 0


class RftValidator(RecordValidator):
    """Reinforcement fine-tuning prompts: OpenAI chat style plus ``reference_answer``."""

    data_format = DataFormat.RFT

    def check(self, record: dict[str, Any]) -> tuple[int, int, int] | None:
        emit = self.emit
        msgs = self.messages_of(record)
        if msgs is None:
            return None
        self.file_seen_expected = True
        if not msgs:
            emit("messages.count", "'messages' is empty; at least one user prompt is needed")
            return None
        chars = 0
        prev: str | None = None
        users = 0
        for i, msg in enumerate(msgs):
            where = f"messages[{i}]"
            if type(msg) is not dict:
                emit("field.type", f"{where} must be an object with role and content, got {type_name(msg)}")
                continue
            role = msg.get("role")
            if role == "system":
                if i != 0:
                    emit("messages.role", f"{where}: a 'system' message may only come first")
            elif role == "user" or role == "assistant":
                if role == prev:
                    emit("messages.alternation", alternation_message(where, role))
                users += role == "user"
            elif role is None:
                emit("field.required", f"{where} is missing 'role'")
            else:
                emit("messages.role", f"{where}.role {quote(role)} must be 'system', 'user' or 'assistant'")
            prev = role if type(role) is str else None
            chars += self._content(msg.get("content"), where)
        if users == 0:
            emit("messages.no_user", "'messages' has no 'user' message to prompt the model with")
        elif prev != "user":
            emit("messages.last_role", f"The last message must have role 'user' (the prompt the model "
                                       f"answers), got {prev!r}")
        if "reference_answer" not in record:
            emit("rft.reference_answer", "Record has no 'reference_answer'; the grader receives only "
                                         "the extra fields as metadata", WARNING)
        return chars, 0, 0

    def _content(self, content: Any, where: str) -> int:
        if type(content) is str:
            if not content or content.isspace():
                self.emit("empty_text", f"{where}.content is empty")
            return len(content)
        if type(content) is list:
            total = 0
            for j, part in enumerate(content):
                text = part.get("text") if type(part) is dict else None
                if type(text) is not str:
                    self.emit("content.block", f"{where}.content[{j}] must be an object with a string 'text'")
                else:
                    total += len(text)
            if total == 0:
                self.emit("empty_text", f"{where}.content has no text")
            return total
        if content is None:
            self.emit("field.required", f"{where} is missing 'content'")
        else:
            self.emit("field.type", f"{where}.content must be a string, got {type_name(content)}")
        return 0


class InvocationLogValidator(RecordValidator):
    """Bedrock model-invocation log records used as distillation or RFT input."""

    data_format = DataFormat.INVOCATION_LOGS

    def check(self, record: dict[str, Any]) -> tuple[int, int, int] | None:
        emit = self.emit
        missing = [k for k in ("modelId", "input", "output") if k not in record]
        if missing:
            if self.wrong_shape(record):
                return None
            emit("field.required", f"Invocation-log record is missing {', '.join(map(repr, missing))}")
            return None
        self.file_seen_expected = True
        inp, out = record["input"], record["output"]
        if type(inp) is not dict or type(out) is not dict:
            emit("field.type", "Invocation-log 'input' and 'output' must be objects")
            return None
        in_tokens = inp.get("inputTokenCount")
        out_tokens = out.get("outputTokenCount")
        body = inp.get("inputBodyJson")
        chars = 0
        if type(body) is dict:
            messages = body.get("messages")
            if type(messages) is list:
                users = [m for m in messages if type(m) is dict and m.get("role") == "user"]
                if len(users) > 1:
                    emit("invocation_log.multi_turn",
                         f"Invocation has {len(users)} user messages; multi-turn conversations are not "
                         f"supported for distillation")
                for m in users:
                    content = m.get("content")
                    if type(content) is list:
                        if len(content) > 1 or any(type(b) is not dict or "text" not in b for b in content):
                            emit("invocation_log.multimodal",
                                 "Invocation user content must be a single text block; multi-modal "
                                 "input is not supported")
                        chars += sum(len(b["text"]) for b in content
                                     if type(b) is dict and type(b.get("text")) is str)
                    elif type(content) is str:
                        chars += len(content)
        extra = 0
        if type(in_tokens) is int:
            extra, chars = in_tokens, 0
        out_extra = out_tokens if type(out_tokens) is int else 0
        return chars, 0, extra + out_extra

VALIDATORS: Mapping[DataFormat, type[RecordValidator]] = {
    DataFormat.PROMPT_COMPLETION: PromptCompletionValidator,
    DataFormat.CONVERSE: ConverseValidator,
    DataFormat.ANTHROPIC: AnthropicValidator,
    DataFormat.CONTINUED_PRE_TRAINING: ContinuedPreTrainingValidator,
    DataFormat.IMAGE_CAPTION: ImageCaptionValidator,
    DataFormat.DISTILLATION_PROMPTS: DistillationPromptValidator,
    DataFormat.INVOCATION_LOGS: InvocationLogValidator,
    DataFormat.RFT: RftValidator,
}
