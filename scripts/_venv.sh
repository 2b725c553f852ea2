# Sourced by the scripts in this folder: creates .venv (if needed) and installs the project
# into it with the extras given in $EXTRAS. uv does the resolving: a cold install of Airflow
# with pip alone takes minutes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check uv
fi
.venv/bin/uv pip install --quiet --python .venv/bin/python -e ".[${EXTRAS}]"
export PATH="$ROOT/.venv/bin:$PATH"
