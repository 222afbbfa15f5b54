"""Every 0.5 loader on the fixtures of scVI 0.5, against the ORIGINAL loaders' output.

``tests/golden/loaders_oracle.json.gz`` holds what scVI 0.5.0 made of the same files
(tests/golden/make_golden_loaders.py). Where this package deliberately differs (0.5
bugs, see HISTORY.rst), the test states the difference and checks our result against
the file itself.
"""

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import h5py
import loompy
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp_sparse

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

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "loaders_oracle.json.gz"


@pytest.fixture(scope="module")
def oracle():
    with gzip.open(GOLDEN, "rt") as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def data(shared_data, tmp_path_factory):
    """A writable copy of the 0.5 fixtures (loaders extract archives next to them)."""
    target = tmp_path_factory.mktemp("fixtures") / "fx"
    shutil.copytree(shared_data / "scvi05_fixtures", target)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


def dense32(matrix) -> np.ndarray:
    if sp_sparse.issparse(matrix):
        matrix = matrix.toarray()
    return np.ascontiguousarray(np.asarray(matrix), dtype=np.float32)


def digest(matrix) -> str:
    return hashlib.sha1(dense32(matrix).tobytes()).hexdigest()


def as_list(values) -> list:
    return [str(value) for value in np.asarray(values).ravel()]


def same_list(ours: list, golden) -> bool:
    """Compare with a stored list, or with the digest stored for a long one."""
    if isinstance(golden, dict):
        text = json.dumps(ours, separators=(",", ":"))
        return golden == {
            "len": len(ours),
            "sha1": hashlib.sha1(text.encode()).hexdigest(),
        }
    return ours == golden


def check_matrix(X, gold: dict) -> None:
    X = dense32(X)
    assert list(X.shape) == gold["shape"]
    if "X" in gold:
        np.testing.assert_array_equal(X, np.asarray(gold["X"], dtype=np.float32))
    np.testing.assert_allclose(X.sum(axis=1, dtype=np.float64), gold["cell_sums"])
    assert same_list(X.sum(axis=0, dtype=np.float64).tolist(), gold["gene_sums"])
    assert digest(X) == gold["X_sha1"]


def check_tied_gene_names(ds, gold: dict) -> None:
    """Gene names equal up to the order of genes with identical counts.

    0.5 ordered genes of equal spread with numpy's unstable quicksort; they are now
    in file order. The count matrices are equal, so a gene may only move to the
    position of a gene with the same column of counts.
    """
    X = dense32(ds.X)
    ours = as_list(ds.gene_names)
    theirs = {name: index for index, name in enumerate(gold["gene_names"])}
    assert sorted(ours) == sorted(gold["gene_names"])
    for index, name in enumerate(ours):
        np.testing.assert_array_equal(X[:, index], X[:, theirs[name]])


def check(
    ds, gold: dict, labels: bool = True, attributes: bool = True, ties: bool = False
) -> None:
    """Everything of the summary: counts, genes, batches, labels, measurements."""
    check_matrix(ds.X, gold)
    if gold["gene_names"] is None:
        assert ds.gene_names is None
    elif ties:
        check_tied_gene_names(ds, gold)
    else:
        assert same_list(as_list(ds.gene_names), gold["gene_names"])
    assert ds.batch_indices.ravel().tolist() == gold["batch_indices"]
    assert ds.n_batches == gold["n_batches"]
    if labels:
        assert ds.labels.ravel().tolist() == gold["labels"]
        assert ds.n_labels == gold["n_labels"]
        if gold["cell_types"] is None:
            assert ds.cell_types is None
        else:
            assert as_list(ds.cell_types) == gold["cell_types"]
    if attributes:
        assert sorted(ds.cell_attribute_names) == gold["cell_attribute_names"]
    assert set(ds.cell_measurements_columns) == set(gold["measurements"])
    for name, expected in gold["measurements"].items():
        columns_name = ds.cell_measurements_columns[name]
        assert columns_name == expected["columns_attr_name"]
        assert as_list(getattr(ds, columns_name)) == expected["columns"]
        measurement = getattr(ds, name)
        assert list(measurement.shape) == expected["shape"]
        np.testing.assert_allclose(measurement.sum(), expected["sum"], rtol=1e-6)
        if name != "protein_expression_clr":  # float64 in the file, float32 in 0.5
            assert digest(measurement) == expected["sha1"]


def per_cell_types(ds) -> list:
    return as_list(np.asarray(ds.cell_types)[ds.labels.ravel()])


def gold_per_cell_types(gold: dict) -> list:
    return as_list(np.asarray(gold["cell_types"])[gold["labels"]])


def test_cortex(data, oracle):
    ds = CortexDataset(save_path=str(data))
    check(ds, oracle["cortex"], ties=True)
    assert as_list(ds.precise_labels) == oracle["cortex"]["precise_labels"]
    check(
        CortexDataset(save_path=str(data), total_genes=None), oracle["cortex_all_genes"]
    )
    subset = CortexDataset(
        save_path=str(data), genes_to_keep=["mbp", "Thy1"], total_genes=5
    )
    check(subset, oracle["cortex_genes_to_keep"], ties=True)


def brain_large_file(path):
    """The fixture's (cells x genes) counts, read with h5py independently."""
    with h5py.File(path, "r") as handle:
        group = handle["mm10"]
        n_genes, n_cells = group["shape"][...]
        return sp_sparse.csr_matrix(
            (group["data"][...], group["indices"][...], group["indptr"][...]),
            shape=(n_cells, n_genes),
        ).toarray()


@pytest.mark.parametrize(
    "key, kwargs, n_cells",
    [
        ("brain_large", {}, None),
        (
            "brain_large_chunks",
            dict(
                sample_size_gene_var=20,
                max_cells_to_keep=30,
                nb_genes_to_keep=25,
                loading_batch_size=10,
            ),
            30,
        ),
        (
            # 0.5 read whole chunks: 10 cells in chunks of 3 gave 12 cells.
            None,
            dict(
                sample_size_gene_var=20,
                max_cells_to_keep=10,
                nb_genes_to_keep=25,
                loading_batch_size=3,
            ),
            10,
        ),
        # 0.5 failed when max_cells_to_keep exceeded the number of cells.
        (None, dict(max_cells_to_keep=10**6, loading_batch_size=16), None),
    ],
)
def test_brain_large(data, oracle, key, kwargs, n_cells):
    ds = BrainLargeDataset(save_path=str(data), **kwargs)
    assert sp_sparse.isspmatrix_csr(ds.X)
    counts = brain_large_file(data / "brain_large.h5").astype(np.float64)
    sample = counts[: kwargs.get("sample_size_gene_var", 10000)]
    variance = sample.var(axis=0)
    n_genes = kwargs.get("nb_genes_to_keep", 720)
    top = np.sort(variance)[::-1][:n_genes]
    np.testing.assert_allclose(variance[ds.subset_genes], top, rtol=1e-12)
    kept = counts[:n_cells][:, ds.subset_genes]
    np.testing.assert_array_equal(dense32(ds.X), kept[kept.sum(axis=1) > 0])
    if key is not None:
        # Genes of equal variance may be chosen differently (0.5 ranked rounded
        # float32 variances); the variances chosen are the same.
        gold = oracle[key]
        np.testing.assert_allclose(
            np.sort(variance[gold["subset_genes"]]), np.sort(top), rtol=1e-12
        )
        cutoff = top[-1]
        for gene in set(ds.subset_genes) ^ set(gold["subset_genes"]):
            np.testing.assert_allclose(variance[gene], cutoff, rtol=1e-12)
        assert ds.X.shape == tuple(gold["shape"])


def test_cite_seq(data, oracle):
    check(CbmcDataset(save_path=str(data / "citeSeq")), oracle["cbmc"])
    ds = CiteSeqDataset("pbmc", save_path=str(data / "citeSeq"))
    check(ds, oracle["citeseq_pbmc"])
    clr = pd.read_csv(
        data / "citeSeq" / "pbmc" / "pbmc_adt_centered.csv.gz", index_col=0
    )
    np.testing.assert_allclose(ds.protein_expression_clr, clr.to_numpy().T)
    assert ds.filenames.rna == "pbmc_rna.csv.gz"


def test_csv(data, oracle):
    name = "GSE100866_CBMC_8K_13AB_10X-RNA_umi.csv.gz"
    check(CsvDataset(name, save_path=str(data), compression="gzip"), oracle["csv_cbmc"])
    check(
        CsvDataset(name, save_path=str(data), compression="gzip", new_n_genes=3),
        oracle["csv_cbmc_3_genes"],
    )
    check(BreastCancerDataset(save_path=str(data)), oracle["breast_cancer"])
    check(MouseOBDataset(save_path=str(data)), oracle["mouse_ob"])


def test_dataset10x(data, oracle):
    ds = Dataset10X("cd4_t_helper", save_path=str(data / "10X"))
    assert sp_sparse.isspmatrix_csr(ds.X)
    check(ds, oracle["10x_cd4_t_helper"])
    v3 = Dataset10X("pbmc_10k_protein_v3", save_path=str(data / "10X"))
    check(v3, oracle["10x_pbmc_10k_protein_v3"])
    assert as_list(v3.barcodes) == oracle["10x_pbmc_10k_protein_v3"]["barcodes"]
    assert isinstance(v3.protein_expression, np.ndarray)
    local = Dataset10X(save_path=str(data / "filtered_gene_bc_matrices"))
    check(local, oracle["10x_local_folder"])
    assert as_list(local.barcodes) == oracle["10x_local_folder"]["barcodes"]


def test_brain_small(data, oracle):
    gold = oracle["brain_small"]
    ds = BrainSmallDataset(save_path=str(data), save_path_10X=str(data / "10X"))
    check(ds, gold, labels=False)
    np.testing.assert_allclose(ds.qc, gold["qc"])
    # 0.5 kept the cluster numbers minus one as labels (not contiguous) with the
    # single cell type "undefined"; labels are now contiguous and named.
    clusters = np.asarray(gold["labels"]) + 1
    assert per_cell_types(ds) == [f"cluster {cluster}" for cluster in clusters]
    assert ds.n_labels == gold["n_labels"] == len(ds.cell_types)


def test_hemato(data, oracle):
    gold = oracle["hemato"]
    ds = HematoDataset(save_path=str(data / "HEMATO"))
    check(ds, gold, labels=False, attributes=False)
    np.testing.assert_allclose(ds.x_coord, gold["x_coord"])
    np.testing.assert_allclose(ds.y_coord, gold["y_coord"])
    # 0.5 stored the fate score, cast to uint16, as labels; it is now fate_score.
    pba = pd.read_csv(data / "HEMATO" / "bBM.spring_and_pba.csv")

    def logit(column):
        p = pba[column].to_numpy()
        inside = p[(p > 0) & (p < 1)]
        p = np.clip(p, inside.min(), inside.max())
        return np.log(p) - np.log1p(-p)

    np.testing.assert_allclose(ds.fate_score, logit("Pr_Gr") - logit("Pr_Er"))
    assert ds.n_labels == 1 and ds.meta.shape == (ds.nb_cells, 8)


@pytest.mark.filterwarnings("ignore:X contains .* non-integer values")
def test_loom_datasets(data, oracle):
    check(LoomDataset("Cortex.loom", save_path=str(data)), oracle["loom_cortex"])
    check(
        LoomDataset("simulation_1.loom", save_path=str(data / "simulation")),
        oracle["loom_simulation_1"],
    )
    check(
        FrontalCortexDropseqDataset(save_path=str(data)),
        oracle["frontal_cortex_dropseq"],
    )
    subset = FrontalCortexDropseqDataset(
        save_path=str(data), genes_to_keep=["gene3", "Gene1"]
    )
    check(subset, oracle["frontal_cortex_dropseq_genes"])
    starmap = PreFrontalCortexStarmapDataset(save_path=str(data))
    check(starmap, oracle["starmap"])
    np.testing.assert_allclose(starmap.x_coord, oracle["starmap"]["x_coord"])
    np.testing.assert_allclose(starmap.y_coord, oracle["starmap"]["y_coord"])


def test_retina_cell_types_follow_labels(data, oracle):
    gold = oracle["retina"]
    ds = RetinaDataset(save_path=str(data))
    check(ds, gold, labels=False)
    assert ds.labels.ravel().tolist() == gold["labels"]
    # 0.5 listed all 15 names whether or not the cells have them; the unused ones
    # are dropped here, and each cell keeps its name.
    assert per_cell_types(ds) == gold_per_cell_types(gold)
    assert len(ds.cell_types) == ds.n_labels == 5


def test_smfish(data, oracle):
    ds = SmfishDataset(save_path=str(data))
    check(ds, oracle["smfish"])
    np.testing.assert_allclose(
        ds.x_coord.ravel(), np.ravel(oracle["smfish"]["x_coord"])
    )
    check(
        SmfishDataset(save_path=str(data), use_high_level_cluster=False),
        oracle["smfish_all_clusters"],
    )


def test_pbmc(data, oracle):
    gold = oracle["pbmc"]
    ds = PbmcDataset(save_path=str(data), save_path_10X=str(data / "10X"))
    check(ds, gold, labels=False)
    assert ds.labels.ravel().tolist() == gold["labels"]
    assert as_list(ds.barcodes) == gold["barcodes"]
    np.testing.assert_allclose(ds.qc, gold["qc"])
    # 0.5 named the labels with the first n_labels cluster names, wrong when a
    # cluster is absent (here "Megakaryocytes"); names now follow the clusters.
    metadata = pd.read_pickle(data / "pbmc_metadata.pickle")
    expected = np.asarray(metadata["list_clusters"])[metadata["clusters"]]
    assert per_cell_types(ds) == as_list(expected)
    # de_metadata rows now follow the genes of the dataset.
    assert ds.de_metadata["ENSG"].tolist() == as_list(ds.gene_names)
    assert len(ds.design) == len(ds.raw_qc) == len(ds.qc_pc) == ds.nb_cells
    assert sp_sparse.isspmatrix_csr(ds.X)


def test_pbmc_with_mismatched_gene_sets(data, tmp_path):
    """DE genes absent from the 10x data are skipped; others keep their DE rows."""
    for name in ["pbmc_metadata.pickle", "gene_info_pbmc.csv"]:
        shutil.copy(data / name, tmp_path)
    gene_info = pd.read_csv(tmp_path / "gene_info_pbmc.csv")
    changed = gene_info.iloc[2:].copy()  # two genes without DE results ...
    changed.loc[changed.index[0], "ENSG"] = "ENSG99999999999"  # ... and one unknown
    changed.to_csv(tmp_path / "gene_info_pbmc.csv", index=False)
    ds = PbmcDataset(save_path=str(tmp_path), save_path_10X=str(data / "10X"))
    expected = set(changed["ENSG"]) - {"ENSG99999999999"}
    assert set(as_list(ds.gene_names)) == expected and ds.nb_genes == 7
    assert ds.de_metadata["ENSG"].tolist() == as_list(ds.gene_names)
    rows = changed.set_index("ENSG").loc[as_list(ds.gene_names)]
    np.testing.assert_allclose(ds.de_metadata["CD_logFC"], rows["CD_logFC"])
    assert len(ds.design) == ds.nb_cells == len(ds.labels)


def test_purified_pbmc(data, oracle):
    ds = PurifiedPBMCDataset(
        save_path=str(data / "10X"), subset_datasets=[0, 1, 2, 3, 4]
    )
    check(ds, oracle["purified_pbmc_0_to_4"])
    assert sp_sparse.isspmatrix_csr(ds.X)
    # 0.5 loaded cd4_t_helper twice (listed twice), duplicating its cells.
    twice = PurifiedPBMCDataset(save_path=str(data / "10X"), subset_datasets=[0, 7, 1])
    assert as_list(twice.cell_types) == ["cd4_t_helper", "regulatory_t"]
    np.testing.assert_array_equal(dense32(twice.X), dense32(ds.X)[:100])


def test_seqfish_reads_genes_by_cells(data, oracle):
    # 0.5 read the header-less sheet with a header (losing the first gene) and took
    # its genes as cells; cells are now the columns and genes are named.
    gold = oracle["seqfish"]
    ds = SeqfishDataset(save_path=str(data))
    assert ds.nb_cells == gold["shape"][1] and ds.nb_genes == gold["shape"][0] + 1
    assert digest(dense32(ds.X)[:, 1:].T) == gold["X_sha1"]
    assert ds.gene_names[:3].tolist() == ["DMBX1", "EMX2", "UNCX"]


@pytest.mark.parametrize(
    "region, key",
    [
        ("subventricular cortex", "seqfishplus_cortex"),
        ("olfactory bulb", "seqfishplus_ob"),
    ],
)
def test_seqfishplus_drops_the_index_column(data, oracle, region, key):
    # 0.5 read the unnamed row-index column of the tables as a gene.
    gold = oracle[key]
    ds = SeqFishPlusDataset(region, save_path=str(data))
    np.testing.assert_array_equal(dense32(ds.X), np.asarray(gold["X"])[:, 1:])
    assert as_list(ds.gene_names) == gold["gene_names"][1:]
    assert sorted(ds.cell_attribute_names) == gold["cell_attribute_names"]
    np.testing.assert_array_equal(ds.cell_id, gold["cell_id"])
    assert ds.axis.tolist() == ["x", "y"]
    if "region" in gold:
        assert as_list(ds.region) == gold["region"]


def test_starmap_real_file(shared_data, tmp_path):
    source = shared_data / "real" / "starmap_mpfc_3704.loom"
    shutil.copy(source, tmp_path / "mpfc-starmap.loom")
    ds = PreFrontalCortexStarmapDataset(save_path=str(tmp_path))
    with loompy.connect(str(source), mode="r", validate=False) as loom:
        counts = loom[:, :].T
        clusters = loom.ca["Clusters"].astype(str)
        coordinates = loom.ca["Spatial_coordinates"]
    assert (ds.nb_cells, ds.nb_genes) == (3704, 158)
    np.testing.assert_allclose(ds.X, counts.astype(np.float32))
    assert per_cell_types(ds) == clusters.tolist()
    np.testing.assert_allclose(ds.x_coord, coordinates[:, 0])
