"""The main job: train scVI on the PBMC dataset embedded in the package and report on it.

Trains a :class:`~scvi.models.VAE` on 75% of the 7,480 cells, prints the held-out ELBO,
the held-out marginal log-likelihood and clustering scores of the latent space against
the annotated cell types, and writes the latent space (CSV) and a 2-D plot of it (PNG).
"""

import argparse
import logging
import os
import time
from typing import Optional, Sequence

import numpy as np
import torch

import scvi
from scvi.dataset import EmbeddedPbmcDataset
from scvi.inference import UnsupervisedTrainer
from scvi.models import VAE

logger = logging.getLogger("scvi.demo")


def _parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scvi", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--n-epochs", type=int, default=100, help="training epochs (100)"
    )
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate (1e-3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument(
        "--n-mc-samples",
        type=int,
        default=100,
        help="samples of the marginal likelihood (100)",
    )
    parser.add_argument(
        "--embedding",
        choices=("tsne", "pca"),
        default="tsne",
        help="2-D plot method (tsne)",
    )
    parser.add_argument(
        "--output", default="scvi_demo_output", help="output folder (scvi_demo_output)"
    )
    parser.add_argument("--use-cuda", action="store_true", help="train on the GPU")
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bar, warnings only"
    )
    return parser.parse_args(argv)


def _embed(latent: np.ndarray, method: str, seed: int) -> np.ndarray:
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(latent)
    from sklearn.manifold import TSNE

    return TSNE(n_components=2, random_state=seed, init="pca").fit_transform(latent)


def _plot(
    coords: np.ndarray, labels: np.ndarray, names: np.ndarray, path: str, title: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 6))
    cmap = plt.get_cmap("tab10")
    for k, name in enumerate(names):
        mask = labels == k
        ax.scatter(
            coords[mask, 0],
            coords[mask, 1],
            s=3,
            color=cmap(k % 10),
            label=f"{name} ({mask.sum()})",
        )
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(markerscale=4, fontsize=8, loc="best", frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the demo; return the process exit status."""
    args = _parse(argv)
    scvi.set_verbosity(logging.WARNING if args.quiet else logging.INFO)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    dataset = EmbeddedPbmcDataset()
    logger.info("Data: %s", dataset)
    vae = VAE(dataset.nb_genes, n_batch=0)
    trainer = UnsupervisedTrainer(
        vae,
        dataset,
        train_size=0.75,
        use_cuda=args.use_cuda,
        seed=args.seed,
        show_progbar=not args.quiet,
    )
    start = time.time()
    trainer.train(n_epochs=args.n_epochs, lr=args.lr)
    train_seconds = time.time() - start

    elbo = trainer.test_set.elbo()
    marginal_ll = trainer.test_set.marginal_ll(n_mc_samples=args.n_mc_samples)
    full = trainer.create_posterior(indices=np.arange(len(dataset))).sequential()
    scores = full.clustering_scores(prediction_algorithm="knn")
    latent, _, labels = full.get_latent()

    os.makedirs(args.output, exist_ok=True)
    latent_path = os.path.join(args.output, "latent.csv")
    header = ",".join(["cell_type"] + [f"z{i}" for i in range(latent.shape[1])])
    rows = np.column_stack([dataset.cell_types[labels], latent.astype(str)])
    np.savetxt(latent_path, rows, fmt="%s", delimiter=",", header=header, comments="")
    plot_path = os.path.join(args.output, f"latent_{args.embedding}.png")
    coords = _embed(latent, args.embedding, args.seed)
    _plot(
        coords,
        labels,
        dataset.cell_types,
        plot_path,
        f"scVI latent space ({args.embedding})",
    )

    report = [
        f"cells x genes: {dataset.nb_cells} x {dataset.nb_genes}; "
        f"training cells: {len(trainer.train_set.indices)}; test cells: {len(trainer.test_set.indices)}",
        f"epochs: {args.n_epochs} in {train_seconds:.1f} s",
        f"held-out negative ELBO per cell: {elbo:.3f}",
        f"held-out negative marginal log-likelihood per cell ({args.n_mc_samples} samples): {marginal_ll:.3f}",
        "clustering of the latent space vs cell types (k-means): "
        "silhouette {:.3f}, NMI {:.3f}, ARI {:.3f}, accuracy {:.3f}".format(*scores),
        f"wrote {latent_path} and {plot_path}",
    ]
    print("\n".join(report))
    with open(os.path.join(args.output, "report.txt"), "w") as handle:
        handle.write("\n".join(report) + "\n")
    return 0
