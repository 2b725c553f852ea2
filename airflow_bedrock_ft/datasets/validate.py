"""Validate a training (and validation) dataset for one base model and customization type.

Streaming: each file is read line by line (``sources.iter_lines``), parsed with orjson and
checked by the format's record validator, so memory stays flat whatever the file size.

Decisions on the edge cases Bedrock documents only as "one JSON object per line":

- UTF-8 BOM at the start of a file: accepted with a ``bom`` warning (many Windows tools write
  one; Python's and most JSON readers' ``utf-8-sig`` accept it). A BOM anywhere else is a
  ``json`` error, because it is then part of a line's JSON text.
- CRLF line endings: accepted (``\\r`` is JSON whitespace).
- Blank (or whitespace-only) lines: ``blank_line`` error, including at the end of the file — a
  JSONL reader that parses every line fails on them, and Bedrock asks for exactly one JSON
  object per line. A single final newline is not a blank line.
- Invalid UTF-8: ``utf8`` error with the line and byte column.
- 0-byte file: ``empty_file`` error.

Bounded work on hostile files: sizes are counted in *decompressed* bytes as they are read, and
a split stops being read once it is past the model's maximum dataset size (or, for models
without a documented one, past the largest size a valid dataset can have: the record limit
times the largest record), with one ``file_size.max`` problem naming the file and the limit.
Runs of blank lines, and of identical broken lines (what a compression bomb is made of), are
counted at C speed once their rule stores no more problems; each rule stores only its first
problems (``max_problems_per_rule``) while counting all of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import partial
from typing import Any

import orjson

from airflow_bedrock_ft.core.models import (
    Customization,
    CustomizationType,
    DataFormat,
    ModelSpec,
    resolve_model,
)

from .report import ERROR, WARNING, DataProblem, DatasetReport, SplitTotals
from .sources import (
    MAX_LINE_BYTES,
    DataFile,
    DatasetSourceError,
    DatasetTooLargeError,
    Sources,
    as_list,
    default_s3_client,
    iter_lines,
    list_files,
    skip_blank_lines,
    skip_repeats,
    split_s3_uri,
)
from .validator_base import MediaObjects
from .validators import VALIDATORS, RecordValidator

BOM = b"\xef\xbb\xbf"
_EXCERPT_CHARS = 80


class DatasetRecordError(ValueError):
    """Raised by :func:`iter_records` for a line that is not a JSON object."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line


def excerpt(line: bytes) -> str:
    """The start of ``line`` as readable text, for reports."""
    text = line[: _EXCERPT_CHARS * 4].decode("utf-8", "replace").rstrip("\r\n")
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.isprintable():
        # Control characters from a binary or mis-encoded file must not reach a terminal or log.
        text = "".join(c if c.isprintable() else "\ufffd" for c in text)
    return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 3] + "..."


def parse_error(line: bytes, exc: Exception) -> tuple[str, str]:
    """Classify a line orjson rejected: ``(rule, message)``."""
    if not line.strip():
        return "blank_line", "Blank line; every line must hold one JSON object"
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as err:
        return "utf8", (f"Invalid UTF-8: byte 0x{line[err.start]:02x} at byte column {err.start + 1} "
                        f"cannot be decoded; data files must be UTF-8")
    if line.startswith(BOM):
        return "json", "Byte order mark (BOM) in the middle of the file; only the first line may have one"
    msg = getattr(exc, "msg", None) or str(exc)
    pos = getattr(exc, "pos", None)
    detail = f"{msg} at column {pos + 1}" if isinstance(pos, int) else msg
    if "unexpected end of data" in detail or "EOF" in detail:
        return "json", f"Truncated JSON (the record ends early): {detail}"
    return "json", f"Invalid JSON: {detail}"


class _Run:
    """State of one validation run; ``emit`` is handed to the record validator."""

    __slots__ = ("file", "line", "line_no", "report")

    def __init__(self, report: DatasetReport) -> None:
        self.report = report
        self.file = ""
        self.line_no: int | None = None
        self.line = b""

    def emit(self, rule: str, message: str, severity: str = ERROR) -> None:
        report = self.report
        if rule in report.capped or report.full:
            # Only counted, inline: a file of garbage must not cost an excerpt (or even a call)
            # per line.
            counts = report.counts_by_rule
            counts[rule] = counts.get(rule, 0) + 1
            if severity == ERROR:
                report.error_count += 1
            else:
                report.warning_count += 1
            return
        report.add(DataProblem(self.file, self.line_no, rule, message,
                               excerpt(self.line) if self.line_no is not None else "", severity))

    def file_problem(self, file: str, rule: str, message: str, severity: str = ERROR) -> None:
        self.report.add(DataProblem(file, None, rule, message, "", severity))


def validate_dataset(
    train: Sources,
    validation: Sources | None = None,
    *,
    model: str,
    customization_type: str = "FINE_TUNING",
    hyperparameters: Mapping[str, str] | None = None,
    s3_client: Any = None,
    max_problems: int = 1000,
    data_format: str | None = None,
    media_bucket: str | None = None,
    check_media: bool = False,
    max_problems_per_rule: int | None = 20,
) -> DatasetReport:
    """Validate ``train`` (and ``validation``) for ``model`` and return a full report.

    :param train: local file or folder, ``s3://bucket/key`` object or prefix, or a list of them.
    :param validation: the same for the validation split, optional.
    :param model: any base-model form Bedrock accepts (id, id with context suffix, ARN).
    :param customization_type: ``FINE_TUNING`` (default), ``CONTINUED_PRE_TRAINING``,
        ``DISTILLATION`` or ``REINFORCEMENT_FINE_TUNING``.
    :param hyperparameters: the job's string hyperparameters; ``batchSize`` sets Titan's
        per-record token limit, ``epochCount`` the training-token estimate, and
        ``maxPromptLength`` (RFT) the prompt token limit.
    :param s3_client: boto3 S3 client for ``s3://`` sources (default: ``boto3.client("s3")``).
    :param max_problems: store at most this many problems; all are still counted.
    :param max_problems_per_rule: store at most this many problems of any one rule (None: no
        cap); all are still counted.
    :param data_format: override the catalog's record format, e.g. ``"invocation-logs"`` for
        distillation from model-invocation logs.
    :param media_bucket: bucket that image/video locations must be in (Bedrock requires the
        dataset's bucket); inferred from an ``s3://`` train source when not given.
    :param check_media: also ``head_object`` every image/video (cached): report missing
        objects and ones over the model's size limit. Off by default: one request per image.
    :raises UnknownModelError: for a model not in the catalog.
    :raises UnsupportedCustomizationError: when the model does not support the type.
    """
    spec = resolve_model(model)
    ctype = CustomizationType(customization_type)
    customization = spec.customization(ctype)
    fmt = DataFormat(data_format) if data_format else customization.data_format
    hps = {k: str(v) for k, v in (hyperparameters or {}).items()}
    limits = customization.limits
    report = DatasetReport(
        model=spec.customization_id, customization_type=ctype.value, data_format=fmt.value,
        chars_per_token=limits.chars_per_token, max_problems=max_problems,
        max_problems_per_rule=max_problems_per_rule,
    )
    run = _Run(report)
    batch_size = _int_hp(hps, "batchSize", customization, run)
    report.epochs = _int_hp(hps, "epochCount", customization, run)
    report.token_limit = limits.token_limit(batch_size)
    train_list = as_list(train)
    if media_bucket is None:
        first_s3 = next((s for s in train_list if s.startswith("s3://")), None)
        if first_s3 is not None:
            media_bucket = split_s3_uri(first_s3)[0]
    media_objects = None
    if check_media:
        media_objects = MediaObjects(s3_client if s3_client is not None else default_s3_client())
    validator = VALIDATORS[fmt](spec, customization, emit=run.emit,
                                media_bucket=media_bucket, media_objects=media_objects)
    max_input = limits.max_input_tokens
    if fmt is DataFormat.RFT and "maxPromptLength" in hps:
        max_input = _int_hp(hps, "maxPromptLength", customization, run) or max_input
    checker = _TokenChecker(limits.chars_per_token, max_input, limits.max_output_tokens,
                            report.token_limit, run)

    validation_list = as_list(validation)
    if not train_list:
        run.file_problem("<train>", "no_files", "No training data given")
    stopped: set[str] = set()
    for split, sources in (("train", train_list), ("validation", validation_list)):
        totals = report.totals[split]
        budget = _ByteBudget.for_split(split, spec, customization)
        stop: tuple[str, int] | None = None  # (file, decompressed bytes read) where reading stopped
        not_read = 0
        for source in sources:
            try:
                files = list_files(source, s3_client)
            except DatasetSourceError as exc:
                run.file_problem(source, "file.not_found", str(exc))
                continue
            for data_file in files:
                if stop is not None:
                    not_read += 1
                    continue
                read = _validate_file(data_file, split, fmt, validator, checker, run, totals, budget)
                if read is not None:
                    stop = (data_file.name, read)
        if stop is not None:
            stopped.add(split)
            rest = f"; the {not_read} later file(s) of this split were not read" if not_read else ""
            run.file_problem(stop[0], "file_size.max",
                             f"Stopped reading after {stop[1]} decompressed bytes: {budget.reason}{rest}")
        before = report.totals["train"] if split == "validation" else None
        totals.images = validator.images - (before.images if before else 0)
        totals.videos = validator.videos - (before.videos if before else 0)
    _dataset_rules(report, spec, customization, fmt, bool(validation_list), run, stopped)
    return report


class _ByteBudget:
    """How many decompressed bytes one split may have before reading it stops."""

    def __init__(self, split: str, limit: int | None, reason: str) -> None:
        self.split = split
        self.limit = limit
        self.reason = reason

    @classmethod
    def for_split(cls, split: str, spec: ModelSpec, customization: Customization) -> _ByteBudget:
        limits = customization.limits
        who = f"{spec.name} ({customization.type.value})"
        what = "training" if split == "train" else "validation"
        documented = limits.max_train_bytes if split == "train" else limits.max_validation_bytes
        if documented is not None:
            return cls(split, documented, f"the {what} data is larger than {who} accepts "
                                          f"({documented} bytes)")
        records = (limits.max_train_records if split == "train" else limits.max_validation_records) \
            or limits.max_records
        if records is None:
            return cls(split, None, "")
        per_record = _max_record_bytes(limits)
        bound = records * per_record
        return cls(split, bound, f"no valid {what} dataset for {who} can be this large: at most "
                                 f"{records} records of at most {per_record} bytes each ({bound} bytes)")


def dataset_byte_limit(spec: ModelSpec, customization: Customization, split: str = "train") -> int | None:
    """Bytes past which ``split`` (``train`` or ``validation``) cannot be valid for the model, or None.

    The model's documented size limit where there is one; otherwise its record limit times
    the largest record its token limits allow. Readers stop there (``file_size.max``).
    """
    return _ByteBudget.for_split(split, spec, customization).limit


def _max_record_bytes(limits: Any) -> int:
    """The largest line a record within the model's token limits can take, or the line limit.

    Each estimated token is ``chars_per_token`` characters; a character takes at most 6 bytes
    in JSON text (a ``\\uXXXX`` escape), and 64 KiB covers the keys, roles and media URIs.
    """
    tokens = limits.max_total_tokens
    if limits.tokens_by_batch_size:
        tokens = max(t for _, t in limits.tokens_by_batch_size)
    if tokens is None and limits.max_input_tokens is not None:
        tokens = limits.max_input_tokens + (limits.max_output_tokens or 0)
    if tokens is None:
        return MAX_LINE_BYTES
    return min(MAX_LINE_BYTES, int(tokens * limits.chars_per_token * 6) + 64 * 1024)


def _int_hp(hps: Mapping[str, str], name: str, customization: Customization, run: _Run) -> int | None:
    raw = hps.get(name)
    if raw is None:
        default = customization.defaults().get(name)
        return int(float(default)) if default is not None else None
    try:
        return int(raw)
    except ValueError:
        run.file_problem("<hyperparameters>", "hyperparameter",
                         f"Hyperparameter {name}={raw!r} must be an integer", WARNING)
        return None


class _TokenChecker:
    """Applies the per-record token limits to estimated token counts."""

    def __init__(self, chars_per_token: float, max_input: int | None, max_output: int | None,
                 max_total: int | None, run: _Run) -> None:
        self.cpt = chars_per_token
        self.max_input = max_input
        self.max_output = max_output
        self.max_total = max_total
        # Limits as plain ints (no limit = a number no record reaches) so the hot loop needs
        # one comparison per limit.
        never = 1 << 62
        self.limit_in = max_input if max_input is not None else never
        self.limit_out = max_output if max_output is not None else never
        self.limit_total = max_total if max_total is not None else never
        self.run = run

    def report(self, in_tok: int, out_tok: int) -> None:
        cpt = self.cpt
        how = f"(estimated as characters / {cpt:g})"
        if in_tok > self.limit_in:
            self.run.emit("tokens.input",
                          f"Maximum input token count {in_tok} exceeds limit of {self.max_input} {how}")
        if out_tok > self.limit_out:
            self.run.emit("tokens.output",
                          f"Maximum output token count {out_tok} exceeds limit of {self.max_output} {how}")
        if in_tok + out_tok > self.limit_total:
            self.run.emit("tokens.max", f"Max sum of input and output token length {in_tok + out_tok} "
                                        f"exceeds total limit of {self.max_total} {how}")


_LOG_SUFFIXES = (".gz", ".json", ".jsonl")


def _validate_file(data_file: DataFile, split: str, fmt: DataFormat, validator: RecordValidator,
                   checker: _TokenChecker, run: _Run, totals: SplitTotals, budget: _ByteBudget) -> int | None:
    """Validate one file; when the split's byte budget ran out, the decompressed bytes read."""
    name = data_file.name
    if data_file.error is not None:
        run.file_problem(name, "file.read", data_file.error)
        return None
    lowered = name.lower()
    suffixes = _LOG_SUFFIXES if fmt is DataFormat.INVOCATION_LOGS else (".jsonl",)
    if data_file.listed and not lowered.endswith(suffixes):
        # Bedrock reads only .jsonl files (.gz log files) under a folder or prefix and ignores
        # the rest, such as a README or the logs' permission-check object.
        run.file_problem(name, "file.skipped", f"Not read: only {', '.join(suffixes)} files under a folder "
                                               f"or prefix are data files", WARNING)
        return None
    run.file = name
    run.line_no = None
    run.line = b""
    totals.files += 1
    file_entry: dict[str, Any] = {"file": name, "split": split, "bytes": data_file.size}
    run.report.files.append(file_entry)
    if data_file.size == 0:
        run.file_problem(name, "empty_file", "File is empty (0 bytes); it must hold one JSON object per line")
        return None
    if fmt is not DataFormat.INVOCATION_LOGS and not lowered.endswith(".jsonl"):
        # Bedrock reads only .jsonl objects; a local file may still be renamed on upload.
        run.file_problem(name, "file.extension", "File name does not end in .jsonl, which Bedrock requires "
                                                 "for training data",
                         ERROR if name.startswith("s3://") else WARNING)
    validator.start_file()
    # Locals for the hot loop: it runs once per line of multi-gigabyte files, so it keeps
    # to a few bytecodes per valid record. Limits are compared in characters
    # (tokens > limit  <=>  characters > limit * chars_per_token), and totals are summed in
    # characters and converted once at the end.
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    check = validator.check
    cpt = checker.cpt
    # Input and output are each at most the record's size, so one comparison against the
    # smallest limit finds every candidate; checker.report() then tells which limit it broke.
    gate = min(checker.limit_in, checker.limit_out, checker.limit_total) * cpt
    max_line = MAX_LINE_BYTES
    report = run.report
    bad = line_no = skipped = 0
    in_chars_total = out_chars_total = extra_total = 0
    max_chars = 0.0
    remaining = None if budget.limit is None else max(budget.limit - totals.bytes, 0)
    stopped_at: int | None = None
    try:
        stream = data_file.open(max_bytes=remaining)
    except Exception as exc:  # botocore errors are not importable here without boto3
        run.file_problem(name, "file.read", f"Cannot open file: {exc}")
        return None
    try:
        with stream:
            if stream.compressed and fmt is not DataFormat.INVOCATION_LOGS:
                run.file_problem(name, "file.gzip", "File is gzip-compressed; upload it uncompressed "
                                                    "for Bedrock training data", WARNING)
            readline = stream.readline
            for n, line in enumerate(iter(partial(readline, max_line), b""), 1):
                line_no = n + skipped
                try:
                    record = loads(line)
                except decode_error as exc:
                    run.line_no, run.line = line_no, line
                    if not report.stores("blank_line") and not line.strip():
                        # A run of blank lines (a gzip of newlines) is counted in bulk: once the
                        # rule stores no more problems, each further line costs nothing.
                        more = skip_blank_lines(stream)
                        report.count("blank_line", ERROR, more + 1)
                        skipped += more
                        line_no += more
                        bad += more + 1
                        continue
                    if len(line) == max_line and not line.endswith(b"\n"):
                        _skip_rest_of_line(readline, max_line)
                        run.emit("line.too_long", f"Line is longer than {max_line} bytes; no record can be "
                                                  f"this large (missing newlines?)")
                        bad += 1
                        continue
                    if line_no == 1 and line.startswith(BOM):
                        run.emit("bom", "File starts with a UTF-8 byte order mark (BOM); accepted, but "
                                        "better saved without one", WARNING)
                        try:
                            record = loads(line[3:])
                        except decode_error as exc2:
                            run.emit(*parse_error(line[3:], exc2))
                            bad += 1
                            continue
                    else:
                        rule, message = parse_error(line, exc)
                        run.emit(rule, message)
                        bad += 1
                        if not report.stores(rule):
                            # Identical broken lines (what a gzip bomb is made of) break the same
                            # rule: count a run of them in bulk.
                            more = skip_repeats(stream, line)
                            report.count(rule, ERROR, more)
                            skipped += more
                            line_no += more
                            bad += more
                        continue
                if type(record) is not dict:
                    run.line_no, run.line = line_no, line
                    run.emit("record.type", f"Line holds a JSON {_json_type(record)}, not a JSON object")
                    bad += 1
                    if not report.stores("record.type"):
                        more = skip_repeats(stream, line)
                        report.count("record.type", ERROR, more)
                        skipped += more
                        line_no += more
                        bad += more
                    continue
                run.line_no = line_no
                run.line = line
                result = check(record)
                if result is None:
                    continue
                in_chars, out_chars, extra = result
                in_chars_total += in_chars
                out_chars_total += out_chars
                if extra:
                    extra_total += extra
                    in_chars += extra * cpt  # type: ignore[assignment]
                size = in_chars + out_chars
                if size > max_chars:
                    max_chars = size
                if size > gate:
                    checker.report(extra + _ceil_div(result[0], cpt), _ceil_div(out_chars, cpt))
    except DatasetTooLargeError as exc:
        stopped_at = exc.bytes_read
    except (OSError, EOFError) as exc:
        run.line_no = None
        run.file_problem(name, "file.read", f"Cannot read file after line {line_no}: {exc}")
    run.line_no = None
    records = line_no - bad
    totals.records += records
    consumed = stream.bytes_read
    totals.bytes += consumed
    file_entry["decompressed_bytes"] = consumed
    totals.input_tokens += _ceil_div(in_chars_total, cpt) + extra_total
    totals.output_tokens += _ceil_div(out_chars_total, cpt)
    totals.max_record_tokens = max(totals.max_record_tokens, _ceil_div(max_chars, cpt))
    run.report.files[-1].update({"lines": line_no, "records": records})
    if line_no == 0 and stopped_at is None:
        run.file_problem(name, "empty_file", "File holds no data after decompression")
    return stopped_at


def _ceil_div(chars: float, cpt: float) -> int:
    return -int(-chars // cpt)


def _skip_rest_of_line(readline: Any, max_line: int) -> None:
    while True:
        rest = readline(max_line)
        if not rest or rest.endswith(b"\n"):
            return


def _json_type(value: Any) -> str:
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean",
            type(None): "null"}.get(type(value), type(value).__name__)


def _dataset_rules(report: DatasetReport, spec: ModelSpec, customization: Customization, fmt: DataFormat,
                   has_validation: bool, run: _Run, stopped: set[str]) -> None:
    limits = customization.limits
    train = report.totals["train"]
    val = report.totals["validation"]
    tname = "The training data"
    who = f"{spec.name} ({customization.type.value})"
    if has_validation and not limits.validation_allowed:
        run.file_problem("<validation>", "validation.not_allowed",
                         f"{who} does not take a validation dataset")
    # A split whose reading stopped has more records than were counted: no minimum applies.
    if limits.min_records is not None and train.records < limits.min_records and "train" not in stopped:
        run.file_problem("<train>", "record_count.min",
                         f"{tname} has {train.records} records; {who} needs at least {limits.min_records}")
    if limits.max_train_records is not None and train.records > limits.max_train_records:
        run.file_problem("<train>", "record_count.max",
                         f"{tname} has {train.records} records; {who} accepts at most "
                         f"{limits.max_train_records}")
    if has_validation:
        if limits.min_validation_records is not None and val.records < limits.min_validation_records \
                and "validation" not in stopped:
            run.file_problem("<validation>", "record_count.min",
                             f"The validation data has {val.records} records; {who} needs at least "
                             f"{limits.min_validation_records}")
        if limits.max_validation_records is not None and val.records > limits.max_validation_records:
            run.file_problem("<validation>", "record_count.max",
                             f"The validation data has {val.records} records; {who} accepts at most "
                             f"{limits.max_validation_records}")
    total = train.records + val.records
    if limits.max_records is not None and total > limits.max_records:
        if has_validation:
            run.file_problem("<dataset>", "record_count.total",
                             f"Training plus validation records total {total}; {who} accepts at most "
                             f"{limits.max_records}")
        elif limits.max_train_records is None or train.records <= limits.max_train_records:
            run.file_problem("<train>", "record_count.max",
                             f"{tname} has {train.records} records; {who} accepts at most "
                             f"{limits.max_records}")
    # A split whose reading stopped at its size limit already has its one file_size.max problem.
    if limits.max_train_bytes is not None and train.bytes > limits.max_train_bytes and "train" not in stopped:
        run.file_problem("<train>", "file_size.max",
                         f"{tname} is {train.bytes} bytes; {who} accepts at most {limits.max_train_bytes}")
    if limits.max_validation_bytes is not None and val.bytes > limits.max_validation_bytes \
            and "validation" not in stopped:
        run.file_problem("<validation>", "file_size.max",
                         f"The validation data is {val.bytes} bytes; {who} accepts at most "
                         f"{limits.max_validation_bytes}")


def iter_records(source: Sources, *, s3_client: Any = None) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """Yield ``(file, line_number, record)`` for every JSON object in ``source``.

    Reads the same locations as :func:`validate_dataset` (files, folders, S3 objects and
    prefixes, gzip), streaming. Blank lines and a leading BOM are skipped, as the validator
    accepts them at most as warnings.

    :raises DatasetRecordError: for a line that is not valid JSON or not a JSON object.
    :raises DatasetSourceError: for a location that does not exist.
    """
    loads = orjson.loads
    for data_file in list_files(source, s3_client):
        with data_file.open() as stream:
            line_no = 0
            for line, too_long in iter_lines(stream):
                line_no += 1
                if too_long:
                    raise DatasetRecordError(data_file.name, line_no, "line too long")
                if line_no == 1 and line.startswith(BOM):
                    line = line[3:]
                try:
                    record = loads(line)
                except orjson.JSONDecodeError as exc:
                    if not line.strip():
                        continue
                    raise DatasetRecordError(data_file.name, line_no, parse_error(line, exc)[1]) from None
                if type(record) is not dict:
                    raise DatasetRecordError(data_file.name, line_no,
                                             f"expected a JSON object, got {_json_type(record)}")
                yield data_file.name, line_no, record
