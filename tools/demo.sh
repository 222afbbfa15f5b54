#!/usr/bin/env bash
# Train scVI on the PBMC dataset embedded in the package and write its results.
# Arguments go to `python -m scvi`, e.g. `bash tools/demo.sh --n-epochs 50 --output out/`.
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
cd "$ROOT"
exec "$PY" -m scvi "$@"
