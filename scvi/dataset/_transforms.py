"""Normalized and corrupted versions of X, and raw-count summaries."""

import logging
from typing import List, Tuple, Union

import numpy as np
import scipy.sparse as sp_sparse

from ._helpers import row_sums

logger = logging.getLogger(__name__)

_CORRUPTIONS = ("uniform", "binomial")


class TransformsMixin:
    """Derived versions of ``X`` (``norm_X``, ``corrupted_X``) and count summaries."""

    def normalize(self) -> None:
        """Set ``norm_X`` to ``X`` divided by each cell's mean count.

        Cells without counts stay at zero. Sparse ``X`` gives a sparse ``norm_X``.
        """
        means = (row_sums(self.X) / self.nb_genes).astype(np.float32)
        if sp_sparse.issparse(self.X):
            norm_X = self.X.copy()
            per_entry = np.repeat(means, np.diff(norm_X.indptr))
            np.divide(norm_X.data, per_entry, out=norm_X.data, where=per_entry > 0)
        else:
            column = means[:, None]
            norm_X = np.divide(
                self.X, column, out=np.zeros_like(self.X), where=column > 0
            )
        self.norm_X = norm_X

    def corrupt(self, rate: float = 0.1, corruption: str = "uniform") -> None:
        """Set ``corrupted_X``, a copy of ``X`` with a fraction of entries perturbed.

        Draws from the global ``np.random`` state (seed it with ``np.random.seed``).

        Parameters
        ----------
        rate
            Fraction of entries perturbed: of the non-zero entries for
            ``"uniform"``, of all entries for ``"binomial"``.
        corruption
            ``"uniform"``: each chosen count is zeroed with probability 0.1;
            ``"binomial"``: each chosen count ``n`` is replaced by a
            Binomial(n, 0.2) draw.
        """
        if not 0 <= rate <= 1:
            raise ValueError(f"rate must lie in [0, 1], got {rate}.")
        if corruption not in _CORRUPTIONS:
            raise ValueError(
                f"Unknown corruption {corruption!r}; use one of {list(_CORRUPTIONS)}."
            )
        if sp_sparse.issparse(self.X):
            self.corrupted_X = _corrupt_sparse(self.X, rate, corruption)
        else:
            self.corrupted_X = _corrupt_dense(self.X, rate, corruption)

    def raw_counts_properties(
        self,
        idx1: Union[List[int], np.ndarray],
        idx2: Union[List[int], np.ndarray],
    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per-gene summaries of the raw counts of two groups of cells.

        Parameters
        ----------
        idx1, idx2
            Indices (or boolean masks) of the two groups.

        Returns
        -------
        Mean count of group 1 and 2, fraction of non-zero counts of group 1 and 2,
        mean normalized count (see :meth:`normalize`) of group 1 and 2.
        """
        if self.norm_X is None:
            self.normalize()
        results = []
        for statistic in (
            lambda data: data.mean(axis=0),
            lambda data: (data != 0).mean(axis=0),
        ):
            for idx in (idx1, idx2):
                results.append(statistic(self.X[np.asarray(idx)]))
        for idx in (idx1, idx2):
            results.append(self.norm_X[np.asarray(idx)].mean(axis=0))
        return tuple(np.squeeze(np.asarray(result)) for result in results)


def _draw(n_candidates: int, rate: float) -> np.ndarray:
    """Positions of ``floor(rate * n_candidates)`` distinct candidates."""
    n_draws = int(np.floor(rate * n_candidates))
    return np.random.choice(n_candidates, n_draws, replace=False)


def _corrupt_dense(X: np.ndarray, rate: float, corruption: str) -> np.ndarray:
    corrupted = X.copy()
    if corruption == "uniform":
        rows, cols = X.nonzero()
        chosen = _draw(len(rows), rate)
        rows, cols = rows[chosen], cols[chosen]
        keep = np.random.binomial(n=np.ones(len(chosen), dtype=np.int32), p=0.9)
        corrupted[rows, cols] = X[rows, cols] * keep
    else:
        chosen = _draw(X.size, rate)
        rows, cols = np.unravel_index(chosen, X.shape)
        corrupted[rows, cols] = np.random.binomial(
            n=X[rows, cols].astype(np.int32), p=0.2
        )
    return corrupted


def _corrupt_sparse(
    X: sp_sparse.csr_matrix, rate: float, corruption: str
) -> sp_sparse.csr_matrix:
    corrupted = X.copy()
    corrupted.sum_duplicates()
    if corruption == "uniform":
        stored = np.flatnonzero(corrupted.data)
        chosen = stored[_draw(len(stored), rate)]
        keep = np.random.binomial(n=np.ones(len(chosen), dtype=np.int32), p=0.9)
        corrupted.data[chosen] = corrupted.data[chosen] * keep
    else:
        chosen = _draw(X.shape[0] * X.shape[1], rate)
        rows = np.repeat(np.arange(X.shape[0]), np.diff(corrupted.indptr))
        flat = rows.astype(np.int64) * X.shape[1] + corrupted.indices
        position = np.searchsorted(flat, chosen)
        position = np.clip(position, 0, max(len(flat) - 1, 0))
        stored = (flat[position] == chosen) if len(flat) else np.zeros(0, bool)
        counts = np.zeros(len(chosen), dtype=np.int32)
        counts[stored] = corrupted.data[position[stored]]
        draws = np.random.binomial(n=counts, p=0.2)
        corrupted.data[position[stored]] = draws[stored]
    corrupted.eliminate_zeros()
    return corrupted
