"""State of the emulated Bedrock account: jobs, custom models, tags, deployments, throughput.

No HTTP here: every public method takes the operation's input parameters (camelCase, as a
boto3 caller passes them) and returns its output members, or raises
:class:`~airflow_bedrock_ft.emulator.errors.EmulatorError`. Jobs run in worker threads
(:mod:`airflow_bedrock_ft.emulator.jobs`); their status only moves there, never inside a
request. Every change is written through to the :class:`~airflow_bedrock_ft.emulator.store.Store`.

Choices where real Bedrock's behaviour is not documented (bedrock-facts §4):

* A reused ``clientRequestToken`` with the same parameters returns the first job's ARN and
  creates nothing; with different parameters it is a ``ConflictException`` (the usual AWS
  idempotency-mismatch behaviour; unconfirmed for Bedrock).
* A job name stays in use after its job ended (there is no DeleteModelCustomizationJob).
* A well-formed base model identifier that names no model (unknown foundation model, or a
  custom model ARN this account does not have) is a ``ResourceNotFoundException``;
  ``GetFoundationModel`` does the same.
* A missing training/validation object or output bucket does not fail the create call: the
  job is created and then fails its validation phase with the documented failureMessage
  (``Could not validate GetObject permissions ...``), as Bedrock checks S3 asynchronously.
* A custom model name is unique in an account and region (``GetCustomModel`` takes the name as
  an identifier, so two models of one name could not be told apart): a job whose
  ``customModelName`` is taken by a custom model, or by a job that is running or completed,
  is refused at once with a ``ValidationException``. The name of a job that failed or was
  stopped, which made no model, is free again.
* Deleting a custom model that a deployment or provisioned throughput still uses is a
  ``ConflictException``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_bedrock_ft.core.models import CustomizationType, ModelSpec, find_model, model_family
from airflow_bedrock_ft.core.request import (
    MAX_TAGS_PER_RESOURCE,
    base_model_problem,
    validate_operation,
    validate_request,
)
from airflow_bedrock_ft.core.states import PHASES, JobStatus, PhaseStatus
from airflow_bedrock_ft.emulator.catalog import find_inference_model
from airflow_bedrock_ft.emulator.common import (
    ACCOUNT_ID,
    DUPLICATE_NAME_MESSAGE,
    REALISTIC_SECONDS,
    find_by_arn_or_name,
    json_copy,
    list_page,
    listed,
    now,
    public,
    raise_problems,
    short_id,
    too_many_tags,
)
from airflow_bedrock_ft.emulator.errors import EmulatorError, conflict, not_found, validation
from airflow_bedrock_ft.emulator.faults import Faults
from airflow_bedrock_ft.emulator.serving import ServingMixin
from airflow_bedrock_ft.emulator.store import Store

log = logging.getLogger(__name__)


@dataclass
class Settings:
    """How fast simulated time runs, and which job phases are held on demand.

    :param time_scale: factor applied to realistic durations (0 = as fast as possible).
        Training always also takes its real compute time.
    :param hold_phases: phases (``validation``, ``dataProcessing``, ``training``) at whose
        start every job waits, ``InProgress``, until the hold is lifted or the job stopped.
    :param polls_per_phase: a phase also ends only after this many GetModelCustomizationJob
        calls for the job have seen it (0 = no such condition), so a poller can be tested
        poll by poll.
    :param max_running_jobs: quota of jobs ``InProgress``/``Stopping`` at once (Bedrock's
        "Scheduled customization jobs"); a create beyond it is a
        ``ServiceQuotaExceededException``. None = no quota.
    """

    time_scale: float = 0.0
    hold_phases: set[str] = field(default_factory=set)
    polls_per_phase: int = 0
    max_running_jobs: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for ``GET /_emulator/config``."""
        return {
            "time_scale": self.time_scale,
            "hold_phases": sorted(self.hold_phases),
            "polls_per_phase": self.polls_per_phase,
            "max_running_jobs": self.max_running_jobs,
            "realistic_seconds": dict(REALISTIC_SECONDS),
        }


#: Phase names as ``hold_phases`` takes them: ``validation``, ``dataProcessing``, ``training``.
PHASE_NAMES = {p.removesuffix("Details") for p in PHASES}


def _job_summary(j: dict[str, Any]) -> dict[str, Any]:
    return json_copy(
        public(
            {
                "jobArn": j["jobArn"],
                "baseModelArn": j["baseModelArn"],
                "jobName": j["jobName"],
                "status": j["status"],
                "statusDetails": j["statusDetails"],
                "lastModifiedTime": j["lastModifiedTime"],
                "creationTime": j["creationTime"],
                "endTime": j.get("endTime"),
                "customModelArn": j.get("outputModelArn"),
                "customModelName": j["outputModelName"],
                "customizationType": j["customizationType"],
            }
        )
    )


class Backend(ServingMixin):
    """The emulated account in one region.

    :param region: the AWS region in ARNs.
    :param store: persistence; a restarted backend reloads everything from it.
    :param s3_client_factory: builds a boto3 S3 client for job data and artifacts.
    :param faults: the fault state (forced job failures are taken from it).
    :param settings: time scale and phase holds.
    """

    def __init__(
        self,
        region: str = "us-east-1",
        *,
        store: Store | None = None,
        s3_client_factory: Callable[[], Any] | None = None,
        faults: Faults | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.region = region
        self.account = ACCOUNT_ID
        self.store = store or Store(None)
        self.s3_client_factory = s3_client_factory
        self.faults = faults or Faults()
        self.settings = settings or Settings()
        self.lock = threading.RLock()
        self.shutdown_event = threading.Event()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.deployments: dict[str, dict[str, Any]] = {}
        self.throughputs: dict[str, dict[str, Any]] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.logging: dict[str, dict[str, Any]] = {}  # "config" -> the invocation logging config
        self.blobs: dict[str, bytes] = {}
        self.runners: dict[str, Any] = {}
        self.polls: dict[str, int] = {}  # GetModelCustomizationJob calls per job (not persisted)
        self._seq = 0
        self._load()

    # --- persistence -----------------------------------------------------------------------

    def _load(self) -> None:
        for kind, table in (
            ("job", self.jobs),
            ("model", self.models),
            ("deployment", self.deployments),
            ("throughput", self.throughputs),
            ("tags", self.tags),
            ("token", self.tokens),
            ("logging", self.logging),
        ):
            for key, doc in self.store.items(kind):
                table[key] = doc
                self._seq = max(self._seq, int(doc.get("_seq", 0)) if isinstance(doc, dict) else 0)

    def save(self, kind: str, key: str) -> None:
        """Write one resource through to the store."""
        table = {
            "job": self.jobs,
            "model": self.models,
            "deployment": self.deployments,
            "throughput": self.throughputs,
            "tags": self.tags,
            "token": self.tokens,
            "logging": self.logging,
        }[kind]
        if key in table:
            self.store.put(kind, key, table[key])
        else:
            self.store.delete(kind, key)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def resume_jobs(self) -> None:
        """Restart the runners of jobs that were running when the emulator stopped.

        A job ``InProgress`` resumes at the start of the phase it was in (phases already
        ``Completed`` are not repeated; an interrupted training restarts from its first step,
        deterministically). A job ``Stopping`` finishes as ``Stopped``.
        """
        from airflow_bedrock_ft.emulator.jobs import JobRunner

        with self.lock:
            for arn, job in self.jobs.items():
                if job["status"] == JobStatus.STOPPING.value:
                    self.finish_stopped(arn)
                elif job["status"] == JobStatus.IN_PROGRESS.value and arn not in self.runners:
                    runner = JobRunner(self, arn)
                    self.runners[arn] = runner
                    runner.start()

    def reset(self) -> None:
        """Forget every resource (running jobs are abandoned) and clear the store."""
        self.shutdown(timeout=5.0)
        with self.lock:
            for table in (
                self.jobs,
                self.models,
                self.deployments,
                self.throughputs,
                self.tags,
                self.tokens,
                self.logging,
                self.blobs,
                self.polls,
            ):
                table.clear()
            self.store.clear()
            self.shutdown_event = threading.Event()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Ask job runners to stop where they are (state is kept so they resume later)."""
        self.shutdown_event.set()
        with self.lock:
            runners = list(self.runners.values())
        for runner in runners:
            runner.join(timeout)
        with self.lock:
            self.runners.clear()

    # --- ARNs ------------------------------------------------------------------------------

    def arn(self, resource: str) -> str:
        """An ARN of this account and region for ``resource`` (``type/id``)."""
        return f"arn:aws:bedrock:{self.region}:{self.account}:{resource}"

    def foundation_arn(self, model_id: str) -> str:
        """The foundation-model ARN (no account) of ``model_id``."""
        return f"arn:aws:bedrock:{self.region}::foundation-model/{model_id}"

    # --- tags ------------------------------------------------------------------------------

    def _resource_exists(self, arn: str) -> bool:
        return arn in self.jobs or arn in self.models or arn in self.deployments or arn in self.throughputs

    def _set_tags(self, arn: str, tags: Iterable[Mapping[str, str]], name: str) -> None:
        merged = dict(self.tags.get(arn, {}))
        for tag in tags:
            merged[tag["key"]] = tag["value"]
        if len(merged) > MAX_TAGS_PER_RESOURCE:
            raise too_many_tags(name)
        self.tags[arn] = merged
        self.save("tags", arn)

    def tag_resource(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """TagResource."""
        raise_problems(validate_operation("TagResource", params))
        arn = params["resourceARN"]
        with self.lock:
            if not self._resource_exists(arn):
                raise not_found(f"The resource {arn} was not found.")
            self._set_tags(arn, params["tags"], arn)
        return {}

    def untag_resource(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """UntagResource."""
        raise_problems(validate_operation("UntagResource", params))
        arn = params["resourceARN"]
        with self.lock:
            if not self._resource_exists(arn):
                raise not_found(f"The resource {arn} was not found.")
            current = self.tags.get(arn, {})
            for key in params["tagKeys"]:
                current.pop(key, None)
            self.tags[arn] = current
            self.save("tags", arn)
        return {}

    def list_tags(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """ListTagsForResource."""
        raise_problems(validate_operation("ListTagsForResource", params))
        arn = params["resourceARN"]
        with self.lock:
            if not self._resource_exists(arn):
                raise not_found(f"The resource {arn} was not found.")
            return {"tags": [{"key": k, "value": v} for k, v in self.tags.get(arn, {}).items()]}

    # --- model invocation logging ----------------------------------------------------------

    def put_logging_config(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """PutModelInvocationLoggingConfiguration: replaces the account's configuration."""
        raise_problems(validate_operation("PutModelInvocationLoggingConfiguration", params))
        config = params["loggingConfig"]
        if not config.get("cloudWatchConfig") and not config.get("s3Config"):
            raise validation("loggingConfig needs a destination: cloudWatchConfig, s3Config or both.")
        with self.lock:
            self.logging["config"] = json_copy(dict(config))
            self.save("logging", "config")
        return {}

    def get_logging_config(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """GetModelInvocationLoggingConfiguration: an empty ``loggingConfig`` when none is set."""
        with self.lock:
            return {"loggingConfig": json_copy(self.logging.get("config") or {})}

    def delete_logging_config(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """DeleteModelInvocationLoggingConfiguration (also when none is set, as AWS does)."""
        with self.lock:
            self.logging.pop("config", None)
            self.save("logging", "config")
        return {}

    # --- customization jobs -----------------------------------------------------------------

    def find_job(self, ident: str) -> dict[str, Any]:
        """The job named ``ident`` or with ARN ``ident``."""
        job = find_by_arn_or_name(self.jobs, "jobName", ident)
        if job is None:
            raise not_found(f"Could not find a model customization job with identifier {ident}.")
        return job

    def find_model(self, ident: str) -> dict[str, Any]:
        """The custom model named ``ident`` or with ARN ``ident``."""
        model = find_by_arn_or_name(self.models, "modelName", ident)
        if model is None:
            raise not_found(f"Could not find a custom model with identifier {ident}.")
        return model

    def _resolve_base(self, ident: str) -> tuple[ModelSpec, str, dict[str, Any] | None]:
        """(catalog spec, baseModelArn, custom model to re-tune or None)."""
        if ":custom-model/" in ident or (not ident.startswith("arn:") and "." not in ident):
            try:
                custom = self.find_model(ident)
            except EmulatorError:
                raise not_found(f"The base model {ident} was not found.") from None
            spec = find_model(custom["_baseModelId"])
            assert spec is not None
            return spec, custom["modelArn"], custom
        spec = find_model(ident)
        if spec is None and find_inference_model(ident) is not None:
            raise validation(
                f"The base model {ident} does not support model customization. Choose a model "
                "whose customizationsSupported (ListFoundationModels) is not empty."
            )
        if spec is None:
            problem = base_model_problem(ident)
            if problem is not None and model_family(ident) is not None:
                # A real model with a context suffix it does not have (":999k", or another
                # model's ":300k"): a bad identifier, not a missing resource.
                raise_problems([problem])
            raise not_found(f"The base model {ident} was not found.")
        return spec, self.foundation_arn(spec.customization_id), None

    def create_job(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """CreateModelCustomizationJob: validate, deduplicate, then start the job's runner."""
        from airflow_bedrock_ft.emulator.jobs import JobRunner

        problems = validate_request(params, check_model=False)
        too_many = [p for p in problems if p.rule == "too_many_tags"]
        problems = [p for p in problems if p.rule != "too_many_tags"]
        raise_problems(problems)
        with self.lock:
            token = params.get("clientRequestToken")
            existing = self._idempotent(token, params, "job")
            if existing:
                return {"jobArn": existing}
            spec, base_arn, custom_base = self._resolve_base(params["baseModelIdentifier"])
            model_params = dict(params)
            model_params["baseModelIdentifier"] = spec.customization_id
            raise_problems(
                [p for p in validate_request(model_params) if p.rule in ("model", "hyperparameter")]
            )
            if too_many:
                tagged = "jobName" if too_many[0].path == "jobTags" else "customModelName"
                raise too_many_tags(params[tagged])
            if any(j["jobName"] == params["jobName"] for j in self.jobs.values()):
                raise validation(DUPLICATE_NAME_MESSAGE)
            model_name = params["customModelName"]
            if any(m.get("modelName") == model_name for m in self.models.values()) or any(
                j["outputModelName"] == model_name and j["status"] in ("InProgress", "Stopping", "Completed")
                for j in self.jobs.values()
            ):
                raise validation(f"A custom model with the name {model_name} already exists in this account.")
            quota = self.settings.max_running_jobs
            running = sum(j["status"] in ("InProgress", "Stopping") for j in self.jobs.values())
            if quota is not None and running >= quota:
                raise EmulatorError(
                    "ServiceQuotaExceededException",
                    f"The number of model customization jobs in progress ({running}) has reached the "
                    f"quota for this account ({quota}).",
                )
            ctype = params.get("customizationType") or CustomizationType.FINE_TUNING.value
            hps = (
                spec.customization(ctype).defaults()
                if ctype in ("FINE_TUNING", "CONTINUED_PRE_TRAINING")
                else {}
            )
            hps.update(params.get("hyperParameters") or {})
            job_id = short_id()
            arn = self.arn(f"model-customization-job/{spec.customization_id}/{job_id}")
            created = now()
            job: dict[str, Any] = {
                "jobArn": arn,
                "jobName": params["jobName"],
                "outputModelName": params["customModelName"],
                "clientRequestToken": token,
                "roleArn": params["roleArn"],
                "status": JobStatus.IN_PROGRESS.value,
                "statusDetails": {
                    p: {
                        "status": PhaseStatus.NOT_STARTED.value,
                        "creationTime": created,
                        "lastModifiedTime": created,
                    }
                    for p in PHASES
                },
                "creationTime": created,
                "lastModifiedTime": created,
                "baseModelArn": base_arn,
                "hyperParameters": hps,
                "trainingDataConfig": params["trainingDataConfig"],
                "validationDataConfig": params.get("validationDataConfig") or {"validators": []},
                "outputDataConfig": params["outputDataConfig"],
                "customizationType": ctype,
                "outputModelKmsKeyArn": params.get("customModelKmsKeyId"),
                "vpcConfig": params.get("vpcConfig"),
                "customizationConfig": params.get("customizationConfig"),
                "_jobId": job_id,
                "_baseModelId": spec.customization_id,
                "_baseCustomModelArn": custom_base["modelArn"] if custom_base else None,
                "_customModelTags": list(params.get("customModelTags") or []),
                "_forcedFailure": self.faults.take_job_failure(),
                "_seq": self._next_seq(),
            }
            self.jobs[arn] = job
            if params.get("jobTags"):
                self._set_tags(arn, params["jobTags"], params["jobName"])
            self._remember_token(token, params, "job", arn)
            self.save("job", arn)
            runner = JobRunner(self, arn)
            self.runners[arn] = runner
            runner.start()
        return {"jobArn": arn}

    def get_job(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """GetModelCustomizationJob by name or ARN."""
        raise_problems(validate_operation("GetModelCustomizationJob", params))
        with self.lock:
            job = self.find_job(params["jobIdentifier"])
            self.polls[job["jobArn"]] = self.polls.get(job["jobArn"], 0) + 1
            return json_copy(public(job))

    def list_jobs(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """ListModelCustomizationJobs with every filter, sorting and pagination."""
        raise_problems(validate_operation("ListModelCustomizationJobs", params))
        with self.lock:
            items = []
            for job in self.jobs.values():
                if not listed(params, job["creationTime"], job["jobName"]):
                    continue
                if params.get("statusEquals") and job["status"] != params["statusEquals"]:
                    continue
                items.append(job)
            return list_page(items, params, "creationTime", _job_summary, "modelCustomizationJobSummaries")

    def stop_job(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """StopModelCustomizationJob: InProgress -> Stopping; the runner then makes it Stopped."""
        raise_problems(validate_operation("StopModelCustomizationJob", params))
        with self.lock:
            job = self.find_job(params["jobIdentifier"])
            if job["status"] != JobStatus.IN_PROGRESS.value:
                raise conflict(f"Cannot stop job {job['jobArn']} because its status is {job['status']}.")
            stamp = now()
            job["status"] = JobStatus.STOPPING.value
            job["lastModifiedTime"] = stamp
            for phase in job["statusDetails"].values():
                if phase["status"] == PhaseStatus.IN_PROGRESS.value:
                    phase["status"] = PhaseStatus.STOPPING.value
                    phase["lastModifiedTime"] = stamp
            self.save("job", job["jobArn"])
            runner = self.runners.get(job["jobArn"])
        if runner is not None:
            runner.request_stop()
        else:
            self.finish_stopped(job["jobArn"])
        return {}

    # --- transitions, called by job runners ---------------------------------------------------

    def set_phase(self, arn: str, phase: str, status: PhaseStatus) -> None:
        """Move one phase of a running job."""
        with self.lock:
            job = self.jobs.get(arn)
            if job is None:  # forgotten by a reset while its runner was finishing
                return None
            stamp = now()
            detail = job["statusDetails"][phase]
            detail.update(status=status.value, lastModifiedTime=stamp)
            if status is PhaseStatus.IN_PROGRESS:
                detail["creationTime"] = stamp
            job["lastModifiedTime"] = stamp
            self.save("job", arn)

    def finish_stopped(self, arn: str) -> None:
        """Stopping -> Stopped (no custom model is produced)."""
        with self.lock:
            job = self.jobs.get(arn)
            if job is None:  # forgotten by a reset while its runner was finishing
                return None
            stamp = now()
            job["status"] = JobStatus.STOPPED.value
            for phase in job["statusDetails"].values():
                if phase["status"] in (PhaseStatus.STOPPING.value, PhaseStatus.IN_PROGRESS.value):
                    phase.update(status=PhaseStatus.STOPPED.value, lastModifiedTime=stamp)
            job["lastModifiedTime"] = job["endTime"] = stamp
            self.runners.pop(arn, None)
            self.save("job", arn)

    def fail(self, arn: str, phase: str | None, message: str) -> None:
        """Mark a job Failed with ``message`` as failureMessage."""
        with self.lock:
            job = self.jobs.get(arn)
            if job is None:  # forgotten by a reset while its runner was finishing
                return None
            stamp = now()
            job["status"] = JobStatus.FAILED.value
            job["failureMessage"] = message[:2048]
            for name, detail in job["statusDetails"].items():
                if name == phase or detail["status"] in (
                    PhaseStatus.IN_PROGRESS.value,
                    PhaseStatus.STOPPING.value,
                ):
                    detail.update(status=PhaseStatus.FAILED.value, lastModifiedTime=stamp)
            job["lastModifiedTime"] = job["endTime"] = stamp
            self.runners.pop(arn, None)
            self.save("job", arn)

    def complete(
        self, arn: str, *, model_bytes: bytes, training_loss: float, validation_losses: list[float]
    ) -> str | None:
        """Mark a job Completed and create its custom model; returns the model ARN,
        or None when the job was asked to stop meanwhile (it then ends ``Stopped``)."""
        with self.lock:
            job = self.jobs.get(arn)
            if job is None:  # forgotten by a reset while its runner was finishing
                return None
            if job["status"] != JobStatus.IN_PROGRESS.value:
                return None  # a stop request arrived after training had finished
            stamp = now()
            model_arn = self.arn(f"custom-model/{job['_baseModelId']}/{short_id()}")
            job["status"] = JobStatus.COMPLETED.value
            for detail in job["statusDetails"].values():
                detail.update(status=PhaseStatus.COMPLETED.value, lastModifiedTime=stamp)
            job["lastModifiedTime"] = job["endTime"] = stamp
            job["outputModelArn"] = model_arn
            job["trainingMetrics"] = {"trainingLoss": float(training_loss)}
            job["validationMetrics"] = [{"validationLoss": float(v)} for v in validation_losses]
            self.models[model_arn] = {
                "modelArn": model_arn,
                "modelName": job["outputModelName"],
                "jobName": job["jobName"],
                "jobArn": arn,
                "baseModelArn": job["baseModelArn"],
                "customizationType": job["customizationType"],
                "modelKmsKeyArn": job.get("outputModelKmsKeyArn"),
                "hyperParameters": job["hyperParameters"],
                "trainingDataConfig": job["trainingDataConfig"],
                "validationDataConfig": job["validationDataConfig"],
                "outputDataConfig": job["outputDataConfig"],
                "trainingMetrics": job["trainingMetrics"],
                "validationMetrics": job["validationMetrics"],
                "creationTime": stamp,
                "customizationConfig": job.get("customizationConfig"),
                "modelStatus": "Active",
                "_baseModelId": job["_baseModelId"],
                "_seq": self._next_seq(),
            }
            self.blobs[model_arn] = model_bytes
            self.store.put_blob(model_arn, model_bytes)
            if job["_customModelTags"]:
                self.tags[model_arn] = {t["key"]: t["value"] for t in job["_customModelTags"]}
                self.save("tags", model_arn)
            self.runners.pop(arn, None)
            self.save("model", model_arn)
            self.save("job", arn)
            return model_arn

    def model_bytes(self, model_arn: str) -> bytes | None:
        """The trained weights of a custom model (kept by the backend, not in the user's bucket)."""
        with self.lock:
            data = self.blobs.get(model_arn)
            if data is None:
                data = self.store.get_blob(model_arn)
                if data is not None:
                    self.blobs[model_arn] = data
            return data

    # --- custom models ---------------------------------------------------------------------

    def get_custom_model(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """GetCustomModel by name or ARN."""
        raise_problems(validate_operation("GetCustomModel", params))
        with self.lock:
            return json_copy(public(self.find_model(params["modelIdentifier"])))

    def list_custom_models(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """ListCustomModels with its filters, sorting and pagination."""
        raise_problems(validate_operation("ListCustomModels", params))
        with self.lock:
            items = []
            for model in self.models.values():
                if not listed(params, model["creationTime"], model["modelName"]):
                    continue
                if params.get("baseModelArnEquals") and model["baseModelArn"] != params["baseModelArnEquals"]:
                    continue
                if params.get("foundationModelArnEquals") and (
                    self.foundation_arn(model["_baseModelId"]) != params["foundationModelArnEquals"]
                ):
                    continue
                if params.get("modelStatus") and model["modelStatus"] != params["modelStatus"]:
                    continue
                if params.get("isOwned") is False:
                    continue  # every model here is owned by the account
                items.append(model)
            return list_page(items, params, "creationTime", self._custom_model_summary, "modelSummaries")

    def _custom_model_summary(self, m: dict[str, Any]) -> dict[str, Any]:
        return {
            "modelArn": m["modelArn"],
            "modelName": m["modelName"],
            "creationTime": m["creationTime"],
            "baseModelArn": m["baseModelArn"],
            "baseModelName": self._base_name(m["_baseModelId"]),
            "customizationType": m["customizationType"],
            "ownerAccountId": self.account,
            "modelStatus": m["modelStatus"],
        }

    @staticmethod
    def _base_name(model_id: str) -> str:
        spec = find_model(model_id)
        return spec.name if spec else model_id

    def delete_custom_model(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """DeleteCustomModel (refused while a deployment or provisioned throughput uses it)."""
        raise_problems(validate_operation("DeleteCustomModel", params))
        with self.lock:
            model = self.find_model(params["modelIdentifier"])
            arn = model["modelArn"]
            users = [d["customModelDeploymentArn"] for d in self.deployments.values() if d["modelArn"] == arn]
            users += [p["provisionedModelArn"] for p in self.throughputs.values() if p["modelArn"] == arn]
            if users:
                raise conflict(f"The custom model {arn} is in use by {', '.join(users)}.")
            del self.models[arn]
            self.blobs.pop(arn, None)
            self.store.delete_blob(arn)
            self.tags.pop(arn, None)
            self.save("tags", arn)
            self.save("model", arn)
        return {}
