r"""The deviance of a GLM fit (R's ``deviance()``, ``null.deviance``) and the nesting check of two GLM fits.

.. math:: D = \sum_{i=1}^N d(y_i, \hat\mu_i), \qquad
          d(y, \mu) = 2\{\ell(y; y) - \ell(y; \mu)\}\big|_{\phi = 1}

with the unit deviance :math:`d` of the family's record (:attr:`FamilyRecord.deviance`):
gaussian :math:`(y-\mu)^2` (so :math:`D` is the residual sum of squares), binomial
:math:`2\{y\log\frac{y}{n\mu} + (n-y)\log\frac{n-y}{n(1-\mu)}\}` (``y`` successes out of
``n`` trials), Poisson :math:`2\{y\log(y/\mu) - (y-\mu)\}`, Gamma
:math:`-2\{\log(y/\mu) - (y-\mu)/\mu\}`, inverse Gaussian :math:`(y-\mu)^2/(\mu^2 y)`, and the
negative binomial :math:`2\{y\log(y/\mu) - (y+\theta)\log\frac{y+\theta}{\mu+\theta}\}` at the
fitted :math:`\theta = 1/\hat\alpha` (``MASS::glm.nb``). The null deviance is the deviance of the
model with the intercept only (when the design has a constant column) and the same offset,
trials and extra parameter; without a constant column, of :math:`\mu_i = g^{-1}(o_i)`, as R does.

This module registers the GLM's :func:`~fisherlab.inference._comparison.model_deviance`
(``res.deviance``) and :func:`~fisherlab.inference._comparison.check_nested` (``res.lr_test``).

References:
    P. McCullagh and J. A. Nelder (1989), *Generalized Linear Models*, 2nd ed., Chapman & Hall,
    sec. 2.3. R Core Team, ``?family`` (``dev.resids``), ``?glm`` (``null.deviance``);
    W. N. Venables and B. D. Ripley (2002), *Modern Applied Statistics with S*, 4th ed. (``glm.nb``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._errors import ModelError
from .._precision import float64
from ..inference import FitResult, fit
from ..inference._comparison import check_nested, model_deviance
from ._design import host_design, host_weights
from ._families import FAMILIES, Family
from ._glm import GLM, check_glm, glm
from ._links import LINKS

__all__ = ["constant_column", "null_deviance"]

#: The smaller design lies in the bigger one's column space when its least-squares residual on
#: it is below this fraction of its norm (rounding of a QR solve is ~1e-13 relative).
_SPAN = 1e-8


def _extra_value(model: GLM, params: Any) -> float | None:
    """The value of the extra parameter (fixed or fitted), ``None`` without one."""
    if model.poisson_limit:
        return 0.0
    leaf = FAMILIES[model.family].extra
    if leaf is None:
        return None
    if leaf.name in model.fixed:
        return model.fixed[leaf.name]
    return float(np.asarray(params[leaf.name]))


def _deviance_at(
    model: GLM, y: np.ndarray, mu: np.ndarray, trials: np.ndarray, params: Any, weights: np.ndarray
) -> float:
    r""":math:`\sum_i w_i d(y_i, \mu_i)`, ``weights`` R's prior weights (ones without)."""
    unit = FAMILIES[model.family].deviance
    if unit is None:  # every family record has one; a record added without it
        raise ModelError(f"the {model.family.value} family's record has no unit deviance")
    return float(np.sum(weights * unit(y, mu, trials, _extra_value(model, params))))


@model_deviance.register(GLM)
def _glm_deviance(model: GLM, result: FitResult) -> float:
    y = np.asarray(result.data.y, dtype=np.float64).reshape(-1)
    _, trials, _ = host_design(result.data.x, model.family)
    mu = model.mean(result.params, result.data.x)
    return _deviance_at(model, y, mu, trials, result.params, host_weights(result.data.x, model.family))


def constant_column(X: np.ndarray) -> bool:
    """Whether the design has a constant non-zero column (an intercept), as R's null model asks."""
    return bool(np.any(np.all(X == X[:1], axis=0) & (X[0] != 0)))


@float64
def null_deviance(result: FitResult) -> float:
    r"""R's ``null.deviance`` of a GLM fit: the deviance of the intercept-only model.

    The null model keeps the fit's offset, trials and extra parameter (the negative binomial's
    :math:`\hat\alpha`, as ``MASS::glm.nb`` does). With a constant column in the design its
    intercept is fitted (closed form :math:`\hat\mu = \sum y_i / \sum n_i` without an offset);
    without one, :math:`\mu_i = g^{-1}(o_i)`.

    Args:
        result: a fit of :func:`~fisherlab.models.glm`.

    Returns:
        The null deviance (float); its degrees of freedom are :math:`N - 1` with an intercept,
        :math:`N` without.

    Raises:
        TypeError: ``result`` is not a fit of a GLM.
        NotConvergedError: the intercept-only fit with an offset failed.

    Example:
        >>> import fisherlab as fl, numpy as np
        >>> from fisherlab import models
        >>> X = np.column_stack([np.ones(4), [0.0, 1.0, 2.0, 3.0]])
        >>> res = models.fit_glm(models.glm("gaussian"), np.array([1.0, 3.0, 4.0, 7.0]), X)
        >>> round(models.null_deviance(res), 6)     # sum (y - mean y)^2
        18.75
    """
    model = check_glm(result.model, "null_deviance")
    y = np.asarray(result.data.y, dtype=np.float64).reshape(-1)
    X, trials, offset = host_design(result.data.x, model.family)
    weights = host_weights(result.data.x, model.family)
    link = LINKS[model.link]
    if not constant_column(X):
        mu = np.asarray(link.inv(offset), dtype=np.float64)
    elif not np.any(offset):
        mu = np.full(y.shape, np.sum(weights * y) / np.sum(weights * trials))
    else:
        leaf = FAMILIES[model.family].extra
        extra = _extra_value(model, result.params)
        fixed = {leaf.name: extra} if (leaf is not None and extra is not None) else None
        null = glm(model.family.value, model.link.value, fixed=fixed)
        x: dict[str, Any] = {"X": np.ones((y.size, 1)), "offset": offset}
        if isinstance(result.data.x, Mapping) and result.data.x.get("trials") is not None:
            x["trials"] = trials
        if isinstance(result.data.x, Mapping) and result.data.x.get("weights") is not None:
            x["weights"] = weights
        start = float(np.asarray(link.fun(np.sum(y) / np.sum(trials))) - np.mean(offset))
        res0 = fit(null, y, x, init={"beta": np.array([start])})
        mu = null.mean(res0.params, res0.data.x)
    return _deviance_at(model, y, mu, trials, result.params, weights)


def _design_of(res: FitResult, family: Family) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return host_design(res.data.x, family)


@check_nested.register(GLM)
def _glm_nested(model: GLM, big: FitResult, small: FitResult) -> None:
    other = small.model
    if not isinstance(other, GLM):
        raise ModelError(
            f"lr_test: this fit is a GLM and the smaller one a {type(other).__name__}; compare GLM fits "
            "with GLM fits (or two fl.Model fits)"
        )
    if other.family is not model.family:
        hint = ""
        if {model.family, other.family} == {Family.NEGATIVE_BINOMIAL, Family.POISSON}:
            hint = (
                " (the Poisson model is the negative binomial's boundary alpha = 0, where the LR "
                "statistic is not chi-square: use fisherlab.models.overdispersion_test)"
            )
        raise ModelError(
            f"lr_test: the fits have different families ({model.family.value} and "
            f"{other.family.value}), so they are not nested{hint}"
        )
    if other.link is not model.link:
        raise ModelError(
            f"lr_test: the fits have different links ({model.link.value} and {other.link.value}), "
            "so they are not nested"
        )
    if other.poisson_limit and not model.poisson_limit:
        raise ModelError(
            "lr_test: the smaller fit is the negative binomial's boundary alpha = 0, where the LR "
            "statistic is not chi-square: use fisherlab.models.overdispersion_test"
        )
    for name, value in other.fixed.items():
        if name in model.fixed and model.fixed[name] != value:
            raise ModelError(
                f"lr_test: the fits hold {name} fixed at different values ({model.fixed[name]} and "
                f"{value}), so they are not nested"
            )
        if name not in model.fixed and model.dispersion_name is None:
            raise ModelError(f"lr_test: the smaller fit fixes {name} = {value}, the bigger one has no {name}")
    if model.fixed and not other.fixed.keys() >= model.fixed.keys():
        raise ModelError(
            f"lr_test: this fit holds {model.fixed} fixed and the smaller one estimates it, so it is not "
            "nested in this fit"
        )
    Xb, tb, ob = _design_of(big, model.family)
    Xs, ts, os_ = _design_of(small, other.family)
    if not np.array_equal(ob, os_):
        raise ModelError("lr_test: the fits have different offsets, so they are not nested")
    if not np.array_equal(tb, ts):
        raise ModelError("lr_test: the fits have different binomial trials, so they are not nested")
    if not np.array_equal(host_weights(big.data.x, model.family), host_weights(small.data.x, other.family)):
        raise ModelError("lr_test: the fits have different prior weights, so they are not nested")
    if Xs.shape[1]:
        coef, *_ = np.linalg.lstsq(Xb, Xs, rcond=None)
        resid = np.linalg.norm(Xs - Xb @ coef, axis=0)
        scale = np.maximum(np.linalg.norm(Xs, axis=0), np.finfo(np.float64).tiny)
        outside = np.flatnonzero(resid > _SPAN * scale)
        if outside.size:
            j = int(outside[0])
            raise ModelError(
                f"lr_test: column {j} of the smaller fit's design is not "
                "in the column space of this fit's design, so the smaller model is not nested in it"
            )
