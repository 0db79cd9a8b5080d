r"""The row terms of the identity check (:func:`fisherlab.check`), from rows in memory or streamed.

Every quantity of the check is a function of a few sums over the rows :math:`i = 1..N`, with
scores :math:`s_i`, symmetrised Hessians :math:`H_i` and indicators
:math:`d_i = \operatorname{vech}(s_i s_i^\top + H_i)` (:math:`q = P(P+1)/2` of them):

- the matrices :math:`K = \sum_i s_i s_i^\top` and :math:`J = -\sum_i H_i`, the totals
  :math:`\sum_i s_i` and :math:`\sum_i d_i`;
- the centred score covariance :math:`\hat\Sigma_s = \frac1N\sum_i (s_i-\bar s)(s_i-\bar s)^\top`,
  merged over chunks :math:`a, b` as Chan, Golub & LeVeque (1979) do
  (:math:`M = M_a + M_b + \delta\delta^\top n_a n_b/(n_a+n_b)`, :math:`\delta = \bar s_b - \bar s_a`),
  which loses nothing to the cancellation of :math:`\sum s s^\top - N \bar s \bar s^\top`;
- the column norms :math:`\|d_{\cdot jk}\|`, :math:`\|s_{\cdot j}s_{\cdot k}\|` and
  :math:`\|H_{\cdot jk}\|` of the zero-indicator screen, square roots of sums of squares;
- White's :math:`\nabla D = T + \sum_i (H_i \otimes s_i + s_i \otimes H_i)`, where the third
  derivatives :math:`T` of the total log-likelihood are a sum over rows too;
- the geometry of the regressors. Both variants regress on linear combinations of the columns
  of :math:`Z = [S, D]` (:math:`N \times (P+q)`): White's :math:`G = D + S\,C` with
  :math:`C = J^{-1}\nabla D^\top` is :math:`Z A`, :math:`A = [C;\ I]`, and the OPG regressors
  are columns of :math:`Z`. With :math:`Z = QR` (:math:`R` upper triangular,
  :math:`(P+q)\times(P+q)`, :math:`Q^\top Q = I`), every inner product of those columns is one
  of :math:`R`'s: :math:`Z^\top Z = R^\top R`, so :math:`R` (with :math:`R A` for White)
  stands in for the rows in the check's pivoted QR (the same pivots and :math:`|R_{kk}|`: the
  distances of a column to the span of those before it) and in
  :math:`t^\top (Z^\top Z)^{-1} t`. The residual of the indicators after projecting out the
  scores (the OPG selection) is :math:`Q_2 R_{22}`: the rows of :math:`R` below the scores'.

:math:`R` is accumulated chunk by chunk by a tall-skinny QR (Demmel, Grigori, Hoemmen &
Langou 2012): :math:`R \leftarrow \operatorname{qr}_R([R;\ Z_c])` for each chunk :math:`Z_c`,
Householder QR throughout, so it is as accurate as the QR of all rows at once (errors of
order :math:`\epsilon\,\kappa`). The Gram matrix :math:`Z^\top Z` would do the same algebra
but square the condition number: it resolves a column's distance to the others' span only to
:math:`\sqrt\epsilon \approx 1.5\times10^{-8}`, no better than the rank tolerance of
:data:`~fisherlab.inference._check.RANK_RTOL`, so an exactly dependent indicator (:math:`x^2 = x`
for a 0/1 covariate) could not be told from a genuine one.

Memory is one chunk (its scores, Hessians and indicators) plus :math:`R`, :math:`(P+q)^2 =
O(P^4)` numbers; one pass over the source for either variant (the matrix :math:`A` of White's
correction, known only at the end, is applied to :math:`R`). Sums are float64 with Neumaier's
compensation (:class:`~fisherlab.data._chunks.CompensatedSum`).

References:
    T. F. Chan, G. H. Golub, R. J. LeVeque (1979). Updating formulae and a pairwise algorithm
    for computing sample variances. Stanford CS report STAN-CS-79-773.
    J. Demmel, L. Grigori, M. Hoemmen, J. Langou (2012). Communication-optimal parallel and
    sequential QR and LU factorizations. *SIAM J. Sci. Comput.* 34(1), A206–A239.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from .._errors import InvalidDataError, InvalidParameterError, MethodUnavailableError
from ..backends import Backend, backend_for, check_finite
from ..data._chunks import Chunks, CompensatedSum, labelled, prepared_chunks
from ..data._prepare import Data, prepare_data
from ..dist import Weighted
from ..model._model import Model
from ..params._pytree import as_params, param_names

__all__ = ["RowTerms", "TallQR", "row_terms", "streamed_terms"]


@dataclasses.dataclass(frozen=True)
class RowTerms:
    r"""What the identity check takes from the rows (see the module docstring).

    Attributes:
        n: rows N.
        exact: derivatives exact to rounding (autodiff) or numeric (looser rank tolerances).
        empirical: :math:`K = \sum_i s_i s_i^\top`.
        observed: :math:`J = -\sum_i H_i` (Hessians symmetrised).
        centred: :math:`\hat\Sigma_s`, the score covariance (divisor N).
        score_total, score_mean: :math:`\sum_i s_i` and :math:`\bar s`.
        d_total: :math:`\sum_i d_i`, ``(q,)``.
        d_norm, outer_norm, curv_norm: the column norms of :math:`d`, :math:`s_j s_k` and
            :math:`H_{jk}`, ``(q,)``.
        grad_d: :math:`\nabla D`, ``(P, P, P)``, made when first asked (White's variant only).
        scores, indicators: two blocks of columns with the inner products of :math:`S` and
            :math:`D`: the rows themselves (``(N, P)`` and ``(N, q)``), or the blocks
            :math:`R_{\cdot,1:P}` and :math:`R_{\cdot,P+1:}` of the triangular factor of
            :math:`[S, D]` (:class:`TallQR`).
        design: what :func:`~fisherlab.fisher` takes for the expected information (the
            covariates, or the chunk source), or ``None`` for an iid model (then ``n=N``).
    """

    n: int
    exact: bool
    empirical: np.ndarray
    observed: np.ndarray
    centred: np.ndarray
    score_total: np.ndarray
    score_mean: np.ndarray
    d_total: np.ndarray
    d_norm: np.ndarray
    outer_norm: np.ndarray
    curv_norm: np.ndarray
    grad_d: Callable[[], np.ndarray]
    scores: np.ndarray
    indicators: np.ndarray
    design: Any


def _unweighted(model: Model, backend: Backend, params: Any, data: Data) -> None:
    """Refuse a model whose rows carry likelihood weights (the equality does not hold)."""
    if model.kind == "distribution" and isinstance(backend.first_distribution(params, data.x), Weighted):
        raise MethodUnavailableError(
            "check: the model's rows carry likelihood weights (fl.dist.Weighted, w·log p: R's prior "
            "weights of a Poisson or negative-binomial GLM); a weighted log-likelihood is not a "
            "likelihood of y, so the information-matrix equality E[w² s sᵀ] = w·F does not hold "
            "and the test does not apply; use sandwich standard errors (res.cov('sandwich'))"
        )


def _enough_rows(n: int, p: int) -> None:
    """More rows than scores and indicators, P + P(P+1)/2, or InvalidDataError."""
    q = p * (p + 1) // 2
    if n <= p + q:
        raise InvalidDataError(
            f"check: too few rows for the information-matrix test: N = {n}, but it needs more than "
            f"P + P(P+1)/2 = {p} + {q} = {p + q} (scores and indicators); use more data"
        )


def _finite_rows(what: str, values: np.ndarray, start: int) -> None:
    """:func:`~fisherlab.backends.check_finite` of one chunk's rows, naming the source's row."""
    finite = np.isfinite(values.reshape(values.shape[0], -1)).all(axis=1)
    if finite.all():
        return
    row = int(np.flatnonzero(~finite)[0])
    raise InvalidParameterError(
        f"the {what} is not finite at row {start + row} of the source (row {row} of the chunk): the "
        "parameters make this observation impossible or sit on the boundary of the support; move "
        "the parameters inside it"
    )


def _pieces(s: np.ndarray, h: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The products :math:`s_j s_k`, the Hessian entries :math:`H_{jk}` and the indicators."""
    rows_j, cols_j = np.triu_indices(p)
    outer = s[:, rows_j] * s[:, cols_j]
    curv = h[:, rows_j, cols_j]
    return outer, curv, outer + curv


def row_terms(model: Model, params: Any, y: Any, x: Any, white: bool) -> tuple[Any, RowTerms, Data]:
    """The checked parameters, the terms from the rows in memory (:math:`O(NP^2)` memory) and the
    checked data; a weighted model or too few rows refused."""
    backend = backend_for(model, params, y, x)
    params = as_params(params)
    data = prepare_data(y, x)
    _unweighted(model, backend, params, data)
    _enough_rows(data.n, len(param_names(params)))
    rows = backend.row_curvature(params, data)
    ll, s, h = rows.loglik, rows.scores, rows.hessians
    check_finite("log-likelihood", np.where(np.isneginf(ll), 0.0, ll))
    check_finite("score", s)
    check_finite("Hessian of the log-likelihood", h)
    h = 0.5 * (h + np.swapaxes(h, 1, 2))
    outer, curv, d = _pieces(s, h, s.shape[1])

    def grad_d() -> np.ndarray:
        third = backend.third_derivatives(params, data)
        check_finite("third derivative of the log-likelihood", third[None])
        return np.asarray(third + np.einsum("njl,nk->jkl", h, s) + np.einsum("nj,nkl->jkl", s, h))

    terms = RowTerms(
        n=data.n,
        exact=rows.exact,
        empirical=s.T @ s,
        observed=-h.sum(axis=0),
        centred=np.cov(s, rowvar=False, bias=True).reshape(s.shape[1], s.shape[1]),
        score_total=s.sum(axis=0),
        score_mean=s.mean(axis=0),
        d_total=d.sum(axis=0),
        d_norm=np.linalg.norm(d, axis=0),
        outer_norm=np.linalg.norm(outer, axis=0),
        curv_norm=np.linalg.norm(curv, axis=0),
        grad_d=grad_d,
        scores=s,
        indicators=d,
        design=data.x,
    )
    return params, terms, data


class TallQR:
    """The triangular factor R of a tall matrix given as blocks of rows (tall-skinny QR):
    ``R ← qr([R; block])``, Householder throughout; memory ``columns²``."""

    def __init__(self, columns: int) -> None:
        self.r: np.ndarray = np.zeros((columns, columns))

    def add(self, block: np.ndarray) -> None:
        self.r = np.asarray(np.linalg.qr(np.concatenate([self.r, block]), mode="r"))


class _Covariance:
    """Rows, mean and centred cross-products of blocks of rows, merged as Chan et al. (1979)."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, np.zeros(0), np.zeros((0, 0))

    def add(self, s: np.ndarray) -> None:
        k, mean = s.shape[0], s.mean(axis=0)
        dev = s - mean
        m2 = dev.T @ dev
        if self.n == 0:
            self.n, self.mean, self.m2 = k, mean, m2
            return
        total = self.n + k
        delta = mean - self.mean
        self.mean = self.mean + delta * (k / total)
        self.m2 = self.m2 + m2 + np.outer(delta, delta) * (self.n * k / total)
        self.n = total


def streamed_terms(model: Model, params: Any, source: Chunks, white: bool) -> tuple[Any, RowTerms]:
    """The checked parameters and the terms from one pass over a chunk source (memory: one chunk
    plus :math:`O(P^4)`); a weighted model or too few rows refused.

    The backend is chosen on the first chunk (:func:`backend_for`). An error of a chunk's data or
    rows names the chunk and the row it starts at (a non-finite score: the source's row).
    """
    checked = as_params(params)
    p = len(param_names(checked))
    q = p * (p + 1) // 2
    names = ["score", "gram", "hessian", "d", "d2", "outer2", "curv2", "third", "sh"]
    sums = {name: CompensatedSum() for name in names}
    factor, cov = TallQR(p + q), _Covariance()
    backend: Backend | None = None
    exact, has_x, start = True, False, 0
    for label, data in prepared_chunks(source, transient=True):
        with labelled(label):
            if backend is None:
                backend = backend_for(model, params, data.y, data.x)
                _unweighted(model, backend, checked, data)
                has_x = data.x is not None
            rows = backend.row_curvature(checked, data)
            exact = exact and rows.exact
            ll, s, h = rows.loglik, rows.scores, rows.hessians
            _finite_rows("log-likelihood", np.where(np.isneginf(ll), 0.0, ll), start)
            _finite_rows("score", s, start)
            _finite_rows("Hessian of the log-likelihood", h, start)
            h = 0.5 * (h + np.swapaxes(h, 1, 2))
            if white:
                third = backend.third_derivatives(checked, data)
                check_finite("third derivative of the log-likelihood", third[None])
                sums["third"].add(third)
                sums["sh"].add(np.einsum("nj,nkl->jkl", s, h))
        outer, curv, d = _pieces(s, h, p)
        for name, value in [
            ("score", s.sum(axis=0)),
            ("gram", s.T @ s),
            ("hessian", h.sum(axis=0)),
            ("d", d.sum(axis=0)),
            ("d2", np.sum(d * d, axis=0)),
            ("outer2", np.sum(outer * outer, axis=0)),
            ("curv2", np.sum(curv * curv, axis=0)),
        ]:
            sums[name].add(value)
        factor.add(np.concatenate([s, d], axis=1))
        cov.add(s)
        start += data.n

    def grad_d() -> np.ndarray:
        sh = sums["sh"].value
        return np.asarray(sums["third"].value + sh.transpose(1, 0, 2) + sh)

    _enough_rows(start, p)
    n, r, score_total = start, factor.r, sums["score"].value
    return checked, RowTerms(
        n=n,
        exact=exact,
        empirical=sums["gram"].value,
        observed=-sums["hessian"].value,
        centred=cov.m2 / n,
        score_total=score_total,
        score_mean=score_total / n,
        d_total=sums["d"].value,
        d_norm=np.sqrt(sums["d2"].value),
        outer_norm=np.sqrt(sums["outer2"].value),
        curv_norm=np.sqrt(sums["curv2"].value),
        grad_d=grad_d,
        scores=r[:, :p],
        indicators=r[:, p:],
        design=source if has_x else None,
    )
