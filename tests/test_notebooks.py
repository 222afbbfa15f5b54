"""The tutorial notebooks of ``notebooks/`` run top to bottom in fast mode.

Every ``notebooks/*.ipynb`` is executed in memory with nbclient, in a ``python3``
kernel started in ``notebooks/`` with ``SCVI_TUTORIAL_FAST=1`` (few epochs, small
samples), ``MPLBACKEND=Agg``, ``SCVI_SHARED_DATA`` pointing at the shared datasets and
this checkout first on ``PYTHONPATH``. The first cell that raises fails the test with
its error. The executed copy is discarded: the committed notebooks keep the outputs of
their full run, and the test fails if a notebook leaves files in the repository.

The committed notebooks are also checked without running them: the settings cell that
the fast mode relies on, the kernel, and outputs from a complete, error-free run.
"""

import os
import re
import time
from pathlib import Path
from typing import Dict, Iterator

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 300
KERNEL_STARTUP_TIMEOUT_S = 120
MAX_NOTEBOOK_BYTES = 1_000_000
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
SETTINGS = ("DATA_DIR", "FAST", "OUTPUT_DIR", "SCVI_TUTORIAL_FAST", "SCVI_SHARED_DATA")


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def code_cells(notebook: nbformat.NotebookNode) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def files_under(folder: Path) -> Dict[str, float]:
    """Modification time of every file below ``folder`` but the notebooks themselves."""
    return {
        str(path.relative_to(folder)): path.stat().st_mtime
        for path in folder.rglob("*")
        if path.is_file()
        and path.suffix != ".ipynb"
        and ".ipynb_checkpoints" not in path.parts
    }


@pytest.fixture
def fast_mode_env(monkeypatch, shared_data: Path) -> Iterator[None]:
    """Environment inherited by the kernel: fast mode, no display, shared data, this checkout.

    Idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``, unless
    set already): torch and scikit-learn each bring an OpenMP runtime, and on a busy
    2-core machine their spinning threads slow each other down many times over.
    """
    monkeypatch.setenv("SCVI_TUTORIAL_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    monkeypatch.setenv("SCVI_SHARED_DATA", str(shared_data.resolve()))
    python_path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), python_path]))
    )
    yield


def test_notebooks_are_found():
    assert NOTEBOOKS, f"no tutorial notebooks in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_in_fast_mode(path: Path, fast_mode_env) -> None:
    notebook = read(path)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        startup_timeout=KERNEL_STARTUP_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    before = files_under(NOTEBOOK_DIR)
    begin = time.time()
    try:
        client.execute()
    except CellExecutionError as error:
        message = ANSI_ESCAPE.sub("", str(error))
        pytest.fail(f"{path.name} failed in fast mode:\n{message}", pytrace=False)
    seconds = time.time() - begin
    after = files_under(NOTEBOOK_DIR)
    changed = sorted(name for name in after if before.get(name) != after[name])
    assert not changed, (
        f"{path.name} wrote into the repository (notebooks/): {changed}; write into "
        "OUTPUT_DIR (a temporary folder) instead."
    )
    print(f"{path.name}: {seconds:.1f} s in fast mode")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_committed_notebook(path: Path) -> None:
    """Conventions of a committed tutorial, checked without running it."""
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES, (
        f"{path.name} is {path.stat().st_size} bytes; keep it under "
        f"{MAX_NOTEBOOK_BYTES} (lower the figures' dpi, fewer points in scatter plots)."
    )
    notebook = read(path)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    cells = code_cells(notebook)
    assert cells, f"{path.name} has no code cells"
    missing = [name for name in SETTINGS if name not in cells[0].source]
    assert not missing, (
        f"the first code cell of {path.name} must be the settings cell defining "
        f"DATA_DIR (from SCVI_SHARED_DATA), FAST (from SCVI_TUTORIAL_FAST) and "
        f"OUTPUT_DIR; it lacks {missing}"
    )
    counts = [cell.execution_count for cell in cells]
    assert counts == list(range(1, len(cells) + 1)), (
        f"{path.name} must be saved from one top-to-bottom run (execution counts "
        f"{counts})"
    )
    errors = [
        output.get("ename")
        for cell in cells
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors, f"{path.name} was saved with errors: {errors}"
    assert any(
        "image/png" in output.get("data", {})
        for cell in cells
        for output in cell.outputs
    ), f"{path.name} shows no figure"
