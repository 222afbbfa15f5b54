"""scvi: single-cell variational inference, a faithful reimplementation of scVI 0.5."""

import logging
from logging import NullHandler

from ._settings import set_verbosity, settings

__version__ = "0.5.1"

logger = logging.getLogger(__name__)
logger.addHandler(NullHandler())

set_verbosity(logging.INFO)

__all__ = ["set_verbosity", "settings"]
