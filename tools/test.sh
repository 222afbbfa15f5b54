#!/usr/bin/env bash
# Run the test suite in the project's virtual environment (created on first use).
# Extra arguments go to pytest, e.g. `bash tools/test.sh -k vae -x`.
set -euo pipefail
source "$(dirname "$0")/_venv.sh" test
cd "$ROOT"
# Idle OpenMP threads sleep instead of spinning: torch, scikit-learn and numba each bring
# an OpenMP runtime, and on a small machine their spinning threads slow each other down.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
exec "$PY" -m pytest -q "$@"
