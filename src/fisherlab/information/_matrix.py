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

Bad input raises fisherlab errors that name what was given: a matrix that is not a real,
finite, square array (:class:`~fisherlab.InvalidDataError`, or
:class:`~fisherlab.FisherlabArgumentError` for a non-numeric or complex one), names that
are unknown, repeated or of the wrong count (:class:`~fisherlab.InvalidParameterError`),
an operand that is not an information matrix or a scale factor that is not a finite real
number >= 0 (:class:`~fisherlab.FisherlabArgumentError` /
:class:`~fisherlab.InvalidOptionError`): an information matrix stays positive semidefinite
under its algebra (``F + G``, ``c * F``, ``F / c``; there is no ``F - G``).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .._errors import (
    FisherlabArgumentError,
    InvalidDataError,
    InvalidParameterError,
    SingularInformationError,
)
from .._options import nonnegative_factor, positive_number
from .._precision import float64_methods
from . import _forecast, _reparametrize

__all__ = ["Covariance", "Eigen", "InfoMatrix", "LabelledMatrix"]

# Condition number (of the diagonally scaled matrix) above which a matrix counts as
# numerically singular: beyond ~1e12 a float64 inverse has lost more than 12 of its
# 16 significant digits, so standard errors would be noise.
SINGULAR_CONDITION = 1e12


@float64_methods
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


@float64_methods
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

    # numpy defers to our operators (``2.0 * F`` with a NumPy scalar, ``np.ones(3) + F``)
    __array_ufunc__ = None

    def __init__(
        self,
        matrix: Any,
        names: Sequence[str],
        *,
        error: Any = None,
        method: str = "",
        evaluations: int | None = None,
    ) -> None:
        what = type(self).__name__
        m = _real_array(matrix, f"{what} matrix")
        if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
            raise InvalidDataError(f"{what} needs a non-empty square matrix (P, P), got shape {m.shape}")
        if isinstance(names, str) or not isinstance(names, Sequence):
            raise FisherlabArgumentError(
                f"{what} names must be a list of parameter names, got {type(names).__name__} {names!r:.60}"
            )
        if len(names) != m.shape[0]:
            raise InvalidParameterError(
                f"{what}: {len(names)} names {list(names)} for a {m.shape[0]}x{m.shape[0]} matrix; "
                "give one name per row"
            )
        _check_unique(list(names), f"{what} names")
        bad = np.argwhere(~np.isfinite(m))
        if bad.size:
            i, j = (int(v) for v in bad[0])
            raise InvalidDataError(
                f"{what} entry [{names[i]}, {names[j]}] is {m[i, j]}: an information or covariance "
                "matrix must be finite"
            )
        self.matrix: np.ndarray = 0.5 * (m + m.T)
        self.names: list[str] = list(names)
        err = None if error is None else _real_array(error, f"{what} error")
        if err is not None and err.shape != m.shape:
            raise InvalidDataError(f"{what} error has shape {err.shape}, the matrix {m.shape}")
        self.error: np.ndarray | None = err
        self.method: str = method
        self.evaluations: int | None = evaluations

    def to_pandas(self) -> pd.DataFrame:
        """The matrix as a DataFrame indexed and columned by parameter name."""
        return pd.DataFrame(self.matrix, index=self.names, columns=self.names)

    def index(self, names: Iterable[str] | str) -> np.ndarray:
        """Positions of ``names`` (a list of names, or one name) in :attr:`names`.

        Raises:
            InvalidParameterError: a name that is not in :attr:`names` (the unknown and the
                known names are listed), or a name given twice.
            FisherlabArgumentError: ``names`` is not a name or an iterable of names.
        """
        wanted = _name_list(names, "names")
        _check_unique(wanted, "names")
        lookup = {n: i for i, n in enumerate(self.names)}
        missing = [n for n in wanted if n not in lookup]
        if missing:
            raise InvalidParameterError(f"unknown parameter name(s) {missing}; known: {self.names}")
        return np.array([lookup[n] for n in wanted], dtype=int)

    def eig(self) -> Eigen:
        """Eigen-decomposition (``numpy.linalg.eigh``), eigenvalues ascending."""
        values, vectors = np.linalg.eigh(self.matrix)
        return Eigen(values, pd.DataFrame(vectors, index=self.names))

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        body = self.to_pandas().to_string(float_format=lambda v: f"{v:.6g}")
        return f"{type(self).__name__}({self.method or 'matrix'}, P={len(self.names)})\n{body}"

    def _repr_html_(self) -> str:
        """The matrix as an HTML table for notebooks (names and values escaped by pandas)."""
        title = html.escape(f"{type(self).__name__}({self.method or 'matrix'}, P={len(self.names)})")
        table = self.to_pandas().to_html(float_format=lambda v: f"{v:.6g}")
        return f"<div><strong>{title}</strong>{table}</div>"


def _real_array(value: Any, what: str) -> np.ndarray:
    """``value`` as a float64 array; non-numeric, boolean or complex input is refused."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise FisherlabArgumentError(f"{what} cannot be read as an array: {exc}") from exc
    if arr.dtype.kind not in "iuf":
        raise FisherlabArgumentError(
            f"{what} must hold real numbers, got dtype {arr.dtype} ({type(value).__name__})"
        )
    return np.array(arr, dtype=np.float64)


def _name_list(names: Any, what: str) -> list[str]:
    """A list of names from one name (a ``str``) or an iterable of names."""
    if isinstance(names, str):
        return [names]
    try:
        return list(names)
    except TypeError:
        raise FisherlabArgumentError(
            f"{what} must be a parameter name or a list of them, got {type(names).__name__} {names!r:.60}"
        ) from None


def _check_unique(names: list[str], what: str) -> None:
    if len(set(names)) == len(names):
        return
    seen: set[str] = set()
    repeated = []
    for n in names:
        if n in seen:
            repeated.append(n)
        seen.add(n)
    if repeated:
        raise InvalidParameterError(f"{what} repeat {sorted(set(repeated))}: each name must appear once")


@float64_methods
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

    def _variances(self, positive: bool) -> np.ndarray:
        """The diagonal; a negative (or, with ``positive``, zero) variance raises, naming it."""
        var = np.diag(self.matrix)
        bad = np.flatnonzero(var <= 0 if positive else var < 0)
        if bad.size:
            i = int(bad[0])
            raise InvalidDataError(
                f"the variance of {self.names[i]} is {var[i]:.6g}: a covariance needs "
                f"{'positive' if positive else 'non-negative'} variances"
                + (" for correlations" if positive else "")
            )
        return var

    def se(self) -> dict[str, float]:
        """Standard errors ``sqrt(diag(cov))``, name -> float.

        Raises:
            InvalidDataError: a negative variance on the diagonal (the parameter is named).
        """
        return dict(zip(self.names, np.sqrt(self._variances(False)).tolist(), strict=True))

    def corr(self) -> pd.DataFrame:
        """Correlation matrix as a DataFrame.

        Raises:
            InvalidDataError: a variance that is not positive (the parameter is named).
        """
        s = np.sqrt(self._variances(True))
        return pd.DataFrame(self.matrix / np.outer(s, s), index=self.names, columns=self.names)


@float64_methods
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
        center: ``None``, or the fiducial point at which the information was computed, a dict
            name -> float over :attr:`names` (``fl.fisher`` sets it). ``fix``/``marginalize``
            keep its part, ``c * F`` keeps it, ``F + G`` and :meth:`combine` keep it where the
            centers agree; :meth:`reparametrize` takes its Jacobian there.

    The forecasting algebra (:meth:`with_prior`, :meth:`combine`, :meth:`reparametrize`,
    :meth:`figure_of_merit`, :meth:`information_gain`, :meth:`kl_divergence`) lives in
    ``_forecast.py``, whose functions are these methods.

    Examples:
        >>> import fisherlab as fl
        >>> F = fl.InfoMatrix([[4.0, 2.0], [2.0, 3.0]], ["a", "b"])
        >>> F.cov().matrix.round(3).tolist()
        [[0.375, -0.25], [-0.25, 0.5]]
        >>> F.marginalize(["a"]).matrix.tolist()   # 4 - 2 * 2 / 3
        [[2.666666666666667]]
        >>> F.fix(["b"]).matrix.tolist()
        [[4.0]]

        Information algebra keeps a positive semidefinite matrix: independent experiments
        add, a finite scale factor ``c >= 0`` repeats one; nothing else is accepted.

        >>> (F + F).matrix.tolist() == (2 * F).matrix.tolist() == (F / 0.5).matrix.tolist()
        True
        >>> -1 * F
        Traceback (most recent call last):
        ...
        fisherlab._errors.InvalidOptionError: the scale factor c of c * F must be ... >= 0, got -1.0
        >>> F.marginalize(["c"])
        Traceback (most recent call last):
        ...
        fisherlab._errors.InvalidParameterError: unknown parameter name(s) ['c']; known: ['a', 'b']
    """

    __slots__ = ("center",)

    def __init__(
        self,
        matrix: Any,
        names: Sequence[str],
        *,
        error: Any = None,
        method: str = "",
        evaluations: int | None = None,
        center: Mapping[str, float] | None = None,
    ) -> None:
        """Check and store the matrix; ``center`` must give a finite real value for every name
        (extra keys are ignored), else :class:`~fisherlab.InvalidParameterError` naming the name
        (:class:`~fisherlab.FisherlabArgumentError` for a center that is not a dict or a value
        that is not a real number)."""
        super().__init__(matrix, names, error=error, method=method, evaluations=evaluations)
        self.center: dict[str, float] | None = _forecast.checked_point(
            self.names, center, "InfoMatrix center"
        )

    # how a direction over names is written in messages; _forecast reaches it through the instance
    _combination = staticmethod(_combination)

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
            FisherlabArgumentError: ``pinv`` is not a bool.
        """
        if not isinstance(pinv, (bool, np.bool_)):
            raise FisherlabArgumentError(f"pinv must be True or False, got {pinv!r}")
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
    def marginalize(self, names: Iterable[str] | str) -> InfoMatrix:
        r"""Information about ``names`` with every other parameter marginalised (unknown).

        The Schur complement :math:`A_{kk} - A_{ko} A_{oo}^{-1} A_{ok}`, equal to
        :math:`((A^{-1})_{kk})^{-1}`: the information left on the kept parameters
        once the others are estimated too.

        Args:
            names: the parameters to keep, in the order wanted (one name or a list).

        Raises:
            InvalidParameterError: an unknown or repeated name, or no name at all (the
                message lists the known names).
            SingularInformationError: the block of the marginalised parameters is singular.
        """
        keep = _name_list(names, "marginalize(names)")
        if not keep:
            raise InvalidParameterError(
                f"marginalize needs at least one parameter to keep, got none; known: {self.names}"
            )
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
        return InfoMatrix(schur, keep, method=f"marginal({self.method})", center=self._center_of(keep))

    def fix(self, names: Iterable[str] | str) -> InfoMatrix:
        """Information with ``names`` held fixed (known): their rows and columns are dropped.

        Args:
            names: the parameters to fix (one name or a list; an empty list fixes nothing).

        Raises:
            InvalidParameterError: an unknown or repeated name, or every parameter fixed
                (nothing would be left).
        """
        fixed = _name_list(names, "fix(names)")
        self.index(fixed)
        keep = [n for n in self.names if n not in set(fixed)]
        if not keep:
            raise InvalidParameterError(
                f"fix({fixed}) would fix every parameter and leave no information; keep at least one"
            )
        return self._take(self.index(keep), keep)

    def _take(self, idx: np.ndarray, names: list[str]) -> InfoMatrix:
        err = None if self.error is None else self.error[np.ix_(idx, idx)]
        matrix = self.matrix[np.ix_(idx, idx)]
        return InfoMatrix(matrix, names, error=err, method=self.method, center=self._center_of(names))

    def _center_of(self, names: list[str]) -> dict[str, float] | None:
        return None if self.center is None else {n: self.center[n] for n in names}

    # the forecasting algebra: functions of _forecast.py, documented there, bound as methods
    with_prior = _forecast.with_prior
    combine = _forecast.combine
    reparametrize = _reparametrize.reparametrize
    figure_of_merit = _forecast.figure_of_merit
    information_gain = _forecast.information_gain
    kl_divergence = _forecast.kl_divergence

    def to_getdist(
        self,
        center: Any = None,
        *,
        names: Sequence[str] | str | None = None,
        labels: Any = None,
        label: str | None = None,
    ) -> Any:
        """This forecast as a GetDist ``GaussianND`` (mean ``center``, covariance ``cov()``).

        ``center`` defaults to :attr:`center`; see :func:`fisherlab.information._getdist.to_getdist`
        for the names GetDist accepts (``beta[0]`` becomes ``beta_0``, the original kept as label).

        Raises:
            MethodUnavailableError: getdist is not installed (``pip install 'fisherlab[forecast]'``).
            SingularInformationError: the matrix cannot be inverted (the direction is named).
        """
        from ._getdist import to_getdist

        return to_getdist(
            self, self.center if center is None else center, names=names, labels=labels, label=label
        )

    # ------------------------------------------------------------------ arithmetic
    def __add__(self, other: Any) -> InfoMatrix:
        """Information of independent experiments adds; names must agree (any order).

        The center is kept when both centers agree (or one is ``None``), else ``None``; over
        different names use :meth:`combine`.

        Raises:
            FisherlabArgumentError: ``other`` is not an :class:`InfoMatrix` (a number, an
                array, a :class:`Covariance`).
            InvalidParameterError: the two matrices are over different parameters (the
                names only in one of them are listed).
        """
        if not isinstance(other, InfoMatrix):
            raise FisherlabArgumentError(
                f"an InfoMatrix adds only to another InfoMatrix (information of an independent "
                f"experiment), got {type(other).__name__}; scale with c * F, and use .matrix for "
                "raw array arithmetic"
            )
        if set(other.names) != set(self.names):
            only_self = [n for n in self.names if n not in set(other.names)]
            only_other = [n for n in other.names if n not in set(self.names)]
            raise InvalidParameterError(
                f"cannot add information over different parameters: {self.names} vs {other.names} "
                f"(only in the first: {only_self}; only in the second: {only_other}); "
                "use fix()/marginalize() first"
            )
        idx = other.index(self.names)
        om = other.matrix[np.ix_(idx, idx)]
        err = None
        if self.error is not None or other.error is not None:
            e1 = self.error if self.error is not None else 0.0
            e2 = other.error[np.ix_(idx, idx)] if other.error is not None else 0.0
            err = np.sqrt(np.square(e1) + np.square(e2))
        center = _forecast.merged_center([self, other], self.names)
        return InfoMatrix(self.matrix + om, self.names, error=err, method=self.method, center=center)

    def __radd__(self, other: Any) -> InfoMatrix:
        """``0 + F`` is ``F`` (so ``sum([F, G, H])`` works); anything else as :meth:`__add__`."""
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self._take(np.arange(len(self.names)), self.names)
        return self.__add__(other)

    def __mul__(self, factor: Any) -> InfoMatrix:
        """Scale by a finite real number ``c >= 0`` (``c`` repetitions of an experiment).

        ``0 * F`` is the (valid, positive semidefinite) zero matrix, whose :meth:`cov`
        raises :class:`~fisherlab.SingularInformationError`.

        Raises:
            InvalidOptionError: ``c`` negative, infinite or NaN (the result would not be an
                information matrix).
            FisherlabArgumentError: ``c`` is not a real number (a bool, a complex number, an
                array, another matrix).
        """
        value = nonnegative_factor(factor, "the scale factor c of c * F")
        err = None if self.error is None else self.error * value
        return InfoMatrix(self.matrix * value, self.names, error=err, method=self.method, center=self.center)

    __rmul__ = __mul__

    def __truediv__(self, divisor: Any) -> InfoMatrix:
        """``F / c`` for a finite real ``c > 0``: ``(1 / c) * F`` (a mean over ``c`` observations).

        Raises:
            InvalidOptionError: ``c`` zero, negative, infinite or NaN.
            FisherlabArgumentError: ``c`` is not a real number.
        """
        return self * (1.0 / positive_number(divisor, "the divisor c of F / c"))

    def __rtruediv__(self, other: Any) -> InfoMatrix:
        raise FisherlabArgumentError(
            f"cannot divide {type(other).__name__} by an InfoMatrix; its inverse is F.cov()"
        )

    def __sub__(self, other: Any) -> InfoMatrix:
        raise FisherlabArgumentError(
            "information matrices do not subtract: F - G need not be positive semidefinite, so it is "
            "no information matrix; use F.matrix - G.matrix for the raw difference"
        )

    __rsub__ = __sub__

    def __neg__(self) -> InfoMatrix:
        raise FisherlabArgumentError(
            "-F is not an information matrix (it is negative semidefinite); use -F.matrix for the raw array"
        )
