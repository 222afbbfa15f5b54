"""The core dataset classes: :class:`GeneExpressionDataset` and its downloadable base.

The implementation lives in private modules (``_core``, ``_gene_ops``,
``_cell_ops``, ``_transforms``, ``_populate``, ``_export``, ``_helpers``,
``_download``); this module
is the public home of the classes and helpers, as in scVI 0.5.
"""

import logging
import os
from abc import ABC, abstractmethod
from typing import Iterable, Union

from ._cell_ops import CellOpsMixin
from ._core import DatasetCore
from ._download import DownloadError, _download
from ._export import ExportMixin
from ._gene_ops import GeneOpsMixin
from ._helpers import (
    CellMeasurement,
    compute_library_size,
    concatenate_arrays,
    remap_categories,
)
from ._populate import PopulateMixin
from ._transforms import TransformsMixin

logger = logging.getLogger(__name__)

__all__ = [
    "CellMeasurement",
    "DownloadError",
    "DownloadableDataset",
    "GeneExpressionDataset",
    "compute_library_size",
    "concatenate_arrays",
    "remap_categories",
]


class GeneExpressionDataset(
    PopulateMixin, GeneOpsMixin, CellOpsMixin, TransformsMixin, ExportMixin, DatasetCore
):
    """In-memory (cells x genes) count matrix with its cell and gene annotations.

    A :class:`torch.utils.data.Dataset` whose items are cell indices: ``len(ds)``
    is the number of cells, ``ds[i]`` is ``i`` and the function returned by
    :meth:`collate_fn_builder` turns a list of indices into tensors.

    Construct it empty, then fill it with :meth:`populate_from_data`,
    :meth:`populate_from_per_batch_list`, :meth:`populate_from_per_label_list` or
    :meth:`populate_from_datasets`. Per-cell and per-gene attributes are kept in
    registries (``cell_attribute_names``, ``gene_attribute_names``; categorical
    ones in ``cell_categorical_attribute_names`` with lookup tables in
    ``attribute_mappings``, e.g. ``labels`` -> ``cell_types``) so that filtering
    cells or genes subsets all of them together with ``X``.

    Main attributes: ``X`` (float32 ndarray or CSR), ``nb_cells``, ``nb_genes``,
    ``batch_indices`` and ``labels`` ((nb_cells, 1) uint16), ``n_batches``,
    ``n_labels``, ``gene_names`` (upper-cased), ``cell_types``, ``local_means`` and
    ``local_vars`` (per-batch mean and variance of the log library size, for each
    cell), ``norm_X`` and ``corrupted_X``.

    Examples
    --------
    >>> import numpy as np
    >>> ds = GeneExpressionDataset()
    >>> ds.populate_from_data(np.random.poisson(1.0, size=(50, 10)))
    >>> ds.nb_cells, ds.nb_genes
    (50, 10)
    """


class DownloadableDataset(GeneExpressionDataset, ABC):
    """A dataset that downloads its files, then fills itself with :meth:`populate`.

    Files already present in ``save_path`` are not downloaded again.

    Parameters
    ----------
    urls
        One URL or several.
    filenames
        File name of each URL in ``save_path`` (default ``dataset_{i}``); extra
        names (without URL) name local files.
    save_path
        Folder holding the files (made absolute).
    delayed_populating
        Do not call :meth:`populate` in the constructor.
    """

    def __init__(
        self,
        urls: Union[str, Iterable[str]] = None,
        filenames: Union[str, Iterable[str]] = None,
        save_path: str = "data/",
        delayed_populating: bool = False,
    ):
        super().__init__()
        self.urls = _as_list(urls)
        if filenames is None:
            self.filenames = [f"dataset_{i}" for i in range(len(self.urls))]
        else:
            self.filenames = _as_list(filenames)
        if len(self.filenames) < len(self.urls):
            raise ValueError(
                f"{len(self.urls)} urls but only {len(self.filenames)} filenames; "
                "give one filename per url."
            )
        self.save_path = os.path.abspath(save_path)
        self.download()
        if not delayed_populating:
            self.populate()

    def download(self) -> None:
        """Fetch each URL to ``save_path/filename`` unless that file exists."""
        for url, filename in zip(self.urls, self.filenames):
            _download(url, self.save_path, filename)

    @abstractmethod
    def populate(self) -> None:
        """Read the downloaded files and fill the dataset (``populate_from_*``)."""


def _as_list(values: Union[str, Iterable[str], None]) -> list:
    if values is None:
        return []
    if isinstance(values, (str, os.PathLike)):
        return [values]
    return list(values)
