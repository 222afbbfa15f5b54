"""Helpers of :class:`~scvi.inference.TotalPosterior`: data checks, features, sampling, weights.

:func:`log_marginal_likelihood` is model-agnostic; :class:`~scvi.inference.JPosterior`
uses it too.
"""

import math
from typing import Callable, List, Sequence, Tuple, Union

import numpy as np
import torch
from torch.distributions import Normal

from scvi.models.distributions import (
    NegativeBinomial,
    NegativeBinomialMixture,
    ZeroInflatedNegativeBinomial,
)

# Extra minibatch tensor of totalVI posteriors (after X, local_means, local_vars,
# batch_indices, labels).
PROTEIN_ATTRIBUTES = {"protein_expression": np.float32}

# Bound on the number of floats of one Monte-Carlo chunk of the marginal likelihood.
_MC_CHUNK_FLOATS = 2e7


def _column_sums(data) -> np.ndarray:
    return np.asarray(data.sum(axis=0)).ravel()


def check_protein_dataset(model: torch.nn.Module, dataset) -> None:
    """Raise a ValueError when ``dataset`` cannot feed the totalVI ``model``.

    Checks that the dataset has a ``protein_expression`` measurement with one name per
    column in ``protein_names`` (unique), that genes and proteins match the model's
    dimensions and covariates, and that no protein or gene count is negative and no
    protein is zero in every cell.
    """
    proteins = getattr(dataset, "protein_expression", None)
    if proteins is None:
        raise ValueError(
            "totalVI needs protein counts but the dataset has no 'protein_expression' "
            "cell measurement. Use a CITE-seq dataset, or populate it with "
            "populate_from_data(X, Ys=[CellMeasurement('protein_expression', counts, "
            "'protein_names', names)])."
        )
    if proteins.ndim != 2 or proteins.shape[0] != len(dataset):
        raise ValueError(
            f"protein_expression must be a (n_cells, n_proteins) matrix with one row per "
            f"cell ({len(dataset)}), got shape {proteins.shape}."
        )
    n_proteins = proteins.shape[1]
    names = getattr(dataset, "protein_names", None)
    if names is None or len(names) != n_proteins:
        found = "none" if names is None else len(names)
        raise ValueError(
            f"The dataset has {n_proteins} protein columns but {found} protein_names; "
            "give one name per column of protein_expression."
        )
    names = [str(name) for name in names]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ValueError(f"protein_names must be unique; repeated: {duplicated}.")
    if n_proteins != model.n_input_proteins:
        raise ValueError(
            f"The model expects {model.n_input_proteins} proteins but the dataset has "
            f"{n_proteins} ({names[:5]}...); build TOTALVI with "
            "n_input_proteins=len(dataset.protein_names)."
        )
    if dataset.nb_genes != model.n_input_genes:
        raise ValueError(
            f"The model expects {model.n_input_genes} genes but the dataset has "
            f"{dataset.nb_genes}; build TOTALVI with n_input_genes=dataset.nb_genes."
        )
    for name, n_model, n_data in (
        ("n_batch", model.n_batch, dataset.n_batches),
        ("n_labels", model.n_labels, dataset.n_labels),
    ):
        if n_model > 0 and n_data is not None and n_data > n_model:
            raise ValueError(
                f"The dataset has {n_data} categories for {name} but the model was built "
                f"with {name}={n_model}."
            )
    if proteins.min() < 0:
        raise ValueError(
            "protein_expression holds negative values; totalVI needs raw counts."
        )
    empty = [names[i] for i in np.flatnonzero(_column_sums(proteins) == 0)]
    if empty:
        raise ValueError(
            f"{len(empty)} protein(s) have zero counts in every cell: {empty[:10]}. They "
            "carry no information and make the background model degenerate; remove them "
            "from protein_expression and protein_names before training."
        )


def feature_names(dataset) -> np.ndarray:
    """Gene names followed by protein names (the columns of totalVI's joint outputs)."""
    genes = getattr(dataset, "gene_names", None)
    if genes is None:
        genes = np.array([f"gene_{i}" for i in range(dataset.nb_genes)])
    return np.concatenate(
        [np.asarray(genes).astype(str), np.asarray(dataset.protein_names).astype(str)]
    )


def feature_indices(dataset, features: Union[Sequence, np.ndarray]) -> np.ndarray:
    """Columns of the joint gene + protein outputs selected by name or by index.

    Names are matched case-insensitively against gene and protein names; a name that
    is both a gene and a protein selects both columns. Integers index the joint columns
    (genes first, then proteins).
    """
    values = np.asarray(features).ravel()
    n_features = dataset.nb_genes + len(dataset.protein_names)
    if values.dtype.kind in "iu":
        if values.size and (values.min() < 0 or values.max() >= n_features):
            raise ValueError(
                f"Feature indices must be in [0, {n_features}) (genes then proteins)."
            )
        return values.astype(np.int64)
    names = np.char.upper(feature_names(dataset))
    selected: List[int] = []
    missing = []
    for value in np.char.upper(values.astype(str)):
        hits = np.flatnonzero(names == value)
        if hits.size == 0:
            missing.append(value)
        selected.extend(hits.tolist())
    if missing:
        raise ValueError(
            f"{len(missing)} name(s) are neither genes nor proteins of the dataset: "
            f"{missing[:10]}."
        )
    return np.asarray(selected, dtype=np.int64)


def protein_count_properties(dataset, idx1, idx2) -> Tuple[np.ndarray, ...]:
    """Per-protein raw count summaries of two groups of cells.

    Returns the mean count of group 1 and 2, the fraction of non-zero counts of group 1
    and 2, and the mean of the counts divided by each cell's mean protein count, as the
    dataset's ``raw_counts_properties`` does for genes.
    """
    proteins = np.asarray(dataset.protein_expression, dtype=np.float64)
    cell_means = proteins.mean(axis=1, keepdims=True)
    normalized = np.divide(
        proteins, cell_means, out=np.zeros_like(proteins), where=cell_means > 0
    )
    groups = (np.asarray(idx1), np.asarray(idx2))
    means = [proteins[idx].mean(axis=0) for idx in groups]
    nonzero = [(proteins[idx] != 0).mean(axis=0) for idx in groups]
    norm_means = [normalized[idx].mean(axis=0) for idx in groups]
    return (*means, *nonzero, *norm_means)


def stack_samples(
    chunks: List[torch.Tensor], n_samples: int, give_mean: bool
) -> np.ndarray:
    """Concatenate per-minibatch outputs over cells.

    With ``n_samples > 1`` the chunks are ``(n_samples, batch, features)`` and the
    result is ``(cells, features, n_samples)``, or its mean over samples when
    ``give_mean``.
    """
    if n_samples == 1:
        return torch.cat(chunks, dim=0).cpu().numpy()
    stacked = torch.cat(chunks, dim=1).permute(1, 2, 0)
    if give_mean:
        stacked = stacked.mean(dim=-1)
    return stacked.cpu().numpy()


def observation_models(
    model: torch.nn.Module, outputs: dict
) -> Tuple[NegativeBinomial, NegativeBinomialMixture]:
    """The gene and protein count distributions defined by ``model.inference`` outputs."""
    px_, py_ = outputs["px_"], outputs["py_"]
    if model.reconstruction_loss_gene == "zinb":
        genes = ZeroInflatedNegativeBinomial(
            mu=px_["rate"], theta=px_["r"], zi_logits=px_["dropout"]
        )
    else:
        genes = NegativeBinomial(mu=px_["rate"], theta=px_["r"])
    proteins = NegativeBinomialMixture(
        mu1=py_["rate_back"],
        mu2=py_["rate_fore"],
        theta1=py_["r"],
        mixture_logits=py_["mixing"],
    )
    return genes, proteins


def log_importance_weights(
    model: torch.nn.Module, tensors: Sequence[torch.Tensor], n_samples: int
) -> torch.Tensor:
    """``log p(x, y, z, l, mu_back) - log q(z, l, mu_back | x, y)`` for posterior draws.

    Parameters
    ----------
    model
        A TOTALVI model.
    tensors
        A minibatch ``(x, local_l_mean, local_l_var, batch_index, labels, y)``.
    n_samples
        Number of draws.

    Returns
    -------
    Log weights of shape ``(n_samples, batch)``.
    """
    x, local_l_mean, local_l_var, batch_index, labels, y = tensors
    outputs = model.inference(x, y, batch_index, labels, n_samples=n_samples)
    px_, py_ = outputs["px_"], outputs["py_"]
    # The densities of z are those of the Gaussian sample before the softmax.
    z, log_library = outputs["untran_z"], outputs["untran_l"]
    log_back = outputs["log_pro_back_mean"]
    reconst_gene, reconst_protein = model.get_reconstruction_loss(x, y, px_, py_)
    log_p = (
        Normal(torch.zeros_like(z), torch.ones_like(z)).log_prob(z).sum(dim=-1)
        + Normal(local_l_mean, local_l_var.sqrt()).log_prob(log_library).sum(dim=-1)
        + model.back_mean_prior.log_prob(log_back).sum(dim=-1)
        - reconst_gene
        - reconst_protein
    )
    log_q = (
        Normal(outputs["qz_m"], outputs["qz_v"].sqrt()).log_prob(z).sum(dim=-1)
        + Normal(outputs["ql_m"], outputs["ql_v"].sqrt())
        .log_prob(log_library)
        .sum(dim=-1)
        + Normal(py_["back_alpha"], py_["back_beta"]).log_prob(log_back).sum(dim=-1)
    )
    return (log_p - log_q).reshape(-1, x.shape[0])


def log_marginal_likelihood(
    log_weights: Callable[[int], torch.Tensor], n_samples: int, n_floats_per_sample: int
) -> torch.Tensor:
    """Per-cell ``log mean exp`` of ``n_samples`` importance weights, drawn in chunks.

    ``log_weights(k)`` returns the ``(k, batch)`` log weights of ``k`` fresh draws;
    chunks are sized so that each holds about ``2e7`` floats.
    """
    if n_samples < 1:
        raise ValueError(
            f"The number of Monte-Carlo samples must be >= 1, got {n_samples}."
        )
    chunk = int(max(1, min(n_samples, _MC_CHUNK_FLOATS // max(1, n_floats_per_sample))))
    weights = []
    done = 0
    while done < n_samples:
        k = min(chunk, n_samples - done)
        weights.append(log_weights(k))
        done += k
    return torch.logsumexp(torch.cat(weights, dim=0), dim=0) - math.log(n_samples)
