"""Derivative backends: one interface (:class:`Backend`), chosen once per model.

Everything above this layer (the information matrices, fits, checks, profiles, Laplace)
calls a backend's operations and never asks how the derivatives are taken. See
:mod:`fisherlab.backends._base` for the operations and ``docs/architecture.md`` for how to add
a backend.
"""

from ._autodiff import AutodiffBackend as AutodiffBackend
from ._base import (
    Backend as Backend,
    Derivative as Derivative,
    LogPosterior as LogPosterior,
    MonteCarloMoments as MonteCarloMoments,
    RowCurvature as RowCurvature,
)
from ._numeric import NumericBackend as NumericBackend
from ._select import backend_for as backend_for
from ._validity import check_finite as check_finite

__all__ = [
    "AutodiffBackend",
    "Backend",
    "Derivative",
    "LogPosterior",
    "MonteCarloMoments",
    "NumericBackend",
    "RowCurvature",
    "backend_for",
    "check_finite",
]
