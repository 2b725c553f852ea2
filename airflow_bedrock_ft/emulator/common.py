"""Helpers shared by the emulator's backend modules: ids, time, paging, deep copies."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import string
from collections.abc import Mapping
from typing import Any

from airflow_bedrock_ft.core.request import Problem
from airflow_bedrock_ft.emulator.errors import validation
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


def paginate(
    items: list[dict[str, Any]], max_results: int | None, token: str | None, default: int = 100
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of ``items`` and the opaque token of the next page (None on the last)."""
    offset = 0
    if token:
        try:
            doc = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
            offset = int(doc["o"])
            if offset < 0:
                raise ValueError
        except (ValueError, KeyError, TypeError):
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
