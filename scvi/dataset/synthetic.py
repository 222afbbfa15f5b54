"""Synthetic count datasets for tests, tutorials and benchmarks.

All random draws use the global ``np.random`` state, so ``np.random.seed`` makes
them reproducible (and identical to scVI 0.5 for the same seed).
``SyntheticDatasetCorr``, ``ZISyntheticDatasetCorr`` and ``SyntheticRandomDataset``
seed it with 0 themselves, as in 0.5.
"""

import logging
import os
import pickle

import numpy as np

from .dataset import CellMeasurement, DownloadableDataset, GeneExpressionDataset

logger = logging.getLogger(__name__)


def _check_positive(**sizes: int) -> None:
    for name, value in sizes.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")


class SyntheticDataset(GeneExpressionDataset):
    """Zero-inflated negative binomial counts in several batches, random labels.

    Counts are NB(5, 0.3) draws zeroed with probability 0.3; each cell gets a
    uniformly random label; a ``protein_expression`` measurement (NB(5, 0.3)
    counts, columns ``protein_names``) is attached.

    Parameters
    ----------
    batch_size
        Number of cells per batch.
    nb_genes
        Number of genes.
    n_proteins
        Number of proteins.
    n_batches
        Number of batches.
    n_labels
        Number of labels (named ``undefined_0``, ...).
    """

    def __init__(
        self,
        batch_size: int = 200,
        nb_genes: int = 100,
        n_proteins: int = 100,
        n_batches: int = 2,
        n_labels: int = 3,
    ):
        super().__init__()
        _check_positive(
            batch_size=batch_size,
            nb_genes=nb_genes,
            n_proteins=n_proteins,
            n_batches=n_batches,
            n_labels=n_labels,
        )
        shape = (n_batches, batch_size, nb_genes)
        counts = np.random.negative_binomial(5, 0.3, size=shape)
        kept = np.random.binomial(n=1, p=0.7, size=shape)
        counts = counts * kept
        labels = np.random.randint(0, n_labels, size=(n_batches, batch_size, 1))
        self.populate_from_per_batch_list(
            list(counts),
            labels_per_batch=list(labels),
            gene_names=np.arange(nb_genes).astype(str),
            cell_types=[f"undefined_{i}" for i in range(n_labels)],
        )
        proteins = np.random.negative_binomial(5, 0.3, size=(self.nb_cells, n_proteins))
        self.initialize_cell_measurement(
            CellMeasurement(
                name="protein_expression",
                data=proteins,
                columns_attr_name="protein_names",
                columns=np.arange(n_proteins),
            )
        )


class SyntheticRandomDataset(DownloadableDataset):
    """Gamma-Poisson counts with dropout (2000 cells x 10 genes, seed 0).

    Cells without counts are removed; labels are SIMLR clusters read from
    ``random_metadata.pickle`` (downloaded to ``save_path`` unless present), whose
    content is kept in ``simlr_metadata``.

    Parameters
    ----------
    mu
        Mean of the gamma-Poisson counts.
    theta
        Inverse dispersion.
    dropout
        Probability that a count is zeroed.
    save_path
        Folder of ``random_metadata.pickle``.
    """

    FILENAME = "random_metadata.pickle"

    def __init__(
        self,
        mu: float = 4.0,
        theta: float = 2.0,
        dropout: float = 0.7,
        save_path: str = "data/",
    ):
        if mu <= 0 or theta <= 0 or not 0 <= dropout < 1:
            raise ValueError(
                f"Need mu > 0, theta > 0 and 0 <= dropout < 1; got mu={mu}, "
                f"theta={theta}, dropout={dropout}."
            )
        self.mu = mu
        self.theta = theta
        self.dropout = dropout
        self.simlr_metadata = None
        super().__init__(
            urls="https://github.com/YosefLab/scVI-data/raw/master/random_metadata.pickle",
            filenames=SyntheticRandomDataset.FILENAME,
            save_path=save_path,
        )

    def populate(self) -> None:
        """Draw the counts (seed 0) and read the SIMLR labels."""
        np.random.seed(0)
        p = self.mu / (self.mu + self.theta)
        shape = (2000, 10)
        rates = np.random.gamma(self.theta, p / (1 - p), size=shape)
        counts = np.random.poisson(rates)
        counts *= np.random.binomial(1, 1 - self.dropout, size=shape)
        counts = counts[counts.sum(axis=1) > 0]
        logger.info(
            "mu %s theta %s r %s p %s dropout %s",
            self.mu,
            self.theta,
            self.theta,
            p,
            self.dropout,
        )
        with open(os.path.join(self.save_path, self.FILENAME), "rb") as handle:
            self.simlr_metadata = pickle.load(handle)
        self.populate_from_data(counts, labels=self.simlr_metadata["clusters"])


class SyntheticDatasetCorr(GeneExpressionDataset):
    """Poisson clusters, each with its own block of highly expressed genes.

    One batch; seeds ``np.random`` with 0. The Poisson rates are kept in
    ``exprs_param`` and the high-expression indicator in ``is_highly_exp`` (both
    shaped (1, n_cells, n_genes_total)); ``poisson_zero`` is the probability of a
    Poisson zero.

    Parameters
    ----------
    n_cells_cluster
        Cells per cluster.
    n_clusters
        Number of clusters (labels).
    n_genes_high
        Highly expressed genes per cluster.
    n_overlap
        Highly expressed genes shared by consecutive clusters.
    weight_high
        Relative expression weight of highly expressed genes.
    weight_low
        Relative expression weight of the other genes.
    lam_0
        Total Poisson rate of a cell.
    """

    def __init__(
        self,
        n_cells_cluster: int = 200,
        n_clusters: int = 3,
        n_genes_high: int = 25,
        n_overlap: int = 0,
        weight_high: float = 4e-2,
        weight_low: float = 1e-2,
        lam_0: float = 50.0,
    ):
        super().__init__()
        _check_positive(
            n_cells_cluster=n_cells_cluster,
            n_clusters=n_clusters,
            n_genes_high=n_genes_high,
        )
        if not 0 <= n_overlap < n_genes_high:
            raise ValueError(
                f"n_overlap must lie in [0, n_genes_high={n_genes_high}), got "
                f"{n_overlap}."
            )
        np.random.seed(0)
        n_genes_total = n_clusters * (n_genes_high - n_overlap) + n_overlap
        n_cells = n_cells_cluster * n_clusters
        self.n_cells_cluster = n_cells_cluster
        self.n_clusters = n_clusters
        self.batch_size = n_cells
        self.n_genes_total = n_genes_total
        self.n_genes_high = n_genes_high
        self.exprs_param = np.ones((1, n_cells, n_genes_total))
        self.is_highly_exp = np.zeros((1, n_cells, n_genes_total), dtype=bool)
        self.probas_zero_bio_tech_high = None
        self.probas_zero_bio_tech_low = None
        labels = np.ones((1, n_cells, 1))
        for cluster in range(n_clusters):
            cells = slice(cluster * n_cells_cluster, (cluster + 1) * n_cells_cluster)
            first_gene = cluster * (n_genes_high - n_overlap)
            high_genes = slice(first_gene, first_gene + n_genes_high)
            labels[:, cells, :] = cluster
            self.is_highly_exp[:, cells, high_genes] = True
            weights = np.full(n_genes_total, weight_low, dtype=np.float64)
            weights[high_genes] = weight_high
            self.exprs_param[:, cells, :] = lam_0 * weights / weights.sum()
        logger.info(
            "Poisson Params extremal values: %s, %s",
            self.exprs_param.min(),
            self.exprs_param.max(),
        )
        counts = np.random.poisson(self.exprs_param)
        self.poisson_zero = np.exp(-self.exprs_param)
        counts = self.mask(counts)
        self.populate_from_per_batch_list(
            list(counts),
            labels_per_batch=list(labels),
            gene_names=np.arange(n_genes_total).astype(str),
        )

    def mask(self, data: np.ndarray) -> np.ndarray:
        """Hook applied to the Poisson counts before populating; identity here."""
        return data


class ZISyntheticDatasetCorr(SyntheticDatasetCorr):
    """:class:`SyntheticDatasetCorr` with zero-inflation (technical dropouts).

    A count is dropped with probability ``coef * exp(-lam * rate**2)``, with
    separate ``coef``/``lam`` for highly and lowly expressed genes. Sets
    ``p_dropout`` (= ``zi_zero``), ``is_technical`` (dropped entries) and the
    2 x 2 tables ``probas_zero_bio_tech_high``/``_low``: mean probability of
    (Poisson non-zero, Poisson zero) x (kept, dropped) over high/low genes.

    Parameters
    ----------
    dropout_coef_high, lam_dropout_high
        Dropout coefficient and decay for highly expressed genes.
    dropout_coef_low, lam_dropout_low
        Dropout coefficient and decay for the other genes.
    n_cells_cluster, n_clusters, n_genes_high, n_overlap, weight_high, weight_low, lam_0
        As for :class:`SyntheticDatasetCorr`.
    """

    def __init__(
        self,
        dropout_coef_high: float = 0.05,
        lam_dropout_high: float = 0.0,
        dropout_coef_low: float = 0.08,
        lam_dropout_low: float = 0.0,
        n_cells_cluster: int = 200,
        n_clusters: int = 3,
        n_genes_high: int = 25,
        n_overlap: int = 0,
        weight_high: float = 4e-2,
        weight_low: float = 1e-2,
        lam_0: float = 50.0,
    ):
        for name, value in (
            ("dropout_coef_high", dropout_coef_high),
            ("dropout_coef_low", dropout_coef_low),
        ):
            if not 0 <= value < 1:
                raise ValueError(f"{name} must lie in [0, 1), got {value}.")
        self.dropout_coef_high = dropout_coef_high
        self.lam_dropout_high = lam_dropout_high
        self.dropout_coef_low = dropout_coef_low
        self.lam_dropout_low = lam_dropout_low
        self.p_dropout = None
        self.zi_zero = None
        self.is_technical = None
        super().__init__(
            n_cells_cluster=n_cells_cluster,
            n_clusters=n_clusters,
            n_genes_high=n_genes_high,
            n_overlap=n_overlap,
            weight_high=weight_high,
            weight_low=weight_low,
            lam_0=lam_0,
        )

    def mask(self, data: np.ndarray) -> np.ndarray:
        """Drop counts at random; record the dropout probabilities and mask."""
        squared = self.exprs_param**2
        p_low = self.dropout_coef_low * np.exp(-self.lam_dropout_low * squared)
        p_high = self.dropout_coef_high * np.exp(-self.lam_dropout_high * squared)
        self.p_dropout = np.where(self.is_highly_exp, p_high, p_low)
        kept = np.random.binomial(n=1, p=1 - self.p_dropout, size=data.shape)
        self.is_technical = kept == 0
        self.zi_zero = self.p_dropout
        self.probas_zero_bio_tech_high = self._zero_table(self.is_highly_exp)
        self.probas_zero_bio_tech_low = self._zero_table(~self.is_highly_exp)
        return data * kept.astype(np.float32)

    def _zero_table(self, genes: np.ndarray) -> np.ndarray:
        """Mean probabilities [[Poisson>0 & kept, Poisson>0 & dropped],
        [Poisson=0 & kept, Poisson=0 & dropped]] over the entries ``genes``."""
        poisson = (1 - self.poisson_zero, self.poisson_zero)
        dropout = (1 - self.zi_zero, self.zi_zero)
        return np.asarray([[np.mean((p * d)[genes]) for d in dropout] for p in poisson])
