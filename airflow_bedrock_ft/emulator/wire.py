"""The restJson1 wire protocol, driven by botocore's service models.

Routing (HTTP method + ``requestUri``), where each input member travels (path label,
query string, header, JSON body or raw payload), the success status code and the output
serialization are all read from the ``bedrock`` and ``bedrock-runtime`` models, so the
emulator accepts exactly what boto3 sends and answers in the shape boto3 parses.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import re
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import botocore.session
from botocore.model import OperationModel, Shape

from airflow_bedrock_ft.emulator.errors import EmulatorError

SERVICES = ("bedrock", "bedrock-runtime")
_LABEL_RE = re.compile(r"^\{([A-Za-z0-9_]+)(\+?)\}$")


@dataclass(frozen=True)
class Route:
    """One operation's HTTP binding."""

    service: str
    operation: OperationModel
    method: str
    segments: tuple[str, ...]  # literal path segments, or "{label}" / "{label+}"
    query_literals: tuple[tuple[str, str], ...]

    @property
    def name(self) -> str:
        """The operation name, e.g. ``GetModelCustomizationJob``."""
        return str(self.operation.name)

    def match(self, raw_segments: list[str]) -> dict[str, str] | None:
        """Return the unquoted path labels when ``raw_segments`` fits this route."""
        labels: dict[str, str] = {}
        for i, seg in enumerate(self.segments):
            m = _LABEL_RE.match(seg)
            if m and m.group(2):  # greedy label takes the rest of the path
                if i >= len(raw_segments):
                    return None
                labels[m.group(1)] = unquote("/".join(raw_segments[i:]))
                return labels
            if i >= len(raw_segments):
                return None
            if m:
                if not raw_segments[i]:
                    return None
                labels[m.group(1)] = unquote(raw_segments[i])
            elif unquote(raw_segments[i]) != seg:
                return None
        return labels if len(raw_segments) == len(self.segments) else None


@functools.lru_cache(maxsize=1)
def routes() -> tuple[Route, ...]:
    """All operations of both services, most specific (most literal segments) first."""
    session = botocore.session.get_session()
    found: list[Route] = []
    for service in SERVICES:
        model = session.get_service_model(service)
        for name in model.operation_names:
            op = model.operation_model(name)
            uri = op.http["requestUri"]
            path, _, query = uri.partition("?")
            segments = tuple(s for s in path.strip("/").split("/") if s != "")
            literals = tuple((k, v) for k, _, v in (part.partition("=") for part in query.split("&") if part))
            found.append(Route(service, op, op.http["method"].upper(), segments, literals))
    found.sort(key=lambda r: (-sum(not _LABEL_RE.match(s) for s in r.segments), -len(r.segments)))
    return tuple(found)


def resolve(method: str, raw_path: str) -> tuple[Route, dict[str, str]]:
    """Find the operation for ``method`` and the raw (still percent-encoded) path.

    :raises EmulatorError: ``UnknownOperationException`` when no operation has this
        path, or has it with another method.
    """
    path = raw_path.split("?", 1)[0]
    raw_segments = [s for s in path.strip("/").split("/")] if path.strip("/") else []
    path_matched = False
    for route in routes():
        labels = route.match(raw_segments)
        if labels is None:
            continue
        path_matched = True
        if route.method == method.upper():
            return route, labels
    if path_matched:
        raise EmulatorError(
            "UnknownOperationException", f"The HTTP method {method.upper()} is not supported for {path}"
        )
    raise EmulatorError("UnknownOperationException", f"No operation matches {method.upper()} {path}")


# --- request parsing --------------------------------------------------------------------------


def _parse_scalar(shape: Shape, raw: str, where: str) -> Any:
    kind = shape.type_name
    try:
        if kind in ("integer", "long"):
            return int(raw)
        if kind in ("float", "double"):
            return float(raw)
        if kind == "boolean":
            if raw.lower() not in ("true", "false"):
                raise ValueError(raw)
            return raw.lower() == "true"
        if kind == "timestamp":
            return parse_timestamp(raw)
    except ValueError:
        raise EmulatorError(
            "ValidationException",
            f"1 validation error detected: Value '{raw}' at '{where}' failed to satisfy constraint: "
            f"Member must be of type {kind}",
        ) from None
    return raw


def parse_timestamp(raw: str | float) -> dt.datetime:
    """Parse an ISO 8601 or epoch-seconds timestamp to an aware UTC datetime."""
    if isinstance(raw, (int, float)):
        return dt.datetime.fromtimestamp(float(raw), tz=dt.timezone.utc)
    text = raw.strip()
    try:
        return dt.datetime.fromtimestamp(float(text), tz=dt.timezone.utc)
    except ValueError:
        pass
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def parse_request(
    route: Route,
    labels: Mapping[str, str],
    query: Mapping[str, list[str]],
    headers: Mapping[str, str],
    body: bytes,
) -> dict[str, Any]:
    """Build the operation's input parameters (as a boto3 caller would have passed them).

    :raises EmulatorError: ``SerializationException`` for a body that is not a JSON object.
    """
    shape = route.operation.input_shape
    params: dict[str, Any] = {}
    if shape is None:
        return params
    payload_name = shape.serialization.get("payload")
    for name, member in shape.members.items():
        loc = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if loc == "uri":
            if wire in labels:
                params[name] = labels[wire]
        elif loc == "querystring":
            values = query.get(wire)
            if values:
                if member.type_name == "list":
                    params[name] = [_parse_scalar(member.member, v, name) for v in values]  # type: ignore[attr-defined]
                else:
                    params[name] = _parse_scalar(member, values[-1], name)
        elif loc == "header":
            for key, value in headers.items():
                if key.lower() == wire.lower():
                    params[name] = _parse_scalar(member, value, name)
                    break
    if payload_name:
        member = shape.members[payload_name]
        if member.type_name in ("blob", "string"):
            params[payload_name] = body if member.type_name == "blob" else body.decode("utf-8", "replace")
            return params
        doc = _json_body(body)
        params[payload_name] = _decode(member, doc)
        return params
    body_members = {n: m for n, m in shape.members.items() if m.serialization.get("location") is None}
    if not body_members:
        return params
    doc = _json_body(body)
    for name, member in body_members.items():
        wire = member.serialization.get("name", name)
        if wire in doc:
            params[name] = _decode(member, doc[wire])
    return params


def _json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise EmulatorError("SerializationException", "The request body is not valid JSON.") from None
    if not isinstance(doc, dict):
        raise EmulatorError("SerializationException", "The request body must be a JSON object.")
    return doc


def _decode(shape: Shape, value: Any) -> Any:
    """Turn wire JSON into boto3-style values: blobs to bytes, timestamps to datetimes.

    Values of the wrong JSON type are passed through unchanged so that request validation
    reports them with their path, as Bedrock does.
    """
    kind = shape.type_name
    if value is None:
        return None
    if kind == "structure" and isinstance(value, dict):
        out = {}
        for key, item in value.items():
            member = shape.members.get(key)  # type: ignore[attr-defined]
            out[key] = _decode(member, item) if member is not None else item
        return out
    if kind == "list" and isinstance(value, list):
        return [_decode(shape.member, v) for v in value]  # type: ignore[attr-defined]
    if kind == "map" and isinstance(value, dict):
        return {k: _decode(shape.value, v) for k, v in value.items()}  # type: ignore[attr-defined]
    if kind == "blob" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise EmulatorError("SerializationException", "A blob member is not valid base64.") from None
    if kind == "timestamp" and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        try:
            return parse_timestamp(value)
        except ValueError:
            raise EmulatorError("SerializationException", f"Invalid timestamp {value!r}.") from None
    return value


# --- response serialization -------------------------------------------------------------------


def format_timestamp(value: dt.datetime) -> str:
    """ISO 8601 with milliseconds and ``Z``, the way Bedrock writes timestamps."""
    value = value.astimezone(dt.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _encode(shape: Shape, value: Any) -> Any:
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():  # type: ignore[attr-defined]
            if name in value and value[name] is not None:
                out[member.serialization.get("name", name)] = _encode(member, value[name])
        return out
    if kind == "list":
        return [_encode(shape.member, v) for v in value]  # type: ignore[attr-defined]
    if kind == "map":
        return {k: _encode(shape.value, v) for k, v in value.items()}  # type: ignore[attr-defined]
    if kind == "timestamp":
        return format_timestamp(value) if isinstance(value, dt.datetime) else value
    if kind == "blob":
        raw = value if isinstance(value, bytes) else str(value).encode()
        return base64.b64encode(raw).decode("ascii")
    return value


def serialize_response(route: Route, result: Mapping[str, Any] | None) -> tuple[int, dict[str, str], bytes]:
    """Status code, headers and body for a successful call.

    Members that the output shape does not model are dropped, so the wire carries only what
    real Bedrock can send.
    """
    op = route.operation
    status = int(op.http.get("responseCode", 200))
    shape = op.output_shape
    headers: dict[str, str] = {}
    result = result or {}
    if shape is None:
        return status, {"Content-Type": "application/json"}, b"{}"
    payload_name = shape.serialization.get("payload")
    for name, member in shape.members.items():
        if member.serialization.get("location") == "header" and result.get(name) is not None:
            value = result[name]
            if isinstance(value, dt.datetime):
                value = format_timestamp(value)
            headers[member.serialization.get("name", name)] = str(value)
    if payload_name:
        member = shape.members[payload_name]
        value = result.get(payload_name)
        if member.serialization.get("eventstream"):
            headers["Content-Type"] = "application/vnd.amazon.eventstream"
            events = b"".join(
                encode_event(name, json.dumps(_encode(member.members[name], doc)).encode())  # type: ignore[attr-defined]
                for name, doc in value or []
            )
            return status, headers, events
        if member.type_name in ("blob", "string"):
            body = value if isinstance(value, bytes) else str(value or "").encode()
            headers.setdefault("Content-Type", "application/octet-stream")
            return status, headers, body
        body = json.dumps(_encode(member, value or {})).encode()
    else:
        body_doc = {
            n: v
            for n, v in result.items()
            if n in shape.members and shape.members[n].serialization.get("location") is None
        }
        body = json.dumps(_encode(shape, body_doc)).encode()
    headers.setdefault("Content-Type", "application/json")
    return status, headers, body


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    # type 7 = string: 2-byte length then the UTF-8 bytes.
    return bytes([len(raw_name)]) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value


def encode_event(event_type: str, payload: bytes) -> bytes:
    """One ``application/vnd.amazon.eventstream`` message carrying an event of ``event_type``.

    Layout: total length, headers length, prelude CRC32, headers, payload, message CRC32 (all
    big-endian), as botocore's ``EventStreamBuffer`` decodes it.
    """
    headers = (
        _header(":event-type", event_type)
        + _header(":content-type", "application/json")
        + _header(":message-type", "event")
    )
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def error_response(error: EmulatorError) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of an AWS error; the code goes in ``x-amzn-ErrorType``."""
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": error.code}
    return error.status, headers, json.dumps(error.body()).encode()
