"""Foundation-model catalog, custom-model deployments and provisioned throughput.

Part of :class:`~airflow_bedrock_ft.emulator.backend.Backend` (mixed in). Deployments become
``Active`` and provisioned throughput ``InService`` once their realistic creation time,
multiplied by the time scale, has passed; the status is brought up to date when read, so no
thread is needed and the transition survives a restart.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_bedrock_ft.core.models import MODELS, ModelSpec, find_model
from airflow_bedrock_ft.core.request import validate_operation
from airflow_bedrock_ft.emulator.common import (
    REALISTIC_SECONDS,
    canonical,
    created_between,
    json_copy,
    now,
    paginate,
    public,
    raise_problems,
    short_id,
    sort_by,
)
from airflow_bedrock_ft.emulator.errors import conflict, not_found
from airflow_bedrock_ft.emulator.store import Store


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
            ids = [spec.model_id] + ([spec.customization_id] if spec.context_suffix else [])
            for model_id in ids:
                customizable = model_id == spec.customization_id
                entries.append(self._model_summary(spec, model_id, customizable))
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

    def _ready(
        self, doc: dict[str, Any], kind: str, from_status: str, to_status: str, stamp_key: str
    ) -> None:
        """Lazily advance Creating -> Active/InService once its (scaled) time has passed."""
        if doc["status"] == from_status and now() >= doc["_readyAt"]:
            doc["status"] = to_status
            doc[stamp_key] = doc["_readyAt"]
            self.save(kind, doc["_key"])

    def _ready_at(self, what: str) -> dt.datetime:
        return now() + dt.timedelta(seconds=REALISTIC_SECONDS[what] * self.settings.time_scale)

    def _idempotent(self, token: str | None, params: Mapping[str, Any], kind: str) -> str | None:
        if not token:
            return None
        entry = self.tokens.get(f"{kind}:{token}")
        if entry is None:
            return None
        if entry["hash"] != canonical(params):
            raise conflict("The clientRequestToken was already used with different request parameters.")
        return str(entry["arn"])

    def _remember_token(self, token: str | None, params: Mapping[str, Any], kind: str, arn: str) -> None:
        if token:
            key = f"{kind}:{token}"
            self.tokens[key] = {"hash": canonical(params), "arn": arn}
            self.save("token", key)

    def create_deployment(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """CreateCustomModelDeployment (202); the deployment becomes Active after a while."""
        raise_problems(validate_operation("CreateCustomModelDeployment", params))
        with self.lock:
            existing = self._idempotent(params.get("clientRequestToken"), params, "deployment")
            if existing:
                return {"customModelDeploymentArn": existing}
            model = self.find_model(params["modelArn"])
            name = params["modelDeploymentName"]
            if any(d["modelDeploymentName"] == name for d in self.deployments.values()):
                raise conflict(f"A custom model deployment named {name} already exists.")
            arn = self.arn(f"custom-model-deployment/{short_id()}")
            stamp = now()
            self.deployments[arn] = {
                "customModelDeploymentArn": arn,
                "modelDeploymentName": name,
                "modelArn": model["modelArn"],
                "createdAt": stamp,
                "lastUpdatedAt": stamp,
                "status": "Creating",
                "description": params.get("description"),
                "_readyAt": self._ready_at("deployment"),
                "_key": arn,
                "_seq": self._next_seq(),
            }
            if params.get("tags"):
                self._set_tags(arn, params["tags"], name)
            self._remember_token(params.get("clientRequestToken"), params, "deployment", arn)
            self.save("deployment", arn)
        return {"customModelDeploymentArn": arn}

    def find_deployment(self, ident: str) -> dict[str, Any]:
        """The deployment with ARN or name ``ident`` (status brought up to date)."""
        doc = self.deployments.get(ident) or next(
            (d for d in self.deployments.values() if d["modelDeploymentName"] == ident), None
        )
        if doc is None:
            raise not_found(f"Could not find a custom model deployment with identifier {ident}.")
        self._ready(doc, "deployment", "Creating", "Active", "lastUpdatedAt")
        return doc

    def get_deployment(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """GetCustomModelDeployment."""
        raise_problems(validate_operation("GetCustomModelDeployment", params))
        with self.lock:
            return json_copy(public(self.find_deployment(params["customModelDeploymentIdentifier"])))

    def list_deployments(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """ListCustomModelDeployments."""
        raise_problems(validate_operation("ListCustomModelDeployments", params))
        with self.lock:
            items = []
            for doc in list(self.deployments.values()):
                self._ready(doc, "deployment", "Creating", "Active", "lastUpdatedAt")
                if not created_between(
                    doc["createdAt"], params.get("createdAfter"), params.get("createdBefore")
                ):
                    continue
                if (
                    params.get("nameContains")
                    and params["nameContains"].lower() not in doc["modelDeploymentName"].lower()
                ):
                    continue
                if params.get("statusEquals") and doc["status"] != params["statusEquals"]:
                    continue
                if params.get("modelArnEquals") and doc["modelArn"] != params["modelArnEquals"]:
                    continue
                items.append(doc)
            items = sort_by(items, "createdAt", params.get("sortOrder"))
            page, token = paginate(items, params.get("maxResults"), params.get("nextToken"))
            summaries = [
                {
                    "customModelDeploymentArn": d["customModelDeploymentArn"],
                    "customModelDeploymentName": d["modelDeploymentName"],
                    "modelArn": d["modelArn"],
                    "createdAt": d["createdAt"],
                    "status": d["status"],
                    "lastUpdatedAt": d["lastUpdatedAt"],
                }
                for d in page
            ]
        out: dict[str, Any] = {"modelDeploymentSummaries": summaries}
        if token:
            out["nextToken"] = token
        return out

    def delete_deployment(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """DeleteCustomModelDeployment."""
        raise_problems(validate_operation("DeleteCustomModelDeployment", params))
        with self.lock:
            doc = self.find_deployment(params["customModelDeploymentIdentifier"])
            arn = doc["customModelDeploymentArn"]
            del self.deployments[arn]
            self.tags.pop(arn, None)
            self.save("tags", arn)
            self.save("deployment", arn)
        return {}

    def create_throughput(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """CreateProvisionedModelThroughput (201); InService after a while."""
        raise_problems(validate_operation("CreateProvisionedModelThroughput", params))
        with self.lock:
            existing = self._idempotent(params.get("clientRequestToken"), params, "throughput")
            if existing:
                return {"provisionedModelArn": existing}
            ident = params["modelId"]
            if ":custom-model/" in ident or not ("." in ident or ident.startswith("arn:")):
                model = self.find_model(ident)
                model_arn, base_id = model["modelArn"], model["_baseModelId"]
            else:
                spec = find_model(ident.rsplit("foundation-model/", 1)[-1])
                if spec is None:
                    raise not_found(f"The model {ident} was not found.")
                model_arn = base_arn = self.foundation_arn(spec.customization_id)
                base_id = spec.customization_id
            name = params["provisionedModelName"]
            if any(p["provisionedModelName"] == name for p in self.throughputs.values()):
                raise conflict(f"A provisioned model named {name} already exists.")
            arn = self.arn(f"provisioned-model/{short_id()}")
            stamp = now()
            base_arn = self.foundation_arn(base_id)
            doc: dict[str, Any] = {
                "modelUnits": params["modelUnits"],
                "desiredModelUnits": params["modelUnits"],
                "provisionedModelName": name,
                "provisionedModelArn": arn,
                "modelArn": model_arn,
                "desiredModelArn": model_arn,
                "foundationModelArn": base_arn,
                "status": "Creating",
                "creationTime": stamp,
                "lastModifiedTime": stamp,
                "commitmentDuration": params.get("commitmentDuration"),
                "_readyAt": self._ready_at("provisioning"),
                "_key": arn,
                "_seq": self._next_seq(),
            }
            if params.get("commitmentDuration"):
                months = 1 if params["commitmentDuration"] == "OneMonth" else 6
                doc["commitmentExpirationTime"] = stamp + dt.timedelta(days=30 * months)
            self.throughputs[arn] = doc
            if params.get("tags"):
                self._set_tags(arn, params["tags"], name)
            self._remember_token(params.get("clientRequestToken"), params, "throughput", arn)
            self.save("throughput", arn)
        return {"provisionedModelArn": arn}

    def find_throughput(self, ident: str) -> dict[str, Any]:
        """The provisioned throughput with ARN or name ``ident`` (status brought up to date)."""
        doc = self.throughputs.get(ident) or next(
            (p for p in self.throughputs.values() if p["provisionedModelName"] == ident), None
        )
        if doc is None:
            raise not_found(f"Could not find a provisioned model with identifier {ident}.")
        self._ready(doc, "throughput", "Creating", "InService", "lastModifiedTime")
        return doc

    def get_throughput(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """GetProvisionedModelThroughput."""
        raise_problems(validate_operation("GetProvisionedModelThroughput", params))
        with self.lock:
            return json_copy(public(self.find_throughput(params["provisionedModelId"])))

    def list_throughputs(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """ListProvisionedModelThroughputs."""
        raise_problems(validate_operation("ListProvisionedModelThroughputs", params))
        with self.lock:
            items = []
            for doc in list(self.throughputs.values()):
                self._ready(doc, "throughput", "Creating", "InService", "lastModifiedTime")
                if not created_between(
                    doc["creationTime"], params.get("creationTimeAfter"), params.get("creationTimeBefore")
                ):
                    continue
                if (
                    params.get("nameContains")
                    and params["nameContains"].lower() not in doc["provisionedModelName"].lower()
                ):
                    continue
                if params.get("statusEquals") and doc["status"] != params["statusEquals"]:
                    continue
                if params.get("modelArnEquals") and doc["modelArn"] != params["modelArnEquals"]:
                    continue
                items.append(doc)
            items = sort_by(items, "creationTime", params.get("sortOrder"))
            page, token = paginate(items, params.get("maxResults"), params.get("nextToken"))
            summaries = [
                json_copy(public({k: v for k, v in d.items() if k not in ("failureMessage",)})) for d in page
            ]
        out: dict[str, Any] = {"provisionedModelSummaries": summaries}
        if token:
            out["nextToken"] = token
        return out

    def delete_throughput(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """DeleteProvisionedModelThroughput."""
        raise_problems(validate_operation("DeleteProvisionedModelThroughput", params))
        with self.lock:
            doc = self.find_throughput(params["provisionedModelId"])
            arn = doc["provisionedModelArn"]
            del self.throughputs[arn]
            self.tags.pop(arn, None)
            self.save("tags", arn)
            self.save("throughput", arn)
        return {}
