"""Find, and delete, custom models this plugin trained that nobody uses any more.

Every custom model costs storage each month. The cleanup lists the account's custom models
and deletes a model only when all of these are proven:

- this plugin trained it: the job named by ``GetCustomModel.jobArn`` carries complete identity
  tags that hash to their identity digest (:func:`airflow_bedrock_ft.core.naming.identity_from_tags`);
- it is not promoted: it has no ``airflow-bedrock-ft:stage`` tag of the registry
  (:mod:`airflow_bedrock_ft.core.registry`), or, when ``keep_stages`` is given, its stage is
  not one of them;
- no custom model deployment and no provisioned throughput uses it;
- it is older than the limit and its status is ``Active`` or ``Failed`` (not ``Creating``).

Anything that cannot be read keeps the model, with the reason: an error listing deployments or
provisioned throughput keeps every model; an error reading one model, its tags or its job's
tags keeps that model. A dry run unless ``delete=True``. Each decision carries the monthly
storage price it saves, from the price table, or None ("unknown"). Plain Python (botocore only).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from airflow_bedrock_ft.core.cost import PriceTable, usd
from airflow_bedrock_ft.core.naming import identity_from_tags, resource_tags
from airflow_bedrock_ft.core.registry import STAGE, decode_tags
from airflow_bedrock_ft.core.retry import error_code

__all__ = ["DELETE", "KEEP", "ModelDecision", "cleanup_models", "in_use_models", "summarize"]

DELETE = "delete"
KEEP = "keep"

#: Model statuses a model can be deleted in (a ``Creating`` model is still being written).
_DELETABLE_STATUSES = ("Active", "Failed")


@dataclass(frozen=True)
class ModelDecision:
    """What the cleanup decided for one custom model, and why.

    :param model_arn: the model.
    :param model_name: its name.
    :param action: ``"delete"`` or ``"keep"``.
    :param reason: why, for people.
    :param created: its creation time (ISO 8601), when known.
    :param stage: its registry stage, when it has one.
    :param storage_usd_per_month: the monthly storage price deleting it saves (None: unknown).
    :param outcome: for a delete: ``"dry-run"``, ``"deleted"`` or ``"delete failed: ..."``.
    """

    model_arn: str
    model_name: str | None
    action: str
    reason: str
    created: str | None = None
    stage: str | None = None
    storage_usd_per_month: float | None = None
    outcome: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON primitives (for XCom and ``--json``)."""
        return asdict(self)

    def line(self) -> str:
        """One line for a log or a terminal."""
        done = f" [{self.outcome}]" if self.outcome else ""
        line = f"{self.action.upper():<6} {self.model_arn} ({self.model_name}){done}: {self.reason}"
        if self.action == DELETE:
            saved = "unknown" if self.storage_usd_per_month is None else f"{usd(self.storage_usd_per_month)}"
            line += f"; saves {saved} per month of storage"
        return line


def _pages(client: Any, operation: str, key: str) -> Iterator[Mapping[str, Any]]:
    """Every item of a list operation, through botocore's paginator."""
    for page in client.get_paginator(operation).paginate():
        yield from page.get(key) or []


def in_use_models(client: Any) -> dict[str, list[str]]:
    """Custom model ARN -> the deployments and provisioned throughputs that use it.

    :raises ClientError: or :class:`BotoCoreError` when a listing fails.
    """
    users: dict[str, list[str]] = {}
    for d in _pages(client, "list_custom_model_deployments", "modelDeploymentSummaries"):
        if d.get("modelArn"):
            users.setdefault(d["modelArn"], []).append(str(d.get("customModelDeploymentArn")))
    for p in _pages(client, "list_provisioned_model_throughputs", "provisionedModelSummaries"):
        for key in ("modelArn", "desiredModelArn", "foreignModelArn"):
            arn = p.get(key)
            if arn and str(p.get("provisionedModelArn")) not in users.get(arn, []):
                users.setdefault(arn, []).append(str(p.get("provisionedModelArn")))
    return users


def _aware(value: Any) -> datetime.datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime.datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


def _why(exc: BaseException) -> str:
    return error_code(exc) or type(exc).__name__


def _decide(
    client: Any,
    summary: Mapping[str, Any],
    *,
    users: Mapping[str, list[str]],
    older_than: float,
    keep_stages: Collection[str] | None,
    prices: PriceTable | None,
    region: str | None,
    now: datetime.datetime,
) -> ModelDecision:
    arn = str(summary.get("modelArn"))
    name = summary.get("modelName")
    created = _aware(summary.get("creationTime"))
    base: dict[str, Any] = {"model_arn": arn, "model_name": name,
                            "created": created.isoformat() if created else None}

    def keep(reason: str, **more: Any) -> ModelDecision:
        return ModelDecision(action=KEEP, reason=reason, **{**base, **more})

    try:
        model = client.get_custom_model(modelIdentifier=arn)
    except (ClientError, BotoCoreError) as exc:
        return keep(f"GetCustomModel failed ({_why(exc)}): cannot tell who trained it")
    job_arn = model.get("jobArn")
    if not job_arn:
        return keep("it names no customization job (imported or copied): not trained by this plugin")
    try:
        job_tags = resource_tags(client, job_arn)
    except (ClientError, BotoCoreError) as exc:
        return keep(f"reading the tags of its job {job_arn} failed ({_why(exc)}): cannot tell who trained it")
    identity = identity_from_tags(job_tags)
    if identity is None:
        return keep("its job carries no airflow-bedrock-ft identity tags: not trained by this plugin")
    if not identity.matches_digest():
        return keep("its job's identity tags are incomplete or do not hash to their digest: "
                    "cannot prove this plugin trained it")
    try:
        fields = decode_tags(resource_tags(client, arn))
    except (ClientError, BotoCoreError) as exc:
        return keep(f"reading its tags failed ({_why(exc)}): cannot prove it is not promoted")
    except ValueError as exc:
        return keep(f"its registry tags cannot be decoded ({exc}): cannot prove it is not promoted")
    stage = fields.get(STAGE)
    if stage is not None:
        if keep_stages is None:
            return keep(f"it is promoted (stage {stage!r})", stage=stage)
        if stage in keep_stages:
            return keep(f"it is at a kept stage ({stage!r})", stage=stage)
    if arn in users:
        return keep(f"in use by {', '.join(users[arn])}", stage=stage)
    status = model.get("modelStatus") or summary.get("modelStatus")
    if status is not None and status not in _DELETABLE_STATUSES:
        return keep(f"its status is {status}", stage=stage)
    if created is None:
        return keep("its creation time is unknown: cannot tell its age", stage=stage)
    age = (now - created).total_seconds()
    if age < older_than:
        return keep(f"younger than the limit ({_days(age)} old, limit {_days(older_than)})", stage=stage)
    storage = None
    if prices is not None:
        price = prices.lookup(str(model.get("baseModelArn") or summary.get("baseModelArn") or ""),
                              str(model.get("customizationType") or "FINE_TUNING"), region or "")
        storage = price.storage_usd_per_month if price is not None and region else None
    staged = f", stage {stage!r} not kept" if stage is not None else ", not promoted"
    return ModelDecision(
        action=DELETE, stage=stage, storage_usd_per_month=storage,
        reason=f"trained by {identity.dag_id}/{identity.run_id}/{identity.task_id}{staged}, unused, "
               f"{_days(age)} old (limit {_days(older_than)})",
        **base,
    )


def _days(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds:.0f} s"


def cleanup_models(
    client: Any,
    *,
    older_than: float,
    keep_stages: Collection[str] | None = None,
    delete: bool = False,
    prices: PriceTable | None = None,
    region: str | None = None,
    now: datetime.datetime | None = None,
    echo: Callable[[ModelDecision], None] | None = None,
) -> list[ModelDecision]:
    """Decide for every custom model of the account, and delete the unused ones when ``delete``.

    :param client: a boto3 ``bedrock`` client.
    :param older_than: keep models younger than this many seconds.
    :param keep_stages: registry stages to keep (None: keep every model with a stage).
    :param delete: delete (default False: a dry run, outcome ``"dry-run"``).
    :param prices: for the monthly storage saved (None: unknown).
    :param region: the region priced (default: the client's).
    :param now: the current time (tests); default the clock, in UTC.
    :param echo: called with each decision as it is made.
    :raises ClientError: or :class:`BotoCoreError` when ListCustomModels fails (nothing is
        deleted then).
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    region = region or getattr(getattr(client, "meta", None), "region_name", None)
    summaries = list(_pages(client, "list_custom_models", "modelSummaries"))
    try:
        users = in_use_models(client)
        listing_error = None
    except (ClientError, BotoCoreError) as exc:
        users, listing_error = {}, _why(exc)
    decisions = []
    for summary in summaries:
        if listing_error is not None:
            created = _aware(summary.get("creationTime"))
            decision = ModelDecision(
                model_arn=str(summary.get("modelArn")), model_name=summary.get("modelName"), action=KEEP,
                reason=f"listing deployments or provisioned throughput failed ({listing_error}): "
                       "cannot prove it unused",
                created=created.isoformat() if created else None,
            )
        else:
            decision = _decide(client, summary, users=users, older_than=older_than, keep_stages=keep_stages,
                               prices=prices, region=region, now=now)
        if decision.action == DELETE:
            decision = _delete(client, decision) if delete else _with(decision, "dry-run")
        decisions.append(decision)
        if echo is not None:
            echo(decision)
    return decisions


def _with(decision: ModelDecision, outcome: str) -> ModelDecision:
    return ModelDecision(**{**decision.to_dict(), "outcome": outcome})


def _delete(client: Any, decision: ModelDecision) -> ModelDecision:
    try:
        client.delete_custom_model(modelIdentifier=decision.model_arn)
    except (ClientError, BotoCoreError) as exc:
        return _with(decision, f"delete failed: {_why(exc)}")
    return _with(decision, "deleted")


def summarize(decisions: list[ModelDecision]) -> str:
    """One line: how many models were deleted (or would be) and kept, and the storage saved."""
    failed = [d for d in decisions if (d.outcome or "").startswith("delete failed")]
    chosen = [d for d in decisions if d.action == DELETE and d not in failed]
    verb = "would delete" if any(d.outcome == "dry-run" for d in chosen) else "deleted"
    known = [d.storage_usd_per_month for d in chosen if d.storage_usd_per_month is not None]
    unknown = len(chosen) - len(known)
    saved = usd(sum(known)) + " per month"
    if unknown:
        saved += f" plus unknown for {unknown} model(s)"
    text = (f"{len(decisions)} custom model(s): {verb} {len(chosen)}, kept "
            f"{len(decisions) - len(chosen) - len(failed)}; storage saved {saved}")
    if failed:
        text += f"; {len(failed)} delete(s) failed"
    return text
