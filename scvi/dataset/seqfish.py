"""seqFISH counts of the mouse hippocampus (Shah et al., 2016)."""

import logging

import numpy as np

from ._loader_utils import checked_names, data_file, unreadable
from ._xlsx import read_xlsx_sheet
from .dataset import DownloadableDataset

logger = logging.getLogger(__name__)

__all__ = ["SeqfishDataset"]


class SeqfishDataset(DownloadableDataset):
    """seqFISH hippocampus counts: sheet ``Hippocampus Counts`` of the supplementary
    table of Shah et al. (2016).

    The sheet has one row per gene, its name (quoted) then one count per cell, and
    no header row; it is read as cells x genes with gene names.

    Parameters
    ----------
    save_path
        Folder of ``SeqFISH.xlsx``.
    delayed_populating
        Do not read the file in the constructor.
    """

    def __init__(self, save_path: str = "data/", delayed_populating: bool = False):
        super().__init__(
            urls="https://www.cell.com/cms/attachment/2080562255/2072099886/mmc6.xlsx",
            filenames="SeqFISH.xlsx",
            save_path=save_path,
            delayed_populating=delayed_populating,
        )

    def populate(self) -> None:
        """Read the worksheet and fill the dataset."""
        logger.info("Preprocessing dataset")
        path = data_file(self.save_path, self.filenames[0])
        try:
            rows = read_xlsx_sheet(path, "Hippocampus Counts")
        except ValueError as error:
            raise unreadable(path, error) from error
        if not rows or len(rows[0]) < 2:
            raise unreadable(path, ValueError("the worksheet holds no counts"))
        names = [row[0] for row in rows]
        if any(not isinstance(name, str) for name in names):
            raise ValueError(f"{path}: the first column must hold the gene names.")
        counts = [row[1:] for row in rows]
        if any(
            value is None or isinstance(value, (str, bool))
            for row in counts
            for value in row
        ):
            raise ValueError(
                f"{path}: every cell of the count columns must hold a number."
            )
        gene_names = checked_names(
            [name.strip().strip("'") for name in names], "gene names", path
        )
        logger.info("Finished preprocessing dataset")
        self.populate_from_data(
            np.asarray(counts, dtype=np.float64).T, gene_names=gene_names
        )
