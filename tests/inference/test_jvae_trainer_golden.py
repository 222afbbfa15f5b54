"""JVAETrainer step for step against the original scVI 0.5.0.

``tests/golden/jvae_training.pt`` (from ``tests/golden/make_golden_autozi_jvae.py``)
holds two small count matrices (a "scRNA-seq" one with 14 genes and a "spatial" one with
5 of them), and the original's results of a seeded 3-epoch adversarial training: metric
history, final weights of the model and the discriminator, latent codes, imputed values,
discriminator confusion and loss magnitudes.
"""

from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest
import torch

from scvi.dataset import GeneExpressionDataset
from scvi.inference.jvae_trainer import JPosterior, JVAETrainer
from scvi.models.jvae import JVAE

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "jvae_training.pt"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


@pytest.fixture(scope="module")
def golden() -> Dict[str, Any]:
    return torch.load(GOLDEN, weights_only=True)


def _datasets(data: Dict[str, torch.Tensor]):
    positions = data["positions"].numpy()
    names = np.array([f"g{i}" for i in range(data["seq_x"].shape[1])])
    seq, fish = GeneExpressionDataset(), GeneExpressionDataset()
    seq.populate_from_data(
        data["seq_x"].numpy(),
        batch_indices=np.zeros(len(data["seq_x"]), dtype=int),
        labels=data["seq_labels"].numpy(),
        gene_names=names,
    )
    fish.populate_from_data(
        data["fish_x"].numpy(),
        batch_indices=np.ones(len(data["fish_x"]), dtype=int),
        labels=data["fish_labels"].numpy(),
        gene_names=names[positions],
    )
    return seq, fish, positions


def _close(actual, expected, what: str, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    torch.testing.assert_close(
        torch.as_tensor(np.asarray(actual)).double(),
        torch.as_tensor(expected).double(),
        rtol=rtol,
        atol=atol,
        msg=lambda m: f"{what}: {m}",
    )


def test_training_matches_original(golden) -> None:
    seq, fish, positions = _datasets(golden["data"])
    n_genes = seq.nb_genes
    torch.manual_seed(8)
    model = JVAE(
        [n_genes, len(positions)],
        n_genes,
        [slice(None), positions],
        ["zinb", "nb"],
        [True, False],
        n_latent=3,
        dim_hidden_encoder=16,
        dim_hidden_decoder_shared=16,
        n_layers_decoder_individual=1,
        n_layers_decoder_shared=1,
        dim_hidden_decoder_individual=8,
        n_batch=2,
        dropout_rate_decoder=0.1,
    )
    discriminator = torch.nn.Sequential(
        torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)
    )
    trainer = JVAETrainer(
        model,
        discriminator,
        [seq, fish],
        train_size=0.8,
        use_cuda=False,
        kappa=0.7,
        n_epochs_kl_warmup=2,
        frequency=1,
        data_loader_kwargs=dict(batch_size=16),
        show_progbar=False,
    )
    assert all(isinstance(p, JPosterior) for p in trainer.all_dataset)
    assert [p.mode for p in trainer.all_test] == [0, 1]
    assert trainer.posteriors_loop == ["train_0", "train_1"]
    trainer.train(n_epochs=3, lr_d=2e-3, lr_g=5e-3)
    assert trainer.kl_weight == 1.0
    assert set(trainer.history) == set(golden["history"])
    for key, expected in golden["history"].items():
        _close(trainer.history[key], expected, key)
    for name, module, expected_state in (
        ("model", model, golden["state_dict"]),
        ("discriminator", discriminator, golden["discriminator_state_dict"]),
    ):
        state = module.state_dict()
        assert list(state) == list(expected_state)
        for key, expected in expected_state.items():
            _close(state[key], expected, f"{name} {key}")

    torch.manual_seed(9)
    for actual, expected in zip(trainer.get_latent(), golden["latent"]):
        _close(actual, expected, "latent")
    for actual, expected in zip(trainer.get_imputed_values(), golden["imputed"]):
        _close(actual, expected, "imputed scale")
    imputed_rate = trainer.get_imputed_values(normalized=False, decode_mode=0)
    for actual, expected in zip(imputed_rate, golden["imputed_rate"]):
        _close(actual, expected, "imputed rate", atol=1e-4)
    _close(trainer.get_discriminator_confusion(), golden["confusion"], "confusion")
    torch.manual_seed(10)
    for actual, expected in zip(trainer.get_loss_magnitude(), golden["loss_magnitude"]):
        _close(actual, expected, "loss magnitude")
