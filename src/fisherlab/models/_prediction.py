r"""Predictions of a GLM fit at new rows: the mean, the linear predictor and their delta-method errors.

For a new row with design :math:`x` and offset :math:`o`,

.. math:: \hat\eta = x^\top\hat\beta + o,\qquad \operatorname{se}(\hat\eta) = \sqrt{x^\top\Sigma_\beta\,x},
          \qquad \hat\mu = g^{-1}(\hat\eta),\qquad
          \operatorname{se}(\hat\mu) = \Big|\frac{d\mu}{d\eta}(\hat\eta)\Big|\operatorname{se}(\hat\eta),

with :math:`\Sigma_\beta` the coefficients' block of the fit's covariance (``res.cov(kind)``), and
the interval :math:`g^{-1}(\hat\eta \pm z_{(1+\text{level})/2}\operatorname{se}(\hat\eta))` (ordered), as
statsmodels' ``GLMResults.get_prediction(exog).summary_frame()`` computes it (with a t quantile on
:math:`N-p` degrees of freedom instead of :math:`z` where the fit reports t tests:
``fl.glm(..., dispersion="r")`` for a family whose dispersion R estimates). A fit from a formula
takes ``newdata`` as a DataFrame of the original columns and builds its design with the
formula (same factor levels and transforms). R's
``predict(fit, newdata, type = "link", se.fit = TRUE)`` gives ``eta``/``se_eta`` and
``type = "response"`` ``mean``/``se``, with R's ``summary.glm`` dispersion. For a binomial
model the mean is the success probability per trial (as ``GLM.mean``).

This module registers the GLM's :func:`~fisherlab.inference._prediction.model_predict`
(``res.predict``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .._errors import InvalidDataError
from .._options import probability
from ..inference import FitResult, wald_quantile
from ..inference._prediction import model_predict
from ._design import host_design
from ._glm import GLM, coefficient_index
from ._links import LINKS

__all__: list[str] = []


def _new_design(model: GLM, result: FitResult, newdata: Any, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = b.size
    builder = getattr(result, "newdata_design", None)
    if isinstance(newdata, pd.DataFrame) and builder is not None:
        X, _, offset = host_design(builder(newdata), model.family)
    elif isinstance(newdata, pd.DataFrame):
        columns = [result.names[i] for i in b]
        missing = [c for c in columns if c not in newdata.columns]
        if missing:
            raise InvalidDataError(
                f"predict: newdata lacks the design columns {missing}; a DataFrame must have one column "
                f"per coefficient, named as res.names: {columns}"
            )
        X = newdata[columns].to_numpy(dtype=np.float64)
        offset = np.zeros(X.shape[0])
    else:
        x = newdata if isinstance(newdata, Mapping) else {"X": newdata}
        X_arr = np.asarray(x.get("X"), dtype=np.float64)
        if X_arr.ndim == 1 and X_arr.size == p:
            X_arr = X_arr[None, :]
        if X_arr.ndim != 2 or X_arr.shape[1] != p:
            raise InvalidDataError(
                f"predict: newdata must be a design matrix (M, {p}), one column per coefficient, got "
                f"shape {X_arr.shape}"
            )
        X, _, offset = host_design({**x, "X": X_arr}, model.family)
    bad = np.argwhere(~np.isfinite(X))
    if bad.size:
        i, j = (int(k) for k in bad[0])
        raise InvalidDataError(f"predict: newdata row {i}, design column {j} is {X[i, j]}: not finite")
    bad_o = np.flatnonzero(~np.isfinite(offset))
    if bad_o.size:
        raise InvalidDataError(f"predict: the offset of newdata row {int(bad_o[0])} is not finite")
    return X, offset


@model_predict.register(GLM)
def _glm_predict(model: GLM, result: FitResult, newdata: Any, level: float, kind: str) -> pd.DataFrame:
    level = probability(level, "level (the coverage)")
    b = coefficient_index(result.params)
    X, offset = _new_design(model, result, newdata, b)
    beta = result.flat_params[b]
    sigma = result.cov(kind).matrix[np.ix_(b, b)]
    eta = X @ beta + offset
    se_eta = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", X, sigma, X), 0.0))
    link = LINKS[model.link]
    mean = np.asarray(link.inv(eta), dtype=np.float64)
    se = np.abs(np.asarray(link.mu_eta(eta), dtype=np.float64)) * se_eta
    z = float(wald_quantile(level, result.wald_df(kind)[b][:1])[0])  # t where the fit reports t tests
    lo = np.asarray(link.inv(eta - z * se_eta), dtype=np.float64)
    hi = np.asarray(link.inv(eta + z * se_eta), dtype=np.float64)
    index = newdata.index if isinstance(newdata, pd.DataFrame) else None
    return pd.DataFrame(
        {
            "mean": mean,
            "se": se,
            "lower": np.minimum(lo, hi),
            "upper": np.maximum(lo, hi),
            "eta": eta,
            "se_eta": se_eta,
        },
        index=index,
    )
