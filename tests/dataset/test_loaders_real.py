"""The real datasets of ``../shared/data/real`` through ``AnnDatasetFromAnnData``.

Labels, batches and protein measurements must come through intact, and back again
through ``to_anndata``.
"""

import anndata
import numpy as np
import pytest
import scipy.sparse as sp_sparse

from scvi.dataset import AnnDatasetFromAnnData


def read(shared_data, name):
    return anndata.read_h5ad(shared_data / "real" / name)


def dense(matrix):
    return matrix.toarray() if sp_sparse.issparse(matrix) else np.asarray(matrix)


def cell_type_names(ds):
    return np.asarray(ds.cell_types)[ds.labels.ravel()]


@pytest.mark.parametrize("name", ["cbmc_cite_8617.h5ad", "pbmc10k_cite_6855.h5ad"])
def test_cite_seq_proteins_and_labels(shared_data, tmp_path, name):
    ad = read(shared_data, name)
    kept = np.asarray(ad.X.sum(axis=1)).ravel() > 0
    ds = AnnDatasetFromAnnData(ad, ctype_label="cell_type")
    assert ds.nb_cells == kept.sum() and ds.nb_genes == ad.n_vars
    np.testing.assert_array_equal(dense(ds.X), ad.X[kept].toarray())
    np.testing.assert_array_equal(
        ds.protein_expression, ad.obsm["protein_expression"][kept]
    )
    np.testing.assert_array_equal(ds.protein_names, ad.uns["protein_names"])
    assert ds.cell_measurements_columns == {"protein_expression": "protein_names"}
    if "cell_type" in ad.obs:
        np.testing.assert_array_equal(
            cell_type_names(ds), ad.obs["cell_type"].astype(str)[kept]
        )
    # and back: proteins, labels and cell types survive an h5ad round trip
    ds.update_cells(np.arange(300))
    ds.to_anndata().write_h5ad(tmp_path / "back.h5ad")
    back = AnnDatasetFromAnnData(anndata.read_h5ad(tmp_path / "back.h5ad"))
    np.testing.assert_array_equal(back.protein_expression, ds.protein_expression)
    np.testing.assert_array_equal(back.protein_names, ds.protein_names)
    np.testing.assert_array_equal(dense(back.X), dense(ds.X))
    np.testing.assert_array_equal(cell_type_names(back), cell_type_names(ds))


@pytest.mark.parametrize(
    "name, ctype",
    [("ifnb_2800_2batch.h5ad", "cell_type"), ("pbmc10k_pbmc5k_2batch.h5ad", None)],
)
def test_two_batch_datasets(shared_data, name, ctype):
    ad = read(shared_data, name)
    ds = AnnDatasetFromAnnData(
        ad, batch_label="batch", ctype_label=ctype or "cell_types"
    )
    kept = np.asarray(ad.X.sum(axis=1)).ravel() > 0
    assert ds.n_batches == 2
    codes = ad.obs["batch"].cat.codes.to_numpy()[kept]
    np.testing.assert_array_equal(ds.batch_indices.ravel(), codes)
    assert ds.X.shape == (kept.sum(), ad.n_vars)
    assert dense(ds.X[:50]).sum() == ad.X[kept][:50].sum()
    if ctype is not None:
        np.testing.assert_array_equal(
            cell_type_names(ds), ad.obs[ctype].astype(str)[kept]
        )


def test_osmfish_labels(shared_data):
    ad = read(shared_data, "osmfish_4530.h5ad")
    ds = AnnDatasetFromAnnData(ad, ctype_label="cell_type")
    kept = np.asarray(ad.X.sum(axis=1)).ravel() > 0
    np.testing.assert_array_equal(
        cell_type_names(ds), ad.obs["cell_type"].astype(str)[kept]
    )
    np.testing.assert_array_equal(ds.obsm["spatial"], ad.obsm["spatial"][kept])
    assert ds.n_labels == 6
