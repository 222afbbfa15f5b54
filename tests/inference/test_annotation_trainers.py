"""Semi-supervised and classifier trainers, annotation posteriors and accuracy functions."""

import logging
from typing import Iterator

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, recall_score

from scvi.dataset import GeneExpressionDataset
from scvi.inference.annotation import (
    Accuracy,
    AlternateSemiSupervisedTrainer,
    AnnotationPosterior,
    ClassifierTrainer,
    JointSemiSupervisedTrainer,
    SemiSupervisedTrainer,
    compute_accuracy,
    compute_accuracy_nn,
    compute_accuracy_rf,
    compute_accuracy_svc,
    compute_accuracy_tuple,
    compute_predictions,
)
from scvi.inference.inference import UnsupervisedTrainer
from scvi.models.classifier import Classifier
from scvi.models.scanvi import SCANVI
from scvi.models.vae import VAE
from scvi.models.vaec import VAEC

FAST = dict(use_cuda=False, show_progbar=False)


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_dataset(sizes=(80, 60, 40), n_genes=20, seed=0) -> GeneExpressionDataset:
    """Cell types with distinct expression programs (each type over-expresses 5 genes)."""
    rng = np.random.RandomState(seed)
    labels = np.concatenate([np.full(n, k) for k, n in enumerate(sizes)])
    rates = np.full((len(labels), n_genes), 2.0)
    for k in range(len(sizes)):
        rates[labels == k, 5 * k : 5 * k + 5] = 12.0
    dataset = GeneExpressionDataset()
    dataset.populate_from_data(
        rng.poisson(rates).astype(np.float32),
        batch_indices=rng.randint(0, 2, size=len(labels)),
        labels=labels,
        cell_types=[f"type{k}" for k in range(len(sizes))],
    )
    return dataset


@pytest.fixture(scope="module")
def dataset() -> GeneExpressionDataset:
    return make_dataset()


def small_scanvi(dataset, **kwargs) -> SCANVI:
    return SCANVI(
        dataset.nb_genes,
        dataset.n_batches,
        dataset.n_labels,
        n_hidden=32,
        n_latent=4,
        **kwargs,
    )


# -------------------------------------------------------------------------- trainers


def test_joint_training_learns_the_labels(dataset):
    torch.manual_seed(0)
    model = small_scanvi(dataset)
    trainer = JointSemiSupervisedTrainer(
        model, dataset, n_labelled_samples_per_class=5, frequency=4, **FAST
    )
    assert trainer.n_epochs_classifier == 0
    assert trainer.posteriors_loop == ["full_dataset", "labelled_set"]
    assert len(trainer.labelled_set.indices) == 15
    assert isinstance(trainer.unlabelled_set, AnnotationPosterior)
    trainer.train(n_epochs=8, lr=1e-2)
    history = trainer.history
    for key in (
        "accuracy_labelled_set",
        "accuracy_unlabelled_set",
        "elbo_full_dataset",
        "reconstruction_error_unlabelled_set",
    ):
        assert len(history[key]) == 3, key  # epochs 0, 4 and 8
    assert history["accuracy_unlabelled_set"][-1] > 0.9
    assert trainer.unlabelled_set.accuracy() == history["accuracy_unlabelled_set"][-1]
    y, probs = trainer.unlabelled_set.compute_predictions(soft=True)
    assert probs.shape == (len(y), 3)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)
    assert (
        trainer.unlabelled_set.unsupervised_classification_accuracy()
        >= trainer.unlabelled_set.accuracy() - 1e-12
    )
    assert 0.8 < trainer.labelled_set.nn_latentspace(trainer.unlabelled_set) <= 1


def test_early_stopping_on_accuracy_restores_the_best_state(dataset):
    torch.manual_seed(1)
    model = small_scanvi(dataset)
    trainer = JointSemiSupervisedTrainer(
        model,
        dataset,
        n_labelled_samples_per_class=5,
        frequency=1,
        metrics_to_monitor=["accuracy"],
        early_stopping_kwargs=dict(
            early_stopping_metric="accuracy",
            save_best_state_metric="accuracy",
            on="unlabelled_set",
            patience=2,
            posterior_class=AnnotationPosterior,
        ),
        **FAST,
    )
    trainer.train(n_epochs=30, lr=1e-2)
    accuracies = trainer.history["accuracy_unlabelled_set"]
    # The default threshold (3) can never be beaten by an accuracy: stop after patience.
    assert trainer.epoch == 3
    assert (
        len(accuracies) == 1 + 4 + 1
    )  # start, 4 epochs, after restoring the best state
    assert accuracies[-1] == pytest.approx(max(accuracies[1:-1]))
    assert "elbo_full_dataset" not in trainer.history


def test_semi_supervised_and_alternate_train_the_classifier_between_epochs(dataset):
    for cls in (SemiSupervisedTrainer, AlternateSemiSupervisedTrainer):
        torch.manual_seed(2)
        model = small_scanvi(dataset)
        trainer = cls(
            model,
            dataset,
            n_labelled_samples_per_class=4,
            n_epochs_classifier=2,
            **FAST,
        )
        assert trainer.classifier_trainer.train_set is trainer.labelled_set
        assert trainer.classifier_trainer.model is model.classifier
        before = [p.detach().clone() for p in model.classifier.parameters()]
        decoder_before = (
            model.decoder.px_decoder.fc_layers[0][0].weight.detach().clone()
        )
        trainer.train(n_epochs=1)
        assert not model.training
        assert any(
            not torch.equal(b, p) for b, p in zip(before, model.classifier.parameters())
        )
        assert not torch.equal(
            decoder_before, model.decoder.px_decoder.fc_layers[0][0].weight
        )
    assert trainer.posteriors_loop == ["full_dataset"]


def test_vaec_trains_semi_supervised(dataset):
    torch.manual_seed(3)
    model = VAEC(
        dataset.nb_genes, dataset.n_batches, dataset.n_labels, n_hidden=32, n_latent=4
    )
    trainer = JointSemiSupervisedTrainer(
        model, dataset, n_labelled_samples_per_class=5, **FAST
    )
    trainer.train(n_epochs=6, lr=1e-2)
    assert trainer.unlabelled_set.accuracy() > 0.8


def test_labels_are_hidden_from_the_elbo(dataset):
    model = small_scanvi(dataset).eval()
    trainer = JointSemiSupervisedTrainer(
        model, dataset, n_labelled_samples_per_class=5, **FAST
    )
    full, labelled = next(trainer.data_loaders_loop())
    calls = []
    original_forward = model.forward

    def spy(*args, **kwargs):
        calls.append(args[4] if len(args) > 4 else kwargs.get("y"))
        return original_forward(*args, **kwargs)

    model.forward = spy
    trainer.loss(full, labelled)
    assert calls == [None]


def test_reassigning_the_labelled_set(dataset, caplog):
    model = small_scanvi(dataset)
    trainer = SemiSupervisedTrainer(
        model, dataset, n_labelled_samples_per_class=3, **FAST
    )
    no_type2 = np.flatnonzero(np.asarray(dataset.labels).ravel() < 2)[:10]
    with caplog.at_level(logging.WARNING, logger="scvi.inference.annotation"):
        trainer.labelled_set = trainer.create_posterior(indices=no_type2)
    assert "2 (type2)" in caplog.text
    assert trainer.classifier_trainer.train_set is trainer.labelled_set
    assert trainer.labelled_set.sampling_model is model
    trainer.train(n_epochs=1)
    with pytest.raises(ValueError, match="labelled set is empty"):
        trainer.labelled_set = trainer.create_posterior(indices=np.array([], dtype=int))


def test_more_labelled_cells_requested_than_a_class_holds(caplog):
    dataset = make_dataset(sizes=(50, 30, 4))
    with caplog.at_level(logging.WARNING, logger="scvi.inference.annotation"):
        trainer = SemiSupervisedTrainer(
            small_scanvi(dataset), dataset, n_labelled_samples_per_class=10, **FAST
        )
    assert "2 (type2): 4" in caplog.text
    labels = np.asarray(dataset.labels).ravel()
    labelled = np.asarray(trainer.labelled_set.indices)
    np.testing.assert_array_equal(np.bincount(labels[labelled]), [10, 10, 4])
    assert len(trainer.unlabelled_set.indices) == len(labels) - 24


def test_single_cell_type_dataset():
    dataset = make_dataset(sizes=(60,))
    torch.manual_seed(4)
    model = small_scanvi(dataset)
    trainer = JointSemiSupervisedTrainer(
        model, dataset, n_labelled_samples_per_class=5, **FAST
    )
    trainer.train(n_epochs=2)
    assert trainer.unlabelled_set.accuracy() == 1.0
    with pytest.raises(ValueError, match="at least two"):
        compute_accuracy_svc(
            *trainer.labelled_set.raw_data(), *trainer.unlabelled_set.raw_data()
        )


def test_trainer_argument_errors(dataset):
    with pytest.raises(TypeError, match="SCANVI or VAEC"):
        SemiSupervisedTrainer(VAE(dataset.nb_genes), dataset, **FAST)
    with pytest.raises(ValueError, match="n_labels=2"):
        SemiSupervisedTrainer(SCANVI(dataset.nb_genes, 0, 2), dataset, **FAST)
    with pytest.raises(ValueError, match="at least 1"):
        SemiSupervisedTrainer(
            small_scanvi(dataset), dataset, n_labelled_samples_per_class=0, **FAST
        )


def test_hierarchical_accuracy_scores_label_groups(dataset):
    model = small_scanvi(
        dataset, labels_groups=[0, 0, 1], use_labels_groups=True
    ).eval()
    posterior = AnnotationPosterior(model, dataset, use_cuda=False)
    y, y_pred = posterior.compute_predictions()
    groups = np.array([0, 0, 1])
    assert posterior.hierarchical_accuracy() == pytest.approx(
        np.mean(groups[y] == groups[y_pred])
    )
    assert posterior.accuracy() == pytest.approx(np.mean(y == y_pred))
    with pytest.raises(ValueError, match="labels_groups"):
        AnnotationPosterior(
            small_scanvi(dataset), dataset, use_cuda=False
        ).hierarchical_accuracy()


# ------------------------------------------------------------------ classifier trainer


@pytest.fixture(scope="module")
def trained_vae(dataset) -> VAE:
    torch.manual_seed(5)
    vae = VAE(dataset.nb_genes, n_hidden=32, n_latent=4)
    trainer = UnsupervisedTrainer(
        vae, dataset, train_size=1.0, n_epochs_kl_warmup=None, **FAST
    )
    trainer.train(n_epochs=20, lr=1e-2)
    return vae.eval()


@pytest.mark.parametrize("zl", [False, True])
def test_classifier_trainer_on_a_latent_space(dataset, trained_vae, zl):
    torch.manual_seed(5)
    clf = Classifier(4 + int(zl), n_hidden=16, n_labels=dataset.n_labels)
    trainer = ClassifierTrainer(
        clf, dataset, sampling_model=trained_vae, sampling_zl=zl, frequency=5, **FAST
    )
    before = trained_vae.state_dict()["z_encoder.mean_encoder.weight"].clone()
    trainer.train(n_epochs=20, lr=1e-2)
    accuracies = trainer.history["accuracy_train_set"]
    assert len(accuracies) == 5 and len(trainer.history["accuracy_test_set"]) == 5
    if not zl:  # (z, l) is fitted less reliably: the library size is not standardised
        assert trainer.test_set.accuracy() > 0.9
        assert accuracies[-1] > accuracies[0]
    torch.testing.assert_close(
        trained_vae.state_dict()["z_encoder.mean_encoder.weight"], before
    )
    assert trainer.validation_set.nb_cells == 0
    y, y_pred = trainer.compute_predictions()
    assert len(y) == len(dataset) and y_pred.shape == y.shape
    assert all(p.model_zl == zl for p in (trainer.train_set, trainer.test_set))


def test_classifier_trainer_on_counts_and_validation_set(dataset):
    torch.manual_seed(6)
    clf = Classifier(dataset.nb_genes, n_hidden=16, n_labels=dataset.n_labels)
    trainer = ClassifierTrainer(clf, dataset, train_size=0.5, test_size=0.25, **FAST)
    trainer.train(n_epochs=10, lr=1e-2)
    clf.eval()
    for posterior in (trainer.train_set, trainer.test_set, trainer.validation_set):
        assert posterior.accuracy() > 0.8
    assert compute_accuracy(clf, trainer.test_set) == trainer.test_set.accuracy()


# ----------------------------------------------------------------------- predictions


def test_compute_predictions_paths(dataset):
    torch.manual_seed(7)
    scanvi = small_scanvi(dataset).eval()
    loader = AnnotationPosterior(scanvi, dataset, use_cuda=False)
    y, pred = compute_predictions(scanvi, loader)
    np.testing.assert_array_equal(y, np.asarray(dataset.labels).ravel())
    x = torch.from_numpy(np.asarray(dataset.X))
    with torch.no_grad():
        np.testing.assert_array_equal(pred, scanvi.classify(x).argmax(-1).numpy())
        vae = VAE(dataset.nb_genes, n_latent=4).eval()
        clf = Classifier(5, n_hidden=8, n_labels=3).eval()
        _, pred_zl = compute_predictions(vae, loader, clf, model_zl=True)
        log_x = torch.log1p(x)
        features = torch.cat([vae.z_encoder(log_x)[0], vae.l_encoder(log_x)[0]], -1)
        np.testing.assert_array_equal(pred_zl, clf(features).argmax(-1).numpy())
    with pytest.raises(TypeError, match="model, a classifier"):
        compute_predictions(None, loader)
    empty = AnnotationPosterior(
        scanvi, dataset, indices=np.array([], dtype=int), use_cuda=False
    )
    assert np.isnan(compute_accuracy(scanvi, empty))


# --------------------------------------------------------------------------- metrics


@pytest.mark.parametrize("kind", ["int", "str"])
def test_compute_accuracy_tuple_matches_sklearn(kind):
    rng = np.random.RandomState(0)
    y = rng.randint(0, 4, size=200)
    y_pred = np.where(
        rng.rand(200) < 0.7, y, rng.randint(0, 5, size=200)
    )  # 4 never true
    if kind == "str":
        names = np.array(["b", "a", "d", "c", "e"])
        y, y_pred = names[y], names[y_pred]
    acc = compute_accuracy_tuple(y, y_pred)
    assert isinstance(acc, Accuracy)
    recalls = recall_score(y, y_pred, labels=np.unique(y), average=None)
    np.testing.assert_allclose(acc.accuracy_classes, recalls)
    assert acc.unweighted == pytest.approx(accuracy_score(y, y_pred))
    assert acc.weighted == pytest.approx(np.mean(recalls))
    assert acc.worst == pytest.approx(recalls.min())


def test_compute_accuracy_tuple_non_contiguous_labels():
    acc = compute_accuracy_tuple(np.array([0, 0, 2, 2]), np.array([0, 2, 2, 2]))
    assert acc.accuracy_classes == [0.5, 1.0]
    assert acc.weighted == pytest.approx(
        balanced_accuracy_score([0, 0, 2, 2], [0, 2, 2, 2])
    )
    with pytest.raises(ValueError, match="differ in length"):
        compute_accuracy_tuple([0, 1], [0])
    with pytest.raises(ValueError, match="zero predictions"):
        compute_accuracy_tuple([], [])


def test_sklearn_baselines_on_separable_data():
    rng = np.random.RandomState(0)
    centers = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    labels = np.repeat(np.array(["x", "y", "z"]), 30)
    data = centers[np.repeat(np.arange(3), 30)] + rng.randn(90, 2)
    train, test = np.arange(0, 90, 2), np.arange(1, 90, 2)
    args = (data[train], labels[train], data[test], labels[test])
    for (train_acc, test_acc), pred in (
        compute_accuracy_svc(*args, param_grid={"C": [1], "kernel": ["linear"]}),
        compute_accuracy_rf(*args, param_grid={"max_depth": [3], "n_estimators": [10]}),
        compute_accuracy_nn(*args, k=3),
    ):
        assert test_acc.unweighted > 0.95 and train_acc.unweighted > 0.95
        assert len(pred) == len(test) and set(pred) <= {"x", "y", "z"}
