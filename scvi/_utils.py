"""Helpers with no scvi dependencies, shared by the dataset and model layers."""

from typing import Sequence


def check_option(name: str, value: str, valid: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``valid``; otherwise raise a ValueError listing them."""
    if value not in valid:
        raise ValueError(f"{name} must be one of {list(valid)}, but got {value!r}.")
    return value
