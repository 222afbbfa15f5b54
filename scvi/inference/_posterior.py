"""The :class:`Posterior`: a model paired with a subset of a dataset, and what it computes on it."""

import copy
import logging
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data.sampler import (
    RandomSampler,
    SequentialSampler,
    SubsetRandomSampler,
)

from scvi.dataset.dataset import GeneExpressionDataset
from scvi.inference._differential import DifferentialExpressionMixin
from scvi.inference._imputation import ImputationMixin
from scvi.inference._metrics import MetricsMixin, metric
from scvi.inference._plots import PlotsMixin
from scvi.models.distributions import NegativeBinomial, ZeroInflatedNegativeBinomial
from scvi.models.log_likelihood import (
    compute_elbo,
    compute_marginal_log_likelihood_autozi,
    compute_marginal_log_likelihood_scvi,
    compute_reconstruction_error,
)

logger = logging.getLogger(__name__)


class SequentialSubsetSampler(SubsetRandomSampler):
    """Yield the given indices in their given order (no shuffling)."""

    def __iter__(self):
        return iter(self.indices)


class Posterior(DifferentialExpressionMixin, MetricsMixin, ImputationMixin, PlotsMixin):
    """A model together with a subset of cells of a dataset, iterated in minibatches.

    Trainers keep one posterior per data split (``train_set``, ``test_set``,
    ``validation_set``); each computes scores (ELBO, marginal likelihood), latent
    representations, imputations and samples for its cells. The analysis methods come
    from mixins: Bayes-factor differential expression
    (:class:`~scvi.inference._differential.DifferentialExpressionMixin`), latent-space
    metrics (:class:`~scvi.inference._metrics.MetricsMixin`), the imputation benchmark
    (:class:`~scvi.inference._imputation.ImputationMixin`) and t-SNE plots
    (:class:`~scvi.inference._plots.PlotsMixin`).

    Parameters
    ----------
    model
        A model such as :class:`~scvi.models.VAE`.
    gene_dataset
        The dataset the cells come from.
    shuffle
        Visit all cells in random order (mutually exclusive with ``indices``).
    indices
        Cell indices (or a boolean mask) of the subset; visited in random order.
    use_cuda
        Move minibatches to the GPU (when one is available).
    data_loader_kwargs
        Keyword arguments of :class:`torch.utils.data.DataLoader` (``batch_size``...).

    Examples
    --------
    >>> trainer = UnsupervisedTrainer(vae, gene_dataset)
    >>> trainer.train(n_epochs=50)
    >>> trainer.test_set.elbo()
    >>> latent, batch_indices, labels = trainer.train_set.get_latent()
    >>> trainer.train_set.entropy_batch_mixing()
    >>> cell_labels = gene_dataset.labels.ravel()
    >>> trainer.train_set.differential_expression_score(cell_labels == 0, cell_labels == 1)
    >>> trainer.train_set.show_t_sne(n_samples=1000, color_by="labels", save_name="tsne.png")
    """

    def __init__(
        self,
        model: torch.nn.Module,
        gene_dataset: GeneExpressionDataset,
        shuffle: bool = False,
        indices: Optional[Union[np.ndarray, Sequence[int]]] = None,
        use_cuda: bool = True,
        data_loader_kwargs: Optional[Dict[str, Any]] = None,
    ):
        self.model = model
        self.gene_dataset = gene_dataset
        self.to_monitor: List[str] = []
        self.use_cuda = use_cuda and torch.cuda.is_available()

        if indices is not None and shuffle:
            raise ValueError("indices is mutually exclusive with shuffle")
        if indices is None:
            sampler = (
                RandomSampler(gene_dataset)
                if shuffle
                else SequentialSampler(gene_dataset)
            )
        else:
            indices = np.asarray(indices)
            if indices.dtype == np.bool_:
                indices = np.flatnonzero(indices)
            sampler = SubsetRandomSampler(indices)
        self.data_loader_kwargs = dict(data_loader_kwargs or {})
        self.data_loader_kwargs.update(
            {"collate_fn": gene_dataset.collate_fn_builder(), "sampler": sampler}
        )
        self.data_loader = DataLoader(gene_dataset, **self.data_loader_kwargs)

    @metric("max")
    def accuracy(self) -> Optional[float]:
        """Classification accuracy; only annotation posteriors define it (None here)."""
        return None

    @property
    def indices(self) -> np.ndarray:
        """Indices of the cells of this posterior."""
        sampler = self.data_loader.sampler
        if hasattr(sampler, "indices"):
            return np.asarray(sampler.indices)
        return np.arange(len(self.gene_dataset))

    @property
    def nb_cells(self) -> int:
        """Number of cells of this posterior."""
        return len(self.indices)

    def __iter__(self):
        return map(self.to_cuda, iter(self.data_loader))

    def to_cuda(self, tensors: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """Move a minibatch to the GPU when this posterior uses CUDA."""
        if not self.use_cuda:
            return list(tensors)
        return [t.cuda(non_blocking=True) for t in tensors]

    def update(self, data_loader_kwargs: Dict[str, Any]) -> "Posterior":
        """A copy of this posterior whose data loader uses updated keyword arguments."""
        posterior = copy.copy(self)
        posterior.data_loader_kwargs = dict(self.data_loader_kwargs)
        posterior.data_loader_kwargs.update(data_loader_kwargs)
        posterior.data_loader = DataLoader(
            self.gene_dataset, **posterior.data_loader_kwargs
        )
        return posterior

    def sequential(self, batch_size: int = 128) -> "Posterior":
        """A copy that visits the same cells in a fixed order, ``batch_size`` at a time."""
        return self.update(
            {"batch_size": batch_size, "sampler": SequentialSubsetSampler(self.indices)}
        )

    def corrupted(self) -> "Posterior":
        """A copy that reads the dataset's ``corrupted_X`` instead of ``X``."""
        return self.update(
            {"collate_fn": self.gene_dataset.collate_fn_builder(corrupted=True)}
        )

    def uncorrupted(self) -> "Posterior":
        """A copy that reads the dataset's ``X``."""
        return self.update({"collate_fn": self.gene_dataset.collate_fn_builder()})

    @metric("min")
    @torch.no_grad()
    def elbo(self) -> float:
        """Negative evidence lower bound per cell (lower is better)."""
        elbo = compute_elbo(self.model, self)
        logger.debug("ELBO : %.4f", elbo)
        return elbo

    @metric("min")
    @torch.no_grad()
    def reconstruction_error(self) -> float:
        """Negative log-likelihood of the counts per cell at one posterior sample."""
        error = compute_reconstruction_error(self.model, self)
        logger.debug("Reconstruction Error : %.4f", error)
        return error

    @torch.no_grad()
    def marginal_ll(self, n_mc_samples: int = 1000) -> float:
        """Importance-sampled negative marginal log-likelihood ``-log p(x)`` per cell."""
        if getattr(self.model, "reconstruction_loss", None) == "autozinb":
            ll = compute_marginal_log_likelihood_autozi(self.model, self, n_mc_samples)
        else:
            ll = compute_marginal_log_likelihood_scvi(self.model, self, n_mc_samples)
        logger.debug("True LL : %.4f", ll)
        return ll

    @torch.no_grad()
    def get_latent(
        self, sample: bool = False
    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Latent representation of the cells, with their batches and labels.

        Parameters
        ----------
        sample
            Draw ``z`` from the posterior instead of returning its mean.

        Returns
        -------
        ``(latent (n_cells, n_latent), batch_indices (n_cells, 1), labels (n_cells,))``
        """
        latent, batch_indices, labels = [], [], []
        for x, _, _, batch_index, label in self._minibatches():
            latent.append(self._latent_sample(x, give_mean=not sample).cpu())
            batch_indices.append(batch_index.cpu())
            labels.append(label.cpu())
        return (
            torch.cat(latent).numpy(),
            torch.cat(batch_indices).numpy(),
            torch.cat(labels).numpy().ravel(),
        )

    def _latent_sample(self, x: torch.Tensor, give_mean: bool) -> torch.Tensor:
        """Latent codes of the cells ``x``: posterior means, or samples."""
        return self.model.sample_from_posterior_z(x, give_mean=give_mean)

    def _minibatches(self):
        """Minibatches reduced to the five standard tensors."""
        for tensors in self:
            yield tensors[:5]

    def _collect(
        self, func: Callable[..., torch.Tensor], posterior: Optional["Posterior"] = None
    ) -> np.ndarray:
        """Concatenate ``func(x, batch_index, labels)`` over minibatches, on the CPU."""
        results = [
            func(x, batch_index, labels).cpu().numpy()
            for x, _, _, batch_index, labels in (posterior or self)._minibatches()
        ]
        return np.concatenate(results)

    @torch.no_grad()
    def get_sample_scale(self) -> np.ndarray:
        """Expression frequencies ``px_scale`` of every cell at a posterior sample, ``(n_cells, n_genes)``."""
        return self._collect(
            lambda x, b, y: self.model.get_sample_scale(
                x, batch_index=b, y=y, n_samples=1
            )
        )

    def _sample_rate(self, tensors: List[torch.Tensor], n_samples: int) -> torch.Tensor:
        """NB means of a minibatch's counts at ``n_samples`` posterior samples."""
        x, _, _, batch_index, labels = tensors[:5]
        return self.model.get_sample_rate(
            x, batch_index=batch_index, y=labels, n_samples=n_samples
        )

    @torch.no_grad()
    def imputation(self, n_samples: int = 1) -> np.ndarray:
        """Imputed expression: the NB mean ``px_rate``, averaged over ``n_samples`` posterior samples."""
        rates = []
        for tensors in self:
            rate = self._sample_rate(tensors, n_samples)
            rates.append((rate.mean(dim=0) if n_samples > 1 else rate).cpu().numpy())
        return np.concatenate(rates).squeeze()

    @torch.no_grad()
    def get_stats(self) -> np.ndarray:
        """Sampled log library size of every cell, ``(n_cells,)``."""
        return self._collect(
            lambda x, b, y: self.model.inference(x, b, y)["library"], self.sequential()
        ).ravel()

    @torch.no_grad()
    def get_harmonized_scale(self, fixed_batch: int) -> np.ndarray:
        """Expression frequencies of every cell decoded as if it came from batch ``fixed_batch``."""
        return self._collect(
            lambda x, b, y: self.model.scale_from_z(x, float(fixed_batch))
        )

    def _observation_model(self, outputs: Dict[str, torch.Tensor]) -> NegativeBinomial:
        """The count distribution defined by a model's inference outputs."""
        reconstruction_loss = getattr(self.model, "reconstruction_loss", None)
        if reconstruction_loss not in ("zinb", "nb"):
            raise ValueError(
                "Sampling counts needs a model with reconstruction_loss 'zinb' or 'nb', "
                f"not {reconstruction_loss!r}."
            )
        if reconstruction_loss == "zinb":
            return ZeroInflatedNegativeBinomial(
                mu=outputs["px_rate"],
                theta=outputs["px_r"],
                zi_logits=outputs["px_dropout"],
            )
        return NegativeBinomial(mu=outputs["px_rate"], theta=outputs["px_r"])

    def _predictive_sample(
        self, tensors: List[torch.Tensor], n_samples: int
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``n_samples`` posterior-predictive draws of a minibatch's counts, and its counts."""
        x, _, _, batch_index, labels = tensors[:5]
        outputs = self.model.inference(
            x, batch_index=batch_index, y=labels, n_samples=n_samples
        )
        return self._observation_model(outputs).sample(), x

    @torch.no_grad()
    def generate(
        self,
        n_samples: int = 100,
        genes: Optional[Union[List, np.ndarray]] = None,
        batch_size: int = 128,
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Sample counts from the posterior predictive distribution.

        Parameters
        ----------
        n_samples
            Number of samples per cell.
        genes
            Names or indices of the genes to keep (all genes when None).
        batch_size
            Minibatch size.

        Returns
        -------
        ``(x_new, x_old)``: samples of shape ``(n_cells, n_genes, n_samples)`` and the
        observed counts, ``(n_cells, n_genes)``.
        """
        x_old, x_new = [], []
        for tensors in self.update({"batch_size": batch_size}):
            samples, observed = self._predictive_sample(tensors, n_samples)
            if n_samples == 1:
                samples = samples.unsqueeze(0)
            x_old.append(observed.cpu())
            x_new.append(samples.permute(1, 2, 0).cpu())
        x_old_np = torch.cat(x_old).numpy()
        x_new_np = torch.cat(x_new).numpy()
        if genes is not None:
            columns = self._feature_columns(genes)
            x_new_np, x_old_np = x_new_np[:, columns, :], x_old_np[:, columns]
        return x_new_np, x_old_np

    @torch.no_grad()
    def generate_parameters(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-cell observation parameters at one posterior sample.

        Returns
        -------
        ``(dropout logits, means, inverse dispersions)``, each ``(n_cells, n_genes)``.
        """
        dropout, mean, dispersion = [], [], []
        for x, _, _, batch_index, labels in self.sequential(1000)._minibatches():
            outputs = self.model.inference(
                x, batch_index=batch_index, y=labels, n_samples=1
            )
            px_rate = outputs["px_rate"]
            dropout.append(outputs["px_dropout"].cpu().numpy())
            mean.append(px_rate.cpu().numpy())
            dispersion.append(outputs["px_r"].expand_as(px_rate).cpu().numpy())
        return np.concatenate(dropout), np.concatenate(mean), np.concatenate(dispersion)

    def raw_data(self) -> Tuple[Any, np.ndarray]:
        """Counts and labels of this posterior's cells (for baseline classifiers)."""
        return (
            self.gene_dataset.X[self.indices],
            self.gene_dataset.labels[self.indices].ravel(),
        )
