"""Hyperparameter search on real PBMC counts: default VAE vs tuned VAE, in-process vs Ray.

::

    cd /work/main && OMP_NUM_THREADS=1 PYTHONPATH=. /tmp/venv/bin/python \\
        benchmarks/autotune.py --max-evals 8 --n-epochs 40 --out autotune.json

Data: ``pbmc4k_2000genes.h5ad`` from the shared real data (``SCVI_SHARED_DATA``, default
``../shared/data``), all 4,271 cells and 2,000 genes unless ``--n-cells`` / ``--n-genes``
take a fixed random subset of cells / the genes with the most counts.

1. ``auto_tune_scvi_model`` with scVI 0.5's default search space and default objective
   (0.5's early stopping on the test ELBO, at most ``--n-epochs`` epochs, score: the
   held-out negative marginal log-likelihood with ``--search-mc-samples`` importance
   samples), ``--max-evals`` trials, seed 0: in this process (``parallel=False``), then
   on a local Ray cluster with ``--workers`` CPU workers (``parallel=True``). With the
   same seed both searches draw the same points (TPE's first 20 points are random) and
   train every point with the same seed, so they run the same trials: the comparison of
   their wall times is like for like, and their losses must agree.
2. The default VAE (``n_latent=10, n_hidden=128, n_layers=1, dropout_rate=0.1``, ZINB,
   ``lr=1e-3``) and the best setting found are then trained the same way (same seed,
   hence the same 80 % / 20 % split as every trial, same epoch cap and early stopping)
   and scored with ``--mc-samples`` importance samples (0.5's notebook used 100).
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Dict

import anndata
import numpy as np
import torch

import scvi
from scvi.dataset import AnnDatasetFromAnnData, GeneExpressionDataset
from scvi.inference import UnsupervisedTrainer
from scvi.inference.autotune import auto_tune_scvi_model
from scvi.models import VAE

REPO = Path(__file__).resolve().parents[1]
SEED = 0
EARLY_STOPPING = {
    "early_stopping_metric": "elbo",
    "save_best_state_metric": "elbo",
    "patience": 50,
    "threshold": 0,
    "reduce_lr_on_plateau": True,
    "lr_patience": 25,
    "lr_factor": 0.2,
}


def load_pbmc(n_cells: int, n_genes: int) -> GeneExpressionDataset:
    """PBMC counts; a fixed random subset of cells, the genes with the most counts."""
    data_dir = Path(os.environ.get("SCVI_SHARED_DATA", REPO.parent / "shared" / "data"))
    adata = anndata.read_h5ad(data_dir / "real" / "pbmc4k_2000genes.h5ad")
    cells = np.sort(np.random.RandomState(0).permutation(adata.n_obs)[:n_cells])
    totals = np.asarray(adata.X.sum(axis=0)).ravel()
    genes = np.sort(np.argsort(-totals, kind="stable")[:n_genes])
    return AnnDatasetFromAnnData(adata[cells][:, genes].copy())


def train_and_score(
    dataset: GeneExpressionDataset,
    model_kwargs: Dict[str, Any],
    lr: float,
    args: argparse.Namespace,
) -> Dict[str, Any]:
    """Train as the search's objective does (same seed and split) and score the model."""
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    start = time.monotonic()
    trainer = UnsupervisedTrainer(
        VAE(dataset.nb_genes, **model_kwargs),
        dataset,
        use_cuda=False,
        frequency=1,
        show_progbar=False,
        metrics_to_monitor=["elbo"],
        early_stopping_kwargs=EARLY_STOPPING,
    )
    trainer.train(n_epochs=args.n_epochs, lr=lr)
    return {
        "neg_marginal_ll": float(
            trainer.test_set.marginal_ll(n_mc_samples=args.mc_samples)
        ),
        "neg_elbo_train": float(trainer.train_set.elbo()),
        "neg_elbo_test": float(trainer.test_set.elbo()),
        "epochs": trainer.epoch + 1,
        "best_epoch": trainer.best_epoch,
        "wall_time_s": time.monotonic() - start,
    }


def search(
    dataset: GeneExpressionDataset, args: argparse.Namespace, parallel: bool
) -> Dict[str, Any]:
    start = time.monotonic()
    trials = auto_tune_scvi_model(
        "pbmc_parallel" if parallel else "pbmc_sequential",
        dataset,
        max_evals=args.max_evals,
        parallel=parallel,
        n_cpu_workers=args.workers,
        gpu_ids=[],
        train_best=False,
        trainer_specific_kwargs={"use_cuda": False},
        train_func_specific_kwargs={"n_epochs": args.n_epochs},
        metric_kwargs={"n_mc_samples": args.search_mc_samples},
        save_path=args.save_path,
        seed=SEED,
    )
    wall = time.monotonic() - start
    best = trials.best_trial["result"]
    return {
        "wall_time_s": wall,
        "trial_time_s": [r.get("elapsed_time") for r in trials.results],
        "best_loss": best["loss"],
        "best_space": best["space"],
        "losses": trials.losses(),
        "spaces": [r.get("space") for r in trials.results],
        "n_failed": trials.statuses().count("fail"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-cells", type=int, default=None, help="default: all")
    parser.add_argument("--n-genes", type=int, default=2000)
    parser.add_argument("--max-evals", type=int, default=8)
    parser.add_argument("--n-epochs", type=int, default=40)
    parser.add_argument("--search-mc-samples", type=int, default=25)
    parser.add_argument("--mc-samples", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-parallel", action="store_true")
    parser.add_argument("--save-path", default=None, help="default: a temporary folder")
    parser.add_argument("--out", default=None, help="write the results to this JSON")
    args = parser.parse_args()
    scvi.set_verbosity("WARNING")
    torch.set_num_threads(1)
    if args.save_path is None:
        args.save_path = tempfile.mkdtemp(prefix="scvi_autotune_")

    dataset = load_pbmc(args.n_cells or 10**9, args.n_genes)
    results: Dict[str, Any] = {
        "settings": vars(args),
        "data": [dataset.nb_cells, dataset.nb_genes],
    }
    results["sequential"] = search(dataset, args, parallel=False)
    print(
        f"in-process search: {results['sequential']['wall_time_s']:.0f} s", flush=True
    )
    if not args.skip_parallel:
        results["parallel"] = search(dataset, args, parallel=True)
        print(f"Ray search: {results['parallel']['wall_time_s']:.0f} s", flush=True)
    results["default"] = train_and_score(dataset, {}, 1e-3, args)
    best = results["sequential"]["best_space"]
    results["tuned"] = train_and_score(
        dataset,
        best["model_tunable_kwargs"],
        best["train_func_tunable_kwargs"]["lr"],
        args,
    )
    for name in ("default", "tuned"):
        print(
            f"{name}: held-out -log p(x) = {results[name]['neg_marginal_ll']:.2f}",
            flush=True,
        )
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
