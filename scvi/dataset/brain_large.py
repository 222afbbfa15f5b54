"""The 10x Genomics 1.3 million mouse brain cells, read from HDF5 in chunks."""

import logging
from typing import Optional

import h5py
import numpy as np
import scipy.sparse as sp_sparse

from ._loader_utils import data_file, nonempty_cells, unreadable
from .dataset import DownloadableDataset

logger = logging.getLogger(__name__)

__all__ = ["BrainLargeDataset"]

_URL = (
    "http://cf.10xgenomics.com/samples/cell-exp/1.3.0/1M_neurons/"
    "1M_neurons_filtered_gene_bc_matrices_h5.h5"
)


def _positive(name: str, value: Optional[int], allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


class BrainLargeDataset(DownloadableDataset):
    """10x Genomics 1.3M mouse brain cells, restricted to the most variable genes.

    Gene variances are estimated on the first ``sample_size_gene_var`` cells; the
    ``nb_genes_to_keep`` most variable genes are kept, in decreasing order of
    variance (genes of equal variance in file order). Cells are then read ``loading_batch_size`` at a time from the Cell
    Ranger HDF5 file (group ``mm10``) and kept as a sparse CSR matrix, so the whole
    matrix is never densified. Cells without counts are dropped.

    Parameters
    ----------
    filename
        File name in ``save_path`` (default ``"brain_large.h5"``).
    save_path
        Folder of the file.
    sample_size_gene_var
        Number of cells used to estimate the gene variances.
    max_cells_to_keep
        Number of cells to read (the first ones); all cells by default.
    nb_genes_to_keep
        Number of genes to keep, by decreasing variance.
    loading_batch_size
        Number of cells read per chunk.
    delayed_populating
        Do not read the file in the constructor.

    Examples
    --------
    >>> gene_dataset = BrainLargeDataset(max_cells_to_keep=10000)  # doctest: +SKIP
    """

    def __init__(
        self,
        filename: str = None,
        save_path: str = "data/",
        sample_size_gene_var: int = 10000,
        max_cells_to_keep: int = None,
        nb_genes_to_keep: int = 720,
        loading_batch_size: int = 100000,
        delayed_populating: bool = False,
    ):
        _positive("sample_size_gene_var", sample_size_gene_var)
        _positive("max_cells_to_keep", max_cells_to_keep, allow_none=True)
        _positive("nb_genes_to_keep", nb_genes_to_keep)
        _positive("loading_batch_size", loading_batch_size)
        self.sample_size_gene_var = sample_size_gene_var
        self.max_cells_to_keep = max_cells_to_keep
        self.nb_genes_to_keep = nb_genes_to_keep
        self.loading_batch_size = loading_batch_size
        super().__init__(
            urls=_URL,
            filenames=filename if filename is not None else "brain_large.h5",
            save_path=save_path,
            delayed_populating=delayed_populating,
        )

    def populate(self) -> None:
        """Select the variable genes, then read the cells chunk by chunk."""
        logger.info("Preprocessing Brain Large data")
        path = data_file(self.save_path, self.filenames[0])
        try:
            handle = h5py.File(path, "r")
        except OSError as error:
            raise unreadable(path, error) from error
        with handle:
            group = _matrix_group(handle, path)
            n_genes, n_cells = (int(size) for size in group["shape"][...])
            indptr = group["indptr"][...].astype(np.int64)
            if indptr.shape[0] != n_cells + 1:
                raise unreadable(
                    path,
                    ValueError(
                        f"indptr has {indptr.shape[0]} entries for {n_cells} cells"
                    ),
                )
            self.n_cells_to_keep = (
                n_cells
                if self.max_cells_to_keep is None
                else min(self.max_cells_to_keep, n_cells)
            )
            n_sample = min(self.sample_size_gene_var, n_cells)
            sample = _read_cells(group, indptr, 0, n_sample, n_genes)
            # n^2 * variance, exact for integer counts: equal variances tie exactly.
            total = np.asarray(sample.sum(axis=0, dtype=np.float64)).ravel()
            total_square = np.asarray(
                sample.multiply(sample).sum(axis=0, dtype=np.float64)
            ).ravel()
            spread = n_sample * total_square - total**2
            self.subset_genes = np.argsort(-spread, kind="stable")[
                : self.nb_genes_to_keep
            ]
            del sample
            chunks = []
            for start in range(0, self.n_cells_to_keep, self.loading_batch_size):
                stop = min(start + self.loading_batch_size, self.n_cells_to_keep)
                chunk = _read_cells(group, indptr, start, stop, n_genes)
                chunks.append(chunk[:, self.subset_genes])
                logger.info("loaded %d / %d cells", stop, self.n_cells_to_keep)
            gene_names = None
            if "genes" in group:
                gene_names = group["genes"][...].astype(str)[self.subset_genes]
        matrix = sp_sparse.vstack(chunks, format="csr")
        logger.info("%d cells subsampled", matrix.shape[0])
        logger.info("%d genes subsampled", matrix.shape[1])
        keep = nonempty_cells(matrix)
        self.populate_from_data(
            matrix if keep.all() else matrix[keep], gene_names=gene_names
        )


def _matrix_group(handle: h5py.File, path: str) -> h5py.Group:
    """The group holding the matrix: ``mm10``, else the file's only group."""
    if "mm10" in handle:
        return handle["mm10"]
    groups = [name for name in handle if isinstance(handle[name], h5py.Group)]
    if len(groups) != 1:
        raise ValueError(
            f"{path} has no 'mm10' group (groups: {groups}); expected the Cell Ranger "
            "1M_neurons_filtered_gene_bc_matrices_h5.h5 file."
        )
    return handle[groups[0]]


def _read_cells(
    group: h5py.Group, indptr: np.ndarray, start: int, stop: int, n_genes: int
) -> sp_sparse.csr_matrix:
    """Cells ``start:stop`` of a CSC (genes x cells) HDF5 matrix, as a CSR matrix."""
    first, last = int(indptr[start]), int(indptr[stop])
    data = group["data"][first:last].astype(np.float32)
    indices = group["indices"][first:last].astype(np.int32)
    return sp_sparse.csr_matrix(
        (data, indices, indptr[start : stop + 1] - first),
        shape=(stop - start, n_genes),
    )
