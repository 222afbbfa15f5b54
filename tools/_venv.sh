# Sourced by the other scripts: create (once) and activate the project's virtual environment.
# SCVI_VENV overrides its location (default: .venv in the repository root).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SCVI_VENV:-$ROOT/.venv}"
EXTRAS="${1:-}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
STAMP="$VENV/.scvi-installed${EXTRAS:+-$EXTRAS}"
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
    "$PY" -m pip install -q --upgrade pip
    # The CPU build of torch; an unpinned torch would pull a multi-GB CUDA build.
    "$PY" -m pip install -q torch==2.13.0
    "$PY" -m pip install -q -e "$ROOT${EXTRAS:+[$EXTRAS]}"
    touch "$STAMP"
fi
