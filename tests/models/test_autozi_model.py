"""AutoZIVAE against the original scVI 0.5.0 and against closed forms.

Golden files come from ``tests/golden/make_golden_autozi_jvae.py`` (run with the
original package): ``autozi_state_dict_parity.json`` (construct / forward status,
``state_dict`` layout and a checksum of the seeded initial weights over a grid of
arguments) and ``autozi_numeric_<case>.pt`` (weights, inputs and outputs of every public
method; ``seeded`` outputs only match if the random stream is consumed in the same order).
"""

import json
import math
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest
import torch
from scipy import special, stats

from scvi.models.autozivae import AutoZIVAE
from scvi.models.log_likelihood import (
    compute_elbo,
    compute_marginal_log_likelihood_autozi,
    compute_reconstruction_error,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
CASE_FILES = sorted(GOLDEN.glob("autozi_numeric_*.pt"))
RTOL, ATOL = 1e-5, 1e-5


def _close(actual: Any, expected: Any, what: str) -> None:
    torch.testing.assert_close(
        torch.as_tensor(actual),
        torch.as_tensor(expected),
        rtol=RTOL,
        atol=ATOL,
        msg=lambda m: f"{what}: {m}",
    )


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: OpenMP threads only add synchronisation cost (and stall under load)."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


class ListPosterior:
    """Fixed minibatches with ``indices``: all the likelihood functions need."""

    def __init__(self, batches):
        self.batches = batches
        self.indices = np.arange(sum(len(b[0]) for b in batches))

    def __iter__(self):
        return iter(self.batches)


# --------------------------------------------------------------------------- parity


def _parity() -> Dict[str, Any]:
    return json.loads((GOLDEN / "autozi_state_dict_parity.json").read_text())


def _checksum(state: Dict[str, torch.Tensor]) -> float:
    return float(
        sum((i + 1) * float(v.double().sum()) for i, v in enumerate(state.values()))
    )


def test_state_dict_parity_grid() -> None:
    parity = _parity()
    fixed = parity["fixed"]
    rng = np.random.RandomState(0)
    x = torch.from_numpy(
        rng.poisson(3.0, size=(6, fixed["n_input"])).astype(np.float32)
    )
    batch = torch.from_numpy(rng.randint(0, 2, size=(6, 1)))
    labels = torch.from_numpy(rng.randint(0, 3, size=(6, 1)))
    l_mean, l_var = torch.full((6, 1), 3.0), torch.ones(6, 1)
    n_ok = 0
    for entry in parity["entries"]:
        kwargs = dict(
            alpha_prior=entry["priors"][0],
            beta_prior=entry["priors"][1],
            zero_inflation=entry["zero_inflation"],
            dispersion=entry["dispersion"],
            n_batch=entry["n_batch"],
            n_labels=entry["n_labels"],
            n_hidden=fixed["n_hidden"],
            n_latent=fixed["n_latent"],
        )
        torch.manual_seed(0)
        if entry["status"] != "ok":
            # The original fails to construct (gene-cell) or fails in forward (a
            # per-batch / per-label parameter with no batch / label); we refuse early.
            with pytest.raises(ValueError):
                AutoZIVAE(fixed["n_input"], **kwargs)
            continue
        model = AutoZIVAE(fixed["n_input"], **kwargs)
        state = model.state_dict()
        layout = parity["layouts"][entry["layout"]]
        assert [[k, list(v.shape)] for k, v in state.items()] == [
            [parity["keys"][i], shape] for i, shape in layout
        ], entry
        assert _checksum(state) == pytest.approx(entry["checksum"], rel=1e-12), entry
        loss, kl_local, kl_global = model(x, l_mean, l_var, batch, labels)
        (loss + kl_local).sum().add(kl_global).backward()
        n_ok += 1
    assert n_ok > 90


# --------------------------------------------------------------------------- numeric


@pytest.fixture(
    scope="module", params=CASE_FILES, ids=lambda p: p.stem[len("autozi_numeric_") :]
)
def case(request) -> Dict[str, Any]:
    return torch.load(request.param, weights_only=True)


def _model(case: Dict[str, Any]) -> AutoZIVAE:
    model = AutoZIVAE(case["n_input"], **case["kwargs"])
    model.load_state_dict(case["state_dict"], strict=True)
    return model.eval()


def _seeded(case: Dict[str, Any], fn):
    torch.manual_seed(case["sampling_seed"])
    with torch.no_grad():
        return fn()


def test_seeded_initialisation(case: Dict[str, Any]) -> None:
    torch.manual_seed(case["seed"])
    model = AutoZIVAE(case["n_input"], **case["kwargs"])
    expected = case["init_state_dict"]
    assert list(model.state_dict()) == list(expected)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0, msg=key)


def test_deterministic_outputs(case: Dict[str, Any]) -> None:
    model = _model(case)
    inp, det = case["inputs"], case["deterministic"]
    x, batch, labels = inp["x"], inp["batch_index"], inp["labels"]
    with torch.no_grad():
        ab = model.get_alphas_betas(as_numpy=False)
        for key, value in ab.items():
            _close(value, det[f"ab_{key}"], key)
        for key, value in model.get_alphas_betas().items():
            assert isinstance(value, np.ndarray)
            _close(value, det[f"ab_{key}"], f"numpy {key}")
        _close(model.compute_global_kl_divergence(), det["global_kl"], "global KL")
        _close(
            model.rescale_dropout(inp["logits_grid"]),
            det["rescaled_dropout"],
            "rescale",
        )
        _close(
            model.reshape_bernoulli(inp["fixed_params"], batch, labels),
            det["reshaped_fixed"],
            "reshape 2-D",
        )
        _close(
            model.reshape_bernoulli(inp["fixed_params3"], batch, labels),
            det["reshaped_fixed3"],
            "reshape 3-D",
        )
        _close(
            model.sample_from_posterior_z(x, give_mean=True),
            det["posterior_z_mean"],
            "z mean",
        )
        bernoulli = model.reshape_bernoulli(inp["fixed_params"], batch, labels)
        loss = model.get_reconstruction_loss(
            x,
            det["reconst_loss_inputs_rate"],
            det["reconst_loss_inputs_r"],
            det["reconst_loss_inputs_dropout"],
            bernoulli,
        )
        _close(loss, det["reconst_loss_fixed_bp"], "reconstruction loss")


def test_seeded_outputs(case: Dict[str, Any]) -> None:
    model = _model(case)
    inp, rnd = case["inputs"], case["seeded"]
    x, batch, labels = inp["x"], inp["batch_index"], inp["labels"]
    l_mean, l_var = inp["local_l_mean"], inp["local_l_var"]
    inference = _seeded(case, lambda: model.inference(x, batch, labels))
    assert set(f"inference_{k}" for k in inference) <= set(rnd)
    for key, value in inference.items():
        _close(value, rnd[f"inference_{key}"], f"inference {key}")
    inference3 = _seeded(case, lambda: model.inference(x, batch, labels, n_samples=3))
    for key in ("z", "library", "px_rate", "px_dropout", "bernoulli_params"):
        _close(inference3[key], rnd[f"inference3_{key}"], f"inference3 {key}")
    _close(
        _seeded(
            case,
            lambda: model.sample_from_beta_distribution(
                inp["alpha_in"], inp["beta_in"]
            ),
        ),
        rnd["beta_sample"],
        "beta sample",
    )
    _close(
        _seeded(case, lambda: model.sample_bernoulli_params(batch, labels)),
        rnd["bernoulli1"],
        "bernoulli",
    )
    _close(
        _seeded(
            case, lambda: model.sample_bernoulli_params(batch, labels, n_samples=3)
        ),
        rnd["bernoulli3"],
        "bernoulli n_samples=3",
    )
    forward = _seeded(case, lambda: model(x, l_mean, l_var, batch, labels))
    for i, value in enumerate(forward):
        _close(value, rnd[f"forward_{i}"], f"forward[{i}]")
    _close(
        _seeded(case, lambda: model.get_sample_scale(x, batch, labels)),
        rnd["sample_scale"],
        "sample scale",
    )


def test_likelihood_functions(case: Dict[str, Any]) -> None:
    """ELBO, reconstruction error and the lead's marginal LL of AutoZI vs. the original's."""
    model = _model(case)
    inp, scalars = case["inputs"], case["scalars"]
    tensors = [
        inp[k] for k in ("x", "local_l_mean", "local_l_var", "batch_index", "labels")
    ]
    split = inp["minibatch_split"]
    halves = [[t[:split] for t in tensors], [t[split:] for t in tensors]]
    ll = _seeded(
        case,
        lambda: compute_marginal_log_likelihood_autozi(
            model, ListPosterior(halves), n_samples_mc=5
        ),
    )
    assert ll == pytest.approx(scalars["marginal_ll_5"], rel=1e-5)
    elbo = _seeded(case, lambda: compute_elbo(model, ListPosterior(halves)))
    assert elbo == pytest.approx(scalars["elbo"], rel=1e-5)
    error = _seeded(
        case, lambda: compute_reconstruction_error(model, ListPosterior(halves))
    )
    assert error == pytest.approx(scalars["reconstruction_error"], rel=1e-5)


# --------------------------------------------------------------------------- closed forms


def test_global_kl_matches_closed_form() -> None:
    torch.manual_seed(1)
    model = AutoZIVAE(9, alpha_prior=0.3, beta_prior=0.6)
    ab = model.get_alphas_betas()
    a, b = ab["alpha_posterior"].astype(np.float64), ab["beta_posterior"].astype(
        np.float64
    )
    a0, b0 = 0.3, 0.6
    expected = (
        special.betaln(a0, b0)
        - special.betaln(a, b)
        + (a - a0) * special.digamma(a)
        + (b - b0) * special.digamma(b)
        + (a0 - a + b0 - b) * special.digamma(a + b)
    ).sum()
    kl = model.compute_global_kl_divergence().item()
    assert kl == pytest.approx(expected, rel=1e-5)
    assert ab["alpha_prior"] == pytest.approx([0.3]) and ab[
        "beta_prior"
    ] == pytest.approx([0.6])


def test_reconstruction_loss_is_the_nb_zinb_mixture() -> None:
    model = AutoZIVAE(4, minimal_dropout=0.0)
    x = torch.tensor([[0.0, 1.0, 5.0, 0.0], [3.0, 0.0, 2.0, 11.0]])
    mu = torch.tensor([[0.5, 2.0, 4.0, 1.5], [3.0, 0.2, 2.5, 9.0]])
    theta = torch.tensor([0.7, 3.0, 12.0, 1.1])
    logits = torch.tensor([[-1.0, 0.3, 2.0, -3.0], [0.5, 0.0, -2.0, 1.0]])
    m = torch.tensor([0.1, 0.5, 0.9, 0.99])
    loss = model.get_reconstruction_loss(x, mu, theta, logits, m)
    xn, mun, thn = (
        x.numpy(),
        mu.numpy().astype(np.float64),
        theta.numpy().astype(np.float64),
    )
    nb = stats.nbinom.pmf(xn, thn, thn / (thn + mun))
    pi = special.expit(logits.numpy().astype(np.float64))
    zinb = (1 - pi) * nb + pi * (xn == 0)
    mn = m.numpy().astype(np.float64)
    expected = -np.log(mn * nb + (1 - mn) * zinb).sum(axis=1)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5)


def test_rescale_dropout_bounds_probability() -> None:
    model = AutoZIVAE(3, minimal_dropout=0.2)
    logits = torch.tensor([-30.0, -2.0, 0.0, 3.0])
    prob = torch.sigmoid(model.rescale_dropout(logits))
    expected = 0.2 + 0.8 * special.expit(logits.numpy().astype(np.float64))
    np.testing.assert_allclose(prob.numpy(), expected, rtol=1e-5)
    assert AutoZIVAE(3, minimal_dropout=0.0).rescale_dropout(logits) is logits


def test_beta_sampler_distribution() -> None:
    torch.manual_seed(3)
    model = AutoZIVAE(2)
    alpha = torch.full((20000,), 0.4)
    beta = torch.full((20000,), 1.7)
    sample = model.sample_from_beta_distribution(alpha, beta).numpy()
    assert 0.0 < sample.min() and sample.max() < 1.0
    assert stats.kstest(sample, stats.beta(0.4, 1.7).cdf).pvalue > 1e-3


def test_reparameterised_gradients_reach_the_posterior() -> None:
    model = AutoZIVAE(5, n_batch=2, zero_inflation="gene-batch")
    batch = torch.tensor([[0], [1], [1]])
    params = model.sample_bernoulli_params(batch, None, n_samples=4)
    assert params.shape == (4, 3, 5)
    params.sum().backward()
    assert model.alpha_posterior_logit.grad.abs().sum() > 0
    assert model.beta_posterior_logit.grad.abs().sum() > 0


def test_prior_handling() -> None:
    learned = AutoZIVAE(5, alpha_prior=None, beta_prior=None)
    assert isinstance(learned.alpha_prior_logit, torch.nn.Parameter)
    assert "alpha_prior_logit" in learned.state_dict()
    fixed = AutoZIVAE(5, alpha_prior=0.2, beta_prior=None)
    assert "alpha_prior_logit" not in fixed.state_dict()
    ab = fixed.get_alphas_betas()
    assert ab["alpha_prior"] == pytest.approx([0.2]) and ab[
        "beta_prior"
    ] == pytest.approx([0.8])
    assert fixed.alpha_prior_logit.item() == pytest.approx(
        math.log(0.2 / 0.8), rel=1e-6
    )
    moved = fixed.to(torch.float64)
    assert moved.beta_prior_logit.dtype == torch.float64
    assert fixed.reconstruction_loss == "autozinb"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(reconstruction_loss="zinb"), "reconstruction_loss"),
        (dict(zero_inflation="gene-cell"), "gene-cell"),
        (dict(zero_inflation="cell"), "zero_inflation"),
        (dict(alpha_prior=1.5), "alpha_prior"),
        (dict(beta_prior=0.0), "beta_prior"),
        (dict(minimal_dropout=1.0), "minimal_dropout"),
        (dict(zero_inflation="gene-batch"), "n_batch"),
        (dict(zero_inflation="gene-label"), "n_labels"),
    ],
)
def test_bad_arguments(kwargs: Dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AutoZIVAE(5, **kwargs)


def test_missing_covariates() -> None:
    model = AutoZIVAE(5, n_batch=2, zero_inflation="gene-batch")
    with pytest.raises(ValueError, match="batch_index"):
        model.sample_bernoulli_params(None, None)
    model = AutoZIVAE(5, n_labels=3, zero_inflation="gene-label")
    with pytest.raises(ValueError, match="labels"):
        model.reshape_bernoulli(torch.rand(5, 3), torch.zeros(2, 1), None)
