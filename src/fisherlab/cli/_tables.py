r"""The ``fit`` command's summary: estimates, standard errors, z or t tests and intervals, printed or as JSON.

With ``--dispersion ml`` every standard error comes from the ``--cov`` kind of
covariance of the maximum-likelihood fit. With ``--dispersion r`` the GLM
coefficients take R's ``summary.glm`` covariance :math:`\\hat\\phi(X^\top W X)^{-1}`
(:func:`fisherlab.models.glm_covariance`) and, for the families whose record says
R estimates :math:`\\phi` by Pearson's statistic, t tests on :math:`N-p` degrees of
freedom, as R prints them, and intervals :math:`\\hat\\beta \\pm t_{N-p,(1+\\text{level})/2}\\,se`
on the same degrees of freedom (the t-based Wald interval that matches R's t tests; R's
``confint.default`` uses normal quantiles and ``confint()`` profiles the likelihood); the
families with :math:`\\phi = 1` keep normal quantiles, as R's z tests.

The footer and the JSON document carry the fit's AIC, BIC (:attr:`fisherlab.FitResult.aic`,
``bic``: every estimated parameter counted, the dispersion included) and, for GLMs, the
deviance (``null`` for a user model).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

import fisherlab as fl
from fisherlab._format import rich_tables
from fisherlab._options import CovKind

from ._choices import SummaryDispersion, check_dispersion
from ._fitted import Fitted
from ._render import check_dict
from ._timer import Timer

__all__ = ["fit_document", "print_fit", "summary"]

_R = SummaryDispersion.R.value

# What each covariance kind is, for the line under the table.
_COV_WHAT = {
    CovKind.OBSERVED: "inverse observed information",
    CovKind.EXPECTED: "inverse expected Fisher information",
    CovKind.SANDWICH: "sandwich J⁻¹KJ⁻¹ (robust to misspecification)",
    CovKind.EMPIRICAL: "inverse empirical Fisher (outer product of scores)",
    CovKind.CLUSTER: "cluster-robust sandwich J⁻¹(Σ_g S_g S_gᵀ)J⁻¹ × G/(G−1), S_g the cluster's score sum",
}


def summary(
    f: Fitted,
    kind: str,
    dispersion: str,
    level: float,
    prof: pd.DataFrame | None,
    robust: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The summary table of ``f`` and the numbers behind it, for ``--cov``, ``--dispersion``, ``--level``.

    ``robust``: ``hc`` / ``groups`` of a robust ``--cov`` (``--hc``, ``--cluster``), passed to ``res.cov``.
    """
    robust = dict(robust or {})
    res = f.res
    check_dispersion(kind, dispersion)
    r_style = dispersion == _R and f.family is not None
    if r_style:  # a GLMFit: R's summary.glm covariance for the coefficients, t tests where R has them
        res = res.with_dispersion(_R)
    names = list(res.names)
    theta = res.flat_params
    chosen = res.cov(kind, **robust)
    cov = np.array(chosen.matrix)
    cov_kind = _R if r_style else str(chosen.method or kind)
    table = res.to_pandas(kind, level, **robust)
    se = table["se"].to_numpy()
    use_t = "t" in table.columns
    df_resid = res.nobs - len(f.beta_index)
    pct = f"{100 * level:g}%"
    lower, upper = table[f"lower {pct}"].to_numpy(), table[f"upper {pct}"].to_numpy()
    se_r: dict[str, float] = {}
    phi_r = None
    if f.family is not None:
        phi_r = fl.models.glm_dispersion(f.res, "auto")
        if cov_kind != _R and f.pearson:
            r_se = np.sqrt(np.diag(fl.models.glm_covariance(f.res, "auto").matrix))
            col = np.full(len(names), np.nan)
            col[np.asarray(f.beta_index)] = r_se
            table["se (R)"] = col
            se_r = {names[i]: float(r_se[k]) for k, i in enumerate(f.beta_index)}
    if prof is not None:
        table[f"profile lower {pct}"] = prof["lower"].to_numpy()
        table[f"profile upper {pct}"] = prof["upper"].to_numpy()
    return {
        "table": table,
        "names": names,
        "theta": theta,
        "se": se,
        "cov": cov,
        "cov_kind": cov_kind,
        "lower": lower,
        "upper": upper,
        "se_r": se_r,
        "dispersion_r": phi_r,
        "profile": prof,
        "use_t": use_t,
        "df_resid": df_resid,
        **_criteria(res),
    }


def _criteria(res: Any) -> dict[str, float | None]:
    """AIC, BIC and the deviance of the fit (``None`` where the model defines none)."""
    out: dict[str, float | None] = {}
    for key in ("aic", "bic", "deviance"):
        try:
            out[key] = float(getattr(res, key))
        except fl.MethodUnavailableError:
            out[key] = None
    return out


def _cov_description(kind: str, cov_kind: str, pearson: bool, use_t: bool, df_resid: int) -> str:
    what = _COV_WHAT[CovKind(kind)]
    if cov_kind == _R:
        disp = "Pearson dispersion" if pearson else "dispersion 1"
        test = f"; t tests on {df_resid} df" if use_t else ""
        return f"coefficients: R's summary.glm, φ̂ (XᵀWX)⁻¹ with the {disp}{test}; other parameters: {what}"
    variant = f" [{cov_kind}]" if cov_kind != kind else ""
    return f"{what}{variant}, maximum likelihood (ML dispersion)"


def fit_document(f: Fitted, t: dict[str, Any], level: float, timer: Timer, timings: bool) -> dict[str, Any]:
    """The ``--json`` document of ``fit``: one object (the keys the tests pin down)."""
    res = f.res
    names = t["names"]
    doc: dict[str, Any] = {
        "names": names,
        "params": {n: float(v) for n, v in zip(names, t["theta"], strict=True)},
        "se": {n: float(v) for n, v in zip(names, t["se"], strict=True)},
        "cov": t["cov"].tolist(),
        "loglik": float(res.loglik),
        "conf_int": {
            n: [float(lo), float(hi)] for n, lo, hi in zip(names, t["lower"], t["upper"], strict=True)
        },
        "cov_kind": t["cov_kind"],
        # The Wald statistic of each parameter (t on df_resid with --dispersion r, else z) and its
        # two-sided p-value, exactly as the table prints them.
        "statistic": "t" if t["use_t"] else "z",
        "z" if not t["use_t"] else "t": {
            n: float(v) for n, v in zip(names, t["table"]["t" if t["use_t"] else "z"], strict=True)
        },
        "p": {n: float(v) for n, v in zip(names, t["table"]["p"], strict=True)},
        "level": level,
        "nobs": int(res.nobs),
        "converged": bool(res.converged),
        "n_iter": int(res.n_iter),
        "model": f.description,
        "family": f.family,
        "link": f.link,
        "rows_dropped": f.dropped,
        "notes": list(res.notes),
        "check": check_dict(f.check) if f.check is not None else None,
        "aic": t["aic"],
        "bic": t["bic"],
        "deviance": t["deviance"],
    }
    if f.check is None and f.check_error:
        doc["check_error"] = f.check_error
    if f.tests:
        doc["tests"] = f.tests
    if f.boundary:
        doc["boundary"] = f.boundary
    if t["se_r"]:
        doc["se_r"] = t["se_r"]
    if t["dispersion_r"] is not None:
        doc["dispersion_r"] = t["dispersion_r"]
    if t["profile"] is not None:
        prof = t["profile"]
        doc["profile_conf_int"] = {
            n: [float(prof.loc[n, "lower"]), float(prof.loc[n, "upper"])] for n in names
        }
    if timings:
        doc["timings"] = dict(timer.phases)
    return doc


def print_fit(f: Fitted, t: dict[str, Any], kind: str, out: Console) -> None:
    """The summary table, the covariance used, the fit's log-likelihood and notes, the check's verdict."""
    res = f.res
    title = f"fisherlab fit: {f.description}"
    for part in rich_tables(t["table"], title, out.width):
        out.print(part, soft_wrap=False)
    out.print(
        f"covariance: {_cov_description(kind, t['cov_kind'], f.pearson, t['use_t'], t['df_resid'])}",
        highlight=False,
        markup=False,
    )
    if "se (R)" in t["table"].columns:
        out.print(
            f"se (R): R's summary.glm standard errors (Pearson dispersion {t['dispersion_r']:.6g}); "
            "--dispersion r puts them in the table",
            highlight=False,
            markup=False,
        )
    dropped = f" ({f.dropped} rows with missing values dropped)" if f.dropped else ""
    out.print(
        f"log-likelihood {res.loglik:.8g}, N = {res.nobs}{dropped}, converged in {res.n_iter} iterations "
        f"({res.method}, Newton decrement {res.decrement:.1e})",
        highlight=False,
        markup=False,
    )
    labels = {"aic": "AIC", "bic": "BIC", "deviance": "deviance"}
    criteria = [f"{label} {t[k]:.8g}" for k, label in labels.items() if t[k] is not None]
    if criteria:
        out.print(", ".join(criteria), highlight=False, markup=False)
    for note in res.notes:
        out.print(f"note: {note}", highlight=False, markup=False)
    if f.check is not None:
        out.print(f"identity check: {f.check.verdict}", highlight=False, markup=False)
    elif f.check_error:
        out.print(f"identity check: not available ({f.check_error})", highlight=False, markup=False)
