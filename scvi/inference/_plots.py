"""Figures of a posterior: t-SNE of the latent space and the imputation density plot.

Matplotlib is imported on first use. Without a display (no ``DISPLAY`` or
``WAYLAND_DISPLAY`` on Linux) and without a backend chosen by the user, the
non-interactive Agg backend is selected, so that nothing ever waits for a window.
"""

import logging
import os
import sys
from types import ModuleType
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from scipy.stats import gaussian_kde
from sklearn.manifold import TSNE

from scvi.models.utils import check_option

logger = logging.getLogger(__name__)

_COLOR_OPTIONS = ("", "scalar", "batches", "labels", "batches and labels")
_NON_INTERACTIVE = ("agg", "cairo", "pdf", "pgf", "ps", "svg", "template")


def _pyplot() -> ModuleType:
    """:mod:`matplotlib.pyplot`, on the Agg backend when no display is available."""
    if "matplotlib.pyplot" not in sys.modules:
        import matplotlib

        headless = sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        )
        if headless and "MPLBACKEND" not in os.environ:
            matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _show(plt: ModuleType) -> None:
    """Display the current figures when the backend can (never blocks on Agg and the like)."""
    if plt.get_backend().lower() in _NON_INTERACTIVE:
        logger.debug(
            "Backend %s cannot display figures; not showing.", plt.get_backend()
        )
        return
    plt.show()


def plot_imputation(
    original: np.ndarray,
    imputed: np.ndarray,
    show_plot: bool = True,
    title: str = "Imputation",
) -> None:
    """Density of imputed against original counts, saved to ``<title>.png``.

    Only pairs where both values are below 10 are drawn. The plot shows a Gaussian
    kernel density estimate (original counts horizontally), the least-squares line
    through the origin regressing original on imputed values, and the diagonal.

    Parameters
    ----------
    original
        Original counts of the corrupted entries.
    imputed
        Imputed values of the same entries.
    show_plot
        Also display the figure (only with an interactive backend).
    title
        Title of the figure; the file is ``title + ".png"``.
    """
    original = np.asarray(original, dtype=np.float64).ravel()
    imputed = np.asarray(imputed, dtype=np.float64).ravel()
    if original.shape != imputed.shape:
        raise ValueError(
            f"original and imputed must have the same length: {original.size} vs {imputed.size}."
        )
    ymax = 10
    keep = (original < ymax) & (imputed < ymax)
    x, y = original[keep], imputed[keep]
    plt = _pyplot()
    plt.figure(figsize=(5, 5))
    axes = plt.gca()
    axes.set_xlim([0, ymax])
    axes.set_ylim([0, ymax])
    n_bins = 50
    grid_x, grid_y = np.mgrid[0 : ymax : n_bins * 1j, 0 : ymax : n_bins * 1j]
    try:
        density = gaussian_kde(np.vstack([x, y]))(
            np.vstack([grid_x.ravel(), grid_y.ravel()])
        )
    except (np.linalg.LinAlgError, ValueError):
        logger.info(
            "Too few distinct points for a density estimate; drawing a histogram."
        )
        density = np.histogram2d(x, y, bins=n_bins, range=[[0, ymax], [0, ymax]])[0]
    plt.pcolormesh(
        grid_x, grid_y, density.reshape(grid_x.shape), cmap="Reds", shading="auto"
    )
    plt.title(title, fontsize=12)
    plt.ylabel("Imputed counts")
    plt.xlabel("Original counts")
    line = np.linspace(0, ymax)
    if np.any(y):
        # Least-squares fit original ~ slope * imputed, as in scVI 0.5.
        slope = np.linalg.lstsq(y[:, None], x, rcond=None)[0]
        plt.plot(slope * line, line, color="black")
    plt.plot(line, line, color="black", linestyle=":")
    plt.savefig(title + ".png")
    if show_plot:
        _show(plt)


class PlotsMixin:
    """t-SNE figures of :class:`~scvi.inference.Posterior`."""

    @staticmethod
    def apply_t_sne(
        latent: np.ndarray, n_samples: int = 1000
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Two-dimensional t-SNE embedding of a random subset of points.

        Parameters
        ----------
        latent
            Points, ``(n_points, n_dims)``; already 2-D points are only subsampled.
        n_samples
            Number of points drawn without replacement (through :mod:`numpy.random`);
            all points when 0 or None.

        Returns
        -------
        ``(coordinates (n, 2), indices of the drawn points)``.
        """
        latent = np.asarray(latent)
        idx_t_sne = (
            np.random.permutation(len(latent))[:n_samples]
            if n_samples
            else np.arange(len(latent))
        )
        latent = latent[idx_t_sne]
        if latent.shape[1] != 2:
            # scikit-learn requires perplexity < n_points; 30 is its default.
            perplexity = min(30.0, max((len(latent) - 1) / 3.0, 1.0))
            latent = TSNE(perplexity=perplexity).fit_transform(latent)
        return latent, idx_t_sne

    @torch.no_grad()
    def show_t_sne(
        self,
        n_samples: int = 1000,
        color_by: str = "",
        save_name: str = "",
        latent: Optional[np.ndarray] = None,
        batch_indices: Optional[np.ndarray] = None,
        labels: Optional[np.ndarray] = None,
        n_batch: Optional[int] = None,
    ) -> None:
        """Scatter plot of a t-SNE of the latent space (a sample from the posterior).

        Parameters
        ----------
        n_samples
            Number of cells drawn for the t-SNE.
        color_by
            ``""`` (one colour), ``"scalar"`` (``labels`` as a continuous colour),
            ``"batches"``, ``"labels"`` (named by the dataset's ``cell_types``) or
            ``"batches and labels"`` (two panels).
        save_name
            File to save the figure to (not saved when empty).
        latent, batch_indices, labels
            2-D coordinates to draw with their batches and labels, instead of the
            posterior's t-SNE.
        n_batch
            Number of batches to colour (the dataset's by default).
        """
        check_option("color_by", color_by, _COLOR_OPTIONS)
        if latent is None:
            latent, batch_indices, labels = self.get_latent(sample=True)[:3]
            latent, idx_t_sne = self.apply_t_sne(latent, n_samples)
            batch_indices = batch_indices[idx_t_sne]
            labels = labels[idx_t_sne]
        latent = np.asarray(latent)
        if "batches" in color_by and batch_indices is None:
            raise ValueError(f"color_by={color_by!r} needs batch_indices with latent.")
        if color_by in ("scalar", "labels", "batches and labels") and labels is None:
            raise ValueError(f"color_by={color_by!r} needs labels with latent.")
        if n_batch is None:
            n_batch = self.gene_dataset.n_batches
        plt = _pyplot()
        if color_by == "":
            plt.figure(figsize=(10, 10))
            plt.scatter(latent[:, 0], latent[:, 1])
        elif color_by == "scalar":
            plt.figure(figsize=(10, 10))
            plt.scatter(latent[:, 0], latent[:, 1], c=np.asarray(labels).ravel())
        elif color_by in ("batches", "labels"):
            plt.figure(figsize=(10, 10))
            if color_by == "batches":
                self._scatter_groups(
                    plt.gca(), latent, batch_indices, self._batch_names(n_batch)
                )
            else:
                self._scatter_groups(plt.gca(), latent, labels, self._label_names())
        else:
            _, axes = plt.subplots(1, 2, figsize=(14, 7))
            self._scatter_groups(
                axes[0], latent, batch_indices, self._batch_names(n_batch)
            )
            axes[0].set_title("batch coloring")
            axes[0].axis("off")
            self._scatter_groups(axes[1], latent, labels, self._label_names())
            axes[1].set_title("label coloring")
            axes[1].axis("off")
        plt.axis("off")
        plt.tight_layout()
        if save_name:
            plt.savefig(save_name)

    @staticmethod
    def _batch_names(n_batch: int) -> Sequence[str]:
        return [str(batch) for batch in range(n_batch)]

    def _label_names(self) -> Sequence[str]:
        cell_types = getattr(self.gene_dataset, "cell_types", None)
        n_labels = self.gene_dataset.n_labels
        if cell_types is not None and len(cell_types) == n_labels:
            return [str(name) for name in cell_types]
        return [str(label) for label in range(n_labels)]

    @staticmethod
    def _scatter_groups(
        axes, latent: np.ndarray, groups: np.ndarray, names: Sequence[str]
    ) -> None:
        """One scatter per group code ``0..len(names)-1``, named in the legend."""
        groups = np.asarray(groups).ravel()
        for code, name in enumerate(names):
            chosen = groups == code
            axes.scatter(latent[chosen, 0], latent[chosen, 1], label=name)
        axes.legend()
