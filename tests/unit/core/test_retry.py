"""Unit tests of the poll tracker, the transient backoff and aretry_transient (no sockets)."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from airflow_bedrock_ft.core.retry import PollTracker, aretry_transient, transient_delay


def _error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_only_answered_polls_count_as_attempts() -> None:
    """Today's main: a budget of 5 and 20 s of throttling gave up after zero answered polls."""
    tracker = PollTracker(poll_interval=1, max_attempts=5)
    for _ in range(100):
        tracker.transient_error()
    assert tracker.attempts == 0 and not tracker.out_of_attempts
    assert not tracker.status_known and tracker.last_status is None
    for _ in range(5):
        tracker.answered("InProgress")
    assert tracker.out_of_attempts and tracker.errors == 100


def test_backoff_starts_at_a_quarter_interval_and_resets_on_the_first_answer() -> None:
    tracker = PollTracker(poll_interval=1)
    with mock.patch("airflow_bedrock_ft.core.retry.random.uniform", return_value=1.0):
        assert [tracker.transient_error() for _ in range(4)] == [0.25, 0.5, 1.0, 1.0]
        tracker.answered("InProgress")
        assert tracker.failures == 0
        assert tracker.transient_error() == 0.25  # not where the last burst left off
        assert tracker.next_delay() == 1.0


def test_first_retry_is_bounded_both_ways() -> None:
    with mock.patch("airflow_bedrock_ft.core.retry.random.uniform", return_value=1.0):
        assert transient_delay(60, 1) == 5.0
        assert transient_delay(8, 1) == 2.0
        assert transient_delay(0.1, 1) == 0.25


def test_status_known_only_with_a_recent_answer() -> None:
    clock = Clock()
    tracker = PollTracker(poll_interval=60, clock=clock)
    assert not tracker.status_known
    tracker.answered("InProgress")
    assert tracker.status_known
    tracker.transient_error()
    clock.now += 120
    assert tracker.status_known  # two intervals of errors: the last answer is still recent
    clock.now += 120
    assert not tracker.status_known  # four intervals without an answer
    assert tracker.last_status == "InProgress"
    tracker.answered("InProgress")
    assert tracker.status_known


def test_answered_reports_changes_of_status_or_detail() -> None:
    tracker = PollTracker(poll_interval=1)
    assert tracker.answered("InProgress", "validation=InProgress")
    assert not tracker.answered("InProgress", "validation=InProgress")
    assert tracker.answered("InProgress", "training=InProgress")
    assert tracker.answered(None)  # gone


async def test_aretry_transient_retries_transient_errors_only() -> None:
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    outcomes: list[Any] = [_error("ThrottlingException", 429), EndpointConnectionError(endpoint_url="x"), "ok"]

    async def call() -> Any:
        item = outcomes.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    assert await aretry_transient(call, poll_interval=4, sleep=sleep) == "ok"
    assert len(slept) == 2 and slept[0] < slept[1]

    async def denied() -> None:
        raise _error("AccessDeniedException", 403)

    with pytest.raises(ClientError, match="AccessDenied"):
        await aretry_transient(denied, sleep=sleep)
    assert len(slept) == 2

    async def throttled() -> None:
        raise _error("ThrottlingException", 429)

    with pytest.raises(ClientError, match="Throttling"):
        await aretry_transient(throttled, attempts=3, sleep=sleep)
    assert len(slept) == 4
