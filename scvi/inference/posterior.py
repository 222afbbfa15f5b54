"""Public home of :class:`Posterior` and the analysis functions it uses (scVI 0.5 layout)."""

from scvi.inference._metrics import unsupervised_clustering_accuracy
from scvi.inference._posterior import Posterior, SequentialSubsetSampler

__all__ = ["Posterior", "SequentialSubsetSampler", "unsupervised_clustering_accuracy"]
