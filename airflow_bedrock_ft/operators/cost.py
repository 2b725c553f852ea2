"""The cost estimate in the Airflow layer: the price table with ``[bedrock_ft] price_file``, and
the budget guard of the fine-tune operator.

The arithmetic lives in :mod:`airflow_bedrock_ft.core.cost`; this module only reads Airflow's
configuration and turns what an upstream task returned (the prepare step's XCom, a dataset
report or an estimate) into a :class:`~airflow_bedrock_ft.core.cost.CostEstimate`.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    from airflow_bedrock_ft.core.cost import CostEstimate, PriceTable


def load_price_table(price_file: str | None = None) -> PriceTable:
    """The built-in price table, overridden by ``price_file`` or else ``[bedrock_ft] price_file``.

    :raises AirflowFailException: naming the file and line of a malformed entry.
    """
    from airflow.configuration import conf

    from airflow_bedrock_ft.core.cost import PriceFileError, load_prices

    path = price_file or conf.get("bedrock_ft", "price_file", fallback=None) or None
    try:
        return load_prices([path] if path else None)
    except PriceFileError as exc:
        raise AirflowFailException(f"Cannot read the price table: {exc}") from None


def _as_mapping(value: Any, name: str) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str):
        # A Jinja template renders an XCom dict as its Python repr, not as JSON.
        for parse in (json.loads, ast.literal_eval):
            try:
                doc = parse(value)
            except (ValueError, SyntaxError):
                continue
            if isinstance(doc, Mapping):
                return doc
    raise AirflowFailException(
        f"{name}: expected the prepare step's XCom, a dataset report or a cost estimate (a dict), "
        f"got {type(value).__name__} {str(value)[:200]!r}. No job was submitted."
    )


def resolve_estimate(
    value: Any,
    *,
    model: str,
    customization_type: str,
    epochs: int | None,
    region: str | None,
    prices: PriceTable,
    name: str = "cost_estimate",
) -> CostEstimate:
    """The estimate for this job from what an upstream task returned.

    ``value`` may be the prepare step's XCom (``{"report": ..., "cost_estimate": ...}``), a
    dataset report (``{"totals": ...}``) or a cost estimate (``CostEstimate.to_dict``). Token
    totals from a report are re-priced with this job's model, type, epochs and region, so the
    estimate follows the request actually submitted; an estimate given alone is used as is.

    :raises AirflowFailException: naming the parameter when ``value`` holds none of these.
    """
    from airflow_bedrock_ft.core.cost import CostEstimate, estimate_from_report

    doc = _as_mapping(value, name)
    report = doc.get("report") if isinstance(doc.get("report"), Mapping) else None
    if report is None and "totals" in doc:
        report = doc
    try:
        if report is not None:
            return estimate_from_report(report, prices=prices, region=region, epochs=epochs,
                                        model=model, customization_type=customization_type)
        given: Any = doc.get("cost_estimate")
        return CostEstimate.from_dict(given if isinstance(given, Mapping) else doc)
    except (ValueError, TypeError) as exc:
        raise AirflowFailException(f"{name}: {exc}. No job was submitted.") from None


def _budget_value(value: Any) -> float:
    import math

    try:
        amount = float(str(value).strip().removeprefix("$")) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        amount = math.nan
    if isinstance(value, bool) or not math.isfinite(amount) or amount < 0:
        raise AirflowFailException(
            f"max_cost_usd must be a non-negative amount of USD, got {value!r}. No job was submitted."
        )
    return amount


def budget_guard(
    cost_estimate: Any,
    max_cost_usd: Any,
    *,
    allow_unknown: bool,
    model: str,
    customization_type: str,
    epochs: Any,
    region: str | None,
    price_file: str | None,
    log: Any,
) -> dict[str, Any] | None:
    """Log the estimate from ``cost_estimate`` and refuse a job over ``max_cost_usd``.

    Without ``cost_estimate`` there is nothing to estimate: a budget then fails closed (unless
    ``allow_unknown``), since no token counts are known.

    :raises AirflowFailException: over budget, unknown and not allowed, or malformed input.
    """
    from airflow_bedrock_ft.core.cost import check_budget

    budget = None if max_cost_usd in (None, "") else _budget_value(max_cost_usd)
    if cost_estimate in (None, ""):
        if budget is None:
            return None
        if allow_unknown:
            log.warning("max_cost_usd=%s but no cost_estimate was given: the budget is not checked.", budget)
            return None
        raise AirflowFailException(
            f"max_cost_usd={budget} needs the token counts of the data: pass cost_estimate (the prepare "
            "step's XCom or a dataset report), or set allow_unknown_cost=True. No job was submitted."
        )
    try:
        n = None if epochs in (None, "") else int(str(epochs))
    except ValueError:
        raise AirflowFailException(
            f"hyperparameters: epochCount must be a whole number, got {epochs!r}. No job was submitted."
        ) from None
    cost = resolve_estimate(cost_estimate, model=model, customization_type=customization_type, epochs=n,
                            region=region, prices=load_price_table(price_file))
    log.info("%s", cost.format_text())
    if budget is not None:
        refused = check_budget(cost, budget, allow_unknown=allow_unknown)
        if refused:
            raise AirflowFailException(f"Not submitting the job: {refused}. No job was submitted.")
        log.info("Within the budget of max_cost_usd=%s.", budget)
    return cost.to_dict()
