"""AWS error codes of the emulated services, mapped to their HTTP statuses.

The status of every modelled error comes from botocore's service models (the ``error``
trait of each exception shape), so that a code can never drift from what real Bedrock
sends. A few protocol-level codes that no operation models (``UnknownOperationException``,
``SerializationException``) are added by hand with the statuses AWS uses for them.
"""

from __future__ import annotations

import functools

import botocore.session

# Protocol-level errors that API front ends return before any operation runs.
_UNMODELLED_STATUS = {
    "UnknownOperationException": 404,
    "SerializationException": 400,
    "RequestEntityTooLargeException": 413,
    "UnsupportedMediaTypeException": 415,
    "RequestTimeoutException": 408,
    "UnrecognizedClientException": 403,
    "InvalidSignatureException": 403,
    "IncompleteSignatureException": 400,
    "MissingAuthenticationTokenException": 403,
}


@functools.lru_cache(maxsize=1)
def error_statuses() -> dict[str, int]:
    """HTTP status per error code, read from the ``bedrock`` and ``bedrock-runtime`` models."""
    session = botocore.session.get_session()
    statuses = dict(_UNMODELLED_STATUS)
    for service in ("bedrock", "bedrock-runtime"):
        model = session.get_service_model(service)
        for shape in model.error_shapes:
            statuses.setdefault(shape.name, int(shape.metadata["error"]["httpStatusCode"]))
    return statuses


class EmulatorError(Exception):
    """An error returned to the client as an AWS error response.

    :param code: the AWS error code (the exception shape name), e.g. ``ValidationException``.
    :param message: the human-readable ``message`` member.
    :param extra: additional members of the exception shape (``resourceName`` of
        ``TooManyTagsException``).
    """

    def __init__(self, code: str, message: str, **extra: object) -> None:
        super().__init__(message)
        if code not in error_statuses():
            raise ValueError(f"unknown AWS error code {code!r}")
        self.code = code
        self.message = message
        self.extra = extra

    @property
    def status(self) -> int:
        """The HTTP status code of this error."""
        return error_statuses()[self.code]

    def body(self) -> dict[str, object]:
        """The JSON error document (``message`` plus any extra members)."""
        return {"message": self.message, **self.extra}


def validation(message: str) -> EmulatorError:
    """A ``ValidationException`` with ``message``."""
    return EmulatorError("ValidationException", message)


def not_found(message: str) -> EmulatorError:
    """A ``ResourceNotFoundException`` with ``message``."""
    return EmulatorError("ResourceNotFoundException", message)


def conflict(message: str) -> EmulatorError:
    """A ``ConflictException`` with ``message``."""
    return EmulatorError("ConflictException", message)
