"""Behaviour of SCANVI, VAEC and Classifier: label marginalisation, options, clear errors."""

import sys
from typing import Iterator

import numpy as np
import pytest
import torch

import scvi.models.modules
from scvi.models.classifier import Classifier
from scvi.models.scanvi import SCANVI
from scvi.models.utils import one_hot
from scvi.models.vaec import VAEC

N_GENES, N_CELLS = 15, 10


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def mean_samples(monkeypatch) -> Iterator[None]:
    """Latent samples replaced by their means, so that losses are deterministic."""
    # Patch the module that defines Encoder: it looks the sampler up in its own globals.
    encoder_module = sys.modules[scvi.models.modules.Encoder.__module__]
    monkeypatch.setattr(encoder_module, "reparameterize_gaussian", lambda mu, var: mu)
    yield


def _batch(n_labels: int, n_batch: int = 2, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.poisson(4 * torch.rand(N_CELLS, N_GENES, generator=gen))
    l_mean = 2 + torch.rand(N_CELLS, 1, generator=gen)
    l_var = 0.5 + torch.rand(N_CELLS, 1, generator=gen)
    batch = torch.randint(0, n_batch, (N_CELLS, 1), generator=gen)
    y = torch.randint(0, n_labels, (N_CELLS, 1), generator=gen)
    return x, l_mean, l_var, batch, y


def _kl_categorical(p: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    return (p * (p.log() - prior.log())).sum(dim=-1)


MODELS = [
    (
        "scanvi",
        lambda prior: SCANVI(N_GENES, 2, 4, n_hidden=16, n_latent=3, y_prior=prior),
    ),
    (
        "scanvi_groups",
        lambda prior: SCANVI(
            N_GENES,
            2,
            4,
            n_hidden=16,
            n_latent=3,
            y_prior=prior,
            labels_groups=[1, 0, 1, 0],
            use_labels_groups=True,
        ),
    ),
    ("vaec", lambda prior: VAEC(N_GENES, 2, 4, n_hidden=16, n_latent=3, y_prior=prior)),
]


@pytest.mark.parametrize("name,build", MODELS, ids=[m[0] for m in MODELS])
def test_unlabelled_loss_is_the_expectation_of_labelled_losses(
    name, build, mean_samples
):
    """Unlabelled terms = sum_k q(k|x) * labelled terms with y=k, plus KL(q(y|x) || p(y))."""
    prior = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    torch.manual_seed(0)
    model = build(prior).eval()
    x, l_mean, l_var, batch, _ = _batch(4)
    with torch.no_grad():
        reconst, kl_local, kl_global = model(x, l_mean, l_var, batch)
        # With z1 fixed to its mean, the classifier inside forward sees what classify sees
        # (for SCANVI with label groups, forward uses the flat classifier).
        if isinstance(model, SCANVI):
            probs = model.classifier(model.z_encoder(torch.log1p(x))[0])
        else:
            probs = model.classify(x)
        per_label = [
            model(x, l_mean, l_var, batch, torch.full((N_CELLS, 1), k))
            for k in range(4)
        ]
    expected_reconst = sum(probs[:, k] * per_label[k][0] for k in range(4))
    expected_kl = sum(probs[:, k] * per_label[k][1] for k in range(4))
    expected_kl = expected_kl + _kl_categorical(probs, prior)
    torch.testing.assert_close(reconst, expected_reconst, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(kl_local, expected_kl, rtol=1e-5, atol=1e-4)
    assert kl_global == 0.0


def test_scanvi_labelled_loss_terms_by_hand(mean_samples):
    """Labelled SCANVI terms rebuilt from the model's own sub-networks."""
    torch.manual_seed(1)
    model = SCANVI(
        N_GENES, 0, 3, n_hidden=16, n_latent=3, reconstruction_loss="nb"
    ).eval()
    x, l_mean, l_var, _, y = _batch(3, n_batch=1)
    normal = torch.distributions.Normal
    with torch.no_grad():
        reconst, kl_local, _ = model(x, l_mean, l_var, None, y)
        qz_m, qz_v, _ = model.z_encoder(torch.log1p(x))
        ql_m, ql_v, _ = model.l_encoder(torch.log1p(x))
        ys = one_hot(y, 3)
        qz2_m, qz2_v, _ = model.encoder_z2_z1(qz_m, ys)
        pz1_m, pz1_v = model.decoder_z1_z2(qz2_m, ys)
        rate = torch.exp(ql_m) * model.decoder("gene", qz_m, ql_m, None)[0]
        theta = torch.exp(model.px_r)
        nb = torch.distributions.NegativeBinomial(
            total_count=theta, logits=rate.log() - theta.log()
        )
        log_px = nb.log_prob(x).sum(-1)
        log_q = normal(qz_m, qz_v.sqrt()).log_prob(qz_m).sum(-1)
        log_p = normal(pz1_m, pz1_v.sqrt()).log_prob(qz_m).sum(-1)
        kl_z2 = torch.distributions.kl_divergence(
            normal(qz2_m, qz2_v.sqrt()), normal(0.0, 1.0)
        ).sum(-1)
        kl_l = torch.distributions.kl_divergence(
            normal(ql_m, ql_v.sqrt()), normal(l_mean, l_var.sqrt())
        ).sum(-1)
    torch.testing.assert_close(reconst, -log_px + log_q - log_p, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(kl_local, kl_z2 + kl_l, rtol=1e-5, atol=1e-4)


def test_hierarchical_classification_combines_groups_and_labels():
    torch.manual_seed(2)
    groups = [1, 0, 1, 1, 0]
    model = SCANVI(
        N_GENES,
        0,
        5,
        n_hidden=16,
        n_latent=3,
        labels_groups=groups,
        use_labels_groups=True,
    )
    model.eval()
    x = _batch(5)[0]
    with torch.no_grad():
        probs = model.classify(x)
        z = model.z_encoder(torch.log1p(x))[0]
        flat, group_probs = model.classifier(z), model.classifier_groups(z)
    torch.testing.assert_close(probs.sum(-1), torch.ones(N_CELLS))
    for g in (0, 1):
        members = [k for k, grp in enumerate(groups) if grp == g]
        torch.testing.assert_close(
            probs[:, members].sum(-1), group_probs[:, g], rtol=1e-5, atol=1e-6
        )
        within = flat[:, members] / flat[:, members].sum(-1, keepdim=True)
        torch.testing.assert_close(
            probs[:, members] / group_probs[:, [g]], within, rtol=1e-4, atol=1e-6
        )
    assert [m.dtype for m in model.groups_index] == [torch.uint8, torch.uint8]


def test_classifier_parameters_override_and_latents():
    model = SCANVI(
        N_GENES,
        0,
        3,
        n_hidden=16,
        n_latent=4,
        classifier_parameters=dict(n_hidden=7, n_layers=2, dropout_rate=0.3),
    )
    layers = model.classifier.classifier[0].fc_layers
    assert len(layers) == 2 and layers[0][0].out_features == 7
    assert model.classifier.classifier[1].out_features == 3
    x, _, _, _, y = _batch(3)
    model.eval()
    z1, z2 = model.get_latents(x, y)
    z1_again, z2_again = model.get_latents(x, y)
    assert z1.shape == z2.shape == (N_CELLS, 4)
    torch.testing.assert_close(z2, model.encoder_z2_z1(z1, y)[0])  # mean in eval mode
    assert not torch.equal(z1, z1_again)  # z1 stays a sample


def test_classifier_logits_option():
    torch.manual_seed(3)
    probs_model = Classifier(6, n_hidden=8, n_labels=4)
    logits_model = Classifier(6, n_hidden=8, n_labels=4, logits=True)
    logits_model.load_state_dict(probs_model.state_dict())
    x = torch.randn(N_CELLS, 6)
    probs_model.eval()
    logits_model.eval()
    torch.testing.assert_close(torch.softmax(logits_model(x), -1), probs_model(x))
    assert not torch.allclose(logits_model(x).sum(-1), torch.ones(N_CELLS))


def test_vaec_gene_label_dispersion_uses_each_cells_label(mean_samples):
    torch.manual_seed(4)
    model = VAEC(N_GENES, 0, 3, n_hidden=16, n_latent=3, dispersion="gene-label").eval()
    x, _, _, _, y = _batch(3, n_batch=1)
    with torch.no_grad():
        from_ints = model.inference(x, None, y)["px_r"]
        from_one_hot = model.inference(x, None, one_hot(y, 3))["px_r"]
    expected = torch.exp(model.px_r[:, y.view(-1)].t())
    torch.testing.assert_close(from_ints, expected)
    torch.testing.assert_close(from_one_hot, expected)


def test_single_label_models_work():
    x, l_mean, l_var, batch, y = _batch(1)
    for model in (SCANVI(N_GENES, 2, 1, n_hidden=8), VAEC(N_GENES, 2, 1, n_hidden=8)):
        torch.testing.assert_close(model.eval().classify(x), torch.ones(N_CELLS, 1))
        labelled = model(x, l_mean, l_var, batch, y)
        unlabelled = model(x, l_mean, l_var, batch)
        assert all(torch.isfinite(t).all() for t in labelled[:2] + unlabelled[:2])


def test_gradients_reach_the_classifier_from_unlabelled_cells():
    model = SCANVI(N_GENES, 2, 3, n_hidden=8)
    x, l_mean, l_var, batch, _ = _batch(3)
    reconst, kl_local, _ = model(x, l_mean, l_var, batch)
    (reconst + kl_local).mean().backward()
    grads = [p.grad for p in model.classifier.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    assert model.y_prior.grad is None and not model.y_prior.requires_grad


@pytest.mark.parametrize("cls", [SCANVI, VAEC])
def test_invalid_arguments_raise_clear_errors(cls):
    with pytest.raises(ValueError, match="n_labels >= 1"):
        cls(N_GENES, 0, 0)
    with pytest.raises(ValueError, match="y_prior has 2 entries"):
        cls(N_GENES, 0, 3, y_prior=torch.tensor([[0.5, 0.5]]))
    with pytest.raises(ValueError, match="non-negative"):
        cls(N_GENES, 0, 2, y_prior=[1.5, -0.5])
    model = cls(N_GENES, 2, 3, n_hidden=8)
    x, l_mean, l_var, batch, _ = _batch(3)
    with pytest.raises(ValueError, match=r"integers in \[0, 2\]"):
        model(x, l_mean, l_var, batch, torch.full((N_CELLS, 1), 3))
    with pytest.raises(ValueError, match="dispersion"):
        cls(N_GENES, 0, 3, dispersion="per-cell")


def test_y_prior_accepts_lists_and_arrays():
    for prior in ([0.2, 0.8], np.array([0.2, 0.8]), torch.tensor([[0.2, 0.8]])):
        model = SCANVI(N_GENES, 0, 2, n_hidden=8, y_prior=prior)
        torch.testing.assert_close(model.y_prior.data, torch.tensor([[0.2, 0.8]]))
    torch.testing.assert_close(
        SCANVI(N_GENES, 0, 4).y_prior.data, torch.full((1, 4), 0.25)
    )


def test_label_group_errors():
    with pytest.raises(ValueError, match="needs labels_groups"):
        SCANVI(N_GENES, 0, 3, use_labels_groups=True)
    with pytest.raises(ValueError, match="one integer group per label"):
        SCANVI(N_GENES, 0, 3, labels_groups=[0, 1], use_labels_groups=True)
    with pytest.raises(ValueError, match="without gaps"):
        SCANVI(N_GENES, 0, 3, labels_groups=[0, 2, 2], use_labels_groups=True)
    # Groups are kept (for hierarchical_accuracy) even when not used for classification.
    assert SCANVI(N_GENES, 0, 3, labels_groups=[0, 1, 1]).labels_groups.tolist() == [
        0,
        1,
        1,
    ]


def test_scanvi_gene_label_dispersion_needs_labels():
    model = SCANVI(N_GENES, 0, 3, n_hidden=8, dispersion="gene-label")
    x, l_mean, l_var, _, y = _batch(3, n_batch=1)
    reconst, _, _ = model(x, l_mean, l_var, None, y)
    assert torch.isfinite(reconst).all()
    with pytest.raises(ValueError, match="gene-label"):
        model(x, l_mean, l_var, None, None)
