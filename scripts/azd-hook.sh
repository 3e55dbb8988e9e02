#!/bin/sh
# azd hook entry point (azure.yaml): runs scripts/azd_hook.py with the project's virtualenv when there is one.
set -eu
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
exec "$PY" -m scripts.azd_hook "$@"
