r"""One damped Newton routine: the polish of every fit, the profiles' inner fits, the 2-D contours.

For an objective :math:`f` with gradient :math:`g` and Hessian :math:`H` at :math:`u`, the
Newton step is :math:`\Delta = H^{-1} g` and the Newton decrement
:math:`\delta = \sqrt{g^\top H^{-1} g}` is the distance to the optimum in standard-error
units (scale-free; :math:`\delta^2/2` is the predicted decrease of :math:`f`). Steps are
damped by halving until :math:`f` does not increase beyond its rounding, and the loop stops
when :math:`\delta` is below the tolerance, when no decrease is found, or after ``max_steps``.

:func:`newton` minimises over a subset ``keep`` of the coordinates (all by default; the
others held fixed: a profile). :func:`newton_batch` does the same for many starting points
at once (the 2-D profile grid), with a gradient step scaled by the diagonal where the
Hessian is not positive definite.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = ["decrement", "newton", "newton_batch"]

#: Smallest step fraction tried by the halving line search.
MIN_STEP = 1e-8
#: Below this Newton decrement full steps are taken without the line search (see ``newton``).
QUADRATIC = 1e-3


class _Objective(Protocol):
    def value(self, u: np.ndarray) -> float: ...
    def grad(self, u: np.ndarray) -> np.ndarray: ...
    def hessian(self, u: np.ndarray) -> np.ndarray: ...
    def tolerance(self, u: np.ndarray, tol: float) -> float: ...


def decrement(grad: np.ndarray, hess: np.ndarray) -> tuple[float, np.ndarray | None]:
    r"""Newton decrement :math:`\sqrt{g^\top H^{-1} g}` and step :math:`H^{-1} g`; inf if H not PD."""
    try:
        factor = np.linalg.cholesky(hess)
    except np.linalg.LinAlgError:
        return float("inf"), None
    w = np.linalg.solve(factor, grad)
    step = np.linalg.solve(factor.T, w)
    return float(np.sqrt(w @ w)), step


def newton(
    obj: _Objective, u: np.ndarray, tol: float, *, keep: np.ndarray | None = None, max_steps: int = 20
) -> tuple[np.ndarray, float, int]:
    """Damped Newton steps over the coordinates ``keep`` of ``u`` until the decrement is below the threshold.

    The threshold is ``obj.tolerance(u, tol)`` (``tol``, or the floor set by the gradient's
    own error). Returns the point, the final decrement and the number of steps taken.
    """
    u = np.asarray(u, dtype=np.float64).copy()
    idx = np.arange(u.size) if keep is None else np.asarray(keep, dtype=int)

    def local(point: np.ndarray) -> tuple[float, np.ndarray | None]:
        g, h = obj.grad(point)[idx], obj.hessian(point)[np.ix_(idx, idx)]
        return decrement(g, h)

    steps = 0
    delta, step = local(u)
    while delta > obj.tolerance(u, tol) and step is not None and steps < max_steps:
        f0 = obj.value(u)
        # Near the optimum the predicted decrease (delta^2 / 2) is below the rounding of f:
        # accept steps that do not increase f beyond that rounding. f is a sum over rows, whose
        # rounding (~eps * sum |l_i|) can exceed eps * |f| when the terms cancel; a full step
        # deep in the quadratic regime (delta <= QUADRATIC) moves less than QUADRATIC standard
        # errors and cannot raise f by more than ~delta^2 in exact arithmetic: it is taken.
        slack = 8.0 * np.finfo(float).eps * max(1.0, abs(f0))
        t = 1.0
        if delta <= QUADRATIC:
            trial = u.copy()
            trial[idx] -= step
            if np.isfinite(obj.value(trial)):
                u = trial
                steps += 1
                delta, step = local(u)
                continue
        while t > MIN_STEP:
            trial = u.copy()
            trial[idx] -= t * step
            if obj.value(trial) <= f0 + slack:
                break
            t *= 0.5
        else:
            break
        u = trial
        steps += 1
        delta, step = local(u)
    return u, delta, steps


class _BatchObjective(Protocol):
    def batch_value_and_grad(self, us: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
    def batch_hessian(self, us: np.ndarray) -> np.ndarray: ...


def newton_batch(
    obj: _BatchObjective,
    u: np.ndarray,
    keep: np.ndarray,
    *,
    tol: float,
    max_steps: int = 30,
    halvings: int = 20,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise over the coordinates ``keep`` of every row of ``u`` ``(M, P)`` at once (damped Newton).

    Returns the minimum values ``(M,)`` (``inf`` outside the support) and the final Newton
    decrements (``0`` when ``keep`` is empty).
    """
    u = np.asarray(u, dtype=np.float64).copy()
    f, _ = obj.batch_value_and_grad(u)
    delta = np.where(np.isfinite(f), np.inf, 0.0)
    if keep.size == 0:
        return f, np.zeros_like(f)
    active = np.isfinite(f)
    for _ in range(max_steps):
        if not active.any():
            break
        _, g = obj.batch_value_and_grad(u)
        h = obj.batch_hessian(u)
        gk = g[:, keep]
        hk = h[:, keep][:, :, keep]
        w, v = np.linalg.eigh(hk)
        convex = w[:, 0] > 0
        safe_w = np.where(w > 0, w, 1.0)
        step_newton = np.einsum("mij,mj->mi", v, np.einsum("mji,mj->mi", v, gk) / safe_w)
        # not convex at this point: a gradient step scaled by the diagonal
        diag = np.abs(np.diagonal(hk, axis1=1, axis2=2))
        step = np.where(convex[:, None], step_newton, gk / np.maximum(diag, 1e-8))
        delta = np.where(
            active,
            np.where(convex, np.sqrt(np.maximum(np.sum(gk * step_newton, axis=1), 0.0)), np.inf),
            delta,
        )
        active &= delta > tol
        t = np.where(active, 1.0, 0.0)
        pending = active.copy()
        for _ in range(halvings):
            if not pending.any():
                break
            trial = u.copy()
            trial[:, keep] -= t[:, None] * step
            f_trial, _ = obj.batch_value_and_grad(trial)
            accept = pending & (f_trial <= f)
            u[accept] = trial[accept]
            f = np.where(accept, f_trial, f)
            pending &= ~accept
            t = np.where(pending, 0.5 * t, t)
        active &= ~pending  # no decrease found: as good as it gets in double precision
    return f, delta
