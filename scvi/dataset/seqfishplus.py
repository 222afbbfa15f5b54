"""seqFISH+ counts and cell centroids of the mouse brain (Eng et al., 2019)."""

import logging
import os
import zipfile

import pandas as pd

from ._loader_utils import (
    check_option,
    checked_names,
    data_file,
    drop_unnamed_index,
    numeric_values,
    unreadable,
)
from .dataset import CellMeasurement, DownloadableDataset

logger = logging.getLogger(__name__)

__all__ = ["SeqFishPlusDataset"]

_PREFIXES = {"subventricular cortex": "cortex_svz", "olfactory bulb": "ob"}


class SeqFishPlusDataset(DownloadableDataset):
    """seqFISH+ (10,000 genes imaged in single cells) of the mouse cortex and
    subventricular zone, or of the olfactory bulb.

    Cell centroids are the measurement ``coords`` (columns ``axis``: x, y); the cell
    id, the field of view and, for the cortex, the region are cell attributes. A
    first column with an empty header (a saved row index) is not read as a gene.

    Parameters
    ----------
    tissue_region
        ``"subventricular cortex"`` or ``"olfactory bulb"``.
    save_path
        Folder of ``seqfishplus.zip``; the tables are extracted to
        ``save_path/seqfishplus``.
    delayed_populating
        Do not read the files in the constructor.
    """

    def __init__(
        self,
        tissue_region: str = "subventricular cortex",
        save_path: str = "data",
        delayed_populating: bool = False,
    ):
        check_option("tissue_region", tissue_region, list(_PREFIXES))
        self.tissue_region = tissue_region
        self.file_prefix = _PREFIXES[tissue_region]
        super().__init__(
            urls="https://github.com/CaiGroup/seqFISH-PLUS/raw/master/sourcedata.zip",
            filenames="seqfishplus.zip",
            save_path=save_path,
            delayed_populating=delayed_populating,
        )

    def populate(self) -> None:
        """Extract the region's tables and fill the dataset."""
        counts_name = f"sourcedata/{self.file_prefix}_counts.csv"
        coordinates_name = f"sourcedata/{self.file_prefix}_cellcentroids.csv"
        archive = data_file(self.save_path, self.filenames[0])
        data_path = os.path.join(self.save_path, "seqfishplus")
        os.makedirs(data_path, exist_ok=True)
        try:
            with zipfile.ZipFile(archive) as handle:
                handle.extract(counts_name, path=data_path)
                handle.extract(coordinates_name, path=data_path)
        except (zipfile.BadZipFile, KeyError, OSError, EOFError) as error:
            raise unreadable(archive, error) from error
        counts_path = os.path.join(data_path, counts_name)
        coordinates_path = os.path.join(data_path, coordinates_name)
        try:
            counts = drop_unnamed_index(pd.read_csv(counts_path))
            coordinates = drop_unnamed_index(pd.read_csv(coordinates_path))
        except (OSError, pd.errors.ParserError) as error:
            raise unreadable(counts_path, error) from error
        X = numeric_values(counts, counts_path)
        if coordinates.shape[0] != X.shape[0]:
            raise ValueError(
                f"{coordinates_path} has {coordinates.shape[0]} cells but "
                f"{counts_path} has {X.shape[0]}."
            )
        attribute_columns = {"Cell ID": "cell_id", "Field of View": "field_of_view"}
        if self.tissue_region == "subventricular cortex":
            attribute_columns["Region"] = "region"
        missing = [
            column
            for column in ["X", "Y", *attribute_columns]
            if column not in coordinates.columns
        ]
        if missing:
            raise ValueError(f"{coordinates_path} lacks the columns {missing}.")
        self.populate_from_data(
            X=X,
            gene_names=checked_names(counts.columns, "gene names", counts_path),
            Ys=[
                CellMeasurement(
                    name="coords",
                    data=coordinates[["X", "Y"]].to_numpy(),
                    columns_attr_name="axis",
                    columns=["x", "y"],
                )
            ],
            cell_attributes_dict={
                attribute: coordinates[column].to_numpy()
                for column, attribute in attribute_columns.items()
            },
        )
