"""The generic trainer: data splits, metric history, early stopping, best state, NaN handling."""

import math

import numpy as np
import pytest
import torch
from sklearn.model_selection import train_test_split

from scvi.dataset import GeneExpressionDataset, SyntheticDataset
from scvi.inference import Posterior, UnsupervisedTrainer
from scvi.inference.trainer import EarlyStopping, _split_sizes
from scvi.models import VAE


def small_dataset(
    n_cells: int = 200, n_genes: int = 30, n_batches: int = 2
) -> GeneExpressionDataset:
    rng = np.random.default_rng(0)
    rates = rng.gamma(2.0, 2.0, size=(3, n_genes))
    labels = rng.integers(0, 3, size=n_cells)
    X = rng.poisson(rates[labels]).astype(np.float32)
    X[:, 0] += 1  # no empty cells
    dataset = GeneExpressionDataset()
    dataset.populate_from_data(
        X, batch_indices=rng.integers(0, n_batches, size=n_cells), labels=labels
    )
    return dataset


@pytest.mark.parametrize(
    "n, train_size, test_size",
    [
        (100, 0.8, None),
        (101, 0.75, None),
        (100, 0.5, 0.3),
        (100, 60, 20),
        (97, 0.33, 0.33),
        (50, None, 0.2),
    ],
)
def test_split_sizes_follow_scikit_learn(n, train_size, test_size):
    train, test = train_test_split(
        np.arange(n), train_size=train_size, test_size=test_size
    )
    assert _split_sizes(n, train_size, test_size) == (len(train), len(test))


def test_split_train_size_one_and_bad_sizes():
    assert _split_sizes(10, 1.0, None) == (10, 0)
    with pytest.raises(ValueError, match="not understood"):
        _split_sizes(10, 1.5, None)
    with pytest.raises(ValueError, match="not understood"):
        _split_sizes(10, 0.8, 0.5)


def test_splits_are_disjoint_seeded_and_cover_dataset():
    dataset = small_dataset()
    vae = VAE(dataset.nb_genes, dataset.n_batches)
    trainer = UnsupervisedTrainer(
        vae, dataset, train_size=0.5, test_size=0.3, seed=3, use_cuda=False
    )
    parts = [
        trainer.train_set.indices,
        trainer.test_set.indices,
        trainer.validation_set.indices,
    ]
    assert [len(p) for p in parts] == [100, 60, 40]
    assert len(np.unique(np.concatenate(parts))) == dataset.nb_cells
    # same permutation as numpy's RandomState(seed): test cells first, then training cells
    permutation = np.random.RandomState(3).permutation(dataset.nb_cells)
    np.testing.assert_array_equal(
        np.sort(trainer.test_set.indices), np.sort(permutation[:60])
    )
    np.testing.assert_array_equal(
        np.sort(trainer.train_set.indices), np.sort(permutation[60:160])
    )


def test_training_decreases_elbo_and_records_history():
    dataset = small_dataset()
    vae = VAE(dataset.nb_genes, dataset.n_batches, n_hidden=32, n_latent=4)
    trainer = UnsupervisedTrainer(
        vae,
        dataset,
        train_size=0.7,
        frequency=2,
        use_cuda=False,
        show_progbar=False,
        n_epochs_kl_warmup=None,
    )
    trainer.train(n_epochs=10, lr=1e-2)
    history = trainer.history
    assert set(history) == {"elbo_train_set", "elbo_test_set"}
    # epochs 0, 2, 4, 6, 8, 10
    assert len(history["elbo_train_set"]) == 6
    assert history["elbo_train_set"][-1] < history["elbo_train_set"][0]
    assert not vae.training
    assert math.isclose(
        trainer.test_set.elbo(), history["elbo_test_set"][-1], rel_tol=0.05
    )


def test_kl_warmup_weight():
    dataset = small_dataset(n_cells=40)
    trainer = UnsupervisedTrainer(
        VAE(dataset.nb_genes),
        dataset,
        n_epochs_kl_warmup=4,
        use_cuda=False,
        show_progbar=False,
    )
    weights = []
    original = trainer.on_epoch_begin

    def record():
        original()
        weights.append(trainer.kl_weight)

    trainer.on_epoch_begin = record
    trainer.train(n_epochs=6)
    assert weights == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]


def test_early_stopping_counts_patience():
    stopping = EarlyStopping(early_stopping_metric="elbo", patience=3, threshold=1.0)
    assert stopping.mode == "min"
    results = [stopping.update(v)[0] for v in [100.0, 90.0, 89.5, 89.4, 89.3, 89.2]]
    # improvements below the threshold from the 3rd value: wait 1, 2, 3 -> stop at next update
    assert results == [True, True, True, True, True, False]


def test_early_stopping_reduces_lr_and_rejects_unknown_metric():
    stopping = EarlyStopping(
        early_stopping_metric="elbo",
        patience=100,
        threshold=1,
        reduce_lr_on_plateau=True,
        lr_patience=2,
    )
    reductions = [stopping.update(10.0)[1] for _ in range(6)]
    # the first value improves on +inf; then every epoch waits, and the LR drops every 2 waits
    assert reductions == [False, False, False, True, False, True]
    with pytest.raises(ValueError, match="elbo"):
        EarlyStopping(early_stopping_metric="not_a_metric")


def test_early_stopping_stops_training_and_restores_best_state():
    dataset = small_dataset()
    vae = VAE(dataset.nb_genes, dataset.n_batches, n_hidden=16)
    trainer = UnsupervisedTrainer(
        vae,
        dataset,
        frequency=1,
        use_cuda=False,
        show_progbar=False,
        early_stopping_kwargs=dict(
            early_stopping_metric="elbo",
            save_best_state_metric="elbo",
            patience=2,
            threshold=1e9,
        ),
    )
    trainer.train(n_epochs=50, lr=1e-2)
    # never improves by 1e9 nats: stops after patience + 1 epochs
    assert trainer.epoch == 3
    best = 1 + int(np.argmin(trainer.history["elbo_test_set"][1:-1]))
    assert trainer.best_epoch == best - 1
    # the restored weights are a copy of the best ones, not an alias of the live parameters
    for key, value in vae.state_dict().items():
        torch.testing.assert_close(value, trainer.best_state_dict[key])
        assert value.data_ptr() != trainer.best_state_dict[key].data_ptr()


def test_early_stopping_without_frequency_is_a_clear_error():
    dataset = small_dataset(n_cells=60)
    trainer = UnsupervisedTrainer(
        VAE(dataset.nb_genes),
        dataset,
        use_cuda=False,
        show_progbar=False,
        early_stopping_kwargs=dict(early_stopping_metric="elbo"),
    )
    with pytest.raises(ValueError, match="frequency"):
        trainer.train(n_epochs=2)


def test_nan_loss_stops_with_error_and_keeps_good_weights():
    dataset = small_dataset(n_cells=60)
    vae = VAE(dataset.nb_genes)
    trainer = UnsupervisedTrainer(vae, dataset, use_cuda=False, show_progbar=False)
    trainer.train(n_epochs=1)
    good = {k: v.clone() for k, v in vae.state_dict().items()}
    original = trainer.loss
    trainer.loss = lambda tensors: original(tensors) * torch.tensor(float("nan"))
    with pytest.raises(FloatingPointError, match="epoch 0"):
        trainer.train(n_epochs=3)
    for key, value in vae.state_dict().items():
        torch.testing.assert_close(value, good[key])


def test_posterior_iteration_and_sequential_order():
    dataset = small_dataset(n_cells=50)
    posterior = Posterior(
        VAE(dataset.nb_genes),
        dataset,
        indices=np.arange(10, 40),
        use_cuda=False,
        data_loader_kwargs={"batch_size": 7},
    )
    batches = list(posterior.sequential(batch_size=8))
    assert [b[0].shape[0] for b in batches] == [8, 8, 8, 6]
    X = np.concatenate([b[0].numpy() for b in batches])
    np.testing.assert_array_equal(X, np.asarray(dataset.X[10:40]))
    # shuffled iteration visits the same cells
    seen = np.concatenate([b[0].numpy() for b in posterior])
    assert sorted(map(tuple, seen)) == sorted(map(tuple, X))
    with pytest.raises(ValueError, match="mutually exclusive"):
        Posterior(VAE(dataset.nb_genes), dataset, indices=[1], shuffle=True)
    mask = np.zeros(dataset.nb_cells, dtype=bool)
    mask[[3, 5]] = True
    assert list(Posterior(VAE(dataset.nb_genes), dataset, indices=mask).indices) == [
        3,
        5,
    ]


def test_posterior_outputs_have_expected_shapes_and_values():
    dataset = small_dataset(n_cells=60)
    vae = VAE(dataset.nb_genes, dataset.n_batches, n_latent=3)
    trainer = UnsupervisedTrainer(vae, dataset, use_cuda=False, show_progbar=False)
    trainer.train(n_epochs=2)
    full = trainer.create_posterior(indices=np.arange(dataset.nb_cells)).sequential()
    latent, batches, labels = full.get_latent()
    assert (
        latent.shape == (60, 3) and batches.shape == (60, 1) and labels.shape == (60,)
    )
    np.testing.assert_array_equal(labels, dataset.labels.ravel())
    scale = full.get_sample_scale()
    np.testing.assert_allclose(scale.sum(axis=1), 1.0, rtol=1e-5)
    assert full.imputation().shape == (60, dataset.nb_genes)
    assert full.imputation(n_samples=3).shape == (60, dataset.nb_genes)
    x_new, x_old = full.generate(n_samples=4, batch_size=16)
    assert x_new.shape == (60, dataset.nb_genes, 4)
    np.testing.assert_array_equal(x_old, np.asarray(dataset.X))
    assert np.all(x_new >= 0) and np.all(x_new == np.round(x_new))
    assert full.generate(n_samples=1)[0].shape == (60, dataset.nb_genes, 1)
    dropout, mean, dispersion = full.generate_parameters()
    assert dropout.shape == mean.shape == dispersion.shape == (60, dataset.nb_genes)
    assert full.get_stats().shape == (60,)
    assert full.get_harmonized_scale(1).shape == (60, dataset.nb_genes)
    # marginal log-likelihood (negative) is at least the negative ELBO up to MC noise
    assert full.marginal_ll(n_mc_samples=50) <= full.elbo() + 1.0
    X, y = full.raw_data()
    assert X.shape[0] == 60 and y.shape == (60,)


def test_synthetic_dataset_trains_0_5_style():
    dataset = SyntheticDataset()
    vae = VAE(dataset.nb_genes, n_batch=dataset.n_batches)
    trainer = UnsupervisedTrainer(
        vae, dataset, train_size=0.5, use_cuda=False, show_progbar=False
    )
    trainer.train(n_epochs=1)
    assert np.isfinite(trainer.test_set.elbo())
    assert np.isfinite(trainer.test_set.reconstruction_error())
