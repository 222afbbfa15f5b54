"""Write ``loaders_oracle.json.gz``: what the ORIGINAL scVI 0.5.0 loaders make of the fixtures.

Run with the oracle environment, from outside the repository::

    cd /tmp && /tmp/scvi05/bin/python /work/main/tests/golden/make_golden_loaders.py \
        /work/shared/data/scvi05_fixtures

Each loader reads a private copy of the fixture files (the sample files of scVI 0.5's
own tests, under the file names the loaders expect). For each dataset the file keeps
a compact summary: shape, a digest of the float32 count matrix (the matrix itself
when small), per-cell and per-gene totals, gene names, labels, batches, cell types
and measurements. tests/dataset/test_loaders_oracle.py compares this package's
loaders with it.
"""

import gzip
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import warnings

import numpy as np
import scipy.sparse as sp_sparse

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "loaders_oracle.json.gz")
SMALL = 3000  # matrices with at most this many entries are stored in full
LONG = 5000  # longer lists are stored as a digest of their JSON text


def dense32(matrix) -> np.ndarray:
    if sp_sparse.issparse(matrix):
        matrix = matrix.toarray()
    return np.ascontiguousarray(np.asarray(matrix), dtype=np.float32)


def digest(matrix) -> str:
    return hashlib.sha1(dense32(matrix).tobytes()).hexdigest()


def names(values) -> list:
    return [str(value) for value in np.asarray(values).ravel()]


def compact(values: list):
    """The list itself, or ``{"len", "sha1"}`` of its JSON text when long."""
    if len(values) <= LONG:
        return values
    text = json.dumps(values, separators=(",", ":"))
    return {"len": len(values), "sha1": hashlib.sha1(text.encode()).hexdigest()}


def summary(ds) -> dict:
    X = dense32(ds.X)
    out = {
        "shape": list(X.shape),
        "X_sha1": digest(X),
        "X_sum": float(X.sum(dtype=np.float64)),
        "cell_sums": X.sum(axis=1, dtype=np.float64).tolist(),
        "gene_sums": compact(X.sum(axis=0, dtype=np.float64).tolist()),
        "labels": np.asarray(ds.labels).ravel().astype(int).tolist(),
        "batch_indices": np.asarray(ds.batch_indices).ravel().astype(int).tolist(),
        "n_labels": int(ds.n_labels),
        "n_batches": int(ds.n_batches),
        "cell_types": None if ds.cell_types is None else names(ds.cell_types),
        "gene_names": None if ds.gene_names is None else compact(names(ds.gene_names)),
        "cell_attribute_names": sorted(ds.cell_attribute_names),
        "measurements": {},
    }
    if X.size <= SMALL:
        out["X"] = X.tolist()
    for name, columns_name in ds.cell_measurements_columns.items():
        data = dense32(getattr(ds, name))
        out["measurements"][name] = {
            "columns_attr_name": columns_name,
            "columns": names(getattr(ds, columns_name)),
            "shape": list(data.shape),
            "sha1": digest(data),
            "sum": float(data.sum(dtype=np.float64)),
        }
    return out


def with_extra(ds, *attributes) -> dict:
    out = summary(ds)
    for attribute in attributes:
        value = getattr(ds, attribute)
        if hasattr(value, "values"):
            value = value.values
        value = np.asarray(value)
        out[attribute] = value.tolist() if value.dtype.kind != "U" else names(value)
    return out


def main(fixtures: str) -> None:
    from scvi.dataset import (
        BrainLargeDataset,
        BrainSmallDataset,
        BreastCancerDataset,
        CbmcDataset,
        CiteSeqDataset,
        CortexDataset,
        CsvDataset,
        Dataset10X,
        FrontalCortexDropseqDataset,
        HematoDataset,
        LoomDataset,
        MouseOBDataset,
        PbmcDataset,
        PreFrontalCortexStarmapDataset,
        PurifiedPBMCDataset,
        RetinaDataset,
        SeqfishDataset,
        SeqFishPlusDataset,
        SmfishDataset,
    )

    work = tempfile.mkdtemp()
    data = os.path.join(work, "fx")
    shutil.copytree(fixtures, data)
    for root, _, files in os.walk(data):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    d = data + "/"
    loaders = {
        "cortex": lambda: with_extra(CortexDataset(save_path=d), "precise_labels"),
        "cortex_all_genes": lambda: summary(
            CortexDataset(save_path=d, total_genes=None)
        ),
        "cortex_genes_to_keep": lambda: summary(
            CortexDataset(save_path=d, genes_to_keep=["MBP", "THY1"], total_genes=5)
        ),
        "brain_large": lambda: with_extra(
            BrainLargeDataset(save_path=d), "subset_genes"
        ),
        "brain_large_chunks": lambda: with_extra(
            BrainLargeDataset(
                save_path=d,
                sample_size_gene_var=20,
                max_cells_to_keep=30,
                nb_genes_to_keep=25,
                loading_batch_size=10,
            ),
            "subset_genes",
        ),
        "cbmc": lambda: summary(CbmcDataset(save_path=d + "citeSeq/")),
        "citeseq_pbmc": lambda: summary(
            CiteSeqDataset("pbmc", save_path=d + "citeSeq/")
        ),
        "csv_cbmc": lambda: summary(
            CsvDataset(
                "GSE100866_CBMC_8K_13AB_10X-RNA_umi.csv.gz",
                save_path=d,
                compression="gzip",
            )
        ),
        "csv_cbmc_3_genes": lambda: summary(
            CsvDataset(
                "GSE100866_CBMC_8K_13AB_10X-RNA_umi.csv.gz",
                save_path=d,
                compression="gzip",
                new_n_genes=3,
            )
        ),
        "breast_cancer": lambda: summary(BreastCancerDataset(save_path=d)),
        "mouse_ob": lambda: summary(MouseOBDataset(save_path=d)),
        "10x_cd4_t_helper": lambda: summary(
            Dataset10X("cd4_t_helper", save_path=d + "10X")
        ),
        "10x_pbmc_10k_protein_v3": lambda: with_extra(
            Dataset10X("pbmc_10k_protein_v3", save_path=d + "10X"), "barcodes"
        ),
        "10x_local_folder": lambda: with_extra(
            Dataset10X(save_path=d + "filtered_gene_bc_matrices/"), "barcodes"
        ),
        "brain_small": lambda: with_extra(
            BrainSmallDataset(save_path=d, save_path_10X=d + "10X"),
            "barcodes",
            "qc",
        ),
        "hemato": lambda: with_extra(
            HematoDataset(save_path=d + "HEMATO/"), "x_coord", "y_coord"
        ),
        "retina": lambda: summary(RetinaDataset(save_path=d)),
        "loom_cortex": lambda: summary(LoomDataset("Cortex.loom", save_path=d)),
        "loom_simulation_1": lambda: summary(
            LoomDataset("simulation_1.loom", save_path=d + "simulation/")
        ),
        "frontal_cortex_dropseq": lambda: summary(
            FrontalCortexDropseqDataset(save_path=d)
        ),
        "frontal_cortex_dropseq_genes": lambda: summary(
            FrontalCortexDropseqDataset(save_path=d, genes_to_keep=["GENE3", "GENE1"])
        ),
        "starmap": lambda: with_extra(
            PreFrontalCortexStarmapDataset(save_path=d), "x_coord", "y_coord"
        ),
        "pbmc": lambda: with_extra(
            PbmcDataset(save_path=d, save_path_10X=d + "10X"), "barcodes", "qc"
        ),
        "purified_pbmc_0_to_4": lambda: summary(
            PurifiedPBMCDataset(save_path=d + "10X", subset_datasets=[0, 1, 2, 3, 4])
        ),
        "seqfish": lambda: summary(SeqfishDataset(save_path=d)),
        "seqfishplus_cortex": lambda: with_extra(
            SeqFishPlusDataset(save_path=d), "cell_id", "field_of_view", "region"
        ),
        "seqfishplus_ob": lambda: with_extra(
            SeqFishPlusDataset("olfactory bulb", save_path=d), "cell_id"
        ),
        "smfish": lambda: with_extra(SmfishDataset(save_path=d), "x_coord"),
        "smfish_all_clusters": lambda: summary(
            SmfishDataset(save_path=d, use_high_level_cluster=False)
        ),
    }
    golden = {}
    for key, load in loaders.items():
        golden[key] = load()
        print(key, golden[key]["shape"])
    shutil.rmtree(work)
    with gzip.open(OUT, "wt") as handle:
        json.dump(golden, handle, separators=(",", ":"))
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    main(sys.argv[1])
