"""Convert tabular or JSON rows into Bedrock training records.

Rows come from CSV/TSV, Parquet (pyarrow, imported only when a Parquet file is read), JSON
arrays or JSON Lines, local or in S3. Each output field is filled from a column (``mapping``)
or a Python format string over the row's columns (``template``), for example::

    convert_rows(rows, "bedrock-conversation-2024",
                 template={"system": "You are a support agent.", "user": "Ticket: {subject}\\n{body}"},
                 mapping={"assistant": "reply"})

Target fields per format:

- prompt-completion: ``prompt``, ``completion``
- bedrock-conversation-2024 / distillation-prompts: ``system``, ``user``, ``assistant``, ``image``,
  ``video`` (S3 URIs), or ``messages`` (a column holding ``[{"role", "content"}]``)
- anthropic-messages: ``system``, ``user``, ``assistant`` or ``messages``
- continued-pre-training: ``input``
- rft-chat: ``system``, ``user``, ``reference_answer``; any other mapped field is copied as an
  extra top-level field (the grader receives it as metadata)
- image-caption: ``image-ref``, ``caption``

``user``/``prompt`` and ``assistant``/``completion`` are aliases. Without mapping or template,
a column with the field's own name is used, and rows already in the target format pass through.
"""

from __future__ import annotations

import codecs
import csv
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from functools import partial
from typing import Any

import orjson

from airflow_bedrock_ft.core.models import DataFormat

from . import formats as F
from .sources import MAX_LINE_BYTES, DataStream, LineTooLongError, Source, list_files

_ALIASES = {"user": "prompt", "prompt": "user", "assistant": "completion", "completion": "assistant",
            "image-ref": "image", "image": "image-ref"}
_IMAGE_EXT = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "gif": "gif", "webp": "webp"}
_VIDEO_EXT = {"mov": "mov", "mkv": "mkv", "mp4": "mp4", "webm": "webm"}
_RFT_FIELDS = frozenset({"system", "user", "prompt", "reference_answer", "messages"})


class ConversionError(ValueError):
    """Raised when a row cannot be converted (missing column, unknown format)."""


def _strip_gz(name: str) -> str:
    lowered = name.lower()
    return lowered[:-3] if lowered.endswith(".gz") else lowered


def read_rows(
    path: Source, *, s3_client: Any = None, input_format: str | None = None, max_bytes: int | None = None
) -> Iterator[dict[str, Any]]:
    """Yield rows (dicts) from a CSV/TSV, Parquet, JSON or JSONL file, local or ``s3://``.

    Streaming whatever the input: JSON arrays are parsed item by item (``ijson``), lines are
    read with the validator's line limit (``sources.MAX_LINE_BYTES``), so memory stays flat.

    :param input_format: ``csv``, ``tsv``, ``parquet``, ``json`` or ``jsonl``; by default taken
        from the file extension (``.gz`` ignored).
    :param max_bytes: stop with :class:`~airflow_bedrock_ft.datasets.sources.DatasetTooLargeError`
        once more than this many decompressed bytes were read from the source's files
        (Parquet is bounded by its file size).
    :raises ConversionError: for a line or array item over the line limit, invalid JSON or CSV.
    """
    read = 0
    for data_file in list_files(path, s3_client):
        kind = input_format or _strip_gz(data_file.name).rsplit(".", 1)[-1]
        budget = None if max_bytes is None else max(max_bytes - read, 0)
        if kind in ("parquet", "pq"):
            yield from _read_parquet(data_file.name, data_file.open)
            continue
        if kind not in ("csv", "tsv", "json", "jsonl", "ndjson"):
            raise ConversionError(f"Cannot tell the format of {data_file.name}; pass input_format "
                                  f"(csv, tsv, parquet, json or jsonl)")
        with data_file.open(max_bytes=budget) as stream:
            if kind in ("csv", "tsv"):
                yield from _read_csv(data_file.name, stream, "\t" if kind == "tsv" else ",")
            elif stream.peek(64)[:64].lstrip(codecs.BOM_UTF8 + b" \t\r\n").startswith(b"["):
                yield from _read_json_array(data_file.name, stream)
            else:
                yield from _read_jsonl(data_file.name, stream)
            read += stream.bytes_read


def _lines(name: str, stream: DataStream) -> Iterator[tuple[int, bytes]]:
    """``(line_number, line)`` with the first line's BOM removed; a too-long line raises."""
    readline = stream.readline
    limit = MAX_LINE_BYTES
    for n, line in enumerate(iter(partial(readline, limit), b""), 1):
        if len(line) == limit and not line.endswith(b"\n"):
            raise LineTooLongError(name, n, limit)
        yield n, line.removeprefix(codecs.BOM_UTF8) if n == 1 else line


def _read_jsonl(name: str, stream: DataStream) -> Iterator[dict[str, Any]]:
    loads = orjson.loads
    for n, line in _lines(name, stream):
        if line.strip():
            try:
                row = loads(line)
            except orjson.JSONDecodeError as exc:
                raise ConversionError(f"{name}:{n}: invalid JSON: {exc}") from None
            if not isinstance(row, dict):
                raise ConversionError(f"{name}:{n}: expected a JSON object")
            yield row


def _read_csv(name: str, stream: DataStream, delimiter: str) -> Iterator[dict[str, Any]]:
    # csv reads from any iterator of strings and joins quoted fields across lines itself, so
    # the lines can come from the bounded binary reader rather than an unbounded text one.
    def text_lines() -> Iterator[str]:
        for n, line in _lines(name, stream):
            try:
                yield line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ConversionError(f"{name}:{n}: invalid UTF-8 at byte column {exc.start + 1}") from None

    reader = csv.DictReader(text_lines(), delimiter=delimiter)
    try:
        yield from reader
    except csv.Error as exc:
        raise ConversionError(f"{name}:{reader.line_num}: invalid CSV: {exc}") from None


class _ItemBoundedReader:
    """What ijson reads from: counts the bytes read since the last item and caps them.

    ijson keeps one item in memory at a time; the cap keeps that item as small as a line
    would have to be (an item of a JSON array becomes one JSONL line).
    """

    _CHUNK = 64 * 1024

    def __init__(self, name: str, stream: DataStream) -> None:
        self.name = name
        self.stream = stream
        self.since_item = 0
        self.item = 1

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(self._CHUNK if n < 0 else min(n, self._CHUNK))
        self.since_item += len(data)
        if self.since_item > MAX_LINE_BYTES + self._CHUNK:
            raise ConversionError(f"{self.name}: item {self.item} of the JSON array is larger than "
                                  f"{MAX_LINE_BYTES} bytes, the line limit of a record")
        return data


def _read_json_array(name: str, stream: DataStream) -> Iterator[dict[str, Any]]:
    import ijson

    if stream.peek(3)[:3] == codecs.BOM_UTF8:
        stream.read(3)
    reader = _ItemBoundedReader(name, stream)
    items = ijson.items(reader, "item", use_float=True)
    while True:
        try:
            row = next(items)
        except StopIteration:
            return
        except ijson.JSONError as exc:
            raise ConversionError(f"{name}: invalid JSON array (item {reader.item}): {exc}") from None
        if not isinstance(row, dict):
            raise ConversionError(f"{name}: array items must be objects (item {reader.item} is not)")
        reader.item += 1
        reader.since_item = 0
        yield row


def _read_parquet(name: str, opener: Any) -> Iterator[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow is an optional extra
        raise ConversionError(
            "Reading Parquet needs pyarrow: pip install 'airflow-bedrock-ft[parquet]'"
        ) from exc
    if name.startswith("s3://"):
        # Parquet needs a seekable file: copy the object to a temporary file first.
        with tempfile.TemporaryFile() as tmp, opener() as stream:
            while chunk := stream.read(1 << 20):
                tmp.write(chunk)
            tmp.seek(0)
            yield from _parquet_batches(pq.ParquetFile(tmp))
    else:
        yield from _parquet_batches(pq.ParquetFile(name))


def _parquet_batches(parquet_file: Any) -> Iterator[dict[str, Any]]:
    for batch in parquet_file.iter_batches(batch_size=4096):
        yield from batch.to_pylist()


class _Row:
    """Resolves target fields of one row from the mapping, the template or same-named columns."""

    def __init__(self, row: Mapping[str, Any], mapping: Mapping[str, str], template: Mapping[str, str],
                 index: int) -> None:
        self.row = row
        self.mapping = mapping
        self.template = template
        self.index = index

    def get(self, field: str) -> Any:
        for name in (field, _ALIASES.get(field)):
            if name is None:
                continue
            if name in self.template:
                try:
                    return self.template[name].format_map(self.row)
                except KeyError as exc:
                    raise ConversionError(f"Row {self.index}: template for {name!r} uses column {exc}, "
                                          f"which the row does not have") from None
            if name in self.mapping:
                column = self.mapping[name]
                if column not in self.row:
                    raise ConversionError(f"Row {self.index}: no column {column!r} (mapped to {name!r}); "
                                          f"columns: {', '.join(map(str, self.row))}")
                return self.row[column]
        for name in (field, _ALIASES.get(field)):
            if name is not None and not self.mapping and not self.template and name in self.row:
                return self.row[name]
        return None

    def text(self, field: str) -> str | None:
        value = self.get(field)
        if value is None:
            return None
        return value if isinstance(value, str) else str(value)


def _media_block(uri: str, kind: str) -> dict[str, Any]:
    ext = uri.rsplit(".", 1)[-1].lower()
    fmt = (_IMAGE_EXT if kind == "image" else _VIDEO_EXT).get(ext, ext)
    return {kind: {"format": fmt, "source": {"s3Location": {"uri": uri}}}}


def _messages_column(value: Any, index: int) -> list[dict[str, Any]]:
    if isinstance(value, (str, bytes)):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ConversionError(f"Row {index}: the messages column is not a JSON array") from None
    if not isinstance(value, list):
        raise ConversionError(f"Row {index}: the messages column must hold a list of messages")
    return [m for m in value if isinstance(m, dict)]


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return "" if content is None else str(content)


def _converse(r: _Row, *, with_assistant: bool) -> dict[str, Any]:
    record: dict[str, Any] = {"schemaVersion": F.CONVERSE_SCHEMA_VERSION}
    system = r.text("system")
    messages_value = r.get("messages")
    if messages_value is not None:
        messages = []
        for m in _messages_column(messages_value, r.index):
            role = m.get("role")
            if role == "system":
                system = _content_text(m.get("content"))
                continue
            content = m.get("content")
            blocks = content if isinstance(content, list) else [{"text": _content_text(content)}]
            messages.append({"role": role, "content": blocks})
    else:
        user_content: list[dict[str, Any]] = []
        for kind in ("image", "video"):
            uri = r.text(kind)
            if uri:
                user_content.append(_media_block(uri, kind))
        user_content.append({"text": r.text("user") or ""})
        messages = [{"role": "user", "content": user_content}]
        assistant = r.text("assistant")
        if with_assistant or assistant is not None:
            messages.append({"role": "assistant", "content": [{"text": assistant or ""}]})
    if system:
        record["system"] = [{"text": system}]
    record["messages"] = messages
    return record


def _anthropic(r: _Row) -> dict[str, Any]:
    record: dict[str, Any] = {}
    system = r.text("system")
    messages_value = r.get("messages")
    if messages_value is not None:
        messages = []
        for m in _messages_column(messages_value, r.index):
            if m.get("role") == "system":
                system = _content_text(m.get("content"))
            else:
                messages.append({"role": m.get("role"), "content": _content_text(m.get("content"))})
    else:
        messages = [{"role": "user", "content": r.text("user") or ""},
                    {"role": "assistant", "content": r.text("assistant") or ""}]
    if system:
        record["system"] = system
    record["messages"] = messages
    return record


def _rft(r: _Row) -> dict[str, Any]:
    messages_value = r.get("messages")
    if messages_value is not None:
        messages = [{"role": m.get("role"), "content": _content_text(m.get("content"))}
                    for m in _messages_column(messages_value, r.index)]
    else:
        messages = []
        system = r.text("system")
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": r.text("user") or ""})
    record: dict[str, Any] = {"messages": messages}
    answer = r.get("reference_answer")
    if answer is not None:
        record["reference_answer"] = answer
    for extra in (*r.mapping, *r.template):
        if extra not in _RFT_FIELDS and extra not in record:
            record[extra] = r.get(extra)
    return record


def convert_rows(
    rows: Iterable[Mapping[str, Any]],
    data_format: str,
    *,
    mapping: Mapping[str, str] | None = None,
    template: Mapping[str, str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Turn ``rows`` into records of ``data_format`` (a ``core.models.DataFormat`` value).

    :param mapping: target field -> source column.
    :param template: target field -> ``str.format`` template over the row's columns; a
        template with no placeholders is a constant (e.g. a shared system prompt).
    :raises ConversionError: for a missing column or a format that cannot be produced.
    """
    fmt = DataFormat(data_format)
    if fmt is DataFormat.INVOCATION_LOGS:
        raise ConversionError("Invocation logs are written by Bedrock; they cannot be converted to")
    mapping = dict(mapping or {})
    template = dict(template or {})
    passthrough = not mapping and not template
    compatible = F.COMPATIBLE_SHAPES[fmt]
    for index, row in enumerate(rows, 1):
        if passthrough and F.detect_shape(row) in compatible:
            yield dict(row)
            continue
        r = _Row(row, mapping, template, index)
        if fmt is DataFormat.PROMPT_COMPLETION:
            yield {"prompt": r.text("prompt") or "", "completion": r.text("completion") or ""}
        elif fmt is DataFormat.CONVERSE:
            yield _converse(r, with_assistant=True)
        elif fmt is DataFormat.DISTILLATION_PROMPTS:
            yield _converse(r, with_assistant=False)
        elif fmt is DataFormat.ANTHROPIC:
            yield _anthropic(r)
        elif fmt is DataFormat.CONTINUED_PRE_TRAINING:
            yield {"input": r.text("input") or ""}
        elif fmt is DataFormat.RFT:
            yield _rft(r)
        else:
            yield {"image-ref": r.text("image-ref") or "", "caption": r.text("caption") or ""}


def convert_file(
    source: Source,
    destination: str | os.PathLike[str],
    data_format: str,
    *,
    mapping: Mapping[str, str] | None = None,
    template: Mapping[str, str] | None = None,
    input_format: str | None = None,
    s3_client: Any = None,
    max_bytes: int | None = None,
    max_output_bytes: int | None = None,
) -> int:
    """Convert ``source`` (see :func:`read_rows`) into a JSONL file; return the record count.

    :param max_bytes: decompressed bytes of input past which reading stops (see :func:`read_rows`).
    :param max_output_bytes: stop with :class:`ConversionError` once the JSONL written passes
        this size (e.g. the largest dataset the model accepts), so a small compressed input
        cannot fill the disk.
    """
    count = written = 0
    dumps = orjson.dumps
    with open(destination, "wb") as out:
        rows = read_rows(source, s3_client=s3_client, input_format=input_format, max_bytes=max_bytes)
        for record in convert_rows(rows, data_format, mapping=mapping, template=template):
            line = dumps(record) + b"\n"
            out.write(line)
            written += len(line)
            count += 1
            if max_output_bytes is not None and written > max_output_bytes:
                raise ConversionError(f"{os.fspath(source)}: stopped converting at record {count}: the "
                                      f"converted records pass {max_output_bytes} bytes, more than the "
                                      f"model accepts")
    return count
