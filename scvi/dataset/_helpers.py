"""Array helpers shared by the dataset classes (re-exported by ``scvi.dataset.dataset``)."""

import logging
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple, Union

import numpy as np
import scipy.sparse as sp_sparse

logger = logging.getLogger(__name__)

ArrayLike = Union[np.ndarray, sp_sparse.spmatrix]

# Categorical codes are stored as uint16, like scVI 0.5.
_MAX_CATEGORY_CODE = np.iinfo(np.uint16).max


@dataclass
class CellMeasurement:
    """A per-cell measurement matrix paired with the names of its columns.

    Parameters
    ----------
    name
        Attribute name under which the data is stored, e.g. ``"protein_expression"``.
    data
        (n_cells, n_columns) matrix, dense or ``scipy.sparse.csr_matrix``.
    columns_attr_name
        Attribute name under which the column names are stored, e.g.
        ``"protein_names"``.
    columns
        Column names, one per column of ``data``.
    """

    name: str
    data: Union[np.ndarray, sp_sparse.csr_matrix]
    columns_attr_name: str
    columns: Union[np.ndarray, List[str]]


def row_sums(data: ArrayLike) -> np.ndarray:
    """Total of each row as a 1-D float64 array (dense or sparse input)."""
    return np.asarray(data.sum(axis=1, dtype=np.float64)).ravel()


def compute_library_size(
    data: Union[sp_sparse.csr_matrix, np.ndarray],
) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the log total counts of a set of cells.

    Cells with no counts contribute a log library size of 0 (as in scVI 0.5) and
    trigger a warning, since they should be removed before training.

    Parameters
    ----------
    data
        (n_cells, n_genes) count matrix.

    Returns
    -------
    Two (1, 1) float32 arrays: the mean and the (population) variance of
    ``log(sum of counts per cell)``.
    """
    totals = row_sums(data)
    empty = totals <= 0
    if empty.any():
        logger.warning(
            "%d of %d cells have no counts; this may make scVI inference fail. "
            "Remove them with `dataset.filter_cells_by_count()`.",
            int(empty.sum()),
            totals.size,
        )
    log_totals = np.zeros_like(totals)
    np.log(totals, out=log_totals, where=~empty)
    local_mean = np.asarray(np.mean(log_totals), dtype=np.float32).reshape(1, 1)
    local_var = np.asarray(np.var(log_totals), dtype=np.float32).reshape(1, 1)
    return local_mean, local_var


def concatenate_arrays(arrays: Sequence[ArrayLike]) -> ArrayLike:
    """Stack arrays along their first axis.

    Parameters
    ----------
    arrays
        Dense or sparse arrays with matching trailing dimensions.

    Returns
    -------
    A dense array when every input is a ``numpy.ndarray``, else a CSR matrix.
    """
    if all(isinstance(array, np.ndarray) for array in arrays):
        return np.concatenate(arrays)
    return sp_sparse.vstack([sp_sparse.csr_matrix(array) for array in arrays]).tocsr()


def remap_categories(
    original_categories: Union[List[int], np.ndarray],
    mapping_from: Union[List[int], np.ndarray] = None,
    mapping_to: Union[List[int], np.ndarray] = None,
    mappings_dict: Dict[str, Union[List[str], List[int], np.ndarray]] = None,
) -> Union[Tuple[np.ndarray, int], Tuple[np.ndarray, int, Dict[str, np.ndarray]]]:
    """Recode a categorical array, by default to the contiguous codes ``0..N-1``.

    Parameters
    ----------
    original_categories
        Categorical values (any shape, any sortable dtype).
    mapping_from
        Values to recode; defaults to the sorted unique values of
        ``original_categories``. Every value present must be listed.
    mapping_to
        New code of each entry of ``mapping_from``; defaults to ``0..N-1``.
    mappings_dict
        Lookup tables indexed by the old codes (e.g. ``{"cell_types": names}``); each
        is re-indexed so that ``new_mapping[new_code] == mapping[old_code]``.

    Returns
    -------
    The recoded uint16 array (same shape), the number of distinct input values and,
    when ``mappings_dict`` is given, the re-indexed mappings.
    """
    original = np.asarray(original_categories)
    unique_values = np.unique(original)
    n_categories = len(unique_values)
    source = unique_values if mapping_from is None else np.asarray(mapping_from)
    target = (
        np.arange(len(source), dtype=np.int64)
        if mapping_to is None
        else np.asarray(mapping_to, dtype=np.int64)
    )
    if n_categories > len(source):
        raise ValueError(
            f"mapping_from has {len(source)} values but the array has "
            f"{n_categories} distinct categories; list every category in mapping_from."
        )
    if len(target) != len(source):
        raise ValueError(
            f"mapping_to has {len(target)} values but mapping_from has {len(source)}; "
            "give one new code per source category."
        )
    if target.size and (target.min() < 0 or target.max() > _MAX_CATEGORY_CODE):
        raise ValueError(
            f"New category codes must lie in [0, {_MAX_CATEGORY_CODE}], "
            f"got [{target.min()}, {target.max()}]."
        )
    if original.size == 0:
        new_categories = np.zeros(original.shape, dtype=np.uint16)
    else:
        order = np.argsort(source, kind="stable")
        sorted_source = source[order]
        position = np.searchsorted(sorted_source, original)
        position = np.clip(position, 0, len(source) - 1)
        found = sorted_source[position] == original
        if not np.all(found):
            missing = np.unique(original[~found])
            raise ValueError(
                f"Categories {missing[:10].tolist()} are not listed in mapping_from; "
                "add them to mapping_from (and mapping_to)."
            )
        new_categories = target[order][position].astype(np.uint16)
    if mappings_dict is None:
        return new_categories, n_categories
    size = int(target.max()) + 1 if target.size else 0
    new_mappings = {}
    for mapping_name, mapping in mappings_dict.items():
        mapping = np.asarray(mapping)
        if len(source) and int(np.max(source)) >= len(mapping):
            raise ValueError(
                f"Mapping {mapping_name!r} has {len(mapping)} entries but category "
                f"{int(np.max(source))} needs one; extend the mapping."
            )
        new_mapping = np.empty(size, dtype=mapping.dtype)
        new_mapping[target] = mapping[source.astype(np.int64)]
        new_mappings[mapping_name] = new_mapping
    return new_categories, n_categories, new_mappings


def as_category_codes(values: Union[List, np.ndarray], name: str) -> np.ndarray:
    """Validate integer category codes (e.g. batch indices) as a (n, 1) uint16 array.

    Parameters
    ----------
    values
        Integer-valued codes (floats holding whole numbers are accepted).
    name
        Attribute name used in error messages.
    """
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} must hold integer codes, got dtype {array.dtype}. Encode names "
            f"first, e.g. `codes, names = pandas.factorize({name})`, and pass the "
            "names as a mapping (cell_types for labels)."
        )
    if array.size and array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise ValueError(f"{name} must hold whole numbers, got non-integer values.")
    if array.size and (array.min() < 0 or array.max() > _MAX_CATEGORY_CODE):
        raise ValueError(
            f"{name} must lie in [0, {_MAX_CATEGORY_CODE}], got "
            f"[{array.min()}, {array.max()}]; recode them with `remap_categories`."
        )
    return array.astype(np.uint16).reshape(-1, 1)


def _first_position(mask: np.ndarray, data: ArrayLike) -> Tuple[int, int]:
    """(cell, gene) of the first True entry of ``mask`` over the stored values."""
    first = int(np.flatnonzero(mask)[0])
    if sp_sparse.issparse(data):
        row = int(np.searchsorted(data.indptr, first, side="right") - 1)
        return row, int(data.indices[first])
    row, col = np.unravel_index(first, data.shape)
    return int(row), int(col)


def check_counts(X: ArrayLike) -> None:
    """Check that ``X`` is a non-empty matrix of non-negative finite counts.

    Raises ``ValueError`` for empty, negative, NaN or infinite data and warns
    (``UserWarning``) when values are not whole numbers.
    """
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(
            f"X is empty ({X.shape[0]} cells x {X.shape[1]} genes); give a matrix "
            "with at least one cell and one gene."
        )
    values = X.data if sp_sparse.issparse(X) else np.asarray(X)
    if values.dtype.kind not in "biuf":
        raise ValueError(f"X must be numeric, got dtype {values.dtype}.")
    flat = values.ravel()
    if values.dtype.kind == "f":
        bad = ~np.isfinite(flat)
        if bad.any():
            cell, gene = _first_position(bad, X)
            raise ValueError(
                f"X contains {int(bad.sum())} NaN or infinite values (first at cell "
                f"{cell}, gene {gene}). Counts must be finite: drop or fix these "
                "entries (e.g. `np.nan_to_num(X)`) before populating the dataset."
            )
    negative = flat < 0
    if negative.any():
        cell, gene = _first_position(negative, X)
        raise ValueError(
            f"X contains {int(negative.sum())} negative values (minimum "
            f"{flat.min()}, first at cell {cell}, gene {gene}). scVI needs raw, "
            "non-negative counts, not centered, scaled or log-ratio data."
        )
    if values.dtype.kind == "f":
        non_integer = flat != np.round(flat)
        n_non_integer = int(non_integer.sum())
        if n_non_integer:
            cell, gene = _first_position(non_integer, X)
            warnings.warn(
                f"X contains {n_non_integer} non-integer values (e.g. "
                f"{flat[non_integer][0]} at cell {cell}, gene {gene}). scVI models "
                "raw counts; pass unnormalized, untransformed counts (normalized or "
                "log-transformed data gives meaningless likelihoods).",
                UserWarning,
                stacklevel=3,
            )


def as_count_matrix(X: ArrayLike) -> ArrayLike:
    """Convert ``X`` to the stored form: a C-contiguous float32 array or float32 CSR.

    No copy is made when ``X`` already has that form.
    """
    if sp_sparse.issparse(X):
        if isinstance(X, sp_sparse.csr_matrix) and X.dtype == np.float32:
            return X
        return sp_sparse.csr_matrix(X, dtype=np.float32)
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(
            f"Gene expression data must be 2-dimensional (cells x genes), got "
            f"{X.ndim} dimension(s) with shape {X.shape}."
        )
    return np.ascontiguousarray(X, dtype=np.float32)


def as_index(
    subset: Union[List[int], List[bool], np.ndarray],
    size: int,
    axis_name: str,
) -> np.ndarray:
    """Validate a boolean mask or an integer index array over ``size`` items.

    Parameters
    ----------
    subset
        Boolean mask of length ``size`` or integer positions.
    size
        Number of items indexed (cells or genes).
    axis_name
        ``"cells"`` or ``"genes"``, for error messages.
    """
    index = np.asarray(subset)
    if index.dtype == bool:
        index = index.ravel()
        if index.size != size:
            raise ValueError(
                f"Boolean mask over {axis_name} has length {index.size}, expected "
                f"{size}."
            )
        return index
    if index.size == 0:
        return np.zeros(0, dtype=np.int64)
    if index.dtype.kind not in "iu":
        raise ValueError(
            f"Index over {axis_name} must be a boolean mask or integers, got dtype "
            f"{index.dtype}."
        )
    index = index.ravel().astype(np.int64)
    if index.min() < -size or index.max() >= size:
        raise ValueError(
            f"Index over {axis_name} out of range: got values in "
            f"[{index.min()}, {index.max()}] for {size} {axis_name}."
        )
    return index


def n_rows(values: Any) -> int:
    """Number of rows of an array, sparse matrix or sequence."""
    shape = getattr(values, "shape", None)
    if shape is not None and len(shape) > 0:
        return shape[0]
    return len(values)


def as_code_column(values: Any, n_cells: int) -> np.ndarray:
    """Codes as a (n_cells, 1) array; zeros when ``values`` is None."""
    if values is None:
        return np.zeros((n_cells, 1), dtype=np.uint16)
    if sp_sparse.issparse(values):
        values = values.toarray()
    return np.asarray(values).reshape(-1, 1)
