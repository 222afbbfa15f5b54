"""Regenerate the golden files that pin our models to the original scVI 0.5.0.

This is a developer tool, not part of the test suite and not part of the package. It
imports the *original* ``scvi`` 0.5.0 (the "oracle"), so it must be run with a Python
environment where that version is installed, and with this repository kept off the
import path (otherwise ``import scvi`` would pick up our reimplementation)::

    cd /tmp && /path/to/scvi05-venv/bin/python /work/main/tests/golden/make_golden.py \
        /work/main/tests/golden

The script refuses to run if the imported ``scvi`` is not version 0.5.0. It writes:

``state_dict_parity.json``
    For VAE and LDVAE over a grid of constructor arguments: whether the original
    constructs, runs ``inference``/``forward``, and the ordered ``(key, shape)`` list of
    its ``state_dict`` (layouts are stored once and referenced by index).
``vae_numeric_<name>.pt``
    One file per configuration of a handful: the full ``state_dict`` (with batch-norm statistics
    and affine parameters perturbed so that they matter), fixed inputs, and the
    original's outputs (encoder moments, decoder outputs for fixed ``z``/library,
    reconstruction loss, KL terms, and the seeded outputs of the sampling methods).
``log_likelihood.pt``
    ``log_nb_positive``, ``log_zinb_positive`` and ``log_mixture_nb`` of the original on
    a fixed input grid, evaluated in float32 and float64.
``oracle_pbmc_training.json``
    ELBOs, marginal log-likelihood and wall time of the original ``VAE`` trained with
    ``UnsupervisedTrainer`` on the embedded PBMC dataset, for seeds 0-4 by default
    (about 25 s per seed on an idle 2-core machine); pass ``--skip-training`` to
    regenerate only the other files.

Everything is written with plain ``torch.save`` of dicts of tensors, strings, numbers
and lists, so the tests can read it with ``torch.load(..., weights_only=True)``.
"""

import argparse
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch.distributions import Normal, kl_divergence

import scvi
from scvi.dataset import GeneExpressionDataset
from scvi.inference import UnsupervisedTrainer
from scvi.models import LDVAE, VAE
from scvi.models.log_likelihood import (
    log_mixture_nb,
    log_nb_positive,
    log_zinb_positive,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
PBMC_NPZ = REPO_ROOT / "scvi" / "data" / "pbmc8k_200genes.npz"
MODELS = {"VAE": VAE, "LDVAE": LDVAE}
DISPERSIONS = ["gene", "gene-batch", "gene-label", "gene-cell"]

# Numeric goldens: model name and constructor keyword arguments.
NUMERIC_CONFIGS: Dict[str, Tuple[str, Dict[str, Any]]] = {
    "vae_zinb_gene_b2": (
        "VAE",
        dict(n_batch=2, dispersion="gene", reconstruction_loss="zinb"),
    ),
    "vae_nb_genebatch_b2_l2": (
        "VAE",
        dict(n_batch=2, n_layers=2, dispersion="gene-batch", reconstruction_loss="nb"),
    ),
    "vae_zinb_genelabel_y3": (
        "VAE",
        dict(n_labels=3, dispersion="gene-label", reconstruction_loss="zinb"),
    ),
    "vae_zinb_genecell": (
        "VAE",
        dict(dispersion="gene-cell", reconstruction_loss="zinb"),
    ),
    "vae_nb_gene_nolog": (
        "VAE",
        dict(
            n_batch=2,
            dispersion="gene",
            reconstruction_loss="nb",
            log_variational=False,
        ),
    ),
    "ldvae_zinb_gene_b2": (
        "LDVAE",
        dict(n_batch=2, dispersion="gene", reconstruction_loss="zinb"),
    ),
    "ldvae_nb_gene_b0": (
        "LDVAE",
        dict(n_batch=0, dispersion="gene", reconstruction_loss="nb"),
    ),
    "ldvae_zinb_genebatch_b2_l2": (
        "LDVAE",
        dict(
            n_batch=2, n_layers=2, dispersion="gene-batch", reconstruction_loss="zinb"
        ),
    ),
}
NUMERIC_DIMS = dict(n_input=12, n_hidden=8, n_latent=4, dropout_rate=0.0)
N_CELLS = 16
SAMPLING_SEED = 1234


def _clone(t: torch.Tensor) -> torch.Tensor:
    """Detach and copy into a fresh compact storage (keeps saved files small)."""
    return t.detach().clone().contiguous()


def _inputs(n_cells: int, n_genes: int, n_batch: int, n_labels: int, seed: int):
    """Integer counts with plenty of zeros, covariates and library-size priors."""
    rng = np.random.RandomState(seed)
    rates = rng.gamma(0.7, 6.0, size=(n_cells, n_genes))
    x = rng.poisson(rates).astype(np.float32)
    x[0] = 0.0  # one empty cell exercises log(1 + 0) and the zero branch everywhere
    batch = rng.randint(0, max(n_batch, 1), size=(n_cells, 1)).astype(np.int64)
    labels = rng.randint(0, max(n_labels, 1), size=(n_cells, 1)).astype(np.int64)
    l_mean = rng.uniform(3.0, 5.0, size=(n_cells, 1)).astype(np.float32)
    l_var = rng.uniform(0.2, 1.5, size=(n_cells, 1)).astype(np.float32)
    return (
        torch.from_numpy(x),
        torch.from_numpy(batch),
        torch.from_numpy(labels),
        torch.from_numpy(l_mean),
        torch.from_numpy(l_var),
    )


# --------------------------------------------------------------------------------------
# a) state_dict layouts
# --------------------------------------------------------------------------------------


def _try(
    fn: Callable[..., Any], *args: Any, **kwargs: Any
) -> Tuple[Any, Optional[str]]:
    """``(fn(*args, **kwargs), None)``, or ``(None, message)`` if the original raised."""
    try:
        return fn(*args, **kwargs), None
    except Exception as err:  # the point is to record whatever the original raises
        return None, f"{type(err).__name__}: {err}".splitlines()[0][:300]


def _run_eval(model: torch.nn.Module, tensors: Tuple[torch.Tensor, ...]) -> None:
    x, batch, labels, l_mean, l_var = tensors
    model.eval()
    with torch.no_grad():
        model.inference(x, batch, labels)
        model(x, l_mean, l_var, batch, labels)


def _run_train(model: torch.nn.Module, tensors: Tuple[torch.Tensor, ...]) -> None:
    x, batch, labels, l_mean, l_var = tensors
    model.train()
    loss, kl_local, _ = model(x, l_mean, l_var, batch, labels)
    (loss + kl_local).mean().backward()


def make_state_dict_parity() -> Dict[str, Any]:
    """Record construction/forward status and state_dict layout over the grid."""
    grid_axes = dict(
        model=list(MODELS),
        n_batch=[0, 2],
        n_labels=[0, 3],
        n_layers=[1, 2],
        dispersion=DISPERSIONS,
        reconstruction_loss=["nb", "zinb"],
        log_variational=[True, False],
    )
    dims = dict(n_input=7, n_hidden=5, n_latent=3)
    layouts: List[List[List[Any]]] = []
    layout_index: Dict[str, int] = {}
    entries = []
    for values in itertools.product(*grid_axes.values()):
        cfg = dict(zip(grid_axes, values))
        kwargs = {k: v for k, v in cfg.items() if k != "model"}
        entry: Dict[str, Any] = dict(cfg)
        torch.manual_seed(0)
        model, error = _try(MODELS[cfg["model"]], **dims, **kwargs)
        if error is not None:
            entry.update(status="construct_error", error=error, layout=None)
            entries.append(entry)
            continue
        layout = [[k, list(v.shape)] for k, v in model.state_dict().items()]
        key = json.dumps(layout)
        if key not in layout_index:
            layout_index[key] = len(layouts)
            layouts.append(layout)
        entry["layout"] = layout_index[key]

        tensors = _inputs(6, dims["n_input"], cfg["n_batch"], cfg["n_labels"], seed=1)
        error = (
            _try(_run_eval, model, tensors)[1] or _try(_run_train, model, tensors)[1]
        )
        if error is None:
            entry.update(status="ok", error=None)
        else:
            entry.update(status="forward_error", error=error)
        entries.append(entry)
    return dict(
        description=(
            "Original scVI 0.5.0: for each constructor configuration, whether it "
            "constructs ('construct_error'), whether eval inference/forward and a "
            "train-mode backward run ('forward_error'), and the ordered state_dict "
            "layout (index into 'layouts'; each layout is a list of [key, shape])."
        ),
        dims=dims,
        grid=grid_axes,
        inputs=dict(
            n_cells=6,
            batch_index="(n, 1) int64",
            labels="(n, 1) int64",
            note="batch_index and labels always passed",
        ),
        layouts=layouts,
        entries=entries,
    )


# --------------------------------------------------------------------------------------
# b) numeric goldens
# --------------------------------------------------------------------------------------


def _perturb(model: torch.nn.Module, seed: int) -> None:
    """Give batch-norm layers non-trivial statistics and affine parameters.

    Fresh batch-norm layers are the identity in eval mode (mean 0, var 1, weight 1,
    bias 0), which would hide mistakes in their wiring; the goldens use random values.
    """
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            n = module.num_features
            module.running_mean.copy_(0.3 * torch.randn(n, generator=gen))
            module.running_var.copy_(0.5 + torch.rand(n, generator=gen))
            module.weight.data.copy_(0.5 + torch.rand(n, generator=gen))
            module.bias.data.copy_(0.2 * torch.randn(n, generator=gen))
            module.num_batches_tracked.fill_(7)


def _seeded(fn: Callable[[], Any]) -> Any:
    torch.manual_seed(SAMPLING_SEED)
    with torch.no_grad():
        return fn()


def make_numeric_case(name: str, model_name: str, kwargs: Dict[str, Any], seed: int):
    """Weights, inputs and outputs of the original for one configuration."""
    torch.manual_seed(seed)
    model = MODELS[model_name](**NUMERIC_DIMS, **kwargs)
    _perturb(model, seed + 100)
    model.eval()
    n_batch = kwargs.get("n_batch", 0)
    n_labels = kwargs.get("n_labels", 0)
    dispersion = kwargs["dispersion"]
    x, batch, labels, l_mean, l_var = _inputs(
        N_CELLS, NUMERIC_DIMS["n_input"], n_batch, n_labels, seed=seed + 200
    )
    gen = torch.Generator().manual_seed(seed + 300)
    z_fixed = torch.randn(N_CELLS, NUMERIC_DIMS["n_latent"], generator=gen)
    library_fixed = 2.0 + 3.0 * torch.rand(N_CELLS, 1, generator=gen)

    state = {k: _clone(v) for k, v in model.state_dict().items()}
    out: Dict[str, Any] = {}
    det: Dict[str, torch.Tensor] = {}
    rng: Dict[str, torch.Tensor] = {}

    with torch.no_grad():
        det["posterior_z_mean"] = model.sample_from_posterior_z(x, give_mean=True)

        # Decoder at a fixed (z, library).
        scale, r, rate, dropout = model.decoder(
            dispersion, z_fixed, library_fixed, batch, labels
        )
        det["dec_fixed_px_scale"] = scale
        det["dec_fixed_px_rate"] = rate
        det["dec_fixed_px_dropout"] = dropout
        if r is not None:
            det["dec_fixed_px_r"] = r

    # inference() samples z and library; its moments and (non gene-cell) px_r do not
    # depend on the draw, everything else does and is stored with the seed.
    inf = _seeded(lambda: model.inference(x, batch, labels))
    for key in ("qz_m", "qz_v", "ql_m", "ql_v"):
        det[key] = inf[key]
    if dispersion != "gene-cell":
        det["px_r"] = inf["px_r"]
    for key in ("z", "library", "px_scale", "px_rate", "px_dropout", "px_r"):
        rng[f"inference_{key}"] = inf[key]

    with torch.no_grad():
        # Decoder at the posterior means: inference() without the sampling.
        scale, r, rate, dropout = model.decoder(
            dispersion, inf["qz_m"], inf["ql_m"], batch, labels
        )
        px_r = torch.exp(r) if dispersion == "gene-cell" else inf["px_r"]
        det["dec_mean_px_scale"] = scale
        det["dec_mean_px_rate"] = rate
        det["dec_mean_px_dropout"] = dropout
        det["dec_mean_px_r"] = px_r
        det["reconst_loss"] = model.get_reconstruction_loss(x, rate, px_r, dropout)
        det["kl_z"] = kl_divergence(
            Normal(inf["qz_m"], inf["qz_v"].sqrt()),
            Normal(torch.zeros_like(inf["qz_m"]), torch.ones_like(inf["qz_v"])),
        ).sum(dim=1)
        det["kl_l"] = kl_divergence(
            Normal(inf["ql_m"], inf["ql_v"].sqrt()), Normal(l_mean, l_var.sqrt())
        ).sum(dim=1)
        if model_name == "LDVAE":
            loadings = list(model.get_loadings())
            det["loadings_weight"] = loadings[0]
            det["loadings_bias"] = loadings[1]

    fwd = _seeded(lambda: model(x, l_mean, l_var, batch, labels))
    det["forward_kl_z"] = fwd[1]
    rng["forward_reconst_plus_kl_l"] = fwd[0]
    out["forward_third"] = float(fwd[2])
    rng["posterior_l"] = _seeded(lambda: model.sample_from_posterior_l(x))
    rng["sample_scale"] = _seeded(lambda: model.get_sample_scale(x, batch, labels))
    rng["sample_rate"] = _seeded(lambda: model.get_sample_rate(x, batch, labels))
    rng["scale_from_z_batch1"] = _seeded(lambda: model.scale_from_z(x, 1))
    # With n_samples > 1 the original re-expands the covariates at every hidden layer
    # of a conditioned FCLayers, which crashes for n_layers >= 2; record that instead.
    inf3, out["inference3_error"] = _try(
        _seeded, lambda: model.inference(x, batch, labels, n_samples=3)
    )
    if out["inference3_error"] is None:
        for key in ("z", "library", "px_scale", "px_rate"):
            rng[f"inference3_{key}"] = inf3[key]
        if dispersion != "gene-cell":
            det["inference3_px_r"] = inf3["px_r"]

    # Train mode: batch statistics instead of running statistics (dropout is 0 here),
    # and the running statistics after one such pass.
    model.train()
    with torch.no_grad():
        det["train_posterior_z_mean"] = model.sample_from_posterior_z(x, give_mean=True)
    running_after = {
        k: _clone(v)
        for k, v in model.state_dict().items()
        if "running_" in k or "num_batches" in k
    }
    model.eval()

    out.update(
        model=model_name,
        kwargs=dict(NUMERIC_DIMS, **kwargs),
        seed=seed,
        sampling_seed=SAMPLING_SEED,
        state_dict=state,
        inputs=dict(
            x=x,
            batch_index=batch,
            labels=labels,
            local_l_mean=l_mean,
            local_l_var=l_var,
            z_fixed=z_fixed,
            library_fixed=library_fixed,
        ),
        deterministic={k: _clone(v) for k, v in det.items()},
        seeded={k: _clone(v) for k, v in rng.items()},
        running_stats_after_train_pass=running_after,
    )
    return out


def write_numeric(out: Path) -> None:
    """One file per configuration: ``vae_numeric_<name>.pt``."""
    for i, (name, (model_name, kwargs)) in enumerate(NUMERIC_CONFIGS.items()):
        case = make_numeric_case(name, model_name, kwargs, seed=10 * i + 1)
        case.update(
            name=name,
            description=(
                "Original scVI 0.5.0 model in eval mode with perturbed batch-norm; "
                "'deterministic' outputs do not depend on random draws; 'seeded' "
                "outputs were produced right after torch.manual_seed(sampling_seed) "
                "and only match if the random stream is consumed in the same order."
            ),
            torch_version=str(torch.__version__),
        )
        torch.save(case, out / f"vae_numeric_{name}.pt")


def make_log_likelihood() -> Dict[str, Any]:
    """Likelihood kernels of the original on a product grid and a random grid."""
    xs = [0.0, 1.0, 2.0, 3.0, 7.0, 20.0, 150.0, 2000.0]
    mus = [1e-3, 0.05, 0.7, 6.0, 300.0, 2e4]
    thetas = [1e-3, 0.02, 0.3, 1.0, 6.0, 80.0, 2e3, 1e5]
    pis = [-6.0, -1.0, 0.5, 5.0]
    grid = torch.tensor(
        list(itertools.product(xs, mus, thetas, pis)), dtype=torch.float64
    )
    # 2-D (rows: x and mu, columns: theta and pi) so that theta is never 1-D here: the
    # original views a 1-D theta as (1, n_genes), which would make 1-D outputs 2-D.
    shape = (len(xs) * len(mus), len(thetas) * len(pis))
    x, mu, theta, pi = (v.reshape(shape) for v in grid.unbind(dim=1))

    gen = torch.Generator().manual_seed(7)
    n_cells, n_genes = 24, 20
    rx = torch.poisson(
        torch.exp(3.0 * torch.rand(n_cells, n_genes, generator=gen)), generator=gen
    )
    rx[:, :3] = 0.0
    rmu1 = torch.exp(-2.0 + 6.0 * torch.rand(n_cells, n_genes, generator=gen))
    rmu2 = torch.exp(-2.0 + 6.0 * torch.rand(n_cells, n_genes, generator=gen))
    rth_gene = torch.exp(-3.0 + 8.0 * torch.rand(n_genes, generator=gen))
    rth1 = torch.exp(-3.0 + 8.0 * torch.rand(n_cells, n_genes, generator=gen))
    rth2 = torch.exp(-3.0 + 8.0 * torch.rand(n_cells, n_genes, generator=gen))
    rpi = 4.0 * torch.randn(n_cells, n_genes, generator=gen)

    inputs = dict(
        x=x,
        mu=mu,
        theta=theta,
        pi=pi,
        rx=rx,
        rmu1=rmu1,
        rmu2=rmu2,
        rth_gene=rth_gene,
        rth1=rth1,
        rth2=rth2,
        rpi=rpi,
    )
    results: Dict[str, Dict[str, torch.Tensor]] = {}
    for dtype, tag in ((torch.float32, "float32"), (torch.float64, "float64")):
        a = {k: v.to(dtype) for k, v in inputs.items()}
        results[tag] = dict(
            nb=log_nb_positive(a["x"], a["mu"], a["theta"]),
            zinb=log_zinb_positive(a["x"], a["mu"], a["theta"], a["pi"]),
            nb_theta1d=log_nb_positive(a["rx"], a["rmu1"], a["rth_gene"]),
            zinb_theta1d=log_zinb_positive(a["rx"], a["rmu1"], a["rth_gene"], a["rpi"]),
            mixture=log_mixture_nb(
                a["rx"], a["rmu1"], a["rmu2"], a["rth1"], a["rth2"], a["rpi"]
            ),
            mixture_shared_theta=log_mixture_nb(
                a["rx"], a["rmu1"], a["rmu2"], a["rth1"], None, a["rpi"]
            ),
            mixture_theta1d=log_mixture_nb(
                a["rx"], a["rmu1"], a["rmu2"], a["rth_gene"], None, a["rpi"]
            ),
        )
        results[tag] = {k: _clone(v) for k, v in results[tag].items()}
    return dict(
        description=(
            "log_nb_positive / log_zinb_positive / log_mixture_nb of scVI 0.5.0 "
            "(default eps=1e-8). Inputs are stored in float64; 'float32' results were "
            "computed from the inputs cast to float32. The original subtracts large "
            "logs, so its float32 values lose accuracy for large theta; the float64 "
            "values are accurate there."
        ),
        inputs={k: _clone(v) for k, v in inputs.items()},
        results=results,
    )


# --------------------------------------------------------------------------------------
# c) training figure on the embedded PBMC dataset
# --------------------------------------------------------------------------------------


def load_pbmc() -> GeneExpressionDataset:
    import scipy.sparse as sp

    with np.load(PBMC_NPZ, allow_pickle=False) as f:
        X = sp.csr_matrix(
            (f["data"].astype(np.float32), f["indices"], f["indptr"]),
            shape=tuple(f["shape"]),
        )
        gene_names = f["gene_names"]
        cell_type_per_cell = f["cell_types"]
    cell_types, labels = np.unique(cell_type_per_cell, return_inverse=True)
    ds = GeneExpressionDataset()
    ds.populate_from_data(
        X, labels=labels, gene_names=gene_names, cell_types=cell_types
    )
    return ds


TRAINING = dict(
    model="VAE(200, n_batch=0) with all other defaults",
    trainer=(
        "UnsupervisedTrainer(vae, ds, train_size=0.75, use_cuda=False, frequency=None, "
        "seed=0); defaults otherwise (n_epochs_kl_warmup=400, batch_size=128, "
        "weight_decay=1e-6)"
    ),
    train=dict(n_epochs=30, lr=1e-3),
    seeding=(
        "torch.manual_seed(s) and np.random.seed(s) right before model creation; the "
        "train/test split uses the trainer's seed=0 for every s"
    ),
    marginal_ll=dict(n_mc_samples=100),
    dataset=(
        "scvi/data/pbmc8k_200genes.npz as GeneExpressionDataset.populate_from_data(X, "
        "labels=<codes of sorted unique cell types>, gene_names, cell_types=<sorted "
        "unique cell types>)"
    ),
)


def make_training(seeds: List[int]) -> Dict[str, Any]:
    ds = load_pbmc()
    runs = []
    for s in seeds:
        torch.manual_seed(s)
        np.random.seed(s)
        vae = VAE(ds.nb_genes, n_batch=0)
        trainer = UnsupervisedTrainer(
            vae, ds, train_size=0.75, use_cuda=False, frequency=None, seed=0
        )
        trainer.show_progbar = False
        t0 = time.perf_counter()
        trainer.train(n_epochs=30, lr=1e-3)
        train_wall = time.perf_counter() - t0
        test_elbo = trainer.test_set.elbo()
        train_elbo = trainer.train_set.elbo()
        t1 = time.perf_counter()
        test_ll = trainer.test_set.marginal_ll(n_mc_samples=100)
        ll_wall = time.perf_counter() - t1
        runs.append(
            dict(
                seed=s,
                test_elbo=test_elbo,
                train_elbo=train_elbo,
                test_marginal_ll=test_ll,
                train_seconds=train_wall,
                trainer_training_time=trainer.training_time,
                marginal_ll_seconds=ll_wall,
                load_average_1min=os.getloadavg()[0],
                n_train=len(trainer.train_set.indices),
                n_test=len(trainer.test_set.indices),
                first_test_indices=[int(i) for i in trainer.test_set.indices[:10]],
            )
        )
        print(f"seed {s}: {runs[-1]}", flush=True)

    def summary(key: str) -> Dict[str, float]:
        v = np.array([r[key] for r in runs])
        return dict(
            mean=float(v.mean()),
            std=float(v.std(ddof=1)),
            min=float(v.min()),
            max=float(v.max()),
        )

    return dict(
        description="Original scVI 0.5.0 trained on the embedded PBMC dataset.",
        settings=TRAINING,
        environment=dict(
            scvi=scvi.__version__,
            torch=str(torch.__version__),
            numpy=np.__version__,
            python=platform.python_version(),
            torch_threads=torch.get_num_threads(),
            timing_note=(
                "wall-clock seconds; only meaningful when load_average_1min is below "
                "the number of cores"
            ),
            machine=platform.machine(),
        ),
        dataset=dict(
            n_cells=int(ds.nb_cells),
            n_genes=int(ds.nb_genes),
            n_labels=int(ds.n_labels),
            cell_types=[str(c) for c in ds.cell_types],
        ),
        runs=runs,
        summary={
            k: summary(k)
            for k in ("test_elbo", "train_elbo", "test_marginal_ll", "train_seconds")
        },
    )


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args(argv)
    if scvi.__version__ != "0.5.0":
        sys.exit(
            f"imported scvi {scvi.__version__} from {scvi.__file__}; run this with the "
            "original scVI 0.5.0 and without this repository on the import path"
        )
    out: Path = args.outdir
    out.mkdir(parents=True, exist_ok=True)
    torch.set_default_dtype(torch.float32)

    parity = make_state_dict_parity()
    (out / "state_dict_parity.json").write_text(
        json.dumps(parity, separators=(",", ":"))
    )
    write_numeric(out)
    torch.save(make_log_likelihood(), out / "log_likelihood.pt")
    if not args.skip_training:
        training = make_training(args.seeds)
        (out / "oracle_pbmc_training.json").write_text(json.dumps(training, indent=1))
    for path in sorted(out.iterdir()):
        print(f"{path.name}: {path.stat().st_size / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
