#!/usr/bin/env bash
# Install the plugin with its development extras, then lint, type-check and run every test.
EXTRAS=dev
source "$(dirname "$0")/_venv.sh"
ruff check .
mypy
exec pytest "$@"
