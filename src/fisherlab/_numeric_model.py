r"""Curvature of a black-box model by finite differences (``derivatives="numeric"``).

For a model whose function cannot be traced by JAX (it calls NumPy, SciPy or an
external program), the per-row log-likelihood

.. math::

    \theta \mapsto \ell(\theta) = (\ell_1(\theta), \dots, \ell_N(\theta)) \in \mathbb R^N,
    \qquad \ell_i(\theta) = \log p(y_i \mid x_i, \theta),

is evaluated for ALL rows in one call of the user's function per parameter point (the
function receives the whole covariate array, and parameters as NumPy float64 scalars /
arrays). With the finite-difference engine :mod:`fisherlab._numeric` (central differences,
Richardson 1911, Ridders 1982 error estimates):

- the score :math:`s_{ia} = \partial_a \ell_i` is the Jacobian of :math:`\ell`
  (:func:`fisherlab._numeric.jacobian`, :math:`1 + 2LP` calls) with an error bound
  :math:`e_{ia}` per entry;
- the observed information :math:`J_{ab} = -\partial_a\partial_b \sum_i \ell_i` is minus the
  numeric Hessian of the total (:func:`fisherlab._numeric.hessian`) with its error estimate;
- the empirical Fisher :math:`\hat F_{ab} = \sum_i s_{ia} s_{ib}` comes from the numeric scores.
  With :math:`|\hat s_{ia} - s_{ia}| \le e_{ia}` the error of the product is bounded by

  .. math::

      |\delta \hat F_{ab}| \le \sum_i \left(|s_{ia}|\, e_{ib} + e_{ia}\, |s_{ib}| + e_{ia} e_{ib}\right),

  which is what ``.error`` reports (first order plus the second-order term, so a bound).

Parameters with a declared ``constraints=`` bound (``"positive"``, ``"unit_interval"``, ...)
are never stepped across it: the engine's bounded stencils (one-sided, or central with a
shortened step) are used next to the bound.

Invalid distribution parameters at :math:`\theta` are found by evaluating the
distribution's ``arg_constraints`` (and its support at :math:`y_i`) on the NumPy values,
row by row, as :func:`fisherlab._model.validity` does under JAX.

``derivatives="auto"``: the row log-likelihood of the first row is traced once with
:func:`jax.eval_shape`; if the function cannot be traced (a tracer converted with
``float()`` / ``np.asarray()``, a SciPy call) the model falls back to numeric derivatives
with one :class:`UserWarning`, and the decision is cached on the model.

References:
    L. F. Richardson (1911), Phil. Trans. R. Soc. A 210, 307-357.
    C. J. F. Ridders (1982), Adv. Eng. Software 4(2), 75-76.
    H. White (1982), Maximum likelihood estimation of misspecified models,
    Econometrica 50(1), 1-25 (the empirical Fisher / OPG estimate).
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
from numpyro.distributions.distribution import validation_enabled

from . import _numeric
from ._data import Data, prepare_data
from ._errors import FisherlabError, MethodUnavailableError, ModelError
from ._evaluate import check_finite, raise_invalid, reduction_factor, row_slice
from ._matrix import InfoMatrix
from ._model import Derivatives, Model, _present_constraints
from ._params import as_params, param_names

__all__ = [
    "empirical_fisher",
    "is_numeric",
    "loglik",
    "observed_information",
    "require_autodiff",
    "score",
]

_DECISION = "derivatives"  # key of the cached auto decision in ``model._cache``


# --------------------------------------------------------------------------- auto detection


def _untraceable(exc: BaseException) -> bool:
    """Whether an exception says that the function cannot be traced by JAX."""
    if isinstance(exc, (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError)):
        return True
    if isinstance(exc, (jax.errors.TracerIntegerConversionError, jax.errors.TracerBoolConversionError)):
        return True
    return isinstance(exc, TypeError) and "Tracer" in str(exc)


def _probe(model: Model, params: Any, data: Data | None, x: Any) -> Derivatives:
    """Trace the first row's log-likelihood (or distribution) once; decide autodiff or numeric."""
    if model.kind == "distribution":
        x_row = row_slice(x, 0)

        def first_row(p: Any) -> Any:
            model.distribution(p, x_row)  # tracing the user's function is the test
            return jnp.zeros(())

    else:
        if data is None:
            return Derivatives.AUTO  # no y to try the function on: undecided
        y_row, x_row = row_slice(data.y, 0), row_slice(data.x, 0)

        def first_row(p: Any) -> Any:
            return model.row_loglik(p, y_row, x_row)[0]

    try:
        jax.eval_shape(first_row, params)
    except Exception as exc:  # anything else is reported by the autodiff path
        if not _untraceable(exc):
            return Derivatives.AUTODIFF
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        warnings.warn(
            f"fisherlab: the model function cannot be traced by JAX ({type(exc).__name__}: {first}); "
            "using numeric derivatives (finite differences with error estimates) instead. "
            'Pass derivatives="numeric" to fl.Model / fl.Model.from_loglik to silence this warning, '
            "or write the function with jax.numpy for exact derivatives.",
            UserWarning,
            stacklevel=4,
        )
        return Derivatives.NUMERIC
    return Derivatives.AUTODIFF


def _decide(model: Model, params: Any, data: Data | None, x: Any) -> Derivatives:
    if model.derivatives is not Derivatives.AUTO:
        return model.derivatives
    cached = model._cache.get(_DECISION)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    decision = _probe(model, as_params(params), data, x)
    if decision is not Derivatives.AUTO:
        model._cache[_DECISION] = decision
    return decision


def is_numeric(model: Any, params: Any, y: Any, x: Any) -> bool:
    """Whether ``model`` is evaluated by finite differences (deciding ``"auto"`` once, with a warning).

    Anything that is not a :class:`~fisherlab.Model` returns ``False`` (the autodiff path
    raises the ``TypeError``). Data errors are raised here, as the autodiff path would.
    """
    if not isinstance(model, Model) or model.derivatives is Derivatives.AUTODIFF:
        return False
    if model.derivatives is Derivatives.NUMERIC:
        return True
    if model._cache.get(_DECISION) is None:
        data = prepare_data(y, x)
        return _decide(model, params, data, data.x) is Derivatives.NUMERIC
    return model._cache[_DECISION] is Derivatives.NUMERIC  # type: ignore[no-any-return]


def require_autodiff(model: Any, params: Any, y: Any, x: Any, what: str, instead: str) -> None:
    """Raise :class:`MethodUnavailableError` when ``what`` is asked of a numeric-derivative model."""
    if not isinstance(model, Model) or model.derivatives is Derivatives.AUTODIFF:
        return
    if model.derivatives is Derivatives.AUTO and model._cache.get(_DECISION) is None:
        if model.kind == "loglik" and y is None:
            return
        if y is not None:
            data = prepare_data(y, x)
            decision = _decide(model, params, data, data.x)
        else:
            decision = _decide(model, params, None, prepare_data(None, x, require_y=False).x)
    else:
        decision = model._cache.get(_DECISION, model.derivatives)
    if decision is Derivatives.NUMERIC:
        raise MethodUnavailableError(
            f"{what} with numeric derivatives is not available yet; {instead}. "
            "(A model falls back to numeric derivatives when its function cannot be traced by "
            "JAX: write it with jax.numpy for the full feature set.)"
        )


# --------------------------------------------------------------------------- evaluation


class _Problem:
    """A numeric model on validated NumPy data: the map ``v -> (ell_1..ell_N)`` of the flat parameters."""

    def __init__(self, model: Model, params: Any, y: Any, x: Any) -> None:
        if not isinstance(model, Model):
            raise TypeError(f"expected a fisherlab Model as first argument, got {type(model).__name__}")
        params = as_params(params)
        data = prepare_data(y, x)
        self.model = model
        self.n = data.n
        self.y = jax.tree_util.tree_map(np.asarray, data.y)
        self.x = None if data.x is None else jax.tree_util.tree_map(np.asarray, data.x)
        self.names = param_names(params)
        leaves, self.treedef = jax.tree_util.tree_flatten(params)
        self.shapes = [np.shape(leaf) for leaf in leaves]
        self.splits = np.cumsum([int(np.prod(s)) for s in self.shapes])[:-1]
        self.flat = (
            np.concatenate([np.ravel(np.asarray(leaf, dtype=np.float64)) for leaf in leaves])
            if leaves
            else np.zeros(0)
        )

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Open bounds per flat parameter from the model's ``constraints`` (``lower_bound``/``upper_bound``).

        A parameter declared ``"positive"`` or ``"unit_interval"`` is then never stepped out of
        its support (the engine uses one-sided or shortened stencils next to a bound). A bound
        the point does not lie strictly inside is ignored (the engine would refuse the point).
        """
        lo = np.full(self.flat.size, -np.inf)
        hi = np.full(self.flat.size, np.inf)
        for i, name in enumerate(self.names):
            c = self.model.constraints.get(name.split("[", 1)[0])
            for attr, out in (("lower_bound", lo), ("upper_bound", hi)):
                bound = getattr(c, attr, None)
                if bound is not None and np.ndim(bound) == 0 and np.isfinite(float(bound)):
                    out[i] = float(bound)
        inside = (lo < self.flat) & (self.flat < hi)
        lo[~inside], hi[~inside] = -np.inf, np.inf
        return lo, hi

    def params(self, v: np.ndarray) -> Any:
        """The parameter pytree at the flat point ``v``, with NumPy leaves (``np.float64`` scalars)."""
        parts = np.split(np.asarray(v, dtype=np.float64), self.splits)
        leaves = [
            np.float64(p[0]) if s == () else p.reshape(s).copy()
            for p, s in zip(parts, self.shapes, strict=True)
        ]
        return jax.tree_util.tree_unflatten(self.treedef, leaves)

    def _distribution(self, params: Any) -> nd.Distribution:
        with validation_enabled(False):
            d = self.model.fn(params, self.x)
        if not isinstance(d, nd.Distribution):
            raise ModelError(
                f"the model function returned {type(d).__name__}, not a distribution; "
                "return e.g. fl.dist.Normal(mean, scale)"
            )
        return d

    def _per_row(self, ok: Any) -> np.ndarray:
        arr = np.asarray(ok, dtype=bool)
        if self.x is not None and arr.ndim and arr.shape[0] == self.n:
            return np.asarray(arr.reshape(self.n, -1).all(axis=1))
        return np.full(self.n, bool(arr.all()))

    def rows(self, v: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Per-row log-likelihood ``(N,)`` at ``v`` and per-row validity flags (raw user errors pass)."""
        params = self.params(v)
        if self.model.kind == "loglik":
            out = np.asarray(self.model.fn(params, self.y, self.x), dtype=np.float64)
            if out.shape != (self.n,):
                raise ModelError(
                    f"the log-likelihood function returned shape {out.shape} for {self.n} rows; "
                    f"it must return one value per row, shape ({self.n},)"
                )
            return out, {}
        d = self._distribution(params)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            # y outside the support is reported by the flags below, naming the row
            warnings.filterwarnings("ignore", message="Out-of-support values", category=UserWarning)
            lp = np.asarray(d.log_prob(self.y), dtype=np.float64)
        if lp.ndim == 0 or lp.shape[0] != self.n:
            raise ModelError(
                f"the distribution's log_prob of y (shape {np.shape(self.y)}) has shape {lp.shape}, "
                f"not one value per row ({self.n},); with derivatives='numeric' the function receives "
                "all rows of x at once and must return a distribution with batch shape (N, ...) or ()"
            )
        flags = {
            name: self._per_row(d.arg_constraints[name](jnp.asarray(getattr(d, name))))
            for name in _present_constraints(d)
        }
        flags["y"] = np.asarray(np.asarray(d.support(self.y), dtype=bool).reshape(self.n, -1).all(axis=1))
        return lp.reshape(self.n, -1).sum(axis=1), flags

    def total(self, v: np.ndarray) -> float:
        """The total log-likelihood at ``v`` (the function the Hessian engine differentiates)."""
        return float(np.sum(self.rows(v)[0]))

    def vector(self, v: np.ndarray) -> np.ndarray:
        """The per-row log-likelihood at ``v`` (the function the Jacobian engine differentiates)."""
        return self.rows(v)[0]

    def checked(self) -> np.ndarray:
        """Per-row log-likelihood at the point itself, with the same checks as the autodiff path."""
        try:
            ll, flags = self.rows(self.flat)
        except FisherlabError:
            raise
        except Exception as exc:
            values = ", ".join(f"{n}={val!r}" for n, val in zip(self.names, self.flat.tolist(), strict=True))
            raise ModelError(
                f"the model function raised {type(exc).__name__} at {{{values}}}: {exc}"
            ) from exc
        if self.model.kind == "distribution":
            raise_invalid(self.model, self.params(self.flat), flags, self.x, has_rows=True, y=self.y)
        check_finite("log-likelihood", np.where(np.isneginf(ll), 0.0, ll))
        return ll


# --------------------------------------------------------------------------- public pieces


def loglik(model: Model, params: Any, y: Any, x: Any = None) -> np.ndarray:
    """Per-row log-likelihood ``(N,)`` of a numeric model: one call of its function."""
    return _Problem(model, params, y, x).checked()


def _scores(problem: _Problem) -> _numeric.JacobianResult:
    problem.checked()
    lo, hi = problem.bounds()
    res = _numeric.jacobian(problem.vector, problem.flat, names=problem.names, lower=lo, upper=hi)
    check_finite("score", res.jacobian)
    return res


def score(model: Model, params: Any, y: Any, x: Any = None) -> np.ndarray:
    r"""Per-row scores ``(N, P)``: the Jacobian of :math:`\theta \mapsto \ell(\theta)`, numerically."""
    return _scores(_Problem(model, params, y, x)).jacobian


def empirical_fisher(
    model: Model, params: Any, y: Any, x: Any = None, *, reduction: str = "sum"
) -> InfoMatrix:
    r"""Empirical Fisher :math:`\sum_i s_i s_i^\top` from numeric scores; ``.error``: the bound above."""
    reduction_factor(reduction, 1)
    problem = _Problem(model, params, y, x)
    res = _scores(problem)
    s, e = res.jacobian, res.error
    a = np.abs(s)
    bound = a.T @ e + e.T @ a + e.T @ e
    factor = reduction_factor(reduction, problem.n)
    return InfoMatrix(
        (s.T @ s) * factor,
        problem.names,
        error=bound * factor,
        method="empirical",
        evaluations=res.evaluations,
    )


def observed_information(
    model: Model, params: Any, y: Any, x: Any = None, *, reduction: str = "sum"
) -> InfoMatrix:
    r"""Observed information :math:`-\nabla^2 \sum_i \ell_i` by the numeric Hessian, with ``.error``."""
    reduction_factor(reduction, 1)
    problem = _Problem(model, params, y, x)
    problem.checked()
    lo, hi = problem.bounds()
    res = _numeric.hessian(problem.total, problem.flat, names=problem.names, lower=lo, upper=hi)
    check_finite("observed information", (-res.hessian)[None])
    factor = reduction_factor(reduction, problem.n)
    return InfoMatrix(
        -res.hessian * factor,
        problem.names,
        error=res.hessian_error * factor,
        method="observed",
        evaluations=res.evaluations,
    )
