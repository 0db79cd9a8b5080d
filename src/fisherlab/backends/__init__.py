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
from ._streamed_objective import (
    ChunkPass as ChunkPass,
    StreamedLogPosterior as StreamedLogPosterior,
    require_autodiff as require_autodiff,
)
from ._validity import check_finite as check_finite

__all__ = [
    "AutodiffBackend",
    "Backend",
    "ChunkPass",
    "Derivative",
    "LogPosterior",
    "MonteCarloMoments",
    "NumericBackend",
    "RowCurvature",
    "StreamedLogPosterior",
    "backend_for",
    "check_finite",
    "require_autodiff",
]
