"""Run in a subprocess with its own AIRFLOW_HOME: ``victim`` runs the victim DAG and marks two of
its task instances deferred in the metadata database; ``reap`` runs the shipped reaper DAG with
``dag.test()`` with the given run conf. Each prints one JSON line."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

#: dag.test() runs only DAGs that the DAGs folder holds: the test copies both files there.
DAGS = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])


def load(path: Path, dag_id: str) -> Any:
    from airflow.sdk import DAG

    spec = importlib.util.spec_from_file_location(f"dag_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return next(v for v in vars(module).values() if isinstance(v, DAG) and v.dag_id == dag_id)


def states(dag_id: str, run_id: str) -> dict[str, Any]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
            )
        ).all()
    return {f"{t}[{m}]" if m >= 0 else t: (s.value if hasattr(s, "value") else s) for t, m, s in rows}


def victim() -> dict[str, Any]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import update

    dag = load(DAGS / "victim_dag.py", "reaper_victim")
    run = dag.test()
    with create_session() as session:
        for task_id, map_index in (("tune_deferred", -1), ("tune_mapped", 0)):
            session.execute(
                update(TaskInstance)
                .where(
                    TaskInstance.dag_id == dag.dag_id,
                    TaskInstance.run_id == run.run_id,
                    TaskInstance.task_id == task_id,
                    TaskInstance.map_index == map_index,
                )
                .values(state="deferred")
            )
    return {"run_id": run.run_id, "states": states(dag.dag_id, run.run_id)}


def reap(conf: dict[str, Any]) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    dag = load(DAGS / "reap_orphaned_jobs.py", "bedrock_reap_orphaned_jobs")
    run = dag.test(run_conf=conf)
    with create_session() as session:
        value = session.execute(
            select(XComModel.value).where(
                XComModel.dag_id == dag.dag_id, XComModel.run_id == run.run_id, XComModel.key == "return_value"
            )
        ).scalar()
    decisions = json.loads(value) if isinstance(value, (str, bytes)) else value
    return {"state": str(run.state), "ti": states(dag.dag_id, run.run_id), "decisions": decisions}


if __name__ == "__main__":
    if sys.argv[1] == "victim":
        print("RESULT " + json.dumps(victim()))
    else:
        print("RESULT " + json.dumps(reap(json.loads(sys.argv[2]))))
