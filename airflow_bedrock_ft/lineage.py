"""OpenLineage datasets and run facets of the prepare, fine-tune and evaluate steps.

Imported only from the operators' ``get_openlineage_facets_on_*`` methods, which the OpenLineage
provider (``apache-airflow-providers-openlineage``, the ``lineage`` extra) calls; without it
nothing here is imported.

Dataset names follow OpenLineage's naming conventions:

- an S3 object or prefix ``s3://bucket/key``: namespace ``s3://bucket``, name ``key``;
- a local file: namespace ``file``, name its absolute path;
- a Bedrock resource (custom model, foundation model, deployment): named by its ARN, split as
  OpenLineage splits other AWS ARNs: namespace ``arn:aws:bedrock:<region>:<account>`` (the
  account is empty for foundation models), name the resource (``custom-model/...``,
  ``foundation-model/<id>``), so that ``namespace + ":" + name`` is the ARN again. The fine-tune
  step's custom model output and the evaluate step's model input therefore meet in one node.

Run facets: ``bedrockFineTuneJob`` (:class:`BedrockFineTuneJobRunFacet`), ``bedrockDatasetPreparation``
(:class:`BedrockDatasetPreparationRunFacet`) and ``bedrockEvaluation``
(:class:`BedrockEvaluationRunFacet`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attr
from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.facet_v2 import RunFacet, output_statistics_output_dataset

#: Custom facets are identified by URN (a URI, as ``_schemaURL`` requires); README "Lineage"
#: describes their fields.
_SCHEMA_BASE = "urn:airflow-bedrock-ft:openlineage:facet"
_ARN = re.compile(r"^(arn:aws[a-z-]*:[a-z0-9-]+:[^:]*:[^:]*):(.+)$")
_FOUNDATION_ID = re.compile(r"^[a-z0-9-]+\.[a-zA-Z0-9.:-]+$")

FINE_TUNE_FACET = "bedrockFineTuneJob"
PREPARATION_FACET = "bedrockDatasetPreparation"
EVALUATION_FACET = "bedrockEvaluation"


def dataset_name(location: str) -> tuple[str, str]:
    """``(namespace, name)`` of an S3 URI, a Bedrock ARN or a local path (see the module docstring)."""
    if location.startswith("s3://"):
        bucket, _, key = location[len("s3://") :].partition("/")
        return f"s3://{bucket}", key or "/"
    match = _ARN.match(location)
    if match:
        return match.group(1), match.group(2)
    if location.startswith("file://"):
        location = location[len("file://") :]
    return "file", os.path.abspath(location)


def _datasets(locations: Iterable[str | None], kind: type[Any]) -> list[Any]:
    seen: set[tuple[str, str]] = set()
    out = []
    for location in locations:
        if not location:
            continue
        key = dataset_name(str(location))
        if key not in seen:
            seen.add(key)
            out.append(kind(namespace=key[0], name=key[1]))
    return out


def inputs(*locations: str | None) -> list[InputDataset]:
    """Input datasets for the locations given (None and duplicates skipped)."""
    return _datasets(locations, InputDataset)


def outputs(*locations: str | None) -> list[OutputDataset]:
    """Output datasets for the locations given (None and duplicates skipped)."""
    return _datasets(locations, OutputDataset)


def output_with_statistics(location: str, *, records: int | None, size: int | None) -> OutputDataset:
    """An output dataset with the standard ``outputStatistics`` facet (row count, bytes)."""
    namespace, name = dataset_name(location)
    stats = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
        rowCount=records, size=size, fileCount=1
    )
    return OutputDataset(namespace=namespace, name=name, outputFacets={"outputStatistics": stats})


def base_model_arn(identifier: str | None, any_arn: str | None) -> str | None:
    """The ARN of a base model given by id, in the region of ``any_arn`` (e.g. the job's ARN)."""
    if not identifier:
        return None
    if identifier.startswith("arn:"):
        return identifier
    match = re.match(r"^arn:(aws[a-z-]*):bedrock:([^:]+):", any_arn or "")
    if not match or not _FOUNDATION_ID.match(identifier):
        return None
    return f"arn:{match.group(1)}:bedrock:{match.group(2)}::foundation-model/{identifier}"


def as_list(value: Any) -> list[str]:
    """A source argument (one location or many) as a list of strings."""
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    return [os.fspath(v) for v in value]


@attr.define
class BedrockFineTuneJobRunFacet(RunFacet):
    """The Bedrock model-customization job of a fine-tune step.

    :param jobArn: the job that trained the model (for a reuse, the earlier job).
    :param jobName: its name.
    :param status: its status (``Completed``, ``Failed``, ...).
    :param baseModel: the base model identifier.
    :param customizationType: ``FINE_TUNING``, ``DISTILLATION``, ...
    :param hyperParameters: the job's hyperparameters.
    :param customModelArn: the model it produced.
    :param trainingLoss: final training loss.
    :param validationLoss: final validation loss.
    :param reusedFrom: the job whose model was reused instead of training (else None).
    :param trainingDigest: the training digest tag (identical trainings share it).
    :param costEstimate: the cost estimate, when one was made.
    """

    jobArn: str | None = None
    jobName: str | None = None
    status: str | None = None
    baseModel: str | None = None
    customizationType: str | None = None
    hyperParameters: dict[str, str] = attr.field(factory=dict)
    customModelArn: str | None = None
    trainingLoss: float | None = None
    validationLoss: float | None = None
    reusedFrom: str | None = None
    trainingDigest: str | None = None
    costEstimate: dict[str, Any] | None = None

    @staticmethod
    def _get_schema() -> str:
        return f"{_SCHEMA_BASE}:BedrockFineTuneJobRunFacet:1"


@attr.define
class BedrockDatasetPreparationRunFacet(RunFacet):
    """The validation summary of a prepare step.

    :param model: the base model the data was validated for.
    :param customizationType: the customization type.
    :param dataFormat: the record format.
    :param totals: per split: files, records, bytes, estimated tokens.
    :param estimatedTrainingTokens: tokens a training would process (epochs included).
    :param errors: problems found (0 when the step succeeded).
    :param warnings: warnings found.
    :param costEstimate: the cost estimate, when one was made.
    """

    model: str | None = None
    customizationType: str | None = None
    dataFormat: str | None = None
    totals: dict[str, Any] = attr.field(factory=dict)
    estimatedTrainingTokens: int | None = None
    errors: int = 0
    warnings: int = 0
    costEstimate: dict[str, Any] | None = None

    @staticmethod
    def _get_schema() -> str:
        return f"{_SCHEMA_BASE}:BedrockDatasetPreparationRunFacet:1"


@attr.define
class BedrockEvaluationRunFacet(RunFacet):
    """The scores of an evaluate step.

    :param examples: holdout examples evaluated.
    :param models: per model: label, model, and per metric ``mean`` / ``low`` / ``high``.
    :param comparisons: candidate minus baseline per metric, with its interval and significance.
    """

    examples: int | None = None
    models: list[dict[str, Any]] = attr.field(factory=list)
    comparisons: list[dict[str, Any]] = attr.field(factory=list)

    @staticmethod
    def _get_schema() -> str:
        return f"{_SCHEMA_BASE}:BedrockEvaluationRunFacet:1"


def data_locations(training_data: Any, validation_data: Any) -> list[str]:
    """The S3 URIs of a fine-tune step's ``training_data`` and ``validation_data`` arguments."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            if value.startswith("s3://"):
                found.append(value)
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    walk(training_data)
    walk(validation_data)
    return found


def fine_tune_facet(
    *,
    base_model: str | None,
    customization_type: str | None,
    hyperparameters: Mapping[str, Any] | None,
    request: Mapping[str, Any] | None,
    result: Mapping[str, Any] | None,
    job_ref: str | None,
) -> BedrockFineTuneJobRunFacet:
    """The job facet from the step's arguments, the request it submitted and its XCom result.

    :param request: the submitted request, when known in this process (it carries the digest).
    :param result: the step's result, None while it runs or after it failed.
    :param job_ref: the job ARN (or name) known so far.
    """
    from airflow_bedrock_ft.core.naming import TAG_TRAINING

    request = request or {}
    result = result or {}
    tags = {t["key"]: t["value"] for t in request.get("jobTags", [])}
    hps = request.get("hyperParameters") or hyperparameters or {}
    return BedrockFineTuneJobRunFacet(
        jobArn=result.get("job_arn") or job_ref,
        jobName=result.get("job_name") or request.get("jobName"),
        status=result.get("status"),
        baseModel=request.get("baseModelIdentifier") or base_model,
        customizationType=request.get("customizationType") or customization_type,
        hyperParameters={str(k): str(v) for k, v in hps.items()},
        customModelArn=result.get("custom_model_arn"),
        trainingLoss=result.get("training_loss"),
        validationLoss=result.get("validation_loss"),
        reusedFrom=result.get("reused_from"),
        trainingDigest=tags.get(TAG_TRAINING),
        costEstimate=result.get("cost_estimate"),
    )


def evaluation_facet(summary: Mapping[str, Any]) -> BedrockEvaluationRunFacet:
    """The scores facet from the result of an evaluate step."""
    models = [
        {
            "label": m.get("label"),
            "model": m.get("model"),
            "examples": m.get("examples"),
            "failed": m.get("failed"),
            "metrics": dict(m.get("metrics") or {}),
        }
        for m in summary.get("models") or []
    ]
    return BedrockEvaluationRunFacet(
        examples=summary.get("examples"), models=models, comparisons=list(summary.get("comparisons") or [])
    )
