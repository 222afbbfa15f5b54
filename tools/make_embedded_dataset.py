"""Build ``scvi/data/pbmc8k_200genes.npz`` from the shared real dataset.

Run from the repository root::

    python tools/make_embedded_dataset.py ../shared/data/real/pbmc8k_200genes.h5ad

The source is the 10x Genomics PBMC 8k dataset (7,480 cells, the 200 genes kept by
maren-ha/scVI.jl @ 28963f7b : data/pbmc.h5ad) with its 8 annotated cell types.
The counts are stored exactly (CSR, integer) and compressed.
"""

import sys

import anndata
import numpy as np
import scipy.sparse as sp


def main(path: str, out: str = "scvi/data/pbmc8k_200genes.npz") -> None:
    adata = anndata.read_h5ad(path)
    X = sp.csr_matrix(adata.X)
    if not np.all(X.data == np.round(X.data)) or X.data.max() > np.iinfo(np.uint16).max:
        raise ValueError("expected integer counts below 65536")
    np.savez_compressed(
        out,
        data=X.data.astype(np.uint16),
        indices=X.indices.astype(np.uint16),
        indptr=X.indptr.astype(np.int64),
        shape=np.asarray(X.shape, dtype=np.int64),
        gene_names=np.asarray(adata.var_names, dtype=str),
        cell_types=np.asarray(adata.obs["cell_type"].astype(str), dtype=str),
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
