"""Storage, registries, population and minibatch collation of ``GeneExpressionDataset``."""

import logging
from collections import defaultdict
from functools import partial
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import scipy.sparse as sp_sparse
import torch
from torch.utils.data import Dataset

from scvi._settings import settings

from ._count_index import CountIndex
from ._helpers import (
    CellMeasurement,
    as_category_codes,
    as_code_column,
    as_count_matrix,
    check_counts,
    compute_library_size,
    n_rows,
    remap_categories,
)

logger = logging.getLogger(__name__)

_LIBRARY_ATTRIBUTES = ("local_means", "local_vars")


class DatasetCore(Dataset):
    """Core of :class:`scvi.dataset.GeneExpressionDataset`: data, registries, collation.

    Holds the (cells x genes) count matrix ``X`` and registries of the per-cell and
    per-gene attributes that follow ``X`` through subsetting. Create it empty, then
    fill it with a ``populate_from_*`` method.
    """

    def __init__(self):
        self._reset_registries()
        self._X = None
        self._batch_indices = None
        self._labels = None
        self.n_batches = None
        self.n_labels = None
        self.gene_names = None
        self.cell_types = None
        self.local_means = None
        self.local_vars = None
        self.protected_attributes = ["X"]

    def _reset_registries(self) -> None:
        self.dataset_versions = set()
        self.gene_attribute_names = set()
        self.cell_attribute_names = set()
        self.cell_categorical_attribute_names = set()
        self.attribute_mappings = defaultdict(list)
        self.cell_measurements_columns = dict()
        self._norm_X = None
        self._corrupted_X = None

    def __repr__(self) -> str:
        name = type(self).__name__
        if self.X is None:
            return f"{name} object (unpopulated)"
        storage = "sparse CSR" if sp_sparse.issparse(self.X) else "dense"
        lines = [
            f"{name} object with n_cells x nb_genes = {self.nb_cells} x "
            f"{self.nb_genes} ({storage})",
            f"    n_batches: {self.n_batches}, n_labels: {self.n_labels}",
        ]
        registries = [
            "dataset_versions",
            "gene_attribute_names",
            "cell_attribute_names",
            "cell_categorical_attribute_names",
        ]
        for registry in registries:
            names = sorted(getattr(self, registry))
            if names:
                lines.append(f"    {registry}: {', '.join(map(repr, names))}")
        if self.cell_measurements_columns:
            lines.append(
                f"    cell_measurements_columns: {self.cell_measurements_columns}"
            )
        return "\n".join(lines)

    # ------------------------------------------------------------------ torch Dataset

    def __len__(self) -> int:
        return self.nb_cells

    def __getitem__(self, idx: int) -> int:
        """Return the index itself; :meth:`collate_fn_base` does the gathering."""
        return idx

    def __getitems__(self, indices: List[int]) -> List[int]:
        """Return a whole minibatch of indices unchanged (one call per batch)."""
        return indices

    # ------------------------------------------------------------------ properties

    @property
    def X(self) -> Optional[Union[np.ndarray, sp_sparse.csr_matrix]]:
        """Count matrix (cells x genes): float32 ndarray or float32 CSR matrix."""
        return self._X

    @X.setter
    def X(self, X: Union[np.ndarray, sp_sparse.spmatrix]) -> None:
        X = as_count_matrix(X)
        if self._batch_indices is None:
            raise ValueError(
                "The dataset is not populated; fill it with `populate_from_data(X)` "
                "instead of assigning X."
            )
        if X.shape[0] != self._batch_indices.shape[0]:
            raise ValueError(
                f"New X has {X.shape[0]} cells but the dataset has "
                f"{self._batch_indices.shape[0]}; subset cells with `update_cells`."
            )
        self._X = X
        logger.info("Computing the library size for the new data")
        self.compute_library_size_batch()

    @property
    def nb_cells(self) -> int:
        """Number of cells (rows of ``X``); 0 when unpopulated."""
        return 0 if self._X is None else self._X.shape[0]

    @property
    def nb_genes(self) -> int:
        """Number of genes (columns of ``X``); 0 when unpopulated."""
        return 0 if self._X is None else self._X.shape[1]

    @property
    def batch_indices(self) -> Optional[np.ndarray]:
        """Batch of each cell, a (nb_cells, 1) uint16 array."""
        return self._batch_indices

    @batch_indices.setter
    def batch_indices(self, batch_indices: Union[List[int], np.ndarray]) -> None:
        codes = as_category_codes(batch_indices, "batch_indices")
        self.n_batches = len(np.unique(codes))
        self._batch_indices = codes

    @property
    def labels(self) -> Optional[np.ndarray]:
        """Label of each cell, a (nb_cells, 1) uint16 array."""
        return self._labels

    @labels.setter
    def labels(self, labels: Union[List[int], np.ndarray]) -> None:
        codes = as_category_codes(labels, "labels")
        self.n_labels = len(np.unique(codes))
        self._labels = codes

    @property
    def norm_X(self) -> Optional[Union[np.ndarray, sp_sparse.csr_matrix]]:
        """Library-normalized copy of ``X``, filled by ``normalize()``."""
        return self._norm_X

    @norm_X.setter
    def norm_X(self, norm_X: Union[np.ndarray, sp_sparse.csr_matrix]) -> None:
        self._norm_X = norm_X
        self.register_dataset_version("norm_X")

    @property
    def corrupted_X(self) -> Optional[Union[np.ndarray, sp_sparse.csr_matrix]]:
        """Corrupted copy of ``X`` for imputation benchmarks, filled by ``corrupt()``."""
        return self._corrupted_X

    @corrupted_X.setter
    def corrupted_X(self, corrupted_X: Union[np.ndarray, sp_sparse.csr_matrix]) -> None:
        self._corrupted_X = corrupted_X
        self.register_dataset_version("corrupted_X")

    # ------------------------------------------------------------------ population

    def populate_from_data(
        self,
        X: Union[np.ndarray, sp_sparse.csr_matrix],
        Ys: List[CellMeasurement] = None,
        batch_indices: Union[List[int], np.ndarray, sp_sparse.csr_matrix] = None,
        labels: Union[List[int], np.ndarray, sp_sparse.csr_matrix] = None,
        gene_names: Union[List[str], np.ndarray] = None,
        cell_types: Union[List[str], np.ndarray] = None,
        cell_attributes_dict: Dict[str, Union[List, np.ndarray]] = None,
        gene_attributes_dict: Dict[str, Union[List, np.ndarray]] = None,
        remap_attributes: bool = True,
    ) -> None:
        """Fill the dataset from a (nb_cells, nb_genes) count matrix.

        Parameters
        ----------
        X
            Raw counts, dense or sparse (stored as float32; sparse input as CSR).
        Ys
            Paired per-cell measurements (e.g. protein counts, coordinates).
        batch_indices
            Batch of each cell (integer codes); all 0 by default.
        labels
            Label of each cell (integer codes); all 0 by default.
        gene_names
            Name of each gene; stored upper-cased.
        cell_types
            Name of each label: ``cell_types[label]``. Defaults to ``["undefined"]``
            when neither labels nor cell types are given.
        cell_attributes_dict
            Extra per-cell attributes, by name.
        gene_attributes_dict
            Extra per-gene attributes, by name.
        remap_attributes
            Recode the categorical attributes to ``0..N-1`` at the end (dropping
            unused cell types).

        Notes
        -----
        Cells without counts are accepted (scVI 0.5 loaders filter them after
        populating) but logged as a warning; remove them with
        ``filter_cells_by_count()`` before training.
        """
        X = as_count_matrix(X)
        check_counts(X)
        n_cells, n_genes = X.shape
        for name, values in (("batch_indices", batch_indices), ("labels", labels)):
            if values is not None and np.size(values) != n_cells:
                raise ValueError(
                    f"{name} has {np.size(values)} entries but X has {n_cells} cells; "
                    f"give one {name} value per cell (row of X)."
                )
        if gene_names is not None and len(gene_names) != n_genes:
            raise ValueError(
                f"gene_names has {len(gene_names)} entries but X has {n_genes} genes; "
                "give one name per gene (column of X)."
            )
        batch_codes = as_category_codes(
            as_code_column(batch_indices, n_cells), "batch_indices"
        )
        label_codes = as_category_codes(as_code_column(labels, n_cells), "labels")
        if cell_types is not None and int(label_codes.max()) >= len(cell_types):
            raise ValueError(
                f"labels go up to {int(label_codes.max())} but cell_types has only "
                f"{len(cell_types)} names; cell_types[label] must name every label."
            )
        self._reset_registries()
        self._X = X
        self.initialize_cell_attribute("batch_indices", batch_codes, categorical=True)
        self.initialize_cell_attribute("labels", label_codes, categorical=True)
        self.compute_library_size_batch()
        if gene_names is not None:
            upper = np.char.upper(np.asarray(gene_names).astype(str))
            self.initialize_gene_attribute("gene_names", upper)
        else:
            self.gene_names = None
        if cell_types is not None:
            self.initialize_mapped_attribute(
                "labels", "cell_types", np.asarray(cell_types).astype(str)
            )
        elif labels is None:
            self.initialize_mapped_attribute(
                "labels", "cell_types", np.asarray(["undefined"])
            )
        else:
            self.cell_types = None
        for name, value in (cell_attributes_dict or {}).items():
            self.initialize_cell_attribute(name, value)
        for measurement in Ys or []:
            self.initialize_cell_measurement(measurement)
        for name, value in (gene_attributes_dict or {}).items():
            self.initialize_gene_attribute(name, value)
        if remap_attributes:
            self.remap_categorical_attributes()

    # ------------------------------------------------------------------ registries

    def remap_categorical_attributes(
        self, attributes_to_remap: Optional[List[str]] = None
    ) -> None:
        """Recode categorical cell attributes to ``0..N-1`` and re-index their mappings.

        Parameters
        ----------
        attributes_to_remap
            Attribute names; defaults to every registered categorical attribute.
        """
        if attributes_to_remap is None:
            attributes_to_remap = sorted(self.cell_categorical_attribute_names)
        for attribute_name in attributes_to_remap:
            logger.info("Remapping %s to [0,N]", attribute_name)
            mappings = {
                name: getattr(self, name)
                for name in self.attribute_mappings[attribute_name]
            }
            codes, _, new_mappings = remap_categories(
                getattr(self, attribute_name), mappings_dict=mappings
            )
            setattr(self, attribute_name, codes)
            for name, mapping in new_mappings.items():
                setattr(self, name, mapping)

    def register_dataset_version(self, version_name: str) -> None:
        """Register an alternative version of ``X`` (subset together with ``X``)."""
        self.dataset_versions.add(version_name)

    def _unprotected(self, name: str, suffix: str) -> str:
        if name in self.protected_attributes:
            logger.warning(
                "%s is a protected attribute name; storing it as %s instead.",
                name,
                name + suffix,
            )
            return name + suffix
        return name

    def initialize_cell_attribute(
        self, attribute_name: str, attribute: Any, categorical: bool = False
    ) -> None:
        """Store and register a per-cell attribute (subset together with the cells).

        Parameters
        ----------
        attribute_name
            Attribute name; protected names (``X``) get a ``_cell`` suffix.
        attribute
            One entry (or row) per cell: array, list or sparse matrix.
        categorical
            Register the attribute as categorical (integer codes, remapped by
            :meth:`remap_categorical_attributes`).
        """
        attribute_name = self._unprotected(attribute_name, "_cell")
        n_values = n_rows(attribute)
        if n_values != self.nb_cells:
            raise ValueError(
                f"Cell attribute {attribute_name!r} has {n_values} entries but the "
                f"dataset has {self.nb_cells} cells."
            )
        if sp_sparse.issparse(attribute):
            attribute = sp_sparse.csr_matrix(attribute)
        else:
            attribute = np.asarray(attribute)
        setattr(self, attribute_name, attribute)
        self.cell_attribute_names.add(attribute_name)
        if categorical:
            self.cell_categorical_attribute_names.add(attribute_name)

    def initialize_cell_measurement(self, measurement: CellMeasurement) -> None:
        """Register a :class:`CellMeasurement`: its data and its column names.

        The measurement object itself is not modified.
        """
        name = self._unprotected(measurement.name, "_cell")
        columns = np.asarray(measurement.columns)
        n_columns = measurement.data.shape[1] if measurement.data.ndim == 2 else 1
        if len(columns) != n_columns:
            raise ValueError(
                f"Measurement {name!r} has {n_columns} columns but "
                f"{len(columns)} column names."
            )
        self.initialize_cell_attribute(name, measurement.data)
        setattr(self, measurement.columns_attr_name, columns)
        self.cell_measurements_columns[name] = measurement.columns_attr_name

    def initialize_gene_attribute(self, attribute_name: str, attribute: Any) -> None:
        """Store and register a per-gene attribute (subset together with the genes).

        Parameters
        ----------
        attribute_name
            Attribute name; protected names (``X``) get a ``_gene`` suffix.
        attribute
            One entry per gene.
        """
        attribute_name = self._unprotected(attribute_name, "_gene")
        if n_rows(attribute) != self.nb_genes:
            raise ValueError(
                f"Gene attribute {attribute_name!r} has {n_rows(attribute)} entries "
                f"but the dataset has {self.nb_genes} genes."
            )
        setattr(self, attribute_name, np.asarray(attribute))
        self.gene_attribute_names.add(attribute_name)

    def initialize_mapped_attribute(
        self, source_attribute_name: str, mapping_name: str, mapping_values: Any
    ) -> None:
        """Register a lookup table for an integer categorical attribute.

        Parameters
        ----------
        source_attribute_name
            Categorical cell attribute, e.g. ``"labels"``.
        mapping_name
            Name of the table, e.g. ``"cell_types"``.
        mapping_values
            Table indexed by the codes: ``mapping_values[code]``.
        """
        source = np.asarray(getattr(self, source_attribute_name))
        if not np.issubdtype(source.dtype, np.integer):
            raise ValueError(
                f"Mapped attribute {source_attribute_name!r} must hold integer codes, "
                f"not {source.dtype}."
            )
        mapping_values = np.asarray(mapping_values)
        if source.size and int(source.max()) >= len(mapping_values):
            raise ValueError(
                f"{source_attribute_name} goes up to {int(source.max())} but "
                f"{mapping_name} has only {len(mapping_values)} entries; give one "
                f"{mapping_name} entry per code (codes start at 0)."
            )
        if mapping_name not in self.attribute_mappings[source_attribute_name]:
            self.attribute_mappings[source_attribute_name].append(mapping_name)
        setattr(self, mapping_name, mapping_values)

    def compute_library_size_batch(self) -> None:
        """Set ``local_means``/``local_vars``: per-batch mean/var of log library size."""
        local_means = np.zeros((self.nb_cells, 1), dtype=np.float32)
        local_vars = np.zeros((self.nb_cells, 1), dtype=np.float32)
        batches = self.batch_indices.ravel()
        for batch in np.unique(batches):
            in_batch = batches == batch
            local_means[in_batch], local_vars[in_batch] = compute_library_size(
                self.X[in_batch]
            )
        self.local_means = local_means
        self.local_vars = local_vars
        self.cell_attribute_names.update(_LIBRARY_ATTRIBUTES)

    # ------------------------------------------------------------------ collation

    def collate_fn_builder(
        self,
        add_attributes_and_types: Dict[str, type] = None,
        override: bool = False,
        corrupted: bool = False,
    ) -> Callable[[Union[List[int], np.ndarray]], Tuple[torch.Tensor, ...]]:
        """Build a collate function turning cell indices into a tuple of tensors.

        Parameters
        ----------
        add_attributes_and_types
            Extra cell attributes to return, mapped to their numpy dtype; they come
            after the defaults, in insertion order.
        override
            Return only the attributes of ``add_attributes_and_types``.
        corrupted
            Return ``corrupted_X`` instead of ``X``.

        Returns
        -------
        A callable mapping indices to ``(X, local_means, local_vars, batch_indices,
        labels, *extra)`` tensors (float32, float32, float32, int64, int64).
        """
        attributes_and_types = {}
        if not override:
            attributes_and_types = {
                "corrupted_X" if corrupted else "X": np.float32,
                "local_means": np.float32,
                "local_vars": np.float32,
                "batch_indices": np.int64,
                "labels": np.int64,
            }
        attributes_and_types.update(add_attributes_and_types or {})
        for name in attributes_and_types:
            if getattr(self, name, None) is None:
                hint = " (call corrupt() first)" if name == "corrupted_X" else ""
                raise ValueError(f"Attribute {name!r} is not set{hint}.")
        return partial(self.collate_fn_base, attributes_and_types)

    def collate_fn_base(
        self, attributes_and_types: Dict[str, type], batch: Union[List[int], np.ndarray]
    ) -> Tuple[torch.Tensor, ...]:
        """Gather attributes for the cells ``batch`` as tensors (sparse rows densified).

        Parameters
        ----------
        attributes_and_types
            Attribute names mapped to the numpy dtype of the returned tensor.
        batch
            Cell indices.
        """
        indices = np.asarray(batch, dtype=np.int64)
        tensors = []
        for name, dtype in attributes_and_types.items():
            values = getattr(self, name)
            if sp_sparse.issparse(values):
                chunk = values[indices].toarray()
            else:
                chunk = values[indices]
            tensor = torch.from_numpy(np.asarray(chunk, dtype=dtype))
            if name in ("X", "corrupted_X") and settings.fast_training:
                tensor._scvi_nonzero = self._count_index(name, values).gather(indices)
            tensors.append(tensor)
        return tuple(tensors)

    def _count_index(self, name: str, values: Any) -> CountIndex:
        """The (cached) non-zero index of the count matrix ``values`` stored as ``name``."""
        cache = self.__dict__.setdefault("_count_indexes", {})
        index = cache.get(name)
        if index is None or index.source is not values:
            index = cache[name] = CountIndex(values)
        return index
