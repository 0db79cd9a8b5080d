r"""Hessian of any scalar function of a parameter pytree.

:math:`H_{ab} = \partial^2 f / \partial\theta_a \partial\theta_b`, by forward-over-reverse
autodiff (``jax.jacfwd(jax.grad(f))``), or for a function that cannot be traced by
finite differences with error estimates (:mod:`fisherlab.numeric`), labelled with the
flattened parameter names. For :math:`f = -\log \mathcal N(\theta; \theta^*, \Sigma)` the Hessian is
:math:`\Sigma^{-1}` everywhere, the founding note's identity (A.4).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import numeric as _numeric
from .._errors import FisherlabArgumentError, InvalidOptionError, InvalidParameterError
from .._options import HessianMethod, choose
from .._precision import float64
from ..model._model import trace_shape
from ..params._pytree import as_params, flatten_params, param_names
from ._matrix import LabelledMatrix

__all__ = ["hessian"]


def _per_parameter(value: Any, names: list[str], what: str, default: float) -> np.ndarray | None:
    """A scalar, or a mapping from parameter names (or leaf names) to values, as a ``(P,)`` vector."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return np.full(len(names), _real(value, what))
    leaf_of = {n: n.split("[", 1)[0] for n in names}
    unknown = [k for k in value if k not in leaf_of and k not in set(leaf_of.values())]
    if unknown:
        raise InvalidParameterError(f"{what} names unknown parameter(s) {unknown}; known: {names}")
    out = np.full(len(names), default)
    for i, n in enumerate(names):
        if n in value:
            out[i] = _real(value[n], f"{what}[{n!r}]")
        elif leaf_of[n] in value:
            out[i] = _real(value[leaf_of[n]], f"{what}[{leaf_of[n]!r}]")
    return out


def _point(names: list[str], flat: np.ndarray, limit: int = 8) -> str:
    parts = [f"{n}={v:.6g}" for n, v in zip(names[:limit], flat[:limit].tolist(), strict=False)]
    return ", ".join(parts) + (", ..." if len(names) > limit else "")


def _real(value: Any, what: str) -> float:
    """A real number (a bound may be infinite, a step may not be NaN: the engine checks ranges)."""
    if isinstance(value, bool) or not (
        isinstance(value, (int, float, np.integer, np.floating))
        or (np.ndim(value) == 0 and np.asarray(value).dtype.kind in "iuf")
    ):
        raise FisherlabArgumentError(
            f"{what} must be a real number or a mapping name -> number, got {value!r} "
            f"of type {type(value).__name__}"
        )
    number = float(value)
    if np.isnan(number):
        raise InvalidOptionError(f"{what} is NaN; give a number")
    return number


def _scalar_output(f: Callable[[Any], Any], params: Any) -> None:
    """Check that ``f(params)`` is a real scalar, by tracing it once (``jax.eval_shape``).

    Raises:
        FisherlabArgumentError: ``f`` cannot be traced by JAX, or returns a non-scalar or a
            complex value (what it returns is named).
    """
    out = trace_shape(
        f,
        params,
        what="hessian: f",
        advice='with method="autodiff" write f with jax.numpy, or pass method="numeric" for a '
        "function that calls NumPy, SciPy or an external program",
    )
    leaves = jax.tree_util.tree_leaves(out)
    shape = getattr(out, "shape", None)
    if len(leaves) != 1 or shape is None or shape != ():
        what = f"shape {tuple(shape)}" if shape is not None else type(out).__name__
        raise FisherlabArgumentError(
            f"hessian: f must return a real scalar, got {what}; sum or select the output you "
            "want the Hessian of (e.g. lambda th: jnp.sum(g(th)))"
        )
    if not jnp.issubdtype(out.dtype, jnp.floating) and not jnp.issubdtype(out.dtype, jnp.integer):
        raise FisherlabArgumentError(
            f"hessian: f must return a real scalar, got dtype {out.dtype}; fisherlab works with "
            "real functions"
        )


@float64
def hessian(
    f: Callable[[Any], Any],
    params: Any,
    *,
    method: str = "autodiff",
    step: float | Mapping[str, float] | None = None,
    lower: float | Mapping[str, float] | None = None,
    upper: float | Mapping[str, float] | None = None,
    executor: Any = None,
    workers: int | None = None,
) -> LabelledMatrix:
    r"""Hessian :math:`\nabla^2 f(\theta)` of a scalar function of a parameter pytree.

    Args:
        f: ``f(params) -> scalar``. With ``method="autodiff"`` it is written with
            ``jax.numpy`` and traced; with ``method="numeric"`` it receives the pytree with
            NumPy leaves (``numpy.float64`` for scalars, ``numpy.ndarray`` otherwise) and may
            call NumPy, SciPy or an external program.
        params: the point, a pytree of scalars/arrays.
        method: ``"autodiff"`` (exact, forward-over-reverse) or ``"numeric"``: central
            differences Richardson-extrapolated over the steps ``h, h/2, h/4, h/8`` with
            ``h_i = 4 eps^(1/6) max(|theta_i|, 1)`` (Richardson 1911; Ridders 1982), one-sided
            next to a bound; :math:`1 + 4(P^2 + P)` evaluations of ``f`` when no bound is near.
        step: numeric only: the base step, a number or a mapping name -> step (a leaf
            name such as ``"beta"`` covers all its elements).
        lower: numeric only: open lower bounds of the domain of ``f`` (a number or a
            mapping as for ``step``; unnamed parameters are unbounded). ``f`` is never
            evaluated on or beyond them.
        upper: numeric only: open upper bounds, as ``lower``.
        executor: numeric only: run the perturbed evaluations concurrently:
            ``"threads"``, ``"processes"`` (``f`` must be picklable: a module-level
            function) or a ``concurrent.futures.Executor`` (Dask's
            ``Client.get_executor()`` included); ``workers`` sizes the pool fisherlab
            creates (default: the number of CPUs). See :class:`~fisherlab.Model`.
        workers: numeric only: the size of the pool fisherlab creates for ``executor``.

    Returns:
        :class:`~fisherlab.LabelledMatrix` ``(P, P)`` over :func:`~fisherlab.param_names`.
        For ``"numeric"``: ``method="numeric"``, ``error`` the estimated absolute error
        of each entry (Ridders' extrapolation estimate plus a rounding bound) and
        ``evaluations`` the number of calls of ``f``.

    Raises:
        FisherlabArgumentError: ``f`` is not callable, returns a non-scalar or complex value,
            or (autodiff) cannot be traced by JAX; a parameter that is complex, a bool or not
            numeric; ``step``/``lower``/``upper`` that are not numbers.
        InvalidOptionError: ``method`` not one of its values; ``step``, ``lower``, ``upper``
            or ``executor`` given with ``method="autodiff"``.
        InvalidParameterError: ``f`` or its Hessian is not finite at ``params`` (autodiff); NaN/inf or
            empty parameters; ``step``/``lower``/``upper`` naming unknown parameters.
        NumericDerivativeError: ``f`` raised (the exception is chained, the message names the
            parameter values) or was not finite at a perturbed point even with smaller steps.

    Examples:
        The Hessian of :math:`-\log \mathcal N(\theta; \theta^*, \Sigma)` is :math:`\Sigma^{-1}`:

        >>> import fisherlab as fl, jax.numpy as jnp
        >>> cov = jnp.array([[2.0, 0.5], [0.5, 1.0]])
        >>> mvn = fl.dist.MultivariateNormal(jnp.zeros(2), covariance_matrix=cov)
        >>> H = fl.hessian(lambda th: -mvn.log_prob(th["theta"]), {"theta": jnp.ones(2)})
        >>> bool(jnp.allclose(H.matrix, jnp.linalg.inv(cov)))
        True

        A function written with SciPy, differentiated numerically:

        >>> import numpy as np, scipy.stats as st
        >>> y = np.array([0.5, 1.2, 2.0])
        >>> f = lambda th: -st.gamma.logpdf(y, th["a"], scale=1 / th["b"]).sum()
        >>> H = fl.hessian(f, {"a": 2.0, "b": 1.5}, method="numeric", lower=0.0)
        >>> H.matrix.round(6).tolist()  # 3 [[psi'(a), -1/b], [-1/b, a/b^2]]
        [[1.934802, -2.0], [-2.0, 2.666667]]
        >>> from scipy.special import polygamma
        >>> J = 3 * np.array([[polygamma(1, 2.0), -1 / 1.5], [-1 / 1.5, 2.0 / 1.5**2]])
        >>> bool(np.all(np.abs(H.matrix - J) <= H.error)), H.evaluations  # error bounds the truth
        (True, 25)
    """
    choice = choose(HessianMethod, method, "method")
    if not callable(f):
        raise FisherlabArgumentError(
            f"hessian: f must be a function f(params) -> scalar, got {type(f).__name__} {f!r:.40}"
        )
    params = as_params(params)
    names = param_names(params)
    if choice is HessianMethod.NUMERIC:
        return _numeric_hessian(f, params, names, step, lower, upper, executor, workers)
    given = [
        k
        for k, v in (("step", step), ("lower", lower), ("upper", upper), ("executor", executor))
        if v is not None
    ]
    if given:
        raise InvalidOptionError(
            f'{", ".join(given)} {"applies" if len(given) == 1 else "apply"} to method="numeric" only '
            "(finite differences); "
            'method="autodiff" is exact and takes none: drop them or pass method="numeric"'
        )
    _scalar_output(f, params)
    flat, unravel = flatten_params(params)

    def value_and_hessian(v: jax.Array) -> tuple[jax.Array, jax.Array]:
        return f(unravel(v)), jax.hessian(lambda w: f(unravel(w)))(v)

    value, h = (np.asarray(a) for a in jax.jit(value_and_hessian)(flat))
    if not np.isfinite(value):
        raise InvalidParameterError(
            f"f is {value} at these parameters ({_point(names, np.asarray(flat))}): it is undefined there "
            "(a log or square root of a negative number?), so its Hessian means nothing; evaluate it "
            "where f is finite"
        )
    if not np.all(np.isfinite(h)):
        bad = np.argwhere(~np.isfinite(h))[0]
        raise InvalidParameterError(
            f"the Hessian is not finite at these parameters (entry [{names[bad[0]]}, {names[bad[1]]}] is "
            f"{h[tuple(bad)]}); f may be undefined there or not twice differentiable"
        )
    return LabelledMatrix(h, names, method="hessian")


class _FlatFunction:
    """``f`` of a parameter pytree as a function of the flat vector (picklable if ``f`` is)."""

    def __init__(self, f: Callable[[Any], Any], params: Any) -> None:
        leaves, self.treedef = jax.tree_util.tree_flatten(params)
        self.f = f
        self.shapes = [np.shape(leaf) for leaf in leaves]
        self.splits = np.cumsum([int(np.prod(shape)) for shape in self.shapes])[:-1]
        self.x = np.concatenate([np.ravel(np.asarray(leaf, dtype=np.float64)) for leaf in leaves])

    @float64  # the user's f, also in a worker thread or process
    def __call__(self, v: np.ndarray) -> Any:
        parts = np.split(v, self.splits)
        tree_leaves = [
            np.float64(p[0]) if shape == () else p.reshape(shape)
            for p, shape in zip(parts, self.shapes, strict=True)
        ]
        return self.f(jax.tree_util.tree_unflatten(self.treedef, tree_leaves))


def _numeric_hessian(
    f: Callable[[Any], Any],
    params: Any,
    names: list[str],
    step: Any,
    lower: Any,
    upper: Any,
    executor: Any,
    workers: int | None,
) -> LabelledMatrix:
    flat_f = _FlatFunction(f, params)
    parallel = {} if executor is None else {"executor": executor, "workers": workers}
    res = _numeric.hessian(
        flat_f,
        flat_f.x,
        names=names,
        step=_per_parameter(step, names, "step", np.nan),
        lower=_per_parameter(lower, names, "lower", -np.inf),
        upper=_per_parameter(upper, names, "upper", np.inf),
        **parallel,
    )
    return LabelledMatrix(
        res.hessian, names, error=res.hessian_error, method="numeric", evaluations=res.evaluations
    )
