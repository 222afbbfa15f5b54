"""Posterior analysis on real data: Bayes-factor DE and batch-mixing entropy (Kang et al.).

The same script runs with this package or with the original scVI 0.5.0 (whichever
``scvi`` is importable), so both can be compared on identical settings::

    cd /work/main && PYTHONPATH=. /tmp/venv/bin/python benchmarks/posterior_analysis.py \
        --out ours.json
    cd /tmp && /tmp/scvi05/bin/python /work/main/benchmarks/posterior_analysis.py \
        --out orig.json
    /tmp/venv/bin/python benchmarks/posterior_analysis.py --compare ours.json orig.json

Data: ``ifnb_2800_2batch.h5ad`` from the shared real data (``SCVI_SHARED_DATA``, default
``../shared/data``): 2,800 PBMCs, control (CTRL) or interferon-beta stimulated (STIM),
13 annotated cell types. The ``--n-genes`` genes with the most variable log-normalised
expression are kept, plus the marker genes named below. Two ``VAE`` models are trained
with ``UnsupervisedTrainer`` (default split): one with the condition as batch covariate,
one without. Reported:

* ``entropy_batch_mixing`` of the latent space of all cells, for both models (the
  condition is the "batch"; the model without covariate keeps the interferon response
  in its latent space, so the conditions should mix less);
* ``differential_expression_score`` B vs CD14 Mono (model with covariate): top genes of
  each side and the ranks of the known markers MS4A1, CD79A (B) and CD14, LYZ (CD14 Mono);
* STIM vs CTRL within CD14 Mono (model without covariate): top genes and the ranks of
  the interferon-stimulated genes ISG15, IFI6, IFIT1.
"""

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any, Dict, List

import anndata
import numpy as np
import scipy.sparse as sp
import torch

import scvi
from scvi.dataset import GeneExpressionDataset
from scvi.inference import UnsupervisedTrainer
from scvi.models import VAE

REPO = Path(__file__).resolve().parents[1]
B_MARKERS, MONO_MARKERS, ISG_MARKERS = (
    ["MS4A1", "CD79A"],
    ["CD14", "LYZ"],
    ["ISG15", "IFI6", "IFIT1"],
)
N_TOP = 15


def shared_data() -> Path:
    return Path(os.environ.get("SCVI_SHARED_DATA", REPO.parent / "shared" / "data"))


def load(n_genes: int) -> Dict[str, Any]:
    """Counts of the selected genes, condition and cell type of every cell."""
    adata = anndata.read_h5ad(shared_data() / "real" / "ifnb_2800_2batch.h5ad")
    counts = sp.csr_matrix(adata.X)
    library = np.asarray(counts.sum(axis=1)).ravel()
    logged = sp.diags(1e4 / library) @ counts
    logged.data = np.log1p(logged.data)
    mean = np.asarray(logged.mean(axis=0)).ravel()
    variance = np.asarray(logged.multiply(logged).mean(axis=0)).ravel() - mean**2
    names = np.asarray(adata.var_names)
    keep = set(np.argsort(-variance)[:n_genes].tolist())
    keep |= {
        int(np.flatnonzero(names == g)[0])
        for g in B_MARKERS + MONO_MARKERS + ISG_MARKERS
    }
    keep = np.sort(list(keep))
    condition = np.asarray(adata.obs["batch"])
    cell_type = np.asarray(adata.obs["cell_type"])
    types = np.unique(cell_type)
    return {
        "X": counts[:, keep].toarray().astype(np.float32),
        "genes": names[keep],
        "stim": condition == "STIM",
        "cell_type": cell_type,
        "types": types,
        "labels": np.searchsorted(types, cell_type),
    }


def train(data: Dict[str, Any], use_batch: bool, args: argparse.Namespace):
    dataset = GeneExpressionDataset()
    dataset.populate_from_data(
        data["X"],
        batch_indices=data["stim"].astype(np.int64),
        labels=data["labels"],
        gene_names=data["genes"],
        cell_types=data["types"],
    )
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    model = VAE(dataset.nb_genes, n_batch=dataset.n_batches if use_batch else 0)
    trainer = UnsupervisedTrainer(
        model,
        dataset,
        train_size=0.9,
        use_cuda=False,
        frequency=None,
        show_progbar=False,
    )
    begin = time.time()
    trainer.train(n_epochs=args.n_epochs, lr=1e-3)
    seconds = time.time() - begin
    full = trainer.create_posterior(model, dataset, indices=np.arange(len(dataset)))
    return dataset, full, seconds


def ranking(result, markers: List[str]) -> Dict[str, Any]:
    """Top genes and marker ranks, by Bayes factor and with ties broken by effect size.

    Bayes factors saturate at +-18.4 (estimated probability 1 or 0), so many genes can
    tie; the second ordering sorts by Bayes factor, then by ``log(scale1 / scale2)``.
    """
    genes = [str(g) for g in result.index]
    log_ratio = np.log(result["scale1"].values / result["scale2"].values)
    tie_broken = [genes[i] for i in np.lexsort((-log_ratio, -result["bayes1"].values))]
    return {
        "top_up": genes[:N_TOP],
        "top_down": genes[::-1][:N_TOP],
        "bayes_up": [float(v) for v in result["bayes1"].values[:N_TOP]],
        "bayes_down": [float(v) for v in result["bayes1"].values[::-1][:N_TOP]],
        "n_saturated_up": int(np.sum(result["bayes1"].values > 18)),
        "n_saturated_down": int(np.sum(result["bayes1"].values < -18)),
        "marker_ranks": {g: genes.index(g) + 1 for g in markers},
        "tie_broken_top_up": tie_broken[:N_TOP],
        "tie_broken_top_down": tie_broken[::-1][:N_TOP],
        "tie_broken_marker_ranks": {g: tie_broken.index(g) + 1 for g in markers},
        "n_genes": len(genes),
    }


def run(args: argparse.Namespace) -> Dict[str, Any]:
    torch.set_num_threads(args.threads)
    data = load(args.n_genes)
    out: Dict[str, Any] = {
        "scvi_version": scvi.__version__,
        "n_genes": int(data["X"].shape[1]),
        "n_epochs": args.n_epochs,
        "seed": args.seed,
    }
    is_b, is_mono = data["cell_type"] == "B", data["cell_type"] == "CD14 Mono"
    for use_batch in (True, False):
        key = "with_batch" if use_batch else "without_batch"
        dataset, full, seconds = train(data, use_batch, args)
        out[f"train_seconds_{key}"] = seconds
        np.random.seed(args.seed)
        out[f"entropy_batch_mixing_{key}"] = float(full.entropy_batch_mixing())
        np.random.seed(args.seed)
        torch.manual_seed(args.seed)
        begin = time.time()
        if use_batch:
            result = full.differential_expression_score(is_b, is_mono)
            out["de_b_vs_cd14mono"] = ranking(result, B_MARKERS + MONO_MARKERS)
        else:
            result = full.differential_expression_score(
                is_mono & data["stim"], is_mono & ~data["stim"]
            )
            out["de_stim_vs_ctrl_cd14mono"] = ranking(result, ISG_MARKERS)
        out[f"de_seconds_{key}"] = time.time() - begin
    return out


def compare(paths: List[str]) -> None:
    runs = [json.loads(Path(p).read_text()) for p in paths]
    for run_ in runs:
        print(
            f"== scvi {run_['scvi_version']} ({run_['n_genes']} genes, {run_['n_epochs']} epochs)"
        )
        for key in ("with_batch", "without_batch"):
            print(
                f"  entropy_batch_mixing {key}: {run_[f'entropy_batch_mixing_{key}']:.4f}"
            )
        for name in ("de_b_vs_cd14mono", "de_stim_vs_ctrl_cd14mono"):
            de = run_[name]
            print(
                f"  {name} ({de['n_genes']} genes; saturated: {de['n_saturated_up']} up, "
                f"{de['n_saturated_down']} down)"
            )
            print(
                f"    marker ranks: {de['marker_ranks']}, ties broken: {de['tie_broken_marker_ranks']}"
            )
            print(f"    up (ties broken):   {', '.join(de['tie_broken_top_up'][:10])}")
            print(
                f"    down (ties broken): {', '.join(de['tie_broken_top_down'][:10])}"
            )
    if len(runs) == 2:
        for name in ("de_b_vs_cd14mono", "de_stim_vs_ctrl_cd14mono"):
            for side in ("tie_broken_top_up", "tie_broken_top_down"):
                shared = set(runs[0][name][side]) & set(runs[1][name][side])
                print(f"{name} {side}: {len(shared)}/{N_TOP} genes shared by both runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-genes", type=int, default=1200)
    parser.add_argument("--n-epochs", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--compare", nargs="+")
    args = parser.parse_args()
    if args.compare:
        compare(args.compare)
        return
    result = run(args)
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
