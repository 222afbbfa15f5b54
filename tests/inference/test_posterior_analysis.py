"""Differential expression, imputation and sampling methods of a Posterior on planted data.

One small VAE is trained (module fixture) on counts with planted effects:

* genes 0-3 are 8x higher in cell type ``A``, genes 4-7 8x higher in ``B`` (so both
  types have the same total expression and no other gene changes frequency);
* within both types, genes 8-9 are 8x higher in "stimulated" cells and genes 10-11 in
  the others;
* batch 1 has 1.5x more counts than batch 0 (a pure library-size effect).
"""

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from scvi.dataset import GeneExpressionDataset
from scvi.inference import AdapterTrainer, Posterior, UnsupervisedTrainer
from scvi.models import VAE

N_CELLS, N_GENES = 320, 24
UP_IN_A, UP_IN_B = [f"G{i}" for i in range(4)], [f"G{i}" for i in range(4, 8)]
UP_STIM, DOWN_STIM = ["G8", "G9"], ["G10", "G11"]


def planted_dataset():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], N_CELLS // 2)
    batches = np.tile([0, 1], N_CELLS // 2)
    stimulated = np.tile([False, False, True, True], N_CELLS // 4)
    means = np.tile(rng.uniform(2.0, 6.0, size=N_GENES), (N_CELLS, 1))
    means[labels == 0, 0:4] *= 8
    means[labels == 1, 4:8] *= 8
    means[stimulated, 8:10] *= 8
    means[~stimulated, 10:12] *= 8
    means[batches == 1] *= 1.5
    dataset = GeneExpressionDataset()
    dataset.populate_from_data(
        rng.poisson(means).astype(np.float32),
        batch_indices=batches,
        labels=labels,
        gene_names=[f"g{i}" for i in range(N_GENES)],
        cell_types=["A", "B"],
    )
    return dataset, stimulated


@pytest.fixture(scope="module")
def trained():
    dataset, stimulated = planted_dataset()
    # A model this small trains fastest on one thread.
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = VAE(N_GENES, n_batch=2, n_latent=6, n_hidden=32)
    trainer = UnsupervisedTrainer(
        model,
        dataset,
        train_size=1.0,
        n_epochs_kl_warmup=None,
        frequency=None,
        use_cuda=False,
        show_progbar=False,
        data_loader_kwargs={"batch_size": 32},
    )
    trainer.train(n_epochs=40, lr=1e-3)
    full = trainer.create_posterior(indices=np.arange(N_CELLS)).sequential()
    yield dataset, stimulated, trainer, full
    torch.set_num_threads(n_threads)


def recall_at(ranked, planted, k):
    return len(set(ranked[:k]) & set(planted)) / len(planted)


# ---------------------------------------------------------------- differential expression


def test_de_score_ranks_planted_genes_first_and_last(trained):
    dataset, _, _, full = trained
    labels = dataset.labels.ravel()
    in_a, in_b = labels == 0, labels == 1
    result = full.differential_expression_score(
        in_b, in_a, n_samples=100, M_permutation=2000
    )
    assert list(result.columns) == [
        "bayes1", "bayes1_permuted", "bayes2", "bayes2_permuted", "mean1", "mean2",
        "nonz1", "nonz2", "norm_mean1", "norm_mean2", "scale1", "scale2",
    ]  # fmt: skip
    assert result["bayes1"].is_monotonic_decreasing
    ranked = list(result.index)
    assert recall_at(ranked, UP_IN_B, 4) == 1.0
    assert recall_at(ranked[::-1], UP_IN_A, 4) == 1.0
    planted = result.loc[UP_IN_A + UP_IN_B]
    assert (planted.loc[UP_IN_B, "bayes1"] > 3).all() and (
        planted.loc[UP_IN_A, "bayes1"] < -3
    ).all()
    # 2 vs 1 flips the sign; pooled (permuted) pairs give no evidence either way.
    assert (np.sign(planted["bayes2"]) == -np.sign(planted["bayes1"])).all()
    assert (result["bayes1_permuted"].abs() < 1).all() and (
        result["bayes2_permuted"].abs() < 1
    ).all()
    # Raw statistics are the groups' own.
    X = dataset.X
    np.testing.assert_allclose(
        result.loc[ranked, "mean1"], X[in_b].mean(0)[_order(ranked)], rtol=1e-5
    )
    np.testing.assert_allclose(
        result.loc[ranked, "nonz2"], (X[in_a] > 0).mean(0)[_order(ranked)]
    )
    assert (result.loc[UP_IN_B, "scale1"] > 2 * result.loc[UP_IN_B, "scale2"]).all()


def _order(gene_names):
    return [int(name[1:]) for name in gene_names]


def test_de_score_is_antisymmetric_without_pairs_and_subsets_genes(trained):
    dataset, _, _, full = trained
    labels = dataset.labels.ravel()
    result = full.differential_expression_score(
        labels == 1, labels == 0, n_samples=60, sample_pairs=False
    )
    # The same samples compared both ways: exactly opposite log-odds.
    np.testing.assert_allclose(result["bayes2"], -result["bayes1"], atol=1e-6)
    np.testing.assert_array_equal(result["bayes1_permuted"], result["bayes1"])

    np.random.seed(3)
    forward = full.differential_expression_score(
        np.flatnonzero(labels == 1), labels == 0, genes=["g4", "G0"], n_samples=60,
        M_permutation=1000, all_stats=False,
    )  # fmt: skip
    assert forward.shape == (2,) and forward[0] > 3 and forward[1] < -3
    subset = full.differential_expression_score(
        labels == 1, labels == 0, genes=["G4", "G0"], n_samples=20, M_permutation=200
    )
    assert sorted(subset.index) == ["G0", "G4"]
    np.testing.assert_allclose(
        subset.loc["G0", "mean2"], dataset.X[labels == 0, 0].mean(), rtol=1e-5
    )


def test_de_score_with_batch_restrictions_and_bad_masks(trained):
    dataset, _, _, full = trained
    labels = dataset.labels.ravel()
    bayes = full.differential_expression_score(
        labels == 1, labels == 0, batchid1=[1], batchid2=[0], n_samples=80,
        M_permutation=1000, all_stats=False,
    )  # fmt: skip
    assert np.all(bayes[4:8] > 2) and np.all(bayes[0:4] < -2)
    unnamed = GeneExpressionDataset()
    unnamed.populate_from_data(dataset.X, batch_indices=dataset.batch_indices)
    table = Posterior(
        full.model, unnamed, use_cuda=False
    ).differential_expression_score(
        labels == 1, labels == 0, n_samples=20, M_permutation=100
    )
    assert sorted(table.index) == list(range(N_GENES))
    with pytest.raises(ValueError, match="one per cell"):
        full.differential_expression_score(labels[:10] == 1, labels == 0, n_samples=5)
    with pytest.raises(ValueError, match="no cell"):
        full.differential_expression_score(labels == 5, labels == 0, n_samples=5)


def test_one_vs_all_degenes_uses_cell_types_and_custom_labels(trained):
    dataset, _, _, full = trained
    results, clusters = full.one_vs_all_degenes(n_samples=60, M_permutation=500)
    assert clusters == ["A", "B"]
    for result, planted, name in zip(results, (UP_IN_A, UP_IN_B), clusters):
        assert recall_at(list(result.index), planted, 4) == 1.0
        assert (result["clusters"] == name).all()

    # Arbitrary label values; negative labels leave cells out of both groups.
    labels = dataset.labels.ravel()
    custom = np.where(labels == 0, 7, 3)
    custom[:40] = -1
    results, clusters = full.one_vs_all_degenes(
        cell_labels=custom, n_samples=60, M_permutation=500
    )
    assert clusters == [3, 7]
    assert recall_at(list(results[0].index), UP_IN_B, 4) == 1.0
    assert recall_at(list(results[1].index), UP_IN_A, 4) == 1.0
    # Type A keeps 120 cells, not more than min_cells=130: no comparison has enough.
    assert full.one_vs_all_degenes(cell_labels=custom, min_cells=130, n_samples=5) == (
        [],
        [],
    )
    with pytest.raises(ValueError, match="cell_labels"):
        full.one_vs_all_degenes(cell_labels=custom[:5])


def test_within_cluster_degenes_finds_the_state_genes(trained):
    dataset, stimulated, _, full = trained
    results, clusters = full.within_cluster_degenes(
        states=stimulated, n_samples=80, M_permutation=1000
    )
    assert clusters == ["A", "B"]
    for result in results:
        ranked = list(result.index)
        assert recall_at(ranked, UP_STIM, 2) == 1.0
        assert recall_at(ranked[::-1], DOWN_STIM, 2) == 1.0
    subset = np.arange(N_CELLS) < N_CELLS // 2  # type A only
    results, clusters = full.within_cluster_degenes(
        states=stimulated, subset=subset, n_samples=20, M_permutation=200
    )
    assert clusters == ["A"]
    with pytest.raises(ValueError, match="states"):
        full.within_cluster_degenes(states=stimulated[:-1])


def test_degenes_output_file(trained, tmp_path):
    _, _, _, full = trained
    kwargs = dict(
        n_samples=10, M_permutation=50, output_file=True, save_dir=str(tmp_path)
    )
    try:
        import openpyxl  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="openpyxl"):
            full.one_vs_all_degenes(**kwargs)
    else:
        results, clusters = full.one_vs_all_degenes(**kwargs)
        sheets = pd.read_excel(
            tmp_path / "differential_expression.one2all.xlsx", sheet_name=None
        )
        assert list(sheets) == clusters


def test_sample_scale_from_batch_and_stats(trained):
    dataset, _, _, full = trained
    labels = dataset.labels.ravel()
    shuffled = full.update({"batch_size": 50})
    sampler = shuffled.data_loader.sampler
    scales = shuffled.sample_scale_from_batch(
        25, batchid=[0, 1, 1], selection=labels == 1
    )
    assert scales.shape == (75, N_GENES)
    np.testing.assert_allclose(scales.sum(axis=1), 1.0, rtol=1e-5)
    assert shuffled.sample_scale_from_batch(
        10, selection=np.flatnonzero(labels == 1)
    ).shape == (20, N_GENES)
    # The posterior itself still visits its own cells (0.5 replaced its sampler).
    assert shuffled.data_loader.sampler is sampler
    assert shuffled.data_loader_kwargs["sampler"] is sampler
    with pytest.raises(ValueError, match="selection"):
        shuffled.sample_scale_from_batch(5)

    px_scales, sample_labels = full.differential_expression_stats(M_sampling=4)
    assert px_scales.shape == (4 * N_CELLS, N_GENES)
    np.testing.assert_array_equal(sample_labels, np.repeat(labels, 4))
    np.testing.assert_allclose(px_scales.sum(axis=1), 1.0, rtol=1e-5)
    # Type-B samples put more mass on genes 4-7.
    mass = px_scales[:, 4:8].sum(axis=1)
    assert mass[sample_labels == 1].mean() > 2 * mass[sample_labels == 0].mean()


def test_get_stats_generate_parameters_and_harmonized_scale(trained):
    dataset, _, _, full = trained
    model = full.model
    x = torch.as_tensor(dataset.X)
    with torch.no_grad():
        outputs = model.inference(
            x, torch.as_tensor(dataset.batch_indices.astype(np.int64))
        )
    ql_m, ql_sd = (
        outputs["ql_m"].numpy().ravel(),
        outputs["ql_v"].sqrt().numpy().ravel(),
    )
    # Samples of q(l | x), in the order of the cells.
    z_scores = (full.get_stats() - ql_m) / ql_sd
    assert abs(z_scores.mean()) < 0.3 and 0.8 < z_scores.std() < 1.2

    dropout, mean, dispersion = full.generate_parameters()
    assert dropout.shape == mean.shape == dispersion.shape == (N_CELLS, N_GENES)
    np.testing.assert_allclose(
        dispersion,
        np.exp(model.px_r.detach().numpy())[None].repeat(N_CELLS, 0),
        rtol=1e-6,
    )
    # px_rate = exp(l) * px_scale, whose rows sum to 1.
    z_scores = (np.log(mean.sum(axis=1)) - ql_m) / ql_sd
    assert abs(z_scores.mean()) < 0.3 and 0.8 < z_scores.std() < 1.2

    batch_0, batch_1 = full.get_harmonized_scale(0), full.get_harmonized_scale(1)
    assert batch_0.shape == (N_CELLS, N_GENES)
    np.testing.assert_allclose(batch_0.sum(axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(batch_0, batch_1)


# ---------------------------------------------------------------- imputation


def test_imputation_benchmark_on_corrupted_data(trained, tmp_path):
    dataset, _, trainer, full = trained
    original_X = dataset.X.copy()
    np.random.seed(1)
    dataset.corrupt(rate=0.3, corruption="binomial")
    try:
        changed = dataset.X != dataset.corrupted_X
        assert changed.any()
        original_list, imputed_list = full.imputation_list(n_samples=2)
        assert len(original_list) == len(imputed_list) == N_CELLS
        for cell in range(N_CELLS):
            genes = np.flatnonzero(changed[cell])
            np.testing.assert_array_equal(
                original_list[cell], np.tile(original_X[cell, genes], 2)
            )
            assert imputed_list[cell].shape == (2 * genes.size,)
        imputed = np.concatenate(imputed_list)
        assert np.all(np.isfinite(imputed)) and np.all(imputed > 0)
        score = full.imputation_score(original_list, imputed_list)
        assert score == pytest.approx(
            np.median(np.abs(np.concatenate(original_list) - imputed))
        )
        assert np.isfinite(score) and score > 0

        trainer.corrupt_posteriors()
        returned = full.imputation_benchmark(
            n_samples=1, show_plot=True, title_plot="bench", save_path=str(tmp_path)
        )
        trainer.uncorrupt_posteriors()
        assert len(returned[0]) == N_CELLS
        assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        # The counts themselves are untouched.
        np.testing.assert_array_equal(dataset.X, original_X)
        first = next(iter(full))[0].numpy()
        np.testing.assert_array_equal(first, original_X[: first.shape[0]])

        dataset.corrupted_X = original_X.copy()
        assert full.imputation_score() == 0.0
    finally:
        dataset.corrupted_X = None


def test_imputation_needs_corrupted_data(trained):
    _, _, _, full = trained
    with pytest.raises(ValueError, match="corrupt"):
        full.imputation_list()


# ---------------------------------------------------------------- AdapterTrainer


def test_adapter_trainer_refits_only_the_encoders(trained):
    dataset, _, trainer, _ = trained
    model = trainer.model
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        held_out = trainer.create_posterior(indices=np.arange(0, N_CELLS, 4))
        before = held_out.elbo()
        adapter = AdapterTrainer(model, dataset, held_out, frequency=1)
        assert adapter.posteriors_loop == ["test_set"]
        assert adapter.n_scale == N_CELLS // 4
        path_starts = []
        on_epoch_begin = adapter.on_epoch_begin

        def record_path_start():
            if adapter.epoch == 0:
                path_starts.append(copy.deepcopy(model.z_encoder.state_dict()))
            on_epoch_begin()

        adapter.on_epoch_begin = record_path_start
        best = adapter.train(n_path=2, n_epochs=3, lr=1e-3)
        history = adapter.history["elbo_test_set"]
        assert best == min(history)
        assert len(history) >= 2 * 3
        assert best <= before + 0.05 * abs(before)
        # Only encoder parameters move (batch-norm running statistics of the decoder
        # are buffers, updated by any forward pass in training mode).
        changed = {
            k for k, v in model.named_parameters() if not torch.equal(v, initial[k])
        }
        assert changed and all(
            k.startswith(("z_encoder", "l_encoder")) for k in changed
        )
        # Every path restarts from the encoders' initial weights.
        assert len(path_starts) == 2
        for start in path_starts:
            for key, value in start.items():
                torch.testing.assert_close(value, initial[f"z_encoder.{key}"])
    finally:
        model.load_state_dict(initial)
