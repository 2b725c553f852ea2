"""Content-addressed upload of dataset files to S3.

The key carries the SHA-256 of the file's bytes (``<prefix>/sha256-<hex>/<name>``), so:

- an identical dataset is uploaded once: ``head_object`` finds it and the upload is skipped;
- the data a job was started with never changes under it: new content means a new key.

Uses only the plain boto3 client API (``head_object``, ``upload_file``), so any S3-compatible
endpoint works.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

_CHUNK = 1 << 20


@dataclass(frozen=True)
class UploadResult:
    """Where a file went and whether bytes were actually sent."""

    uri: str
    bucket: str
    key: str
    sha256: str
    size: int
    uploaded: bool


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a local file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def content_addressed_key(prefix: str, sha256: str, name: str) -> str:
    """``<prefix>/sha256-<hex>/<name>`` (no leading slash; empty prefix allowed)."""
    prefix = prefix.strip("/")
    return f"{prefix}/sha256-{sha256}/{name}" if prefix else f"sha256-{sha256}/{name}"


def upload_content_addressed(path: str | os.PathLike[str], s3_client: Any, bucket: str, prefix: str = "",
                             name: str | None = None) -> UploadResult:
    """Upload ``path`` under a key derived from its content, unless that object already exists.

    :param name: the last key segment (default: the file's name); Bedrock names it in errors.
    """
    size = os.path.getsize(path)
    digest = sha256_file(path)
    key = content_addressed_key(prefix, digest, name or os.path.basename(os.fspath(path)))
    uri = f"s3://{bucket}/{key}"
    try:
        head = s3_client.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        if code not in {"404", "NoSuchKey", "NotFound"}:
            raise
    else:
        if int(head.get("ContentLength", -1)) == size:
            return UploadResult(uri, bucket, key, digest, size, uploaded=False)
    s3_client.upload_file(os.fspath(path), bucket, key,
                          ExtraArgs={"Metadata": {"sha256": digest}, "ContentType": "application/jsonl"})
    return UploadResult(uri, bucket, key, digest, size, uploaded=True)
