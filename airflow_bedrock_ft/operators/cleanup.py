"""Operator that deletes custom models this plugin trained and nobody uses any more."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_bedrock_ft.operators.reaper import _flag

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook


class BedrockCleanupCustomModelsOperator(BaseOperator):
    """Delete Amazon Bedrock custom models that this plugin trained and that nobody uses.

    Each custom model costs storage every month. The operator lists the account's custom
    models and deletes one only when its job carries this plugin's identity tags, it is not
    promoted (no registry stage, or a stage not in ``keep_stages``), no custom model deployment
    or provisioned throughput uses it, and it is older than ``older_than``. Whatever cannot be
    read is kept (:mod:`airflow_bedrock_ft.core.cleanup` has the full rules); an error listing
    deployments or provisioned throughput keeps every model.

    A dry run by default (``delete=False``): it logs what it would delete, why, and the monthly
    storage saved (from the price table; "unknown" without a price). Returns (XCom) the list of
    decisions ``{"model_arn", "model_name", "action", "reason", "created", "stage",
    "storage_usd_per_month", "outcome"}``.

    .. seealso::
        https://docs.aws.amazon.com/bedrock/latest/APIReference/API_DeleteCustomModel.html

    :param older_than: keep models younger than this (timedelta, seconds, or ``"30d"``; default
        30 days). (templated)
    :param keep_stages: registry stages whose models are kept, e.g. ``["production"]``
        (default None: every model with a stage is kept). (templated)
    :param delete: delete the unused models (default False: report only). (templated)
    :param price_file: price table overriding the built-in one (default ``[bedrock_ft]
        price_file``). (templated)
    :param aws_conn_id: The Airflow connection used for AWS credentials. (templated)
    :param region_name: AWS region; defaults to the connection's. (templated)
    """

    template_fields: Sequence[str] = (
        "older_than", "keep_stages", "delete", "price_file", "aws_conn_id", "region_name",
    )
    ui_color = "#ffb366"

    def __init__(
        self,
        *,
        older_than: datetime.timedelta | float | str = datetime.timedelta(days=30),
        keep_stages: Sequence[str] | None = None,
        delete: bool | str = False,
        price_file: str | None = None,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.older_than = older_than
        self.keep_stages = keep_stages
        self.delete = delete
        self.price_file = price_file
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    @cached_property
    def hook(self) -> BedrockFineTuneHook:
        """The Bedrock hook (a cached property, so tests can replace it)."""
        from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook

        return BedrockFineTuneHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from airflow_bedrock_ft.core.cleanup import ModelDecision, cleanup_models, summarize
        from airflow_bedrock_ft.core.reaper import parse_duration
        from airflow_bedrock_ft.operators.cost import load_price_table

        delete = _flag(self.delete, "delete")
        older_than = parse_duration(self.older_than)
        keep = None if self.keep_stages is None else (
            [self.keep_stages] if isinstance(self.keep_stages, str) else list(self.keep_stages))
        self.log.info("Looking for unused custom models (%s, older than %.0f s, kept stages %s).",
                      "deleting them" if delete else "dry run", older_than, keep or "all")

        def echo(decision: ModelDecision) -> None:
            self.log.info("%s", decision.line())

        decisions = cleanup_models(self.hook.client, older_than=older_than, keep_stages=keep, delete=delete,
                                   prices=load_price_table(self.price_file), echo=echo)
        self.log.info("%s", summarize(decisions))
        return [d.to_dict() for d in decisions]
