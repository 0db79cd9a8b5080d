r"""The objective of :func:`~fisherlab.fit` for a black-box model (``derivatives="numeric"``).

The negative log-posterior on the unconstrained scale,

.. math:: f(u) = -\Big[\sum_i \ell_i(T(u)) + \log p(T(u))\Big],

is evaluated through the model function (one call for all rows, cached per point on the
model), and its gradient and Hessian come from the finite-difference engine
(:mod:`fisherlab.numeric`: central differences with Richardson extrapolation and error
estimates, ``1 + L(P^2 + P)`` calls for the Hessian with the gradient from the same points).
Outside the support (a distribution parameter or ``y`` out of range, a non-finite
log-likelihood) :math:`f = +\infty`, and the engine retries a perturbed point there with a
smaller step.

The gradient's own error :math:`e` (:meth:`NumericLogPosterior.gradient_error`) sets the
floor of the Newton decrement a fit can reach (:class:`fisherlab.inference._objective.Objective`).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from .. import numeric as engine
from .._errors import FisherlabError, ModelError
from .._precision import float64
from ..data._prepare import Data
from ..model._model import Model
from ..params._constraints import Reparam
from ..params._prior import Prior
from ._base import LogPosterior
from ._problem import Problem, engine_options

__all__ = ["NUMERIC_NEWTON_MAX_PARAMS", "NumericLogPosterior"]

#: Above this many parameters a numeric fit uses L-BFGS (a numeric Hessian per iteration
#: costs 1 + 4(P^2 + P) model calls; a gradient 1 + 8P).
NUMERIC_NEWTON_MAX_PARAMS = 10


class NumericLogPosterior(LogPosterior):
    """Negative log-posterior of a numeric model on the unconstrained scale, with numeric derivatives.

    A :class:`~fisherlab.backends.LogPosterior` whose gradient carries an error bound.
    """

    newton_max_params = NUMERIC_NEWTON_MAX_PARAMS

    def __init__(self, model: Model, reparam: Reparam, prior: Prior | None, data: Data, params0: Any) -> None:
        self.model, self.reparam, self.prior, self.data = model, reparam, prior, data
        self.problem = Problem(model, params0, data)
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
        return self.problem.codec.to_flat(params), params

    @float64  # also in a worker thread or process of the executor
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

    def derivatives(self, u: np.ndarray) -> engine.HessianResult:
        """Value, gradient and Hessian at ``u`` from one set of stencils (cached for the last points)."""
        u = np.asarray(u, dtype=np.float64)
        key = u.tobytes()
        if key not in self._derivs:
            if len(self._derivs) > 8:
                self._derivs.clear()
            self._derivs[key] = engine.hessian(self.value, u, **self._options)
        return self._derivs[key]

    def value_and_grad(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        u = np.asarray(u, dtype=np.float64)
        if self.reparam.size > NUMERIC_NEWTON_MAX_PARAMS:
            return self.value(u), engine.gradient(self.value, u, **self._options).gradient
        return self.value(u), self.derivatives(u).gradient.copy()

    def hessian(self, u: np.ndarray) -> np.ndarray:
        return self.derivatives(u).hessian.copy()

    def gradient_error(self, u: np.ndarray) -> np.ndarray:
        """The engine's error estimate of the gradient at ``u`` (from the Hessian's stencils)."""
        return self.derivatives(u).gradient_error
