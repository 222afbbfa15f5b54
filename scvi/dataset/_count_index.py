"""Per-dataset index of the non-zero counts, so minibatches carry them ready-made.

The fused likelihood (:mod:`scvi.models._fused_likelihood`) works on the non-zero entries
of a minibatch and on ``sum_g lgamma(x_g + 1)`` per cell. Both depend only on the data,
so they are computed once per dataset here (a CSR copy of a dense count matrix, or the
matrix itself when it is already CSR) and gathered for each minibatch by the collate
function, instead of being searched for at every training step.
"""

from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np
import scipy.sparse as sp_sparse
import torch
from scipy.special import gammaln


@dataclass(frozen=True)
class NonzeroCounts:
    """The non-zero entries of a ``(cells, genes)`` minibatch.

    Attributes
    ----------
    rows, cols
        Row and column of each non-zero entry (int64), rows in increasing order.
    flat
        Their positions in the flattened minibatch, ``rows * n_genes + cols`` (int64).
    counts
        Their values (float64).
    lgamma_sums
        ``sum_g lgamma(x_g + 1)`` of each cell (float64).
    total
        Sum of all counts of the minibatch.
    table_slots
        For integer counts: ``min(x, TABLE_SIZE)`` of each entry (int64), the column of
        the per-gene tables of the fused likelihood; None for non-integer data.
    large
        Positions (in the entry list) of the counts above ``TABLE_SIZE`` (int64).
    """

    rows: torch.Tensor
    cols: torch.Tensor
    flat: torch.Tensor
    counts: torch.Tensor
    lgamma_sums: torch.Tensor
    total: float
    table_slots: Optional[torch.Tensor] = None
    large: Optional[torch.Tensor] = None


# Counts up to this value are looked up in per-gene tables of lgamma/digamma differences.
TABLE_SIZE = 16


def table_lookup(counts: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Table columns ``min(x, TABLE_SIZE)`` and the positions of counts above the table."""
    return (
        np.minimum(counts, TABLE_SIZE).astype(np.int64),
        np.flatnonzero(counts > TABLE_SIZE),
    )


class CountIndex:
    """CSR view of a count matrix with per-cell ``sum_g lgamma(x_g + 1)``.

    Parameters
    ----------
    X
        Dense array or sparse matrix of counts, ``(cells, genes)``.
    """

    def __init__(self, X: Union[np.ndarray, sp_sparse.spmatrix]):
        self.source = X
        csr = sp_sparse.csr_matrix(X, dtype=np.float32)
        csr.eliminate_zeros()
        self.n_genes = csr.shape[1]
        self.indptr = csr.indptr.astype(np.int64)
        col_dtype = np.int16 if csr.shape[1] <= np.iinfo(np.int16).max else np.int32
        self.indices = csr.indices.astype(col_dtype)
        self.data = csr.data
        self.integral = bool(np.all(self.data == np.round(self.data)))
        per_entry = gammaln(self.data.astype(np.float64) + 1.0)
        self.lgamma_sums = np.add.reduceat(
            np.append(per_entry, 0.0), self.indptr[:-1]
        ) * (np.diff(self.indptr) > 0)

    def gather(self, cells: np.ndarray) -> NonzeroCounts:
        """Non-zero entries of the rows ``cells``, in that order."""
        starts = self.indptr[cells]
        lengths = self.indptr[cells + 1] - starts
        n_entries = int(lengths.sum())
        offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        positions = offsets + np.arange(n_entries)
        values = self.data[positions]
        slots, large = table_lookup(values) if self.integral else (None, None)
        rows = np.repeat(np.arange(len(cells)), lengths)
        cols = self.indices[positions].astype(np.int64)
        return NonzeroCounts(
            rows=torch.from_numpy(rows),
            cols=torch.from_numpy(cols),
            flat=torch.from_numpy(rows * self.n_genes + cols),
            counts=torch.from_numpy(values.astype(np.float64)),
            lgamma_sums=torch.from_numpy(self.lgamma_sums[cells]),
            total=float(values.sum(dtype=np.float64)),
            table_slots=None if slots is None else torch.from_numpy(slots),
            large=None if large is None else torch.from_numpy(large),
        )
