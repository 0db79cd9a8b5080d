r"""The fit's objective under autodiff: :math:`f(u) = -[\sum_i \ell_i(T(u)) + \log p(T(u))]`.

Value and gradient come from one jit-compiled ``value_and_grad``; the Hessian from
:func:`~fisherlab.backends._curvature.negative_hessian` (through the family's parameters)
plus the prior's curvature. Kernels are compiled once per (model, parameter structure,
prior) and kept in ``model.state.kernels``, so profiles, repeated fits and the report's
contours reuse them; the batched variants (``vmap`` over many points ``u``) serve the 2-D
profile. Outside the support (any row's distribution parameters invalid) :math:`f = +\infty`
and the gradient is 0.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from ._base import LogPosterior
from ._curvature import negative_hessian
from ._validity import run

if TYPE_CHECKING:
    from ..data._prepare import Data
    from ..model._model import Model
    from ..params._constraints import Reparam
    from ..params._prior import Prior

__all__ = ["AutodiffLogPosterior"]

# Above this many parameters "auto" fits use L-BFGS: a dense Hessian costs O(P^2) memory and
# P Hessian-vector products per iteration.
NEWTON_MAX_PARAMS = 400


class AutodiffLogPosterior(LogPosterior):
    """:class:`~fisherlab.backends.LogPosterior` by JAX autodiff (see the module docstring)."""

    newton_max_params = NEWTON_MAX_PARAMS

    def __init__(
        self, model: Model, reparam: Reparam, prior: Prior | None, data: Data, key: Hashable
    ) -> None:
        self.data = data
        self._last: tuple[bytes, float, np.ndarray] | None = None
        axes = (None, 0, None if data.x is None else 0)

        def neg_log_post(u: jax.Array, y: Any, x: Any) -> tuple[jax.Array, jax.Array]:
            params = reparam.to_params(u)
            ll, flags = jax.vmap(model.row_loglik, in_axes=axes)(params, y, x)
            total = ll.sum()
            if prior is not None:
                total = total + prior.log_density(params)
            valid = jnp.all(jnp.stack([jnp.all(v) for v in flags.values()])) if flags else jnp.asarray(True)
            value = jnp.where(valid & jnp.isfinite(total), -total, jnp.inf)
            return value, valid

        def value_and_grad(u: jax.Array, y: Any, x: Any) -> tuple[jax.Array, jax.Array]:
            (value, valid), grad = jax.value_and_grad(neg_log_post, has_aux=True)(u, y, x)
            return value, jnp.where(valid, grad, 0.0)

        def hessian(u: jax.Array, y: Any, x: Any) -> jax.Array:
            neg, _ = negative_hessian(model, reparam.to_params, u, y, x)
            if prior is None:
                return neg
            return neg - jax.hessian(lambda v: prior.log_density(reparam.to_params(v)))(u)

        state = model.state
        self._vg = state.kernel(("fit_value_and_grad", key), lambda: value_and_grad)
        self._h = state.kernel(("fit_hessian", key), lambda: hessian)
        self._batch_vg = state.kernel(
            ("fit_value_and_grad_batch", key), lambda: jax.vmap(value_and_grad, in_axes=(0, None, None))
        )
        self._batch_h = state.kernel(
            ("fit_hessian_batch", key), lambda: jax.vmap(hessian, in_axes=(0, None, None))
        )

    def value_and_grad(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        # one compiled pass gives both; SciPy asks for f and then for g at the same point
        key = np.asarray(u, dtype=np.float64).tobytes()
        if self._last is None or self._last[0] != key:
            value, grad = run(self._vg, jnp.asarray(u), self.data.y, self.data.x)
            self._last = (key, float(value), np.asarray(grad))
        return self._last[1], self._last[2].copy()

    def value(self, u: np.ndarray) -> float:
        return self.value_and_grad(u)[0]

    def hessian(self, u: np.ndarray) -> np.ndarray:
        return np.asarray(run(self._h, jnp.asarray(u), self.data.y, self.data.x))

    @property
    def batched(self) -> bool:
        return True

    def batch_value_and_grad(self, us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f, g = run(self._batch_vg, jnp.asarray(us), self.data.y, self.data.x)
        return np.asarray(f), np.asarray(g)

    def batch_hessian(self, us: np.ndarray) -> np.ndarray:
        return np.asarray(run(self._batch_h, jnp.asarray(us), self.data.y, self.data.x))
