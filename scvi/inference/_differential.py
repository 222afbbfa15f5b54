"""Bayesian differential expression from posterior samples of the expression frequencies."""

import logging
import os
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import pandas as pd
import torch
from torch.utils.data.sampler import SubsetRandomSampler

logger = logging.getLogger(__name__)

_EPS = 1e-8


def get_bayes_factors(
    px_scale: Union[List[float], np.ndarray],
    all_labels: Union[List, np.ndarray],
    cell_idx: Union[int, str],
    other_cell_idx: Optional[Union[int, str]] = None,
    genes_idx: Union[List[int], np.ndarray] = None,
    M_permutation: int = 10000,
    permutation: bool = False,
    sample_pairs: bool = True,
) -> np.ndarray:
    """Log-odds, per gene, that population A's expression frequency exceeds population B's.

    With ``p = P(h_A >= h_B)`` estimated from posterior samples, the Bayes factor is
    ``log(p + 1e-8) - log(1 - p + 1e-8)``: positive when the gene is higher in A.

    Parameters
    ----------
    px_scale
        Samples of the expression frequencies, ``(n_samples, n_genes)``.
    all_labels
        Population of each sample, ``(n_samples,)``.
    cell_idx
        Population A.
    other_cell_idx
        Population B (all samples not in A when None).
    genes_idx
        Genes (column indices) to keep; all when None.
    M_permutation
        Number of random (A, B) pairs compared when ``sample_pairs`` is True.
    permutation
        Draw both members of each pair from A and B pooled (a null reference, whose
        factors should be near 0). Only used when ``sample_pairs`` is True.
    sample_pairs
        Compare ``M_permutation`` random pairs (drawn with :mod:`numpy.random`); when
        False, compare the i-th sample of A with the i-th sample of B (A and B must then
        have as many samples).

    Returns
    -------
    The Bayes factors, ``(n_genes,)``.
    """
    px_scale = np.asarray(px_scale)
    all_labels = np.asarray(all_labels).ravel()
    if px_scale.ndim != 2 or px_scale.shape[0] != all_labels.shape[0]:
        raise ValueError(
            f"px_scale must be (n_samples, n_genes) with one label per sample; got shape "
            f"{px_scale.shape} and {all_labels.shape[0]} labels."
        )
    in_a = all_labels == cell_idx
    in_b = all_labels == other_cell_idx if other_cell_idx is not None else ~in_a
    if not in_a.any() or not in_b.any():
        raise ValueError(
            f"Both populations need samples: {in_a.sum()} labelled {cell_idx!r}, "
            f"{in_b.sum()} in the other population."
        )
    if genes_idx is not None:
        px_scale = px_scale[:, genes_idx]
    samples_a, samples_b = px_scale[in_a], px_scale[in_b]
    if sample_pairs:
        n_a, n_b = samples_a.shape[0], samples_b.shape[0]
        if permutation:
            pooled = np.concatenate([samples_a, samples_b])
            first = np.random.choice(n_a + n_b, size=M_permutation)
            second = np.random.choice(n_a + n_b, size=M_permutation)
            samples_a, samples_b = pooled[first], pooled[second]
        else:
            first = np.random.choice(n_a, size=M_permutation)
            second = np.random.choice(n_b, size=M_permutation)
            samples_a, samples_b = samples_a[first], samples_b[second]
    elif samples_a.shape[0] != samples_b.shape[0]:
        raise ValueError(
            f"With sample_pairs=False both populations need as many samples "
            f"({samples_a.shape[0]} vs {samples_b.shape[0]}); use sample_pairs=True."
        )
    proba = np.mean(samples_a >= samples_b, axis=0)
    return np.log(proba + _EPS) - np.log(1 - proba + _EPS)


def _as_cell_indices(
    selection: Union[List, np.ndarray], n_cells: int, name: str
) -> np.ndarray:
    """Integer cell indices from a boolean mask (of length ``n_cells``) or an index list."""
    selection = np.asarray(selection)
    if selection.dtype == np.bool_:
        if selection.shape[0] != n_cells:
            raise ValueError(
                f"The boolean mask {name} has {selection.shape[0]} entries; it needs one per "
                f"cell of the dataset ({n_cells})."
            )
        return np.flatnonzero(selection)
    if selection.size and not np.issubdtype(selection.dtype, np.integer):
        raise TypeError(f"{name} must be a boolean mask or integer cell indices.")
    return selection.astype(np.int64).ravel()


class DifferentialExpressionMixin:
    """Differential expression methods of :class:`~scvi.inference.Posterior`.

    The methods compare the columns of the model's normalised outputs (the genes'
    expression frequencies here). A posterior whose outputs hold other columns (the
    proteins of totalVI) overrides the hooks :meth:`_scale_samples`,
    :meth:`_feature_columns`, :meth:`_count_properties` and
    :meth:`_feature_annotations`, and its ``get_harmonized_scale``.
    """

    def _scale_samples(
        self, tensors: List[torch.Tensor], n_samples: int
    ) -> torch.Tensor:
        """Normalised outputs of a minibatch at ``n_samples`` posterior samples."""
        x, _, _, batch_index, labels = tensors[:5]
        return self.model.get_sample_scale(
            x, batch_index=batch_index, y=labels, n_samples=n_samples
        )

    def _feature_columns(
        self, features: Optional[Union[List, np.ndarray]]
    ) -> np.ndarray:
        """Output columns selected by gene names or indices (all genes when None)."""
        if features is None:
            return np.arange(self.gene_dataset.nb_genes)
        return np.asarray(self.gene_dataset.genes_to_index(features))

    def _count_properties(
        self, cells1: np.ndarray, cells2: np.ndarray
    ) -> List[np.ndarray]:
        """Raw count summaries of every output column for two groups of cells.

        Returns ``mean1, mean2, nonz1, nonz2, norm_mean1, norm_mean2``, as the dataset's
        ``raw_counts_properties``.
        """
        properties = self.gene_dataset.raw_counts_properties(cells1, cells2)
        return [np.asarray(values).ravel() for values in properties]

    def _feature_annotations(
        self, columns: np.ndarray
    ) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        """Row index of a result table over ``columns``, and any extra columns it gets.

        The index holds the gene names (gene indices for a dataset without names).
        """
        gene_names = getattr(self.gene_dataset, "gene_names", None)
        index = columns if gene_names is None else np.asarray(gene_names)[columns]
        return index, {}

    @torch.no_grad()
    def differential_expression_stats(
        self, M_sampling: int = 100
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Sample the expression frequencies of every cell of the posterior.

        Parameters
        ----------
        M_sampling
            Number of posterior samples per cell.

        Returns
        -------
        ``(px_scales, all_labels)``: samples ``(n_cells * M_sampling, n_genes)``, the
        ``M_sampling`` samples of a cell being consecutive, and the label of the cell
        of each sample.
        """
        # Fewer cells per minibatch since each is sampled M_sampling times.
        batch_size = max((self.data_loader.batch_size or 1) // M_sampling, 2)
        if self.nb_cells % batch_size == 1:
            batch_size += 1
        px_scales, all_labels = [], []
        for tensors in self.update({"batch_size": batch_size}):
            scale = self._scale_samples(tensors, M_sampling)
            if M_sampling > 1:
                scale = scale.transpose(0, 1).reshape(-1, scale.shape[-1])
            px_scales.append(scale.cpu().numpy())
            labels = tensors[4].view(-1).repeat_interleave(M_sampling)
            all_labels.append(labels.cpu().numpy())
        return np.concatenate(px_scales), np.concatenate(all_labels)

    @torch.no_grad()
    def sample_scale_from_batch(
        self,
        n_samples: int,
        batchid: Optional[Union[List[int], np.ndarray]] = None,
        selection: Optional[Union[List, np.ndarray]] = None,
    ) -> np.ndarray:
        """Frequencies of random cells of a selection, decoded as if from given batches.

        For each batch in ``batchid``, ``n_samples`` cells are drawn with replacement
        (through :mod:`numpy.random`) from ``selection`` and their expression
        frequencies are decoded with the batch covariate set to it.

        Parameters
        ----------
        n_samples
            Number of cells drawn per batch.
        batchid
            Batches to decode with; all batches of the dataset when None.
        selection
            Boolean mask over the dataset's cells, or cell indices.

        Returns
        -------
        The frequencies, ``(n_samples * len(batchid), n_genes)``, batch after batch.
        """
        if selection is None:
            raise ValueError(
                "selection must be given: a boolean mask or indices of cells."
            )
        cells = _as_cell_indices(selection, len(self.gene_dataset), "selection")
        if cells.size == 0:
            raise ValueError("selection contains no cell.")
        if batchid is None:
            batchid = np.arange(self.gene_dataset.n_batches)
        px_scales = []
        for batch in batchid:
            drawn = np.random.choice(cells, n_samples)
            subset = self.update({"sampler": SubsetRandomSampler(drawn)})
            px_scales.append(subset.get_harmonized_scale(batch))
        return np.concatenate(px_scales)

    @torch.no_grad()
    def differential_expression_score(
        self,
        idx1: Union[List[bool], np.ndarray],
        idx2: Union[List[bool], np.ndarray],
        batchid1: Optional[Union[List[int], np.ndarray]] = None,
        batchid2: Optional[Union[List[int], np.ndarray]] = None,
        genes: Optional[Union[List[str], np.ndarray]] = None,
        n_samples: int = None,
        sample_pairs: bool = True,
        M_permutation: int = None,
        all_stats: bool = True,
    ) -> Union[pd.DataFrame, np.ndarray]:
        """Bayes factors of differential expression between two groups of cells.

        Expression frequencies of random cells of each group are sampled from the
        posterior (decoded under each batch of ``batchid1`` / ``batchid2``, which
        removes batch effects), then compared gene by gene with
        :func:`get_bayes_factors`.

        Parameters
        ----------
        idx1, idx2
            Boolean masks over the dataset's cells (or cell indices) of the two groups.
        batchid1, batchid2
            Batches the groups are decoded with; all batches when None.
        genes
            Names or indices of the genes to test; all genes when None.
        n_samples
            Cells drawn per group and batch (5000 when None).
        sample_pairs
            Compare ``M_permutation`` random pairs of samples (see
            :func:`get_bayes_factors`).
        M_permutation
            Number of pairs (10000 when None).
        all_stats
            Return a table with more statistics instead of the Bayes factors alone.

        Returns
        -------
        When ``all_stats``, a DataFrame indexed by gene name (gene index for a dataset
        without names) and sorted by decreasing
        ``bayes1`` with columns ``bayes1`` (group 1 vs 2), ``bayes1_permuted`` (pairs
        drawn from both groups pooled), ``bayes2`` (2 vs 1), ``bayes2_permuted``, the
        raw ``mean``, fraction of non-zero counts ``nonz`` and normalised mean
        ``norm_mean`` of each group (suffixes 1 and 2), and the mean sampled frequencies
        ``scale1``, ``scale2``. Otherwise the array of ``bayes1`` in gene order.
        """
        n_samples = 5000 if n_samples is None else n_samples
        M_permutation = 10000 if M_permutation is None else M_permutation
        n_cells = len(self.gene_dataset)
        cells1 = _as_cell_indices(idx1, n_cells, "idx1")
        cells2 = _as_cell_indices(idx2, n_cells, "idx2")
        px_scale1 = self.sample_scale_from_batch(
            n_samples, batchid=batchid1, selection=cells1
        )
        px_scale2 = self.sample_scale_from_batch(
            n_samples, batchid=batchid2, selection=cells2
        )
        columns = self._feature_columns(genes)
        px_scale = np.concatenate([px_scale1, px_scale2])[:, columns]
        all_labels = np.repeat([0, 1], [px_scale1.shape[0], px_scale2.shape[0]])

        def bayes(cell_idx: int, permutation: bool) -> np.ndarray:
            return get_bayes_factors(
                px_scale,
                all_labels,
                cell_idx=cell_idx,
                M_permutation=M_permutation,
                permutation=permutation,
                sample_pairs=sample_pairs,
            )

        bayes1 = bayes(0, False)
        if not all_stats:
            return bayes1
        table = {
            "bayes1": bayes1,
            "bayes1_permuted": bayes(0, True),
            "bayes2": bayes(1, False),
            "bayes2_permuted": bayes(1, True),
        }
        properties = self._count_properties(cells1, cells2)
        names = ("mean1", "mean2", "nonz1", "nonz2", "norm_mean1", "norm_mean2")
        for name, values in zip(names, properties):
            table[name] = values[columns]
        table["scale1"] = px_scale1.mean(axis=0)[columns]
        table["scale2"] = px_scale2.mean(axis=0)[columns]
        index, extra_columns = self._feature_annotations(columns)
        table.update(extra_columns)
        result = pd.DataFrame(table, index=index)
        return result.sort_values(by="bayes1", ascending=False)

    def _cluster_definitions(
        self, cell_labels: Optional[Union[List, np.ndarray]]
    ) -> Tuple[np.ndarray, List, np.ndarray]:
        """``(cluster values, cluster names, label of every cell)`` for the *_degenes methods."""
        n_cells = len(self.gene_dataset)
        if cell_labels is not None:
            cell_labels = np.asarray(cell_labels).ravel()
            if cell_labels.shape[0] != n_cells:
                raise ValueError(
                    f"cell_labels has {cell_labels.shape[0]} entries; it needs one per cell "
                    f"of the dataset ({n_cells})."
                )
            # Negative labels mark cells left out of the comparisons.
            clusters = np.unique(cell_labels[cell_labels >= 0])
            return clusters, list(clusters), cell_labels
        cell_types = getattr(self.gene_dataset, "cell_types", None)
        n_labels = self.gene_dataset.n_labels
        clusters = np.arange(n_labels)
        names = (
            list(cell_types)
            if cell_types is not None and len(cell_types) == n_labels
            else list(clusters)
        )
        return clusters, names, np.asarray(self.gene_dataset.labels).ravel()

    def _subset_mask(
        self, subset: Optional[Union[List[bool], np.ndarray]]
    ) -> np.ndarray:
        """Boolean mask over the dataset's cells (all cells when ``subset`` is None)."""
        n_cells = len(self.gene_dataset)
        if subset is None:
            return np.ones(n_cells, dtype=bool)
        mask = np.zeros(n_cells, dtype=bool)
        mask[_as_cell_indices(subset, n_cells, "subset")] = True
        return mask

    def _compare_groups(
        self,
        groups: List[Tuple[object, np.ndarray, np.ndarray]],
        min_cells: int,
        output_file: bool,
        save_dir: str,
        filename: str,
        **de_kwargs,
    ) -> Tuple[List[pd.DataFrame], List]:
        """Run :meth:`differential_expression_score` for each (name, mask1, mask2) with enough cells."""
        de_res, de_cluster = [], []
        for name, idx1, idx2 in groups:
            if idx1.sum() <= min_cells or idx2.sum() <= min_cells:
                logger.debug(
                    "Skipping cluster %s: not more than %d cells per group.",
                    name,
                    min_cells,
                )
                continue
            result = self.differential_expression_score(
                idx1=idx1, idx2=idx2, **de_kwargs
            )
            result["clusters"] = name
            de_res.append(result)
            de_cluster.append(name)
        if output_file:
            _write_excel(
                de_res,
                de_cluster,
                os.path.join(save_dir, f"differential_expression.{filename}.xlsx"),
            )
        return de_res, de_cluster

    @torch.no_grad()
    def one_vs_all_degenes(
        self,
        subset: Optional[Union[List[bool], np.ndarray]] = None,
        cell_labels: Optional[Union[List, np.ndarray]] = None,
        min_cells: int = 10,
        n_samples: int = None,
        sample_pairs: bool = False,
        M_permutation: int = None,
        output_file: bool = False,
        save_dir: str = "./",
        filename="one2all",
    ) -> Tuple[List[pd.DataFrame], List]:
        """Differential expression of each cluster against all other cells.

        Parameters
        ----------
        subset
            Boolean mask (or indices) of the dataset's cells to use; all when None.
        cell_labels
            Cluster of each cell of the dataset (negative values leave a cell out); the
            dataset's labels, named by its ``cell_types``, when None.
        min_cells
            A cluster is tested only if both groups have more than ``min_cells`` cells.
        n_samples, sample_pairs, M_permutation
            See :meth:`differential_expression_score`.
        output_file
            Also write the tables to ``<save_dir>/differential_expression.<filename>.xlsx``,
            one sheet per cluster (needs ``openpyxl`` or ``xlsxwriter``).
        save_dir, filename
            Where to write the spreadsheet.

        Returns
        -------
        ``(de_res, de_cluster)``: the tables of :meth:`differential_expression_score`
        (with a ``clusters`` column) and the names of the tested clusters.
        """
        clusters, names, labels = self._cluster_definitions(cell_labels)
        mask = self._subset_mask(subset) & ~(labels < 0)
        groups = [
            (name, mask & (labels == value), mask & (labels != value))
            for value, name in zip(clusters, names)
        ]
        return self._compare_groups(
            groups,
            min_cells,
            output_file,
            save_dir,
            filename,
            n_samples=n_samples,
            sample_pairs=sample_pairs,
            M_permutation=M_permutation,
        )

    @torch.no_grad()
    def within_cluster_degenes(
        self,
        cell_labels: Optional[Union[List, np.ndarray]] = None,
        min_cells: int = 10,
        states: Union[List[bool], np.ndarray] = [],  # noqa: B006 (0.5's default)
        batch1: Optional[Union[List[int], np.ndarray]] = None,
        batch2: Optional[Union[List[int], np.ndarray]] = None,
        subset: Optional[Union[List[bool], np.ndarray]] = None,
        n_samples: int = None,
        sample_pairs: bool = False,
        M_permutation: int = None,
        output_file: bool = False,
        save_dir: str = "./",
        filename: str = "within_cluster",
    ) -> Tuple[List[pd.DataFrame], List]:
        """Differential expression between two states of the cells, within each cluster.

        Parameters
        ----------
        cell_labels
            Cluster of each cell of the dataset (negative values leave a cell out); the
            dataset's labels, named by its ``cell_types``, when None.
        min_cells
            A cluster is tested only if both states have more than ``min_cells`` cells.
        states
            State of each cell of the dataset: group 1 where truthy, group 2 elsewhere
            (required; the empty default of scVI 0.5 is kept for the signature and is
            never modified).
        batch1, batch2
            Batches the two groups are decoded with (see
            :meth:`differential_expression_score`).
        subset
            Boolean mask (or indices) of the dataset's cells to use; all when None.
        n_samples, sample_pairs, M_permutation
            See :meth:`differential_expression_score`.
        output_file, save_dir, filename
            See :meth:`one_vs_all_degenes`.

        Returns
        -------
        ``(de_res, de_cluster)`` as :meth:`one_vs_all_degenes`.
        """
        n_cells = len(self.gene_dataset)
        if len(states) != n_cells:
            raise ValueError(
                f"states has {len(states)} entries; it needs one per cell of the dataset "
                f"({n_cells})."
            )
        states = np.asarray([bool(state) for state in states])
        clusters, names, labels = self._cluster_definitions(cell_labels)
        mask = self._subset_mask(subset)
        groups = [
            (
                name,
                mask & (labels == value) & states,
                mask & (labels == value) & ~states,
            )
            for value, name in zip(clusters, names)
        ]
        return self._compare_groups(
            groups,
            min_cells,
            output_file,
            save_dir,
            filename,
            batchid1=batch1,
            batchid2=batch2,
            n_samples=n_samples,
            sample_pairs=sample_pairs,
            M_permutation=M_permutation,
        )


def _write_excel(tables: List[pd.DataFrame], sheets: List, path: str) -> None:
    """Write one table per sheet of an Excel workbook."""
    try:
        writer = pd.ExcelWriter(path)
    except ImportError as error:
        raise ImportError(
            "Writing differential expression results to Excel needs openpyxl or "
            "xlsxwriter: `pip install openpyxl`, or call with output_file=False."
        ) from error
    with writer:
        for table, sheet in zip(tables, sheets):
            table.to_excel(writer, sheet_name=str(sheet))
