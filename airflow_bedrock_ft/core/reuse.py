"""Recognise a training that was already done, so its custom model can be reused.

Two model-customization requests train the same model when they agree on what the training
learns from: the base model, the customization type, the hyperparameters, the
customization config (a distillation teacher, an RFT grader) and the *content* of the training
and validation data. Job names, custom model names, roles, output locations, KMS keys, VPC
settings and tags do not change what is learned and are left out. :func:`training_digest`
hashes exactly those fields; the job carries it in the :data:`~airflow_bedrock_ft.core.naming.TAG_TRAINING`
tag, so a later request with the same digest — from another DAG run, DAG or Airflow deployment
sharing the account — can find it with :func:`find_reusable_job`.

Data content is identified per S3 URI by :func:`fingerprint_s3_uri`, in this order:

1. a content-addressed key (``.../sha256-<hex>/<name>``, as the prepare step uploads): the
   SHA-256 in the key, without any request;
2. an object with ``x-amz-meta-sha256`` metadata (also set by the prepare step's upload): that
   SHA-256 (HeadObject);
3. any other object: its ETag and size (HeadObject). The ETag of a single-part upload is the MD5
   of the bytes; of a multipart upload it depends on the part size too, so the same bytes
   uploaded another way look different and are trained again — never the other way round;
4. a URI ending in ``/``, or naming no object: a folder. Every object under the prefix (folder
   markers ending in ``/`` excepted) counts, as its key relative to the prefix, ETag and size;
   an empty folder is an error.

A SHA-256 and an ETag of the same bytes differ, so data prepared by the plugin and a copy
uploaded by hand are not recognised as equal. Data that is not in S3 by URI (invocation logs)
cannot be fingerprinted: such requests are never reused.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_bedrock_ft.core.naming import TAG_TRAINING, resource_tags
from airflow_bedrock_ft.core.retry import error_code
from airflow_bedrock_ft.core.s3 import split_s3_uri

_SCHEME = "airflow-bedrock-ft/training/v1"
_CONTENT_ADDRESSED = re.compile(r"(?:^|/)sha256-([0-9a-f]{64})/[^/]+$")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_FOUNDATION_ARN = re.compile(r"^arn:aws[a-z-]*:bedrock:[^:]*::foundation-model/(.+)$")
_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "ResourceNotFoundException"}


class TrainingDigestError(ValueError):
    """The training data cannot be fingerprinted (a URI that is not S3, an empty folder)."""


def content_addressed_sha256(uri: str) -> str | None:
    """The SHA-256 a content-addressed key (``.../sha256-<hex>/<name>``) carries, else None."""
    match = _CONTENT_ADDRESSED.search(uri)
    return match.group(1) if match else None


def fingerprint_s3_uri(uri: str, s3_client: Any | None) -> str:
    """A string that changes whenever the data at ``uri`` changes (see the module docstring).

    :param uri: ``s3://bucket/key`` of an object, or ``s3://bucket/prefix/`` of a folder.
    :param s3_client: a boto3 S3 client; may be None when ``uri`` is content-addressed.
    :raises TrainingDigestError: for a URI that is not S3, or a folder with no object.
    """
    sha = content_addressed_sha256(uri)
    if sha is not None:
        return f"sha256:{sha}"
    try:
        bucket, key = split_s3_uri(uri)
    except ValueError as exc:
        raise TrainingDigestError(str(exc)) from None
    if s3_client is None:
        raise TrainingDigestError(f"{uri}: not content-addressed, and no S3 client to read its checksum")
    if key and not key.endswith("/"):
        try:
            head = s3_client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            if error_code(exc) not in _NOT_FOUND:
                raise
        else:
            meta = {str(k).lower(): str(v) for k, v in (head.get("Metadata") or {}).items()}
            if _HEX64.fullmatch(meta.get("sha256", "")):
                return f"sha256:{meta['sha256']}"
            return f"etag:{str(head.get('ETag', '')).strip(chr(34))}:{int(head.get('ContentLength', -1))}"
        key += "/"
    entries = []
    paginator = s3_client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=key):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith("/"):
                continue
            entries.append(
                [obj["Key"][len(key) :], str(obj.get("ETag", "")).strip('"'), int(obj.get("Size", -1))]
            )
    if not entries:
        raise TrainingDigestError(f"{uri}: no object with this key, and no object under it as a folder")
    entries.sort()
    raw = json.dumps(entries, separators=(",", ":"), ensure_ascii=False)
    return f"folder:{hashlib.sha256(raw.encode('utf-8')).hexdigest()}:{len(entries)}"


def data_uris(request: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """The training data's S3 URI (None when it is not given by URI) and the validation URIs."""
    training = (request.get("trainingDataConfig") or {}).get("s3Uri")
    validators = (request.get("validationDataConfig") or {}).get("validators") or []
    return training, [v["s3Uri"] for v in validators if v.get("s3Uri")]


def _base_model(identifier: str) -> str:
    # A foundation model named by id or by ARN is the same model.
    match = _FOUNDATION_ARN.match(identifier)
    return match.group(1) if match else identifier


def training_digest(request: Mapping[str, Any], fingerprints: Mapping[str, str]) -> str:
    """The digest of what a CreateModelCustomizationJob request trains on (hex SHA-256).

    :param request: the (checked) request.
    :param fingerprints: :func:`fingerprint_s3_uri` of every data URI of the request.
    :raises TrainingDigestError: when the training data is not given by S3 URI, or a
        fingerprint is missing.
    """
    training, validation = data_uris(request)
    if not training:
        raise TrainingDigestError(
            "trainingDataConfig has no s3Uri (invocation logs?): the training data cannot be fingerprinted"
        )
    missing = [uri for uri in (training, *validation) if uri not in fingerprints]
    if missing:
        raise TrainingDigestError(f"no fingerprint for {', '.join(missing)}")
    hyperparameters = {str(k): str(v) for k, v in (request.get("hyperParameters") or {}).items()}
    content = {
        "baseModel": _base_model(str(request.get("baseModelIdentifier", ""))),
        "customizationType": request.get("customizationType") or "FINE_TUNING",
        "hyperParameters": hyperparameters,
        "customizationConfig": request.get("customizationConfig"),
        "training": fingerprints[training],
        # The order of validators is kept: it is the order Bedrock reports them in.
        "validation": [fingerprints[uri] for uri in validation],
    }
    raw = json.dumps(
        [_SCHEME, content], sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def compute_training_digest(request: Mapping[str, Any], s3_client: Any | None) -> str:
    """:func:`training_digest` with every data URI fingerprinted through ``s3_client``.

    :param s3_client: a boto3 S3 client, or None to fingerprint content-addressed URIs only.
    :raises TrainingDigestError: when some data cannot be fingerprinted.
    """
    training, validation = data_uris(request)
    if not training:
        return training_digest(request, {})  # raises, naming the reason
    return training_digest(
        request, {uri: fingerprint_s3_uri(uri, s3_client) for uri in (training, *validation)}
    )


@dataclass
class ReuseSearch:
    """What :func:`find_reusable_job` found: the job to reuse (or None) and what it passed over."""

    job: dict[str, Any] | None = None
    #: Completed jobs with the same digest whose custom model no longer exists.
    deleted_models: list[str] = field(default_factory=list)
    #: Completed jobs whose tags were read.
    examined: int = 0


def find_reusable_job(
    client: Any,
    digest: str,
    *,
    customization_type: str | None = None,
    max_age: datetime.timedelta | None = None,
    now: Callable[[], datetime.datetime] | None = None,
) -> ReuseSearch:
    """The newest ``Completed`` job tagged with ``digest`` whose custom model still exists.

    Lists ``Completed`` jobs newest first (created within ``max_age`` when given), reads the tags
    of those of the same customization type, and returns the first whose
    :data:`TAG_TRAINING` tag equals ``digest`` and whose custom model GetCustomModel still finds.

    :param client: a boto3 ``bedrock`` client.
    :param digest: :func:`training_digest` of the new request.
    :param customization_type: only consider jobs of this type (saves tag look-ups).
    :param max_age: only consider jobs created at most this long ago.
    :param now: the clock (UTC), for tests.
    """
    filters: dict[str, Any] = {
        "statusEquals": "Completed",
        "sortBy": "CreationTime",
        "sortOrder": "Descending",
    }
    if max_age is not None:
        clock = now or (lambda: datetime.datetime.now(datetime.timezone.utc))
        filters["creationTimeAfter"] = clock() - max_age
    search = ReuseSearch()
    paginator = client.get_paginator("list_model_customization_jobs")
    for page in paginator.paginate(**filters):
        for summary in page.get("modelCustomizationJobSummaries", []):
            kind = summary.get("customizationType")
            if customization_type and kind and kind != customization_type:
                continue
            search.examined += 1
            try:
                tags = resource_tags(client, summary["jobArn"])
            except Exception as exc:
                if error_code(exc) in _NOT_FOUND:
                    continue
                raise
            if tags.get(TAG_TRAINING) != digest:
                continue
            job = client.get_model_customization_job(jobIdentifier=summary["jobArn"])
            job.pop("ResponseMetadata", None)
            model_arn = job.get("outputModelArn") or summary.get("customModelArn")
            if not model_arn:
                continue
            try:
                client.get_custom_model(modelIdentifier=model_arn)
            except Exception as exc:
                if error_code(exc) in _NOT_FOUND:
                    search.deleted_models.append(str(model_arn))
                    continue
                raise
            search.job = job
            return search
    return search
