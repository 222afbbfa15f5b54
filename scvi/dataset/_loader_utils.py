"""Helpers shared by the file loaders: paths, names, numeric tables and archives."""

import logging
import os
import pickle
import shutil
import tarfile
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from scvi._utils import check_option as check_option  # re-exported for the loaders

from ._helpers import ArrayLike, row_sums

logger = logging.getLogger(__name__)

_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def data_file(save_path: str, filename: str) -> str:
    """Path of ``save_path/filename``; a clear ``FileNotFoundError`` when absent."""
    path = os.path.join(save_path, filename)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Data file {path} not found. Put the file there, or give the loader a "
            "url to download it from."
        )
    return path


def unreadable(path: str, error: Exception) -> ValueError:
    """The error for a file that exists but cannot be parsed."""
    return ValueError(
        f"Could not read {path}: {error}. The file may be truncated or corrupt (e.g. "
        "an interrupted download): delete it so that it is downloaded again, or "
        "replace it by hand."
    )


def read_pickle(path: str):
    """Unpickle a metadata file written by an older pandas (as scVI 0.5 did).

    Only open pickles from sources you trust: unpickling can run arbitrary code.
    """
    try:
        return pd.read_pickle(path)
    except (
        pickle.UnpicklingError,
        EOFError,
        OSError,
        ValueError,
        AttributeError,
        ImportError,
    ) as error:
        raise unreadable(path, error) from error


def checked_names(
    values: Iterable, what: str, source: str, unique: bool = True
) -> np.ndarray:
    """Names as a str array; ``ValueError`` if some are missing or (when ``unique``)
    repeated, ignoring case (gene names are stored upper-cased).

    Parameters
    ----------
    values
        The names.
    what
        What they name, e.g. ``"gene names"``, for the error messages.
    source
        Where they come from (a file path), for the error messages.
    unique
        Also require distinct names.
    """
    series = pd.Series(list(values), dtype=object)
    text = series.astype(str).str.strip()
    missing = series.isna().to_numpy() | (text == "").to_numpy()
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"{source}: {int(missing.sum())} of {len(series)} {what} are missing or "
            f"empty (first at position {first}); every entry needs a name."
        )
    names = text.to_numpy().astype(str)
    if unique:
        upper = pd.Series(np.char.upper(names))
        repeated = upper[upper.duplicated()].unique()
        if repeated.size:
            raise ValueError(
                f"{source}: {repeated.size} {what} occur more than once (ignoring "
                f"case), e.g. {repeated[:5].tolist()}. Names must be unique: make them "
                "unique or use a column of unique identifiers."
            )
    return names


def drop_unnamed_index(table: pd.DataFrame) -> pd.DataFrame:
    """Use a first column with an empty header (a saved row index) as the index."""
    if table.shape[1] and str(table.columns[0]).startswith("Unnamed: 0"):
        return table.set_index(table.columns[0])
    return table


def numeric_values(table: pd.DataFrame, source: str, hint: str = "") -> np.ndarray:
    """The values of a table that must be numeric, else a clear ``ValueError``.

    Parameters
    ----------
    table
        The parsed table.
    source
        Its file, for the message.
    hint
        Extra advice appended to the message (e.g. about the delimiter).
    """
    if table.shape[0] == 0 or table.shape[1] == 0:
        raise ValueError(
            f"{source} parsed into an empty table ({table.shape[0]} x "
            f"{table.shape[1]}).{hint}"
        )
    bad = [
        column
        for column, dtype in table.dtypes.items()
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
    ]
    if bad:
        raise ValueError(
            f"{source}: {len(bad)} of {table.shape[1]} columns are not numeric (e.g. "
            f"{[str(column) for column in bad[:3]]}).{hint}"
        )
    return table.to_numpy()


def nonempty_cells(X: ArrayLike) -> np.ndarray:
    """Boolean mask of the cells (rows) with at least one count; logs the others."""
    keep = row_sums(X) > 0
    if not keep.all():
        logger.info("Removing %d cells without counts", int((~keep).sum()))
    if not keep.any():
        raise ValueError("No cell has any count; the data file holds no expression.")
    return keep


def codes_and_names(values: Sequence) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Integer codes of a categorical column and, for non-integer values, their names.

    Integer-valued columns are returned as they are (names ``None``); other values
    are coded by their sorted unique values, which become the names.
    """
    array = np.asarray(values).ravel()
    if array.dtype.kind in "iub":
        return array.astype(np.int64), None
    if array.dtype.kind == "f" and np.all(np.isfinite(array)):
        if np.all(array == np.round(array)):
            return array.astype(np.int64), None
    names, codes = np.unique(array.astype(str), return_inverse=True)
    return codes.astype(np.int64), names


def archive_stem(path: str) -> Optional[str]:
    """``path`` without its archive suffix, or None when it is not an archive name."""
    for suffix in _ARCHIVE_SUFFIXES:
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return None


def extract_tar(path: str, destination: str) -> List[str]:
    """Extract a tar archive safely; return the top-level entries it created.

    Members that would land outside ``destination`` (absolute paths, ``..``, links
    out of the folder) are refused by the ``"data"`` extraction filter. When the
    archive is unreadable, what was extracted from it is removed.
    """
    created: List[str] = []
    try:
        with tarfile.open(path) as archive:
            tops = sorted(
                {_top_level(member.name) for member in archive.getmembers()} - {""}
            )
            created = [
                os.path.join(destination, top)
                for top in tops
                if not os.path.exists(os.path.join(destination, top))
            ]
            archive.extractall(path=destination, filter="data")
    except (tarfile.TarError, EOFError, OSError) as error:
        for entry in created:
            if os.path.isdir(entry):
                shutil.rmtree(entry)
            elif os.path.exists(entry):
                os.remove(entry)
        raise unreadable(path, error) from error
    logger.info("Extracted %s into %s", path, destination)
    return created


def _top_level(name: str) -> str:
    """First component of an archive member name (``""`` for the archive root)."""
    while name.startswith("./"):
        name = name[2:]
    top = name.split("/", 1)[0]
    return "" if top == "." else top
