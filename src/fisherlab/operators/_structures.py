r"""The structures of ``fl.curvature`` but K-FAC (:mod:`._kfac`): one class each.

=============  ==============================================================================
``operator``   nothing is materialised: a product is one linearisation of the network and its
               transpose (:mod:`._kernels`); ``diagonal`` and ``trace`` are exact (per-row
               reverse passes), ``solve`` is conjugate gradients (``jax.scipy``), ``logdet``
               stochastic Lanczos quadrature and ``eigh`` Lanczos (matfree)
``dense``      the :math:`P\times P` matrix (refused above ``MAX_DENSE_BYTES`` unless ``force``)
``diagonal``   the exact diagonal :math:`\sum_i\sum_r \sigma_r (J_i^\top b_{ir})^2` (dense layers
               by one product each, :mod:`._layers`); for the Hessian a Hutchinson estimate
               with its standard error
``block``      a dense block per layer (leaves grouped by their path without the last key),
               zero between layers
``lowrank``    the top ``rank`` eigenpairs by Lanczos with full reorthogonalisation, plus the
               diagonal of what they leave out
=============  ==============================================================================
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import NotConvergedError
from ._base import Curvature, _scoped, dense_solve, top_eigenpairs
from ._exact import NUM_PROBES, Exact

__all__ = ["EXACT_LOGDET_MAX_PARAMS", "Block", "Dense", "Diagonal", "LowRank", "Operator", "exact_diagonal"]

#: Up to this many parameters the operator's ``logdet`` builds the matrix and is exact.
EXACT_LOGDET_MAX_PARAMS = 2000


class Operator(Curvature):
    """Matrix-free: every answer from products with the exact curvature."""

    structure = "operator"

    def __init__(self, exact: Exact) -> None:
        super().__init__(exact)
        self._dense: np.ndarray | None = None
        self._diag: np.ndarray | None = None

    @_scoped
    def mv(self, v: object) -> object:
        """:math:`C v` for a pytree ``v`` shaped like ``params``; stays in JAX, in the parameters' dtype."""
        flat = self._flat(v)
        if self.exact.chunked:  # a pass over the source on the host
            return self._tree(self._mv_flat(np.asarray(flat)))
        return self.exact.unravel(self.exact.apply_jax(flat[None])[0])

    def _mv_flat(self, v: np.ndarray) -> np.ndarray:
        return self.exact.apply(v[None])[0]

    def _diagonal_flat(self) -> np.ndarray:
        if self._diag is None:
            self._diag, self.error, self._trace_error = exact_diagonal(self.exact)
        return self._diag.copy()

    def _dense_matrix(self) -> np.ndarray:
        if self._dense is None:
            self._dense = self.exact.gram([(0, self.p)], diagonal=False)[0]
        return self._dense

    def _solve_flat(self, delta: float, rhs: np.ndarray) -> np.ndarray:
        from jax.scipy.sparse.linalg import cg

        matvec = self.exact.matvec(delta)
        with self.exact.traced():
            sol, _ = cg(matvec, jnp.asarray(rhs, dtype=self.dtype), tol=1e-12, maxiter=10 * self.p)
            out = np.asarray(sol, dtype=np.float64)
        resid_vector = self._mv_flat(out) + delta * out - rhs
        resid = float(np.linalg.norm(resid_vector)) / max(float(np.linalg.norm(rhs)), 1e-300)
        if not np.isfinite(resid) or resid > 1e-6:
            raise NotConvergedError(
                f"conjugate gradients for (C + {delta:g} I) x = v stopped at relative residual "
                f"{resid:.2e}: C + damping·I may not be positive "
                "definite or is badly conditioned; add damping or use structure='dense'"
            )
        return out

    def _logdet(self, delta: float) -> float:
        if self.p <= EXACT_LOGDET_MAX_PARAMS:
            return _dense_logdet(self, self._dense_matrix(), delta)
        from matfree import decomp, funm, stochtrace

        matvec = self.exact.matvec(delta)
        integrand = funm.monte_carlo_funm_sym_logdet(decomp.tridiag_sym(min(self.p, 30), reortho="full"))
        sampler = stochtrace.sampler_normal(jnp.zeros(self.p, self.dtype), num=NUM_PROBES)
        estimator = stochtrace.estimator_monte_carlo_mean_and_sem(integrand, sampler)
        with self.exact.traced():
            mean, sem = estimator(matvec, self.exact.key)
        self.error = float(sem)
        return float(mean)

    def _eigh(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.exact.lanczos(k)

    def _traceable_matvec(self) -> Callable[[jax.Array], jax.Array]:
        return self.exact.matvec()


class Dense(Curvature):
    """The :math:`P\\times P` matrix, summed over rows (and chunks)."""

    structure = "dense"

    def __init__(self, exact: Exact, *, force: bool = False) -> None:
        super().__init__(exact)
        self._check_size(self.p, force)
        self.matrix = exact.gram([(0, self.p)], diagonal=False)[0]

    def _mv_flat(self, v: np.ndarray) -> np.ndarray:
        return self.matrix @ v

    def _diagonal_flat(self) -> np.ndarray:
        return np.diag(self.matrix).copy()

    def _dense_matrix(self) -> np.ndarray:
        return self.matrix

    def _solve_flat(self, delta: float, rhs: np.ndarray) -> np.ndarray:
        return dense_solve(self.matrix, delta, rhs)

    def _logdet(self, delta: float) -> float:
        return _dense_logdet(self, self.matrix, delta)

    def _eigh(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        w, v = np.linalg.eigh(self.matrix)
        return top_eigenpairs(w, v, k)


class Diagonal(Curvature):
    """The exact diagonal (the Hessian's estimated)."""

    structure = "diagonal"

    def __init__(self, exact: Exact) -> None:
        super().__init__(exact)
        self.diag, self.error, self._trace_error = exact_diagonal(exact)

    def _mv_flat(self, v: np.ndarray) -> np.ndarray:
        return self.diag * v

    def _diagonal_flat(self) -> np.ndarray:
        return self.diag.copy()

    def _dense_matrix(self) -> np.ndarray:
        return np.diag(self.diag)

    def _solve_flat(self, delta: float, rhs: np.ndarray) -> np.ndarray:
        return self._positive_diagonal_solve(self.diag + delta, rhs, delta)

    def _logdet(self, delta: float) -> float:
        return self._positive_logdet(self.diag + delta, delta)

    def _eigh(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        return top_eigenpairs(self.diag, np.eye(self.p), k)


class Block(Curvature):
    """A dense block per layer, zero between layers."""

    structure = "block"

    def __init__(self, exact: Exact, *, force: bool = False) -> None:
        super().__init__(exact)
        for _, a, b in self.layers:
            self._check_size(b - a, force)
        self.blocks = exact.gram([(a, b) for _, a, b in self.layers], diagonal=False)

    def _parts(self) -> list[tuple[int, int, np.ndarray]]:
        return [(a, b, m) for (_, a, b), m in zip(self.layers, self.blocks, strict=True)]

    def _mv_flat(self, v: np.ndarray) -> np.ndarray:
        out = np.zeros_like(v)
        for a, b, m in self._parts():
            out[a:b] = m @ v[a:b]
        return out

    def _diagonal_flat(self) -> np.ndarray:
        return np.concatenate([np.diag(m) for m in self.blocks])

    def _solve_flat(self, delta: float, rhs: np.ndarray) -> np.ndarray:
        return np.concatenate([dense_solve(m, delta, rhs[a:b]) for a, b, m in self._parts()])

    def _logdet(self, delta: float) -> float:
        return float(sum(_dense_logdet(self, m, delta) for m in self.blocks))

    def _eigh(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        ws, vs = [], []
        for a, b, m in self._parts():
            w, v = np.linalg.eigh(m)
            full = np.zeros((self.p, v.shape[1]))
            full[a:b] = v
            ws.append(w)
            vs.append(full)
        return top_eigenpairs(np.concatenate(ws), np.concatenate(vs, axis=1), k)


class LowRank(Curvature):
    """:math:`V \\Lambda V^\\top + D`: the top ``rank`` eigenpairs and the diagonal they leave."""

    structure = "lowrank"

    def __init__(self, exact: Exact, *, rank: int) -> None:
        super().__init__(exact)
        self.values, self.vectors = exact.lanczos(min(rank, self.p))
        diag, self.error, self._trace_error = exact_diagonal(exact)
        remainder = diag - (self.vectors**2) @ self.values
        # what the top eigenpairs leave of a positive semi-definite C is PSD: its diagonal is
        # >= 0 up to rounding; a GGN or Hessian may be indefinite and keeps its sign
        psd = self.kind in ("fisher", "mc_fisher", "empirical")
        self.rest = np.maximum(remainder, 0.0) if psd else remainder

    def _mv_flat(self, v: np.ndarray) -> np.ndarray:
        return self.vectors @ (self.values * (self.vectors.T @ v)) + self.rest * v

    def _diagonal_flat(self) -> np.ndarray:
        return (self.vectors**2) @ self.values + self.rest

    def _inner(self, delta: float) -> tuple[np.ndarray, np.ndarray]:
        d = self.rest + delta
        if np.any(d <= 0) or np.any(self.values <= 0):
            raise self._singular(delta)
        return d, np.diag(1.0 / self.values) + (self.vectors.T / d) @ self.vectors

    def _solve_flat(self, delta: float, rhs: np.ndarray) -> np.ndarray:
        d, inner = self._inner(delta)  # Woodbury
        u = self.vectors
        return rhs / d - (u / d[:, None]) @ np.linalg.solve(inner, (u.T @ (rhs / d)))

    def _logdet(self, delta: float) -> float:
        d, inner = self._inner(delta)  # the matrix determinant lemma
        _, logdet_inner = np.linalg.slogdet(inner)
        return float(np.sum(np.log(d)) + logdet_inner + np.sum(np.log(self.values)))

    def _eigh(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k <= self.values.size:
            return self.values[:k].copy(), self.vectors[:, :k].copy()
        return self.exact.lanczos(k)


def _dense_logdet(c: Curvature, m: np.ndarray, delta: float) -> float:
    w = np.linalg.eigvalsh(0.5 * (m + m.T) + delta * np.eye(m.shape[0]))
    return c._positive_logdet(w, delta)


def exact_diagonal(exact: Exact) -> tuple[np.ndarray, np.ndarray | None, float]:
    """The exact diagonal, dense layers by one product each (:mod:`._layers`), the rest per row;
    the Hessian's estimated (:meth:`Exact.diagonal`: diagonal, per-entry errors, trace's error)."""
    tagged = exact.layers()
    if tagged is None:
        return exact.diagonal()
    ranges = exact.leaf_ranges()
    shapes = [tuple(np.shape(a)) for a in jax.tree_util.tree_leaves(exact.params)]
    diag = np.zeros(exact.p)
    covered: set[int] = set()
    for layer, d in zip(tagged.layers, exact.layer_stats(kfac=False), strict=True):
        d = d * exact.scale
        a, b = ranges[layer.w]
        d_w = d[: d.shape[0] - (layer.b is not None)]
        diag[a:b] = np.ravel(layer.from_matrix(d_w, shapes[layer.w]))
        covered.add(layer.w)
        if layer.b is not None:
            a, b = ranges[layer.b]
            diag[a:b] = d[-1]
            covered.add(layer.b)
    _, rest_diag, _ = exact.uncovered_diagonal(covered)
    return diag + rest_diag, None, 0.0
