r"""A fitted GLM: :class:`GLMFit`, a :class:`~fisherlab.FitResult` that knows R's conventions.

``dispersion="ml"`` (the default) is the maximum-likelihood fit as it is: every covariance
kind of :meth:`~fisherlab.FitResult.cov`, z tests. ``dispersion="r"`` reports the coefficients
as R's ``summary.glm`` does:

- ``cov("observed")`` and ``cov("expected")`` put R's :math:`\hat\phi(X^\top W X)^{-1}`
  (:func:`~fisherlab.models.glm_covariance`, Pearson :math:`\hat\phi` for gaussian, Gamma and
  inverse Gaussian, :math:`\phi = 1` for the others) in the coefficients' block. The extra
  parameter (``sigma``, ``shape``, ``alpha``) keeps its maximum-likelihood variance from the
  same kind, and its covariance with the coefficients is 0: the mean and dispersion
  parameters of a GLM are orthogonal in the expected information. The robust kinds
  (``sandwich``, ``cluster``) and ``empirical`` are unchanged.
- Where R estimates :math:`\phi` (Pearson families) the coefficients' Wald statistics are t
  on :math:`N - p` degrees of freedom (:meth:`GLMFit.wald_df`), so ``summary()``,
  ``to_pandas()`` and ``conf_int()`` print R's t tests and use t quantiles,
  :math:`\hat\beta_j \pm t_{N-p,(1+\text{level})/2}\,se_j` (R's ``confint.default`` would use
  normal quantiles with the same standard errors; ``confint()`` profiles the likelihood).

Every GLM fit also carries R's residual and null degrees of freedom and deviances
(:attr:`GLMFit.df_resid`, :attr:`GLMFit.null_deviance`, :attr:`GLMFit.df_null`).

A fit on a source of chunks (``res.data`` a :class:`~fisherlab.data._chunks.StreamedData`, as
:func:`fisherlab.glm` gives for a table read in chunks) computes each of these by passes over
``res.data.source`` (sums over chunks in float64 with compensation; equal to the in-memory values
to rounding), once: the null deviance, the null degrees of freedom and R's dispersion are kept
after their first use. What needs the N rows in memory is ``None`` there: :attr:`GLMFit.table`
and :attr:`GLMFit.rows` (so ``cov("cluster", groups=...)`` takes labels of the fitted rows, not
a column name).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from .._errors import InvalidDataError
from .._options import CovKind, GLMDispersion, choose
from .._precision import float64_methods
from ..inference import FitResult
from ..information import Covariance
from ._deviance import constant_columns, null_deviance, streamed_source
from ._families import FAMILIES
from ._glm import GLM, check_glm, coefficient_index
from ._summaries import glm_covariance, glm_dispersion

__all__ = ["GLMFit"]

_MODEL_BASED = (CovKind.OBSERVED, CovKind.EXPECTED)


@float64_methods
class GLMFit(FitResult):
    """A fit of :func:`~fisherlab.models.glm`: a :class:`~fisherlab.FitResult` with R's GLM conventions.

    :func:`fisherlab.glm` and :func:`fisherlab.models.fit_glm` return it. Everything of
    :class:`~fisherlab.FitResult` works as there; the module docstring says what
    ``dispersion="r"`` changes.

    Attributes:
        dispersion: ``"ml"`` or ``"r"``.
        beta_index: positions of the coefficients among :attr:`names`.
        newdata_design: for a fit from a formula (:func:`fisherlab.glm`), the function that
            builds the covariates of new rows from a DataFrame of the original columns
            (:meth:`predict`); ``None`` otherwise.
        table: for a fit from a formula, the table it was fitted to (``None`` otherwise), and
            ``rows`` the positions of the fitted rows in it (all, or those left after
            ``missing="drop"``). With them ``cov("cluster", groups=...)`` takes a column name of
            the table, or labels for every row of the table, and keeps the fitted rows' labels.
            Both are ``None`` for a fit that streamed its data (module docstring).
    """

    dispersion: str
    beta_index: np.ndarray
    newdata_design: Callable[[Any], Any] | None
    table: Any
    rows: np.ndarray | None
    _r_cov: np.ndarray | None
    # computed once: passes over the data for a fit on a source of chunks
    _null_deviance: float | None
    _df_null: int | None
    _dispersion_r: float | None

    @classmethod
    def from_fit(cls, result: FitResult, dispersion: str = "ml") -> GLMFit:
        """The fit ``result`` of a GLM as a :class:`GLMFit` (a shallow copy) with ``dispersion``.

        Raises:
            TypeError: ``result`` is not a fit of a GLM.
            InvalidOptionError: ``dispersion`` is not ``"ml"`` or ``"r"``.
        """
        check_glm(result.model, "GLMFit")
        choice = choose(GLMDispersion, dispersion, "dispersion")
        twin = copy.copy(result)
        twin.__class__ = cls
        assert isinstance(twin, GLMFit)
        twin.dispersion = choice.value
        twin.beta_index = coefficient_index(result.params)
        twin._info = dict(result._info)
        twin._r_cov = None
        for name in ("newdata_design", "table", "rows", "_null_deviance", "_df_null", "_dispersion_r"):
            setattr(twin, name, getattr(result, name, None))
        return twin

    def with_dispersion(self, dispersion: str) -> GLMFit:
        """The same fit reported with ``dispersion`` (``"ml"`` or ``"r"``)."""
        return GLMFit.from_fit(self, dispersion)

    @property
    def glm(self) -> GLM:
        """The fitted :class:`~fisherlab.models.GLM`."""
        assert isinstance(self.model, GLM)
        return self.model

    @property
    def r_style(self) -> bool:
        """Whether the coefficients are reported with R's ``summary.glm`` dispersion."""
        return self.dispersion == GLMDispersion.R.value

    @property
    def pearson(self) -> bool:
        """Whether R estimates this family's dispersion by Pearson's statistic (and prints t tests)."""
        return bool(FAMILIES[self.glm.family].pearson)

    @property
    def df_resid(self) -> int:
        """R's residual degrees of freedom :math:`N - p` (:math:`p` the number of coefficients)."""
        return int(self.nobs - self.beta_index.size)

    @property
    def df_null(self) -> int:
        """R's null degrees of freedom: :math:`N - 1` with a constant column in the design, else :math:`N`."""
        if self._df_null is None:
            source = streamed_source(self)
            constant, _ = constant_columns(self.data.x if source is None else source, self.glm.family)
            self._df_null = int(self.nobs - (1 if constant.any() else 0))
        return self._df_null

    @property
    def null_deviance(self) -> float:
        """R's ``null.deviance``, the intercept-only deviance (:func:`~fisherlab.models.null_deviance`)."""
        if self._null_deviance is None:
            self._null_deviance = null_deviance(self)
        return self._null_deviance

    @property
    def dispersion_r(self) -> float:
        """R's ``summary.glm`` dispersion :math:`\\hat\\phi` (:func:`~fisherlab.models.glm_dispersion`)."""
        if self._dispersion_r is None:
            self._dispersion_r = glm_dispersion(self, "auto")
        return self._dispersion_r

    def cov(
        self,
        kind: str = "observed",
        *,
        scale: str = "user",
        hc: str | None = None,
        groups: Any = None,
        small_sample: bool | None = None,
    ) -> Covariance:
        """:meth:`fisherlab.FitResult.cov`; with ``dispersion="r"`` the coefficients' block of the
        ``observed`` and ``expected`` kinds is R's :math:`\\hat\\phi(X^\\top W X)^{-1}` (module docstring)."""
        if groups is not None:
            groups = self._fitted_groups(groups)
        base = super().cov(kind, scale=scale, hc=hc, groups=groups, small_sample=small_sample)
        if not self.r_style or choose(CovKind, kind, "kind") not in _MODEL_BASED:
            return base
        if self._r_cov is None:
            self._r_cov = glm_covariance(self, "auto").matrix
        b = self.beta_index
        cov = np.array(base.matrix, dtype=np.float64)
        cov[b, :] = 0.0
        cov[:, b] = 0.0
        cov[np.ix_(b, b)] = self._r_cov
        others = f"; {base.method} for the others" if b.size < len(self.names) else ""
        label = f"R's summary.glm φ̂ (XᵀWX)⁻¹ for the coefficients, φ̂ = {self.dispersion_r:.6g}{others}"
        return Covariance(cov, base.names, method=label)

    def _fitted_groups(self, groups: Any) -> Any:
        """Cluster labels on the fitted rows: a column of :attr:`table` by name, or labels for
        every row of the table restricted to the fitted rows; anything else as given."""
        if self.table is None or self.rows is None:
            return groups
        if isinstance(groups, str):
            if groups not in self.table.columns:
                raise InvalidDataError(
                    f"groups={groups!r} is not a column of the data; columns are: "
                    f"{', '.join(map(str, self.table.columns))}"
                )
            return np.asarray(self.table[groups])[self.rows]
        n = int(np.shape(groups)[0]) if np.ndim(groups) >= 1 else -1
        if n == len(self.table) != self.nobs:
            return np.asarray(groups)[self.rows]
        return groups

    def wald_df(self, kind: str = "observed") -> np.ndarray:
        """:meth:`fisherlab.FitResult.wald_df`: :math:`N - p` for the coefficients under ``dispersion="r"``
        where R estimates the dispersion by Pearson's statistic (``observed``/``expected`` kinds), else ∞."""
        df = super().wald_df(kind)
        if self.r_style and self.pearson and choose(CovKind, kind, "kind") in _MODEL_BASED:
            df[self.beta_index] = self.df_resid
        return df
