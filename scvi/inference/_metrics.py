"""Scores of a latent space: batch mixing, neighbourhood purity, clustering agreement."""

import logging
from typing import Any, Callable, Optional, Tuple

import numpy as np
import scipy.stats
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import (
    adjusted_rand_score,
    normalized_mutual_info_score,
    silhouette_score,
)
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NearestNeighbors

from scvi.models.utils import check_option

logger = logging.getLogger(__name__)


def metric(mode: str) -> Callable[[Callable], Callable]:
    """Mark a posterior method as a metric that early stopping may use.

    Parameters
    ----------
    mode
        ``"min"`` when lower values are better, ``"max"`` when higher values are.
    """
    check_option("mode", mode, ("min", "max"))

    def mark(func: Callable) -> Callable:
        func.mode = mode
        return func

    return mark


def _neighbours(data: np.ndarray, n_neighbors: int) -> np.ndarray:
    """Indices ``(n, n_neighbors)`` of each point's nearest neighbours, the point itself excluded."""
    data = np.asarray(data)
    n_points = data.shape[0]
    if not 0 < n_neighbors < n_points:
        raise ValueError(
            f"n_neighbors must be between 1 and the number of points minus one "
            f"({n_points - 1}), but got {n_neighbors}."
        )
    found = (
        NearestNeighbors(n_neighbors=n_neighbors + 1)
        .fit(data)
        .kneighbors(data, return_distance=False)
    )
    is_self = found == np.arange(n_points)[:, None]
    # With duplicated points a point may be missing from its own list: drop the farthest.
    is_self[~is_self.any(axis=1), -1] = True
    return found[~is_self].reshape(n_points, n_neighbors)


def entropy_from_indices(indices: Any) -> float:
    """Shannon entropy (natural log) of the frequencies of the distinct values in ``indices``."""
    counts = np.unique(np.asarray(indices), return_counts=True)[1]
    return float(scipy.stats.entropy(counts))


def entropy_batch_mixing(
    latent_space: np.ndarray,
    batches: np.ndarray,
    n_neighbors: int = 50,
    n_pools: int = 50,
    n_samples_per_pool: int = 100,
) -> float:
    """Mean entropy of the batch composition of the cells' neighbourhoods (two batches).

    For each cell, the entropy of the two batch frequencies among its ``n_neighbors``
    nearest neighbours (itself excluded) is computed; the score averages it over
    ``n_pools`` pools of ``n_samples_per_pool`` cells drawn with replacement through
    :mod:`numpy.random` (seed it with :func:`numpy.random.seed` for reproducibility).
    It is 0 when batches are fully separated and at most ``log(2)`` when they are
    perfectly mixed.

    Parameters
    ----------
    latent_space
        Coordinates of the cells, ``(n_cells, n_dims)``.
    batches
        Batch of each cell, ``(n_cells,)`` or ``(n_cells, 1)``; at most two distinct values.
    n_neighbors
        Neighbourhood size (capped at ``n_cells - 1``).
    n_pools
        Number of random pools of cells.
    n_samples_per_pool
        Number of cells per pool.

    Returns
    -------
    The average neighbourhood entropy.
    """
    latent_space = np.asarray(latent_space)
    batches = np.asarray(batches).ravel()
    if batches.shape[0] != latent_space.shape[0]:
        raise ValueError(
            f"batches has {batches.shape[0]} entries but latent_space has "
            f"{latent_space.shape[0]} cells."
        )
    values = np.unique(batches)
    if values.size > 2:
        raise ValueError(
            f"entropy_batch_mixing needs at most two batches, but got {values.size}: "
            f"{values.tolist()}."
        )
    n_cells = latent_space.shape[0]
    neighbours = _neighbours(latent_space, min(n_neighbors, n_cells - 1))
    frequency = np.mean(batches[neighbours] == values[-1], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_cell = -frequency * np.log(frequency) - (1 - frequency) * np.log(
            1 - frequency
        )
    per_cell[(frequency == 0) | (frequency == 1)] = 0.0
    score = 0.0
    for _ in range(n_pools):
        pool = np.random.choice(n_cells, size=n_samples_per_pool)
        score += per_cell[pool].mean()
    return float(score / n_pools)


def knn_purity(latent: np.ndarray, label: np.ndarray, n_neighbors: int = 30) -> float:
    """Fraction of each cell's nearest neighbours sharing its label, averaged per label.

    Parameters
    ----------
    latent
        Coordinates of the cells, ``(n_cells, n_dims)``.
    label
        Label of each cell.
    n_neighbors
        Neighbourhood size (the cell itself excluded).

    Returns
    -------
    The mean over labels of the mean purity of the cells with that label.
    """
    label = np.asarray(label).ravel()
    if label.shape[0] != np.shape(latent)[0]:
        raise ValueError(
            f"label has {label.shape[0]} entries but latent has {np.shape(latent)[0]} cells."
        )
    neighbours = _neighbours(latent, n_neighbors)
    per_cell = np.mean(label[neighbours] == label[:, None], axis=1)
    return float(
        np.mean([per_cell[label == value].mean() for value in np.unique(label)])
    )


def nn_overlap(X1: np.ndarray, X2: np.ndarray, k: int = 100) -> Tuple[float, float]:
    """Agreement of the k-nearest-neighbour graphs of two representations of the same cells.

    Parameters
    ----------
    X1, X2
        Two representations of the same cells, ``(n_cells, n_dims_1)`` and
        ``(n_cells, n_dims_2)``.
    k
        Neighbourhood size (capped at ``n_cells - 1``).

    Returns
    -------
    ``(spearman_correlation, fold_enrichment)``: the Spearman correlation of the two
    ``n_cells x n_cells`` adjacency matrices (flattened), and the number of shared edges
    divided by the number expected for independent graphs.
    """
    if len(X1) != len(X2):
        raise ValueError(
            f"X1 and X2 must describe the same cells: {len(X1)} vs {len(X2)} rows."
        )
    n_cells = len(X1)
    k = min(k, n_cells - 1)
    edges = []
    for data in (X1, X2):
        neighbours = _neighbours(data, k)
        edges.append(
            set((np.arange(n_cells)[:, None] * n_cells + neighbours).ravel().tolist())
        )
    n_entries = n_cells**2
    n_edges_1, n_edges_2 = len(edges[0]), len(edges[1])
    n_shared = len(edges[0] & edges[1])
    # Spearman's rho of two binary vectors equals their Pearson (phi) coefficient.
    spearman = (n_entries * n_shared - n_edges_1 * n_edges_2) / np.sqrt(
        float(n_edges_1)
        * (n_entries - n_edges_1)
        * float(n_edges_2)
        * (n_entries - n_edges_2)
    )
    fold_enrichment = n_shared * n_entries / (float(n_edges_1) * n_edges_2)
    return float(spearman), float(fold_enrichment)


def unsupervised_clustering_accuracy(y: Any, y_pred: Any) -> Tuple[float, np.ndarray]:
    """Accuracy of a clustering under the best one-to-one matching of clusters to labels.

    The matching maximises the number of agreeing cells (Hungarian algorithm, via
    :func:`scipy.optimize.linear_sum_assignment`).

    Parameters
    ----------
    y
        True labels.
    y_pred
        Cluster assignments (any values comparable with each other).

    Returns
    -------
    ``(accuracy, matching)`` where ``matching`` is an ``(n, 2)`` array of
    (predicted cluster, label) pairs, ``n`` being the number of distinct values in
    ``y`` and ``y_pred`` together.
    """
    y = np.asarray(y).ravel()
    y_pred = np.asarray(y_pred).ravel()
    if y.shape != y_pred.shape:
        raise ValueError(f"y and y_pred differ in length: {y.size} vs {y_pred.size}.")
    values, codes = np.unique(np.concatenate([y_pred, y]), return_inverse=True)
    pred_codes, true_codes = codes[: y_pred.size], codes[y_pred.size :]
    reward = np.zeros((values.size, values.size), dtype=np.int64)
    np.add.at(reward, (pred_codes, true_codes), 1)
    rows, cols = linear_sum_assignment(reward, maximize=True)
    accuracy = reward[rows, cols].sum() / y_pred.size
    return float(accuracy), np.stack([values[rows], values[cols]], axis=1)


class MetricsMixin:
    """Scores of a posterior's latent space (mixed into :class:`~scvi.inference.Posterior`)."""

    @metric("max")
    @torch.no_grad()
    def entropy_batch_mixing(self, **kwargs) -> Optional[float]:
        """Batch-mixing entropy of the latent space (see :func:`entropy_batch_mixing`).

        Parameters
        ----------
        **kwargs
            Arguments of :func:`entropy_batch_mixing` (``n_neighbors``, ``n_pools``,
            ``n_samples_per_pool``).

        Returns
        -------
        The score, or None unless the dataset has exactly two batches.
        """
        if self.gene_dataset.n_batches != 2:
            return None
        latent, batch_indices, _ = self.get_latent()[:3]
        score = entropy_batch_mixing(latent, batch_indices, **kwargs)
        logger.debug("Entropy batch mixing : %.4f", score)
        return score

    @metric("max")
    @torch.no_grad()
    def knn_purity(self) -> float:
        """Nearest-neighbour label purity of the latent space (see :func:`knn_purity`)."""
        latent, _, labels = self.get_latent()[:3]
        score = knn_purity(latent, labels)
        logger.debug("KNN purity score : %.4f", score)
        return score

    @torch.no_grad()
    def clustering_scores(
        self, prediction_algorithm: str = "knn"
    ) -> Optional[Tuple[float, float, float, float]]:
        """Cluster the latent space and compare the clusters with the cell labels.

        Parameters
        ----------
        prediction_algorithm
            ``"knn"`` (k-means with 200 initialisations, as in scVI 0.5) or ``"gmm"``
            (Gaussian mixture), with as many clusters as labels.

        Returns
        -------
        ``(silhouette, NMI, ARI, unsupervised clustering accuracy)``, or None when the
        dataset has a single label.
        """
        check_option("prediction_algorithm", prediction_algorithm, ("knn", "gmm"))
        n_labels = self.gene_dataset.n_labels
        if n_labels <= 1:
            return None
        latent, _, labels = self.get_latent()[:3]
        if prediction_algorithm == "knn":
            labels_pred = KMeans(n_labels, n_init=200).fit_predict(latent)
        else:
            labels_pred = GaussianMixture(n_labels).fit(latent).predict(latent)
        scores = (
            float(silhouette_score(latent, labels)),
            float(normalized_mutual_info_score(labels, labels_pred)),
            float(adjusted_rand_score(labels, labels_pred)),
            unsupervised_clustering_accuracy(labels, labels_pred)[0],
        )
        logger.debug(
            "Clustering Scores: Silhouette %.4f NMI %.4f ARI %.4f UCA %.4f", *scores
        )
        return scores

    @torch.no_grad()
    def nn_overlap_score(self, **kwargs) -> Optional[Tuple[float, float]]:
        """Agreement of the latent and protein nearest-neighbour graphs (CITE-seq data).

        Parameters
        ----------
        **kwargs
            Arguments of :func:`nn_overlap` (``k``).

        Returns
        -------
        ``(spearman_correlation, fold_enrichment)`` between the latent space and the
        dataset's ``protein_expression_clr``, or None when the dataset has none.
        """
        if not hasattr(self.gene_dataset, "protein_expression_clr"):
            logger.debug(
                "nn_overlap_score needs protein_expression_clr in the dataset."
            )
            return None
        latent = self.sequential().get_latent()[0]
        protein_data = self.gene_dataset.protein_expression_clr[self.indices]
        spearman, fold_enrichment = nn_overlap(latent, protein_data, **kwargs)
        logger.debug(
            "Overlap Scores: Spearman Correlation %.4f Fold Enrichment %.4f",
            spearman,
            fold_enrichment,
        )
        return spearman, fold_enrichment
