"""Imputation and posterior-predictive sampling of :class:`~scvi.inference.TotalPosterior`."""

from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from scvi.inference._totalvi_helpers import observation_models


class TotalSamplingMixin:
    """Imputation, generated counts and count-distribution parameters of a TotalPosterior.

    Placed before :class:`~scvi.inference.Posterior` in the bases: it adapts the
    posterior's sampling hooks to minibatches ``(x, local_l_mean, local_l_var,
    batch_index, labels, y)`` and relies on the posterior's
    ``_inference(tensors, n_samples)``.
    """

    def _sample_rate(self, tensors: List[torch.Tensor], n_samples: int) -> torch.Tensor:
        """Gene NB means of a minibatch at ``n_samples`` posterior samples."""
        x, _, _, batch_index, labels, y = tensors
        return self.model.get_sample_rate(
            x, y, batch_index=batch_index, label=labels, n_samples=n_samples
        )

    def _predictive_sample(
        self, tensors: List[torch.Tensor], n_samples: int
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Posterior-predictive draws of a minibatch's gene and protein counts, and its counts.

        Genes are drawn from the model's NB or ZINB, proteins from the background /
        foreground NB mixture; proteins' columns follow the genes'.
        """
        gene_model, protein_model = observation_models(
            self.model, self._inference(tensors, n_samples)
        )
        samples = torch.cat((gene_model.sample(), protein_model.sample()), dim=-1)
        return samples, torch.cat((tensors[0], tensors[5]), dim=-1)

    @torch.no_grad()
    def imputation(self, n_samples: int = 1) -> np.ndarray:
        """Gene NB means of every cell, averaged over ``n_samples`` posterior samples."""
        return super().imputation(n_samples)

    @torch.no_grad()
    def imputation_list(
        self, n_samples: int = 1
    ) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        """Original and imputed gene counts at the entries changed by the dataset's corruption.

        See :meth:`Posterior.imputation_list`; the model also reads the protein counts.
        """
        return super().imputation_list(n_samples)

    @torch.no_grad()
    def generate(
        self,
        n_samples: int = 100,
        genes: Optional[Union[List, np.ndarray]] = None,
        batch_size: int = 64,
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Posterior-predictive samples of the gene and protein counts.

        Genes are drawn from the model's NB or ZINB, proteins from the background /
        foreground NB mixture.

        Parameters
        ----------
        n_samples
            Number of samples per cell.
        genes
            Genes and/or proteins to keep, by name or by joint column index (see
            :meth:`feature_names`); all when None.
        batch_size
            Cells per minibatch.

        Returns
        -------
        ``(samples (n_cells, n_features, n_samples), original (n_cells, n_features))``
        with the genes' columns first, then the proteins'.
        """
        return super().generate(n_samples=n_samples, genes=genes, batch_size=batch_size)

    @torch.no_grad()
    def generate_parameters(
        self,
    ) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
        """Parameters of the count distributions of every cell at one posterior sample.

        Returns
        -------
        ``(genes, proteins)``: ``genes`` holds ``dropout`` (zero-inflation logits),
        ``rate`` (NB means) and ``r`` (inverse dispersions), each ``(n_cells, n_genes)``;
        ``proteins`` holds ``rate_back``, ``rate_fore``, ``r`` and ``mixing`` (logits of
        the background component), each ``(n_cells, n_proteins)``. Cells are in index
        order.
        """
        genes: Dict[str, List[np.ndarray]] = {"dropout": [], "rate": [], "r": []}
        proteins: Dict[str, List[np.ndarray]] = {
            "rate_back": [],
            "rate_fore": [],
            "r": [],
            "mixing": [],
        }
        for tensors in self.sequential(1000):
            outputs = self._inference(tensors)
            for params, source in ((genes, outputs["px_"]), (proteins, outputs["py_"])):
                shape = source["rate" if params is genes else "rate_fore"].shape
                for key in params:
                    params[key].append(source[key].expand(shape).cpu().numpy())
        return (
            {key: np.concatenate(values) for key, values in genes.items()},
            {key: np.concatenate(values) for key, values in proteins.items()},
        )
