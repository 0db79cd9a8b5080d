r"""R's ``summary.glm``: the dispersion :math:`\hat\phi` and the covariance :math:`\hat\phi(X^\top W X)^{-1}`.

The Pearson statistic :math:`X^2 = \sum_i w_i (y_i/w_i-\hat\mu_i)^2/V(\hat\mu_i)` over
:math:`N-p` estimates :math:`\phi` where R does (the families whose record has
``pearson=True``: gaussian, Gamma, inverse Gaussian); R takes :math:`\phi = 1` for
the others. :func:`glm_covariance` scales the expected Fisher information of
:math:`\beta` by the chosen :math:`\hat\phi`. For a fit on a source of chunks (``res.data`` a
:class:`~fisherlab.data._chunks.StreamedData`) :math:`X^2` and the information are sums over the
chunks of ``res.data.source`` (float64, compensated).

References:
    R Core Team, ``?summary.glm``; P. McCullagh and J. A. Nelder (1989),
    *Generalized Linear Models*, 2nd ed., Chapman & Hall, sec. 2.5 and 9.2.
"""

from __future__ import annotations

import enum
import math
from typing import Any

import numpy as np

from .._precision import float64
from ..data import Data
from ..inference import FitResult
from ..information import Covariance, fisher
from ._design import host_design, host_weights
from ._deviance import streamed_source
from ._families import FAMILIES
from ._glm import GLM, check_glm

__all__ = ["Dispersion", "glm_covariance", "glm_dispersion"]


class Dispersion(str, enum.Enum):
    """Which dispersion :math:`\\phi` :func:`glm_dispersion` and :func:`glm_covariance` use."""

    AUTO = "auto"
    PEARSON = "pearson"
    ML = "ml"


def _as_dispersion(value: Any) -> Dispersion | float:
    if isinstance(value, str):
        try:
            return Dispersion(value)
        except ValueError:
            pass
    elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        v = float(value)
        if math.isfinite(v) and v > 0:
            return v
    raise ValueError(
        f"dispersion={value!r} is not one of {[d.value for d in Dispersion]} or a positive number"
    )


def _check_result(result: Any, caller: str) -> tuple[GLM, FitResult]:
    if not isinstance(result, FitResult):
        raise TypeError(f"{caller} needs the result of fl.fit, got {type(result).__name__}")
    return check_glm(result.model, caller), result


def _pearson_terms(model: GLM, params: Any, y: Any, x: Any) -> np.ndarray:
    r"""Per-row :math:`w_i (y_i - n_i\hat\mu_i)^2 / (n_i V(\hat\mu_i))`."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    _, trials, _ = host_design(x, model.family)
    weights = host_weights(x, model.family)
    mu = model.mean(params, x)
    resid = y - trials * mu
    return np.asarray(weights * resid**2 / (trials * model.variance_function(mu, params)))


def _pearson(model: GLM, result: FitResult) -> float:
    source = streamed_source(result)
    if source is None:
        chi2 = float(np.sum(_pearson_terms(model, result.params, result.data.y, result.data.x)))
        n, p = host_design(result.data.x, model.family)[0].shape
    else:

        def term(data: Data) -> tuple[float]:
            return (float(np.sum(_pearson_terms(model, result.params, data.y, data.x))),)

        (total,), n = source.reduce(term)
        chi2, p = float(total), int(np.size(result.params["beta"]))
    if n <= p:
        raise ValueError(f"the Pearson dispersion needs more rows than coefficients (N = {n}, p = {p})")
    return chi2 / (n - p)


@float64
def glm_dispersion(result: FitResult, method: str = "auto") -> float:
    r"""The dispersion :math:`\hat\phi` of a fitted GLM, as R's ``summary.glm`` reports it.

    .. math:: \hat\phi_{\text{Pearson}} = \frac{1}{N-p}\sum_{i=1}^N
              \frac{w_i\,(y_i/w_i - \hat\mu_i)^2}{V(\hat\mu_i)}

    (:math:`w_i` the binomial trials, else 1; :math:`p` the number of
    coefficients; :math:`V` as in the module table, with :math:`\hat\alpha` for
    the negative binomial).

    Args:
        result: a fit of a :class:`GLM`.
        method: ``"auto"`` (R's ``summary.glm``: 1 for binomial and Poisson, and
            for the negative binomial as ``MASS::glm.nb`` reports it; Pearson for
            gaussian, Gamma, inverse Gaussian), ``"pearson"`` (always the Pearson
            estimate: R's quasi-families ``quasibinomial``/``quasipoisson``, or
            ``glm(family = negative.binomial(theta))``), or ``"ml"`` (the
            maximum-likelihood value implied by the fitted extra parameter:
            :math:`\hat\sigma^2`, :math:`1/\hat\nu`, :math:`1/\hat\lambda`; 1 for the others).

    Returns:
        :math:`\hat\phi` (float).

    Raises:
        TypeError: ``result`` is not a fit of a :class:`GLM`.
        ValueError: unknown ``method``; Pearson with :math:`N \le p`.

    Examples:
        >>> import fisherlab as fl, numpy as np
        >>> from fisherlab.models import glm, glm_dispersion, glm_start
        >>> X = np.column_stack([np.ones(4), [0.0, 1.0, 2.0, 3.0]])
        >>> y = np.array([1.0, 3.0, 4.0, 7.0])
        >>> m = glm("gaussian")
        >>> res = fl.fit(m, y, X, init=glm_start(m, y, X))
        >>> round(glm_dispersion(res), 6), round(glm_dispersion(res, "ml"), 6)   # RSS/(N-p), RSS/N
        (0.35, 0.175)
    """
    model, result = _check_result(result, "glm_dispersion")
    choice = _as_dispersion(method)
    if not isinstance(choice, Dispersion):
        raise ValueError(f"method must be one of {[d.value for d in Dispersion]}, got {method!r}")
    if choice is Dispersion.ML:
        return model.ml_dispersion(result.params)
    if choice is Dispersion.AUTO and not FAMILIES[model.family].pearson:
        return 1.0
    return _pearson(model, result)


@float64
def glm_covariance(result: FitResult, dispersion: str | float = "auto") -> Covariance:
    r"""Covariance of :math:`\hat\beta` as R's ``summary.glm`` gives it: :math:`\hat\phi\,(X^\top W X)^{-1}`.

    :math:`W = \operatorname{diag}\big(w_i\,\mu'(\eta_i)^2/V(\mu_i)\big)` are the
    Fisher-scoring (IRLS) weights at the estimate. Since the expected Fisher
    information of :math:`\beta` with the dispersion known is
    :math:`X^\top W X/\phi`, this is computed as
    :math:`\hat\phi\,\phi_{\text{fit}}^{-1}\,F_{\beta\beta}^{-1}`, with
    :math:`F_{\beta\beta}` the β-block of :func:`fisherlab.fisher` at the
    estimate and :math:`\phi_{\text{fit}}` the dispersion the fitted extra
    parameter implies.

    Which standard error is which:

    - ``glm_covariance(res)`` (``dispersion="auto"``): R's ``summary(glm(...))``
      and statsmodels' ``GLM(...).fit()``; for the negative binomial R's
      ``summary(MASS::glm.nb(...))`` (φ = 1, α treated as known).
    - ``glm_covariance(res, "pearson")``: the quasi-likelihood covariance
      (R's ``quasipoisson``/``quasibinomial``; ``glm(family = negative.binomial(theta))``).
    - ``glm_covariance(res, "ml")``: the ML dispersion, equal to the β-block of
      ``res.cov("expected")`` (mean and dispersion parameters are orthogonal).
    - ``res.se()`` / ``res.cov()``: inverse *observed* information with the
      dispersion fitted by ML. For a canonical link (and the gaussian with the
      identity link) its β-block equals ``"ml"`` here; it is smaller than R's by
      the factor :math:`\sqrt{\hat\phi_{ML}/\hat\phi_{\text{Pearson}}}`
      (:math:`\sqrt{(N-p)/N}` for the gaussian). Non-canonical links differ
      further, since observed and expected information differ there.

    Args:
        result: a maximum-likelihood fit of a :class:`GLM` (any prior is ignored).
        dispersion: ``"auto"``, ``"pearson"``, ``"ml"`` (see :func:`glm_dispersion`)
            or a positive number :math:`\phi`.

    Returns:
        :class:`~fisherlab.Covariance` over ``beta[0] .. beta[p-1]``.

    Raises:
        TypeError: ``result`` is not a fit of a :class:`GLM`.
        ValueError: a bad ``dispersion``.
        SingularInformationError: :math:`X^\top W X` is singular (collinear
            columns, named).

    Examples:
        >>> import fisherlab as fl, numpy as np
        >>> from fisherlab.models import glm, glm_covariance, glm_start
        >>> X = np.column_stack([np.ones(4), [0.0, 1.0, 2.0, 3.0]])
        >>> y = np.array([1.0, 3.0, 4.0, 7.0])
        >>> m = glm("gaussian")
        >>> res = fl.fit(m, y, X, init=glm_start(m, y, X))
        >>> glm_covariance(res).matrix.round(6).tolist()   # 0.35 (X^T X)^-1, as lm()
        [[0.245, -0.105], [-0.105, 0.07]]
        >>> round(glm_covariance(res).se()["beta[1]"] / res.se()["beta[1]"], 6)   # sqrt(N/(N-p))
        1.414214
    """
    model, result = _check_result(result, "glm_covariance")
    choice = _as_dispersion(dispersion)
    phi = choice if isinstance(choice, float) else glm_dispersion(result, choice.value)
    source = streamed_source(result)
    info = fisher(model, result.params, result.data.x if source is None else source)
    if model.dispersion_name is not None:
        info = info.fix([model.dispersion_name])
    scale = phi / model.ml_dispersion(result.params)
    cov = info.cov()
    label = choice if isinstance(choice, float) else choice.value
    return Covariance(cov.matrix * scale, cov.names, method=f"glm expected, dispersion {phi:.6g} ({label})")
