"""Training and posterior analysis of totalVI (:class:`~scvi.models.TOTALVI`) on CITE-seq data.

Minibatches of a :class:`TotalPosterior` carry one tensor more than scVI's, the protein
counts: ``(x, local_l_mean, local_l_var, batch_index, labels, y)``. Outputs that cover
genes and proteins put the proteins' columns after the genes' (see
:func:`TotalPosterior.feature_names`).
"""

import logging
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import DataLoader

from scvi.dataset.dataset import GeneExpressionDataset
from scvi.inference._posterior import metric
from scvi.inference._totalvi_differential import TotalDifferentialExpressionMixin
from scvi.inference._totalvi_helpers import (
    PROTEIN_ATTRIBUTES,
    check_protein_dataset,
    feature_names,
    log_importance_weights,
    log_marginal_likelihood,
    stack_samples,
)
from scvi.inference._totalvi_sampling import TotalSamplingMixin
from scvi.inference.inference import UnsupervisedTrainer
from scvi.inference.posterior import Posterior
from scvi.models.totalvi import TOTALVI
from scvi.models.utils import check_option

logger = logging.getLogger(__name__)


class TotalPosterior(TotalDifferentialExpressionMixin, TotalSamplingMixin, Posterior):
    """A :class:`~scvi.models.TOTALVI` model together with a subset of cells of a CITE-seq dataset.

    Parameters
    ----------
    model
        A TOTALVI model.
    gene_dataset
        A dataset with a ``protein_expression`` measurement and ``protein_names``.
    shuffle
        Visit all cells in random order (mutually exclusive with ``indices``).
    indices
        Cell indices (or a boolean mask) of the subset; visited in random order.
    use_cuda
        Move minibatches to the GPU (when one is available).
    data_loader_kwargs
        Keyword arguments of :class:`torch.utils.data.DataLoader` (``batch_size``...).

    Raises
    ------
    ValueError
        When the dataset has no protein counts, when its proteins do not match the
        model or their names, or when a protein is zero in every cell.

    Examples
    --------
    >>> model = TOTALVI(dataset.nb_genes, len(dataset.protein_names))
    >>> trainer = TotalTrainer(model, dataset)
    >>> trainer.train(n_epochs=400)
    >>> latent, batch_indices, labels, library = trainer.train_set.get_latent()
    """

    def __init__(
        self,
        model: TOTALVI,
        gene_dataset: GeneExpressionDataset,
        shuffle: bool = False,
        indices: Optional[np.ndarray] = None,
        use_cuda: bool = True,
        data_loader_kwargs: Optional[Dict[str, Any]] = None,
    ):
        check_protein_dataset(model, gene_dataset)
        super().__init__(
            model,
            gene_dataset,
            shuffle=shuffle,
            indices=indices,
            use_cuda=use_cuda,
            data_loader_kwargs=data_loader_kwargs,
        )
        self.data_loader_kwargs["collate_fn"] = self._collate(corrupted=False)
        self.data_loader = DataLoader(gene_dataset, **self.data_loader_kwargs)

    def _collate(self, corrupted: bool):
        return self.gene_dataset.collate_fn_builder(
            PROTEIN_ATTRIBUTES, corrupted=corrupted
        )

    def feature_names(self) -> np.ndarray:
        """Names of the joint output columns: the genes, then the proteins."""
        return feature_names(self.gene_dataset)

    def corrupted(self) -> "TotalPosterior":
        """A copy reading the dataset's ``corrupted_X`` (proteins unchanged)."""
        return self.update({"collate_fn": self._collate(corrupted=True)})

    def uncorrupted(self) -> "TotalPosterior":
        """A copy reading the dataset's ``X``."""
        return self.update({"collate_fn": self._collate(corrupted=False)})

    def _inference(
        self, tensors: Sequence[torch.Tensor], n_samples: int = 1
    ) -> Dict[str, Any]:
        x, _, _, batch_index, labels, y = tensors
        return self.model.inference(
            x, y, batch_index=batch_index, label=labels, n_samples=n_samples
        )

    # ------------------------------------------------------------------ scores

    @metric("min")
    @torch.no_grad()
    def elbo(self) -> float:
        """Negative ELBO per cell: gene and protein reconstruction plus all KL terms."""
        elbo = self.compute_elbo(self.model)
        logger.debug("ELBO : %.4f", elbo)
        return elbo

    @metric("min")
    @torch.no_grad()
    def reconstruction_error(self, mode: str = "total") -> float:
        """Negative log-likelihood per cell at one posterior sample.

        Parameters
        ----------
        mode
            ``"total"`` (genes and proteins), ``"gene"`` or ``"protein"``.
        """
        check_option("mode", mode, ("total", "gene", "protein"))
        gene, protein = self.compute_reconstruction_error(self.model)
        return {"total": gene + protein, "gene": gene, "protein": protein}[mode]

    @torch.no_grad()
    def marginal_ll(self, n_mc_samples: int = 1000) -> float:
        """Importance-sampled ``-log p(x, y)`` per cell with ``n_mc_samples`` draws."""
        ll = self.compute_marginal_log_likelihood(n_samples_mc=n_mc_samples)
        logger.debug("True LL : %.4f", ll)
        return ll

    def _loss_terms(self, vae: TOTALVI, **kwargs) -> torch.Tensor:
        """The five per-cell loss terms of every minibatch, ``(5, n_cells)``."""
        terms = []
        for x, local_l_mean, local_l_var, batch_index, labels, y in self:
            outputs = vae(
                x,
                y,
                local_l_mean,
                local_l_var,
                batch_index=batch_index,
                label=labels,
                **kwargs,
            )
            terms.append(torch.stack(outputs))
        return torch.cat(terms, dim=1)

    def compute_elbo(self, vae: TOTALVI, **kwargs) -> float:
        """Sum of all loss terms over the posterior's cells, divided by their number."""
        return self._loss_terms(vae, **kwargs).sum().item() / self.nb_cells

    def compute_reconstruction_error(
        self, vae: TOTALVI, **kwargs
    ) -> Tuple[float, float]:
        """Per-cell gene and protein negative log-likelihoods, averaged over the cells."""
        terms = self._loss_terms(vae, **kwargs)
        return (
            terms[0].sum().item() / self.nb_cells,
            terms[1].sum().item() / self.nb_cells,
        )

    def compute_marginal_log_likelihood(
        self, n_samples_mc: int = 100, batch_size: int = 96
    ) -> float:
        """Importance-sampled estimate of ``-log p(x, y)`` per cell.

        The variational posterior of ``z``, of the log library size and of the log
        protein background mean is the proposal; the estimate, biased for finite
        ``n_samples_mc``, converges to the marginal likelihood.

        Parameters
        ----------
        n_samples_mc
            Number of importance samples per cell.
        batch_size
            Cells per minibatch.
        """
        total = 0.0
        for tensors in self.update({"batch_size": batch_size}):
            n_floats = tensors[0].shape[0] * (tensors[0].shape[1] + tensors[5].shape[1])
            per_cell = log_marginal_likelihood(
                lambda k, t=tensors: log_importance_weights(self.model, t, k),
                n_samples_mc,
                n_floats,
            )
            total += per_cell.sum().item()
        return -total / self.nb_cells

    # ------------------------------------------------------------------ latent space

    @torch.no_grad()
    def get_latent(
        self, sample: bool = False
    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Latent representation, batches, labels and gene library sizes of the cells.

        Parameters
        ----------
        sample
            Draw ``z`` and the library size from the posterior instead of returning
            their means (Monte-Carlo mean of the softmax for a logistic-normal ``z``).

        Returns
        -------
        ``(latent (n_cells, n_latent), batch_indices (n_cells, 1), labels (n_cells,),
        library_gene (n_cells,))``.
        """
        latent, batch_indices, labels, library = [], [], [], []
        for x, _, _, batch_index, label, y in self:
            latent.append(
                self.model.sample_from_posterior_z(
                    x, y, batch_index, give_mean=not sample
                ).cpu()
            )
            batch_indices.append(batch_index.cpu())
            labels.append(label.cpu())
            library.append(
                self.model.sample_from_posterior_l(
                    x, y, batch_index, give_mean=not sample
                ).cpu()
            )
        return (
            torch.cat(latent).numpy(),
            torch.cat(batch_indices).numpy(),
            torch.cat(labels).numpy().ravel(),
            torch.cat(library).numpy().ravel(),
        )

    @torch.no_grad()
    def get_stats(self) -> np.ndarray:
        """Sampled log gene library size of every cell, in index order, ``(n_cells,)``."""
        samples = [
            self._inference(tensors)["untran_l"].cpu() for tensors in self.sequential()
        ]
        return torch.cat(samples).numpy().ravel()

    # ------------------------------------------------------------------ denoised outputs

    def _sampled_output(self, read, n_samples: int, give_mean: bool) -> np.ndarray:
        chunks = [read(self._inference(tensors, n_samples)).cpu() for tensors in self]
        return stack_samples(chunks, n_samples, give_mean)

    @torch.no_grad()
    def get_protein_background_mean(self) -> np.ndarray:
        """Sampled protein background means of every cell, ``(n_cells, n_proteins)``."""
        return self._sampled_output(lambda out: out["py_"]["rate_back"], 1, True)

    @torch.no_grad()
    def get_sample_dropout(
        self, n_samples: int = 1, give_mean: bool = True
    ) -> np.ndarray:
        """Gene zero-inflation logits of every cell.

        Returns ``(n_cells, n_genes)``, or ``(n_cells, n_genes, n_samples)`` when
        ``n_samples > 1`` and not ``give_mean``.
        """
        return self._sampled_output(
            lambda out: out["px_"]["dropout"], n_samples, give_mean
        )

    @torch.no_grad()
    def get_sample_mixing(
        self, n_samples: int = 1, give_mean: bool = True
    ) -> np.ndarray:
        """Protein mixing logits (of the background component) of every cell.

        Returns ``(n_cells, n_proteins)``, or ``(n_cells, n_proteins, n_samples)`` when
        ``n_samples > 1`` and not ``give_mean``.
        """
        return self._sampled_output(
            lambda out: out["py_"]["mixing"], n_samples, give_mean
        )

    @torch.no_grad()
    def get_normalized_denoised_expression(
        self, n_samples: int = 1, give_mean: bool = True
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Denoised normalised expression: gene frequencies and normalised protein foreground.

        Returns
        -------
        ``(genes (n_cells, n_genes), proteins (n_cells, n_proteins))``, each with a last
        axis of samples when ``n_samples > 1`` and not ``give_mean``.
        """
        genes, proteins = [], []
        for tensors in self:
            outputs = self._inference(tensors, n_samples)
            genes.append(outputs["px_"]["scale"].cpu())
            proteins.append(outputs["py_"]["scale"].cpu())
        return stack_samples(genes, n_samples, give_mean), stack_samples(
            proteins, n_samples, give_mean
        )

    @torch.no_grad()
    def get_sample_scale(self) -> np.ndarray:
        """Gene frequencies and normalised protein foreground at a posterior sample, ``(n_cells, n_genes + n_proteins)``."""
        genes, proteins = self.get_normalized_denoised_expression(n_samples=1)
        return np.concatenate([genes, proteins], axis=1)

    @torch.no_grad()
    def get_harmonized_scale(self, fixed_batch: Union[int, torch.Tensor]) -> np.ndarray:
        """Gene and protein scales of every cell decoded as if from batch ``fixed_batch``.

        Returns
        -------
        ``(n_cells, n_genes + n_proteins)``: gene frequencies, then normalised protein
        foreground.
        """
        scales = []
        for x, _, _, _, labels, y in self:
            px_scale, py_scale = self.model.scale_from_z(
                x, y, float(fixed_batch), label=labels
            )
            scales.append(torch.cat((px_scale, py_scale), dim=-1).cpu())
        return torch.cat(scales).numpy()


class TotalTrainer(UnsupervisedTrainer):
    """Train a :class:`~scvi.models.TOTALVI` model by maximising its (annealed) ELBO.

    Parameters
    ----------
    model
        A TOTALVI model.
    dataset
        A dataset with a ``protein_expression`` measurement and ``protein_names``.
    train_size
        Fraction (float) or number (int) of training cells.
    test_size
        Fraction or number of test cells; the remaining cells form ``validation_set``.
    pro_recons_weight
        Weight of the protein reconstruction loss.
    n_epochs_back_kl_warmup
        Epochs over which the weight of the KL of the protein background grows
        linearly from 0 to 1 (None: always 1).
    n_epochs_kl_warmup
        Epochs over which the weight of the KL of ``z`` grows linearly from 0 to 1
        (None: always 1).
    **kwargs
        Arguments of :class:`~scvi.inference.Trainer` (``frequency``,
        ``early_stopping_kwargs``, ``data_loader_kwargs``, ``seed``...). For early
        stopping on a TotalPosterior metric pass
        ``early_stopping_kwargs["posterior_class"] = TotalPosterior``.

    Examples
    --------
    >>> model = TOTALVI(dataset.nb_genes, len(dataset.protein_names))
    >>> trainer = TotalTrainer(model, dataset, frequency=1)
    >>> trainer.train(n_epochs=400, lr=4e-3)
    >>> trainer.test_set.elbo()
    """

    default_metrics_to_monitor = ["elbo"]

    def __init__(
        self,
        model: TOTALVI,
        dataset: GeneExpressionDataset,
        train_size: Union[int, float] = 0.90,
        test_size: Optional[Union[int, float]] = 0.05,
        pro_recons_weight: float = 1.0,
        n_epochs_back_kl_warmup: Optional[int] = 200,
        n_epochs_kl_warmup: Optional[int] = 200,
        **kwargs,
    ):
        if not isinstance(model, TOTALVI):
            raise TypeError(
                f"TotalTrainer trains TOTALVI models, got {type(model).__name__}."
            )
        check_protein_dataset(model, dataset)
        self.n_genes = dataset.nb_genes
        self.n_proteins = model.n_input_proteins
        self.pro_recons_weight = pro_recons_weight
        self.n_epochs_back_kl_warmup = n_epochs_back_kl_warmup
        self.back_warmup_weight = 1.0
        super().__init__(
            model, dataset, n_epochs_kl_warmup=n_epochs_kl_warmup, **kwargs
        )
        if type(self) is TotalTrainer:
            self.train_set, self.test_set, self.validation_set = (
                self.train_test_validation(
                    model, dataset, train_size, test_size, type_class=TotalPosterior
                )
            )
            self.train_set.to_monitor = []
            self.test_set.to_monitor = ["elbo"]
            self.validation_set.to_monitor = ["elbo"]

    def loss(self, tensors: List[torch.Tensor]) -> torch.Tensor:
        """Mean over the minibatch of the weighted, annealed negative ELBO terms."""
        x, local_l_mean, local_l_var, batch_index, labels, y = tensors
        reconst_gene, reconst_protein, kl_z, kl_l, kl_back = self.model(
            x, y, local_l_mean, local_l_var, batch_index, labels
        )
        return torch.mean(
            reconst_gene
            + self.pro_recons_weight * reconst_protein
            + self.kl_weight * kl_z
            + kl_l
            + self.back_warmup_weight * kl_back
        )

    def on_epoch_begin(self) -> None:
        """Update the warm-up weights of the KL of ``z`` and of the protein background."""
        super().on_epoch_begin()
        if self.n_epochs_back_kl_warmup is not None:
            self.back_warmup_weight = min(
                1.0, self.epoch / self.n_epochs_back_kl_warmup
            )
        else:
            self.back_warmup_weight = 1.0
