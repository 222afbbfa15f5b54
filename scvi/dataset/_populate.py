"""Populating a ``GeneExpressionDataset`` from lists of matrices or other datasets."""

import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Dict, List, Optional, Union

import numpy as np
import scipy.sparse as sp_sparse

from ._helpers import (
    CellMeasurement,
    concatenate_arrays,
    remap_categories,
)

if TYPE_CHECKING:
    from .dataset import GeneExpressionDataset

logger = logging.getLogger(__name__)

Matrix = Union[sp_sparse.csr_matrix, np.ndarray]


def _stack(Xs: List[Matrix], kind: str) -> Matrix:
    """Row-stack per-group matrices after checking that they share their genes."""
    if len(Xs) == 0:
        raise ValueError(f"Xs is empty; give at least one per-{kind} matrix.")
    n_genes = [X.shape[1] for X in Xs]
    if len(set(n_genes)) != 1:
        raise ValueError(
            f"All per-{kind} matrices must have the same number of genes, got "
            f"{n_genes}."
        )
    return concatenate_arrays(list(Xs))


class PopulateMixin:
    """Alternative ``populate_from_*`` constructors."""

    def populate_from_per_batch_list(
        self,
        Xs: List[Union[sp_sparse.csr_matrix, np.ndarray]],
        labels_per_batch: Union[np.ndarray, List[np.ndarray]] = None,
        gene_names: Union[List[str], np.ndarray] = None,
        cell_types: Union[List[str], np.ndarray] = None,
        remap_attributes: bool = True,
    ) -> None:
        """Fill the dataset from one count matrix per batch (position = batch index).

        Parameters
        ----------
        Xs
            Per-batch (cells x genes) matrices with the same genes.
        labels_per_batch
            Per-batch arrays of cell labels.
        gene_names
            Gene names.
        cell_types
            Name of each label.
        remap_attributes
            Recode categorical attributes to ``0..N-1`` at the end.
        """
        X = _stack(Xs, "batch")
        batch_indices = np.concatenate(
            [np.full(batch.shape[0], i, dtype=np.int64) for i, batch in enumerate(Xs)]
        )
        labels = None
        if labels_per_batch is not None:
            labels = np.concatenate(
                [np.asarray(batch).ravel() for batch in labels_per_batch]
            ).astype(np.int64)
        self.populate_from_data(
            X=X,
            batch_indices=batch_indices,
            labels=labels,
            gene_names=gene_names,
            cell_types=cell_types,
            remap_attributes=remap_attributes,
        )

    def populate_from_per_label_list(
        self,
        Xs: List[Union[sp_sparse.csr_matrix, np.ndarray]],
        batch_indices_per_label: List[Union[List[int], np.ndarray]] = None,
        gene_names: Union[List[str], np.ndarray] = None,
        remap_attributes: bool = True,
    ) -> None:
        """Fill the dataset from one count matrix per label (position = label).

        Parameters
        ----------
        Xs
            Per-label (cells x genes) matrices with the same genes.
        batch_indices_per_label
            Per-label arrays of batch indices.
        gene_names
            Gene names.
        remap_attributes
            Recode categorical attributes to ``0..N-1`` at the end.
        """
        X = _stack(Xs, "label")
        labels = np.concatenate(
            [np.full(group.shape[0], i, dtype=np.int64) for i, group in enumerate(Xs)]
        )
        batch_indices = None
        if batch_indices_per_label is not None and len(batch_indices_per_label):
            batch_indices = np.concatenate(
                [np.asarray(group).ravel() for group in batch_indices_per_label]
            ).astype(np.int64)
        self.populate_from_data(
            X=X,
            batch_indices=batch_indices,
            labels=labels,
            gene_names=gene_names,
            remap_attributes=remap_attributes,
        )

    def populate_from_datasets(
        self,
        gene_datasets_list: List["GeneExpressionDataset"],
        shared_labels=True,
        mapping_reference_for_sharing: Dict[str, Optional[str]] = None,
    ) -> None:
        """Merge datasets on their common genes, concatenating their cells.

        Genes are the intersection of the ``gene_names``, in the order of the first
        dataset. Gene attributes come from the first dataset holding them. Cell
        attributes present in every dataset are merged: categorical ones either
        through a shared mapping (``labels`` through ``cell_types`` when
        ``shared_labels``) or by offsetting the codes of each dataset (e.g.
        ``batch_indices``, so each input keeps its own batches); measurements keep
        their common columns (sorted); other attributes are concatenated. The input
        datasets are not modified.

        Parameters
        ----------
        gene_datasets_list
            Datasets to merge, each with ``gene_names``.
        shared_labels
            Share labels through the ``cell_types`` mapping (same name, same label).
        mapping_reference_for_sharing
            Categorical attribute name -> mapping name used to share its codes.
        """
        datasets = list(gene_datasets_list)
        if not datasets:
            raise ValueError("gene_datasets_list is empty; give at least one dataset.")
        if any(dataset.gene_names is None for dataset in datasets):
            raise ValueError("Every dataset to merge needs gene_names.")
        sharing = dict(mapping_reference_for_sharing or {})
        if shared_labels:
            sharing["labels"] = "cell_types"
        common = set.intersection(*[set(d.gene_names.tolist()) for d in datasets])
        genes = [gene for gene in datasets[0].gene_names.tolist() if gene in common]
        if not genes:
            raise ValueError("The datasets have no gene name in common.")
        logger.info("Keeping %d genes", len(genes))
        gene_index = [dataset.genes_to_index(np.asarray(genes)) for dataset in datasets]
        self.populate_from_data(
            X=concatenate_arrays([d.X[:, idx] for d, idx in zip(datasets, gene_index)])
        )
        self._merge_gene_attributes(datasets, gene_index)
        library = {"local_means", "local_vars"}
        shared_cell_attributes = set.intersection(
            *[set(dataset.cell_attribute_names) for dataset in datasets]
        )
        for name in sorted(shared_cell_attributes - library):
            if name in datasets[0].cell_categorical_attribute_names:
                self._merge_categorical(datasets, name, sharing.get(name))
            elif name in datasets[0].cell_measurements_columns:
                self._merge_measurement(datasets, name)
            else:
                values = [getattr(dataset, name) for dataset in datasets]
                self.initialize_cell_attribute(name, concatenate_arrays(values))
        self.compute_library_size_batch()

    def _merge_gene_attributes(
        self, datasets: List["GeneExpressionDataset"], gene_index: List[np.ndarray]
    ) -> None:
        for dataset, index in reversed(list(zip(datasets, gene_index))):
            for name in dataset.gene_attribute_names:
                self.initialize_gene_attribute(name, getattr(dataset, name)[index])
                for mapping_name in dataset.attribute_mappings.get(name, []):
                    self.initialize_mapped_attribute(
                        name, mapping_name, getattr(dataset, mapping_name)
                    )

    def _merge_categorical(
        self,
        datasets: List["GeneExpressionDataset"],
        name: str,
        reference_mapping: Optional[str],
    ) -> None:
        mapping_names = sorted(
            set.intersection(
                *[set(dataset.attribute_mappings.get(name, [])) for dataset in datasets]
            )
        )
        remapped = []
        for dataset in datasets:
            mappings = {
                mapping: getattr(dataset, mapping)
                for mapping in dataset.attribute_mappings.get(name, [])
            }
            codes, _, new_mappings = remap_categories(
                getattr(dataset, name), mappings_dict=mappings
            )
            remapped.append((codes.astype(np.int64), new_mappings))
        merged_mappings = defaultdict(list)
        values = []
        if reference_mapping is not None:
            if reference_mapping not in mapping_names:
                raise ValueError(
                    f"Reference mapping {reference_mapping!r} for merging {name!r} is "
                    "not registered in all datasets."
                )
            for mapping in mapping_names:
                union = {}
                for _, new_mappings in remapped:
                    union.update(
                        (item, None) for item in new_mappings[mapping].tolist()
                    )
                merged_mappings[mapping] = list(union)
            reference = merged_mappings[reference_mapping]
            position = {item: index for index, item in enumerate(reference)}
            for codes, new_mappings in remapped:
                old_to_new = np.asarray(
                    [
                        position[item]
                        for item in new_mappings[reference_mapping].tolist()
                    ],
                    dtype=np.int64,
                )
                values.append(old_to_new[codes])
        else:
            offset = 0
            for codes, new_mappings in remapped:
                values.append(codes + offset)
                offset += int(codes.max()) + 1
                for mapping in mapping_names:
                    merged_mappings[mapping].extend(new_mappings[mapping].tolist())
        self.initialize_cell_attribute(
            name, concatenate_arrays(values), categorical=True
        )
        for stale in self.attribute_mappings.pop(name, []):
            if stale not in merged_mappings:
                setattr(self, stale, None)
        for mapping, mapping_values in merged_mappings.items():
            self.initialize_mapped_attribute(name, mapping, np.asarray(mapping_values))

    def _merge_measurement(
        self, datasets: List["GeneExpressionDataset"], name: str
    ) -> None:
        columns_name = datasets[0].cell_measurements_columns[name]
        columns = sorted(
            set.intersection(
                *[set(np.asarray(getattr(d, columns_name)).tolist()) for d in datasets]
            )
        )
        logger.info("Keeping %d columns in %s", len(columns), name)
        blocks = []
        for dataset in datasets:
            position = {
                column: index
                for index, column in enumerate(
                    np.asarray(getattr(dataset, columns_name)).tolist()
                )
            }
            index = np.asarray([position[column] for column in columns], dtype=np.int64)
            blocks.append(getattr(dataset, name)[:, index])
        self.initialize_cell_measurement(
            CellMeasurement(
                name=name,
                data=concatenate_arrays(blocks),
                columns_attr_name=columns_name,
                columns=np.asarray(columns),
            )
        )
