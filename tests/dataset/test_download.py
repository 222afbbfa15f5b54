"""Downloads (offline: file:// URLs and a local HTTP server) and DownloadableDataset."""

import hashlib
import http.server
import os
import pathlib
import threading

import numpy as np
import pytest

from scvi.dataset import DownloadableDataset
from scvi.dataset._download import DownloadError, _download

PAYLOAD = bytes(range(256)) * 700  # ~175 kB, several read chunks


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server API)
        if self.path == "/ok":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path == "/truncated":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[:1000])
            self.wfile.flush()
            self.close_connection = True
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


def no_partial_files(folder):
    return not [name for name in os.listdir(folder) if name.endswith(".part")]


def test_download_from_file_url_with_checksums(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(PAYLOAD)
    target = tmp_path / "out"
    path = _download(
        source.as_uri(),
        str(target),
        "copy.bin",
        sha256=hashlib.sha256(PAYLOAD).hexdigest(),
        md5=hashlib.md5(PAYLOAD).hexdigest(),
        progress_bar=False,
    )
    assert path == str(target / "copy.bin")
    assert (target / "copy.bin").read_bytes() == PAYLOAD
    assert os.listdir(target) == ["copy.bin"]


def test_existing_file_is_not_downloaded_again(tmp_path):
    (tmp_path / "data.bin").write_bytes(b"local")
    _download("http://127.0.0.1:9/unreachable", str(tmp_path), "data.bin")
    assert (tmp_path / "data.bin").read_bytes() == b"local"


def test_download_over_http(server, tmp_path):
    _download(f"{server}/ok", str(tmp_path), "ok.bin", progress_bar=False)
    assert (tmp_path / "ok.bin").read_bytes() == PAYLOAD


def test_truncated_download_fails_and_leaves_nothing(server, tmp_path):
    url = f"{server}/truncated"
    with pytest.raises(DownloadError, match=f"Incomplete download of {url}.*1000 of"):
        _download(url, str(tmp_path), "cut.bin", progress_bar=False)
    assert os.listdir(tmp_path) == []


def test_http_error_names_the_url(server, tmp_path):
    url = f"{server}/missing"
    with pytest.raises(DownloadError, match=f"Could not download {url}.*404"):
        _download(url, str(tmp_path), "missing.bin", progress_bar=False)
    assert os.listdir(tmp_path) == []


def test_unreachable_file_url(tmp_path):
    url = (tmp_path / "absent.bin").as_uri()
    with pytest.raises(DownloadError, match="absent.bin"):
        _download(url, str(tmp_path / "out"), "x.bin", progress_bar=False)
    assert no_partial_files(tmp_path / "out")


@pytest.mark.parametrize("algorithm", ["sha256", "md5"])
def test_checksum_mismatch_fails_and_leaves_nothing(tmp_path, algorithm):
    source = tmp_path / "source.bin"
    source.write_bytes(PAYLOAD)
    target = tmp_path / "out"
    with pytest.raises(DownloadError, match=f"Checksum mismatch.*{algorithm}"):
        _download(
            source.as_uri(),
            str(target),
            "copy.bin",
            progress_bar=False,
            **{algorithm: "0" * 32},
        )
    assert os.listdir(target) == []


def test_progress_bar_can_be_shown_or_silenced(tmp_path, capsys):
    source = tmp_path / "source.bin"
    source.write_bytes(PAYLOAD)
    _download(source.as_uri(), str(tmp_path), "loud.bin", progress_bar=True)
    assert "loud.bin" in capsys.readouterr().err
    _download(source.as_uri(), str(tmp_path), "quiet.bin", progress_bar=False)
    assert capsys.readouterr().err == ""


class _TextCounts(DownloadableDataset):
    """Reads a whitespace-separated count matrix from its first file."""

    def populate(self):
        counts = np.loadtxt(os.path.join(self.save_path, self.filenames[0]))
        self.populate_from_data(counts)


def test_downloadable_dataset_downloads_then_populates(tmp_path):
    counts = np.arange(12).reshape(4, 3) + 1
    source = tmp_path / "counts.txt"
    np.savetxt(source, counts)
    ds = _TextCounts(urls=source.as_uri(), save_path=str(tmp_path / "data"))
    assert ds.filenames == ["dataset_0"]
    assert ds.save_path == str(tmp_path / "data")
    np.testing.assert_array_equal(ds.X, counts)
    delayed = _TextCounts(
        urls=[source.as_uri()],
        filenames="named.txt",
        save_path=str(tmp_path / "data"),
        delayed_populating=True,
    )
    assert delayed.X is None and (tmp_path / "data" / "named.txt").exists()
    delayed.populate()
    np.testing.assert_array_equal(delayed.X, counts)


def test_downloadable_dataset_relative_save_path_and_local_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.savetxt(pathlib.Path("local.txt"), np.ones((2, 2)))
    ds = _TextCounts(filenames="local.txt", save_path=".")
    assert ds.save_path == str(tmp_path)
    assert ds.nb_cells == 2


def test_downloadable_dataset_needs_a_filename_per_url(tmp_path):
    with pytest.raises(ValueError, match="2 urls but only 1 filenames"):
        _TextCounts(
            urls=["file:///a", "file:///b"], filenames=["a"], save_path=str(tmp_path)
        )
    with pytest.raises(TypeError):
        DownloadableDataset(save_path=str(tmp_path))
