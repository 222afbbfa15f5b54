"""Parity with the original scVI 0.5.0 on golden outputs (see make_dataset_golden.py)."""

import os
import shutil

import numpy as np
import pytest
import scipy.sparse as sp_sparse

from scvi.dataset import (
    GeneExpressionDataset,
    SyntheticDataset,
    SyntheticDatasetCorr,
    SyntheticRandomDataset,
    ZISyntheticDatasetCorr,
)

GOLDEN = np.load(
    os.path.join(os.path.dirname(__file__), "golden", "dataset_oracle.npz")
)
CELL_TYPES = np.array([f"t{i}" for i in range(10)])
GENE_NAMES = np.array([f"g{i}" for i in range(25)])


def dense(array):
    return array.toarray() if sp_sparse.issparse(array) else np.asarray(array)


def fresh(sparse: bool = False) -> GeneExpressionDataset:
    X = GOLDEN["input_X"]
    ds = GeneExpressionDataset()
    ds.populate_from_data(
        sp_sparse.csr_matrix(X) if sparse else X,
        batch_indices=GOLDEN["input_batches"],
        labels=GOLDEN["input_labels"],
        gene_names=GENE_NAMES,
        cell_types=CELL_TYPES,
    )
    return ds


def test_synthetic_dataset_matches_oracle():
    np.random.seed(0)
    ds = SyntheticDataset(
        batch_size=20, nb_genes=15, n_proteins=4, n_batches=2, n_labels=3
    )
    np.testing.assert_array_equal(ds.X, GOLDEN["synthetic_X"])
    np.testing.assert_array_equal(ds.labels, GOLDEN["synthetic_labels"])
    np.testing.assert_array_equal(ds.batch_indices, GOLDEN["synthetic_batch_indices"])
    np.testing.assert_allclose(
        ds.local_means, GOLDEN["synthetic_local_means"], rtol=1e-6
    )
    np.testing.assert_allclose(ds.local_vars, GOLDEN["synthetic_local_vars"], rtol=1e-5)
    np.testing.assert_array_equal(
        ds.protein_expression, GOLDEN["synthetic_protein_expression"]
    )
    np.testing.assert_array_equal(ds.cell_types, GOLDEN["synthetic_cell_types"])


def test_correlated_synthetic_datasets_match_oracle():
    corr = SyntheticDatasetCorr(
        n_cells_cluster=10, n_clusters=3, n_genes_high=5, n_overlap=1
    )
    np.testing.assert_array_equal(corr.X, GOLDEN["corr_X"])
    np.testing.assert_array_equal(corr.labels, GOLDEN["corr_labels"])
    zi = ZISyntheticDatasetCorr(n_cells_cluster=10, n_clusters=3, n_genes_high=5)
    np.testing.assert_array_equal(zi.X, GOLDEN["zi_X"])
    np.testing.assert_allclose(zi.probas_zero_bio_tech_high, GOLDEN["zi_high"])
    np.testing.assert_allclose(zi.probas_zero_bio_tech_low, GOLDEN["zi_low"])


def test_synthetic_random_dataset_matches_oracle(tmp_path, shared_data):
    source = shared_data / "scvi05_fixtures" / "random_metadata.pickle"
    shutil.copy(source, tmp_path)
    ds = SyntheticRandomDataset(save_path=str(tmp_path))
    np.testing.assert_array_equal(ds.X, GOLDEN["random_X"])
    np.testing.assert_array_equal(ds.labels, GOLDEN["random_labels"])
    np.testing.assert_allclose(ds.local_means, GOLDEN["random_local_means"], rtol=1e-6)


@pytest.mark.parametrize("sparse", [False, True])
def test_populate_matches_oracle(sparse):
    ds = fresh(sparse)
    np.testing.assert_allclose(
        ds.local_means, GOLDEN["populate_local_means"], rtol=1e-6
    )
    np.testing.assert_allclose(ds.local_vars, GOLDEN["populate_local_vars"], rtol=1e-5)
    np.testing.assert_array_equal(ds.labels, GOLDEN["populate_labels"])
    np.testing.assert_array_equal(ds.batch_indices, GOLDEN["populate_batches"])
    np.testing.assert_array_equal(ds.cell_types, GOLDEN["populate_cell_types"])


@pytest.mark.parametrize("sparse", [False, True])
def test_subsample_genes_matches_oracle(sparse):
    ds = fresh(sparse)
    ds.subsample_genes(new_n_genes=8)
    key = "sparse" if sparse else "dense"
    np.testing.assert_array_equal(ds.gene_names, GOLDEN[f"subsample_genes_{key}_names"])
    assert ds.nb_cells == GOLDEN[f"subsample_genes_{key}_n_cells"]
    ds = fresh(sparse)
    ds.subsample_genes(new_ratio_genes=0.5)
    np.testing.assert_array_equal(ds.gene_names, GOLDEN["subsample_ratio_names"])


def test_cell_and_gene_filters_match_oracle():
    ds = fresh()
    ds.subsample_cells(size=0.5)
    np.testing.assert_array_equal(ds.X, GOLDEN["subsample_cells_X"])
    np.testing.assert_allclose(
        ds.local_means, GOLDEN["subsample_cells_local_means"], rtol=1e-6
    )
    ds = fresh()
    ds.filter_genes_by_count(min_count=30)
    np.testing.assert_array_equal(ds.gene_names, GOLDEN["filter_genes_names"])
    assert ds.nb_cells == GOLDEN["filter_genes_n_cells"]
    ds = fresh()
    ds.reorder_genes(["g3", "G0", "G10"])
    np.testing.assert_array_equal(ds.gene_names, GOLDEN["reorder_genes_names"])


def test_cell_type_operations_match_oracle():
    ds = fresh()
    ds.merge_cell_types(["t0", "t4"], "merged")
    np.testing.assert_array_equal(ds.labels, GOLDEN["merge_labels"])
    np.testing.assert_array_equal(ds.cell_types, GOLDEN["merge_cell_types"])
    ds = fresh()
    ds.reorder_cell_types(["t9", "t2"])
    np.testing.assert_array_equal(ds.labels, GOLDEN["reorder_ct_labels"])
    np.testing.assert_array_equal(ds.cell_types, GOLDEN["reorder_ct_cell_types"])


@pytest.mark.parametrize("sparse", [False, True])
def test_normalize_and_raw_counts_properties_match_oracle(sparse):
    ds = fresh(sparse)
    ds.normalize()
    expected = GOLDEN["norm_X"]
    empty = np.isnan(expected).all(axis=1)
    assert empty.sum() == 1
    # 0.5 divided the empty cell by zero (NaN); this package leaves it at 0.
    np.testing.assert_allclose(dense(ds.norm_X)[~empty], expected[~empty], rtol=1e-6)
    assert np.all(dense(ds.norm_X)[empty] == 0)
    props = ds.raw_counts_properties(np.arange(0, 30), np.arange(30, 60))
    for i, value in enumerate(props[:4]):
        np.testing.assert_allclose(value, GOLDEN[f"raw_props_{i}"], rtol=1e-6)
    for i, value in enumerate(props[4:], start=4):
        golden = GOLDEN[f"raw_props_{i}"]
        finite = np.isfinite(golden)
        np.testing.assert_allclose(value[finite], golden[finite], rtol=1e-5)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("corruption", ["uniform", "binomial"])
def test_corrupt_matches_oracle(sparse, corruption):
    ds = fresh(sparse)
    np.random.seed(3)
    ds.corrupt(rate=0.2, corruption=corruption)
    np.testing.assert_array_equal(
        dense(ds.corrupted_X), GOLDEN[f"corrupt_{corruption}"]
    )


def test_collate_matches_oracle():
    tensors = fresh().collate_fn_builder()([4, 0, 33, 59])
    for i, tensor in enumerate(tensors):
        np.testing.assert_allclose(tensor.numpy(), GOLDEN[f"collate_{i}"], rtol=1e-6)
        assert tensor.numpy().dtype == GOLDEN[f"collate_{i}"].dtype


def test_populate_from_datasets_matches_oracle():
    a = fresh()
    b = GeneExpressionDataset()
    b.populate_from_data(
        GOLDEN["input_X2"],
        batch_indices=np.repeat([0, 1], 15),
        labels=np.tile([0, 1, 2], 10),
        gene_names=np.array([f"g{i}" for i in range(10, 30)]),
        cell_types=np.array(["t2", "new", "t9"]),
    )
    a_X, b_X = a.X.copy(), b.X.copy()
    merged = GeneExpressionDataset()
    merged.populate_from_datasets([a, b])
    np.testing.assert_array_equal(merged.X, GOLDEN["merged_X"])
    np.testing.assert_array_equal(merged.labels, GOLDEN["merged_labels"])
    np.testing.assert_array_equal(merged.batch_indices, GOLDEN["merged_batches"])
    np.testing.assert_array_equal(merged.cell_types, GOLDEN["merged_cell_types"])
    np.testing.assert_array_equal(merged.gene_names, GOLDEN["merged_gene_names"])
    np.testing.assert_allclose(
        merged.local_means, GOLDEN["merged_local_means"], rtol=1e-6
    )
    np.testing.assert_allclose(
        merged.local_vars, GOLDEN["merged_local_vars"], rtol=1e-5
    )
    # unlike 0.5, the inputs are left untouched
    assert a.nb_genes == 25 and b.nb_genes == 20
    np.testing.assert_array_equal(a.X, a_X)
    np.testing.assert_array_equal(b.X, b_X)
