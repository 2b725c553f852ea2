#!/usr/bin/env bash
# Install the plugin with its local emulator and run the example fine-tuning DAG end to end
# against it: prepare the data, fine-tune, evaluate against the base model, gate, promote.
EXTRAS=emulator,plot,evaluate
source "$(dirname "$0")/_venv.sh"
exec airflow-bedrock-ft demo --dag-file "$ROOT/dags/fine_tune_pipeline.py" "$@"
