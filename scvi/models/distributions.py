"""Count and expression distributions as ``torch.distributions.Distribution`` objects.

The negative-binomial family follows scVI's mean / inverse-dispersion parameterisation
(``mu``, ``theta``) and evaluates its log-likelihoods with the kernels of
:mod:`scvi.models.log_likelihood`, so that a distribution object and a model's
reconstruction loss always agree. The public API mirrors the documented distributions of
scvi-tools 1.x (:class:`NegativeBinomial`, :class:`ZeroInflatedNegativeBinomial`,
:class:`NegativeBinomialMixture`, :class:`ZeroInflatedLogNormal`).
"""

import functools
import math
import numbers
from typing import Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch.distributions import Distribution, Gamma, constraints
from torch.distributions.utils import broadcast_all, lazy_property

from scvi.models.log_likelihood import (
    log_mixture_nb,
    log_nb_positive,
    log_zinb_positive,
)

__all__ = [
    "NegativeBinomial",
    "ZeroInflatedNegativeBinomial",
    "NegativeBinomialMixture",
    "ZeroInflatedLogNormal",
]

Param = Union[torch.Tensor, float]

# torch.poisson overflows for rates beyond ~9.2e18; Gamma-Poisson draws are capped here.
_MAX_POISSON_RATE = 1e18
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_NO_SAMPLE_SHAPE = torch.Size()


class _OptionalConstraint(constraints.Constraint):
    """Constraint met by ``None`` (parameter not given) or by values meeting ``base``."""

    def __init__(self, base: constraints.Constraint):
        self.base = base
        super().__init__()

    def check(self, value: Optional[torch.Tensor]) -> torch.Tensor:
        """Element-wise check; ``None`` always passes."""
        if value is None:
            return torch.tensor(True)
        return self.base.check(value)

    def __repr__(self) -> str:
        return f"Optional({self.base!r})"


def _optional(base: constraints.Constraint) -> constraints.Constraint:
    return _OptionalConstraint(base)


def _broadcast(owner: str, **params: Param) -> Tuple[torch.Tensor, ...]:
    """Broadcast named parameters to one shape and one floating dtype.

    Raises a ``TypeError`` for values that are neither tensors nor numbers and a
    ``ValueError`` naming every shape when the shapes are not broadcast-compatible.
    """
    floating = []
    for name, value in params.items():
        if isinstance(value, torch.Tensor):
            if value.is_floating_point():
                floating.append(value.dtype)
        elif not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise TypeError(
                f"{owner}: `{name}` must be a torch.Tensor or a real number, "
                f"got {type(value).__name__}."
            )
    dtype = (
        functools.reduce(torch.promote_types, floating, floating[0])
        if floating
        else torch.get_default_dtype()
    )
    values = [
        value.to(dtype) if isinstance(value, torch.Tensor) else value
        for value in params.values()
    ]
    try:
        return tuple(broadcast_all(*values))
    except RuntimeError as err:
        shapes = ", ".join(
            f"{name}: {tuple(value.shape) if isinstance(value, torch.Tensor) else ()}"
            for name, value in params.items()
        )
        raise ValueError(
            f"{owner}: parameter shapes cannot be broadcast together ({shapes}). "
            "Give tensors whose shapes are broadcast-compatible, e.g. a per-gene "
            "tensor of shape (n_genes,) with per-cell tensors of shape "
            "(n_cells, n_genes)."
        ) from err


def _check_optional_tensor(owner: str, name: str, value: object) -> None:
    if value is not None and not isinstance(value, torch.Tensor):
        raise TypeError(
            f"{owner}: `{name}` must be a torch.Tensor or None, "
            f"got {type(value).__name__}."
        )


def _require(
    owner: str, name: str, value: torch.Tensor, constraint: constraints.Constraint
) -> None:
    """Raise a ``ValueError`` listing the entries of ``value`` that violate ``constraint``."""
    bad = ~constraint.check(value)
    if bad.any():
        shown = getattr(constraint, "base", constraint)
        raise ValueError(
            f"{owner}: `{name}` must satisfy {shown!r}, but "
            f"{int(bad.sum())} value(s) do not, e.g. {value[bad][:5].tolist()}."
        )


def _nb_mean_dispersion(
    owner: str,
    total_count: Optional[Param],
    probs: Optional[Param],
    logits: Optional[Param],
    mu: Optional[Param],
    theta: Optional[Param],
    validate: bool,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Turn either NB parameterisation into broadcast ``(mu, theta)`` tensors."""
    count_form = any(p is not None for p in (total_count, probs, logits))
    mean_form = mu is not None or theta is not None
    if count_form == mean_form:
        raise ValueError(
            f"{owner}: give exactly one parameterisation, either (mu, theta) or "
            f"(total_count, probs) / (total_count, logits); got "
            f"{'both' if count_form else 'neither'}."
        )
    if mean_form:
        if mu is None or theta is None:
            raise ValueError(
                f"{owner}: the (mu, theta) parameterisation needs both `mu` and `theta`."
            )
        mu, theta = _broadcast(owner, mu=mu, theta=theta)
        return mu, theta
    if total_count is None or (probs is None) == (logits is None):
        raise ValueError(
            f"{owner}: the count parameterisation needs `total_count` and exactly one "
            "of `probs` or `logits`."
        )
    if probs is not None:
        total_count, probs = _broadcast(owner, total_count=total_count, probs=probs)
        if validate:
            _require(owner, "total_count", total_count, constraints.positive)
            _require(owner, "probs", probs, constraints.half_open_interval(0.0, 1.0))
        return total_count * probs / (1 - probs), total_count
    total_count, logits = _broadcast(owner, total_count=total_count, logits=logits)
    if validate:
        _require(owner, "total_count", total_count, constraints.positive)
        _require(owner, "logits", logits, constraints.real)
    return total_count * torch.exp(logits), total_count


def _gamma_poisson(mu: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Draw NB(mu, theta) counts as Poisson(Gamma(shape=theta, rate=theta / mu))."""
    gamma = Gamma(theta, torch.ones_like(theta), validate_args=False).sample()
    rate = (gamma * (mu / theta)).clamp(max=_MAX_POISSON_RATE)
    return torch.poisson(rate)


class _ScviDistribution(Distribution):
    """Shared machinery: parameter storage, repr, expand, value validation."""

    _support_text = "values in the support"

    def _init_batch(self, batch_shape: torch.Size, validate_args: bool) -> None:
        if validate_args:
            for name, constraint in self.arg_constraints.items():
                value = self.__dict__[name]
                if value is not None:
                    _require(type(self).__name__, name, value, constraint)
        Distribution.__init__(self, batch_shape, validate_args=False)
        self._validate_args = validate_args

    def __repr__(self) -> str:
        parts = []
        for name in self.arg_constraints:
            value = self.__dict__.get(name)
            if value is None:
                continue
            shown = value if value.numel() == 1 else f"size {tuple(value.shape)}"
            parts.append(f"{name}: {shown}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def expand(
        self, batch_shape: torch.Size, _instance: Optional[Distribution] = None
    ) -> "_ScviDistribution":
        """Return a view of this distribution with parameters expanded to ``batch_shape``.

        Parameters
        ----------
        batch_shape
            The desired batch shape; the current one must broadcast to it.
        _instance
            Instance to fill in (used by subclasses, as in ``torch.distributions``).
        """
        batch_shape = torch.Size(batch_shape)
        new = type(self).__new__(type(self)) if _instance is None else _instance
        for name in self.arg_constraints:
            value = self.__dict__.get(name)
            setattr(new, name, None if value is None else value.expand(batch_shape))
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _checked_value(self, value: Param) -> torch.Tensor:
        """Return ``value`` as a tensor, checking support and shape if validating."""
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            value = torch.tensor(float(value), dtype=self._dtype())
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"{type(self).__name__}: `value` must be a torch.Tensor, "
                f"got {type(value).__name__}."
            )
        if self._validate_args:
            try:
                torch.broadcast_shapes(value.shape, self.batch_shape)
            except RuntimeError as err:
                raise ValueError(
                    f"{type(self).__name__}: `value` of shape {tuple(value.shape)} "
                    f"cannot be broadcast with the batch shape "
                    f"{tuple(self.batch_shape)}."
                ) from err
            bad = ~self.support.check(value)
            if bad.any():
                raise ValueError(
                    f"{type(self).__name__}: expected {self._support_text}, but "
                    f"{int(bad.sum())} value(s) are not, e.g. "
                    f"{value[bad][:5].tolist()}. Pass validate_args=False to skip "
                    "this check."
                )
        return value

    def _dtype(self) -> torch.dtype:
        for name in self.arg_constraints:
            value = self.__dict__.get(name)
            if isinstance(value, torch.Tensor):
                return value.dtype
        return torch.get_default_dtype()

    def _normalized_lookup(self, key: str, table: Dict[str, Optional[torch.Tensor]]):
        if key not in table:
            raise ValueError(
                f"{type(self).__name__}.get_normalized: unknown key {key!r}; "
                f"use one of {sorted(table)}."
            )
        value = table[key]
        if value is None:
            raise ValueError(
                f"{type(self).__name__}.get_normalized: {key!r} was not given when "
                "the distribution was built."
            )
        return value


class NegativeBinomial(_ScviDistribution):
    r"""Negative binomial distribution over counts.

    Give exactly one of two parameterisations:

    * ``(mu, theta)``: mean :math:`\mu \ge 0` and inverse dispersion :math:`\theta > 0`,
      with variance :math:`\mu + \mu^2 / \theta` (scVI's form);
    * ``(total_count, probs)`` or ``(total_count, logits)``: as in
      :class:`torch.distributions.NegativeBinomial`, the number of failures
      :math:`r = \theta` and the success probability :math:`p`, so that
      :math:`\mu = r p / (1 - p) = r e^{\mathrm{logits}}`.

    Draws are Gamma-Poisson mixtures,
    :math:`w \sim \mathrm{Gamma}(\theta, \mathrm{rate} = \theta / \mu)`,
    :math:`x \sim \mathrm{Poisson}(w)`.

    Parameters
    ----------
    total_count
        Number of failures (count parameterisation).
    probs
        Success probability in ``[0, 1)`` (count parameterisation).
    logits
        Log-odds of the success probability (count parameterisation).
    mu
        Mean (mean parameterisation).
    theta
        Inverse dispersion (mean parameterisation).
    scale
        Optional normalised expression (e.g. the decoder's ``px_scale``); stored for
        :meth:`get_normalized`, not used in any computation.
    validate_args
        Check parameter constraints at construction and that values passed to
        :meth:`log_prob` are non-negative integers.
    """

    arg_constraints = {
        "mu": _optional(constraints.greater_than_eq(0)),
        "theta": _optional(constraints.positive),
        "scale": _optional(constraints.greater_than_eq(0)),
    }
    support = constraints.nonnegative_integer
    _support_text = "non-negative integer counts"
    _eps = 1e-8

    def __init__(
        self,
        total_count: Optional[Param] = None,
        probs: Optional[Param] = None,
        logits: Optional[Param] = None,
        mu: Optional[Param] = None,
        theta: Optional[Param] = None,
        scale: Optional[torch.Tensor] = None,
        validate_args: bool = False,
    ):
        owner = type(self).__name__
        _check_optional_tensor(owner, "scale", scale)
        self.mu, self.theta = _nb_mean_dispersion(
            owner, total_count, probs, logits, mu, theta, validate_args
        )
        self.scale = scale
        self._init_batch(self.mu.shape, validate_args)

    @property
    def total_count(self) -> torch.Tensor:
        """Number of failures of the count parameterisation (equal to ``theta``)."""
        return self.theta

    @property
    def probs(self) -> torch.Tensor:
        """Success probability of the count parameterisation, ``mu / (mu + theta)``."""
        return self.mu / (self.mu + self.theta)

    @property
    def logits(self) -> torch.Tensor:
        """Log-odds of :attr:`probs`, ``log(mu) - log(theta)``."""
        return torch.log(self.mu) - torch.log(self.theta)

    @property
    def mean(self) -> torch.Tensor:
        """Mean ``mu``."""
        return self.mu

    @property
    def variance(self) -> torch.Tensor:
        """Variance ``mu + mu**2 / theta``."""
        return self.mu + self.mu**2 / self.theta

    def sample(self, sample_shape: torch.Size = _NO_SAMPLE_SHAPE) -> torch.Tensor:
        """Draw counts of shape ``sample_shape + batch_shape`` (no gradient)."""
        shape = self._extended_shape(torch.Size(sample_shape))
        with torch.no_grad():
            return _gamma_poisson(self.mu.expand(shape), self.theta.expand(shape))

    def log_prob(self, value: Param) -> torch.Tensor:
        """Log-probability of counts ``value``, via :func:`log_nb_positive`."""
        value = self._checked_value(value)
        return log_nb_positive(value, self.mu, self.theta, eps=self._eps)

    def pearson_residuals(self, value: Param) -> torch.Tensor:
        """Pearson residuals ``(value - mean) / sqrt(variance)`` of observed counts.

        Parameters
        ----------
        value
            Observed counts, broadcastable to the batch shape.
        """
        value = self._checked_value(value)
        return (value - self.mean) / torch.sqrt(self.variance)

    def get_normalized(self, key: str) -> torch.Tensor:
        """Return ``mu`` (``key="mu"``) or the stored normalised expression (``"scale"``)."""
        return self._normalized_lookup(key, {"mu": self.mu, "scale": self.scale})


class ZeroInflatedNegativeBinomial(NegativeBinomial):
    r"""Zero-inflated negative binomial distribution over counts.

    With probability :math:`\pi = \mathrm{sigmoid}(\texttt{zi\_logits})` the count is an
    extra zero; otherwise it is drawn from :class:`NegativeBinomial`. Mean
    :math:`(1 - \pi)\mu`, variance
    :math:`(1 - \pi)(\mu + \mu^2/\theta) + \pi (1 - \pi) \mu^2`.

    Parameters
    ----------
    total_count, probs, logits, mu, theta, scale
        As for :class:`NegativeBinomial`.
    zi_logits
        Logits of the zero-inflation probability (required).
    validate_args
        As for :class:`NegativeBinomial`.
    """

    arg_constraints = {
        "mu": _optional(constraints.greater_than_eq(0)),
        "theta": _optional(constraints.positive),
        "zi_logits": _optional(constraints.real),
        "scale": _optional(constraints.greater_than_eq(0)),
    }

    def __init__(
        self,
        total_count: Optional[Param] = None,
        probs: Optional[Param] = None,
        logits: Optional[Param] = None,
        mu: Optional[Param] = None,
        theta: Optional[Param] = None,
        zi_logits: Optional[Param] = None,
        scale: Optional[torch.Tensor] = None,
        validate_args: bool = False,
    ):
        owner = type(self).__name__
        if zi_logits is None:
            raise ValueError(
                f"{owner}: `zi_logits` (logits of the zero-inflation probability) "
                "is required."
            )
        _check_optional_tensor(owner, "scale", scale)
        mu, theta = _nb_mean_dispersion(
            owner, total_count, probs, logits, mu, theta, validate_args
        )
        self.mu, self.theta, self.zi_logits = _broadcast(
            owner, mu=mu, theta=theta, zi_logits=zi_logits
        )
        self.scale = scale
        self._init_batch(self.mu.shape, validate_args)

    @lazy_property
    def zi_probs(self) -> torch.Tensor:
        """Zero-inflation probability ``sigmoid(zi_logits)``."""
        return torch.sigmoid(self.zi_logits)

    @property
    def mean(self) -> torch.Tensor:
        """Mean ``(1 - zi_probs) * mu``."""
        return (1 - self.zi_probs) * self.mu

    @property
    def variance(self) -> torch.Tensor:
        """Variance ``(1 - pi) * (mu + mu**2 / theta + pi * mu**2)``."""
        pi = self.zi_probs
        return (1 - pi) * (self.mu + self.mu**2 / self.theta + pi * self.mu**2)

    def sample(self, sample_shape: torch.Size = _NO_SAMPLE_SHAPE) -> torch.Tensor:
        """Draw counts of shape ``sample_shape + batch_shape`` (no gradient)."""
        counts = super().sample(sample_shape)
        with torch.no_grad():
            dropped = torch.bernoulli(self.zi_probs.expand(counts.shape)).bool()
            return counts.masked_fill(dropped, 0.0)

    def log_prob(self, value: Param) -> torch.Tensor:
        """Log-probability of counts ``value``, via :func:`log_zinb_positive`."""
        value = self._checked_value(value)
        return log_zinb_positive(
            value, self.mu, self.theta, self.zi_logits, eps=self._eps
        )


class NegativeBinomialMixture(_ScviDistribution):
    r"""Two-component negative binomial mixture over counts (totalVI's protein model).

    With probability :math:`w = \mathrm{sigmoid}(\texttt{mixture\_logits})` a count is
    drawn from :math:`\mathrm{NB}(\mu_1, \theta_1)` (in totalVI: background), otherwise
    from :math:`\mathrm{NB}(\mu_2, \theta_2)`.

    Parameters
    ----------
    mu1
        Mean of the first component.
    mu2
        Mean of the second component.
    theta1
        Inverse dispersion of the first component.
    mixture_logits
        Logits of the probability of the *first* component.
    theta2
        Inverse dispersion of the second component; ``None`` shares ``theta1``.
    validate_args
        Check parameter constraints and that values passed to :meth:`log_prob` are
        non-negative integers.
    """

    arg_constraints = {
        "mu1": constraints.greater_than_eq(0),
        "mu2": constraints.greater_than_eq(0),
        "theta1": constraints.positive,
        "theta2": _optional(constraints.positive),
        "mixture_logits": constraints.real,
    }
    support = constraints.nonnegative_integer
    _support_text = "non-negative integer counts"
    _eps = 1e-8

    def __init__(
        self,
        mu1: Param,
        mu2: Param,
        theta1: Param,
        mixture_logits: Param,
        theta2: Optional[Param] = None,
        validate_args: bool = False,
    ):
        owner = type(self).__name__
        params = {
            "mu1": mu1,
            "mu2": mu2,
            "theta1": theta1,
            "mixture_logits": mixture_logits,
        }
        if theta2 is not None:
            params["theta2"] = theta2
        values = _broadcast(owner, **params)
        self.mu1, self.mu2, self.theta1, self.mixture_logits = values[:4]
        self.theta2 = values[4] if theta2 is not None else None
        self._init_batch(self.mu1.shape, validate_args)

    @lazy_property
    def mixture_probs(self) -> torch.Tensor:
        """Probability of the first component, ``sigmoid(mixture_logits)``."""
        return torch.sigmoid(self.mixture_logits)

    def _theta2(self) -> torch.Tensor:
        return self.theta1 if self.theta2 is None else self.theta2

    @property
    def mean(self) -> torch.Tensor:
        """Mean ``w * mu1 + (1 - w) * mu2``."""
        w = self.mixture_probs
        return w * self.mu1 + (1 - w) * self.mu2

    @property
    def variance(self) -> torch.Tensor:
        """Variance: mean of the component variances plus ``w (1 - w) (mu1 - mu2)**2``."""
        w = self.mixture_probs
        var1 = self.mu1 + self.mu1**2 / self.theta1
        var2 = self.mu2 + self.mu2**2 / self._theta2()
        return w * var1 + (1 - w) * var2 + w * (1 - w) * (self.mu1 - self.mu2) ** 2

    def sample(self, sample_shape: torch.Size = _NO_SAMPLE_SHAPE) -> torch.Tensor:
        """Draw counts of shape ``sample_shape + batch_shape``; components drawn per entry."""
        shape = self._extended_shape(torch.Size(sample_shape))
        with torch.no_grad():
            first = torch.bernoulli(self.mixture_probs.expand(shape)).bool()
            mu = torch.where(first, self.mu1, self.mu2)
            theta = torch.where(first, self.theta1, self._theta2())
            return _gamma_poisson(mu, theta)

    def log_prob(self, value: Param) -> torch.Tensor:
        """Log-probability of counts ``value``, via :func:`log_mixture_nb`."""
        value = self._checked_value(value)
        return log_mixture_nb(
            value,
            self.mu1,
            self.mu2,
            self.theta1,
            self.theta2,
            self.mixture_logits,
            eps=self._eps,
        )

    def pearson_residuals(self, value: Param) -> torch.Tensor:
        """Pearson residuals ``(value - mean) / sqrt(variance)`` of observed counts."""
        value = self._checked_value(value)
        return (value - self.mean) / torch.sqrt(self.variance)

    def get_normalized(self, key: str) -> torch.Tensor:
        """Return the mixture mean for ``key="mu"`` (the only key)."""
        return self._normalized_lookup(key, {"mu": self.mean})


class ZeroInflatedLogNormal(_ScviDistribution):
    r"""Point mass at zero mixed with a log-normal distribution.

    With probability :math:`\pi = \mathrm{sigmoid}(\texttt{zi\_logits})` the value is
    exactly zero; otherwise :math:`x = \exp(\mathrm{loc} + \mathrm{scale}\,\varepsilon)`
    with :math:`\varepsilon \sim \mathcal{N}(0, 1)`.

    Densities are taken with respect to :math:`\nu = \delta_0 + \lambda` (a unit atom at
    zero plus Lebesgue measure on :math:`(0, \infty)`), so
    :math:`p(0) = \pi` and :math:`p(x) = (1 - \pi) f_{LN}(x)` for :math:`x > 0`; this is
    what :meth:`log_prob` returns. :meth:`entropy` is the entropy relative to the same
    :math:`\nu`,

    .. math::

        H = -\mathbb{E}[\log p(X)]
          = H_{\mathrm{Bernoulli}}(\pi) + (1 - \pi)\, H_{LN},
        \qquad H_{LN} = \mathrm{loc} + \tfrac12 + \tfrac12\log(2\pi\,\mathrm{scale}^2),

    i.e. the Bernoulli entropy of the zero / non-zero indicator plus the differential
    entropy of the log-normal part weighted by its probability. :attr:`mode` is the
    maximiser of the same density: ``0`` when :math:`\pi \ge (1 - \pi) f_{LN}(m)` at the
    log-normal mode :math:`m = e^{\mathrm{loc} - \mathrm{scale}^2}`, else :math:`m`.

    Parameters
    ----------
    loc
        Mean of the log of the non-zero part.
    scale
        Standard deviation of the log of the non-zero part (positive).
    zi_logits
        Logits of the probability of an exact zero.
    normal_mu
        Optional normalised expression, stored for :meth:`get_normalized` only.
    validate_args
        Check parameter constraints and that values passed to :meth:`log_prob` and
        :meth:`cdf` are non-negative (and to :meth:`icdf` lie in ``[0, 1]``).
    """

    arg_constraints = {
        "loc": constraints.real,
        "scale": constraints.positive,
        "zi_logits": constraints.real,
        "normal_mu": _optional(constraints.greater_than_eq(0)),
    }
    support = constraints.nonnegative
    has_rsample = True
    _support_text = "non-negative values"

    def __init__(
        self,
        loc: Param,
        scale: Param,
        zi_logits: Param,
        normal_mu: Optional[torch.Tensor] = None,
        validate_args: bool = False,
    ):
        owner = type(self).__name__
        _check_optional_tensor(owner, "normal_mu", normal_mu)
        self.loc, self.scale, self.zi_logits = _broadcast(
            owner, loc=loc, scale=scale, zi_logits=zi_logits
        )
        self.normal_mu = normal_mu
        self._init_batch(self.loc.shape, validate_args)

    @lazy_property
    def zi_probs(self) -> torch.Tensor:
        """Probability of an exact zero, ``sigmoid(zi_logits)``."""
        return torch.sigmoid(self.zi_logits)

    def _lognormal_mean(self) -> torch.Tensor:
        return torch.exp(self.loc + 0.5 * self.scale**2)

    @property
    def mean(self) -> torch.Tensor:
        """Mean ``(1 - pi) * exp(loc + scale**2 / 2)``."""
        return (1 - self.zi_probs) * self._lognormal_mean()

    @property
    def variance(self) -> torch.Tensor:
        """Variance ``(1 - pi) * m**2 * (expm1(scale**2) + pi)``, ``m`` the log-normal mean."""
        pi = self.zi_probs
        return (
            (1 - pi) * self._lognormal_mean() ** 2 * (torch.expm1(self.scale**2) + pi)
        )

    @property
    def mode(self) -> torch.Tensor:
        """Maximiser of the density w.r.t. ``delta_0 + Lebesgue`` (see class docstring)."""
        log_mode = self.loc - self.scale**2
        log_density_at_mode = (
            -F.softplus(self.zi_logits)
            - log_mode
            - torch.log(self.scale)
            - _HALF_LOG_2PI
            - 0.5 * self.scale**2
        )
        zero_wins = -F.softplus(-self.zi_logits) >= log_density_at_mode
        return torch.where(zero_wins, torch.zeros_like(log_mode), torch.exp(log_mode))

    def rsample(self, sample_shape: torch.Size = _NO_SAMPLE_SHAPE) -> torch.Tensor:
        """Reparameterised draw of shape ``sample_shape + batch_shape``.

        Gradients flow to ``loc`` and ``scale`` through the log-normal part; the
        zero / non-zero indicator is discrete, so none flow to ``zi_logits``.
        """
        shape = self._extended_shape(torch.Size(sample_shape))
        noise = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        positive = torch.exp(self.loc + self.scale * noise)
        with torch.no_grad():
            zero = torch.bernoulli(self.zi_probs.expand(shape)).bool()
        return positive.masked_fill(zero, 0.0)

    def sample(self, sample_shape: torch.Size = _NO_SAMPLE_SHAPE) -> torch.Tensor:
        """Draw of shape ``sample_shape + batch_shape`` (no gradient)."""
        with torch.no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, value: Param) -> torch.Tensor:
        """Log-density w.r.t. ``delta_0 + Lebesgue``: ``log pi`` at zero, else
        ``log(1 - pi) + log f_LN(value)``; ``-inf`` for negative values.
        """
        value = self._checked_value(value)
        positive = value > 0
        log_value = torch.log(torch.where(positive, value, torch.ones_like(value)))
        log_lognormal = (
            -0.5 * ((log_value - self.loc) / self.scale) ** 2
            - torch.log(self.scale)
            - _HALF_LOG_2PI
            - log_value
        )
        log_nonzero = -F.softplus(self.zi_logits) + log_lognormal
        log_zero = -F.softplus(-self.zi_logits)
        at_zero = torch.where(
            value == 0, log_zero, torch.full_like(log_zero, -math.inf)
        )
        return torch.where(positive, log_nonzero, at_zero)

    def cdf(self, value: Param) -> torch.Tensor:
        """``P(X <= value)``: ``0`` below zero, ``pi + (1 - pi) Phi((log v - loc) / scale)``."""
        value = self._checked_value(value)
        positive = value > 0
        log_value = torch.log(torch.where(positive, value, torch.ones_like(value)))
        z = (log_value - self.loc) / self.scale
        pi = self.zi_probs
        continuous = pi + (1 - pi) * torch.special.ndtr(z)
        at_zero = torch.where(value == 0, pi, torch.zeros_like(pi))
        return torch.where(positive, continuous, at_zero)

    def icdf(self, value: Param) -> torch.Tensor:
        """Quantile function: ``0`` for ``value <= pi``, else the log-normal quantile of
        ``(value - pi) / (1 - pi)``.
        """
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            value = torch.tensor(float(value), dtype=self.loc.dtype)
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"{type(self).__name__}.icdf: `value` must be a torch.Tensor, "
                f"got {type(value).__name__}."
            )
        if self._validate_args:
            _require(type(self).__name__, "value", value, constraints.unit_interval)
        pi = self.zi_probs
        above = value > pi
        u = torch.where(above, (value - pi) / (1 - pi), torch.full_like(pi, 0.5))
        positive = torch.exp(self.loc + self.scale * torch.special.ndtri(u))
        return torch.where(above, positive, torch.zeros_like(positive))

    def entropy(self) -> torch.Tensor:
        """Entropy w.r.t. ``delta_0 + Lebesgue`` (see class docstring)."""
        pi = self.zi_probs
        bernoulli = pi * F.softplus(-self.zi_logits) + (1 - pi) * F.softplus(
            self.zi_logits
        )
        lognormal = self.loc + 0.5 + _HALF_LOG_2PI + torch.log(self.scale)
        return bernoulli + (1 - pi) * lognormal

    def get_normalized(self, key: str) -> torch.Tensor:
        """Return ``loc`` (``key="mu"``) or the stored ``normal_mu`` (``"scale"``)."""
        return self._normalized_lookup(key, {"mu": self.loc, "scale": self.normal_mu})
