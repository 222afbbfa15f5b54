"""Semi-supervised trainers against the original scVI 0.5.0.

``tests/golden/scanvi_trainers.pt`` (from ``tests/golden/make_golden_scanvi.py``) holds
the labelled/unlabelled splits the original ``SemiSupervisedTrainer`` drew for several
label layouts and seeds, and the original trainers' losses for fixed weights and
minibatches (latent samples replaced by their means). The original fed the true labels of
every cell to the ELBO of the full-data minibatch; the golden losses were computed with
those labels hidden, which is what our trainers do (the labels we pass must be ignored).
"""

import sys
from pathlib import Path
from typing import Any, Dict, Iterator

import numpy as np
import pytest
import torch

import scvi.models.modules
from scvi.dataset import EmbeddedPbmcDataset, GeneExpressionDataset
from scvi.inference import UnsupervisedTrainer
from scvi.inference.annotation import (
    AlternateSemiSupervisedTrainer,
    ClassifierTrainer,
    JointSemiSupervisedTrainer,
    SemiSupervisedTrainer,
    compute_accuracy_svc,
)
from scvi.models.classifier import Classifier
from scvi.models.scanvi import SCANVI
from scvi.models.vae import VAE
from scvi.models.vaec import VAEC

GOLDEN = torch.load(
    Path(__file__).resolve().parents[1] / "golden" / "scanvi_trainers.pt",
    weights_only=True,
)
DIMS = dict(n_hidden=8, n_latent=4, dropout_rate=0.0)
N_GENES = 12
FAST = dict(use_cuda=False, show_progbar=False)


def unpack(packed: Dict[str, Any]) -> Dict[str, torch.Tensor]:
    """Rebuild a state_dict stored as one flat vector with keys, shapes and dtypes."""
    state, offset = {}, 0
    for key, shape, dtype in zip(packed["keys"], packed["shapes"], packed["dtypes"]):
        size = int(torch.Size(shape).numel())
        state[key] = (
            packed["data"][offset : offset + size]
            .reshape(shape)
            .to(getattr(torch, dtype))
        )
        offset += size
    return state


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def mean_samples(monkeypatch) -> Iterator[None]:
    # Patch the module that defines Encoder: it looks the sampler up in its own globals.
    encoder_module = sys.modules[scvi.models.modules.Encoder.__module__]
    monkeypatch.setattr(encoder_module, "reparameterize_gaussian", lambda mu, var: mu)
    yield


def _dataset(labels: np.ndarray, n_genes: int, n_batch: int) -> GeneExpressionDataset:
    rng = np.random.RandomState(0)
    dataset = GeneExpressionDataset()
    dataset.populate_from_data(
        rng.poisson(3.0, size=(len(labels), n_genes)).astype(np.float32) + 1,
        batch_indices=rng.randint(0, n_batch, size=len(labels)),
        labels=labels,
    )
    return dataset


@pytest.mark.parametrize(
    "case",
    GOLDEN["splits"],
    ids=lambda c: f"{c['sizes']}-n{c['n_per_class']}-s{c['seed']}",
)
def test_labelled_split_matches_original(case):
    labels = case["labels"].numpy()
    dataset = _dataset(labels, 5, 2)
    model = SCANVI(
        dataset.nb_genes, dataset.n_batches, dataset.n_labels, n_hidden=4, n_latent=2
    )
    trainer = SemiSupervisedTrainer(
        model,
        dataset,
        n_labelled_samples_per_class=case["n_per_class"],
        seed=case["seed"],
        use_cuda=False,
        show_progbar=False,
    )
    labelled = np.asarray(trainer.labelled_set.indices)
    unlabelled = np.asarray(trainer.unlabelled_set.indices)
    expected_labelled = case["labelled"].numpy()
    expected_unlabelled = case["unlabelled"].numpy()
    per_class = np.minimum(np.bincount(labels), case["n_per_class"])
    np.testing.assert_array_equal(
        np.bincount(labels[labelled], minlength=len(per_class)), per_class
    )
    np.testing.assert_array_equal(
        np.sort(np.concatenate([labelled, unlabelled])), np.arange(len(labels))
    )
    if min(case["sizes"]) >= case["n_per_class"]:
        np.testing.assert_array_equal(labelled, expected_labelled)
        np.testing.assert_array_equal(unlabelled, expected_unlabelled)
    else:
        # 0.5 always took n_per_class * n_labels cells, padding a short label's quota with
        # cells that should have stayed unlabelled; we keep only the genuine draws.
        n_extra = len(expected_labelled) - len(labelled)
        assert n_extra == case["n_per_class"] * len(per_class) - per_class.sum() > 0
        np.testing.assert_array_equal(expected_labelled[: len(labelled)], labelled)
        np.testing.assert_array_equal(
            expected_labelled[len(labelled) :], unlabelled[:n_extra]
        )
        np.testing.assert_array_equal(expected_unlabelled, unlabelled[n_extra:])


def _tensors(t: Dict[str, torch.Tensor]):
    return [t["x"], t["local_l_mean"], t["local_l_var"], t["batch_index"], t["y"]]


@pytest.mark.parametrize("name", ["scanvi", "vaec"])
def test_semi_supervised_losses_match_original(name, mean_samples):
    case = GOLDEN["losses"][name]
    labels = np.random.RandomState(5).randint(0, 3, size=40)
    dataset = _dataset(labels, N_GENES, 2)
    cls = {"SCANVI": SCANVI, "VAEC": VAEC}[case["model"]]
    model = cls(N_GENES, **DIMS, **case["kwargs"])
    model.load_state_dict(unpack(case["state_dict"]))
    common = dict(n_labelled_samples_per_class=3, use_cuda=False, show_progbar=False)
    trainer = SemiSupervisedTrainer(
        model, dataset, classification_ratio=case["classification_ratio"], **common
    )
    alternate = AlternateSemiSupervisedTrainer(model, dataset, **common)
    # The labels of the full-data minibatch are given here and must not be used.
    all_cells, labelled = _tensors(case["t_all"]), _tensors(case["t_lab"])
    with torch.no_grad():
        model.eval()
        trainer.kl_weight = alternate.kl_weight = case["kl_weight"]
        got = float(trainer.loss(all_cells, labelled))
        assert got == pytest.approx(case["semi_supervised_eval"], rel=1e-5)
        assert float(alternate.loss(all_cells)) == pytest.approx(
            case["alternate_eval"], rel=1e-5
        )
        classifier_loss = float(trainer.classifier_trainer.loss(labelled))
        assert classifier_loss == pytest.approx(case["classifier_eval"], rel=1e-5)
        model.train()
        got = float(trainer.loss(all_cells, labelled))
        assert got == pytest.approx(case["semi_supervised_train"], rel=1e-5)
        # Labels given or not, the same loss; feeding them to the ELBO (as 0.5 did) differs.
        assert float(trainer.loss(all_cells[:4] + [None], labelled)) == pytest.approx(
            got
        )
        leaked = float(UnsupervisedTrainer.loss(trainer, all_cells))
        hidden = float(UnsupervisedTrainer.loss(trainer, all_cells[:4] + [None]))
        assert leaked != pytest.approx(hidden, rel=1e-5)


@pytest.mark.parametrize("zl", [False, True])
def test_classifier_trainer_on_vae_latent_matches_original(zl):
    case = GOLDEN["losses"]["classifier_on_vae"]
    labels = np.random.RandomState(6).randint(0, 4, size=30)
    dataset = _dataset(labels, N_GENES, 1)
    vae = VAE(N_GENES, n_hidden=8, n_latent=4)
    vae.load_state_dict(unpack(case["vae_state_dict"]))
    result = case["results"][f"zl={zl}"]
    clf = Classifier(4 + int(zl), n_hidden=6, n_labels=4, dropout_rate=0.0)
    clf.load_state_dict(unpack(result["classifier_state_dict"]))
    trainer = ClassifierTrainer(
        clf,
        dataset,
        sampling_model=vae,
        sampling_zl=zl,
        use_cuda=False,
        show_progbar=False,
    )
    vae.eval()
    clf.eval()
    with torch.no_grad():
        got = float(trainer.loss(_tensors(case["t_lab"])))
    assert got == pytest.approx(result["loss"], rel=1e-5)


def test_reduced_pbmc_annotation_quality_matches_original():
    """Short JointSemiSupervisedTrainer run on 1,000 embedded PBMCs, 10 labelled per type.

    Same subset, split, seed and epochs as the original's run in the golden file (whose
    full-data ELBO had its labels hidden, as ours does): the unlabelled accuracy must
    match the original's and beat an SVC on raw counts.
    """
    quality = GOLDEN["quality"]
    full = EmbeddedPbmcDataset()
    rng = np.random.RandomState(quality["subset_seed"])
    subset = np.sort(rng.choice(len(full), quality["n_cells"], replace=False))
    kept, labels = np.unique(
        np.asarray(full.labels).ravel()[subset], return_inverse=True
    )
    dataset = GeneExpressionDataset()
    dataset.populate_from_data(
        np.asarray(full.X[subset]),
        labels=labels,
        cell_types=np.asarray(full.cell_types)[kept],
    )
    torch.manual_seed(quality["seed"])
    model = SCANVI(dataset.nb_genes, dataset.n_batches, dataset.n_labels)
    trainer = JointSemiSupervisedTrainer(
        model,
        dataset,
        n_labelled_samples_per_class=quality["n_per_class"],
        seed=quality["split_seed"],
        **FAST,
    )
    np.testing.assert_array_equal(
        trainer.labelled_set.indices, quality["labelled"].numpy()
    )
    np.testing.assert_array_equal(
        trainer.unlabelled_set.indices, quality["unlabelled"].numpy()
    )
    trainer.train(n_epochs=quality["epochs"])
    accuracy = trainer.unlabelled_set.accuracy()
    # Same seed, split and objective: the runs follow the same trajectory on one thread.
    assert accuracy == pytest.approx(quality["accuracy_labels_hidden"], abs=0.02)
    (_, svc), _ = compute_accuracy_svc(
        *trainer.labelled_set.raw_data(), *trainer.unlabelled_set.raw_data()
    )
    assert accuracy > svc.unweighted
