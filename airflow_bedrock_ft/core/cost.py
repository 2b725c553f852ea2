"""Cost of a model-customization job before it is submitted, from a dated price table.

Bedrock bills model customization for two things (``bedrock-facts.md`` §10; the user guide's
custom-models page): **training**, the tokens of the training data times the number of epochs
times the model's price per 1,000 tokens, and **storage** of the resulting custom model, per
month. The user guide's formula names the training corpus only, so validation tokens are
reported but not billed here.

Prices come from :data:`BUILTIN_PRICE_FILE` (``prices.jsonl`` beside this module), one JSON
object per line, each with its source and date, optionally overridden by the user's files
(later files win, per model, customization type and region). A price the table does not have
is **unknown**, never zero: :class:`CostEstimate` then carries the reason, and a budget check
fails closed unless the caller allows unknown costs. Plain Python, no Airflow import.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from airflow_bedrock_ft.core.models import base_model_id, model_family

__all__ = [
    "BUILTIN_PRICE_FILE",
    "CostEstimate",
    "Price",
    "PriceFileError",
    "PriceTable",
    "check_budget",
    "estimate",
    "estimate_from_report",
    "load_prices",
    "price_key",
    "usd",
]

#: The price table shipped with the package.
BUILTIN_PRICE_FILE = Path(__file__).with_name("prices.jsonl")

_FIELDS = {
    "model": str,
    "customization_type": str,
    "region": str,
    "training_usd_per_1k_tokens": (int, float, type(None)),
    "storage_usd_per_month": (int, float, type(None)),
    "source": str,
    "date": str,
}
_REQUIRED = ("model", "customization_type", "region", "source", "date")
_TYPES = ("FINE_TUNING", "CONTINUED_PRE_TRAINING", "DISTILLATION", "REINFORCEMENT_FINE_TUNING")


class PriceFileError(ValueError):
    """A price file that cannot be read, or an entry that breaks the format; names file and line."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        self.file = file
        self.line = line
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Price:
    """The prices of one (base model, customization type, region), with where they come from.

    :param model: base model id without context suffix, e.g. ``amazon.titan-text-express-v1``.
    :param customization_type: e.g. ``FINE_TUNING``.
    :param region: AWS region, e.g. ``us-east-1``.
    :param training_usd_per_1k_tokens: price to train 1,000 tokens (one epoch); None: unknown.
    :param storage_usd_per_month: price to store one custom model for a month; None: unknown.
    :param source: where the prices were read.
    :param date: when the source stated them (``YYYY-MM-DD``).
    :param file: the price file and line the entry was read from.
    """

    model: str
    customization_type: str
    region: str
    training_usd_per_1k_tokens: float | None
    storage_usd_per_month: float | None
    source: str
    date: str
    file: str = ""


def price_key(model: str, customization_type: str, region: str) -> tuple[str, str, str]:
    """The table key of a model identifier in any form Bedrock accepts (id, suffixed id, ARN).

    Known models map to their catalog id without context suffix
    (``amazon.nova-micro-v1:0:128k`` -> ``amazon.nova-micro-v1:0``); others keep their id.
    """
    family = model_family(model)
    model_id = family.model_id if family is not None else base_model_id(model.strip())
    return model_id, customization_type.strip().upper(), region.strip().lower()


@dataclass
class PriceTable:
    """Prices by (model, customization type, region); :meth:`lookup` answers for any model form.

    :param prices: the entries by :func:`price_key`.
    :param files: the files read, in order (later ones override earlier ones).
    """

    prices: dict[tuple[str, str, str], Price] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def lookup(self, model: str, customization_type: str, region: str) -> Price | None:
        """The price of ``model`` for ``customization_type`` in ``region``, or None when unknown."""
        return self.prices.get(price_key(model, customization_type, region))

    def __len__(self) -> int:
        return len(self.prices)


def _parse_line(text: str, file: str, line: int) -> Price:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PriceFileError(file, line, f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(doc, dict):
        raise PriceFileError(file, line, f"an entry must be a JSON object, got {type(doc).__name__}")
    unknown = sorted(set(doc) - set(_FIELDS))
    if unknown:
        raise PriceFileError(
            file, line, f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(_FIELDS)}"
        )
    for name in _REQUIRED:
        if not isinstance(doc.get(name), str) or not doc[name].strip():
            raise PriceFileError(file, line, f"field {name!r} is required and must be a non-empty string")
    for name in ("training_usd_per_1k_tokens", "storage_usd_per_month"):
        value = doc.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value <= 0:
            raise PriceFileError(
                file, line,
                f"field {name!r} must be a positive number of USD or null (unknown), got {value!r}; "
                "a price of 0 would hide a real cost",
            )
    if doc.get("training_usd_per_1k_tokens") is None and doc.get("storage_usd_per_month") is None:
        raise PriceFileError(
            file, line, "the entry gives neither training_usd_per_1k_tokens nor storage_usd_per_month"
        )
    ctype = doc["customization_type"].strip().upper()
    if ctype not in _TYPES:
        raise PriceFileError(file, line, f"field 'customization_type' must be one of {', '.join(_TYPES)}, "
                                         f"got {doc['customization_type']!r}")
    if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]+", doc["region"].strip().lower()):
        raise PriceFileError(file, line, f"field 'region' must be an AWS region such as us-east-1, "
                                         f"got {doc['region']!r}")
    try:
        datetime.date.fromisoformat(doc["date"])
    except ValueError:
        raise PriceFileError(file, line, f"field 'date' must be YYYY-MM-DD, got {doc['date']!r}") from None
    model, ctype, region = price_key(doc["model"], ctype, doc["region"])
    training = doc.get("training_usd_per_1k_tokens")
    storage = doc.get("storage_usd_per_month")
    return Price(
        model=model, customization_type=ctype, region=region,
        training_usd_per_1k_tokens=None if training is None else float(training),
        storage_usd_per_month=None if storage is None else float(storage),
        source=doc["source"].strip(), date=doc["date"], file=f"{file}:{line}",
    )


def _read_file(path: str | os.PathLike[str], table: PriceTable) -> None:
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise PriceFileError(name, None, f"cannot read the price file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise PriceFileError(name, None, f"the price file is not UTF-8 ({exc.reason})") from None
    seen: dict[tuple[str, str, str], int] = {}
    for number, text in enumerate(lines, start=1):
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        price = _parse_line(stripped, name, number)
        key = (price.model, price.customization_type, price.region)
        if key in seen:
            raise PriceFileError(
                name, number, f"{'/'.join(key)} is already priced on line {seen[key]} of this file"
            )
        seen[key] = number
        table.prices[key] = price
    table.files.append(name)


def load_prices(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None = None,
    *,
    include_builtin: bool = True,
) -> PriceTable:
    """Read the built-in price table, then each of ``paths``; later entries win per key.

    :param paths: the user's price files (same format as :data:`BUILTIN_PRICE_FILE`).
    :param include_builtin: start from the built-in table (default True).
    :raises PriceFileError: naming the file and line of the first malformed entry.
    """
    if paths is None:
        files: list[str | os.PathLike[str]] = []
    elif isinstance(paths, (str, os.PathLike)):
        files = [paths]
    else:
        files = list(paths)
    table = PriceTable()
    if include_builtin:
        _read_file(BUILTIN_PRICE_FILE, table)
    for path in files:
        _read_file(path, table)
    return table


@dataclass(frozen=True)
class CostEstimate:
    """The estimated cost of one customization job, or why it is unknown.

    ``training_usd`` is None when the training price is unknown, ``storage_usd_per_month``
    when the storage price is: never 0 for "no price". ``known`` is True only when the
    training cost is known.

    :param model: the base model as given.
    :param customization_type: the customization type.
    :param region: the region priced.
    :param training_tokens: training tokens per epoch (the dataset report's estimate).
    :param validation_tokens: validation tokens (reported, not billed).
    :param epochs: the number of epochs.
    :param billed_tokens: ``training_tokens * epochs``.
    :param training_usd_per_1k_tokens: the price used, None when unknown.
    :param training_usd: the estimated training cost, None when unknown.
    :param storage_usd_per_month: the monthly storage price of the custom model, None when unknown.
    :param price_date: the date of the price used.
    :param price_source: the source of the price used.
    :param reason: why the cost (or a part of it) is unknown; empty when all is known.
    """

    model: str
    customization_type: str
    region: str
    training_tokens: int
    validation_tokens: int
    epochs: int
    billed_tokens: int
    training_usd_per_1k_tokens: float | None
    training_usd: float | None
    storage_usd_per_month: float | None
    price_date: str | None
    price_source: str | None
    reason: str = ""

    @property
    def known(self) -> bool:
        """True when the training cost is known."""
        return self.training_usd is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON primitives (for XCom and ``--json``)."""
        out = asdict(self)
        out["known"] = self.known
        return out

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> CostEstimate:
        """Rebuild an estimate from :meth:`to_dict` (e.g. read back from XCom).

        :raises ValueError: naming the missing or ill-typed field.
        """
        names = [f for f in cls.__dataclass_fields__]
        missing = [n for n in names if n not in doc and n != "reason"]
        if missing:
            raise ValueError(f"cost estimate: missing field(s) {', '.join(missing)}")
        return cls(**{n: doc[n] for n in names if n in doc})

    def format_text(self) -> str:
        """Two lines for people: the training arithmetic and the monthly storage."""
        validation = (f"; {self.validation_tokens} validation tokens are not billed"
                      if self.validation_tokens else "")
        if self.training_usd is not None and self.training_usd_per_1k_tokens is not None:
            training = (
                f"estimated training cost: {self.training_tokens} tokens x {self.epochs} epoch(s) x "
                f"${self.training_usd_per_1k_tokens:g} per 1,000 tokens = {usd(self.training_usd)} "
                f"(price of {self.price_date}, {self.price_source}){validation}"
            )
        else:
            training = (
                f"estimated training cost: unknown ({self.billed_tokens} billed tokens = "
                f"{self.training_tokens} x {self.epochs} epoch(s)): {self.reason}"
            )
        storage = (
            f"storage of the custom model: {usd(self.storage_usd_per_month)} per month"
            if self.storage_usd_per_month is not None
            else "storage of the custom model: unknown per month"
        )
        return f"{training}\n{storage}"


def usd(amount: float) -> str:
    """``$12.34``; amounts below a cent keep their significant digits (``$0.000245``)."""
    if amount == 0 or abs(amount) >= 0.01:
        return f"${amount:,.2f}"
    return f"${amount:.3g}" if "e" not in f"{amount:.3g}" else f"${amount:.8f}".rstrip("0")


def estimate(
    training_tokens: int,
    validation_tokens: int,
    epochs: int,
    model: str,
    customization_type: str,
    region: str | None,
    prices: PriceTable,
) -> CostEstimate:
    """Estimate a job's training cost and its custom model's monthly storage.

    Training cost = ``training_tokens * epochs * price / 1000``; validation tokens are not
    billed (the user guide bills "tokens in training data corpus x number of epochs").

    :param training_tokens: estimated tokens of the training data (one epoch).
    :param validation_tokens: estimated tokens of the validation data.
    :param epochs: ``epochCount``.
    :param model: base model id or ARN.
    :param customization_type: e.g. ``FINE_TUNING``.
    :param region: the job's region; None gives an unknown estimate.
    :param prices: from :func:`load_prices`.
    :raises ValueError: for negative token counts or epochs below 1.
    """
    for name, value in (("training_tokens", training_tokens), ("validation_tokens", validation_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    ctype = customization_type.strip().upper()
    billed = training_tokens * epochs
    common: dict[str, Any] = dict(
        model=model, customization_type=ctype, region=region or "", training_tokens=training_tokens,
        validation_tokens=validation_tokens, epochs=epochs, billed_tokens=billed,
    )
    if not region:
        return CostEstimate(**common, training_usd_per_1k_tokens=None, training_usd=None,
                            storage_usd_per_month=None, price_date=None, price_source=None,
                            reason="no region is known for the job, and prices differ by region")
    price = prices.lookup(model, ctype, region)
    if price is None:
        key = "/".join(price_key(model, ctype, region))
        files = ", ".join(prices.files) or "no price file"
        return CostEstimate(**common, training_usd_per_1k_tokens=None, training_usd=None,
                            storage_usd_per_month=None, price_date=None, price_source=None,
                            reason=f"no price for {key} in {files}; add one with its source to a "
                                   "price file")
    training_usd = None
    reason = ""
    if price.training_usd_per_1k_tokens is None:
        reason = f"the price table ({price.file}) has no training price for this model"
    else:
        training_usd = billed * price.training_usd_per_1k_tokens / 1000
    if price.storage_usd_per_month is None:
        more = f"the price table ({price.file}) has no storage price for this model"
        reason = f"{reason}; {more}" if reason else more
    return CostEstimate(**common, training_usd_per_1k_tokens=price.training_usd_per_1k_tokens,
                        training_usd=training_usd, storage_usd_per_month=price.storage_usd_per_month,
                        price_date=price.date, price_source=price.source, reason=reason)


def estimate_from_report(
    report: Mapping[str, Any],
    *,
    prices: PriceTable,
    region: str | None,
    epochs: int | None = None,
    model: str | None = None,
    customization_type: str | None = None,
) -> CostEstimate:
    """:func:`estimate` from a dataset report's JSON form (``DatasetReport.to_dict`` or
    ``summary``, e.g. the prepare step's XCom ``report``).

    :param report: has ``totals.train.tokens``, ``totals.validation.tokens``, ``model``,
        ``customization_type`` and ``epochs``.
    :param epochs: overrides the report's ``epochs`` (which is the ``epochCount`` it was
        validated with, or the model's default).
    :raises ValueError: naming the field that is missing from the report.
    """
    try:
        totals = report["totals"]
        train = int(totals["train"]["tokens"])
        validation = int((totals.get("validation") or {}).get("tokens", 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"dataset report: no token totals (totals.train.tokens): {exc!r}") from None
    n = epochs if epochs is not None else report.get("epochs")
    if n is None:
        raise ValueError("dataset report: no epochs; pass epochs= (the job's epochCount)")
    chosen_model = model or report.get("model")
    chosen_type = customization_type or report.get("customization_type") or "FINE_TUNING"
    if not chosen_model:
        raise ValueError("dataset report: no model; pass model=")
    return estimate(train, validation, int(n), str(chosen_model), str(chosen_type), region, prices)


def check_budget(cost: CostEstimate, max_cost_usd: float, *, allow_unknown: bool = False) -> str | None:
    """None when ``cost`` is within ``max_cost_usd``, else the reason to refuse the job.

    An unknown training cost is refused (fails closed) unless ``allow_unknown``.
    """
    if cost.training_usd is None:
        if allow_unknown:
            return None
        return (f"the estimated training cost is unknown ({cost.reason}), so the budget of "
                f"{usd(max_cost_usd)} cannot be checked; allow unknown costs to submit anyway")
    if cost.training_usd > max_cost_usd:
        return (f"the estimated training cost {usd(cost.training_usd)} ({cost.billed_tokens} tokens x "
                f"${cost.training_usd_per_1k_tokens:g} per 1,000, price of {cost.price_date}) exceeds the "
                f"budget of {usd(max_cost_usd)}")
    return None
