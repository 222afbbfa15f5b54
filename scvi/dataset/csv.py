"""Count matrices stored as delimited text (``.csv``, ``.tsv``, possibly compressed)."""

import bz2
import csv
import gzip
import io
import logging
import lzma
import os
import zipfile
from typing import Iterable, List, Optional, Tuple, Union

import numpy as np
import pandas as pd

from ._loader_utils import (
    checked_names,
    codes_and_names,
    data_file,
    nonempty_cells,
    numeric_values,
    unreadable,
)
from .dataset import DownloadableDataset

logger = logging.getLogger(__name__)

__all__ = ["CsvDataset", "BreastCancerDataset", "MouseOBDataset"]

_SPATIAL_URL = (
    "http://www.spatialtranscriptomicsresearch.org/wp-content/uploads/2016/07/"
)


class CsvDataset(DownloadableDataset):
    """Dataset read from a delimited text file of counts, optionally downloaded.

    The first column holds the row names and the first row the column names: gene
    names and cell names. Cells without counts are dropped.

    Parameters
    ----------
    filename
        File name in ``save_path``.
    save_path
        Folder of the file.
    url
        Where to download the file from when it is not in ``save_path``.
    new_n_genes
        Keep only this many genes, the most variable ones.
    subset_genes
        Keep only these genes (names or column indices).
    compression
        ``"gzip"``, ``"bz2"``, ``"zip"``, ``"xz"``, ``"zstd"`` or ``"infer"``; None
        infers it from the file extension.
    sep
        Field delimiter, e.g. ``"\\t"`` for ``.tsv`` files.
    gene_by_cell
        The file has one row per gene (True) or one row per cell (False).
    labels_file
        Optional file in ``save_path`` with a header row, then one row per cell:
        cell name and label (an integer or a cell-type name).
    batch_ids_file
        Optional file in ``save_path`` with a header row, then one row per cell:
        cell name and batch (an integer or a name).
    delayed_populating
        Do not read the file in the constructor.

    Examples
    --------
    >>> local_csv_dataset = CsvDataset(
    ...     "GSE100866_CBMC_8K_13AB_10X-RNA_umi.csv.gz", save_path="data/",
    ...     compression="gzip")  # doctest: +SKIP
    """

    def __init__(
        self,
        filename: str,
        save_path: str = "data/",
        url: str = None,
        new_n_genes: int = None,
        subset_genes: Iterable[Union[int, str]] = None,
        compression: str = None,
        sep: str = ",",
        gene_by_cell: bool = True,
        labels_file: str = None,
        batch_ids_file: str = None,
        delayed_populating: bool = False,
    ):
        self.compression = compression
        self.sep = sep
        self.gene_by_cell = gene_by_cell
        self.labels_file = labels_file
        self.batch_ids_file = batch_ids_file
        self.new_n_genes = new_n_genes
        self.subset_genes = subset_genes
        super().__init__(
            urls=url,
            filenames=filename,
            save_path=save_path,
            delayed_populating=delayed_populating,
        )

    def populate(self) -> None:
        """Read the table and the optional label/batch files, then fill the dataset."""
        logger.info("Preprocessing dataset")
        path = data_file(self.save_path, self.filenames[0])
        orientation = "gene_by_cell=True" if self.gene_by_cell else "gene_by_cell=False"
        hint = (
            f" Check the delimiter (sep={self.sep!r}; use '\\t' for .tsv files), the "
            f"compression ({self.compression!r}) and the orientation ({orientation})."
        )
        compression = "infer" if self.compression is None else self.compression
        try:
            table = pd.read_csv(
                path, sep=self.sep, index_col=0, compression=compression
            )
            # The header as written: pandas renames repeated and empty column names.
            header = _header(path, self.sep, compression)
        except (OSError, EOFError, UnicodeDecodeError, pd.errors.ParserError) as error:
            raise unreadable(path, error) from error
        if len(header) == table.shape[1] + 1:
            table.columns = header[1:]
        if self.gene_by_cell:
            table = table.T
        values = numeric_values(table, path, hint)
        gene_names = checked_names(table.columns, "gene names", path)
        cell_names = table.index.astype(str)
        labels = cell_types = batch_indices = None
        if self.labels_file is not None:
            labels, cell_types = self._per_cell_codes(self.labels_file, cell_names)
        if self.batch_ids_file is not None:
            batch_indices, _ = self._per_cell_codes(self.batch_ids_file, cell_names)
        keep = nonempty_cells(values)
        logger.info("Finished preprocessing dataset")
        self.populate_from_data(
            X=values[keep],
            batch_indices=None if batch_indices is None else batch_indices[keep],
            labels=None if labels is None else labels[keep],
            gene_names=gene_names,
            cell_types=cell_types,
        )
        self._subsample_genes()

    def _per_cell_codes(
        self, filename: str, cell_names: pd.Index
    ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """Codes (and names) of a two-column per-cell annotation file, in cell order.

        Rows are matched to the cells by name when the file names exactly the cells
        of the count table; otherwise they are taken in file order.
        """
        path = data_file(self.save_path, filename)
        try:
            table = pd.read_csv(path, header=0, index_col=0)
        except (OSError, EOFError, UnicodeDecodeError, pd.errors.ParserError) as error:
            raise unreadable(path, error) from error
        if table.shape[1] != 1:
            raise ValueError(
                f"{path} must have two columns (cell name, value), found "
                f"{table.shape[1] + 1}."
            )
        if table.shape[0] != len(cell_names):
            raise ValueError(
                f"{path} has {table.shape[0]} rows but the count table has "
                f"{len(cell_names)} cells; give one row per cell."
            )
        if table.isna().any().any():
            raise ValueError(f"{path} has missing values.")
        names = table.index.astype(str)
        if not names.has_duplicates and set(names) == set(cell_names):
            table = table.set_axis(names).loc[cell_names]
        else:
            logger.warning(
                "The cell names of %s do not match those of the count table; using "
                "its rows in file order.",
                path,
            )
        return codes_and_names(table.iloc[:, 0].to_numpy())

    def _subsample_genes(self) -> None:
        """Apply ``new_n_genes`` / ``subset_genes`` after populating."""
        subset = None
        if self.subset_genes is not None:
            subset = np.asarray(
                [
                    (
                        int(gene)
                        if isinstance(gene, (int, np.integer))
                        else self.genes_to_index([gene])[0]
                    )
                    for gene in self.subset_genes
                ],
                dtype=np.int64,
            )
        self.subsample_genes(new_n_genes=self.new_n_genes, subset_genes=subset)


_OPENERS = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}
_SUFFIXES = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}


def _header(path: str, sep: str, compression: str) -> List[str]:
    """Fields of the first line of a delimited file, exactly as written."""
    if compression == "infer":
        compression = _SUFFIXES.get(os.path.splitext(path)[1].lower())
    if len(sep) != 1 or compression not in (None, "zip", *_OPENERS):
        first = pd.read_csv(
            path,
            sep=sep,
            header=None,
            nrows=1,
            dtype=str,
            keep_default_na=False,
            compression=compression,
        )
        return first.iloc[0].to_list()
    if compression == "zip":
        with zipfile.ZipFile(path) as archive:
            with archive.open(archive.namelist()[0]) as handle:
                line = io.TextIOWrapper(handle, newline="").readline()
    else:
        opener = _OPENERS.get(compression, open)
        with opener(path, "rt", newline="") as handle:
            line = handle.readline()
    return next(csv.reader([line], delimiter=sep), [])


class BreastCancerDataset(CsvDataset):
    """Spatial transcriptomics of a breast cancer section (Layer 2, Stahl et al. 2016).

    Parameters
    ----------
    save_path
        Folder of ``Layer2_BC_count_matrix-1.tsv``.
    delayed_populating
        Do not read the file in the constructor.
    """

    def __init__(self, save_path: str = "data/", delayed_populating: bool = False):
        super().__init__(
            "Layer2_BC_count_matrix-1.tsv",
            save_path=save_path,
            url=_SPATIAL_URL + "Layer2_BC_count_matrix-1.tsv",
            sep="\t",
            gene_by_cell=False,
            delayed_populating=delayed_populating,
        )


class MouseOBDataset(CsvDataset):
    """Spatial transcriptomics of a mouse olfactory bulb section (Rep 11, Stahl et al.).

    Parameters
    ----------
    save_path
        Folder of ``Rep11_MOB_count_matrix-1.tsv``.
    delayed_populating
        Do not read the file in the constructor.
    """

    def __init__(self, save_path: str = "data/", delayed_populating: bool = False):
        super().__init__(
            "Rep11_MOB_count_matrix-1.tsv",
            save_path=save_path,
            url=_SPATIAL_URL + "Rep11_MOB_count_matrix-1.tsv",
            sep="\t",
            gene_by_cell=False,
            delayed_populating=delayed_populating,
        )
