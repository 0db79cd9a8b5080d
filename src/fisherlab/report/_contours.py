r"""Two-parameter profile log-likelihood on a grid, for the report's confidence-region panels.

For a pair :math:`(\theta_a, \theta_b)` the profile deviance is

.. math:: D(\theta_a, \theta_b) = 2\,[\min_{u_{-ab}} f(u) - f(\hat u)],

with :math:`f` the fit's objective (negative log-likelihood, or log-posterior)
on the unconstrained scale :math:`u`; the other coordinates are re-optimised
at every grid point by damped Newton steps (batched over grid points with
``jax.vmap``), started from the quadratic approximation's conditional optimum.
The likelihood-ratio region of level :math:`1-\alpha` is
:math:`\{D \le \chi^2_2(1-\alpha)\}`.

The grid lives on the unconstrained scale, tilted and stretched along the
pair's Wald ellipse there (so thin, strongly correlated regions are resolved),
and is mapped coordinate-wise to the user's parameters, so a positive
parameter's region never leaves the support. It extends 3.5 whitened units
from the estimate (the 95% region has radius 2.45): a likelihood far from
quadratic can have a region that the grid's edge cuts off, and the contour
then ends at the edge rather than closing.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from ..inference._result import FitResult

__all__ = ["ProfileGrid", "profile_grid"]

_NEWTON_STEPS = 30
_HALVINGS = 20
_NEWTON_TOL = 1e-5  # Newton decrement, in standard errors: deviance error ~ 1e-10
_OUTSIDE = 1e6  # deviance shown for points outside the support (f = inf)
_CHUNK_BYTES = 2e8  # memory allowed for one batch of per-row Hessians


class ProfileGrid(NamedTuple):
    """Deviance on a rectilinear grid in the user's parameters.

    Attributes:
        x: first parameter at each grid node, shape ``(n, n)`` (a structured, tilted grid:
            pass ``x, y, deviance`` to Matplotlib's ``contour``).
        y: second parameter at each grid node, shape ``(n, n)``.
        deviance: :math:`D` at each node, shape ``(n, n)``.
        max_decrement: largest final Newton decrement of the nuisance fits (0 when P = 2),
            over the points inside the support.
    """

    x: np.ndarray
    y: np.ndarray
    deviance: np.ndarray
    max_decrement: float


class BatchObjective:
    """The fit's objective, value, gradient and Hessian evaluated at many points ``u`` at once."""

    def __init__(self, result: FitResult) -> None:
        obj = result.objective
        self.source = obj.source
        p = np.asarray(result.u).size
        self.chunk = int(max(8, min(256, _CHUNK_BYTES // (8.0 * max(obj.data.n, 1) * (p * p + p)))))

    def value_and_grad(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.source.batch_value_and_grad(u)

    def hessian(self, u: np.ndarray) -> np.ndarray:
        return self.source.batch_hessian(u)


def _newton(batch: BatchObjective, u: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimise over the coordinates ``keep`` of every row of ``u`` (damped Newton, batched).

    Returns the minimum values (``inf`` outside the support) and the final Newton decrements.
    """
    u = u.copy()
    f, _ = batch.value_and_grad(u)
    delta = np.where(np.isfinite(f), np.inf, 0.0)
    if keep.size == 0:
        return f, np.zeros_like(f)
    active = np.isfinite(f)
    for _ in range(_NEWTON_STEPS):
        if not active.any():
            break
        _, g = batch.value_and_grad(u)
        h = batch.hessian(u)
        gk = g[:, keep]
        hk = h[:, keep][:, :, keep]
        w, v = np.linalg.eigh(hk)
        convex = w[:, 0] > 0
        safe_w = np.where(w > 0, w, 1.0)
        newton = np.einsum("mij,mj->mi", v, np.einsum("mji,mj->mi", v, gk) / safe_w)
        # not convex at this point: a gradient step scaled by the diagonal
        diag = np.abs(np.diagonal(hk, axis1=1, axis2=2))
        step = np.where(convex[:, None], newton, gk / np.maximum(diag, 1e-8))
        delta = np.where(
            active, np.where(convex, np.sqrt(np.maximum(np.sum(gk * newton, axis=1), 0.0)), np.inf), delta
        )
        active &= delta > _NEWTON_TOL
        t = np.where(active, 1.0, 0.0)
        pending = active.copy()
        for _ in range(_HALVINGS):
            if not pending.any():
                break
            trial = u.copy()
            trial[:, keep] -= t[:, None] * step
            f_trial, _ = batch.value_and_grad(trial)
            accept = pending & (f_trial <= f)
            u[accept] = trial[accept]
            f = np.where(accept, f_trial, f)
            pending &= ~accept
            t = np.where(pending, 0.5 * t, t)
        active &= ~pending  # no decrease found: as good as it gets in double precision
    return f, delta


def profile_grid(
    result: FitResult,
    a: int,
    b: int,
    *,
    n: int = 25,
    half_width: float = 3.5,
    deadline: float = np.inf,
    batch: BatchObjective | None = None,
) -> ProfileGrid | None:
    r"""Profile deviance of parameters ``a`` and ``b`` (indices into ``result.names``) on an ``n × n`` grid.

    Every grid point starts from the quadratic approximation's conditional
    optimum :math:`u_{-ab} = \hat u_{-ab} - H_{-ab,-ab}^{-1} H_{-ab,ab}\,\delta_{ab}`
    (or from :math:`\hat u_{-ab}` where that leaves the support), then takes
    damped Newton steps, all points of a chunk at once.

    Args:
        result: the fit.
        a: index of the first parameter.
        b: index of the second parameter.
        n: grid points per axis.
        half_width: the grid spans ``half_width`` units either side of the estimate in the
            whitened coordinates of the pair's observed covariance on the unconstrained scale
            (it contains the Wald region of radius ``half_width``).
        deadline: :func:`time.monotonic` value after which to give up.
        batch: a :class:`BatchObjective` of ``result`` to reuse across pairs.

    Returns:
        The :class:`ProfileGrid`, or ``None`` when the parameters do not map
        one-to-one to the fitting scale or the deadline passed.
    """
    aligned = result._elementwise_u()
    if not aligned:
        return None
    batch = BatchObjective(result) if batch is None else batch
    (ta, ja), (tb, jb) = aligned[a], aligned[b]
    u_hat = np.asarray(result.u, dtype=float)
    f0 = float(result.objective.value(u_hat))
    keep = np.array([k for k in range(u_hat.size) if k not in (ja, jb)], dtype=int)
    pair = np.array([ja, jb])

    # The grid follows the Wald ellipse of the pair on the fitting scale: u_pair = u_hat_pair + L (s, t),
    # L the Cholesky factor of the pair's covariance, so a thin, tilted region is still resolved.
    cov_pair = result.cov("observed", scale="unconstrained").matrix[np.ix_(pair, pair)]
    factor = np.linalg.cholesky(cov_pair)
    axis = np.linspace(-half_width, half_width, n)
    mesh_s, mesh_t = np.meshgrid(axis, axis)  # [i, j] = (axis[j], axis[i])
    offsets = np.stack([mesh_s.ravel(), mesh_t.ravel()], axis=1) @ factor.T
    points = np.tile(u_hat, (n * n, 1))
    points[:, pair] += offsets
    if keep.size:
        h = result.objective.hessian(u_hat)
        shift = points[:, pair] - u_hat[pair]
        try:
            slope = -np.linalg.solve(h[np.ix_(keep, keep)], h[np.ix_(keep, pair)])
            predicted = points.copy()
            predicted[:, keep] = u_hat[keep] + shift @ slope.T
        except np.linalg.LinAlgError:
            predicted = points
    else:
        predicted = points
    values = np.empty(n * n)
    decrements = np.empty(n * n)
    m = batch.chunk
    for lo in range(0, n * n, m):
        if time.monotonic() > deadline:
            return None
        hi = min(lo + m, n * n)
        start = predicted[lo:hi]
        pad = m - (hi - lo)  # fixed batch shape: one compilation
        start = np.concatenate([start, np.repeat(start[-1:], pad, axis=0)]) if pad else start
        f_start, _ = batch.value_and_grad(start)
        fallback = np.concatenate([points[lo:hi], np.repeat(points[hi - 1 : hi], pad, axis=0)])
        start = np.where(np.isfinite(f_start)[:, None], start, fallback)
        f, d = _newton(batch, start, keep)
        values[lo:hi], decrements[lo:hi] = f[: hi - lo], d[: hi - lo]
    inside = np.isfinite(values)
    dev = np.where(inside, 2.0 * (values - f0), _OUTSIDE).reshape(n, n)
    worst = float(np.max(decrements[inside])) if inside.any() else 0.0

    def user(t: object, grid: np.ndarray) -> np.ndarray:
        if t is None:
            return grid
        import jax.numpy as jnp

        return np.asarray(t(jnp.asarray(grid)), dtype=float)  # type: ignore[operator]

    x = user(ta, points[:, ja]).reshape(n, n)
    y = user(tb, points[:, jb]).reshape(n, n)
    return ProfileGrid(x, y, dev, worst)
