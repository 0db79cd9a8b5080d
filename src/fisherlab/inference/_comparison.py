r"""Comparing fits: information criteria, the deviance and the likelihood-ratio test of nested models.

For a maximum-likelihood fit with total log-likelihood :math:`\hat\ell = \sum_{i=1}^N \ell_i(\hat\theta)`
(no 1/N) and :math:`k` estimated parameters (every flattened parameter of the fit, a GLM's
dispersion parameter included when it is estimated),

.. math:: \mathrm{AIC} = -2\hat\ell + 2k, \qquad \mathrm{BIC} = -2\hat\ell + k\log N .

This is R's ``AIC()``/``BIC()`` of a ``glm`` fit for the gaussian and inverse Gaussian
families (R counts their dispersion and evaluates the likelihood at its ML value
``deviance/N``), binomial and Poisson (no dispersion) and ``MASS::glm.nb`` (theta counted).
R's ``Gamma()$aic`` evaluates the likelihood at the dispersion ``deviance/N`` rather than at
the ML shape, so for a Gamma GLM fisherlab's AIC (at the ML shape) is smaller than R's by
:math:`2[\ell(\hat\nu) - \ell(N/D)] \ge 0`. statsmodels' ``GLMResults.aic`` counts
:math:`k = p` (the dispersion is not counted), i.e. 2 less than R's for the gaussian.

The likelihood-ratio test of a smaller model nested in a bigger one is

.. math:: \mathrm{LR} = 2(\hat\ell_{\text{big}} - \hat\ell_{\text{small}}),\qquad
          \mathrm{df} = k_{\text{big}} - k_{\text{small}},\qquad p = P(\chi^2_{\mathrm{df}} \ge \mathrm{LR})

(Wilks 1938), with every parameter, dispersion included, at its maximum-likelihood value in
each model: ``lmtest::lrtest`` in R, and R's ``anova(small, big, test = "LRT")`` for binomial
and Poisson GLMs. For GLMs with an estimated dispersion R's ``anova(..., test = "LRT")`` scales
the deviance difference by the bigger model's Pearson dispersion instead (and
``test = "F"`` is its F test); this is the plain likelihood-ratio test.

The deviance and the nesting checks that only some models can make are
``functools.singledispatch`` functions of the model (:func:`model_deviance`,
:func:`check_nested`), which :mod:`fisherlab.models` extends for its GLMs.

References:
    H. Akaike (1974), "A new look at the statistical model identification", *IEEE Trans.
    Automatic Control* 19, 716-723. G. Schwarz (1978), "Estimating the dimension of a model",
    *Ann. Statist.* 6, 461-464. S. S. Wilks (1938), "The large-sample distribution of the
    likelihood ratio for testing composite hypotheses", *Ann. Math. Statist.* 9, 60-62.
    R Core Team, ``?AIC``, ``?logLik.glm``, ``?anova.glm``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import numpy as np
import scipy.special

from .._errors import FisherlabArgumentError, MethodUnavailableError, ModelError
from .._format import format_pvalue
from .._precision import float64_methods
from ..data._chunks import StreamedData

__all__ = [
    "LikelihoodRatioTest",
    "akaike",
    "check_nested",
    "likelihood_ratio_test",
    "model_deviance",
    "schwarz",
]

#: A likelihood ratio below ``-_LR_ROUNDING * max(1, |loglik|)`` is not rounding: the
#: "smaller" model fits better than the bigger one, so they are not nested (or a fit is off its
#: maximum). Fits stop at a Newton decrement of about 1e-8, which moves the log-likelihood by
#: far less than this.
_LR_ROUNDING = 1e-7


@float64_methods
@dataclasses.dataclass(frozen=True)
class LikelihoodRatioTest:
    r"""The likelihood-ratio test of a smaller (null) model nested in a bigger one.

    Attributes:
        statistic: :math:`\mathrm{LR} = 2(\hat\ell_{\text{big}} - \hat\ell_{\text{small}}) \ge 0`.
        df: :math:`k_{\text{big}} - k_{\text{small}}`, the number of parameters the null fixes.
        pvalue: :math:`P(\chi^2_{\mathrm{df}} \ge \mathrm{LR})`.
        loglik_null: :math:`\hat\ell_{\text{small}}`.
        loglik_alt: :math:`\hat\ell_{\text{big}}`.
    """

    statistic: float
    df: int
    pvalue: float
    loglik_null: float
    loglik_alt: float

    def __str__(self) -> str:
        return f"LR test: chi2({self.df}) = {self.statistic:.6g}, p = {format_pvalue(self.pvalue)}"


def _estimated(result: Any, what: str) -> None:
    if getattr(result, "prior", None) is not None:
        raise MethodUnavailableError(
            f"{what} needs a maximum-likelihood fit; this fit has a prior (a MAP estimate), whose "
            "log-likelihood is not the maximum: refit without prior="
        )


def akaike(result: Any) -> float:
    r""":math:`-2\hat\ell + 2k` of a maximum-likelihood fit (see the module docstring)."""
    _estimated(result, "AIC")
    return -2.0 * float(result.loglik) + 2.0 * len(result.names)


def schwarz(result: Any) -> float:
    r""":math:`-2\hat\ell + k\log N` of a maximum-likelihood fit (see the module docstring)."""
    _estimated(result, "BIC")
    return -2.0 * float(result.loglik) + len(result.names) * math.log(result.nobs)


@functools.singledispatch
def model_deviance(model: Any, result: Any) -> float:
    r"""The deviance :math:`D = \sum_i d(y_i, \hat\mu_i)` of ``result``, a fit of ``model``.

    A ``functools.singledispatch`` function of the model's type: the default raises, and
    :mod:`fisherlab.models` registers the GLM's (R's ``deviance()``). Register another model
    class with ``model_deviance.register(MyModel)``.

    Raises:
        MethodUnavailableError: the model defines no saturated model, so no deviance.
    """
    raise MethodUnavailableError(
        f"deviance: a {type(model).__name__} defines no saturated model, so no deviance; it is defined "
        "for GLMs (fisherlab.models.glm). Compare fits with aic, bic or lr_test instead"
    )


@functools.singledispatch
def check_nested(model: Any, big: Any, small: Any) -> None:
    """Raise :class:`~fisherlab.ModelError` when ``small`` cannot be nested in ``big`` (a fit of ``model``).

    A ``functools.singledispatch`` function of the bigger model's type; the default checks
    nothing beyond :func:`likelihood_ratio_test`'s own checks, and :mod:`fisherlab.models`
    registers the GLM's (same family and link, the smaller design in the column space of the
    bigger one, same offset and trials).
    """


def _observations(data: Any) -> Any:
    """The ``y`` to compare: all of it in memory; a streamed source's first chunk (the rows are
    compared by count; reading two sources through to compare them would cost a pass each)."""
    return data.first.y if isinstance(data, StreamedData) else data.y


def _same_leaves(a: Any, b: Any) -> bool:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    if len(la) != len(lb):
        return False
    for u, v in zip(la, lb, strict=True):
        u, v = np.asarray(u), np.asarray(v)
        if u.shape != v.shape or not np.array_equal(u, v, equal_nan=False):
            return False
    return True


def likelihood_ratio_test(big: Any, small: Any) -> LikelihoodRatioTest:
    r"""The likelihood-ratio test of ``small`` nested in ``big`` (two maximum-likelihood fits).

    Checks what can be checked of the nesting: both fits without a prior, the same
    number of rows and the same observations ``y``, fewer parameters in ``small``, a
    likelihood ratio that is not negative beyond rounding, and the model's own check
    (:func:`check_nested`; GLMs: family, link, design column spaces, offset, trials).

    Raises:
        FisherlabArgumentError: ``small`` is not a fit result.
        ModelError: the fits cannot be nested (which check failed is said).
        MethodUnavailableError: a fit has a prior.
    """
    if not hasattr(small, "loglik") or not hasattr(small, "names") or not hasattr(small, "data"):
        raise FisherlabArgumentError(
            f"lr_test needs the smaller model's fit (a FitResult), got {type(small).__name__}"
        )
    _estimated(big, "lr_test")
    _estimated(small, "lr_test")
    if big.nobs != small.nobs:
        raise ModelError(
            f"lr_test: the fits have different numbers of rows (N = {big.nobs} and {small.nobs}); "
            "nested models must be fitted to the same rows (drop missing values once, before both fits)"
        )
    if not _same_leaves(_observations(big.data), _observations(small.data)):
        raise ModelError(
            "lr_test: the two fits have different observations y; nested models must be fitted to the "
            "same data"
        )
    k_big, k_small = len(big.names), len(small.names)
    if k_small >= k_big:
        raise ModelError(
            f"lr_test: the smaller model must have fewer parameters than this fit, got {k_small} and "
            f"{k_big}; call it as bigger.lr_test(smaller)"
        )
    check_nested(big.model, big, small)
    statistic = 2.0 * (float(big.loglik) - float(small.loglik))
    if statistic < -_LR_ROUNDING * max(1.0, abs(float(big.loglik))):
        raise ModelError(
            f"lr_test: the smaller model has the higher log-likelihood ({small.loglik:.10g} > "
            f"{big.loglik:.10g}), so it is not nested in this fit (or a fit is not at its maximum)"
        )
    statistic = max(statistic, 0.0)
    df = k_big - k_small
    pvalue = float(scipy.special.chdtrc(df, statistic))
    return LikelihoodRatioTest(statistic, df, pvalue, float(small.loglik), float(big.loglik))
