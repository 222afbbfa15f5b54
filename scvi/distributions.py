"""Distributions of scvi, importable as ``scvi.distributions``.

The classes live in :mod:`scvi.models.distributions`; this module re-exports them under
the name used by scvi-tools 1.x.
"""

from scvi.models.distributions import (
    NegativeBinomial,
    NegativeBinomialMixture,
    ZeroInflatedLogNormal,
    ZeroInflatedNegativeBinomial,
)

__all__ = [
    "NegativeBinomial",
    "NegativeBinomialMixture",
    "ZeroInflatedLogNormal",
    "ZeroInflatedNegativeBinomial",
]
