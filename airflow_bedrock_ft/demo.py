"""``airflow-bedrock-ft demo``: run an example DAG end to end against the embedded emulator.

Starts the local Bedrock emulator with its embedded S3 server, points the ``aws_default``
connection at it, migrates a throw-away SQLite metadata database and runs the DAG with
``dag.test()`` (deferred tasks go through their trigger in-process). While the DAG runs, a
watcher prints each job's status and phases every few seconds, and each deployment's status
changes. At the end it prints the job ARN, the custom model ARN, the loss figures, the
per-epoch losses, the local path of the loss-curve PNG, and, for a DAG that evaluates and
promotes, the evaluation table, the quality gate's decision and the promotion; then the
time the set-up and the DAG run took, and what to try next.
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
    """Polls the emulator, records each job's status and phase changes with timestamps, and
    prints progress: every change, and a line every ``heartbeat`` seconds while a job runs."""

    def __init__(self, client: Any, interval: float = 0.5, heartbeat: float = 5.0, echo: bool = True) -> None:
        super().__init__(name="bedrock-job-watcher", daemon=True)
        self.client = client
        self.interval = interval
        self.heartbeat = heartbeat
        self.echo = echo
        self.started_at = time.monotonic()
        self.transitions: dict[str, list[tuple[float, str, str]]] = {}
        self.deployments: dict[str, str] = {}
        self._deployment_names: dict[str, str] = {}
        self._printed_at: dict[str, float] = {}
        self._stop_event = threading.Event()

    def _say(self, at: float, text: str) -> None:
        if self.echo:
            print(f"  {at:5.0f} s  {text}", flush=True)

    def _poll_jobs(self) -> None:
        from airflow_bedrock_ft.core.states import Outcome, classify, phase_summary

        summaries = self.client.list_model_customization_jobs(maxResults=100)
        for item in summaries.get("modelCustomizationJobSummaries", []):
            job = self.client.get_model_customization_job(jobIdentifier=item["jobArn"])
            at = time.monotonic() - self.started_at
            seen = self.transitions.setdefault(job["jobArn"], [])
            state = (job["status"], phase_summary(job))
            changed = not seen or seen[-1][1:] != state
            if changed:
                seen.append((at, *state))
            running = classify(job["status"]) is Outcome.RUNNING
            last = self._printed_at.get(job["jobArn"])
            if changed or (running and last is not None and at - last >= self.heartbeat):
                self._printed_at[job["jobArn"]] = at
                self._say(at, f"job {job['jobName']}: {job['status']}{_phase_note(state[1], running)}")

    def _poll_deployments(self) -> None:
        found = self.client.list_custom_model_deployments(maxResults=100).get("modelDeploymentSummaries", [])
        at = time.monotonic() - self.started_at
        current = {d["customModelDeploymentArn"]: d for d in found}
        for arn, d in current.items():
            self._deployment_names[arn] = d["customModelDeploymentName"]
            if self.deployments.get(arn) != d["status"]:
                self.deployments[arn] = d["status"]
                self._say(at, f"deployment {d['customModelDeploymentName']}: {d['status']}")
        for arn, status in list(self.deployments.items()):
            if arn not in current and status != "deleted":
                self.deployments[arn] = "deleted"
                self._say(at, f"deployment {self._deployment_names.get(arn, arn)}: deleted")

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self._poll_jobs()
                self._poll_deployments()
            except Exception:  # a watcher must never break the demo
                pass
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        """Stop polling and wait for the thread."""
        self._stop_event.set()
        self.join(timeout=5)


def _phase_note(phases: str, running: bool) -> str:
    """``, training`` for the phase in progress (from ``phase_summary``), or nothing."""
    current = [k for k, _, v in (p.partition("=") for p in phases.split()) if v == "InProgress"]
    if current:
        return ", " + ", ".join(_PHASE_NAMES.get(k, k) for k in current)
    return ", starting" if running else ""


_PHASE_NAMES = {"validation": "validating the data", "dataProcessing": "processing the data",
                "training": "training"}


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
        moves = watcher.transitions.get(job["jobArn"], [])
        if len(moves) > 1:
            print(f"Trained  {moves[-1][0] - moves[0][0]:.0f} s from the first status seen to {moves[-1][1]}")
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


def _run_xcoms(dag_run: Any) -> dict[str, Any]:
    """The return values of the run's tasks, by task id (mapped tasks: the first one's)."""
    try:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        out: dict[str, Any] = {}
        with create_session() as session:
            rows: Any = session.scalars(XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id,
                                                      key="return_value"))
            for row in rows:
                out.setdefault(row.task_id, XComModel.deserialize_value(row))
        return out
    except Exception:  # the evaluation sections are a courtesy; never fail the demo over them
        return {}


def _of_shape(xcoms: dict[str, Any], *keys: str) -> Any:
    """The first task result that is a dict holding every key."""
    for value in xcoms.values():
        if isinstance(value, dict) and all(k in value for k in keys):
            return value
    return None


def _num(value: Any, signed: bool = False) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "-"
    text = f"{value:+.3f}" if signed else f"{value:.3f}"
    return text.replace("-0.000", "0.000").replace("+0.000", "0.000") if abs(value) < 5e-4 else text


def _interval(est: dict[str, Any] | None, signed: bool = False) -> str:
    if not est or est.get("mean") is None:
        return "-"
    return f"{_num(est['mean'], signed)} [{_num(est.get('low'), signed)}, {_num(est.get('high'), signed)}]"


def format_evaluation(summary: dict[str, Any]) -> str:
    """The evaluation as a table for people: one row per metric, a column per model (mean and
    interval), then candidate - baseline with its paired interval (``*`` above zero)."""
    models = summary.get("models") or []
    if not models:
        return "No model was evaluated."
    candidate, baselines = models[0], models[1:]
    header = ["metric", *(m["label"] for m in models),
              *(f"{candidate['label']} - {b['label']}" for b in baselines)]
    rows = []
    for metric in summary.get("metrics") or []:
        row = [metric, *(_interval((m.get("metrics") or {}).get(metric)) for m in models)]
        for b in baselines:
            comp = next((c for c in summary.get("comparisons") or []
                         if c.get("baseline") == b["label"] and c.get("metric") == metric), None)
            cell = _interval(comp["difference"], signed=True) if comp else "-"
            row.append(cell + (" *" if comp and comp.get("significant") else ""))
        rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    confidence = summary.get("confidence") or 0.95
    lines.append(f"mean [{confidence:.0%} bootstrap interval] over {summary.get('examples')} holdout "
                 "examples; * = the paired interval is above zero")
    for m in models:
        invoked = m.get("invoked_as")
        as_note = f", invoked as {invoked}" if invoked not in (None, m.get("model")) else ""
        lines.append(f"{m['label']}: {m.get('model')}{as_note}; "
                     f"{m.get('succeeded')}/{m.get('examples')} answered")
    return "\n".join(lines)


def _print_evaluation(xcoms: dict[str, Any]) -> None:
    summary = _of_shape(xcoms, "models", "comparisons", "metrics")
    if summary is not None:
        print("\nEvaluation (candidate vs baselines, same prompts):")
        print("  " + format_evaluation(summary).replace("\n", "\n  "))
        if summary.get("output"):
            print(f"  per-example results: {summary['output']}")
    decision = _of_shape(xcoms, "passed", "results", "message")
    if decision is not None:
        verdict = "passed: the model may be promoted" if decision["passed"] else "failed: no promotion"
        print(f"\nQuality gate {verdict}")
        for r in decision["results"]:
            print(f"  {'PASS' if r['passed'] else 'FAIL'}  {r['detail']}")
    promotion = _of_shape(xcoms, "model_arn", "scope", "stage", "demoted")
    if promotion is not None:
        scores = sorted((promotion.get("scores") or {}).items())
        print(f"\nPromoted {promotion['model_arn']}")
        print(f"  to stage {promotion['stage']} of scope {promotion['scope']} (recorded in the model's tags)")
        print(f"  scores  {', '.join(f'{k} {metrics_human(v)}' for k, v in scores) or '-'}")
        previous = promotion.get("previous_model_arn")
        print(f"  {f'replaces {previous}, now previous' if previous else 'no model held the stage before'}")
    elif decision is not None:
        print("\nNot promoted.")


def metrics_human(value: Any) -> str:
    """A score rounded for people."""
    from airflow_bedrock_ft.core.metrics import human

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return human(float(value))
    return str(value)


def _print_next_steps(dag_file: Path, dag_id: str, model_arn: str | None) -> None:
    model = model_arn or "CUSTOM_MODEL_ARN"
    print(f"""
What to try next:
  - The UI: start an emulator (`airflow-bedrock-ft emulator --port 5055 --state emulator.db`; it
    prints the aws_default connection to set), then `airflow standalone` with
    AIRFLOW__CORE__DAGS_FOLDER={dag_file.parent}; the trigger form of {dag_id}
    changes the base model, data, hyperparameters and gate thresholds (DAG params).
  - Invoke the model: serve it in that emulator (CreateCustomModelDeployment; the demo's own
    emulator stopped with the demo; here the model was {model})
    and call Converse with the deployment ARN (credentials testing/testing):
      boto3.client("bedrock-runtime", endpoint_url="http://127.0.0.1:5055").converse(
          modelId=DEPLOYMENT_ARN,
          messages=[{{"role": "user", "content": [{{"text": "What is the capital of Peru?"}}]}}])
  - Evaluate any model: airflow-bedrock-ft evaluate --model MODEL --baseline base=BASE --data holdout.jsonl
  - Real AWS: point the aws_default connection at your account (no endpoint_url) and set
    BEDROCK_FT_BUCKET and BEDROCK_FT_ROLE_ARN (a role Bedrock assumes to read and write the bucket).""")


def _json_object(text: str) -> dict[str, Any]:
    import json

    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--conf is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"--conf must be a JSON object, got {text!r}")
    return value


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
    parser.add_argument(
        "--conf",
        type=_json_object,
        default=None,
        metavar="JSON",
        help='params of the DAG run as a JSON object, e.g. \'{"epochs": 2}\' (the trigger form\'s values)',
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="run the DAG this many times in a row against the same emulator, e.g. 2 to see the "
        "second run compared with the model the first one promoted (default 1)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary AIRFLOW_HOME")
    parser.add_argument(
        "--plot-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "airflow-bedrock-ft-demo",
        help="where to save each job's loss-curve PNG (default: %(default)s)",
    )
    args = parser.parse_args(list(argv) if argv is not None else None)

    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
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
            # Plain text: no colour codes from Airflow's or other libraries' log renderers.
            "NO_COLOR": "1",
            "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
            # dag.test() has no dag-processor to register the custom model's Asset (emitted
            # through an alias), so Airflow's asset manager warns on every run; the demo
            # reports the promotion itself.
            "AIRFLOW__LOGGING__NAMESPACE_LEVELS": os.environ.get(
                "AIRFLOW__LOGGING__NAMESPACE_LEVELS", "airflow.assets.manager=ERROR"
            ),
        }
    )
    # The example DAG reads its settings from the environment; poll often against the emulator.
    os.environ.setdefault("BEDROCK_FT_POLL_INTERVAL", "2")

    # Keep the output to what the demo reports: dependencies' deprecation notices are noise here
    # (some, like Starlette's, are UserWarnings that only say "deprecated").
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", message=r"(?is).*deprecat")
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
            set_up = time.monotonic() - started
            print(f"Set-up done in {set_up:.0f} s. Running DAG {dag.dag_id} with dag.test() "
                  "(seconds since the run started):", flush=True)
            watcher = JobWatcher(bedrock)
            watcher.start()
            runs: list[tuple[Any, float, dict[str, Any]]] = []
            for number in range(1, args.runs + 1):
                if args.runs > 1:
                    print(f"Run {number} of {args.runs}:", flush=True)
                run_started = time.monotonic()
                dag_run = dag.test(run_conf=args.conf)
                runs.append((dag_run, time.monotonic() - run_started, _run_xcoms(dag_run)))
            watcher.stop()
            jobs_ok = _print_report(emu, watcher, s3, bedrock, args.plot_dir.resolve())
            states = []
            for number, (dag_run, ran, xcoms) in enumerate(runs, 1):
                if args.runs > 1:
                    print(f"\n=== Run {number} of {args.runs} ({dag_run.run_id})")
                _print_evaluation(xcoms)
                state = str(getattr(dag_run, "state", "unknown")).rsplit(".", 1)[-1]
                states.append(state)
                print(f"\nTasks    {_task_states(dag_run)}")
                print(f"DAG run {state} in {ran:.0f} s (set-up before it {set_up:.0f} s; "
                      f"total {time.monotonic() - started:.0f} s)")
            left = bedrock.list_custom_model_deployments(maxResults=100).get("modelDeploymentSummaries", [])
            if watcher.deployments or left:
                print(f"\nDeployments still running after the teardown: {len(left)}")
            promoted = None
            for _, _, xcoms in runs:
                promotion = _of_shape(xcoms, "model_arn", "scope", "stage", "demoted") or {}
                promoted = promotion.get("model_arn") or promoted
            _print_next_steps(dag_file, dag.dag_id, promoted)
            return 0 if jobs_ok and all(s == "success" for s in states) else 1
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
