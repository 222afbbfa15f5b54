"""Zeisel et al. (2015) mouse cortex cells (the "cortex" dataset of scVI)."""

import csv
import logging
from typing import List, Optional

import numpy as np
import pandas as pd

from ._loader_utils import checked_names, data_file, numeric_values, unreadable
from .dataset import DownloadableDataset

logger = logging.getLogger(__name__)

__all__ = ["CortexDataset"]

_URL = (
    "https://storage.googleapis.com/linnarsson-lab-www-blobs/blobs"
    "/cortex/expression_mRNA_17-Aug-2014.txt"
)
# Layout of the tab-separated file: 11 annotation rows, then one row per gene with the
# gene name, an empty column, and one count per cell.
_PRECISE_ROW, _CLUSTER_ROW, _N_HEADER_ROWS = 1, 8, 11


class CortexDataset(DownloadableDataset):
    """3,005 mouse cortex cells of Zeisel et al. (2015) with 7 annotated cell types.

    Labels are the ``level1class`` cell types; the ``group #`` annotation is kept
    as the cell attribute ``precise_labels``. Genes: ``genes_to_keep`` first, in
    that order, then the genes with the largest standard deviation until
    ``total_genes`` genes are kept (genes of equal deviation in file order).

    Parameters
    ----------
    save_path
        Folder of the file ``expression.bin``.
    genes_to_keep
        Gene names to keep first (case-insensitive).
    total_genes
        Number of genes to keep in all; ``None`` keeps only ``genes_to_keep``, or
        every gene when ``genes_to_keep`` is empty too.
    delayed_populating
        Do not read the file in the constructor.

    Examples
    --------
    >>> gene_dataset = CortexDataset()  # doctest: +SKIP
    """

    def __init__(
        self,
        save_path: str = "data/",
        genes_to_keep: Optional[List[str]] = None,
        total_genes: Optional[int] = 558,
        delayed_populating: bool = False,
    ):
        if total_genes is not None and (
            isinstance(total_genes, bool)
            or not isinstance(total_genes, (int, np.integer))
            or total_genes < 1
        ):
            raise ValueError(
                f"total_genes must be a positive integer or None, got {total_genes!r}."
            )
        self.genes_to_keep = genes_to_keep
        self.total_genes = total_genes
        self.precise_labels = None
        super().__init__(
            urls=_URL,
            filenames="expression.bin",
            save_path=save_path,
            delayed_populating=delayed_populating,
        )

    def populate(self) -> None:
        """Parse the annotation rows and the count table, select genes, fill."""
        logger.info("Loading Cortex data")
        path = data_file(self.save_path, self.filenames[0])
        with open(path, newline="") as handle:
            header = [
                row
                for _, row in zip(
                    range(_N_HEADER_ROWS), csv.reader(handle, delimiter="\t")
                )
            ]
        if len(header) < _N_HEADER_ROWS:
            raise unreadable(path, ValueError("fewer than 11 annotation rows"))
        precise_clusters = np.asarray(header[_PRECISE_ROW][2:], dtype=str)
        clusters = np.asarray(header[_CLUSTER_ROW][2:], dtype=str)
        try:
            table = pd.read_csv(
                path,
                sep="\t",
                header=None,
                skiprows=_N_HEADER_ROWS,
                index_col=0,
                keep_default_na=False,
            )
        except (ValueError, pd.errors.ParserError) as error:
            raise unreadable(path, error) from error
        counts = numeric_values(table.iloc[:, 1:], path)
        if counts.shape[1] != len(clusters) or len(precise_clusters) != len(clusters):
            raise unreadable(
                path,
                ValueError(
                    f"{counts.shape[1]} count columns but {len(clusters)} cell-type "
                    f"and {len(precise_clusters)} group annotations"
                ),
            )
        X = counts.T
        gene_names = np.char.upper(
            checked_names(table.index, "gene names", path, unique=False)
        )
        cell_types, labels = np.unique(clusters, return_inverse=True)
        gene_indices = self._gene_selection(X, gene_names)
        logger.info("Finished preprocessing Cortex data")
        self.populate_from_data(
            X=X[:, gene_indices],
            labels=labels,
            gene_names=checked_names(gene_names[gene_indices], "gene names", path),
            cell_types=cell_types,
            cell_attributes_dict={"precise_labels": precise_clusters},
        )

    def _gene_selection(self, X: np.ndarray, gene_names: np.ndarray) -> np.ndarray:
        """Indices of ``genes_to_keep`` then of the highest-std genes, up to the total."""
        chosen = np.zeros(0, dtype=np.int64)
        if self.genes_to_keep is not None:
            wanted = np.char.upper(np.asarray(self.genes_to_keep, dtype=str))
            position = {name: index for index, name in enumerate(gene_names)}
            missing = [name for name in wanted.tolist() if name not in position]
            if missing:
                raise ValueError(
                    f"{len(missing)} genes of genes_to_keep are not in the data, e.g. "
                    f"{missing[:5]}."
                )
            chosen = np.asarray(
                [position[name] for name in wanted.tolist()], dtype=np.int64
            )
        if self.total_genes is not None and len(chosen) < self.total_genes:
            by_std = np.argsort(-np.std(X, axis=0), kind="stable")
            extra = by_std[~np.isin(by_std, chosen)][: self.total_genes - len(chosen)]
            chosen = np.concatenate([chosen, extra])
        if chosen.size == 0:
            return np.arange(X.shape[1])
        return chosen
