"""Memory held by loaded sparse datasets, relative to the size of their CSR matrix.

The issue's target: a loaded sparse dataset holds at most 1.5x the bytes of its CSR
count matrix (``data + indices + indptr``). Allocations are measured with
``tracemalloc`` (numpy reports its buffers to it): *held* is what the dataset keeps
after loading, *peak* the most memory in use while loading, both relative to the CSR
size of ``X``. Cases:

* ``Dataset10X`` on a synthetic Cell Ranger v3 HDF5 file and on the same data as a
  gzipped matrix market folder;
* ``BrainLargeDataset`` on a synthetic ``mm10`` HDF5 file (chunked reading);
* ``AnnDatasetFromAnnData`` on ``pbmc10k_pbmc5k_2batch.h5ad`` (real, 10,849 x 4,000,
  from ``SCVI_SHARED_DATA``, default ``../shared/data``), which scVI 0.5 densified
  when the dense matrix is under 1 GB.

Usage::

    cd /work/main && PYTHONPATH=. /tmp/venv/bin/python benchmarks/dataset_memory.py
"""

import argparse
import gc
import gzip
import os
import shutil
import tempfile
import tracemalloc
from pathlib import Path
from typing import Callable, Dict

import anndata
import h5py
import numpy as np
import scipy.io as sp_io
import scipy.sparse as sp_sparse

import scvi
from scvi.dataset import AnnDatasetFromAnnData, BrainLargeDataset, Dataset10X

REPO = Path(__file__).resolve().parents[1]


def synthetic_counts(n_cells: int, n_genes: int, density: float, seed: int = 0):
    """(cells x genes) CSR counts with roughly ``density`` non-zeros."""
    rng = np.random.default_rng(seed)
    matrix = sp_sparse.random(
        n_cells, n_genes, density=density, format="csr", random_state=rng
    )
    matrix.data = np.ceil(matrix.data * 10).astype(np.float32)
    return matrix


def write_10x_h5(path: Path, counts: sp_sparse.csr_matrix) -> None:
    csc = sp_sparse.csc_matrix(counts.T)  # genes x cells, stored by cell
    with h5py.File(path, "w") as handle:
        group = handle.create_group("matrix")
        group["data"] = csc.data.astype(np.int32)
        group["indices"] = csc.indices.astype(np.int64)
        group["indptr"] = csc.indptr.astype(np.int64)
        group["shape"] = np.asarray(csc.shape, dtype=np.int32)
        group["barcodes"] = np.asarray(
            [f"CELL{i:07d}-1" for i in range(counts.shape[0])], dtype="S"
        )
        features = group.create_group("features")
        names = np.asarray([f"GENE{i:06d}" for i in range(counts.shape[1])], dtype="S")
        features["id"] = names
        features["name"] = names
        features["feature_type"] = np.full(counts.shape[1], b"Gene Expression")


def write_mtx_folder(folder: Path, counts: sp_sparse.csr_matrix) -> None:
    folder.mkdir(parents=True)
    plain = folder / "matrix.mtx"
    sp_io.mmwrite(str(plain), sp_sparse.coo_matrix(counts.T.astype(np.int64)))
    with open(plain, "rb") as source, gzip.open(f"{plain}.gz", "wb", 1) as target:
        shutil.copyfileobj(source, target)
    plain.unlink()
    with gzip.open(folder / "features.tsv.gz", "wt") as handle:
        for i in range(counts.shape[1]):
            handle.write(f"GENE{i:06d}\tGENE{i:06d}\tGene Expression\n")
    with gzip.open(folder / "barcodes.tsv.gz", "wt") as handle:
        for i in range(counts.shape[0]):
            handle.write(f"CELL{i:07d}-1\n")


def write_brain_large(path: Path, counts: sp_sparse.csr_matrix) -> None:
    csc = sp_sparse.csc_matrix(counts.T)
    with h5py.File(path, "w") as handle:
        group = handle.create_group("mm10")
        group["data"] = csc.data.astype(np.int32)
        group["indices"] = csc.indices.astype(np.int32)
        group["indptr"] = csc.indptr.astype(np.int64)
        group["shape"] = np.asarray(csc.shape, dtype=np.int64)


def csr_bytes(X) -> int:
    if not sp_sparse.issparse(X):
        return 0
    return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes


def measure(load: Callable[[], object]) -> Dict[str, float]:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    dataset = load()
    gc.collect()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    X = dataset.X
    size = csr_bytes(X) or csr_bytes(sp_sparse.csr_matrix(X))
    return {
        "shape": "x".join(map(str, X.shape)),
        "sparse": sp_sparse.issparse(X),
        "csr_mb": size / 2**20,
        "held_ratio": (held - before) / size,
        "peak_ratio": (peak - before) / size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-cells", type=int, default=20000)
    parser.add_argument("--n-genes", type=int, default=10000)
    parser.add_argument("--density", type=float, default=0.05)
    args = parser.parse_args()
    scvi.set_verbosity("WARNING")
    counts = synthetic_counts(args.n_cells, args.n_genes, args.density)
    shared = Path(os.environ.get("SCVI_SHARED_DATA", REPO.parent / "shared" / "data"))
    work = Path(tempfile.mkdtemp())
    try:
        write_10x_h5(work / "matrix.h5", counts)
        write_mtx_folder(work / "mtx" / "filtered_feature_bc_matrix", counts)
        write_brain_large(work / "brain_large.h5", counts)
        cases = {
            "Dataset10X, v3 HDF5": lambda: Dataset10X(
                filename="matrix.h5", save_path=str(work)
            ),
            "Dataset10X, v3 matrix market (gz)": lambda: Dataset10X(
                save_path=str(work / "mtx")
            ),
            "BrainLargeDataset, 720 genes, chunks of 5000": lambda: BrainLargeDataset(
                save_path=str(work), loading_batch_size=5000
            ),
            "AnnDatasetFromAnnData, pbmc10k_pbmc5k_2batch": lambda: (
                AnnDatasetFromAnnData(
                    anndata.read_h5ad(shared / "real" / "pbmc10k_pbmc5k_2batch.h5ad"),
                    batch_label="batch",
                )
            ),
        }
        print("| case | X | sparse | CSR MB | held / CSR | peak / CSR |")
        print("|---|---|---|---|---|---|")
        for name, load in cases.items():
            result = measure(load)
            print(
                f"| {name} | {result['shape']} | {result['sparse']} | "
                f"{result['csr_mb']:.1f} | {result['held_ratio']:.2f} | "
                f"{result['peak_ratio']:.2f} |"
            )
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
