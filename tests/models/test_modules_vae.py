"""Layers and the VAE/LDVAE models: covariate injection, shapes, closed-form KL terms, options."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import nbinom

from scvi.models import LDVAE, VAE
from scvi.models.modules import (
    Decoder,
    DecoderSCVI,
    Encoder,
    FCLayers,
    LinearDecoderSCVI,
)
from scvi.models.utils import broadcast_labels, enumerate_discrete, iterate, one_hot


def test_one_hot_and_enumerate_discrete():
    index = torch.tensor([[2], [0], [1]])
    np.testing.assert_array_equal(one_hot(index, 3).numpy(), np.eye(3)[[2, 0, 1]])
    x = torch.zeros(2, 5)
    np.testing.assert_array_equal(
        enumerate_discrete(x, 3).numpy(), np.eye(3)[[0, 0, 1, 1, 2, 2]]
    )
    ys, xs = broadcast_labels(None, x, n_broadcast=3)
    assert ys.shape == (6, 3) and xs.shape == (6, 5)
    ys, xs = broadcast_labels(index[:2], x, n_broadcast=3)
    assert xs is x and ys.shape == (2, 3)
    assert iterate((1, [2, None]), lambda v: v * 10) == (10, [20, None])
    with pytest.raises(ValueError):
        broadcast_labels(None, n_broadcast=2)


def test_fclayers_injects_covariates_at_every_layer():
    layers = FCLayers(4, 6, n_cat_list=[3, 1], n_layers=2, n_hidden=5, dropout_rate=0.0)
    linears = [m for m in layers.modules() if isinstance(m, torch.nn.Linear)]
    # the single-category covariate is ignored; the 3-category one is added to each input
    assert [lin.in_features for lin in linears] == [4 + 3, 5 + 3]
    layers.eval()
    x = torch.randn(8, 4)
    cat = torch.randint(0, 3, (8, 1))
    out_index = layers(x, cat, torch.zeros(8, 1))
    out_onehot = layers(x, one_hot(cat, 3), torch.zeros(8, 1))
    torch.testing.assert_close(out_index, out_onehot)
    # manual computation of the first block
    block = layers.fc_layers[0]
    h = torch.relu(block[1](block[0](torch.cat([x, one_hot(cat, 3)], dim=1))))
    block = layers.fc_layers[1]
    h = torch.relu(block[1](block[0](torch.cat([h, one_hot(cat, 3)], dim=1))))
    torch.testing.assert_close(out_index, h)
    with pytest.raises(ValueError, match="categorical covariate"):
        layers(x, None)


def test_fclayers_state_dict_keys_keep_0_5_indices():
    keys = list(FCLayers(3, 2, use_batch_norm=False, dropout_rate=0).state_dict())
    assert keys == ["fc_layers.Layer 0.0.weight", "fc_layers.Layer 0.0.bias"]
    keys = list(FCLayers(3, 2).state_dict())
    assert "fc_layers.Layer 0.1.running_mean" in keys


def test_fclayers_3d_input_matches_slices_in_eval():
    layers = FCLayers(4, 6, n_cat_list=[2]).eval()
    x = torch.randn(3, 5, 4)
    cat = torch.randint(0, 2, (5, 1))
    out = layers(x, cat)
    for s in range(3):
        torch.testing.assert_close(out[s], layers(x[s], cat))


def test_encoder_variance_floor_and_decoders():
    enc = Encoder(5, 2).eval()
    q_m, q_v, z = enc(torch.randn(7, 5))
    assert torch.all(q_v > 1e-4) and z.shape == (7, 2)
    dec = DecoderSCVI(2, 5, n_cat_list=[3]).eval()
    library = torch.full((7, 1), 2.0)
    scale, r, rate, dropout = dec("gene-cell", z, library, torch.randint(0, 3, (7, 1)))
    torch.testing.assert_close(scale.sum(-1), torch.ones(7))
    torch.testing.assert_close(rate, math.exp(2.0) * scale)
    assert r.shape == (7, 5)
    assert dec("gene", z, library, torch.zeros(7, 1))[1] is None
    lin = LinearDecoderSCVI(2, 5, n_cat_list=[3]).eval()
    assert lin.batch_regressor.weight.shape == (5, 2)
    last = torch.full((7, 1), 2)
    # the last batch is the reference: no offset
    scale_last = lin("gene", z, library, last)[0]
    torch.testing.assert_close(scale_last, torch.softmax(lin.factor_regressor(z), -1))
    m, v = Decoder(2, 4).eval()(z)
    assert m.shape == v.shape == (7, 4) and torch.all(v > 0)


@pytest.mark.parametrize(
    "dispersion", ["gene", "gene-batch", "gene-label", "gene-cell"]
)
@pytest.mark.parametrize("reconstruction_loss", ["zinb", "nb"])
@torch.no_grad()
def test_vae_forward_terms_match_closed_forms(dispersion, reconstruction_loss):
    torch.manual_seed(1)
    vae = VAE(
        6,
        n_batch=2,
        n_labels=3,
        n_latent=3,
        dispersion=dispersion,
        reconstruction_loss=reconstruction_loss,
    ).eval()
    x = torch.poisson(torch.rand(9, 6) * 4)
    batch = torch.randint(0, 2, (9, 1))
    y = torch.randint(0, 3, (9, 1))
    l_mean, l_var = torch.full((9, 1), 2.0), torch.full((9, 1), 0.5)
    torch.manual_seed(5)
    rec_kl_l, kl_z, kl_global = vae(x, l_mean, l_var, batch, y)
    torch.manual_seed(5)
    out = vae.inference(x, batch, y)
    qz_m, qz_v, ql_m, ql_v = out["qz_m"], out["qz_v"], out["ql_m"], out["ql_v"]
    kl_z_ref = 0.5 * (qz_v + qz_m**2 - 1 - torch.log(qz_v)).sum(1)
    torch.testing.assert_close(kl_z, kl_z_ref, rtol=1e-5, atol=1e-5)
    kl_l_ref = (
        0.5
        * (ql_v / l_var + (ql_m - l_mean) ** 2 / l_var - 1 + torch.log(l_var / ql_v))
    ).sum(1)
    # reconstruction loss from scipy
    mu = out["px_rate"].double().numpy()
    theta = out["px_r"].expand_as(out["px_rate"]).double().numpy()
    log_nb = nbinom.logpmf(x.numpy(), theta, theta / (theta + mu))
    if reconstruction_loss == "zinb":
        pi = torch.sigmoid(out["px_dropout"]).double().numpy()
        log_p = np.where(
            x.numpy() == 0,
            np.log(pi + (1 - pi) * np.exp(log_nb)),
            np.log(1 - pi) + log_nb,
        )
    else:
        log_p = log_nb
    rec_ref = torch.from_numpy(-log_p.sum(1)).float()
    torch.testing.assert_close(rec_kl_l, rec_ref + kl_l_ref, rtol=1e-4, atol=1e-3)
    assert kl_global == 0.0


def test_vae_sampling_methods_and_shapes():
    vae = VAE(6, n_batch=2, n_latent=3).eval()
    x = torch.poisson(torch.rand(4, 6) * 4)
    assert vae.sample_from_posterior_z(x, give_mean=True).shape == (4, 3)
    torch.testing.assert_close(
        vae.sample_from_posterior_z(x, give_mean=True), vae.z_encoder(torch.log1p(x))[0]
    )
    assert vae.sample_from_posterior_l(x).shape == (4, 1)
    assert vae.get_latents(x)[0].shape == (4, 3)
    b = torch.zeros(4, 1)
    assert vae.get_sample_scale(x, b).shape == (4, 6)
    assert vae.get_sample_rate(x, b, n_samples=5).shape == (5, 4, 6)
    torch.testing.assert_close(vae.scale_from_z(x, 1.0).sum(-1), torch.ones(4))


def test_unknown_options_and_invalid_combinations():
    with pytest.raises(ValueError, match="gene-batch"):
        VAE(5, dispersion="per-gene")
    with pytest.raises(ValueError, match="zinb"):
        VAE(5, reconstruction_loss="poisson")
    with pytest.raises(ValueError, match="n_batch"):
        VAE(5, n_batch=0, dispersion="gene-batch")
    with pytest.raises(ValueError, match="gene-cell"):
        LDVAE(5, dispersion="gene-cell")


def test_ldvae_loadings():
    ldvae = LDVAE(7, n_batch=2, n_latent=3)
    weight, bias = list(ldvae.get_loadings())
    assert weight.shape == (7, 3) and bias.shape == (7,)
