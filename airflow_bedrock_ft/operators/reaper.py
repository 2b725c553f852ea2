"""Operator that stops model-customization jobs whose Airflow task instance has ended."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.types import RuntimeTaskInstanceProtocol

    from airflow_bedrock_ft.core.reaper import TaskInstanceRef, TaskInstanceState
    from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook


def _flag(value: Any, name: str) -> bool:
    # Rendered templates and DAG params arrive as strings: parse them, never rely on truthiness
    # ("False" is a non-empty string).
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise ValueError(f"{name} must be true or false, got {value!r}")


class SdkTaskStateLookup:
    """Task instance states through the Task SDK (``RuntimeTaskInstance.get_task_states``).

    Runs inside a task: the worker's supervisor asks the execution API, so no REST API
    credentials are needed and no ORM access is made.

    :param ti: the running task instance (``context["ti"]``).
    """

    def __init__(self, ti: RuntimeTaskInstanceProtocol) -> None:
        self.ti = ti

    def task_state(self, ti: TaskInstanceRef) -> TaskInstanceState | None:
        """The state of ``ti``, or None when Airflow has no such task instance."""
        from airflow_bedrock_ft.core.reaper import TaskInstanceState

        states = self.ti.get_task_states(
            dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id], map_index=ti.map_index
        )
        by_task = (states or {}).get(ti.run_id)
        # The execution API keys a mapped instance as "<task_id>_<map_index>"; the filters on
        # task id, run id and map index leave at most this one entry.
        key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}_{ti.map_index}"
        if not by_task or key not in by_task:
            return None
        return TaskInstanceState(state=by_task[key])


class BedrockFineTuneReapOrphanedJobsOperator(BaseOperator):
    """Stop Amazon Bedrock model-customization jobs whose Airflow task instance has ended.

    Closes the gap Airflow leaves: a deferred task marked failed before any triggerer picked
    up its trigger, or a task whose worker died before it was marked failed, has nobody to
    stop its job. The operator lists ``InProgress`` jobs, reads their identity tags and asks
    Airflow, through the Task SDK, for the state of the task instance they name; it stops a
    job only when that task instance has ended and no try of it is live
    (:mod:`airflow_bedrock_ft.core.reaper` has the full rules). Jobs without this plugin's
    tags, of another namespace, younger than ``min_age``, or whose task instance Airflow
    cannot find or cannot report are always kept.

    A dry run by default (``stop=False``): it logs what it would stop and why. Returns (XCom)
    the list of decisions ``{"job_arn", "job_name", "action", "reason", "task_instance",
    "ti_state", "created", "outcome"}``.

    .. seealso::
        https://docs.aws.amazon.com/bedrock/latest/APIReference/API_StopModelCustomizationJob.html

    :param stop: stop the orphaned jobs (default False: report only). (templated)
    :param min_age: keep jobs younger than this (timedelta, seconds, or ``"10m"``; default 10
        minutes). (templated)
    :param namespace: the ``idempotency_namespace`` of the jobs this deployment owns (default:
        jobs without one). (templated)
    :param aws_conn_id: The Airflow connection used for AWS credentials. (templated)
    :param region_name: AWS region; defaults to the connection's. (templated)
    """

    template_fields: Sequence[str] = ("stop", "min_age", "namespace", "aws_conn_id", "region_name")
    ui_color = "#ffb366"

    def __init__(
        self,
        *,
        stop: bool | str = False,
        min_age: datetime.timedelta | float | str = datetime.timedelta(minutes=10),
        namespace: str | None = None,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.stop = stop
        self.min_age = min_age
        self.namespace = namespace
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    @cached_property
    def hook(self) -> BedrockFineTuneHook:
        """The Bedrock hook (a cached property, so tests can replace it)."""
        from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook

        return BedrockFineTuneHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from airflow_bedrock_ft.core.reaper import Decision, parse_duration, reap, summarize

        stop = _flag(self.stop, "stop")
        min_age = parse_duration(self.min_age)
        self.log.info(
            "Looking for orphaned jobs (%s, grace period %.0f s, namespace %r).",
            "stopping them" if stop else "dry run",
            min_age,
            self.namespace or None,
        )

        def echo(decision: Decision) -> None:
            self.log.info("%s", decision.line())

        decisions = reap(
            self.hook.client,
            SdkTaskStateLookup(context["ti"]),
            stop=stop,
            namespace=self.namespace or None,
            min_age=min_age,
            echo=echo,
        )
        self.log.info("%s", summarize(decisions))
        return [d.to_dict() for d in decisions]
