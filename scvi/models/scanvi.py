"""scANVI: single-cell annotation using variational inference (Xu et al. 2019)."""

import logging
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.distributions import Categorical, Normal
from torch.distributions import kl_divergence as kl

from scvi.models._base_modules import Decoder, Encoder
from scvi.models.classifier import Classifier
from scvi.models.utils import broadcast_labels
from scvi.models.vae import VAE

logger = logging.getLogger(__name__)

PriorLike = Union[torch.Tensor, np.ndarray, Sequence[float]]


def _label_prior(y_prior: Optional[PriorLike], n_labels: int) -> torch.Tensor:
    """Prior over labels as a ``(1, n_labels)`` float tensor (uniform when None)."""
    if y_prior is None:
        return torch.ones(1, n_labels) / n_labels
    prior = torch.as_tensor(y_prior, dtype=torch.float32).detach().clone()
    if prior.numel() != n_labels:
        raise ValueError(
            f"y_prior has {prior.numel()} entries but the model has n_labels={n_labels}: "
            "give one prior probability per label, e.g. torch.tensor([[0.2, 0.5, 0.3]])."
        )
    if not torch.isfinite(prior).all() or (prior < 0).any() or prior.sum() <= 0:
        raise ValueError(
            "y_prior must hold non-negative, finite probabilities with a positive sum, "
            f"got {prior.flatten().tolist()}."
        )
    return prior.reshape(1, n_labels)


def _check_n_labels(model_name: str, n_labels: int) -> None:
    if n_labels < 1:
        raise ValueError(
            f"{model_name} needs n_labels >= 1 (the number of cell types), got {n_labels}; "
            "pass n_labels=gene_dataset.n_labels."
        )


def _check_labels(y: Optional[torch.Tensor], n_labels: int) -> None:
    """Raise a ValueError when labels fall outside ``0 .. n_labels - 1``."""
    if y is None or y.numel() == 0 or y.is_floating_point():
        return
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= n_labels:
        raise ValueError(
            f"Labels must be integers in [0, {n_labels - 1}] for a model built with "
            f"n_labels={n_labels}, but got values in [{low}, {high}]."
        )


def _kl_categorical(probs: torch.Tensor, y_prior: torch.Tensor) -> torch.Tensor:
    """``KL(Cat(probs) || Cat(y_prior))`` for every row of ``probs``."""
    return kl(
        Categorical(probs=probs),
        Categorical(probs=y_prior.expand(probs.size(0), -1)),
    )


class SCANVI(VAE):
    """Semi-supervised VAE for cell-type annotation (scANVI).

    The model extends :class:`~scvi.models.VAE` with a second latent layer: the cell state
    ``z1`` (the usual scVI latent space) is generated from a label ``y`` and a
    label-independent ``z2``, ``p(z1 | z2, y)``, which makes the prior over ``z1`` a
    mixture with one component per label. A classifier ``q(y | z1)`` predicts labels from
    the posterior mean of ``z1``. For unlabelled cells the loss is the expectation over
    ``q(y | z1)`` of the labelled loss, plus ``KL(q(y | z1) || p(y))`` (inspired by the M1 + M2
    model of Kingma et al. 2014).

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
        Dimension of both latent spaces ``z1`` and ``z2``.
    n_layers
        Number of hidden layers of the encoders and decoders.
    dropout_rate
        Dropout probability of the encoders.
    dispersion
        ``"gene"``, ``"gene-batch"``, ``"gene-label"`` or ``"gene-cell"`` (see
        :class:`~scvi.models.VAE`). ``"gene-label"`` needs the labels of every cell, so it
        cannot be used for unlabelled cells.
    log_variational
        Encode ``log(1 + x)`` instead of ``x``.
    reconstruction_loss
        ``"zinb"`` or ``"nb"``.
    y_prior
        Prior probabilities of the labels, ``(1, n_labels)``; uniform when None.
    labels_groups
        Group (coarse cell type) of every label, integers ``0 .. n_groups - 1``.
    use_labels_groups
        Classify hierarchically: the probability of a label is the probability of its
        group (from a second classifier) times its probability within the group.
    classifier_parameters
        Keyword arguments of the :class:`~scvi.models.Classifier` on ``z1`` that override
        ``n_hidden``, ``n_layers`` and ``dropout_rate``.

    Examples
    --------
    >>> gene_dataset = CortexDataset()
    >>> scanvi = SCANVI(gene_dataset.nb_genes, n_batch=0, n_labels=gene_dataset.n_labels)
    >>> scanvi = SCANVI(100, n_labels=3, y_prior=torch.tensor([[0.1, 0.5, 0.4]]),
    ...                 labels_groups=[0, 0, 1], use_labels_groups=True)
    """

    def __init__(
        self,
        n_input: int,
        n_batch: int = 0,
        n_labels: int = 0,
        n_hidden: int = 128,
        n_latent: int = 10,
        n_layers: int = 1,
        dropout_rate: float = 0.1,
        dispersion: str = "gene",
        log_variational: bool = True,
        reconstruction_loss: str = "zinb",
        y_prior=None,
        labels_groups: Sequence[int] = None,
        use_labels_groups: bool = False,
        classifier_parameters: dict = {},  # noqa: B006 -- 0.5 signature; never mutated
    ):
        _check_n_labels("SCANVI", n_labels)
        super().__init__(
            n_input,
            n_batch=n_batch,
            n_labels=n_labels,
            n_hidden=n_hidden,
            n_latent=n_latent,
            n_layers=n_layers,
            dropout_rate=dropout_rate,
            dispersion=dispersion,
            log_variational=log_variational,
            reconstruction_loss=reconstruction_loss,
        )
        cls_parameters: Dict[str, Any] = dict(
            n_layers=n_layers, n_hidden=n_hidden, dropout_rate=dropout_rate
        )
        cls_parameters.update(classifier_parameters or {})
        self.classifier = Classifier(n_latent, n_labels=n_labels, **cls_parameters)
        self.encoder_z2_z1 = Encoder(
            n_latent,
            n_latent,
            n_cat_list=[n_labels],
            n_layers=n_layers,
            n_hidden=n_hidden,
            dropout_rate=dropout_rate,
        )
        self.decoder_z1_z2 = Decoder(
            n_latent,
            n_latent,
            n_cat_list=[n_labels],
            n_layers=n_layers,
            n_hidden=n_hidden,
        )
        self.y_prior = torch.nn.Parameter(
            _label_prior(y_prior, n_labels), requires_grad=False
        )

        self.use_labels_groups = use_labels_groups
        self.labels_groups = (
            None if labels_groups is None else np.asarray(labels_groups)
        )
        if use_labels_groups:
            self.n_groups = self._check_groups(self.labels_groups, n_labels)
            self.classifier_groups = Classifier(
                n_latent, n_hidden, self.n_groups, n_layers, dropout_rate
            )
            # One 0/1 mask over the labels per group, stored as in scVI 0.5.
            self.groups_index = torch.nn.ParameterList(
                torch.nn.Parameter(
                    torch.from_numpy((self.labels_groups == group).astype(np.uint8)),
                    requires_grad=False,
                )
                for group in range(self.n_groups)
            )

    @staticmethod
    def _check_groups(labels_groups: Optional[np.ndarray], n_labels: int) -> int:
        """Validate the label groups; return the number of groups."""
        if labels_groups is None:
            raise ValueError(
                "use_labels_groups=True needs labels_groups, one group per label."
            )
        if labels_groups.shape != (n_labels,) or not np.issubdtype(
            labels_groups.dtype, np.integer
        ):
            raise ValueError(
                f"labels_groups must hold one integer group per label ({n_labels} values), "
                f"got {labels_groups.tolist()}."
            )
        groups = np.unique(labels_groups)
        if not np.array_equal(groups, np.arange(len(groups))):
            raise ValueError(
                "labels_groups must number the groups 0, 1, ..., n_groups - 1 without gaps, "
                f"got groups {groups.tolist()}."
            )
        return len(groups)

    def _group_masks(self) -> torch.Tensor:
        """``(n_groups, n_labels)`` float matrix: row ``g`` marks the labels of group ``g``."""
        return torch.stack([mask.float() for mask in self.groups_index])

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Label probabilities of cells ``x``, from the posterior mean of ``z1``.

        With label groups, each label's probability within its group is renormalised and
        multiplied by the probability of the group.
        """
        qz_m = self.z_encoder(self._encoder_input(x))[0]
        probs = self.classifier(qz_m)
        if not self.use_labels_groups:
            return probs
        masks = self._group_masks()
        group_probs = self.classifier_groups(qz_m) @ masks
        within_group_total = (probs @ masks.t()) @ masks
        return probs / (within_group_total + 1e-8) * group_probs

    def get_latents(
        self, x: torch.Tensor, y: Optional[torch.Tensor] = None
    ) -> List[torch.Tensor]:
        """Return ``[z1, z2]``: a sample of ``z1`` and ``z2`` given it and ``y``.

        ``z2`` is its posterior mean in evaluation mode and a sample in training mode.
        ``y`` (integer labels ``(batch, 1)`` or one-hot) is required when ``n_labels > 1``.
        """
        z1 = super().get_latents(x)[0]
        qz2_m, _, z2 = self.encoder_z2_z1(z1, y)
        return [z1, z2 if self.training else qz2_m]

    def inference(
        self,
        x: torch.Tensor,
        batch_index: Optional[torch.Tensor] = None,
        y: Optional[torch.Tensor] = None,
        n_samples: int = 1,
    ) -> Dict[str, torch.Tensor]:
        """Same as :meth:`VAE.inference`; ``dispersion="gene-label"`` requires ``y``."""
        if self.dispersion == "gene-label" and y is None:
            raise ValueError(
                "SCANVI with dispersion='gene-label' needs the label of every cell, but "
                "y is None (unlabelled cells); use dispersion='gene' or 'gene-batch'."
            )
        return super().inference(x, batch_index=batch_index, y=y, n_samples=n_samples)

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
        ``(reconstruction, kl_local, 0.0)``. The per-cell ``reconstruction`` holds the
        negative log-likelihood of the counts plus ``log q(z1|x) - log p(z1|z2, y)``;
        ``kl_local`` holds ``KL(q(z2|z1, y) || p(z2))`` and ``KL(q(l|x) || p(l))``. For an
        unlabelled minibatch the label-dependent terms are averaged over ``q(y | z1)``
        and ``kl_local`` gains ``KL(q(y | z1) || p(y))``.
        """
        _check_labels(y, self.n_labels)
        outputs = self.inference(x, batch_index, y)
        qz1_m, qz1_v, z1 = outputs["qz_m"], outputs["qz_v"], outputs["z"]

        # Labelled: one-hot y. Unlabelled: every label, each paired with a copy of z1.
        ys, z1s = broadcast_labels(y, z1, n_broadcast=self.n_labels)
        qz2_m, qz2_v, z2 = self.encoder_z2_z1(z1s, ys)
        pz1_m, pz1_v = self.decoder_z1_z2(z2, ys)

        reconst_loss = self.get_reconstruction_loss(
            x, outputs["px_rate"], outputs["px_r"], outputs["px_dropout"]
        )
        kl_z2 = kl(
            Normal(qz2_m, qz2_v.sqrt()),
            Normal(torch.zeros_like(qz2_m), torch.ones_like(qz2_v)),
        ).sum(dim=1)
        neg_log_pz1 = -Normal(pz1_m, pz1_v.sqrt()).log_prob(z1s).sum(dim=-1)
        log_qz1 = Normal(qz1_m, qz1_v.sqrt()).log_prob(z1).sum(dim=-1)
        kl_l = kl(
            Normal(outputs["ql_m"], outputs["ql_v"].sqrt()),
            Normal(local_l_mean, local_l_var.sqrt()),
        ).sum(dim=1)

        if y is not None:
            return reconst_loss + log_qz1 + neg_log_pz1, kl_z2 + kl_l, 0.0

        probs = self.classifier(z1)

        def expected(per_label: torch.Tensor) -> torch.Tensor:
            return (per_label.view(self.n_labels, -1).t() * probs).sum(dim=1)

        reconst_loss = reconst_loss + log_qz1 + expected(neg_log_pz1)
        kl_local = expected(kl_z2) + _kl_categorical(probs, self.y_prior) + kl_l
        return reconst_loss, kl_local, 0.0
