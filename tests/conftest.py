"""Shared fixtures: the location of the real datasets and small datasets for fast tests."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import scvi

ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    """Folder of the shared real datasets (``SCVI_SHARED_DATA`` or ``../shared/data``)."""
    return Path(os.environ.get("SCVI_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        raise FileNotFoundError(
            f"Shared datasets not found at {path}: set SCVI_SHARED_DATA to the folder that "
            "holds real/ and scvi05_fixtures/."
        )
    return path


@pytest.fixture(autouse=True)
def _seed_and_quiet():
    torch.manual_seed(0)
    np.random.seed(0)
    scvi.set_verbosity("WARNING")
    yield
