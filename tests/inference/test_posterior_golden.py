"""Posterior analysis functions and methods against the original scVI 0.5.0.

``tests/golden/posterior_analysis.pt`` was written by
``tests/golden/make_golden_posterior.py`` with the original package: fixed inputs, the
weights of a small trained VAE, and the original's outputs, each random call made right
after seeding ``np.random`` and ``torch`` with the same seed. Matching them means we
consume both random streams exactly as the original does.
"""

from pathlib import Path
from typing import Any, Dict

import numpy as np
import pandas as pd
import pytest
import torch

from scvi.dataset import GeneExpressionDataset
from scvi.inference import Posterior
from scvi.inference.posterior import (
    entropy_batch_mixing,
    entropy_from_indices,
    get_bayes_factors,
    knn_purity,
    nn_overlap,
    proximity_imputation,
    unsupervised_clustering_accuracy,
)
from scvi.models import VAE

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "posterior_analysis.pt"
SEED = 7


@pytest.fixture(scope="module")
def golden() -> Dict[str, Any]:
    return torch.load(GOLDEN, weights_only=True)


@pytest.fixture(scope="module")
def functions(golden) -> Dict[str, Any]:
    return golden["functions"]


@pytest.fixture(scope="module")
def case(golden) -> Dict[str, Any]:
    return golden["posterior"]


def seeded(fn):
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    with torch.no_grad():
        return fn()


def close(actual, expected, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(
        np.asarray(actual, dtype=np.float64),
        np.asarray(expected, dtype=np.float64),
        rtol=rtol,
        atol=atol,
    )


def test_entropy_batch_mixing_matches_original(functions):
    latent, batches = functions["ebm_latent"].numpy(), functions["ebm_batches"].numpy()
    close(
        seeded(lambda: entropy_batch_mixing(latent, batches)), functions["ebm_default"]
    )
    small = seeded(
        lambda: entropy_batch_mixing(
            latent, batches, n_neighbors=10, n_pools=7, n_samples_per_pool=33
        )
    )
    close(small, functions["ebm_small"])


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("pairs", dict(cell_idx=0, M_permutation=500)),
        ("pairs_permuted", dict(cell_idx=0, M_permutation=500, permutation=True)),
        ("no_pairs_other", dict(cell_idx=0, other_cell_idx=2, sample_pairs=False)),
        (
            "pairs_other_genes",
            dict(cell_idx=1, other_cell_idx=0, genes_idx=[0, 4, 8], M_permutation=300),
        ),
    ],
)
def test_get_bayes_factors_matches_original(functions, name, kwargs):
    px_scale, labels = functions["bf_px_scale"].numpy(), functions["bf_labels"].numpy()
    result = seeded(lambda: get_bayes_factors(px_scale, labels, **kwargs))
    close(result, functions[f"bf_{name}"])


def test_neighbourhood_metrics_match_original(functions):
    latent, labels = functions["knn_latent"].numpy(), functions["knn_labels"].numpy()
    close(knn_purity(latent, labels), functions["knn_purity_default"])
    close(knn_purity(latent, labels, n_neighbors=5), functions["knn_purity_5"])
    other = functions["nn_other"].numpy()
    close(nn_overlap(latent, other, k=10), functions["nn_overlap_10"])
    close(nn_overlap(latent, other), functions["nn_overlap_default"])


def test_clustering_accuracy_entropy_and_proximity_match_original(functions):
    y, y_pred = functions["uca_y"].numpy(), functions["uca_y_pred"].numpy()
    accuracy, matching = unsupervised_clustering_accuracy(y, y_pred)
    close(accuracy, functions["uca_accuracy"])
    np.testing.assert_array_equal(matching, functions["uca_matching"].numpy())
    close(entropy_from_indices(y), functions["entropy_from_indices"])
    imputed = proximity_imputation(
        functions["prox_reference"].numpy(),
        functions["prox_expression"].numpy(),
        functions["prox_query"].numpy(),
        k=4,
    )
    close(imputed, functions["prox_result"])


@pytest.fixture(scope="module")
def posterior_factory(case):
    dataset = GeneExpressionDataset()
    dataset.populate_from_data(
        case["X"].numpy(),
        batch_indices=case["batches"].numpy(),
        labels=case["labels"].numpy(),
        gene_names=np.array(case["gene_names"]),
        cell_types=np.array(case["cell_types"]),
    )
    dataset.corrupted_X = case["corrupted_X"].numpy()
    model = VAE(dataset.nb_genes, **case["model_kwargs"])
    model.load_state_dict(case["state_dict"])
    model.eval()

    def make() -> Posterior:
        return Posterior(
            model,
            dataset,
            use_cuda=False,
            data_loader_kwargs={"batch_size": case["batch_size"]},
        )

    return make


def test_differential_expression_score_matches_original(case, posterior_factory):
    labels = case["labels"].numpy()
    idx1, idx2 = labels == 0, labels == 1
    result = seeded(
        lambda: posterior_factory().differential_expression_score(
            idx1, idx2, n_samples=40, M_permutation=300
        )
    )
    assert list(result.columns) == case["de_columns"]
    expected = pd.DataFrame(
        case["de_values"].numpy(), index=case["de_genes"], columns=case["de_columns"]
    )
    assert sorted(result.index) == sorted(expected.index)
    assert result["bayes1"].is_monotonic_decreasing
    close(result.loc[expected.index].values, expected.values, rtol=1e-4, atol=1e-5)

    subset = seeded(
        lambda: posterior_factory().differential_expression_score(
            idx1,
            idx2,
            batchid1=[1],
            batchid2=[0],
            genes=["gene0", "gene3"],
            n_samples=30,
            M_permutation=200,
            all_stats=False,
        )
    )
    close(subset, case["de_genes_subset"])
    no_pairs = seeded(
        lambda: posterior_factory().differential_expression_score(
            idx1, idx2, n_samples=25, sample_pairs=False, all_stats=False
        )
    )
    close(no_pairs, case["de_no_pairs"])


def test_sampling_methods_match_original(case, posterior_factory):
    scales, labels = seeded(
        lambda: posterior_factory().differential_expression_stats(M_sampling=3)
    )
    close(scales, case["stats_scales"])
    np.testing.assert_array_equal(labels, case["stats_labels"].numpy())
    selection = case["labels"].numpy() == 1
    from_batch = seeded(
        lambda: posterior_factory().sample_scale_from_batch(
            20, batchid=[0, 1], selection=selection
        )
    )
    close(from_batch, case["scale_from_batch"])
    close(seeded(lambda: posterior_factory().get_stats()), case["get_stats"])
    for ours, theirs in zip(
        seeded(lambda: posterior_factory().generate_parameters()),
        case["generate_parameters"],
    ):
        close(ours, theirs)
    close(
        seeded(lambda: posterior_factory().get_harmonized_scale(1)),
        case["harmonized_scale"],
    )


def test_imputation_and_metrics_match_original(case, posterior_factory):
    original, imputed = seeded(lambda: posterior_factory().imputation_list(n_samples=2))
    np.testing.assert_array_equal(
        [len(v) for v in original], case["imputation_lengths"].numpy()
    )
    close(np.concatenate(original), case["imputation_original"])
    close(np.concatenate(imputed), case["imputation_imputed"])
    close(
        posterior_factory().imputation_score(original, imputed),
        case["imputation_score"],
    )
    ebm = seeded(
        lambda: posterior_factory().entropy_batch_mixing(n_neighbors=15, n_pools=5)
    )
    close(ebm, case["posterior_ebm"])
    close(
        seeded(lambda: posterior_factory().knn_purity()), case["posterior_knn_purity"]
    )
