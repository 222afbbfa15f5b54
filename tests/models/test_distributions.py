"""Tests of scvi's torch distributions against scipy.stats, closed forms and sampling."""

import math

import numpy as np
import pytest
import torch
from scipy import special, stats

import scvi.distributions
import scvi.models.distributions
from scvi.distributions import (
    NegativeBinomial,
    NegativeBinomialMixture,
    ZeroInflatedLogNormal,
    ZeroInflatedNegativeBinomial,
)

EPS = 1e-8
N_SAMPLES = 200_000


def _t(values, grad=False) -> torch.Tensor:
    return torch.tensor(np.asarray(values, dtype=np.float64), requires_grad=grad)


def _nb_inputs(seed, n=2000):
    rng = np.random.default_rng(seed)
    mu = 10 ** rng.uniform(-2, 4, n)
    theta = 10 ** rng.uniform(-2, 5, n)
    x = rng.negative_binomial(theta, theta / (theta + mu)).astype(np.float64)
    return rng, x, mu, theta


def _scipy_nb(x, mu, theta):
    return stats.nbinom.logpmf(x, theta, theta / (theta + mu))


def _assert_close_to_exact_nb(ours, ref, x, mu):
    """Tolerance: float64 rounding plus the shift from 0.5's eps = 1e-8 placements."""
    err = np.abs(np.asarray(ours) - ref)
    assert (err <= 1e-9 * (np.abs(ref) + 1) + 2 * x * EPS / mu + EPS).all(), err.max()


def _assert_moment(samples: torch.Tensor, mean: torch.Tensor, variance: torch.Tensor):
    """Sample mean and variance (over dim 0) within 5 standard errors of the formulas."""
    s = samples.double()
    n = s.shape[0]
    centred = s - s.mean(0)
    sq = centred**2
    assert (s.mean(0) - mean).abs().le(5 * torch.sqrt(variance / n)).all(), (
        s.mean(0),
        mean,
    )
    se_var = sq.std(0) / math.sqrt(n)
    assert (sq.mean(0) - variance).abs().le(5 * se_var + 1e-12).all(), (
        sq.mean(0),
        variance,
    )


def _assert_frequencies(samples: torch.Tensor, dist, values):
    """Empirical frequencies of ``values`` within 5 standard errors of exp(log_prob)."""
    n = samples.shape[0]
    for v in values:
        p = dist.log_prob(
            torch.full(dist.batch_shape, float(v), dtype=torch.float64)
        ).exp()
        freq = (samples == v).double().mean(0)
        assert (freq - p).abs().le(5 * torch.sqrt(p * (1 - p) / n) + 1e-6).all(), (
            v,
            freq,
            p,
        )


def _assert_moments_from_pmf(dist, k_max=3000):
    """Mean and variance equal the moments of exp(log_prob) summed over 0..k_max.

    0.5's eps = 1e-8 inside log(mu + eps) perturbs the pmf by a relative O(1e-8), hence
    the tolerances.
    """
    k = np.arange(0, k_max, dtype=np.float64)
    pmf = np.exp(dist.log_prob(_t(k)[:, None]).numpy()[:, 0])
    assert abs(pmf.sum() - 1) < 1e-7
    mean = (k * pmf).sum()
    np.testing.assert_allclose(dist.mean.numpy(), [mean], rtol=1e-6)
    np.testing.assert_allclose(
        dist.variance.numpy(), [(k**2 * pmf).sum() - mean**2], rtol=1e-6
    )


# ---------------------------------------------------------------------------------------
# NegativeBinomial
# ---------------------------------------------------------------------------------------


def test_modules_export_the_same_classes():
    for name in [
        "NegativeBinomial",
        "ZeroInflatedNegativeBinomial",
        "NegativeBinomialMixture",
    ]:
        assert getattr(scvi.distributions, name) is getattr(
            scvi.models.distributions, name
        )
    assert scvi.distributions.ZeroInflatedLogNormal is ZeroInflatedLogNormal
    assert issubclass(NegativeBinomial, torch.distributions.Distribution)


def test_nb_mean_dispersion_log_prob_matches_scipy():
    _, x, mu, theta = _nb_inputs(1)
    dist = NegativeBinomial(mu=_t(mu), theta=_t(theta), validate_args=True)
    _assert_close_to_exact_nb(
        dist.log_prob(_t(x)).numpy(), _scipy_nb(x, mu, theta), x, mu
    )


def test_nb_count_parameterisations_match_scipy_and_torch():
    rng = np.random.default_rng(2)
    total_count = 10 ** rng.uniform(-1, 3, 500)
    probs = rng.uniform(0.01, 0.99, 500)
    x = rng.negative_binomial(total_count, 1 - probs).astype(np.float64)
    # torch/scvi-tools `probs` is the success probability; scipy's `p` is its complement.
    ref = stats.nbinom.logpmf(x, total_count, 1 - probs)
    mu = total_count * probs / (1 - probs)
    from_probs = NegativeBinomial(total_count=_t(total_count), probs=_t(probs))
    from_logits = NegativeBinomial(
        total_count=_t(total_count), logits=_t(special.logit(probs))
    )
    torch_nb = torch.distributions.NegativeBinomial(_t(total_count), probs=_t(probs))
    for dist in (from_probs, from_logits):
        np.testing.assert_allclose(dist.mu.numpy(), mu, rtol=1e-12)
        np.testing.assert_allclose(dist.theta.numpy(), total_count, rtol=0)
        _assert_close_to_exact_nb(dist.log_prob(_t(x)).numpy(), ref, x, mu)
        np.testing.assert_allclose(
            dist.log_prob(_t(x)).numpy(), torch_nb.log_prob(_t(x)).numpy(), rtol=1e-6
        )
        np.testing.assert_allclose(dist.probs.numpy(), probs, rtol=1e-12)
        np.testing.assert_allclose(
            dist.logits.numpy(), special.logit(probs), rtol=1e-10
        )
        np.testing.assert_allclose(dist.total_count.numpy(), total_count, rtol=0)


def test_nb_moments_and_pearson_residuals_match_scipy():
    _, x, mu, theta = _nb_inputs(3, 200)
    dist = NegativeBinomial(mu=_t(mu), theta=_t(theta))
    mean, var = stats.nbinom.stats(theta, theta / (theta + mu), moments="mv")
    np.testing.assert_allclose(dist.mean.numpy(), mean, rtol=1e-9)
    np.testing.assert_allclose(dist.variance.numpy(), var, rtol=1e-9)
    np.testing.assert_allclose(
        dist.pearson_residuals(_t(x)).numpy(), (x - mean) / np.sqrt(var), rtol=1e-9
    )


@pytest.mark.parametrize(
    "mu, theta", [(0.3, 0.5), (5.0, 2.0), (40.0, 1e3), (1e3, 0.2), (2.0, 1e6)]
)
def test_nb_sampling(mu, theta):
    torch.manual_seed(123)
    dist = NegativeBinomial(mu=_t([mu]), theta=_t([theta]))
    samples = dist.sample((N_SAMPLES,))
    assert samples.shape == (N_SAMPLES, 1)
    assert samples.dtype == torch.float64
    assert (samples >= 0).all() and (samples == samples.round()).all()
    _assert_moment(samples, dist.mean, dist.variance)
    _assert_frequencies(samples, dist, [0, 1, 2, round(mu)])


def test_nb_sample_with_zero_mean_and_no_gradient():
    mu = _t([0.0, 3.0], grad=True)
    samples = NegativeBinomial(mu=mu, theta=_t([2.0, 2.0])).sample((50,))
    assert not samples.requires_grad
    assert (samples[:, 0] == 0).all()


def test_nb_get_normalized():
    mu, scale = _t([[1.0, 3.0]]), _t([[0.25, 0.75]])
    dist = NegativeBinomial(mu=mu, theta=_t([1.0, 2.0]), scale=scale)
    assert torch.equal(dist.get_normalized("mu"), mu)
    assert torch.equal(dist.get_normalized("scale"), scale)
    with pytest.raises(ValueError, match="unknown key"):
        dist.get_normalized("rate")
    with pytest.raises(ValueError, match="was not given"):
        NegativeBinomial(mu=mu, theta=_t([1.0, 2.0])).get_normalized("scale")


# ---------------------------------------------------------------------------------------
# ZeroInflatedNegativeBinomial
# ---------------------------------------------------------------------------------------


def test_zinb_log_prob_matches_scipy():
    rng, x, mu, theta = _nb_inputs(4)
    x[::3] = 0
    zi_logits = rng.normal(0, 3, x.size)
    log_nb = _scipy_nb(x, mu, theta)
    log_keep = special.log_expit(-zi_logits)
    ref = np.where(
        x == 0,
        np.logaddexp(special.log_expit(zi_logits), log_keep + log_nb),
        log_keep + log_nb,
    )
    dist = ZeroInflatedNegativeBinomial(
        mu=_t(mu), theta=_t(theta), zi_logits=_t(zi_logits), validate_args=True
    )
    _assert_close_to_exact_nb(dist.log_prob(_t(x)).numpy(), ref, x, mu)
    np.testing.assert_allclose(
        dist.zi_probs.numpy(), special.expit(zi_logits), rtol=1e-12
    )
    # Same distribution through the count parameterisation.
    probs = mu / (mu + theta)
    same = ZeroInflatedNegativeBinomial(
        total_count=_t(theta), probs=_t(probs), zi_logits=_t(zi_logits)
    )
    np.testing.assert_allclose(
        same.log_prob(_t(x)).numpy(), dist.log_prob(_t(x)).numpy(), rtol=1e-9, atol=1e-9
    )


def test_zinb_moments_are_those_of_the_mixture():
    mu, theta, zi_logits = 7.0, 1.5, 0.4
    dist = ZeroInflatedNegativeBinomial(
        mu=_t([mu]), theta=_t([theta]), zi_logits=_t([zi_logits])
    )
    _assert_moments_from_pmf(dist)


@pytest.mark.parametrize("mu, theta, zi_logits", [(4.0, 1.0, -1.0), (30.0, 50.0, 1.5)])
def test_zinb_sampling(mu, theta, zi_logits):
    torch.manual_seed(7)
    dist = ZeroInflatedNegativeBinomial(
        mu=_t([mu]), theta=_t([theta]), zi_logits=_t([zi_logits])
    )
    samples = dist.sample((N_SAMPLES,))
    assert samples.shape == (N_SAMPLES, 1)
    _assert_moment(samples, dist.mean, dist.variance)
    _assert_frequencies(samples, dist, [0, 1, round(mu)])


def test_zinb_requires_zi_logits():
    with pytest.raises(ValueError, match="zi_logits"):
        ZeroInflatedNegativeBinomial(mu=_t([1.0]), theta=_t([1.0]))


# ---------------------------------------------------------------------------------------
# NegativeBinomialMixture
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shared_theta", [False, True])
def test_mixture_log_prob_matches_scipy(shared_theta):
    rng, x, mu1, theta1 = _nb_inputs(5)
    mu2 = mu1 * 10 ** rng.uniform(0, 2, x.size)
    theta2 = theta1 if shared_theta else 10 ** rng.uniform(-1, 4, x.size)
    logits = rng.normal(0, 3, x.size)
    ref = np.logaddexp(
        special.log_expit(logits) + _scipy_nb(x, mu1, theta1),
        special.log_expit(-logits) + _scipy_nb(x, mu2, theta2),
    )
    dist = NegativeBinomialMixture(
        _t(mu1),
        _t(mu2),
        _t(theta1),
        _t(logits),
        theta2=None if shared_theta else _t(theta2),
        validate_args=True,
    )
    _assert_close_to_exact_nb(dist.log_prob(_t(x)).numpy(), ref, x, mu1)
    np.testing.assert_allclose(
        dist.mixture_probs.numpy(), special.expit(logits), rtol=1e-12
    )


def test_mixture_moments_and_sampling():
    mu1, mu2, theta1, theta2, logit = 2.0, 60.0, 3.0, 8.0, 0.3
    dist = NegativeBinomialMixture(
        _t([mu1]), _t([mu2]), _t([theta1]), _t([logit]), _t([theta2])
    )
    _assert_moments_from_pmf(dist)
    assert torch.equal(dist.get_normalized("mu"), dist.mean)

    torch.manual_seed(11)
    samples = dist.sample((N_SAMPLES,))
    assert samples.shape == (N_SAMPLES, 1)
    _assert_moment(samples, dist.mean, dist.variance)
    _assert_frequencies(samples, dist, [0, 2, 60])


# ---------------------------------------------------------------------------------------
# ZeroInflatedLogNormal
# ---------------------------------------------------------------------------------------


def _ziln(
    loc=(0.3, -1.0, 2.0), scale=(0.3, 1.5, 0.2), zi_logits=(-0.5, 1.0, -3.0), **kw
):
    return ZeroInflatedLogNormal(_t(loc), _t(scale), _t(zi_logits), **kw)


def _scipy_ziln_parts(dist):
    pi = special.expit(dist.zi_logits.numpy())
    lognormal = stats.lognorm(s=dist.scale.numpy(), scale=np.exp(dist.loc.numpy()))
    return pi, lognormal


def test_ziln_log_prob_cdf_icdf_match_scipy():
    dist = _ziln(validate_args=True)
    pi, lognormal = _scipy_ziln_parts(dist)
    values = np.array(
        [[0.0, 0.0, 0.0], [0.05, 0.2, 3.0], [1.0, 1.0, 7.4], [20.0, 5.0, 12.0]]
    )
    ours = dist.log_prob(_t(values)).numpy()
    ref = np.where(values == 0, np.log(pi), np.log1p(-pi) + lognormal.logpdf(values))
    np.testing.assert_allclose(ours, ref, rtol=1e-12)

    cdf_ref = pi + (1 - pi) * np.where(values > 0, lognormal.cdf(values), 0.0)
    np.testing.assert_allclose(dist.cdf(_t(values)).numpy(), cdf_ref, rtol=1e-12)

    q = np.array([[0.1, 0.5, 0.01], [0.5, 0.9, 0.5], [0.99, 0.999, 0.999]])
    icdf = dist.icdf(_t(q)).numpy()
    icdf_ref = np.where(q <= pi, 0.0, lognormal.ppf(np.clip((q - pi) / (1 - pi), 0, 1)))
    np.testing.assert_allclose(icdf, icdf_ref, rtol=1e-10)
    above = q > pi
    np.testing.assert_allclose(dist.cdf(_t(icdf)).numpy()[above], q[above], rtol=1e-10)


def test_ziln_negative_values_without_validation():
    dist = _ziln()
    minus = torch.full((3,), -1.0, dtype=torch.float64)
    assert torch.isneginf(dist.log_prob(minus)).all()
    assert (dist.cdf(minus) == 0).all()


def test_ziln_moments_mode_entropy():
    dist = _ziln()
    pi, lognormal = _scipy_ziln_parts(dist)
    mean = (1 - pi) * lognormal.mean()
    second = (1 - pi) * (lognormal.var() + lognormal.mean() ** 2)
    np.testing.assert_allclose(dist.mean.numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(dist.variance.numpy(), second - mean**2, rtol=1e-10)

    bernoulli_entropy = -pi * np.log(pi) - (1 - pi) * np.log1p(-pi)
    entropy_ref = bernoulli_entropy + (1 - pi) * lognormal.entropy()
    np.testing.assert_allclose(dist.entropy().numpy(), entropy_ref, rtol=1e-12)

    # The mode maximises the density w.r.t. delta_0 + Lebesgue over a fine grid.
    grid = np.concatenate([[0.0], np.geomspace(1e-4, 1e3, 20001)])
    log_density = dist.log_prob(_t(grid)[:, None]).numpy()
    mode = dist.mode.numpy()
    best = grid[np.argmax(log_density, axis=0)]
    np.testing.assert_allclose(mode, best, rtol=2e-3)
    assert (dist.log_prob(dist.mode).numpy() >= log_density.max(0) - 1e-12).all()
    assert mode[1] == 0.0 and mode[0] > 0 and mode[2] > 0


def test_ziln_sampling_moments_and_entropy():
    torch.manual_seed(3)
    dist = _ziln()
    samples = dist.sample((N_SAMPLES,))
    assert samples.shape == (N_SAMPLES, 3)
    assert not samples.requires_grad and (samples >= 0).all()
    _assert_moment(samples, dist.mean, dist.variance)
    zero_freq = (samples == 0).double().mean(0)
    pi = dist.zi_probs
    assert (zero_freq - pi).abs().le(5 * torch.sqrt(pi * (1 - pi) / N_SAMPLES)).all()
    # Monte-Carlo entropy -E[log p(X)] agrees with the closed form.
    neg_log_p = -dist.log_prob(samples)
    se = neg_log_p.std(0) / math.sqrt(N_SAMPLES)
    assert (neg_log_p.mean(0) - dist.entropy()).abs().le(5 * se).all()


def test_ziln_rsample_gradients():
    torch.manual_seed(4)
    loc = _t([0.2, -0.5], grad=True)
    scale = _t([0.7, 0.3], grad=True)
    zi_logits = _t([0.0, -1.0], grad=True)
    dist = ZeroInflatedLogNormal(loc, scale, zi_logits)
    samples = dist.rsample((50_000,))
    assert samples.requires_grad
    d_loc, d_scale, d_zi = torch.autograd.grad(
        samples.sum(), (loc, scale, zi_logits), allow_unused=True
    )
    # Pathwise derivatives: dx/dloc = x and dx/dscale = x * (log x - loc) / scale.
    s = samples.detach()
    positive = s > 0
    standard = torch.where(
        positive, (torch.log(s.clamp(min=1e-300)) - loc) / scale, 0.0
    )
    torch.testing.assert_close(d_loc, s.sum(0), rtol=1e-12, atol=0)
    torch.testing.assert_close(
        d_scale, (s * standard.detach()).sum(0), rtol=1e-10, atol=1e-10
    )
    assert d_zi is None or (d_zi == 0).all()
    # The average gradient estimates the gradient of the mean.
    n = s.shape[0]
    mean = dist.mean.detach()
    grad_mean_loc = mean
    grad_mean_scale = scale.detach() * mean
    se = s.std(0) / math.sqrt(n)
    assert ((d_loc / n) - grad_mean_loc).abs().le(5 * se).all()
    se_scale = (s * standard).std(0) / math.sqrt(n)
    assert ((d_scale / n) - grad_mean_scale).abs().le(5 * se_scale).all()


def test_ziln_get_normalized():
    normal_mu = _t([0.1, 0.2, 0.7])
    dist = _ziln(normal_mu=normal_mu)
    assert torch.equal(dist.get_normalized("mu"), dist.loc)
    assert torch.equal(dist.get_normalized("scale"), normal_mu)
    with pytest.raises(ValueError, match="unknown key"):
        dist.get_normalized("zi")
    torch.testing.assert_close(dist.zi_logits, _t([-0.5, 1.0, -3.0]))


# ---------------------------------------------------------------------------------------
# Argument validation
# ---------------------------------------------------------------------------------------


def test_nb_parameterisation_errors():
    one = _t([1.0])
    with pytest.raises(ValueError, match="both"):
        NegativeBinomial(total_count=one, probs=_t([0.5]), mu=one, theta=one)
    with pytest.raises(ValueError, match="neither"):
        NegativeBinomial()
    with pytest.raises(ValueError, match="needs both"):
        NegativeBinomial(mu=one)
    with pytest.raises(ValueError, match="exactly one of"):
        NegativeBinomial(total_count=one)
    with pytest.raises(ValueError, match="exactly one of"):
        NegativeBinomial(total_count=one, probs=_t([0.5]), logits=_t([0.0]))
    with pytest.raises(TypeError, match="mu"):
        NegativeBinomial(mu="1", theta=one)
    with pytest.raises(TypeError, match="scale"):
        NegativeBinomial(mu=one, theta=one, scale=[0.5])


@pytest.mark.parametrize(
    "build, name",
    [
        (
            lambda: NegativeBinomial(
                mu=_t([-1.0]), theta=_t([1.0]), validate_args=True
            ),
            "mu",
        ),
        (
            lambda: NegativeBinomial(mu=_t([1.0]), theta=_t([0.0]), validate_args=True),
            "theta",
        ),
        (
            lambda: NegativeBinomial(
                total_count=_t([2.0]), probs=_t([1.5]), validate_args=True
            ),
            "probs",
        ),
        (
            lambda: NegativeBinomial(
                total_count=_t([2.0]), probs=_t([-0.1]), validate_args=True
            ),
            "probs",
        ),
        (
            lambda: NegativeBinomial(
                total_count=_t([-2.0]), logits=_t([0.1]), validate_args=True
            ),
            "total_count",
        ),
        (
            lambda: ZeroInflatedNegativeBinomial(
                mu=_t([1.0]), theta=_t([-3.0]), zi_logits=_t([0.0]), validate_args=True
            ),
            "theta",
        ),
        (
            lambda: NegativeBinomialMixture(
                _t([1.0]), _t([-1.0]), _t([1.0]), _t([0.0]), validate_args=True
            ),
            "mu2",
        ),
        (
            lambda: NegativeBinomialMixture(
                _t([1.0]),
                _t([1.0]),
                _t([1.0]),
                _t([0.0]),
                _t([-1.0]),
                validate_args=True,
            ),
            "theta2",
        ),
        (lambda: _ziln(scale=(1.0, 0.0, 1.0), validate_args=True), "scale"),
        (lambda: _ziln(loc=(1.0, float("nan"), 1.0), validate_args=True), "loc"),
    ],
)
def test_invalid_parameters_raise(build, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        build()


def test_invalid_values_raise_when_validating():
    nb = NegativeBinomial(mu=_t([1.0, 2.0]), theta=_t([1.0, 1.0]), validate_args=True)
    with pytest.raises(ValueError, match="non-negative integer counts"):
        nb.log_prob(_t([0.5, 1.0]))
    with pytest.raises(ValueError, match="non-negative integer counts"):
        nb.log_prob(_t([-1.0, 1.0]))
    with pytest.raises(ValueError, match="cannot be broadcast"):
        nb.log_prob(_t([1.0, 2.0, 3.0]))
    with pytest.raises(TypeError, match="value"):
        nb.log_prob([1.0, 2.0])
    zinb = ZeroInflatedNegativeBinomial(
        mu=_t([1.0]), theta=_t([1.0]), zi_logits=_t([0.0]), validate_args=True
    )
    with pytest.raises(ValueError, match="non-negative integer counts"):
        zinb.log_prob(_t([2.5]))
    mixture = NegativeBinomialMixture(
        _t([1.0]), _t([2.0]), _t([1.0]), _t([0.0]), validate_args=True
    )
    with pytest.raises(ValueError, match="non-negative integer counts"):
        mixture.log_prob(_t([-3.0]))
    ziln = _ziln(validate_args=True)
    with pytest.raises(ValueError, match="non-negative values"):
        ziln.log_prob(_t([1.0, -0.5, 2.0]))
    with pytest.raises(ValueError, match="`value`"):
        ziln.icdf(_t([0.5, 1.5, 0.2]))
    # Without validation, non-integer counts are evaluated through the lgamma extension.
    relaxed = NegativeBinomial(mu=_t([1.0, 2.0]), theta=_t([1.0, 1.0]))
    assert torch.isfinite(relaxed.log_prob(_t([0.5, 1.5]))).all()


def test_non_broadcastable_parameters_raise():
    with pytest.raises(ValueError, match=r"mu: \(3,\), theta: \(4,\)"):
        NegativeBinomial(mu=torch.ones(3), theta=torch.ones(4))
    with pytest.raises(ValueError, match="broadcast"):
        ZeroInflatedNegativeBinomial(
            mu=torch.ones(2, 3), theta=torch.ones(3), zi_logits=torch.ones(2)
        )
    with pytest.raises(ValueError, match="broadcast"):
        NegativeBinomialMixture(
            torch.ones(3), torch.ones(2), torch.ones(3), torch.zeros(3)
        )
    with pytest.raises(ValueError, match="broadcast"):
        ZeroInflatedLogNormal(torch.zeros(3), torch.ones(5), torch.zeros(3))


# ---------------------------------------------------------------------------------------
# Shapes, broadcasting, expand
# ---------------------------------------------------------------------------------------


def test_broadcasting_shapes_and_dtypes():
    mu = torch.rand(3, 1, 4, dtype=torch.float64) * 5
    theta = torch.rand(4) + 0.5
    dist = NegativeBinomial(mu=mu, theta=theta)
    assert dist.batch_shape == (3, 1, 4)
    assert dist.theta.dtype == torch.float64 and dist.theta.shape == (3, 1, 4)
    assert dist.sample((2,)).shape == (2, 3, 1, 4)
    values = torch.poisson(torch.full((2, 3, 5, 4), 2.0, dtype=torch.float64))
    log_p = dist.log_prob(values)
    assert log_p.shape == (2, 3, 5, 4)
    ref = _scipy_nb(values.numpy(), mu.numpy(), theta.double().numpy())
    np.testing.assert_allclose(log_p.numpy(), ref, rtol=1e-7, atol=1e-7)

    scalar = NegativeBinomial(mu=2.0, theta=3)
    assert scalar.batch_shape == () and scalar.mu.dtype == torch.get_default_dtype()
    assert scalar.sample((5,)).shape == (5,)
    assert NegativeBinomial(mu=torch.tensor([1, 2]), theta=1.0).mu.is_floating_point()

    zinb = ZeroInflatedNegativeBinomial(
        mu=torch.ones(2, 3), theta=torch.ones(3), zi_logits=0.0
    )
    assert zinb.zi_logits.shape == (2, 3) and zinb.sample((4,)).shape == (4, 2, 3)
    mixture = NegativeBinomialMixture(
        torch.ones(2, 3), 5.0, torch.ones(3), torch.zeros(2, 1), 2.0
    )
    assert mixture.batch_shape == (2, 3) and mixture.theta2.shape == (2, 3)
    assert mixture.sample((4,)).shape == (4, 2, 3)
    ziln = ZeroInflatedLogNormal(torch.zeros(4), 1.0, torch.zeros(2, 1))
    assert ziln.batch_shape == (2, 4) and ziln.rsample((3,)).shape == (3, 2, 4)
    assert ziln.icdf(torch.full((2, 4), 0.7)).shape == (2, 4)


@pytest.mark.parametrize(
    "dist",
    [
        NegativeBinomial(mu=_t([1.0, 4.0]), theta=_t([2.0, 0.5]), scale=_t([0.2, 0.8])),
        ZeroInflatedNegativeBinomial(
            mu=_t([1.0, 4.0]), theta=_t([2.0, 0.5]), zi_logits=_t([0.0, 1.0])
        ),
        NegativeBinomialMixture(
            _t([1.0, 4.0]), _t([9.0, 8.0]), _t([2.0, 0.5]), _t([0.0, 1.0])
        ),
        ZeroInflatedLogNormal(_t([0.0, 1.0]), _t([1.0, 0.5]), _t([0.0, -1.0])),
    ],
    ids=["nb", "zinb", "mixture", "ziln"],
)
def test_expand_keeps_the_distribution(dist):
    expanded = dist.expand((3, 2))
    assert type(expanded) is type(dist)
    assert expanded.batch_shape == (3, 2)
    values = _t([[0.0, 1.0], [2.0, 3.0], [5.0, 0.0]])
    torch.testing.assert_close(expanded.log_prob(values), dist.log_prob(values))
    torch.testing.assert_close(expanded.mean, dist.mean.expand(3, 2))
    assert expanded.sample().shape == (3, 2)
    assert type(dist).__name__ in repr(expanded)
