"""Validators for ``bedrock-conversation-2024`` records: fine-tuning and distillation prompts."""

from __future__ import annotations

from typing import Any

from airflow_bedrock_ft.core.models import DataFormat

from . import formats as F
from .report import ERROR
from .validator_base import RecordValidator, quote, type_name

_SYSTEM_ROLE_HINT = " (put the system prompt in the top-level 'system' field)"


class ConverseValidator(RecordValidator):
    """``bedrock-conversation-2024`` records: Nova and Llama 3.2/3.3 fine-tuning.

    Fixes the official validators' gaps: Llama's missing alternation check, per-record (not
    per-message) media counts, image/video mixing across the whole dataset, and the Nova
    reserved strings in system text too.
    """

    data_format = DataFormat.CONVERSE
    allowed = frozenset({"schemaVersion", "system", "messages"})
    min_messages = 2
    max_messages: int | None = None
    last_must_be_assistant = True
    require_schema_version = False
    single_text_block = False
    message_keys: frozenset[str] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        nova = self.spec.model_id.startswith("amazon.nova")
        # Nova accepts any schemaVersion string; the Llama validator requires the exact value.
        self.strict_schema_version = not nova or self.require_schema_version
        self.max_system_blocks: int | None = None if nova else 1
        self.image_tokens = F.LLAMA_IMAGE_MIN_TOKENS if self.spec.provider == "meta" else 0
        self.set_fast_limits()

    def set_fast_limits(self) -> None:
        """Limits as plain ints for the fast path (no limit = a number no record reaches)."""
        self.fast_max_system = self.max_system_blocks if self.max_system_blocks is not None else 1 << 30
        self.fast_max_messages = self.max_messages if self.max_messages is not None else 1 << 30

    def check(self, record: dict[str, Any]) -> tuple[int, int, int] | None:
        """Fast path for the common valid text record; anything unusual goes to ``check_full``.

        The fast path emits nothing, so falling back to the full check never reports twice.
        Structure errors surface as KeyError/TypeError, which is cheaper than testing types.
        """
        if self.single_text_block:
            return self.check_full(record)
        version = record.get("schemaVersion")
        system = record.get("system")
        # Counting the known keys finds any unknown one without building a key set.
        if len(record) != 1 + (version is not None) + (system is not None):
            return self.check_full(record)
        if version != F.CONVERSE_SCHEMA_VERSION and (version is not None or self.require_schema_version) \
                and (self.strict_schema_version or type(version) is not str):
            return self.check_full(record)
        scanner = self.reserved
        # Texts that contain a trigger character of a reserved string; scanned exactly below.
        suspects: list[str] = []
        scan = scanner is not None
        t1, t2, t3 = scanner.triggers if scanner is not None else ("", "", "")
        in_chars = out_chars = 0
        try:
            if system is not None:
                if type(system) is not list or not system or len(system) > self.fast_max_system:
                    return self.check_full(record)
                for block in system:
                    text = block["text"]
                    if len(block) != 1 or type(text) is not str:
                        return self.check_full(record)
                    in_chars += len(text)
                    if scan and (t1 in text or t2 in text or t3 in text):
                        suspects.append(text)
            msgs = record["messages"]
            if type(msgs) is not list or not self.min_messages <= len(msgs) <= self.fast_max_messages:
                return self.check_full(record)
            expect = "user"
            for msg in msgs:
                if msg["role"] != expect:
                    return self.check_full(record)
                content = msg["content"]
                if type(content) is not list:
                    return self.check_full(record)
                if len(content) == 1:  # the usual single text block, unrolled
                    block = content[0]
                    text = block["text"]
                    if type(text) is not str or not text or len(block) != 1:
                        return self.check_full(record)
                    length = len(text)
                    if scan and (t1 in text or t2 in text or t3 in text):
                        suspects.append(text)
                else:
                    length = 0
                    for block in content:
                        text = block["text"]
                        if len(block) != 1 or type(text) is not str:
                            return self.check_full(record)
                        length += len(text)
                        if scan and (t1 in text or t2 in text or t3 in text):
                            suspects.append(text)
                    if not length:
                        return self.check_full(record)
                if expect == "user":
                    in_chars += length
                    expect = "assistant"
                else:
                    out_chars += length
                    expect = "user"
        except (KeyError, TypeError):
            return self.check_full(record)
        if self.last_must_be_assistant and expect != "user":
            return self.check_full(record)
        if suspects and scanner is not None and any(scanner.find(t) is not None for t in suspects):
            return self.check_full(record)
        self.file_seen_expected = True
        return in_chars, out_chars, 0

    def check_full(self, record: dict[str, Any]) -> tuple[int, int, int] | None:
        """All rules, reporting every problem of the record."""
        emit = self.emit
        msgs = self.messages_of(record)
        if msgs is None:
            return None
        self.file_seen_expected = True
        in_chars = 0
        out_chars = 0
        if len(record) > 3 or any(k not in self.allowed for k in record):
            self.check_unknown_keys(record, self.allowed)
        version = record.get("schemaVersion")
        if version is None:
            if self.require_schema_version:
                emit("field.required", f"Missing required field 'schemaVersion' "
                                       f"(must be {F.CONVERSE_SCHEMA_VERSION!r})")
        elif type(version) is not str:
            emit("field.type", f"Field 'schemaVersion' must be a string, got {type_name(version)}")
        elif self.strict_schema_version and version != F.CONVERSE_SCHEMA_VERSION:
            emit("schema_version", f"schemaVersion {quote(version)} must be {F.CONVERSE_SCHEMA_VERSION!r}")
        system = record.get("system")
        if system is not None:
            in_chars += self._system(system)
        n = len(msgs)
        if n < self.min_messages:
            turns = "a user turn then an assistant turn" if self.min_messages > 1 else "a user turn"
            emit("messages.count",
                 f"'messages' has {n} item(s); at least {self.min_messages} needed ({turns})")
        elif self.max_messages is not None and n > self.max_messages:
            emit("messages.count", f"'messages' has {n} items; at most {self.max_messages} allowed "
                                   f"for {self.spec.name} ({self.customization.type.value}, single turn)")
        prev: str | None = None
        images = videos = 0
        reserved = self.reserved
        for i, msg in enumerate(msgs):
            where = f"messages[{i}]"
            if type(msg) is not dict:
                emit("field.type", f"{where} must be an object with role and content, got {type_name(msg)}")
                prev = None
                continue
            keys = self.message_keys
            if keys is not None and (len(msg) > 2 or any(k not in keys for k in msg)):
                self.check_unknown_keys(msg, keys, f" in {where}")
            role = msg.get("role")
            prev = self.check_role(role, i, prev, where, _SYSTEM_ROLE_HINT)
            content = msg.get("content")
            if type(content) is not list:
                if content is None:
                    emit("field.required", f"{where} is missing 'content'")
                elif type(content) is str:
                    emit("field.type", f"{where}.content must be an array of content blocks "
                                       f"([{{\"text\": ...}}]), got a string")
                else:
                    emit("field.type", f"{where}.content must be an array, got {type_name(content)}")
                continue
            if not content:
                emit("content.empty", f"{where}.content is empty")
                continue
            if self.single_text_block and len(content) != 1:
                emit("content.count", f"{where}.content has {len(content)} blocks; exactly one text block "
                                      f"is allowed")
            text_len = 0
            media = 0
            for j, block in enumerate(content):
                if type(block) is not dict:
                    emit("content.block", f"{where}.content[{j}] must be an object, got {type_name(block)}")
                    continue
                text = block.get("text")
                if text is not None:
                    if type(text) is str:
                        text_len += len(text)
                        if reserved is not None:
                            self.check_reserved(text, f"{where}.content[{j}].text")
                    else:
                        emit("field.type",
                             f"{where}.content[{j}].text must be a string, got {type_name(text)}")
                    if len(block) > 1 and ("image" in block or "video" in block):
                        emit("content.block", f"{where}.content[{j}] has text and media in one block; "
                                              f"use one block each")
                elif "image" in block or "video" in block:
                    kind = "image" if "image" in block else "video"
                    if self.single_text_block:
                        emit("media.not_supported", f"{where}.content[{j}] is a {kind}; "
                                                    f"{self.customization.type.value} prompts are text only")
                    else:
                        self.check_media(kind, block[kind], f"{where}.content[{j}]", role)
                    media += 1
                    if kind == "image":
                        images += 1
                    else:
                        videos += 1
                else:
                    emit("content.block", f"{where}.content[{j}] needs one of 'text', 'image' or 'video'")
            if text_len == 0 and media == 0:
                emit("empty_text", f"{where} has empty text content")
            if role == "assistant":
                out_chars += text_len
            else:
                in_chars += text_len
        if self.last_must_be_assistant:
            self.check_last_role(prev)
        if images or videos:
            self.count_media(images, videos)
        return in_chars, out_chars, images * self.image_tokens

    def _system(self, system: Any) -> int:
        emit = self.emit
        if type(system) is not list:
            if type(system) is str:
                emit("field.type", "Field 'system' must be an array of {\"text\": ...} blocks, got a string")
            else:
                emit("field.type", f"Field 'system' must be an array, got {type_name(system)}")
            return 0
        if self.require_schema_version and not system:
            emit("system.count", "'system' is empty; give one {\"text\": ...} block or leave it out")
        if self.max_system_blocks is not None and len(system) > self.max_system_blocks:
            emit("system.count", f"'system' has {len(system)} blocks; {self.spec.name} accepts "
                                 f"{self.max_system_blocks}")
        total = 0
        for k, block in enumerate(system):
            text = block.get("text") if type(block) is dict else None
            if type(text) is not str:
                emit("system.block", f"system[{k}] must be an object with a string 'text'")
                continue
            if type(block) is dict and len(block) > 1 and self.require_schema_version:
                self.check_unknown_keys(block, frozenset({"text"}), f" in system[{k}]")
            total += len(text)
            if self.reserved is not None:
                self.check_reserved(text, f"system[{k}].text")
        return total


class DistillationPromptValidator(ConverseValidator):
    """Distillation prompts in Converse format (rules of the aws-samples distillation validator)."""

    data_format = DataFormat.DISTILLATION_PROMPTS
    unknown_field_severity = ERROR
    min_messages = 1
    last_must_be_assistant = False
    require_schema_version = True
    single_text_block = True
    message_keys = frozenset({"role", "content"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_system_blocks = 1
        # Anthropic and Llama students learn from single-turn prompts only; Nova allows more.
        self.max_messages = None if self.spec.model_id.startswith("amazon.nova") else 2
        self.set_fast_limits()
