"""Loaders download what scVI 0.5 downloaded, to the same file names, and fail clearly.

No network is used: ``urlopen`` is redirected to the 0.5 fixture files, or to a local
HTTP server on 127.0.0.1.
"""

import http.server
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

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
    MouseOBDataset,
    PbmcDataset,
    PreFrontalCortexStarmapDataset,
    PurifiedPBMCDataset,
    RetinaDataset,
    SeqfishDataset,
    SeqFishPlusDataset,
    SmfishDataset,
)
from scvi.dataset import _download as download_module
from scvi.dataset._download import DownloadError
from scvi.dataset.dataset10X import available_datasets

REAL_URLOPEN = urllib.request.urlopen
TENX = "http://cf.10xgenomics.com/samples/cell-exp/"
SCVI_DATA = "https://github.com/YosefLab/scVI-data/raw/master/"
GEO = "ftp://ftp.ncbi.nlm.nih.gov/geo/series/GSE100nnn/GSE100866/suppl/GSE100866_"
SPATIAL = "http://www.spatialtranscriptomicsresearch.org/wp-content/uploads/2016/07/"
HEMATO_COUNTS = (
    "https://www.ncbi.nlm.nih.gov/geo/download/?acc=GSM2388072&format=file&"
    "file=GSM2388072%5Fbasal%5Fbone%5Fmarrow%2Eraw%5Fumifm%5Fcounts%2Ecsv%2Egz"
)


def tenx(group, name, kind="gene_bc_matrices"):
    return f"{TENX}{group}/{name}/{name}_filtered_{kind}.tar.gz"


# loader -> [(URL as in scVI 0.5, file written, fixture served for it)]
CASES = {
    "cortex": (
        lambda root: CortexDataset(save_path=str(root)),
        [
            (
                "https://storage.googleapis.com/linnarsson-lab-www-blobs/blobs/cortex/"
                "expression_mRNA_17-Aug-2014.txt",
                "expression.bin",
                "expression.bin",
            )
        ],
    ),
    "brain_large": (
        lambda root: BrainLargeDataset(save_path=str(root), nb_genes_to_keep=50),
        [
            (
                f"{TENX}1.3.0/1M_neurons/1M_neurons_filtered_gene_bc_matrices_h5.h5",
                "brain_large.h5",
                "brain_large.h5",
            )
        ],
    ),
    "cbmc": (
        lambda root: CbmcDataset(save_path=str(root / "citeSeq")),
        [
            (
                f"{GEO}CBMC_8K_13AB_10X-{kind}.csv.gz",
                f"citeSeq/cbmc/cbmc_{name}.csv.gz",
                f"citeSeq/cbmc/cbmc_{name}.csv.gz",
            )
            for kind, name in [
                ("RNA_umi", "rna"),
                ("ADT_umi", "adt"),
                ("ADT_clr-transformed", "adt_centered"),
            ]
        ],
    ),
    "breast_cancer": (
        lambda root: BreastCancerDataset(save_path=str(root)),
        [
            (SPATIAL + "Layer2_BC_count_matrix-1.tsv",)
            + ("Layer2_BC_count_matrix-1.tsv",) * 2
        ],
    ),
    "mouse_ob": (
        lambda root: MouseOBDataset(save_path=str(root)),
        [
            (SPATIAL + "Rep11_MOB_count_matrix-1.tsv",)
            + ("Rep11_MOB_count_matrix-1.tsv",) * 2
        ],
    ),
    "10x_v3": (
        lambda root: Dataset10X("pbmc_10k_protein_v3", save_path=str(root / "10X")),
        [
            (
                tenx("3.0.0", "pbmc_10k_protein_v3", "feature_bc_matrix"),
                "10X/pbmc_10k_protein_v3/filtered_feature_bc_matrix.tar.gz",
                "10X/pbmc_10k_protein_v3/filtered_feature_bc_matrix.tar.gz",
            )
        ],
    ),
    "brain_small": (
        lambda root: BrainSmallDataset(
            save_path=str(root), save_path_10X=str(root / "10X")
        ),
        [
            (
                tenx("2.1.0", "neuron_9k"),
                "10X/neuron_9k/filtered_gene_bc_matrices.tar.gz",
                "10X/neuron_9k/filtered_gene_bc_matrices.tar.gz",
            ),
            (SCVI_DATA + "brain_small_metadata.pickle",)
            + ("brain_small_metadata.pickle",) * 2,
        ],
    ),
    "hemato": (
        lambda root: HematoDataset(save_path=str(root / "HEMATO")),
        [
            (HEMATO_COUNTS,) + ("HEMATO/bBM.raw_umifm_counts.csv.gz",) * 2,
            (
                "https://github.com/romain-lopez/scVI-reproducibility/raw/master/"
                "additional/data.zip",
                "HEMATO/data.zip",
                "HEMATO/data.zip",
            ),
        ],
    ),
    "retina": (
        lambda root: RetinaDataset(save_path=str(root)),
        [(SCVI_DATA + "retina.loom", "retina.loom", "retina.loom")],
    ),
    "starmap": (
        lambda root: PreFrontalCortexStarmapDataset(save_path=str(root)),
        [(SCVI_DATA + "mpfc-starmap.loom", "mpfc-starmap.loom", "mpfc-starmap.loom")],
    ),
    "fc_dropseq": (
        lambda root: FrontalCortexDropseqDataset(save_path=str(root)),
        [(SCVI_DATA + "fc-dropseq.loom", "fc-dropseq.loom", "fc-dropseq.loom")],
    ),
    "pbmc": (
        lambda root: PbmcDataset(save_path=str(root)),
        [
            (SCVI_DATA + "gene_info.csv", "gene_info_pbmc.csv", "gene_info_pbmc.csv"),
            (SCVI_DATA + "pbmc_metadata.pickle",) + ("pbmc_metadata.pickle",) * 2,
        ]
        + [
            (
                tenx("2.1.0", name),
                f"{name}/filtered_gene_bc_matrices.tar.gz",
                f"10X/{name}/filtered_gene_bc_matrices.tar.gz",
            )
            for name in ["pbmc8k", "pbmc4k"]
        ],
    ),
    "purified_pbmc": (
        lambda root: PurifiedPBMCDataset(save_path=str(root), subset_datasets=[6, 9]),
        [
            (
                tenx("1.1.0", name),
                f"{name}/filtered_gene_bc_matrices.tar.gz",
                f"10X/{name}/filtered_gene_bc_matrices.tar.gz",
            )
            for name in ["b_cells", "cd56_nk"]
        ],
    ),
    "seqfish": (
        lambda root: SeqfishDataset(save_path=str(root)),
        [
            (
                "https://www.cell.com/cms/attachment/2080562255/2072099886/mmc6.xlsx",
                "SeqFISH.xlsx",
                "SeqFISH.xlsx",
            )
        ],
    ),
    "seqfishplus": (
        lambda root: SeqFishPlusDataset(save_path=str(root)),
        [
            (
                "https://github.com/CaiGroup/seqFISH-PLUS/raw/master/sourcedata.zip",
                "seqfishplus.zip",
                "seqfishplus.zip",
            )
        ],
    ),
    "smfish": (
        lambda root: SmfishDataset(save_path=str(root)),
        [
            (
                "http://linnarssonlab.org/osmFISH/osmFISH_SScortex_mouse_all_cells.loom",
                "osmFISH_SScortex_mouse_all_cell.loom",
                "osmFISH_SScortex_mouse_all_cell.loom",
            )
        ],
    ),
}


@pytest.fixture(autouse=True)
def _no_retry_wait(monkeypatch):
    monkeypatch.setattr(download_module, "_RETRY_DELAY", 0.0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_loader_downloads_the_0_5_urls_to_the_0_5_file_names(
    case, shared_data, tmp_path, monkeypatch
):
    build, files = CASES[case]
    fixtures = shared_data / "scvi05_fixtures"
    served = {url: fixtures / source for url, _, source in files}
    requested = []

    def fake_urlopen(url, timeout=None):
        requested.append(url)
        if url not in served:
            raise urllib.error.URLError(f"unexpected URL {url}")
        return REAL_URLOPEN(served[url].as_uri(), timeout=timeout)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    if case == "hemato":  # normally extracted from data.zip, which is a stub here
        (tmp_path / "HEMATO").mkdir()
        for name in ["bBM.filtered_gene_list.paper.txt", "bBM.spring_and_pba.csv"]:
            shutil.copy(fixtures / "HEMATO" / name, tmp_path / "HEMATO")
    ds = build(tmp_path)
    assert sorted(requested) == sorted(served)
    for _, target, source in files:
        written = tmp_path / target
        assert written.read_bytes() == (fixtures / source).read_bytes()
    assert not list(tmp_path.rglob("*.part"))
    assert ds.nb_cells > 0 and ds.nb_genes > 0
    requested.clear()
    build(tmp_path)  # files present: nothing is downloaded again
    assert requested == []


@pytest.mark.parametrize(
    "group, name",
    [(group, name) for group, names in available_datasets.items() for name in names],
)
def test_every_10x_dataset_name_constructs(tmp_path, group, name):
    kind = "gene_bc_matrices" if group in ("1.1.0", "2.1.0") else "feature_bc_matrix"
    folder = tmp_path / name
    folder.mkdir()
    (folder / f"raw_{kind}.tar.gz").write_bytes(b"")  # present: no download
    ds = Dataset10X(name, save_path=str(tmp_path), type="raw", delayed_populating=True)
    assert ds.urls == [f"{TENX}{group}/{name}/{name}_raw_{kind}.tar.gz"]
    assert ds.filenames == [f"raw_{kind}.tar.gz"]
    assert ds.save_path == str(folder)


@pytest.mark.parametrize(
    "name, accession",
    [("cbmc", "CBMC_8K_13AB_10X"), ("pbmc", "PBMC_vs_flow_10X"), ("cd8", "CD8_merged")],
)
def test_every_cite_seq_name_constructs(tmp_path, name, accession):
    folder = tmp_path / name
    folder.mkdir()
    for kind in ("rna", "adt", "adt_centered"):
        (folder / f"{name}_{kind}.csv.gz").write_bytes(b"")
    ds = CiteSeqDataset(name, save_path=str(tmp_path), delayed_populating=True)
    assert ds.urls[1] == f"{GEO}{accession}-ADT_umi.csv.gz"
    assert tuple(ds.filenames) == (
        f"{name}_rna.csv.gz",
        f"{name}_adt.csv.gz",
        f"{name}_adt_centered.csv.gz",
    )


class _Handler(http.server.BaseHTTPRequestHandler):
    calls = {}

    def do_GET(self):  # noqa: N802 (http.server API)
        self.calls[self.path] = self.calls.get(self.path, 0) + 1
        body = b",c1,c2\ng1,1,2\ng2,3,0\n"
        if self.path == "/flaky.csv" and self.calls[self.path] == 1:
            self.send_error(503)
        elif self.path in ("/flaky.csv", "/counts.csv"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_loader_downloads_over_http_with_a_retry(server, tmp_path):
    ds = CsvDataset("counts.csv", save_path=str(tmp_path), url=f"{server}/counts.csv")
    np.testing.assert_array_equal(ds.X, [[1, 3], [2, 0]])
    flaky = CsvDataset("flaky.csv", save_path=str(tmp_path), url=f"{server}/flaky.csv")
    assert _Handler.calls["/flaky.csv"] == 2
    np.testing.assert_array_equal(flaky.X, ds.X)


def test_http_404_names_the_url_and_where_to_put_the_file(server, tmp_path):
    url = f"{server}/absent.csv"
    with pytest.raises(DownloadError) as error:
        CsvDataset("absent.csv", save_path=str(tmp_path / "data"), url=url)
    message = str(error.value)
    assert url in message and "404" in message
    assert str(tmp_path / "data" / "absent.csv") in message
    assert _Handler.calls["/absent.csv"] == 1  # not retried
    assert list((tmp_path / "data").iterdir()) == []


def test_offline_named_loader_fails_clearly(tmp_path, monkeypatch):
    attempts = []

    def offline(url, timeout=None):
        attempts.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DownloadError) as error:
        RetinaDataset(save_path=str(tmp_path))
    message = str(error.value)
    assert SCVI_DATA + "retina.loom" in message
    assert str(Path(tmp_path) / "retina.loom") in message
    assert "gave up after 3 attempts" in message
    assert len(attempts) == 3
    assert list(tmp_path.iterdir()) == []
