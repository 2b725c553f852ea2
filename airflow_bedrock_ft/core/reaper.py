"""Find and stop model-customization jobs that no Airflow task instance will ever stop.

Airflow leaves one gap in "a task that ends stops its job": a deferred task marked failed
before any triggerer picked up its trigger has nobody to call the trigger's ``on_kill``, and
a worker that dies while its task is then marked failed never runs the operator's
``on_kill``. Every job the plugin creates carries identity tags
(:func:`airflow_bedrock_ft.core.naming.identity_tags`); the reaper reads them back, asks
Airflow for the state of the task instance they name (through a :class:`TaskStateLookup`:
the REST API from the command line, the Task SDK inside Airflow) and decides per job.

It stops a job only when all of these hold, and keeps it otherwise, with the reason:

- the job is ``InProgress`` and older than a grace period (its task may not have recorded
  its state yet);
- its tags are this plugin's, complete, decodable and consistent with their identity digest,
  of this deployment's namespace, and say that the task owns the job's life (``reap=true``);
- Airflow answered, the task instance exists and is in an ended state (:data:`ENDED_STATES`),
  so no try of it is running, deferred or about to run and re-attach;
- the job was not created after that task instance ended (then none of its tries made it).

An API error, a missing task instance or DAG run, or a state this table does not know keeps
the job: it is never stopped unless it is proven orphaned. Plain Python (botocore only).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from airflow_bedrock_ft.core.naming import (
    TAG_DAG_ID,
    TAG_MAP_INDEX,
    TAG_RUN_ID,
    TAG_TASK_ID,
    TaggedIdentity,
    identity_from_tags,
    resource_tags,
)
from airflow_bedrock_ft.core.retry import error_code
from airflow_bedrock_ft.core.states import JobStatus

#: Jobs younger than this (seconds) are kept: their task may not have recorded its state yet.
DEFAULT_MIN_AGE = 600.0

#: Task instance states after which no try of it runs again (unless someone clears it, which
#: gives it another state first). A job whose task instance is in one of these is orphaned.
ENDED_STATES: Mapping[str, str] = {
    "success": "succeeded",
    "failed": "failed",
    "skipped": "was skipped",
    "upstream_failed": "did not run (upstream failed)",
    "removed": "was removed from its DAG",
}

#: Task instance states in which a try runs, waits or will run and re-attach to its job.
LIVE_STATES: Mapping[str, str] = {
    "running": "a try is running and owns the job",
    "deferred": "a try is deferred and its trigger owns the job",
    "queued": "a try is queued and will re-attach to the job",
    "scheduled": "a try is scheduled and will re-attach to the job",
    "up_for_retry": "a retry will re-attach to the job",
    "up_for_reschedule": "the task will be rescheduled and re-attach to the job",
    "restarting": "the task was cleared while running; its next try re-attaches to the job",
    "awaiting_input": "a try is waiting for input",
}

#: Allowance for clocks of Airflow and AWS that disagree, when comparing their timestamps.
CLOCK_SKEW = datetime.timedelta(minutes=2)

STOP = "stop"
KEEP = "keep"


@dataclass(frozen=True)
class TaskInstanceRef:
    """One task instance, named as Airflow's APIs name it."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1

    def __str__(self) -> str:
        index = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}/{self.run_id}/{self.task_id}{index}"


@dataclass(frozen=True)
class TaskInstanceState:
    """What Airflow says about one task instance.

    :param state: the state (``None``: no state, e.g. just cleared).
    :param end_date: when it ended, where the lookup knows it (timezone-aware).
    :param try_number: its current try, where the lookup knows it.
    """

    state: str | None
    end_date: datetime.datetime | None = None
    try_number: int | None = None


class TaskStateLookup(Protocol):
    """Asks Airflow for a task instance's state.

    ``task_state`` returns None when Airflow has no such task instance (or DAG run, or DAG)
    and raises when it cannot tell (an API error, no permission): the reaper keeps the job
    either way.
    """

    def task_state(self, ti: TaskInstanceRef) -> TaskInstanceState | None:
        """The state of ``ti``, or None when it does not exist."""
        ...


@dataclass(frozen=True)
class Decision:
    """What the reaper decided for one job, and why.

    :param job_arn: the job.
    :param job_name: its name.
    :param action: ``"stop"`` or ``"keep"``.
    :param reason: why, for people.
    :param task_instance: the task instance its tags name, when they could be read.
    :param ti_state: that task instance's state, when Airflow answered.
    :param created: the job's creation time (ISO 8601).
    :param outcome: for a stop: ``"dry-run"``, ``"stop requested"``, ``"already <status>"`` or
        ``"stop failed: ..."``; None for a kept job.
    """

    job_arn: str
    job_name: str | None
    action: str
    reason: str
    task_instance: str | None = None
    ti_state: str | None = None
    created: str | None = None
    outcome: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON primitives (for XCom and ``--json``)."""
        return asdict(self)

    def line(self) -> str:
        """One line for a log or a terminal."""
        done = f" [{self.outcome}]" if self.outcome else ""
        return f"{self.action.upper():<4} {self.job_arn} ({self.job_name}){done}: {self.reason}"


def parse_duration(value: str | float | int | datetime.timedelta) -> float:
    """Seconds in ``600``, ``"600"``, ``"90s"``, ``"10m"``, ``"2h"``, ``"1d"`` or a timedelta.

    :raises ValueError: naming the value, for anything else or a negative duration.
    """
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError(f"min_age: expected a duration such as '10m', got {value!r}")
    elif isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([smhd]?)", str(value).strip(), re.ASCII)
        if not match:
            raise ValueError(
                f"min_age: expected a duration such as 600, '90s', '10m', '2h' or '1d', got {value!r}"
            )
        unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
        seconds = float(match.group(1)) * unit
    if seconds < 0:
        raise ValueError(f"min_age must not be negative, got {value!r}")
    return seconds


def _aware(value: Any) -> datetime.datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime.datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


def _keep(job: Mapping[str, Any], reason: str, **more: Any) -> Decision:
    created = _aware(job.get("creationTime"))
    return Decision(
        job_arn=str(job.get("jobArn")),
        job_name=job.get("jobName"),
        action=KEEP,
        reason=reason,
        created=created.isoformat() if created else None,
        **more,
    )


def _identity_problem(tagged: TaggedIdentity, namespace: str | None) -> str | None:
    if not tagged.complete:
        names = {TAG_DAG_ID: tagged.dag_id, TAG_RUN_ID: tagged.run_id, TAG_TASK_ID: tagged.task_id,
                 TAG_MAP_INDEX: tagged.map_index}
        missing = ", ".join(k for k, v in names.items() if v is None)
        return (
            f"its identity tags are missing or cannot be decoded ({missing}): the task instance "
            "cannot be named exactly"
        )
    if not tagged.matches_digest():
        return (
            "its identity tags do not hash to its identity digest (edited, or written by another "
            "version): cannot tell whose job it is"
        )
    if (tagged.namespace or None) != (namespace or None):
        theirs = f"namespace {tagged.namespace!r}" if tagged.namespace else "no namespace"
        ours = f"namespace {namespace!r}" if namespace else "no namespace"
        return f"it belongs to {theirs}, this reaper to {ours}: another deployment's job"
    if not tagged.reap:
        return (
            "it is tagged reap=false: its task does not own the job's life "
            "(wait_for_completion=False or stop_on_kill=False)"
        )
    return None


def decide(
    job: Mapping[str, Any],
    tags: Mapping[str, str] | BaseException,
    lookup: TaskStateLookup,
    *,
    namespace: str | None = None,
    min_age: float = DEFAULT_MIN_AGE,
    now: datetime.datetime | None = None,
) -> Decision:
    """Decide whether one job is orphaned (stop) or not proven so (keep).

    :param job: a ListModelCustomizationJobs summary (``jobArn``, ``jobName``, ``status``,
        ``creationTime``) or a GetModelCustomizationJob response.
    :param tags: the job's tags as a dict, or the error that reading them raised.
    :param lookup: asks Airflow for task instance states.
    :param namespace: the ``idempotency_namespace`` of this deployment's jobs (None: jobs
        without one).
    :param min_age: grace period in seconds; younger jobs are kept.
    :param now: the current time (tests); default the clock, in UTC.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    status = job.get("status")
    if status != JobStatus.IN_PROGRESS.value:
        return _keep(job, f"its status is {status}: it is already ending or has ended")
    created = _aware(job.get("creationTime"))
    if created is None:
        return _keep(job, "it has no readable creationTime: its age is unknown")
    age = (now - created).total_seconds()
    if age < min_age:
        return _keep(
            job,
            f"it was created {age:.0f} s ago, within the grace period of {min_age:.0f} s: its task "
            "may not have recorded its state yet",
        )
    if isinstance(tags, BaseException):
        code = error_code(tags) or type(tags).__name__
        return _keep(job, f"its tags could not be read ({code}: {tags}): cannot tell whose job it is")
    tagged = identity_from_tags(tags)
    if tagged is None:
        return _keep(job, "it carries no airflow-bedrock-ft identity tags: not created by this plugin")
    problem = _identity_problem(tagged, namespace)
    if problem:
        return _keep(job, problem)
    if tagged.dag_id is None or tagged.run_id is None or tagged.task_id is None or tagged.map_index is None:
        return _keep(job, "its identity tags are incomplete")  # ruled out by _identity_problem
    ref = TaskInstanceRef(tagged.dag_id, tagged.run_id, tagged.task_id, tagged.map_index)
    return _judge_task_instance(job, ref, lookup, created)


def _judge_task_instance(
    job: Mapping[str, Any], ref: TaskInstanceRef, lookup: TaskStateLookup, created: datetime.datetime
) -> Decision:
    ti = str(ref)
    try:
        found = lookup.task_state(ref)
    except Exception as exc:
        # Whatever went wrong, the job's owner is unknown, and an unknown owner is never
        # overruled: the invariant is "never stop a job that is not proven orphaned".
        return _keep(
            job,
            f"Airflow could not say the state of task instance {ti} ({type(exc).__name__}: {exc})",
            task_instance=ti,
        )
    if found is None:
        return _keep(
            job,
            f"Airflow has no task instance {ti} (DAG run deleted, or another deployment's run): "
            "cannot prove the job orphaned",
            task_instance=ti,
        )
    state = found.state
    if state is None or state in ("none", "null"):
        return _keep(
            job,
            f"task instance {ti} has no state (cleared, or not scheduled yet): its next try re-attaches",
            task_instance=ti,
        )
    if state in LIVE_STATES:
        return _keep(job, f"task instance {ti} is {state}: {LIVE_STATES[state]}", task_instance=ti,
                     ti_state=state)
    if state not in ENDED_STATES:
        return _keep(
            job,
            f"task instance {ti} is in state {state!r}, which the reaper does not know",
            task_instance=ti,
            ti_state=state,
        )
    ended = _aware(found.end_date)
    if ended is not None and ended + CLOCK_SKEW < created:
        return _keep(
            job,
            f"it was created at {created.isoformat()}, after task instance {ti} ended "
            f"({ended.isoformat()}): none of its tries created it",
            task_instance=ti,
            ti_state=state,
        )
    when = f" at {ended.isoformat()}" if ended else ""
    return Decision(
        job_arn=str(job.get("jobArn")),
        job_name=job.get("jobName"),
        action=STOP,
        reason=(
            f"task instance {ti} {ENDED_STATES[state]}{when} and no try of it is running, deferred "
            "or due: nobody else will stop this job"
        ),
        task_instance=ti,
        ti_state=state,
        created=created.isoformat(),
    )


def list_in_progress_jobs(client: Any) -> Iterable[dict[str, Any]]:
    """Every ``InProgress`` job of the account and region (``Stopping`` ones are already ending).

    :param client: a boto3 ``bedrock`` client.
    """
    paginator = client.get_paginator("list_model_customization_jobs")
    for page in paginator.paginate(statusEquals=JobStatus.IN_PROGRESS.value):
        yield from page.get("modelCustomizationJobSummaries", [])


def job_tags(client: Any, job_arn: str) -> dict[str, str] | BaseException:
    """ListTagsForResource of a job as a dict, or the error that reading them raised.

    :param client: a boto3 ``bedrock`` client.
    :param job_arn: the job's ARN.
    """
    try:
        return resource_tags(client, job_arn)
    except (ClientError, BotoCoreError) as exc:
        return exc


def reap(
    client: Any,
    lookup: TaskStateLookup,
    *,
    stop: bool = False,
    namespace: str | None = None,
    min_age: float = DEFAULT_MIN_AGE,
    now: Callable[[], datetime.datetime] | None = None,
    echo: Callable[[Decision], None] | None = None,
) -> list[Decision]:
    """Decide for every in-progress job and, with ``stop``, stop the orphaned ones.

    Right before stopping a job, the reaper asks for its task instance's state again, so that
    a task cleared meanwhile (whose next try would re-attach) keeps its job.

    :param client: a boto3 ``bedrock`` client.
    :param lookup: asks Airflow for task instance states.
    :param stop: stop the jobs found orphaned; default False (a dry run: decide and report).
    :param namespace: the ``idempotency_namespace`` of this deployment's jobs.
    :param min_age: grace period in seconds; younger jobs are kept.
    :param now: the clock (tests); default UTC now.
    :param echo: called with each final decision as it is made (printing, logging).
    """
    from airflow_bedrock_ft.core.stop import stop_job

    clock = now or (lambda: datetime.datetime.now(datetime.timezone.utc))
    decisions = []
    for summary in list_in_progress_jobs(client):
        arn = summary["jobArn"]
        decision = decide(
            summary, job_tags(client, arn), lookup, namespace=namespace, min_age=min_age, now=clock()
        )
        if decision.action == STOP and not stop:
            decision = replace(decision, outcome="dry-run")
        elif decision.action == STOP:
            again = decide(
                summary, job_tags(client, arn), lookup, namespace=namespace, min_age=min_age, now=clock()
            )
            if again.action != STOP:
                decision = replace(again, reason=f"on a second look before stopping, {again.reason}")
            else:
                try:
                    result = stop_job(client, arn)
                except (ClientError, BotoCoreError) as exc:
                    outcome = f"stop failed: {error_code(exc) or type(exc).__name__}: {exc}"
                else:
                    outcome = "stop requested" if result.requested else f"already {result.status}"
                decision = replace(decision, outcome=outcome)
        decisions.append(decision)
        if echo is not None:
            echo(decision)
    return decisions


def summarize(decisions: Iterable[Decision]) -> str:
    """One line: how many jobs were looked at, stopped (or would be) and kept."""
    decisions = list(decisions)
    stops = [d for d in decisions if d.action == STOP]
    requested = sum(1 for d in stops if d.outcome == "stop requested")
    dry = sum(1 for d in stops if d.outcome == "dry-run")
    failed = sum(1 for d in stops if (d.outcome or "").startswith("stop failed"))
    ended = sum(1 for d in stops if (d.outcome or "").startswith("already "))
    parts = [f"{len(decisions)} in-progress job(s)"]
    if dry:
        parts.append(f"{dry} orphaned (dry run: not stopped; pass --stop / stop=True to stop them)")
    if requested:
        parts.append(f"{requested} stopped")
    if ended:
        parts.append(f"{ended} ended before the stop")
    if failed:
        parts.append(f"{failed} could not be stopped")
    parts.append(f"{len(decisions) - len(stops)} kept")
    return ", ".join(parts) + "."
