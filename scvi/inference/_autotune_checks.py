"""Validation of the arguments of :func:`scvi.inference.autotune.auto_tune_scvi_model`."""

import inspect
import logging
import numbers
import os
from typing import Any, Callable, Dict

from scvi.dataset.dataset import DownloadableDataset, GeneExpressionDataset
from scvi.inference._autotune_objective import SPACE_KEYS

logger = logging.getLogger("scvi.inference.autotune")

MONGO_DEFAULTS = {"mongo_port": "1234", "mongo_host": "localhost", "db_name": "scvi_db"}


def _accepts_keyword(function: Callable, name: str) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in parameters)


def _is_count(value: Any, minimum: int) -> bool:
    return (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and value >= minimum
    )


def _check_search(arguments: Dict[str, Any]) -> None:
    exp_key = arguments["exp_key"]
    if not isinstance(exp_key, str) or not exp_key or os.sep in exp_key:
        raise ValueError(
            f"exp_key must be a non-empty name without {os.sep!r} (it names the result "
            f"files), got {exp_key!r}."
        )
    if not _is_count(arguments["max_evals"], 1):
        raise ValueError(
            f"max_evals must be a positive integer, got {arguments['max_evals']!r}."
        )
    for name in ("fmin_timer", "fmin_timeout"):
        value = arguments[name]
        if value is not None and (not isinstance(value, numbers.Real) or value <= 0):
            raise ValueError(
                f"{name} must be None or a positive number of seconds, got {value!r}."
            )
    if not _is_count(arguments["n_workers_per_gpu"], 1):
        raise ValueError(
            "n_workers_per_gpu must be a positive integer, got "
            f"{arguments['n_workers_per_gpu']!r}."
        )
    n_cpu_workers = arguments["n_cpu_workers"]
    if n_cpu_workers is not None and not _is_count(n_cpu_workers, 0):
        raise ValueError(
            f"n_cpu_workers must be None or an integer >= 0, got {n_cpu_workers!r}."
        )
    gpu_ids = arguments["gpu_ids"]
    if gpu_ids is not None and (
        not isinstance(gpu_ids, (list, tuple))
        or not all(_is_count(gpu, 0) for gpu in gpu_ids)
    ):
        raise ValueError(
            f"gpu_ids must be None or a list of GPU indices, e.g. [0, 1], got {gpu_ids!r}."
        )
    address = arguments["ray_address"]
    if address is not None and not isinstance(address, str):
        raise ValueError(
            f"ray_address must be None or an address like '10.0.0.1:6379', got {address!r}."
        )


def _check_objective(arguments: Dict[str, Any]) -> None:
    space = arguments["space"]
    if arguments["custom_objective_hyperopt"] is not None:
        if space is None:
            raise ValueError(
                "custom_objective_hyperopt needs its search space: pass space."
            )
        if arguments["train_best"] and not _accepts_keyword(
            arguments["custom_objective_hyperopt"], "is_best_training"
        ):
            raise TypeError(
                "With train_best=True the custom objective is called as "
                "objective(best_space, is_best_training=True) and must return the "
                "trained trainer; add that keyword to it or pass train_best=False."
            )
        return
    dataset = arguments["gene_dataset"]
    if not isinstance(dataset, GeneExpressionDataset):
        raise ValueError(
            "The default objective needs gene_dataset (a GeneExpressionDataset); pass "
            "one, or pass custom_objective_hyperopt."
        )
    if arguments["delayed_populating"] and not isinstance(dataset, DownloadableDataset):
        raise ValueError(
            "delayed_populating=True needs a DownloadableDataset built with "
            "delayed_populating=True; pass delayed_populating=False for other datasets."
        )
    if space is not None and not isinstance(space, dict):
        raise ValueError(
            f"space must be a dict with keys among {list(SPACE_KEYS)}, got {space!r}."
        )
    unknown = set(space or {}) - set(SPACE_KEYS)
    if unknown:
        raise ValueError(
            f"Unknown keys {sorted(unknown)} in space; the default objective reads only "
            f"{list(SPACE_KEYS)}."
        )


def check_arguments(arguments: Dict[str, Any]) -> None:
    """Raise on invalid arguments of ``auto_tune_scvi_model``; warn on ignored ones.

    Parameters
    ----------
    arguments
        The call's arguments by name (its ``locals()``).

    Raises
    ------
    ValueError, TypeError
        Saying which argument is wrong and how to fix it.
    """
    _check_search(arguments)
    _check_objective(arguments)
    changed = [
        name for name, value in MONGO_DEFAULTS.items() if arguments[name] != value
    ]
    if changed:
        logger.warning(
            "%s ignored: the parallel search runs on Ray, not MongoDB; give a Ray "
            "cluster with ray_address (or RAY_ADDRESS) instead.",
            ", ".join(changed),
        )
