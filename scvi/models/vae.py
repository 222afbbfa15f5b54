"""scVI: the variational auto-encoder for single-cell counts (VAE) and its linearly decoded variant."""

from typing import Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal
from torch.distributions import kl_divergence as kl

from scvi._settings import settings
from scvi.models._base_modules import DecoderSCVI, Encoder, LinearDecoderSCVI
from scvi.models._fused_likelihood import gaussian_kl_sum, nb_nll_sum
from scvi.models.log_likelihood import log_nb_positive, log_zinb_positive
from scvi.models.utils import check_option, one_hot

_DISPERSIONS = ("gene", "gene-batch", "gene-label", "gene-cell")


class VAE(nn.Module):
    """Variational auto-encoder of single-cell counts (scVI).

    Cells are encoded into a Gaussian latent ``z`` and a log-normal library size ``l``; the
    decoder maps ``z`` (and the batch) to gene frequencies, and counts follow a negative
    binomial (``nb``) or zero-inflated negative binomial (``zinb``) with mean
    ``exp(l) * frequency``.

    Parameters
    ----------
    n_input
        Number of genes.
    n_batch
        Number of batches; 0 or 1 means no batch correction.
    n_labels
        Number of labels (used by ``dispersion="gene-label"``).
    n_hidden
        Width of the hidden layers.
    n_latent
        Dimension of the latent space.
    n_layers
        Number of hidden layers of the ``z`` encoder and of the decoder.
    dropout_rate
        Dropout probability of the encoders.
    dispersion
        ``"gene"`` (one inverse dispersion per gene), ``"gene-batch"`` (per gene and batch),
        ``"gene-label"`` (per gene and label) or ``"gene-cell"`` (decoded per gene and cell).
    log_variational
        Encode ``log(1 + x)`` instead of ``x`` (numerical stability, not normalisation).
    reconstruction_loss
        ``"zinb"`` or ``"nb"``.

    Examples
    --------
    >>> dataset = CortexDataset()
    >>> vae = VAE(dataset.nb_genes, n_batch=dataset.n_batches, n_labels=dataset.n_labels)
    """

    _reconstruction_losses: Tuple[str, ...] = ("zinb", "nb")

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
    ):
        super().__init__()
        self.dispersion = check_option("dispersion", dispersion, _DISPERSIONS)
        self.reconstruction_loss = check_option(
            "reconstruction_loss", reconstruction_loss, self._reconstruction_losses
        )
        self.n_latent = n_latent
        self.log_variational = log_variational
        self.n_batch = n_batch
        self.n_labels = n_labels

        if dispersion == "gene":
            self.px_r = nn.Parameter(torch.randn(n_input))
        elif dispersion == "gene-batch":
            self.px_r = nn.Parameter(torch.randn(n_input, self._n_categories(n_batch)))
        elif dispersion == "gene-label":
            self.px_r = nn.Parameter(torch.randn(n_input, self._n_categories(n_labels)))

        self.z_encoder = Encoder(
            n_input,
            n_latent,
            n_layers=n_layers,
            n_hidden=n_hidden,
            dropout_rate=dropout_rate,
        )
        self.l_encoder = Encoder(
            n_input, 1, n_layers=1, n_hidden=n_hidden, dropout_rate=dropout_rate
        )
        self.decoder = self._build_decoder(
            n_latent, n_input, n_batch, n_layers, n_hidden
        )

    def _build_decoder(
        self, n_latent: int, n_input: int, n_batch: int, n_layers: int, n_hidden: int
    ) -> nn.Module:
        return DecoderSCVI(
            n_latent,
            n_input,
            n_cat_list=[n_batch],
            n_layers=n_layers,
            n_hidden=n_hidden,
        )

    def _n_categories(self, n: int) -> int:
        if n < 1:
            raise ValueError(
                f"dispersion={self.dispersion!r} needs at least one category: pass "
                "n_batch (for 'gene-batch') or n_labels (for 'gene-label') >= 1."
            )
        return n

    def _encoder_input(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log1p(x) if self.log_variational else x

    def get_latents(
        self, x: torch.Tensor, y: Optional[torch.Tensor] = None
    ) -> List[torch.Tensor]:
        """Return ``[sample_from_posterior_z(x, y)]``."""
        return [self.sample_from_posterior_z(x, y)]

    def sample_from_posterior_z(
        self, x: torch.Tensor, y: Optional[torch.Tensor] = None, give_mean: bool = False
    ) -> torch.Tensor:
        """Sample ``z ~ q(z | x)``, or return its mean when ``give_mean`` is True.

        Parameters
        ----------
        x
            Counts, ``(batch, n_input)``.
        y
            Labels, used only by label-conditioned subclasses.
        give_mean
            Return the posterior mean instead of a sample.
        """
        qz_m, _, z = self.z_encoder(self._encoder_input(x), y)
        return qz_m if give_mean else z

    def sample_from_posterior_l(self, x: torch.Tensor) -> torch.Tensor:
        """Sample the log library size ``l ~ q(l | x)``, shape ``(batch, 1)``."""
        return self.l_encoder(self._encoder_input(x))[2]

    def get_sample_scale(
        self,
        x: torch.Tensor,
        batch_index: Optional[torch.Tensor] = None,
        y: Optional[torch.Tensor] = None,
        n_samples: int = 1,
    ) -> torch.Tensor:
        """Expression frequencies ``px_scale`` at a posterior sample of ``z``."""
        return self.inference(x, batch_index=batch_index, y=y, n_samples=n_samples)[
            "px_scale"
        ]

    def get_sample_rate(
        self,
        x: torch.Tensor,
        batch_index: Optional[torch.Tensor] = None,
        y: Optional[torch.Tensor] = None,
        n_samples: int = 1,
    ) -> torch.Tensor:
        """NB means ``px_rate`` at posterior samples of ``z`` and ``l``."""
        return self.inference(x, batch_index=batch_index, y=y, n_samples=n_samples)[
            "px_rate"
        ]

    def get_reconstruction_loss(
        self,
        x: torch.Tensor,
        px_rate: torch.Tensor,
        px_r: torch.Tensor,
        px_dropout: torch.Tensor,
        **kwargs,
    ) -> torch.Tensor:
        """Negative log-likelihood of ``x`` summed over genes, one value per cell."""
        zero_inflation = px_dropout if self.reconstruction_loss == "zinb" else None
        if settings.fast_training:
            nonzero = getattr(x, "_scvi_nonzero", None)
            return nb_nll_sum(x, px_rate, px_r, zero_inflation, nonzero=nonzero)
        if zero_inflation is not None:
            return -log_zinb_positive(x, px_rate, px_r, zero_inflation).sum(dim=-1)
        return -log_nb_positive(x, px_rate, px_r).sum(dim=-1)

    def scale_from_z(
        self, sample_batch: torch.Tensor, fixed_batch: float
    ) -> torch.Tensor:
        """Expression frequencies of ``sample_batch`` decoded as if every cell came from ``fixed_batch``."""
        z = self.z_encoder(self._encoder_input(sample_batch))[2]
        ones = torch.ones_like(sample_batch[:, [0]])
        px_scale = self.decoder("gene", z, 4.0 * ones, fixed_batch * ones)[0]
        return px_scale

    def _inverse_dispersion(
        self,
        px_r: Optional[torch.Tensor],
        batch_index: Optional[torch.Tensor],
        y: Optional[torch.Tensor],
    ) -> torch.Tensor:
        """``theta`` for the configured dispersion mode (``px_r`` is the decoder's gene-cell output)."""
        if self.dispersion == "gene-label":
            px_r = F.linear(one_hot(y, self.n_labels), self.px_r)
        elif self.dispersion == "gene-batch":
            px_r = F.linear(one_hot(batch_index, self.n_batch), self.px_r)
        elif self.dispersion == "gene":
            px_r = self.px_r
        return torch.exp(px_r)

    def inference(
        self,
        x: torch.Tensor,
        batch_index: Optional[torch.Tensor] = None,
        y: Optional[torch.Tensor] = None,
        n_samples: int = 1,
    ) -> Dict[str, torch.Tensor]:
        """Encode ``x``, sample the latents and decode them.

        With ``n_samples > 1`` the latent tensors gain a leading sample dimension.

        Returns
        -------
        dict with ``px_scale``, ``px_r`` (inverse dispersion), ``px_rate``, ``px_dropout``,
        ``qz_m``, ``qz_v``, ``z``, ``ql_m``, ``ql_v`` and ``library``.
        """
        x_ = self._encoder_input(x)
        qz_m, qz_v, z = self.z_encoder(x_, y)
        ql_m, ql_v, library = self.l_encoder(x_)
        if n_samples > 1:
            qz_m = qz_m.unsqueeze(0).expand(n_samples, -1, -1)
            qz_v = qz_v.unsqueeze(0).expand(n_samples, -1, -1)
            z = Normal(qz_m, qz_v.sqrt()).sample()
            ql_m = ql_m.unsqueeze(0).expand(n_samples, -1, -1)
            ql_v = ql_v.unsqueeze(0).expand(n_samples, -1, -1)
            library = Normal(ql_m, ql_v.sqrt()).sample()
        px_scale, px_r, px_rate, px_dropout = self.decoder(
            self.dispersion, z, library, batch_index, y
        )
        return dict(
            px_scale=px_scale,
            px_r=self._inverse_dispersion(px_r, batch_index, y),
            px_rate=px_rate,
            px_dropout=px_dropout,
            qz_m=qz_m,
            qz_v=qz_v,
            z=z,
            ql_m=ql_m,
            ql_v=ql_v,
            library=library,
        )

    @staticmethod
    def _local_kl(
        outputs: Dict[str, torch.Tensor],
        local_l_mean: torch.Tensor,
        local_l_var: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Per-cell ``KL(q(z|x) || N(0, I))`` and ``KL(q(l|x) || p(l))`` from ``inference``'s outputs."""
        qz_m, qz_v = outputs["qz_m"], outputs["qz_v"]
        ql_m, ql_v = outputs["ql_m"], outputs["ql_v"]
        if settings.fast_training:
            return (
                gaussian_kl_sum(qz_m, qz_v),
                gaussian_kl_sum(ql_m, ql_v, local_l_mean, local_l_var),
            )
        kl_divergence_z = kl(
            Normal(qz_m, qz_v.sqrt()),
            Normal(torch.zeros_like(qz_m), torch.ones_like(qz_v)),
        ).sum(dim=1)
        kl_divergence_l = kl(
            Normal(ql_m, ql_v.sqrt()), Normal(local_l_mean, local_l_var.sqrt())
        ).sum(dim=1)
        return kl_divergence_z, kl_divergence_l

    def forward(
        self,
        x: torch.Tensor,
        local_l_mean: torch.Tensor,
        local_l_var: torch.Tensor,
        batch_index: Optional[torch.Tensor] = None,
        y: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, float]:
        """Loss terms of a minibatch.

        Parameters
        ----------
        x
            Counts, ``(batch, n_input)``.
        local_l_mean, local_l_var
            Mean and variance of the log-normal prior of the library size, ``(batch, 1)``.
        batch_index
            Batch of each cell, ``(batch, 1)``.
        y
            Label of each cell, ``(batch, 1)``.

        Returns
        -------
        ``(reconstruction loss + KL(l), KL(z), 0.0)``: per-cell local terms and the
        (here zero) global KL term.
        """
        outputs = self.inference(x, batch_index, y)
        kl_divergence_z, kl_divergence_l = self._local_kl(
            outputs, local_l_mean, local_l_var
        )
        reconst_loss = self.get_reconstruction_loss(
            x, outputs["px_rate"], outputs["px_r"], outputs["px_dropout"]
        )
        return reconst_loss + kl_divergence_l, kl_divergence_z, 0.0


class LDVAE(VAE):
    """Linearly decoded variational auto-encoder (LDVAE, Svensson et al. 2020).

    The encoder is the deep network of :class:`VAE`; the decoder is linear, so each latent
    factor has an interpretable per-gene loading (:meth:`get_loadings`).

    Parameters
    ----------
    n_input
        Number of genes.
    n_batch
        Number of batches.
    n_labels
        Number of labels.
    n_hidden
        Width of the encoder's hidden layers.
    n_latent
        Dimension of the latent space.
    n_layers
        Number of hidden layers of the encoder.
    dropout_rate
        Dropout probability of the encoders.
    dispersion
        ``"gene"``, ``"gene-batch"`` or ``"gene-label"``; the linear decoder has no per-cell
        dispersion output, so ``"gene-cell"`` is rejected.
    log_variational
        Encode ``log(1 + x)`` instead of ``x``.
    reconstruction_loss
        ``"zinb"`` or ``"nb"``.
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
    ):
        check_option("dispersion", dispersion, _DISPERSIONS[:3])
        super().__init__(
            n_input,
            n_batch,
            n_labels,
            n_hidden,
            n_latent,
            n_layers,
            dropout_rate,
            dispersion,
            log_variational,
            reconstruction_loss,
        )

    def _build_decoder(
        self, n_latent: int, n_input: int, n_batch: int, n_layers: int, n_hidden: int
    ) -> nn.Module:
        # scVI 0.5 built the deep decoder first and then replaced it; drawing its initial
        # weights too keeps the random stream, and so a seeded initialisation, identical.
        super()._build_decoder(n_latent, n_input, n_batch, n_layers, n_hidden)
        return LinearDecoderSCVI(
            n_latent,
            n_input,
            n_cat_list=[n_batch],
            n_layers=n_layers,
            n_hidden=n_hidden,
        )

    def get_loadings(self) -> Iterator[nn.Parameter]:
        """Parameters of the linear map from latent factors to genes: weight ``(n_input, n_latent)`` then bias."""
        return self.decoder.factor_regressor.parameters()
