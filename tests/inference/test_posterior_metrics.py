"""Latent-space metrics on constructed inputs with known answers.

Clustered point clouds are built with clusters far apart and tight inside, so that
every point's nearest neighbours are exactly the other points of its cluster; the
scores then have closed forms.
"""

import itertools

import numpy as np
import pytest
import scipy.stats
import torch
from threadpoolctl import threadpool_limits

from scvi.dataset import GeneExpressionDataset
from scvi.inference import Posterior
from scvi.inference.posterior import (
    entropy_batch_mixing,
    entropy_from_indices,
    get_bayes_factors,
    knn_purity,
    nn_overlap,
    unsupervised_clustering_accuracy,
)


@pytest.fixture(autouse=True)
def one_thread():
    """t-SNE and k-means of a few points are fastest (and steadiest) on one thread."""
    with threadpool_limits(1):
        yield


def clusters(n_clusters: int, size: int, dim: int = 3, seed: int = 0) -> np.ndarray:
    """``n_clusters * size`` points: cluster ``c`` occupies rows ``c*size .. (c+1)*size-1``."""
    rng = np.random.default_rng(seed)
    centres = 100.0 * np.arange(n_clusters)[:, None] * np.ones((1, dim))
    return np.repeat(centres, size, axis=0) + rng.normal(
        scale=0.1, size=(n_clusters * size, dim)
    )


def binary_entropy(p: float) -> float:
    return float(scipy.stats.entropy([p, 1 - p]))


# ---------------------------------------------------------------- batch mixing


def test_entropy_batch_mixing_separated_batches_is_zero():
    latent = clusters(4, 20)
    batches = np.repeat([0, 1, 0, 1], 20)
    assert entropy_batch_mixing(latent, batches, n_neighbors=19) == 0.0


@pytest.mark.parametrize("m", [2, 5, 10])
def test_entropy_batch_mixing_balanced_clusters_closed_form(m):
    # Clusters of 2m cells, m per batch; with 2m-1 neighbours every cell sees the
    # other 2m-1 cells of its cluster, of which m (or m-1) from batch 1, so every
    # cell has the same entropy H(m / (2m-1)) whatever cells the pools draw.
    latent = clusters(6, 2 * m)
    batches = np.tile(np.repeat([0, 1], m), 6)
    score = entropy_batch_mixing(latent, batches, n_neighbors=2 * m - 1, n_pools=3)
    assert score == pytest.approx(binary_entropy(m / (2 * m - 1)), rel=1e-12)
    assert score <= np.log(2)


def test_entropy_batch_mixing_orders_mixing_levels():
    rng = np.random.default_rng(1)
    latent = rng.normal(size=(400, 2))
    mixed = rng.integers(0, 2, size=400)
    partial = (latent[:, 0] + rng.normal(scale=1.0, size=400) > 0).astype(int)
    separated = (latent[:, 0] > 0).astype(int)
    apart = latent + 10.0 * separated[:, None]
    scores = [
        entropy_batch_mixing(points, batches, n_neighbors=20)
        for points, batches in ((latent, mixed), (latent, partial), (apart, separated))
    ]
    assert scores[0] > scores[1] > scores[2] == 0.0
    # Random batches: neighbourhood frequencies ~ Binomial(20, 1/2) / 20.
    expected = sum(
        scipy.stats.binom.pmf(k, 20, 0.5) * binary_entropy(k / 20) for k in range(21)
    )
    assert scores[0] == pytest.approx(expected, abs=0.03)


def test_entropy_batch_mixing_is_seeded_by_numpy_and_checks_input():
    rng = np.random.default_rng(2)
    latent = rng.normal(size=(100, 3))
    batches = rng.integers(0, 2, size=(100, 1))
    np.random.seed(5)
    first = entropy_batch_mixing(latent, batches, n_neighbors=10, n_pools=2)
    np.random.seed(5)
    assert entropy_batch_mixing(latent, batches, n_neighbors=10, n_pools=2) == first
    with pytest.raises(ValueError, match="at most two batches"):
        entropy_batch_mixing(latent, np.arange(100) % 3)
    with pytest.raises(ValueError, match="entries"):
        entropy_batch_mixing(latent, batches[:50])


def test_entropy_from_indices():
    assert entropy_from_indices([3, 3, 7, 7, 9, 9]) == pytest.approx(np.log(3))
    assert entropy_from_indices([1, 1, 1]) == 0.0
    values = [0, 0, 0, 1, 2, 2]
    assert entropy_from_indices(values) == pytest.approx(scipy.stats.entropy([3, 1, 2]))


# ---------------------------------------------------------------- purity, overlap


def test_knn_purity_closed_forms():
    latent = clusters(3, 10)
    pure = np.repeat([0, 1, 2], 10)
    assert knn_purity(latent, pure, n_neighbors=9) == 1.0
    # Every cluster holds 7 cells of label 0 and 3 of label 1: with 9 neighbours a
    # label-0 cell sees 6 of its label, a label-1 cell 2.
    mixed = np.tile([0] * 7 + [1] * 3, 3)
    assert knn_purity(latent, mixed, n_neighbors=9) == pytest.approx(
        (6 / 9 + 2 / 9) / 2
    )
    with pytest.raises(ValueError, match="n_neighbors"):
        knn_purity(latent, pure, n_neighbors=30)


def test_nn_overlap_identical_and_against_dense_spearman():
    rng = np.random.default_rng(3)
    X1 = rng.normal(size=(60, 4))
    spearman, fold = nn_overlap(X1, X1, k=6)
    assert spearman == pytest.approx(1.0)
    assert fold == pytest.approx(60 / 6)  # shared edges n*k, expected (n*k)^2 / n^2

    X2 = X1 + rng.normal(scale=0.7, size=X1.shape)
    spearman, fold = nn_overlap(X1, X2, k=6)
    adjacency = []
    for data in (X1, X2):
        distances = np.linalg.norm(data[:, None] - data[None], axis=2)
        np.fill_diagonal(distances, np.inf)
        nearest = np.argsort(distances, axis=1)[:, :6]
        matrix = np.zeros((60, 60))
        np.put_along_axis(matrix, nearest, 1.0, axis=1)
        adjacency.append(matrix)
    expected = scipy.stats.spearmanr(adjacency[0].ravel(), adjacency[1].ravel())[0]
    assert spearman == pytest.approx(expected, rel=1e-10)
    shared = (adjacency[0] * adjacency[1]).sum()
    assert fold == pytest.approx(shared * 60**2 / (60 * 6) ** 2)
    with pytest.raises(ValueError, match="same cells"):
        nn_overlap(X1, X2[:10])


# ---------------------------------------------------------------- clustering accuracy


def brute_force_accuracy(y: np.ndarray, y_pred: np.ndarray) -> float:
    values = np.unique(np.concatenate([y, y_pred]))
    best = 0
    for image in itertools.permutations(values):
        mapping = dict(zip(values, image))
        best = max(best, sum(mapping[p] == t for p, t in zip(y_pred, y)))
    return best / len(y)


@pytest.mark.parametrize("seed", range(6))
def test_unsupervised_clustering_accuracy_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n_values = 3 + seed % 3
    y = rng.integers(0, n_values, size=60)
    y_pred = np.where(
        rng.random(60) < 0.6, (y + seed) % n_values, rng.integers(0, n_values, 60)
    )
    accuracy, matching = unsupervised_clustering_accuracy(y, y_pred)
    assert accuracy == pytest.approx(brute_force_accuracy(y, y_pred))
    mapping = dict(matching.tolist())
    assert np.mean([mapping[p] == t for p, t in zip(y_pred, y)]) == pytest.approx(
        accuracy
    )


def test_unsupervised_clustering_accuracy_perfect_and_permutation_invariant():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 5, size=100)
    relabel = np.array([3, 0, 4, 1, 2])
    assert unsupervised_clustering_accuracy(y, relabel[y])[0] == 1.0
    y_pred = np.where(rng.random(100) < 0.5, y, rng.integers(0, 5, size=100))
    base = unsupervised_clustering_accuracy(y, y_pred)[0]
    assert unsupervised_clustering_accuracy(y, relabel[y_pred])[0] == pytest.approx(
        base
    )
    names = np.array(["b", "t", "nk", "mono", "dc"])
    assert unsupervised_clustering_accuracy(names[y], relabel[y])[0] == 1.0
    with pytest.raises(ValueError, match="length"):
        unsupervised_clustering_accuracy(y, y[:-1])


# ---------------------------------------------------------------- Bayes factors


def test_bayes_factors_closed_forms_and_antisymmetry():
    rng = np.random.default_rng(5)
    a = rng.uniform(size=(200, 4))
    b = rng.uniform(size=(200, 4))
    a[:, 0] += 2.0  # always higher in A
    b[:, 1] += 2.0  # always lower in A
    px_scale = np.concatenate([a, b])
    labels = np.repeat([0, 1], 200)
    saturated = np.log(1 + 1e-8) - np.log(1e-8)

    forward = get_bayes_factors(px_scale, labels, cell_idx=0, sample_pairs=False)
    backward = get_bayes_factors(px_scale, labels, cell_idx=1, sample_pairs=False)
    np.testing.assert_allclose(forward, -backward, rtol=1e-12)
    assert forward[0] == pytest.approx(saturated)
    assert forward[1] == pytest.approx(-saturated)
    proba = np.mean(a[:, 2] >= b[:, 2])
    assert forward[2] == pytest.approx(np.log(proba + 1e-8) - np.log(1 - proba + 1e-8))

    # Random pairs estimate P(a >= b) over all pairs of samples (standard error of
    # the log-odds about 4 / sqrt(M) = 0.03 here).
    np.random.seed(0)
    paired = get_bayes_factors(px_scale, labels, cell_idx=0, M_permutation=20000)
    all_pairs = np.mean(a[:, None, :] >= b[None, :, :], axis=(0, 1))
    np.testing.assert_allclose(
        paired, np.log(all_pairs + 1e-8) - np.log(1 - all_pairs + 1e-8), atol=0.1
    )
    assert paired[0] == pytest.approx(saturated) and paired[1] == pytest.approx(
        -saturated
    )
    # Pairs drawn from both groups pooled: P = (n^2 + n) / (2 n^2) for n distinct values.
    permuted = get_bayes_factors(
        px_scale, labels, cell_idx=0, M_permutation=20000, permutation=True
    )
    pooled = (400**2 + 400) / (2 * 400**2)
    np.testing.assert_allclose(permuted, np.log(pooled / (1 - pooled)), atol=0.1)

    other = get_bayes_factors(
        np.concatenate([px_scale, a + 5]),
        np.repeat([0, 1, 2], 200),
        cell_idx=0,
        other_cell_idx=1,
        genes_idx=[1, 0],
        sample_pairs=False,
    )
    np.testing.assert_allclose(other, forward[[1, 0]])


def test_bayes_factors_reject_bad_input():
    px_scale = np.ones((5, 3))
    with pytest.raises(ValueError, match="as many samples"):
        get_bayes_factors(px_scale, [0, 0, 1, 1, 1], cell_idx=0, sample_pairs=False)
    with pytest.raises(ValueError, match="Both populations"):
        get_bayes_factors(px_scale, [0] * 5, cell_idx=0)
    with pytest.raises(ValueError, match="one label per sample"):
        get_bayes_factors(px_scale, [0, 1], cell_idx=0)


# ---------------------------------------------------------------- posterior methods


class FixedLatentModel(torch.nn.Module):
    """Stand-in model whose latent representation is the first two count columns."""

    def sample_from_posterior_z(self, x, y=None, give_mean=False):
        return x[:, :2]


def clustered_posterior(n_batches: int, protein: bool = False) -> Posterior:
    # Three clusters of 30 distinct points on a 6 x 5 integer grid, 1000 apart.
    cell = np.arange(90)
    latent = np.stack(
        [1000 * (cell // 30) + cell % 6, 1000 * (cell // 30) + (cell % 30) // 6], 1
    )
    labels = np.repeat([0, 1, 2], 30)
    X = np.concatenate([latent, np.ones((90, 3))], axis=1).astype(np.float32)
    dataset = GeneExpressionDataset()
    dataset.populate_from_data(
        X,
        batch_indices=np.arange(90) % n_batches,
        labels=labels,
        cell_types=["a", "b", "c"],
    )
    if protein:
        dataset.protein_expression_clr = X[:, :2] + 1.0
    return Posterior(
        FixedLatentModel(),
        dataset,
        use_cuda=False,
        data_loader_kwargs={"batch_size": 32},
    )


def test_posterior_scores_of_a_perfectly_clustered_latent_space():
    posterior = clustered_posterior(n_batches=2)
    for algorithm in ("knn", "gmm"):
        silhouette, nmi, ari, uca = posterior.clustering_scores(algorithm)
        assert silhouette > 0.95
        assert (nmi, ari, uca) == pytest.approx((1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="prediction_algorithm"):
        posterior.clustering_scores("kmeans")
    # 30 neighbours but 29 other cells per cluster: one neighbour is always foreign.
    assert posterior.knn_purity() == pytest.approx(29 / 30)
    # Batches alternate inside each cluster of 30 cells (15 per batch): every
    # neighbourhood of 29 cells has 14 or 15 of batch 1.
    score = posterior.entropy_batch_mixing(n_neighbors=29)
    assert score == pytest.approx(binary_entropy(15 / 29))
    assert posterior.entropy_batch_mixing.mode == "max"
    assert posterior.knn_purity.mode == "max"
    assert posterior.nn_overlap_score() is None


def test_posterior_batch_mixing_needs_two_batches_and_nn_overlap_with_proteins():
    assert clustered_posterior(n_batches=3).entropy_batch_mixing() is None
    posterior = clustered_posterior(n_batches=2, protein=True)
    # With 29 neighbours each graph links exactly the cells of a cluster.
    spearman, fold = posterior.nn_overlap_score(k=29)
    assert spearman == pytest.approx(1.0)
    assert fold == pytest.approx(90 / 29)
