"""Deterministic job names and idempotency tokens.

A retried or restarted task must find the job its first attempt created instead of creating
a second one. Both the job name and the ``clientRequestToken`` are therefore derived from
the identity of the logical run, ``(dag_id, task_id, run_id, map_index)``, and never from
the try number or the clock.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# Limits and patterns from botocore's CreateModelCustomizationJob input shape.
JOB_NAME_MAX = 63
CUSTOM_MODEL_NAME_MAX = 63
TOKEN_MAX = 256

_JOB_NAME_BAD = re.compile(r"[^a-zA-Z0-9+.\-]+")
_MODEL_NAME_BAD = re.compile(r"[^0-9a-zA-Z]+")
_HASH_LEN = 12


@dataclass(frozen=True)
class JobIdentity:
    """Names derived from one logical task run; equal inputs always give equal names."""

    job_name: str
    client_request_token: str
    custom_model_name: str


def _digest(*parts: object) -> str:
    # The NUL separator keeps ("a", "bc") and ("ab", "c") apart; the version tag lets the
    # scheme change later without colliding with names made by this one.
    raw = "\0".join(["airflow-bedrock-ft/v1", *(str(p) for p in parts)])
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _slug(text: str, bad: re.Pattern[str], max_len: int) -> str:
    slug = bad.sub("-", text).strip("-+.")
    slug = re.sub(r"-{2,}", "-", slug)
    return slug[:max_len].rstrip("-+.")


def job_identity(
    dag_id: str,
    task_id: str,
    run_id: str,
    map_index: int | None = -1,
    prefix: str | None = None,
) -> JobIdentity:
    """Derive the job name, ``clientRequestToken`` and custom model name of one task run.

    The readable part comes from ``prefix`` (default ``<dag_id>-<task_id>``); a hash of the
    full identity keeps names unique when the readable part is truncated or two runs share it.

    :param dag_id: the DAG id.
    :param task_id: the task id.
    :param run_id: the DAG run id (differs between scheduled runs, equal across retries).
    :param map_index: the mapped task index; ``-1`` or None for an unmapped task.
    :param prefix: readable part of the names instead of ``<dag_id>-<task_id>``.
    """
    mi = -1 if map_index is None else int(map_index)
    digest = _digest(dag_id, task_id, run_id, mi)
    short = digest[:_HASH_LEN]
    readable = prefix if prefix else f"{dag_id}-{task_id}"
    if mi >= 0:
        readable = f"{readable}-{mi}"

    room = JOB_NAME_MAX - _HASH_LEN - 1
    job_slug = _slug(readable, _JOB_NAME_BAD, room) or "job"
    model_slug = _slug(readable, _MODEL_NAME_BAD, room) or "model"
    return JobIdentity(
        job_name=f"{job_slug}-{short}",
        client_request_token=digest,
        custom_model_name=f"{model_slug}-{short}",
    )


def suffixed_job_name(job_name: str, attempt: int) -> str:
    """A fresh, deterministic variant of ``job_name`` for the ``attempt``-th name clash.

    Used when the user opts into a new name instead of failing on a clash with a job this
    task did not create. Deterministic, so that a retry after a crash finds the same name.
    """
    suffix = f"-r{attempt}"
    return job_name[: JOB_NAME_MAX - len(suffix)].rstrip("-+.") + suffix


def suffixed_token(token: str, attempt: int) -> str:
    """The ``clientRequestToken`` that goes with :func:`suffixed_job_name`."""
    return _digest(token, attempt)
