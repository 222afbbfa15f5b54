"""AnnData conversion in both directions."""

import shutil

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp_sparse

from scvi.dataset import (
    AnnDatasetFromAnnData,
    CellMeasurement,
    DownloadableAnnDataset,
    GeneExpressionDataset,
)
from scvi.dataset.anndataset import extract_data_from_anndata


@pytest.fixture(scope="module")
def pbmc(shared_data):
    return anndata.read_h5ad(shared_data / "real" / "pbmc8k_200genes.h5ad")


def small_anndata(sparse=True):
    rng = np.random.default_rng(0)
    X = rng.poisson(2.0, size=(12, 5)).astype(np.float32)
    X[3] = 0
    obs = pd.DataFrame(
        {
            "batch": pd.Categorical(["s2", "s1", "s2"] * 4),
            "kind": pd.Categorical(
                ["T", "B", "NK", "T"] * 3, categories=["T", "NK", "B", "unused"]
            ),
            "score": np.arange(12.0),
        },
        index=[f"c{i}" for i in range(12)],
    )
    var = pd.DataFrame(index=[f"gene{i}" for i in range(5)])
    return anndata.AnnData(
        X=sp_sparse.csr_matrix(X) if sparse else X,
        obs=obs,
        var=var,
        obsm={"coords": rng.normal(size=(12, 2))},
    )


def test_pbmc_round_trip(pbmc):
    ds = AnnDatasetFromAnnData(pbmc, ctype_label="cell_type")
    assert (ds.nb_cells, ds.nb_genes) == (7480, 200)
    assert sp_sparse.isspmatrix_csr(ds.X)
    np.testing.assert_array_equal(ds.X.toarray(), pbmc.X.toarray())
    np.testing.assert_array_equal(
        ds.gene_names, np.char.upper(pbmc.var_names.to_numpy().astype(str))
    )
    names = pbmc.obs["cell_type"].astype(str).to_numpy()
    assert len(ds.cell_types) == ds.n_labels == 8
    np.testing.assert_array_equal(ds.cell_types[ds.labels.ravel()], names)
    assert ds.n_batches == 1
    back = ds.to_anndata()
    np.testing.assert_array_equal(back.X.toarray(), pbmc.X.toarray())
    np.testing.assert_array_equal(back.obs["cell_types"].astype(str), names)
    np.testing.assert_array_equal(back.obs["labels"], ds.labels.ravel())
    np.testing.assert_array_equal(back.var_names, ds.gene_names)
    again = AnnDatasetFromAnnData(back)
    np.testing.assert_array_equal(again.X.toarray(), ds.X.toarray())
    np.testing.assert_array_equal(again.labels, ds.labels)
    np.testing.assert_array_equal(again.cell_types, ds.cell_types)
    np.testing.assert_array_equal(again.local_means, ds.local_means)


def test_labels_come_from_obs_and_empty_cells_are_dropped():
    ad = small_anndata()
    ds = AnnDatasetFromAnnData(ad, batch_label="batch", ctype_label="kind")
    kept = np.asarray(ad.X.sum(axis=1)).ravel() > 0
    assert ds.nb_cells == kept.sum() == 11
    np.testing.assert_array_equal(ds.cell_types, ["T", "NK", "B"])
    np.testing.assert_array_equal(
        ds.cell_types[ds.labels.ravel()], ad.obs["kind"].astype(str).to_numpy()[kept]
    )
    np.testing.assert_array_equal(
        ds.batch_indices.ravel(), (ad.obs["batch"] == "s2").to_numpy()[kept].astype(int)
    )
    assert list(ds.obs.index) == [f"c{i}" for i in range(12) if i != 3]
    np.testing.assert_array_equal(ds.obsm["coords"], ad.obsm["coords"][kept])
    assert ad.n_obs == 12


def test_integer_labels_with_cell_type_names():
    ad = small_anndata(sparse=False)
    ad.obs["labels"] = ad.obs["kind"].map({"T": 5, "B": 1, "NK": 3}).astype(int)
    ds = AnnDatasetFromAnnData(ad, ctype_label="kind")
    kept = np.arange(12) != 3
    np.testing.assert_array_equal(ds.cell_types, ["B", "NK", "T"])
    np.testing.assert_array_equal(
        ds.cell_types[ds.labels.ravel()], ad.obs["kind"].astype(str).to_numpy()[kept]
    )
    ad.obs["labels"] = np.arange(12) % 2
    with pytest.warns(UserWarning, match="disagree"):
        ds = AnnDatasetFromAnnData(ad, ctype_label="kind")
    np.testing.assert_array_equal(ds.cell_types, ["T", "NK", "B"])


def test_labels_without_cell_types():
    ad = small_anndata()
    ad.obs["labels"] = np.arange(12) % 3 + 2
    ds = AnnDatasetFromAnnData(ad)
    np.testing.assert_array_equal(
        ds.labels.ravel(), (np.arange(12) % 3)[np.arange(12) != 3]
    )
    assert ds.cell_types is None
    ad.obs["labels"] = pd.Categorical(["x", "y"] * 6)
    ds = AnnDatasetFromAnnData(ad)
    np.testing.assert_array_equal(ds.cell_types, ["x", "y"])


def test_missing_annotation_values_raise():
    ad = small_anndata()
    ad.obs["kind"] = ad.obs["kind"].astype(object)
    ad.obs.loc["c1", "kind"] = np.nan
    with pytest.raises(ValueError, match="'kind' has 1 missing"):
        AnnDatasetFromAnnData(ad, ctype_label="kind")


def test_extract_data_from_anndata():
    ad = small_anndata()
    result = extract_data_from_anndata(ad, batch_label="batch", ctype_label="kind")
    X, batch_indices, labels, gene_names, cell_types, obs, obsm, var, varm, uns = result
    assert sp_sparse.isspmatrix_csr(X)
    np.testing.assert_array_equal(X.toarray(), ad.X.toarray())
    np.testing.assert_array_equal(gene_names, [f"gene{i}" for i in range(5)])
    np.testing.assert_array_equal(batch_indices, [1, 0, 1] * 4)
    np.testing.assert_array_equal(cell_types[labels], ad.obs["kind"].astype(str))
    assert obs is ad.obs and var is ad.var
    # the caller's matrix is copied, never shared
    X.data[:] = -1
    assert ad.X.data.min() >= 0


def test_to_anndata_keeps_sparsity_and_annotations(tmp_path):
    rng = np.random.default_rng(1)
    X = sp_sparse.random(20, 6, density=0.5, format="csr", random_state=1) * 10
    X.data = np.ceil(X.data)
    ds = GeneExpressionDataset()
    ds.populate_from_data(
        X,
        batch_indices=np.arange(20) % 2,
        labels=np.arange(20) % 3,
        gene_names=[f"g{i}" for i in range(6)],
        cell_types=["a", "b", "c"],
        cell_attributes_dict={"size_factor": rng.uniform(size=20)},
        gene_attributes_dict={"gene_ids": np.arange(6) * 10},
        Ys=[
            CellMeasurement(
                "protein_expression",
                rng.poisson(3, (20, 2)),
                "protein_names",
                ["p", "q"],
            )
        ],
    )
    ad = ds.to_anndata()
    assert sp_sparse.issparse(ad.X)
    np.testing.assert_array_equal(ad.X.toarray(), X.toarray())
    np.testing.assert_array_equal(ad.obs["batch_indices"], np.arange(20) % 2)
    np.testing.assert_array_equal(
        ad.obs["cell_types"].astype(str), np.array(["a", "b", "c"])[np.arange(20) % 3]
    )
    np.testing.assert_array_equal(ad.obs["size_factor"], ds.size_factor)
    np.testing.assert_array_equal(ad.var["gene_ids"], np.arange(6) * 10)
    np.testing.assert_array_equal(ad.obsm["protein_expression"], ds.protein_expression)
    np.testing.assert_array_equal(ad.uns["protein_names"], ["p", "q"])
    ad.X.data[:] = 0
    assert ds.X.data.max() > 0
    path = tmp_path / "out.h5ad"
    ad = ds.to_anndata()
    ad.write_h5ad(path)
    back = AnnDatasetFromAnnData(anndata.read_h5ad(path))
    np.testing.assert_array_equal(back.X.toarray(), X.toarray())
    np.testing.assert_array_equal(back.labels, ds.labels)
    np.testing.assert_array_equal(back.batch_indices, ds.batch_indices)
    with pytest.raises(ValueError, match="populate"):
        GeneExpressionDataset().to_anndata()


@pytest.mark.filterwarnings("ignore:.*(very old version|without encoding metadata)")
def test_downloadable_anndataset_reads_local_file(tmp_path, shared_data):
    source = shared_data / "scvi05_fixtures" / "TM_droplet_mat.h5ad"
    shutil.copy(source, tmp_path)
    ds = DownloadableAnnDataset("TM_droplet_mat.h5ad", save_path=str(tmp_path))
    expected = anndata.read_h5ad(source)
    totals = np.asarray(expected.X.sum(axis=1)).ravel()
    np.testing.assert_array_equal(ds.X.toarray(), expected.X.toarray()[totals >= 1])
    np.testing.assert_array_equal(
        ds.gene_names, np.char.upper(expected.var_names.to_numpy().astype(str))
    )
    delayed = DownloadableAnnDataset(
        "TM_droplet_mat.h5ad", save_path=str(tmp_path), delayed_populating=True
    )
    assert delayed.X is None
