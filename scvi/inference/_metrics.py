"""Scores of a latent space: clustering agreement with known labels."""

import logging
from typing import Optional, Tuple

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score
from sklearn.mixture import GaussianMixture

from scvi.models.utils import check_option

logger = logging.getLogger(__name__)


def unsupervised_clustering_accuracy(
    y: np.ndarray, y_pred: np.ndarray
) -> Tuple[float, np.ndarray]:
    """Accuracy of a clustering under the best one-to-one matching of clusters to labels.

    The matching maximises the number of agreeing cells (Hungarian algorithm).

    Parameters
    ----------
    y
        True labels, integers.
    y_pred
        Cluster assignments, integers.

    Returns
    -------
    ``(accuracy, matching)`` where ``matching`` is an ``(n, 2)`` array of
    (predicted cluster, label) pairs.
    """
    y = np.asarray(y).ravel().astype(np.int64)
    y_pred = np.asarray(y_pred).ravel().astype(np.int64)
    if y.shape != y_pred.shape:
        raise ValueError(f"y and y_pred differ in length: {y.size} vs {y_pred.size}.")
    n = max(y_pred.max(), y.max()) + 1
    cost = np.zeros((n, n), dtype=np.int64)
    np.add.at(cost, (y_pred, y), 1)
    rows, cols = linear_sum_assignment(-cost)
    return cost[rows, cols].sum() / y_pred.size, np.stack([rows, cols], axis=1)


class ClusteringMixin:
    """Clustering scores of a posterior's latent space against its labels."""

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
        latent, _, labels = self.get_latent()
        if prediction_algorithm == "knn":
            labels_pred = KMeans(n_labels, n_init=200).fit_predict(latent)
        else:
            labels_pred = GaussianMixture(n_labels).fit(latent).predict(latent)
        scores = (
            float(silhouette_score(latent, labels)),
            float(normalized_mutual_info_score(labels, labels_pred)),
            float(adjusted_rand_score(labels, labels_pred)),
            float(unsupervised_clustering_accuracy(labels, labels_pred)[0]),
        )
        logger.debug(
            "Clustering Scores: Silhouette %.4f NMI %.4f ARI %.4f UCA %.4f", *scores
        )
        return scores
