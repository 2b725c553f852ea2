"""The worker thread that runs one model-customization job through Bedrock's phases.

validation -> dataProcessing -> training, each ``InProgress`` for its realistic duration
multiplied by the emulator's ``time_scale`` (training also takes its real compute time):

* validation checks that every input object can be read and that the output prefix can be
  written (a zero-byte ``.write_access_check_file.tmp`` probe, as Bedrock writes), then
  validates the records with :func:`airflow_bedrock_ft.datasets.validate_dataset`; problems
  fail the job with Bedrock's failureMessage texts (bedrock-facts §4);
* training reads the records, trains a TinyLM (:mod:`airflow_bedrock_ft.emulator.trainer`),
  writes the metrics CSVs under ``<output>/model-customization-job-<jobId>/``, and keeps the
  weights in the emulator (never in the user's bucket);
* a stop request interrupts any wait or the training loop; the job then spends the scaled
  ``stopping`` time in ``Stopping`` and ends ``Stopped`` without a custom model.

Requests never wait for any of this: handlers only read and write the backend's state.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import zlib
from typing import TYPE_CHECKING, Any

from airflow_bedrock_ft.core.s3 import split_s3_uri as core_split_s3_uri
from airflow_bedrock_ft.core.states import PHASES, PhaseStatus

if TYPE_CHECKING:
    from airflow_bedrock_ft.emulator.backend import Backend

log = logging.getLogger(__name__)

INTERNAL_ERROR_MESSAGE = "Encountered an unexpected error when processing the request, please try again"
WRITE_PROBE = ".write_access_check_file.tmp"
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_POLL = 0.02


class _Stopped(Exception):
    pass


class _Shutdown(Exception):
    pass


class JobFailure(Exception):
    """A job fails with ``message`` as its Bedrock failureMessage."""


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key), refusing anything that could leave the bucket.

    :raises JobFailure: for a URI that is not a plain S3 location.
    """
    try:
        bucket, key = core_split_s3_uri(uri)
    except ValueError:
        raise JobFailure(f"Invalid Amazon S3 URI: {uri}") from None
    if not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise JobFailure(f"Invalid Amazon S3 bucket name in {uri}")
    if any(part in ("..", ".") for part in key.split("/")) or "\\" in key or "\x00" in key:
        raise JobFailure(f"Invalid Amazon S3 key in {uri}")
    return bucket, key


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class JobRunner(threading.Thread):
    """Runs one job; created and started by the backend.

    :param backend: the owning backend.
    :param arn: the job's ARN.
    """

    def __init__(self, backend: Backend, arn: str) -> None:
        super().__init__(name=f"bedrock-job-{arn.rsplit('/', 1)[-1]}", daemon=True)
        self.backend = backend
        self.arn = arn
        self._stop_requested = threading.Event()
        self._shutdown = backend.shutdown_event
        self._result: Any = None
        self._s3: Any = None

    # --- control ---------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask the job to stop (StopModelCustomizationJob)."""
        self._stop_requested.set()

    def _check(self) -> None:
        if self._shutdown.is_set():
            raise _Shutdown
        if self._stop_requested.is_set():
            raise _Stopped

    def _wait(self, what: str) -> None:
        from airflow_bedrock_ft.emulator.backend import REALISTIC_SECONDS

        deadline = time.monotonic() + REALISTIC_SECONDS[what] * self.backend.settings.time_scale
        while True:
            self._check()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._stop_requested.wait(min(remaining, 0.1))

    def _hold(self, phase: str) -> None:
        while phase.removesuffix("Details") in self.backend.settings.hold_phases:
            self._check()
            self._stop_requested.wait(_POLL)

    def _polls(self) -> int:
        with self.backend.lock:
            return self.backend.polls.get(self.arn, 0)

    def _await_polls(self, since: int) -> None:
        while self._polls() - since < self.backend.settings.polls_per_phase:
            self._check()
            self._stop_requested.wait(_POLL)

    @property
    def job(self) -> dict[str, Any]:
        """A snapshot of the job document."""
        with self.backend.lock:
            return dict(self.backend.jobs[self.arn])

    def _s3_client(self) -> Any:
        if self._s3 is None:
            factory = self.backend.s3_client_factory
            if factory is None:
                import boto3

                self._s3 = boto3.client("s3")
            else:
                self._s3 = factory()
        return self._s3

    # --- main loop -------------------------------------------------------------------------

    def run(self) -> None:
        """Advance the job phase by phase until it is terminal (or the emulator shuts down)."""
        phase: str | None = None
        try:
            with self.backend.lock:
                stopping = self.backend.jobs[self.arn]["status"] == "Stopping"
            if stopping:
                raise _Stopped
            for phase in PHASES:
                if self.job["statusDetails"][phase]["status"] == PhaseStatus.COMPLETED.value:
                    continue
                self._check()
                self.backend.set_phase(self.arn, phase, PhaseStatus.IN_PROGRESS)
                polls_at_start = self._polls()
                self._hold(phase)
                getattr(self, f"_phase_{phase}")()
                self._await_polls(polls_at_start)
                self._check()
                if phase != PHASES[-1]:
                    self.backend.set_phase(self.arn, phase, PhaseStatus.COMPLETED)
            self._finish()
        except _Shutdown:
            log.info("emulator shutting down; job %s will resume on restart", self.arn)
        except _Stopped:
            self._end_stopped()
        except JobFailure as exc:
            self.backend.fail(self.arn, phase, str(exc))
        except Exception:
            log.exception("job %s failed with an internal error", self.arn)
            self.backend.fail(self.arn, phase, INTERNAL_ERROR_MESSAGE)
        finally:
            self._s3 = None

    def _end_stopped(self) -> None:
        with self.backend.lock:
            job = self.backend.jobs.get(self.arn)
            if job is not None and job["status"] == "InProgress":  # training noticed it first
                job["status"] = "Stopping"
        try:
            self._stop_wait()
        except _Shutdown:
            return
        self.backend.finish_stopped(self.arn)

    def _stop_wait(self) -> None:
        from airflow_bedrock_ft.emulator.backend import REALISTIC_SECONDS

        deadline = time.monotonic() + REALISTIC_SECONDS["stopping"] * self.backend.settings.time_scale
        while time.monotonic() < deadline:
            if self._shutdown.is_set():
                raise _Shutdown
            self._shutdown.wait(min(0.1, max(0.0, deadline - time.monotonic())))

    # --- phases ----------------------------------------------------------------------------

    def _input_uris(self) -> tuple[str, list[str]]:
        job = self.job
        training = job["trainingDataConfig"]
        train_uri = training.get("s3Uri") or (
            ((training.get("invocationLogsConfig") or {}).get("invocationLogSource") or {}).get("s3Uri")
        )
        validators = [v["s3Uri"] for v in (job.get("validationDataConfig") or {}).get("validators", [])]
        return str(train_uri), validators

    def _output_prefix(self) -> tuple[str, str]:
        bucket, key = split_s3_uri(self.job["outputDataConfig"]["s3Uri"])
        key = key.lstrip("/")
        if key and not key.endswith("/"):
            key += "/"
        return bucket, key

    def _check_readable(self, uri: str) -> None:
        bucket, key = split_s3_uri(uri)
        s3 = self._s3_client()
        message = (
            f"Could not validate GetObject permissions to access Amazon S3 bucket: {bucket} at key {key}"
        )
        try:
            if not key or key.endswith("/"):
                listing = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
                if not listing.get("KeyCount"):
                    raise JobFailure(message)
            else:
                try:
                    s3.head_object(Bucket=bucket, Key=key)
                except Exception as exc:
                    if _error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
                        raise
                    # A key without a trailing slash may still name a folder of files.
                    listing = s3.list_objects_v2(Bucket=bucket, Prefix=key + "/", MaxKeys=1)
                    if not listing.get("KeyCount"):
                        raise JobFailure(message) from None
        except JobFailure:
            raise
        except Exception as exc:
            if _error_code(exc):
                raise JobFailure(message) from None
            raise

    def _phase_validationDetails(self) -> None:
        self._wait("validationDetails")
        train_uri, validators = self._input_uris()
        for uri in [train_uri, *validators]:
            self._check_readable(uri)
        bucket, prefix = self._output_prefix()
        probe = prefix + WRITE_PROBE
        try:
            self._s3_client().put_object(Bucket=bucket, Key=probe, Body=b"")
        except Exception as exc:
            if not _error_code(exc):
                raise
            raise JobFailure(
                "Amazon S3 perms missing (PutObject): Could not validate PutObject permissions to access "
                f"S3 bucket: {bucket} at key {probe}"
            ) from None
        from airflow_bedrock_ft.datasets import validate_dataset

        job = self.job
        report = validate_dataset(
            train_uri,
            validators or None,
            model=job["_baseModelId"],
            customization_type=job["customizationType"],
            hyperparameters=job["hyperParameters"],
            s3_client=self._s3_client(),
            data_format="invocation-logs" if job["trainingDataConfig"].get("invocationLogsConfig") else None,
        )
        if not report.ok:
            raise JobFailure(report.failure_message())

    def _phase_dataProcessingDetails(self) -> None:
        self._wait("dataProcessingDetails")

    def _phase_trainingDetails(self) -> None:
        from airflow_bedrock_ft.datasets import iter_records
        from airflow_bedrock_ft.emulator import trainer

        started = time.monotonic()
        job = self.job
        if job.get("_forcedFailure"):
            raise JobFailure(job["_forcedFailure"])
        train_uri, validators = self._input_uris()
        s3 = self._s3_client()
        train_records = [rec for _, _, rec in iter_records(train_uri, s3_client=s3)]
        per_validator = [[rec for _, _, rec in iter_records(uri, s3_client=s3)] for uri in validators]
        validation_records = [r for records in per_validator for r in records]
        hps = {k: str(v) for k, v in (job.get("hyperParameters") or {}).items()}
        if job["customizationType"] == "REINFORCEMENT_FINE_TUNING":
            typed = ((job.get("customizationConfig") or {}).get("rftConfig") or {}).get(
                "hyperParameters"
            ) or {}
            hps.update({k: str(v) for k, v in typed.items()})
        distillation = (job.get("customizationConfig") or {}).get("distillationConfig") or {}
        teacher = (distillation.get("teacherModelConfig") or {}).get("teacherModelIdentifier")
        seed = zlib.crc32(f"{job['jobName']}/{job['_jobId']}".encode())
        try:
            result = trainer.train(
                train_records,
                validation_records or None,
                hps,
                customization_type=job["customizationType"],
                base_model_id=job["_baseModelId"],
                seed=seed,
                should_stop=lambda: self._stop_requested.is_set() or self._shutdown.is_set(),
                teacher_model_id=teacher,
            )
        except trainer.TrainingStopped:
            self._check()
            raise _Stopped from None
        if len(per_validator) > 1:
            losses = [float(result.model.loss(records)) for records in per_validator]
        elif result.validation_loss is not None:
            losses = [float(result.validation_loss)]
        else:
            losses = []
        # Bedrock's training phase lasts at least its realistic (scaled) time; the compute
        # already spent counts towards it.
        from airflow_bedrock_ft.emulator.backend import REALISTIC_SECONDS

        padding = REALISTIC_SECONDS["trainingDetails"] * self.backend.settings.time_scale
        deadline = started + padding
        while time.monotonic() < deadline:
            self._check()
            self._stop_requested.wait(min(0.1, max(0.0, deadline - time.monotonic())))
        self._check()
        self._write_artifacts(result)
        self._result = (result, losses)

    def _write_artifacts(self, result: Any) -> None:
        from airflow_bedrock_ft.emulator.artifacts import render_artifacts

        bucket, prefix = self._output_prefix()
        base = f"{prefix}model-customization-job-{self.job['_jobId']}/"
        s3 = self._s3_client()
        for rel, data in render_artifacts(result).items():
            if rel.startswith("/") or any(p in ("..", ".") for p in rel.split("/")):
                raise ValueError(f"artifact path {rel!r} leaves the job's folder")
            try:
                s3.put_object(Bucket=bucket, Key=base + rel, Body=data)
            except Exception as exc:
                if not _error_code(exc):
                    raise
                raise JobFailure(
                    "Amazon S3 perms missing (PutObject): Could not validate PutObject permissions to "
                    f"access S3 bucket: {bucket} at key {base + rel}"
                ) from None

    def _finish(self) -> None:
        result, losses = self._result
        model_arn = self.backend.complete(
            self.arn,
            model_bytes=result.model.to_bytes(),
            training_loss=float(result.training_loss),
            validation_losses=losses,
        )
        if model_arn is None:
            self._end_stopped()
