r"""Setting up one call: the point, the base steps, the stencil of each parameter near a bound.

**Bounds.** With ``lower``/``upper`` (open bounds: the function is never evaluated
on or beyond them), a parameter whose central stencil :math:`\theta_i \pm h_i` does not
fit uses a one-sided stencil towards the interior (:mod:`fisherlab.numeric._stencils`). If
even the one-sided stencil does not fit, the step shrinks to fit. A parameter within
:math:`4 h_i` of a bound also tries a central stencil with a quarter of the distance as step
(for a function singular at the bound, such as :math:`\log\theta` near 0) and keeps it
unless the default stencil agrees with it and reports a smaller error (for :math:`N > 1`
outputs: agrees in every output and reports a smaller worst error).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

import numpy as np

from .._errors import InvalidOptionError, InvalidParameterError, NumericDerivativeError
from ._constants import NEAR_BOUND, RELATIVE_STEP
from ._evaluator import _describe, _Evaluator
from ._executor import _Pool
from ._richardson import _richardson
from ._stencils import _Stencils


def _per_parameter(value: Any, size: int, name: str) -> np.ndarray:
    """``value`` (a number, or one per parameter) as ``(size,)`` floats."""
    try:
        return np.broadcast_to(np.asarray(value, dtype=np.float64), (size,))
    except (TypeError, ValueError):
        raise InvalidOptionError(
            f"{name} must be a number or one number per parameter ({size}), got {value!r}"
        ) from None


def _as_bounds(bound: Any, default: float, size: int, name: str) -> np.ndarray:
    if bound is None:
        return np.full(size, default)
    arr = _per_parameter(bound, size, name).copy()
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
        raise InvalidOptionError(f"{len(names)} names for {size} parameters")
    if not np.all(np.isfinite(x)):
        bad = int(np.flatnonzero(~np.isfinite(x))[0])
        raise InvalidParameterError(f"parameter {names[bad]} = {x[bad]} is not finite")
    lo = _as_bounds(lower, -np.inf, size, "lower")
    hi = _as_bounds(upper, np.inf, size, "upper")
    outside = np.flatnonzero(~((lo < x) & (x < hi)))
    if outside.size:
        i = int(outside[0])
        raise InvalidParameterError(
            f"parameter {names[i]} = {x[i]!r} is not strictly inside its bounds ({lo[i]!r}, {hi[i]!r})"
        )
    h = RELATIVE_STEP * np.maximum(np.abs(x), 1.0)
    if step is not None:
        given = _per_parameter(step, size, "step")
        chosen = ~np.isnan(given)
        if not np.all((given[chosen] > 0) & np.isfinite(given[chosen])):
            raise InvalidOptionError(f"step must be positive and finite (NaN: the default), got {step!r}")
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
        raise InvalidOptionError(f"levels must be at least 2 (one Richardson step), got {levels}")
    if not (noise >= 0 and np.isfinite(noise)):
        raise InvalidOptionError(f"noise must be a finite number >= 0, got {noise!r}")
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
