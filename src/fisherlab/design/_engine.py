r"""Optimal approximate designs on a finite candidate set.

A design puts weight :math:`w_i \ge 0`, :math:`\sum_i w_i = 1`, on candidate :math:`x_i`; its
information per observation is :math:`M_s(w) = \sum_i w_i L_{si} L_{si}^\top` at each prior node
:math:`\theta_s` (one node for a locally optimal design), and the algorithms maximise
:math:`\Psi(w) = \sum_s \pi_s\, \psi(M_s(w))`, concave in :math:`w`
(:mod:`~fisherlab.design._criteria`). Three steps:

1. **Multiplicative updates** (Silvey, Titterington & Torsney 1978; Yu 2010) from the uniform
   design, :math:`w_i \leftarrow w_i\, (d_i/b)^{\lambda}` with :math:`d_i` the sensitivity of
   candidate i and :math:`b = \sum_i w_i d_i` the bound (:math:`\lambda = 1` for D and Ds, ½
   for A, c and E): every candidate is updated at once, in one compiled loop. They find where
   the optimal support lies, but converge slowly on it.
2. **Newton on the support**: the candidates with weight (or with :math:`d_i > b`) form a small
   problem, solved by Newton's method on the simplex with an active set (a weight that reaches 0
   leaves; a zero weight whose sensitivity exceeds the bound re-enters): quadratic convergence,
   so the weights are exact to rounding.
3. **Column generation** (the vertex direction of Fedorov 1972 and Wynn 1970): the candidates
   whose sensitivity exceeds the bound join the support, and 2. repeats until the equivalence
   theorem holds on every candidate, :math:`\max_i d_i \le b\,(1 + \text{tol})`.

Per-candidate work is vectorised: a sensitivity sweep costs :math:`O(S N P^2 R)`.

References:
    S. D. Silvey, D. M. Titterington, B. Torsney (1978). An algorithm for optimal designs on a
    finite design space. Comm. Statist. A 7, 1379-1389.
    Y. Yu (2010). Monotonic convergence of a general algorithm for computing optimal designs.
    Ann. Statist. 38, 1593-1606.
    V. V. Fedorov (1972). Theory of Optimal Experiments. Academic Press.
    H. P. Wynn (1970). The sequential generation of D-optimum experimental designs. Ann. Math.
    Statist. 41, 1655-1664.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import NotConvergedError
from .._options import DesignCriterion
from ._criteria import Spec, psi

__all__ = ["DesignProblem", "Solution", "gradients", "newton", "sensitivities", "solve", "state"]

# Multiplicative sweeps before the first Newton step: enough to show where the support lies.
MULTIPLICATIVE_SWEEPS = 200
# Rounds of column generation and Newton steps per round before giving up.
MAX_ROUNDS = 50
NEWTON_STEPS = 200
# Newton stops when the support's sensitivities agree to this (relative): the weights are then
# exact to about this, far below the tolerance of the equivalence theorem.
KKT_RTOL = 1e-13
# Weights below this fraction of the largest are dropped from a converged design when the
# equivalence theorem still holds without them.
PRUNE = 1e-7
# A candidate is in the first Newton problem when its weight is above this fraction of the largest.
SUPPORT_FRACTION = 0.05


@dataclasses.dataclass(frozen=True)
class DesignProblem:
    """Candidates' factored informations ``(S, N, P, R)`` at prior nodes with weights ``(S,)``."""

    factors: np.ndarray
    nodes: np.ndarray
    spec: Spec

    @property
    def size(self) -> int:
        return int(self.factors.shape[1])

    def take(self, idx: np.ndarray) -> DesignProblem:
        return DesignProblem(self.factors[:, idx], self.nodes, self.spec)


@dataclasses.dataclass(frozen=True)
class Solution:
    """Weights on every candidate, the objective, sensitivities and bound (psi units)."""

    weights: np.ndarray
    value: float
    sensitivity: np.ndarray
    bound: float
    rounds: int

    @property
    def gap(self) -> float:
        """:math:`\\max_i d_i - b`, an upper bound on the objective's distance to the optimum."""
        return float(np.max(self.sensitivity) - self.bound)


def _lam(kind: DesignCriterion) -> float:
    return 1.0 if kind in (DesignCriterion.D, DesignCriterion.DS) else 0.5


def _state(factors: Any, nodes: Any, w: Any, c: Any, keep: Any, kind: DesignCriterion) -> Any:
    fn = psi(kind)
    m = jnp.einsum("n,snpr,snqr->spq", w, factors, factors)
    values, grads = jax.vmap(jax.value_and_grad(fn), in_axes=(0, None, None))(m, c, keep)
    grads = 0.5 * (grads + jnp.swapaxes(grads, 1, 2))
    t = jnp.einsum("spq,snqr->snpr", grads, factors)
    d = jnp.einsum("s,snpr,snpr->n", nodes, factors, t)
    bound = jnp.einsum("s,spq,sqp->", nodes, grads, m)
    return nodes @ values, d, bound


@functools.partial(jax.jit, static_argnames=("kind",))
def _state_jit(factors: Any, nodes: Any, w: Any, c: Any, keep: Any, kind: DesignCriterion) -> Any:
    return _state(factors, nodes, w, c, keep, kind)


@functools.partial(jax.jit, static_argnames=("kind", "sweeps"))
def _multiplicative(
    factors: Any, nodes: Any, w: Any, c: Any, keep: Any, kind: DesignCriterion, sweeps: int
) -> Any:
    lam = _lam(kind)

    def body(_: Any, w: Any) -> Any:
        _, d, bound = _state(factors, nodes, w, c, keep, kind)
        w = w * (jnp.maximum(d, 0.0) / bound) ** lam
        return w / jnp.sum(w)

    return jax.lax.fori_loop(0, sweeps, body, w)


@functools.partial(jax.jit, static_argnames=("kind",))
def _newton_parts(factors: Any, nodes: Any, w: Any, c: Any, keep: Any, kind: DesignCriterion) -> Any:
    def objective(w: Any) -> Any:
        m = jnp.einsum("n,snpr,snqr->spq", w, factors, factors)
        return nodes @ jax.vmap(psi(kind), in_axes=(0, None, None))(m, c, keep)

    value, grad = jax.value_and_grad(objective)(w)
    return value, grad, jax.hessian(objective)(w)


@functools.partial(jax.jit, static_argnames=("kind",))
def _gradients(factors: Any, w: Any, c: Any, keep: Any, kind: DesignCriterion) -> Any:
    m = jnp.einsum("n,snpr,snqr->spq", w, factors, factors)
    grads = jax.vmap(jax.grad(psi(kind)), in_axes=(0, None, None))(m, c, keep)
    return 0.5 * (grads + jnp.swapaxes(grads, 1, 2)), m


def gradients(problem: DesignProblem, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""``(∇ψ(M_s), M_s)`` at every prior node, ``(S, P, P)`` each: the sensitivity of any point
    :math:`x` is then :math:`\sum_s \pi_s \operatorname{tr}(\nabla\psi(M_s)\, I_s(x))`."""
    s = problem.spec
    grads, m = _gradients(problem.factors, jnp.asarray(w), s.c, s.keep, s.kind)
    return np.asarray(grads), np.asarray(m)


def sensitivities(problem: DesignProblem, grads: np.ndarray) -> np.ndarray:
    r"""Every candidate's sensitivity :math:`\sum_s \pi_s \operatorname{tr}(G_s I_s(x_i))` for given
    gradients :math:`G_s` (:func:`gradients` of some design), ``(N,)``."""
    f = problem.factors
    return np.einsum("s,snpr,spq,snqr->n", problem.nodes, f, grads, f)


def state(problem: DesignProblem, w: np.ndarray) -> tuple[float, np.ndarray, float]:
    """``(objective, sensitivities (N,), bound)`` of weights ``w`` on the candidates."""
    s = problem.spec
    value, d, bound = _state_jit(problem.factors, problem.nodes, jnp.asarray(w), s.c, s.keep, s.kind)
    return float(value), np.asarray(d), float(bound)


def _bucket(m: int) -> int:
    """Pad a support of ``m`` points to a power of two (>= 8): few compiled shapes."""
    return max(8, 1 << (m - 1).bit_length())


def newton(problem: DesignProblem, w0: np.ndarray) -> np.ndarray:
    """Maximise the objective over weights on a small support (active-set Newton on the simplex)."""
    m = problem.size
    size = _bucket(m)
    factors = np.zeros((problem.factors.shape[0], size, *problem.factors.shape[2:]))
    factors[:, :m] = problem.factors
    real = np.arange(size) < m
    w = np.zeros(size)
    w[:m] = w0 / w0.sum()
    s = problem.spec

    def parts(w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        value, grad, hess = _newton_parts(factors, problem.nodes, jnp.asarray(w), s.c, s.keep, s.kind)
        return float(value), np.asarray(grad), np.asarray(hess)

    value, g, h = parts(w)
    for _ in range(NEWTON_STEPS):
        mu = float(w @ g)
        free = (w > 0) | (real & (g > mu + 1e-12 * abs(mu)))
        idx = np.flatnonzero(free)
        if np.ptp(g[idx]) <= KKT_RTOL * abs(mu):  # optimal: equal sensitivities on the support
            break
        while True:  # a weight at 0 that the step would make negative stays out
            step = _newton_step(h, g, idx)
            stuck = (w[idx] == 0.0) & (step < 0)
            if not np.any(stuck):
                break
            idx = idx[~stuck]
        # first the projected full step (every weight that would turn negative leaves at once),
        # then, if that does not improve, the feasible part of the step, halved as needed
        trial = w.copy()
        trial[idx] = np.maximum(w[idx] + step, 0.0)
        trial /= trial.sum()
        new_value, new_g, new_h = parts(trial)
        if not (np.isfinite(new_value) and new_value >= value - 1e-13 * abs(value)):
            neg = step < 0
            t_max = float(np.min(-w[idx][neg] / step[neg])) if np.any(neg) else np.inf
            t = min(1.0, t_max)
            while True:
                trial = w.copy()
                trial[idx] = np.maximum(w[idx] + t * step, 0.0)
                if t == t_max:
                    trial[idx[neg][np.argmin(-w[idx][neg] / step[neg])]] = 0.0
                trial /= trial.sum()
                new_value, new_g, new_h = parts(trial)
                if np.isfinite(new_value) and new_value >= value - 1e-13 * abs(value):  # rounding
                    break
                t *= 0.5
                if t < 1e-14:
                    return w[:m]
        moved = float(np.max(np.abs(trial - w)))
        w, value, g, h = trial, new_value, new_g, new_h
        if moved < 1e-15:
            break
    return w[:m]


def _newton_step(h: np.ndarray, g: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The Newton step of a concave objective on the weights ``idx``, keeping their sum."""
    hf = h[np.ix_(idx, idx)]
    k = idx.size
    ridge = 1e-13 * max(float(np.max(np.abs(np.diag(hf)))), 1e-300)
    kkt = np.zeros((k + 1, k + 1))
    kkt[:k, :k] = hf - ridge * np.eye(k)
    kkt[:k, k] = kkt[k, :k] = 1.0
    rhs = np.concatenate([-g[idx], [0.0]])
    step = np.linalg.lstsq(kkt, rhs, rcond=None)[0][:k]
    if not np.all(np.isfinite(step)) or float(g[idx] @ step) <= 0.0:
        step = g[idx] - np.mean(g[idx])  # not an ascent direction: the projected gradient
    return step


def _pruned(problem: DesignProblem, sol: Solution, tol: float) -> Solution:
    """Weights below :data:`PRUNE` of the largest set to 0 (a singular c-optimal design leaves such
    dust where the objective is flat), kept only if the equivalence theorem still holds."""
    w = np.where(sol.weights < PRUNE * np.max(sol.weights), 0.0, sol.weights)
    if np.count_nonzero(w) == np.count_nonzero(sol.weights):
        return sol
    w /= w.sum()
    value, d, bound = state(problem, w)
    if (
        np.isfinite(value)
        and np.max(d) <= bound + tol * abs(bound)
        and value >= sol.value - tol * abs(sol.value)
    ):
        return Solution(w, value, d, bound, sol.rounds)
    return sol


def solve(problem: DesignProblem, tol: float, w0: np.ndarray | None = None) -> Solution:
    """The optimal weights on the candidates (steps 1-3 of the module docstring).

    Raises:
        NotConvergedError: the equivalence theorem still fails by more than ``tol`` after
            :data:`MAX_ROUNDS` rounds (the message gives the gap).
    """
    s = problem.spec
    n = problem.size
    if w0 is None and s.kind is DesignCriterion.E:  # psi_p is too flat far from the optimum: from A's
        w0 = solve(
            DesignProblem(problem.factors, problem.nodes, dataclasses.replace(s, kind=DesignCriterion.A)), tol
        ).weights
    w = np.full(n, 1.0 / n) if w0 is None else w0
    if w0 is None:
        w = np.asarray(
            _multiplicative(
                problem.factors, problem.nodes, jnp.asarray(w), s.c, s.keep, s.kind, MULTIPLICATIVE_SWEEPS
            )
        )
    value, d, bound = state(problem, w)
    p = problem.factors.shape[2]
    keep_top = max(16, p * (p + 1))
    support = np.flatnonzero(w > SUPPORT_FRACTION * np.max(w))
    if support.size > keep_top:
        support = support[np.argsort(-w[support])[:keep_top]]
    for rounds in range(1, MAX_ROUNDS + 1):
        violators = np.flatnonzero(d > bound * (1.0 + tol) + 1e-300)
        violators = violators[np.argsort(-d[violators])[: max(p, 4)]]
        support = np.union1d(support, violators)
        start = np.maximum(w[support], 1e-3 / support.size)
        ws = newton(problem.take(support), start)
        w = np.zeros(n)
        w[support] = ws
        value, d, bound = state(problem, w)
        support = support[ws > 0]
        if np.max(d) <= bound + tol * abs(bound):
            return _pruned(problem, Solution(w, value, d, bound, rounds), tol)
    raise NotConvergedError(
        f"the {s.label()}-optimal design did not converge in {MAX_ROUNDS} rounds: the largest "
        f"sensitivity exceeds the bound by {np.max(d) - bound:.3g} (relative tolerance {tol:g}); "
        "try fewer candidates, a looser tol=, or check that the model's information is smooth"
    )
