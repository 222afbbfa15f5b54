"""10x Genomics Cell Ranger outputs: matrix market folders, tar archives and HDF5 files."""

import logging
import os
import re
import shutil
from typing import List, Optional, Tuple

import h5py
import numpy as np
import pandas as pd
import scipy.io as sp_io
import scipy.sparse as sp_sparse

from ._download import _download
from ._loader_utils import (
    archive_stem,
    check_option,
    checked_names,
    data_file,
    extract_tar,
    nonempty_cells,
    read_pickle,
    unreadable,
)
from .dataset import CellMeasurement, DownloadableDataset

logger = logging.getLogger(__name__)

__all__ = [
    "Dataset10X",
    "BrainSmallDataset",
    "available_datasets",
    "dataset_to_group",
    "group_to_url_skeleton",
    "group_to_filename_skeleton",
    "available_specification",
]

available_datasets = {
    "1.1.0": [
        "frozen_pbmc_donor_a",
        "frozen_pbmc_donor_b",
        "frozen_pbmc_donor_c",
        "fresh_68k_pbmc_donor_a",
        "cd14_monocytes",
        "b_cells",
        "cd34",
        "cd56_nk",
        "cd4_t_helper",
        "regulatory_t",
        "naive_t",
        "memory_t",
        "cytotoxic_t",
        "naive_cytotoxic",
    ],
    "2.1.0": ["pbmc8k", "pbmc4k", "t_3k", "t_4k", "neuron_9k"],
    "3.0.0": [
        "pbmc_1k_protein_v3",
        "pbmc_10k_protein_v3",
        "malt_10k_protein_v3",
        "pbmc_1k_v2",
        "pbmc_1k_v3",
        "pbmc_10k_v3",
        "hgmm_1k_v2",
        "hgmm_1k_v3",
        "hgmm_5k_v3",
        "hgmm_10k_v3",
        "neuron_1k_v2",
        "neuron_1k_v3",
        "neuron_10k_v3",
        "heart_1k_v2",
        "heart_1k_v3",
        "heart_10k_v3",
    ],
    "3.1.0": ["5k_pbmc_protein_v3", "5k_pbmc_protein_v3_nextgem"],
}

dataset_to_group = {
    dataset_name: group
    for group, dataset_names in available_datasets.items()
    for dataset_name in dataset_names
}

_SAMPLES = "http://cf.10xgenomics.com/samples/cell-exp/{}/{}/{}_{}"
group_to_url_skeleton = {
    "1.1.0": _SAMPLES + "_gene_bc_matrices.tar.gz",
    "2.1.0": _SAMPLES + "_gene_bc_matrices.tar.gz",
    "3.0.0": _SAMPLES + "_feature_bc_matrix.tar.gz",
    "3.1.0": _SAMPLES + "_feature_bc_matrix.tar.gz",
}

group_to_filename_skeleton = {
    "1.1.0": "{}_gene_bc_matrices.tar.gz",
    "2.1.0": "{}_gene_bc_matrices.tar.gz",
    "3.0.0": "{}_feature_bc_matrix.tar.gz",
    "3.1.0": "{}_feature_bc_matrix.tar.gz",
}

available_specification = ["filtered", "raw"]

_GENE_EXPRESSION = "Gene Expression"
_ANTIBODY_CAPTURE = "Antibody Capture"
_BARCODE_SUFFIX = re.compile(r"-(\d+)$")


class Dataset10X(DownloadableDataset):
    """Output of 10x Genomics Cell Ranger, downloaded by name or read from disk.

    Reads a matrix market folder (``matrix.mtx`` with ``genes.tsv`` and
    ``barcodes.tsv`` for Cell Ranger v2; gzipped, with ``features.tsv.gz``, for v3),
    found anywhere under ``save_path``, after extracting the downloaded ``.tar.gz``
    archive if needed; or a Cell Ranger HDF5 file (``filename`` ending in ``.h5``,
    v2 or v3 layout). Features other than gene expression become cell measurements:
    ``Antibody Capture`` gives ``protein_expression`` (dense, columns
    ``protein_names``), any other type ``<type>`` (columns ``<type>_names``). The
    barcodes are the cell attribute ``barcodes`` and their ``-N`` suffix gives the
    batch (``N - 1``). Cells without gene counts are dropped.

    Parameters
    ----------
    dataset_name
        Name of a 10x dataset (see ``available_datasets``); its files go to
        ``save_path/dataset_name``. Overrides ``filename`` and ``url``.
    filename
        File (archive or ``.h5``) in ``save_path`` to read, for a custom dataset.
        None reads an extracted folder found under ``save_path``.
    save_path
        Folder of the data.
    url
        Where to download ``filename`` from when it is not in ``save_path``.
    type
        ``"filtered"`` (cells only) or ``"raw"`` (all barcodes) matrices.
    dense
        Store the counts as a dense array instead of a CSR matrix.
    measurement_names_column
        Column of the features file giving the feature names: 0 for identifiers,
        1 for symbols (which may repeat).
    remove_extracted_data
        Delete what was extracted from the archive once the data is loaded.
    delayed_populating
        Do not read the data in the constructor.

    Examples
    --------
    >>> tenX_dataset = Dataset10X("neuron_9k")  # doctest: +SKIP
    """

    def __init__(
        self,
        dataset_name: str = None,
        filename: str = None,
        save_path: str = "data/10X",
        url: str = None,
        type: str = "filtered",
        dense: bool = False,
        measurement_names_column: int = 0,
        remove_extracted_data: bool = False,
        delayed_populating: bool = False,
    ):
        self.barcodes = None
        self.dense = dense
        self.measurement_names_column = measurement_names_column
        self.remove_extracted_data = remove_extracted_data
        check_option("type", type, available_specification)
        if dataset_name is not None:
            check_option("dataset_name", dataset_name, list(dataset_to_group))
            if url is not None:
                logger.warning("dataset_name provided, manual url is disregarded.")
            if filename is not None:
                logger.warning("dataset_name provided, manual filename is disregarded.")
            group = dataset_to_group[dataset_name]
            url = group_to_url_skeleton[group].format(
                group, dataset_name, dataset_name, type
            )
            filename = group_to_filename_skeleton[group].format(type)
            save_path = os.path.join(save_path, dataset_name)
        elif filename is not None and url is not None:
            logger.debug("Loading 10X dataset with custom url and filename")
        elif filename is not None:
            logger.debug("Loading local 10X dataset with custom filename")
        else:
            logger.debug("Loading extracted local 10X dataset")
        super().__init__(
            urls=url,
            filenames=filename,
            save_path=save_path,
            delayed_populating=delayed_populating,
        )

    def populate(self) -> None:
        """Read the matrix, features and barcodes, split the features by type, fill."""
        logger.info("Preprocessing dataset")
        extracted: List[str] = []
        if self.filenames and self.filenames[0].endswith(".h5"):
            path = data_file(self.save_path, self.filenames[0])
            counts, features, barcodes = _read_h5(path)
            source = path
        else:
            if self.filenames:
                extracted = self._extract_if_needed()
            path_to_data, suffix = self.find_path_to_data()
            counts, features, barcodes = _read_mtx_folder(path_to_data, suffix)
            source = path_to_data
        gene_data, gene_names, Ys = self._split_features(counts, features, source)
        keep = nonempty_cells(gene_data)
        cell_attributes_dict = batch_indices = None
        if barcodes is not None:
            barcodes = _rows(barcodes, keep)
            cell_attributes_dict = {"barcodes": barcodes}
            batch_indices = _batches_from_barcodes(barcodes)
        for measurement in Ys:
            measurement.data = _rows(measurement.data, keep)
        logger.info("Finished preprocessing dataset")
        self.populate_from_data(
            X=_rows(gene_data, keep),
            batch_indices=batch_indices,
            gene_names=gene_names,
            cell_attributes_dict=cell_attributes_dict,
            Ys=Ys,
        )
        if extracted and self.remove_extracted_data:
            for extracted_path in extracted:
                logger.info("Removing extracted data at %s", extracted_path)
                if os.path.isdir(extracted_path):
                    shutil.rmtree(extracted_path)
                else:
                    os.remove(extracted_path)

    def _extract_if_needed(self) -> List[str]:
        """Extract the archive unless its folder exists; return what was created."""
        file_path = os.path.join(self.save_path, self.filenames[0])
        stem = archive_stem(file_path)
        if stem is None or os.path.exists(stem):
            return []
        data_file(self.save_path, self.filenames[0])
        logger.info("Extracting tar file")
        return extract_tar(file_path, self.save_path)

    def find_path_to_data(self) -> Tuple[str, str]:
        """Folder under ``save_path`` holding ``matrix.mtx(.gz)``, and ``".gz"`` or ``""``.

        Hidden files are ignored; folders are searched in sorted order.
        """
        for root, subdirs, files in os.walk(self.save_path):
            subdirs.sort()
            visible = {name for name in files if not name.startswith(".")}
            if "matrix.mtx.gz" in visible:
                return root, ".gz"
            if "matrix.mtx" in visible:
                return root, ""
        raise FileNotFoundError(
            f"No matrix.mtx(.gz) found in path ({self.save_path}). Put the Cell Ranger "
            "matrix folder (or its .tar.gz archive, with filename=) there."
        )

    def _split_features(
        self, counts: sp_sparse.csr_matrix, features: pd.DataFrame, source: str
    ) -> Tuple[object, np.ndarray, List[CellMeasurement]]:
        """Gene expression counts, gene names and the other feature types."""
        column = self.measurement_names_column
        if column not in features.columns:
            raise ValueError(
                f"measurement_names_column={column} but the features of {source} have "
                f"only {features.shape[1]} columns."
            )
        names = features[column].to_numpy()
        if features.shape[1] < 3:
            types = np.full(len(names), _GENE_EXPRESSION)
        else:
            types = features[2].to_numpy().astype(str)
        if _GENE_EXPRESSION not in types:
            raise ValueError(
                "When loading measurements, no 'Gene Expression' category was found "
                f"in {source} (feature types: {sorted(set(types))})."
            )
        gene_data, gene_names, Ys = None, None, []
        for feature_type in np.unique(types):
            mask = types == feature_type
            data = counts if mask.all() else counts[:, mask]
            type_names = checked_names(
                names[mask], f"{feature_type} feature names", source
            )
            if feature_type == _GENE_EXPRESSION:
                gene_data = data.toarray() if self.dense else data
                gene_names = type_names
                continue
            if feature_type == _ANTIBODY_CAPTURE:
                name, columns_attr_name = "protein_expression", "protein_names"
                data = data.toarray()
            else:
                name = feature_type.lower().replace(" ", "_")
                columns_attr_name = name + "_names"
                data = data.toarray() if self.dense else data
            Ys.append(CellMeasurement(name, data, columns_attr_name, type_names))
        return gene_data, gene_names, Ys


def _read_table(path: str) -> pd.DataFrame:
    """A headerless tab-separated file of strings (possibly gzipped)."""
    try:
        return pd.read_csv(
            path, sep="\t", header=None, dtype=str, keep_default_na=False
        )
    except (OSError, EOFError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise unreadable(path, error) from error


def _read_mtx_folder(
    folder: str, suffix: str
) -> Tuple[sp_sparse.csr_matrix, pd.DataFrame, Optional[np.ndarray]]:
    """(cells x features) CSR counts, features table and barcodes of a folder."""
    matrix_path = os.path.join(folder, "matrix.mtx" + suffix)
    try:
        counts = sp_sparse.csr_matrix(sp_io.mmread(matrix_path).T, dtype=np.float32)
    except (OSError, EOFError, ValueError, IndexError) as error:
        raise unreadable(matrix_path, error) from error
    features_path = _first_file(folder, ["features.tsv", "genes.tsv"], suffix)
    if features_path is None:
        raise FileNotFoundError(
            f"No features.tsv(.gz) or genes.tsv(.gz) file next to {matrix_path}; the "
            "feature (gene) names are needed."
        )
    features = _read_table(features_path)
    if features.shape[0] != counts.shape[1]:
        raise ValueError(
            f"{features_path} lists {features.shape[0]} features but {matrix_path} "
            f"has {counts.shape[1]}; the files do not belong together."
        )
    barcodes = None
    barcodes_path = _first_file(folder, ["barcodes.tsv"], suffix)
    if barcodes_path is not None:
        barcodes = _read_table(barcodes_path)[0].to_numpy().astype(str)
        if barcodes.shape[0] != counts.shape[0]:
            raise ValueError(
                f"{barcodes_path} lists {barcodes.shape[0]} barcodes but "
                f"{matrix_path} has {counts.shape[0]} cells."
            )
    return counts, features, barcodes


def _rows(values, keep: np.ndarray):
    """``values[keep]``, without a copy when every row is kept."""
    return values if keep.all() else values[keep]


def _first_file(folder: str, names: List[str], suffix: str) -> Optional[str]:
    """First existing ``name + suffix`` (then the other compression) in ``folder``."""
    other = "" if suffix else ".gz"
    for name in names:
        for candidate in (name + suffix, name + other):
            path = os.path.join(folder, candidate)
            if os.path.isfile(path):
                return path
    return None


def _read_h5(
    path: str,
) -> Tuple[sp_sparse.csr_matrix, pd.DataFrame, np.ndarray]:
    """(cells x features) CSR counts, features table and barcodes of a Cell Ranger
    HDF5 file: v3 (group ``matrix``) or v2 (one group per genome, side by side)."""
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise unreadable(path, error) from error
    with handle:
        try:
            if "matrix" in handle:
                group = handle["matrix"]
                counts, barcodes = _h5_matrix(group)
                feature_group = group["features"]
                features = pd.DataFrame(
                    {
                        0: feature_group["id"][...].astype(str),
                        1: feature_group["name"][...].astype(str),
                        2: feature_group["feature_type"][...].astype(str),
                    }
                )
            else:
                parts = [_h5_genome(handle[genome]) for genome in sorted(handle)]
                if not parts:
                    raise ValueError("no matrix group")
                barcodes = parts[0][2]
                if any(not np.array_equal(part[2], barcodes) for part in parts):
                    raise ValueError("genome groups have different barcodes")
                counts = sp_sparse.hstack([part[0] for part in parts], format="csr")
                features = pd.concat([part[1] for part in parts], ignore_index=True)
        except (KeyError, ValueError, OSError) as error:
            raise unreadable(path, error) from error
    return counts, features, barcodes


def _h5_matrix(group: h5py.Group) -> Tuple[sp_sparse.csr_matrix, np.ndarray]:
    """The CSC (features x cells) matrix of a group, as CSR cells x features."""
    n_features, n_cells = (int(size) for size in group["shape"][...])
    counts = sp_sparse.csr_matrix(
        (
            group["data"][...].astype(np.float32),
            group["indices"][...],
            group["indptr"][...],
        ),
        shape=(n_cells, n_features),
    )
    return counts, group["barcodes"][...].astype(str)


def _h5_genome(
    group: h5py.Group,
) -> Tuple[sp_sparse.csr_matrix, pd.DataFrame, np.ndarray]:
    counts, barcodes = _h5_matrix(group)
    features = pd.DataFrame(
        {0: group["genes"][...].astype(str), 1: group["gene_names"][...].astype(str)}
    )
    return counts, features, barcodes


def _batches_from_barcodes(barcodes: np.ndarray) -> Optional[np.ndarray]:
    """Batch ``N - 1`` of barcodes ending in ``-N`` (N >= 1); None otherwise."""
    matches = [_BARCODE_SUFFIX.search(barcode) for barcode in barcodes]
    if not all(matches):
        logger.info("Barcodes have no -N batch suffix; using a single batch.")
        return None
    suffixes = np.asarray([int(match.group(1)) for match in matches], dtype=np.int64)
    if suffixes.min() < 1:
        logger.info("Barcode suffixes start at 0; using them as batches.")
        return suffixes
    return suffixes - 1


class BrainSmallDataset(Dataset10X):
    """10x neuron_9k: 9,128 mouse brain cells with clusters and quality metrics.

    Labels are the Cell Ranger clusters minus one; the quality-control metrics are
    the cell attributes ``raw_qc`` and ``qc`` (columns ``qc_names``).

    Parameters
    ----------
    save_path
        Folder of ``brain_small_metadata.pickle``.
    save_path_10X
        Parent folder of the 10x data (``save_path_10X/neuron_9k``); defaults to
        ``save_path``.
    delayed_populating
        Do not read the data in the constructor.
    remove_extracted_data
        Delete what was extracted from the archive once the data is loaded.

    Examples
    --------
    >>> gene_dataset = BrainSmallDataset()  # doctest: +SKIP
    """

    def __init__(
        self,
        save_path: str = "data/",
        save_path_10X: str = None,
        delayed_populating: bool = False,
        remove_extracted_data: bool = False,
    ):
        self.metadata_save_path = os.path.abspath(save_path)
        super().__init__(
            dataset_name="neuron_9k",
            save_path=save_path_10X if save_path_10X is not None else save_path,
            remove_extracted_data=remove_extracted_data,
            delayed_populating=delayed_populating,
        )

    def download(self) -> None:
        """Fetch the 10x archive and the metadata pickle unless present."""
        super().download()
        _download(
            "https://github.com/YosefLab/scVI-data/raw/master/brain_small_metadata.pickle",
            self.metadata_save_path,
            "brain_small_metadata.pickle",
        )

    def populate(self) -> None:
        """Read the 10x data, then attach the clusters and QC metrics by barcode."""
        super().populate()
        path = data_file(self.metadata_save_path, "brain_small_metadata.pickle")
        metadata = read_pickle(path)
        if self.barcodes is None:
            raise ValueError(
                "The neuron_9k data has no barcodes.tsv; the metadata is matched to "
                "the cells by barcode."
            )
        clusters = metadata["clusters"]
        missing = ~pd.Index(self.barcodes).isin(clusters.index)
        if missing.any():
            raise ValueError(
                f"{int(missing.sum())} barcodes of the 10x data have no cluster in "
                f"{path}, e.g. {self.barcodes[missing][:3].tolist()}."
            )
        labels = clusters.loc[self.barcodes].to_numpy().ravel().astype(np.int64) - 1
        self.labels = labels
        self.initialize_mapped_attribute(
            "labels",
            "cell_types",
            np.asarray([f"cluster {label + 1}" for label in range(labels.max() + 1)]),
        )
        self.remap_categorical_attributes(["labels"])
        raw_qc = metadata["raw_qc"].loc[self.barcodes]
        self.initialize_cell_attribute("raw_qc", raw_qc)
        self.initialize_cell_attribute("qc", raw_qc.values)
        self.qc_names = raw_qc.columns
