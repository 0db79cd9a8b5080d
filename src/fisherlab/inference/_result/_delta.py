r"""The delta method: a function of the parameters with its standard error.

.. math:: \operatorname{Cov}[g(\hat\theta)] \approx \nabla g\, \Sigma\, \nabla g^\top

with :math:`\nabla g` by autodiff (JAX) and :math:`\Sigma` any covariance kind of the fit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ..._errors import FisherlabArgumentError, InvalidParameterError, SingularInformationError
from ..._precision import float64_methods
from ...model._model import trace_shape
from ._covariance import check_kind, robust_options

if TYPE_CHECKING:
    from ._fitresult import FitResult

__all__ = ["Derived", "delta_method"]


@float64_methods
class Derived(NamedTuple):
    """A function of the parameters with its delta-method uncertainty.

    Attributes:
        estimate: :math:`g(\\hat\\theta)` (float or array).
        se: its standard error, same shape.
        cov: covariance :math:`\\nabla g\\, \\Sigma\\, \\nabla g^\\top` of the flattened output.
    """

    estimate: Any
    se: Any
    cov: np.ndarray


def estimate_text(names: list[str], flat: np.ndarray, limit: int = 8) -> str:
    """``{a=1.0, b=-2.0, ...}``: the estimate, for a message."""
    parts = [f"{n}={v:.6g}" for n, v in zip(names[:limit], flat[:limit].tolist(), strict=False)]
    return "{" + ", ".join(parts) + (", ..." if len(names) > limit else "") + "}"


def _function_name(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__)


def delta_method(
    res: FitResult,
    fn: Callable[[Any], Any],
    kind: str,
    hc: str | None,
    groups: Any,
    small_sample: bool | None,
) -> Derived:
    """:meth:`FitResult.derived` (its docstring has the contract)."""
    if not callable(fn):
        raise FisherlabArgumentError(
            "derived: fn must be a function fn(params) -> number or array, got "
            f"{type(fn).__name__} {fn!r:.40}"
        )
    cov_kind = check_kind(kind)
    robust_options(res, cov_kind, hc, groups, small_sample)
    label = _function_name(fn)
    flat, unravel = ravel_pytree(res.params)
    theta = np.asarray(flat, dtype=np.float64)
    at = estimate_text(res.names, theta)

    def g(v: jax.Array) -> jax.Array:
        return jnp.ravel(jnp.asarray(fn(unravel(v))))

    shape = trace_shape(
        lambda v: jnp.asarray(fn(unravel(v))),
        flat,
        what=f"derived: fn ({label})",
        advice="it is differentiated by JAX: write it with jax.numpy",
    )
    if not (jnp.issubdtype(shape.dtype, jnp.floating) or jnp.issubdtype(shape.dtype, jnp.integer)):
        raise FisherlabArgumentError(
            f"derived: fn ({label}) returns dtype {shape.dtype}; it must return real numbers"
        )
    out_shape = tuple(shape.shape)

    def output(i: int) -> str:
        if not out_shape:
            return ""
        return f" (output {list(int(k) for k in np.unravel_index(i, out_shape))})"

    value = np.asarray(g(flat), dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(value))
    if bad.size:
        i = int(bad[0])
        raise InvalidParameterError(
            f"derived: fn ({label}) is {value[i]}{output(i)} at the estimate {at}: it is undefined "
            "there (a log or square root of a negative number?); the delta method needs a function "
            "that is finite and differentiable at the estimate"
        )
    jac = np.asarray(jax.jacobian(g)(flat), dtype=np.float64).reshape(value.size, theta.size)
    bad_jac = np.argwhere(~np.isfinite(jac))
    if bad_jac.size:
        i, j = (int(k) for k in bad_jac[0])
        raise InvalidParameterError(
            f"derived: the gradient of fn ({label}){output(i)} with respect to {res.names[j]} is "
            f"{jac[i, j]} at the estimate {at}: fn is not differentiable there (a square root or "
            "absolute value at 0?); the delta method needs a finite gradient"
        )
    sigma = res.cov(cov_kind.value, hc=hc, groups=groups, small_sample=small_sample).matrix
    cov = jac @ sigma @ jac.T
    variance = np.diag(cov).copy()
    # J Sigma J^T is positive semidefinite: a negative diagonal is rounding, bounded by
    # eps * P * (|J| |Sigma| |J|^T)
    rounding = (
        8 * np.finfo(np.float64).eps * theta.size * np.diag(np.abs(jac) @ np.abs(sigma) @ np.abs(jac).T)
    )
    if np.any(variance < -rounding):
        i = int(np.flatnonzero(variance < -rounding)[0])
        raise SingularInformationError(
            f"derived: the delta-method variance of fn ({label}){output(i)} is negative "
            f"({variance[i]:.3g}): the {cov_kind.value} covariance is not positive semidefinite"
        )
    se = np.sqrt(np.maximum(variance, 0.0)).reshape(out_shape)
    estimate: Any = float(value[0]) if out_shape == () else value.reshape(out_shape)
    return Derived(estimate, float(se) if out_shape == () else se, cov)
