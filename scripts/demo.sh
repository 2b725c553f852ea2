#!/usr/bin/env bash
# Install the plugin with its local emulator and run the example fine-tuning DAG end to end
# against it: upload data, submit the job, wait through the trigger, report the losses.
EXTRAS=emulator,plot
source "$(dirname "$0")/_venv.sh"
exec airflow-bedrock-ft demo --dag-file "$ROOT/dags/fine_tune_pipeline.py" "$@"
