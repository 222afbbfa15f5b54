"""Datasets: the ``GeneExpressionDataset`` container and its loaders."""

from .anndataset import AnnDatasetFromAnnData, DownloadableAnnDataset
from .brain_large import BrainLargeDataset
from .cite_seq import CbmcDataset, CiteSeqDataset
from .cortex import CortexDataset
from .csv import BreastCancerDataset, CsvDataset, MouseOBDataset
from .dataset import CellMeasurement, DownloadableDataset, GeneExpressionDataset
from .dataset10X import BrainSmallDataset, Dataset10X
from .embedded import EmbeddedPbmcDataset
from .hemato import HematoDataset
from .loom import (
    FrontalCortexDropseqDataset,
    LoomDataset,
    PreFrontalCortexStarmapDataset,
    RetinaDataset,
)
from .pbmc import PbmcDataset, PurifiedPBMCDataset
from .seqfish import SeqfishDataset
from .seqfishplus import SeqFishPlusDataset
from .smfish import SmfishDataset
from .synthetic import (
    SyntheticDataset,
    SyntheticDatasetCorr,
    SyntheticRandomDataset,
    ZISyntheticDatasetCorr,
)

__all__ = [
    "AnnDatasetFromAnnData",
    "DownloadableAnnDataset",
    "BrainLargeDataset",
    "CiteSeqDataset",
    "CbmcDataset",
    "CellMeasurement",
    "CortexDataset",
    "CsvDataset",
    "BreastCancerDataset",
    "MouseOBDataset",
    "GeneExpressionDataset",
    "DownloadableDataset",
    "Dataset10X",
    "BrainSmallDataset",
    "HematoDataset",
    "LoomDataset",
    "RetinaDataset",
    "FrontalCortexDropseqDataset",
    "PreFrontalCortexStarmapDataset",
    "PbmcDataset",
    "PurifiedPBMCDataset",
    "SeqfishDataset",
    "SeqFishPlusDataset",
    "SmfishDataset",
    "SyntheticDataset",
    "SyntheticRandomDataset",
    "SyntheticDatasetCorr",
    "ZISyntheticDatasetCorr",
    "EmbeddedPbmcDataset",
]
