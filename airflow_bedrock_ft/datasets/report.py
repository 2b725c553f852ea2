"""The result of validating a dataset: every problem found, counts per rule and totals.

A report collects all problems rather than stopping at the first one, so a user fixes a
dataset in one round trip. Stored problems are capped, in total (``max_problems``) and per rule
(``max_problems_per_rule``, so one rule breaking on every line leaves room for the others), but
every problem is still counted, so the counts stay exact on files with millions of bad lines.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

ERROR = "error"
WARNING = "warning"

#: Rules whose failure Bedrock reports as "Data files must conform to JSONL format".
PARSE_RULES = frozenset({"json", "utf8", "blank_line", "record.type", "empty_file", "line.too_long"})


@dataclass(frozen=True)
class DataProblem:
    """One problem in a dataset: where it is, which rule it breaks and why.

    :param file: the file (local path or ``s3://`` URI) the problem is in.
    :param line: 1-based line number, or None for problems about a whole file or dataset.
    :param rule: stable short rule id, e.g. ``"json"`` or ``"messages.alternation"``.
    :param message: a full sentence naming the value and the rule.
    :param excerpt: the start of the offending line (empty for file-level problems).
    :param severity: ``"error"`` (Bedrock would reject the data) or ``"warning"``.
    """

    file: str
    line: int | None
    rule: str
    message: str
    excerpt: str = ""
    severity: str = ERROR

    @property
    def is_error(self) -> bool:
        """True when this problem makes the dataset invalid."""
        return self.severity == ERROR

    def location(self) -> str:
        """``file:line`` (or just ``file``) for messages."""
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "file": self.file,
            "line": self.line,
            "rule": self.rule,
            "message": self.message,
            "excerpt": self.excerpt,
            "severity": self.severity,
        }

    def format(self) -> str:
        """One line for a human report."""
        text = f"{self.location()}: {self.severity} [{self.rule}] {self.message}"
        if self.excerpt:
            text += f" | {self.excerpt}"
        return text


@dataclass
class SplitTotals:
    """Counts for one split (``train`` or ``validation``); tokens are estimates.

    ``tokens`` is the per-epoch training volume that a cost estimate multiplies by the number
    of epochs and the price per token.
    """

    files: int = 0
    records: int = 0
    bytes: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    max_record_tokens: int = 0
    images: int = 0
    videos: int = 0

    @property
    def tokens(self) -> int:
        """Input plus output tokens over all records."""
        return self.input_tokens + self.output_tokens

    def to_dict(self) -> dict[str, int]:
        """JSON-able form."""
        return {
            "files": self.files,
            "records": self.records,
            "bytes": self.bytes,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "tokens": self.tokens,
            "max_record_tokens": self.max_record_tokens,
            "images": self.images,
            "videos": self.videos,
        }


@dataclass
class DatasetReport:
    """Everything :func:`~airflow_bedrock_ft.datasets.validate_dataset` found.

    ``ok`` is True when there is no error (warnings allowed). ``problems`` holds at most
    ``max_problems`` entries in the order found, and at most ``max_problems_per_rule`` of any
    one rule (None: no per-rule cap); ``counts_by_rule`` counts all of them.
    """

    model: str
    customization_type: str
    data_format: str
    chars_per_token: float = 4.0
    token_limit: int | None = None
    max_problems: int = 1000
    max_problems_per_rule: int | None = None
    problems: list[DataProblem] = field(default_factory=list)
    counts_by_rule: dict[str, int] = field(default_factory=dict)
    error_count: int = 0
    warning_count: int = 0
    totals: dict[str, SplitTotals] = field(
        default_factory=lambda: {"train": SplitTotals(), "validation": SplitTotals()}
    )
    files: list[dict[str, Any]] = field(default_factory=list)
    epochs: int | None = None
    stored_by_rule: dict[str, int] = field(default_factory=dict)
    #: Rules of which no further problem is stored (only counted); all of them once ``full``.
    capped: set[str] = field(default_factory=set)

    # -- building ---------------------------------------------------------------------------

    def add(self, problem: DataProblem) -> None:
        """Count ``problem`` and store it while the total and per-rule caps allow."""
        rule = problem.rule
        self.count(rule, problem.severity)
        if self.stores(rule):
            self.problems.append(problem)
            stored = self.stored_by_rule[rule] = self.stored_by_rule.get(rule, 0) + 1
            if self.max_problems_per_rule is not None and stored >= self.max_problems_per_rule:
                self.capped.add(rule)

    @property
    def full(self) -> bool:
        """True when no more problems will be stored (they are still counted)."""
        return len(self.problems) >= self.max_problems

    def stores(self, rule: str) -> bool:
        """True when a further problem of ``rule`` would be stored, not only counted."""
        return rule not in self.capped and len(self.problems) < self.max_problems \
            and self.max_problems_per_rule != 0

    def count(self, rule: str, severity: str = ERROR, n: int = 1) -> None:
        """Count ``n`` problems of ``rule`` without storing them."""
        self.counts_by_rule[rule] = self.counts_by_rule.get(rule, 0) + n
        if severity == ERROR:
            self.error_count += n
        else:
            self.warning_count += n

    # -- reading ----------------------------------------------------------------------------

    @property
    def ok(self) -> bool:
        """True when the dataset has no errors."""
        return self.error_count == 0

    @property
    def errors(self) -> list[DataProblem]:
        """Stored problems of severity error."""
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[DataProblem]:
        """Stored problems of severity warning."""
        return [p for p in self.problems if not p.is_error]

    @property
    def problems_truncated(self) -> int:
        """How many problems were counted but not stored."""
        return self.error_count + self.warning_count - len(self.problems)

    def rules(self) -> set[str]:
        """All rule ids that fired (errors and warnings)."""
        return set(self.counts_by_rule)

    def training_tokens(self, epochs: int | None = None) -> int:
        """Estimated tokens Bedrock bills for training: train tokens times epochs.

        :param epochs: defaults to the ``epochCount`` hyperparameter, or the model's default.
        """
        n = epochs if epochs is not None else (self.epochs or 1)
        return self.totals["train"].tokens * n

    def failure_message(self) -> str:
        """One Bedrock-style ``failureMessage`` for the first error, naming file, line and rule.

        Returns an empty string when the dataset is valid.
        """
        first = next((p for p in self.problems if p.is_error), None)
        if first is None:
            return ""
        name = _display_name(first.file)
        where = f"line {first.line}: " if first.line is not None else ""
        detail = f"({where}{first.rule}: {first.message})"
        if first.rule in PARSE_RULES:
            text = (f"Unable to parse Amazon S3 file: {name}. Data files must conform to JSONL format. "
                    f"{detail}")
        elif first.rule.startswith("tokens."):
            text = f"Input size exceeded in file {name} for record at line {first.line}. {detail}"
        elif first.rule in ("file.not_found", "file.read", "no_files"):
            text = f"Could not read the data at {first.file}. {detail}"
        elif first.rule.startswith("record_count.") or first.rule.startswith("file_size."):
            text = f"Data validation failed for {name}. {detail}"
        else:
            text = f"Input data at {name} does not follow the required format for {self.model}. {detail}"
        more = self.error_count - 1
        if more > 0:
            text += f" {more} more error{'s' if more > 1 else ''} found."
        return text[:2048]

    def summary(self, max_problems: int = 20) -> dict[str, Any]:
        """A compact JSON-able summary (for XCom): totals, counts and the first problems."""
        return self.to_dict(max_problems=max_problems, include_files=False)

    def to_dict(self, max_problems: int | None = None, include_files: bool = True) -> dict[str, Any]:
        """JSON-able form of the whole report.

        :param max_problems: store at most this many problems (default: all stored).
        """
        shown = self.problems if max_problems is None else self.problems[:max_problems]
        out: dict[str, Any] = {
            "ok": self.ok,
            "model": self.model,
            "customization_type": self.customization_type,
            "data_format": self.data_format,
            "chars_per_token": self.chars_per_token,
            "token_limit": self.token_limit,
            "errors": self.error_count,
            "warnings": self.warning_count,
            "counts_by_rule": dict(sorted(self.counts_by_rule.items())),
            "totals": {k: v.to_dict() for k, v in self.totals.items()},
            "estimated_training_tokens": self.training_tokens(),
            "epochs": self.epochs,
            "problems": [p.to_dict() for p in shown],
            "problems_not_shown": self.error_count + self.warning_count - len(shown),
            "max_problems_per_rule": self.max_problems_per_rule,
        }
        if include_files:
            out["files"] = list(self.files)
        if not self.ok:
            out["failure_message"] = self.failure_message()
        return out

    def format_text(self, max_problems: int = 50) -> str:
        """A human-readable report: verdict, totals, counts per rule, then the problems."""
        verdict = "VALID" if self.ok else "INVALID"
        lines = [
            f"Dataset {verdict} for {self.model} ({self.customization_type}, format {self.data_format}): "
            f"{self.error_count} error(s), {self.warning_count} warning(s)",
        ]
        for split, t in self.totals.items():
            if t.files or t.records:
                lines.append(
                    f"  {split}: {t.files} file(s), {t.records} record(s), {_human_bytes(t.bytes)}, "
                    f"~{t.tokens} tokens (input {t.input_tokens}, output {t.output_tokens}; "
                    f"largest record ~{t.max_record_tokens})"
                )
        epochs = self.epochs or 1
        lines.append(
            f"  estimated training tokens: ~{self.training_tokens()} ({epochs} epoch(s); "
            f"estimate = characters / {self.chars_per_token:g})"
        )
        if self.counts_by_rule:
            lines.append("  problems by rule:")
            for rule, n in sorted(self.counts_by_rule.items(), key=lambda kv: (-kv[1], kv[0])):
                stored = self.stored_by_rule.get(rule, 0)
                note = f" (first {stored} listed)" if stored < n and stored else \
                    " (none listed)" if stored < n else ""
                lines.append(f"    {rule}: {n}{note}")
        if self.problems:
            lines.append("  problems:")
            for p in self.problems[:max_problems]:
                lines.append("    " + p.format())
            hidden = self.error_count + self.warning_count - min(len(self.problems), max_problems)
            if hidden > 0:
                lines.append(f"    ... and {hidden} more")
        return "\n".join(lines)


_PSEUDO_FILES = {"<train>": "the training data", "<validation>": "the validation data",
                 "<dataset>": "the dataset", "<hyperparameters>": "the hyperparameters"}


def _display_name(file: str) -> str:
    if file in _PSEUDO_FILES:
        return _PSEUDO_FILES[file]
    if file.startswith("s3://"):
        return file.rsplit("/", 1)[-1] or file
    return os.path.basename(file) or file


def _human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    exp = min(int(math.log(n, 1024)), 4)
    return f"{n / 1024**exp:.1f} {['B', 'KiB', 'MiB', 'GiB', 'TiB'][exp]}"

