r"""Wald inference from a covariance: intervals, the table of z (or t) tests, the summary.

For parameter :math:`i` with estimate :math:`\hat\theta_i` and standard error :math:`s_i`
(the diagonal of :meth:`FitResult.cov`):

.. math:: T_i = \hat\theta_i / s_i,\qquad p_i = 2\,P(|R_{d_i}| \ge |T_i|),\qquad
          \hat\theta_i \pm q_{d_i,(1+\text{level})/2}\, s_i

where :math:`R_d` is Student's t on :math:`d_i` degrees of freedom, and the standard normal
when :math:`d_i = \infty`, the default (:meth:`FitResult.wald_df`). A GLM fitted with R's
dispersion (``fl.glm(..., dispersion="r")``) gives its coefficients :math:`d_i = N - p` where R
estimates the dispersion by Pearson's statistic (gaussian, Gamma, inverse Gaussian), as R's
``summary.glm`` prints t tests; its intervals use the same t quantiles (R's ``confint.default``
would use normal ones). The statistic column is ``"t"`` when some :math:`d_i` is finite, else ``"z"``.

A parameter with a constraint (``"positive"``) has its Wald interval computed on the
unconstrained scale and mapped back, so it never leaves the support.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax.numpy as jnp
import numpy as np
import pandas as pd
import scipy.special

from ..._options import IntervalMethod, choose, probability
from ._covariance import check_kind, robust_options
from ._summary import Summary

if TYPE_CHECKING:
    from ._fitresult import FitResult

__all__ = ["check_level", "fit_summary", "quantile", "wald_intervals", "wald_table"]


def check_level(level: float) -> float:
    """``level`` as a coverage in (0, 1) (``InvalidOptionError`` / ``FisherlabArgumentError`` otherwise)."""
    return probability(level, "level (the coverage)")


def quantile(level: float, df: np.ndarray) -> np.ndarray:
    """The two-sided ``level`` quantile per degrees of freedom (normal where ``df`` is infinite)."""
    half = 0.5 + level / 2
    df = np.asarray(df, dtype=np.float64)
    finite = np.isfinite(df)
    out = np.full(df.shape, float(scipy.special.ndtri(half)))
    out[finite] = scipy.special.stdtrit(df[finite], half)
    return out


def two_sided_p(stat: np.ndarray, df: np.ndarray) -> np.ndarray:
    """:math:`2P(|R_d| \\ge |T|)`, normal where ``df`` is infinite."""
    df = np.asarray(df, dtype=np.float64)
    finite = np.isfinite(df)
    p = 2 * scipy.special.ndtr(-np.abs(stat))
    p[finite] = 2 * scipy.special.stdtr(df[finite], -np.abs(stat[finite]))
    return p


def wald_intervals(
    res: FitResult, level: float, kind: str, robust: dict[str, Any], method: str
) -> pd.DataFrame:
    """:meth:`FitResult.conf_int` (``robust``: its ``hc``, ``groups``, ``small_sample``)."""
    level = check_level(level)
    choice = check_kind(kind)
    robust_options(res, choice, **robust)
    if choose(IntervalMethod, method, "method") is IntervalMethod.PROFILE:
        from .._profile import profile_intervals

        return profile_intervals(res, level)
    q = quantile(level, res.wald_df(choice.value))
    theta = res.flat_params
    se = np.sqrt(np.diag(res.cov(kind, **robust).matrix))
    lower, upper = theta - q * se, theta + q * se
    aligned = res.elementwise_transforms()
    if aligned and not res.reparam.identity:
        se_u = np.sqrt(np.diag(res.cov(kind, scale="unconstrained", **robust).matrix))
        for i, (t, j) in enumerate(aligned):
            if t is None:
                continue
            lo, hi = (float(t(jnp.asarray(res.u[j] + s * q[i] * se_u[j]))) for s in (-1.0, 1.0))
            lower[i], upper[i] = min(lo, hi), max(lo, hi)
    return pd.DataFrame({"lower": lower, "upper": upper}, index=res.names)


def wald_table(res: FitResult, kind: str, level: float, robust: dict[str, Any]) -> pd.DataFrame:
    """:meth:`FitResult.to_pandas`: estimate, se, z or t, p and the interval per parameter."""
    check_level(level)
    df = res.wald_df(check_kind(kind).value)
    theta = res.flat_params
    se = np.sqrt(np.diag(res.cov(kind, **robust).matrix))
    stat = theta / se
    ci = wald_intervals(res, level, kind, robust, IntervalMethod.WALD.value)
    pct = f"{100 * level:g}%"
    return pd.DataFrame(
        {
            "estimate": theta,
            "se": se,
            "t" if np.isfinite(df).any() else "z": stat,
            "p": two_sided_p(stat, df),
            f"lower {pct}": ci["lower"].to_numpy(),
            f"upper {pct}": ci["upper"].to_numpy(),
        },
        index=res.names,
    )


def fit_summary(res: FitResult, kind: str, level: float, robust: dict[str, Any]) -> Summary:
    """:meth:`FitResult.summary`: the table under a header naming the fit and the covariance."""
    check_level(level)
    choice = check_kind(kind)
    robust_options(res, choice, **robust)
    label = res.cov(kind, **robust).method or choice.value
    df = res.wald_df(choice.value)
    tests = ""
    if np.isfinite(df).any():
        dfs = sorted({int(d) for d in df[np.isfinite(df)]})
        tests = f"; t tests on {', '.join(map(str, dfs))} df"
    header = [
        f"fisherlab fit: {'MAP' if res.prior is not None else 'maximum likelihood'}, N = {res.nobs}",
        f"log-likelihood {res.loglik:.6g}, converged in {res.n_iter} iterations "
        f"({res.method}, Newton decrement {res.decrement:.1e}), covariance: {label}{tests}",
    ]
    return Summary(wald_table(res, kind, level, robust), header, res.notes)
