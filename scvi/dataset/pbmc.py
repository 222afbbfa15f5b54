"""PBMC datasets built from 10x Genomics data: the scVI PBMC benchmark and purified
populations (Zheng et al., 2017)."""

import logging
from typing import List, Union

import numpy as np
import pandas as pd

from ._loader_utils import data_file, read_pickle, unreadable
from .dataset import DownloadableDataset
from .dataset10X import Dataset10X

logger = logging.getLogger(__name__)

__all__ = ["PbmcDataset", "PurifiedPBMCDataset"]

_SCVI_DATA = "https://github.com/YosefLab/scVI-data/raw/master/"
_PBMC_10X = ("pbmc8k", "pbmc4k")
_BATCH_COLUMN = "batchpbmc4k"


class PbmcDataset(DownloadableDataset):
    """12,039 PBMCs from two 10x batches (pbmc8k, pbmc4k) of one healthy donor.

    Cells are those of the curated metadata (quality-filtered, clustered with
    Seurat), matched to the 10x data by batch and barcode (the 49 metadata barcodes
    ending in ``-11`` are left out, as in the original study). Genes are restricted
    to the 3,346 genes with bulk differential-expression results (``de_metadata``,
    one row per kept gene, in the dataset's gene order). Labels are the Seurat
    clusters, named by ``cell_types``. ``design``, ``raw_qc`` (columns
    ``qc_names``, values ``qc``), ``qc_pc`` and ``normalized_qc`` hold the
    metadata of the kept cells, row for row.

    Parameters
    ----------
    save_path
        Folder of the metadata files.
    save_path_10X
        Parent folder of the 10x data; defaults to ``save_path``.
    remove_extracted_data
        Delete what was extracted from the 10x archives once loaded.
    delayed_populating
        Do not read the data in the constructor.

    Examples
    --------
    >>> gene_dataset = PbmcDataset()  # doctest: +SKIP
    """

    def __init__(
        self,
        save_path: str = "data/",
        save_path_10X: str = None,
        remove_extracted_data: bool = False,
        delayed_populating: bool = False,
    ):
        self.save_path_10X = save_path_10X if save_path_10X is not None else save_path
        self.remove_extracted_data = remove_extracted_data
        self.barcodes = None
        super().__init__(
            urls=[_SCVI_DATA + "gene_info.csv", _SCVI_DATA + "pbmc_metadata.pickle"],
            filenames=["gene_info_pbmc.csv", "pbmc_metadata.pickle"],
            save_path=save_path,
            delayed_populating=delayed_populating,
        )

    def download(self) -> None:
        """Fetch the metadata and the two 10x archives unless present."""
        super().download()
        for name in _PBMC_10X:
            Dataset10X(name, save_path=self.save_path_10X, delayed_populating=True)

    def populate(self) -> None:
        """Merge the 10x batches, then select the curated cells and genes."""
        gene_info_path = data_file(self.save_path, "gene_info_pbmc.csv")
        try:
            self.de_metadata = pd.read_csv(gene_info_path, sep=",")
        except (OSError, pd.errors.ParserError) as error:
            raise unreadable(gene_info_path, error) from error
        metadata = read_pickle(data_file(self.save_path, "pbmc_metadata.pickle"))
        datasets = [
            Dataset10X(
                name,
                save_path=self.save_path_10X,
                remove_extracted_data=self.remove_extracted_data,
            )
            for name in _PBMC_10X
        ]
        self.populate_from_datasets(datasets)
        self._keep_de_genes()
        rows, cells = self._match_metadata_cells(metadata)
        self.update_cells(cells)
        self.labels = np.asarray(metadata["clusters"]).ravel()[rows]
        self.initialize_mapped_attribute(
            "labels", "cell_types", np.asarray(metadata["list_clusters"]).astype(str)
        )
        self.remap_categorical_attributes(["labels"])
        self.design = metadata["design"].iloc[rows]
        self.raw_qc = metadata["raw_qc"].iloc[rows]
        self.qc_names = self.raw_qc.columns
        self.qc = self.raw_qc.values
        self.qc_pc = np.asarray(metadata["qc_pc"])[rows]
        self.normalized_qc = metadata["normalized_qc"].iloc[rows]

    def _keep_de_genes(self) -> None:
        """Keep the genes with DE results; align ``de_metadata`` with them."""
        ensembl = self.de_metadata["ENSG"].astype(str).str.upper().to_numpy()
        available = set(self.gene_names.tolist())
        missing = int(np.sum([gene not in available for gene in ensembl]))
        if missing:
            logger.info("%d genes of the DE table are not in the 10x data", missing)
        self.filter_genes_by_attribute(ensembl)
        position = {gene: index for index, gene in enumerate(ensembl)}
        order = [position[gene] for gene in self.gene_names.tolist()]
        self.de_metadata = self.de_metadata.iloc[order].reset_index(drop=True)

    def _match_metadata_cells(self, metadata: dict):
        """Metadata rows kept and the matching cells, in metadata order.

        Rows are matched by (batch, barcode) when the design table gives the batch
        (``batchpbmc4k``), else by barcode alone, which must then be unambiguous.
        """
        barcodes = metadata["barcodes"].index.to_numpy().astype(str)
        design = metadata["design"]
        for name in ("design", "raw_qc", "qc_pc", "normalized_qc", "clusters"):
            if len(metadata[name]) != len(barcodes):
                raise ValueError(
                    f"The PBMC metadata table {name!r} has {len(metadata[name])} rows "
                    f"for {len(barcodes)} barcodes."
                )
        batch_known = _BATCH_COLUMN in design.columns
        own_barcodes = np.asarray(self.barcodes).astype(str)
        own_batches = self.batch_indices.ravel().astype(np.int64)
        if batch_known:
            lookup = {
                (batch, barcode): cell
                for cell, (batch, barcode) in enumerate(zip(own_batches, own_barcodes))
            }
            keys = list(
                zip(design[_BATCH_COLUMN].to_numpy().astype(np.int64), barcodes)
            )
        else:
            counts = pd.Series(own_barcodes).value_counts()
            ambiguous = counts.index[counts > 1]
            if len(ambiguous):
                raise ValueError(
                    f"{len(ambiguous)} barcodes occur in both 10x batches and the "
                    f"metadata has no {_BATCH_COLUMN!r} column to tell them apart."
                )
            lookup = {barcode: cell for cell, barcode in enumerate(own_barcodes)}
            keys = barcodes.tolist()
        rows, cells = [], []
        for row, (key, barcode) in enumerate(zip(keys, barcodes)):
            if barcode.endswith("11"):
                continue
            cell = lookup.get(key)
            if cell is not None:
                rows.append(row)
                cells.append(cell)
        logger.info(
            "Keeping %d cells of the metadata (%d rows)", len(cells), len(barcodes)
        )
        if not cells:
            raise ValueError("No cell of the metadata was found in the 10x data.")
        return np.asarray(rows, dtype=np.int64), np.asarray(cells, dtype=np.int64)


class PurifiedPBMCDataset(DownloadableDataset):
    """Sorted PBMC populations of Zheng et al. (2017), labelled by population.

    Parameters
    ----------
    save_path
        Parent folder of the 10x data (``save_path/<population>``).
    subset_datasets
        Positions in ``["cd4_t_helper", "regulatory_t", "naive_t", "memory_t",
        "cytotoxic_t", "naive_cytotoxic", "b_cells", "cd4_t_helper", "cd34",
        "cd56_nk", "cd14_monocytes"]`` of the populations to load; all by default.
        A population listed twice is loaded once.
    remove_extracted_data
        Delete what was extracted from the 10x archives once loaded.
    delayed_populating
        Do not read the data in the constructor.

    Examples
    --------
    >>> gene_dataset = PurifiedPBMCDataset()  # doctest: +SKIP
    """

    def __init__(
        self,
        save_path: str = "data/",
        subset_datasets: Union[List[int], np.ndarray] = None,
        remove_extracted_data: bool = False,
        delayed_populating: bool = False,
    ):
        self.dataset_names = np.asarray(
            [
                "cd4_t_helper",
                "regulatory_t",
                "naive_t",
                "memory_t",
                "cytotoxic_t",
                "naive_cytotoxic",
                "b_cells",
                "cd4_t_helper",
                "cd34",
                "cd56_nk",
                "cd14_monocytes",
            ]
        )
        if subset_datasets is not None:
            subset = np.atleast_1d(np.asarray(subset_datasets))
            if subset.size == 0 or subset.dtype.kind not in "iub":
                raise ValueError(
                    "subset_datasets must be a non-empty list of positions (or a "
                    f"boolean mask) into {self.dataset_names.tolist()}."
                )
            self.dataset_names = self.dataset_names[subset]
        self.remove_extracted_data = remove_extracted_data
        super().__init__(save_path=save_path, delayed_populating=delayed_populating)

    def download(self) -> None:
        """Fetch the 10x archive of each population unless present."""
        for name in dict.fromkeys(self.dataset_names.tolist()):
            Dataset10X(name, save_path=self.save_path, delayed_populating=True)

    def populate(self) -> None:
        """Load each population, label it by name, merge, drop empty genes/cells."""
        datasets = []
        for name in dict.fromkeys(self.dataset_names.tolist()):
            dataset = Dataset10X(
                name,
                save_path=self.save_path,
                remove_extracted_data=self.remove_extracted_data,
            )
            dataset.initialize_mapped_attribute(
                "labels", "cell_types", np.asarray([name], dtype="<U128")
            )
            datasets.append(dataset)
        self.populate_from_datasets(datasets)
        self.filter_genes_by_count()
        self.filter_cells_by_count()
