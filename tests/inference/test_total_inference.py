"""TotalPosterior and TotalTrainer: parity with scVI 0.5.0, data checks, and the methods
0.5 left unimplemented or broken, checked on data with a planted answer."""

import json
from pathlib import Path
from typing import Any, Callable, Dict

import numpy as np
import pytest
import torch

from scvi.dataset import CellMeasurement, GeneExpressionDataset
from scvi.inference.total_inference import TotalPosterior, TotalTrainer
from scvi.models import VAE
from scvi.models.totalvi import TOTALVI

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"
POSTERIOR_FILES = sorted(GOLDEN_DIR.glob("totalvi_posterior_*.pt"))

N_GENES, N_PROTEINS, N_PER_GROUP = 40, 6, 150
UP_GENES = [0, 1, 2, 3]


def flatten(prefix: str, value: Any, out: Dict[str, torch.Tensor]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            flatten(f"{prefix}.{key}", item, out)
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            flatten(f"{prefix}.{i}", item, out)
    elif isinstance(value, torch.Tensor):
        out[prefix] = value.detach().clone()
    elif isinstance(value, np.ndarray):
        out[prefix] = torch.from_numpy(np.ascontiguousarray(value))
    else:
        out[prefix] = torch.tensor(float(value), dtype=torch.float64)


def seeded(seed: int, fn: Callable[[], Any]) -> Any:
    torch.manual_seed(seed)
    np.random.seed(seed)
    with torch.no_grad():
        return fn()


def cite_dataset(x, y, batch=None, labels=None, names=None) -> GeneExpressionDataset:
    dataset = GeneExpressionDataset()
    names = [f"PROT{i}" for i in range(y.shape[1])] if names is None else names
    dataset.populate_from_data(
        X=x,
        Ys=[
            CellMeasurement("protein_expression", y, "protein_names", np.asarray(names))
        ],
        batch_indices=batch,
        labels=labels,
        gene_names=[f"GENE{i}" for i in range(x.shape[1])],
        remap_attributes=False,
    )
    return dataset


def planted_dataset(seed: int = 0) -> GeneExpressionDataset:
    """Two groups of cells (labels 0 and 1) in two batches.

    Group 0 expresses genes 0-3 six times more and has protein 0 in the foreground;
    group 1 has protein 1 in the foreground; every protein has a background.
    """
    rng = np.random.RandomState(seed)
    n = 2 * N_PER_GROUP
    group = np.repeat([0, 1], N_PER_GROUP)
    base = rng.gamma(2.0, 1.0, size=N_GENES)
    means = np.tile(base, (n, 1))
    means[np.ix_(group == 0, UP_GENES)] *= 6.0
    library = rng.lognormal(0.0, 0.5, size=(n, 1))
    x = rng.negative_binomial(5, 5 / (5 + means * library)).astype(np.float32)
    background = rng.gamma(20.0, 1.0, size=(n, N_PROTEINS))
    foreground = np.zeros((n, N_PROTEINS))
    foreground[group == 0, 0] = 300.0
    foreground[group == 1, 1] = 300.0
    y = rng.poisson(background + foreground).astype(np.float32)
    batch = rng.randint(0, 2, size=n)
    return cite_dataset(x, y, batch=batch, labels=group)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    np.random.seed(0)
    dataset = planted_dataset()
    model = TOTALVI(N_GENES, N_PROTEINS, n_batch=2, n_hidden=32, n_latent=5)
    # Start the background prior and head near the data's background level (log 20):
    # from 0.5's random start, separating background from foreground takes hundreds
    # of epochs, too long for a unit test.
    with torch.no_grad():
        model.background_pro_alpha.fill_(3.0)
        model.background_pro_log_beta.fill_(-1.0)
        model.decoder.py_back_mean_log_alpha.bias.fill_(3.0)
    trainer = TotalTrainer(
        model,
        dataset,
        n_epochs_kl_warmup=10,
        n_epochs_back_kl_warmup=10,
        frequency=10,
        show_progbar=False,
        use_cuda=False,
    )
    trainer.train(n_epochs=60, lr=1e-2)
    return trainer


# ------------------------------------------------------------------------------ parity


@pytest.mark.parametrize(
    "path", POSTERIOR_FILES, ids=lambda p: p.stem[len("totalvi_posterior_") :]
)
def test_posterior_outputs_match_original(path):
    case = torch.load(path, weights_only=True)
    model = TOTALVI(**json.loads(case["dims"]), **json.loads(case["config"]))
    model.load_state_dict(case["state_dict"])
    model.eval()
    inputs = case["inputs"]
    dataset = cite_dataset(
        inputs["x"].numpy(),
        inputs["y"].numpy(),
        batch=inputs["batch_index"].numpy(),
        labels=inputs["labels"].numpy(),
    )
    np.testing.assert_allclose(
        dataset.local_means, case["local_means"].numpy(), rtol=1e-5
    )
    np.testing.assert_allclose(
        dataset.local_vars, case["local_vars"].numpy(), rtol=1e-5
    )
    post = TotalPosterior(
        model, dataset, use_cuda=False, data_loader_kwargs=dict(batch_size=32)
    )
    calls = {
        "elbo": post.elbo,
        "reconstruction_total": post.reconstruction_error,
        "reconstruction_gene": lambda: post.reconstruction_error("gene"),
        "reconstruction_protein": lambda: post.reconstruction_error("protein"),
        "marginal_ll_1": lambda: post.compute_marginal_log_likelihood(n_samples_mc=1),
        "latent_mean": lambda: post.get_latent(sample=False),
        "latent_sample": lambda: post.get_latent(sample=True),
        "background_mean": post.get_protein_background_mean,
        "dropout": post.get_sample_dropout,
        "mixing2": lambda: post.get_sample_mixing(n_samples=2, give_mean=True),
        "denoised": post.get_normalized_denoised_expression,
        "denoised3": lambda: post.get_normalized_denoised_expression(
            n_samples=3, give_mean=False
        ),
        "imputation": post.imputation,
    }
    expected = case["outputs"]
    assert set(case["seeds"]) <= set(calls)
    for key, seed in case["seeds"].items():
        actual: Dict[str, torch.Tensor] = {}
        flatten(key, seeded(seed, calls[key]), actual)
        assert actual, key
        for name, value in actual.items():
            torch.testing.assert_close(
                value.to(expected[name].dtype),
                expected[name],
                rtol=1e-5,
                atol=1e-5,
                msg=lambda m, name=name: f"{name}: {m}",
            )


# ------------------------------------------------------------------------------ data checks


def _small_model(n_genes: int = 5, n_proteins: int = 3) -> TOTALVI:
    return TOTALVI(n_genes, n_proteins, n_hidden=8, n_latent=2)


def test_dataset_without_proteins_is_rejected():
    dataset = GeneExpressionDataset()
    dataset.populate_from_data(np.ones((6, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="protein_expression"):
        TotalPosterior(_small_model(), dataset)
    with pytest.raises(ValueError, match="protein_expression"):
        TotalTrainer(_small_model(), dataset)


def test_protein_mismatches_are_rejected():
    x = np.ones((6, 5), dtype=np.float32)
    y = np.arange(18, dtype=np.float32).reshape(6, 3) + 1
    with pytest.raises(ValueError, match="expects 4 proteins"):
        TotalPosterior(_small_model(n_proteins=4), cite_dataset(x, y))
    with pytest.raises(ValueError, match="expects 6 genes"):
        TotalPosterior(_small_model(n_genes=6), cite_dataset(x, y))
    renamed = cite_dataset(x, y)
    renamed.protein_names = np.array(["A", "B"])
    with pytest.raises(ValueError, match="protein_names"):
        TotalPosterior(_small_model(), renamed)
    with pytest.raises(ValueError, match="unique"):
        TotalPosterior(_small_model(), cite_dataset(x, y, names=["A", "B", "A"]))
    with pytest.raises(TypeError, match="TOTALVI"):
        TotalTrainer(VAE(5), cite_dataset(x, y))


def test_all_zero_protein_is_rejected():
    x = np.ones((6, 5), dtype=np.float32)
    y = np.ones((6, 3), dtype=np.float32)
    y[:, 1] = 0
    with pytest.raises(ValueError, match=r"zero counts in every cell: \['PROT1'\]"):
        TotalPosterior(_small_model(), cite_dataset(x, y))


# ------------------------------------------------------------------------------ trainer


def test_trainer_split_monitoring_and_loss(trained):
    sizes = [
        len(p.indices)
        for p in (trained.train_set, trained.test_set, trained.validation_set)
    ]
    assert sizes == [270, 15, 15]
    assert trained.train_set.to_monitor == []
    assert trained.test_set.to_monitor == ["elbo"]
    assert all(
        isinstance(p, TotalPosterior)
        for p in (trained.test_set, trained.validation_set)
    )
    assert trained.kl_weight == 1.0 and trained.back_warmup_weight == 1.0
    history = trained.history["elbo_test_set"]
    assert len(history) == 7 and history[-1] < 0.8 * history[0]

    tensors = next(iter(trained.train_set.sequential(16)))
    x, lm, lv, b, lab, y = tensors
    trained.kl_weight, trained.back_warmup_weight, trained.pro_recons_weight = (
        0.3,
        0.5,
        2.0,
    )
    torch.manual_seed(1)
    loss = trained.loss(tensors)
    torch.manual_seed(1)
    gene, protein, kl_z, kl_l, kl_back = trained.model(x, y, lm, lv, b, lab)
    expected = (gene + 2.0 * protein + 0.3 * kl_z + kl_l + 0.5 * kl_back).mean()
    torch.testing.assert_close(loss, expected)
    trained.pro_recons_weight = 1.0
    trained.epoch = 5
    trained.on_epoch_begin()
    assert trained.kl_weight == 0.5 and trained.back_warmup_weight == 0.5
    trained.epoch = 59
    trained.on_epoch_begin()


def test_early_stopping_reads_total_posterior_metrics():
    torch.manual_seed(0)
    dataset = planted_dataset(seed=1)
    trainer = TotalTrainer(
        TOTALVI(N_GENES, N_PROTEINS, n_batch=2, n_hidden=16, n_latent=3),
        dataset,
        frequency=1,
        show_progbar=False,
        early_stopping_kwargs=dict(
            early_stopping_metric="reconstruction_error",
            patience=1,
            threshold=1e9,
            posterior_class=TotalPosterior,
        ),
    )
    trainer.train(n_epochs=10)
    assert trainer.early_stopping.mode == "min"
    assert len(trainer.history["reconstruction_error_test_set"]) < 10


# ------------------------------------------------------------------------------ posterior


def test_scores_and_marginal_likelihood(trained):
    post = trained.test_set
    gene = post.reconstruction_error("gene")
    protein = post.reconstruction_error("protein")
    assert post.reconstruction_error() == pytest.approx(gene + protein, rel=0.05)
    with pytest.raises(ValueError, match="mode"):
        post.reconstruction_error("proteins")
    draws = []
    inference = trained.model.inference

    def counting(*args, n_samples=1, **kwargs):
        draws.append(n_samples)
        return inference(*args, n_samples=n_samples, **kwargs)

    trained.model.inference = counting
    try:
        marginal = post.marginal_ll(n_mc_samples=40)
    finally:
        del trained.model.inference
    # One minibatch (15 cells) and all 40 draws: 0.5 ignored n_mc_samples.
    assert sum(draws) == 40
    # An importance-weighted bound is tighter than the ELBO.
    assert marginal < np.mean([post.elbo() for _ in range(5)])


def test_latent_library_and_stats(trained):
    post = trained.validation_set.sequential()
    latent, batch, labels, library = post.get_latent()
    assert latent.shape == (15, 5) and batch.shape == (15, 1) and labels.shape == (15,)
    np.testing.assert_allclose(latent.sum(axis=1), 1.0, rtol=1e-5)
    observed = post.gene_dataset.X[post.indices].sum(axis=1)
    # The posterior mean library size tracks the observed total counts.
    assert np.corrcoef(np.log(library), np.log(observed))[0, 1] > 0.8
    assert post.get_stats().shape == (15,)
    tensors = next(iter(post.uncorrupted()))
    assert len(tensors) == 6 and tensors[5].shape[1] == N_PROTEINS


def test_background_probability_separates_planted_foreground(trained):
    full = trained.create_posterior(type_class=TotalPosterior)
    mixing = full.get_sample_mixing(n_samples=5, give_mean=True)
    background = 1 / (1 + np.exp(-mixing))
    group = full.gene_dataset.labels.ravel()[full.indices]
    # Protein 0 is foreground in group 0 only, protein 1 in group 1 only.
    assert background[group == 1, 0].mean() > background[group == 0, 0].mean() + 0.4
    assert background[group == 0, 1].mean() > background[group == 1, 1].mean() + 0.4
    rate_back = full.get_protein_background_mean()
    proteins = full.gene_dataset.protein_expression[full.indices]
    # Where protein 0 is background only, its background mean matches the counts.
    np.testing.assert_allclose(
        np.median(rate_back[group == 1, 0]),
        np.median(proteins[group == 1, 0]),
        rtol=0.3,
    )


def test_scales_and_parameters(trained):
    post = trained.test_set
    n_cells = len(post.indices)
    scale = post.get_sample_scale()
    assert scale.shape == (n_cells, N_GENES + N_PROTEINS)
    np.testing.assert_allclose(scale[:, :N_GENES].sum(1), 1, rtol=1e-5)
    np.testing.assert_allclose(scale[:, N_GENES:].sum(1), 1, rtol=1e-5)
    # The same random draws (creating a loader iterator draws a seed) give the same
    # scales as the model's scale_from_z.
    torch.manual_seed(3)
    x, _, _, _, labels, y = next(iter(post.sequential()))
    with torch.no_grad():
        expected = torch.cat(trained.model.scale_from_z(x, y, 1, label=labels), dim=-1)
    torch.manual_seed(3)
    harmonized = post.sequential().get_harmonized_scale(1)
    np.testing.assert_allclose(harmonized, expected.numpy(), rtol=1e-5)
    assert harmonized.shape == (n_cells, N_GENES + N_PROTEINS)

    genes, proteins = post.generate_parameters()
    assert {k: v.shape for k, v in genes.items()} == {
        k: (n_cells, N_GENES) for k in ("dropout", "rate", "r")
    }
    assert set(proteins) == {"rate_back", "rate_fore", "r", "mixing"}
    assert np.all(proteins["rate_fore"] >= proteins["rate_back"])
    np.testing.assert_allclose(
        proteins["r"][0], np.exp(trained.model.py_r.detach().numpy()), rtol=1e-6
    )

    imputed = post.imputation(n_samples=3)
    assert imputed.shape == (n_cells, N_GENES) and np.all(imputed > 0)
    mixing = post.get_sample_mixing(n_samples=3, give_mean=False)
    assert mixing.shape == (n_cells, N_PROTEINS, 3)
    dropout = post.get_sample_dropout(n_samples=3)
    assert dropout.shape == (n_cells, N_GENES)


def test_generate_draws_from_the_model(trained):
    post = trained.test_set.sequential(8)
    torch.manual_seed(0)
    x_new, x_old = post.generate(n_samples=400, batch_size=8)
    assert x_new.shape == (15, N_GENES + N_PROTEINS, 400)
    first = next(iter(post))
    np.testing.assert_array_equal(
        x_old[:8], torch.cat((first[0], first[5]), dim=-1).numpy()
    )
    # Sample means match the model's means under the posterior.
    outputs = seeded(
        1,
        lambda: trained.model.inference(
            first[0], first[5], first[3], first[4], n_samples=400
        ),
    )
    py_ = outputs["py_"]
    w = torch.sigmoid(py_["mixing"])
    protein_mean = (w * py_["rate_back"] + (1 - w) * py_["rate_fore"]).mean(0).numpy()
    gene_mean = outputs["px_"]["rate"].mean(0).numpy()
    sample_mean = x_new[:8].mean(axis=2)
    np.testing.assert_allclose(
        sample_mean[:, N_GENES:], protein_mean, rtol=0.25, atol=3
    )
    np.testing.assert_allclose(
        sample_mean[:, :N_GENES].sum(1), gene_mean.sum(1), rtol=0.1
    )

    names = ["GENE2", "PROT1", "prot0"]
    x_sel, x_old_sel = post.generate(n_samples=2, genes=names)
    assert x_sel.shape == (15, 3, 2)
    np.testing.assert_array_equal(x_old_sel, x_old[:, [2, N_GENES + 1, N_GENES]])
    with pytest.raises(ValueError, match="neither genes nor proteins"):
        post.generate(n_samples=2, genes=["NOPE"])


def test_differential_expression_finds_planted_genes_and_proteins(trained):
    full = trained.create_posterior(type_class=TotalPosterior)
    labels = full.gene_dataset.labels.ravel()
    np.random.seed(0)
    table = full.differential_expression_score(
        labels == 0, labels == 1, n_samples=100, M_permutation=2000
    )
    assert table.shape == (N_GENES + N_PROTEINS, 13)
    top = table.index[:6].tolist()
    assert set(top) >= {"GENE0", "GENE1", "GENE2", "GENE3", "PROT0"}
    assert table.loc["PROT0", "feature_type"] == "protein"
    assert table.loc["PROT1", "bayes1"] < -2 and table.loc["PROT1", "bayes2"] > 2
    assert table.loc["PROT0", "mean1"] > 200 > table.loc["PROT0", "mean2"]
    # Group 1 vs 2 and 2 vs 1 are mirror images; the permuted null is near zero.
    assert np.corrcoef(table["bayes1"], table["bayes2"])[0, 1] < -0.9
    assert np.abs(table["bayes1_permuted"]).median() < 1.0

    factors = full.differential_expression_score(
        labels == 0,
        labels == 1,
        genes=["PROT0", "GENE0"],
        n_samples=50,
        all_stats=False,
    )
    assert factors.shape == (2,) and np.all(factors > 2)

    ordered = trained.test_set.sequential()
    scales, sample_labels = ordered.differential_expression_stats(M_sampling=4)
    assert scales.shape == (60, N_GENES + N_PROTEINS)
    test_labels = full.gene_dataset.labels.ravel()[trained.test_set.indices]
    np.testing.assert_array_equal(sample_labels, np.repeat(test_labels, 4))
    np.testing.assert_allclose(scales[:, N_GENES:].sum(1), 1, rtol=1e-5)

    de_res, de_cluster = full.one_vs_all_degenes(
        n_samples=50, M_permutation=500, min_cells=10
    )
    assert len(de_res) == 2 and de_res[0].index[0] in {
        "GENE0",
        "GENE1",
        "GENE2",
        "GENE3",
        "PROT0",
    }


def test_imputation_list_on_corrupted_data(trained):
    dataset = planted_dataset(seed=2)
    original = dataset.X.copy()
    np.random.seed(0)
    dataset.corrupt(rate=0.1, corruption="uniform")
    post = TotalPosterior(trained.model, dataset, indices=np.arange(40), use_cuda=False)
    originals, imputed = post.imputation_list(n_samples=2)
    assert len(originals) == len(imputed) == 40
    changed = (dataset.X[:40] != dataset.corrupted_X[:40]).sum()
    assert sum(len(o) for o in originals) == 2 * changed > 0
    assert all(np.all(i > 0) for i in imputed)
    np.testing.assert_array_equal(dataset.X, original)
