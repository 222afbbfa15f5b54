"""Round trips through the generic file formats: files written here, read back.

10x Genomics matrix market folders (Cell Ranger v2 and v3, plain, gzipped and in
tar.gz archives) and HDF5 files (v2 and v3), loom files, delimited text (csv/tsv,
compressed) with label and batch files, and xlsx worksheets.
"""

import gzip
import os
import tarfile
import zipfile

import h5py
import loompy
import numpy as np
import pandas as pd
import pytest
import scipy.io as sp_io
import scipy.sparse as sp_sparse

from scvi.dataset import CsvDataset, Dataset10X, LoomDataset
from scvi.dataset._xlsx import read_xlsx_sheet

N_CELLS, N_GENES, N_PROTEINS, N_GUIDES = 30, 12, 3, 2


@pytest.fixture(scope="module")
def counts():
    """(cells x features) counts: genes, then proteins, then guides; cell 4 empty."""
    rng = np.random.default_rng(7)
    n_features = N_GENES + N_PROTEINS + N_GUIDES
    matrix = rng.poisson(0.8, size=(N_CELLS, n_features)).astype(np.int64)
    matrix[:, N_GENES : N_GENES + N_PROTEINS] += rng.poisson(30, (N_CELLS, N_PROTEINS))
    matrix[4, :N_GENES] = 0
    return matrix


FEATURES = pd.DataFrame(
    {
        0: [f"ENSG{i:05d}" for i in range(N_GENES)]
        + [f"ADT{i}" for i in range(N_PROTEINS)]
        + [f"GUIDE{i}" for i in range(N_GUIDES)],
        1: [f"Gene{i}" for i in range(N_GENES)] + ["CD3", "CD4", "CD8a"] + ["g1", "g2"],
        2: ["Gene Expression"] * N_GENES
        + ["Antibody Capture"] * N_PROTEINS
        + ["CRISPR Guide Capture"] * N_GUIDES,
    }
)
BARCODES = np.asarray(
    [f"AAAC{i:04d}-{1 + (i >= 20)}" for i in range(N_CELLS)]
)  # two batches


def write_mtx_folder(folder, counts, version: int) -> None:
    """A Cell Ranger matrix folder: v2 (plain, genes only) or v3 (gzipped)."""
    os.makedirs(folder, exist_ok=True)
    if version == 2:
        sp_io.mmwrite(
            os.path.join(folder, "matrix.mtx"),
            sp_sparse.coo_matrix(counts[:, :N_GENES].T),
        )
        FEATURES.iloc[:N_GENES, :2].to_csv(
            os.path.join(folder, "genes.tsv"), sep="\t", header=False, index=False
        )
        pd.Series(BARCODES).to_csv(
            os.path.join(folder, "barcodes.tsv"), header=False, index=False
        )
        return
    plain = os.path.join(folder, "matrix.mtx")
    sp_io.mmwrite(plain, sp_sparse.coo_matrix(counts.T))
    with open(plain, "rb") as source, gzip.open(plain + ".gz", "wb") as target:
        target.write(source.read())
    os.remove(plain)
    FEATURES.to_csv(
        os.path.join(folder, "features.tsv.gz"), sep="\t", header=False, index=False
    )
    pd.Series(BARCODES).to_csv(
        os.path.join(folder, "barcodes.tsv.gz"), header=False, index=False
    )
    # Hidden files left by archivers are ignored.
    with open(os.path.join(folder, "._features.tsv.gz"), "wb") as junk:
        junk.write(b"\x00\x05junk")


def expressed(counts) -> np.ndarray:
    return counts[:, :N_GENES].sum(axis=1) > 0


def check_10x(ds, counts, names_column=0) -> None:
    keep = expressed(counts)
    assert ds.nb_cells == keep.sum() == N_CELLS - 1
    np.testing.assert_array_equal(
        ds.X.toarray() if sp_sparse.issparse(ds.X) else ds.X, counts[keep, :N_GENES]
    )
    expected_names = np.char.upper(
        FEATURES[names_column][:N_GENES].to_numpy().astype(str)
    )
    np.testing.assert_array_equal(ds.gene_names, expected_names)
    np.testing.assert_array_equal(ds.barcodes, BARCODES[keep])
    np.testing.assert_array_equal(
        ds.batch_indices.ravel(), (np.arange(N_CELLS) >= 20)[keep]
    )
    assert ds.n_batches == 2


def test_10x_v2_archive_with_cleanup(tmp_path, counts):
    staging = tmp_path / "staging"
    write_mtx_folder(
        staging / "filtered_gene_bc_matrices" / "GRCh38", counts, version=2
    )
    data = tmp_path / "data"
    data.mkdir()
    with tarfile.open(data / "filtered_gene_bc_matrices.tar.gz", "w:gz") as archive:
        archive.add(
            staging / "filtered_gene_bc_matrices", arcname="filtered_gene_bc_matrices"
        )
    ds = Dataset10X(
        filename="filtered_gene_bc_matrices.tar.gz",
        save_path=str(data),
        remove_extracted_data=True,
    )
    check_10x(ds, counts)
    assert sp_sparse.isspmatrix_csr(ds.X) and ds.X.dtype == np.float32
    assert sorted(os.listdir(data)) == ["filtered_gene_bc_matrices.tar.gz"]
    kept = Dataset10X(
        filename="filtered_gene_bc_matrices.tar.gz",
        save_path=str(data),
        measurement_names_column=1,
        dense=True,
    )
    check_10x(kept, counts, names_column=1)
    assert isinstance(kept.X, np.ndarray)
    assert (data / "filtered_gene_bc_matrices" / "GRCh38" / "matrix.mtx").exists()


def test_10x_v3_folder_with_feature_types(tmp_path, counts):
    write_mtx_folder(
        tmp_path / "outs" / "filtered_feature_bc_matrix", counts, version=3
    )
    ds = Dataset10X(save_path=str(tmp_path / "outs"))
    check_10x(ds, counts)
    keep = expressed(counts)
    proteins = counts[keep, N_GENES : N_GENES + N_PROTEINS]
    assert isinstance(ds.protein_expression, np.ndarray)
    np.testing.assert_array_equal(ds.protein_expression, proteins)
    np.testing.assert_array_equal(ds.protein_names, ["ADT0", "ADT1", "ADT2"])
    guides = ds.crispr_guide_capture
    assert sp_sparse.issparse(guides)
    np.testing.assert_array_equal(
        guides.toarray(), counts[keep, N_GENES + N_PROTEINS :]
    )
    assert ds.cell_measurements_columns == {
        "crispr_guide_capture": "crispr_guide_capture_names",
        "protein_expression": "protein_names",
    }
    # measurements follow cell subsetting and survive export to AnnData
    ds.update_cells(np.arange(5))
    np.testing.assert_array_equal(ds.protein_expression, proteins[:5])
    adata = ds.to_anndata()
    np.testing.assert_array_equal(adata.obsm["protein_expression"], proteins[:5])


def write_h5(path, counts, version: int) -> None:
    n_features = N_GENES if version == 2 else counts.shape[1]
    matrix = sp_sparse.csc_matrix(counts[:, :n_features].T)  # features x cells
    with h5py.File(path, "w") as handle:
        group = handle.create_group("matrix" if version == 3 else "GRCh38")
        group["data"] = matrix.data.astype(np.int32)
        group["indices"] = matrix.indices.astype(np.int64)
        group["indptr"] = matrix.indptr.astype(np.int64)
        group["shape"] = np.asarray(matrix.shape, dtype=np.int32)
        group["barcodes"] = BARCODES.astype("S")
        if version == 3:
            features = group.create_group("features")
            features["id"] = FEATURES[0].to_numpy().astype("S")
            features["name"] = FEATURES[1].to_numpy().astype("S")
            features["feature_type"] = FEATURES[2].to_numpy().astype("S")
            features["genome"] = np.full(n_features, b"GRCh38")
        else:
            group["genes"] = FEATURES[0][:N_GENES].to_numpy().astype("S")
            group["gene_names"] = FEATURES[1][:N_GENES].to_numpy().astype("S")


@pytest.mark.parametrize("version", [2, 3])
def test_10x_h5(tmp_path, counts, version):
    write_h5(tmp_path / "filtered_feature_bc_matrix.h5", counts, version)
    ds = Dataset10X(filename="filtered_feature_bc_matrix.h5", save_path=str(tmp_path))
    check_10x(ds, counts)
    assert sp_sparse.isspmatrix_csr(ds.X)
    if version == 3:
        np.testing.assert_array_equal(
            ds.protein_expression,
            counts[expressed(counts), N_GENES : N_GENES + N_PROTEINS],
        )
    else:
        assert ds.cell_measurements_columns == {}
    symbols = Dataset10X(
        filename="filtered_feature_bc_matrix.h5",
        save_path=str(tmp_path),
        measurement_names_column=1,
    )
    check_10x(symbols, counts, names_column=1)


def test_loom_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    counts = rng.poisson(2.0, size=(8, 20)).astype(np.float32)  # genes x cells
    counts[:, 5] = 0
    names = np.asarray(["B", "T", "NK", "T"] * 5)
    loompy.create(
        str(tmp_path / "cells.loom"),
        counts,
        row_attrs={
            "Gene": np.asarray([f"g{i}" for i in range(8)]),
            "ids": np.arange(8) * 10,
        },
        col_attrs={
            "BatchID": np.repeat([1.0, 2.0], 10),
            "ClusterID": names,
            "size": np.arange(20.0),
        },
    )
    # (loompy 3.0.8 cannot write string arrays as global attributes: use h5py)
    with h5py.File(tmp_path / "cells.loom", "a") as handle:
        handle["attrs"].create_dataset(
            "CellTypes",
            data=np.asarray(["T", "B", "NK", "unused"], dtype=object),
            dtype=h5py.string_dtype(),
        )
    ds = LoomDataset("cells.loom", save_path=str(tmp_path))
    keep = np.arange(20) != 5
    np.testing.assert_array_equal(ds.X, counts.T[keep])
    np.testing.assert_array_equal(ds.gene_names, [f"G{i}" for i in range(8)])
    np.testing.assert_array_equal(
        np.asarray(ds.cell_types)[ds.labels.ravel()], names[keep]
    )
    np.testing.assert_array_equal(ds.batch_indices.ravel(), np.repeat([0, 1], 10)[keep])
    np.testing.assert_array_equal(ds.size, np.arange(20.0)[keep])
    np.testing.assert_array_equal(ds.ids, np.arange(8) * 10)
    assert "LOOM_SPEC_VERSION" in ds.global_attributes_dict
    # Without cell-type names, labels given as names are coded in sorted order.
    loompy.create(
        str(tmp_path / "plain.loom"),
        counts,
        row_attrs={"Gene": np.asarray([f"g{i}" for i in range(8)])},
        col_attrs={"ClusterID": names},
    )
    plain = LoomDataset("plain.loom", save_path=str(tmp_path))
    np.testing.assert_array_equal(plain.cell_types, ["B", "NK", "T"])
    np.testing.assert_array_equal(
        np.asarray(plain.cell_types)[plain.labels.ravel()], names[keep]
    )


@pytest.mark.parametrize(
    "filename, sep, compression",
    [
        ("counts.csv.gz", ",", "gzip"),
        ("counts.tsv.bz2", "\t", None),
        ("counts.csv", ",", None),
    ],
)
def test_csv_round_trip(tmp_path, filename, sep, compression):
    rng = np.random.default_rng(5)
    genes = [f"Gene{i}" for i in range(6)]
    cells = [f"cell{i}" for i in range(10)]
    counts = rng.poisson(3.0, size=(10, 6))
    counts[2] = 0
    pd.DataFrame(counts.T, index=genes, columns=cells).to_csv(
        tmp_path / filename, sep=sep
    )
    ds = CsvDataset(filename, save_path=str(tmp_path), sep=sep, compression=compression)
    keep = np.arange(10) != 2
    np.testing.assert_array_equal(ds.X, counts[keep])
    np.testing.assert_array_equal(ds.gene_names, np.char.upper(genes))


def test_csv_cells_by_genes_with_label_and_batch_files(tmp_path):
    rng = np.random.default_rng(6)
    cells = [f"c{i}" for i in range(12)]
    counts = rng.poisson(3.0, size=(12, 4)) + 1
    pd.DataFrame(counts, index=cells, columns=["a", "b", "c", "d"]).to_csv(
        tmp_path / "x.csv"
    )
    kinds = np.asarray(["T", "B", "NK"] * 4)
    batches = np.arange(12) % 2
    order = rng.permutation(12)  # the side files list the cells in another order
    pd.DataFrame({"cell": np.asarray(cells)[order], "type": kinds[order]}).to_csv(
        tmp_path / "labels.csv", index=False
    )
    pd.DataFrame({"cell": np.asarray(cells)[order], "batch": batches[order]}).to_csv(
        tmp_path / "batches.csv", index=False
    )
    ds = CsvDataset(
        "x.csv",
        save_path=str(tmp_path),
        gene_by_cell=False,
        labels_file="labels.csv",
        batch_ids_file="batches.csv",
        new_n_genes=2,
    )
    np.testing.assert_array_equal(ds.cell_types, ["B", "NK", "T"])
    np.testing.assert_array_equal(np.asarray(ds.cell_types)[ds.labels.ravel()], kinds)
    np.testing.assert_array_equal(ds.batch_indices.ravel(), batches)
    variance = counts.var(axis=0)
    np.testing.assert_array_equal(
        ds.gene_names, np.asarray(["A", "B", "C", "D"])[np.argsort(-variance)[:2]]
    )
    chosen = CsvDataset(
        "x.csv", save_path=str(tmp_path), gene_by_cell=False, subset_genes=["d", 0]
    )
    np.testing.assert_array_equal(chosen.X, counts[:, [3, 0]])


def test_csv_delayed_populating_subsamples_when_populated(tmp_path):
    pd.DataFrame(np.arange(1, 13).reshape(3, 4), index=["x", "y", "z"]).to_csv(
        tmp_path / "g.csv"
    )
    ds = CsvDataset(
        "g.csv", save_path=str(tmp_path), new_n_genes=2, delayed_populating=True
    )
    assert ds.X is None
    ds.populate()
    assert ds.nb_genes == 2


def write_xlsx(path, rows_xml: str, shared: list) -> None:
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rels = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    package = "http://schemas.openxmlformats.org/package/2006/relationships"
    items = "".join(f"<si><t>{text}</t></si>" for text in shared)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "xl/workbook.xml",
            f'<workbook xmlns="{main}" xmlns:r="{rels}"><sheets>'
            '<sheet name="Other" sheetId="1" r:id="rId1"/>'
            '<sheet name="Counts" sheetId="2" r:id="rId2"/></sheets></workbook>',
        )
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            f'<Relationships xmlns="{package}">'
            '<Relationship Id="rId1" Target="worksheets/sheet1.xml"/>'
            '<Relationship Id="rId2" Target="/xl/worksheets/sheet2.xml"/></Relationships>',
        )
        archive.writestr("xl/sharedStrings.xml", f'<sst xmlns="{main}">{items}</sst>')
        archive.writestr(
            "xl/worksheets/sheet1.xml",
            f'<worksheet xmlns="{main}"><sheetData/></worksheet>',
        )
        archive.writestr(
            "xl/worksheets/sheet2.xml",
            f'<worksheet xmlns="{main}"><sheetData>{rows_xml}</sheetData></worksheet>',
        )


def test_xlsx_reader(tmp_path):
    rows = (
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="C1"><v>2.5</v></c>'
        '<c r="AA1" t="b"><v>1</v></c></row>'
        '<row r="3"><c r="A3" t="inlineStr"><is><t>inline</t></is></c>'
        '<c r="B3" t="s"><v>1</v></c><c r="D3" t="str"><v>formula</v></c></row>'
    )
    write_xlsx(tmp_path / "book.xlsx", rows, ["'Gene'", "two"])
    grid = read_xlsx_sheet(str(tmp_path / "book.xlsx"), "Counts")
    assert len(grid) == 3 and len(grid[0]) == 27
    assert grid[0][0] == "'Gene'" and grid[0][2] == 2.5 and grid[0][26] is True
    assert grid[1] == [None] * 27
    assert grid[2][:4] == ["inline", "two", None, "formula"]
    assert read_xlsx_sheet(str(tmp_path / "book.xlsx"), "Other") == []
    with pytest.raises(ValueError, match="no worksheet 'Missing'.*'Other', 'Counts'"):
        read_xlsx_sheet(str(tmp_path / "book.xlsx"), "Missing")
