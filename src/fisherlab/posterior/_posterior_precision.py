r"""``la.posterior_precision``: :math:`H + \Lambda` as a curvature object.

:class:`PosteriorPrecision` answers what every :class:`~fisherlab.Curvature` answers (``mv``,
``diagonal``, ``to_dense``, ``solve``, ``logdet``, ``trace``, ``eigh``, ``spectral_density``)
for the curvature :math:`H` of the log-likelihood plus the prior precision
:math:`\Lambda = \operatorname{diag}(\lambda)`; ``damping`` adds :math:`\delta I` on top. Solves
and log-determinants come from the structure's :mod:`._forms` (factored once), products from the
curvature itself.
"""

from __future__ import annotations

import numpy as np

from .._errors import MethodUnavailableError, SingularInformationError
from ..operators._base import Curvature
from ..operators._kfac import KFAC
from ..operators._structures import Block, Dense, Diagonal, LowRank
from ._forms import Composite, DenseForm, DiagonalForm, Form, KronForm, LowRankForm

__all__ = ["EIGH_DENSE_MAX_PARAMS", "PosteriorPrecision", "form_of"]

#: ``eigh`` of a posterior precision whose prior is not a multiple of the identity builds the
#: matrix; up to this many parameters.
EIGH_DENSE_MAX_PARAMS = 4000


def _singular(curv: Curvature) -> SingularInformationError:
    return SingularInformationError(
        f"the posterior precision (the {curv.kind} curvature, structure {curv.structure!r}, plus the prior "
        "precision) is not positive definite: the curvature has negative eigenvalues (an indefinite GGN "
        "or Hessian) that the prior does not outweigh; raise prior_precision, or use kind='fisher' (or "
        "'ggn' with a head whose negative log-likelihood is convex)"
    )


def form_of(curv: Curvature) -> Form:
    """The :mod:`._forms` form of a curvature of structure dense, block, diagonal, K-FAC or low rank."""

    def singular() -> SingularInformationError:
        return _singular(curv)

    psd = curv.exact.positive_semidefinite()

    if isinstance(curv, Dense):
        return DenseForm(curv.matrix, singular, psd)
    if isinstance(curv, Diagonal):
        return DiagonalForm(curv.diag, singular, psd)
    if isinstance(curv, Block):
        parts = [
            (np.arange(a, b), DenseForm(m, singular, psd))
            for (_, a, b), m in zip(curv.layers, curv.blocks, strict=True)
        ]
        return Composite(parts, curv.p, singular)
    if isinstance(curv, LowRank):
        return LowRankForm(curv.values, curv.vectors, curv.rest, singular)
    if isinstance(curv, KFAC):
        kparts: list[tuple[np.ndarray, Form]] = [
            (k.index.ravel(), KronForm(k, singular, psd)) for k in curv.factors
        ]
        kparts += [(np.arange(a, b), DiagonalForm(curv.rest_diag[a:b], singular, psd)) for a, b in curv.rest]
        return Composite(kparts, curv.p, singular)
    raise MethodUnavailableError(  # pragma: no cover - fl.laplace chooses the structure
        f"a Laplace posterior needs structure full, block, diagonal, kfac or lowrank, not {curv.structure!r}"
    )


class PosteriorPrecision(Curvature):
    """:math:`H + \\operatorname{diag}(\\lambda)` (see the module docstring).

    Attributes:
        curvature: the curvature :math:`H` (a :class:`~fisherlab.Curvature`).
        prior: :math:`\\lambda`, the prior precision of every parameter, ``(P,)``.
    """

    def __init__(self, curv: Curvature, form: Form, prior: np.ndarray) -> None:
        super().__init__(curv.exact)
        self.structure = curv.structure
        self.curvature, self.form, self.prior = curv, form, prior
        self.error = curv.error

    def __repr__(self) -> str:
        return f"PosteriorPrecision(kind={self.kind!r}, structure={self.structure!r}, P={self.p}, N={self.n})"

    def _mv_flat(self, v: np.ndarray) -> np.ndarray:
        return self.curvature._mv_flat(v) + self.prior * v

    def _diagonal_flat(self) -> np.ndarray:
        return self.curvature._diagonal_flat() + self.prior

    def _dense_matrix(self) -> np.ndarray:
        return self.curvature._dense_matrix() + np.diag(self.prior)

    def _solve_flat(self, delta: float, rhs: np.ndarray) -> np.ndarray:
        return self.form.cov_rows(self.prior + delta, rhs[None, :])[0]

    def _logdet(self, delta: float) -> float:
        return self.form.logdet(self.prior + delta)

    def _eigh(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if np.all(self.prior == self.prior[0]):  # a shift of the curvature's own eigenpairs
            w, v = self.curvature._eigh(k)
            return w + self.prior[0], v
        if self.p > EIGH_DENSE_MAX_PARAMS:
            raise MethodUnavailableError(
                f"eigh of a posterior precision with a prior that is not a multiple of the identity builds "
                f"the matrix, and P = {self.p} is more than {EIGH_DENSE_MAX_PARAMS}; use a scalar prior "
                "precision, or eigh of la.posterior_precision.curvature"
            )
        w, v = np.linalg.eigh(self._dense_matrix())
        order = np.argsort(w)[::-1][:k]
        return w[order], v[:, order]
