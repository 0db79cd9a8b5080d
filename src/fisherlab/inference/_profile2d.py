r"""Two-parameter profile deviance on a grid: the joint likelihood-ratio region of a pair.

For a pair :math:`(\theta_a, \theta_b)` the profile deviance is

.. math:: D(\theta_a, \theta_b) = 2\,[\min_{u_{-ab}} f(u) - f(\hat u)],

with :math:`f` the fit's objective (negative log-likelihood, or negative log-posterior,
:class:`~fisherlab.inference._objective.Objective`) on the unconstrained scale :math:`u`.
The other coordinates are re-optimised at every grid point by the damped Newton routine
batched over grid points (:func:`~fisherlab.inference._newton.newton_batch`, on the
objective's batch methods), started from the quadratic approximation's conditional optimum.
The likelihood-ratio region of level :math:`1-\alpha` is :math:`\{D \le \chi^2_2(1-\alpha)\}`
(two degrees of freedom; Wilks 1938), the 2-D analogue of the profile intervals of
:mod:`fisherlab.inference._profile`.

The grid lives on the unconstrained scale, tilted and stretched along the pair's Wald
ellipse there (so thin, strongly correlated regions are resolved), and is mapped
coordinate-wise to the user's parameters, so a positive parameter's region never leaves
the support. By default it extends 3.5 whitened units from the estimate (the 95% region
has radius 2.45): a likelihood far from quadratic can have a region that the grid's edge
cuts off, and the contour then ends at the edge rather than closing (the report widens
the grid and retries).

Grid points are re-optimised in chunks of a fixed size (the last one padded), so a
compiled batch kernel is built once and the per-point Hessians of a chunk,
:math:`M \cdot N (P^2 + P)` doubles with :math:`M` the chunk size, stay within
about 200 MB.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .._errors import InvalidOptionError
from .._options import count, positive_number
from .._precision import float64, float64_methods
from ._newton import newton_batch

if TYPE_CHECKING:
    from ._result import FitResult

__all__ = ["ProfileGrid", "profile_grid"]

_NEWTON_STEPS = 30
_HALVINGS = 20
_NEWTON_TOL = 1e-5  # Newton decrement, in standard errors: deviance error ~ 1e-10
_OUTSIDE = 1e6  # deviance shown for points outside the support (f = inf)
_CHUNK_BYTES = 2e8  # memory allowed for one batch of per-row Hessians
_CHUNK_MIN, _CHUNK_MAX = 8, 256  # grid points per batch


@float64_methods
class ProfileGrid(NamedTuple):
    """Profile deviance on a structured grid in the user's parameters.

    Attributes:
        x: first parameter at each grid node, shape ``(n, n)`` (a structured, tilted grid:
            pass ``x, y, deviance`` to Matplotlib's ``contour``).
        y: second parameter at each grid node, shape ``(n, n)``.
        deviance: :math:`D` at each node, shape ``(n, n)`` (``1e6`` outside the support).
        max_decrement: largest final Newton decrement of the nuisance fits (0 when P = 2),
            over the points inside the support.
    """

    x: np.ndarray
    y: np.ndarray
    deviance: np.ndarray
    max_decrement: float


def _chunk_size(result: FitResult) -> int:
    """Grid points per batch: per-row Hessians of one batch within ``_CHUNK_BYTES``."""
    p = np.asarray(result.u).size
    n_rows = max(result.objective.data.n, 1)
    return int(max(_CHUNK_MIN, min(_CHUNK_MAX, _CHUNK_BYTES // (8.0 * n_rows * (p * p + p)))))


@float64
def profile_grid(
    result: FitResult,
    a: int,
    b: int,
    *,
    n: int = 25,
    half_width: float = 3.5,
    deadline: float = np.inf,
) -> ProfileGrid | None:
    r"""Profile deviance of parameters ``a`` and ``b`` (indices into ``result.names``) on an ``n × n`` grid.

    .. math:: D(\theta_a, \theta_b) = 2\,[\min_{u_{-ab}} f(u) - f(\hat u)]

    (see the module docstring). The grid nodes are
    :math:`u_{ab} = \hat u_{ab} + L\,(s, t)` with :math:`L` the Cholesky factor of the pair's
    observed covariance on the unconstrained scale and :math:`s, t` on an even grid of
    ``[-half_width, half_width]``. Every node starts from the quadratic approximation's
    conditional optimum :math:`u_{-ab} = \hat u_{-ab} - H_{-ab,-ab}^{-1} H_{-ab,ab}\,\delta_{ab}`
    (or from :math:`\hat u_{-ab}` where that leaves the support), then takes damped Newton
    steps (:func:`~fisherlab.inference._newton.newton_batch`) until the decrement is below
    ``1e-5`` standard errors (a deviance error of about ``1e-10``), all nodes of a chunk at
    once. The objective's batch methods are vectorised for autodiff models
    (:attr:`~fisherlab.FitResult.vectorized`); for a numeric model they loop over the nodes,
    which costs hundreds of refits.

    Args:
        result: the fit.
        a: index of the first parameter.
        b: index of the second parameter.
        n: grid points per axis.
        half_width: the grid spans ``half_width`` units either side of the estimate in the
            whitened coordinates of the pair's observed covariance on the unconstrained scale
            (it contains the Wald region of radius ``half_width``).
        deadline: :func:`time.monotonic` value after which to give up.

    Returns:
        The :class:`ProfileGrid`, or ``None`` when the parameters do not map
        one-to-one to the fitting scale (:meth:`~fisherlab.FitResult.elementwise_transforms`
        is empty) or the deadline passed.

    Raises:
        InvalidOptionError: ``a``/``b`` out of range or equal, ``n < 2``, ``half_width`` not > 0.
        FisherlabArgumentError: ``a``, ``b`` or ``n`` not integers, ``half_width`` not a number.

    Examples:
        >>> import fisherlab as fl, jax.numpy as jnp, numpy as np
        >>> from fisherlab.inference import profile_grid
        >>> rng = np.random.default_rng(0)
        >>> x = np.column_stack([np.ones(50), rng.normal(size=50)])
        >>> y = x @ np.array([1.0, 0.5]) + rng.normal(size=50)
        >>> m = fl.Model(lambda th, x: fl.dist.Normal(x @ th["beta"], 1.0))
        >>> res = fl.fit(m, y, x, init={"beta": jnp.zeros(2)})
        >>> pg = profile_grid(res, 0, 1, n=5, half_width=2.0)
        >>> pg.deviance.shape, round(float(pg.deviance[2, 2]), 12)  # the estimate at the centre
        ((5, 5), 0.0)
        >>> round(float(pg.deviance[0, 2]), 6)  # a quadratic likelihood: D = s^2 + t^2
        4.0

    References:
        Wilks, S. S. (1938). The large-sample distribution of the likelihood ratio for testing
        composite hypotheses. *Ann. Math. Statist.* 9(1), 60-62.
    """
    p = len(result.names)
    a = count(a, "profile_grid: a (a parameter index)", 0)
    b = count(b, "profile_grid: b (a parameter index)", 0)
    if a >= p or b >= p or a == b:
        raise InvalidOptionError(
            f"profile_grid: a={a} and b={b} must be two different indices into the {p} parameters "
            f"{result.names}"
        )
    n = count(n, "profile_grid: n (grid points per axis)", 2)
    positive_number(half_width, "profile_grid: half_width")
    aligned = result.elementwise_transforms()
    if not aligned:
        return None
    source = result.objective.source
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
    m = _chunk_size(result)
    for lo in range(0, n * n, m):
        if time.monotonic() > deadline:
            return None
        hi = min(lo + m, n * n)
        start = predicted[lo:hi]
        pad = m - (hi - lo)  # fixed batch shape: one compilation
        start = np.concatenate([start, np.repeat(start[-1:], pad, axis=0)]) if pad else start
        f_start, _ = source.batch_value_and_grad(start)
        fallback = np.concatenate([points[lo:hi], np.repeat(points[hi - 1 : hi], pad, axis=0)])
        start = np.where(np.isfinite(f_start)[:, None], start, fallback)
        f, d = newton_batch(source, start, keep, tol=_NEWTON_TOL, max_steps=_NEWTON_STEPS, halvings=_HALVINGS)
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
