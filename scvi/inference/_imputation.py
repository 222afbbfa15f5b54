"""Imputation benchmark: how well a model recovers counts hidden by corrupting the data."""

import logging
import os
from typing import List, Optional, Tuple

import numpy as np
import torch
from sklearn.neighbors import KNeighborsRegressor

from scvi.inference._plots import plot_imputation

logger = logging.getLogger(__name__)


def proximity_imputation(
    real_latent1: np.ndarray,
    normed_gene_exp_1: np.ndarray,
    real_latent2: np.ndarray,
    k: int = 4,
) -> np.ndarray:
    """Impute expression for cells of a second set from their neighbours in a first set.

    Parameters
    ----------
    real_latent1
        Latent coordinates of the reference cells, ``(n_1, n_dims)``.
    normed_gene_exp_1
        Expression of the reference cells, ``(n_1,)`` or ``(n_1, n_genes)``.
    real_latent2
        Latent coordinates of the cells to impute, ``(n_2, n_dims)``.
    k
        Number of neighbours, averaged with weights inversely proportional to distance.

    Returns
    -------
    The imputed expression, ``(n_2,)`` or ``(n_2, n_genes)``.
    """
    regressor = KNeighborsRegressor(n_neighbors=k, weights="distance")
    return regressor.fit(real_latent1, normed_gene_exp_1).predict(real_latent2)


class ImputationMixin:
    """Imputation scores of :class:`~scvi.inference.Posterior` on corrupted data."""

    @torch.no_grad()
    def imputation_list(
        self, n_samples: int = 1
    ) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        """Original and imputed values of the entries changed by the dataset's corruption.

        The model sees the corrupted counts (``gene_dataset.corrupted_X``, made by
        ``gene_dataset.corrupt()``); its imputations (NB means at ``n_samples``
        posterior samples) are read at the entries where the corrupted counts differ
        from the original ones.

        Parameters
        ----------
        n_samples
            Number of posterior samples; each corrupted entry then appears
            ``n_samples`` times.

        Returns
        -------
        ``(original_list, imputed_list)``: one array per cell (in the order of
        :attr:`indices`) with the original counts, and one with the imputed values, at
        that cell's corrupted entries.
        """
        if getattr(self.gene_dataset, "corrupted_X", None) is None:
            raise ValueError(
                "The dataset has no corrupted counts: call gene_dataset.corrupt() (or "
                "trainer.corrupt_posteriors()) first."
            )
        original_list, imputed_list = [], []
        batch_size = 10000
        for tensors, corrupted_tensors in zip(
            self.uncorrupted().sequential(batch_size=batch_size),
            self.corrupted().sequential(batch_size=batch_size),
        ):
            x, x_corrupted = tensors[0], corrupted_tensors[0]
            px_rate = self._sample_rate(corrupted_tensors, n_samples)
            px_rate = px_rate.reshape(n_samples, *x.shape)
            changed = (x != x_corrupted).cpu().numpy()
            x_np = x.cpu().numpy()
            rate_np = px_rate.cpu().numpy()
            for cell in range(x_np.shape[0]):
                genes = np.flatnonzero(changed[cell])
                original_list.append(np.tile(x_np[cell, genes], n_samples))
                imputed_list.append(rate_np[:, cell, genes].ravel())
        return original_list, imputed_list

    @torch.no_grad()
    def imputation_score(
        self,
        original_list: Optional[List[np.ndarray]] = None,
        imputed_list: Optional[List[np.ndarray]] = None,
        n_samples: int = 1,
    ) -> float:
        """Median absolute error of the imputation over all corrupted entries.

        Parameters
        ----------
        original_list, imputed_list
            Output of :meth:`imputation_list`; computed when either is None.
        n_samples
            Number of posterior samples, when the lists are computed here.

        Returns
        -------
        The median of ``|original - imputed|``, or 0.0 when nothing was corrupted.
        """
        if original_list is None or imputed_list is None:
            original_list, imputed_list = self.imputation_list(n_samples=n_samples)
        original = np.concatenate([np.empty(0), *original_list])
        imputed = np.concatenate([np.empty(0), *imputed_list])
        if original.size == 0:
            logger.info(
                "No difference between corrupted dataset and uncorrupted dataset"
            )
            return 0.0
        return float(np.median(np.abs(original - imputed)))

    @torch.no_grad()
    def imputation_benchmark(
        self,
        n_samples: int = 8,
        show_plot: bool = True,
        title_plot: str = "imputation",
        save_path: str = "",
    ) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        """Score the imputation of corrupted entries and plot imputed against original counts.

        Logs the median absolute error over all entries and the mean over cells of each
        cell's median absolute error (0 for cells without corrupted entries), and
        saves the density plot of :func:`plot_imputation` to
        ``<save_path>/<title_plot>.png``.

        Parameters
        ----------
        n_samples
            Number of posterior samples.
        show_plot
            Also display the plot (only with an interactive matplotlib backend).
        title_plot
            Title of the plot and name of its file (without extension).
        save_path
            Folder of the file.

        Returns
        -------
        ``(original_list, imputed_list)`` of :meth:`imputation_list`.
        """
        original_list, imputed_list = self.imputation_list(n_samples=n_samples)
        median_score = self.imputation_score(original_list, imputed_list)
        per_cell = [
            np.median(np.abs(original - imputed)) if original.size else 0.0
            for original, imputed in zip(original_list, imputed_list)
        ]
        mean_score = float(np.mean(per_cell)) if per_cell else 0.0
        logger.debug(
            "Median of Median: %.4f Mean of Median for each cell: %.4f",
            median_score,
            mean_score,
        )
        plot_imputation(
            np.concatenate([np.empty(0), *original_list]),
            np.concatenate([np.empty(0), *imputed_list]),
            show_plot=show_plot,
            title=os.path.join(save_path, title_plot),
        )
        return original_list, imputed_list
