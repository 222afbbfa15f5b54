"""gimVI (JVAE + JVAETrainer): imputation of held-out genes, and end-to-end runs on real sets.

The same script runs with this package or with the original scVI 0.5.0 (whichever
``scvi`` is importable)::

    cd /work/main && PYTHONPATH=. /tmp/venv/bin/python benchmarks/gimvi.py --out ours.json
    cd /tmp && /tmp/scvi05/bin/python /work/main/benchmarks/gimvi.py --out orig.json
    PYTHONPATH=. /tmp/venv/bin/python benchmarks/gimvi.py --compare ours.json orig.json

``split`` (quality): the cells of ``zeisel_cortex_1464.h5ad`` (restricted to its
``--n-genes`` genes with the most counts, to keep runs short) are split into two disjoint
halves. Half A keeps all these genes (the scRNA-seq side). Half B keeps 40 genes drawn among
the 200 with the most counts, binomially thinned (each molecule kept with probability
``--capture``) to mimic another capture efficiency (the spatial side); 10 of the 40 are
held out. After training, the held-out genes of half B are imputed (frequencies decoded
from half B's latent codes) and compared, as in the 0.5 gimVI tutorial, with their
thinned counts divided by the cell's total over its 40 genes: Spearman correlation per
gene, median over the 10 genes. Baseline: the mean held-out proportions of each spatial
cell's 10 nearest scRNA-seq cells on the 30 measured genes.

``real`` (end to end): zeisel (scRNA-seq) with ``osmfish_4530.h5ad`` (4 shared genes) or
``starmap_mpfc_3704.loom`` (13 shared genes), spatial cells without counts on the shared
genes removed. These overlaps are too small for a quality figure; the run reports the
ELBOs, the discriminator confusion and the wall time.
"""

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import h5py
import numpy as np
import scipy.sparse as sp
import torch
from scipy.stats import spearmanr

import scvi
from scvi.dataset import GeneExpressionDataset
from scvi.inference.jvae_trainer import JVAETrainer
from scvi.models.jvae import JVAE

REPO = Path(__file__).resolve().parents[1]


def real_data() -> Path:
    shared = Path(os.environ.get("SCVI_SHARED_DATA", REPO.parent / "shared" / "data"))
    return shared / "real"


def read_h5ad(path: Path) -> Tuple[np.ndarray, np.ndarray]:
    """Dense counts and gene names of an ``.h5ad`` file with a CSR ``X`` (h5py only)."""
    with h5py.File(path, "r") as f:
        group = f["X"]
        x = sp.csr_matrix(
            (group["data"][:], group["indices"][:], group["indptr"][:]),
            shape=tuple(group.attrs["shape"]),
        )
        names = f["var"]["_index"][:].astype(str)
    return x.toarray().astype(np.float32), names


def read_loom(path: Path) -> Tuple[np.ndarray, np.ndarray]:
    """Counts (cells x genes) and gene names of a ``.loom`` file (h5py only)."""
    with h5py.File(path, "r") as f:
        x = f["matrix"][:].T.astype(np.float32)
        names = f["row_attrs"]["Gene"][:].astype(str)
    return x, names


def make_dataset(x: np.ndarray, batch: int) -> GeneExpressionDataset:
    dataset = GeneExpressionDataset()
    dataset.populate_from_data(x)
    dataset.batch_indices = np.full((len(x), 1), batch, dtype=np.int64)
    return dataset


def discriminator(n_latent: int, seed: int) -> torch.nn.Module:
    """Three-layer classifier of latent codes into 2 datasets (same for both packages)."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(n_latent, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 2),
    )


def train_gimvi(
    seq: np.ndarray,
    spatial: np.ndarray,
    positions: np.ndarray,
    seed: int,
    n_epochs: int,
    lr: float,
) -> Tuple[JVAETrainer, float]:
    """gimVI as in the 0.5 tutorial: ZINB for scRNA-seq, NB with observed library for FISH."""
    datasets = [make_dataset(seq, 0), make_dataset(spatial, 1)]
    torch.manual_seed(seed)
    np.random.seed(seed)
    model = JVAE(
        [seq.shape[1], spatial.shape[1]],
        seq.shape[1],
        [slice(None), positions],
        ["zinb", "nb"],
        [True, False],
        n_latent=8,
        n_layers_decoder_individual=0,
        n_layers_decoder_shared=0,
        n_layers_encoder_individual=1,
        n_layers_encoder_shared=1,
        dim_hidden_encoder=64,
        dim_hidden_decoder_shared=64,
        dropout_rate_encoder=0.2,
        dropout_rate_decoder=0.2,
        n_batch=2,
        dispersion="gene-batch",
    )
    trainer = JVAETrainer(
        model,
        discriminator(8, seed),
        datasets,
        train_size=0.95,
        use_cuda=False,
        kappa=1.0,
        frequency=None,
    )
    trainer.show_progbar = False
    start = time.perf_counter()
    trainer.train(n_epochs=n_epochs, lr_d=lr, lr_g=lr)
    return trainer, time.perf_counter() - start


def knn_baseline(
    seq_measured: np.ndarray, seq_held_out: np.ndarray, spatial: np.ndarray, k: int = 10
) -> np.ndarray:
    """Held-out genes of each spatial cell: mean over its ``k`` nearest scRNA-seq cells.

    Cells are compared on ``log1p`` of their measured-gene counts scaled to proportions
    (x 1e4); the neighbours' held-out expression is taken as proportions too.
    """

    def embed(counts: np.ndarray) -> np.ndarray:
        return np.log1p(1e4 * counts / np.maximum(counts.sum(axis=1, keepdims=True), 1))

    a, b = embed(seq_measured), embed(spatial)
    distances = (b**2).sum(1)[:, None] - 2 * b @ a.T + (a**2).sum(1)[None, :]
    neighbours = np.argsort(distances, axis=1)[:, :k]
    totals = seq_measured.sum(axis=1) + seq_held_out.sum(axis=1)
    proportions = seq_held_out / np.maximum(totals, 1)[:, None]
    return proportions[neighbours].mean(axis=1)


def controlled_split(seed: int, args: argparse.Namespace) -> Dict[str, Any]:
    x, _ = read_h5ad(real_data() / "zeisel_cortex_1464.h5ad")
    x = x[:, np.sort(np.argsort(-x.sum(axis=0))[: args.n_genes])]
    rng = np.random.RandomState(args.split_seed)
    cells = rng.permutation(len(x))
    half_a, half_b = np.sort(cells[: len(x) // 2]), np.sort(cells[len(x) // 2 :])
    top = np.argsort(-x.sum(axis=0))[:200]
    genes = rng.choice(top, 40, replace=False)
    held_out, measured = genes[:10], np.sort(genes[10:])
    thinned = rng.binomial(x[half_b][:, genes].astype(np.int64), args.capture)
    thinned = thinned.astype(np.float32)
    spatial_measured = thinned[:, 10:][:, np.argsort(genes[10:])]
    spatial_held_out = thinned[:, :10]
    keep = spatial_measured.sum(axis=1) > 0
    spatial_measured, spatial_held_out = spatial_measured[keep], spatial_held_out[keep]
    trainer, seconds = train_gimvi(
        x[half_a], spatial_measured, measured, seed, args.n_epochs, args.lr
    )
    imputed = trainer.get_imputed_values(normalized=True)[1][:, held_out]
    # as in the gimVI tutorial: measured counts normalised by the cell's total over all
    # of its (measured and held-out) genes
    total = spatial_measured.sum(axis=1) + spatial_held_out.sum(axis=1)
    truth = spatial_held_out / total[:, None]
    rho = [spearmanr(imputed[:, i], truth[:, i]).correlation for i in range(10)]
    baseline = knn_baseline(
        x[half_a][:, measured], x[half_a][:, held_out], spatial_measured
    )
    rho_knn = [spearmanr(baseline[:, i], truth[:, i]).correlation for i in range(10)]
    return dict(
        seed=seed,
        n_spatial_cells=int(keep.sum()),
        held_out_genes=[int(g) for g in held_out],
        spearman=[float(r) for r in rho],
        median_spearman=float(np.median(rho)),
        knn_baseline_spearman=[float(r) for r in rho_knn],
        knn_baseline_median_spearman=float(np.median(rho_knn)),
        elbo_seq=float(trainer.all_dataset[0].elbo()),
        elbo_spatial=float(trainer.all_dataset[1].elbo()),
        train_seconds=seconds,
    )


def real_pair(name: str, seed: int, n_epochs: int, lr: float) -> Dict[str, Any]:
    seq, seq_names = read_h5ad(real_data() / "zeisel_cortex_1464.h5ad")
    if name == "osmfish":
        spatial, spatial_names = read_h5ad(real_data() / "osmfish_4530.h5ad")
    else:
        spatial, spatial_names = read_loom(real_data() / "starmap_mpfc_3704.loom")
    seq_index = {g.lower(): i for i, g in enumerate(seq_names)}
    shared = [i for i, g in enumerate(spatial_names) if g.lower() in seq_index]
    positions = np.array([seq_index[spatial_names[i].lower()] for i in shared])
    spatial = spatial[:, shared]
    keep = spatial.sum(axis=1) > 0
    trainer, seconds = train_gimvi(seq, spatial[keep], positions, seed, n_epochs, lr)
    return dict(
        pair=f"zeisel + {name}",
        seed=seed,
        shared_genes=[str(spatial_names[i]) for i in shared],
        n_spatial_cells=int(keep.sum()),
        elbo_seq=float(trainer.all_dataset[0].elbo()),
        elbo_spatial=float(trainer.all_dataset[1].elbo()),
        confusion=trainer.get_discriminator_confusion().tolist(),
        train_seconds=seconds,
    )


def compare(paths: List[Path]) -> None:
    for path in paths:
        result = json.loads(path.read_text())
        print(result["implementation"])
        medians = [r["median_spearman"] for r in result["split"]]
        baselines = [r["knn_baseline_median_spearman"] for r in result["split"]]
        seconds = [r["train_seconds"] for r in result["split"]]
        print(
            f"  split: median Spearman {np.mean(medians):.3f} (runs "
            f"{', '.join(f'{m:.3f}' for m in medians)}); 10-NN baseline "
            f"{np.mean(baselines):.3f}; train {np.mean(seconds):.0f} s"
        )
        for run in result["real"]:
            print(
                f"  {run['pair']}: {len(run['shared_genes'])} shared genes, "
                f"{run['n_spatial_cells']} spatial cells, ELBO seq {run['elbo_seq']:.1f} "
                f"spatial {run['elbo_spatial']:.2f}, confusion diagonal "
                f"{np.diag(run['confusion']).round(2).tolist()}, "
                f"train {run['train_seconds']:.0f} s"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--compare", type=Path, nargs="+")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--capture", type=float, default=0.4)
    parser.add_argument("--n-genes", type=int, default=500)
    parser.add_argument("--n-epochs", type=int, default=100)
    parser.add_argument("--n-epochs-real", type=int, default=3)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.compare:
        compare(args.compare)
        return
    torch.set_num_threads(args.threads)
    result: Dict[str, Any] = dict(
        implementation=f"scvi {scvi.__version__} from {Path(scvi.__file__).parent}",
        torch=torch.__version__,
        settings=dict(
            n_genes=args.n_genes,
            split_seed=args.split_seed,
            capture=args.capture,
            n_epochs=args.n_epochs,
            n_epochs_real=args.n_epochs_real,
            lr=args.lr,
            model=(
                "JVAE(n_latent=8, 0/0 decoder layers, 1/1 encoder layers, hidden 64, "
                "dropout 0.2, n_batch=2, dispersion='gene-batch'), ['zinb', 'nb'], "
                "library modelled for scRNA-seq only"
            ),
            trainer=(
                "JVAETrainer(train_size=0.95, kappa=1, MLP discriminator "
                "8-32-32-2); train(n_epochs, lr_d=lr, lr_g=lr)"
            ),
        ),
        split=[],
        real=[],
    )
    for seed in args.seeds:
        result["split"].append(controlled_split(seed, args))
        print(json.dumps(result["split"][-1]), flush=True)
    for name in ("osmfish", "starmap"):
        result["real"].append(
            real_pair(name, args.seeds[0], args.n_epochs_real, args.lr)
        )
        print(json.dumps(result["real"][-1]), flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
