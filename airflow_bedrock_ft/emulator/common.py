"""Helpers shared by the emulator's backend modules: ids, time, lookups, List filters and paging,
deep copies."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import string
from collections.abc import Callable, Mapping
from typing import Any

from airflow_bedrock_ft.core.request import MAX_TAGS_PER_RESOURCE, Problem
from airflow_bedrock_ft.emulator.errors import EmulatorError, validation
from airflow_bedrock_ft.emulator.store import dumps

ACCOUNT_ID = "123456789012"
DUPLICATE_NAME_MESSAGE = "The provided job name is currently in use."
_ALNUM = string.ascii_lowercase + string.digits

#: Seconds each step takes on real Bedrock (bedrock-facts §4, §7); multiplied by time_scale.
REALISTIC_SECONDS = {
    "validationDetails": 150.0,
    "dataProcessingDetails": 240.0,
    "trainingDetails": 1800.0,
    "stopping": 60.0,
    "deployment": 480.0,
    "provisioning": 600.0,
}


def now() -> dt.datetime:
    """The current UTC time, at millisecond precision like Bedrock's timestamps."""
    t = dt.datetime.now(dt.timezone.utc)
    return t.replace(microsecond=(t.microsecond // 1000) * 1000)


def short_id() -> str:
    """12 lowercase alphanumerics: the last segment of Bedrock ARNs."""
    return "".join(secrets.choice(_ALNUM) for _ in range(12))


def canonical(params: Mapping[str, Any]) -> str:
    """A digest of a request without its clientRequestToken (to detect a token reused differently)."""
    return hashlib.sha256(
        dumps({k: v for k, v in params.items() if k != "clientRequestToken"}).encode()
    ).hexdigest()


def raise_problems(problems: list[Problem]) -> None:
    """Raise one ValidationException in AWS's words for all ``problems`` (if any)."""
    if not problems:
        return
    parts = [p.aws_message() for p in problems]
    n = len(parts)
    head = f"{n} validation error{'s' if n != 1 else ''} detected: "
    raise validation((head + "; ".join(parts))[:2048])


def too_many_tags(resource_name: str) -> EmulatorError:
    """The TooManyTagsException for a resource whose tags would exceed the quota."""
    return EmulatorError(
        "TooManyTagsException",
        f"The request contains more tag keys than can be associated with a resource "
        f"({MAX_TAGS_PER_RESOURCE} tag keys per resource).",
        resourceName=resource_name,
    )


def paginate(
    items: list[dict[str, Any]], max_results: int | None, token: str | None, default: int = 100
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of ``items`` and the opaque token of the next page (None on the last)."""
    offset = 0
    if token:
        try:
            doc = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
            raw = doc["o"] if isinstance(doc, dict) else None
            if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw < 2**31:
                raise ValueError
            offset = raw
        except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
            # Whatever the token decodes to: AWS answers a token it did not issue this way.
            raise validation("Invalid pagination token.") from None
    size = max_results or default
    page = items[offset : offset + size]
    more = offset + size < len(items)
    next_token = (
        base64.urlsafe_b64encode(json.dumps({"o": offset + size}).encode()).decode() if more else None
    )
    return page, next_token


def sort_by(items: list[dict[str, Any]], key: str, order: str | None) -> list[dict[str, Any]]:
    """Sort by ``key`` (creation order breaks ties); Bedrock lists newest first by default."""
    return sorted(
        items, key=lambda d: (d[key], d.get("_seq", 0)), reverse=(order or "Descending") == "Descending"
    )


def created_between(value: dt.datetime, after: dt.datetime | None, before: dt.datetime | None) -> bool:
    """The creationTimeAfter / creationTimeBefore filters (both exclusive)."""
    return (after is None or value > after) and (before is None or value < before)


def listed(
    params: Mapping[str, Any],
    created: dt.datetime,
    name: str,
    after: str = "creationTimeAfter",
    before: str = "creationTimeBefore",
) -> bool:
    """Whether a resource passes the creation-time and ``nameContains`` filters of a List call."""
    if not created_between(created, params.get(after), params.get(before)):
        return False
    contains = params.get("nameContains")
    return not contains or contains.lower() in name.lower()


def list_page(
    items: list[dict[str, Any]],
    params: Mapping[str, Any],
    sort_key: str,
    summary: Callable[[dict[str, Any]], dict[str, Any]],
    member: str,
) -> dict[str, Any]:
    """The output of a List call: ``items`` sorted and paged as ``params`` ask, as summaries."""
    items = sort_by(items, sort_key, params.get("sortOrder"))
    page, token = paginate(items, params.get("maxResults"), params.get("nextToken"))
    out: dict[str, Any] = {member: [summary(d) for d in page]}
    if token:
        out["nextToken"] = token
    return out


def find_by_arn_or_name(
    table: Mapping[str, dict[str, Any]], name_key: str, ident: str
) -> dict[str, Any] | None:
    """The resource of ``table`` (keyed by ARN) whose ARN or ``name_key`` member is ``ident``."""
    doc = table.get(ident)
    if doc is None:
        doc = next((d for d in table.values() if d[name_key] == ident), None)
    return doc


def json_copy(doc: Any) -> Any:
    """A deep copy of a JSON-like document (datetimes are kept), safe to use outside the lock."""
    if isinstance(doc, dict):
        return {k: json_copy(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [json_copy(v) for v in doc]
    return doc


def public(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The members of a stored resource that the API returns (internal keys start with ``_``)."""
    return {k: v for k, v in doc.items() if not k.startswith("_") and v is not None}
