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

import hashlib
import multiprocessing
import os
import threading
import warnings
import weakref
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
from numpyro.distributions.distribution import validation_enabled

from .. import numeric as _numeric
from .._errors import FisherlabError, ModelError, NumericAccuracyWarning
from .._options import Derivatives
from ..data._prepare import Data, prepare_data
from ..information._matrix import InfoMatrix
from ..model._model import Model, _present_constraints
from ..params._pytree import as_params, param_names
from ._evaluate import check_finite, raise_invalid, reduction_factor, row_slice

__all__ = [
    "Problem",
    "RowCache",
    "empirical_fisher",
    "engine_options",
    "is_numeric",
    "loglik",
    "observed_information",
    "row_curvature",
    "score",
    "third_derivatives",
]

_DECISION = "derivatives"  # key of the cached auto decision in ``model._cache``
#: Bytes of per-row values a numeric model keeps per data set (least recently used dropped).
CACHE_BYTES = 256 * 2**20


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
    ``y`` may be ``None`` (the expected Fisher): a ``from_loglik`` model is then probed on
    one draw of its ``sampler``, or taken as autodiff without one.
    """
    if not isinstance(model, Model) or model.derivatives is Derivatives.AUTODIFF:
        return False
    if model.derivatives is Derivatives.NUMERIC:
        return True
    if model._cache.get(_DECISION) is None:
        data = prepare_data(y, x, require_y=y is not None)
        if data.y is None and model.kind == "loglik":
            if model.sampler is None:
                return False
            try:
                draw = model.sampler(as_params(params), data.x, jax.random.PRNGKey(0))
            except Exception:  # an untraceable sampler is reported by the path taken
                return False
            data = prepare_data(draw, data.x)
        return _decide(model, params, data, data.x) is Derivatives.NUMERIC
    return model._cache[_DECISION] is Derivatives.NUMERIC  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- evaluation


class RowCache:
    """A least-recently-used map ``bytes -> values``, bounded in bytes (:data:`CACHE_BYTES`).

    One lives on each numeric model; :meth:`view` gives the part of it for one data set and
    one function (keys prefixed by a digest of ``y`` and ``x`` and the function's role), so
    identical evaluations are shared across calls (the score, the Hessian, the Fisher, the
    iterations of a fit and a later :meth:`~fisherlab.FitResult.cov` at the same parameters)
    while all data sets together stay within one budget.
    """

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[bytes, Any] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _size(value: Any) -> int:
        return int(sum(np.asarray(leaf).nbytes for leaf in jax.tree_util.tree_leaves(value))) + 64

    def get(self, key: bytes, default: Any = None) -> Any:
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            return self._items[key]

    def __setitem__(self, key: bytes, value: Any) -> None:
        self.put(key, value)

    def put(self, key: bytes, value: Any) -> None:
        size = self._size(value)
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self.bytes -= self._size(old)

    def __len__(self) -> int:
        return len(self._items)

    def view(self, prefix: bytes) -> _CacheView:
        """The keys starting with ``prefix``, as a mapping of the rest (the engine's ``cache=``)."""
        return _CacheView(self, prefix)


class _CacheView:
    """``get``/``[]=`` on a :class:`RowCache` with every key prefixed."""

    def __init__(self, cache: RowCache, prefix: bytes) -> None:
        self.cache, self.prefix = cache, prefix

    def get(self, key: bytes, default: Any = None) -> Any:
        return self.cache.get(self.prefix + key, default)

    def __setitem__(self, key: bytes, value: Any) -> None:
        self.cache.put(self.prefix + key, value)


def model_cache(model: Model) -> RowCache:
    """The model's cache of evaluations (made on first use)."""
    cache = model._cache.get("numeric_values")
    if cache is None:
        cache = model._cache["numeric_values"] = RowCache()
    return cache  # type: ignore[no-any-return]


def _digest(*trees: Any) -> bytes:
    """A digest of the data (shapes, dtypes and bytes of every leaf), the key of a model's row cache."""
    h = hashlib.blake2b(digest_size=16)
    for tree in trees:
        for leaf in jax.tree_util.tree_leaves(tree):
            arr = np.ascontiguousarray(np.asarray(leaf))
            h.update(f"{arr.shape}{arr.dtype}".encode())
            h.update(arr.tobytes())
        h.update(b"|")
    return h.digest()


def engine_options(model: Model) -> dict[str, Any]:
    """The finite-difference engine's parallel-evaluation options of ``model`` (``executor=``).

    For ``"threads"``/``"processes"`` the pool is made once per model and kept (a fit asks
    for a Hessian per iteration; spawning worker processes each time would dominate), and
    shut down when the model is garbage-collected.
    """
    executor = model.executor
    if executor is None:
        return {}
    if isinstance(executor, str):
        key = ("executor_pool", executor)
        pool = model._cache.get(key)
        if pool is None:
            workers = model.workers or os.cpu_count() or 1
            if executor == "threads":
                pool = ThreadPoolExecutor(max_workers=workers)
            else:
                context = multiprocessing.get_context("spawn")  # fork after JAX is unsafe
                pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
            weakref.finalize(model, pool.shutdown, wait=False)
            model._cache[key] = pool
        executor = pool
    return {"executor": executor, "workers": model.workers}


class Problem:
    """A numeric model on validated NumPy data: the map ``v -> (ell_1..ell_N)`` of the flat parameters.

    ``y`` may be ``None`` (the expected Fisher needs only ``x``). Per-row values at a point are
    cached on the model (:class:`RowCache`). The object pickles without the model and its
    cache, so a process pool can evaluate it (the model function must then be picklable).
    """

    def __init__(self, model: Model, params: Any, y: Any, x: Any, *, require_y: bool = True) -> None:
        if not isinstance(model, Model):
            raise TypeError(f"expected a fisherlab Model as first argument, got {type(model).__name__}")
        params = as_params(params)
        data = prepare_data(y, x, require_y=require_y)
        self.model: Model | None = model
        self.fn, self.kind = model.fn, model.kind
        self.n = data.n if data.x is not None or data.y is not None else 1
        self.y = None if data.y is None else jax.tree_util.tree_map(np.asarray, data.y)
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
        self._digest = _digest(self.y, self.x)
        self.cache: _CacheView | None = model_cache(model).view(self._digest + b"rows")
        self.calls = 0  # calls of the model function made in this process
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["model"], state["cache"], state["_lock"] = None, None, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def in_process(self) -> bool:
        """Whether the model's evaluations run in this process (serially or in threads)."""
        assert self.model is not None
        executor = self.model.executor
        return executor is None or executor == "threads" or isinstance(executor, ThreadPoolExecutor)

    def engine_cache(self, role: str) -> dict[str, Any]:
        """``cache=`` for the engine when the executor runs elsewhere (processes, Dask).

        Worker processes do not see this process's row cache, so the engine keeps the values
        of the function with this ``role`` (one function per role) on the model instead.
        """
        assert self.model is not None
        if self.in_process:
            return {}
        return {"cache": model_cache(self.model).view(self._digest + b"engine:" + role.encode())}

    def spent(self, mark: int, engine_count: int) -> int:
        """Calls of the model function since ``mark`` (``self.calls`` then).

        In this process they are counted here (cache hits are free); an executor running
        elsewhere (processes, Dask) is counted by the engine instead.
        """
        local = self.calls - mark
        return local if self.in_process else local + engine_count

    @property
    def options(self) -> dict[str, Any]:
        """Engine options: the model's executor, and bounds from its constraints."""
        assert self.model is not None
        lo, hi = self.bounds()
        return {"names": self.names, "lower": lo, "upper": hi, **engine_options(self.model)}

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Open bounds per flat parameter from the model's ``constraints`` (``lower_bound``/``upper_bound``).

        A parameter declared ``"positive"`` or ``"unit_interval"`` is then never stepped out of
        its support (the engine uses one-sided or shortened stencils next to a bound). A bound
        the point does not lie strictly inside is ignored (the engine would refuse the point).
        """
        assert self.model is not None
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

    def distribution(self, v: np.ndarray) -> nd.Distribution:
        """The model's distribution of all rows at the flat point ``v`` (one call of the function)."""
        self._count()
        with validation_enabled(False):
            d = self.fn(self.params(v), self.x)
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

    def flags(self, d: nd.Distribution) -> dict[str, np.ndarray]:
        """Per-row validity of the distribution's parameters (and of ``y``, when there is one)."""
        flags = {
            name: self._per_row(d.arg_constraints[name](jnp.asarray(getattr(d, name))))
            for name in _present_constraints(d)
        }
        if self.y is not None:
            ok = np.asarray(d.support(self.y), dtype=bool)
            flags["y"] = np.asarray(ok.reshape(self.n, -1).all(axis=1)) if ok.ndim else np.full(self.n, ok)
        return flags

    def _count(self) -> None:
        with self._lock:
            self.calls += 1

    def _evaluate(self, v: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        params = self.params(v)
        if self.kind == "loglik":
            self._count()
            out = np.asarray(self.fn(params, self.y, self.x), dtype=np.float64)
            if out.shape != (self.n,):
                raise ModelError(
                    f"the log-likelihood function returned shape {out.shape} for {self.n} rows; "
                    f"it must return one value per row, shape ({self.n},)"
                )
            return out, {}
        d = self.distribution(v)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            # y outside the support is reported by the flags below, naming the row
            warnings.filterwarnings("ignore", message="Out-of-support values", category=UserWarning)
            lp = np.asarray(d.log_prob(self.y), dtype=np.float64)
        if lp.ndim == 0 or lp.shape[0] != self.n:
            raise ModelError(
                f"the distribution's log_prob of y has shape {lp.shape}, "
                f"not one value per row ({self.n},); with derivatives='numeric' the function receives "
                "all rows of x at once and must return a distribution with batch shape (N, ...) or ()"
            )
        return lp.reshape(self.n, -1).sum(axis=1), self.flags(d)

    def rows(self, v: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Per-row log-likelihood ``(N,)`` at ``v`` and per-row validity flags (raw user errors pass)."""
        v = np.asarray(v, dtype=np.float64)
        key = v.tobytes()
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return hit  # type: ignore[no-any-return]
        out = self._evaluate(v)
        if self.cache is not None:
            self.cache[key] = out
        return out

    def total(self, v: np.ndarray) -> float:
        """The total log-likelihood at ``v`` (the function the Hessian engine differentiates)."""
        return float(np.sum(self.rows(v)[0]))

    def vector(self, v: np.ndarray) -> np.ndarray:
        """The per-row log-likelihood at ``v`` (the function the Jacobian engine differentiates)."""
        return self.rows(v)[0]

    def describe(self, v: np.ndarray) -> str:
        return "{" + ", ".join(f"{n}={val!r}" for n, val in zip(self.names, v.tolist(), strict=True)) + "}"

    def checked(self) -> np.ndarray:
        """Per-row log-likelihood at the point itself, with the same checks as the autodiff path."""
        assert self.model is not None
        try:
            ll, flags = self.rows(self.flat)
        except FisherlabError:
            raise
        except Exception as exc:
            raise ModelError(
                f"the model function raised {type(exc).__name__} at {self.describe(self.flat)}: {exc}"
            ) from exc
        if self.kind == "distribution":
            raise_invalid(self.model, self.params(self.flat), flags, self.x, has_rows=True, y=self.y)
        check_finite("log-likelihood", np.where(np.isneginf(ll), 0.0, ll))
        return ll


# --------------------------------------------------------------------------- public pieces


def loglik(model: Model, params: Any, y: Any, x: Any = None) -> np.ndarray:
    """Per-row log-likelihood ``(N,)`` of a numeric model: one call of its function."""
    return Problem(model, params, y, x).checked().copy()


def _scores(problem: Problem) -> tuple[_numeric.JacobianResult, int]:
    mark = problem.calls
    problem.checked()
    res = _numeric.jacobian(problem.vector, problem.flat, **problem.options, **problem.engine_cache("rows"))
    check_finite("score", res.jacobian)
    return res, problem.spent(mark, res.evaluations)


def score(model: Model, params: Any, y: Any, x: Any = None) -> np.ndarray:
    r"""Per-row scores ``(N, P)``: the Jacobian of :math:`\theta \mapsto \ell(\theta)`, numerically."""
    return _scores(Problem(model, params, y, x))[0].jacobian


def empirical_fisher(
    model: Model, params: Any, y: Any, x: Any = None, *, reduction: str = "sum"
) -> InfoMatrix:
    r"""Empirical Fisher :math:`\sum_i s_i s_i^\top` from numeric scores; ``.error``: the bound above."""
    reduction_factor(reduction, 1)
    problem = Problem(model, params, y, x)
    res, calls = _scores(problem)
    s, e = res.jacobian, res.error
    a = np.abs(s)
    bound = a.T @ e + e.T @ a + e.T @ e
    factor = reduction_factor(reduction, problem.n)
    return InfoMatrix(
        (s.T @ s) * factor,
        problem.names,
        error=bound * factor,
        method="empirical",
        evaluations=calls,
    )


def observed_information(
    model: Model, params: Any, y: Any, x: Any = None, *, reduction: str = "sum"
) -> InfoMatrix:
    r"""Observed information :math:`-\nabla^2 \sum_i \ell_i` by the numeric Hessian, with ``.error``."""
    reduction_factor(reduction, 1)
    problem = Problem(model, params, y, x)
    mark = problem.calls
    problem.checked()
    res = _numeric.hessian(problem.total, problem.flat, **problem.options, **problem.engine_cache("total"))
    check_finite("observed information", (-res.hessian)[None])
    factor = reduction_factor(reduction, problem.n)
    return InfoMatrix(
        -res.hessian * factor,
        problem.names,
        error=res.hessian_error * factor,
        method="observed",
        evaluations=problem.spent(mark, res.evaluations),
    )


def row_curvature(model: Model, params: Any, y: Any, x: Any = None) -> tuple[np.ndarray, ...]:
    r"""Per-row log-likelihood ``(N,)``, scores ``(N, P)`` and Hessians ``(N, P, P)``, numerically.

    One set of stencils for all rows (:func:`fisherlab._numeric.vector_hessian`,
    :math:`1 + L(P^2 + P)` calls of the model function), as :func:`~fisherlab.check` needs.
    """
    problem = Problem(model, params, y, x)
    ll = problem.checked()
    res = _numeric.vector_hessian(
        problem.vector, problem.flat, **problem.options, **problem.engine_cache("rows")
    )
    check_finite("score", res.jacobian)
    check_finite("Hessian of the log-likelihood", res.hessian)
    return ll, res.jacobian, res.hessian


class _FixedStepHessian:
    """The numeric Hessian of the total with the steps of the point itself, flattened (picklable).

    It runs serially inside a worker: only the outer differences are spread over the pool.
    """

    def __init__(self, problem: Problem, options: dict[str, Any]) -> None:
        self.problem = problem
        self.step = _numeric.RELATIVE_STEP * np.maximum(np.abs(problem.flat), 1.0)
        self.options = {k: v for k, v in options.items() if k not in ("executor", "workers")}

    def __call__(self, v: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            # the inner estimate's accuracy enters the outer error estimate through `noise`
            warnings.simplefilter("ignore", NumericAccuracyWarning)
            res = _numeric.hessian(self.problem.total, v, step=self.step, **self.options)
        return res.hessian.ravel()


def third_derivatives(model: Model, params: Any, y: Any, x: Any = None) -> np.ndarray:
    r"""Third derivatives :math:`T_{jkl} = \partial_l \partial_j \partial_k \sum_i \ell_i`, ``(P, P, P)``.

    The numeric Hessian of the total (fixed steps, so that it is a smooth function of
    :math:`\theta`) differentiated once more by the Jacobian engine, whose error estimate
    includes the inner Hessian's error as noise: :math:`(1 + 8P)(1 + 4(P^2 + P))` calls
    of the model function.
    """
    problem = Problem(model, params, y, x)
    problem.checked()
    options = problem.options
    inner = _FixedStepHessian(problem, options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumericAccuracyWarning)
        at = _numeric.hessian(problem.total, problem.flat, step=inner.step, **options)
    p = problem.flat.size
    res = _numeric.jacobian(inner, problem.flat, noise=float(np.max(at.hessian_error)), **options)
    return res.jacobian.reshape(p, p, p)
