"""Where dataset bytes come from: local files and folders, ``s3://`` objects and prefixes.

Everything is read as a byte stream, line by line, so memory does not grow with file size.
gzip is detected by its magic bytes (not by the file name), as Bedrock's invocation logs are
gzipped JSON lines.

Work is bounded by what a file *decompresses to*: :class:`DataStream` counts the bytes as they
come out of the decompressor and raises :class:`DatasetTooLargeError` once a caller's budget
is passed, so a small gzip bomb cannot make a reader run (or a converter write) for hours.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
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


class DatasetTooLargeError(DatasetSourceError):
    """Raised while reading a file once more than ``limit`` decompressed bytes came out of it.

    :param file: the file being read (local path or ``s3://`` URI).
    :param limit: the byte budget the file was opened with.
    :param bytes_read: decompressed bytes read when reading stopped (just over ``limit``).
    """

    def __init__(self, file: str, limit: int, bytes_read: int) -> None:
        super().__init__(f"{file}: stopped reading after {bytes_read} decompressed bytes, past the "
                         f"limit of {limit} bytes")
        self.file = file
        self.limit = limit
        self.bytes_read = bytes_read


class LineTooLongError(DatasetSourceError):
    """Raised by readers that cannot skip a line longer than the line limit (converters, split).

    :param file: the file being read.
    :param line: the 1-based line number.
    :param limit: the line limit in bytes.
    """

    def __init__(self, file: str, line: int, limit: int) -> None:
        super().__init__(f"{file}:{line}: line is longer than {limit} bytes, the reader's line limit; "
                         f"no record is this large (missing newlines?)")
        self.file = file
        self.line = line
        self.limit = limit


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset, local or in S3, with a way to open it as a byte stream."""

    name: str  # local path or s3:// URI, as shown in reports
    size: int | None
    opener: Callable[[], BinaryIO]
    listed: bool = False  # found by listing a folder or prefix, rather than named directly
    #: Why this entry cannot be read at all (a folder that cannot be listed); opening raises it.
    error: str | None = None

    def open(self, max_bytes: int | None = None) -> DataStream:
        """Open the file for reading, transparently decompressing gzip.

        :param max_bytes: raise :class:`DatasetTooLargeError` from a read once more than this
            many decompressed bytes have been read.
        """
        return open_decompressed(self.opener(), name=self.name, max_bytes=max_bytes)


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

        def unlistable(exc: OSError) -> None:
            # os.walk skips folders it cannot list unless told: say which, and go on.
            where = exc.filename or path
            found.append(_unreadable(where, f"Cannot list folder {where}: {exc.strerror or exc}"))

        for root, dirs, names in os.walk(path, onerror=unlistable):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                if not name.startswith("."):
                    found.append(_local_file(os.path.join(root, name), listed=True))
        if not found:
            raise DatasetSourceError(f"Folder {path} contains no data files")
        return found
    if os.path.islink(path):
        raise DatasetSourceError(_dangling_link(path))
    raise DatasetSourceError(f"No such file or folder: {path}")


def _unreadable(name: str, message: str) -> DataFile:
    def opener() -> BinaryIO:
        raise DatasetSourceError(message)

    return DataFile(name=name, size=None, opener=opener, error=message)


def _dangling_link(path: str) -> str:
    return f"{path} is a symbolic link to {os.readlink(path)!r}, which does not exist"


def _local_file(path: str, listed: bool = False) -> DataFile:
    """A local file; one that cannot be read (dangling link, no permission) fails on open.

    Listing never raises for one bad entry in a folder: the reader reports it as a problem
    with its path and goes on with the other files.
    """
    def opener() -> BinaryIO:
        if os.path.islink(path) and not os.path.exists(path):
            raise DatasetSourceError(_dangling_link(path))
        if not os.path.isfile(path):
            # A FIFO or device would block or never end: only regular files are data.
            raise DatasetSourceError(f"{path} is not a regular file")
        # Unbuffered: DataStream is the one buffer between the file and readline.
        return open(path, "rb", buffering=0)

    try:
        info = os.stat(path)
        size: int | None = info.st_size if stat.S_ISREG(info.st_mode) else None
    except OSError:
        size = None
    return DataFile(name=path, size=size, opener=opener, listed=listed)


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


class _CountingReader(io.RawIOBase):
    """Counts the bytes read from ``inner`` (the decompressor) and enforces a budget."""

    def __init__(self, inner: Any, name: str, limit: int | None) -> None:
        self._inner = inner
        self.name = name
        self.limit = limit
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        # The inner reader fills at most len(buffer) bytes: the decompressor never produces
        # more than one buffer's worth per call, so memory stays bounded too.
        n = int(self._inner.readinto(buffer) or 0)
        self.bytes_read += n
        if self.limit is not None and self.bytes_read > self.limit:
            raise DatasetTooLargeError(self.name, self.limit, self.bytes_read)
        return n

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


class DataStream(io.BufferedReader):
    """The decompressed bytes of one data file: buffered (``readline`` runs in C), counted, bounded.

    ``bytes_read`` is the number of decompressed bytes taken from the file so far (exact once
    the file has been read to the end); ``compressed`` tells whether the file was gzip.
    """

    def __init__(self, counter: _CountingReader, compressed: bool) -> None:
        super().__init__(counter, _READ_BUFFER)
        self._counter = counter
        self.compressed = compressed

    @property
    def bytes_read(self) -> int:
        """Decompressed bytes read from the file (including any still buffered)."""
        return self._counter.bytes_read


def open_decompressed(raw: BinaryIO, *, name: str = "", max_bytes: int | None = None) -> DataStream:
    """Wrap ``raw`` in a gzip reader when it starts with the gzip magic bytes, counting what it yields.

    :param name: the file's name, for :class:`DatasetTooLargeError`.
    :param max_bytes: budget of decompressed bytes; reading past it raises.
    """
    base: Any
    if isinstance(raw, io.RawIOBase) and raw.seekable():
        # A local file: sniff and rewind, so no second buffer copies every byte.
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        base = raw
    else:
        base = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw, _READ_BUFFER)  # type: ignore[arg-type,type-var]
        compressed = base.peek(2)[:2] == _GZIP_MAGIC
    inner: Any = gzip.GzipFile(fileobj=base, mode="rb") if compressed else base
    return DataStream(_CountingReader(inner, name, max_bytes), compressed)


def skip_blank_lines(stream: DataStream) -> int:
    """Consume the whitespace-only lines at the stream's position; return how many there were.

    Works on the read buffer with C-level ``bytes`` methods, so a file of a billion empty
    lines costs what reading it costs, not a Python loop iteration per line. Only whole lines
    (ending in a newline) are consumed; a line with any other byte is left for ``readline``.
    """
    lines = 0
    peek = stream.peek
    read = stream.read
    while True:
        buf = peek(1)
        if not buf:
            return lines
        rest = buf.lstrip()
        end = buf.rfind(b"\n", 0, len(buf) - len(rest))
        if end < 0:
            return lines
        lines += buf.count(b"\n", 0, end + 1)
        read(end + 1)
        if rest:
            return lines


def skip_repeats(stream: DataStream, line: bytes, max_line: int = 4096) -> int:
    """Consume the copies of ``line`` that follow at the stream's position; return how many.

    Compares whole blocks of copies with ``bytes.startswith``, so a run of a billion identical
    short lines costs about what reading it costs. Lines longer than ``max_line`` (or without
    a newline) are left alone: the per-line cost of reading them is small beside their size.
    """
    k = len(line)
    if not k or k > max_line or not line.endswith(b"\n"):
        return 0
    per_block = max(1, 65536 // k)
    block = line * per_block
    copies = 0
    peek = stream.peek
    read = stream.read
    while True:
        buf = peek(1)
        if buf.startswith(block):
            read(len(block))
            copies += per_block
            continue
        i = 0
        while buf.startswith(line, i):
            i += k
        if not i:
            return copies
        read(i)
        copies += i // k


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
