"""Differential expression of genes and proteins for :class:`~scvi.inference.TotalPosterior`."""

from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import pandas as pd
import torch

from scvi.inference._differential import DifferentialExpressionMixin
from scvi.inference._totalvi_helpers import feature_indices, protein_count_properties

Selection = Union[List[bool], List[int], np.ndarray]


class TotalDifferentialExpressionMixin(DifferentialExpressionMixin):
    """Bayes-factor differential expression on the joint gene and protein scales.

    Runs the methods of :class:`~scvi.inference.Posterior` on totalVI's joint outputs
    (gene frequencies, then normalised protein foreground) through the hooks of
    :class:`~scvi.inference._differential.DifferentialExpressionMixin`; relies on the
    posterior's ``get_harmonized_scale``, ``_inference`` and ``feature_names``.
    """

    def _scale_samples(
        self, tensors: List[torch.Tensor], n_samples: int
    ) -> torch.Tensor:
        """Gene frequencies and normalised protein foreground at ``n_samples`` samples."""
        outputs = self._inference(tensors, n_samples)
        return torch.cat((outputs["px_"]["scale"], outputs["py_"]["scale"]), dim=-1)

    def _feature_columns(
        self, features: Optional[Union[List, np.ndarray]]
    ) -> np.ndarray:
        """Joint columns selected by gene or protein names or indices (all when None)."""
        if features is None:
            return np.arange(len(self.feature_names()))
        return feature_indices(self.gene_dataset, features)

    def _count_properties(
        self, cells1: np.ndarray, cells2: np.ndarray
    ) -> List[np.ndarray]:
        """Raw count summaries of the genes, then of the proteins.

        Protein statistics are those of
        :func:`~scvi.inference._totalvi_helpers.protein_count_properties`.
        """
        gene_stats = self.gene_dataset.raw_counts_properties(cells1, cells2)
        protein_stats = protein_count_properties(self.gene_dataset, cells1, cells2)
        return [
            np.concatenate([np.asarray(gene_values).ravel(), protein_values])
            for gene_values, protein_values in zip(gene_stats, protein_stats)
        ]

    def _feature_annotations(
        self, columns: np.ndarray
    ) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        """Feature names as the index, and a ``feature_type`` column."""
        feature_type = np.where(columns < self.gene_dataset.nb_genes, "gene", "protein")
        return self.feature_names()[columns], {"feature_type": feature_type}

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
        return super().differential_expression_stats(M_sampling)

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
        return super().differential_expression_score(
            idx1,
            idx2,
            batchid1=batchid1,
            batchid2=batchid2,
            genes=genes,
            n_samples=n_samples,
            sample_pairs=sample_pairs,
            M_permutation=M_permutation,
            all_stats=all_stats,
        )
