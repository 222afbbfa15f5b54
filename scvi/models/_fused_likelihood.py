"""Fused, sparsity-aware NB / ZINB negative log-likelihood for training on the CPU.

The models' reconstruction loss is ``-sum_g log p(x_g | mu_g, theta_g, pi_g)`` per cell.
Built from element-wise tensor operations, its value and autograd graph cost about sixty
passes over the ``cells x genes`` minibatch, and ``lgamma``/``digamma`` -- slow scalar
functions -- are evaluated for every entry. :func:`nb_nll_sum` computes the same quantity
with an analytic gradient instead:

- ``lgamma(x + theta) - lgamma(theta) - lgamma(x + 1)`` and the matching digamma
  difference vanish where ``x = 0``, so they are evaluated only on the non-zero counts,
  in float64 (which also removes the cancellation between the two ``lgamma`` at large
  ``theta``);
- the gradient with respect to ``mu``, ``theta`` and ``pi`` is formed during the forward
  pass from the quantities it already has, and backward only scales it.

It applies to CPU tensors of matching shapes; anything else (CUDA, broadcasting inputs,
gradients with respect to ``x``) goes through the element-wise kernels of
:mod:`scvi.models.log_likelihood`, which give the same values.
"""

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from scvi.dataset._count_index import TABLE_SIZE, NonzeroCounts, table_lookup
from scvi.models.log_likelihood import log_nb_positive, log_zinb_positive

Tensors = Tuple[torch.Tensor, ...]


def _applies(
    x: torch.Tensor, mu: torch.Tensor, theta: torch.Tensor, pi: Optional[torch.Tensor]
) -> bool:
    if x.device.type != "cpu" or x.dim() != 2 or x.requires_grad:
        return False
    if mu.shape != x.shape or theta.shape not in (x.shape, x.shape[-1:]):
        return False
    if pi is not None and pi.shape != x.shape:
        return False
    tensors = (x, mu, theta) if pi is None else (x, mu, theta, pi)
    return all(t.device == x.device and t.dtype == x.dtype for t in tensors)


def _find_nonzero(x: torch.Tensor, eps: float) -> NonzeroCounts:
    """Non-zero entries of ``x`` (used when the minibatch does not carry them)."""
    flat = x.detach().reshape(-1)
    index = torch.nonzero(flat >= eps).squeeze(1)
    counts = flat.index_select(0, index).double()
    rows = torch.div(index, x.shape[1], rounding_mode="floor")
    slots = large = None
    if torch.equal(counts, counts.round()):
        slots, large = (torch.from_numpy(a) for a in table_lookup(counts.numpy()))
    return NonzeroCounts(
        rows=rows,
        cols=index - rows * x.shape[1],
        flat=index,
        counts=counts,
        lgamma_sums=torch.zeros(x.shape[0], dtype=torch.float64).index_add_(
            0, rows, torch.lgamma(counts + 1.0)
        ),
        total=float(counts.sum()),
        table_slots=slots,
        large=large,
    )


def _matches(nonzero: Optional[NonzeroCounts], x: torch.Tensor) -> bool:
    """Whether ``nonzero`` describes ``x`` (cheap check against stale indexes)."""
    if nonzero is None or nonzero.lgamma_sums.shape[0] != x.shape[0]:
        return False
    total = float(torch.sum(x, dtype=torch.float64))
    return abs(total - nonzero.total) <= 1e-9 * max(1.0, abs(total))


def _gene_tables(theta: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-gene ``lgamma(theta + k) - lgamma(theta)`` and ``digamma(theta + k) - digamma(theta)``.

    For ``k = 0..TABLE_SIZE``, as cumulative sums of ``log(theta + j)`` and
    ``1 / (theta + j)`` (float64), flattened gene-major.
    """
    steps = theta.unsqueeze(1) + torch.arange(TABLE_SIZE, dtype=theta.dtype)
    zeros = theta.new_zeros(theta.shape[0], 1)
    lgamma_table = torch.cat((zeros, torch.log(steps).cumsum_(1)), dim=1)
    digamma_table = torch.cat((zeros, steps.reciprocal_().cumsum_(1)), dim=1)
    return lgamma_table.reshape(-1), digamma_table.reshape(-1)


def _count_terms(
    nonzero: NonzeroCounts,
    mu: torch.Tensor,
    theta: torch.Tensor,
    eps: float,
    need_grad: bool,
) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """The terms of ``log NB(x) - log NB(0)`` on the non-zero counts, in float64.

    Returns the per-cell sums of ``x log(mu / (theta + mu)) + lgamma(x + theta) -
    lgamma(theta) - lgamma(x + 1)`` (large terms that cancel, hence float64), the flat
    position in ``theta`` of each non-zero entry and, when ``need_grad``,
    ``digamma(x + theta) - digamma(theta)`` there. With one ``theta`` per gene and
    integer counts, small counts are looked up in per-gene tables and only counts above
    the tables go through ``lgamma``/``digamma``.
    """
    theta64 = theta.detach().double()
    per_gene = theta.dim() == 1
    where = nonzero.cols if per_gene else nonzero.flat
    theta_nz = theta64.reshape(-1).index_select(0, where)
    digamma_diff = None
    if per_gene and nonzero.table_slots is not None:
        slots = where * (TABLE_SIZE + 1) + nonzero.table_slots
        lgamma_table, digamma_table = _gene_tables(theta64)
        terms = lgamma_table.index_select(0, slots)
        if need_grad:
            digamma_diff = digamma_table.index_select(0, slots)
        large = nonzero.large
        if large.numel():
            # beyond the table: lgamma(x + theta) - lgamma(theta + TABLE_SIZE)
            theta_large = theta_nz.index_select(0, large)
            shifted = nonzero.counts.index_select(0, large) + theta_large
            top = theta_large + TABLE_SIZE
            terms.index_add_(0, large, torch.lgamma(shifted) - torch.lgamma(top))
            if need_grad:
                digamma_diff.index_add_(
                    0, large, torch.digamma(shifted) - torch.digamma(top)
                )
    else:
        if per_gene:
            lgamma_theta = torch.lgamma(theta64).index_select(0, where)
        else:
            lgamma_theta = torch.lgamma(theta_nz)
        shifted = nonzero.counts + theta_nz
        terms = torch.lgamma(shifted).sub_(lgamma_theta)
        if need_grad:
            if per_gene:
                digamma_theta = torch.digamma(theta64).index_select(0, where)
            else:
                digamma_theta = torch.digamma(theta_nz)
            digamma_diff = torch.digamma(shifted).sub_(digamma_theta)
    mu_nz = mu.detach().reshape(-1).index_select(0, nonzero.flat).double()
    log_mean_ratio = torch.log(mu_nz + eps).sub_(torch.log(mu_nz.add_(theta_nz + eps)))
    terms.addcmul_(nonzero.counts, log_mean_ratio)
    sums = (
        torch.zeros_like(nonzero.lgamma_sums)
        .index_add_(0, nonzero.rows, terms)
        .sub_(nonzero.lgamma_sums)
    )
    return sums, where, digamma_diff


def _log_likelihood(
    x: torch.Tensor,
    mu: torch.Tensor,
    theta: torch.Tensor,
    pi: Optional[torch.Tensor],
    eps: float,
    need_grad: bool,
    nonzero: Optional[NonzeroCounts],
) -> Tuple[torch.Tensor, Tensors]:
    """Per-cell log-likelihood, and the pieces of its gradient when ``need_grad``."""
    if not _matches(nonzero, x):
        nonzero = _find_nonzero(x, eps)
    theta_eps = theta + eps
    # log(theta / (theta + mu)) through log1p: exact at large theta
    log_ratio = torch.div(mu, theta_eps).log1p_().neg_()
    log_nb_zero = theta * log_ratio
    count_sums, where, digamma_diff = _count_terms(nonzero, mu, theta, eps, need_grad)

    weight = None
    if pi is None:
        per_entry = log_nb_zero
    else:
        # ``lt`` into a float tensor is several times cheaper than a bool mask converted
        is_zero = torch.lt(x, eps, out=torch.empty_like(x))
        # log(sigmoid(pi) + sigmoid(-pi) NB(0)) = softplus(s) - softplus(-pi) for zeros,
        # s + (count terms) - softplus(-pi) otherwise, where s = log NB(0) - pi;
        # softplus(s) = s + softplus(-s) merges both cases.
        neg_shifted = pi - log_nb_zero
        per_entry = torch.addcmul(neg_shifted.neg(), is_zero, F.softplus(neg_shifted))
        per_entry.sub_(F.softplus(-pi))
        if need_grad:
            # weight of d log NB(0) in the gradient: P(NB part | x = 0) for zeros, 1 otherwise
            weight = torch.sigmoid(neg_shifted).mul_(is_zero).neg_().add_(1.0)
    # every entry is a log-probability (<= 0): a float32 sum loses no significant digits
    log_lik = per_entry.sum(dim=-1).double().add_(count_sums).to(x.dtype)
    if not need_grad:
        return log_lik, ()

    inv_total = (mu + theta_eps).reciprocal_()
    theta_weighted_x = x + theta if weight is None else (weight * theta).add_(x)
    grad_mu = (x / (mu + eps)).sub_(theta_weighted_x.mul_(inv_total))
    grad_theta = torch.addcmul(log_ratio, mu * inv_total, theta / theta_eps)
    if weight is not None:
        grad_theta.mul_(weight)
    grad_theta.sub_(x * inv_total)
    grad_pi = None if pi is None else torch.sigmoid(-pi).sub_(weight)
    return log_lik, (grad_mu, grad_theta, grad_pi, nonzero.rows, where, digamma_diff)


class _NbNllSum(torch.autograd.Function):
    """``-sum_g log NB/ZINB`` per cell, with the analytic gradient of :func:`_log_likelihood`."""

    @staticmethod
    def forward(ctx, x, mu, theta, pi, eps, nonzero):
        log_lik, grads = _log_likelihood(x, mu, theta, pi, eps, True, nonzero)
        grad_mu, grad_theta, grad_pi, rows, where, digamma_diff = grads
        ctx.theta_shape = theta.shape
        ctx.has_pi = pi is not None
        saved = [grad_mu, grad_theta, rows, where, digamma_diff]
        if pi is not None:
            saved.append(grad_pi)
        ctx.save_for_backward(*saved)
        return log_lik.neg_()

    @staticmethod
    def backward(ctx, grad_output):
        grad_mu, grad_theta, rows, where, digamma_diff, *rest = ctx.saved_tensors
        scale = grad_output.neg().unsqueeze(-1)
        out_mu = grad_mu * scale if ctx.needs_input_grad[1] else None
        out_theta = None
        if ctx.needs_input_grad[2]:
            digamma_part = digamma_diff * scale.squeeze(-1).double().index_select(
                0, rows
            )
            if len(ctx.theta_shape) == 1:
                out_theta = scale.squeeze(-1) @ grad_theta
                out_theta.index_add_(0, where, digamma_part.to(out_theta.dtype))
            else:
                out_theta = grad_theta * scale
                out_theta.view(-1).index_add_(
                    0, where, digamma_part.to(out_theta.dtype)
                )
        out_pi = None
        if ctx.has_pi and ctx.needs_input_grad[3]:
            out_pi = rest[0] * scale
        return None, out_mu, out_theta, out_pi, None, None


def nb_nll_sum(
    x: torch.Tensor,
    mu: torch.Tensor,
    theta: torch.Tensor,
    pi: Optional[torch.Tensor] = None,
    eps: float = 1e-8,
    nonzero: Optional[NonzeroCounts] = None,
) -> torch.Tensor:
    """Negative log-likelihood of each cell's counts under an NB, or a ZINB when ``pi`` is given.

    Equal to ``-log_zinb_positive(x, mu, theta, pi, eps).sum(-1)`` (or the NB analogue)
    within float32 rounding, at a fraction of the cost on the CPU.

    Parameters
    ----------
    x
        Counts, ``(cells, genes)``.
    mu
        Means, ``(cells, genes)``.
    theta
        Inverse dispersions, ``(cells, genes)`` or ``(genes,)``.
    pi
        Zero-inflation logits, ``(cells, genes)``, or None for an NB.
    eps
        Stability constant, as in the element-wise kernels.
    nonzero
        The non-zero entries of ``x`` and their ``lgamma(x + 1)`` sums when the data
        loader provides them (checked against ``x``; searched for otherwise).

    Returns
    -------
    Tensor of shape ``(cells,)``.
    """
    if not _applies(x, mu, theta, pi):
        if pi is None:
            return -log_nb_positive(x, mu, theta, eps).sum(dim=-1)
        return -log_zinb_positive(x, mu, theta, pi, eps).sum(dim=-1)
    inputs = (mu, theta) if pi is None else (mu, theta, pi)
    if torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
        return _NbNllSum.apply(x, mu, theta, pi, eps, nonzero)
    with torch.no_grad():
        return _log_likelihood(x, mu, theta, pi, eps, False, nonzero)[0].neg_()


def gaussian_kl_sum(
    mean: torch.Tensor,
    var: torch.Tensor,
    prior_mean: Optional[torch.Tensor] = None,
    prior_var: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """``KL(N(mean, var) || N(prior_mean, prior_var))`` summed over the last dimension.

    The closed form of ``kl_divergence(Normal(mean, var.sqrt()), Normal(prior_mean,
    prior_var.sqrt())).sum(-1)``, from variances, without building distributions; the
    prior defaults to the standard normal.
    """
    if prior_mean is None:
        return 0.5 * (var + mean.square() - 1.0 - torch.log(var)).sum(dim=-1)
    var_ratio = var / prior_var
    scaled_gap = (mean - prior_mean).square() / prior_var
    return 0.5 * (var_ratio + scaled_gap - 1.0 - torch.log(var_ratio)).sum(dim=-1)
