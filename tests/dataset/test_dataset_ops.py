"""GeneExpressionDataset operations beyond the core: merging, filters, cell types,
normalization, corruption and count summaries."""

import numpy as np
import pytest
import scipy.sparse as sp_sparse

from scvi.dataset import CellMeasurement, GeneExpressionDataset


def counts(n_cells, n_genes, seed=0):
    rng = np.random.default_rng(seed)
    return rng.poisson(3.0, size=(n_cells, n_genes)) + (rng.random((n_cells, 1)) < 2)


def dataset(n_cells=30, n_genes=8, seed=0, **kwargs):
    ds = GeneExpressionDataset()
    ds.populate_from_data(counts(n_cells, n_genes, seed), **kwargs)
    return ds


def dense(array):
    return array.toarray() if sp_sparse.issparse(array) else np.asarray(array)


@pytest.mark.parametrize("sparse", [False, True])
def test_populate_from_per_batch_list(sparse):
    blocks = [counts(5, 4, 1), counts(3, 4, 2), counts(4, 4, 3)]
    Xs = [sp_sparse.csr_matrix(b) for b in blocks] if sparse else blocks
    labels = [np.array([0, 1, 0, 1, 0]), np.array([2, 2, 2]), np.array([1, 0, 1, 0])]
    ds = GeneExpressionDataset()
    ds.populate_from_per_batch_list(
        Xs, labels_per_batch=labels, gene_names=list("abcd"), cell_types=["x", "y", "z"]
    )
    np.testing.assert_array_equal(dense(ds.X), np.vstack(blocks))
    np.testing.assert_array_equal(ds.batch_indices.ravel(), [0] * 5 + [1] * 3 + [2] * 4)
    np.testing.assert_array_equal(ds.labels.ravel(), np.concatenate(labels))
    np.testing.assert_array_equal(ds.cell_types, ["x", "y", "z"])
    with pytest.raises(ValueError, match="same number of genes.*\\[4, 3\\]"):
        ds.populate_from_per_batch_list([counts(2, 4), counts(2, 3)])


def test_populate_from_per_label_list():
    blocks = [counts(4, 5, 1), counts(6, 5, 2)]
    ds = GeneExpressionDataset()
    ds.populate_from_per_label_list(
        blocks,
        batch_indices_per_label=[[0, 1, 0, 1], [1] * 6],
        gene_names=list("abcde"),
    )
    np.testing.assert_array_equal(ds.labels.ravel(), [0] * 4 + [1] * 6)
    np.testing.assert_array_equal(ds.batch_indices.ravel(), [0, 1, 0, 1] + [1] * 6)
    assert ds.cell_types is None
    with pytest.raises(ValueError, match="Xs is empty"):
        ds.populate_from_per_label_list([])


def two_datasets():
    a = GeneExpressionDataset()
    a.populate_from_data(
        counts(6, 4, 1),
        batch_indices=[0, 1, 0, 1, 0, 1],
        labels=[0, 1, 1, 0, 2, 2],
        gene_names=["g1", "g2", "g3", "g4"],
        cell_types=["T", "B", "NK"],
        Ys=[
            CellMeasurement(
                "prot", np.arange(18).reshape(6, 3), "prot_names", ["p3", "p1", "p2"]
            )
        ],
        cell_attributes_dict={"barcode": [f"a{i}" for i in range(6)]},
        gene_attributes_dict={"chrom": ["1", "2", "3", "4"]},
    )
    b = GeneExpressionDataset()
    b.populate_from_data(
        sp_sparse.csr_matrix(counts(5, 3, 2)),
        labels=[0, 1, 0, 1, 1],
        gene_names=["g4", "g9", "g2"],
        cell_types=["Mono", "T"],
        Ys=[
            CellMeasurement(
                "prot", 100 + np.arange(10).reshape(5, 2), "prot_names", ["p1", "p3"]
            )
        ],
        cell_attributes_dict={"barcode": [f"b{i}" for i in range(5)]},
        gene_attributes_dict={"chrom": ["X", "Y", "Z"]},
    )
    return a, b


def test_populate_from_datasets_shared_labels():
    a, b = two_datasets()
    a_X, b_X = a.X.copy(), b.X.toarray()
    merged = GeneExpressionDataset()
    merged.populate_from_datasets([a, b])
    np.testing.assert_array_equal(merged.gene_names, ["G2", "G4"])
    assert sp_sparse.issparse(merged.X)
    expected_X = np.vstack([a_X[:, [1, 3]], b_X[:, [2, 0]]])
    np.testing.assert_array_equal(merged.X.toarray(), expected_X)
    names = merged.cell_types[merged.labels.ravel()]
    np.testing.assert_array_equal(
        names, ["T", "B", "B", "T", "NK", "NK", "Mono", "T", "Mono", "T", "T"]
    )
    np.testing.assert_array_equal(
        merged.batch_indices.ravel(), [0, 1, 0, 1, 0, 1, 2, 2, 2, 2, 2]
    )
    assert merged.n_batches == 3
    np.testing.assert_array_equal(merged.prot_names, ["p1", "p3"])
    np.testing.assert_array_equal(
        merged.prot[:6], np.arange(18).reshape(6, 3)[:, [1, 0]]
    )
    np.testing.assert_array_equal(merged.prot[6:], 100 + np.arange(10).reshape(5, 2))
    np.testing.assert_array_equal(merged.barcode[[0, 6]], ["a0", "b0"])
    np.testing.assert_array_equal(merged.chrom, ["2", "4"])
    totals = expected_X.sum(axis=1)
    batches = merged.batch_indices.ravel()
    for batch in range(3):
        logs = np.log(totals[batches == batch])
        np.testing.assert_allclose(
            merged.local_means[batches == batch], logs.mean(), rtol=1e-6
        )
    assert a.nb_genes == 4 and b.nb_genes == 3
    np.testing.assert_array_equal(a.X, a_X)
    np.testing.assert_array_equal(b.X.toarray(), b_X)


def test_populate_from_datasets_offset_labels_and_errors():
    a, b = two_datasets()
    merged = GeneExpressionDataset()
    merged.populate_from_datasets([a, b], shared_labels=False)
    np.testing.assert_array_equal(
        merged.labels.ravel(), [0, 1, 1, 0, 2, 2, 3, 4, 3, 4, 4]
    )
    np.testing.assert_array_equal(merged.cell_types, ["T", "B", "NK", "Mono", "T"])
    c = GeneExpressionDataset()
    c.populate_from_data(counts(3, 2), gene_names=["other", "genes"])
    with pytest.raises(ValueError, match="no gene name in common"):
        merged.populate_from_datasets([a, c])
    d = GeneExpressionDataset()
    d.populate_from_data(counts(3, 4))
    with pytest.raises(ValueError, match="gene_names"):
        merged.populate_from_datasets([a, d])


def test_gene_filters_and_reordering():
    X = np.array([[0, 5, 1, 0], [0, 3, 0, 2], [0, 1, 0, 0]])
    ds = GeneExpressionDataset()
    ds.populate_from_data(X, gene_names=["a", "b", "c", "d"])
    ds.normalize()
    ds.filter_genes_by_count(min_count=2)
    np.testing.assert_array_equal(ds.gene_names, ["B", "D"])
    np.testing.assert_array_equal(ds.X, X[:, [1, 3]])
    assert ds.norm_X.shape == (3, 2)
    ds = GeneExpressionDataset()
    ds.populate_from_data(X, gene_names=["a", "b", "c", "d"])
    ds.filter_genes_by_attribute(["c", "D"])
    np.testing.assert_array_equal(ds.gene_names, ["C", "D"])
    assert ds.nb_cells == 2
    with pytest.raises(ValueError, match="not a registered gene attribute"):
        ds.filter_genes_by_attribute([1], on="nope")
    ds = GeneExpressionDataset()
    ds.populate_from_data(X, gene_names=["a", "b", "c", "d"])
    ds.reorder_genes(["d", "b"])
    np.testing.assert_array_equal(ds.gene_names, ["D", "B", "A", "C"])
    np.testing.assert_array_equal(ds.X, X[:, [3, 1, 0, 2]])
    ds.reorder_genes(["c"], drop_omitted_genes=True)
    np.testing.assert_array_equal(ds.X, X[:, [2]])
    with pytest.raises(ValueError, match="not found"):
        ds.reorder_genes(["zzz"])


def test_cell_filters():
    ds = dataset(
        labels=np.arange(30) % 3,
        cell_types=["a", "b", "c"],
        batch_indices=np.arange(30) % 2,
    )
    X = ds.X.copy()
    ds.filter_cells_by_attribute([1], on="batch_indices")
    np.testing.assert_array_equal(ds.X, X[1::2])
    assert ds.n_batches == 1
    ds = dataset(labels=np.arange(30) % 3, cell_types=["a", "b", "c"])
    ds.filter_cell_types(["c", "a"])
    np.testing.assert_array_equal(ds.X, X[np.arange(30) % 3 != 1])
    assert ds.n_labels == 2
    ds = dataset(labels=np.arange(30) % 3, cell_types=["a", "b", "c"])
    ds.filter_cell_types(np.array([1]))
    assert ds.nb_cells == 10
    with pytest.raises(ValueError, match="Unknown cell type 'q'"):
        ds.filter_cell_types(["q"])
    with pytest.raises(ValueError, match="not a registered cell attribute"):
        ds.filter_cells_by_attribute([0], on="nope")
    with pytest.raises(ValueError, match="names .str. or labels .int."):
        ds.filter_cell_types([0.5])


def test_cell_type_relabelling():
    labels = np.arange(30) % 4
    ds = dataset(labels=labels, cell_types=["a", "b", "c", "d"])
    np.testing.assert_array_equal(ds.cell_types_to_labels(["c", "a"]), [2, 0])
    ds.map_cell_types({("a", "c"): "ac", "d": "dd"})
    np.testing.assert_array_equal(
        ds.cell_types, ["a#merged", "b", "c#merged", "d#merged", "ac", "dd"]
    )
    np.testing.assert_array_equal(ds.labels.ravel(), np.array([4, 1, 4, 5])[labels])
    ds.remap_categorical_attributes()
    np.testing.assert_array_equal(ds.cell_types, ["b", "ac", "dd"])
    assert ds.n_labels == 3
    ds.reorder_cell_types(["dd"])
    np.testing.assert_array_equal(ds.cell_types, ["dd", "b", "ac"])
    np.testing.assert_array_equal(
        ds.cell_types[ds.labels.ravel()], np.array(["ac", "b", "ac", "dd"])[labels]
    )
    ds.merge_cell_types([0, 2], "new")
    np.testing.assert_array_equal(
        ds.cell_types[ds.labels.ravel()], np.array(["new", "b", "new", "new"])[labels]
    )
    with pytest.raises(ValueError, match="Unknown cell types"):
        ds.reorder_cell_types(["zz"])
    with pytest.raises(ValueError, match="No cell types"):
        ds.merge_cell_types([], "x")
    with pytest.raises(ValueError, match="out of range"):
        ds.merge_cell_types([17], "x")


@pytest.mark.parametrize("sparse", [False, True])
def test_normalize_and_raw_counts_properties(sparse):
    X = counts(20, 6).astype(float)
    ds = GeneExpressionDataset()
    ds.populate_from_data(sp_sparse.csr_matrix(X) if sparse else X)
    ds.normalize()
    assert sp_sparse.issparse(ds.norm_X) == sparse
    expected_norm = X / X.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(dense(ds.norm_X), expected_norm, rtol=1e-6)
    assert "norm_X" in ds.dataset_versions
    idx1, idx2 = np.arange(0, 8), np.arange(8, 20)
    mean1, mean2, nonz1, nonz2, norm1, norm2 = ds.raw_counts_properties(idx1, idx2)
    np.testing.assert_allclose(mean1, X[idx1].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(mean2, X[idx2].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(nonz1, (X[idx1] > 0).mean(axis=0))
    np.testing.assert_allclose(nonz2, (X[idx2] > 0).mean(axis=0))
    np.testing.assert_allclose(norm1, expected_norm[idx1].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(norm2, expected_norm[idx2].mean(axis=0), rtol=1e-5)
    ds.update_cells(idx2)
    np.testing.assert_allclose(dense(ds.norm_X), expected_norm[idx2], rtol=1e-6)


@pytest.mark.parametrize("sparse", [False, True])
def test_corrupt_uniform_and_binomial(sparse):
    X = counts(200, 20, 4)
    ds = GeneExpressionDataset()
    ds.populate_from_data(sp_sparse.csr_matrix(X) if sparse else X)
    np.random.seed(5)
    ds.corrupt(rate=0.5, corruption="uniform")
    corrupted = dense(ds.corrupted_X)
    changed = corrupted != X
    assert np.all(corrupted[changed] == 0) and np.all(X[changed] > 0)
    n_chosen = int(np.floor(0.5 * np.count_nonzero(X)))
    assert abs(changed.sum() / n_chosen - 0.1) < 0.02
    np.random.seed(5)
    ds.corrupt(rate=0.3, corruption="binomial")
    corrupted = dense(ds.corrupted_X)
    changed = corrupted != X
    assert np.all(corrupted <= X)
    n_chosen = int(np.floor(0.3 * X.size))
    # a chosen count n changes unless Binomial(n, 0.2) == n (probability 0.2**n)
    assert abs(changed.sum() / n_chosen - (1 - np.mean(0.2**X))) < 0.03
    np.testing.assert_array_equal(dense(ds.X), X)
    with pytest.raises(ValueError, match="Unknown corruption"):
        ds.corrupt(corruption="gaussian")
    with pytest.raises(ValueError, match="rate"):
        ds.corrupt(rate=1.5)


def test_corrupt_dense_and_sparse_draw_identically():
    X = counts(50, 10, 7)
    results = []
    for sparse in (False, True):
        ds = GeneExpressionDataset()
        ds.populate_from_data(sp_sparse.csr_matrix(X) if sparse else X)
        for corruption in ("uniform", "binomial"):
            np.random.seed(11)
            ds.corrupt(rate=0.25, corruption=corruption)
            results.append(dense(ds.corrupted_X))
    np.testing.assert_array_equal(results[0], results[2])
    np.testing.assert_array_equal(results[1], results[3])
