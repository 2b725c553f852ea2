"""Per-record validators, one per record format, parameterised by the model catalog.

Each validator's ``check(record)`` reports problems through ``emit(rule, message, severity)``
and returns ``(input_chars, output_chars, extra_input_tokens)`` for the token estimate, or
None when the record is too broken to measure. The caller (``validate.py``) knows the file and
line, turns the characters into estimated tokens and applies the per-record token limits, so
those rules live in one place for every format.

Hot paths avoid regexes and keep to ``type(x) is str`` checks and ``str`` methods: the
validator must keep up with JSON parsing on gigabyte files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from airflow_bedrock_ft.core.models import Customization, DataFormat, DataLimits, ModelSpec

from . import formats as F
from .report import ERROR, WARNING

Emit = Callable[..., None]  # emit(rule, message, severity=ERROR)

_S3_PATH_RE = re.compile(r"^[\w\-/\.]+$")


class ReservedScanner:
    """Finds reserved strings in text faster than a regex alternation.

    Strings that end in ``:`` (most of them) are found by jumping from colon to colon and
    testing ``str.endswith`` with the whole tuple; the others with ``in``. Text without any
    colon costs a couple of C-level scans.
    """

    def __init__(self, tokens: Iterable[str]) -> None:
        toks = tuple(tokens)
        self.colon_tokens = tuple(t for t in toks if t.endswith(":"))
        self.other_tokens = tuple(t for t in toks if not t.endswith(":"))
        # A few characters such that every reserved string contains one of them: text without
        # any of them needs no scan. Rare characters are preferred.
        triggers: list[str] = []
        for tok in toks:
            char = next((c for c in "\n[<>]:" if c in tok), tok[0])
            if char not in triggers:
                triggers.append(char)
        self.exact = len(triggers) <= 3
        self.triggers = tuple((triggers * 3)[:3]) if self.exact else ("", "", "")
        by_first: dict[str, list[str]] = {}
        for tok in self.other_tokens:
            by_first.setdefault(tok[0], []).append(tok)
        self.groups = tuple((c, tuple(group)) for c, group in by_first.items())

    def find(self, text: str) -> str | None:
        """The first reserved string found in ``text``, or None."""
        for first, group in self.groups:
            if first in text:
                for tok in group:
                    if tok in text:
                        return tok
        colon = self.colon_tokens
        if colon:
            i = text.find(":")
            while i != -1:
                if text.endswith(colon, 0, i + 1):
                    for tok in colon:
                        if text.endswith(tok, 0, i + 1):
                            return tok
                i = text.find(":", i + 1)
        return None


def _q(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)


class RecordValidator:
    """Base class: shared state, the shape-mismatch rule and media/reserved helpers."""

    data_format: DataFormat = DataFormat.PROMPT_COMPLETION
    unknown_field_severity = WARNING
    allowed_keys: frozenset[str] | None = None

    def __init__(self, spec: ModelSpec, customization: Customization, *, emit: Emit,
                 hyperparameters: Mapping[str, str] | None = None, media_bucket: str | None = None) -> None:
        self.spec = spec
        self.customization = customization
        self.limits: DataLimits = customization.limits
        self.emit = emit
        self.hyperparameters = dict(hyperparameters or {})
        self.media_bucket = media_bucket
        self.reserved: ReservedScanner | None = None
        if spec.provider == "amazon" and spec.model_id.startswith("amazon.nova") and \
                self.data_format in (DataFormat.CONVERSE, DataFormat.DISTILLATION_PROMPTS):
            self.reserved = ReservedScanner(F.NOVA_RESERVED)
        elif spec.provider == "anthropic":
            self.reserved = ReservedScanner(F.CLAUDE_RESERVED)
        self.compatible = F.COMPATIBLE_SHAPES[self.data_format]
        self.seen_image = False
        self.seen_video = False
        self.mixed_media_reported = False
        self.images = 0
        self.videos = 0
        self.start_file()

    # -- per file ---------------------------------------------------------------------------

    def start_file(self) -> None:
        """Reset the per-file state used by the mixed-format rule."""
        self.file_seen_expected = False
        self.file_first_other: str | None = None

    def check(self, record: dict[str, Any]) -> tuple[int, int, int] | None:  # pragma: no cover
        raise NotImplementedError

    # -- helpers ----------------------------------------------------------------------------

    def wrong_shape(self, record: Mapping[str, Any]) -> bool:
        """Report a record written in another format; True when it was one."""
        shape = F.detect_shape(record)
        if shape is None or shape in self.compatible:
            return False
        name = F.SHAPE_FORMATS.get(shape, shape)
        if self.file_seen_expected or (self.file_first_other is not None and self.file_first_other != shape):
            self.emit("format.mixed",
                      f"Record is in {name} format but earlier records of this file are in another "
                      f"format; a file must use one format ({self.data_format.value} for "
                      f"{self.spec.customization_id})")
        else:
            self.emit("format.wrong",
                      f"Record is in {name} format; {self.spec.customization_id} "
                      f"({self.customization.type.value}) needs {F.FORMAT_EXAMPLES[self.data_format]}")
        if self.file_first_other is None:
            self.file_first_other = shape
        return True

    def seen_expected(self) -> None:
        self.file_seen_expected = True

    def check_reserved(self, text: str, where: str) -> None:
        scanner = self.reserved
        if scanner is not None:
            tok = scanner.find(text)
            if tok is not None:
                self.emit("reserved_string",
                          f"{where} contains the reserved string {tok!r}, which "
                          f"{self.spec.name} does not allow in training data")

    def check_unknown_keys(self, record: Mapping[str, Any], allowed: frozenset[str], where: str = "") -> None:
        for key in record:
            if key not in allowed:
                self.emit("unknown_field",
                          f"Unexpected field {key!r}{where}; allowed: {', '.join(sorted(allowed))}",
                          self.unknown_field_severity)

    def check_text(self, value: Any, field: str, *, required: bool = True) -> int:
        """Check a required non-empty string field; return its length (0 when broken)."""
        if type(value) is str:
            if not value or value.isspace():
                self.emit("empty_text", f"Field {field!r} is empty")
            return len(value)
        if value is None:
            if required:
                self.emit("field.required", f"Missing required field {field!r}")
        else:
            self.emit("field.type", f"Field {field!r} must be a string, got {_type_name(value)} {_q(value)}")
        return 0

    def check_media(self, kind: str, media: Any, where: str, role: str | None) -> None:
        """Rules for one image/video content block (Converse format)."""
        formats = self.limits.image_formats if kind == "image" else self.limits.video_formats
        if not formats:
            self.emit("media.not_supported",
                      f"{where} has a {kind} but {self.spec.name} accepts "
                      f"{', '.join(m.lower() for m in self.spec.input_modalities)} input only"
                      if kind.upper() not in self.spec.input_modalities else
                      f"{where} has a {kind} but {self.customization.type.value} with "
                      f"{self.spec.name} accepts text only")
            return
        if role == "assistant":
            self.emit("media.assistant", f"{where}: assistant messages may contain text only, found a {kind}")
        if type(media) is not dict:
            self.emit("field.type", f"{where}.{kind} must be an object with format and source")
            return
        fmt = media.get("format")
        if type(fmt) is not str:
            self.emit("field.required",
                      f"{where}.{kind}.format is required (one of {', '.join(sorted(formats))})")
        elif fmt.lower() not in formats:
            self.emit("media.format",
                      f"{where}.{kind}.format {fmt!r} is not supported; "
                      f"use one of {', '.join(sorted(formats))}")
        source = media.get("source")
        loc = source.get("s3Location") if type(source) is dict else None
        uri = loc.get("uri") if type(loc) is dict else None
        if type(uri) is not str:
            if type(source) is dict and "bytes" in source:
                self.emit("media.source",
                          f"{where}.{kind}.source must be an s3Location; inline bytes are not accepted "
                          f"in training data")
            else:
                self.emit("field.required", f"{where}.{kind}.source.s3Location.uri is required")
            return
        self.check_s3_uri(uri, f"{where}.{kind}")
        owner = loc.get("bucketOwner") if type(loc) is dict else None
        if owner is not None and (type(owner) is not str or not (len(owner) == 12 and owner.isdigit())):
            self.emit("media.uri", f"{where}.{kind}.source.s3Location.bucketOwner must be a 12-digit "
                                   f"account id, got {_q(owner)}")

    def check_s3_uri(self, uri: str, where: str) -> None:
        if not uri.startswith("s3://"):
            self.emit("media.uri", f"{where} location {_q(uri, 60)} must be an s3:// URI")
            return
        bucket, _, key = uri[5:].partition("/")
        if not bucket or not key or not _S3_PATH_RE.match(uri[5:]):
            self.emit("media.uri", f"{where} location {_q(uri, 60)} is not a valid S3 object URI "
                                   f"(letters, digits, '_', '-', '/', '.' only)")
            return
        if self.media_bucket is not None and bucket != self.media_bucket:
            self.emit("media.bucket",
                      f"{where} is in bucket {bucket!r}; media must be in the dataset's bucket "
                      f"{self.media_bucket!r}")

    def count_media(self, images: int, videos: int) -> None:
        """Per-record and per-dataset media counts."""
        limits = self.limits
        if limits.max_images_per_record is not None and images > limits.max_images_per_record:
            self.emit("media.count", f"Record has {images} images; at most "
                                     f"{limits.max_images_per_record} per record")
        if limits.max_videos_per_record is not None and videos > limits.max_videos_per_record:
            self.emit("media.count", f"Record has {videos} videos; at most "
                                     f"{limits.max_videos_per_record} per record")
        if images and videos:
            self.emit("media.mixed", "Record mixes images and videos; a dataset may contain one or the other")
            self.mixed_media_reported = True
        if images:
            self.seen_image = True
            self.images += images
        if videos:
            self.seen_video = True
            self.videos += videos
        if self.seen_image and self.seen_video and not self.mixed_media_reported:
            self.mixed_media_reported = True
            self.emit("media.mixed", "The dataset mixes image and video records; a dataset may "
                                     "contain images or videos, not both")


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
            self.check_s3_uri(ref, "image-ref")
            ext = ref.rsplit(".", 1)[-1].lower() if "." in ref.rsplit("/", 1)[-1] else ""
            fmt = self._EXTENSIONS.get(ext)
            if fmt is None or fmt not in self.limits.image_formats:
                self.emit("media.format", f"image-ref {_q(ref, 60)} must be a "
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
        msgs = record.get("messages")
        if type(msgs) is not list:
            if msgs is None:
                if self.wrong_shape(record):
                    return None
                emit("field.required", "Missing required field 'messages'")
            else:
                emit("field.type", f"Field 'messages' must be an array, got {_type_name(msgs)}")
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
            emit("field.type", f"Field 'schemaVersion' must be a string, got {_type_name(version)}")
        elif self.strict_schema_version and version != F.CONVERSE_SCHEMA_VERSION:
            emit("schema_version", f"schemaVersion {_q(version)} must be {F.CONVERSE_SCHEMA_VERSION!r}")
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
                emit("field.type", f"{where} must be an object with role and content, got {_type_name(msg)}")
                prev = None
                continue
            keys = self.message_keys
            if keys is not None and (len(msg) > 2 or any(k not in keys for k in msg)):
                self.check_unknown_keys(msg, keys, f" in {where}")
            role = msg.get("role")
            if role != "user" and role != "assistant":
                if role is None:
                    emit("field.required", f"{where} is missing 'role'")
                else:
                    hint = " (put the system prompt in the top-level 'system' field)" \
                        if role == "system" else ""
                    emit("messages.role", f"{where}.role {_q(role)} must be 'user' or 'assistant'{hint}")
            elif i == 0 and role != "user":
                emit("messages.first_role", "The first message must have role 'user', got 'assistant'")
            elif role == prev:
                emit("messages.alternation", f"{where} has role {role!r} like the message before it; "
                                             f"roles must alternate user/assistant")
            prev = role if type(role) is str else None
            content = msg.get("content")
            if type(content) is not list:
                if content is None:
                    emit("field.required", f"{where} is missing 'content'")
                elif type(content) is str:
                    emit("field.type", f"{where}.content must be an array of content blocks "
                                       f"([{{\"text\": ...}}]), got a string")
                else:
                    emit("field.type", f"{where}.content must be an array, got {_type_name(content)}")
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
                    emit("content.block", f"{where}.content[{j}] must be an object, got {_type_name(block)}")
                    continue
                text = block.get("text")
                if text is not None:
                    if type(text) is str:
                        text_len += len(text)
                        if reserved is not None:
                            self.check_reserved(text, f"{where}.content[{j}].text")
                    else:
                        emit("field.type",
                             f"{where}.content[{j}].text must be a string, got {_type_name(text)}")
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
        if self.last_must_be_assistant and prev is not None and prev != "assistant" and n >= 1:
            emit("messages.last_role", f"The last message must have role 'assistant', got {prev!r}")
        if images or videos:
            self.count_media(images, videos)
        return in_chars, out_chars, images * self.image_tokens

    def _system(self, system: Any) -> int:
        emit = self.emit
        if type(system) is not list:
            if type(system) is str:
                emit("field.type", "Field 'system' must be an array of {\"text\": ...} blocks, got a string")
            else:
                emit("field.type", f"Field 'system' must be an array, got {_type_name(system)}")
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


class AnthropicValidator(RecordValidator):
    """Claude 3 Haiku records: ``system`` string, ``messages`` with string content."""

    data_format = DataFormat.ANTHROPIC
    allowed = frozenset({"system", "messages"})

    def check(self, record: dict[str, Any]) -> tuple[int, int, int] | None:
        emit = self.emit
        msgs = record.get("messages")
        if type(msgs) is not list:
            if msgs is None:
                if self.wrong_shape(record):
                    return None
                emit("field.required", "Missing required field 'messages'")
            else:
                emit("field.type", f"Field 'messages' must be an array, got {_type_name(msgs)}")
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
                emit("field.type", f"Field 'system' must be a string, got {_type_name(system)}")
        if len(msgs) < 2:
            emit("messages.count", f"'messages' has {len(msgs)} item(s); at least 2 needed "
                                   f"(a user turn then an assistant turn)")
        prev: str | None = None
        for i, msg in enumerate(msgs):
            where = f"messages[{i}]"
            if type(msg) is not dict:
                emit("field.type", f"{where} must be an object with role and content, got {_type_name(msg)}")
                prev = None
                continue
            role = msg.get("role")
            if role != "user" and role != "assistant":
                if role is None:
                    emit("field.required", f"{where} is missing 'role'")
                else:
                    emit("messages.role", f"{where}.role {_q(role)} must be 'user' or 'assistant'")
            elif i == 0 and role != "user":
                emit("messages.first_role", "The first message must have role 'user', got 'assistant'")
            elif role == prev:
                emit("messages.alternation", f"{where} has role {role!r} like the message before it; "
                                             f"roles must alternate user/assistant")
            prev = role if type(role) is str else None
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
                emit("field.type", f"{where}.content must be a string, got {_type_name(content)}")
        if prev is not None and prev != "assistant":
            emit("messages.last_role", f"The last message must have role 'assistant', got {prev!r}")
        return in_chars, out_chars, 0


class RftValidator(RecordValidator):
    """Reinforcement fine-tuning prompts: OpenAI chat style plus ``reference_answer``."""

    data_format = DataFormat.RFT

    def check(self, record: dict[str, Any]) -> tuple[int, int, int] | None:
        emit = self.emit
        msgs = record.get("messages")
        if type(msgs) is not list:
            if msgs is None:
                if self.wrong_shape(record):
                    return None
                emit("field.required", "Missing required field 'messages'")
            else:
                emit("field.type", f"Field 'messages' must be an array, got {_type_name(msgs)}")
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
                emit("field.type", f"{where} must be an object with role and content, got {_type_name(msg)}")
                continue
            role = msg.get("role")
            if role == "system":
                if i != 0:
                    emit("messages.role", f"{where}: a 'system' message may only come first")
            elif role == "user" or role == "assistant":
                if role == prev:
                    emit("messages.alternation", f"{where} has role {role!r} like the message before it; "
                                                 f"roles must alternate user/assistant")
                users += role == "user"
            elif role is None:
                emit("field.required", f"{where} is missing 'role'")
            else:
                emit("messages.role", f"{where}.role {_q(role)} must be 'system', 'user' or 'assistant'")
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
            self.emit("field.type", f"{where}.content must be a string, got {_type_name(content)}")
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
