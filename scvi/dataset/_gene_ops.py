"""Gene-wise selection, filtering and reordering for ``GeneExpressionDataset``."""

import logging
from typing import List, Optional, Union

import numpy as np
from sklearn.preprocessing import StandardScaler

from ._helpers import as_index, row_sums

logger = logging.getLogger(__name__)


class GeneOpsMixin:
    """Gene subsetting operations; every gene attribute and X version follows."""

    def subsample_genes(
        self,
        new_n_genes: Optional[int] = None,
        new_ratio_genes: Optional[float] = None,
        subset_genes: Optional[Union[List[int], List[bool], np.ndarray]] = None,
    ) -> None:
        """Keep the most variable genes, a fraction of them, or an explicit subset.

        Exactly as scVI 0.5: ``new_ratio_genes`` takes precedence over
        ``new_n_genes``, which takes precedence over ``subset_genes``. Genes selected
        by variance are ordered by decreasing variance of their counts. Out-of-range
        sizes leave the dataset unchanged (logged). Cells left without counts are
        then removed.

        Parameters
        ----------
        new_n_genes
            Number of highest-variance genes to keep (``1 <= n < nb_genes``).
        new_ratio_genes
            Fraction of genes to keep (``0 < ratio < 1``), highest variance first.
        subset_genes
            Indices or boolean mask of the genes to keep.
        """
        if new_ratio_genes is not None:
            if 0 < new_ratio_genes < 1:
                new_n_genes = int(new_ratio_genes * self.nb_genes)
            else:
                logger.info(
                    "Not subsampling. Expecting 0 < (new_ratio_genes=%s) < 1.",
                    new_ratio_genes,
                )
                return
        if new_n_genes is not None:
            if new_n_genes >= self.nb_genes or new_n_genes < 1:
                logger.info(
                    "Not subsampling. Expecting 1 <= (new_n_genes=%s) < nb_genes=%d.",
                    new_n_genes,
                    self.nb_genes,
                )
                return
            scaler = StandardScaler(with_mean=False)
            scaler.fit(self.X.astype(np.float64))
            subset_genes = np.argsort(scaler.var_)[::-1][:new_n_genes]
        if subset_genes is None:
            logger.info("Not subsampling. No parameter given.")
            return
        self.update_genes(np.asarray(subset_genes))

    def filter_genes_by_attribute(
        self, values_to_keep: Union[List, np.ndarray], on: str = "gene_names"
    ) -> None:
        """Keep the genes whose attribute ``on`` takes one of ``values_to_keep``.

        Gene names are matched case-insensitively (they are stored upper-cased).
        """
        mask = self._get_genes_filter_mask_by_attribute(
            values_to_keep, attribute_name=on, return_data=False
        )
        self.update_genes(mask)

    def filter_genes_by_count(self, min_count: int = 1) -> None:
        """Keep the genes whose total count over all cells is at least ``min_count``."""
        totals = np.asarray(self.X.sum(axis=0, dtype=np.float64)).ravel()
        self.update_genes(totals >= min_count)

    def _get_genes_filter_mask_by_attribute(
        self,
        attribute_values_to_keep: Union[List, np.ndarray],
        attribute_name: str = "gene_names",
        return_data: bool = True,
    ):
        """Mask of the genes whose attribute is in ``attribute_values_to_keep``."""
        if attribute_name not in self.gene_attribute_names:
            raise ValueError(
                f"{attribute_name!r} is not a registered gene attribute; choose one "
                f"of {sorted(self.gene_attribute_names)}."
            )
        values = np.asarray(attribute_values_to_keep)
        if attribute_name == "gene_names" and values.dtype.kind in "US":
            values = np.char.upper(values)
        mask = np.isin(np.asarray(getattr(self, attribute_name)), values)
        if return_data:
            return self.X[:, mask], mask
        return mask

    def update_genes(self, subset_genes: np.ndarray) -> None:
        """Subset (or reorder) genes in place, then drop cells left without counts.

        ``X``, its registered versions and every gene attribute are subset.

        Parameters
        ----------
        subset_genes
            Integer positions (any order) or a boolean mask over the genes.
        """
        index = as_index(subset_genes, self.nb_genes, "genes")
        n_kept = int(index.sum()) if index.dtype == bool else index.size
        if n_kept == 0:
            raise ValueError("No gene would remain; keep at least one gene.")
        logger.info("Downsampling from %d to %d genes", self.nb_genes, n_kept)
        self._take_genes(index)
        expressed = row_sums(self.X) >= 1
        if not expressed.all():
            logger.info("Filtering non-expressing cells.")
            self.update_cells(expressed)
        else:
            self.compute_library_size_batch()

    def _take_genes(self, index: np.ndarray) -> None:
        """Index the gene axis of X, its versions and gene attributes (no library)."""
        self._X = self.X[:, index]
        for version_name in self.dataset_versions:
            setattr(self, version_name, getattr(self, version_name)[:, index])
        for attribute_name in self.gene_attribute_names:
            setattr(self, attribute_name, getattr(self, attribute_name)[index])

    def reorder_genes(
        self,
        first_genes: Union[List[str], np.ndarray],
        drop_omitted_genes: bool = False,
    ) -> None:
        """Put the named genes first, in the given order.

        Parameters
        ----------
        first_genes
            Gene names to place first.
        drop_omitted_genes
            Drop the other genes instead of keeping them after ``first_genes`` in
            their current order.
        """
        first = self.genes_to_index(first_genes)
        if drop_omitted_genes:
            order = first
        else:
            rest = np.setdiff1d(np.arange(self.nb_genes), first, assume_unique=True)
            order = np.concatenate([first, rest])
        self._take_genes(order)
        self.compute_library_size_batch()

    def genes_to_index(
        self, genes: Union[List[str], List[int], np.ndarray], on: str = None
    ) -> np.ndarray:
        """Column indices of genes given by name (or by another gene attribute).

        Parameters
        ----------
        genes
            Gene names (matched case-insensitively against the upper-cased
            ``gene_names``), values of attribute ``on``, or integer indices, which
            are returned unchanged.
        on
            Gene attribute to match; ``gene_names`` by default.
        """
        values = np.asarray(genes)
        if values.dtype.kind in "iu":
            return values.astype(np.int64).ravel()
        on = "gene_names" if on is None else on
        reference = getattr(self, on, None)
        if reference is None:
            raise ValueError(f"The dataset has no gene attribute {on!r}.")
        reference = np.asarray(reference)
        if on == "gene_names" and values.dtype.kind in "US":
            values = np.char.upper(values)
        position = {}
        for index, value in enumerate(reference.tolist()):
            position.setdefault(value, index)
        missing = [value for value in values.tolist() if value not in position]
        if missing:
            raise ValueError(
                f"{len(missing)} genes not found in {on}: {missing[:10]}"
                f"{' ...' if len(missing) > 10 else ''}."
            )
        return np.asarray([position[value] for value in values.tolist()], np.int64)
