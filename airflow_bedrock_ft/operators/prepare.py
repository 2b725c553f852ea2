"""Airflow step that turns raw data into a validated, uploaded Bedrock training dataset."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, BaseOperator
from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_bedrock_ft.core.cost import PriceTable
    from airflow_bedrock_ft.datasets.report import DatasetReport

_JSONL_EXTENSIONS = (".jsonl", ".jsonl.gz", ".ndjson")


def _default_outlets(output_s3_uri: str) -> list[Asset]:
    # A templated destination is only known at run time, so it cannot name an Asset at parse time.
    if "{{" in output_s3_uri or "{%" in output_s3_uri:
        return []
    return [Asset(output_s3_uri.rstrip("/"))]


class BedrockFineTunePrepareDataOperator(BaseOperator):
    """Convert, validate, split and upload a dataset for Amazon Bedrock model customization.

    Reads raw rows (CSV, TSV, Parquet, JSON or JSONL; local or ``s3://``), converts them to the
    base model's record format, splits off a validation set by record hash, validates both
    splits with the model's rules, and uploads them under content-addressed keys
    (``<output_s3_uri>/sha256-<hex>/train.jsonl``), so identical data is uploaded once and a
    job's data never changes under it. Invalid data fails the task with every problem's file,
    line and rule; nothing is uploaded then.

    Returns (XCom) ``{"train_s3_uri", "validation_s3_uri", "report", "cost_estimate"}``, where
    ``report`` is the validation summary (totals, estimated tokens, counts per rule) and
    ``cost_estimate`` the estimated training cost (training tokens x ``epochCount`` x the price
    per 1,000 tokens) and monthly storage of the custom model, with the price's date and
    source, or ``"known": false`` and the reason when the price table has no price
    (:class:`~airflow_bedrock_ft.core.cost.CostEstimate`). Pass this XCom to the fine-tune
    operator's ``cost_estimate`` for its budget guard (``max_cost_usd``). The output prefix is
    declared as an Airflow Asset (``outlets``) and its asset event carries the URIs.

    .. seealso::
        `Prepare your training datasets
        <https://docs.aws.amazon.com/bedrock/latest/userguide/model-customization-prepare.html>`__

    :param source: raw data: local path or ``s3://`` URI (file, folder or prefix), or a list. (templated)
    :param model: base model id or ARN, as for the customization job. (templated)
    :param output_s3_uri: ``s3://bucket/prefix`` to upload the dataset under. (templated)
    :param customization_type: ``FINE_TUNING`` (default), ``CONTINUED_PRE_TRAINING``,
        ``DISTILLATION`` or ``REINFORCEMENT_FINE_TUNING``. (templated)
    :param validation_source: separate raw validation data; overrides ``validation_ratio``. (templated)
    :param validation_ratio: fraction of records split off for validation, in [0, 1). (templated)
    :param seed: seed of the deterministic split. (templated)
    :param mapping: target field -> source column (see ``datasets.convert``). (templated)
    :param template: target field -> ``str.format`` template over columns. (templated)
    :param input_format: ``csv``, ``tsv``, ``parquet``, ``json`` or ``jsonl`` when the
        extension does not tell. (templated)
    :param data_format: override the model's record format (e.g. ``invocation-logs``). (templated)
    :param hyperparameters: the job's hyperparameters (Titan's token limit depends on
        ``batchSize``; ``epochCount`` feeds the token estimate). (templated)
    :param check_media: also check that every image/video exists in S3 and is within the
        model's size limit (one ``head_object`` per distinct object).
    :param media_bucket: bucket every image/video location must be in (Bedrock requires the
        dataset's bucket); default: the bucket of ``output_s3_uri``. (templated)
    :param max_problems: problems kept in the report (all are counted).
    :param max_problems_per_rule: problems of any one rule kept in the report (all are counted).
    :param fail_on_warnings: fail on warnings too (e.g. a byte order mark).
    :param price_file: price table overriding the built-in one (default ``[bedrock_ft]
        price_file``; see :mod:`airflow_bedrock_ft.core.cost`). (templated)
    :param aws_conn_id: Airflow AWS connection; its ``endpoint_url`` is honoured.
    :param region_name: AWS region (also the region priced); default from the connection.
    """

    template_fields: Sequence[str] = (
        "source", "model", "output_s3_uri", "customization_type", "validation_source",
        "validation_ratio", "seed", "mapping", "template", "input_format", "data_format",
        "hyperparameters", "media_bucket", "price_file",
    )
    template_fields_renderers = {"mapping": "json", "template": "json", "hyperparameters": "json"}
    ui_color = "#e3f2e1"

    def __init__(
        self,
        *,
        source: str | list[str],
        model: str,
        output_s3_uri: str,
        customization_type: str = "FINE_TUNING",
        validation_source: str | list[str] | None = None,
        validation_ratio: float = 0.0,
        seed: int | str = 0,
        mapping: Mapping[str, str] | None = None,
        template: Mapping[str, str] | None = None,
        input_format: str | None = None,
        data_format: str | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        check_media: bool = False,
        media_bucket: str | None = None,
        max_problems: int = 1000,
        max_problems_per_rule: int | None = 20,
        fail_on_warnings: bool = False,
        price_file: str | None = None,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if "outlets" not in kwargs:
            kwargs["outlets"] = _default_outlets(output_s3_uri)
        super().__init__(**kwargs)
        self.source = source
        self.model = model
        self.output_s3_uri = output_s3_uri
        self.customization_type = customization_type
        self.validation_source = validation_source
        self.validation_ratio = validation_ratio
        self.seed = seed
        self.mapping = dict(mapping) if mapping else None
        self.template = dict(template) if template else None
        self.input_format = input_format
        self.data_format = data_format
        self.hyperparameters = dict(hyperparameters) if hyperparameters else None
        self.check_media = check_media
        self.media_bucket = media_bucket
        self.max_problems = max_problems
        self.max_problems_per_rule = max_problems_per_rule
        self.fail_on_warnings = fail_on_warnings
        self.price_file = price_file
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self._lineage_result: dict[str, Any] | None = None

    def _s3_client(self) -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn()

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_bedrock_ft.core.models import (
            UnknownModelError,
            UnsupportedCustomizationError,
            resolve_model,
        )
        from airflow_bedrock_ft.datasets.convert import ConversionError
        from airflow_bedrock_ft.datasets.sources import DatasetSourceError, split_s3_uri
        from airflow_bedrock_ft.datasets.upload import upload_content_addressed
        from airflow_bedrock_ft.datasets.validate import dataset_byte_limit, validate_dataset

        try:
            spec = resolve_model(self.model)
            customization = spec.customization(self.customization_type)
            fmt = self.data_format or customization.data_format.value
        except (UnknownModelError, UnsupportedCustomizationError) as exc:
            raise AirflowFailException(str(exc)) from None
        from airflow_bedrock_ft.operators.cost import load_price_table

        # Read first, so a malformed price file fails the task before anything is uploaded.
        prices = load_price_table(self.price_file)
        bucket, prefix = split_s3_uri(self.output_s3_uri)
        media_bucket = (self.media_bucket or bucket).removeprefix("s3://").rstrip("/")
        # Preparing stops where no valid dataset can be larger, so a small gzip bomb cannot fill
        # the disk; a split source may hold the training and the validation data.
        train_limit = dataset_byte_limit(spec, customization, "train")
        val_limit = dataset_byte_limit(spec, customization, "validation")
        both_limit = None if train_limit is None or val_limit is None else train_limit + val_limit
        ratio = float(self.validation_ratio or 0.0)
        client = self._s3_client()
        hps = {k: str(v) for k, v in (self.hyperparameters or {}).items()}

        with tempfile.TemporaryDirectory(prefix="bedrock_ft_prepare_") as tmp:
            train_path = os.path.join(tmp, "train.jsonl")
            split_path = os.path.join(tmp, "validation.jsonl")
            validation_path: str | None = split_path
            try:
                if self.validation_source:
                    self._materialize(self.source, train_path, fmt, client, 0.0, None, train_limit)
                    self._materialize(self.validation_source, split_path, fmt, client, 0.0, None, val_limit)
                elif ratio > 0:
                    self._materialize(self.source, train_path, fmt, client, ratio, split_path, both_limit)
                    if os.path.getsize(split_path) == 0:
                        self.log.warning("validation_ratio=%s selected no record; continuing without "
                                         "a validation set", ratio)
                        validation_path = None
                else:
                    self._materialize(self.source, train_path, fmt, client, 0.0, None, train_limit)
                    validation_path = None
            except (ConversionError, DatasetSourceError) as exc:
                raise AirflowFailException(
                    f"Cannot prepare the dataset from {self.source!r}: {exc}"
                ) from None

            report = validate_dataset(
                train_path, validation_path, model=self.model, customization_type=self.customization_type,
                hyperparameters=hps, s3_client=client, max_problems=self.max_problems,
                data_format=self.data_format, media_bucket=media_bucket, check_media=self.check_media,
                max_problems_per_rule=self.max_problems_per_rule,
            )
            report = _relative_names(report, tmp)
            self.log.info("%s", report.format_text(max_problems=20))
            if not report.ok or (self.fail_on_warnings and report.warning_count):
                raise AirflowFailException(
                    f"The dataset prepared from {self.source!r} is not valid for {spec.customization_id}; "
                    f"nothing was uploaded.\n{report.format_text(max_problems=50)}"
                )
            train = upload_content_addressed(train_path, client, bucket, prefix, "train.jsonl")
            self.log.info("Training data: %s (%s)", train.uri,
                          "uploaded" if train.uploaded else "already there")
            validation_uri = None
            if validation_path is not None:
                val = upload_content_addressed(validation_path, client, bucket, prefix, "validation.jsonl")
                validation_uri = val.uri
                self.log.info("Validation data: %s (%s)", val.uri,
                              "uploaded" if val.uploaded else "already there")

        summary = report.summary()
        cost = self._estimate(summary, client, prices)
        result = {"train_s3_uri": train.uri, "validation_s3_uri": validation_uri, "report": summary,
                  "cost_estimate": cost}
        self._record_asset_events(context, result)
        self._lineage_result = result
        return result

    def _estimate(self, summary: Mapping[str, Any], client: Any, prices: PriceTable) -> dict[str, Any] | None:
        from airflow_bedrock_ft.core.cost import estimate_from_report

        if summary.get("epochs") is None:
            self.log.info("No cost estimate: the job's number of epochs is not known (no epochCount).")
            return None
        region = self.region_name or getattr(getattr(client, "meta", None), "region_name", None)
        cost = estimate_from_report(summary, prices=prices, region=region)
        self.log.info("%s", cost.format_text())
        return cost.to_dict()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the raw sources in; the uploaded training and validation data out (with
        record counts and sizes), and the ``bedrockDatasetPreparation`` run facet. Also used on
        failure (sources only). Needs the OpenLineage provider."""
        from airflow.providers.openlineage.extractors import OperatorLineage

        from airflow_bedrock_ft import lineage

        sources = [*lineage.as_list(self.source), *lineage.as_list(self.validation_source)]
        result = self._lineage_result
        if result is None:
            return OperatorLineage(inputs=lineage.inputs(*sources))
        report = result.get("report") or {}
        totals = report.get("totals") or {}
        outputs = []
        for split, key in (("train", "train_s3_uri"), ("validation", "validation_s3_uri")):
            if result.get(key):
                split_totals = totals.get(split) or {}
                outputs.append(lineage.output_with_statistics(
                    result[key], records=split_totals.get("records"), size=split_totals.get("bytes")))
        facet = lineage.BedrockDatasetPreparationRunFacet(
            model=report.get("model") or self.model,
            customizationType=report.get("customization_type") or self.customization_type,
            dataFormat=report.get("data_format"),
            totals=dict(totals),
            estimatedTrainingTokens=report.get("estimated_training_tokens"),
            errors=int(report.get("errors") or 0),
            warnings=int(report.get("warnings") or 0),
            costEstimate=result.get("cost_estimate"),
        )
        return OperatorLineage(
            inputs=lineage.inputs(*sources), outputs=outputs, run_facets={lineage.PREPARATION_FACET: facet}
        )

    def _materialize(self, source: Any, train_path: str, fmt: str, client: Any, ratio: float,
                     validation_path: str | None, max_bytes: int | None) -> None:
        """Write ``source`` as JSONL in ``fmt`` to ``train_path`` (and split to ``validation_path``).

        Stops (``DatasetSourceError`` or ``ConversionError``) past ``max_bytes`` of JSONL.
        """
        from airflow_bedrock_ft.datasets.convert import convert_file
        from airflow_bedrock_ft.datasets.split import split_file

        sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
        already_jsonl = (not self.mapping and not self.template and self.input_format in (None, "jsonl")
                         and all(str(s).lower().endswith(_JSONL_EXTENSIONS) for s in sources))
        if already_jsonl:
            # Lines are copied unchanged, so the report's excerpts show the user's own data and
            # broken lines reach the validator instead of failing the conversion.
            split_file(sources, train_path, validation_path or os.devnull, ratio, self.seed, s3_client=client,
                       max_bytes=max_bytes)
            return
        converted = train_path + ".converted"
        written = 0
        for i, src in enumerate(sources):
            part = converted if i == 0 else f"{converted}.{i}"
            convert_file(src, part, fmt, mapping=self.mapping, template=self.template,
                         input_format=self.input_format, s3_client=client,
                         max_output_bytes=None if max_bytes is None else max(max_bytes - written, 0))
            written += os.path.getsize(part)
        parts = [converted] + [f"{converted}.{i}" for i in range(1, len(sources))]
        split_file(parts, train_path, validation_path or os.devnull, ratio, self.seed)
        for part in parts:
            os.remove(part)

    def _record_asset_events(self, context: Context, result: Mapping[str, Any]) -> None:
        outlet_events = context.get("outlet_events") if hasattr(context, "get") else None
        if outlet_events is None:
            return
        for outlet in self.outlets or []:
            if isinstance(outlet, Asset):
                outlet_events[outlet].extra = {
                    "train_s3_uri": result["train_s3_uri"],
                    "validation_s3_uri": result["validation_s3_uri"],
                    "model": self.model,
                    "records": result["report"]["totals"]["train"]["records"],
                }


def _relative_names(report: DatasetReport, folder: str) -> DatasetReport:
    """Show problems against ``train.jsonl`` / ``validation.jsonl``, not the temporary folder."""
    base = folder.rstrip(os.sep) + os.sep
    report.problems = [dataclasses.replace(p, file=p.file.replace(base, "")) for p in report.problems]
    report.files = [{**f, "file": str(f.get("file", "")).replace(base, "")} for f in report.files]
    return report
