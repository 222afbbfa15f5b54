"""Unsupervised training of the auto-encoders, and adaptation of an encoder to new cells."""

import copy
from typing import List, Optional, Union

import torch

from scvi.dataset.dataset import GeneExpressionDataset
from scvi.inference.posterior import Posterior
from scvi.inference.trainer import Trainer


class UnsupervisedTrainer(Trainer):
    """Train a model by maximising its ELBO on a random training split of the cells.

    Parameters
    ----------
    model
        A model instance such as :class:`~scvi.models.VAE`, ``LDVAE`` or ``AutoZIVAE``.
    gene_dataset
        The dataset to train on.
    train_size
        Fraction (float in (0, 1)) or number (int) of training cells.
    test_size
        Fraction or number of test cells; None means every cell not used for training.
        Cells in neither set form the ``validation_set``.
    n_epochs_kl_warmup
        Number of epochs over which the weight of the local KL terms grows linearly
        from 0 to 1 (None: always 1).
    normalize_loss
        Divide the loss by the number of training cells; None means True except for
        AutoZI models, whose global KL term must not be rescaled.
    **kwargs
        Arguments of :class:`~scvi.inference.Trainer`.

    Examples
    --------
    >>> gene_dataset = CortexDataset()
    >>> vae = VAE(gene_dataset.nb_genes, n_batch=gene_dataset.n_batches)
    >>> trainer = UnsupervisedTrainer(vae, gene_dataset, train_size=0.5)
    >>> trainer.train(n_epochs=20, lr=1e-3)
    """

    default_metrics_to_monitor = ["elbo"]

    def __init__(
        self,
        model: torch.nn.Module,
        gene_dataset: GeneExpressionDataset,
        train_size: Union[int, float] = 0.8,
        test_size: Optional[Union[int, float]] = None,
        n_epochs_kl_warmup: Optional[int] = 400,
        normalize_loss: Optional[bool] = None,
        **kwargs,
    ):
        super().__init__(model, gene_dataset, **kwargs)
        self.n_epochs_kl_warmup = n_epochs_kl_warmup
        if normalize_loss is None:
            normalize_loss = (
                getattr(self.model, "reconstruction_loss", None) != "autozinb"
            )
        self.normalize_loss = normalize_loss
        self.kl_weight = 1.0
        # Number of cells the minibatch losses are scaled to (eq. 8 of Kingma & Welling).
        self.n_samples = 1.0
        if type(self) is UnsupervisedTrainer:
            self.train_set, self.test_set, self.validation_set = (
                self.train_test_validation(model, gene_dataset, train_size, test_size)
            )
            for posterior in (self.train_set, self.test_set, self.validation_set):
                posterior.to_monitor = ["elbo"]
            self.n_samples = len(self.train_set.indices)

    @property
    def posteriors_loop(self) -> List[str]:
        return ["train_set"]

    def loss(self, tensors: List[torch.Tensor]) -> torch.Tensor:
        """KL-annealed negative ELBO of a minibatch, scaled to the training set."""
        sample_batch, local_l_mean, local_l_var, batch_index, y = tensors[:5]
        reconst_loss, kl_local, kl_global = self.model(
            sample_batch, local_l_mean, local_l_var, batch_index, y
        )
        loss = (
            self.n_samples * torch.mean(reconst_loss + self.kl_weight * kl_local)
            + kl_global
        )
        if self.normalize_loss:
            loss = loss / self.n_samples
        return loss

    def on_epoch_begin(self) -> None:
        if self.n_epochs_kl_warmup is not None:
            self.kl_weight = min(1.0, self.epoch / self.n_epochs_kl_warmup)
        else:
            self.kl_weight = 1.0


class AdapterTrainer(UnsupervisedTrainer):
    """Re-fit only the encoders of a trained model on new cells, from several restarts.

    Parameters
    ----------
    model
        A trained model with ``z_encoder`` and ``l_encoder``.
    gene_dataset
        The dataset of the new cells.
    posterior_test
        Posterior over the cells to adapt to.
    frequency
        Frequency (in epochs) at which the test ELBO is recorded.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        gene_dataset: GeneExpressionDataset,
        posterior_test: Posterior,
        frequency: int = 5,
    ):
        super().__init__(model, gene_dataset, frequency=frequency)
        self.test_set = posterior_test
        self.test_set.to_monitor = ["elbo"]
        self.params = list(self.model.z_encoder.parameters()) + list(
            self.model.l_encoder.parameters()
        )
        self.z_encoder_state = copy.deepcopy(model.z_encoder.state_dict())
        self.l_encoder_state = copy.deepcopy(model.l_encoder.state_dict())
        self.n_scale = len(self.test_set.indices)

    @property
    def posteriors_loop(self) -> List[str]:
        return ["test_set"]

    def train(self, n_path: int = 10, n_epochs: int = 50, **kwargs) -> float:
        """Train the encoders ``n_path`` times from their initial state; return the best test ELBO."""
        for _ in range(n_path):
            self.model.z_encoder.load_state_dict(self.z_encoder_state)
            self.model.l_encoder.load_state_dict(self.l_encoder_state)
            super().train(n_epochs, params=self.params, **kwargs)
        return min(self.history["elbo_test_set"])
