"""Datasets stored as ``.loom`` files (loompy), generic and published ones."""

import logging
from typing import List, Optional

import numpy as np

from ._loader_utils import checked_names, codes_and_names, data_file, unreadable
from .dataset import DownloadableDataset

logger = logging.getLogger(__name__)

__all__ = [
    "LoomDataset",
    "RetinaDataset",
    "PreFrontalCortexStarmapDataset",
    "FrontalCortexDropseqDataset",
]

_SCVI_DATA = "https://github.com/YosefLab/scVI-data/raw/master/"


class LoomDataset(DownloadableDataset):
    """Dataset read from a ``.loom`` file, optionally downloaded first.

    The main matrix (genes x cells) is transposed to cells x genes; cells without
    counts are removed. Row attributes become gene attributes (the gene names one
    becomes ``gene_names``), column attributes become cell attributes (the batch and
    label ones become ``batch_indices`` and ``labels``) and global attributes go to
    ``global_attributes_dict``, except the cell-type names, which become
    ``cell_types``. Labels given as names are coded by their position in
    ``cell_types`` when the file has them, else in sorted order.

    Parameters
    ----------
    filename
        File name in ``save_path``.
    save_path
        Folder of the file.
    url
        Where to download the file from when it is not in ``save_path``.
    batch_indices_attribute_name
        Column attribute with the batches.
    labels_attribute_name
        Column attribute with the labels.
    encode_labels_name_into_int
        Code label names by their position in the cell-type names (done whenever
        the labels are names; kept for compatibility).
    gene_names_attribute_name
        Row attribute with the gene names.
    cell_types_attribute_name
        Global attribute with the cell-type names.
    delayed_populating
        Do not read the file in the constructor.

    Examples
    --------
    >>> local_loom_dataset = LoomDataset(
    ...     "osmFISH_SScortex_mouse_all_cell.loom", save_path="data/")  # doctest: +SKIP
    """

    # Cell-type names used when the file has none (set by subclasses).
    _default_cell_types: Optional[List[str]] = None

    def __init__(
        self,
        filename: str,
        save_path: str = "data/",
        url: str = None,
        batch_indices_attribute_name: str = "BatchID",
        labels_attribute_name: str = "ClusterID",
        encode_labels_name_into_int: bool = False,
        gene_names_attribute_name: str = "Gene",
        cell_types_attribute_name: str = "CellTypes",
        delayed_populating: bool = False,
    ):
        self.batch_indices_attribute_name = batch_indices_attribute_name
        self.labels_attribute_name = labels_attribute_name
        self.encode_labels_name_into_int = encode_labels_name_into_int
        self.gene_names_attribute_name = gene_names_attribute_name
        self.cell_types_attribute_name = cell_types_attribute_name
        self.global_attributes_dict = None
        super().__init__(
            urls=url,
            filenames=filename,
            save_path=save_path,
            delayed_populating=delayed_populating,
        )

    def populate(self) -> None:
        """Read the matrix and the attributes and fill the dataset."""
        logger.info("Preprocessing dataset")
        path = data_file(self.save_path, self.filenames[0])
        try:
            import loompy  # imported here: it starts numba, which changes torch's threads

            connection = loompy.connect(path, mode="r", validate=False)
        except (OSError, KeyError, ValueError) as error:
            raise unreadable(path, error) from error
        with connection as ds:
            try:
                data = np.asarray(ds[:, :]).T
                row_attributes = {name: ds.ra[name] for name in ds.ra.keys()}
                column_attributes = {name: ds.ca[name] for name in ds.ca.keys()}
                global_attributes = {name: ds.attrs[name] for name in ds.attrs.keys()}
            except (OSError, KeyError, ValueError) as error:
                raise unreadable(path, error) from error
        select = data.sum(axis=1) > 0
        if not select.all():
            logger.warning("Removing non-expressing cells")
        gene_names = row_attributes.pop(self.gene_names_attribute_name, None)
        if gene_names is None:
            logger.warning(
                "%s has no row attribute %r (row attributes: %s); genes are unnamed.",
                path,
                self.gene_names_attribute_name,
                sorted(row_attributes),
            )
        else:
            gene_names = checked_names(gene_names, "gene names", path)
        batch_indices = column_attributes.pop(self.batch_indices_attribute_name, None)
        labels = column_attributes.pop(self.labels_attribute_name, None)
        cell_types = global_attributes.pop(self.cell_types_attribute_name, None)
        if cell_types is None:
            cell_types = self._default_cell_types
        if global_attributes:
            self.global_attributes_dict = global_attributes
        if labels is not None:
            labels, cell_types = self._label_codes(labels, cell_types, path)
        logger.info("Finished preprocessing dataset")
        self.populate_from_data(
            X=data[select],
            batch_indices=None if batch_indices is None else batch_indices[select],
            labels=None if labels is None else labels[select],
            gene_names=gene_names,
            cell_types=cell_types,
            cell_attributes_dict={
                name: value[select] for name, value in column_attributes.items()
            }
            or None,
            gene_attributes_dict=row_attributes or None,
        )

    @staticmethod
    def _label_codes(labels: np.ndarray, cell_types, path: str):
        """Integer labels (and cell-type names) from a label column.

        Numeric labels are codes; label names are coded by their position in
        ``cell_types`` when given, else in sorted order.
        """
        labels = np.asarray(labels).ravel()
        if cell_types is not None:
            cell_types = np.asarray(cell_types).astype(str)
        if labels.dtype.kind not in "OUS":
            return labels, cell_types
        if cell_types is None:
            return codes_and_names(labels)
        position = {name: code for code, name in enumerate(cell_types)}
        names = labels.astype(str).tolist()
        unknown = sorted(set(names) - set(position))
        if unknown:
            raise ValueError(
                f"{path}: labels {unknown[:5]} are not among the cell types "
                f"{cell_types.tolist()}."
            )
        return np.asarray([position[name] for name in names], np.int64), cell_types


class RetinaDataset(LoomDataset):
    """Retinal bipolar cells of Shekhar et al. (2016): 27,499 cells, 13,166 genes.

    Two batches and 15 cell types annotated by the authors.

    Parameters
    ----------
    save_path
        Folder of ``retina.loom``.
    delayed_populating
        Do not read the file in the constructor.

    Examples
    --------
    >>> gene_dataset = RetinaDataset()  # doctest: +SKIP
    """

    _default_cell_types = [
        "RBC",
        "MG",
        "BC5A",
        "BC7",
        "BC6",
        "BC5C",
        "BC1A",
        "BC3B",
        "BC1B",
        "BC2",
        "BC5D",
        "BC3A",
        "BC5B",
        "BC4",
        "BC8_9",
    ]

    def __init__(self, save_path: str = "data/", delayed_populating: bool = False):
        super().__init__(
            filename="retina.loom",
            save_path=save_path,
            url=_SCVI_DATA + "retina.loom",
            delayed_populating=delayed_populating,
        )


class PreFrontalCortexStarmapDataset(LoomDataset):
    """STARmap mouse prefrontal cortex (Wang et al., 2018): 3,704 cells, 166 genes.

    Labels come from the ``Clusters`` names; the spatial coordinates are kept as
    ``Spatial_coordinates`` and as the cell attributes ``x_coord`` and ``y_coord``.

    Parameters
    ----------
    save_path
        Folder of ``mpfc-starmap.loom``.
    delayed_populating
        Do not read the file in the constructor.
    """

    def __init__(self, save_path: str = "data/", delayed_populating: bool = False):
        super().__init__(
            filename="mpfc-starmap.loom",
            save_path=save_path,
            url=_SCVI_DATA + "mpfc-starmap.loom",
            labels_attribute_name="Clusters",
            encode_labels_name_into_int=True,
            delayed_populating=delayed_populating,
        )

    def populate(self) -> None:
        """Read the file, then split the spatial coordinates into x and y."""
        super().populate()
        coordinates = getattr(self, "Spatial_coordinates", None)
        if coordinates is None:
            raise ValueError(
                "The STARmap file has no 'Spatial_coordinates' column attribute."
            )
        self.initialize_cell_attribute("x_coord", coordinates[:, 0])
        self.initialize_cell_attribute("y_coord", coordinates[:, 1])


class FrontalCortexDropseqDataset(LoomDataset):
    """Mouse frontal cortex cells of Saunders et al. (2018), Drop-seq.

    The 71,639 annotated frontal cortex cells (7,611 genes) of the 690,000 cells of
    the study. Cell types are ordered so that cortical layers come in order.

    Parameters
    ----------
    save_path
        Folder of ``fc-dropseq.loom``.
    genes_to_keep
        Keep only these genes, in this order; all genes by default.
    delayed_populating
        Do not read the file in the constructor.
    """

    _LAYER_ORDER = [5, 6, 3, 2, 4, 0, 1, 8, 7, 9, 10, 11, 12, 13]

    def __init__(
        self,
        save_path: str = "data/",
        genes_to_keep: Optional[List[str]] = None,
        delayed_populating: bool = False,
    ):
        self.genes_to_keep = genes_to_keep
        super().__init__(
            filename="fc-dropseq.loom",
            save_path=save_path,
            url=_SCVI_DATA + "fc-dropseq.loom",
            labels_attribute_name="Clusters",
            delayed_populating=delayed_populating,
        )

    def populate(self) -> None:
        """Read the file, keep the requested genes, reorder the cell types."""
        super().populate()
        if self.genes_to_keep is not None:
            self.reorder_genes(self.genes_to_keep, drop_omitted_genes=True)
        names = list(self.cell_types)
        self.reorder_cell_types(
            [names[index] for index in self._LAYER_ORDER if index < len(names)]
        )
