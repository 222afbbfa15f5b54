"""Public home of :class:`Posterior` and the analysis functions it uses (scVI 0.5 layout).

The implementation lives in private modules: ``_posterior`` (the class and its
likelihoods, latent space and samples), ``_differential`` (Bayes-factor differential
expression), ``_metrics`` (batch mixing, purity, clustering scores), ``_imputation``
and ``_plots``.
"""

from scvi.inference._differential import get_bayes_factors
from scvi.inference._imputation import proximity_imputation
from scvi.inference._metrics import (
    entropy_batch_mixing,
    entropy_from_indices,
    knn_purity,
    nn_overlap,
    unsupervised_clustering_accuracy,
)
from scvi.inference._plots import plot_imputation
from scvi.inference._posterior import Posterior, SequentialSubsetSampler

__all__ = [
    "Posterior",
    "SequentialSubsetSampler",
    "entropy_batch_mixing",
    "entropy_from_indices",
    "get_bayes_factors",
    "knn_purity",
    "nn_overlap",
    "plot_imputation",
    "proximity_imputation",
    "unsupervised_clustering_accuracy",
]
