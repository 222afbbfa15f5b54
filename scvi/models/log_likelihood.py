"""Count likelihoods (NB, ZINB, mixture of NBs) and the dataset-level scores built on them.

The kernels follow scVI 0.5's parameterisation -- mean ``mu``, inverse dispersion ``theta``
and zero-inflation / mixture *logits* ``pi`` -- but are evaluated in a form that stays
accurate for very large ``theta`` (where the NB tends to a Poisson): the differences
``lgamma(x + theta) - lgamma(theta)`` and ``theta * log(theta / (theta + mu))`` are computed
through ``log1p`` and Stirling's series instead of by subtracting large numbers.
"""

import math
from typing import TYPE_CHECKING, Iterator, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import logsumexp
from torch.distributions import Beta, Normal

if TYPE_CHECKING:  # pragma: no cover
    from scvi.inference.posterior import Posterior

__all__ = [
    "log_nb_positive",
    "log_zinb_positive",
    "log_mixture_nb",
    "compute_elbo",
    "compute_reconstruction_error",
    "compute_marginal_log_likelihood_scvi",
    "compute_marginal_log_likelihood_autozi",
    "logsumexp",
]

# Above this inverse dispersion, lgamma(x + theta) - lgamma(theta) goes through Stirling's
# series; its truncation error there is below 1e-12.
_STIRLING_MIN = 10.0


def _stirling_remainder(z: torch.Tensor) -> torch.Tensor:
    """``lgamma(z) - ((z - 1/2) log z - z + log(2 pi) / 2)`` for ``z >= 10``."""
    zi = 1.0 / z
    zi2 = zi * zi
    return zi * (1.0 / 12 - zi2 * (1.0 / 360 - zi2 * (1.0 / 1260 - zi2 / 1680)))


def _log_nb_from_terms(
    x: torch.Tensor, mu: torch.Tensor, theta: torch.Tensor, eps: float
) -> torch.Tensor:
    """Element-wise NB log-pmf, accurate from ``theta`` near 0 to ``theta`` of 1e8 and more."""
    log_mu = torch.log(mu + eps)
    # theta * log(theta / (theta + mu)), exact rewrite of 0.5's two-log form
    theta_term = -theta * torch.log1p(mu / (theta + eps))

    # Small theta: direct evaluation (no cancellation at these magnitudes).
    small = (
        torch.lgamma(x + theta) - torch.lgamma(theta) - x * torch.log(theta + mu + eps)
    )
    # Large theta: lgamma(x + t) - lgamma(t) - x log(t + mu) without cancellation.
    t = theta.clamp(min=_STIRLING_MIN)
    # log((x + t) / (t + mu + eps)): log1p of the ratio minus one while that is accurate,
    # a plain difference of logs when mu >> x + t (the clamp keeps unused gradients finite).
    ratio = (x - mu - eps) / (t + mu + eps)
    log_ratio = torch.where(
        ratio > -0.5,
        torch.log1p(ratio.clamp(min=-0.5)),
        torch.log(x + t) - torch.log(t + mu + eps),
    )
    large = (
        x * log_ratio
        + (t - 0.5) * torch.log1p(x / t)
        - x
        + _stirling_remainder(x + t)
        - _stirling_remainder(t)
    )
    gamma_ratio = torch.where(theta >= _STIRLING_MIN, large, small)
    return gamma_ratio + x * log_mu + theta_term - torch.lgamma(x + 1)


def log_nb_positive(
    x: torch.Tensor, mu: torch.Tensor, theta: torch.Tensor, eps: float = 1e-8
) -> torch.Tensor:
    """Log-likelihood of counts under a negative binomial, element-wise.

    Parameters
    ----------
    x
        Counts, shape ``(..., n_genes)``.
    mu
        Means (positive), broadcastable to ``x``.
    theta
        Inverse dispersions (positive), broadcastable to ``x``; a 1-D tensor is shared by all cells.
    eps
        Numerical stability constant added inside logarithms, as in scVI 0.5.

    Returns
    -------
    Tensor of log-probabilities with the broadcast shape of the inputs.
    """
    return _log_nb_from_terms(x, mu, theta, eps)


def log_zinb_positive(
    x: torch.Tensor,
    mu: torch.Tensor,
    theta: torch.Tensor,
    pi: torch.Tensor,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Log-likelihood of counts under a zero-inflated negative binomial, element-wise.

    Parameters
    ----------
    x
        Counts, shape ``(..., n_genes)``.
    mu
        NB means (positive).
    theta
        NB inverse dispersions (positive); a 1-D tensor is shared by all cells.
    pi
        Logits of the zero-inflation (dropout) probability, real-valued.
    eps
        Numerical stability constant; counts below it are treated as zeros.

    Returns
    -------
    Tensor of log-probabilities with the broadcast shape of the inputs.
    """
    log_nb = _log_nb_from_terms(x, mu, theta, eps)
    # log(sigmoid(pi) + sigmoid(-pi) * NB(0)) for zeros, log(sigmoid(-pi) * NB(x)) otherwise.
    shifted = log_nb - pi
    return torch.where(x < eps, F.softplus(shifted), shifted) - F.softplus(-pi)


def log_mixture_nb(
    x: torch.Tensor,
    mu_1: torch.Tensor,
    mu_2: torch.Tensor,
    theta_1: torch.Tensor,
    theta_2: Optional[torch.Tensor],
    pi: torch.Tensor,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Log-likelihood of counts under a two-component NB mixture, element-wise.

    Parameters
    ----------
    x
        Counts.
    mu_1, mu_2
        Means of the first (in totalVI: background) and second component.
    theta_1, theta_2
        Inverse dispersions of the components; ``theta_2=None`` shares ``theta_1``.
    pi
        Logits of the probability of the *first* component.
    eps
        Numerical stability constant.
    """
    theta_2 = theta_1 if theta_2 is None else theta_2
    log_nb_1 = _log_nb_from_terms(x, mu_1, theta_1, eps)
    log_nb_2 = _log_nb_from_terms(x, mu_2, theta_2, eps)
    return torch.logaddexp(log_nb_1, log_nb_2 - pi) - F.softplus(-pi)


def _first_five(posterior: "Posterior") -> Iterator[Sequence[torch.Tensor]]:
    for tensors in posterior:
        yield tensors[:5]


def compute_elbo(vae: torch.nn.Module, posterior: "Posterior", **kwargs) -> float:
    """Negative ELBO per cell of ``posterior``'s cells: reconstruction loss plus KL terms.

    The model's ``forward`` must return ``(reconst_loss, kl_local, kl_global)``.
    """
    total = 0.0
    kl_global = 0.0
    for x, local_l_mean, local_l_var, batch_index, labels in _first_five(posterior):
        reconst_loss, kl_local, kl_global = vae(
            x, local_l_mean, local_l_var, batch_index=batch_index, y=labels, **kwargs
        )
        total += torch.sum(reconst_loss + kl_local).item()
    total += float(kl_global)
    return total / len(posterior.indices)


def compute_reconstruction_error(
    vae: torch.nn.Module, posterior: "Posterior", **kwargs
) -> float:
    """Mean over ``posterior``'s cells of ``-log p(x | z, l)`` at one posterior sample."""
    total = 0.0
    for x, _, _, batch_index, labels in _first_five(posterior):
        outputs = vae.inference(x, batch_index, labels, **kwargs)
        reconst_loss = vae.get_reconstruction_loss(
            x,
            outputs["px_rate"],
            outputs["px_r"],
            outputs["px_dropout"],
            bernoulli_params=outputs.get("bernoulli_params", None),
            **kwargs,
        )
        total += torch.sum(reconst_loss).item()
    return total / len(posterior.indices)


def _mc_chunk(n_samples_mc: int, batch_size: int, n_genes: int) -> int:
    """Number of Monte-Carlo samples to evaluate at once, bounding memory to ~2e7 floats."""
    return int(max(1, min(n_samples_mc, 2e7 // max(1, batch_size * n_genes))))


def _importance_log_weights(
    vae: torch.nn.Module,
    x: torch.Tensor,
    local_l_mean: torch.Tensor,
    local_l_var: torch.Tensor,
    batch_index: torch.Tensor,
    labels: torch.Tensor,
    n_samples: int,
    bernoulli_params: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """``log p(x, z, l) - log q(z, l | x)`` for ``n_samples`` posterior draws, shape ``(n_samples, batch)``."""
    outputs = vae.inference(x, batch_index, labels, n_samples=n_samples)
    qz_m, qz_v, z = outputs["qz_m"], outputs["qz_v"], outputs["z"]
    ql_m, ql_v, library = outputs["ql_m"], outputs["ql_v"], outputs["library"]
    if n_samples == 1:
        qz_m, qz_v, z = qz_m[None], qz_v[None], z[None]
        ql_m, ql_v, library = ql_m[None], ql_v[None], library[None]
    px_r, px_rate, px_dropout = (
        outputs["px_r"],
        outputs["px_rate"],
        outputs["px_dropout"],
    )
    if bernoulli_params is None:
        reconst_loss = vae.get_reconstruction_loss(x, px_rate, px_r, px_dropout)
    else:
        reconst_loss = vae.get_reconstruction_loss(
            x, px_rate, px_r, px_dropout, bernoulli_params
        )
    reconst_loss = reconst_loss.reshape(-1, x.size(0))
    p_l = Normal(local_l_mean, local_l_var.sqrt()).log_prob(library).sum(dim=-1)
    p_z = Normal(torch.zeros_like(qz_m), torch.ones_like(qz_v)).log_prob(z).sum(dim=-1)
    q_z_x = Normal(qz_m, qz_v.sqrt()).log_prob(z).sum(dim=-1)
    q_l_x = Normal(ql_m, ql_v.sqrt()).log_prob(library).sum(dim=-1)
    return p_z + p_l - reconst_loss - q_z_x - q_l_x


def compute_marginal_log_likelihood_scvi(
    vae: torch.nn.Module, posterior: "Posterior", n_samples_mc: int = 100
) -> float:
    """Importance-sampled estimate of ``-log p(x)`` per cell, with ``n_samples_mc`` samples.

    Draws from the encoder's posterior are evaluated in vectorised chunks rather than one
    at a time; the estimator is the same as scVI 0.5's.
    """
    total = 0.0
    for x, local_l_mean, local_l_var, batch_index, labels in _first_five(posterior):
        chunk = _mc_chunk(n_samples_mc, x.size(0), x.size(1))
        weights = []
        done = 0
        while done < n_samples_mc:
            k = min(chunk, n_samples_mc - done)
            weights.append(
                _importance_log_weights(
                    vae, x, local_l_mean, local_l_var, batch_index, labels, k
                )
            )
            done += k
        log_w = torch.cat(weights, dim=0)
        total += (logsumexp(log_w, dim=0) - math.log(n_samples_mc)).sum().item()
    return -total / len(posterior.indices)


def compute_marginal_log_likelihood_autozi(
    autozivae: torch.nn.Module, posterior: "Posterior", n_samples_mc: int = 100
) -> float:
    """Importance-sampled estimate of ``-log p(x)`` per cell for AutoZI.

    Each Monte-Carlo sample draws the gene-wise zero-inflation probabilities from their
    Beta posterior and the cell-wise latents from the encoder; the dataset-level weights
    include the Beta prior/posterior ratio.
    """
    to_sum = torch.zeros(n_samples_mc)
    ab = autozivae.get_alphas_betas(as_numpy=False)
    alpha_prior, beta_prior = ab["alpha_prior"], ab["beta_prior"]
    alpha_post, beta_post = ab["alpha_posterior"], ab["beta_posterior"]
    for i in range(n_samples_mc):
        bernoulli_params = autozivae.sample_from_beta_distribution(
            alpha_post, beta_post
        )
        for x, local_l_mean, local_l_var, batch_index, labels in _first_five(posterior):
            params = autozivae.reshape_bernoulli(bernoulli_params, batch_index, labels)
            log_w = _importance_log_weights(
                autozivae,
                x,
                local_l_mean,
                local_l_var,
                batch_index,
                labels,
                1,
                bernoulli_params=params,
            )
            to_sum[i] += log_w.sum().cpu()
        p_d = Beta(alpha_prior, beta_prior).log_prob(bernoulli_params).sum()
        q_d = Beta(alpha_post, beta_post).log_prob(bernoulli_params).sum()
        to_sum[i] += (p_d - q_d).cpu()
    log_lkl = logsumexp(to_sum, dim=-1).item() - np.log(n_samples_mc)
    return -log_lkl / len(posterior.indices)
