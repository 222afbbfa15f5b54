"""Differential expression of genes and proteins for :class:`~scvi.inference.TotalPosterior`."""

from typing import List, Optional, Tuple, Union

import numpy as np
import pandas as pd
import torch

from scvi.inference._totalvi_helpers import feature_indices, protein_count_properties
from scvi.inference.posterior import get_bayes_factors

Selection = Union[List[bool], List[int], np.ndarray]


class TotalDifferentialExpressionMixin:
    """Bayes-factor differential expression on the joint gene and protein scales.

    Overrides the gene-only methods of :class:`~scvi.inference.Posterior`; relies on the
    posterior's ``sample_scale_from_batch`` (which calls ``get_harmonized_scale``),
    ``_inference`` and ``feature_names``.
    """

    @torch.no_grad()
    def differential_expression_stats(
        self, M_sampling: int = 100
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Sample the gene and protein scales of every cell of the posterior.

        Parameters
        ----------
        M_sampling
            Number of posterior samples per cell.

        Returns
        -------
        ``(scales, all_labels)``: samples ``(n_cells * M_sampling, n_genes + n_proteins)``
        (gene frequencies then normalised protein foreground), the ``M_sampling``
        samples of a cell being consecutive, and the label of the cell of each sample.
        """
        batch_size = max((self.data_loader.batch_size or 1) // M_sampling, 2)
        if self.nb_cells % batch_size == 1:
            batch_size += 1
        scales, all_labels = [], []
        for tensors in self.update({"batch_size": batch_size}):
            outputs = self._inference(tensors, M_sampling)
            scale = torch.cat(
                (outputs["px_"]["scale"], outputs["py_"]["scale"]), dim=-1
            )
            if M_sampling > 1:
                scale = scale.transpose(0, 1).reshape(-1, scale.shape[-1])
            scales.append(scale.cpu().numpy())
            all_labels.append(
                tensors[4].view(-1).repeat_interleave(M_sampling).cpu().numpy()
            )
        return np.concatenate(scales), np.concatenate(all_labels)

    @torch.no_grad()
    def differential_expression_score(
        self,
        idx1: Selection,
        idx2: Selection,
        batchid1: Optional[Union[List[int], np.ndarray]] = None,
        batchid2: Optional[Union[List[int], np.ndarray]] = None,
        genes: Optional[Union[List[str], np.ndarray]] = None,
        n_samples: int = None,
        sample_pairs: bool = True,
        M_permutation: int = None,
        all_stats: bool = True,
    ) -> Union[pd.DataFrame, np.ndarray]:
        """Bayes factors of differential expression of genes and proteins between two groups.

        As :meth:`Posterior.differential_expression_score`, on the joint scales of
        :meth:`get_harmonized_scale`: gene frequencies and normalised protein
        foreground.

        Parameters
        ----------
        idx1, idx2
            Boolean masks over the dataset's cells (or cell indices) of the two groups.
        batchid1, batchid2
            Batches the groups are decoded with; all batches when None.
        genes
            Genes and/or proteins to test, by name or joint column index; all when None.
        n_samples
            Cells drawn per group and batch (5000 when None).
        sample_pairs
            Compare ``M_permutation`` random pairs of samples.
        M_permutation
            Number of pairs (10000 when None).
        all_stats
            Return a table with more statistics instead of the Bayes factors alone.

        Returns
        -------
        When ``all_stats``, a DataFrame indexed by feature name, sorted by decreasing
        ``bayes1``, with the columns of :meth:`Posterior.differential_expression_score`
        plus ``feature_type`` (``"gene"`` or ``"protein"``); protein raw-count
        statistics are normalised by each cell's mean protein count. Otherwise the
        array of ``bayes1`` in column order.
        """
        n_samples = 5000 if n_samples is None else n_samples
        M_permutation = 10000 if M_permutation is None else M_permutation
        scale1 = self.sample_scale_from_batch(
            n_samples, batchid=batchid1, selection=idx1
        )
        scale2 = self.sample_scale_from_batch(
            n_samples, batchid=batchid2, selection=idx2
        )
        n_genes = self.gene_dataset.nb_genes
        columns = (
            np.arange(scale1.shape[1])
            if genes is None
            else feature_indices(self.gene_dataset, genes)
        )
        scales = np.concatenate([scale1, scale2])[:, columns]
        all_labels = np.repeat([0, 1], [scale1.shape[0], scale2.shape[0]])

        def bayes(cell_idx: int, permutation: bool) -> np.ndarray:
            return get_bayes_factors(
                scales,
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
        cells1, cells2 = self._selection(idx1), self._selection(idx2)
        gene_stats = self.gene_dataset.raw_counts_properties(cells1, cells2)
        protein_stats = protein_count_properties(self.gene_dataset, cells1, cells2)
        names = ("mean1", "mean2", "nonz1", "nonz2", "norm_mean1", "norm_mean2")
        for name, gene_values, protein_values in zip(names, gene_stats, protein_stats):
            joint = np.concatenate([np.asarray(gene_values).ravel(), protein_values])
            table[name] = joint[columns]
        table["scale1"] = scale1.mean(axis=0)[columns]
        table["scale2"] = scale2.mean(axis=0)[columns]
        table["feature_type"] = np.where(columns < n_genes, "gene", "protein")
        result = pd.DataFrame(table, index=self.feature_names()[columns])
        return result.sort_values(by="bayes1", ascending=False)

    def _selection(self, selection: Selection) -> np.ndarray:
        """Cell indices of a boolean mask over the dataset, or the given indices."""
        selection = np.asarray(selection)
        if selection.dtype == np.bool_:
            if selection.shape[0] != len(self.gene_dataset):
                raise ValueError(
                    f"A boolean cell mask needs one entry per cell of the dataset "
                    f"({len(self.gene_dataset)}), got {selection.shape[0]}."
                )
            return np.flatnonzero(selection)
        return selection.astype(np.int64).ravel()
