r"""Does the maximum-likelihood estimate exist? Recession directions of the fit's objective.

A fit can stop at a point where the optimiser sees a tiny gradient and a tiny curvature
although the log-likelihood has no maximum: it keeps rising, ever more slowly, along a
direction :math:`d` (a *recession direction*) as the parameters run to infinity, or to the
boundary of their support. Logistic regression with separation is the textbook case; a
Poisson group whose counts are all zero (:math:`\hat\beta_g \to -\infty`), a binomial group
with every trial a success, a Student-t whose degrees of freedom run to :math:`\infty` on
Gaussian data and a negative binomial whose :math:`\alpha` runs to 0 on data without
overdispersion are the same thing. Reporting such a point as an estimate with a standard
error of :math:`10^8` is a wrong answer, so :func:`find_recession` looks for the direction.

**The test.** Let :math:`f(u)` be the objective (negative log-likelihood on the fitting
scale), :math:`\hat u` the point reached and :math:`H = \nabla^2 f(\hat u)
= \sum_k \lambda_k v_k v_k^\top`. Along an eigenvector the quadratic model predicts
:math:`f(\hat u \pm c\,s_k v_k) - f(\hat u) = c^2/2` with :math:`s_k = \lambda_k^{-1/2}` (one
standard error along :math:`v_k`). At a genuine maximum, the rise over :math:`c = 1, 10, 100`
standard errors is of order :math:`0.5, 50, 5000` (heavier tails rise more slowly, but
they rise). Along a recession direction :math:`f` is flat or falling to rounding however far one
goes. A direction is declared a recession direction when, in one sign, :math:`f` rises by
less than :data:`FLAT` (0.05, a tenth of the quadratic prediction at one standard error)
at each of :math:`c = 1, 10, 100`, while in the other sign it does rise; :math:`f` flat in
both signs is a non-identified combination (collinear columns), which the singular-information
checks report instead. Directions with :math:`\lambda_k \le 0` are probed with the scale
:math:`1 + \|\hat u\|`, and so are the coordinate axes when :math:`H` itself is not finite
(a parameter so far out that its second derivatives overflow); so is a direction whose
:math:`\lambda_k` is zero to rounding but came out positive, when one standard error
:math:`s_k` steps out of the range where :math:`f` is finite (the sign of a rounding-level
eigenvalue depends on the machine and must not decide whether an estimate exists).

Cost: two evaluations of :math:`f` per eigen-direction tested (plus two more for each
suspicious one); at most :data:`MAX_DIRECTIONS` directions, those of the smallest
eigenvalues, are tested. A converged fit with N·P above :data:`ALL_SIZE` probes only
the directions whose curvature is below :data:`SCREEN` times the largest eigenvalue: at a
converged point a recession direction's curvature is of the order of the squared Newton
decrement (:math:`\lambda \approx \delta^2 < 10^{-16}` for the exponential tails of GLMs),
so this keeps the check to a few evaluations on big data. Fits that did not converge, and
smaller data, probe every direction.

References:
    S. J. Haberman (1974), *The Analysis of Frequency Data*, ch. 2 (existence of MLEs in
    log-linear models). A. Albert and J. A. Anderson (1984), "On the existence of maximum
    likelihood estimates in logistic regression models", *Biometrika* 71, 1-10.
    R. T. Rockafellar (1970), *Convex Analysis*, §8 (recession cones).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import scipy.linalg

from .._errors import EstimateAtInfinityError, FisherlabError
from ..backends import Backend
from ..data._chunks import StreamedData, in_parts
from ..data._prepare import Data
from ..params._pytree import flatten_params, param_names
from ._objective import Objective

__all__ = ["ALL_SIZE", "FLAT", "MAX_DIRECTIONS", "SCREEN", "Recession", "find_recession", "recession_error"]

#: A rise of f below this over c = 1, 10, 100 standard errors counts as flat (quadratic: 0.5, 50, 5000).
FLAT = 0.05
#: At most this many eigen-directions (the smallest eigenvalues) are probed.
MAX_DIRECTIONS = 32
_MULTIPLES = (1.0, 10.0, 100.0)
#: Up to this N·P (the cost of one evaluation of f, in row-parameter products) every direction is
#: probed; above, only those that pass the screen.
ALL_SIZE = 2e6
#: The screen: curvature at most this fraction of the largest eigenvalue.
SCREEN = 1e-8


@dataclasses.dataclass(frozen=True)
class Recession:
    """A direction along which the log-likelihood keeps rising.

    Attributes:
        direction: the unit vector :math:`d` on the fitting scale (``reparam.names_u`` order);
            the log-likelihood rises along ``+direction``.
        step: the farthest distance along ``direction`` probed (up to :math:`100\\,s`).
        rise: how much the log-likelihood rose over that distance (``>= -FLAT``).
    """

    direction: np.ndarray
    step: float
    rise: float


def _rise(obj: Objective, u: np.ndarray, f0: float, point: np.ndarray) -> float:
    """:math:`f(\\hat u) - f(u)`: the rise of the log-likelihood (``-inf`` where f is not finite)."""
    try:
        value = obj.value(point)
    except FisherlabError:
        return -np.inf
    return f0 - value if np.isfinite(value) else -np.inf


def _flat_ray(
    obj: Objective, u: np.ndarray, f0: float, v: np.ndarray, scale: float
) -> tuple[float, float] | None:
    """``(rise, distance)`` at the farthest probe if the log-likelihood stays flat along ``v``, else ``None``.

    The first probe (one standard error) must be finite; farther ones may leave the range where
    the model evaluates to a finite number (a concentration ``1/alpha`` overflowing as alpha
    underflows to 0): the ray is then judged on the probes before.
    """
    found: tuple[float, float] | None = None
    for c in _MULTIPLES:
        rise = _rise(obj, u, f0, u + c * scale * v)
        if not np.isfinite(rise) and found is not None:
            break
        if not rise >= -FLAT:
            return None
        found = (rise, c * scale)
    return found


def _screen(lam: np.ndarray, size: float, every: bool) -> np.ndarray:
    """The eigen-directions worth probing: all of them, or above ``ALL_SIZE`` (N·P) the flat ones."""
    if every or size <= ALL_SIZE or lam.size == 0:
        return np.ones(lam.size, dtype=bool)
    top = float(np.max(np.abs(lam)))
    return (lam <= SCREEN * top) | ~np.isfinite(lam)


def find_recession(
    obj: Objective, u: np.ndarray, hess: np.ndarray | None = None, *, every: bool = True
) -> Recession | None:
    """A recession direction of ``obj`` at ``u``, or ``None`` when none is found (see the module doc).

    Args:
        obj: the fit's objective.
        u: the point reached, on the fitting scale.
        hess: :math:`\\nabla^2 f(u)` if already computed.
        every: probe every eigen-direction (up to :data:`MAX_DIRECTIONS`). With ``False`` and
            more than :data:`ALL_SIZE` rows × parameters, only directions whose curvature is below
            :data:`SCREEN` times the largest are probed.
    """
    u = np.asarray(u, dtype=np.float64)
    f0 = obj.value(u)
    if not np.isfinite(f0) or u.size == 0:
        return None
    h = obj.hessian(u) if hess is None else np.asarray(hess)
    fallback = 1.0 + float(np.linalg.norm(u))
    if np.all(np.isfinite(h)):
        k = min(u.size, MAX_DIRECTIONS)
        lam, vecs = scipy.linalg.eigh(0.5 * (h + h.T), subset_by_index=[0, k - 1])
    else:  # the Hessian over/underflowed (a parameter far out): probe the coordinate axes
        lam, vecs = np.zeros(min(u.size, MAX_DIRECTIONS)), np.eye(u.size)[:, :MAX_DIRECTIONS]
    keep = _screen(lam, float(obj.data.n) * u.size, every)
    for lam_k, v in zip(lam[keep], vecs.T[keep], strict=True):
        scale = 1.0 / np.sqrt(lam_k) if lam_k > 0 else fallback
        if not np.isfinite(scale):
            scale = fallback
        # Cheap screen at one standard error (the quadratic model predicts a rise of -0.5).
        up = _rise(obj, u, f0, u + scale * v)
        down = _rise(obj, u, f0, u - scale * v)
        if scale > fallback and not (np.isfinite(up) and np.isfinite(down)):
            # A curvature that is zero to rounding but came out positive (log alpha -> -inf: the
            # "standard error" is 1e6 and both probes leave the range where f is finite): probe on
            # the scale of u, as for a curvature that came out <= 0.
            scale = fallback
            up = _rise(obj, u, f0, u + scale * v)
            down = _rise(obj, u, f0, u - scale * v)
        flat_up, flat_down = up >= -FLAT, down >= -FLAT
        if flat_up == flat_down:  # curved both ways (a maximum), or flat both ways (not identified)
            continue
        sign = 1.0 if flat_up else -1.0
        flat = _flat_ray(obj, u, f0, sign * v, scale)
        if flat is None:
            continue
        # The other sign must really fall off (otherwise: a flat, non-identified combination).
        if _rise(obj, u, f0, u - sign * flat[1] * v) >= -FLAT:
            continue
        return Recession(direction=sign * v, step=flat[1], rise=float(flat[0]))
    return None


def _limit(before: float, after: float) -> str:
    """Where a parameter goes along the ray (probed very far): ``+∞``, ``−∞`` or its finite bound."""
    if not np.isfinite(after) or abs(after) > 1e6 * max(1.0, abs(before)):
        return "+∞" if after > before else "−∞"
    return f"{after:.6g}"


def _rows_text(rows: np.ndarray) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:8])
    return shown + (", ..." if rows.size > 8 else "")


def _cause(
    backend: Backend, data: Data | StreamedData, params: Any, near: Any, back: Any
) -> tuple[str, list[int]]:
    """The rows the direction moves, and what they share (one ``y`` value; where their means go).

    A row moves when its log-likelihood one probe back (``back``, where the affected rows fall
    off) differs from its value at the estimate; rows the direction does not touch are
    bit-identical. A streamed source is read chunk by chunk, rows counted from its start.
    """
    moved_rows: list[np.ndarray] = []
    ys: set[float] = set()
    ends: set[float] = set()
    plain_y, with_mean = True, backend.model.kind == "distribution"
    for start, part in in_parts(data):
        try:
            moved = np.flatnonzero(backend.loglik(params, part) != backend.loglik(back, part))
        except FisherlabError:
            return "", []
        moved_rows.append(start + moved)
        y = part.y
        plain_y = plain_y and not isinstance(y, dict | list | tuple) and np.ndim(y) == 1
        if plain_y and moved.size:
            ys.update(np.unique(np.asarray(y)[moved]).tolist())
        with_mean = with_mean and part.x is not None
        if with_mean and moved.size:
            try:
                mean = np.asarray(backend.rows_distribution(near, part.x).mean, dtype=np.float64)
            except (FisherlabError, NotImplementedError, AttributeError, TypeError, ValueError):
                mean = None
            if mean is None or mean.size != part.n:
                with_mean = False
            else:
                ends.update(np.unique(np.round(mean.reshape(-1)[moved], 6)).tolist())
    rows = np.concatenate(moved_rows)
    if rows.size == 0 or rows.size == data.n:
        return "", [int(r) for r in rows]
    text = f"; it moves {rows.size} of {data.n} rows (rows {_rows_text(rows)})"
    if plain_y and len(ys) == 1:
        text += f", and all of them have y = {next(iter(ys)):g}"
    if with_mean and len(ends) == 1:
        text += f": their fitted mean runs to {next(iter(ends)):g}"
    return text, [int(r) for r in rows]


#: The distance (in standard errors along the direction) at which the limits are read off.
_FAR = 1e8


def recession_error(
    obj: Objective, backend: Backend, params: Any, found: Recession, lead: str = ""
) -> EstimateAtInfinityError:
    """The :class:`~fisherlab.EstimateAtInfinityError` for ``found``: parameters, limits, rows.

    ``lead`` (a more specific diagnosis, e.g. separation) opens the message when given.
    """
    u = np.asarray(obj.reparam.to_unconstrained(params))
    names = param_names(params)
    theta = np.asarray(flatten_params(params)[0], dtype=np.float64)
    probe = obj.reparam.to_params(u + found.step * found.direction)
    limit = obj.reparam.to_params(u + _FAR * found.step * found.direction)
    near = np.asarray(flatten_params(probe)[0], dtype=np.float64)
    far = np.asarray(flatten_params(limit)[0], dtype=np.float64)
    if found.direction.size == theta.size:  # elementwise transforms: coordinates match names
        weight = np.abs(found.direction)
        moving = np.flatnonzero(weight > 1e-3 * weight.max())
    else:
        weight = np.abs(near - theta) / (1.0 + np.abs(theta))
        moving = np.flatnonzero(weight > 1e-6 * weight.max())
    order = moving[np.argsort(-weight[moving])]
    limits = ", ".join(f"{names[i]} → {_limit(theta[i], far[i])}" for i in order[:6])
    more = f" (and {order.size - 6} more)" if order.size > 6 else ""
    # The rows: along the direction without its rounding-level components (an eigenvector of a
    # coupled Hessian mixes in a little of every coordinate, which would touch every row).
    main = found.direction
    if main.size == theta.size:
        main = np.where(np.abs(main) > 1e-3 * np.max(np.abs(main)), main, 0.0)
    back = obj.reparam.to_params(u - found.step * main)
    cause, rows = _cause(backend, obj.data, params, obj.reparam.to_params(u + found.step * main), back)
    names_u = obj.reparam.names_u
    direction = (
        {names_u[i]: float(found.direction[i]) for i in np.argsort(-np.abs(found.direction))}
        if len(names_u) == found.direction.size
        else {}
    )
    direction = {k: v for k, v in direction.items() if abs(v) > 1e-6}
    opening = f"{lead}; " if lead else "the maximum-likelihood estimate does not exist: "
    return EstimateAtInfinityError(
        f"{opening}the log-likelihood keeps rising as {limits}{more} (by {max(found.rise, 0.0):.2g} "
        f"over {found.step:.3g} units of the fitting scale: flat to rounding){cause}. A finite estimate "
        "here would carry a meaningless standard error; drop or merge the rows or levels responsible, "
        "fix the parameter at its limit, or add a prior (fl.fit(..., prior=...)) for a finite MAP estimate",
        direction=direction,
        rows=rows,
    )
