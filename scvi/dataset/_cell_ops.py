"""Cell-wise selection, filtering and cell-type operations for ``GeneExpressionDataset``."""

import logging
from typing import Dict, List, Tuple, Union

import numpy as np

from ._helpers import as_index, row_sums

logger = logging.getLogger(__name__)


class CellOpsMixin:
    """Cell subsetting and cell-type relabelling; every cell attribute follows."""

    def subsample_cells(self, size: Union[int, float] = 1.0) -> None:
        """Keep the cells with the largest total counts, in decreasing order.

        Parameters
        ----------
        size
            An int: number of cells to keep; a float: fraction of the cells.
        """
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
            new_n_cells = int(size)
        else:
            new_n_cells = int(size * self.nb_cells)
        if new_n_cells < 1:
            raise ValueError(
                f"subsample_cells(size={size}) would keep {new_n_cells} cells; keep "
                "at least one (an int count or a fraction in (0, 1])."
            )
        order = np.argsort(row_sums(self.X))[::-1][:new_n_cells]
        self.update_cells(order)

    def filter_cells_by_attribute(
        self, values_to_keep: Union[List, np.ndarray], on: str = "labels"
    ) -> None:
        """Keep the cells whose attribute ``on`` takes one of ``values_to_keep``."""
        mask = self._get_cells_filter_mask_by_attribute(
            values_to_keep, attribute_name=on, return_data=False
        )
        self.update_cells(mask)

    def filter_cells_by_count(self, min_count: int = 1) -> None:
        """Keep the cells whose total count is at least ``min_count``."""
        self.update_cells(row_sums(self.X) >= min_count)

    def filter_cell_types(
        self, cell_types: Union[List[str], List[int], np.ndarray]
    ) -> None:
        """Keep the cells of the given cell types.

        Parameters
        ----------
        cell_types
            Cell-type names or integer labels.
        """
        cell_types = np.atleast_1d(np.asarray(cell_types))
        if cell_types.dtype.kind in "US":
            labels_to_keep = self.cell_types_to_labels(cell_types)
        elif cell_types.dtype.kind in "iu":
            labels_to_keep = cell_types
        else:
            raise ValueError(
                "cell_types must be cell-type names (str) or labels (int), got "
                f"dtype {cell_types.dtype}."
            )
        mask = self._get_cells_filter_mask_by_attribute(
            labels_to_keep, attribute_name="labels", return_data=False
        )
        self.update_cells(mask)

    def _get_cells_filter_mask_by_attribute(
        self,
        attribute_values_to_keep: Union[List, np.ndarray],
        attribute_name: str = "labels",
        return_data: bool = True,
    ):
        """Mask of the cells whose attribute is in ``attribute_values_to_keep``."""
        if attribute_name not in self.cell_attribute_names:
            raise ValueError(
                f"{attribute_name!r} is not a registered cell attribute; choose one "
                f"of {sorted(self.cell_attribute_names)}."
            )
        values = np.asarray(getattr(self, attribute_name))
        mask = np.isin(values, attribute_values_to_keep)
        if mask.ndim > 1:
            mask = mask.reshape(mask.shape[0], -1).any(axis=1)
        if return_data:
            return self.X[mask], mask
        return mask

    def update_cells(self, subset_cells: Union[List[int], np.ndarray]) -> None:
        """Subset (or reorder) cells in place.

        ``X``, its registered versions and every cell attribute are subset, and the
        library-size priors are recomputed.

        Parameters
        ----------
        subset_cells
            Integer positions (any order) or a boolean mask over the cells.
        """
        index = as_index(subset_cells, self.nb_cells, "cells")
        n_kept = int(index.sum()) if index.dtype == bool else index.size
        if n_kept == 0:
            raise ValueError(
                "No cell would remain after this selection; check the values or "
                "thresholds used."
            )
        nb_cells_old = self.nb_cells
        for attribute_name in self.cell_attribute_names:
            setattr(self, attribute_name, getattr(self, attribute_name)[index])
        self.X = self.X[index]
        for version_name in self.dataset_versions:
            setattr(self, version_name, getattr(self, version_name)[index])
        logger.info("Downsampled from %d to %d cells", nb_cells_old, self.nb_cells)

    def cell_types_to_labels(
        self, cell_types: Union[List[str], np.ndarray]
    ) -> np.ndarray:
        """Integer labels of the given cell-type names (first match in ``cell_types``)."""
        names = np.atleast_1d(np.asarray(cell_types)).astype(str)
        known = np.asarray(self.cell_types).astype(str)
        labels = []
        for name in names.tolist():
            matches = np.flatnonzero(known == name)
            if matches.size == 0:
                raise ValueError(
                    f"Unknown cell type {name!r}; known cell types: {known.tolist()}."
                )
            labels.append(matches[0])
        return np.asarray(labels, dtype=np.int64)

    def _labels_of(self, cell_types) -> np.ndarray:
        """Labels from names or integer labels, validated against ``cell_types``."""
        values = np.atleast_1d(np.asarray(cell_types))
        if values.size == 0:
            raise ValueError("No cell types given.")
        if values.dtype.kind in "US":
            return self.cell_types_to_labels(values)
        labels = values.astype(np.int64)
        if labels.min() < 0 or labels.max() >= len(self.cell_types):
            raise ValueError(
                f"Labels {labels.tolist()} out of range for {len(self.cell_types)} "
                "cell types."
            )
        return labels

    def merge_cell_types(
        self,
        cell_types: Union[
            Tuple[int, ...], Tuple[str, ...], List[int], List[str], np.ndarray
        ],
        new_cell_type_name: str,
    ) -> None:
        """Relabel the cells of several cell types as one new cell type.

        The new type is appended to ``cell_types``; the merged names are kept with a
        ``#merged`` suffix (they have no cells left, so
        :meth:`remap_categorical_attributes` drops them).

        Parameters
        ----------
        cell_types
            Names or labels of the cell types to merge.
        new_cell_type_name
            Name of the merged cell type.
        """
        merged = self._labels_of(cell_types)
        new_label = len(self.cell_types)
        labels = self.labels.copy()
        labels[np.isin(labels, merged)] = new_label
        names = [str(name) for name in self.cell_types]
        for label in np.unique(merged):
            names[label] += "#merged"
        self.cell_types = np.asarray(names + [str(new_cell_type_name)])
        self.labels = labels

    def map_cell_types(
        self,
        cell_types_dict: Dict[Union[int, str, Tuple[int, ...], Tuple[str, ...]], str],
    ) -> None:
        """Merge cell types by a dict mapping old types (one or a tuple) to new names."""
        for cell_types, new_cell_type_name in cell_types_dict.items():
            self.merge_cell_types(cell_types, new_cell_type_name)

    def reorder_cell_types(self, new_order: Union[List[str], np.ndarray]) -> None:
        """Put the given cell types first in ``cell_types`` and relabel the cells.

        Cell types not listed follow in their current order; cell types without
        cells are dropped.

        Parameters
        ----------
        new_order
            Cell-type names, in the wanted order.
        """
        order = [str(name) for name in np.atleast_1d(np.asarray(new_order))]
        known = [str(name) for name in self.cell_types]
        unknown = [name for name in order if name not in known]
        if unknown:
            raise ValueError(f"Unknown cell types {unknown}; known: {known}.")
        order += [name for name in known if name not in order]
        position = {name: index for index, name in enumerate(order)}
        old_to_new = np.asarray([position[name] for name in known], dtype=np.int64)
        self.cell_types = np.asarray(order)
        self.labels = old_to_new[self.labels.astype(np.int64)]
        self.remap_categorical_attributes(["labels"])
