"""Where dataset bytes come from: local files and folders, ``s3://`` objects and prefixes.

Everything is read as a byte stream, line by line, so memory does not grow with file size.
gzip is detected by its magic bytes (not by the file name), as Bedrock's invocation logs are
gzipped JSON lines.
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Union

from airflow_bedrock_ft.core.s3 import split_s3_uri as core_split_s3_uri

Source = Union[str, "os.PathLike[str]"]
Sources = Union[Source, Iterable[Source]]  # noqa: UP007

#: Lines longer than this are not buffered whole: no valid record is anywhere near it
#: (32k tokens at 4 characters of up to 4 bytes is 512 KiB), and a file without newlines must
#: not make memory grow with its size.
MAX_LINE_BYTES = 8 * 1024 * 1024
_READ_BUFFER = 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"


class DatasetSourceError(OSError):
    """Raised when a dataset location cannot be listed or read (missing file, bad URI)."""


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset, local or in S3, with a way to open it as a byte stream."""

    name: str  # local path or s3:// URI, as shown in reports
    size: int | None
    opener: Callable[[], BinaryIO]
    listed: bool = False  # found by listing a folder or prefix, rather than named directly

    @property
    def basename(self) -> str:
        """The last path segment, e.g. ``train.jsonl``."""
        return self.name.rstrip("/").rsplit("/", 1)[-1]

    def open(self) -> BinaryIO:
        """Open the file for reading, transparently decompressing gzip."""
        return open_decompressed(self.opener())


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``.

    :raises DatasetSourceError: when ``uri`` is not an S3 URI with a bucket.
    """
    try:
        return core_split_s3_uri(uri)
    except ValueError as exc:
        raise DatasetSourceError(str(exc)) from None


def as_list(sources: Sources | None) -> list[str]:
    """Normalise one source or a list of sources to a list of strings."""
    if sources is None:
        return []
    if isinstance(sources, (str, os.PathLike)):
        return [os.fspath(sources)]
    return [os.fspath(s) for s in sources]


def default_s3_client() -> Any:
    """A boto3 S3 client from the environment's credentials (imported lazily)."""
    import boto3

    return boto3.client("s3")


def list_files(sources: Sources, s3_client: Any = None) -> list[DataFile]:
    """Expand local paths, folders, S3 objects and S3 prefixes into the files they contain.

    Folders and prefixes are listed recursively in name order; hidden files (``.name``) and
    S3 "folder" markers are skipped.

    :raises DatasetSourceError: when a location does not exist or holds no file.
    """
    files: list[DataFile] = []
    client = s3_client
    for src in as_list(sources):
        if src.startswith("s3://"):
            if client is None:
                client = default_s3_client()
            files.extend(_list_s3(src, client))
        else:
            files.extend(_list_local(src))
    return files


def _list_local(path: str) -> list[DataFile]:
    if os.path.isfile(path):
        return [_local_file(path)]
    if os.path.isdir(path):
        found: list[DataFile] = []
        for root, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                if not name.startswith("."):
                    found.append(_local_file(os.path.join(root, name), listed=True))
        if not found:
            raise DatasetSourceError(f"Folder {path} contains no data files")
        return found
    raise DatasetSourceError(f"No such file or folder: {path}")


def _local_file(path: str, listed: bool = False) -> DataFile:
    def opener() -> BinaryIO:
        return open(path, "rb", buffering=_READ_BUFFER)

    return DataFile(name=path, size=os.path.getsize(path), opener=opener, listed=listed)


def _list_s3(uri: str, client: Any) -> list[DataFile]:
    bucket, key = split_s3_uri(uri)
    if key and not key.endswith("/"):
        try:
            head = client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:  # botocore ClientError; imported lazily, so matched by code
            if _error_code(exc) not in {"404", "NoSuchKey", "NotFound"}:
                raise DatasetSourceError(f"Cannot read {uri}: {exc}") from exc
        else:
            return [_s3_file(client, bucket, key, int(head.get("ContentLength", 0)))]
        prefix = key + "/"
    else:
        prefix = key
    found: list[DataFile] = []
    try:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                name = obj["Key"]
                if name.endswith("/") or name.rsplit("/", 1)[-1].startswith("."):
                    continue
                found.append(_s3_file(client, bucket, name, int(obj.get("Size", 0)), listed=True))
    except Exception as exc:
        raise DatasetSourceError(f"Cannot list {uri}: {exc}") from exc
    if not found:
        raise DatasetSourceError(f"No S3 object at {uri}")
    found.sort(key=lambda f: f.name)
    return found


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _s3_file(client: Any, bucket: str, key: str, size: int, listed: bool = False) -> DataFile:
    def opener() -> BinaryIO:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        return io.BufferedReader(_StreamAdapter(body), buffer_size=_READ_BUFFER)

    return DataFile(name=f"s3://{bucket}/{key}", size=size, opener=opener, listed=listed)


class _StreamAdapter(io.RawIOBase):
    """Expose anything with ``read(n)`` (botocore's StreamingBody) as a raw binary stream."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n

    def close(self) -> None:
        try:
            self._body.close()
        finally:
            super().close()


def open_decompressed(raw: BinaryIO) -> BinaryIO:
    """Wrap ``raw`` in a gzip reader when it starts with the gzip magic bytes."""
    buffered: Any = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw, _READ_BUFFER)  # type: ignore[arg-type,type-var]
    if buffered.peek(2)[:2] == _GZIP_MAGIC:
        # GzipFile itself wraps its decompressor in a BufferedReader, so readline stays in C.
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    return buffered


def iter_lines(stream: BinaryIO, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[bytes, bool]]:
    """Yield ``(line, too_long)`` for each line, newline included.

    A line longer than ``max_line_bytes`` is yielded once, cut to its first ``max_line_bytes``
    bytes, with ``too_long`` True; the rest of it is skipped without being buffered.
    """
    readline = stream.readline
    while True:
        line = readline(max_line_bytes)
        if not line:
            return
        if len(line) == max_line_bytes and not line.endswith(b"\n"):
            while True:
                rest = readline(max_line_bytes)
                if not rest or rest.endswith(b"\n"):
                    break
            yield line, True
        else:
            yield line, False
