"""Logging configuration for the ``scvi`` package."""

import logging
import os
from typing import Dict, Optional, Union

logger = logging.getLogger(__name__)
scvi_logger = logging.getLogger("scvi")

autotune_formatter = logging.Formatter(
    "[%(asctime)s - %(processName)s - %(threadName)s] %(levelname)s - %(name)s\n%(message)s"
)


class DispatchingFormatter(logging.Formatter):
    """Format each record with the formatter registered for its logger or nearest parent.

    Parameters
    ----------
    default_formatter
        Formatter used when no logger in the record's hierarchy has one registered.
    formatters
        Mapping from logger name to formatter.
    """

    def __init__(
        self,
        default_formatter: logging.Formatter,
        formatters: Optional[Dict[str, logging.Formatter]] = None,
    ):
        super().__init__()
        self._formatters = formatters if formatters is not None else {}
        self._default_formatter = default_formatter

    def format(self, record: logging.LogRecord) -> str:
        name: Optional[str] = record.name
        while name:
            if name in self._formatters:
                return self._formatters[name].format(record)
            name = name.rpartition(".")[0] or None
        return self._default_formatter.format(record)


def set_verbosity(level: Union[str, int]) -> None:
    """Set the level of the ``scvi`` logger and of its stream handler.

    Adds a stream handler with scvi's formatter when the logger has none.

    Parameters
    ----------
    level
        A :mod:`logging` level, as an int (``logging.INFO``) or a name (``"WARNING"``).
    """
    if isinstance(level, str):
        level = level.upper()
    scvi_logger.setLevel(level)
    has_streamhandler = False
    for handler in scvi_logger.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setLevel(level)
            has_streamhandler = True
    if not has_streamhandler:
        handler = logging.StreamHandler()
        handler.setFormatter(
            DispatchingFormatter(
                logging.Formatter(
                    "[%(asctime)s] %(levelname)s - %(name)s | %(message)s"
                ),
                {"scvi.autotune": autotune_formatter},
            )
        )
        handler.setLevel(level)
        scvi_logger.addHandler(handler)
        logger.debug("Added StreamHandler with custom formatter to 'scvi' logger.")


class ScviSettings:
    """Package-wide switches, available as ``scvi.settings``.

    Attributes
    ----------
    fast_training
        Use the fused likelihood and KL kernels and the fused optimizer step (default).
        ``False`` selects the plain element-wise path, e.g. to compare results; the
        environment variable ``SCVI_FAST_TRAINING=0`` sets it at import.
    """

    def __init__(self) -> None:
        self.fast_training: bool = os.environ.get("SCVI_FAST_TRAINING", "1") != "0"

    def __repr__(self) -> str:
        return f"ScviSettings(fast_training={self.fast_training})"


settings = ScviSettings()
