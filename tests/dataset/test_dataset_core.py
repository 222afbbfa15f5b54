"""GeneExpressionDataset core: population, validation, library sizes, collation."""

import logging

import numpy as np
import pytest
import scipy.sparse as sp_sparse
import torch
from torch.utils.data import DataLoader

from scvi.dataset import CellMeasurement, GeneExpressionDataset
from scvi.dataset.dataset import (
    compute_library_size,
    concatenate_arrays,
    remap_categories,
)


def make_counts(n_cells=40, n_genes=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.poisson(rng.gamma(1.0, 2.0, size=(1, n_genes)), size=(n_cells, n_genes))


def populated(sparse=False, n_cells=40, n_genes=12, **kwargs):
    X = make_counts(n_cells, n_genes)
    ds = GeneExpressionDataset()
    ds.populate_from_data(sp_sparse.csr_matrix(X) if sparse else X, **kwargs)
    return ds


def expected_library(X, batches):
    """Independent per-batch mean/var of log library size (numpy only)."""
    totals = np.asarray(X).sum(axis=1).astype(np.float64)
    means = np.empty(len(totals))
    variances = np.empty(len(totals))
    for batch in np.unique(batches):
        logs = np.log(totals[batches == batch])
        means[batches == batch] = logs.mean()
        variances[batches == batch] = logs.var()
    return means, variances


@pytest.mark.parametrize("sparse", [False, True])
def test_library_size_per_batch_matches_numpy(sparse):
    X = make_counts(60, 15) + 1
    batches = np.repeat([0, 1, 2], 20)[np.random.default_rng(1).permutation(60)]
    ds = GeneExpressionDataset()
    ds.populate_from_data(
        sp_sparse.csr_matrix(X) if sparse else X, batch_indices=batches
    )
    means, variances = expected_library(X, batches)
    assert ds.local_means.shape == (60, 1) and ds.local_vars.shape == (60, 1)
    np.testing.assert_allclose(ds.local_means.ravel(), means, rtol=1e-6)
    np.testing.assert_allclose(ds.local_vars.ravel(), variances, rtol=1e-5)
    assert ds.n_batches == 3
    assert sp_sparse.isspmatrix_csr(ds.X) == sparse
    assert ds.X.dtype == np.float32


def test_library_size_uses_each_batch_value_present():
    X = make_counts(30, 10) + 1
    batches = np.repeat([5, 9, 7], 10)
    ds = GeneExpressionDataset()
    ds.populate_from_data(X, batch_indices=batches, remap_attributes=False)
    means, _ = expected_library(X, batches)
    np.testing.assert_allclose(ds.local_means.ravel(), means, rtol=1e-6)
    np.testing.assert_array_equal(np.unique(ds.batch_indices), [5, 7, 9])


def test_compute_library_size_warns_on_empty_cells(caplog):
    data = np.array([[1.0, 2.0], [0.0, 0.0], [4.0, 4.0]])
    with caplog.at_level(logging.WARNING, logger="scvi"):
        mean, var = compute_library_size(data)
    assert "filter_cells_by_count" in caplog.text
    logs = np.array([np.log(3.0), 0.0, np.log(8.0)])
    np.testing.assert_allclose(mean, [[logs.mean()]], rtol=1e-6)
    np.testing.assert_allclose(var, [[logs.var()]], rtol=1e-6)
    assert mean.dtype == np.float32 and mean.shape == (1, 1)


def test_populate_defaults_and_registries():
    ds = populated(gene_names=["a", "Bb", "c"] + [f"g{i}" for i in range(9)])
    assert len(ds) == ds.nb_cells == 40 and ds.nb_genes == 12
    assert ds.batch_indices.shape == (40, 1) and ds.batch_indices.dtype == np.uint16
    assert ds.labels.shape == (40, 1) and not ds.labels.any()
    assert ds.n_batches == 1 and ds.n_labels == 1
    np.testing.assert_array_equal(ds.cell_types, ["undefined"])
    np.testing.assert_array_equal(ds.gene_names[:3], ["A", "BB", "C"])
    assert ds.cell_attribute_names == {
        "batch_indices",
        "labels",
        "local_means",
        "local_vars",
    }
    assert ds.cell_categorical_attribute_names == {"batch_indices", "labels"}
    assert ds.attribute_mappings["labels"] == ["cell_types"]
    assert ds[7] == 7
    assert ds.__getitems__([3, 1, 2]) == [3, 1, 2]


def test_populate_remaps_labels_and_cell_types():
    labels = np.array([4, 2, 4, 7] * 5)
    cell_types = [f"type{i}" for i in range(8)]
    ds = populated(n_cells=20, labels=labels, cell_types=cell_types)
    np.testing.assert_array_equal(ds.labels.ravel(), np.array([1, 0, 1, 2] * 5))
    np.testing.assert_array_equal(ds.cell_types, ["type2", "type4", "type7"])
    assert ds.n_labels == 3
    kept = populated(n_cells=20, labels=labels, remap_attributes=False)
    np.testing.assert_array_equal(kept.labels.ravel(), labels)
    assert kept.cell_types is None


def test_populate_with_extra_attributes_and_measurements():
    rng = np.random.default_rng(3)
    proteins = rng.poisson(5, size=(40, 3))
    measurement = CellMeasurement(
        "protein_expression", proteins, "protein_names", ["p1", "p2", "p3"]
    )
    ds = populated(
        Ys=[measurement],
        cell_attributes_dict={"barcodes": np.arange(40).astype(str)},
        gene_attributes_dict={"gene_ids": np.arange(12)},
    )
    assert {"protein_expression", "barcodes"} <= ds.cell_attribute_names
    assert "gene_ids" in ds.gene_attribute_names
    assert ds.cell_measurements_columns == {"protein_expression": "protein_names"}
    np.testing.assert_array_equal(ds.protein_names, ["p1", "p2", "p3"])
    ds.update_cells(np.arange(39, -1, -2))
    np.testing.assert_array_equal(ds.protein_expression, proteins[39::-2])
    np.testing.assert_array_equal(ds.barcodes, np.arange(39, -1, -2).astype(str))
    text = repr(ds)
    assert "20 x 12" in text and "protein_expression" in text and "gene_ids" in text
    assert repr(GeneExpressionDataset()) == "GeneExpressionDataset object (unpopulated)"


def test_protected_attribute_names_are_suffixed():
    ds = populated()
    ds.initialize_cell_attribute("X", np.zeros(40))
    ds.initialize_gene_attribute("X", np.zeros(12))
    assert "X_cell" in ds.cell_attribute_names and "X_gene" in ds.gene_attribute_names
    assert ds.X.shape == (40, 12)
    measurement = CellMeasurement("X", np.ones((40, 2)), "cols", ["a", "b"])
    ds.initialize_cell_measurement(measurement)
    assert measurement.name == "X"
    assert ds.cell_measurements_columns["X_cell"] == "cols"


@pytest.mark.parametrize("sparse", [False, True])
def test_collate_matches_direct_indexing(sparse):
    rng = np.random.default_rng(5)
    X = make_counts(50, 9)
    batches = rng.integers(0, 3, size=50)
    labels = rng.integers(0, 4, size=50)
    extra = rng.normal(size=(50, 2))
    ds = GeneExpressionDataset()
    ds.populate_from_data(
        sp_sparse.csr_matrix(X) if sparse else X,
        batch_indices=batches,
        labels=labels,
        cell_attributes_dict={"extra": extra},
    )
    collate = ds.collate_fn_builder({"extra": np.float64})
    indices = np.array([7, 0, 49, 7, 12])
    x, means, variances, batch, label, extra_out = collate(list(indices))
    np.testing.assert_array_equal(x.numpy(), X[indices].astype(np.float32))
    assert x.dtype == torch.float32 and x.shape == (5, 9)
    np.testing.assert_array_equal(means.numpy(), ds.local_means[indices])
    np.testing.assert_array_equal(variances.numpy(), ds.local_vars[indices])
    assert means.dtype == variances.dtype == torch.float32
    np.testing.assert_array_equal(batch.numpy().ravel(), batches[indices])
    np.testing.assert_array_equal(label.numpy().ravel(), labels[indices])
    assert batch.dtype == label.dtype == torch.int64 and batch.shape == (5, 1)
    np.testing.assert_array_equal(extra_out.numpy(), extra[indices])
    assert extra_out.dtype == torch.float64
    only = ds.collate_fn_builder({"labels": np.int64}, override=True)(indices)
    assert len(only) == 1 and only[0].shape == (5, 1)
    assert sp_sparse.issparse(ds.X) == sparse


def test_collate_corrupted_and_missing_attribute():
    ds = populated()
    with pytest.raises(ValueError, match="corrupt"):
        ds.collate_fn_builder(corrupted=True)
    np.random.seed(0)
    ds.corrupt(rate=0.5)
    x = ds.collate_fn_builder(corrupted=True)([0, 1, 2])[0]
    np.testing.assert_array_equal(x.numpy(), ds.corrupted_X[:3])


def test_dataloader_fetches_whole_batches_through_getitems():
    ds = populated(batch_indices=np.repeat([0, 1], 20))
    calls = []
    collate = ds.collate_fn_builder()

    def recording(indices):
        calls.append(list(indices))
        return collate(indices)

    loader = DataLoader(ds, batch_size=16, shuffle=True, collate_fn=recording)
    seen = []
    for x, *_ in loader:
        seen.append(x)
    assert [len(call) for call in calls] == [16, 16, 8]
    assert sorted(sum(calls, [])) == list(range(40))
    np.testing.assert_array_equal(torch.cat(seen).numpy(), ds.X[sum(calls, [])])


def test_subsample_genes_keeps_highest_variance_genes():
    rng = np.random.default_rng(2)
    n_cells = 200
    scales = np.array([0.1, 8.0, 0.5, 20.0, 2.0, 0.2, 12.0, 1.0])
    X = rng.poisson(scales, size=(n_cells, len(scales))) + 1
    ds = GeneExpressionDataset()
    ds.populate_from_data(X, gene_names=[f"g{i}" for i in range(len(scales))])
    variances = X.var(axis=0)
    expected = np.argsort(variances)[::-1][:3]
    assert set(expected) == {1, 3, 6}
    ds.subsample_genes(new_n_genes=3)
    np.testing.assert_array_equal(ds.gene_names, [f"G{i}" for i in expected])
    np.testing.assert_array_equal(ds.X, X[:, expected])
    ds = GeneExpressionDataset()
    ds.populate_from_data(X)
    ds.subsample_genes(new_ratio_genes=0.5)
    np.testing.assert_array_equal(ds.X, X[:, np.argsort(variances)[::-1][:4]])


def test_subsample_genes_explicit_subset_and_no_ops():
    ds = populated(gene_names=[f"g{i}" for i in range(12)])
    ds.subsample_genes(new_n_genes=12)
    ds.subsample_genes(new_ratio_genes=1.5)
    ds.subsample_genes()
    assert ds.nb_genes == 12
    ds.subsample_genes(subset_genes=[5, 2])
    np.testing.assert_array_equal(ds.gene_names, ["G5", "G2"])


def test_update_genes_drops_cells_left_empty():
    X = np.array([[1, 0, 3], [0, 0, 2], [4, 1, 0], [0, 2, 0]])
    ds = GeneExpressionDataset()
    ds.populate_from_data(X, batch_indices=[0, 0, 1, 1], labels=[0, 1, 2, 3])
    ds.update_genes(np.array([True, True, False]))
    np.testing.assert_array_equal(ds.X, [[1, 0], [4, 1], [0, 2]])
    np.testing.assert_array_equal(ds.labels.ravel(), [0, 2, 3])
    means, _ = expected_library(ds.X, ds.batch_indices.ravel())
    np.testing.assert_allclose(ds.local_means.ravel(), means, rtol=1e-6)


def test_subsample_and_filter_cells():
    X = make_counts(40, 12)
    ds = populated(labels=np.arange(40) % 4)
    ds.subsample_cells(10)
    order = np.argsort(X.sum(axis=1))[::-1][:10]
    np.testing.assert_array_equal(ds.X, X[order])
    np.testing.assert_array_equal(ds.labels.ravel(), order % 4)
    ds = populated()
    ds.subsample_cells(0.25)
    assert ds.nb_cells == 10
    ds = populated()
    totals = X.sum(axis=1)
    threshold = np.median(totals)
    ds.filter_cells_by_count(threshold)
    np.testing.assert_array_equal(ds.X, X[totals >= threshold])
    with pytest.raises(ValueError, match="at least one"):
        ds.subsample_cells(0.0)


def test_genes_to_index():
    ds = populated(gene_names=[f"g{i}" for i in range(12)])
    np.testing.assert_array_equal(ds.genes_to_index(["g3", "G1"]), [3, 1])
    np.testing.assert_array_equal(ds.genes_to_index(np.array([4, 0])), [4, 0])
    with pytest.raises(ValueError, match="not found.*NOPE"):
        ds.genes_to_index(["g2", "nope"])


def test_x_setter_recomputes_library_and_checks_shape():
    ds = populated(batch_indices=np.repeat([0, 1], 20))
    new = make_counts(40, 12, seed=9) + 2
    ds.X = new
    means, variances = expected_library(new, ds.batch_indices.ravel())
    np.testing.assert_allclose(ds.local_means.ravel(), means, rtol=1e-6)
    np.testing.assert_allclose(ds.local_vars.ravel(), variances, rtol=1e-5)
    with pytest.raises(ValueError, match="2-dimensional"):
        ds.X = np.ones(40)
    with pytest.raises(ValueError, match="update_cells"):
        ds.X = np.ones((10, 12))
    with pytest.raises(ValueError, match="populate_from_data"):
        GeneExpressionDataset().X = np.ones((3, 3))


@pytest.mark.parametrize("sparse", [False, True])
def test_bad_counts_raise_clear_errors(sparse):
    def build(X):
        GeneExpressionDataset().populate_from_data(
            sp_sparse.csr_matrix(X) if sparse else X
        )

    X = make_counts(10, 5).astype(float)
    X[3, 2] = -1.0
    X[4, 1] = -2.0
    with pytest.raises(ValueError, match=r"2 negative values.*cell 3, gene 2.*raw"):
        build(X)
    X = make_counts(10, 5).astype(float)
    X[6, 4] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN or infinite.*cell 6, gene 4"):
        build(X)
    X[6, 4] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        build(X)


def test_non_integer_counts_warn():
    X = make_counts(10, 5).astype(float) + 0.5
    with pytest.warns(UserWarning, match="50 non-integer.*raw counts"):
        GeneExpressionDataset().populate_from_data(X)


def test_empty_and_mismatched_inputs_raise():
    ds = GeneExpressionDataset()
    with pytest.raises(ValueError, match="empty"):
        ds.populate_from_data(np.zeros((0, 5)))
    with pytest.raises(ValueError, match="empty"):
        ds.populate_from_data(np.zeros((5, 0)))
    X = make_counts(10, 5)
    with pytest.raises(ValueError, match="batch_indices has 9 entries but X has 10"):
        ds.populate_from_data(X, batch_indices=np.zeros(9))
    with pytest.raises(ValueError, match="labels has 11 entries"):
        ds.populate_from_data(X, labels=np.zeros(11))
    with pytest.raises(ValueError, match="gene_names has 4 entries but X has 5 genes"):
        ds.populate_from_data(X, gene_names=list("abcd"))
    with pytest.raises(ValueError, match="cell_types has only 2"):
        ds.populate_from_data(X, labels=np.arange(10) % 3, cell_types=["a", "b"])
    with pytest.raises(ValueError, match="integer codes"):
        ds.populate_from_data(X, batch_indices=np.array(["a", "b"] * 5))
    with pytest.raises(ValueError, match="2-dimensional"):
        ds.populate_from_data(np.ones(5))
    assert ds.X is None and len(ds) == 0


def test_cells_without_counts_are_kept_with_a_warning(caplog):
    X = make_counts(10, 5) + 1
    X[2] = 0
    ds = GeneExpressionDataset()
    with caplog.at_level(logging.WARNING, logger="scvi"):
        ds.populate_from_data(X)
    assert "1 of 10 cells have no counts" in caplog.text
    ds.filter_cells_by_count()
    assert ds.nb_cells == 9


def test_inputs_are_not_modified():
    X = make_counts(20, 6)
    labels = np.arange(20) % 3
    cell_types = ["a", "b", "c"]
    gene_names = [f"g{i}" for i in range(6)]
    copies = X.copy(), labels.copy(), list(cell_types), list(gene_names)
    ds = GeneExpressionDataset()
    ds.populate_from_data(
        X, labels=labels, cell_types=cell_types, gene_names=gene_names
    )
    ds.merge_cell_types(["a", "b"], "ab")
    ds.corrupt(rate=0.5)
    ds.normalize()
    ds.subsample_genes(new_n_genes=3)
    np.testing.assert_array_equal(X, copies[0])
    np.testing.assert_array_equal(labels, copies[1])
    assert cell_types == copies[2] and gene_names == copies[3]


def test_mapped_attribute_validation():
    ds = populated(labels=np.arange(40) % 3, cell_types=["a", "b", "c"])
    with pytest.raises(ValueError, match="only 2 entries"):
        ds.initialize_mapped_attribute("labels", "short", ["x", "y"])
    ds.initialize_cell_attribute("names", np.array(["u"] * 40))
    with pytest.raises(ValueError, match="integer codes"):
        ds.initialize_mapped_attribute("names", "m", ["x"])
    with pytest.raises(ValueError, match="has 3 entries but the dataset has 40"):
        ds.initialize_cell_attribute("bad", [1, 2, 3])
    with pytest.raises(ValueError, match="has 2 entries but the dataset has 12"):
        ds.initialize_gene_attribute("bad", [1, 2])


def test_remap_categories_function():
    codes, n = remap_categories(np.array([10, 3, 10, 7]))
    np.testing.assert_array_equal(codes, [2, 0, 2, 1])
    assert n == 3 and codes.dtype == np.uint16
    codes, n, mappings = remap_categories(
        np.array([2, 0, 2]),
        mapping_from=[0, 1, 2],
        mapping_to=[1, 2, 0],
        mappings_dict={"names": np.array(["zero", "one", "two"])},
    )
    np.testing.assert_array_equal(codes, [0, 1, 0])
    np.testing.assert_array_equal(mappings["names"], ["two", "zero", "one"])
    codes, _ = remap_categories(["b", "a", "b"])
    np.testing.assert_array_equal(codes, [1, 0, 1])
    with pytest.raises(ValueError, match="not listed"):
        remap_categories(np.array([0, 5]), mapping_from=[0, 1], mapping_to=[1, 0])
    with pytest.raises(ValueError, match="Length|mapping_to has"):
        remap_categories(np.array([0, 1]), mapping_from=[0, 1], mapping_to=[0])


def test_concatenate_arrays():
    a = np.arange(6).reshape(2, 3)
    b = np.arange(3).reshape(1, 3)
    dense = concatenate_arrays([a, b])
    assert isinstance(dense, np.ndarray)
    np.testing.assert_array_equal(dense, np.vstack([a, b]))
    mixed = concatenate_arrays([a, sp_sparse.csc_matrix(b)])
    assert sp_sparse.isspmatrix_csr(mixed)
    np.testing.assert_array_equal(mixed.toarray(), np.vstack([a, b]))


def test_index_validation_of_update_methods():
    ds = populated()
    with pytest.raises(ValueError, match="length 3, expected 40"):
        ds.update_cells(np.array([True, False, True]))
    with pytest.raises(ValueError, match="out of range"):
        ds.update_genes(np.array([0, 12]))
    with pytest.raises(ValueError, match="No cell would remain"):
        ds.update_cells(np.zeros(40, dtype=bool))
    with pytest.raises(ValueError, match="No gene would remain"):
        ds.update_genes(np.zeros(12, dtype=bool))
    assert ds.nb_cells == 40 and ds.nb_genes == 12
