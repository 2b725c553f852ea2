"""Faults injected on demand into the emulated AWS API (never into ``/_emulator/``).

A fault is a *rate* (each request fails with that probability), a *burst* (every request
fails for the next N seconds) or a *count* (the next N requests fail), optionally limited to
some operations::

    {"throttle": {"rate": 0.3},
     "error_5xx": {"burst_seconds": 2, "status": 503, "operations": ["GetModelCustomizationJob"]},
     "latency_ms": 150,
     "drop_connections": {"rate": 0.1, "after_processing": false},
     "fail_jobs": {"next": 1, "message": "Encountered an unexpected error ..."},
     "seed": 7}

``drop_connections`` closes the connection without a response; with ``after_processing`` the
request is carried out first, so the caller loses a response to a call that took effect (the
case idempotency tokens exist for).

The same document is accepted by ``POST /_emulator/faults``, ``Emulator.set_faults`` and the
``BEDROCK_EMULATOR_FAULTS`` environment variable.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: failureMessage of a forced job failure when none is given: Bedrock's internal-error text.
DEFAULT_FAILURE_MESSAGE = "Encountered an unexpected error when processing the request, please try again"

_KNOWN = {"throttle", "error_5xx", "latency_ms", "drop_connections", "fail_jobs", "seed"}


class FaultConfigError(ValueError):
    """Raised for a fault document that cannot be understood."""


@dataclass
class _Trigger:
    rate: float = 0.0
    until: float = 0.0  # monotonic deadline of a burst
    operations: frozenset[str] | None = None
    status: int = 500
    after_processing: bool = False
    remaining: int = 0  # the next N requests fail

    def fires(self, rng: random.Random, operation: str, now: float) -> bool:
        if self.operations is not None and operation not in self.operations:
            return False
        if self.remaining > 0:
            self.remaining -= 1
            return True
        if now < self.until:
            return True
        return self.rate > 0 and rng.random() < self.rate


@dataclass
class Decision:
    """What to do with one request: wait, then fail in one way or pass."""

    latency_s: float = 0.0
    action: str | None = None  # "throttle" | "error" | "drop"
    status: int = 500
    after_processing: bool = False


@dataclass
class Faults:
    """Thread-safe fault state of one emulator."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random = field(default_factory=random.Random)
    _throttle: _Trigger | None = None
    _error: _Trigger | None = None
    _drop: _Trigger | None = None
    _latency_s: float = 0.0
    _fail_next: int = 0
    _fail_message: str = DEFAULT_FAILURE_MESSAGE
    _doc: dict[str, Any] = field(default_factory=dict)

    def configure(self, doc: Mapping[str, Any] | None) -> None:
        """Replace the active faults by ``doc`` (an empty document clears them).

        :raises FaultConfigError: for an unknown key or a value out of range.
        """
        doc = dict(doc or {})
        unknown = set(doc) - _KNOWN
        if unknown:
            raise FaultConfigError(f"unknown fault(s): {', '.join(sorted(unknown))}; known: {sorted(_KNOWN)}")
        now = time.monotonic()
        throttle = _trigger(doc.get("throttle"), "throttle", now)
        error = _trigger(doc.get("error_5xx"), "error_5xx", now)
        if error is not None and error.status not in (500, 503):
            raise FaultConfigError("error_5xx.status must be 500 or 503")
        drop = _trigger(doc.get("drop_connections"), "drop_connections", now)
        latency = doc.get("latency_ms", 0)
        if isinstance(latency, Mapping):
            latency = latency.get("ms", 0)
        if not isinstance(latency, (int, float)) or isinstance(latency, bool) or not 0 <= latency <= 60_000:
            raise FaultConfigError("latency_ms must be a number of milliseconds between 0 and 60000")
        fail = doc.get("fail_jobs") or {}
        if not isinstance(fail, Mapping):
            raise FaultConfigError('fail_jobs must be an object like {"next": 1, "message": "..."}')
        fail_next = fail.get("next", 0)
        if not isinstance(fail_next, int) or isinstance(fail_next, bool) or fail_next < 0:
            raise FaultConfigError("fail_jobs.next must be a non-negative integer")
        message = str(fail.get("message") or DEFAULT_FAILURE_MESSAGE)[:2048]
        seed = doc.get("seed")
        with self._lock:
            self._throttle, self._error, self._drop = throttle, error, drop
            self._latency_s = float(latency) / 1000.0
            self._fail_next, self._fail_message = fail_next, message
            if seed is not None:
                self._rng.seed(seed)
            self._doc = doc

    def clear(self) -> None:
        """Remove every fault."""
        self.configure({})

    def describe(self) -> dict[str, Any]:
        """The active configuration, with the number of forced job failures still to come."""
        with self._lock:
            doc = dict(self._doc)
            doc["fail_jobs"] = {"next": self._fail_next, "message": self._fail_message}
            return doc

    def decide(self, operation: str) -> Decision:
        """The fault (if any) for one request to ``operation``."""
        now = time.monotonic()
        with self._lock:
            decision = Decision(latency_s=self._latency_s)
            if self._drop is not None and self._drop.fires(self._rng, operation, now):
                decision.action = "drop"
                decision.after_processing = self._drop.after_processing
            elif self._throttle is not None and self._throttle.fires(self._rng, operation, now):
                decision.action = "throttle"
            elif self._error is not None and self._error.fires(self._rng, operation, now):
                decision.action, decision.status = "error", self._error.status
            return decision

    def take_job_failure(self) -> str | None:
        """The failureMessage for a newly created job that must fail, or None."""
        with self._lock:
            if self._fail_next <= 0:
                return None
            self._fail_next -= 1
            return self._fail_message


def _trigger(spec: Any, name: str, now: float) -> _Trigger | None:
    if spec is None or spec == {}:
        return None
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        spec = {"rate": spec}
    if not isinstance(spec, Mapping):
        raise FaultConfigError(f"{name} must be an object with 'rate', 'burst_seconds' or 'count'")
    rate = spec.get("rate", 0.0)
    burst = spec.get("burst_seconds", 0.0)
    for key, value in (("rate", rate), ("burst_seconds", burst)):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise FaultConfigError(f"{name}.{key} must be a number")
    if not 0.0 <= rate <= 1.0:
        raise FaultConfigError(f"{name}.rate must be between 0 and 1")
    if not 0.0 <= burst <= 3600.0:
        raise FaultConfigError(f"{name}.burst_seconds must be between 0 and 3600")
    ops = spec.get("operations")
    if ops is not None and (not isinstance(ops, list) or not all(isinstance(o, str) for o in ops)):
        raise FaultConfigError(f"{name}.operations must be a list of operation names")
    status = spec.get("status", 500)
    count = spec.get("count", 0)
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 1_000_000:
        raise FaultConfigError(f"{name}.count must be a non-negative integer")
    after = spec.get("after_processing", False)
    if not isinstance(after, bool):
        raise FaultConfigError(f"{name}.after_processing must be true or false")
    return _Trigger(
        after_processing=after,
        remaining=count,
        rate=float(rate),
        until=now + float(burst) if burst else 0.0,
        operations=frozenset(ops) if ops is not None else None,
        status=int(status) if isinstance(status, int) else 500,
    )


def parse_env(text: str | None) -> dict[str, Any]:
    """Parse ``BEDROCK_EMULATOR_FAULTS`` (a JSON object); empty means no faults.

    :raises FaultConfigError: when the text is not a JSON object.
    """
    if not text or not text.strip():
        return {}
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise FaultConfigError(f"BEDROCK_EMULATOR_FAULTS is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise FaultConfigError("BEDROCK_EMULATOR_FAULTS must be a JSON object")
    return doc
