"""VAEC: a label-conditioned VAE for semi-supervised annotation (M2 model of Kingma et al. 2014)."""

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch.distributions import Normal
from torch.distributions import kl_divergence as kl

from scvi.models._base_modules import DecoderSCVI, Encoder
from scvi.models.classifier import Classifier
from scvi.models.scanvi import (
    _check_labels,
    _check_n_labels,
    _kl_categorical,
    _label_prior,
)
from scvi.models.utils import broadcast_labels
from scvi.models.vae import VAE


class VAEC(VAE):
    """Semi-supervised VAE whose latent encoder and decoder are conditioned on the label.

    ``q(z | x, y)`` and ``p(x | z, y, batch)`` both take the one-hot label; a classifier
    ``q(y | x)`` on ``log(1 + x)`` predicts it. Unlabelled cells are handled by summing the
    labelled loss over all labels weighted by ``q(y | x)``, plus ``KL(q(y | x) || p(y))``.

    Parameters
    ----------
    n_input
        Number of genes.
    n_batch
        Number of batches.
    n_labels
        Number of labels (cell types); at least 1.
    n_hidden
        Width of the hidden layers.
    n_latent
        Dimension of the latent space.
    n_layers
        Number of hidden layers of the encoder, decoder and classifier.
    dropout_rate
        Dropout probability of the encoders and of the classifier.
    y_prior
        Prior probabilities of the labels, ``(1, n_labels)``; uniform when None.
    dispersion
        ``"gene"``, ``"gene-batch"``, ``"gene-label"`` or ``"gene-cell"`` (see
        :class:`~scvi.models.VAE`).
    log_variational
        Encode ``log(1 + x)`` instead of ``x`` in the latent encoder (the library encoder
        and the classifier always use ``log(1 + x)``).
    reconstruction_loss
        ``"zinb"`` or ``"nb"``.

    Examples
    --------
    >>> gene_dataset = CortexDataset()
    >>> vaec = VAEC(gene_dataset.nb_genes, n_batch=0, n_labels=gene_dataset.n_labels)
    """

    def __init__(
        self,
        n_input,
        n_batch,
        n_labels,
        n_hidden=128,
        n_latent=10,
        n_layers=1,
        dropout_rate=0.1,
        y_prior=None,
        dispersion="gene",
        log_variational=True,
        reconstruction_loss="zinb",
    ):
        _check_n_labels("VAEC", n_labels)
        super().__init__(
            n_input,
            n_batch,
            n_labels,
            n_hidden=n_hidden,
            n_latent=n_latent,
            n_layers=n_layers,
            dropout_rate=dropout_rate,
            dispersion=dispersion,
            log_variational=log_variational,
            reconstruction_loss=reconstruction_loss,
        )
        # The unconditioned encoder and decoder built by VAE are replaced (in place, so
        # state_dict keys keep their order); building them first also keeps the random
        # initialisation identical to scVI 0.5 for a given torch seed.
        self.z_encoder = Encoder(
            n_input,
            n_latent,
            n_cat_list=[n_labels],
            n_hidden=n_hidden,
            n_layers=n_layers,
            dropout_rate=dropout_rate,
        )
        self.decoder = DecoderSCVI(
            n_latent,
            n_input,
            n_cat_list=[n_batch, n_labels],
            n_layers=n_layers,
            n_hidden=n_hidden,
        )
        self.y_prior = torch.nn.Parameter(
            _label_prior(y_prior, n_labels), requires_grad=False
        )
        self.classifier = Classifier(
            n_input, n_hidden, n_labels, n_layers=n_layers, dropout_rate=dropout_rate
        )

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Label probabilities of cells ``x`` (from ``log(1 + x)``)."""
        return self.classifier(torch.log1p(x))

    def _inverse_dispersion(
        self,
        px_r: Optional[torch.Tensor],
        batch_index: Optional[torch.Tensor],
        y: Optional[torch.Tensor],
    ) -> torch.Tensor:
        # Inside forward the labels arrive one-hot encoded (float); use them directly.
        if self.dispersion == "gene-label" and y is not None and y.is_floating_point():
            return torch.exp(F.linear(y, self.px_r))
        return super()._inverse_dispersion(px_r, batch_index, y)

    def forward(
        self,
        x: torch.Tensor,
        local_l_mean: torch.Tensor,
        local_l_var: torch.Tensor,
        batch_index: Optional[torch.Tensor] = None,
        y: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, float]:
        """Loss terms of a minibatch, labelled (``y`` given) or unlabelled (``y`` None).

        Returns
        -------
        ``(reconstruction, KL(z) + KL(l), 0.0)`` per cell; for an unlabelled minibatch
        the label-dependent terms are averaged over ``q(y | x)`` and the KL gains
        ``KL(q(y | x) || p(y))``.
        """
        _check_labels(y, self.n_labels)
        log_x = torch.log1p(x)
        ql_m, ql_v, _ = self.l_encoder(log_x)

        # Labelled: one-hot y. Unlabelled: every label, each with a copy of the cells.
        ys, xs, batch_index_s = broadcast_labels(
            y, x, batch_index, n_broadcast=self.n_labels
        )
        outputs = self.inference(xs, batch_index_s, ys)
        qz_m, qz_v = outputs["qz_m"], outputs["qz_v"]
        reconst_loss = self.get_reconstruction_loss(
            xs, outputs["px_rate"], outputs["px_r"], outputs["px_dropout"]
        )
        kl_z = kl(
            Normal(qz_m, qz_v.sqrt()),
            Normal(torch.zeros_like(qz_m), torch.ones_like(qz_v)),
        ).sum(dim=1)
        kl_l = kl(
            Normal(ql_m, ql_v.sqrt()), Normal(local_l_mean, local_l_var.sqrt())
        ).sum(dim=1)

        if y is not None:
            return reconst_loss, kl_z + kl_l, 0.0

        probs = self.classifier(log_x)

        def expected(per_label: torch.Tensor) -> torch.Tensor:
            return (per_label.view(self.n_labels, -1).t() * probs).sum(dim=1)

        kl_local = expected(kl_z) + _kl_categorical(probs, self.y_prior) + kl_l
        return expected(reconst_loss), kl_local, 0.0
