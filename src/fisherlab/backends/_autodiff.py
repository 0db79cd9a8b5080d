"""The autodiff backend: every derivative by JAX transforms, jit-compiled once per model.

Kernels (:mod:`._autodiff_rows`, :mod:`._autodiff_fisher`, :mod:`._curvature`,
:mod:`._autodiff_objective`) are compiled on first use and kept in ``model.state.kernels``,
so a second call with new parameter values of the same shapes reuses the compiled code.
The kernels behind the public functions return, beside their result, the number of failed
row checks (the supports of the distribution parameters and of y, and a NaN or +inf
log-likelihood where the kernel computes it), reduced inside the compiled function; only when
it is not zero does a per-row pass run, whose flags :func:`~._validity.raise_invalid` turns
into an error naming the first invalid row. Derivatives are exact to rounding: every :class:`Derivative`
has ``error=None``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
from jax.flatten_util import ravel_pytree

from .._errors import MethodUnavailableError, ModelError, NotConvergedError
from ..model._stored import Local
from ..params._pytree import tree_signature
from . import _autodiff_fisher as fisher_kernels, _autodiff_rows as row_kernels
from ._autodiff_objective import AutodiffLogPosterior
from ._base import Backend, Derivative, LogPosterior, MonteCarloMoments, RowCurvature, RowJacobian
from ._curvature import negative_hessian
from ._validity import check_finite, eager_distribution, raise_invalid, row_slice, run

if TYPE_CHECKING:
    from ..data._prepare import Data
    from ..params._constraints import Reparam
    from ..params._prior import Prior

__all__ = ["AutodiffBackend"]


def _observed_kernel(model: Any) -> Callable[..., Any]:
    def kernel(params: Any, y: Any, x: Any) -> Any:
        flat, unravel = ravel_pytree(params)
        return negative_hessian(model, unravel, flat, y, x)

    return kernel


def _flat_dtype(params: Any) -> Any:
    """The dtype of the flattened parameters (float32 for float32 parameters: tangents must match)."""
    return jnp.result_type(*jax.tree_util.tree_leaves(params))


class AutodiffBackend(Backend):
    """Derivatives by JAX (``derivatives="autodiff"``); see the module docstring."""

    name = "autodiff"

    def _kernel(self, name: Hashable, build: Callable[[Any], Callable[..., Any]]) -> Callable[..., Any]:
        return self.model.state.kernel(name, lambda: build(self.model))

    def _on_rows(self, name: str, build: Callable[[Any], Callable[..., Any]], params: Any, data: Data) -> Any:
        """Run a row kernel whose last output is the rows' flags, name invalid rows, and check the
        log-likelihood (its first output)."""
        out = run(self._kernel(name, build), params, data.y, data.x)
        if self.model.kind == "distribution":
            raise_invalid(self.model, params, out[-1], data.x, has_rows=True, y=data.y)
        ll = np.asarray(out[0])
        check_finite("log-likelihood", np.where(np.isneginf(ll), 0.0, ll))
        return out

    def _name_invalid(self, params: Any, data: Data, invalid: Any) -> None:
        """When a kernel counted ``invalid`` rows, the per-row pass that names the first (and raises)."""
        if int(invalid):
            self._on_rows("loglik_rows", row_kernels.loglik_kernel, params, data)

    def _check_params(self, params: Any, flags: dict[str, Any], x: Any) -> None:
        if self.model.kind == "distribution":
            raise_invalid(self.model, params, flags, x, has_rows=x is not None)

    # ------------------------------------------------------------------ rows of data
    def loglik(self, params: Any, data: Data) -> np.ndarray:
        ll, invalid = run(self._kernel("loglik", row_kernels.checked_loglik_kernel), params, data.y, data.x)
        self._name_invalid(params, data, invalid)
        return np.asarray(ll)

    def scores(self, params: Any, data: Data) -> Derivative:
        g, invalid, nonfinite = run(self._kernel("score", row_kernels.score_kernel), params, data.y, data.x)
        self._name_invalid(params, data, invalid)
        g = np.asarray(g)
        if int(nonfinite):
            check_finite("score", g)
        return Derivative(g)

    def score_gram(self, params: Any, data: Data) -> Derivative:
        m, invalid, nonfinite = run(
            self._kernel("empirical", row_kernels.gram_kernel), params, data.y, data.x
        )
        self._name_invalid(params, data, invalid)
        if int(nonfinite):  # name the row
            self.scores(params, data)
        return Derivative(np.asarray(m))

    def negative_hessian(self, params: Any, data: Data) -> Derivative:
        out = run(self._kernel("observed", _observed_kernel), params, data.y, data.x)
        m, invalid = jax.device_get(out)  # one transfer of both
        self._name_invalid(params, data, invalid)
        check_finite("observed information", m[None])
        return Derivative(m)

    def row_curvature(self, params: Any, data: Data) -> RowCurvature:
        ll, s, h, _ = self._on_rows("check_rows", row_kernels.rows_kernel, params, data)
        return RowCurvature(np.asarray(ll), np.asarray(s), np.asarray(h))

    def third_derivatives(self, params: Any, data: Data) -> np.ndarray:
        return np.asarray(run(self._kernel("check_third", row_kernels.third_kernel), params, data.y, data.x))

    # ------------------------------------------------------------------ family parameters
    def first_distribution(self, params: Any, x: Any) -> nd.Distribution:
        try:
            return eager_distribution(self.model, params, row_slice(x, 0))
        except (ModelError, MethodUnavailableError):
            raise
        except Exception as exc:
            raise ModelError(
                f"the model function failed on the first row: {type(exc).__name__}: {exc}"
            ) from exc

    def rows_distribution(self, params: Any, x: Any) -> nd.Distribution:
        model = self.model
        return jax.vmap(lambda x_row: model.distribution(params, x_row))(x)

    def eta_jvp(self, params: Any, x: Any, v: np.ndarray, eta: Callable[[Any], Any]) -> np.ndarray:
        kernel = self._kernel(("eta_jvp", eta), lambda m: fisher_kernels.eta_jvp_kernel(m, eta))
        return np.asarray(run(kernel, params, x, jnp.asarray(v, dtype=_flat_dtype(params))))

    def eta_vjp(self, params: Any, x: Any, w: np.ndarray, eta: Callable[[Any], Any]) -> np.ndarray:
        kernel = self._kernel(("eta_vjp", eta), lambda m: fisher_kernels.eta_vjp_kernel(m, eta))
        return np.asarray(run(kernel, params, x, jnp.asarray(w, dtype=_flat_dtype(params))))

    def eta_gram(self, params: Any, x: Any, family: Callable[[Any], tuple[Any, Any]]) -> Derivative:
        kernel = self._kernel(("eta_gram", family), lambda m: fisher_kernels.eta_gram_kernel(m, family))
        f, flags, _ = run(kernel, params, x)
        self._check_params(params, flags, x)
        return Derivative(np.asarray(f))

    def eta_rows(self, params: Any, x: Any, family: Callable[[Any], tuple[Any, Any]]) -> RowJacobian:
        kernel = self._kernel(("eta_rows", family), lambda m: fisher_kernels.eta_rows_kernel(m, family))
        jac, mat, flags = run(kernel, params, x)
        self._check_params(params, flags, x)
        return RowJacobian(np.asarray(jac), np.asarray(mat))

    def rows_fisher(self, params: Any, x: Any, route: str) -> Derivative:
        if route == "summation":
            build = functools.partial(fisher_kernels.summation_kernel, per_row=True)
            kernel = self._kernel("rows_summation", build)
            f, flags, complete = run(kernel, params, x)
            error = None
        else:
            build = functools.partial(fisher_kernels.quadrature_kernel, per_row=True)
            kernel = self._kernel("rows_quadrature", build)
            f, error, flags = run(kernel, params, x)
            complete = True
        self._check_params(params, flags, x)
        if not np.all(np.asarray(complete)):
            raise NotConvergedError("the enumerated support does not sum to probability 1; use method='mc'")
        return Derivative(np.asarray(f), None if error is None else np.asarray(error))

    def mc_score_outer(self, params: Any, x: Any, num_samples: int, seed: int) -> MonteCarloMoments:
        kernel = self._kernel(("fisher_mc", num_samples), lambda m: fisher_kernels.mc_kernel(m, num_samples))
        means, squares, flags = run(kernel, params, x, jax.random.PRNGKey(seed))
        self._check_params(params, flags, x)
        block = np.asarray(means).shape[0]
        counts = np.full(block, num_samples // block)
        return MonteCarloMoments(counts, np.asarray(means), np.asarray(squares))

    @property
    def integrates(self) -> bool:
        return True

    def enumerated_fisher(self, params: Any, x: Any) -> Derivative:
        f, flags, complete = run(self._kernel("fisher_summation", fisher_kernels.summation_kernel), params, x)
        self._check_params(params, flags, x)
        if not np.all(np.asarray(complete)):
            raise NotConvergedError("the enumerated support does not sum to probability 1; use method='mc'")
        return Derivative(np.asarray(f))

    def quadrature_fisher(self, params: Any, x: Any) -> Derivative:
        f, error, flags = run(self._kernel("fisher_quadrature", fisher_kernels.quadrature_kernel), params, x)
        self._check_params(params, flags, x)
        return Derivative(np.asarray(f), np.asarray(error))

    # ------------------------------------------------------------------ fitting
    def log_posterior(self, reparam: Reparam, prior: Prior | None, data: Data, params0: Any) -> LogPosterior:
        key = (tree_signature(params0), None if prior is None else Local(id(prior.spec)))
        return AutodiffLogPosterior(self.model, reparam, prior, data, key)
