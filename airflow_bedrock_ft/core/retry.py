"""Which AWS errors a retry may fix, and how long to wait before it.

Plain Python (botocore only): the hook, the trigger, the sensor and the evaluation runner
share one definition of a transient error and one backoff.
"""

from __future__ import annotations

import asyncio
import random
import sys

from botocore.exceptions import ClientError, HTTPClientError, SSLError
from botocore.exceptions import ConnectionError as BotoConnectionError

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

#: Longest wait between two polls after transient errors, in seconds.
MAX_TRANSIENT_DELAY = 300.0


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

    Starts at the smaller of ``poll_interval`` and 5 s and doubles per failure, capped at the
    larger of ``poll_interval`` and :data:`MAX_TRANSIENT_DELAY`; jittered.
    """
    base = min(poll_interval, 5.0) if poll_interval > 0 else 1.0
    cap = max(poll_interval, MAX_TRANSIENT_DELAY)
    return jittered(min(cap, base * (2 ** max(0, failures - 1))))
