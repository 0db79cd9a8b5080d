r"""The objective of :func:`~fisherlab.fit` for a black-box model (``derivatives="numeric"``).

The negative log-posterior on the unconstrained scale,

.. math:: f(u) = -\Big[\sum_i \ell_i(T(u)) + \log p(T(u))\Big],

is evaluated through the model function (one call for all rows, cached per point on the
model), and its gradient and Hessian come from the finite-difference engine
(:mod:`fisherlab._numeric`: central differences with Richardson extrapolation and error
estimates, ``1 + L(P^2 + P)`` calls for the Hessian with the gradient from the same points).
Outside the support (a distribution parameter or ``y`` out of range, a non-finite
log-likelihood) :math:`f = +\infty`, and the engine retries a perturbed point there with a
smaller step.

The Newton decrement :math:`\sqrt{g^\top H^{-1} g}` that judges convergence cannot be
smaller than the gradient's own error :math:`e`: :meth:`NumericObjective.tolerance` raises the
threshold to :math:`2\sqrt{e^\top H^{-1} e}` where that exceeds the requested ``tol``, and
the fit then says so in its notes.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import numeric as _numeric
from .._errors import FisherlabError, ModelError
from ..backends._numeric import Problem, engine_options
from ..data._prepare import Data
from ..model._model import Model
from ..params._constraints import Reparam
from ..params._prior import Prior

__all__ = ["NUMERIC_NEWTON_MAX_PARAMS", "NumericObjective"]

#: Above this many parameters a numeric fit uses L-BFGS (a numeric Hessian per iteration
#: costs 1 + 4(P^2 + P) model calls; a gradient 1 + 8P).
NUMERIC_NEWTON_MAX_PARAMS = 10


class NumericObjective:
    """Negative log-posterior of a numeric model on the unconstrained scale, with numeric derivatives.

    Same interface as :class:`fisherlab._fit.Objective` (``value``, ``grad``,
    ``value_and_grad``, ``hessian``, ``trial_hessian``, ``tolerance``).
    """

    def __init__(self, model: Model, reparam: Reparam, prior: Prior | None, data: Data, params0: Any) -> None:
        self.model, self.reparam, self.prior, self.data = model, reparam, prior, data
        self.problem = Problem(model, params0, data.y, data.x)
        self._options = {"names": reparam.names_u, **engine_options(model)}
        self._derivs: dict[bytes, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        # what a worker process needs to evaluate f(u): no model (its compiled-kernel cache), no results
        return {**self.__dict__, "model": None, "_derivs": {}, "_options": {}}

    @property
    def evaluations(self) -> int:
        """Calls of the model function so far (cache hits are free)."""
        return self.problem.calls

    def _theta(self, u: np.ndarray) -> tuple[np.ndarray, Any]:
        params = self.reparam.to_params(jnp.asarray(u))
        leaves = jax.tree_util.tree_leaves(params)
        return np.concatenate([np.ravel(np.asarray(leaf, dtype=np.float64)) for leaf in leaves]), params

    def value(self, u: np.ndarray) -> float:
        """:math:`f(u)`, ``+inf`` outside the support; a model's exception is chained with the values."""
        v, params = self._theta(np.asarray(u, dtype=np.float64))
        if not np.all(np.isfinite(v)):
            return float("inf")
        try:
            ll, flags = self.problem.rows(v)
        except FisherlabError:
            raise
        except Exception as exc:
            raise ModelError(
                f"the model function raised {type(exc).__name__} at {self.problem.describe(v)}: {exc}"
            ) from exc
        if not all(bool(np.all(ok)) for ok in flags.values()):
            return float("inf")
        total = float(np.sum(ll))
        if self.prior is not None:
            total += float(self.prior.log_density(params))
        return -total if np.isfinite(total) else float("inf")

    def derivatives(self, u: np.ndarray) -> _numeric.HessianResult:
        """Value, gradient and Hessian at ``u`` from one set of stencils (cached for the last points)."""
        u = np.asarray(u, dtype=np.float64)
        key = u.tobytes()
        if key not in self._derivs:
            if len(self._derivs) > 8:
                self._derivs.clear()
            self._derivs[key] = _numeric.hessian(self.value, u, **self._options)
        return self._derivs[key]

    def grad(self, u: np.ndarray) -> np.ndarray:
        if self.reparam.size > NUMERIC_NEWTON_MAX_PARAMS:
            return _numeric.gradient(self.value, np.asarray(u, dtype=np.float64), **self._options).gradient
        return self.derivatives(u).gradient.copy()

    def value_and_grad(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        return self.value(u), self.grad(u)

    def hessian(self, u: np.ndarray) -> np.ndarray:
        return self.derivatives(u).hessian.copy()

    def trial_hessian(self, u: np.ndarray) -> np.ndarray:
        """The Hessian for SciPy's trust region (the identity where it is not finite)."""
        h = self.hessian(u)
        return h if np.all(np.isfinite(h)) else np.eye(h.shape[0])

    def floor(self, u: np.ndarray) -> float:
        r"""The Newton decrement of the gradient's error, :math:`\sqrt{e^\top H^{-1} e}` (inf: H not PD)."""
        res = self.derivatives(u)
        try:
            factor = np.linalg.cholesky(res.hessian)
        except np.linalg.LinAlgError:
            return float("inf")
        w = np.linalg.solve(factor, res.gradient_error)
        return float(np.sqrt(w @ w))

    def tolerance(self, u: np.ndarray, tol: float) -> float:
        """The decrement threshold at ``u``: ``tol``, or twice the gradient-error floor if larger."""
        floor = self.floor(u)
        return max(tol, 2.0 * floor) if np.isfinite(floor) else tol
