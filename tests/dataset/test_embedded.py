"""The PBMC dataset shipped inside the package."""

import anndata
import numpy as np

from scvi.dataset import EmbeddedPbmcDataset


def test_embedded_pbmc_matches_shared_h5ad(shared_data):
    ds = EmbeddedPbmcDataset(save_path="ignored")
    assert (ds.nb_cells, ds.nb_genes) == (7480, 200)
    assert ds.n_labels == 8 and ds.n_batches == 1
    assert len(ds.cell_types) == 8
    assert list(ds.cell_types) == sorted(ds.cell_types)
    assert "CD8+ T-cells" in ds.cell_types
    source = anndata.read_h5ad(shared_data / "real" / "pbmc8k_200genes.h5ad")
    np.testing.assert_array_equal(ds.X, source.X.toarray())
    np.testing.assert_array_equal(
        ds.cell_types[ds.labels.ravel()], source.obs["cell_type"].astype(str)
    )
    np.testing.assert_array_equal(
        ds.gene_names, np.char.upper(source.var_names.to_numpy().astype(str))
    )
    counts = np.bincount(ds.labels.ravel())
    assert counts[list(ds.cell_types).index("CD8+ T-cells")] == 2740
    log_library = np.log(source.X.sum(axis=1).A1.astype(np.float64))
    np.testing.assert_allclose(ds.local_means, log_library.mean(), rtol=1e-6)
    np.testing.assert_allclose(ds.local_vars, log_library.var(), rtol=1e-5)
