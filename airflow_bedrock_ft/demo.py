"""``airflow-bedrock-ft demo``: run an example DAG end to end against the embedded emulator.

Starts the local Bedrock emulator with its embedded S3 server, points the ``aws_default``
connection at it, migrates a throw-away SQLite metadata database and runs the DAG with
``dag.test()`` (deferred tasks go through their trigger in-process). While the DAG runs, a
watcher records every status and phase change of the jobs it submits; at the end the job
ARN, the transitions, the custom model ARN, the loss figures, the per-epoch losses and the
local path of the loss-curve PNG are printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_DAG_FILE = Path("dags") / "fine_tune_pipeline.py"
DEFAULT_DAG_ID = "bedrock_fine_tune_pipeline"


class JobWatcher(threading.Thread):
    """Polls the emulator and records each job's status and phase changes with timestamps."""

    def __init__(self, client: Any, interval: float = 0.2) -> None:
        super().__init__(name="bedrock-job-watcher", daemon=True)
        self.client = client
        self.interval = interval
        self.started_at = time.monotonic()
        self.transitions: dict[str, list[tuple[float, str, str]]] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        from airflow_bedrock_ft.core.states import phase_summary

        while not self._stop_event.is_set():
            try:
                summaries = self.client.list_model_customization_jobs(maxResults=100)
                for item in summaries.get("modelCustomizationJobSummaries", []):
                    job = self.client.get_model_customization_job(jobIdentifier=item["jobArn"])
                    seen = self.transitions.setdefault(job["jobArn"], [])
                    state = (job["status"], phase_summary(job))
                    if not seen or seen[-1][1:] != state:
                        seen.append((time.monotonic() - self.started_at, *state))
            except Exception:  # a watcher must never break the demo
                pass
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        """Stop polling and wait for the thread."""
        self._stop_event.set()
        self.join(timeout=5)


def _load_dag(dag_file: Path, dag_id: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"demo_dag_{dag_file.stem}", dag_file)
    if spec is None or spec.loader is None:
        raise SystemExit(f"Cannot load DAG file {dag_file}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from airflow.sdk import DAG

    dags = [v for v in vars(module).values() if isinstance(v, DAG)]
    for dag in dags:
        if dag.dag_id == dag_id:
            return dag
    if len(dags) == 1:
        return dags[0]
    raise SystemExit(f"No DAG {dag_id!r} in {dag_file}; found {[d.dag_id for d in dags]}")


def _task_states(dag_run: Any) -> str:
    try:
        tis = sorted(dag_run.get_task_instances(), key=lambda ti: (ti.start_date is None, ti.start_date))
    except Exception:  # the summary line is a courtesy; never fail the demo over it
        return "unknown"
    return ", ".join(
        f"{ti.task_id}{'' if ti.map_index < 0 else f'[{ti.map_index}]'}={ti.state}" for ti in tis
    )


def _loss(value: Any) -> str:
    from airflow_bedrock_ft.core.metrics import human

    return human(value)


def _save_plot(s3: Any, job: dict[str, Any], report: dict[str, Any], plot_dir: Path) -> Path | None:
    """Save the job's loss plot locally: the PNG its DAG uploaded next to the job's artifacts,
    or one drawn here when the DAG made none (None without matplotlib)."""
    from botocore.exceptions import ClientError

    from airflow_bedrock_ft.core import metrics

    bucket, key = metrics.plot_key(job["outputDataConfig"]["s3Uri"], job["jobArn"])
    try:
        png = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError:
        if not report["summary"]["series"]:
            return None
        from airflow_bedrock_ft.core.plot import PlotUnavailableError, render_loss_curves

        try:
            png = render_loss_curves(report["summary"], title=job["jobName"])
        except PlotUnavailableError:
            return None
    plot_dir.mkdir(parents=True, exist_ok=True)
    path = plot_dir / f"{job['jobName']}-{metrics.LOSS_PLOT_NAME}"
    path.write_bytes(png)
    return path


def _print_report(emu: Any, watcher: JobWatcher, s3: Any, bedrock: Any, plot_dir: Path) -> bool:
    from airflow_bedrock_ft.core import metrics

    ok = True
    jobs = bedrock.list_model_customization_jobs(sortOrder="Ascending").get(
        "modelCustomizationJobSummaries", []
    )
    if not jobs:
        print("No model customization job was submitted.")
        return False
    for summary in jobs:
        job = bedrock.get_model_customization_job(jobIdentifier=summary["jobArn"])
        print(f"\nJob      {job['jobName']}")
        print(f"ARN      {job['jobArn']}")
        print("Transitions (seconds since the DAG run started):")
        for at, status, phases in watcher.transitions.get(job["jobArn"], []):
            print(f"  {at:7.1f}s  {status:<11} {phases}")
        print(f"Status   {job['status']}")
        if job.get("failureMessage"):
            print(f"Failure  {job['failureMessage']}")
        if job["status"] != "Completed":
            ok = False
            continue
        print(f"Custom model  {job.get('outputModelArn')}")
        report = metrics.job_metrics(job, s3, plot=False)
        figs = report["figures"]
        h = metrics.human
        print(f"Final loss    training {h(figs['final_training_loss'])} (mean of the last epoch), "
              f"validation {h(figs['final_validation_loss'])}")
        if figs["best_validation_loss"] is not None:
            print(f"Best          validation {h(figs['best_validation_loss'])} at step {figs['best_step']}; "
                  f"train/validation gap {h(figs['train_validation_gap'])}")
        for warning in report["warnings"]:
            print(f"Note          {warning}")
        print("Per-epoch loss (from the job's metrics artifacts in S3):")
        print("  epoch  training_loss  validation_loss")
        for row in report["per_epoch"]:
            tl, vl = (_loss(row.get(k)) for k in ("training_loss", "validation_loss"))
            print(f"  {row['epoch']:>5}  {tl:>13}  {vl:>15}")
        saved = _save_plot(s3, job, report, plot_dir)
        if saved:
            print(f"Loss plot     {saved}")
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns 0 when the DAG run and its jobs succeeded."""
    parser = argparse.ArgumentParser(prog="airflow-bedrock-ft demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dag-file", type=Path, default=DEFAULT_DAG_FILE, help="the example DAG file to run")
    parser.add_argument("--dag-id", default=DEFAULT_DAG_ID)
    parser.add_argument(
        "--time-scale",
        type=float,
        default=0.01,
        help="emulated phase durations as a fraction of real Bedrock's (default 0.01)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary AIRFLOW_HOME")
    parser.add_argument(
        "--plot-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "airflow-bedrock-ft-demo",
        help="where to save each job's loss-curve PNG (default: %(default)s)",
    )
    args = parser.parse_args(list(argv) if argv is not None else None)

    dag_file = args.dag_file.resolve()
    if not dag_file.is_file():
        parser.error(f"DAG file not found: {dag_file}")
    started = time.monotonic()
    home = Path(tempfile.mkdtemp(prefix="airflow-bedrock-ft-demo-"))
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dag_file.parent),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"),
            # Dummy credentials for the local emulator; boto3 needs some to sign requests.
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    # The example DAG reads its settings from the environment; poll often against the emulator.
    os.environ.setdefault("BEDROCK_FT_POLL_INTERVAL", "2")

    # Keep the output to what the demo reports: Airflow's own deprecation notices are noise here.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from airflow_bedrock_ft.emulator import start_emulator

    try:
        with start_emulator(time_scale=args.time_scale) as emu:
            os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = emu.connection_uri_json()
            print(f"Bedrock emulator at {emu.endpoint_url}, S3 at {emu.s3_endpoint_url}")
            print("Migrating a temporary Airflow metadata database ...", flush=True)
            subprocess.run(
                [sys.executable, "-m", "airflow", "db", "migrate"],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            import boto3

            bedrock = boto3.client("bedrock", endpoint_url=emu.endpoint_url, region_name=emu.region)
            s3 = boto3.client("s3", endpoint_url=emu.s3_endpoint_url, region_name=emu.region)
            dag = _load_dag(dag_file, args.dag_id)
            watcher = JobWatcher(bedrock)
            watcher.start()
            print(f"Running DAG {dag.dag_id} with dag.test() ...", flush=True)
            dag_run = dag.test()
            watcher.stop()
            state = str(getattr(dag_run, "state", "unknown"))
            jobs_ok = _print_report(emu, watcher, s3, bedrock, args.plot_dir.resolve())
            print(f"\nTasks    {_task_states(dag_run)}")
            print(f"DAG run {state} in {time.monotonic() - started:.1f} s")
            return 0 if jobs_ok and state.endswith("success") else 1
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
