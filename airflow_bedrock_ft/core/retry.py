"""Which AWS errors a retry may fix, how long to wait before it, and the bookkeeping of a wait.

Plain Python (botocore only): the hook, the triggers, the sensor and the evaluation runner
share one definition of a transient error, one backoff and one poll tracker.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from botocore.exceptions import ClientError, HTTPClientError, SSLError
from botocore.exceptions import ConnectionError as BotoConnectionError

T = TypeVar("T")

#: AWS error codes that mean "try again later" rather than "this request is wrong".
TRANSIENT_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalServerException",
        "InternalFailure",
        "InternalError",
        "ServiceUnavailableException",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
        # bedrock-runtime: the model is still being loaded (a custom model's first requests
        # after a deployment becomes Active), or one invocation timed out.
        "ModelNotReadyException",
        "ModelTimeoutException",
    }
)

#: Longest wait between two polls after transient errors, in seconds, whatever the interval.
MAX_TRANSIENT_DELAY = 300.0

#: Shortest first retry after a transient error, in seconds.
MIN_TRANSIENT_DELAY = 0.25

#: A status older than this many poll intervals is not "known" to a wait that gives up.
STATUS_FRESH_INTERVALS = 3.0


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError``, else None."""
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code")
    return None


def is_transient_error(exc: BaseException) -> bool:
    """True for throttling, server-side (5xx) and connection errors, which a later retry may fix.

    Decided by error code, HTTP status and exception type, never by message text.
    """
    if isinstance(exc, ClientError):
        if error_code(exc) in TRANSIENT_ERROR_CODES:
            return True
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        # 429 whatever the code: a proxy or gateway in front of Bedrock may throttle with a
        # body that carries no AWS error code.
        return isinstance(status, int) and (status >= 500 or status == 429)
    if isinstance(exc, SSLError):
        return False
    if isinstance(exc, (BotoConnectionError, HTTPClientError, ConnectionError, asyncio.TimeoutError)):
        return True
    aiohttp = sys.modules.get("aiohttp")
    return aiohttp is not None and isinstance(exc, aiohttp.ClientError)


def jittered(seconds: float, spread: float = 0.1) -> float:
    """``seconds`` moved randomly by up to ``spread`` (a fraction) either way.

    Many waits started together (a mapped task, a sweep) would otherwise poll in lockstep.
    """
    return max(0.0, seconds * random.uniform(1.0 - spread, 1.0 + spread))


def transient_delay(poll_interval: float, failures: int) -> float:
    """Delay before the next poll after ``failures`` consecutive transient errors (1-based).

    Starts at a quarter of ``poll_interval`` (at most 5 s, at least
    :data:`MIN_TRANSIENT_DELAY`), doubles per failure and is capped at ``poll_interval``
    (within :data:`MIN_TRANSIENT_DELAY` .. :data:`MAX_TRANSIENT_DELAY`); jittered.

    Why the cap is one poll interval: a wait's steady load is one request per interval, so
    backing off beyond it only delays noticing that the job ended once the throttling is over,
    while the quick first retries keep a single throttled poll from costing a whole interval.
    """
    base = max(MIN_TRANSIENT_DELAY, min(poll_interval / 4.0, 5.0))
    cap = max(base, min(poll_interval, MAX_TRANSIENT_DELAY))
    return jittered(min(cap, base * (2 ** max(0, failures - 1))))


class PollTracker:
    """Bookkeeping of one wait, shared by the blocking wait and every trigger.

    Only polls that got an answer count as attempts: throttling, 5xx and dropped connections
    say nothing about the resource and never use up ``max_attempts``. After transient errors
    the next poll follows :func:`transient_delay`; the first answer resets that backoff, so
    polling returns to ``poll_interval`` at once.

    :param poll_interval: seconds between polls while the resource is still changing.
    :param max_attempts: answered polls before giving up; None for no limit.
    :param clock: monotonic clock (tests replace it).
    """

    def __init__(
        self,
        poll_interval: float,
        max_attempts: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.clock = clock
        self.attempts = 0
        self.failures = 0
        self.errors = 0
        self.last_status: str | None = None
        self.last_answer_at: float | None = None
        self._seen: Hashable = _NOTHING

    def transient_error(self) -> float:
        """Record a poll that failed transiently; returns the delay before the next one."""
        self.failures += 1
        self.errors += 1
        return transient_delay(self.poll_interval, self.failures)

    def answered(self, status: str | None, detail: Hashable = None) -> bool:
        """Record a poll that was answered with ``status``; True when status or ``detail`` changed.

        :param status: the status the answer carried (None for "the resource is gone").
        :param detail: anything else whose change is worth logging (a job's phases).
        """
        self.attempts += 1
        self.failures = 0
        self.last_status = status
        self.last_answer_at = self.clock()
        seen = (status, detail)
        changed, self._seen = seen != self._seen, seen
        return changed

    def next_delay(self) -> float:
        """Delay before the next poll after an answer."""
        return jittered(self.poll_interval)

    @property
    def out_of_attempts(self) -> bool:
        """True once ``max_attempts`` polls have been answered."""
        return self.max_attempts is not None and self.attempts >= self.max_attempts

    @property
    def status_known(self) -> bool:
        """True when the last status is recent enough to act on (e.g. to stop a job).

        Recent means answered by the latest poll, or within :data:`STATUS_FRESH_INTERVALS` poll
        intervals (at least 60 s): a wait that has only seen errors lately does not know
        whether the job is still running.
        """
        if self.last_answer_at is None:
            return False
        if self.failures == 0:
            return True
        fresh = max(60.0, STATUS_FRESH_INTERVALS * self.poll_interval)
        return self.clock() - self.last_answer_at <= fresh


_NOTHING = object()


async def aretry_transient(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int = 5,
    poll_interval: float = 4.0,
    sleep: Callable[[float], Awaitable[Any]] | None = None,
) -> T:
    """Await ``call()``, retrying transient errors (:func:`is_transient_error`) with backoff.

    For one-off async calls (a stop, a delete) made through a client without automatic
    retries. Other errors, and the last transient one, propagate.

    :param call: makes a new awaitable per try.
    :param attempts: tries in all (at least 1).
    :param poll_interval: scales the backoff as in :func:`transient_delay`.
    :param sleep: the sleep coroutine function (default :func:`asyncio.sleep`).
    """
    for failures in range(1, max(1, attempts) + 1):
        try:
            return await call()
        except Exception as exc:
            if failures >= attempts or not is_transient_error(exc):
                raise
            await (sleep or asyncio.sleep)(transient_delay(poll_interval, failures))
    raise AssertionError("unreachable")  # pragma: no cover
