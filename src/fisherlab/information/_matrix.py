r"""Labelled symmetric matrices: information matrices and covariances.

An :class:`InfoMatrix` is a symmetric positive (semi)definite matrix over named
parameters, the currency of everything fisherlab computes: the expected Fisher
:math:`F`, the empirical Fisher, the observed information :math:`J`. Its
inverse, :meth:`InfoMatrix.cov`, is the asymptotic (Cramér–Rao / Laplace)
covariance, a :class:`Covariance`.

Inversion uses a Cholesky factorisation of the diagonally scaled matrix
:math:`D^{-1/2} A D^{-1/2}`, so the singularity test is invariant to the units of
each parameter. A singular or indefinite matrix raises
:class:`~fisherlab.SingularInformationError` naming the offending direction as a
parameter combination; nothing is clipped or regularised silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .._errors import SingularInformationError

__all__ = ["Covariance", "Eigen", "InfoMatrix", "LabelledMatrix"]

# Condition number (of the diagonally scaled matrix) above which a matrix counts as
# numerically singular: beyond ~1e12 a float64 inverse has lost more than 12 of its
# 16 significant digits, so standard errors would be noise.
SINGULAR_CONDITION = 1e12


class Eigen(NamedTuple):
    """Eigen-decomposition of a labelled symmetric matrix, eigenvalues ascending.

    Attributes:
        values: eigenvalues, shape ``(P,)``, ascending.
        vectors: DataFrame ``(P, P)``, column ``k`` is the unit eigenvector of
            ``values[k]``, indexed by parameter name.
    """

    values: np.ndarray
    vectors: pd.DataFrame


def _combination(vector: np.ndarray, names: Sequence[str], threshold: float = 1e-3) -> str:
    """Write a direction as ``"0.894·b − 0.447·a"``: largest coefficient first and positive."""
    v = vector if vector[np.argmax(np.abs(vector))] >= 0 else -vector
    parts: list[str] = []
    for idx in np.argsort(-np.abs(v)):
        c = v[idx]
        if abs(c) < threshold:
            break
        term = f"{abs(c):.3g}·{names[idx]}"
        parts.append(term if not parts else f"{'−' if c < 0 else '+'} {term}")
    return " ".join(parts)


class LabelledMatrix:
    """A symmetric matrix over named parameters (a Hessian, say), with labelled views.

    Attributes:
        matrix: ``numpy`` float64 array ``(P, P)``, symmetrised on construction.
        names: parameter names, length ``P``.
        error: ``None`` or an error estimate of each entry (same shape as ``matrix``).
        method: how the matrix was computed.
        evaluations: ``None``, or the number of function evaluations a numeric
            (finite-difference) matrix cost.
    """

    __slots__ = ("error", "evaluations", "matrix", "method", "names")

    def __init__(
        self,
        matrix: Any,
        names: Sequence[str],
        *,
        error: Any = None,
        method: str = "",
        evaluations: int | None = None,
    ) -> None:
        m = np.array(matrix, dtype=np.float64)
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            raise ValueError(f"expected a square matrix, got shape {m.shape}")
        if len(names) != m.shape[0]:
            raise ValueError(f"{len(names)} names for a {m.shape[0]}x{m.shape[0]} matrix")
        if len(set(names)) != len(names):
            raise ValueError(f"parameter names must be unique, got {list(names)}")
        self.matrix: np.ndarray = 0.5 * (m + m.T)
        self.names: list[str] = list(names)
        self.error: np.ndarray | None = None if error is None else np.asarray(error, dtype=np.float64)
        self.method: str = method
        self.evaluations: int | None = evaluations

    def to_pandas(self) -> pd.DataFrame:
        """The matrix as a DataFrame indexed and columned by parameter name."""
        return pd.DataFrame(self.matrix, index=self.names, columns=self.names)

    def index(self, names: Iterable[str]) -> np.ndarray:
        """Positions of ``names`` in :attr:`names`; unknown names raise ``KeyError``."""
        lookup = {n: i for i, n in enumerate(self.names)}
        missing = [n for n in names if n not in lookup]
        if missing:
            raise KeyError(f"unknown parameter name(s) {missing}; known: {self.names}")
        return np.array([lookup[n] for n in names], dtype=int)

    def eig(self) -> Eigen:
        """Eigen-decomposition (``numpy.linalg.eigh``), eigenvalues ascending."""
        values, vectors = np.linalg.eigh(self.matrix)
        return Eigen(values, pd.DataFrame(vectors, index=self.names))

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        body = self.to_pandas().to_string(float_format=lambda v: f"{v:.6g}")
        return f"{type(self).__name__}({self.method or 'matrix'}, P={len(self.names)})\n{body}"


class Covariance(LabelledMatrix):
    r"""A labelled covariance matrix (the inverse of an information matrix).

    Attributes:
        matrix: ``numpy`` float64 array ``(P, P)``.
        names: parameter names, length ``P``.
        error: ``None``, or the error of each entry propagated to first order from the
            information's error estimate (numeric derivatives, Monte-Carlo):
            :math:`|\delta\Sigma| \le |\Sigma|\,|\delta A|\,|\Sigma|` for :math:`\Sigma = A^{-1}`.
    """

    __slots__ = ()

    def se(self) -> dict[str, float]:
        """Standard errors ``sqrt(diag(cov))``, name -> float."""
        return dict(zip(self.names, np.sqrt(np.diag(self.matrix)).tolist(), strict=True))

    def corr(self) -> pd.DataFrame:
        """Correlation matrix as a DataFrame."""
        s = np.sqrt(np.diag(self.matrix))
        return pd.DataFrame(self.matrix / np.outer(s, s), index=self.names, columns=self.names)


class InfoMatrix(LabelledMatrix):
    r"""A labelled information matrix (Fisher, empirical Fisher or observed information).

    Attributes:
        matrix: ``numpy`` float64 array ``(P, P)``, symmetric.
        names: parameter names, length ``P``, in flattening order.
        error: ``None``, or an error estimate of each entry, same shape as
            :attr:`matrix`: the Monte-Carlo standard error for ``method="mc"``,
            the finite-difference error estimate for numeric derivatives.
        method: how it was computed (``"exact"``, ``"summation"``,
            ``"quadrature"``, ``"mc"``, ``"empirical"``, ``"observed"``).

    Example:
        >>> import fisherlab as fl
        >>> F = fl.InfoMatrix([[4.0, 2.0], [2.0, 3.0]], ["a", "b"])
        >>> F.cov().matrix.round(3).tolist()
        [[0.375, -0.25], [-0.25, 0.5]]
        >>> F.marginalize(["a"]).matrix.tolist()   # 4 - 2 * 2 / 3
        [[2.666666666666667]]
        >>> F.fix(["b"]).matrix.tolist()
        [[4.0]]
    """

    __slots__ = ()

    # ------------------------------------------------------------------ inversion
    def _scaled_factor(self) -> tuple[np.ndarray, np.ndarray]:
        """Cholesky factor of the diagonally scaled matrix, with the scale; raise if singular."""
        m = self.matrix
        diag = np.diag(m)
        bad = np.flatnonzero(~(diag > 0))
        if bad.size:
            name = self.names[int(bad[0])]
            raise SingularInformationError(
                f"{name} is not identified by the data: its {self.method or 'information'} "
                f"information is {diag[bad[0]]:.3g} (no observation depends on it, or the "
                "log-likelihood is not twice differentiable in it, as for a Laplace location: "
                "then use fl.fisher or fl.empirical_fisher); fix it, reparametrise, or add data "
                "or a prior",
                direction={name: 1.0},
                condition_number=float("inf"),
            )
        d = 1.0 / np.sqrt(diag)
        scaled = m * np.outer(d, d)
        values, vectors = np.linalg.eigh(scaled)
        cond = float(values[-1] / values[0]) if values[0] > 0 else float("inf")
        if values[0] <= 0 or cond > SINGULAR_CONDITION:
            v = vectors[:, 0] * d
            v = v / np.linalg.norm(v)
            combo = _combination(v, self.names)
            direction = dict(zip(self.names, v.tolist(), strict=True))
            if values[0] < -(SINGULAR_CONDITION**-1) * values[-1]:
                raise SingularInformationError(
                    f"the {self.method or 'information'} matrix is not positive definite: "
                    f"along {combo} the curvature is negative ({values[0]:.3g} on the scaled "
                    "matrix), so the point is not a maximum of the log-likelihood; move to the "
                    "optimum (fl.fit) or use the expected Fisher",
                    direction=direction,
                    condition_number=cond,
                )
            raise SingularInformationError(
                f"{combo} is not identified by the data (condition number {cond:.3g} of the "
                f"scaled {self.method or 'information'} matrix, limit {SINGULAR_CONDITION:.0e}); "
                "fix or reparametrise these parameters, add data or a prior, or call "
                "cov(pinv=True) for a pseudo-inverse",
                direction=direction,
                condition_number=cond,
            )
        return np.linalg.cholesky(scaled), d

    def condition_number(self) -> float:
        """Condition number of the diagonally scaled matrix (unit-free identifiability)."""
        diag = np.diag(self.matrix)
        if np.any(diag <= 0):
            return float("inf")
        d = 1.0 / np.sqrt(diag)
        values = np.linalg.eigvalsh(self.matrix * np.outer(d, d))
        return float(values[-1] / values[0]) if values[0] > 0 else float("inf")

    def cov(self, *, pinv: bool = False) -> Covariance:
        r"""The inverse :math:`A^{-1}`, the asymptotic covariance (Cramér–Rao bound for Fisher).

        Args:
            pinv: return the Moore–Penrose pseudo-inverse instead of raising on a
                singular matrix (eigenvalues below ``1e-12`` of the largest are
                treated as zero: the covariance is then that of the identified
                directions only, and says nothing about the others).

        Raises:
            SingularInformationError: the matrix is singular, numerically singular
                (scaled condition number above 1e12) or indefinite; the message
                names the direction, e.g. ``"0.894·b - 0.447·a is not identified"``.
        """
        if pinv:
            inv = np.linalg.pinv(self.matrix, rcond=1.0 / SINGULAR_CONDITION, hermitian=True)
            return Covariance(inv, self.names, method=f"pinv({self.method})")
        factor, d = self._scaled_factor()
        eye = np.eye(len(self.names))
        linv = np.linalg.solve(factor, eye)
        inv = (linv.T @ linv) * np.outer(d, d)
        return Covariance(inv, self.names, method=f"inverse({self.method})")

    def se(self) -> dict[str, float]:
        """Standard errors ``sqrt(diag(cov()))``, name -> float (Cramér–Rao bounds for Fisher)."""
        return self.cov().se()

    # ------------------------------------------------------------------ forecast algebra
    def marginalize(self, names: Iterable[str]) -> InfoMatrix:
        r"""Information about ``names`` with every other parameter marginalised (unknown).

        The Schur complement :math:`A_{kk} - A_{ko} A_{oo}^{-1} A_{ok}`, equal to
        :math:`((A^{-1})_{kk})^{-1}`: the information left on the kept parameters
        once the others are estimated too.
        """
        keep = list(names)
        k = self.index(keep)
        others = [n for n in self.names if n not in set(keep)]
        if not others:
            return self._take(k, keep)
        o = self.index(others)
        sub = InfoMatrix(self.matrix[np.ix_(o, o)], others, method=self.method)
        factor, d = sub._scaled_factor()
        a_ko = self.matrix[np.ix_(k, o)] * d
        w = np.linalg.solve(factor, a_ko.T)
        schur = self.matrix[np.ix_(k, k)] - w.T @ w
        return InfoMatrix(schur, keep, method=f"marginal({self.method})")

    def fix(self, names: Iterable[str]) -> InfoMatrix:
        """Information with ``names`` held fixed (known): their rows and columns are dropped."""
        fixed = set(names)
        self.index(list(fixed))
        keep = [n for n in self.names if n not in fixed]
        return self._take(self.index(keep), keep)

    def _take(self, idx: np.ndarray, names: list[str]) -> InfoMatrix:
        err = None if self.error is None else self.error[np.ix_(idx, idx)]
        return InfoMatrix(self.matrix[np.ix_(idx, idx)], names, error=err, method=self.method)

    def __add__(self, other: InfoMatrix) -> InfoMatrix:
        """Information of independent experiments adds; names must agree (any order)."""
        if not isinstance(other, InfoMatrix):
            return NotImplemented
        if set(other.names) != set(self.names):
            raise ValueError(
                f"cannot add information over different parameters: {self.names} vs {other.names}; "
                "use fix()/marginalize() first"
            )
        idx = other.index(self.names)
        om = other.matrix[np.ix_(idx, idx)]
        err = None
        if self.error is not None or other.error is not None:
            e1 = self.error if self.error is not None else 0.0
            e2 = other.error[np.ix_(idx, idx)] if other.error is not None else 0.0
            err = np.sqrt(np.square(e1) + np.square(e2))
        return InfoMatrix(self.matrix + om, self.names, error=err, method=self.method)

    def __mul__(self, factor: float) -> InfoMatrix:
        """Scale by a number (``n`` repetitions of an experiment)."""
        if not isinstance(factor, (int, float, np.integer, np.floating)) or isinstance(factor, bool):
            return NotImplemented
        value = float(factor)
        err = None if self.error is None else self.error * abs(value)
        return InfoMatrix(self.matrix * value, self.names, error=err, method=self.method)

    __rmul__ = __mul__
