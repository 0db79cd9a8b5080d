r"""``structure="kfac"``: Kronecker factors per layer (K-FAC, and EKFAC's eigenvalue correction).

For each layer :mod:`._layers` finds (dense, and convolutions), with its weight laid out as the
matrix :math:`\tilde V = [W; b]` of shape ``(d_in [+1], d_out)`` (:meth:`to_matrix`),

.. math:: C_l \approx \frac{1}{N} A \otimes G, \qquad A = \sum_i \tilde a_i \tilde a_i^\top,
          \quad G = \sum_i \sum_r \sigma_r g_{ir} g_{ir}^\top

(Martens & Grosse 2015; :math:`s/N` with ``reduction="mean"``), exact for one row. For a
convolution the spatial positions share the weight: ``kfac_approx="expand"`` counts them like
rows, ``"reduce"`` sums them first (Eschenhagen et al. 2023; :mod:`._layers`). Products,
solves, log-determinants and eigenpairs use the factors' eigendecompositions
:math:`A = Q_A \Lambda_A Q_A^\top`, :math:`G = Q_G \Lambda_G Q_G^\top`; EKFAC (George et al.
2018) keeps :math:`Q_A \otimes Q_G` and replaces :math:`\lambda_a\lambda_g/N` by the exact
diagonal of the layer's block in that basis. Parameters outside such layers keep their exact
diagonal (the Hessian's estimated), with one warning naming them.
"""

from __future__ import annotations

import functools
import warnings

import jax
import numpy as np

from ._base import Curvature, top_eigenpairs
from ._exact import Exact
from ._layers import Layer, layer_index

__all__ = ["KFAC"]


class _Kron:
    """One layer's Kronecker factors :math:`C_l \\approx A \\otimes G` on its matrix
    ``(d_in [+1], d_out)``, with their eigendecompositions."""

    def __init__(
        self,
        layer: Layer,
        w: tuple[int, int],
        b: tuple[int, int] | None,
        shape: tuple[int, ...],
        big_a: np.ndarray,
        big_g: np.ndarray,
    ) -> None:
        self.layer, self.w, self.b, self.shape = layer, w, b, shape
        self.big_a, self.big_g = 0.5 * (big_a + big_a.T), 0.5 * (big_g + big_g.T)
        self._eig: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._values: tuple[np.ndarray, np.ndarray] | None = None  # eigenvalues without vectors
        self.corrected: np.ndarray | None = None

    def eigenvalues(self, vectors: bool = True) -> np.ndarray:
        """``(d_in [+1], d_out)``: :math:`\\lambda_a \\lambda_g` (K-FAC) or the corrected ones (EKFAC).

        ``vectors=False``: where the factors are not decomposed yet, from their eigenvalues alone
        (``eigvalsh``, about half the time of the decomposition; a log-determinant needs no more).
        """
        if self.corrected is not None:
            return self.corrected
        if vectors or self._eig is not None:
            return np.outer(self.la, self.lg)
        if self._values is None:
            self._values = (np.linalg.eigvalsh(self.big_a), np.linalg.eigvalsh(self.big_g))
        return np.outer(*self._values)

    def apply(self, m: np.ndarray) -> np.ndarray:
        """The layer's matrix times ``m`` ``(d_in [+1], d_out)``."""
        if self.corrected is None:
            return self.big_a @ m @ self.big_g
        qa, qg = self.qa, self.qg
        return qa @ ((qa.T @ m @ qg) * self.corrected) @ qg.T

    def solve(self, m: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """The layer's matrix inverse times ``m``, with ``lam`` its (damped) eigenvalues."""
        return self.qa @ ((self.qa.T @ m @ self.qg) / lam) @ self.qg.T

    def diagonal(self) -> np.ndarray:
        if self.corrected is None:
            return np.outer(np.diag(self.big_a), np.diag(self.big_g))
        return (self.qa**2) @ self.corrected @ (self.qg**2).T

    def _eigh(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if self._eig is None:  # made on the first solve, logdet or eigh
            la, qa = np.linalg.eigh(self.big_a)
            lg, qg = np.linalg.eigh(self.big_g)
            self._eig = (la, qa, lg, qg)
        return self._eig

    @property
    def la(self) -> np.ndarray:
        return self._eigh()[0]

    @property
    def qa(self) -> np.ndarray:
        return self._eigh()[1]

    @property
    def lg(self) -> np.ndarray:
        return self._eigh()[2]

    @property
    def qg(self) -> np.ndarray:
        return self._eigh()[3]

    @functools.cached_property
    def index(self) -> np.ndarray:
        """The flat positions of the layer's parameters in its ``(d_in [+1], d_out)`` layout."""
        return layer_index(self.layer, self.w, self.b, self.shape)

    def take(self, v: np.ndarray) -> np.ndarray:
        """The layer's entries of a flat vector as ``(d_in [+1], d_out)``."""
        return v[self.index]

    def put(self, out: np.ndarray, m: np.ndarray) -> None:
        """Write ``(d_in [+1], d_out)`` back into the layer's entries of a flat vector."""
        out[self.index] = m


class KFAC(Curvature):
    """Kronecker factors per layer, the exact diagonal elsewhere (see the module docstring)."""

    structure = "kfac"

    def __init__(self, exact: Exact, *, ekfac: bool = False, approx: str = "expand") -> None:
        super().__init__(exact)
        tagged = exact.layers()
        ranges = exact.leaf_ranges()
        leaves = jax.tree_util.tree_leaves(self.params)
        self.factors: list[_Kron] = []
        covered: set[int] = set()
        options = {"reduce": True} if approx == "reduce" else {}
        if tagged is not None:
            stats = exact.layer_stats(kfac=True, **options)
            for layer, (big_a, big_g) in zip(tagged.layers, stats, strict=True):
                big_g = big_g * (self.scale / self.n)
                b = ranges[layer.b] if layer.b is not None else None
                shape = tuple(np.shape(leaves[layer.w]))
                self.factors.append(_Kron(layer, ranges[layer.w], b, shape, big_a, big_g))
                covered.add(layer.w)
                if layer.b is not None:
                    covered.add(layer.b)
            if ekfac:  # the exact diagonal in each layer's Kronecker eigenbasis
                rotations = [(k.qa, k.qg) for k in self.factors]
                for k, values in zip(self.factors, exact.layer_stats(False, rotations), strict=True):
                    k.corrected = values * self.scale
        self.rest, self.rest_diag, estimate = exact.uncovered_diagonal(covered)
        if estimate is not None:
            self.error, self._trace_error = estimate[1], estimate[2]
        if self.rest:
            names = sorted({self.names[a].split("[")[0] for a, _ in self.rest})
            warnings.warn(
                f"structure='kfac': {', '.join(names)} {'is' if len(names) == 1 else 'are'} not in a "
                "layer fisherlab can factor (a weight used more than once, a grouped convolution, a "
                "parameter outside a layer, or kind='hessian'); their diagonal is used instead",
                UserWarning,
                stacklevel=4,
            )

    def _mv_flat(self, v: np.ndarray) -> np.ndarray:
        out = self.rest_diag * v
        for k in self.factors:
            k.put(out, k.apply(k.take(v)))
        return out

    def _diagonal_flat(self) -> np.ndarray:
        out = self.rest_diag.copy()
        for k in self.factors:
            k.put(out, k.diagonal())
        return out

    def _solve_flat(self, delta: float, rhs: np.ndarray) -> np.ndarray:
        d = self.rest_diag + delta
        out = np.zeros(self.p)
        for a, b in self.rest:
            out[a:b] = self._positive_diagonal_solve(d[a:b], rhs[a:b], delta)
        for k in self.factors:
            lam = k.eigenvalues() + delta
            if np.any(lam <= 0):
                raise self._singular(delta)
            k.put(out, k.solve(k.take(rhs), lam))
        return out

    def _logdet(self, delta: float) -> float:
        values = np.concatenate(
            [k.eigenvalues().ravel() for k in self.factors] + [self.rest_diag[a:b] for a, b in self.rest]
        )
        return self._positive_logdet(values + delta, delta)

    def _eigh(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        values: list[np.ndarray] = []
        where: list[tuple[int, int, int]] = []  # (factor or -1, i, j)
        for f, kr in enumerate(self.factors):
            vals = kr.eigenvalues()
            top = np.argsort(vals, axis=None)[::-1][:k]
            values.append(vals.ravel()[top])
            where.extend((f, *np.unravel_index(t, vals.shape)) for t in top)  # type: ignore[misc]
        for a, b in self.rest:
            values.append(self.rest_diag[a:b])
            where.extend((-1, idx, 0) for idx in range(a, b))
        all_values = np.concatenate(values) if values else np.zeros(0)
        order = np.argsort(-all_values, kind="stable")[:k]
        vectors = np.zeros((self.p, order.size))
        for col, pick in enumerate(order):
            f, i, j = where[pick]
            if f < 0:
                vectors[i, col] = 1.0
            else:
                kr = self.factors[f]
                kr.put(vectors[:, col], np.outer(kr.qa[:, i], kr.qg[:, j]))
        return top_eigenpairs(all_values[order], vectors, k)
