"""AutoZI: per-gene selection between negative binomial and zero-inflated negative binomial."""

import math
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn
from torch.distributions import Beta, Gamma
from torch.distributions import kl_divergence as kl

from scvi.models.log_likelihood import log_nb_positive, log_zinb_positive
from scvi.models.utils import check_option, one_hot
from scvi.models.vae import VAE

torch.backends.cudnn.benchmark = True

_ZERO_INFLATIONS = ("gene", "gene-batch", "gene-label", "gene-cell")


def _check_beta_parameter(name: str, value: Optional[float]) -> None:
    if value is not None and not 0.0 < value < 1.0:
        raise ValueError(
            f"{name} must lie strictly between 0 and 1 (it is stored as a logit), or be "
            f"None to learn it; got {value}."
        )


class AutoZIVAE(VAE):
    """AutoZI (Clivio et al. 2019): a VAE that decides for each gene whether it is zero-inflated.

    Counts follow a mixture ``m * NB + (1 - m) * ZINB`` whose weight ``m`` (per gene, or
    per gene and batch / label) has a Beta prior and a Beta variational posterior. A
    posterior concentrated near 0 calls the gene zero-inflated, near 1 not. The ZINB
    component's zero-inflation probability is bounded below by ``minimal_dropout``.

    Parameters
    ----------
    n_input
        Number of genes.
    alpha_prior, beta_prior
        Parameters of the Beta prior of the mixture weights, each strictly between 0 and
        1. When one is None it is set to one minus the other; when both are None the
        prior is learned (empirical Bayes).
    minimal_dropout
        Lower bound, in ``[0, 1)``, of the cell-gene zero-inflation probability of the
        ZINB component (0 disables the bound, which may make the mixture ill-defined).
    zero_inflation
        ``"gene"`` (one weight per gene), ``"gene-batch"`` (per gene and batch) or
        ``"gene-label"`` (per gene and label). ``"gene-cell"`` is not supported (as in
        scVI 0.5) and raises.
    **args
        Other arguments of :class:`~scvi.models.VAE` (``n_batch``, ``n_labels``,
        ``dispersion``...), except ``reconstruction_loss``, which is ``"autozinb"``.

    Examples
    --------
    >>> dataset = CortexDataset()
    >>> model = AutoZIVAE(dataset.nb_genes, alpha_prior=0.5, beta_prior=0.5)
    >>> trainer = UnsupervisedTrainer(model, dataset)
    """

    _reconstruction_losses: Tuple[str, ...] = ("autozinb",)

    def __init__(
        self,
        n_input: int,
        alpha_prior: Optional[float] = 0.5,
        beta_prior: Optional[float] = 0.5,
        minimal_dropout: float = 0.01,
        zero_inflation: str = "gene",
        **args,
    ) -> None:
        if "reconstruction_loss" in args:
            raise ValueError(
                "AutoZIVAE takes no reconstruction_loss: its likelihood is the NB/ZINB "
                "mixture 'autozinb'. Remove the reconstruction_loss argument."
            )
        check_option("zero_inflation", zero_inflation, _ZERO_INFLATIONS)
        if zero_inflation == "gene-cell":
            raise ValueError(
                "zero_inflation='gene-cell' is not implemented for AutoZI (nor was it in "
                "scVI 0.5); use 'gene', 'gene-batch' or 'gene-label'."
            )
        _check_beta_parameter("alpha_prior", alpha_prior)
        _check_beta_parameter("beta_prior", beta_prior)
        if not 0.0 <= minimal_dropout < 1.0:
            raise ValueError(
                f"minimal_dropout must lie in [0, 1), got {minimal_dropout}."
            )
        super().__init__(n_input, reconstruction_loss="autozinb", **args)
        self.zero_inflation = zero_inflation
        self.minimal_dropout = minimal_dropout

        if beta_prior is None and alpha_prior is not None:
            beta_prior = 1.0 - alpha_prior
        if alpha_prior is None and beta_prior is not None:
            alpha_prior = 1.0 - beta_prior

        # Beta parameters live in (0, 1) and are stored as logits.
        if zero_inflation == "gene":
            n_groups = None
        elif zero_inflation == "gene-batch":
            n_groups = self._n_groups(self.n_batch, "n_batch")
        else:
            n_groups = self._n_groups(self.n_labels, "n_labels")
        posterior_shape = (n_input,) if n_groups is None else (n_input, n_groups)
        prior_shape = (1,) if n_groups is None else (1, n_groups)
        self.alpha_posterior_logit = nn.Parameter(torch.randn(posterior_shape))
        self.beta_posterior_logit = nn.Parameter(torch.randn(posterior_shape))
        self._set_prior_logit("alpha_prior_logit", alpha_prior, prior_shape)
        self._set_prior_logit("beta_prior_logit", beta_prior, prior_shape)

    def _n_groups(self, n: int, name: str) -> int:
        if n < 1:
            raise ValueError(
                f"zero_inflation={self.zero_inflation!r} needs {name} >= 1; pass {name}."
            )
        return n

    def _set_prior_logit(
        self, name: str, value: Optional[float], shape: Tuple[int, ...]
    ) -> None:
        """A learned prior logit is a parameter; a fixed one a buffer kept out of the state_dict."""
        if value is None:
            setattr(self, name, nn.Parameter(torch.randn(shape)))
        else:
            logit = math.log(value) - math.log1p(-value)
            self.register_buffer(name, torch.tensor([logit]), persistent=False)

    def cuda(self, device: Optional[Union[int, str, torch.device]] = None) -> nn.Module:
        """Move the parameters, and the fixed prior values, to the GPU ``device``."""
        return super().cuda(device)

    def get_alphas_betas(
        self, as_numpy: bool = True
    ) -> Dict[str, Union[torch.Tensor, np.ndarray]]:
        """Parameters of the Beta posterior and prior of the mixture weights.

        Parameters
        ----------
        as_numpy
            Return numpy arrays (detached, on the CPU) instead of tensors.

        Returns
        -------
        dict with ``alpha_posterior``, ``beta_posterior`` (``(n_input,)`` or
        ``(n_input, n_groups)``), ``alpha_prior`` and ``beta_prior``.
        """
        outputs = {
            name: torch.sigmoid(getattr(self, f"{name}_logit"))
            for name in (
                "alpha_posterior",
                "beta_posterior",
                "alpha_prior",
                "beta_prior",
            )
        }
        if as_numpy:
            return {
                name: value.detach().cpu().numpy() for name, value in outputs.items()
            }
        return outputs

    def sample_from_beta_distribution(
        self,
        alpha: torch.Tensor,
        beta: torch.Tensor,
        eps_gamma: float = 1e-30,
        eps_sample: float = 1e-7,
    ) -> torch.Tensor:
        """Reparameterised sample of ``Beta(alpha, beta)``, squeezed into ``[eps, 1 - eps]``.

        The sample is ``X / (X + Y)`` with ``X ~ Gamma(alpha, 1)`` and
        ``Y ~ Gamma(beta, 1)``, computed in log space; ``eps_gamma`` guards the logarithms
        of the Gamma draws and ``eps_sample`` keeps the sample away from exactly 0 and 1.
        """
        log_x = torch.log(Gamma(alpha, 1).rsample() + eps_gamma)
        log_y = torch.log(Gamma(beta, 1).rsample() + eps_gamma)
        ratio = torch.exp(log_x - torch.logaddexp(log_x, log_y))
        return eps_sample + (1.0 - 2.0 * eps_sample) * ratio

    def reshape_bernoulli(
        self,
        bernoulli_params: torch.Tensor,
        batch_index: Optional[torch.Tensor] = None,
        y: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Per-cell mixture weights from per-group ones.

        For ``"gene-batch"`` / ``"gene-label"``, weights of shape ``(n_input, n_groups)``
        (or ``(n_samples, n_input, n_groups)``) are picked for each cell's batch / label,
        giving ``(batch, n_input)`` (or ``(n_samples, batch, n_input)``); ``"gene"``
        weights are returned unchanged.
        """
        if self.zero_inflation == "gene":
            return bernoulli_params
        if self.zero_inflation == "gene-label":
            covariate, n_cat, name = y, self.n_labels, "y (labels)"
        else:
            covariate, n_cat, name = batch_index, self.n_batch, "batch_index"
        if covariate is None:
            raise ValueError(
                f"zero_inflation={self.zero_inflation!r} needs {name} to pick each "
                "cell's mixture weights, but None was given."
            )
        return one_hot(covariate, n_cat) @ bernoulli_params.transpose(-1, -2)

    def sample_bernoulli_params(
        self,
        batch_index: Optional[torch.Tensor] = None,
        y: Optional[torch.Tensor] = None,
        n_samples: int = 1,
    ) -> torch.Tensor:
        """Draw the mixture weights from their Beta posterior, reshaped per cell.

        With ``n_samples > 1`` the result has a leading sample dimension.
        """
        outputs = self.get_alphas_betas(as_numpy=False)
        alpha, beta = outputs["alpha_posterior"], outputs["beta_posterior"]
        if n_samples > 1:
            alpha = alpha.unsqueeze(0).expand(n_samples, *alpha.shape)
            beta = beta.unsqueeze(0).expand(n_samples, *beta.shape)
        bernoulli_params = self.sample_from_beta_distribution(alpha, beta)
        return self.reshape_bernoulli(bernoulli_params, batch_index, y)

    def rescale_dropout(
        self, px_dropout: torch.Tensor, eps_log: float = 1e-8
    ) -> torch.Tensor:
        """Logits of ``minimal_dropout + (1 - minimal_dropout) * sigmoid(px_dropout)``.

        Returns ``px_dropout`` unchanged when ``minimal_dropout`` is 0.
        """
        if self.minimal_dropout <= 0.0:
            return px_dropout
        prob = self.minimal_dropout + (1.0 - self.minimal_dropout) * torch.sigmoid(
            px_dropout
        )
        return torch.log(prob) - torch.log(1.0 - prob + eps_log)

    def inference(
        self,
        x: torch.Tensor,
        batch_index: Optional[torch.Tensor] = None,
        y: Optional[torch.Tensor] = None,
        n_samples: int = 1,
        eps_log: float = 1e-8,
    ) -> Dict[str, torch.Tensor]:
        """:meth:`VAE.inference <scvi.models.VAE.inference>` with the dropout logits
        bounded below (:meth:`rescale_dropout`) and sampled mixture weights
        ``bernoulli_params`` (:meth:`sample_bernoulli_params`).
        """
        outputs = super().inference(
            x, batch_index=batch_index, y=y, n_samples=n_samples
        )
        outputs["px_dropout"] = self.rescale_dropout(outputs["px_dropout"], eps_log)
        outputs["bernoulli_params"] = self.sample_bernoulli_params(
            batch_index, y, n_samples=n_samples
        )
        return outputs

    def compute_global_kl_divergence(self) -> torch.Tensor:
        """``KL(Beta posterior || Beta prior)`` summed over all mixture weights (a scalar)."""
        outputs = self.get_alphas_betas(as_numpy=False)
        posterior = Beta(outputs["alpha_posterior"], outputs["beta_posterior"])
        prior = Beta(outputs["alpha_prior"], outputs["beta_prior"])
        return kl(posterior, prior).sum()

    def get_reconstruction_loss(
        self,
        x: torch.Tensor,
        px_rate: torch.Tensor,
        px_r: torch.Tensor,
        px_dropout: torch.Tensor,
        bernoulli_params: torch.Tensor,
        eps_log: float = 1e-8,
        **kwargs,
    ) -> torch.Tensor:
        """Negative log-likelihood of the NB/ZINB mixture, summed over genes, per cell.

        Parameters
        ----------
        x
            Counts.
        px_rate, px_r, px_dropout
            Means, inverse dispersions and zero-inflation logits.
        bernoulli_params
            Weight of the NB (not zero-inflated) component, broadcastable to ``x``.
        eps_log
            Guard of the logarithms of the weights.
        """
        ll_zinb = torch.log(1.0 - bernoulli_params + eps_log) + log_zinb_positive(
            x, px_rate, px_r, px_dropout
        )
        ll_nb = torch.log(bernoulli_params + eps_log) + log_nb_positive(
            x, px_rate, px_r
        )
        return -torch.logaddexp(ll_zinb, ll_nb).sum(dim=-1)

    def forward(
        self,
        x: torch.Tensor,
        local_l_mean: torch.Tensor,
        local_l_var: torch.Tensor,
        batch_index: Optional[torch.Tensor] = None,
        y: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Loss terms of a minibatch.

        Returns
        -------
        ``(reconstruction loss + KL(l), KL(z), KL(Beta))``: two per-cell terms and the
        scalar KL divergence of the mixture weights, which the trainer adds once.
        """
        outputs = self.inference(x, batch_index, y)
        kl_divergence_z, kl_divergence_l = self._local_kl(
            outputs, local_l_mean, local_l_var
        )
        reconst_loss = self.get_reconstruction_loss(
            x,
            outputs["px_rate"],
            outputs["px_r"],
            outputs["px_dropout"],
            outputs["bernoulli_params"],
        )
        return (
            reconst_loss + kl_divergence_l,
            kl_divergence_z,
            self.compute_global_kl_divergence(),
        )
