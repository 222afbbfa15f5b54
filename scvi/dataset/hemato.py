"""Hematopoietic progenitors of Tusi et al. (2018), basal bone marrow (inDrops)."""

import logging
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from ._loader_utils import checked_names, data_file, nonempty_cells, unreadable
from .dataset import DownloadableDataset

logger = logging.getLogger(__name__)

__all__ = ["HematoDataset"]

_PBA_COLUMNS = [
    "Potential",
    "Pr_Er",
    "Pr_Gr",
    "Pr_Ly",
    "Pr_DC",
    "Pr_Mk",
    "Pr_Mo",
    "Pr_Ba",
]


def _logit(probabilities: pd.Series) -> np.ndarray:
    """log(p / (1 - p)), with 0 and 1 replaced by the nearest observed values."""
    p = probabilities.to_numpy(dtype=np.float64, copy=True)
    p[p == 0] = np.min(p[p > 0])
    p[p == 1] = np.max(p[p < 1])
    return np.log(p / (1 - p))


class HematoDataset(DownloadableDataset):
    """4,016 hematopoietic progenitor cells of Tusi et al. (2018), 7,397 genes.

    The library ``basal_bm1`` is removed (poor quality, following the authors).
    Cells keep their SPRING coordinates (cell attributes ``x_coord``, ``y_coord``)
    and their population balance analysis results (``meta``: potential and fate
    probabilities). The cell attribute ``fate_score`` is the continuous score
    ``logit(Pr_Gr) - logit(Pr_Er)`` (granulocytic vs erythroid fate), which scVI 0.5
    stored, truncated to integers, as the labels; labels are all 0 here.

    Parameters
    ----------
    save_path
        Folder of the counts; ``data.zip`` is extracted into its parent folder and
        provides ``bBM.filtered_gene_list.paper.txt`` and ``bBM.spring_and_pba.csv``.
    delayed_populating
        Do not read the files in the constructor.

    Examples
    --------
    >>> gene_dataset = HematoDataset()  # doctest: +SKIP
    """

    def __init__(
        self, save_path: str = "data/HEMATO/", delayed_populating: bool = False
    ):
        self.gene_names_filename = "bBM.filtered_gene_list.paper.txt"
        self.spring_and_pba_filename = "bBM.spring_and_pba.csv"
        self.cell_types_levels = [
            "Erythroid",
            "Granulocytic Neutrophil",
            "Lymphocytic",
            "Dendritic",
            "Megakaryocytic",
            "Monocytic",
            "Basophilic",
        ]
        super().__init__(
            urls=[
                "https://www.ncbi.nlm.nih.gov/geo/download/?acc=GSM2388072&format=file&"
                "file=GSM2388072%5Fbasal%5Fbone%5Fmarrow%2Eraw%5Fumifm%5Fcounts%2Ecsv%2Egz",
                "https://github.com/romain-lopez/scVI-reproducibility/raw/master/"
                "additional/data.zip",
            ],
            filenames=["bBM.raw_umifm_counts.csv.gz", "data.zip"],
            save_path=save_path,
            delayed_populating=delayed_populating,
        )

    def _side_files(self) -> None:
        """Extract ``data.zip`` into the parent of ``save_path`` if a file is missing."""
        side_files = [self.gene_names_filename, self.spring_and_pba_filename]
        if all(os.path.isfile(os.path.join(self.save_path, f)) for f in side_files):
            return
        archive = data_file(self.save_path, self.filenames[1])
        try:
            with zipfile.ZipFile(archive) as handle:
                handle.extractall(path=Path(self.save_path).parent)
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise unreadable(archive, error) from error

    def populate(self) -> None:
        """Merge counts with the SPRING / PBA table and fill the dataset."""
        logger.info("Preprocessing Hemato data")
        self._side_files()
        counts_path = data_file(self.save_path, self.filenames[0])
        spring_path = data_file(self.save_path, self.spring_and_pba_filename)
        genes_path = data_file(self.save_path, self.gene_names_filename)
        try:
            raw_counts = pd.read_csv(counts_path, compression="gzip")
            spring_and_pba = pd.read_csv(spring_path)
        except (OSError, EOFError, pd.errors.ParserError) as error:
            raise unreadable(counts_path, error) from error
        with open(genes_path) as handle:
            lines = [line.strip() for line in handle if line.strip()]
        gene_names = checked_names(lines, "gene names", genes_path)
        for table, path, columns in (
            (raw_counts, counts_path, ["cell_id", "library_id", *gene_names]),
            (
                spring_and_pba,
                spring_path,
                ["cell_id", "x_spring", "y_spring", *_PBA_COLUMNS],
            ),
        ):
            missing = [column for column in columns if column not in table.columns]
            if missing:
                raise ValueError(
                    f"{path} lacks {len(missing)} expected columns, e.g. {missing[:5]}."
                )
        raw_counts = raw_counts[raw_counts["library_id"] != "basal_bm1"]
        data = raw_counts.merge(
            spring_and_pba, how="inner", on="cell_id", validate="one_to_one"
        )
        expression_data = data[list(gene_names)].to_numpy()
        fate_score = _logit(data["Pr_Gr"]) - _logit(data["Pr_Er"])
        keep = nonempty_cells(expression_data)
        data = data[keep].reset_index(drop=True)
        self.meta = data[_PBA_COLUMNS]
        logger.info("Finished preprocessing Hemato data")
        self.populate_from_data(
            X=expression_data[keep],
            gene_names=gene_names,
            cell_attributes_dict={
                "x_coord": data["x_spring"].to_numpy(),
                "y_coord": data["y_spring"].to_numpy(),
                "fate_score": fate_score[keep],
            },
        )
