"""Deterministic job names, idempotency tokens, request digests and identity tags.

A retried or restarted task must find the job its first attempt created instead of creating
a second one, and must never take a job trained on another request for its own. Three things
carry that:

- the **run identity** ``(dag_id, task_id, run_id, map_index, namespace)``, from which the job
  name and the custom model name are derived (never from the try number or the clock);
- the **request digest**, a hash of every request field except the job name and the token;
- the ``clientRequestToken``, a hash of both: the same run with the same request gives the same
  token, the same run with a changed request gives another one.

Every job the plugin creates also carries :func:`identity_tags`, so that a job can be traced
back to its task instance (by the operator, when a name is taken, and by the reaper) from the
account alone.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Limits and patterns from botocore's CreateModelCustomizationJob input shape.
JOB_NAME_MAX = 63
CUSTOM_MODEL_NAME_MAX = 63
TOKEN_MAX = 256
TAG_VALUE_MAX = 256

_JOB_NAME_BAD = re.compile(r"[^a-zA-Z0-9+.\-]+")
_MODEL_NAME_BAD = re.compile(r"[^0-9a-zA-Z]+")
#: botocore's TagValue pattern, ASCII as AWS's Java regexes are.
_TAG_VALUE_OK = re.compile(r"[a-zA-Z0-9\s._:/=+@-]*", re.ASCII)
_HASH_LEN = 12
_SCHEME = "airflow-bedrock-ft/v2"

#: Prefix of the tag keys this plugin owns. They are not part of the request digest.
TAG_PREFIX = "airflow-bedrock-ft:"
TAG_DAG_ID = TAG_PREFIX + "dag-id"
TAG_TASK_ID = TAG_PREFIX + "task-id"
TAG_RUN_ID = TAG_PREFIX + "run-id"
TAG_MAP_INDEX = TAG_PREFIX + "map-index"
TAG_NAMESPACE = TAG_PREFIX + "namespace"
#: Digest of the run identity: equal for every job of one task run, whatever its request.
TAG_IDENTITY = TAG_PREFIX + "identity"
#: Digest of the request content (see :func:`request_digest`).
TAG_REQUEST = TAG_PREFIX + "request"
#: Digest of what the training learns from (base model, type, hyperparameters, data content; see
#: :func:`airflow_bedrock_ft.core.reuse.training_digest`): equal for identical trainings whatever
#: their run, DAG or deployment, so a completed one can be reused.
TAG_TRAINING = TAG_PREFIX + "training-digest"
#: ``"true"`` when the task that created the job owns its whole life (it waits for it and stops
#: it when killed), so that the job may be stopped once that task instance has ended;
#: ``"false"`` for jobs submitted without waiting or with ``stop_on_kill=False``.
TAG_REAP = TAG_PREFIX + "reap"
#: Values that did not fit the tag pattern are stored as this prefix + urlsafe base64.
ENCODED_PREFIX = "b64:"
#: Values that did not fit even encoded are stored as this prefix + their SHA-256 (not reversible).
HASHED_PREFIX = "sha256:"


def _digest(*parts: object) -> str:
    # JSON keeps the parts apart unambiguously: ("a", "b/c") and ("a/b", "c") differ, and a
    # missing namespace (null) differs from any string. The scheme tag lets the encoding change
    # later without colliding with names made by this one.
    raw = json.dumps([_SCHEME, *parts], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _slug(text: str, bad: re.Pattern[str], max_len: int) -> str:
    slug = bad.sub("-", text).strip("-+.")
    slug = re.sub(r"-{2,}", "-", slug)
    return slug[:max_len].rstrip("-+.")


@dataclass(frozen=True)
class JobIdentity:
    """Names derived from one logical task run; equal inputs always give equal names.

    ``client_request_token`` is the identity's own digest; the token sent with a request is
    :func:`request_token` of it and the request's digest.
    """

    job_name: str
    client_request_token: str
    custom_model_name: str
    dag_id: str = ""
    task_id: str = ""
    run_id: str = ""
    map_index: int = -1
    namespace: str | None = None

    @property
    def digest(self) -> str:
        """Digest of the run identity (the :data:`TAG_IDENTITY` tag)."""
        return self.client_request_token


def job_identity(
    dag_id: str,
    task_id: str,
    run_id: str,
    map_index: int | None = -1,
    prefix: str | None = None,
    namespace: str | None = None,
) -> JobIdentity:
    """Derive the job name, identity digest and custom model name of one task run.

    The readable part comes from ``prefix`` (default ``<namespace>-<dag_id>-<task_id>``); a hash
    of the full identity keeps names unique when the readable part is truncated or two runs
    share it.

    :param dag_id: the DAG id.
    :param task_id: the task id.
    :param run_id: the DAG run id (differs between scheduled runs, equal across retries).
    :param map_index: the mapped task index; ``-1`` or None for an unmapped task.
    :param prefix: readable part of the names instead of the default.
    :param namespace: separates deployments that run the same DAGs against one account.
    """
    mi = -1 if map_index is None else int(map_index)
    ns = namespace or None
    digest = _digest(dag_id, task_id, run_id, mi, ns)
    short = digest[:_HASH_LEN]
    readable = prefix if prefix else (f"{ns}-{dag_id}-{task_id}" if ns else f"{dag_id}-{task_id}")
    if mi >= 0:
        readable = f"{readable}-{mi}"

    room = JOB_NAME_MAX - _HASH_LEN - 1
    job_slug = _slug(readable, _JOB_NAME_BAD, room) or "job"
    model_slug = _slug(readable, _MODEL_NAME_BAD, room) or "model"
    return JobIdentity(
        job_name=f"{job_slug}-{short}",
        client_request_token=digest,
        custom_model_name=f"{model_slug}-{short}",
        dag_id=dag_id,
        task_id=task_id,
        run_id=run_id,
        map_index=mi,
        namespace=ns,
    )


def request_digest(request: Mapping[str, Any]) -> str:
    """Digest of a CreateModelCustomizationJob request's content.

    Covers every field except ``jobName`` and ``clientRequestToken``, and except the tags this
    plugin adds itself (:data:`TAG_PREFIX`), in a canonical form: key order and the order of
    tags do not matter, everything else (values, list order, numbers as sent) does.
    """
    content: dict[str, Any] = {}
    for key, value in request.items():
        if key in ("jobName", "clientRequestToken"):
            continue
        if key in ("jobTags", "customModelTags") and isinstance(value, list):
            value = sorted(
                (
                    [t.get("key"), t.get("value")]
                    for t in value
                    if not str(t.get("key")).startswith(TAG_PREFIX)
                ),
                key=lambda kv: str(kv[0]),
            )
            if not value:
                continue
        content[key] = value
    raw = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def request_token(identity_digest: str, content_digest: str) -> str:
    """The ``clientRequestToken`` of one run's request: changes when either changes."""
    return _digest("token", identity_digest, content_digest)


def suffixed_job_name(job_name: str, attempt: int) -> str:
    """A fresh, deterministic variant of ``job_name`` for the ``attempt``-th resubmission.

    Used for a retriable failure, a changed request, or (when the user opts in) a clash with a
    job this task did not create. Deterministic, so that a retry after a crash finds the same
    name.
    """
    suffix = f"-r{attempt}"
    return job_name[: JOB_NAME_MAX - len(suffix)].rstrip("-+.") + suffix


def suffixed_token(token: str, attempt: int) -> str:
    """The ``clientRequestToken`` that goes with :func:`suffixed_job_name`."""
    return _digest(token, attempt)


# --- identity tags --------------------------------------------------------------------------------


def encode_tag_value(value: str) -> str:
    """``value`` as a valid tag value: as is when it fits, else base64, else a hash.

    Tag values allow letters, digits, spaces and ``._:/=+@-`` and at most 256 characters; a run
    id may hold anything. :func:`decode_tag_value` reverses the first two forms; the hashed form
    can only be compared, never read back.
    """
    if (
        len(value) <= TAG_VALUE_MAX
        and _TAG_VALUE_OK.fullmatch(value)
        and not value.startswith((ENCODED_PREFIX, HASHED_PREFIX))
    ):
        return value
    encoded = ENCODED_PREFIX + base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii")
    if len(encoded) <= TAG_VALUE_MAX:
        return encoded
    return HASHED_PREFIX + hashlib.sha256(value.encode("utf-8")).hexdigest()


def decode_tag_value(value: str) -> str | None:
    """The original of :func:`encode_tag_value`; None for a hashed (irreversible) value."""
    if value.startswith(HASHED_PREFIX):
        return None
    if value.startswith(ENCODED_PREFIX):
        try:
            return base64.urlsafe_b64decode(value[len(ENCODED_PREFIX) :].encode("ascii")).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
    return value


def identity_tags(identity: JobIdentity, *, content_digest: str, reap: bool) -> dict[str, str]:
    """The tags naming a job's Airflow identity, its request digest and whether it may be reaped."""
    tags = {
        TAG_DAG_ID: encode_tag_value(identity.dag_id),
        TAG_TASK_ID: encode_tag_value(identity.task_id),
        TAG_RUN_ID: encode_tag_value(identity.run_id),
        TAG_MAP_INDEX: str(identity.map_index),
        TAG_IDENTITY: identity.digest,
        TAG_REQUEST: content_digest,
        TAG_REAP: "true" if reap else "false",
    }
    if identity.namespace:
        tags[TAG_NAMESPACE] = encode_tag_value(identity.namespace)
    return tags


@dataclass(frozen=True)
class TaggedIdentity:
    """The Airflow identity read back from a job's tags.

    A field is None when its tag is missing or could not be decoded; :attr:`complete` says
    whether the task instance can be named exactly.
    """

    dag_id: str | None
    task_id: str | None
    run_id: str | None
    map_index: int | None
    namespace: str | None
    identity_digest: str | None
    request_digest: str | None
    reap: bool

    @property
    def complete(self) -> bool:
        """True when dag id, task id, run id and map index are all known exactly."""
        return None not in (self.dag_id, self.task_id, self.run_id, self.map_index)

    def matches_digest(self) -> bool:
        """True when the decoded fields hash to the identity digest the job was tagged with."""
        if not self.complete or not self.identity_digest:
            return False
        if self.dag_id is None or self.task_id is None or self.run_id is None:
            return False
        again = job_identity(self.dag_id, self.task_id, self.run_id, self.map_index, namespace=self.namespace)
        return again.digest == self.identity_digest


def resource_tags(client: Any, resource_arn: str) -> dict[str, str]:
    """ListTagsForResource of a Bedrock job, custom model or other resource, as a dict.

    :param client: a boto3 ``bedrock`` client.
    :param resource_arn: the resource's ARN.
    :raises ClientError: as the call raises it (``ResourceNotFoundException`` and others).
    """
    response = client.list_tags_for_resource(resourceARN=resource_arn)
    return {tag["key"]: tag["value"] for tag in response.get("tags", [])}


def identity_from_tags(tags: Mapping[str, str] | list[Mapping[str, str]]) -> TaggedIdentity | None:
    """Read :func:`identity_tags` back; None when the job carries none of them.

    :param tags: a ``{key: value}`` dict or a ListTagsForResource ``tags`` list.
    """
    if not isinstance(tags, Mapping):
        tags = {t["key"]: t["value"] for t in tags}
    if not any(str(k).startswith(TAG_PREFIX) for k in tags):
        return None

    def text(key: str) -> str | None:
        value = tags.get(key)
        return None if value is None else decode_tag_value(value)

    map_index: int | None
    try:
        raw_mi = tags.get(TAG_MAP_INDEX)
        map_index = int(raw_mi) if raw_mi is not None and re.fullmatch(r"-?[0-9]+", raw_mi) else None
    except ValueError:
        map_index = None
    return TaggedIdentity(
        dag_id=text(TAG_DAG_ID),
        task_id=text(TAG_TASK_ID),
        run_id=text(TAG_RUN_ID),
        map_index=map_index,
        namespace=text(TAG_NAMESPACE) if TAG_NAMESPACE in tags else None,
        identity_digest=tags.get(TAG_IDENTITY),
        request_digest=tags.get(TAG_REQUEST),
        reap=tags.get(TAG_REAP) == "true",
    )
