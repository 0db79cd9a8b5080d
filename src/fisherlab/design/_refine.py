r"""Designs off the candidate grid: support points moved within bounds, and exact n-run designs.

**Continuous refinement** (``bounds=``): the optimal design on the candidates has its support
on grid points; the optimum over the box may lie between them (the Michaelis–Menten design's
inner point, :math:`x^* = K x_{\max}/(2K + x_{\max})`). Starting from the grid's design, the
support points' coordinates and the weights are optimised in turn: L-BFGS-B (SciPy, bounded,
exact gradients by autodiff through :math:`I(x)`) on the points with the weights held, then
Newton on the weights (:func:`._engine.newton`); points that meet merge. The equivalence
theorem is then checked on the whole box: the sensitivity on every candidate, then maximised
locally (L-BFGS-B) from the best candidates; a point above the bound joins the support and the
refinement repeats (column generation in the continuum).

**Exact designs** (``n=``): ``n`` runs, :math:`w_j = n_j/n`. The approximate optimum is rounded by
the efficient apportionment of Pukelsheim & Rieder (1992), then improved by exchanges (Fedorov
1972): the single move of one run from a design point to a candidate that most improves the
criterion, all candidates scored at once, repeated while the criterion improves; with
``bounds=`` the ``n`` runs' coordinates are then optimised as above, weights held at ``1/n``.

References:
    F. Pukelsheim, S. Rieder (1992). Efficient rounding of approximate designs. Biometrika 79.
    V. V. Fedorov (1972). Theory of Optimal Experiments. Academic Press.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from .._options import DesignCriterion
from ._criteria import Spec, psi
from ._engine import DesignProblem, gradients, newton, sensitivities, state
from ._space import PointSpace

__all__ = ["apportion", "exchange", "merge_points", "move_points", "refine", "worst_point"]

# Rounds of (points, weights) alternation and of continuum column generation.
REFINE_ROUNDS = 30
# Support points closer than this fraction of the box's width are one point.
MERGE = 1e-7
# Candidates from which the sensitivity is maximised locally over the box.
LOCAL_STARTS = 5


def move_points(
    space: PointSpace, xs: np.ndarray, w: np.ndarray, spec: Spec, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Maximise the objective over the points' coordinates ``(m, d)``, weights held (L-BFGS-B)."""
    shape = xs.shape

    def negative(z: np.ndarray) -> Any:
        value, grad = space.objective(z.reshape(shape), w, spec)
        if not np.isfinite(value):
            return (np.inf, np.zeros_like(z)) if grad is not None else np.inf
        return (-value, -grad.ravel()) if grad is not None else -value

    box = np.tile(np.stack([lo, hi], 1), (shape[0], 1))
    res = scipy.optimize.minimize(
        negative,
        xs.ravel(),
        jac=bool(space.autodiff),
        method="L-BFGS-B",
        bounds=box,
        options={"ftol": 1e-16, "gtol": 1e-13, "maxiter": 1000},
    )
    return np.clip(res.x.reshape(shape), lo, hi)


def merge_points(xs: np.ndarray, w: np.ndarray, width: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep_x: list[np.ndarray] = []
    keep_w: list[float] = []
    for x, wi in zip(xs, w, strict=True):
        for j, y in enumerate(keep_x):
            if np.all(np.abs(x - y) <= MERGE * width):
                keep_w[j] += wi
                break
        else:
            keep_x.append(x)
            keep_w.append(float(wi))
    return np.array(keep_x), np.array(keep_w)


def worst_point(
    space: PointSpace,
    spec: Spec,
    xs: np.ndarray,
    w: np.ndarray,
    grid: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> tuple[np.ndarray, float, float]:
    """The point of the box with the largest sensitivity, that sensitivity, and the bound."""
    problem = DesignProblem(space.factors(space.rows(xs)), space.pi, spec)
    _, d_support, bound = state(problem, w)
    grads, _ = gradients(problem, w)
    grid_problem = DesignProblem(space.factors(space.rows(grid)), space.pi, spec)
    d_grid = sensitivities(grid_problem, grads)
    starts = grid[np.argsort(-d_grid)[:LOCAL_STARTS]]
    best_x, best = grid[int(np.argmax(d_grid))], float(np.max(d_grid))
    for x0 in [*starts, *xs]:
        res = scipy.optimize.minimize(
            lambda z: _negative_sensitivity(space, z, grads),
            x0,
            jac=bool(space.autodiff),
            method="L-BFGS-B",
            bounds=np.stack([lo, hi], 1),
            options={"ftol": 1e-15, "gtol": 1e-12},
        )
        if -float(res.fun) > best:
            best_x, best = np.clip(res.x, lo, hi), -float(res.fun)
    return best_x, max(best, float(np.max(d_support))), bound


def _negative_sensitivity(space: PointSpace, z: np.ndarray, grads: np.ndarray) -> Any:
    value, grad = space.sensitivity(z, grads)
    return (-value, -grad) if grad is not None else -value


def refine(
    space: PointSpace,
    spec: Spec,
    xs: np.ndarray,
    w: np.ndarray,
    grid: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    tol: float,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Continuous refinement of an approximate design (module docstring).

    Returns:
        ``(points (m, d), weights, largest sensitivity on the box, bound)``.
    """
    width = hi - lo
    best, bound = math.inf, 0.0
    for _ in range(REFINE_ROUNDS):
        previous = -math.inf
        for _ in range(REFINE_ROUNDS):
            xs = move_points(space, xs, w, spec, lo, hi)
            xs, w = merge_points(xs, w, width)
            problem = DesignProblem(space.factors(space.rows(xs)), space.pi, spec)
            w = newton(problem, np.maximum(w, 1e-3 / w.size))
            xs, w = xs[w > 0], w[w > 0]
            value = space.objective(xs, w, spec)[0]
            if value <= previous + 1e-14 * abs(value):
                break
            previous = value
        x_new, best, bound = worst_point(space, spec, xs, w, grid, lo, hi)
        if best <= bound + tol * abs(bound):
            break
        xs, w = np.vstack([xs, x_new[None]]), np.append(w, 0.0)
    return xs, w, best, bound


def apportion(w: np.ndarray, n: int) -> np.ndarray:
    """Efficient rounding of weights to ``n`` runs (Pukelsheim & Rieder 1992); the largest weights
    first when ``n`` is below the number of support points."""
    m = w.size
    if n < m:
        counts = np.zeros(m, dtype=int)
        counts[np.argsort(-w)[:n]] = 1
        return counts
    counts = np.ceil((n - m / 2.0) * w).astype(int)
    while counts.sum() < n:
        counts[int(np.argmin(counts / w))] += 1
    while counts.sum() > n:
        ratio = np.where(counts > 0, (counts - 1) / w, -np.inf)
        counts[int(np.argmax(ratio))] -= 1
    return counts


@functools.partial(jax.jit, static_argnames=("kind",))
def _swaps(
    factors: Any, nodes: Any, m: Any, leave: Any, c: Any, keep: Any, inv_n: float, kind: DesignCriterion
) -> Any:
    """The objective after moving one run (``1/n``) from the point ``leave`` (S, P, R) to each candidate."""
    fn = psi(kind)
    out = m - inv_n * jnp.einsum("spr,sqr->spq", leave, leave)

    def value(cand: Any) -> Any:
        trial = out + inv_n * jnp.einsum("spr,sqr->spq", cand, cand)
        v = jax.vmap(fn, in_axes=(0, None, None))(trial, c, keep)
        return nodes @ v

    return jax.vmap(value, in_axes=1)(factors)


def exchange(problem: DesignProblem, counts: np.ndarray, n: int) -> np.ndarray:
    """Improve integer ``counts`` on the candidates by single-run exchanges (module docstring)."""
    s = problem.spec
    counts = counts.copy()
    value, _, _ = state(problem, counts / n)
    for _ in range(50 * n):
        m = np.einsum("n,snpr,snqr->spq", counts / n, problem.factors, problem.factors)
        best, move = value, None
        for j in np.flatnonzero(counts):
            values = np.array(
                _swaps(problem.factors, problem.nodes, m, problem.factors[:, j], s.c, s.keep, 1.0 / n, s.kind)
            )
            values[j] = -np.inf
            values[~np.isfinite(values)] = -np.inf
            i = int(np.argmax(values))
            if values[i] > best + 1e-12 * max(abs(best), 1.0):
                best, move = float(values[i]), (j, i)
        if move is None:
            break
        counts[move[0]] -= 1
        counts[move[1]] += 1
        value = best
    return counts
