"""The fused NB/ZINB loss and closed-form KL of the fast training path, against references."""

import numpy as np
import pytest
import scipy.sparse as sp_sparse
import torch
from scipy import stats
from scipy.special import expit, gammaln
from torch.distributions import Normal, kl_divergence

import scvi
from scvi.dataset._count_index import TABLE_SIZE, CountIndex
from scvi.models._fused_likelihood import gaussian_kl_sum, nb_nll_sum
from scvi.models.log_likelihood import log_nb_positive, log_zinb_positive


def _scipy_nll(x, mu, theta, pi=None):
    """-sum_g log p(x_g) with scipy, float64 (pi: zero-inflation logits)."""
    log_nb = stats.nbinom.logpmf(x, theta, theta / (theta + mu))
    if pi is None:
        return -log_nb.sum(-1)
    drop = expit(pi)
    log_p = np.where(
        x == 0,
        np.log(drop + (1 - drop) * np.exp(log_nb)),
        np.log1p(-drop) + log_nb,
    )
    return -log_p.sum(-1)


def _inputs(seed, n_cells=40, n_genes=30, theta_per_gene=True, max_mean=80.0):
    rng = np.random.default_rng(seed)
    mu = rng.uniform(0.05, max_mean, size=(n_cells, n_genes))
    shape = (n_genes,) if theta_per_gene else (n_cells, n_genes)
    theta = np.exp(rng.uniform(np.log(1e-2), np.log(1e6), size=shape))
    theta_b = np.broadcast_to(theta, mu.shape)
    x = rng.negative_binomial(theta_b, theta_b / (theta_b + mu)).astype(float)
    x[rng.random(x.shape) < 0.3] = 0
    pi = rng.normal(0, 2, size=mu.shape)
    return x, mu, theta, pi


@pytest.mark.parametrize("theta_per_gene", [True, False])
@pytest.mark.parametrize("zero_inflated", [True, False])
@pytest.mark.parametrize("with_index", [True, False])
def test_value_matches_scipy(theta_per_gene, zero_inflated, with_index):
    x, mu, theta, pi = _inputs(0, theta_per_gene=theta_per_gene)
    assert (x > TABLE_SIZE).any() and ((x > 0) & (x <= TABLE_SIZE)).any()
    expected = _scipy_nll(x, mu, theta, pi if zero_inflated else None)
    nonzero = CountIndex(x).gather(np.arange(len(x))) if with_index else None
    for dtype, rtol in ((torch.float64, 1e-8), (torch.float32, 2e-6)):
        t = [torch.tensor(a, dtype=dtype) for a in (x, mu, theta, pi)]
        got = nb_nll_sum(
            t[0], t[1], t[2], t[3] if zero_inflated else None, nonzero=nonzero
        )
        np.testing.assert_allclose(got.numpy(), expected, rtol=rtol)


@pytest.mark.parametrize("theta_per_gene", [True, False])
@pytest.mark.parametrize("zero_inflated", [True, False])
def test_gradient_matches_autograd_of_elementwise_kernels(
    theta_per_gene, zero_inflated
):
    x, mu, theta, pi = _inputs(1, theta_per_gene=theta_per_gene)
    weights = torch.tensor(np.random.default_rng(2).normal(size=len(x)))
    grads = []
    for fused in (True, False):
        params = [torch.tensor(a, requires_grad=True) for a in (mu, theta, pi)]
        xt = torch.tensor(x)
        if fused:
            nll = nb_nll_sum(
                xt, params[0], params[1], params[2] if zero_inflated else None
            )
        elif zero_inflated:
            nll = -log_zinb_positive(xt, *params).sum(-1)
        else:
            nll = -log_nb_positive(xt, params[0], params[1]).sum(-1)
        (nll * weights).sum().backward()
        grads.append([p.grad for p in params[: 3 if zero_inflated else 2]])
    for fused_grad, reference in zip(*grads):
        np.testing.assert_allclose(fused_grad, reference, rtol=1e-9, atol=1e-12)


def test_gradient_passes_gradcheck():
    x, mu, theta, pi = _inputs(3, n_cells=6, n_genes=5)
    theta = np.clip(theta, 0.1, 50.0)
    args = [torch.tensor(a, requires_grad=True) for a in (mu, theta, pi)]
    assert torch.autograd.gradcheck(
        lambda m, t, p: nb_nll_sum(torch.tensor(x), m, t, p), args
    )


def test_extreme_inverse_dispersion_stays_accurate_in_float32():
    x = np.array([[0.0, 1.0, 3.0, 40.0, 700.0]])
    mu = np.array([[2.0, 1.5, 4.0, 35.0, 650.0]])
    for theta_value in (1e-3, 1.0, 1e4, 1e8):
        theta = np.full(5, theta_value)
        expected = _scipy_nll(x, mu, theta)
        got = nb_nll_sum(
            torch.tensor(x, dtype=torch.float32),
            torch.tensor(mu, dtype=torch.float32),
            torch.tensor(theta, dtype=torch.float32),
        )
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)


def test_stale_or_foreign_index_is_detected():
    x, mu, theta, pi = _inputs(4)
    stale = CountIndex(x + 1).gather(np.arange(len(x)))
    t = [torch.tensor(a) for a in (x, mu, theta, pi)]
    expected = _scipy_nll(x, mu, theta, pi)
    np.testing.assert_allclose(nb_nll_sum(*t, nonzero=stale), expected, rtol=1e-8)


def test_non_integer_data_skip_the_tables():
    x, mu, theta, _ = _inputs(5)
    x = x * 0.5
    index = CountIndex(x)
    assert not index.integral
    assert index.gather(np.arange(3)).table_slots is None
    t = [torch.tensor(a) for a in (x, mu, theta)]
    got = nb_nll_sum(*t, nonzero=index.gather(np.arange(len(x))))
    expected = -log_nb_positive(*t).sum(-1)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_unsupported_shapes_fall_back_to_the_elementwise_kernels():
    x, mu, theta, pi = _inputs(6)
    t = [torch.tensor(a) for a in (x, mu, theta, pi)]
    samples = torch.stack([t[1], 2 * t[1]])
    got = nb_nll_sum(t[0], samples, t[2], torch.stack([t[3], t[3]]))
    assert got.shape == (2, len(x))
    expected = -log_zinb_positive(t[0], samples, t[2], t[3]).sum(-1)
    np.testing.assert_allclose(got, expected)


@pytest.mark.parametrize("sparse", [False, True])
def test_count_index_gathers_rows_in_order(sparse):
    rng = np.random.default_rng(7)
    X = rng.poisson(0.7, size=(50, 12)).astype(np.float32) * (
        rng.random((50, 12)) < 0.5
    )
    X[[3, 17, 49]] = 0
    X[5, 2] = 40
    index = CountIndex(sp_sparse.csr_matrix(X) if sparse else X)
    cells = np.array([49, 5, 3, 17, 0, 5])
    batch = index.gather(cells)
    dense = np.zeros((len(cells), 12))
    dense[batch.rows.numpy(), batch.cols.numpy()] = batch.counts.numpy()
    np.testing.assert_array_equal(dense, X[cells])
    np.testing.assert_allclose(batch.lgamma_sums, gammaln(X[cells] + 1.0).sum(1))
    assert batch.total == X[cells].sum()
    np.testing.assert_array_equal(
        batch.table_slots, np.minimum(batch.counts.numpy(), TABLE_SIZE)
    )
    np.testing.assert_array_equal(
        batch.large, np.flatnonzero(batch.counts.numpy() > TABLE_SIZE)
    )


@pytest.mark.parametrize("layout", ["dense", "csr", "csc", "coo"])
def test_count_index_spans_row_blocks(layout):
    """Built a block of rows at a time: the CSR arrays and sums equal scipy's over block edges."""
    rng = np.random.default_rng(3)
    X = rng.poisson(0.3, size=(9000, 7)).astype(np.float32)
    X[[0, 4095, 4096, 8191, 8192, 8999]] = 0
    source = {
        "dense": X,
        "csr": sp_sparse.csr_matrix(X),
        "csc": sp_sparse.csc_matrix(X),
        "coo": sp_sparse.coo_matrix(X),
    }
    index = CountIndex(source[layout])
    expected = sp_sparse.csr_matrix(X)
    np.testing.assert_array_equal(index.indptr, expected.indptr)
    np.testing.assert_array_equal(index.indices, expected.indices)
    np.testing.assert_array_equal(index.data, expected.data)
    np.testing.assert_allclose(
        index.lgamma_sums, gammaln(X.astype(np.float64) + 1.0).sum(1), rtol=1e-13
    )


def test_gaussian_kl_matches_torch():
    g = torch.Generator().manual_seed(0)
    m, v = torch.randn(20, 4, generator=g), torch.rand(20, 4, generator=g) + 0.1
    pm, pv = torch.randn(20, 4, generator=g), torch.rand(20, 4, generator=g) + 0.1
    expected = kl_divergence(Normal(m, v.sqrt()), Normal(pm, pv.sqrt())).sum(-1)
    torch.testing.assert_close(gaussian_kl_sum(m, v, pm, pv), expected)
    standard = kl_divergence(Normal(m, v.sqrt()), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(gaussian_kl_sum(m, v), standard)


def test_fast_and_reference_paths_give_the_same_loss_and_gradients(monkeypatch):
    from scvi.dataset import SyntheticDataset
    from scvi.models import VAE

    dataset = SyntheticDataset(batch_size=40, nb_genes=25, n_batches=2)
    collate = dataset.collate_fn_builder()
    results = []
    for fast in (True, False):
        monkeypatch.setattr(scvi.settings, "fast_training", fast)
        torch.manual_seed(0)
        vae = VAE(dataset.nb_genes, n_batch=2).double()
        x, l_mean, l_var, batch, labels = collate(np.arange(len(dataset)))
        assert hasattr(x, "_scvi_nonzero") == fast
        x64 = x.double()
        if fast:
            x64._scvi_nonzero = x._scvi_nonzero
        torch.manual_seed(1)
        reconst, kl_z, _ = vae(x64, l_mean.double(), l_var.double(), batch, labels)
        loss = (reconst + kl_z).mean()
        loss.backward()
        grads = [p.grad.clone() for p in vae.parameters() if p.grad is not None]
        results.append((loss.detach(), grads))
    (loss_fast, grads_fast), (loss_ref, grads_ref) = results
    torch.testing.assert_close(loss_fast, loss_ref, rtol=1e-10, atol=0)
    for a, b in zip(grads_fast, grads_ref):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-10)
