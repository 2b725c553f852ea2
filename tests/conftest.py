"""Shared pytest fixtures: dummy AWS credentials and the local Bedrock emulator.

* ``boto_session_env`` - dummy credentials and region in the environment (no real AWS).
* ``bedrock_emulator`` - one emulator per test session (in-process, free ports, embedded S3,
  ``time_scale=0`` so jobs run as fast as their real compute allows).
* ``emulator`` - the session emulator with its state, faults and config reset before the test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_bedrock_ft.emulator.server import Emulator

DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}

# Tests must never reach real AWS with someone's credentials: set dummy ones before any
# boto3 client exists, and drop profile/session settings that would override them.
for _key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(_key, None)
os.environ.update(DUMMY_ENV)


@pytest.fixture
def boto_session_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Dummy AWS credentials and region for one test (restored afterwards)."""
    for key, value in DUMMY_ENV.items():
        monkeypatch.setenv(key, value)
    return dict(DUMMY_ENV)


@pytest.fixture(scope="session")
def bedrock_emulator() -> Iterator[Emulator]:
    """A Bedrock emulator with embedded S3 for the whole session (time_scale=0)."""
    from airflow_bedrock_ft.emulator import start_emulator

    with start_emulator(port=0, s3_port=0, time_scale=0.0, state_path=None) as emu:
        yield emu


@pytest.fixture
def emulator(bedrock_emulator: Emulator) -> Iterator[Emulator]:
    """The session emulator with resources, faults and config reset before this test.

    S3 is shared by the session: use bucket names unique to the test.
    """
    bedrock_emulator.reset()
    yield bedrock_emulator
    bedrock_emulator.set_faults({})
