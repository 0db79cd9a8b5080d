r"""The posterior precision :math:`H + \Lambda` of each structure, factored once for every prior.

A network Laplace's posterior precision is the curvature :math:`H` of the log-likelihood
(:func:`fisherlab.curvature`, summed over rows) plus the prior precision
:math:`\Lambda = \operatorname{diag}(\lambda)`, :math:`\lambda \in \mathbb R^P_{>0}`. Each form
below factors :math:`H` once and answers, for any :math:`\lambda`,

- ``logdet(lam)``: :math:`\log\det(H + \Lambda)`;
- ``cov_diagonal(lam)``: the diagonal of :math:`\Sigma = (H + \Lambda)^{-1}`;
- ``cov_rows(lam, V)``: :math:`V\Sigma` for rows ``V`` ``(m, P)``;
- ``sqrt_rows(lam, Z)``: the rows of :math:`ZS^\top` with :math:`SS^\top = \Sigma` (a draw
  :math:`\theta^* + Sz`, :math:`z \sim N(0, I)`, has covariance :math:`\Sigma`);
- ``whiten_rows(lam, V)``: :math:`VS` for some :math:`S` with :math:`SS^\top = \Sigma` (its
  columns in any order), so that :math:`V\Sigma V^\top = (VS)(VS)^\top` (the linearised
  predictive's :math:`J\Sigma J^\top` without forming :math:`\Sigma J^\top`).

======================  =====================================================================
``DenseForm``           :math:`H = U\operatorname{diag}(w)U^\top` once; a scalar prior is a shift
                        of :math:`w` (no refactorisation per value), any other a Cholesky factor
``DiagonalForm``        elementwise
``KronForm``            one layer, :math:`H_l = (Q_A\otimes Q_G)\operatorname{diag}(e)(Q_A\otimes
                        Q_G)^\top` (K-FAC's :math:`e = \lambda_a\lambda_g/N`, or EKFAC's): a
                        prior constant on the layer shifts :math:`e`
``LowRankForm``         :math:`H = V\operatorname{diag}(v)V^\top + D`: Woodbury's identity, the
                        determinant lemma and a symmetric square root of rank :math:`r`
``Composite``           forms on disjoint sets of parameters (a block per layer; K-FAC's layers
                        and the diagonal of what is outside them)
======================  =====================================================================

Every number is float64 NumPy. Where :math:`H` is positive semi-definite by construction (the
Fisher kinds, a GGN of a convex head), its rounding-level negative eigenvalues (float32 sums) are
set to 0, so that any :math:`\lambda > 0` gives a positive definite :math:`H + \Lambda`. Any
other :math:`H + \Lambda` that is not positive definite (an indefinite GGN or Hessian not
outweighed by the prior) raises :class:`~fisherlab.SingularInformationError`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.linalg import cho_solve, solve_triangular

from .._errors import MethodUnavailableError, SingularInformationError

__all__ = ["Composite", "DenseForm", "DiagonalForm", "Form", "KronForm", "LowRankForm"]

Singular = Callable[[], SingularInformationError]


class Form:
    """:math:`H + \\operatorname{diag}(\\lambda)` of one structure (see the module docstring)."""

    def __init__(self, singular: Singular) -> None:
        self.singular = singular

    def logdet(self, lam: np.ndarray) -> float:
        raise NotImplementedError  # pragma: no cover

    def cov_diagonal(self, lam: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover

    def cov_rows(self, lam: np.ndarray, v: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover

    def sqrt_rows(self, lam: np.ndarray, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover

    def whiten_rows(self, lam: np.ndarray, v: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover

    def _positive(self, values: np.ndarray) -> np.ndarray:
        if not np.all(values > 0):
            raise self.singular()
        return values


def _constant(lam: np.ndarray) -> float | None:
    """The one value of a constant vector, else ``None``."""
    return float(lam[0]) if lam.size and np.all(lam == lam[0]) else None


class DiagonalForm(Form):
    """:math:`\\operatorname{diag}(d) + \\operatorname{diag}(\\lambda)`."""

    def __init__(self, d: np.ndarray, singular: Singular, psd: bool = False) -> None:
        super().__init__(singular)
        self.d = np.asarray(d, dtype=np.float64)
        if psd:
            self.d = np.maximum(self.d, 0.0)

    def logdet(self, lam: np.ndarray) -> float:
        return float(np.sum(np.log(self._positive(self.d + lam))))

    def cov_diagonal(self, lam: np.ndarray) -> np.ndarray:
        return 1.0 / self._positive(self.d + lam)

    def cov_rows(self, lam: np.ndarray, v: np.ndarray) -> np.ndarray:
        return v / self._positive(self.d + lam)

    def sqrt_rows(self, lam: np.ndarray, z: np.ndarray) -> np.ndarray:
        return z / np.sqrt(self._positive(self.d + lam))

    def whiten_rows(self, lam: np.ndarray, v: np.ndarray) -> np.ndarray:
        return self.sqrt_rows(lam, v)  # S is diagonal: V S = rows scaled alike


class DenseForm(Form):
    """A dense symmetric :math:`H`: eigendecomposed once; a non-constant prior by Cholesky."""

    def __init__(self, matrix: np.ndarray, singular: Singular, psd: bool = False) -> None:
        super().__init__(singular)
        self.matrix = 0.5 * (matrix + matrix.T)
        self.psd = psd
        self._eigh: tuple[np.ndarray, np.ndarray] | None = None
        self._chol: tuple[bytes, np.ndarray] | None = None

    @property
    def w(self) -> np.ndarray:
        """The eigenvalues of :math:`H` (made with the vectors on first use)."""
        return self._eigen()[0]

    @property
    def u(self) -> np.ndarray:
        return self._eigen()[1]

    def _eigen(self) -> tuple[np.ndarray, np.ndarray]:
        if self._eigh is None:
            w, u = np.linalg.eigh(self.matrix)
            if self.psd:  # rounding-level negative eigenvalues of a PSD matrix (float32 sums) are 0
                w = np.maximum(w, 0.0)
                self.matrix = (u * w) @ u.T
            self._eigh = (w, u)
        return self._eigh

    def _cholesky(self, lam: np.ndarray) -> np.ndarray:
        key = lam.tobytes()
        if self._chol is None or self._chol[0] != key:
            self._eigen()  # a PSD matrix's rounding removed first
            try:
                factor = np.linalg.cholesky(self.matrix + np.diag(lam))
            except np.linalg.LinAlgError as exc:
                raise self.singular() from exc
            self._chol = (key, factor)
        return self._chol[1]

    def logdet(self, lam: np.ndarray) -> float:
        s = _constant(lam)
        if s is not None:
            return float(np.sum(np.log(self._positive(self.w + s))))
        return float(2.0 * np.sum(np.log(np.diag(self._cholesky(lam)))))

    def cov_diagonal(self, lam: np.ndarray) -> np.ndarray:
        s = _constant(lam)
        if s is not None:
            return (self.u**2) @ (1.0 / self._positive(self.w + s))
        inv = solve_triangular(self._cholesky(lam), np.eye(lam.size), lower=True)
        return np.sum(inv**2, axis=0)

    def cov_rows(self, lam: np.ndarray, v: np.ndarray) -> np.ndarray:
        s = _constant(lam)
        if s is not None:
            return ((v @ self.u) / self._positive(self.w + s)) @ self.u.T
        return cho_solve((self._cholesky(lam), True), v.T).T

    def sqrt_rows(self, lam: np.ndarray, z: np.ndarray) -> np.ndarray:
        s = _constant(lam)
        if s is not None:  # S = U diag(w + s)^(-1/2)
            return (z / np.sqrt(self._positive(self.w + s))) @ self.u.T
        # S = L^-T with L L^T = H + diag(lam): S S^T = (L L^T)^-1
        return solve_triangular(self._cholesky(lam), z.T, lower=True, trans="T").T

    def whiten_rows(self, lam: np.ndarray, v: np.ndarray) -> np.ndarray:
        s = _constant(lam)
        if s is not None:  # V U diag(w + s)^(-1/2)
            return (v @ self.u) / np.sqrt(self._positive(self.w + s))
        return solve_triangular(self._cholesky(lam), v.T, lower=True).T  # (L^-1 V^T)^T


class KronForm(Form):
    """One layer of K-FAC (``kron``, :class:`~fisherlab.operators._kfac._Kron`): eigenvalues ``e``
    ``(d_in [+1], d_out)`` in the basis :math:`Q_A \\otimes Q_G`, its parameters in the layout of
    ``e`` (row-major). The factors are eigendecomposed on first use, not when the form is made."""

    def __init__(self, kron: Any, singular: Singular, psd: bool = False) -> None:
        super().__init__(singular)
        self.kron, self.name, self.psd = kron, kron.layer.name, psd

    @property
    def qa(self) -> np.ndarray:
        return self.kron.qa  # type: ignore[no-any-return]

    @property
    def qg(self) -> np.ndarray:
        return self.kron.qg  # type: ignore[no-any-return]

    @functools.cached_property
    def e(self) -> np.ndarray:
        """The layer's eigenvalues with their eigenvectors' decomposition (made once)."""
        return self._clip(self.kron.eigenvalues())

    def _clip(self, e: np.ndarray) -> np.ndarray:
        return np.maximum(e, 0.0) if self.psd else e  # rounding of PSD factors removed

    def _shift(self, lam: np.ndarray, e: np.ndarray | None = None) -> np.ndarray:
        s = _constant(lam)
        if s is None:
            raise MethodUnavailableError(
                f"structure='kfac' needs one prior precision on all of layer {self.name}'s parameters (its "
                "weight and bias share one Kronecker factor), and it was given several; use a scalar or "
                "per-layer prior precision, or structure='diagonal' / 'full' for one per parameter"
            )
        return self._positive((self.e if e is None else e) + s)

    def _matrices(self, v: np.ndarray) -> np.ndarray:
        """Rows of the layer's parameters as ``(m, d_in [+1], d_out)`` matrices."""
        return v.reshape(v.shape[0], self.kron.big_a.shape[0], self.kron.big_g.shape[0])

    def logdet(self, lam: np.ndarray) -> float:
        return float(np.sum(np.log(self._shift(lam, self._clip(self.kron.eigenvalues(vectors=False))))))

    def cov_diagonal(self, lam: np.ndarray) -> np.ndarray:
        return ((self.qa**2) @ (1.0 / self._shift(lam)) @ (self.qg**2).T).ravel()

    def cov_rows(self, lam: np.ndarray, v: np.ndarray) -> np.ndarray:
        rotated = np.einsum("ia,mij,jb->mab", self.qa, self._matrices(v), self.qg, optimize=True)
        out = np.einsum("ia,mab,jb->mij", self.qa, rotated / self._shift(lam), self.qg, optimize=True)
        return out.reshape(v.shape)

    def sqrt_rows(self, lam: np.ndarray, z: np.ndarray) -> np.ndarray:
        scaled = self._matrices(z) / np.sqrt(self._shift(lam))
        return np.einsum("ia,mab,jb->mij", self.qa, scaled, self.qg, optimize=True).reshape(z.shape)

    def whiten_rows(self, lam: np.ndarray, v: np.ndarray) -> np.ndarray:
        # V (Q_A ⊗ Q_G) diag(e + s)^(-1/2): one rotation into the eigenbasis, none back; in the
        # rows' precision (a float32 network's Jacobians are rotated in float32)
        qa, qg = self.qa.astype(v.dtype, copy=False), self.qg.astype(v.dtype, copy=False)
        rotated = np.matmul(np.matmul(qa.T, self._matrices(v)), qg)
        scale = (1.0 / np.sqrt(self._shift(lam))).astype(v.dtype, copy=False)
        return (rotated * scale).reshape(v.shape)


class LowRankForm(Form):
    """:math:`V\\operatorname{diag}(v)V^\\top + \\operatorname{diag}(r)`, ``v > 0``."""

    def __init__(self, values: np.ndarray, vectors: np.ndarray, rest: np.ndarray, singular: Singular) -> None:
        super().__init__(singular)
        if np.any(values <= 0):
            raise SingularInformationError(
                "structure='lowrank' keeps the top eigenpairs of the curvature, and some are not positive "
                "(an indefinite GGN or Hessian): use kind='fisher' or 'ggn' of a convex head, or "
                "structure='kfac' / 'diagonal'"
            )
        self.values, self.vectors, self.rest = values, vectors, rest

    def _inner(self, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``D = rest + lam`` and the Cholesky factor of
        :math:`\\operatorname{diag}(1/v) + V^\\top D^{-1} V`."""
        d = self._positive(self.rest + lam)
        inner = np.diag(1.0 / self.values) + (self.vectors.T / d) @ self.vectors
        return d, np.linalg.cholesky(inner)

    def logdet(self, lam: np.ndarray) -> float:
        d, chol = self._inner(lam)  # the matrix determinant lemma
        return float(np.sum(np.log(d)) + 2.0 * np.sum(np.log(np.diag(chol))) + np.sum(np.log(self.values)))

    def cov_diagonal(self, lam: np.ndarray) -> np.ndarray:
        d, chol = self._inner(lam)
        w = solve_triangular(chol, (self.vectors / d[:, None]).T, lower=True)  # (r, P)
        return 1.0 / d - np.sum(w**2, axis=0)

    def cov_rows(self, lam: np.ndarray, v: np.ndarray) -> np.ndarray:
        d, chol = self._inner(lam)  # Woodbury
        vd = v / d
        return vd - cho_solve((chol, True), (vd @ self.vectors).T).T @ (self.vectors / d[:, None]).T

    def _root(self, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``D``, ``Q_w`` and ``c`` of :math:`\\Sigma = D^{-1/2} T^2 D^{-1/2}`,
        :math:`T = I + Q_w \\operatorname{diag}(c) Q_w^\\top` symmetric.

        :math:`\\Sigma = D^{-1/2}(I + WW^\\top)^{-1}D^{-1/2}` with
        :math:`W = D^{-1/2}V\\operatorname{diag}(v)^{1/2} = QR`; with :math:`RR^\\top = E s E^\\top`
        and :math:`Q_w = QE`, :math:`(I + WW^\\top)^{-1/2} = I + Q_w\\operatorname{diag}((1+s)^{-1/2}
        - 1)Q_w^\\top`."""
        d = self._positive(self.rest + lam)
        q, r = np.linalg.qr(self.vectors * np.sqrt(self.values) / np.sqrt(d)[:, None])
        s, e = np.linalg.eigh(r @ r.T)
        return d, q @ e, 1.0 / np.sqrt(1.0 + np.maximum(s, 0.0)) - 1.0

    def sqrt_rows(self, lam: np.ndarray, z: np.ndarray) -> np.ndarray:
        d, qw, c = self._root(lam)  # S = D^-1/2 T
        return (z + ((z @ qw) * c) @ qw.T) / np.sqrt(d)

    def whiten_rows(self, lam: np.ndarray, v: np.ndarray) -> np.ndarray:
        d, qw, c = self._root(lam)  # V D^-1/2 T
        r = v / np.sqrt(d)
        return r + ((r @ qw) * c) @ qw.T


class Composite(Form):
    """Forms on disjoint index sets that together cover every parameter."""

    def __init__(self, parts: Sequence[tuple[np.ndarray, Form]], p: int, singular: Singular) -> None:
        super().__init__(singular)
        self.parts = list(parts)
        self.p = p

    def logdet(self, lam: np.ndarray) -> float:
        return float(sum(form.logdet(lam[idx]) for idx, form in self.parts))

    def cov_diagonal(self, lam: np.ndarray) -> np.ndarray:
        out = np.empty(self.p)
        for idx, form in self.parts:
            out[idx] = form.cov_diagonal(lam[idx])
        return out

    def cov_rows(self, lam: np.ndarray, v: np.ndarray) -> np.ndarray:
        out = np.empty_like(v)
        for idx, form in self.parts:
            out[:, idx] = form.cov_rows(lam[idx], v[:, idx])
        return out

    def sqrt_rows(self, lam: np.ndarray, z: np.ndarray) -> np.ndarray:
        out = np.empty_like(z)
        for idx, form in self.parts:
            out[:, idx] = form.sqrt_rows(lam[idx], z[:, idx])
        return out

    def whiten_rows(self, lam: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.concatenate([form.whiten_rows(lam[idx], v[:, idx]) for idx, form in self.parts], axis=1)
