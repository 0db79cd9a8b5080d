r"""The objective of every fit and profile: the negative log-posterior on the fitting scale.

.. math:: f(u) = -\Big[\sum_i \ell_i(T(u)) + \log p(T(u))\Big],

with :math:`\theta = T(u)` the map from the unconstrained vector (``params/_constraints.py``)
and the prior term only with a prior. The derivatives come from the model's backend
(:meth:`fisherlab.backends.Backend.log_posterior`: compiled JAX, or finite differences with
an error bound on the gradient); this class adds what every optimiser here needs, whatever
the backend:

- the last Hessian is kept (SciPy, the fit's first step and the Newton polish ask for it at
  the same point; the backends keep their own last value and gradient);
- :meth:`trial_hessian` stands in the identity where the Hessian is not finite (a trial point
  outside the support, rejected on :math:`f` alone);
- on a chunk source (:class:`~fisherlab.data._chunks.StreamedData`) the derivatives are
  streamed passes (:class:`~fisherlab.backends._streamed_objective.StreamedLogPosterior`);
- :meth:`tolerance`: the Newton decrement :math:`\sqrt{g^\top H^{-1} g}` cannot be judged below
  the gradient's own error :math:`e`; the threshold is raised to :math:`2\sqrt{e^\top H^{-1} e}`
  where that exceeds the requested ``tol`` (0 for exact derivatives).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._precision import float64_methods
from ..backends import LogPosterior, StreamedLogPosterior, backend_for, require_autodiff
from ..data._chunks import StreamedData
from ..data._prepare import Data
from ..model._model import Model
from ..params._constraints import Reparam
from ..params._prior import Prior
from ..params._pytree import tree_signature
from ._newton import decrement

__all__ = ["Objective"]


@float64_methods
class Objective:
    """:math:`f(u)` with its derivatives for one model, data set, prior and parameter structure.

    Attributes:
        model, reparam, prior, data: what defines :math:`f`.
        source: the backend's :class:`~fisherlab.backends.LogPosterior`.
    """

    def __init__(
        self, model: Model, reparam: Reparam, prior: Prior | None, data: Data | StreamedData, params0: Any
    ) -> None:
        self.model, self.reparam, self.prior, self.data = model, reparam, prior, data
        self.source: LogPosterior
        if isinstance(data, StreamedData):
            require_autodiff(backend_for(model, params0, data.first.y, data.first.x))
            self.source = StreamedLogPosterior(model, reparam, prior, data, tree_signature(params0))
        else:
            backend = backend_for(model, params0, data.y, data.x)
            self.source = backend.log_posterior(reparam, prior, data, params0)
        self._last_h: tuple[bytes, np.ndarray] | None = None

    @property
    def newton_max_params(self) -> int:
        """Above this many parameters ``method="auto"`` fits by L-BFGS."""
        return self.source.newton_max_params

    @property
    def evaluations(self) -> int | None:
        """Calls of the model function so far (numeric derivatives), else ``None``."""
        return self.source.evaluations

    def value_and_grad(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = self.source.value_and_grad(np.asarray(u, dtype=np.float64))
        return float(value), np.asarray(grad)

    def value(self, u: np.ndarray) -> float:
        return float(self.source.value(np.asarray(u, dtype=np.float64)))

    def grad(self, u: np.ndarray) -> np.ndarray:
        return self.value_and_grad(u)[1]

    def hessian(self, u: np.ndarray) -> np.ndarray:
        key = np.asarray(u, dtype=np.float64).tobytes()
        if self._last_h is None or self._last_h[0] != key:
            self._last_h = (key, np.asarray(self.source.hessian(np.asarray(u, dtype=np.float64))))
        return self._last_h[1].copy()

    def trial_hessian(self, u: np.ndarray) -> np.ndarray:
        """The Hessian for SciPy's trust region, which evaluates it eagerly at trial points.

        At a point outside the support (f = inf) or where the Hessian overflows, the
        trial step is rejected on f alone; a finite stand-in (the identity) keeps SciPy's
        Hessian checks from raising there.
        """
        h = self.hessian(u)
        return h if np.all(np.isfinite(h)) else np.eye(h.shape[0])

    def floor(self, u: np.ndarray) -> float:
        r"""The decrement of the gradient's error, :math:`\sqrt{e^\top H^{-1} e}` (0 if exact)."""
        error = self.source.gradient_error(np.asarray(u, dtype=np.float64))
        if error is None:
            return 0.0
        return decrement(error, self.hessian(u))[0]

    def tolerance(self, u: np.ndarray, tol: float) -> float:
        """The decrement threshold at ``u``: ``tol``, or twice the gradient-error floor if larger."""
        floor = self.floor(u)
        return max(tol, 2.0 * floor) if np.isfinite(floor) else tol
