r"""Finite-difference gradients and Hessians of black-box scalar functions, with error estimates.

The function :math:`f: \mathbb R^P \to \mathbb R` is any Python callable on a NumPy
float64 vector: it may call NumPy, SciPy or an external program; it is never traced.

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
of the function values (:math:`\delta` the ``noise`` argument, for a simulator solved to
a tolerance) times the stencil's absolute coefficients
(:math:`\propto \delta_f / (t h)^d` for a derivative of order :math:`d`),
propagated through the extrapolation. Nocedal & Wright (2006, ch. 8) discuss the
truncation/rounding trade-off behind the step choice.

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
reports a smaller error.

**Failures.** A non-finite value at a perturbed point shrinks that parameter's
step by :data:`RETRY_SHRINK` and retries (up to :data:`MAX_RETRIES` times), then
raises :class:`~fisherlab.NumericDerivativeError` naming the point and the parameter;
an exception raised by ``f`` is chained into the same error with the parameter values.

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

import enum
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._errors import MethodUnavailableError, NumericDerivativeError
from ._options import choose

__all__ = [
    "GradientMethod",
    "GradientResult",
    "HessianResult",
    "JacobianResult",
    "gradient",
    "hessian",
    "jacobian",
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


class GradientMethod(str, enum.Enum):
    """``method`` of :func:`gradient`."""

    CENTRAL = "central"
    COMPLEX = "complex"


@dataclass(frozen=True)
class GradientResult:
    """A finite-difference gradient.

    Attributes:
        value: :math:`f(\\theta)`.
        gradient: ``(P,)`` estimate of :math:`\\nabla f(\\theta)`.
        error: ``(P,)`` estimated absolute error of each entry.
        evaluations: the number of calls of ``f`` (distinct points; rows for a vectorised ``f``).
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
        evaluations: the number of calls of ``f`` (distinct points; rows for a vectorised ``f``).
    """

    value: float
    gradient: np.ndarray
    gradient_error: np.ndarray
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
        evaluations: the number of calls of ``f`` (each call evaluates all ``N`` outputs).
    """

    value: np.ndarray
    jacobian: np.ndarray
    error: np.ndarray
    evaluations: int


# --------------------------------------------------------------------------- evaluation


def _describe(point: np.ndarray, names: Sequence[str]) -> str:
    return "{" + ", ".join(f"{n}={v!r}" for n, v in zip(names, point.tolist(), strict=True)) + "}"


class _Evaluator:
    """Calls ``f`` on batches of points, once per distinct point, counting the calls."""

    def __init__(
        self,
        f: Callable[[np.ndarray], Any],
        names: Sequence[str],
        vectorized: bool,
        lower: np.ndarray,
        upper: np.ndarray,
    ) -> None:
        self.f = f
        self.names = list(names)
        self.vectorized = vectorized
        self.lower = lower
        self.upper = upper
        self.cache: dict[bytes, Any] = {}
        self.count = 0

    def _call_one(self, point: np.ndarray) -> Any:
        try:
            out = self.f(point.copy())
            arr = np.asarray(out)
            if arr.size != 1:
                raise ValueError(f"f must return a scalar, got an array of shape {arr.shape}")
            return arr.reshape(())[()]
        except NumericDerivativeError:
            raise
        except Exception as exc:
            raise NumericDerivativeError(
                f"f raised {type(exc).__name__} at {_describe(point.real, self.names)}: {exc}",
                point=dict(zip(self.names, point.real.tolist(), strict=True)),
            ) from exc

    def _call_many(self, points: np.ndarray) -> np.ndarray:
        try:
            out = np.asarray(self.f(points.copy()))
        except Exception as exc:
            raise NumericDerivativeError(
                f"f raised {type(exc).__name__} on a batch of {len(points)} points, the first "
                f"{_describe(points[0].real, self.names)}: {exc}",
                point=dict(zip(self.names, points[0].real.tolist(), strict=True)),
            ) from exc
        if out.shape != (len(points),):
            raise NumericDerivativeError(
                f"vectorized f must map ({len(points)}, P) points to shape ({len(points)},), got {out.shape}"
            )
        return out

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """``f`` at each row of ``points`` (``(M, P)``); returns ``(M,)``."""
        real = points.real
        if np.any(real <= self.lower) or np.any(real >= self.upper):  # pragma: no cover - a bug guard
            raise AssertionError("internal error: a stencil point lies outside the bounds")
        keys = [p.tobytes() for p in points]
        missing: dict[bytes, int] = {}
        for idx, key in enumerate(keys):
            if key not in self.cache and key not in missing:
                missing[key] = idx
        if missing:
            rows = np.array(list(missing.values()))
            if self.vectorized:
                values: Sequence[Any] = list(self._call_many(points[rows]))
            else:
                values = [self._call_one(points[r]) for r in rows]
            self.count += len(rows)
            self.cache.update(zip(missing.keys(), values, strict=True))
        return np.array([self.cache[k] for k in keys])


# --------------------------------------------------------------------------- Richardson


@np.errstate(all="ignore")
def _richardson(table: np.ndarray, rounding: np.ndarray, powers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Extrapolate each column of ``table`` (``(L, n)``, step halving down the rows).

    ``powers[m-1]`` (``(L-1, n)``) is the power of the step that column ``m`` removes.
    Returns the best extrapolant of each entry and its error estimate (Ridders' estimate
    plus the propagated rounding bound).
    """
    levels, n = table.shape
    best = table[-1].copy()
    best_err = np.full(n, np.inf)
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
        prev, prev_r = cur, cur_r
    return best, best_err


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


class _Stencils:
    """Builds the stencil points of every entry for the current steps and evaluates them."""

    def __init__(
        self, x: np.ndarray, h: np.ndarray, side: np.ndarray, ev: _Evaluator, levels: int, noise: float
    ) -> None:
        self.x, self.h, self.side, self.ev, self.noise = x, h, side, ev, noise
        self.t = 2.0 ** -np.arange(levels)

    def f0(self) -> float:
        return float(self.ev(self.x[None, :])[0])

    def _points(self, offsets: np.ndarray) -> np.ndarray:
        """``offsets`` ``(..., P)`` of ``h``-units at each level -> f at ``x + offsets * t * h``."""
        pts = self.x + offsets[None, :, :] * (self.t[:, None, None] * self.h[None, None, :])
        flat = pts.reshape(-1, self.x.size)
        return self.ev(flat).reshape(pts.shape[:-1])

    @np.errstate(all="ignore")  # a NaN/inf value is detected and retried, not warned about
    def diagonal(self, idx: np.ndarray, f0: float) -> tuple[np.ndarray, ...]:
        """Tables ``(L, n)`` of gradient and second-derivative estimates for parameters ``idx``."""
        size = self.x.size
        side = self.side[idx]
        central = side == 0
        # offsets: central uses +1/-1, one-sided uses s, 2s
        first = np.where(central, 1.0, side.astype(float))
        second = np.where(central, -1.0, 2.0 * side)
        eye = np.eye(size)[idx]
        fa = self._points(eye * first[:, None])  # (L, n)
        fb = self._points(eye * second[:, None])
        th = self.t[:, None] * self.h[idx][None, :]
        sg = np.where(central, 1.0, side)
        g = np.where(central, (fa - fb) / (2 * th), (-3 * f0 + 4 * fa - fb) / (2 * sg * th))
        d2 = np.where(central, (fa - 2 * f0 + fb) / th**2, (fb - 2 * fa + f0) / th**2)
        fmax = np.maximum(np.maximum(np.abs(fa), np.abs(fb)).max(axis=0), abs(f0))
        noise = np.maximum(NOISE_ULPS * EPS * fmax, self.noise)[None, :]
        g_round = np.where(central, 1.0, 4.0) * noise / th
        d2_round = 4.0 * noise / th**2
        m = np.arange(1, len(self.t))[:, None]
        g_pow = np.where(central[None, :], 2.0 * m, m + 1.0)
        d2_pow = np.where(central[None, :], 2.0 * m, 1.0 * m)
        return g, g_round, g_pow, d2, d2_round, d2_pow, np.concatenate([fa, fb]), noise

    @np.errstate(all="ignore")
    def mixed(self, pairs: np.ndarray, f0: float) -> tuple[np.ndarray, ...]:
        """Tables ``(L, n)`` of off-diagonal estimates for the index pairs ``pairs`` (``(n, 2)``)."""
        size = self.x.size
        i, j = pairs[:, 0], pairs[:, 1]
        si, sj = self.side[i], self.side[j]
        central = (si == 0) & (sj == 0)
        di = np.where(si == 0, 1.0, si)
        dj = np.where(sj == 0, 1.0, sj)
        eye = np.eye(size)
        up = eye[i] * di[:, None] + eye[j] * dj[:, None]
        f_pp = self._points(up)
        f_mm = self._points(np.where(central[:, None], -up, up))  # forward pairs: a repeat, cached
        f_i = self._points(eye[i] * di[:, None])
        f_j = self._points(eye[j] * dj[:, None])
        f_mi = self._points(np.where(central[:, None], -eye[i], eye[i] * di[:, None]))
        f_mj = self._points(np.where(central[:, None], -eye[j], eye[j] * dj[:, None]))
        tt = (self.t**2)[:, None] * (self.h[i] * self.h[j])[None, :]
        est_c = (f_pp + f_mm - f_i - f_mi - f_j - f_mj + 2 * f0) / (2 * tt)
        est_f = (f_pp - f_i - f_j + f0) / (di * dj * tt)
        est = np.where(central, est_c, est_f)
        stack = np.stack([f_pp, f_mm, f_i, f_j, f_mi, f_mj])
        fmax = np.maximum(np.abs(stack).max(axis=(0, 1)), abs(f0))
        noise = np.maximum(NOISE_ULPS * EPS * fmax, self.noise)[None, :]
        rounding = 4.0 * noise / tt
        m = np.arange(1, len(self.t))[:, None]
        powers = np.where(central[None, :], 2.0 * m, 1.0 * m)
        return est, rounding, powers, stack


def _nonfinite(values: np.ndarray) -> np.ndarray:
    """Columns (last axis) of a stack of function values holding a NaN/inf."""
    return ~np.all(np.isfinite(values.reshape(-1, values.shape[-1])), axis=0)


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
    vectorized: bool,
    levels: int,
    noise: float,
    second: bool,
) -> tuple[_Stencils, list[str], float]:
    if levels < 2:
        raise ValueError(f"levels must be at least 2 (one Richardson step), got {levels}")
    x, names_, h, side, lo, hi, h_near = _setup(x, names, step, lower, upper)
    ev = _Evaluator(f, names_, vectorized, lo, hi)
    if not (noise >= 0 and np.isfinite(noise)):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    st = _Stencils(x, h, side, ev, levels, float(noise))
    f0 = st.f0()
    if not np.isfinite(f0):
        raise NumericDerivativeError(
            f"f is not finite at the point itself, f{_describe(x, names_)} = {f0!r}",
            point=dict(zip(names_, x.tolist(), strict=True)),
        )
    _choose_near_bound(st, h_near, f0, second=second)
    return st, names_, f0


def _choose_near_bound(st: _Stencils, h_near: np.ndarray, f0: float, *, second: bool) -> None:
    """For each parameter near a bound, keep the better of two stencils.

    The default stencil (the full step; one-sided if the central one crosses the bound) suits
    a function smooth up to the bound; a central stencil with a quarter of the distance to the
    bound suits one that varies on the scale of that distance (``log theta`` near 0). Both are
    evaluated; the one whose Richardson error estimate (of the second derivative if
    ``second``, else of the first) is smaller is kept if the two agree within their error
    estimates, else the short central one: ``2 L`` extra evaluations per such parameter.
    """
    idx = np.flatnonzero(h_near > 0)
    if idx.size == 0:
        return
    one_sided = (st.side[idx].copy(), st.h[idx].copy())
    values, errors = [], []
    for side, h in (one_sided, (np.zeros(idx.size, dtype=int), h_near[idx])):
        st.side[idx], st.h[idx] = side, h
        gt, gr, gp, dt, dr, dp, vals, _ = st.diagonal(idx, f0)
        val, err = _richardson(dt, dr, dp) if second else _richardson(gt, gr, gp)
        values.append(val)
        errors.append(np.where(_nonfinite(vals), np.inf, err))
    # Two estimates that disagree beyond their error bars: the long one-sided step is out of
    # the asymptotic regime (its Ridders estimate is then meaningless), keep the short one.
    consistent = np.abs(values[0] - values[1]) <= errors[0] + errors[1]
    keep = consistent & (errors[0] <= errors[1])
    st.side[idx[keep]] = one_sided[0][keep]
    st.h[idx[keep]] = one_sided[1][keep]


def _diagonal_with_retry(
    st: _Stencils, names: list[str], f0: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    size = st.x.size
    g = np.empty(size)
    g_err = np.empty(size)
    d2 = np.empty(size)
    d2_err = np.empty(size)
    todo = np.arange(size)
    for attempt in range(MAX_RETRIES + 1):
        gt, gr, gp, dt, dr, dp, vals, _ = st.diagonal(todo, f0)
        bad = _nonfinite(vals)
        ok = ~bad
        if np.any(ok):
            g[todo[ok]], g_err[todo[ok]] = _richardson(gt[:, ok], gr[:, ok], gp[:, ok])
            d2[todo[ok]], d2_err[todo[ok]] = _richardson(dt[:, ok], dr[:, ok], dp[:, ok])
        todo = todo[bad]
        if todo.size == 0:
            break
        if attempt == MAX_RETRIES:
            i = int(todo[0])
            raise _fail(st.x, names, i, float(st.h[i]), f"the derivatives in {names[i]}")
        st.h[todo] /= RETRY_SHRINK
    return g, g_err, d2, d2_err


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
        vectorized: ``f`` evaluates a batch of points at once.
        levels: Richardson levels (steps ``h, h/2, ..., h/2^(levels-1)``).
        noise: absolute noise level of ``f`` beyond rounding (a simulator solved to a
            tolerance), used in the error estimate; default 0 (rounding only).

    Returns:
        :class:`GradientResult` with ``gradient``, ``error`` (``(P,)``) and ``evaluations``.

    Raises:
        NumericDerivativeError: ``f`` raised (chained; the message names the values), or
            stayed non-finite at a perturbed point after the retries with smaller steps.

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
        return _complex_gradient(f, x, names, vectorized)
    st, names_, f0 = _start(f, x, names, step, lower, upper, vectorized, levels, noise, second=False)
    g, g_err, _, _ = _diagonal_with_retry(st, names_, f0)
    return GradientResult(f0, g, g_err, st.ev.count)


def _complex_gradient(
    f: Callable[[np.ndarray], Any], x: Any, names: Sequence[str] | None, vectorized: bool
) -> GradientResult:
    x, names_, _, _, lo, hi, _ = _setup(x, names, None, None, None)
    h = COMPLEX_STEP * np.maximum(np.abs(x), 1.0)
    ev = _Evaluator(f, names_, vectorized, lo, hi)
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
    values = ev(points)
    f0 = float(np.real(ev(x.astype(np.complex128)[None, :])[0]))
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
) -> HessianResult:
    r"""Hessian :math:`\nabla^2 f(\theta)` and gradient of a black-box scalar function, with error estimates.

    Central differences (one-sided next to a bound) on the steps
    ``h, h/2, ..., h/2^(levels-1)``, Richardson-extrapolated entry by entry; the gradient
    comes from the same evaluations. Cost: :math:`1 + L(P^2 + P)` evaluations of ``f``
    for :math:`L` levels and no bounds hit (fewer when points repeat).

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
        noise: absolute noise level of ``f`` beyond rounding, used in the error estimate.

    Returns:
        :class:`HessianResult`: ``hessian`` and ``hessian_error`` ``(P, P)``, ``gradient``
        and ``gradient_error`` ``(P,)``, ``evaluations``.

    Raises:
        NumericDerivativeError: ``f`` raised (chained; the message names the values), or
            stayed non-finite at a perturbed point after the retries with smaller steps.

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
    st, names_, f0 = _start(f, x, names, step, lower, upper, vectorized, levels, noise, second=True)
    size = st.x.size
    g, g_err, d2, d2_err = _diagonal_with_retry(st, names_, f0)
    hess = np.diag(d2)
    hess_err = np.diag(d2_err)
    iu = np.triu_indices(size, k=1)
    todo = np.column_stack(iu)
    for attempt in range(MAX_RETRIES + 1):
        if todo.size == 0:
            break
        est, rounding, powers, stack = st.mixed(todo, f0)
        bad = _nonfinite(stack)
        ok = ~bad
        if np.any(ok):
            val, err = _richardson(est[:, ok], rounding[:, ok], powers[:, ok])
            pi, pj = todo[ok, 0], todo[ok, 1]
            hess[pi, pj] = hess[pj, pi] = val
            hess_err[pi, pj] = hess_err[pj, pi] = err
        todo = todo[bad]
        if todo.size == 0:
            break
        if attempt == MAX_RETRIES:
            i, j = int(todo[0, 0]), int(todo[0, 1])
            raise _fail(st.x, names_, i, float(st.h[i]), f"the mixed derivative in {names_[i]}, {names_[j]}")
        # Shrinking the steps of both parameters of a failed pair (the diagonal entries
        # already computed keep their values).
        st.h[np.unique(todo)] /= RETRY_SHRINK
    return HessianResult(f0, g, g_err, hess, hess_err, st.ev.count)


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
) -> JacobianResult:
    r"""Jacobian :math:`J_{na} = \partial f_n / \partial \theta_a` of a black-box vector function, with error.

    Every column uses the stencil of :func:`gradient`, applied to all outputs at once: the
    central difference :math:`(f(\theta + t h_a e_a) - f(\theta - t h_a e_a)) / (2 t h_a)`
    (one-sided next to a bound) on the steps ``h, h/2, ..., h/2^(levels-1)``,
    Richardson-extrapolated (Richardson 1911) entry by entry with Ridders' (1982) error
    estimate plus a rounding bound :math:`\propto \delta_{f_n} / (t h_a)` per output
    :math:`n`. Each call of ``f`` evaluates all :math:`N` outputs (all rows of a
    log-likelihood), so the cost is :math:`1 + 2 L P` calls when no bound is near. Within
    :math:`4 h_a` of a bound a central stencil with a quarter of the distance as step is tried
    as well and kept unless the default stencil agrees with it and reports a smaller error
    (as in :func:`gradient`; :math:`2L` more calls). A column whose outputs are not finite at
    a perturbed point is retried with a smaller step.

    Args:
        f: ``f(theta) -> array (N,)`` on a NumPy float64 vector ``(P,)``.
        x: the point :math:`\theta`, shape ``(P,)``.
        names, step, lower, upper, levels, noise: as for :func:`gradient`.

    Returns:
        :class:`JacobianResult` with ``value`` ``(N,)``, ``jacobian`` and ``error``
        ``(N, P)``, ``evaluations``.

    Raises:
        NumericDerivativeError: ``f`` raised (chained; the message names the values), returned
            a different shape, was not finite at ``x``, or stayed non-finite at a perturbed
            point after the retries with smaller steps.

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
    if levels < 2:
        raise ValueError(f"levels must be at least 2 (one Richardson step), got {levels}")
    if not (noise >= 0 and np.isfinite(noise)):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    x, names_, h, side, _, _, h_near = _setup(x, names, step, lower, upper)
    size = x.size
    calls = [0]
    shape: list[tuple[int, ...]] = []

    def call(point: np.ndarray) -> np.ndarray:
        calls[0] += 1
        try:
            out = np.asarray(f(point.copy()), dtype=np.float64)
        except NumericDerivativeError:
            raise
        except Exception as exc:
            raise NumericDerivativeError(
                f"f raised {type(exc).__name__} at {_describe(point, names_)}: {exc}",
                point=dict(zip(names_, point.tolist(), strict=True)),
            ) from exc
        if out.ndim != 1 or (shape and out.shape != shape[0]):
            raise NumericDerivativeError(
                f"f must return a vector of the same shape at every point; got {out.shape} at "
                f"{_describe(point, names_)}" + (f" (expected {shape[0]})" if shape else "")
            )
        shape.append(out.shape)
        return out

    f0 = call(x)
    if not np.all(np.isfinite(f0)):
        row = int(np.flatnonzero(~np.isfinite(f0))[0])
        raise NumericDerivativeError(
            f"f is not finite at the point itself: output {row} of f{_describe(x, names_)} is {f0[row]!r}",
            point=dict(zip(names_, x.tolist(), strict=True)),
        )
    n = f0.size
    t = 2.0 ** -np.arange(levels)
    m = np.arange(1, levels)[:, None]

    def column(i: int, s: int, h_i: float) -> tuple[np.ndarray, np.ndarray]:
        """Extrapolated column ``i`` with stencil side ``s`` (0: central) and base step ``h_i``."""
        for attempt in range(MAX_RETRIES + 1):
            th = t * h_i
            first, second = (1.0, -1.0) if s == 0 else (float(s), 2.0 * s)
            unit = np.eye(size)[i]
            with np.errstate(all="ignore"):
                fa = np.stack([call(x + first * tk * unit) for tk in th])  # (L, n)
                fb = np.stack([call(x + second * tk * unit) for tk in th])
            if np.all(np.isfinite(fa)) and np.all(np.isfinite(fb)):
                break
            if attempt == MAX_RETRIES:
                raise _fail(x, names_, i, h_i, f"the derivatives in {names_[i]}")
            h_i /= RETRY_SHRINK
        fmax = np.maximum(np.maximum(np.abs(fa), np.abs(fb)).max(axis=0), np.abs(f0))
        floor = np.maximum(NOISE_ULPS * EPS * fmax, noise)[None, :]
        tt = th[:, None]
        with np.errstate(all="ignore"):
            if s == 0:
                table = (fa - fb) / (2 * tt)
                rounding, powers = floor / tt, np.broadcast_to(2.0 * m, (levels - 1, n))
            else:
                table = (-3 * f0 + 4 * fa - fb) / (2 * s * tt)
                rounding, powers = 4.0 * floor / tt, np.broadcast_to(m + 1.0, (levels - 1, n))
        return _richardson(table, rounding, np.asarray(powers))

    jac = np.empty((n, size))
    err = np.empty((n, size))
    for i in range(size):
        value, error = column(i, int(side[i]), float(h[i]))
        if h_near[i] > 0:
            # Near a bound, also a central stencil with a quarter of the distance as step (a
            # function singular at the bound varies on that scale); keep the default stencil
            # only if the two agree within their errors and it reports the smaller error.
            short, short_err = column(i, 0, float(h_near[i]))
            consistent = np.all(np.abs(value - short) <= error + short_err)
            if not (consistent and np.max(error) <= np.max(short_err)):
                value, error = short, short_err
        jac[:, i], err[:, i] = value, error
    return JacobianResult(f0, jac, err, calls[0])
