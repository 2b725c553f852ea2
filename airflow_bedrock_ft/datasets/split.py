"""Deterministic train/validation split by record hash.

A record's split depends only on its content, the seed and the ratio: the SHA-256 of the seed
and the record's canonical JSON (sorted keys, compact) is read as a number in [0, 1), and
records below ``validation_ratio`` go to validation. The same record therefore lands in the
same split on every run and machine, whatever the file order, and adding records never moves
existing ones between splits.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from .sources import LineTooLongError, Sources, iter_lines, list_files

TRAIN = "train"
VALIDATION = "validation"
_SCALE = float(2**64)


def _fraction(seed: int | str, payload: bytes) -> float:
    digest = hashlib.sha256(f"{seed}\x00".encode() + payload).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def _check_ratio(validation_ratio: float) -> None:
    if not 0.0 <= validation_ratio < 1.0:
        raise ValueError(f"validation_ratio must be in [0, 1), got {validation_ratio!r}")


def canonical_bytes(record: Mapping[str, Any]) -> bytes:
    """The record as compact JSON with sorted keys: the input of the split hash."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def assign_split(record: Mapping[str, Any], validation_ratio: float, seed: int | str = 0) -> str:
    """``"train"`` or ``"validation"`` for ``record``; stable for a given seed and ratio."""
    _check_ratio(validation_ratio)
    return VALIDATION if _fraction(seed, canonical_bytes(record)) < validation_ratio else TRAIN


def split_records(records: Iterable[Mapping[str, Any]], validation_ratio: float,
                  seed: int | str = 0) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Yield ``(split, record)`` for each record."""
    _check_ratio(validation_ratio)
    for record in records:
        yield (VALIDATION if _fraction(seed, canonical_bytes(record)) < validation_ratio else TRAIN), record


def split_file(source: Sources, train_path: str | os.PathLike[str], validation_path: str | os.PathLike[str],
               validation_ratio: float, seed: int | str = 0, *, s3_client: Any = None,
               max_bytes: int | None = None) -> tuple[int, int]:
    """Split a JSONL file (or folder/S3 prefix) line by line into two JSONL files.

    Lines are copied unchanged, so the validator later sees exactly what was written. A line
    that is not valid JSON is hashed as raw bytes and kept (the validator will report it);
    blank lines are dropped. Returns ``(train_count, validation_count)``.

    :param max_bytes: stop with :class:`~airflow_bedrock_ft.datasets.sources.DatasetTooLargeError`
        once the files have given more than this many decompressed bytes.
    :raises LineTooLongError: for a line over the reader's line limit (it cannot be copied).
    """
    _check_ratio(validation_ratio)
    n_train = n_val = 0
    read = 0
    loads = orjson.loads
    with open(train_path, "wb") as train_out, open(validation_path, "wb") as val_out:
        for data_file in list_files(source, s3_client):
            budget = None if max_bytes is None else max(max_bytes - read, 0)
            with data_file.open(max_bytes=budget) as stream:
                first = True
                for line_no, (line, too_long) in enumerate(iter_lines(stream), 1):
                    if too_long:
                        raise LineTooLongError(data_file.name, line_no, len(line))
                    if first:
                        first = False
                        line = line.removeprefix(b"\xef\xbb\xbf")
                    if not line.strip():
                        continue
                    if not line.endswith(b"\n"):
                        line += b"\n"
                    try:
                        value = loads(line)
                        payload = canonical_bytes(value) if isinstance(value, dict) else line.rstrip(b"\r\n")
                    except orjson.JSONDecodeError:
                        payload = line.rstrip(b"\r\n")
                    if _fraction(seed, payload) < validation_ratio:
                        val_out.write(line)
                        n_val += 1
                    else:
                        train_out.write(line)
                        n_train += 1
                read += stream.bytes_read
    return n_train, n_val
