r"""Fitting a GLM: R's starting values, the negative binomial's boundary and its overdispersion test.

:func:`fit_glm` is :func:`~fisherlab.fit` from :func:`~fisherlab.models.glm_start`, plus one
case a plain fit cannot settle: a negative binomial whose data show no overdispersion. Its
:math:`\alpha` (with :math:`\operatorname{Var} = \mu + \alpha\mu^2`) then has its maximum
likelihood on the boundary :math:`\alpha = 0` of the parameter space, the Poisson model; the
fit runs :math:`\log\alpha \to -\infty` and :func:`~fisherlab.fit` raises
:class:`~fisherlab.EstimateAtInfinityError`. Here that ends instead in the boundary estimate:
the Poisson fit, a GLM with ``fixed={"alpha": 0.0}``, with a note saying so.

:func:`overdispersion_test` is the likelihood-ratio test of :math:`H_0: \alpha = 0` that
Stata's ``nbreg`` prints. As :math:`\alpha = 0` is on the boundary, the statistic
:math:`\mathrm{LR} = 2(\ell_{NB} - \ell_{Poisson})` is not :math:`\chi^2_1` under the null but the
mixture :math:`\bar\chi^2_{01} = \tfrac12\chi^2_0 + \tfrac12\chi^2_1` (Self & Liang 1987), so
:math:`p = \tfrac12 P(\chi^2_1 \ge \mathrm{LR})` for :math:`\mathrm{LR} > 0` and :math:`p = 1`
at :math:`\mathrm{LR} = 0`.

References:
    S. G. Self and K.-Y. Liang (1987), "Asymptotic properties of maximum likelihood
    estimators and likelihood ratio tests under nonstandard conditions", *JASA* 82,
    605-610. A. C. Cameron and P. K. Trivedi (2013), *Regression Analysis of Count Data*,
    2nd ed., §3.4 (boundary LR test of overdispersion). StataCorp, *Stata Base Reference
    Manual*, ``nbreg`` ("LR test of alpha=0: chibar2(01)").
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import scipy.special

from .._errors import EstimateAtInfinityError, ModelError
from .._format import format_pvalue
from .._precision import float64, float64_methods
from ..data._chunks import StreamedData
from ..inference import FitResult, fit
from ._families import Family
from ._glm import GLM, check_glm, glm
from ._start import glm_start

__all__ = ["BoundaryTest", "fit_glm", "overdispersion_test"]

#: Components of the recession direction below this (relative) count as zero.
_PURE = 1e-2


@float64_methods
@dataclasses.dataclass(frozen=True)
class BoundaryTest:
    r"""A likelihood-ratio test of a parameter on the boundary of its space.

    Attributes:
        null: the hypothesis tested, e.g. ``"alpha = 0"``.
        statistic: :math:`\mathrm{LR} = 2(\ell_1 - \ell_0) \ge 0`.
        pvalue: :math:`P(\bar\chi^2_{01} \ge \mathrm{LR})`: :math:`\tfrac12 P(\chi^2_1 \ge \mathrm{LR})`
            for :math:`\mathrm{LR} > 0`, 1 at :math:`\mathrm{LR} = 0`.
        distribution: the null distribution's name, ``"chibar2(01)"``.
        loglik_null: :math:`\ell_0`, the log-likelihood on the boundary.
        loglik_alt: :math:`\ell_1`, the log-likelihood of the full model.
    """

    null: str
    statistic: float
    pvalue: float
    distribution: str
    loglik_null: float
    loglik_alt: float

    def __str__(self) -> str:
        p = format_pvalue(self.pvalue)
        return f"LR test of {self.null}: {self.distribution} = {self.statistic:.4g}, p = {p}"


def _chibar2_01(statistic: float) -> float:
    return 1.0 if statistic <= 0.0 else 0.5 * float(scipy.special.chdtrc(1, statistic))


def _alpha_to_zero(exc: EstimateAtInfinityError) -> bool:
    """Whether the recession direction is ``log(alpha) -> -inf`` alone."""
    d = exc.direction
    a = d.get("u(alpha)", 0.0)
    return a < 0 and all(abs(v) <= _PURE * abs(a) for k, v in d.items() if k != "u(alpha)")


def _poisson_limit(model: GLM) -> GLM:
    return glm(Family.NEGATIVE_BINOMIAL.value, model.link.value, fixed={"alpha": 0.0})


@float64
def fit_glm(model: GLM, y: Any, x: Any, *, init: Any = None, **options: Any) -> FitResult:
    r"""Maximum-likelihood fit of a GLM from R's starting values; a negative binomial may end on its boundary.

    The log-likelihood is the total :math:`\sum_i \log p(y_i \mid \mu_i, \cdot)` (no 1/N), as
    in :func:`~fisherlab.fit`. For ``negative_binomial`` with data that show no
    overdispersion (sample variance not above the mean, given the covariates) the maximum
    is at :math:`\alpha = 0`: the result is then the fit of the boundary model
    ``glm("negative_binomial", link, fixed={"alpha": 0.0})`` (the Poisson GLM), whose
    parameters are ``beta`` only, with a note stating the boundary and the test
    :func:`overdispersion_test` (:math:`\bar\chi^2_{01} = 0`, p = 1).

    Args:
        model: a GLM from :func:`~fisherlab.models.glm`.
        y: the response ``(N,)``.
        x: the design, as :func:`~fisherlab.models.glm` takes it.
        init: starting parameters; default :func:`~fisherlab.models.glm_start`.
        **options: passed to :func:`~fisherlab.fit` (``method``, ``tol``, ``max_iter``, ``prior``).

    Returns:
        The :class:`~fisherlab.FitResult`.

    Raises:
        EstimateAtInfinityError: the MLE of a coefficient does not exist (separation; a
            group whose counts are all zero), from :func:`~fisherlab.fit`.
        NotConvergedError, SingularInformationError, InvalidDataError: as :func:`~fisherlab.fit`.

    Examples:
        Counts with less spread than a Poisson's: alpha's estimate is its boundary 0.

        >>> import fisherlab as fl, numpy as np
        >>> from fisherlab import models
        >>> y = np.tile([2.0, 3.0, 4.0, 3.0], 25)
        >>> X = np.ones((100, 1))
        >>> res = models.fit_glm(models.glm("negative_binomial"), y, X)
        >>> res.names, round(float(np.exp(res.params["beta"][0])), 6)    # the Poisson mean, 3
        (['beta[0]'], 3.0)
        >>> print(models.overdispersion_test(res))
        LR test of alpha = 0: chibar2(01) = 0, p = 1
    """
    model = check_glm(model, "fit_glm")
    start = glm_start(model, y, x) if init is None else init
    try:
        return fit(model, y, x, init=start, **options)
    except EstimateAtInfinityError as exc:
        if model.family is not Family.NEGATIVE_BINOMIAL or model.dispersion_name is None:
            raise
        if not _alpha_to_zero(exc):
            raise
    boundary = _poisson_limit(model)
    res = fit(boundary, y, x, init={"beta": np.asarray(start["beta"])}, **options)
    res.notes.append(
        "alpha = 0: the negative binomial's alpha has its maximum likelihood on the boundary of its "
        "space (the data show no overdispersion), so the fit is its limit, the Poisson model; "
        "LR test of alpha = 0: chibar2(01) = 0, p = 1"
    )
    return res


@float64
def overdispersion_test(res: FitResult) -> BoundaryTest:
    r"""Likelihood-ratio test of no overdispersion, :math:`H_0: \alpha = 0`, for a negative binomial fit.

    .. math:: \mathrm{LR} = 2\,(\ell_{NB}(\hat\beta, \hat\alpha) - \ell_{Poisson}(\tilde\beta)),
              \qquad p = P(\bar\chi^2_{01} \ge \mathrm{LR}),

    with the Poisson GLM of the same link fitted to the same data (Stata's ``nbreg`` test;
    Self & Liang 1987 for the mixture). A result on the boundary (from :func:`fit_glm`) gives
    :math:`\mathrm{LR} = 0`, :math:`p = 1`.

    Args:
        res: a fit of ``glm("negative_binomial", ...)`` with ``alpha`` estimated (or on its
            boundary, from :func:`fit_glm`).

    Returns:
        :class:`BoundaryTest`.

    Raises:
        ModelError: ``res`` is not a negative binomial fit with ``alpha`` estimated.
    """
    model = res.model
    if not (isinstance(model, GLM) and model.family is Family.NEGATIVE_BINOMIAL):
        raise ModelError("overdispersion_test needs a fit of glm('negative_binomial'), got another model")
    if model.poisson_limit:
        return BoundaryTest("alpha = 0", 0.0, 1.0, "chibar2(01)", res.loglik, res.loglik)
    if model.dispersion_name is None:
        raise ModelError(
            f"overdispersion_test: alpha is fixed at {model.fixed['alpha']} in this model, not estimated"
        )
    null = _poisson_limit(model)
    start = {"beta": np.asarray(res.params["beta"])}
    if isinstance(res.data, StreamedData):  # the Poisson fit streams over the same source
        res0 = fit(null, res.data.source, init=start)
    else:
        res0 = fit(null, np.asarray(res.data.y), res.data.x, init=start)
    statistic = max(0.0, 2.0 * (res.loglik - res0.loglik))
    return BoundaryTest(
        "alpha = 0", statistic, _chibar2_01(statistic), "chibar2(01)", res0.loglik, res.loglik
    )
