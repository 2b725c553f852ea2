"""``airflow-bedrock-ft`` command line: ``validate`` (datasets), ``evaluate`` (holdout
evaluation), ``emulator`` (local Bedrock), ``demo``, ``reap`` (orphaned jobs) and ``cleanup-models``
(unused custom models).

Subcommands are imported only when chosen, so ``validate`` never loads Airflow or the
emulator's dependencies.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

_COMMANDS = {
    "validate": ("airflow_bedrock_ft.datasets.cli", "Validate training data for a base model."),
    "evaluate": ("airflow_bedrock_ft.evaluation.cli", "Evaluate a model on a holdout against baselines."),
    "emulator": ("airflow_bedrock_ft.emulator.cli", "Run the local Bedrock emulator with embedded S3."),
    "demo": ("airflow_bedrock_ft.demo", "Run the example fine-tuning DAG against the embedded emulator."),
    "reap": (
        "airflow_bedrock_ft.core.reaper_cli",
        "List (and with --stop, stop) jobs whose Airflow task instance has ended.",
    ),
    "cleanup-models": (
        "airflow_bedrock_ft.core.cleanup_cli",
        "List (and with --delete, delete) custom models nobody uses.",
    ),
}


def _usage() -> str:
    lines = ["usage: airflow-bedrock-ft COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<15} {help_}" for name, (_, help_) in _COMMANDS.items()]
    lines.append("\nRun 'airflow-bedrock-ft COMMAND --help' for a command's options.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to a subcommand's own ``main(argv)``; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in _COMMANDS:
        print(f"airflow-bedrock-ft: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    import importlib

    module = importlib.import_module(_COMMANDS[command][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
