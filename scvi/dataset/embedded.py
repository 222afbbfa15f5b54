"""A small real dataset shipped inside the package (no download needed)."""

import logging
from importlib import resources
from typing import Optional

import numpy as np
import scipy.sparse as sp_sparse

from .dataset import GeneExpressionDataset

logger = logging.getLogger(__name__)

_RESOURCE = "pbmc8k_200genes.npz"


class EmbeddedPbmcDataset(GeneExpressionDataset):
    """10x Genomics PBMC 8k: 7,480 cells x 200 genes with 8 annotated cell types.

    The counts ship with the package (``scvi/data/pbmc8k_200genes.npz``), so this
    works offline. Labels index the cell types, sorted by name (``"NA"`` is the
    cells left unannotated by the source). One batch.

    Parameters
    ----------
    save_path
        Ignored; accepted for symmetry with the downloadable datasets.
    """

    def __init__(self, save_path: Optional[str] = None):
        super().__init__()
        resource = resources.files("scvi").joinpath("data").joinpath(_RESOURCE)
        with resource.open("rb") as handle, np.load(handle) as archive:
            counts = sp_sparse.csr_matrix(
                (
                    archive["data"].astype(np.float32),
                    archive["indices"].astype(np.int32),
                    archive["indptr"].astype(np.int64),
                ),
                shape=tuple(archive["shape"]),
            )
            gene_names = archive["gene_names"]
            cell_type_per_cell = archive["cell_types"]
        cell_types, labels = np.unique(cell_type_per_cell, return_inverse=True)
        self.populate_from_data(
            counts.toarray(),
            labels=labels,
            gene_names=gene_names,
            cell_types=cell_types,
        )
