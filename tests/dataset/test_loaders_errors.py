"""Bad input gives a clear error, never a silently wrong dataset."""

import gzip
import shutil

import h5py
import loompy
import numpy as np
import pandas as pd
import pytest

from scvi.dataset import (
    BrainLargeDataset,
    BrainSmallDataset,
    CiteSeqDataset,
    CortexDataset,
    CsvDataset,
    Dataset10X,
    HematoDataset,
    LoomDataset,
    PbmcDataset,
    PurifiedPBMCDataset,
    SeqfishDataset,
    SeqFishPlusDataset,
)

CORRUPT = "truncated or corrupt"


@pytest.fixture()
def fixtures(shared_data):
    return shared_data / "scvi05_fixtures"


def truncated_copy(source, target, n_bytes=None):
    data = source.read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data[: len(data) // 2 if n_bytes is None else n_bytes])


def test_missing_local_files_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nothing.csv")):
        CsvDataset("nothing.csv", save_path=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "none.loom")):
        LoomDataset("none.loom", save_path=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="No matrix.mtx"):
        Dataset10X(save_path=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="archive.tar.gz"):
        Dataset10X(filename="archive.tar.gz", save_path=str(tmp_path))


@pytest.mark.parametrize(
    "build, source, target",
    [
        (lambda p: BrainLargeDataset(save_path=p), "brain_large.h5", "brain_large.h5"),
        (
            lambda p: LoomDataset("retina.loom", save_path=p),
            "retina.loom",
            "retina.loom",
        ),
        (lambda p: SeqfishDataset(save_path=p), "SeqFISH.xlsx", "SeqFISH.xlsx"),
        (
            lambda p: SeqFishPlusDataset(save_path=p),
            "seqfishplus.zip",
            "seqfishplus.zip",
        ),
        (
            lambda p: CsvDataset("c.csv.gz", save_path=p),
            "GSE100866_CBMC_8K_13AB_10X-RNA_umi.csv.gz",
            "c.csv.gz",
        ),
        (
            lambda p: Dataset10X("cd34", save_path=p),
            "10X/cd34/filtered_gene_bc_matrices.tar.gz",
            "cd34/filtered_gene_bc_matrices.tar.gz",
        ),
    ],
)
def test_truncated_files_are_reported(tmp_path, fixtures, build, source, target):
    truncated_copy(fixtures / source, tmp_path / target)
    with pytest.raises(ValueError, match=CORRUPT):
        build(str(tmp_path))


def test_truncated_matrix_market_and_pickle(tmp_path, fixtures):
    folder = tmp_path / "hg19"
    shutil.copytree(fixtures / "filtered_gene_bc_matrices" / "hg19", folder)
    matrix = folder / "matrix.mtx"
    matrix.chmod(0o644)
    lines = matrix.read_text().splitlines()
    matrix.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    with pytest.raises(ValueError, match=CORRUPT):
        Dataset10X(save_path=str(tmp_path))
    shutil.copytree(fixtures / "10X" / "neuron_9k", tmp_path / "10X" / "neuron_9k")
    truncated_copy(
        fixtures / "brain_small_metadata.pickle",
        tmp_path / "meta" / "brain_small_metadata.pickle",
    )
    with pytest.raises(ValueError, match=CORRUPT):
        BrainSmallDataset(
            save_path=str(tmp_path / "meta"), save_path_10X=str(tmp_path / "10X")
        )


def test_wrong_delimiter(tmp_path, fixtures):
    shutil.copy(fixtures / "Rep11_MOB_count_matrix-1.tsv", tmp_path)
    with pytest.raises(ValueError, match=r"sep=','.*'\\t' for .tsv"):
        CsvDataset(
            "Rep11_MOB_count_matrix-1.tsv", save_path=str(tmp_path), gene_by_cell=False
        )
    (tmp_path / "semi.csv").write_text("cell,genes\na,1;2\nb,3;4\n")
    with pytest.raises(ValueError, match=r"1 of 1 columns are not numeric.*sep=','"):
        CsvDataset("semi.csv", save_path=str(tmp_path), gene_by_cell=False)


def write_csv(path, text):
    path.write_text(text)
    return path.name


def test_csv_gene_names_must_be_present_and_unique(tmp_path):
    missing = write_csv(tmp_path / "m.csv", ",c1,c2\ng1,1,2\n,3,4\n")
    with pytest.raises(ValueError, match="1 of 2 gene names are missing"):
        CsvDataset(missing, save_path=str(tmp_path))
    empty_header = write_csv(tmp_path / "e.csv", ",g1,\nc1,1,2\nc2,3,4\n")
    with pytest.raises(ValueError, match="gene names are missing"):
        CsvDataset(empty_header, save_path=str(tmp_path), gene_by_cell=False)
    repeated = write_csv(tmp_path / "r.csv", ",c1,c2\nActb,1,2\nACTB,3,4\n")
    with pytest.raises(ValueError, match=r"occur more than once.*\['ACTB'\]"):
        CsvDataset(repeated, save_path=str(tmp_path))
    header = write_csv(tmp_path / "h.csv", ",g1,g1\nc1,1,2\nc2,3,4\n")
    with pytest.raises(ValueError, match="occur more than once"):
        CsvDataset(header, save_path=str(tmp_path), gene_by_cell=False)


def test_csv_side_files_must_match_the_cells(tmp_path):
    counts = write_csv(tmp_path / "x.csv", ",g1,g2\nc1,1,2\nc2,3,4\nc3,5,6\n")
    short = write_csv(tmp_path / "short.csv", "cell,label\nc1,0\nc2,1\n")
    with pytest.raises(
        ValueError, match="short.csv has 2 rows but the count table has 3"
    ):
        CsvDataset(
            counts, save_path=str(tmp_path), gene_by_cell=False, labels_file=short
        )
    holes = write_csv(tmp_path / "holes.csv", "cell,batch\nc1,0\nc2,\nc3,1\n")
    with pytest.raises(ValueError, match="holes.csv has missing values"):
        CsvDataset(
            counts, save_path=str(tmp_path), gene_by_cell=False, batch_ids_file=holes
        )


def test_10x_features_must_match_the_matrix(tmp_path, fixtures):
    folder = tmp_path / "hg19"
    shutil.copytree(fixtures / "filtered_gene_bc_matrices" / "hg19", folder)
    genes = folder / "genes.tsv"
    genes.chmod(0o644)
    lines = genes.read_text().splitlines()
    genes.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ValueError, match="lists 13 features but .* has 14"):
        Dataset10X(save_path=str(tmp_path))
    genes.write_text("\n".join(lines[:-1] + [lines[0]]) + "\n")
    with pytest.raises(ValueError, match="occur more than once.*unique identifiers"):
        Dataset10X(save_path=str(tmp_path))
    genes.write_text("\n".join(lines[:-1] + ["\tNAMELESS"]) + "\n")
    with pytest.raises(ValueError, match="are missing or empty"):
        Dataset10X(save_path=str(tmp_path))
    with pytest.raises(ValueError, match="measurement_names_column=4"):
        Dataset10X(save_path=str(tmp_path), measurement_names_column=4)


def test_10x_v3_without_gene_expression(tmp_path):
    folder = tmp_path / "outs"
    folder.mkdir()
    (folder / "matrix.mtx").write_text(
        "%%MatrixMarket matrix coordinate integer general\n2 2 2\n1 1 3\n2 2 4\n"
    )
    with gzip.open(folder / "features.tsv.gz", "wt") as handle:
        handle.write("a\tA\tAntibody Capture\nb\tB\tAntibody Capture\n")
    (folder / "barcodes.tsv").write_text("x-1\ny-1\n")
    with pytest.raises(ValueError, match="no 'Gene Expression' category"):
        Dataset10X(save_path=str(tmp_path))


def test_loom_gene_names_must_be_unique(tmp_path):
    loompy.create(
        str(tmp_path / "dup.loom"),
        np.ones((3, 4)),
        row_attrs={"Gene": np.asarray(["a", "b", "A"])},
        col_attrs={"ClusterID": np.asarray(["x", "y", "x", "z"])},
    )
    with pytest.raises(ValueError, match="occur more than once"):
        LoomDataset("dup.loom", save_path=str(tmp_path))


def test_loom_label_names_must_be_cell_types(tmp_path):
    loompy.create(
        str(tmp_path / "cells.loom"),
        np.ones((2, 3)),
        row_attrs={"Gene": np.asarray(["a", "b"])},
        col_attrs={"ClusterID": np.asarray(["T", "B", "Mystery"])},
    )
    with h5py.File(tmp_path / "cells.loom", "a") as handle:
        handle["attrs"].create_dataset(
            "CellTypes",
            data=np.asarray(["T", "B"], dtype=object),
            dtype=h5py.string_dtype(),
        )
    with pytest.raises(ValueError, match=r"labels \['Mystery'\] are not among"):
        LoomDataset("cells.loom", save_path=str(tmp_path))


def test_cite_seq_files_must_describe_the_same_cells(tmp_path, fixtures):
    folder = tmp_path / "cbmc"
    shutil.copytree(fixtures / "citeSeq" / "cbmc", folder)
    adt = pd.read_csv(folder / "cbmc_adt.csv.gz", index_col=0)
    (folder / "cbmc_adt.csv.gz").chmod(0o644)
    adt.iloc[:, :-1].to_csv(folder / "cbmc_adt.csv.gz")
    with pytest.raises(ValueError, match="does not hold the same cells"):
        CiteSeqDataset("cbmc", save_path=str(tmp_path))
    # the same cells in another order are matched by barcode
    adt.iloc[:, ::-1].to_csv(folder / "cbmc_adt.csv.gz")
    ds = CiteSeqDataset("cbmc", save_path=str(tmp_path))
    np.testing.assert_array_equal(ds.protein_expression, adt.to_numpy().T)


def test_unknown_options_list_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="name must be one of.*'cbmc'"):
        CiteSeqDataset("cbmc_typo", save_path=str(tmp_path))
    with pytest.raises(ValueError, match="dataset_name must be one of.*'neuron_9k'"):
        Dataset10X("neuron_9", save_path=str(tmp_path))
    with pytest.raises(ValueError, match=r"type must be one of \['filtered', 'raw'\]"):
        Dataset10X("neuron_9k", save_path=str(tmp_path), type="cleaned")
    with pytest.raises(ValueError, match="tissue_region must be one of"):
        SeqFishPlusDataset("brain", save_path=str(tmp_path))
    with pytest.raises(ValueError, match="max_cells_to_keep must be a positive"):
        BrainLargeDataset(save_path=str(tmp_path), max_cells_to_keep=0)
    with pytest.raises(ValueError, match="total_genes must be a positive"):
        CortexDataset(save_path=str(tmp_path), total_genes=-3)
    with pytest.raises(ValueError, match="subset_datasets must be a non-empty"):
        PurifiedPBMCDataset(save_path=str(tmp_path), subset_datasets=[])


def test_cortex_genes_to_keep_must_exist(tmp_path, fixtures):
    shutil.copy(fixtures / "expression.bin", tmp_path)
    with pytest.raises(ValueError, match=r"1 genes of genes_to_keep .*\['NOTAGENE'\]"):
        CortexDataset(save_path=str(tmp_path), genes_to_keep=["mbp", "notagene"])


def test_hemato_needs_its_side_files(tmp_path, fixtures):
    folder = tmp_path / "HEMATO"
    folder.mkdir()
    for name in ["bBM.raw_umifm_counts.csv.gz", "data.zip"]:
        shutil.copy(fixtures / "HEMATO" / name, folder)
    with pytest.raises(FileNotFoundError, match="bBM.spring_and_pba.csv"):
        HematoDataset(save_path=str(folder))


def test_pbmc_barcodes_without_batch_must_be_unambiguous(tmp_path, fixtures):
    for name in ["gene_info_pbmc.csv"]:
        shutil.copy(fixtures / name, tmp_path)
    shutil.copytree(fixtures / "10X" / "pbmc8k", tmp_path / "pbmc8k")
    # pbmc4k with the barcodes of pbmc8k: the same barcode in both batches
    shutil.copytree(fixtures / "10X" / "pbmc8k", tmp_path / "pbmc4k")
    metadata = pd.read_pickle(fixtures / "pbmc_metadata.pickle")
    metadata["design"] = metadata["design"].drop(columns="batchpbmc4k")
    pd.to_pickle(metadata, tmp_path / "pbmc_metadata.pickle")
    with pytest.raises(ValueError, match="occur in both 10x batches"):
        PbmcDataset(save_path=str(tmp_path))
