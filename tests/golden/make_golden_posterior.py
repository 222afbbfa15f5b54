"""Regenerate ``posterior_analysis.pt``: the original scVI 0.5.0's posterior analysis outputs.

A developer tool, not part of the test suite. It imports the *original* ``scvi`` 0.5.0
(the "oracle"), so run it with the oracle's Python and this repository off the import
path::

    cd /tmp && /tmp/scvi05/bin/python /work/main/tests/golden/make_golden_posterior.py \
        /work/main/tests/golden

It writes ``posterior_analysis.pt`` (read by ``tests/inference/test_posterior_golden.py``)
with, for fixed inputs and seeds:

``functions``
    The module functions of ``scvi.inference.posterior``: ``entropy_batch_mixing``,
    ``get_bayes_factors`` (several options), ``knn_purity``, ``nn_overlap``,
    ``unsupervised_clustering_accuracy``, ``entropy_from_indices``,
    ``proximity_imputation``. Each random call is made right after
    ``np.random.seed(seed)``.
Inputs are float32, stored exactly; outputs are stored as float32.

``posterior``
    A small count matrix, the ``state_dict`` of a ``VAE`` briefly trained on it, a
    corrupted copy of the counts, and the outputs of ``Posterior`` methods on all cells
    (``differential_expression_score``, ``differential_expression_stats``,
    ``sample_scale_from_batch``, ``get_stats``, ``generate_parameters``,
    ``get_harmonized_scale``, ``imputation_list``, ``entropy_batch_mixing``,
    ``knn_purity``), each called on a fresh posterior right after seeding both
    ``np.random`` and ``torch``.
"""

import argparse
from pathlib import Path
from typing import Any, Callable, Dict

import numpy as np
import torch

import scvi
from scvi.dataset import GeneExpressionDataset
from scvi.inference import Posterior, UnsupervisedTrainer
from scvi.inference.posterior import (
    entropy_batch_mixing,
    entropy_from_indices,
    get_bayes_factors,
    knn_purity,
    nn_overlap,
    proximity_imputation,
    unsupervised_clustering_accuracy,
)
from scvi.models import VAE

SEED = 7


def seeded(fn: Callable[[], Any]) -> Any:
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    with torch.no_grad():
        return fn()


def as_tensor(value: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value, dtype=np.float32))


def function_cases() -> Dict[str, Any]:
    rng = np.random.RandomState(0)
    out: Dict[str, Any] = {}

    # Two partially overlapping batches in 5 dimensions.
    latent = rng.normal(size=(240, 5))
    batches = (rng.uniform(size=240) < 0.5).astype(int)
    latent[batches == 1, 0] += 1.5
    latent = latent.astype(np.float32)
    out["ebm_latent"] = as_tensor(latent)
    out["ebm_batches"] = torch.as_tensor(batches)
    out["ebm_default"] = float(seeded(lambda: entropy_batch_mixing(latent, batches)))
    out["ebm_small"] = float(
        seeded(
            lambda: entropy_batch_mixing(
                latent, batches, n_neighbors=10, n_pools=7, n_samples_per_pool=33
            )
        )
    )

    px_scale = rng.dirichlet(np.ones(9), size=90)
    px_scale[:30, :3] *= 1.5
    px_scale = (px_scale / px_scale.sum(axis=1, keepdims=True)).astype(np.float32)
    labels = np.repeat([0, 1, 2], 30)
    out["bf_px_scale"] = as_tensor(px_scale)
    out["bf_labels"] = torch.as_tensor(labels)
    bf_calls = {
        "pairs": dict(cell_idx=0, M_permutation=500),
        "pairs_permuted": dict(cell_idx=0, M_permutation=500, permutation=True),
        "no_pairs_other": dict(cell_idx=0, other_cell_idx=2, sample_pairs=False),
        "pairs_other_genes": dict(
            cell_idx=1, other_cell_idx=0, genes_idx=[0, 4, 8], M_permutation=300
        ),
    }
    for name, kwargs in bf_calls.items():
        out[f"bf_{name}"] = as_tensor(
            seeded(lambda kwargs=kwargs: get_bayes_factors(px_scale, labels, **kwargs))
        )

    clusters = rng.normal(size=(150, 4))
    cluster_labels = np.repeat([0, 1, 2], 50)
    clusters[:, 0] += 2.0 * cluster_labels
    clusters = clusters.astype(np.float32)
    out["knn_latent"] = as_tensor(clusters)
    out["knn_labels"] = torch.as_tensor(cluster_labels)
    out["knn_purity_default"] = float(knn_purity(clusters, cluster_labels))
    out["knn_purity_5"] = float(knn_purity(clusters, cluster_labels, n_neighbors=5))

    other = (clusters + rng.normal(scale=0.8, size=clusters.shape)).astype(np.float32)
    out["nn_other"] = as_tensor(other)
    out["nn_overlap_10"] = [float(v) for v in nn_overlap(clusters, other, k=10)]
    out["nn_overlap_default"] = [float(v) for v in nn_overlap(clusters, other)]

    y = rng.randint(0, 4, size=200)
    y_pred = np.where(
        rng.uniform(size=200) < 0.7, (y + 1) % 4, rng.randint(0, 4, size=200)
    )
    out["uca_y"] = torch.as_tensor(y)
    out["uca_y_pred"] = torch.as_tensor(y_pred)
    accuracy, matching = unsupervised_clustering_accuracy(y, y_pred)
    out["uca_accuracy"] = float(accuracy)
    out["uca_matching"] = torch.as_tensor(np.asarray(matching))

    out["entropy_from_indices"] = float(entropy_from_indices(y))

    reference = rng.normal(size=(40, 3)).astype(np.float32)
    expression = rng.gamma(2.0, size=(40, 6)).astype(np.float32)
    query = rng.normal(size=(15, 3)).astype(np.float32)
    out["prox_reference"] = as_tensor(reference)
    out["prox_expression"] = as_tensor(expression)
    out["prox_query"] = as_tensor(query)
    out["prox_result"] = as_tensor(
        proximity_imputation(reference, expression, query, k=4)
    )
    return out


def posterior_cases() -> Dict[str, Any]:
    rng = np.random.RandomState(1)
    n_cells, n_genes = 160, 12
    labels = np.repeat([0, 1], n_cells // 2)
    batches = np.tile([0, 1], n_cells // 2)
    means = np.tile(rng.gamma(3.0, 2.0, size=n_genes), (n_cells, 1))
    means[labels == 0, :2] *= 6.0
    means[labels == 1, 2:4] *= 6.0
    means[batches == 1] *= 1.5
    X = rng.poisson(means).astype(np.float32)
    X[:, -1] += 1
    gene_names = np.array([f"gene{i}" for i in range(n_genes)])

    dataset = GeneExpressionDataset()
    dataset.populate_from_data(
        X,
        batch_indices=batches,
        labels=labels,
        gene_names=gene_names,
        cell_types=np.array(["alpha", "beta"]),
    )
    torch.manual_seed(0)
    model = VAE(n_genes, n_batch=2, n_labels=2, n_hidden=16, n_latent=3)
    trainer = UnsupervisedTrainer(
        model, dataset, train_size=0.9, use_cuda=False, show_progbar=False, seed=0
    )
    trainer.train(n_epochs=40, lr=1e-2)
    model.eval()

    np.random.seed(3)
    corrupted = X.copy()
    rows, cols = np.nonzero(X)
    chosen = np.random.choice(len(rows), size=len(rows) // 10, replace=False)
    corrupted[rows[chosen], cols[chosen]] = 0.0
    dataset.corrupted_X = corrupted

    def posterior() -> Posterior:
        return Posterior(
            model, dataset, use_cuda=False, data_loader_kwargs={"batch_size": 32}
        )

    idx1, idx2 = labels == 0, labels == 1
    out: Dict[str, Any] = {
        "X": torch.as_tensor(X),
        "corrupted_X": torch.as_tensor(corrupted),
        "labels": torch.as_tensor(labels),
        "batches": torch.as_tensor(batches),
        "gene_names": gene_names.tolist(),
        "cell_types": ["alpha", "beta"],
        "model_kwargs": dict(n_batch=2, n_labels=2, n_hidden=16, n_latent=3),
        "state_dict": {k: v.clone() for k, v in model.state_dict().items()},
        "batch_size": 32,
    }
    de = seeded(
        lambda: posterior().differential_expression_score(
            idx1, idx2, n_samples=40, M_permutation=300
        )
    )
    out["de_genes"] = [str(g) for g in de.index]
    out["de_columns"] = list(de.columns)
    out["de_values"] = as_tensor(de.values.astype(np.float64))
    out["de_genes_subset"] = as_tensor(
        seeded(
            lambda: posterior().differential_expression_score(
                idx1,
                idx2,
                batchid1=[1],
                batchid2=[0],
                genes=["GENE0", "GENE3"],
                n_samples=30,
                M_permutation=200,
                all_stats=False,
            )
        )
    )
    out["de_no_pairs"] = as_tensor(
        seeded(
            lambda: posterior().differential_expression_score(
                idx1, idx2, n_samples=25, sample_pairs=False, all_stats=False
            )
        )
    )
    scales, scale_labels = seeded(
        lambda: posterior().differential_expression_stats(M_sampling=3)
    )
    out["stats_scales"] = as_tensor(scales)
    out["stats_labels"] = torch.as_tensor(np.asarray(scale_labels, dtype=np.int64))
    out["scale_from_batch"] = as_tensor(
        seeded(
            lambda: posterior().sample_scale_from_batch(
                20, batchid=[0, 1], selection=idx2
            )
        )
    )
    out["get_stats"] = as_tensor(seeded(lambda: posterior().get_stats()))
    out["generate_parameters"] = [
        as_tensor(v) for v in seeded(lambda: posterior().generate_parameters())
    ]
    out["harmonized_scale"] = as_tensor(
        seeded(lambda: posterior().get_harmonized_scale(1))
    )
    original, imputed = seeded(lambda: posterior().imputation_list(n_samples=2))
    out["imputation_lengths"] = torch.as_tensor([len(v) for v in original])
    out["imputation_original"] = as_tensor(np.concatenate(original))
    out["imputation_imputed"] = as_tensor(np.concatenate(imputed))
    out["imputation_score"] = float(posterior().imputation_score(original, imputed))
    out["posterior_ebm"] = float(
        seeded(lambda: posterior().entropy_batch_mixing(n_neighbors=15, n_pools=5))
    )
    out["posterior_knn_purity"] = float(seeded(lambda: posterior().knn_purity()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", type=Path)
    args = parser.parse_args()
    if scvi.__version__ != "0.5.0":
        raise SystemExit(f"needs the original scvi 0.5.0, found {scvi.__version__}")
    golden = {"functions": function_cases(), "posterior": posterior_cases()}
    path = args.output_dir / "posterior_analysis.pt"
    torch.save(golden, path)
    print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB)")


if __name__ == "__main__":
    main()
