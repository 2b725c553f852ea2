"""Foundation-model catalog, custom-model deployments and provisioned throughput.

Part of :class:`~airflow_bedrock_ft.emulator.backend.Backend` (mixed in). Deployments become
``Active`` and provisioned throughput ``InService`` once their realistic creation time,
multiplied by the time scale, has passed; the status is brought up to date when read, so no
thread is needed and the transition survives a restart.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_bedrock_ft.core.models import MODELS, ModelSpec, find_model
from airflow_bedrock_ft.core.request import validate_operation
from airflow_bedrock_ft.emulator.catalog import INFERENCE_MODELS
from airflow_bedrock_ft.emulator.common import (
    REALISTIC_SECONDS,
    canonical,
    find_by_arn_or_name,
    json_copy,
    list_page,
    listed,
    now,
    public,
    raise_problems,
    short_id,
)
from airflow_bedrock_ft.emulator.errors import conflict, not_found
from airflow_bedrock_ft.emulator.store import Store


@dataclass(frozen=True)
class Served:
    """What differs between custom-model deployments and provisioned throughput.

    Both are created ``Creating``, become ready after a realistic time, and are read, listed
    and deleted alike; only their member names, messages and operation names differ.
    """

    kind: str  # store kind and clientRequestToken namespace
    table: str  # the backend attribute holding them, by ARN
    operation: str  # Create{operation}, Get{operation}, List{operation}s, Delete{operation}
    label: str  # the resource as error messages name it
    arn_prefix: str
    arn_key: str
    name_key: str  # both the create parameter and the stored member
    ident_param: str  # Get/Delete parameter naming the resource
    created_key: str
    updated_key: str
    created_filters: tuple[str, str]  # List parameters: created after, created before
    ready_status: str
    realistic: str  # key of REALISTIC_SECONDS
    summaries: str  # List output member
    summary: Callable[[dict[str, Any]], dict[str, Any]]


def _deployment_summary(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "customModelDeploymentArn": d["customModelDeploymentArn"],
        "customModelDeploymentName": d["modelDeploymentName"],
        "modelArn": d["modelArn"],
        "createdAt": d["createdAt"],
        "status": d["status"],
        "lastUpdatedAt": d["lastUpdatedAt"],
    }


def _throughput_summary(d: dict[str, Any]) -> dict[str, Any]:
    return json_copy(public({k: v for k, v in d.items() if k not in ("failureMessage",)}))


DEPLOYMENT = Served(
    kind="deployment",
    table="deployments",
    operation="CustomModelDeployment",
    label="custom model deployment",
    arn_prefix="custom-model-deployment",
    arn_key="customModelDeploymentArn",
    name_key="modelDeploymentName",
    ident_param="customModelDeploymentIdentifier",
    created_key="createdAt",
    updated_key="lastUpdatedAt",
    created_filters=("createdAfter", "createdBefore"),
    ready_status="Active",
    realistic="deployment",
    summaries="modelDeploymentSummaries",
    summary=_deployment_summary,
)

THROUGHPUT = Served(
    kind="throughput",
    table="throughputs",
    operation="ProvisionedModelThroughput",
    label="provisioned model",
    arn_prefix="provisioned-model",
    arn_key="provisionedModelArn",
    name_key="provisionedModelName",
    ident_param="provisionedModelId",
    created_key="creationTime",
    updated_key="lastModifiedTime",
    created_filters=("creationTimeAfter", "creationTimeBefore"),
    ready_status="InService",
    realistic="provisioning",
    summaries="provisionedModelSummaries",
    summary=_throughput_summary,
)


class ServingMixin:
    """Operations on the models that serve inference (state lives on the backend)."""

    region: str
    account: str
    lock: threading.RLock
    store: Store
    models: dict[str, dict[str, Any]]
    deployments: dict[str, dict[str, Any]]
    throughputs: dict[str, dict[str, Any]]
    tags: dict[str, dict[str, str]]
    tokens: dict[str, dict[str, Any]]
    settings: Any  # backend.Settings

    def save(self, kind: str, key: str) -> None:  # pragma: no cover - provided by Backend
        raise NotImplementedError

    def arn(self, resource: str) -> str:  # pragma: no cover - provided by Backend
        raise NotImplementedError

    def foundation_arn(self, model_id: str) -> str:  # pragma: no cover - provided by Backend
        raise NotImplementedError

    def find_model(self, ident: str) -> dict[str, Any]:  # pragma: no cover - provided by Backend
        raise NotImplementedError

    def _set_tags(self, arn: str, tags: Iterable[Mapping[str, str]], name: str) -> None:  # pragma: no cover
        raise NotImplementedError

    def _next_seq(self) -> int:  # pragma: no cover - provided by Backend
        raise NotImplementedError

    # --- foundation models ------------------------------------------------------------------

    def _model_entries(self) -> list[dict[str, Any]]:
        entries = []
        for spec in MODELS:
            ids = spec.identifiers
            for model_id in ids:
                customizable = model_id == spec.customization_id
                entries.append(self._model_summary(spec, model_id, customizable))
        entries += [model.summary(self.foundation_arn(model.model_id)) for model in INFERENCE_MODELS]
        return entries

    def _model_summary(self, spec: ModelSpec, model_id: str, customizable: bool) -> dict[str, Any]:
        lowered = spec.model_id.lower()
        if "embed" in lowered:
            output = ["EMBEDDING"]
        elif "image-generator" in lowered or "canvas" in lowered:
            output = ["IMAGE"]
        else:
            output = ["TEXT"]
        if not spec.context_suffix:
            inference = ["ON_DEMAND", "PROVISIONED"]
        else:
            inference = ["PROVISIONED"] if customizable else ["ON_DEMAND"]
        return {
            "modelArn": self.foundation_arn(model_id),
            "modelId": model_id,
            "modelName": spec.name,
            "providerName": {
                "amazon": "Amazon",
                "meta": "Meta",
                "anthropic": "Anthropic",
                "cohere": "Cohere",
            }.get(spec.provider, spec.provider.title()),
            "inputModalities": list(spec.input_modalities),
            "outputModalities": output,
            "responseStreamingSupported": output == ["TEXT"],
            "customizationsSupported": [t.value for t in spec.customizations] if customizable else [],
            "inferenceTypesSupported": inference,
            "modelLifecycle": {"status": "ACTIVE"},
        }

    def list_foundation_models(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """ListFoundationModels with its four filters."""
        raise_problems(validate_operation("ListFoundationModels", params))
        out = []
        for entry in self._model_entries():
            provider = params.get("byProvider")
            if provider and provider.lower() != entry["providerName"].lower():
                continue
            if (
                params.get("byCustomizationType")
                and params["byCustomizationType"] not in entry["customizationsSupported"]
            ):
                continue
            if params.get("byOutputModality") and params["byOutputModality"] not in entry["outputModalities"]:
                continue
            if (
                params.get("byInferenceType")
                and params["byInferenceType"] not in entry["inferenceTypesSupported"]
            ):
                continue
            out.append(entry)
        return {"modelSummaries": out}

    def get_foundation_model(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """GetFoundationModel by id or foundation-model ARN."""
        raise_problems(validate_operation("GetFoundationModel", params))
        ident = params["modelIdentifier"]
        model_id = ident.rsplit("foundation-model/", 1)[-1] if ident.startswith("arn:") else ident
        for entry in self._model_entries():
            if entry["modelId"] == model_id:
                return {"modelDetails": entry}
        raise not_found(f"The model {ident} was not found.")

    # --- deployments and provisioned throughput --------------------------------------------

    def _ready(self, doc: dict[str, Any], served: Served) -> None:
        """Lazily advance Creating -> Active/InService once its (scaled) time has passed."""
        if doc["status"] == "Creating" and now() >= doc["_readyAt"]:
            doc["status"] = served.ready_status
            doc[served.updated_key] = doc["_readyAt"]
            self.save(served.kind, doc["_key"])

    def _ready_at(self, what: str) -> dt.datetime:
        return now() + dt.timedelta(seconds=REALISTIC_SECONDS[what] * self.settings.time_scale)

    # --- idempotency of every create (jobs included) ------------------------------------------

    def _idempotent(self, token: str | None, params: Mapping[str, Any], kind: str) -> str | None:
        if not token:
            return None
        entry = self.tokens.get(self._token_key(token, kind))
        if entry is None:
            return None
        if entry["hash"] != canonical(params):
            raise conflict("The clientRequestToken was already used with different request parameters.")
        return str(entry["arn"])

    def _remember_token(self, token: str | None, params: Mapping[str, Any], kind: str, arn: str) -> None:
        if token:
            key = self._token_key(token, kind)
            self.tokens[key] = {"hash": canonical(params), "arn": arn}
            self.save("token", key)

    @staticmethod
    def _token_key(token: str, kind: str) -> str:
        # Job tokens are stored under the bare token, as existing stores hold them.
        return token if kind == "job" else f"{kind}:{token}"

    # --- deployments and provisioned throughput, one implementation --------------------------

    def _create(
        self,
        served: Served,
        params: Mapping[str, Any],
        prepare: Callable[[Mapping[str, Any]], Callable[[str, dt.datetime], dict[str, Any]]],
    ) -> dict[str, Any]:
        """Create a deployment or provisioned throughput, ``Creating`` until its time has passed.

        ``prepare`` resolves the model and returns what builds the public members from ARN and
        creation time; it runs before the name is checked, so an unknown model is reported
        ahead of a name in use.
        """
        raise_problems(validate_operation(f"Create{served.operation}", params))
        table = self._table(served)
        with self.lock:
            token = params.get("clientRequestToken")
            existing = self._idempotent(token, params, served.kind)
            if existing:
                return {served.arn_key: existing}
            document = prepare(params)
            name = params[served.name_key]
            if any(d[served.name_key] == name for d in table.values()):
                raise conflict(f"A {served.label} named {name} already exists.")
            arn = self.arn(f"{served.arn_prefix}/{short_id()}")
            doc = document(arn, now())
            doc.update(_readyAt=self._ready_at(served.realistic), _key=arn, _seq=self._next_seq())
            table[arn] = doc
            if params.get("tags"):
                self._set_tags(arn, params["tags"], name)
            self._remember_token(token, params, served.kind, arn)
            self.save(served.kind, arn)
        return {served.arn_key: arn}

    def _table(self, served: Served) -> dict[str, dict[str, Any]]:
        table: dict[str, dict[str, Any]] = getattr(self, served.table)
        return table

    def _find(self, served: Served, ident: str) -> dict[str, Any]:
        doc = find_by_arn_or_name(self._table(served), served.name_key, ident)
        if doc is None:
            raise not_found(f"Could not find a {served.label} with identifier {ident}.")
        self._ready(doc, served)
        return doc

    def _get(self, served: Served, params: Mapping[str, Any]) -> dict[str, Any]:
        raise_problems(validate_operation(f"Get{served.operation}", params))
        with self.lock:
            return json_copy(public(self._find(served, params[served.ident_param])))

    def _list(self, served: Served, params: Mapping[str, Any]) -> dict[str, Any]:
        raise_problems(validate_operation(f"List{served.operation}s", params))
        after, before = served.created_filters
        with self.lock:
            items = []
            for doc in list(self._table(served).values()):
                self._ready(doc, served)
                if not listed(params, doc[served.created_key], doc[served.name_key], after, before):
                    continue
                if params.get("statusEquals") and doc["status"] != params["statusEquals"]:
                    continue
                if params.get("modelArnEquals") and doc["modelArn"] != params["modelArnEquals"]:
                    continue
                items.append(doc)
            return list_page(items, params, served.created_key, served.summary, served.summaries)

    def _delete(self, served: Served, params: Mapping[str, Any]) -> dict[str, Any]:
        raise_problems(validate_operation(f"Delete{served.operation}", params))
        with self.lock:
            arn = self._find(served, params[served.ident_param])[served.arn_key]
            del self._table(served)[arn]
            self.tags.pop(arn, None)
            self.save("tags", arn)
            self.save(served.kind, arn)
        return {}

    def create_deployment(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """CreateCustomModelDeployment (202); the deployment becomes Active after a while."""
        return self._create(DEPLOYMENT, params, self._deployment_document)

    def _deployment_document(self, params: Mapping[str, Any]) -> Callable[[str, dt.datetime], dict[str, Any]]:
        model_arn = self.find_model(params["modelArn"])["modelArn"]

        def document(arn: str, stamp: dt.datetime) -> dict[str, Any]:
            return {
                "customModelDeploymentArn": arn,
                "modelDeploymentName": params["modelDeploymentName"],
                "modelArn": model_arn,
                "createdAt": stamp,
                "lastUpdatedAt": stamp,
                "status": "Creating",
                "description": params.get("description"),
            }

        return document

    def find_deployment(self, ident: str) -> dict[str, Any]:
        """The deployment with ARN or name ``ident`` (status brought up to date)."""
        return self._find(DEPLOYMENT, ident)

    def get_deployment(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """GetCustomModelDeployment."""
        return self._get(DEPLOYMENT, params)

    def list_deployments(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """ListCustomModelDeployments."""
        return self._list(DEPLOYMENT, params)

    def delete_deployment(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """DeleteCustomModelDeployment."""
        return self._delete(DEPLOYMENT, params)

    def create_throughput(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """CreateProvisionedModelThroughput (201); InService after a while."""
        return self._create(THROUGHPUT, params, self._throughput_document)

    def _throughput_document(self, params: Mapping[str, Any]) -> Callable[[str, dt.datetime], dict[str, Any]]:
        ident = params["modelId"]
        if ":custom-model/" in ident or not ("." in ident or ident.startswith("arn:")):
            model = self.find_model(ident)
            model_arn, base_id = model["modelArn"], model["_baseModelId"]
        else:
            spec = find_model(ident.rsplit("foundation-model/", 1)[-1])
            if spec is None:
                raise not_found(f"The model {ident} was not found.")
            model_arn = self.foundation_arn(spec.customization_id)
            base_id = spec.customization_id
        base_arn = self.foundation_arn(base_id)

        def document(arn: str, stamp: dt.datetime) -> dict[str, Any]:
            doc: dict[str, Any] = {
                "modelUnits": params["modelUnits"],
                "desiredModelUnits": params["modelUnits"],
                "provisionedModelName": params["provisionedModelName"],
                "provisionedModelArn": arn,
                "modelArn": model_arn,
                "desiredModelArn": model_arn,
                "foundationModelArn": base_arn,
                "status": "Creating",
                "creationTime": stamp,
                "lastModifiedTime": stamp,
                "commitmentDuration": params.get("commitmentDuration"),
            }
            if params.get("commitmentDuration"):
                months = 1 if params["commitmentDuration"] == "OneMonth" else 6
                doc["commitmentExpirationTime"] = stamp + dt.timedelta(days=30 * months)
            return doc

        return document

    def find_throughput(self, ident: str) -> dict[str, Any]:
        """The provisioned throughput with ARN or name ``ident`` (status brought up to date)."""
        return self._find(THROUGHPUT, ident)

    def get_throughput(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """GetProvisionedModelThroughput."""
        return self._get(THROUGHPUT, params)

    def list_throughputs(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """ListProvisionedModelThroughputs."""
        return self._list(THROUGHPUT, params)

    def delete_throughput(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """DeleteProvisionedModelThroughput."""
        return self._delete(THROUGHPUT, params)
