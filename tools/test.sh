#!/usr/bin/env bash
# Run the test suite in the project's virtual environment (created on first use).
# Extra arguments go to pytest, e.g. `bash tools/test.sh -k vae -x`.
set -euo pipefail
source "$(dirname "$0")/_venv.sh" test
cd "$ROOT"
exec "$PY" -m pytest -q "$@"
