r"""Finite-difference gradients, Hessians and Jacobians of black-box functions, with error estimates.

The function :math:`f: \mathbb R^P \to \mathbb R` (or :math:`\mathbb R^N` for
:func:`jacobian` and :func:`vector_hessian`, e.g. the :math:`N` per-row log-likelihood
terms) is any Python callable on a NumPy float64 vector: it may call NumPy, SciPy or an
external program; it is never traced. A scalar ``f`` is the case :math:`N = 1` of one engine:
every stencil table below carries a trailing output axis.

**Stencils.** Parameter :math:`i` gets a base step
:math:`h_i = c\,\max(|\theta_i|, 1)` with :math:`c =` :data:`RELATIVE_STEP`
(:math:`\approx 4\,\epsilon^{1/6}`, :math:`\epsilon` the float64 machine epsilon; the
scale :math:`\max(|\theta_i|,1)` makes a zero parameter work). At level
:math:`k = 0..L-1` the steps are :math:`t_k h_i`, :math:`t_k = 2^{-k}`. Central
differences

.. math::

    g_i(t) = \frac{f(\theta + t h_i e_i) - f(\theta - t h_i e_i)}{2 t h_i},\qquad
    H_{ii}(t) = \frac{f(\theta + t h_i e_i) - 2 f(\theta) + f(\theta - t h_i e_i)}{t^2 h_i^2},

    H_{ij}(t) = \frac{f_{++} + f_{--} - f_{+0} - f_{-0} - f_{0+} - f_{0-} + 2 f(\theta)}{2 t^2 h_i h_j}

(:math:`f_{\pm\pm} = f(\theta \pm t h_i e_i \pm t h_j e_j)`, :math:`f_{\pm 0}`,
:math:`f_{0\pm}` the diagonal points) all have error expansions in even powers of
:math:`t`, so the gradient, the diagonal and the off-diagonal share the points
:math:`\theta \pm t h_i e_i`: a Hessian costs :math:`1 + L(P^2 + P)` evaluations and
contains the gradient for free. Identical points are evaluated once (a cache keyed
by the point).

**Richardson extrapolation** (Richardson 1911) over the levels,
:math:`T_{k,m} = T_{k,m-1} + (T_{k,m-1} - T_{k-1,m-1}) / (2^{p_m} - 1)` with
:math:`p_m = 2m` for central stencils, removes one power of :math:`t` per column.
As in Ridders (1982), each extrapolant's error is estimated by
:math:`\max(|T_{k,m} - T_{k,m-1}|, |T_{k,m} - T_{k-1,m-1}|)`, the smallest is kept,
and a rounding term is added: the noise :math:`\delta_f = \max(64\epsilon\max|f|, \delta)`
of the function values (per output :math:`f_n`, the maximum over the entry's stencil;
:math:`\delta` the ``noise`` argument, for a simulator solved to a tolerance) times the
stencil's absolute coefficients (:math:`\propto \delta_f / (t h)^d` for a derivative of
order :math:`d`), propagated through the extrapolation. Nocedal & Wright (2006, ch. 8)
discuss the truncation/rounding trade-off behind the step choice.

**Accuracy.** An entry whose error estimate exceeds :data:`ACCURACY_RTOL` of its natural
scale cannot be made accurate by any step (``f`` is noisy, or not smooth at the point:
a kink, a discontinuity); one :class:`~fisherlab.NumericAccuracyWarning` per call lists
the worst. The scales, with :math:`s_i = \max(|\theta_i|, 1)` and :math:`F_{ni}` the largest
:math:`|f_n|` over the stencil of parameter :math:`i`: a first derivative
:math:`J_{ni}` (a gradient entry when :math:`N = 1`) is judged against its column,
:math:`\max_n \max(|J_{ni}|, F_{ni} / s_i)` (the change of :math:`f` over a unit step
bounds the scale from below, so a zero gradient at an optimum is judged against
:math:`|f|`); a second derivative :math:`H_{n,ij}` against
:math:`\max_n \max(|H_{n,ij}|, \sqrt{|H_{n,ii} H_{n,jj}|}, |J_{ni}| / s_j, |J_{nj}| / s_i)`.
An entry whose estimate lies within its rounding bound of zero is not flagged (``f`` does
not depend on that parameter there: the estimate is zero to the precision of ``f``).

**Bounds.** With ``lower``/``upper`` (open bounds: the function is never evaluated
on or beyond them), a parameter whose central stencil :math:`\theta_i \pm h_i` does not
fit uses a one-sided stencil towards the interior,
:math:`g_i(t) = (-3f_0 + 4f_1 - f_2)/(2 s t h_i)`,
:math:`H_{ii}(t) = (f_2 - 2 f_1 + f_0)/(t h_i)^2` with
:math:`f_k = f(\theta + k s t h_i e_i)`, and mixed entries involving it the forward
formula :math:`(f_{s_i s_j} - f_{s_i 0} - f_{0 s_j} + f_0)/(s_i s_j t^2 h_i h_j)`; their
expansions have every power of :math:`t`, and the extrapolation removes them one by one
(:math:`p_m = m+1`, resp. :math:`p_m = m`). If even the one-sided stencil does not fit,
the step shrinks to fit. A parameter within :math:`4 h_i` of a bound also tries a central
stencil with a quarter of the distance as step (for a function singular at the bound, such as
:math:`\log\theta` near 0) and keeps it unless the default stencil agrees with it and
reports a smaller error (for :math:`N > 1` outputs: agrees in every output and reports a
smaller worst error).

**Failures.** A non-finite value at a perturbed point shrinks that parameter's
step by :data:`RETRY_SHRINK` and retries (up to :data:`MAX_RETRIES` times), then
raises :class:`~fisherlab.NumericDerivativeError` naming the point and the parameter;
an exception raised by ``f`` is chained into the same error with the parameter values.

**Parallel evaluation and caching.** The points of one stencil batch (all
:math:`2LP` axis points, then all mixed points, then the retries) are known before any is
evaluated, so with ``executor="threads"``, ``"processes"`` or any object with a
:class:`concurrent.futures.Executor`-style ``map(fn, iterable)`` (a
``ThreadPoolExecutor``, ``ProcessPoolExecutor``, or Dask's
``distributed.Client.get_executor()``) they are all submitted at once; ``f`` runs under the
caller's NumPy error state, results are identical to the serial ones. A pool the engine
creates (``workers`` of them) is shut down at the end of the call; a given executor is not.
``"processes"`` uses the ``spawn`` start method (forking a process that has imported JAX is
unsafe) and needs a picklable ``f`` (a module-level function). ``cache``, a mutable mapping
from ``point.tobytes()`` (float64 points) to the value of ``f``, shares evaluations between
calls: a point found there is neither evaluated nor counted. A cache belongs to one
function ``f``; the complex step does not use it.

**Complex step** (Squire & Trapp 1998; Martins, Sturdza & Alonso 2003): when ``f``
accepts complex input, :math:`g_i = \operatorname{Im} f(\theta + i h e_i) / h` has no
subtractive cancellation, so :math:`h = 10^{-20}\max(|\theta_i|,1)` gives the gradient to
rounding precision in :math:`P + 1` evaluations.

References:
    L. F. Richardson (1911), The approximate arithmetical solution by finite
    differences of physical problems, Phil. Trans. R. Soc. A 210, 307-357.
    C. J. F. Ridders (1982), Accurate computation of F'(x) and F'(x)F''(x),
    Adv. Eng. Software 4(2), 75-76.
    W. Squire, G. Trapp (1998), Using complex variables to estimate derivatives of real
    functions, SIAM Review 40(1), 110-112.
    J. R. R. A. Martins, P. Sturdza, J. J. Alonso (2003), The complex-step derivative
    approximation, ACM Trans. Math. Softw. 29(3), 245-262.
    J. Nocedal, S. J. Wright (2006), Numerical Optimization, 2nd ed., ch. 8.
"""

from __future__ import annotations

import concurrent.futures
import enum
import multiprocessing
import os
import pickle
import warnings
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ._errors import MethodUnavailableError, NumericAccuracyWarning, NumericDerivativeError
from ._options import choose

__all__ = [
    "ExecutorKind",
    "GradientMethod",
    "GradientResult",
    "HessianResult",
    "JacobianResult",
    "SupportsMap",
    "VectorHessianResult",
    "gradient",
    "hessian",
    "jacobian",
    "vector_hessian",
]

EPS = float(np.finfo(np.float64).eps)
#: Base step relative to ``max(|theta_i|, 1)``. Central differences extrapolated over
#: ``L = 4`` halvings have a truncation error ~ (h/8)^6 f^(8) and a rounding error
#: ~ eps |f| / (h/8)^2, balanced near h ~ eps^(1/8) ~ 0.011; we start a little below
#: (4 eps^(1/6) ~ 0.0098) to stay clear of nearby singularities.
RELATIVE_STEP = 4.0 * EPS ** (1.0 / 6.0)
#: A parameter closer to a bound than ``NEAR_BOUND * h`` also tries a central stencil with
#: step ``distance / NEAR_BOUND`` (a function singular at the bound varies on the scale of
#: the distance; a step of a quarter of it keeps the Taylor expansion converging fast).
NEAR_BOUND = 4.0
#: Richardson levels: steps h, h/2, h/4, h/8.
LEVELS = 4
#: Step shrink factor for a retry after a non-finite value, and the number of retries.
RETRY_SHRINK = 8.0
MAX_RETRIES = 4
#: Function-value noise in units of ``eps * max|f|`` over the stencil: a sum of N terms
#: that cancel (a log-likelihood) carries ~eps * sum|terms| of rounding, tens of ulps of
#: the sum (64 covers a Gamma log-likelihood from scipy.stats with shape ~20 in our tests).
NOISE_ULPS = 64.0
#: Complex-step size relative to ``max(|theta_i|, 1)``.
COMPLEX_STEP = 1e-20
#: Relative error of a complex-step derivative: a few hundred ulps of rounding inside ``f``.
COMPLEX_ULPS = 256.0
#: An entry whose estimated error exceeds this fraction of its natural scale (see the module
#: docstring) raises a :class:`~fisherlab.NumericAccuracyWarning`: smooth functions in float64
#: reach ~1e-9; 1e-4 leaves room for ill-conditioned but honest problems and still catches
#: noise of relative size ~1e-8 in ``f`` (visible in second derivatives) or a kink.
ACCURACY_RTOL = 1e-4
#: Entries listed by name in one accuracy warning (the worst first).
ACCURACY_SHOWN = 5


class GradientMethod(str, enum.Enum):
    """``method`` of :func:`gradient`."""

    CENTRAL = "central"
    COMPLEX = "complex"


class ExecutorKind(str, enum.Enum):
    """``executor`` strings: a pool of ``workers`` threads or (spawned) processes made for one call."""

    THREADS = "threads"
    PROCESSES = "processes"


class SupportsMap(Protocol):
    """An executor: ``map(fn, iterable)`` yields ``fn(item)`` in order, as ``concurrent.futures``."""

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any]) -> Iterator[Any]: ...  # pragma: no cover


@dataclass(frozen=True)
class GradientResult:
    """A finite-difference gradient.

    Attributes:
        value: :math:`f(\\theta)`.
        gradient: ``(P,)`` estimate of :math:`\\nabla f(\\theta)`.
        error: ``(P,)`` estimated absolute error of each entry.
        evaluations: the number of calls of ``f`` (distinct points not found in ``cache``;
            rows for a vectorised ``f``).
    """

    value: float
    gradient: np.ndarray
    error: np.ndarray
    evaluations: int


@dataclass(frozen=True)
class HessianResult:
    """A finite-difference Hessian and the gradient from the same evaluations.

    Attributes:
        value: :math:`f(\\theta)`.
        gradient, gradient_error: ``(P,)`` gradient and its estimated absolute error.
        hessian, hessian_error: ``(P, P)`` symmetric Hessian and its estimated absolute error.
        evaluations: the number of calls of ``f`` (distinct points not found in ``cache``;
            rows for a vectorised ``f``).
    """

    value: float
    gradient: np.ndarray
    gradient_error: np.ndarray
    hessian: np.ndarray
    hessian_error: np.ndarray
    evaluations: int


@dataclass(frozen=True)
class VectorHessianResult:
    """Finite-difference Hessians of every output of a vector function, and its Jacobian.

    Attributes:
        value: ``(N,)`` :math:`f(\\theta)`.
        jacobian, jacobian_error: ``(N, P)`` :math:`\\partial f_n / \\partial \\theta_a` and its
            estimated absolute error.
        hessian, hessian_error: ``(N, P, P)`` :math:`\\partial^2 f_n / \\partial \\theta_a
            \\partial \\theta_b`, symmetric for each output, and its estimated absolute error.
        evaluations: the number of calls of ``f`` (each call evaluates all ``N`` outputs;
            points found in ``cache`` are not counted).
    """

    value: np.ndarray
    jacobian: np.ndarray
    jacobian_error: np.ndarray
    hessian: np.ndarray
    hessian_error: np.ndarray
    evaluations: int


@dataclass(frozen=True)
class JacobianResult:
    """A finite-difference Jacobian of a vector-valued function.

    Attributes:
        value: ``(N,)`` :math:`f(\\theta)`.
        jacobian: ``(N, P)`` estimate of :math:`\\partial f_n / \\partial \\theta_a`.
        error: ``(N, P)`` estimated absolute error of each entry.
        evaluations: the number of calls of ``f`` (each call evaluates all ``N`` outputs;
            points found in ``cache`` are not counted).
    """

    value: np.ndarray
    jacobian: np.ndarray
    error: np.ndarray
    evaluations: int


# --------------------------------------------------------------------------- evaluation


def _describe(point: np.ndarray, names: Sequence[str]) -> str:
    return "{" + ", ".join(f"{n}={v!r}" for n, v in zip(names, point.tolist(), strict=True)) + "}"


class _Call:
    """``f`` at one point (or one batch of points) under the caller's NumPy error state.

    The engine evaluates perturbed points with floating-point warnings off (a NaN is detected
    and retried); a worker thread or process gets the same state. Picklable when ``f`` is.
    """

    def __init__(self, f: Callable[[np.ndarray], Any], errstate: dict[str, str]) -> None:
        self.f = f
        self.errstate = errstate

    def __call__(self, point: np.ndarray) -> Any:
        with np.errstate(**self.errstate):  # type: ignore[arg-type]
            return self.f(point)


def _require_picklable(f: Callable[..., Any]) -> None:
    """Raise a clear ``ValueError`` if ``f`` cannot be sent to worker processes."""
    try:
        pickle.dumps(f)
    except Exception as exc:
        raise ValueError(
            'executor="processes" sends f to worker processes, so f must be picklable; '
            f"pickling {f!r} failed ({type(exc).__name__}: {exc}). Define f at module level "
            '(not a lambda or a nested function), or use executor="threads"'
        ) from exc


class _Pool:
    """The executor of one call: none (serial), a pool made here (shut down on close), or the caller's."""

    def __init__(self, executor: Any, workers: int | None, f: Callable[..., Any]) -> None:
        if workers is not None and (
            isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1
        ):
            raise ValueError(f"workers must be a positive integer or None (os.cpu_count()), got {workers!r}")
        self.workers = int(workers) if workers is not None else (os.cpu_count() or 1)
        self.kind: ExecutorKind | None = None
        self.executor: Any = None
        self._own: concurrent.futures.Executor | None = None
        if executor is None:
            return
        if isinstance(executor, str):
            self.kind = choose(ExecutorKind, executor, "executor")
            if self.kind is ExecutorKind.PROCESSES:
                _require_picklable(f)
        elif callable(getattr(executor, "map", None)):
            if isinstance(executor, concurrent.futures.ProcessPoolExecutor):
                _require_picklable(f)
            self.executor = executor
        else:
            raise ValueError(
                "executor must be None, 'threads', 'processes' or an object with a "
                f"concurrent.futures.Executor-style map(fn, iterable); got {executor!r}"
            )

    @property
    def active(self) -> bool:
        return self.kind is not None or self.executor is not None

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterator[Any]:
        """``fn`` over ``items``, all submitted at once; the pool is made on first use."""
        if self.executor is None:
            if self.kind is ExecutorKind.THREADS:
                self._own = concurrent.futures.ThreadPoolExecutor(max_workers=self.workers)
            else:
                self._own = concurrent.futures.ProcessPoolExecutor(
                    max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
                )
            self.executor = self._own
        if isinstance(self.executor, concurrent.futures.ProcessPoolExecutor):
            # one pickled copy of f per chunk, a few chunks per worker
            chunksize = max(1, len(items) // (4 * self.workers))
            return self.executor.map(fn, items, chunksize=chunksize)
        return iter(self.executor.map(fn, items))

    def close(self) -> None:
        if self._own is not None:
            self._own.shutdown(wait=True)
            self._own = None
            self.executor = None

    def __enter__(self) -> _Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_MISSING = object()


class _Evaluator:
    """Calls ``f`` on batches of points, once per distinct point, counting the calls.

    Returns ``(M, N)`` values for ``M`` points: ``N = 1`` for a scalar ``f``, ``N`` outputs for
    a vector ``f`` (``vector=True``; every call must return the same shape ``(N,)``).
    """

    def __init__(
        self,
        f: Callable[[np.ndarray], Any],
        names: Sequence[str],
        lower: np.ndarray,
        upper: np.ndarray,
        *,
        vectorized: bool = False,
        vector: bool = False,
        pool: _Pool | None = None,
        cache: MutableMapping[bytes, Any] | None = None,
    ) -> None:
        self.f = f
        self.names = list(names)
        self.vectorized = vectorized
        self.vector = vector
        self.lower = lower
        self.upper = upper
        self.pool = pool if pool is not None else _Pool(None, None, f)
        self.shared = cache
        self.values: dict[bytes, Any] = {}
        self.shape: tuple[int, ...] | None = None
        self.count = 0

    def _raised(self, exc: Exception, point: np.ndarray, batch: int = 0) -> NumericDerivativeError:
        where = _describe(point.real, self.names)
        what = f"on a batch of {batch} points, the first {where}" if batch else f"at {where}"
        return NumericDerivativeError(
            f"f raised {type(exc).__name__} {what}: {exc}",
            point=dict(zip(self.names, point.real.tolist(), strict=True)),
        )

    def _accept(self, out: Any, point: np.ndarray) -> Any:
        """The checked value of ``f`` at ``point``: a scalar, or a float64 ``(N,)`` vector."""
        if not self.vector:
            arr = np.asarray(out)
            if arr.size != 1:
                raise NumericDerivativeError(
                    f"f must return a scalar, got an array of shape {arr.shape} at "
                    f"{_describe(point.real, self.names)}",
                    point=dict(zip(self.names, point.real.tolist(), strict=True)),
                )
            return arr.reshape(())[()]
        vec = np.array(out, dtype=np.float64)
        if vec.ndim != 1 or (self.shape is not None and vec.shape != self.shape):
            expected = f" (expected {self.shape})" if self.shape is not None else ""
            raise NumericDerivativeError(
                f"f must return a vector of the same shape at every point; got {vec.shape} at "
                f"{_describe(point.real, self.names)}{expected}",
                point=dict(zip(self.names, point.real.tolist(), strict=True)),
            )
        self.shape = vec.shape
        vec.flags.writeable = False
        return vec

    def _from_cache(self, value: Any) -> Any:
        shape = np.shape(value)
        if (self.vector and (len(shape) != 1 or (self.shape is not None and shape != self.shape))) or (
            not self.vector and np.size(value) != 1
        ):
            raise ValueError(
                f"cache holds a value of shape {shape} for this point, not what f returns "
                f"({'a vector' if self.vector else 'a scalar'}); a cache belongs to one function f"
            )
        if self.vector:
            self.shape = shape
        return value

    def _call_one(self, point: np.ndarray) -> Any:
        try:
            out = self.f(point.copy())
        except NumericDerivativeError:
            raise
        except Exception as exc:
            raise self._raised(exc, point) from exc
        return self._accept(out, point)

    def _check_batch(self, out: Any, points: np.ndarray) -> np.ndarray:
        arr = np.asarray(out)
        if arr.shape != (len(points),):
            raise NumericDerivativeError(
                f"vectorized f must map ({len(points)}, P) points to shape ({len(points)},), got {arr.shape}"
            )
        return arr

    def _evaluate(self, points: np.ndarray) -> list[Any]:
        """``f`` at the (distinct, uncached) rows of ``points``, all submitted at once to the executor."""
        if self.pool.active:
            call = _Call(self.f, {k: str(v) for k, v in np.geterr().items()})
            if self.vectorized:
                items = np.array_split(points, min(len(points), self.pool.workers))
            else:
                items = [p.copy() for p in points]
            results = self.pool.map(call, items)
            outs: list[Any] = []
            for item in items:
                first = item[0] if self.vectorized else item
                try:
                    outs.append(next(results))
                except NumericDerivativeError:
                    raise
                except Exception as exc:
                    raise self._raised(exc, first, len(item) if self.vectorized else 0) from exc
            if self.vectorized:
                return list(
                    np.concatenate([self._check_batch(o, c) for o, c in zip(outs, items, strict=True)])
                )
            return [self._accept(o, p) for o, p in zip(outs, items, strict=True)]
        if self.vectorized:
            try:
                out = self.f(points.copy())
            except Exception as exc:
                raise self._raised(exc, points[0], len(points)) from exc
            return list(self._check_batch(out, points))
        return [self._call_one(p) for p in points]

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """``f`` at each row of ``points`` (``(M, P)``); returns ``(M, N)``."""
        real = points.real
        if np.any(real <= self.lower) or np.any(real >= self.upper):  # pragma: no cover - a bug guard
            raise AssertionError("internal error: a stencil point lies outside the bounds")
        shared = self.shared if points.dtype == np.float64 else None
        keys = [p.tobytes() for p in points]
        missing: dict[bytes, int] = {}
        for idx, key in enumerate(keys):
            if key in self.values or key in missing:
                continue
            if shared is not None:
                hit = shared.get(key, _MISSING)
                if hit is not _MISSING:
                    self.values[key] = self._from_cache(hit)
                    continue
            missing[key] = idx
        if missing:
            rows = np.fromiter(missing.values(), dtype=int, count=len(missing))
            values = self._evaluate(points[rows])
            self.count += len(rows)
            for key, value in zip(missing, values, strict=True):
                self.values[key] = value
                if shared is not None:
                    shared[key] = value
        return np.array([self.values[k] for k in keys]).reshape(len(keys), -1)


# --------------------------------------------------------------------------- Richardson


@np.errstate(all="ignore")
def _richardson(
    table: np.ndarray, rounding: np.ndarray, powers: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Extrapolate each entry of ``table`` (``(L, ...)``, step halving down the first axis).

    ``powers[m-1]`` (broadcastable to ``(L-1, ...)``) is the power of the step that column
    ``m`` removes; ``rounding`` (broadcastable to ``table``) bounds the rounding error of each
    entry. Returns the best extrapolant of each entry, its error estimate (Ridders' estimate
    plus the propagated rounding bound), and the rounding part of that estimate.
    """
    levels = table.shape[0]
    shape = table.shape[1:]
    rounding = np.broadcast_to(rounding, table.shape)
    best = table[-1].copy()
    best_err = np.full(shape, np.inf)
    best_round = rounding[-1].copy()
    prev, prev_r = table, rounding
    for m in range(1, levels):
        factor = 2.0 ** powers[m - 1] - 1.0
        cur = prev[1:] + (prev[1:] - prev[:-1]) / factor
        cur_r = prev_r[1:] * (1.0 + 1.0 / factor) + prev_r[:-1] / factor
        err = np.maximum(np.abs(cur - prev[1:]), np.abs(cur - prev[:-1])) + cur_r
        for k in range(cur.shape[0]):
            better = err[k] < best_err
            best = np.where(better, cur[k], best)
            best_err = np.where(better, err[k], best_err)
            best_round = np.where(better, cur_r[k], best_round)
        prev, prev_r = cur, cur_r
    return best, best_err, best_round


# --------------------------------------------------------------------------- stencil set-up


def _as_bounds(bound: Any, default: float, size: int, name: str) -> np.ndarray:
    if bound is None:
        return np.full(size, default)
    arr = np.broadcast_to(np.asarray(bound, dtype=np.float64), (size,)).copy()
    arr[np.isnan(arr)] = default
    return arr


def _setup(
    x: Any,
    names: Sequence[str] | None,
    step: Any,
    lower: Any,
    upper: Any,
) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate the point and return ``(x, names, h, side, lower, upper, h_near)``.

    ``side[i]`` is 0 for a central stencil, +1/-1 for a one-sided one towards larger/smaller
    values; for a parameter closer than ``NEAR_BOUND * h`` to a bound, ``h_near[i]`` is the
    step of the alternative central stencil (``1/NEAR_BOUND`` of the distance), else 0.
    """
    x = np.array(x, dtype=np.float64).ravel()
    size = x.size
    names = [f"theta[{i}]" for i in range(size)] if names is None else list(names)
    if len(names) != size:
        raise ValueError(f"{len(names)} names for {size} parameters")
    if not np.all(np.isfinite(x)):
        bad = int(np.flatnonzero(~np.isfinite(x))[0])
        raise ValueError(f"parameter {names[bad]} = {x[bad]} is not finite")
    lo = _as_bounds(lower, -np.inf, size, "lower")
    hi = _as_bounds(upper, np.inf, size, "upper")
    outside = np.flatnonzero(~((lo < x) & (x < hi)))
    if outside.size:
        i = int(outside[0])
        raise ValueError(
            f"parameter {names[i]} = {x[i]!r} is not strictly inside its bounds ({lo[i]!r}, {hi[i]!r})"
        )
    h = RELATIVE_STEP * np.maximum(np.abs(x), 1.0)
    if step is not None:
        given = np.broadcast_to(np.asarray(step, dtype=np.float64), (size,))
        chosen = ~np.isnan(given)
        if not np.all((given[chosen] > 0) & np.isfinite(given[chosen])):
            raise ValueError(f"step must be positive and finite (NaN: the default), got {step!r}")
        h[chosen] = given[chosen]
    room_lo, room_hi = x - lo, hi - x
    side = np.zeros(size, dtype=int)
    h_near = np.zeros(size)
    for i in range(size):
        near = min(room_lo[i], room_hi[i])
        if near < NEAR_BOUND * h[i]:
            h_near[i] = near / NEAR_BOUND
        if near > h[i] * (1 + 1e-12):
            continue
        side[i] = 1 if room_hi[i] >= room_lo[i] else -1
        room = max(room_lo[i], room_hi[i])
        if room <= 2 * h[i] * (1 + 1e-12):
            h[i] = room / 2.5
        # x + 2 s h must be representable strictly inside: guard against rounding at the bound
        while not (lo[i] < x[i] + side[i] * 2 * h[i] < hi[i]):  # pragma: no cover - rounding guard
            h[i] /= 2
    return x, names, h, side, lo, hi, h_near


# --------------------------------------------------------------------------- the engine


@dataclass
class _Tables:
    """Richardson tables ``(L, n, N)`` of one batch of ``n`` entries with ``N`` outputs each."""

    estimates: np.ndarray
    rounding: np.ndarray
    powers: np.ndarray  # (L-1, n, 1)
    bad: np.ndarray  # (n,): a non-finite value somewhere in the entry's stencil
    fmax: np.ndarray  # (n, N): the largest |f_n| over the entry's stencil


class _Stencils:
    """Builds the stencil points of every entry for the current steps and evaluates them."""

    def __init__(
        self, x: np.ndarray, h: np.ndarray, side: np.ndarray, ev: _Evaluator, levels: int, noise: float
    ) -> None:
        self.x, self.h, self.side, self.ev, self.noise = x, h, side, ev, noise
        self.t = 2.0 ** -np.arange(levels)

    def f0(self) -> np.ndarray:
        return self.ev(self.x[None, :])[0]

    def _flat(self, offsets: np.ndarray) -> np.ndarray:
        """``offsets`` ``(n, P)`` of ``h``-units -> the ``(L n, P)`` points ``x + offsets * t * h``."""
        pts = self.x + offsets[None, :, :] * (self.t[:, None, None] * self.h[None, None, :])
        return pts.reshape(-1, self.x.size)

    def _points(self, offsets: np.ndarray) -> np.ndarray:
        """f at ``x + offsets * t * h`` for every level: ``(L, n, N)``, one batch."""
        return self.ev(self._flat(offsets)).reshape(self.t.size, offsets.shape[0], -1)

    def _diagonal_offsets(self, idx: np.ndarray) -> np.ndarray:
        """Offsets ``(2n, P)``: the first then the second point of each axis stencil."""
        side = self.side[idx]
        central = side == 0
        # central uses +1/-1, one-sided uses s, 2s
        first = np.where(central, 1.0, side.astype(float))
        second = np.where(central, -1.0, 2.0 * side)
        eye = np.eye(self.x.size)[idx]
        return np.concatenate([eye * first[:, None], eye * second[:, None]])

    def prefetch(self, configurations: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """Evaluate, as one batch, the axis stencils of ``(idx, side, h)`` configurations."""
        saved = self.side.copy(), self.h.copy()
        flat = []
        for idx, side, h in configurations:
            self.side[idx], self.h[idx] = side, h
            flat.append(self._flat(self._diagonal_offsets(idx)))
        self.side[:], self.h[:] = saved
        self.ev(np.concatenate(flat))

    @np.errstate(all="ignore")  # a NaN/inf value is detected and retried, not warned about
    def diagonal(self, idx: np.ndarray, f0: np.ndarray) -> tuple[_Tables, _Tables]:
        """Tables of first- and second-derivative estimates for parameters ``idx``."""
        n = idx.size
        side = self.side[idx]
        central = side == 0
        vals = self._points(self._diagonal_offsets(idx))
        fa, fb = vals[:, :n], vals[:, n:]
        th = (self.t[:, None] * self.h[idx][None, :])[:, :, None]
        c = central[None, :, None]
        sg = np.where(central, 1.0, side)[None, :, None]
        g = np.where(c, (fa - fb) / (2 * th), (-3 * f0 + 4 * fa - fb) / (2 * sg * th))
        d2 = np.where(c, (fa - 2 * f0 + fb) / th**2, (fb - 2 * fa + f0) / th**2)
        fmax = np.maximum(np.maximum(np.abs(fa), np.abs(fb)).max(axis=0), np.abs(f0))
        noise = np.maximum(NOISE_ULPS * EPS * fmax, self.noise)[None]
        m = np.arange(1, len(self.t))[:, None, None]
        bad = ~np.all(np.isfinite(fa), axis=(0, 2)) | ~np.all(np.isfinite(fb), axis=(0, 2))
        first = _Tables(g, np.where(c, 1.0, 4.0) * noise / th, np.where(c, 2.0 * m, m + 1.0), bad, fmax)
        second = _Tables(d2, 4.0 * noise / th**2, np.where(c, 2.0 * m, 1.0 * m), bad, fmax)
        return first, second

    @np.errstate(all="ignore")
    def mixed(self, pairs: np.ndarray, f0: np.ndarray) -> _Tables:
        """Tables of off-diagonal estimates for the index pairs ``pairs`` (``(n, 2)``), one batch."""
        n = pairs.shape[0]
        i, j = pairs[:, 0], pairs[:, 1]
        si, sj = self.side[i], self.side[j]
        central = (si == 0) & (sj == 0)
        di = np.where(si == 0, 1.0, si)
        dj = np.where(sj == 0, 1.0, sj)
        eye = np.eye(self.x.size)
        up = eye[i] * di[:, None] + eye[j] * dj[:, None]
        cc = central[:, None]
        offsets = [
            up,
            np.where(cc, -up, up),  # forward pairs: a repeat, evaluated once
            eye[i] * di[:, None],
            eye[j] * dj[:, None],
            np.where(cc, -eye[i], eye[i] * di[:, None]),
            np.where(cc, -eye[j], eye[j] * dj[:, None]),
        ]
        vals = self._points(np.concatenate(offsets))
        stack = vals.reshape(self.t.size, 6, n, -1).swapaxes(0, 1)  # (6, L, n, N)
        f_pp, f_mm, f_i, f_j, f_mi, f_mj = stack
        tt = ((self.t**2)[:, None] * (self.h[i] * self.h[j])[None, :])[:, :, None]
        est_c = (f_pp + f_mm - f_i - f_mi - f_j - f_mj + 2 * f0) / (2 * tt)
        est_f = (f_pp - f_i - f_j + f0) / ((di * dj)[None, :, None] * tt)
        c = central[None, :, None]
        est = np.where(c, est_c, est_f)
        fmax = np.maximum(np.abs(stack).max(axis=(0, 1)), np.abs(f0))
        noise = np.maximum(NOISE_ULPS * EPS * fmax, self.noise)[None]
        m = np.arange(1, len(self.t))[:, None, None]
        bad = ~np.all(np.isfinite(stack), axis=(0, 1, 3))
        return _Tables(est, 4.0 * noise / tt, np.where(c, 2.0 * m, 1.0 * m), bad, fmax)


def _fail(x: np.ndarray, names: list[str], i: int, h: float, what: str) -> NumericDerivativeError:
    return NumericDerivativeError(
        f"f is not finite at a perturbed point for {what}: parameter {names[i]} stepped by "
        f"{h:.3g} (after {MAX_RETRIES} smaller steps, each x{1 / RETRY_SHRINK:g}) from "
        f"{_describe(x, names)}; f may be undefined near this point: pass lower/upper bounds "
        "for the parameter, a smaller step, or move the point inside the domain",
        point=dict(zip(names, x.tolist(), strict=True)),
        parameter=names[i],
    )


def _start(
    f: Callable[[np.ndarray], Any],
    x: Any,
    names: Sequence[str] | None,
    step: Any,
    lower: Any,
    upper: Any,
    levels: int,
    noise: float,
    *,
    second: bool,
    vectorized: bool,
    vector: bool,
    pool: _Pool,
    cache: MutableMapping[bytes, Any] | None,
) -> tuple[_Stencils, list[str], np.ndarray]:
    if levels < 2:
        raise ValueError(f"levels must be at least 2 (one Richardson step), got {levels}")
    if not (noise >= 0 and np.isfinite(noise)):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    x, names_, h, side, lo, hi, h_near = _setup(x, names, step, lower, upper)
    ev = _Evaluator(f, names_, lo, hi, vectorized=vectorized, vector=vector, pool=pool, cache=cache)
    st = _Stencils(x, h, side, ev, levels, float(noise))
    f0 = st.f0()
    if not np.all(np.isfinite(f0)):
        point = dict(zip(names_, x.tolist(), strict=True))
        if vector:
            row = int(np.flatnonzero(~np.isfinite(f0))[0])
            raise NumericDerivativeError(
                f"f is not finite at the point itself: output {row} of f{_describe(x, names_)} is "
                f"{float(f0[row])!r}",
                point=point,
            )
        raise NumericDerivativeError(
            f"f is not finite at the point itself, f{_describe(x, names_)} = {float(f0[0])!r}", point=point
        )
    _choose_near_bound(st, h_near, f0, second=second)
    return st, names_, f0


def _choose_near_bound(st: _Stencils, h_near: np.ndarray, f0: np.ndarray, *, second: bool) -> None:
    """For each parameter near a bound, keep the better of two stencils.

    The default stencil (the full step; one-sided if the central one crosses the bound) suits
    a function smooth up to the bound; a central stencil with a quarter of the distance to the
    bound suits one that varies on the scale of that distance (``log theta`` near 0). Both are
    evaluated (one batch); the one whose Richardson error estimate (of the second derivative if
    ``second``, else of the first; the worst over the outputs) is smaller is kept if the two
    agree within their error estimates in every output, else the short central one: ``2 L``
    extra evaluations per such parameter.
    """
    idx = np.flatnonzero(h_near > 0)
    if idx.size == 0:
        return
    one_sided = (st.side[idx].copy(), st.h[idx].copy())
    short = (np.zeros(idx.size, dtype=int), h_near[idx])
    st.prefetch([(idx, *one_sided), (idx, *short)])
    values, errors = [], []
    for side, h in (one_sided, short):
        st.side[idx], st.h[idx] = side, h
        tables = st.diagonal(idx, f0)[1 if second else 0]
        val, err, _ = _richardson(tables.estimates, tables.rounding, tables.powers)
        values.append(val)
        errors.append(np.where(tables.bad[:, None], np.inf, err))
    # Two estimates that disagree beyond their error bars: the long one-sided step is out of
    # the asymptotic regime (its Ridders estimate is then meaningless), keep the short one.
    consistent = np.all(np.abs(values[0] - values[1]) <= errors[0] + errors[1], axis=-1)
    keep = consistent & (errors[0].max(axis=-1) <= errors[1].max(axis=-1))
    st.side[idx[keep]] = one_sided[0][keep]
    st.h[idx[keep]] = one_sided[1][keep]


@dataclass
class _Derivatives:
    """Engine output for ``N`` outputs: first derivatives ``(N, P)``, second ``(N, P, P)``."""

    value: np.ndarray
    first: np.ndarray
    first_err: np.ndarray
    first_round: np.ndarray
    fmax: np.ndarray  # (N, P): the largest |f_n| over each parameter's axis stencil
    second: np.ndarray | None
    second_err: np.ndarray | None
    second_round: np.ndarray | None
    evaluations: int


def _derivatives(st: _Stencils, names: list[str], f0: np.ndarray, *, second: bool) -> _Derivatives:
    """First (and if ``second``, second) derivatives of every output, retrying non-finite stencils."""
    size, n_out = st.x.size, f0.size
    out = {k: np.empty((size, n_out)) for k in ("g", "g_err", "g_round", "d2", "d2_err", "d2_round", "fmax")}
    todo = np.arange(size)
    for attempt in range(MAX_RETRIES + 1):
        first, diag = st.diagonal(todo, f0)
        ok = ~first.bad
        if np.any(ok):
            done = todo[ok]
            for key, tables in (("g", first), ("d2", diag)):
                val, err, rnd = _richardson(
                    tables.estimates[:, ok], tables.rounding[:, ok], tables.powers[:, ok]
                )
                out[key][done], out[key + "_err"][done], out[key + "_round"][done] = val, err, rnd
            out["fmax"][done] = first.fmax[ok]
        todo = todo[first.bad]
        if todo.size == 0:
            break
        if attempt == MAX_RETRIES:
            i = int(todo[0])
            raise _fail(st.x, names, i, float(st.h[i]), f"the derivatives in {names[i]}")
        st.h[todo] /= RETRY_SHRINK
    if not second:
        return _Derivatives(
            f0, out["g"].T, out["g_err"].T, out["g_round"].T, out["fmax"].T, None, None, None, st.ev.count
        )
    hess = np.zeros((n_out, size, size))
    hess_err = np.zeros((n_out, size, size))
    hess_round = np.zeros((n_out, size, size))
    diag_idx = np.arange(size)
    hess[:, diag_idx, diag_idx] = out["d2"].T
    hess_err[:, diag_idx, diag_idx] = out["d2_err"].T
    hess_round[:, diag_idx, diag_idx] = out["d2_round"].T
    pairs = np.column_stack(np.triu_indices(size, k=1))
    for attempt in range(MAX_RETRIES + 1):
        if pairs.size == 0:
            break
        tables = st.mixed(pairs, f0)
        ok = ~tables.bad
        if np.any(ok):
            val, err, rnd = _richardson(tables.estimates[:, ok], tables.rounding[:, ok], tables.powers[:, ok])
            pi, pj = pairs[ok, 0], pairs[ok, 1]
            hess[:, pi, pj] = hess[:, pj, pi] = val.T
            hess_err[:, pi, pj] = hess_err[:, pj, pi] = err.T
            hess_round[:, pi, pj] = hess_round[:, pj, pi] = rnd.T
        pairs = pairs[tables.bad]
        if pairs.size == 0:
            break
        if attempt == MAX_RETRIES:
            i, j = int(pairs[0, 0]), int(pairs[0, 1])
            raise _fail(st.x, names, i, float(st.h[i]), f"the mixed derivative in {names[i]}, {names[j]}")
        # Shrinking the steps of both parameters of a failed pair (the diagonal entries
        # already computed keep their values).
        st.h[np.unique(pairs)] /= RETRY_SHRINK
    return _Derivatives(
        f0,
        out["g"].T,
        out["g_err"].T,
        out["g_round"].T,
        out["fmax"].T,
        hess,
        hess_err,
        hess_round,
        st.ev.count,
    )


# --------------------------------------------------------------------------- accuracy


def _inaccurate(d: _Derivatives, x: np.ndarray, names: list[str], *, outputs: bool) -> str | None:
    """The message of a :class:`NumericAccuracyWarning` for ``d``, or ``None`` if every entry is accurate.

    Scales (module docstring): a first derivative against its column over the outputs,
    ``max_n max(|J_ni|, F_ni / s_i)``; a second derivative against
    ``max_n max(|H_n,ij|, sqrt|H_n,ii H_n,jj|, |J_ni| / s_j, |J_nj| / s_i)``. Entries within
    their rounding bound of zero are exact to the precision of ``f`` and not flagged.
    """
    s = np.maximum(np.abs(x), 1.0)
    jabs = np.abs(d.first)
    with np.errstate(all="ignore"):
        scale1 = np.maximum(jabs, d.fmax / s).max(axis=0)  # (P,)
        ratio1 = d.first_err / scale1
    flagged1 = (d.first_err > ACCURACY_RTOL * scale1) & (jabs > d.first_round)
    entries = [
        (
            float(ratio1[n, i]),
            f"df{f'[{n}]' if outputs else ''}/d({names[i]})",
            d.first[n, i],
            d.first_err[n, i],
        )
        for n, i in zip(*np.nonzero(flagged1), strict=True)
    ]
    if d.second is not None and d.second_err is not None and d.second_round is not None:
        habs = np.abs(d.second)
        diag = np.abs(np.diagonal(d.second, axis1=1, axis2=2))  # (N, P)
        per_output = np.maximum.reduce(
            [
                habs,
                np.sqrt(diag[:, :, None] * diag[:, None, :]),
                jabs[:, :, None] / s[None, None, :],
                jabs[:, None, :] / s[None, :, None],
            ]
        )
        scale2 = per_output.max(axis=0)  # (P, P)
        upper = np.triu(np.ones(scale2.shape, dtype=bool))
        flagged2 = (d.second_err > ACCURACY_RTOL * scale2) & (habs > d.second_round) & upper
        with np.errstate(all="ignore"):
            ratio2 = d.second_err / scale2
        for n, i, j in zip(*np.nonzero(flagged2), strict=True):
            wrt = f"d({names[i]})^2" if i == j else f"d({names[i]})d({names[j]})"
            label = f"d2f{f'[{n}]' if outputs else ''}/{wrt}"
            entries.append((float(ratio2[n, i, j]), label, d.second[n, i, j], d.second_err[n, i, j]))
    if not entries:
        return None
    entries.sort(key=lambda e: -e[0])
    shown = "; ".join(f"{label}: {v:.3g} ± {e:.2g}" for _, label, v, e in entries[:ACCURACY_SHOWN])
    more = f" (and {len(entries) - ACCURACY_SHOWN} more)" if len(entries) > ACCURACY_SHOWN else ""
    return (
        f"{len(entries)} finite-difference derivative(s) at {_describe(x, names)} have an estimated error "
        f"above {ACCURACY_RTOL:g} of their scale: {shown}{more}. No step makes them accurate: f is "
        "noisy (a simulator solved to a tolerance: pass noise=) or not smooth at this point (a kink, "
        "a discontinuity, a switching branch). The error fields of the result hold the estimates."
    )


def _warn_inaccurate(d: _Derivatives, x: np.ndarray, names: list[str], *, outputs: bool) -> None:
    message = _inaccurate(d, x, names, outputs=outputs)
    if message is not None:
        warnings.warn(message, NumericAccuracyWarning, stacklevel=3)


# --------------------------------------------------------------------------- public functions


def gradient(
    f: Callable[[np.ndarray], Any],
    x: Any,
    *,
    method: str = "central",
    names: Sequence[str] | None = None,
    step: Any = None,
    lower: Any = None,
    upper: Any = None,
    vectorized: bool = False,
    levels: int = LEVELS,
    noise: float = 0.0,
    executor: str | SupportsMap | None = None,
    workers: int | None = None,
    cache: MutableMapping[bytes, Any] | None = None,
) -> GradientResult:
    r"""Gradient :math:`\nabla f(\theta)` of a black-box scalar function, with an error estimate per entry.

    Args:
        f: ``f(theta) -> float`` on a NumPy float64 vector ``(P,)`` (``(M, P) -> (M,)``
            with ``vectorized=True``).
        x: the point :math:`\theta`, shape ``(P,)``.
        method: ``"central"`` (central differences, Richardson-extrapolated over
            ``levels`` halvings of the step; one-sided next to a bound) or ``"complex"``
            (complex step: ``f`` must accept complex input; tried once, and
            :class:`~fisherlab.MethodUnavailableError` if it does not).
        names: parameter names for messages (default ``theta[i]``).
        step: base step(s) ``h_i``, scalar or ``(P,)`` (NaN entries: the default
            :data:`RELATIVE_STEP` ``* max(|x_i|, 1)``).
        lower, upper: open bounds, scalar or ``(P,)`` (``None``/NaN: unbounded);
            ``f`` is never evaluated on or outside them.
        vectorized: ``f`` evaluates a batch of points at once (with an executor, the batch
            is split into ``workers`` chunks).
        levels: Richardson levels (steps ``h, h/2, ..., h/2^(levels-1)``).
        noise: absolute noise level of ``f`` beyond float64 rounding, used in the error
            estimate; default 0 (rounding only). A simulator or ODE/optimisation solver run to
            a tolerance, or a Monte-Carlo estimate, should pass the size of its error here
            (e.g. the absolute tolerance of the solver times the sensitivity of ``f`` to it):
            the error bars then cover it, and the accuracy warning explains it.
        executor: ``None`` (serial), ``"threads"``, ``"processes"`` (spawned worker
            processes; ``f`` must be picklable, e.g. defined at module level) or any object
            with a :class:`concurrent.futures.Executor`-style ``map(fn, iterable)``: every
            batch of stencil points is submitted at once. A given executor is not shut down.
        workers: size of the pool made for ``"threads"``/``"processes"`` (default
            ``os.cpu_count()``).
        cache: a mutable mapping ``point.tobytes() -> f(point)`` shared between calls on the
            same ``f`` (e.g. an LRU mapping): points found there are neither evaluated nor
            counted, new ones are stored. Not used by ``method="complex"``.

    Returns:
        :class:`GradientResult` with ``gradient``, ``error`` (``(P,)``) and ``evaluations``.

    Raises:
        NumericDerivativeError: ``f`` raised (chained; the message names the values), or
            stayed non-finite at a perturbed point after the retries with smaller steps.
        ValueError: a bad argument, e.g. ``executor="processes"`` with an ``f`` that cannot
            be pickled.

    Warns:
        NumericAccuracyWarning: an entry's error estimate exceeds :data:`ACCURACY_RTOL` of its
            scale (module docstring); one warning per call.

    Example:
        >>> import numpy as np
        >>> from fisherlab._numeric import gradient
        >>> r = gradient(lambda v: np.sin(v[0]) * np.exp(v[1]), [0.5, 0.0])
        >>> bool(np.allclose(r.gradient, [np.cos(0.5), np.sin(0.5)], rtol=1e-12))
        True
        >>> r.evaluations
        17
    """
    choice = choose(GradientMethod, method, "method")
    if choice is GradientMethod.COMPLEX:
        with _Pool(executor, workers, f) as pool:
            return _complex_gradient(f, x, names, vectorized, pool)
    f0, d = _differentiate(
        f,
        x,
        names,
        step,
        lower,
        upper,
        levels,
        noise,
        executor,
        workers,
        cache,
        second=False,
        vectorized=vectorized,
        vector=False,
    )
    return GradientResult(float(f0[0]), d.first[0], d.first_err[0], d.evaluations)


def _complex_gradient(
    f: Callable[[np.ndarray], Any], x: Any, names: Sequence[str] | None, vectorized: bool, pool: _Pool
) -> GradientResult:
    x, names_, _, _, lo, hi, _ = _setup(x, names, None, None, None)
    h = COMPLEX_STEP * np.maximum(np.abs(x), 1.0)
    ev = _Evaluator(f, names_, lo, hi, vectorized=vectorized, pool=pool)
    points = x.astype(np.complex128)[None, :] + 1j * np.diag(h)
    trial = points[:1]
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        try:
            first = ev(trial)
        except NumericDerivativeError as exc:
            raise MethodUnavailableError(
                'method="complex" needs an f that accepts complex input; f failed on one '
                f'({exc.__cause__!r}); use method="central"'
            ) from exc
    if not np.iscomplexobj(first):
        raise MethodUnavailableError(
            'method="complex" needs an f that propagates complex input; f returned a real value '
            '(it drops the imaginary part, e.g. through float() or abs()); use method="central"'
        )
    values = ev(points)[:, 0]
    f0 = float(np.real(ev(x.astype(np.complex128)[None, :])[0, 0]))
    if not np.all(np.isfinite(values)) or not np.isfinite(f0):
        raise NumericDerivativeError(
            f"f is not finite at the complex-step points around {_describe(x, names_)}",
            point=dict(zip(names_, x.tolist(), strict=True)),
        )
    g = np.imag(values) / h
    err = COMPLEX_ULPS * EPS * (np.abs(g) + np.abs(f0) / np.maximum(np.abs(x), 1.0))
    return GradientResult(f0, g, err, ev.count)


def hessian(
    f: Callable[[np.ndarray], Any],
    x: Any,
    *,
    names: Sequence[str] | None = None,
    step: Any = None,
    lower: Any = None,
    upper: Any = None,
    vectorized: bool = False,
    levels: int = LEVELS,
    noise: float = 0.0,
    executor: str | SupportsMap | None = None,
    workers: int | None = None,
    cache: MutableMapping[bytes, Any] | None = None,
) -> HessianResult:
    r"""Hessian :math:`\nabla^2 f(\theta)` and gradient of a black-box scalar function, with error estimates.

    Central differences (one-sided next to a bound) on the steps
    ``h, h/2, ..., h/2^(levels-1)``, Richardson-extrapolated entry by entry; the gradient
    comes from the same evaluations. Cost: :math:`1 + L(P^2 + P)` evaluations of ``f``
    for :math:`L` levels and no bounds hit (fewer when points repeat or are in ``cache``).
    This is :func:`vector_hessian` for a single output.

    Args:
        f: ``f(theta) -> float`` on a NumPy float64 vector ``(P,)`` (``(M, P) -> (M,)``
            with ``vectorized=True``).
        x: the point :math:`\theta`, shape ``(P,)``.
        names: parameter names for messages (default ``theta[i]``).
        step: base step(s) ``h_i``, scalar or ``(P,)`` (NaN entries: the default
            :data:`RELATIVE_STEP` ``* max(|x_i|, 1)``).
        lower, upper: open bounds, scalar or ``(P,)`` (``None``/NaN: unbounded);
            ``f`` is never evaluated on or outside them.
        vectorized: ``f`` evaluates a batch of points at once.
        levels: Richardson levels.
        noise: absolute noise level of ``f`` beyond float64 rounding, used in the error
            estimate; a simulator solved to a tolerance should pass it (as for :func:`gradient`).
        executor, workers, cache: parallel evaluation of each stencil batch and evaluations
            shared between calls, as for :func:`gradient`.

    Returns:
        :class:`HessianResult`: ``hessian`` and ``hessian_error`` ``(P, P)``, ``gradient``
        and ``gradient_error`` ``(P,)``, ``evaluations``.

    Raises:
        NumericDerivativeError: ``f`` raised (chained; the message names the values), or
            stayed non-finite at a perturbed point after the retries with smaller steps.
        ValueError: a bad argument.

    Warns:
        NumericAccuracyWarning: an entry's error estimate exceeds :data:`ACCURACY_RTOL` of its
            scale (module docstring); one warning per call.

    Example:
        >>> import numpy as np
        >>> from fisherlab._numeric import hessian
        >>> r = hessian(lambda v: v[0] ** 2 * np.exp(v[1]), [1.0, 0.0])
        >>> bool(np.allclose(r.hessian, [[2.0, 2.0], [2.0, 1.0]], rtol=1e-10))
        True
        >>> bool(np.all(np.abs(r.hessian - [[2.0, 2.0], [2.0, 1.0]]) <= r.hessian_error))
        True
        >>> r.evaluations
        25
    """
    f0, d = _differentiate(
        f,
        x,
        names,
        step,
        lower,
        upper,
        levels,
        noise,
        executor,
        workers,
        cache,
        second=True,
        vectorized=vectorized,
        vector=False,
    )
    assert d.second is not None and d.second_err is not None
    return HessianResult(
        float(f0[0]), d.first[0], d.first_err[0], d.second[0], d.second_err[0], d.evaluations
    )


def _differentiate(
    f: Callable[[np.ndarray], Any],
    x: Any,
    names: Sequence[str] | None,
    step: Any,
    lower: Any,
    upper: Any,
    levels: int,
    noise: float,
    executor: Any,
    workers: int | None,
    cache: MutableMapping[bytes, Any] | None,
    *,
    second: bool,
    vectorized: bool,
    vector: bool,
) -> tuple[np.ndarray, _Derivatives]:
    """First (and with ``second``, second) derivatives of every output from one set of stencils.

    The pool lives for this call; one :class:`NumericAccuracyWarning` if an entry is inaccurate.
    """
    with _Pool(executor, workers, f) as pool:
        st, names_, f0 = _start(
            f,
            x,
            names,
            step,
            lower,
            upper,
            levels,
            noise,
            second=second,
            vectorized=vectorized,
            vector=vector,
            pool=pool,
            cache=cache,
        )
        d = _derivatives(st, names_, f0, second=second)
    _warn_inaccurate(d, st.x, names_, outputs=vector)
    return f0, d


def vector_hessian(
    f: Callable[[np.ndarray], Any],
    x: Any,
    *,
    names: Sequence[str] | None = None,
    step: Any = None,
    lower: Any = None,
    upper: Any = None,
    levels: int = LEVELS,
    noise: float = 0.0,
    executor: str | SupportsMap | None = None,
    workers: int | None = None,
    cache: MutableMapping[bytes, Any] | None = None,
) -> VectorHessianResult:
    r"""Hessians :math:`\nabla^2 f_n(\theta)` of all outputs of a black-box vector function, and its Jacobian.

    For :math:`f: \mathbb R^P \to \mathbb R^N` (the per-row log-likelihood terms
    :math:`\ell_n(\theta)` of :math:`N` observations, say), the stencils of :func:`hessian`
    applied to all outputs at once: every call of ``f`` returns all :math:`N` outputs, so the
    cost is that of one scalar Hessian, :math:`1 + L(P^2 + P)` calls with no bounds hit,
    and the result holds :math:`J_{na} = \partial f_n / \partial \theta_a` and
    :math:`H_{n,ab} = \partial^2 f_n / \partial \theta_a \partial \theta_b` (their sums over
    :math:`n` are the gradient and Hessian of :math:`\sum_n f_n`; the per-row terms give e.g.
    the sandwich :math:`\sum_n J_n J_n^\top` and per-row curvature). Each entry is
    Richardson-extrapolated (Richardson 1911) with Ridders' (1982) error estimate plus a
    rounding bound from the largest :math:`|f_n|` over its stencil, per output. Next to a bound
    the stencil of a parameter is chosen by the worst output; a parameter whose stencil gives
    a non-finite value in any output is retried with a smaller step.

    Args:
        f: ``f(theta) -> array (N,)`` on a NumPy float64 vector ``(P,)``; the same ``N`` at
            every point.
        x: the point :math:`\theta`, shape ``(P,)``.
        names, step, lower, upper, levels, noise, executor, workers, cache: as for
            :func:`gradient` (a ``cache`` holds the ``(N,)`` vectors of this ``f``).

    Returns:
        :class:`VectorHessianResult`: ``value`` ``(N,)``, ``jacobian`` and ``jacobian_error``
        ``(N, P)``, ``hessian`` and ``hessian_error`` ``(N, P, P)``, ``evaluations``.

    Raises:
        NumericDerivativeError: ``f`` raised (chained; the message names the values), returned
            a different shape, was not finite at ``x``, or stayed non-finite at a perturbed
            point after the retries with smaller steps.
        ValueError: a bad argument.

    Warns:
        NumericAccuracyWarning: an entry's error estimate exceeds :data:`ACCURACY_RTOL` of the
            scale of its column over the outputs (module docstring); one warning per call.

    Example:
        >>> import numpy as np
        >>> from fisherlab._numeric import vector_hessian
        >>> t = np.array([0.0, 1.0, 2.0])
        >>> r = vector_hessian(lambda v: v[1] * np.exp(v[0] * t), [0.5, 2.0])
        >>> r.hessian.shape
        (3, 2, 2)
        >>> bool(np.allclose(r.hessian[:, 0, 1], t * np.exp(0.5 * t), rtol=1e-10))
        True
        >>> r.evaluations
        25
    """
    f0, d = _differentiate(
        f,
        x,
        names,
        step,
        lower,
        upper,
        levels,
        noise,
        executor,
        workers,
        cache,
        second=True,
        vectorized=False,
        vector=True,
    )
    assert d.second is not None and d.second_err is not None
    return VectorHessianResult(f0, d.first, d.first_err, d.second, d.second_err, d.evaluations)


def jacobian(
    f: Callable[[np.ndarray], Any],
    x: Any,
    *,
    names: Sequence[str] | None = None,
    step: Any = None,
    lower: Any = None,
    upper: Any = None,
    levels: int = LEVELS,
    noise: float = 0.0,
    executor: str | SupportsMap | None = None,
    workers: int | None = None,
    cache: MutableMapping[bytes, Any] | None = None,
) -> JacobianResult:
    r"""Jacobian :math:`J_{na} = \partial f_n / \partial \theta_a` of a black-box vector function, with error.

    Every column uses the stencil of :func:`gradient`, applied to all outputs at once: the
    central difference :math:`(f(\theta + t h_a e_a) - f(\theta - t h_a e_a)) / (2 t h_a)`
    (one-sided next to a bound) on the steps ``h, h/2, ..., h/2^(levels-1)``,
    Richardson-extrapolated (Richardson 1911) entry by entry with Ridders' (1982) error
    estimate plus a rounding bound :math:`\propto \delta_{f_n} / (t h_a)` per output
    :math:`n`. Each call of ``f`` evaluates all :math:`N` outputs (all rows of a
    log-likelihood), so the cost is :math:`1 + 2 L P` calls when no bound is near (the points
    of all columns are one batch, for ``executor``). Within :math:`4 h_a` of a bound a central
    stencil with a quarter of the distance as step is tried as well and kept unless the
    default stencil agrees with it in every output and reports a smaller worst error (as in
    :func:`gradient`; at most :math:`2L` more calls). A column whose outputs are not finite at
    a perturbed point is retried with a smaller step.

    Args:
        f: ``f(theta) -> array (N,)`` on a NumPy float64 vector ``(P,)``.
        x: the point :math:`\theta`, shape ``(P,)``.
        names, step, lower, upper, levels, noise, executor, workers, cache: as for
            :func:`gradient` (a ``cache`` holds the ``(N,)`` vectors of this ``f``).

    Returns:
        :class:`JacobianResult` with ``value`` ``(N,)``, ``jacobian`` and ``error``
        ``(N, P)``, ``evaluations``.

    Raises:
        NumericDerivativeError: ``f`` raised (chained; the message names the values), returned
            a different shape, was not finite at ``x``, or stayed non-finite at a perturbed
            point after the retries with smaller steps.
        ValueError: a bad argument.

    Warns:
        NumericAccuracyWarning: an entry's error estimate exceeds :data:`ACCURACY_RTOL` of the
            scale of its column (module docstring); one warning per call.

    Example:
        >>> import numpy as np
        >>> from fisherlab._numeric import jacobian
        >>> t = np.array([0.0, 1.0, 2.0])
        >>> r = jacobian(lambda v: v[0] * np.exp(v[1] * t), [2.0, 0.5])
        >>> bool(np.allclose(r.jacobian[:, 1], 2.0 * t * np.exp(0.5 * t), rtol=1e-12))
        True
        >>> r.evaluations
        17
    """
    f0, d = _differentiate(
        f,
        x,
        names,
        step,
        lower,
        upper,
        levels,
        noise,
        executor,
        workers,
        cache,
        second=False,
        vectorized=False,
        vector=True,
    )
    return JacobianResult(f0, d.first, d.first_err, d.evaluations)
