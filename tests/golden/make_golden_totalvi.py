"""Regenerate the golden files that pin our totalVI to the original scVI 0.5.0.

A developer tool, not part of the test suite: it imports the *original* ``scvi`` 0.5.0
(the "oracle"), so run it with that environment and with this repository off the
import path::

    cd /tmp && /path/to/scvi05-venv/bin/python /work/main/tests/golden/make_golden_totalvi.py \
        /work/main/tests/golden

It writes:

``totalvi_state_dict.json``
    For TOTALVI over a grid of constructor arguments: whether the original constructs
    and runs ``forward`` (eval and a train-mode backward), and the ordered
    ``(key, shape)`` layout of its ``state_dict``.
``totalvi_numeric_<config>.pt``
    For a few configurations: a full ``state_dict`` (batch-norm statistics and affine
    parameters perturbed so they matter), fixed inputs and the original's outputs of
    every model method, each computed right after ``torch.manual_seed`` so that the
    sampling methods are reproducible.
``totalvi_posterior_<config>.pt``
    The same for ``TotalPosterior`` over a small dataset: ELBO, reconstruction errors,
    one-sample marginal likelihood, latent space, background means, mixing and dropout
    logits, denoised expression and imputation. ``scale_from_z``, broken in 0.5, is
    replaced by what it was meant to compute (the decoder at a fixed batch).

Everything is saved with plain ``torch.save`` of dicts of tensors, numbers and strings,
readable with ``torch.load(..., weights_only=True)``.
"""

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F

import scvi
from scvi.dataset import GeneExpressionDataset
from scvi.dataset.dataset import CellMeasurement
from scvi.inference import TotalPosterior
from scvi.models import TOTALVI

GRID = {
    "n_batch": [0, 2],
    "n_labels": [0, 3],
    "n_layers": [1, 2],
    "gene_dispersion": ["gene", "gene-batch", "gene-label"],
    "protein_dispersion": ["protein", "protein-batch", "protein-label"],
}
LAYOUT_DIMS = dict(n_input_genes=7, n_input_proteins=3, n_hidden=5, n_latent=2)

NUMERIC_CONFIGS: Dict[str, Dict[str, Any]] = {
    "default_b0": dict(),
    "zinb_normal_batch_l2": dict(
        n_batch=2,
        n_labels=3,
        n_layers=2,
        gene_dispersion="gene-batch",
        protein_dispersion="protein-batch",
        reconstruction_loss_gene="zinb",
        latent_distribution="normal",
    ),
    "label_disp_nolog": dict(
        n_batch=3,
        n_labels=3,
        gene_dispersion="gene-label",
        protein_dispersion="protein-label",
        reconstruction_loss_gene="zinb",
        log_variational=False,
    ),
}
NUMERIC_DIMS = dict(n_input_genes=12, n_input_proteins=5, n_hidden=8, n_latent=4)
POSTERIOR_CONFIGS = ("default_b0", "zinb_normal_batch_l2")
N_CELLS = 10
N_CELLS_POSTERIOR = 24


def _clone(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone().contiguous()


def _counts(rng: np.random.RandomState, n_cells: int, n_genes: int, n_proteins: int):
    """Sparse-ish gene counts and protein counts with a background/foreground mixture."""
    x = rng.poisson(rng.gamma(0.6, 5.0, size=(n_cells, n_genes))).astype(np.float32)
    background = rng.gamma(5.0, 6.0, size=(1, n_proteins))
    foreground = rng.binomial(1, 0.4, size=(n_cells, n_proteins)) * rng.gamma(
        2.0, 60.0, size=(n_cells, n_proteins)
    )
    y = rng.poisson(background + foreground).astype(np.float32)
    y[:, 0] = np.where(rng.uniform(size=n_cells) < 0.3, 0.0, y[:, 0])
    return x, y


def _inputs(config: Dict[str, Any], n_cells: int, seed: int) -> Dict[str, torch.Tensor]:
    rng = np.random.RandomState(seed)
    n_genes = NUMERIC_DIMS["n_input_genes"]
    n_proteins = NUMERIC_DIMS["n_input_proteins"]
    x, y = _counts(rng, n_cells, n_genes, n_proteins)
    n_batch = max(config.get("n_batch", 0), 1)
    n_labels = max(config.get("n_labels", 0), 1)
    batch = np.arange(n_cells) % n_batch
    rng.shuffle(batch)
    labels = rng.randint(0, n_labels, size=n_cells)
    return dict(
        x=torch.from_numpy(x),
        y=torch.from_numpy(y),
        batch_index=torch.from_numpy(batch.reshape(-1, 1).astype(np.int64)),
        labels=torch.from_numpy(labels.reshape(-1, 1).astype(np.int64)),
        local_l_mean=torch.from_numpy(
            rng.uniform(3.0, 5.0, (n_cells, 1)).astype(np.float32)
        ),
        local_l_var=torch.from_numpy(
            rng.uniform(0.2, 1.5, (n_cells, 1)).astype(np.float32)
        ),
    )


def _perturbed_model(config: Dict[str, Any], seed: int) -> TOTALVI:
    torch.manual_seed(seed)
    model = TOTALVI(**NUMERIC_DIMS, **config)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if "num_batches_tracked" in name:
                continue
            noise = torch.randn(value.shape, generator=generator)
            if name.endswith("running_var"):
                value.copy_(0.5 + noise.abs())
            elif name.endswith("running_mean") or name.endswith(".1.bias"):
                value.add_(0.3 * noise)
            elif name.endswith(".1.weight") or name in ("py_r", "px_r"):
                value.add_(0.2 * noise)
            elif name.startswith("background_pro"):
                value.copy_(0.5 * noise + (2.0 if name.endswith("alpha") else -0.5))
    model.eval()
    return model


def _flatten(prefix: str, value: Any, out: Dict[str, torch.Tensor]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}", item, out)
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            _flatten(f"{prefix}.{i}", item, out)
    elif isinstance(value, torch.Tensor):
        out[prefix] = _clone(value)
    elif isinstance(value, np.ndarray):
        out[prefix] = torch.from_numpy(np.ascontiguousarray(value))
    else:
        out[prefix] = torch.tensor(float(value), dtype=torch.float64)


def _seeded(seed: int, fn: Callable[[], Any]) -> Any:
    torch.manual_seed(seed)
    np.random.seed(seed)
    with torch.no_grad():
        return fn()


def _intended_scale_from_z(
    model: TOTALVI, inp: Dict[str, torch.Tensor], fixed_batch: int
):
    """What 0.5's ``scale_from_z`` meant: decode a posterior sample of z at a fixed batch."""
    x, y = inp["x"], inp["y"]
    data = torch.cat((x, y), dim=-1)
    if model.log_variational:
        data = torch.log(1 + data)
    latent = model.encoder(data)[4]
    ones = torch.ones_like(x[:, [0]])
    px_, py_, _ = model.decoder(
        latent["z"], 4.0 * ones, fixed_batch * ones, inp["labels"]
    )
    mixing = 1 / (1 + torch.exp(-py_["mixing"]))
    return px_["scale"], F.normalize((1 - mixing) * py_["rate_fore"], p=1, dim=-1)


def _multi_sample_ok(model: TOTALVI) -> bool:
    """0.5's FCLayers cannot take several samples through two covariate-fed layers."""
    stack = model.decoder.px_decoder
    return not any(stack.n_cat_list) or len(stack.fc_layers) == 1


def numeric_golden(name: str, config: Dict[str, Any], seed: int) -> Dict[str, Any]:
    model = _perturbed_model(config, seed)
    inp = _inputs(config, N_CELLS, seed + 2)
    x, y, b, lab = inp["x"], inp["y"], inp["batch_index"], inp["labels"]
    lm, lv = inp["local_l_mean"], inp["local_l_var"]
    out: Dict[str, torch.Tensor] = {}
    data = torch.cat((x, y), dim=-1)
    if model.log_variational:
        data = torch.log(1 + data)
    _flatten("encoder", _seeded(10, lambda: model.encoder(data, b)), out)
    _flatten("inference", _seeded(11, lambda: model.inference(x, y, b, lab)), out)
    multi_sample_ok = _multi_sample_ok(model)
    if multi_sample_ok:
        _flatten(
            "inference3",
            _seeded(12, lambda: model.inference(x, y, b, lab, n_samples=3)),
            out,
        )
    _flatten("forward", _seeded(13, lambda: model(x, y, lm, lv, b, lab)), out)
    _flatten(
        "z_sample", _seeded(14, lambda: model.sample_from_posterior_z(x, y, b)), out
    )
    _flatten(
        "z_mean",
        _seeded(
            15,
            lambda: model.sample_from_posterior_z(
                x, y, b, give_mean=True, n_samples=64
            ),
        ),
        out,
    )
    _flatten("l_mean", _seeded(16, lambda: model.sample_from_posterior_l(x, y, b)), out)
    _flatten(
        "l_sample",
        _seeded(17, lambda: model.sample_from_posterior_l(x, y, b, give_mean=False)),
        out,
    )
    if multi_sample_ok:
        _flatten(
            "rate",
            _seeded(18, lambda: model.get_sample_rate(x, y, b, lab, n_samples=2)),
            out,
        )
    _flatten(
        "dispersion",
        _seeded(19, lambda: model.get_sample_dispersion(x, y, b, lab)),
        out,
    )
    fixed = 1 if model.n_batch > 1 else 0
    _flatten(
        "scale_from_z",
        _seeded(20, lambda: _intended_scale_from_z(model, inp, fixed)),
        out,
    )
    # Train mode: batch statistics, dropout masks and a backward pass.
    model.train()
    torch.manual_seed(21)
    terms = model(x, y, lm, lv, b, lab)
    sum(t.sum() for t in terms).backward()
    _flatten("train_forward", terms, out)
    grads = {k: p.grad for k, p in model.named_parameters() if p.grad is not None}
    _flatten("train_grad", grads, out)
    model.eval()
    return dict(
        name=name,
        config=json.dumps(config),
        dims=json.dumps(NUMERIC_DIMS),
        fixed_batch=fixed,
        state_dict={
            k: _clone(v) for k, v in _perturbed_model(config, seed).state_dict().items()
        },
        inputs=inp,
        outputs=out,
    )


def _dataset(config: Dict[str, Any], seed: int):
    inp = _inputs(config, N_CELLS_POSTERIOR, seed)
    dataset = GeneExpressionDataset()
    names = np.array([f"PROT{i}" for i in range(NUMERIC_DIMS["n_input_proteins"])])
    dataset.populate_from_data(
        X=inp["x"].numpy(),
        Ys=[
            CellMeasurement(
                "protein_expression", inp["y"].numpy(), "protein_names", names
            )
        ],
        batch_indices=inp["batch_index"].numpy(),
        labels=inp["labels"].numpy(),
        remap_attributes=False,
    )
    return inp, dataset


def posterior_golden(name: str, config: Dict[str, Any], seed: int) -> Dict[str, Any]:
    model = _perturbed_model(config, seed)
    inp, dataset = _dataset(config, seed + 3)
    post = TotalPosterior(
        model, dataset, use_cuda=False, data_loader_kwargs=dict(batch_size=32)
    )
    out: Dict[str, torch.Tensor] = {}
    calls = {
        "elbo": lambda: post.elbo(),
        "reconstruction_total": lambda: post.reconstruction_error(),
        "reconstruction_gene": lambda: post.reconstruction_error("gene"),
        "reconstruction_protein": lambda: post.reconstruction_error("protein"),
        "marginal_ll_1": lambda: post.compute_marginal_log_likelihood(n_samples_mc=1),
        "latent_mean": lambda: post.get_latent(sample=False),
        "latent_sample": lambda: post.get_latent(sample=True),
        "background_mean": lambda: post.get_protein_background_mean(),
        "dropout": lambda: post.get_sample_dropout(),
        "mixing2": lambda: post.get_sample_mixing(n_samples=2, give_mean=True),
        "denoised": lambda: post.get_normalized_denoised_expression(),
        "denoised3": lambda: post.get_normalized_denoised_expression(
            n_samples=3, give_mean=False
        ),
        "imputation": lambda: post.imputation(),
    }
    seeds = {key: 100 + i for i, key in enumerate(calls)}
    if not _multi_sample_ok(model):
        del calls["mixing2"], calls["denoised3"]
    for key, fn in calls.items():
        _flatten(key, _seeded(seeds[key], fn), out)
    return dict(
        name=name,
        config=json.dumps(config),
        dims=json.dumps(NUMERIC_DIMS),
        state_dict={k: _clone(v) for k, v in model.state_dict().items()},
        inputs=inp,
        local_means=torch.from_numpy(np.asarray(dataset.local_means, dtype=np.float32)),
        local_vars=torch.from_numpy(np.asarray(dataset.local_vars, dtype=np.float32)),
        seeds={key: seeds[key] for key in calls},
        outputs=out,
    )


def _status(config: Dict[str, Any]) -> Dict[str, Any]:
    try:
        model = TOTALVI(**LAYOUT_DIMS, **config)
    except Exception as error:  # noqa: BLE001 - the oracle's failure is the datum
        return dict(status="construct_error", error=f"{type(error).__name__}: {error}")
    layout = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    n = 6
    g, p = LAYOUT_DIMS["n_input_genes"], LAYOUT_DIMS["n_input_proteins"]
    x = torch.poisson(torch.full((n, g), 3.0))
    y = torch.poisson(torch.full((n, p), 20.0))
    b = (torch.arange(n) % max(config["n_batch"], 1)).view(-1, 1)
    lab = (torch.arange(n) % max(config["n_labels"], 1)).view(-1, 1)
    lm, lv = torch.full((n, 1), 3.0), torch.ones(n, 1)
    try:
        model.eval()
        with torch.no_grad():
            model(x, y, lm, lv, b, lab)
        model.train()
        sum(t.sum() for t in model(x, y, lm, lv, b, lab)).backward()
    except Exception as error:  # noqa: BLE001
        return dict(
            status="forward_error",
            error=f"{type(error).__name__}: {error}",
            layout=layout,
        )
    return dict(status="ok", error=None, layout=layout)


def state_dict_golden() -> Dict[str, Any]:
    key_names: list = []
    layouts = []
    entries = []
    keys = list(GRID)
    for values in itertools.product(*(GRID[k] for k in keys)):
        config = dict(zip(keys, values))
        result = _status(config)
        layout = result.pop("layout", None)
        if layout is not None:
            for key, _ in layout:
                if key not in key_names:
                    key_names.append(key)
            layout = [[key_names.index(key), shape] for key, shape in layout]
            if layout not in layouts:
                layouts.append(layout)
            result["layout"] = layouts.index(layout)
        else:
            result["layout"] = None
        entries.append({**config, **result})
    return dict(
        description=(
            "Original scVI 0.5.0 TOTALVI: for each configuration, whether it constructs, "
            "whether eval forward and a train-mode backward run, and the ordered "
            "state_dict layout (index into 'layouts', each a list of [index into "
            "'keys', shape])."
        ),
        dims=LAYOUT_DIMS,
        grid=GRID,
        keys=key_names,
        layouts=layouts,
        entries=entries,
    )


def main(argv: Optional[list] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    if scvi.__version__ != "0.5.0":
        sys.exit(
            f"Needs the original scvi 0.5.0, found {scvi.__version__} at {scvi.__file__}."
        )
    torch.set_num_threads(1)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with open(args.out_dir / "totalvi_state_dict.json", "w") as handle:
        json.dump(state_dict_golden(), handle, separators=(",", ":"))
    for i, (name, config) in enumerate(NUMERIC_CONFIGS.items()):
        torch.save(
            numeric_golden(name, config, 1000 + 10 * i),
            args.out_dir / f"totalvi_numeric_{name}.pt",
        )
        if name in POSTERIOR_CONFIGS:
            torch.save(
                posterior_golden(name, config, 2000 + 10 * i),
                args.out_dir / f"totalvi_posterior_{name}.pt",
            )
    print(f"Wrote totalVI golden files to {args.out_dir}")


if __name__ == "__main__":
    main()
