"""Write ``golden/dataset_oracle.npz`` with the ORIGINAL scVI 0.5.0 (the oracle).

Run from outside the repository, with the oracle environment::

    cd /tmp && /tmp/scvi05/bin/python /work/main/tests/dataset/make_dataset_golden.py \
        /work/shared/data

The file holds small inputs and the oracle's outputs for the dataset operations that
tests/dataset/test_oracle_parity.py replays with this package.
"""

import os
import shutil
import sys
import tempfile

import numpy as np
import scipy.sparse as sp_sparse

from scvi.dataset import (
    GeneExpressionDataset,
    SyntheticDataset,
    SyntheticDatasetCorr,
    SyntheticRandomDataset,
    ZISyntheticDatasetCorr,
)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")


def counts(seed: int, n_cells: int, n_genes: int) -> np.ndarray:
    state = np.random.RandomState(seed)
    rates = state.gamma(0.7, 3.0, size=(1, n_genes)) * state.gamma(
        4.0, 0.25, size=(n_cells, 1)
    )
    return state.poisson(rates).astype(np.int64)


def main(shared_data: str) -> None:
    golden = {}

    np.random.seed(0)
    ds = SyntheticDataset(
        batch_size=20, nb_genes=15, n_proteins=4, n_batches=2, n_labels=3
    )
    for name in ("X", "labels", "batch_indices", "local_means", "local_vars"):
        golden[f"synthetic_{name}"] = np.asarray(getattr(ds, name))
    golden["synthetic_protein_expression"] = ds.protein_expression
    golden["synthetic_cell_types"] = np.asarray(ds.cell_types, dtype=str)

    corr = SyntheticDatasetCorr(
        n_cells_cluster=10, n_clusters=3, n_genes_high=5, n_overlap=1
    )
    golden["corr_X"] = corr.X
    golden["corr_labels"] = corr.labels
    zi = ZISyntheticDatasetCorr(n_cells_cluster=10, n_clusters=3, n_genes_high=5)
    golden["zi_X"] = zi.X
    golden["zi_high"] = zi.probas_zero_bio_tech_high
    golden["zi_low"] = zi.probas_zero_bio_tech_low

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(
            os.path.join(shared_data, "scvi05_fixtures", "random_metadata.pickle"), tmp
        )
        rnd = SyntheticRandomDataset(save_path=tmp)
        golden["random_X"] = rnd.X.astype(np.uint8)
        golden["random_labels"] = rnd.labels
        golden["random_local_means"] = rnd.local_means

    X = counts(1, 60, 25)
    X[5] = 0
    batches = np.repeat([2, 0, 1], 20)
    labels = np.tile([4, 0, 2, 0, 4, 9], 10)
    cell_types = np.array([f"t{i}" for i in range(10)])
    gene_names = np.array([f"g{i}" for i in range(25)])
    golden["input_X"] = X
    golden["input_batches"] = batches
    golden["input_labels"] = labels

    def fresh(sparse: bool = False) -> GeneExpressionDataset:
        d = GeneExpressionDataset()
        d.populate_from_data(
            sp_sparse.csr_matrix(X) if sparse else X,
            batch_indices=batches,
            labels=labels,
            gene_names=gene_names,
            cell_types=cell_types,
        )
        return d

    d = fresh()
    golden["populate_local_means"] = d.local_means
    golden["populate_local_vars"] = d.local_vars
    golden["populate_labels"] = d.labels
    golden["populate_batches"] = d.batch_indices
    golden["populate_cell_types"] = np.asarray(d.cell_types, dtype=str)

    for sparse in (False, True):
        d = fresh(sparse)
        d.subsample_genes(new_n_genes=8)
        key = "sparse" if sparse else "dense"
        golden[f"subsample_genes_{key}_names"] = np.asarray(d.gene_names, dtype=str)
        golden[f"subsample_genes_{key}_n_cells"] = np.asarray(d.nb_cells)
    d = fresh()
    d.subsample_genes(new_ratio_genes=0.5)
    golden["subsample_ratio_names"] = np.asarray(d.gene_names, dtype=str)

    d = fresh()
    d.subsample_cells(size=0.5)
    golden["subsample_cells_X"] = d.X
    golden["subsample_cells_local_means"] = d.local_means

    d = fresh()
    d.filter_genes_by_count(min_count=30)
    golden["filter_genes_names"] = np.asarray(d.gene_names, dtype=str)
    golden["filter_genes_n_cells"] = np.asarray(d.nb_cells)

    d = fresh()
    d.reorder_genes(["G3", "G0", "G10"], drop_omitted_genes=False)
    golden["reorder_genes_names"] = np.asarray(d.gene_names, dtype=str)

    d = fresh()
    d.merge_cell_types(["t0", "t4"], "merged")
    golden["merge_labels"] = d.labels.copy()
    golden["merge_cell_types"] = np.asarray(d.cell_types, dtype=str)
    d = fresh()
    d.reorder_cell_types(["t9", "t2"])
    golden["reorder_ct_labels"] = d.labels
    golden["reorder_ct_cell_types"] = np.asarray(d.cell_types, dtype=str)

    d = fresh()
    d.normalize()
    golden["norm_X"] = np.asarray(d.norm_X, dtype=np.float32)
    props = d.raw_counts_properties(np.arange(0, 30), np.arange(30, 60))
    for i, value in enumerate(props):
        golden[f"raw_props_{i}"] = np.asarray(value)

    for corruption in ("uniform", "binomial"):
        d = fresh()
        np.random.seed(3)
        d.corrupt(rate=0.2, corruption=corruption)
        golden[f"corrupt_{corruption}"] = d.corrupted_X.astype(np.float32)

    d = fresh()
    collate = d.collate_fn_builder()
    for i, tensor in enumerate(collate([4, 0, 33, 59])):
        golden[f"collate_{i}"] = tensor.numpy()

    a = fresh()
    X2 = counts(2, 30, 20)
    b = GeneExpressionDataset()
    b.populate_from_data(
        X2,
        batch_indices=np.repeat([0, 1], 15),
        labels=np.tile([0, 1, 2], 10),
        gene_names=np.array([f"g{i}" for i in range(10, 30)]),
        cell_types=np.array(["t2", "new", "t9"]),
    )
    golden["input_X2"] = X2
    merged = GeneExpressionDataset()
    merged.populate_from_datasets([a, b])
    golden["merged_X"] = merged.X
    golden["merged_labels"] = merged.labels
    golden["merged_batches"] = merged.batch_indices
    golden["merged_cell_types"] = np.asarray(merged.cell_types, dtype=str)
    golden["merged_gene_names"] = np.asarray(merged.gene_names, dtype=str)
    golden["merged_local_means"] = merged.local_means
    golden["merged_local_vars"] = merged.local_vars

    os.makedirs(OUT, exist_ok=True)
    np.savez_compressed(os.path.join(OUT, "dataset_oracle.npz"), **golden)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data")
