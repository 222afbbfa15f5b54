"""Accuracy of the count likelihood kernels against scipy, mpmath and scVI 0.5's formulas.

References used here are independent of the code under test:

* ``scipy.stats.nbinom`` for the plain negative binomial;
* an mpmath evaluation at 50 significant digits of the NB log-pmf, either exact or with
  scVI 0.5's ``eps = 1e-8`` placed where 0.5 places it (inside ``log(mu + eps)``,
  ``log(theta + eps)`` and ``log(theta + mu + eps)``);
* numpy transcriptions of 0.5's naive ``lgamma`` formulas.
"""

import itertools

import mpmath
import numpy as np
import pytest
import torch
from scipy import special, stats

from scvi.models.log_likelihood import (
    log_mixture_nb,
    log_nb_positive,
    log_zinb_positive,
)

EPS = 1e-8

# Extreme sweep: counts up to 1e5, inverse dispersion from 1e-4 to 1e8, means down to 1e-6.
SWEEP_X = [0, 1, 2, 5, 10, 37, 100, 1000, 12345, 1e5]
SWEEP_MU = [1e-6, 1e-5, 1e-4, 1e-3, 0.1, 1.0, 10.0, 1e3, 1e4, 1e5, 1e6]
SWEEP_THETA = [1e-4, 1e-3, 0.01, 0.1, 1.0, 5.0, 9.99, 10.0, 10.01, 100.0, 1e3, 1e4, 1e5]
SWEEP_THETA += [1e6, 1e7, 1e8]
SWEEP_PI = [-20.0, -2.0, 0.0, 2.0, 20.0]


def _t(values, dtype=torch.float64, grad=False) -> torch.Tensor:
    return torch.tensor(
        np.asarray(values, dtype=np.float64), dtype=dtype, requires_grad=grad
    )


def _mp_log_nb(x: float, mu: float, theta: float, eps: float) -> float:
    """NB log-pmf at 50 digits; ``eps > 0`` reproduces 0.5's stabilising constant."""
    x, mu, theta = mpmath.mpf(x), mpmath.mpf(mu), mpmath.mpf(theta)
    gammas = (
        mpmath.loggamma(x + theta) - mpmath.loggamma(theta) - mpmath.loggamma(x + 1)
    )
    denominator = theta + mu + eps
    value = (
        gammas
        + theta * mpmath.log((theta + eps) / denominator)
        + x * mpmath.log((mu + eps) / denominator)
    )
    return float(value)


def _mp_reference(grid: np.ndarray, eps: float) -> np.ndarray:
    with mpmath.workdps(50):
        return np.array([_mp_log_nb(x, mu, theta, eps) for x, mu, theta in grid])


@pytest.fixture(scope="module")
def sweep_grid() -> np.ndarray:
    return np.array(list(itertools.product(SWEEP_X, SWEEP_MU, SWEEP_THETA)))


@pytest.fixture(scope="module")
def sweep_reference(sweep_grid):
    """mpmath references on the sweep: with 0.5's eps, exact, and at float32 inputs."""
    grid32 = sweep_grid.astype(np.float32).astype(np.float64)
    return {
        "eps": _mp_reference(sweep_grid, EPS),
        "exact": _mp_reference(sweep_grid, 0.0),
        "float32": _mp_reference(grid32, EPS),
        "grid32": grid32,
    }


def _eps_bound(x: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Bound on the shift of the log-pmf caused by 0.5's ``eps`` placements."""
    return 2 * x * EPS / mu + EPS


def _random_nb_inputs(rng, n, log_mu, log_theta):
    mu = 10 ** rng.uniform(*log_mu, n)
    theta = 10 ** rng.uniform(*log_theta, n)
    x = rng.negative_binomial(theta, theta / (theta + mu)).astype(np.float64)
    return x, mu, theta


def _scipy_log_nb(x, mu, theta):
    return stats.nbinom.logpmf(x, theta, theta / (theta + mu))


# ---------------------------------------------------------------------------------------
# Negative binomial against scipy and mpmath
# ---------------------------------------------------------------------------------------


def test_log_nb_matches_scipy_float64():
    rng = np.random.default_rng(11)
    x, mu, theta = _random_nb_inputs(rng, 3000, (-3, 4), (-3, 6))
    x[:6] = [1e3, 5e3, 2e4, 5e4, 1e5, 1e5]
    ours = log_nb_positive(_t(x), _t(mu), _t(theta)).numpy()
    ref = _scipy_log_nb(x, mu, theta)
    assert np.isfinite(ref).all()
    err = np.abs(ours - ref)
    assert (err <= 1e-9 * (np.abs(ref) + 1) + _eps_bound(x, mu)).all(), err.max()


def test_log_nb_extreme_sweep_float64_matches_mpmath(sweep_grid, sweep_reference):
    x, mu, theta = sweep_grid.T
    ours = log_nb_positive(_t(x), _t(mu), _t(theta)).numpy()
    assert np.isfinite(ours).all()
    # Against 0.5's definition (eps included) everywhere, mu -> 0 included.
    ref = sweep_reference["eps"]
    rel = np.abs(ours - ref) / (np.abs(ref) + 1)
    assert rel.max() < 1e-7, sweep_grid[np.argmax(rel)]
    # Against the exact NB where eps is a small perturbation (mu >= 1e-4).
    exact = sweep_reference["exact"]
    keep = mu >= 1e-4
    err = np.abs(ours - exact)[keep]
    bound = 1e-6 * (np.abs(exact) + 1)[keep] + _eps_bound(x, mu)[keep]
    assert (err <= bound).all(), sweep_grid[keep][np.argmax(err / bound)]


def test_log_nb_extreme_sweep_float32(sweep_grid, sweep_reference):
    x, mu, theta = sweep_reference["grid32"].T
    ours = log_nb_positive(
        _t(x, torch.float32), _t(mu, torch.float32), _t(theta, torch.float32)
    )
    assert ours.dtype == torch.float32
    ours = ours.double().numpy()
    assert np.isfinite(ours).all(), sweep_grid[~np.isfinite(ours)][:5]
    ref = sweep_reference["float32"]
    scale = np.abs(x * np.log(mu)) + special.gammaln(x + 1) + np.abs(ref) + 1
    rel = np.abs(ours - ref) / scale
    assert rel.max() < 1e-4, sweep_grid[np.argmax(rel)]


def test_log_nb_float32_mean_far_above_inverse_dispersion():
    """Stirling branch (theta >= 10) with mu / theta up to 1e8, where 1 + (x - mu) / (theta + mu)
    cancels in float32."""
    grid = np.array(list(itertools.product([0, 1, 100], [1e7, 1e8, 1e9], [10.0, 30.0])))
    grid32 = grid.astype(np.float32).astype(np.float64)
    x, mu, theta = grid32.T
    ours = log_nb_positive(
        _t(x, torch.float32), _t(mu, torch.float32), _t(theta, torch.float32)
    )
    ours = ours.double().numpy()
    finite = bool(np.isfinite(ours).all())
    assert finite, f"non-finite at (x, mu, theta) = {grid[~np.isfinite(ours)].tolist()}"
    ref = _mp_reference(grid32, EPS)
    scale = np.abs(x * np.log(mu)) + special.gammaln(x + 1) + np.abs(ref) + 1
    rel = np.abs(ours - ref) / scale
    assert rel.max() < 1e-4, grid[np.argmax(rel)]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_log_nb_vanishing_mean(dtype):
    """mu -> 0 (and mu = 0): P(0) -> 1 and positive counts get finite, tiny log-probabilities."""
    theta = _t(SWEEP_THETA, dtype)
    for mu_value in [0.0, 1e-12, 1e-8, 1e-6]:
        mu = torch.full_like(theta, mu_value)
        at_zero = log_nb_positive(torch.zeros_like(theta), mu, theta)
        assert torch.isfinite(at_zero).all()
        assert (at_zero <= 0).all()
        # -log P(0) = theta * log1p(mu / (theta + eps)) <= mu
        assert (-at_zero <= mu_value * (1 + 1e-5) + 1e-30).all()
        positive = log_nb_positive(torch.full_like(theta, 3.0), mu, theta)
        assert torch.isfinite(positive).all()
        assert (positive < at_zero).all()
    mu0 = log_nb_positive(torch.zeros_like(theta), torch.zeros_like(theta), theta)
    assert (mu0 == 0).all()


# ---------------------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_gradients_finite_on_sweep(sweep_grid, dtype):
    grid = np.array([(*row, pi) for row in sweep_grid for pi in SWEEP_PI])
    grid = np.concatenate([grid, [[0.0, 0.0, 1.0, 0.0], [4.0, 0.0, 1e3, 1.0]]])
    x = _t(grid[:, 0], dtype)
    mu = _t(grid[:, 1], dtype, grad=True)
    theta = _t(grid[:, 2], dtype, grad=True)
    pi = _t(grid[:, 3], dtype, grad=True)
    mu_2 = (3 * mu.detach() + 1).requires_grad_()
    theta_2 = (0.5 * theta.detach()).requires_grad_()
    cases = {
        "nb": (lambda: log_nb_positive(x, mu, theta), (mu, theta)),
        "zinb": (lambda: log_zinb_positive(x, mu, theta, pi), (mu, theta, pi)),
        "mixture": (
            lambda: log_mixture_nb(x, mu, mu_2, theta, theta_2, pi),
            (mu, mu_2, theta, theta_2, pi),
        ),
        "mixture_shared_theta": (
            lambda: log_mixture_nb(x, mu, mu_2, theta, None, pi),
            (mu, mu_2, theta, pi),
        ),
    }
    for name, (fn, inputs) in cases.items():
        value = fn()
        assert torch.isfinite(value).all(), name
        grads = torch.autograd.grad(value.sum(), inputs)
        for grad in grads:
            bad = ~torch.isfinite(grad)
            assert not bad.any(), (name, grid[bad.numpy()][:5])


def _analytic_nb_grads(x, mu, theta):
    """d/dmu and d/dtheta of 0.5's NB log-pmf (eps included), with their term scales."""
    denominator = theta + mu + EPS
    d_mu_terms = [x / (mu + EPS), -(x + theta) / denominator]
    d_theta_terms = [
        special.digamma(x + theta),
        -special.digamma(theta),
        np.log((theta + EPS) / denominator),
        theta / (theta + EPS),
        -(theta + x) / denominator,
    ]
    return (
        (sum(d_mu_terms), sum(np.abs(t) for t in d_mu_terms)),
        (sum(d_theta_terms), sum(np.abs(t) for t in d_theta_terms)),
    )


def test_nb_gradients_match_digamma_formulas():
    rng = np.random.default_rng(5)
    x, mu_np, theta_np = _random_nb_inputs(rng, 3000, (-2, 4), (-2, 5))
    mu, theta = _t(mu_np, grad=True), _t(theta_np, grad=True)
    d_mu, d_theta = torch.autograd.grad(
        log_nb_positive(_t(x), mu, theta).sum(), (mu, theta)
    )
    (ref_mu, scale_mu), (ref_theta, scale_theta) = _analytic_nb_grads(
        x, mu_np, theta_np
    )
    assert (np.abs(d_mu.numpy() - ref_mu) <= 1e-9 * scale_mu + 1e-12).all()
    err = np.abs(d_theta.numpy() - ref_theta)
    assert (err <= 1e-9 * scale_theta + 1e-12).all(), err.max()


def test_zinb_and_mixture_gradients_match_closed_forms():
    rng = np.random.default_rng(6)
    x, mu_np, theta_np = _random_nb_inputs(rng, 2000, (-2, 3), (-2, 3))
    x[::3] = 0
    pi_np = rng.normal(0, 3, x.size)
    # 0.5's eps-including log-pmf: the weights below are sensitive to the eps shift.
    log_nb = _nb_05(x, mu_np, theta_np)
    (d_nb_mu, _), (d_nb_theta, _) = _analytic_nb_grads(x, mu_np, theta_np)

    mu, theta, pi = _t(mu_np, grad=True), _t(theta_np, grad=True), _t(pi_np, grad=True)
    value = log_zinb_positive(_t(x), mu, theta, pi)
    d_mu, d_theta, d_pi = torch.autograd.grad(value.sum(), (mu, theta, pi))
    # For x = 0 the NB term enters through sigmoid(log_nb - pi); for x > 0 with weight 1.
    nb_weight = np.where(x == 0, special.expit(log_nb - pi_np), 1.0)
    ref_pi = np.where(x == 0, special.expit(-pi_np) - nb_weight, -special.expit(pi_np))
    np.testing.assert_allclose(d_pi.numpy(), ref_pi, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(d_mu.numpy(), nb_weight * d_nb_mu, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(
        d_theta.numpy(), nb_weight * d_nb_theta, rtol=1e-6, atol=1e-9
    )

    mu_2_np = mu_np * 3 + 0.5
    mu_2 = _t(mu_2_np, grad=True)
    mu, pi = _t(mu_np, grad=True), _t(pi_np, grad=True)
    value = log_mixture_nb(_t(x), mu, mu_2, _t(theta_np), None, pi)
    d_mu, d_mu_2, d_pi = torch.autograd.grad(value.sum(), (mu, mu_2, pi))
    first = special.log_expit(pi_np) + log_nb
    second = special.log_expit(-pi_np) + _nb_05(x, mu_2_np, theta_np)
    w_first = np.exp(first - np.logaddexp(first, second))
    (d_nb2_mu, _), _ = _analytic_nb_grads(x, mu_2_np, theta_np)
    np.testing.assert_allclose(d_mu.numpy(), w_first * d_nb_mu, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(
        d_mu_2.numpy(), (1 - w_first) * d_nb2_mu, rtol=1e-6, atol=1e-9
    )
    np.testing.assert_allclose(
        d_pi.numpy(), w_first - special.expit(pi_np), rtol=1e-7, atol=1e-10
    )


# ---------------------------------------------------------------------------------------
# Zero inflation and mixtures against scipy
# ---------------------------------------------------------------------------------------


def test_log_zinb_matches_scipy_mixture():
    rng = np.random.default_rng(7)
    x, mu, theta = _random_nb_inputs(rng, 3000, (-2, 4), (-2, 5))
    x[::4] = 0
    pi = rng.normal(0, 4, x.size)
    log_nb = _scipy_log_nb(x, mu, theta)
    log_dropout, log_keep = special.log_expit(pi), special.log_expit(-pi)
    ref = np.where(
        x == 0, np.logaddexp(log_dropout, log_keep + log_nb), log_keep + log_nb
    )
    ours = log_zinb_positive(_t(x), _t(mu), _t(theta), _t(pi)).numpy()
    err = np.abs(ours - ref)
    assert (err <= 1e-9 * (np.abs(ref) + 1) + _eps_bound(x, mu)).all(), err.max()


@pytest.mark.parametrize("shared_theta", [False, True])
def test_log_mixture_nb_matches_scipy(shared_theta):
    rng = np.random.default_rng(8)
    x, mu_1, theta_1 = _random_nb_inputs(rng, 3000, (-2, 3), (-1, 4))
    mu_2 = mu_1 * 10 ** rng.uniform(0, 2, x.size)
    theta_2 = theta_1 if shared_theta else 10 ** rng.uniform(-1, 4, x.size)
    pi = rng.normal(0, 3, x.size)
    ref = np.logaddexp(
        special.log_expit(pi) + _scipy_log_nb(x, mu_1, theta_1),
        special.log_expit(-pi) + _scipy_log_nb(x, mu_2, theta_2),
    )
    ours = log_mixture_nb(
        _t(x),
        _t(mu_1),
        _t(mu_2),
        _t(theta_1),
        None if shared_theta else _t(theta_2),
        _t(pi),
    ).numpy()
    err = np.abs(ours - ref)
    assert (err <= 1e-9 * (np.abs(ref) + 1) + _eps_bound(x, mu_1)).all(), err.max()


def test_per_gene_theta_broadcasts_over_cells():
    rng = np.random.default_rng(9)
    mu = _t(10 ** rng.uniform(-1, 3, (6, 4)))
    theta = _t(10 ** rng.uniform(-1, 3, 4))
    x = torch.poisson(mu)
    pi = _t(rng.normal(size=(6, 4)))
    full_theta = theta.expand(6, 4)
    assert torch.equal(
        log_nb_positive(x, mu, theta), log_nb_positive(x, mu, full_theta)
    )
    assert torch.equal(
        log_zinb_positive(x, mu, theta, pi), log_zinb_positive(x, mu, full_theta, pi)
    )
    assert torch.equal(
        log_mixture_nb(x, mu, 2 * mu, theta, None, pi),
        log_mixture_nb(x, mu, 2 * mu, full_theta, full_theta, pi),
    )


# ---------------------------------------------------------------------------------------
# Faithfulness to scVI 0.5's formulas (independent numpy transcription)
# ---------------------------------------------------------------------------------------


def _nb_05(x, mu, theta):
    log_total = np.log(theta + mu + EPS)
    return (
        theta * (np.log(theta + EPS) - log_total)
        + x * (np.log(mu + EPS) - log_total)
        + special.gammaln(x + theta)
        - special.gammaln(theta)
        - special.gammaln(x + 1)
    )


def _softplus(v):
    return np.logaddexp(0.0, v)


def _zinb_05(x, mu, theta, pi):
    theta_part = -pi + theta * (np.log(theta + EPS) - np.log(theta + mu + EPS))
    zero_case = _softplus(theta_part) - _softplus(-pi)
    nonzero_case = _nb_05(x, mu, theta) - pi - _softplus(-pi)
    return np.where(x < EPS, zero_case, 0.0) + np.where(x > EPS, nonzero_case, 0.0)


def _mixture_05(x, mu_1, mu_2, theta_1, theta_2, pi):
    return np.logaddexp(
        _nb_05(x, mu_1, theta_1), _nb_05(x, mu_2, theta_2) - pi
    ) - _softplus(-pi)


def _assert_relative(ours: np.ndarray, ref: np.ndarray, rtol: float, inputs) -> None:
    err = np.abs(ours - ref)
    ok = bool((err <= rtol * np.abs(ref) + 1e-12).all())
    worst = int(np.argmax(err / (np.abs(ref) + 1e-12)))
    assert ok, (
        f"relative error {err[worst] / abs(ref[worst]):.3g} > {rtol:g} at "
        f"(x, mu, theta) = {tuple(float(a[worst]) for a in inputs)}: "
        f"ours {ours[worst]!r}, 0.5 {ref[worst]!r}"
    )


def test_faithful_to_scvi_05_formulas():
    rng = np.random.default_rng(10)
    x, mu, theta = _random_nb_inputs(rng, 20000, (-2, 3), (-2, 3))
    x[:500] = 0
    pi = rng.normal(0, 3, x.size)
    mu_2 = 10 ** rng.uniform(-2, 3, x.size)
    theta_2 = 10 ** rng.uniform(-2, 3, x.size)
    tx, tmu, ttheta, tpi = _t(x), _t(mu), _t(theta), _t(pi)
    _assert_relative(
        log_nb_positive(tx, tmu, ttheta).numpy(),
        _nb_05(x, mu, theta),
        1e-10,
        (x, mu, theta),
    )
    _assert_relative(
        log_zinb_positive(tx, tmu, ttheta, tpi).numpy(),
        _zinb_05(x, mu, theta, pi),
        1e-10,
        (x, mu, theta),
    )
    _assert_relative(
        log_mixture_nb(tx, tmu, _t(mu_2), ttheta, _t(theta_2), tpi).numpy(),
        _mixture_05(x, mu, mu_2, theta, theta_2, pi),
        1e-10,
        (x, mu, theta),
    )
    _assert_relative(
        log_mixture_nb(tx, tmu, _t(mu_2), ttheta, None, tpi).numpy(),
        _mixture_05(x, mu, mu_2, theta, theta, pi),
        1e-10,
        (x, mu, theta),
    )
