"""AutoZI on real PBMC counts: zero-inflation calls and held-out marginal log-likelihood.

The same script runs with this package or with the original scVI 0.5.0 (whichever
``scvi`` is importable), so both can be compared on identical settings::

    cd /work/main && PYTHONPATH=. /tmp/venv/bin/python benchmarks/autozi.py --out ours.json
    cd /tmp && /tmp/scvi05/bin/python /work/main/benchmarks/autozi.py --out orig.json
    PYTHONPATH=. /tmp/venv/bin/python benchmarks/autozi.py --compare ours.json orig.json

Data: ``pbmc4k_2000genes.h5ad`` from the shared real data (``SCVI_SHARED_DATA``, default
``../shared/data``): ``--n-cells`` random cells (fixed draw) and the ``--n-genes`` genes
with the most counts over all cells (the defaults keep a run to a few minutes). For each
seed, an ``AutoZIVAE`` (gene-wise zero inflation, Beta(0.5, 0.5) prior) is trained with
``UnsupervisedTrainer`` (80 % of the cells, fixed split) and evaluated by

* the fraction of genes called zero-inflated: ``P(m_g < 0.5) > 0.5`` under the Beta
  posterior of the mixture weight ``m_g`` of the non-zero-inflated component;
* the negative marginal log-likelihood of the held-out cells (importance sampling).
"""

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any, Dict, List

import h5py
import numpy as np
import scipy.sparse as sp
import torch
from scipy.stats import beta

import scvi
from scvi.dataset import GeneExpressionDataset
from scvi.inference import UnsupervisedTrainer
from scvi.models.autozivae import AutoZIVAE

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    return Path(os.environ.get("SCVI_SHARED_DATA", REPO.parent / "shared" / "data"))


def read_h5ad_counts(path: Path) -> sp.csr_matrix:
    """The CSR count matrix of an ``.h5ad`` file, read with h5py alone."""
    with h5py.File(path, "r") as f:
        group = f["X"]
        return sp.csr_matrix(
            (group["data"][:], group["indices"][:], group["indptr"][:]),
            shape=tuple(group.attrs["shape"]),
        )


def run(args: argparse.Namespace) -> Dict[str, Any]:
    counts = read_h5ad_counts(shared_data() / "real" / "pbmc4k_2000genes.h5ad")
    top = np.sort(np.argsort(-np.asarray(counts.sum(axis=0)).ravel())[: args.n_genes])
    cells = np.sort(
        np.random.RandomState(0).choice(counts.shape[0], args.n_cells, replace=False)
    )
    x = counts[cells][:, top].astype(np.float32)
    x = x[np.asarray(x.sum(axis=1)).ravel() > 0]
    dataset = GeneExpressionDataset()
    dataset.populate_from_data(x)
    runs: List[Dict[str, Any]] = []
    for seed in args.seeds:
        torch.manual_seed(seed)
        np.random.seed(seed)
        model = AutoZIVAE(
            dataset.nb_genes,
            alpha_prior=0.5,
            beta_prior=0.5,
            minimal_dropout=0.01,
            zero_inflation="gene",
            dispersion="gene",
        )
        trainer = UnsupervisedTrainer(
            model,
            dataset,
            train_size=0.8,
            use_cuda=False,
            frequency=None,
            n_epochs_kl_warmup=None,
            seed=0,
        )
        trainer.show_progbar = False
        start = time.perf_counter()
        trainer.train(n_epochs=args.n_epochs, lr=args.lr)
        train_seconds = time.perf_counter() - start
        ab = model.get_alphas_betas()
        zi_probability = beta.cdf(0.5, ab["alpha_posterior"], ab["beta_posterior"])
        zi_calls = zi_probability > 0.5
        torch.manual_seed(seed + 1000)
        start = time.perf_counter()
        test_nll = trainer.test_set.marginal_ll(n_mc_samples=args.n_mc)
        ll_seconds = time.perf_counter() - start
        runs.append(
            dict(
                seed=seed,
                fraction_zero_inflated=float(zi_calls.mean()),
                zi_calls=[bool(c) for c in zi_calls],
                test_marginal_nll=float(test_nll),
                test_elbo=float(trainer.test_set.elbo()),
                train_seconds=train_seconds,
                marginal_ll_seconds=ll_seconds,
            )
        )
        print(
            f"seed {seed}: {100 * zi_calls.mean():.1f}% genes ZI, test -log p(x) "
            f"{test_nll:.2f}, train {train_seconds:.0f} s",
            flush=True,
        )
    return dict(
        implementation=f"scvi {scvi.__version__} from {Path(scvi.__file__).parent}",
        torch=torch.__version__,
        torch_threads=torch.get_num_threads(),
        settings=dict(
            n_cells=int(dataset.nb_cells),
            n_genes=int(dataset.nb_genes),
            n_epochs=args.n_epochs,
            lr=args.lr,
            n_mc_samples=args.n_mc,
            train_size=0.8,
            model="AutoZIVAE(alpha_prior=0.5, beta_prior=0.5, minimal_dropout=0.01, "
            "zero_inflation='gene', dispersion='gene'), other VAE defaults",
            trainer="UnsupervisedTrainer(train_size=0.8, n_epochs_kl_warmup=None, seed=0)",
        ),
        runs=runs,
    )


def compare(paths: List[Path]) -> None:
    results = [json.loads(p.read_text()) for p in paths]
    for result in results:
        fractions = [r["fraction_zero_inflated"] for r in result["runs"]]
        nll = [r["test_marginal_nll"] for r in result["runs"]]
        seconds = [r["train_seconds"] for r in result["runs"]]
        print(
            f"{result['implementation']}: ZI fraction {np.mean(fractions):.3f} "
            f"(runs {', '.join(f'{f:.3f}' for f in fractions)}); test -log p(x) "
            f"{np.mean(nll):.2f} +- {np.std(nll, ddof=1) if len(nll) > 1 else 0:.2f} "
            f"(runs {', '.join(f'{v:.2f}' for v in nll)}); train {np.mean(seconds):.0f} s"
        )
    if len(results) == 2:
        for run_a, run_b in zip(results[0]["runs"], results[1]["runs"]):
            agree = np.mean(np.array(run_a["zi_calls"]) == np.array(run_b["zi_calls"]))
            print(f"seed {run_a['seed']}: per-gene call agreement {100 * agree:.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--compare", type=Path, nargs="+")
    parser.add_argument("--n-cells", type=int, default=2000)
    parser.add_argument("--n-genes", type=int, default=300)
    parser.add_argument("--n-epochs", type=int, default=60)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--n-mc", type=int, default=50)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.compare:
        compare(args.compare)
        return
    result = run(args)
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
