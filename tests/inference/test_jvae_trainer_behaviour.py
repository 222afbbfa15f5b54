"""JVAETrainer and JPosterior: argument checks, posterior methods, adversarial switch."""

from typing import List, Tuple

import numpy as np
import pytest
import torch
from scipy import special, stats

from scvi.dataset import GeneExpressionDataset
from scvi.inference.jvae_trainer import JPosterior, JVAETrainer
from scvi.models.classifier import Classifier
from scvi.models.jvae import JVAE

N_GENES = 8
FISH_GENES = np.array([5, 1, 6])


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


def _dataset(x: np.ndarray, names, batch: int = 0) -> GeneExpressionDataset:
    ds = GeneExpressionDataset()
    ds.populate_from_data(x, batch_indices=np.full(len(x), batch), gene_names=names)
    return ds


@pytest.fixture(scope="module")
def datasets() -> Tuple[GeneExpressionDataset, GeneExpressionDataset]:
    rng = np.random.RandomState(0)
    names = np.array([f"gene{i}" for i in range(N_GENES)])
    seq = rng.poisson(rng.gamma(1.0, 4.0, size=(40, N_GENES))).astype(np.float32) + 1
    fish = rng.poisson(rng.gamma(1.0, 4.0, size=(25, N_GENES))).astype(np.float32) + 1
    return _dataset(seq, names), _dataset(fish[:, FISH_GENES], names[FISH_GENES])


def _model(**kwargs) -> JVAE:
    options = dict(n_batch=1, n_latent=2, dim_hidden_encoder=8)
    options.update(kwargs)
    return JVAE(
        [N_GENES, len(FISH_GENES)],
        N_GENES,
        [slice(None), FISH_GENES],
        ["zinb", "nb"],
        [True, False],
        **options,
    )


def _discriminator(n_out: int = 2) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(2, 6), torch.nn.ReLU(), torch.nn.Linear(6, n_out)
    )


def _trainer(datasets, model=None, discriminator=None, **kwargs) -> JVAETrainer:
    options = dict(
        use_cuda=False, show_progbar=False, data_loader_kwargs={"batch_size": 16}
    )
    options.update(kwargs)
    return JVAETrainer(
        model or _model(), discriminator or _discriminator(), list(datasets), **options
    )


@pytest.fixture(scope="module")
def trained(datasets) -> JVAETrainer:
    torch.manual_seed(0)
    trainer = _trainer(datasets, frequency=1, n_epochs_kl_warmup=2)
    trainer.train(n_epochs=3, lr_d=1e-2, lr_g=1e-2)
    return trainer


def test_history_and_schedule(trained: JVAETrainer) -> None:
    assert sorted(trained.history) == [
        "elbo_test_0",
        "elbo_test_1",
        "elbo_train_0",
        "elbo_train_1",
    ]
    assert all(len(v) == 4 for v in trained.history.values())
    assert trained.kl_weight == 1.0  # epoch 2 / warm-up 2
    trained.epoch = 1
    trained.on_epoch_begin()
    assert trained.kl_weight == 0.5
    trained.n_epochs_kl_warmup = None
    trained.on_epoch_begin()
    assert trained.kl_weight == 1.0
    trained.n_epochs_kl_warmup = 2


def test_posterior_methods(trained: JVAETrainer) -> None:
    seq_post, fish_post = trained.all_dataset
    latent, batches, labels = fish_post.get_latent()
    assert (
        latent.shape == (25, 2) and batches.shape == (25, 1) and labels.shape == (25,)
    )
    np.testing.assert_allclose(trained.get_latent()[1], latent, rtol=1e-6)
    imputed = fish_post.get_imputed_values()
    assert imputed.shape == (25, N_GENES)
    # frequencies are normalised over the genes the dataset measures
    np.testing.assert_allclose(imputed[:, FISH_GENES].sum(1), 1.0, rtol=1e-5)
    rate = fish_post.get_imputed_values(normalized=False)
    library = fish_post.gene_dataset.X.sum(1)
    np.testing.assert_allclose(rate[:, FISH_GENES].sum(1), library, rtol=1e-4)
    assert fish_post.imputation(n_samples=2).shape == (25, N_GENES)
    assert fish_post.get_sample_scale().shape == (25, N_GENES)
    assert np.isfinite([seq_post.elbo(), fish_post.reconstruction_error()]).all()
    confusion = trained.get_discriminator_confusion()
    assert confusion.shape == (2, 2)
    np.testing.assert_allclose(confusion.sum(1), 1.0, rtol=1e-5)
    reconstruction, kl_div, disc = trained.get_loss_magnitude(one_sample=True)
    assert reconstruction.shape == kl_div.shape == disc.shape == (2,)


def _reference_marginal_ll(posterior: JPosterior, n_mc: int, seed: int) -> float:
    """Straightforward importance sampling with scipy likelihoods (one minibatch)."""
    model, mode = posterior.model, posterior.mode
    torch.manual_seed(seed)  # (creating the loader's iterator draws a seed too)
    x, l_mean, l_var, batch, labels = next(iter(posterior))[:5]
    with torch.no_grad():
        qz_m, qz_v, _, ql_m, ql_v, library = model.encode(x, mode)
        z = torch.distributions.Normal(qz_m, qz_v.sqrt()).sample((n_mc,))
        libraries = (
            library.expand(n_mc, -1, -1)
            if ql_m is None
            else torch.distributions.Normal(ql_m, ql_v.sqrt()).sample((n_mc,))
        )
        log_w = np.zeros((n_mc, len(x)))
        observed = model.indices_mappings[mode]
        for s in range(n_mc):
            _, px_r, px_rate, px_dropout = model.decode(
                z[s], mode, libraries[s], batch, labels
            )
            mu = px_rate[:, observed].double().numpy()
            theta = px_r.expand_as(px_rate)[:, observed].double().numpy()
            xn = x.double().numpy()
            nb = stats.nbinom.logpmf(xn, theta, theta / (theta + mu))
            if model.reconstruction_losses[mode] == "zinb":
                pi = special.expit(px_dropout[:, observed].double().numpy())
                nb = np.log((1 - pi) * np.exp(nb) + pi * (xn == 0))
            zs, zm, zv = (t.double().numpy() for t in (z[s], qz_m, qz_v))
            log_w[s] = (
                nb.sum(1)
                + stats.norm.logpdf(zs).sum(1)
                - stats.norm.logpdf(zs, zm, np.sqrt(zv)).sum(1)
            )
            if ql_m is not None:
                ls = libraries[s].double().numpy()
                log_w[s] += stats.norm.logpdf(
                    ls, l_mean.double().numpy(), np.sqrt(l_var.double().numpy())
                ).sum(1)
                log_w[s] -= stats.norm.logpdf(
                    ls, ql_m.double().numpy(), np.sqrt(ql_v.double().numpy())
                ).sum(1)
    return float(-(special.logsumexp(log_w, axis=0) - np.log(n_mc)).mean())


@pytest.mark.parametrize("mode", [0, 1])
def test_marginal_ll_against_reference(trained: JVAETrainer, mode: int) -> None:
    posterior = trained.all_dataset[mode].sequential(batch_size=100)
    trained.model.eval()
    expected = _reference_marginal_ll(posterior, n_mc=7, seed=3)
    torch.manual_seed(3)
    assert posterior.marginal_ll(n_mc_samples=7) == pytest.approx(expected, rel=1e-4)
    # importance sampling tightens the bound: -log p(x) <= negative ELBO (in expectation)
    torch.manual_seed(0)
    assert posterior.marginal_ll(n_mc_samples=50) < posterior.elbo() + 0.5


def test_kappa_zero_leaves_discriminator_untouched(datasets) -> None:
    torch.manual_seed(0)
    discriminator = _discriminator()
    before = [p.detach().clone() for p in discriminator.parameters()]
    trainer = _trainer(datasets, discriminator=discriminator, kappa=0.0)
    trainer.train(n_epochs=1)
    for p, q in zip(discriminator.parameters(), before):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    torch.manual_seed(0)
    discriminator = _discriminator()
    trainer = _trainer(datasets, discriminator=discriminator, kappa=1.0)
    trainer.train(n_epochs=1)
    assert any((p != q).any() for p, q in zip(discriminator.parameters(), before))


def test_single_dataset(datasets) -> None:
    seq = datasets[0]
    model = JVAE([N_GENES], N_GENES, [slice(None)], ["poisson"], [True], n_batch=1)
    trainer = _trainer([seq], model=model, discriminator=_discriminator(1), frequency=1)
    trainer.train(n_epochs=1)
    assert sorted(trainer.history) == ["elbo_test_0", "elbo_train_0"]
    assert trainer.get_imputed_values()[0].shape == (seq.nb_cells, N_GENES)


def _names(ds: GeneExpressionDataset) -> List[str]:
    return list(ds.gene_names)


def test_dataset_errors(datasets) -> None:
    seq, fish = datasets
    with pytest.raises(ValueError, match="non-empty"):
        JVAETrainer(_model(), _discriminator(), [], use_cuda=False)
    with pytest.raises(ValueError, match="2 dataset heads"):
        _trainer([seq])
    with pytest.raises(ValueError, match="expects dim_input_list"):
        _trainer([fish, seq])
    with pytest.raises(TypeError, match="JVAE"):
        JVAETrainer(torch.nn.Linear(2, 2), _discriminator(), [seq], use_cuda=False)
    with pytest.raises(ValueError, match="kappa"):
        _trainer(datasets, kappa=-1.0)
    # the spatial genes mapped to the wrong scRNA positions
    swapped = _model()
    swapped.indices_mappings = [slice(None), FISH_GENES[::-1].copy()]
    with pytest.raises(
        ValueError, match="Mismatched gene mappings.*'GENE5' is gene 5 of dataset 0"
    ):
        _trainer(datasets, model=swapped)
    # a spatial gene the scRNA-seq dataset does not measure
    x = fish.X.copy()
    foreign = _dataset(x, ["gene5", "NOT_IN_SEQ", "gene6"])
    with pytest.raises(ValueError, match="'NOT_IN_SEQ' is absent from dataset 0"):
        _trainer([seq, foreign])


def test_discriminator_output_checked(datasets) -> None:
    trainer = _trainer(datasets, discriminator=_discriminator(3))
    with pytest.raises(ValueError, match=r"\(cells, 2\) logits"):
        trainer.train(n_epochs=1)


def test_loss_discriminator_targets(trained: JVAETrainer) -> None:
    """Cross-entropy against the true dataset, or uniform over the other datasets."""
    z = [torch.randn(5, 2), torch.randn(4, 2)]
    with torch.no_grad():
        true_losses = trained.loss_discriminator(z, True, return_details=True)
        fool_losses = trained.loss_discriminator(z, False, return_details=True)
        total = trained.loss_discriminator(z, True)
        for mode, latent in enumerate(z):
            log_probs = torch.log_softmax(trained.discriminator(latent), dim=1).numpy()
            assert true_losses[mode].item() == pytest.approx(
                -log_probs[:, mode].mean(), rel=1e-5
            )
            other = 1 - mode
            assert fool_losses[mode].item() == pytest.approx(
                -log_probs[:, other].mean(), rel=1e-5
            )
    assert total.item() == pytest.approx(sum(t.item() for t in true_losses), rel=1e-6)


def test_with_scvi_classifier_and_odd_minibatches() -> None:
    """Two copies of one dataset whose size leaves a 1-cell last minibatch (skipped)."""
    torch.manual_seed(0)
    x = np.random.RandomState(1).randint(1, 100, (34, 10))
    dataset = GeneExpressionDataset()
    dataset.populate_from_data(x)
    model = JVAE(
        [10, 10], 10, [slice(None)] * 2, ["zinb", "zinb"], [True, True], n_batch=1
    )
    trainer = JVAETrainer(
        model,
        Classifier(10, n_labels=2, logits=True),
        [dataset, dataset],
        train_size=0.5,
        use_cuda=False,
        show_progbar=False,
        data_loader_kwargs={"batch_size": 8},
    )
    trainer.train(n_epochs=1)
    confusion = trainer.get_discriminator_confusion()
    np.testing.assert_allclose(confusion.sum(1), 1.0, rtol=1e-5)
