"""Datasets built from :class:`anndata.AnnData` objects and ``.h5ad`` files."""

import logging
import os
import warnings
from typing import List, Optional, Tuple

import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp_sparse

from ._helpers import CellMeasurement, row_sums
from .dataset import DownloadableDataset, GeneExpressionDataset

logger = logging.getLogger(__name__)


def _check_missing(column: pd.Series, name: str) -> None:
    if column.isna().any():
        raise ValueError(
            f"obs column {name!r} has {int(column.isna().sum())} missing values; "
            "fill them (e.g. with 'unknown') before building the dataset."
        )


def _codes(column: pd.Series, name: str) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Integer codes of an obs column and, for non-numeric columns, their names.

    Integer-valued numeric columns are returned as they are (names ``None``);
    categorical columns use their category order (unused categories dropped), other
    columns their sorted unique values.
    """
    _check_missing(column, name)
    if isinstance(column.dtype, pd.CategoricalDtype):
        categorical = column.cat.remove_unused_categories()
        if categorical.cat.categories.dtype.kind in "iuf":
            return (
                np.asarray(categorical.astype(categorical.cat.categories.dtype)),
                None,
            )
        names = np.asarray(categorical.cat.categories).astype(str)
        return np.asarray(categorical.cat.codes, dtype=np.int64), names
    values = np.asarray(column)
    if values.dtype.kind in "iub" or (
        values.dtype.kind == "f" and np.all(values == np.round(values))
    ):
        return values.astype(np.int64), None
    names, codes = np.unique(values.astype(str), return_inverse=True)
    return codes.astype(np.int64), names


def _name_codes(column: pd.Series, name: str) -> Tuple[np.ndarray, np.ndarray]:
    """Codes and names of a column of names (category order, else sorted)."""
    _check_missing(column, name)
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.cat.rename_categories(
            [str(category) for category in column.cat.categories]
        )
    else:
        column = column.astype(str).astype("category")
    codes, names = _codes(column, name)
    return codes, names


def _names_per_label(
    labels: np.ndarray, names_per_cell: np.ndarray
) -> Optional[np.ndarray]:
    """``cell_types[label]`` when each label has a single cell-type name, else None."""
    mapping = np.asarray(
        [f"undefined_{label}" for label in range(int(labels.max()) + 1)], dtype=object
    )
    for label in np.unique(labels):
        names = np.unique(names_per_cell[labels == label])
        if len(names) != 1:
            return None
        mapping[label] = names[0]
    return mapping.astype(str)


def _count_matrix(ad: anndata.AnnData):
    """X of an AnnData as a dense array, or CSR when densifying would exceed 1 GB."""
    X = ad.X
    if X is None:
        raise ValueError("The AnnData object has no X matrix.")
    if isinstance(X, pd.DataFrame):
        return X.to_numpy(copy=True)
    if sp_sparse.issparse(X):
        return sp_sparse.csr_matrix(X, copy=True)
    return np.array(X, copy=True)


def extract_data_from_anndata(
    ad: anndata.AnnData,
    batch_label: str = "batch_indices",
    ctype_label: str = "cell_types",
    class_label: str = "labels",
):
    """Pull counts and annotations out of an AnnData object.

    Parameters
    ----------
    ad
        The AnnData object (cells x genes); a backed object is read into memory.
    batch_label
        obs column holding the batches (integer codes or names).
    ctype_label
        obs column holding cell-type names; labels are their codes.
    class_label
        obs column holding integer labels; takes precedence over the codes of
        ``ctype_label`` (cell-type names then come from ``ctype_label`` when each
        label has a single one).

    Returns
    -------
    ``(X, batch_indices, labels, gene_names, cell_types, obs, obsm, var, varm,
    uns)``; X is a copy, dense when under 1 GB; absent annotations are None.
    """
    if ad.isbacked:
        ad = ad.to_memory()
    data = _count_matrix(ad)
    gene_names = np.asarray(ad.var_names).astype(str)
    batch_indices = labels = cell_types = None
    if batch_label in ad.obs.columns:
        batch_indices, _ = _codes(ad.obs[batch_label], batch_label)
    if ctype_label in ad.obs.columns:
        labels, cell_types = _name_codes(ad.obs[ctype_label], ctype_label)
    if class_label in ad.obs.columns:
        class_codes, class_names = _codes(ad.obs[class_label], class_label)
        if cell_types is not None:
            per_label = _names_per_label(class_codes, cell_types[labels])
            if per_label is None:
                warnings.warn(
                    f"obs[{class_label!r}] and obs[{ctype_label!r}] disagree (a label "
                    f"has several cell types); labels follow {ctype_label!r}.",
                    UserWarning,
                    stacklevel=2,
                )
            else:
                labels, cell_types = class_codes, per_label
        else:
            labels, cell_types = class_codes, class_names
    return (
        data,
        batch_indices,
        labels,
        gene_names,
        cell_types,
        ad.obs,
        ad.obsm,
        ad.var,
        ad.varm,
        ad.uns,
    )


def _measurements(obsm: dict, uns: dict) -> List[CellMeasurement]:
    """obsm matrices whose column names are in uns, as cell measurements.

    The names are looked up as ``uns["<stem>_names"]`` (``protein_expression`` ->
    ``protein_names``, as :meth:`GeneExpressionDataset.to_anndata` writes them)
    or ``uns["<name>_names"]``.
    """
    measurements = []
    for name, value in obsm.items():
        if getattr(value, "ndim", 0) != 2:
            continue
        stem = name[: -len("_expression")] if name.endswith("_expression") else name
        for columns_name in dict.fromkeys([f"{stem}_names", f"{name}_names"]):
            columns = uns.get(columns_name)
            if columns is not None and len(columns) == value.shape[1]:
                data = value if sp_sparse.issparse(value) else np.asarray(value)
                measurements.append(
                    CellMeasurement(
                        name, data, columns_name, np.asarray(columns).astype(str)
                    )
                )
                break
    return measurements


def _populate_from_anndata(
    dataset: GeneExpressionDataset,
    ad: anndata.AnnData,
    batch_label: str,
    ctype_label: str,
    class_label: str,
) -> None:
    """Fill ``dataset`` from ``ad``, dropping cells without counts.

    The AnnData annotations are kept as ``obs``, ``obsm``, ``var``, ``varm`` and
    ``uns`` attributes, with ``obs``/``obsm`` restricted to the cells kept; obsm
    matrices with column names in uns (e.g. ``protein_expression`` with
    ``protein_names``) also become cell measurements.
    """
    X, batch_indices, labels, gene_names, cell_types, obs, obsm, var, varm, uns = (
        extract_data_from_anndata(
            ad,
            batch_label=batch_label,
            ctype_label=ctype_label,
            class_label=class_label,
        )
    )
    keep = row_sums(X) >= 1
    if not keep.any():
        raise ValueError("Every cell of the AnnData object has zero counts.")
    if not keep.all():
        logger.info("Dropping %d cells without counts.", int((~keep).sum()))
        X = X[keep]
        batch_indices = None if batch_indices is None else batch_indices[keep]
        labels = None if labels is None else labels[keep]
    dataset.obs = obs[keep].copy()
    dataset.obsm = {name: value[keep] for name, value in obsm.items()}
    dataset.var = var.copy()
    dataset.varm = dict(varm.items())
    dataset.uns = dict(uns.items())
    dataset.populate_from_data(
        X=X,
        Ys=_measurements(dataset.obsm, dataset.uns),
        batch_indices=batch_indices,
        labels=labels,
        gene_names=gene_names,
        cell_types=cell_types,
    )


class AnnDatasetFromAnnData(GeneExpressionDataset):
    """Dataset built from an in-memory :class:`anndata.AnnData`.

    Cells without counts are dropped. Labels come from obs (unlike scVI 0.5, which
    dropped them here). :meth:`GeneExpressionDataset.to_anndata` goes back.

    Parameters
    ----------
    ad
        AnnData with raw counts in ``X``.
    batch_label
        obs column with the batches.
    ctype_label
        obs column with cell-type names.
    class_label
        obs column with integer labels.
    """

    def __init__(
        self,
        ad: anndata.AnnData,
        batch_label: str = "batch_indices",
        ctype_label: str = "cell_types",
        class_label: str = "labels",
    ):
        super().__init__()
        _populate_from_anndata(self, ad, batch_label, ctype_label, class_label)


class DownloadableAnnDataset(DownloadableDataset):
    """Dataset read from a ``.h5ad`` file, downloaded first when a URL is given.

    Parameters
    ----------
    filename
        Name of the ``.h5ad`` file in ``save_path``.
    save_path
        Folder of the file.
    url
        Where to download the file from when it is not in ``save_path``.
    delayed_populating
        Do not read the file in the constructor.
    batch_label, ctype_label, class_label
        obs columns, as for :class:`AnnDatasetFromAnnData`.
    """

    def __init__(
        self,
        filename: str = "anndataset",
        save_path: str = "data/",
        url: str = None,
        delayed_populating: bool = False,
        batch_label: str = "batch_indices",
        ctype_label: str = "cell_types",
        class_label: str = "labels",
    ):
        self.batch_label = batch_label
        self.ctype_label = ctype_label
        self.class_label = class_label
        super().__init__(
            urls=url,
            filenames=filename,
            save_path=save_path,
            delayed_populating=delayed_populating,
        )

    def populate(self) -> None:
        """Read ``save_path/filename`` and fill the dataset."""
        path = os.path.join(self.save_path, self.filenames[0])
        _populate_from_anndata(
            self,
            anndata.read_h5ad(path),
            self.batch_label,
            self.ctype_label,
            self.class_label,
        )
