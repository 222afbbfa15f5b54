"""Imputation and posterior-predictive sampling of :class:`~scvi.inference.TotalPosterior`."""

from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from scvi.inference._totalvi_helpers import feature_indices, observation_models


class TotalSamplingMixin:
    """Imputation, generated counts and count-distribution parameters of a TotalPosterior.

    Relies on the posterior's iteration over ``(x, local_l_mean, local_l_var,
    batch_index, labels, y)`` minibatches and on its ``_inference(tensors, n_samples)``.
    """

    @torch.no_grad()
    def imputation(self, n_samples: int = 1) -> np.ndarray:
        """Gene NB means of every cell, averaged over ``n_samples`` posterior samples."""
        rates = []
        for x, _, _, batch_index, labels, y in self:
            rate = self.model.get_sample_rate(
                x, y, batch_index=batch_index, label=labels, n_samples=n_samples
            )
            rates.append((rate.mean(dim=0) if n_samples > 1 else rate).cpu())
        return torch.cat(rates).numpy().squeeze()

    @torch.no_grad()
    def imputation_list(
        self, n_samples: int = 1
    ) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        """Original and imputed gene counts at the entries changed by the dataset's corruption.

        See :meth:`Posterior.imputation_list`; the model also reads the protein counts.
        """
        if getattr(self.gene_dataset, "corrupted_X", None) is None:
            raise ValueError(
                "The dataset has no corrupted counts: call gene_dataset.corrupt() (or "
                "trainer.corrupt_posteriors()) first."
            )
        original_list, imputed_list = [], []
        batch_size = 10000
        for tensors, corrupted in zip(
            self.uncorrupted().sequential(batch_size=batch_size),
            self.corrupted().sequential(batch_size=batch_size),
        ):
            x = tensors[0]
            x_corrupted, _, _, batch_index, labels, y = corrupted
            rate = self.model.get_sample_rate(
                x_corrupted,
                y,
                batch_index=batch_index,
                label=labels,
                n_samples=n_samples,
            ).reshape(n_samples, *x.shape)
            changed = (x != x_corrupted).cpu().numpy()
            x_np, rate_np = x.cpu().numpy(), rate.cpu().numpy()
            for cell in range(x_np.shape[0]):
                genes = np.flatnonzero(changed[cell])
                original_list.append(np.tile(x_np[cell, genes], n_samples))
                imputed_list.append(rate_np[:, cell, genes].ravel())
        return original_list, imputed_list

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
        new, old = [], []
        for tensors in self.update({"batch_size": batch_size}):
            x, y = tensors[0], tensors[5]
            gene_model, protein_model = observation_models(
                self.model, self._inference(tensors, n_samples)
            )
            samples = torch.cat((gene_model.sample(), protein_model.sample()), dim=-1)
            if n_samples == 1:
                samples = samples.unsqueeze(0)
            new.append(samples.permute(1, 2, 0).cpu())
            old.append(torch.cat((x, y), dim=-1).cpu())
        x_new, x_old = torch.cat(new).numpy(), torch.cat(old).numpy()
        if genes is not None:
            columns = feature_indices(self.gene_dataset, genes)
            x_new, x_old = x_new[:, columns], x_old[:, columns]
        return x_new, x_old

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
