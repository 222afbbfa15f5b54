"""Training of gimVI (:class:`~scvi.models.JVAE`) on several datasets at once."""

import logging
from functools import partial
from itertools import cycle
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn
from torch.distributions import Normal

from scvi.dataset.dataset import GeneExpressionDataset
from scvi.inference._posterior import metric
from scvi.inference._totalvi_helpers import log_marginal_likelihood
from scvi.inference.posterior import Posterior
from scvi.inference.trainer import Trainer
from scvi.models.log_likelihood import compute_elbo

logger = logging.getLogger(__name__)


class JPosterior(Posterior):
    """Posterior over the cells of one dataset of a :class:`~scvi.models.JVAE`.

    Parameters
    ----------
    *args, **kwargs
        Arguments of :class:`~scvi.inference.Posterior`.
    mode
        Index of the dataset: the encoder head that reads these cells.
    """

    def __init__(self, *args, mode: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.mode = mode

    @metric("min")
    @torch.no_grad()
    def elbo(self) -> float:
        """Negative ELBO per cell, through encoder head ``mode``."""
        elbo = compute_elbo(self.model, self, mode=self.mode)
        logger.debug("ELBO : %.4f", elbo)
        return elbo

    @metric("min")
    @torch.no_grad()
    def reconstruction_error(self) -> float:
        """Negative log-likelihood of the measured genes per cell, at one posterior sample."""
        total = 0.0
        for x, _, _, batch_index, labels in self._minibatches():
            _, _, z, _, _, library = self.model.encode(x, self.mode)
            _, px_r, px_rate, px_dropout = self.model.decode(
                z, self.mode, library, batch_index, labels
            )
            observed = self.model.indices_mappings[self.mode]
            total += (
                self.model.reconstruction_loss(
                    x,
                    px_rate[:, observed],
                    px_r[:, observed],
                    px_dropout[:, observed],
                    self.mode,
                )
                .sum()
                .item()
            )
        return total / self.nb_cells

    @torch.no_grad()
    def marginal_ll(self, n_mc_samples: int = 1000) -> float:
        """Importance-sampled estimate of ``-log p(x)`` per cell (measured genes only).

        ``z`` (and ``l`` where it is modelled) are drawn ``n_mc_samples`` times from the
        encoder's posterior; an observed library size enters as a constant.
        """
        total = 0.0
        for tensors in self._minibatches():
            x = tensors[0]
            log_weights = partial(
                self._log_importance_weights, tensors, self.model.encode(x, self.mode)
            )
            log_p = log_marginal_likelihood(log_weights, n_mc_samples, x.numel() + 1)
            total += log_p.sum().item()
        ll = -total / self.nb_cells
        logger.debug("True LL : %.4f", ll)
        return ll

    def _log_importance_weights(
        self,
        tensors: Sequence[torch.Tensor],
        encoded: Tuple[Optional[torch.Tensor], ...],
        n_samples: int,
    ) -> torch.Tensor:
        """``log p(x, z, l) - log q(z, l | x)`` of ``n_samples`` draws, ``(n_samples, batch)``.

        ``encoded`` is the minibatch's ``model.encode`` output; ``l`` is drawn only when
        the head models it (``ql_m`` is not None).
        """
        model, mode = self.model, self.mode
        x, l_mean, l_var, batch_index, labels = tensors
        qz_m, qz_v, _, ql_m, ql_v, library = encoded
        q_z = Normal(qz_m, qz_v.sqrt())
        z = q_z.sample((n_samples,))
        log_w = Normal(0.0, 1.0).log_prob(z).sum(-1) - q_z.log_prob(z).sum(-1)
        libraries = library.expand(n_samples, -1, -1)
        if ql_m is not None:
            q_l = Normal(ql_m, ql_v.sqrt())
            libraries = q_l.sample((n_samples,))
            log_w += Normal(l_mean, l_var.sqrt()).log_prob(libraries).sum(-1)
            log_w -= q_l.log_prob(libraries).sum(-1)
        _, px_r, px_rate, px_dropout = model.decode(
            z.reshape(-1, z.size(-1)),
            mode,
            libraries.reshape(-1, 1),
            batch_index.repeat(n_samples, 1),
            None if labels is None else labels.repeat(n_samples, 1),
        )
        px_r = px_r.expand_as(px_rate)
        observed = model.indices_mappings[mode]
        reconstruction = model.reconstruction_loss(
            x.repeat(n_samples, 1),
            px_rate[:, observed],
            px_r[:, observed],
            px_dropout[:, observed],
            mode,
        )
        return log_w - reconstruction.view(n_samples, -1)

    def _latent_sample(self, x: torch.Tensor, give_mean: bool) -> torch.Tensor:
        """Latent codes of the cells ``x`` through encoder head ``mode``."""
        return self.model.sample_from_posterior_z(
            x, mode=self.mode, deterministic=give_mean
        )

    @torch.no_grad()
    def get_imputed_values(
        self,
        deterministic: bool = True,
        normalized: bool = True,
        decode_mode: Optional[int] = None,
    ) -> np.ndarray:
        """Expression of all the model's genes for these cells, ``(n_cells, total_genes)``.

        Parameters
        ----------
        deterministic
            Use the posterior means of the latent variables instead of samples.
        normalized
            Return frequencies (:meth:`~scvi.models.JVAE.sample_scale`) instead of
            expected counts (:meth:`~scvi.models.JVAE.sample_rate`).
        decode_mode
            Dataset whose gene subset normalises the frequencies (default: ``mode``).
        """
        method = self.model.sample_scale if normalized else self.model.sample_rate
        return self._collect(
            lambda x, b, y: method(
                x, self.mode, b, y, deterministic=deterministic, decode_mode=decode_mode
            )
        )

    @torch.no_grad()
    def get_sample_scale(self) -> np.ndarray:
        """Expression frequencies of all genes at a posterior sample, ``(n_cells, total_genes)``."""
        return self.get_imputed_values(deterministic=False, normalized=True)

    @torch.no_grad()
    def imputation(self, n_samples: int = 1) -> np.ndarray:
        """Expected counts of all genes averaged over ``n_samples`` posterior samples."""
        rates = [
            self.get_imputed_values(deterministic=False, normalized=False)
            for _ in range(n_samples)
        ]
        return np.mean(rates, axis=0)


class JVAETrainer(Trainer):
    """Adversarial training of a :class:`~scvi.models.JVAE` on several datasets (gimVI).

    Each step draws one minibatch per dataset (the largest dataset sets the epoch; the
    others are cycled). When there are several datasets and ``kappa > 0``, a
    discriminator first learns to tell the datasets apart from their latent codes, then
    the model is updated to fool it; finally the model takes a step on its negative
    ELBO, with the KL terms weighted up from 0 to 1 over ``n_epochs_kl_warmup`` epochs.

    Parameters
    ----------
    model
        A :class:`~scvi.models.JVAE`.
    discriminator
        A classifier of latent codes returning one logit per dataset (e.g.
        ``Classifier(n_latent, 32, n_labels=len(gene_dataset_list), n_layers=3,
        logits=True)``).
    gene_dataset_list
        One dataset per model head, in the order of ``model.n_input_list``.
    train_size
        Fraction of each dataset's cells used for training.
    use_cuda
        Train on the GPU when one is available.
    kappa
        Weight of the adversarial losses (0 disables the discriminator).
    n_epochs_kl_warmup
        Number of epochs of linear KL warm-up (None: no warm-up).
    **kwargs
        Other arguments of :class:`~scvi.inference.Trainer`.

    Examples
    --------
    >>> model = JVAE([seq.nb_genes, fish.nb_genes], seq.nb_genes,
    ...              [slice(None), fish_positions], ["zinb", "nb"], [True, False],
    ...              n_batch=2)
    >>> discriminator = Classifier(10, 32, 2, 3, logits=True)
    >>> trainer = JVAETrainer(model, discriminator, [seq, fish])
    >>> trainer.train(n_epochs=200)
    >>> imputed_seq, imputed_fish = trainer.get_imputed_values(normalized=True)
    """

    default_metrics_to_monitor = ["elbo"]

    def __init__(
        self,
        model: nn.Module,
        discriminator: nn.Module,
        gene_dataset_list: List[GeneExpressionDataset],
        train_size: float = 0.8,
        use_cuda: bool = True,
        kappa: float = 1.0,
        n_epochs_kl_warmup: int = 400,
        **kwargs,
    ):
        _check_datasets(model, gene_dataset_list)
        if kappa < 0:
            raise ValueError(f"kappa must be non-negative, got {kappa}.")
        super().__init__(model, gene_dataset_list[0], use_cuda=use_cuda, **kwargs)
        self.n_epochs_kl_warmup = n_epochs_kl_warmup
        self.kappa = kappa
        self.all_dataset = [
            self.create_posterior(
                gene_dataset=dataset, type_class=partial(JPosterior, mode=mode)
            )
            for mode, dataset in enumerate(gene_dataset_list)
        ]
        self.n_dataset = len(self.all_dataset)
        splits = [
            self.train_test_validation(
                model, dataset, train_size, type_class=partial(JPosterior, mode=mode)
            )
            for mode, dataset in enumerate(gene_dataset_list)
        ]
        self.all_train, self.all_test, self.all_validation = zip(*splits)
        for prefix, posteriors in (("train", self.all_train), ("test", self.all_test)):
            for mode, posterior in enumerate(posteriors):
                self.register_posterior(f"{prefix}_{mode}", posterior)
                posterior.to_monitor = ["elbo"]
        self.discriminator = discriminator
        if self.use_cuda:
            self.discriminator.cuda()
        self.kl_weight = 1.0
        self.track_disc: List[float] = []

    def on_epoch_begin(self) -> None:
        """Set the KL warm-up weight ``min(1, epoch / n_epochs_kl_warmup)``."""
        if self.n_epochs_kl_warmup is not None:
            self.kl_weight = min(1.0, self.epoch / self.n_epochs_kl_warmup)
        else:
            self.kl_weight = 1.0

    @property
    def posteriors_loop(self) -> List[str]:
        """``['train_0', 'train_1', ...]``: one training posterior per dataset."""
        return [f"train_{mode}" for mode in range(self.n_dataset)]

    def data_loaders_loop(self) -> Iterator[Tuple[List[torch.Tensor], ...]]:
        """One minibatch per dataset; the largest dataset sets the length, others cycle."""
        posteriors = [self._posteriors[name] for name in self.posteriors_loop]
        largest = int(np.argmax([p.gene_dataset.nb_cells for p in posteriors]))
        loaders = [
            posterior if mode == largest else cycle(posterior)
            for mode, posterior in enumerate(posteriors)
        ]
        return zip(*loaders)

    def train(
        self,
        n_epochs: int = 20,
        lr_d: float = 1e-3,
        lr_g: float = 1e-3,
        eps: float = 0.01,
    ) -> None:
        """Train the model (and the discriminator) with Adam for ``n_epochs`` epochs.

        Parameters
        ----------
        n_epochs
            Number of epochs (passes over the largest dataset).
        lr_d
            Learning rate of the discriminator.
        lr_g
            Learning rate of the model.
        eps
            Adam's ``eps`` for both optimizers.

        Raises
        ------
        FloatingPointError
            When the model's loss becomes NaN or infinite; the model is restored to its
            weights at the start of the failing epoch.
        """
        train_discriminator = self.n_dataset > 1 and self.kappa > 0
        if train_discriminator:
            self._check_discriminator()
        self.model.train()
        self.discriminator.train()
        d_optimizer = torch.optim.Adam(
            [p for p in self.discriminator.parameters() if p.requires_grad],
            lr=lr_d,
            eps=eps,
        )
        self.optimizer = g_optimizer = torch.optim.Adam(
            [p for p in self.model.parameters() if p.requires_grad], lr=lr_g, eps=eps
        )

        def step(tensors: Tuple[List[torch.Tensor], ...]) -> torch.Tensor:
            if train_discriminator:
                latents = [
                    self.model.sample_from_posterior_z(x, mode=mode)
                    for mode, (x, *_) in enumerate(tensors)
                ]
                d_loss = self.kappa * self.loss_discriminator(
                    [z.detach() for z in latents], True
                )
                d_optimizer.zero_grad()
                d_loss.backward()
                d_optimizer.step()

                fool_loss = self.kappa * self.loss_discriminator(latents, False)
                g_optimizer.zero_grad()
                fool_loss.backward()
                g_optimizer.step()

            g_loss = self.loss(tensors)
            g_optimizer.zero_grad()
            g_loss.backward()
            g_optimizer.step()
            return g_loss

        self._fit(
            n_epochs,
            step,
            "a learning rate too high, data that are not raw counts, or cells with no "
            "counts in a dataset whose library size is not modelled (its log is -inf).",
        )
        self.discriminator.eval()

    def _check_discriminator(self) -> None:
        """Check that the discriminator returns one logit per dataset."""
        was_training = self.discriminator.training
        self.discriminator.eval()
        device = next(self.model.parameters()).device
        with torch.no_grad():
            logits = self.discriminator(
                torch.zeros(2, self.model.n_latent, device=device)
            )
        self.discriminator.train(was_training)
        if logits.dim() != 2 or logits.size(1) != self.n_dataset:
            raise ValueError(
                f"The discriminator maps a (cells, {self.model.n_latent}) latent matrix to "
                f"shape {tuple(logits.shape)}; it must return (cells, {self.n_dataset}) "
                "logits, one per dataset."
            )

    def loss_discriminator(
        self,
        latent_tensors: List[torch.Tensor],
        predict_true_class: bool = True,
        return_details: bool = False,
    ) -> Union[List[torch.Tensor], torch.Tensor]:
        """Cross-entropy of the discriminator on the latent codes of each dataset.

        Parameters
        ----------
        latent_tensors
            Latent codes of a minibatch of each dataset, in dataset order.
        predict_true_class
            Target the true dataset (the discriminator's loss) or, when False, a uniform
            distribution over the *other* datasets (the model's loss for fooling it).
        return_details
            Return the list of per-dataset losses instead of their sum.
        """
        n_classes = self.n_dataset
        losses = []
        for mode, z in enumerate(latent_tensors):
            log_probs = torch.log_softmax(self.discriminator(z), dim=1)
            if predict_true_class:
                target = torch.zeros(n_classes, device=z.device)
                target[mode] = 1.0
            else:
                target = torch.full(
                    (n_classes,), 1.0 / (n_classes - 1), device=z.device
                )
                target[mode] = 0.0
            losses.append(-(log_probs * target).sum(dim=1).mean())
        if return_details:
            return losses
        return torch.stack(losses).sum()

    def loss(
        self, tensors: Iterable[Sequence[torch.Tensor]], return_details: bool = False
    ) -> Union[torch.Tensor, Tuple[List[torch.Tensor], List[torch.Tensor]]]:
        """KL-annealed negative ELBO of one minibatch per dataset, averaged over all cells.

        Parameters
        ----------
        tensors
            One minibatch (list of tensors) per dataset, in dataset order.
        return_details
            Return ``(reconstruction losses, KL divergences)``, the per-dataset means,
            instead of the total.
        """
        reconstruction_losses, kl_divergences, losses = [], [], []
        total_batch_size = 0
        for mode, (x, l_mean, l_var, batch_index, labels, *_) in enumerate(tensors):
            reconstruction, kl_divergence, _ = self.model(
                x, l_mean, l_var, batch_index, labels, mode=mode
            )
            losses.append(
                torch.mean(reconstruction + self.kl_weight * kl_divergence) * x.size(0)
            )
            total_batch_size += x.size(0)
            if return_details:
                reconstruction_losses.append(reconstruction.mean())
                kl_divergences.append(kl_divergence.mean())
        if return_details:
            return reconstruction_losses, kl_divergences
        return torch.stack(losses).sum() / total_batch_size

    @torch.no_grad()
    def get_discriminator_confusion(self) -> np.ndarray:
        """Mean predicted dataset probabilities of each dataset's cells, ``(n, n)``.

        Row ``i`` averages the discriminator's softmax over the cells of dataset ``i``
        (latent means); a well-mixed latent space gives a uniform matrix.
        """
        self.model.eval()
        self.discriminator.eval()
        confusion = []
        for posterior in self.all_dataset:
            latent = posterior.get_latent(sample=False)[0]
            device = next(self.discriminator.parameters()).device
            probs = torch.softmax(
                self.discriminator(torch.from_numpy(latent).to(device)), dim=1
            )
            confusion.append(probs.mean(dim=0).cpu().numpy())
        return np.array(confusion)

    @torch.no_grad()
    def get_loss_magnitude(
        self, one_sample: bool = False
    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Reconstruction, KL and discriminator losses per dataset, summed over minibatches.

        Parameters
        ----------
        one_sample
            Use a single minibatch per dataset (faster, noisier).
        """
        total_reconstruction = np.zeros(self.n_dataset)
        total_kl_divergence = np.zeros(self.n_dataset)
        total_discriminator = np.zeros(self.n_dataset)
        for tensors in self.data_loaders_loop():
            reconstruction_losses, kl_divergences = self.loss(
                tensors, return_details=True
            )
            discriminator_losses = self.loss_discriminator(
                [
                    self.model.sample_from_posterior_z(x, mode=mode)
                    for mode, (x, *_) in enumerate(tensors)
                ],
                return_details=True,
            )
            for mode in range(self.n_dataset):
                total_reconstruction[mode] += reconstruction_losses[mode].item()
                total_kl_divergence[mode] += kl_divergences[mode].item()
                total_discriminator[mode] += discriminator_losses[mode].item()
            if one_sample:
                break
        return total_reconstruction, total_kl_divergence, total_discriminator

    def get_latent(self, deterministic: bool = True) -> List[np.ndarray]:
        """Latent codes of all cells of each dataset, in dataset order.

        Parameters
        ----------
        deterministic
            Use the posterior means instead of samples.
        """
        self.model.eval()
        return [
            posterior.get_latent(sample=not deterministic)[0]
            for posterior in self.all_dataset
        ]

    def get_imputed_values(
        self,
        deterministic: bool = True,
        normalized: bool = True,
        decode_mode: Optional[int] = None,
    ) -> List[np.ndarray]:
        """Expression of all the model's genes for all cells of each dataset.

        Parameters
        ----------
        deterministic
            Use the posterior means of the latent variables instead of samples.
        normalized
            Return frequencies instead of expected counts.
        decode_mode
            Normalise over the genes of this dataset instead of each cell's own dataset.
        """
        self.model.eval()
        return [
            posterior.get_imputed_values(deterministic, normalized, decode_mode)
            for posterior in self.all_dataset
        ]


def _check_datasets(
    model: nn.Module, datasets: Sequence[GeneExpressionDataset]
) -> None:
    """Check the datasets against the model's heads and gene mappings."""
    n_input_list = getattr(model, "n_input_list", None)
    if n_input_list is None:
        raise TypeError(
            f"JVAETrainer trains a JVAE, got a {type(model).__name__} (no n_input_list)."
        )
    if not isinstance(datasets, (list, tuple)) or len(datasets) == 0:
        raise ValueError(
            "gene_dataset_list must be a non-empty list of datasets, one per model head."
        )
    if len(datasets) != len(n_input_list):
        raise ValueError(
            f"The model has {len(n_input_list)} dataset heads but gene_dataset_list has "
            f"{len(datasets)} datasets; give one dataset per head, in the same order."
        )
    for mode, (dataset, n_input) in enumerate(zip(datasets, n_input_list)):
        if dataset.nb_cells == 0:
            raise ValueError(f"Dataset {mode} has no cells.")
        if dataset.nb_genes != n_input:
            raise ValueError(
                f"Dataset {mode} has {dataset.nb_genes} genes but the model's head {mode} "
                f"expects dim_input_list[{mode}]={n_input}."
            )
    names = [getattr(dataset, "gene_names", None) for dataset in datasets]
    if any(n is None for n in names):
        return
    positions = [np.arange(model.total_genes)[m] for m in model.indices_mappings]
    owner = {}
    for mode, (mode_names, mode_positions) in enumerate(zip(names, positions)):
        for name, position in zip(map(str, mode_names), mode_positions.tolist()):
            if position not in owner:
                owner[position] = (mode, name)
                continue
            other_mode, other_name = owner[position]
            if other_name == name:
                continue
            found = np.flatnonzero(np.asarray(names[other_mode]).astype(str) == name)
            where = (
                f"{name!r} is absent from dataset {other_mode}"
                if found.size == 0
                else f"{name!r} is gene {found[0]} of dataset {other_mode}"
            )
            raise ValueError(
                f"Mismatched gene mappings: gene {name!r} of dataset {mode} is mapped to "
                f"output gene {position}, which is {other_name!r} in dataset "
                f"{other_mode}; {where}. Build indices_mappings from the gene names, "
                "and keep only genes that the reference (scRNA-seq) dataset measures."
            )
    unmeasured = model.total_genes - len(owner)
    if unmeasured:
        logger.warning(
            "%d of the model's %d output genes are measured in no dataset; their "
            "imputed values are not informed by any data.",
            unmeasured,
            model.total_genes,
        )
