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


# Rows converted at a time when building an index: the conversion's temporaries stay small.
_BLOCK_ROWS = 4096

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
        Dense array or sparse matrix of counts, ``(cells, genes)``; converted a block of
        rows at a time, so that the conversion's temporaries stay small.
    """

    def __init__(self, X: Union[np.ndarray, sp_sparse.spmatrix]):
        self.source = X
        if sp_sparse.issparse(X) and X.format not in ("csr", "csc"):
            X = X.tocsr()  # formats without row slicing
        self.n_genes = X.shape[1]
        col_dtype = np.int16 if self.n_genes <= np.iinfo(np.int16).max else np.int32
        lengths, indices, data, lgamma_sums = [], [], [], []
        for first in range(0, X.shape[0], _BLOCK_ROWS):
            block = sp_sparse.csr_matrix(
                X[first : first + _BLOCK_ROWS], dtype=np.float32
            )
            block.eliminate_zeros()
            lengths.append(np.diff(block.indptr))
            indices.append(block.indices.astype(col_dtype))
            data.append(block.data)
            per_entry = np.append(gammaln(block.data.astype(np.float64) + 1.0), 0.0)
            lgamma_sums.append(
                np.add.reduceat(per_entry, block.indptr[:-1]) * (lengths[-1] > 0)
            )
        self.indptr = np.concatenate(
            ([0], np.cumsum(np.concatenate(lengths or [[]]), dtype=np.int64))
        )
        self.indices = np.concatenate(indices or [np.zeros(0, col_dtype)])
        self.data = np.concatenate(data or [np.zeros(0, np.float32)])
        self.lgamma_sums = np.concatenate(lgamma_sums or [np.zeros(0)])
        self.integral = bool(np.all(self.data == np.round(self.data)))

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
