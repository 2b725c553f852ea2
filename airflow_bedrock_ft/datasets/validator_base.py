"""Shared parts of the per-record validators: the base class, media and reserved-string rules.

Each validator's ``check(record)`` reports problems through ``emit(rule, message, severity)``
and returns ``(input_chars, output_chars, extra_input_tokens)`` for the token estimate, or
None when the record is too broken to measure. The caller (``validate.py``) knows the file and
line, turns the characters into estimated tokens and applies the per-record token limits, so
those rules live in one place for every format.

Hot paths avoid regexes and keep to ``type(x) is str`` checks and ``str`` methods: the
validators must keep up with JSON parsing on gigabyte files.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from airflow_bedrock_ft.core.models import Customization, DataFormat, DataLimits, ModelSpec

from . import formats as F
from .report import WARNING

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


def quote(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def alternation_message(where: str, role: str) -> str:
    return f"{where} has role {role!r} like the message before it; roles must alternate user/assistant"


def type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)


class MediaObjects:
    """Sizes of media objects in S3 (``head_object``), cached, for the opt-in media checks.

    :param s3_client: a boto3 S3 client.
    :param cache_size: how many object sizes to remember (datasets reuse images).
    """

    def __init__(self, s3_client: Any, cache_size: int = 10_000) -> None:
        self.client = s3_client
        self.cache_size = cache_size
        self._sizes: OrderedDict[tuple[str, str], int | None] = OrderedDict()

    def size(self, bucket: str, key: str) -> int | None:
        """Object size in bytes, or None when there is no such object."""
        ident = (bucket, key)
        if ident in self._sizes:
            self._sizes.move_to_end(ident)
            return self._sizes[ident]
        try:
            size: int | None = int(self.client.head_object(Bucket=bucket, Key=key).get("ContentLength", 0))
        except Exception as exc:  # botocore ClientError, matched by code: boto3 is not imported here
            code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
            if code not in {"404", "NoSuchKey", "NotFound"}:
                raise
            size = None
        self._sizes[ident] = size
        if len(self._sizes) > self.cache_size:
            self._sizes.popitem(last=False)
        return size


class RecordValidator:
    """Base class: shared state, the shape-mismatch rule and media/reserved helpers."""

    data_format: DataFormat = DataFormat.PROMPT_COMPLETION
    unknown_field_severity = WARNING
    allowed_keys: frozenset[str] | None = None

    def __init__(self, spec: ModelSpec, customization: Customization, *, emit: Emit,
                 media_bucket: str | None = None, media_objects: MediaObjects | None = None) -> None:
        self.spec = spec
        self.customization = customization
        self.limits: DataLimits = customization.limits
        self.emit = emit
        self.media_bucket = media_bucket
        self.media_objects = media_objects
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

    def messages_of(self, record: Mapping[str, Any]) -> list[Any] | None:
        """The record's ``messages`` array, or None (reported) when it is missing or no array."""
        msgs = record.get("messages")
        if type(msgs) is list:
            return msgs
        if msgs is None:
            if self.wrong_shape(record):
                return None
            self.emit("field.required", "Missing required field 'messages'")
        else:
            self.emit("field.type", f"Field 'messages' must be an array, got {type_name(msgs)}")
        return None

    def check_role(
        self, role: Any, i: int, prev: str | None, where: str, system_hint: str = ""
    ) -> str | None:
        """Role rules of message ``i`` of a user/assistant conversation that starts with a user.

        Returns the role the next message is compared with (None after a broken one).
        ``system_hint`` is added to the message when the role given is ``system``.
        """
        if role != "user" and role != "assistant":
            if role is None:
                self.emit("field.required", f"{where} is missing 'role'")
            else:
                hint = system_hint if role == "system" else ""
                self.emit("messages.role", f"{where}.role {quote(role)} must be 'user' or 'assistant'{hint}")
        elif i == 0 and role != "user":
            self.emit("messages.first_role", "The first message must have role 'user', got 'assistant'")
        elif role == prev:
            self.emit("messages.alternation", alternation_message(where, role))
        return role if type(role) is str else None

    def check_last_role(self, prev: str | None) -> None:
        """A conversation must end with an assistant turn (``prev`` = its last valid role)."""
        if prev is not None and prev != "assistant":
            self.emit("messages.last_role", f"The last message must have role 'assistant', got {prev!r}")

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
            self.emit("field.type",
                      f"Field {field!r} must be a string, got {type_name(value)} {quote(value)}")
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
        self.check_s3_uri(uri, f"{where}.{kind}", kind)
        owner = loc.get("bucketOwner") if type(loc) is dict else None
        if owner is not None and (type(owner) is not str or not (len(owner) == 12 and owner.isdigit())):
            self.emit("media.uri", f"{where}.{kind}.source.s3Location.bucketOwner must be a 12-digit "
                                   f"account id, got {quote(owner)}")

    def check_s3_uri(self, uri: str, where: str, kind: str = "image") -> None:
        if not uri.startswith("s3://"):
            self.emit("media.uri", f"{where} location {quote(uri, 60)} must be an s3:// URI")
            return
        bucket, _, key = uri[5:].partition("/")
        if not bucket or not key or not _S3_PATH_RE.match(uri[5:]):
            self.emit("media.uri", f"{where} location {quote(uri, 60)} is not a valid S3 object URI "
                                   f"(letters, digits, '_', '-', '/', '.' only)")
            return
        if self.media_bucket is not None and bucket != self.media_bucket:
            self.emit("media.bucket",
                      f"{where} is in bucket {bucket!r}; media must be in the dataset's bucket "
                      f"{self.media_bucket!r}")
        if self.media_objects is not None:
            size = self.media_objects.size(bucket, key)
            limit = self.limits.max_image_bytes if kind == "image" else self.limits.max_video_bytes
            if size is None:
                self.emit("media.missing", f"{where}: no S3 object at {uri}")
            elif limit is not None and size > limit:
                self.emit("media.size", f"{where}: the {kind} at {uri} is {size} bytes; "
                                        f"{self.spec.name} accepts at most {limit}")

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
