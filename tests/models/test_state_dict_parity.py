"""State-dict layout of VAE / LDVAE against the original scVI 0.5.0.

The golden file ``tests/golden/state_dict_parity.json`` was produced by
``tests/golden/make_golden.py`` with the original package: for every configuration of a
constructor-argument grid it records whether the original builds and runs, and the
ordered ``(key, shape)`` list of its ``state_dict``. Weights saved with the original must
load into our models, so keys, order and shapes have to be identical.
"""

import json
from pathlib import Path
from typing import Any, Dict

import pytest
import torch

from scvi.models import LDVAE, VAE

GOLDEN = json.loads(
    (
        Path(__file__).resolve().parents[1] / "golden" / "state_dict_parity.json"
    ).read_text()
)
MODELS = {"VAE": VAE, "LDVAE": LDVAE}
ARG_NAMES = [name for name in GOLDEN["grid"] if name != "model"]


def _entry_id(entry: Dict[str, Any]) -> str:
    return "-".join([entry["model"]] + [f"{name}={entry[name]}" for name in ARG_NAMES])


def _entries(*statuses: str):
    chosen = [e for e in GOLDEN["entries"] if e["status"] in statuses]
    return pytest.mark.parametrize("entry", chosen, ids=[_entry_id(e) for e in chosen])


def _build(entry: Dict[str, Any]) -> torch.nn.Module:
    kwargs = {name: entry[name] for name in ARG_NAMES}
    return MODELS[entry["model"]](**GOLDEN["dims"], **kwargs)


def test_golden_covers_both_models_and_all_dispersions():
    ok = [e for e in GOLDEN["entries"] if e["status"] == "ok"]
    assert {e["model"] for e in ok} == {"VAE", "LDVAE"}
    assert {e["dispersion"] for e in ok} == {
        "gene",
        "gene-batch",
        "gene-label",
        "gene-cell",
    }
    assert len(ok) >= 100


@_entries("ok")
def test_state_dict_layout_matches_original(entry):
    model = _build(entry)
    layout = [[key, list(value.shape)] for key, value in model.state_dict().items()]
    assert layout == GOLDEN["layouts"][entry["layout"]]


@_entries("ok")
def test_original_layout_loads_strictly(entry):
    model = _build(entry)
    foreign = {
        key: (
            torch.full(shape, 0.25)
            if key.split(".")[-1] != "num_batches_tracked"
            else torch.tensor(3)
        )
        for key, shape in GOLDEN["layouts"][entry["layout"]]
    }
    model.load_state_dict(foreign, strict=True)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, foreign[key].to(value.dtype))


@_entries("construct_error", "forward_error")
def test_configurations_the_original_cannot_run_fail_clearly(entry):
    """Where the original crashes (e.g. 'gene-batch' without batches, LDVAE with
    'gene-cell'), ours must refuse with a ValueError or TypeError instead of an
    obscure indexing error."""
    n_cells = 6
    x = torch.poisson(torch.full((n_cells, GOLDEN["dims"]["n_input"]), 3.0))
    batch = torch.zeros(n_cells, 1, dtype=torch.long)
    labels = torch.zeros(n_cells, 1, dtype=torch.long)
    l_mean = torch.full((n_cells, 1), 3.0)
    l_var = torch.ones(n_cells, 1)
    with pytest.raises((ValueError, TypeError)):
        model = _build(entry)
        model.eval()
        model(x, l_mean, l_var, batch, labels)
