"""Datasets: the ``GeneExpressionDataset`` container and its loaders."""

from .anndataset import AnnDatasetFromAnnData, DownloadableAnnDataset
from .dataset import CellMeasurement, DownloadableDataset, GeneExpressionDataset
from .embedded import EmbeddedPbmcDataset
from .synthetic import (
    SyntheticDataset,
    SyntheticDatasetCorr,
    SyntheticRandomDataset,
    ZISyntheticDatasetCorr,
)

__all__ = [
    "AnnDatasetFromAnnData",
    "DownloadableAnnDataset",
    "CellMeasurement",
    "GeneExpressionDataset",
    "DownloadableDataset",
    "SyntheticDataset",
    "SyntheticRandomDataset",
    "SyntheticDatasetCorr",
    "ZISyntheticDatasetCorr",
    "EmbeddedPbmcDataset",
]
