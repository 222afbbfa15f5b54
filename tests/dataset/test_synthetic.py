"""Synthetic datasets: shapes, reproducibility and distributional properties."""

import numpy as np
import pytest
from scipy import stats

from scvi.dataset import SyntheticDataset, SyntheticDatasetCorr, ZISyntheticDatasetCorr


def test_synthetic_dataset_layout():
    np.random.seed(1)
    ds = SyntheticDataset(
        batch_size=50, nb_genes=30, n_proteins=7, n_batches=3, n_labels=4
    )
    assert (ds.nb_cells, ds.nb_genes) == (150, 30)
    np.testing.assert_array_equal(ds.batch_indices.ravel(), np.repeat([0, 1, 2], 50))
    assert ds.n_batches == 3 and ds.n_labels == 4
    np.testing.assert_array_equal(ds.cell_types, [f"undefined_{i}" for i in range(4)])
    np.testing.assert_array_equal(ds.gene_names, np.arange(30).astype(str))
    assert ds.protein_expression.shape == (150, 7)
    np.testing.assert_array_equal(ds.protein_names, np.arange(7))
    assert ds.cell_measurements_columns == {"protein_expression": "protein_names"}


def test_synthetic_dataset_is_reproducible_with_np_random_seed():
    np.random.seed(42)
    first = SyntheticDataset(batch_size=20, nb_genes=10)
    np.random.seed(42)
    second = SyntheticDataset(batch_size=20, nb_genes=10)
    third = SyntheticDataset(batch_size=20, nb_genes=10)
    np.testing.assert_array_equal(first.X, second.X)
    np.testing.assert_array_equal(first.protein_expression, second.protein_expression)
    assert not np.array_equal(second.X, third.X)


def test_synthetic_dataset_counts_are_zero_inflated_negative_binomial():
    np.random.seed(0)
    ds = SyntheticDataset(batch_size=2000, nb_genes=50, n_proteins=2, n_batches=2)
    values = ds.X.ravel()
    # P(0) = 0.3 + 0.7 * NB(5, 0.3).pmf(0); mean = 0.7 * 5 * 0.7 / 0.3
    p_zero = 0.3 + 0.7 * stats.nbinom.pmf(0, 5, 0.3)
    assert abs((values == 0).mean() - p_zero) < 0.005
    assert abs(values.mean() - 0.7 * stats.nbinom.mean(5, 0.3)) < 0.05


def test_synthetic_corr_structure():
    ds = SyntheticDatasetCorr(
        n_cells_cluster=100, n_clusters=4, n_genes_high=10, n_overlap=2
    )
    assert ds.n_genes_total == 4 * 8 + 2 == ds.nb_genes
    assert ds.nb_cells == 400 and ds.n_labels == 4
    np.testing.assert_array_equal(ds.labels.ravel(), np.repeat(np.arange(4), 100))
    rates = ds.exprs_param[0]
    np.testing.assert_allclose(rates.sum(axis=1), 50.0)
    for cluster in range(4):
        cells = ds.labels.ravel() == cluster
        high = np.zeros(ds.nb_genes, dtype=bool)
        high[cluster * 8 : cluster * 8 + 10] = True
        assert ds.is_highly_exp[0, cells][:, high].all()
        assert not ds.is_highly_exp[0, cells][:, ~high].any()
        means = ds.X[cells].mean(axis=0)
        assert means[high].min() > means[~high].max()
    np.testing.assert_allclose(ds.poisson_zero, np.exp(-ds.exprs_param))
    again = SyntheticDatasetCorr(
        n_cells_cluster=100, n_clusters=4, n_genes_high=10, n_overlap=2
    )
    np.testing.assert_array_equal(again.X, ds.X)


def test_zero_inflated_synthetic_corr():
    ds = ZISyntheticDatasetCorr(dropout_coef_high=0.3, dropout_coef_low=0.6)
    base = SyntheticDatasetCorr()
    assert ds.X.shape == base.X.shape
    np.testing.assert_array_equal(ds.X, base.X * ~ds.is_technical[0])
    high = ds.is_highly_exp
    np.testing.assert_allclose(ds.p_dropout[high], 0.3)
    np.testing.assert_allclose(ds.p_dropout[~high], 0.6)
    assert abs(ds.is_technical[high].mean() - 0.3) < 0.02
    assert abs(ds.is_technical[~high].mean() - 0.6) < 0.02
    for table in (ds.probas_zero_bio_tech_high, ds.probas_zero_bio_tech_low):
        assert table.shape == (2, 2)
        np.testing.assert_allclose(table.sum(), 1.0)
    pz = np.exp(-ds.exprs_param[high])
    np.testing.assert_allclose(ds.probas_zero_bio_tech_high[1, 1], np.mean(pz * 0.3))


@pytest.mark.parametrize(
    "factory, kwargs, message",
    [
        (SyntheticDataset, {"batch_size": 0}, "batch_size"),
        (SyntheticDataset, {"n_labels": 1.5}, "n_labels"),
        (SyntheticDatasetCorr, {"n_overlap": 25}, "n_overlap"),
        (ZISyntheticDatasetCorr, {"dropout_coef_high": 1.0}, "dropout_coef_high"),
    ],
)
def test_invalid_parameters(factory, kwargs, message):
    with pytest.raises(ValueError, match=message):
        factory(**kwargs)
