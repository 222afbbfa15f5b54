"""t-SNE and imputation figures: rendered to PNG files without a display."""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from scvi.dataset import GeneExpressionDataset
from scvi.inference import Posterior
from scvi.inference._plots import _pyplot
from scvi.inference.posterior import knn_purity, plot_imputation

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def one_thread():
    """t-SNE and k-means of a few points are fastest (and steadiest) on one thread."""
    with threadpool_limits(1):
        yield


class CountsAsLatentModel(torch.nn.Module):
    """Stand-in model whose latent representation is the first four count columns."""

    def sample_from_posterior_z(self, x, y=None, give_mean=False):
        return x[:, :4]


@pytest.fixture
def posterior():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 30)
    X = rng.poisson(5.0, size=(90, 6)).astype(np.float32)
    X[:, :4] += 100.0 * labels[:, None] * np.array([1, 0, 1, 0])
    dataset = GeneExpressionDataset()
    dataset.populate_from_data(
        X, batch_indices=np.arange(90) % 2, labels=labels, cell_types=["x", "y", "z"]
    )
    yield Posterior(
        CountsAsLatentModel(),
        dataset,
        use_cuda=False,
        data_loader_kwargs={"batch_size": 32},
    )
    _pyplot().close("all")


def is_png(path) -> bool:
    return path.read_bytes()[:8] == PNG_MAGIC


def test_apply_t_sne_keeps_clusters_apart(posterior):
    latent, batches, labels = posterior.get_latent()
    np.random.seed(0)
    embedding, chosen = posterior.apply_t_sne(latent, n_samples=60)
    assert embedding.shape == (60, 2)
    assert len(np.unique(chosen)) == 60
    assert knn_purity(embedding, labels[chosen], n_neighbors=5) == 1.0

    planar = np.random.default_rng(1).normal(size=(50, 2))
    points, chosen = posterior.apply_t_sne(planar, n_samples=20)
    np.testing.assert_array_equal(points, planar[chosen])  # 2-D input: only subsampled
    points, chosen = posterior.apply_t_sne(planar, n_samples=None)
    np.testing.assert_array_equal(chosen, np.arange(50))


def test_show_t_sne_writes_every_colouring(posterior, tmp_path):
    path = tmp_path / "both.png"
    posterior.show_t_sne(
        n_samples=45, color_by="batches and labels", save_name=str(path)
    )
    assert is_png(path)
    coordinates = np.random.default_rng(2).normal(size=(90, 2))
    _, batches, labels = posterior.get_latent()
    for color_by in ("", "scalar", "batches", "labels"):
        path = tmp_path / f"{color_by or 'plain'}.png"
        posterior.show_t_sne(
            color_by=color_by,
            save_name=str(path),
            latent=coordinates,
            batch_indices=batches,
            labels=labels,
        )
        assert is_png(path)
    legend = _pyplot().gca().get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["x", "y", "z"]
    with pytest.raises(ValueError, match="color_by"):
        posterior.show_t_sne(color_by="cell types")
    with pytest.raises(ValueError, match="batch_indices"):
        posterior.show_t_sne(color_by="batches", latent=coordinates, labels=labels)


def test_plot_imputation_saves_png_without_blocking(tmp_path):
    rng = np.random.default_rng(3)
    original = rng.poisson(3.0, size=400).astype(float)
    imputed = original * 0.8 + rng.gamma(1.0, size=400)
    title = str(tmp_path / "imputation")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "FigureCanvasAgg is non-interactive"
        plot_imputation(original, imputed, show_plot=True, title=title)
    assert is_png(tmp_path / "imputation.png")
    # Too few distinct points for a kernel density: a histogram is drawn instead.
    plot_imputation(
        np.ones(5), np.ones(5) * 2, show_plot=False, title=str(tmp_path / "flat")
    )
    assert is_png(tmp_path / "flat.png")
    with pytest.raises(ValueError, match="same length"):
        plot_imputation(original, imputed[:3])


def test_headless_session_uses_agg():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")
    }
    code = "from scvi.inference._plots import _pyplot; print(_pyplot().get_backend())"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip().lower() == "agg"
