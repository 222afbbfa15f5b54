"""CITE-seq data of GEO GSE100866: RNA counts with antibody-derived tag (ADT) counts."""

import logging
import os
from collections import namedtuple

import numpy as np
import pandas as pd

from ._loader_utils import (
    check_option,
    checked_names,
    data_file,
    nonempty_cells,
    numeric_values,
    unreadable,
)
from .dataset import CellMeasurement, DownloadableDataset

logger = logging.getLogger(__name__)

__all__ = ["CiteSeqDataset", "CbmcDataset", "CiteSeqFilenames", "available_datasets"]

available_datasets = {
    "cbmc": "CBMC_8K_13AB_10X",
    "pbmc": "PBMC_vs_flow_10X",
    "cd8": "CD8_merged",
}
CiteSeqFilenames = namedtuple(
    "CiteSeqFilenames", field_names=["rna", "adt", "adt_centered"]
)
CiteSeqFilenames.__doc__ = """File names of one CITE-seq dataset.

Attributes
----------
rna
    Gene counts (``<name>_rna.csv.gz``).
adt
    Protein (antibody-derived tag) counts (``<name>_adt.csv.gz``).
adt_centered
    CLR-transformed protein counts (``<name>_adt_centered.csv.gz``).
"""

_GEO = "ftp://ftp.ncbi.nlm.nih.gov/geo/series/GSE100nnn/GSE100866/suppl/"


def _read_matrix(path: str) -> pd.DataFrame:
    """A gzipped (features x cells) CSV with feature names in its first column."""
    try:
        table = pd.read_csv(path, index_col=0, compression="gzip")
    except (OSError, EOFError, ValueError, pd.errors.ParserError) as error:
        raise unreadable(path, error) from error
    numeric_values(table, path)
    return table


def _same_cells(reference: pd.DataFrame, other: pd.DataFrame, path: str):
    """``other`` with its cell columns in the order of ``reference``."""
    cells = reference.columns
    if other.columns.equals(cells):
        return other
    if set(other.columns) != set(cells) or other.columns.has_duplicates:
        raise ValueError(
            f"{path} does not hold the same cells as the RNA file "
            f"({other.shape[1]} vs {len(cells)} columns, "
            f"{len(set(other.columns) ^ set(cells))} barcodes differ)."
        )
    return other[cells]


class CiteSeqDataset(DownloadableDataset):
    """One of the CITE-seq datasets of Stoeckius et al. (2017), GEO GSE100866.

    RNA counts are restricted to the human genes when the file mixes species
    (names ``HUMAN_*`` / ``MOUSE_*``; the prefix is removed). The raw ADT counts are
    the measurement ``protein_expression`` (columns ``protein_names``) and their
    centered log-ratio transform, as published, ``protein_expression_clr``
    (columns ``protein_names_clr``). Cells without RNA counts are dropped.

    Note that the published CLR transform adds pseudocounts in an undocumented way.

    Parameters
    ----------
    name
        ``"cbmc"``, ``"pbmc"`` or ``"cd8"``.
    save_path
        Parent folder; the files go to ``save_path/name``.
    delayed_populating
        Do not read the files in the constructor.
    """

    def __init__(
        self,
        name: str = "cbmc",
        save_path: str = "data/citeSeq/",
        delayed_populating: bool = False,
    ):
        check_option("name", name, list(available_datasets))
        accession = available_datasets[name]
        filenames = CiteSeqFilenames(
            rna=f"{name}_rna.csv.gz",
            adt=f"{name}_adt.csv.gz",
            adt_centered=f"{name}_adt_centered.csv.gz",
        )
        urls = [
            f"{_GEO}GSE100866_{accession}-{kind}.csv.gz"
            for kind in ("RNA_umi", "ADT_umi", "ADT_clr-transformed")
        ]
        super().__init__(
            urls=urls,
            filenames=filenames,
            save_path=os.path.join(save_path, name),
            delayed_populating=delayed_populating,
        )
        self.filenames = filenames

    def populate(self) -> None:
        """Read the RNA, ADT and CLR-transformed ADT tables and fill the dataset."""
        logger.info("Preprocessing data")
        rna_path, adt_path, clr_path = (
            data_file(self.save_path, filename) for filename in self.filenames
        )
        rna = _read_matrix(rna_path)
        self.expression = rna.T
        adt = _same_cells(rna, _read_matrix(adt_path), adt_path)
        adt_clr = _same_cells(rna, _read_matrix(clr_path), clr_path)
        protein_names = checked_names(adt.index, "protein names", adt_path)
        if not np.array_equal(adt_clr.index.astype(str), protein_names):
            raise ValueError(
                "Protein names are not the same for raw and centered counts "
                f"({adt_path} vs {clr_path})."
            )
        raw_names = checked_names(rna.index, "gene names", rna_path, unique=False)
        human = np.char.startswith(raw_names, "HUMAN")
        if human.any():
            logger.info("Selecting only HUMAN genes (%d / %d)", human.sum(), len(human))
        else:
            human[:] = True
        gene_names = checked_names(
            [name.split("_")[-1] for name in raw_names[human]], "gene names", rna_path
        )
        X = rna.to_numpy().T[:, human]
        keep = nonempty_cells(X)
        logger.info("Finish preprocessing data")
        self.populate_from_data(
            X=X[keep],
            gene_names=gene_names,
            Ys=[
                CellMeasurement(
                    name="protein_expression",
                    data=adt.to_numpy().T[keep],
                    columns_attr_name="protein_names",
                    columns=protein_names,
                ),
                CellMeasurement(
                    name="protein_expression_clr",
                    data=adt_clr.to_numpy().T[keep],
                    columns_attr_name="protein_names_clr",
                    columns=protein_names,
                ),
            ],
        )


class CbmcDataset(CiteSeqDataset):
    """8,617 cord blood mononuclear cells with 13 antibodies (CITE-seq "cbmc").

    Parameters
    ----------
    save_path
        Parent folder; the files go to ``save_path/cbmc``.
    delayed_populating
        Do not read the files in the constructor.

    Examples
    --------
    >>> gene_dataset = CbmcDataset()  # doctest: +SKIP
    """

    def __init__(
        self, save_path: str = "data/citeSeq/", delayed_populating: bool = False
    ):
        super().__init__(
            name="cbmc", save_path=save_path, delayed_populating=delayed_populating
        )
