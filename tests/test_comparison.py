r"""Comparing fits: ``res.aic``, ``bic``, ``deviance``, ``lr_test``, ``predict``; the CLI's t intervals.

Oracles, independent of fisherlab:

* R's printed values of the Dobson example of ``?glm`` (``glm(counts ~ outcome + treatment,
  family = poisson())``): residual deviance 5.1291 on 4 df, null deviance 10.5814 on 8 df,
  AIC 56.761, and ``anova(glm.D93)``'s outcome row (deviance 5.4523 on 2 df, p = 0.06547);
* closed forms: the gaussian maximum log-likelihood
  :math:`-\tfrac N2\{\log(2\pi\,\mathrm{RSS}/N) + 1\}`, R's inverse Gaussian ``aic``
  (:math:`N\{\log(2\pi D/N) + 1\} + 3\sum\log y + 2`), densities from ``scipy.stats``;
* statsmodels: ``GLM(...).fit()`` (deviance, null deviance, llf, ``aic`` = :math:`-2\ell + 2p`,
  which does not count a dispersion parameter), its families' ``deviance`` at given means, the
  discrete ``NegativeBinomial`` (``aic``/``bic`` count alpha) and
  ``get_prediction(exog).summary_frame()``.
"""

from __future__ import annotations

import functools
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.stats

import fisherlab as fl
from cli_support import call
from fisherlab import models

sm = pytest.importorskip("statsmodels.api")

# Two converged fits of the same likelihood (fisherlab's Newton, statsmodels' IRLS run long):
# both sit within ~1e-9 relative of the optimum, so derived quantities agree to well below this.
FIT_RTOL = 1e-7
# Pure arithmetic on the same numbers (a formula evaluated two ways).
ARITH_RTOL = 1e-12
# R prints 4-5 significant digits; half a unit in the last printed digit.
R_PRINTED = {"deviance": 5e-5, "null": 5e-5, "aic": 5e-4, "p": 5e-6}
SM_IRLS = {"tol": 1e-300, "maxiter": 100}


def _quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# --------------------------------------------------------------------------- data


def _dobson() -> tuple[np.ndarray, np.ndarray]:
    """R's ``?glm`` example (Dobson 1990, p. 93): counts by outcome and treatment."""
    counts = np.array([18.0, 17, 15, 20, 10, 20, 25, 13, 12])
    outcome = np.tile([1, 2, 3], 3)
    treatment = np.repeat([1, 2, 3], 3)
    X = np.column_stack([np.ones(9), outcome == 2, outcome == 3, treatment == 2, treatment == 3]).astype(
        float
    )
    return counts, X


def _design(rng: np.random.Generator, n: int = 200) -> np.ndarray:
    return np.column_stack([np.ones(n), rng.normal(size=n), rng.uniform(-1, 1, size=n)])


@functools.cache
def _model(family: str, link: str | None) -> models.GLM:
    """One model per (family, link): its compiled kernels serve every fit of the module."""
    return models.glm(family, link)


def _fit(family: str, y: np.ndarray, x: Any, link: str | None = None) -> fl.FitResult:
    return models.fit_glm(_model(family, link), y, x)


# --------------------------------------------------------------------------- R's Dobson example


def test_dobson_matches_r_printed_values() -> None:
    """Deviance, null deviance, AIC and the anova LR row of R's ``?glm`` Poisson example."""
    y, X = _dobson()
    res = _fit("poisson", y, X)
    assert res.deviance == pytest.approx(5.1291, abs=R_PRINTED["deviance"])
    assert res.deviance == pytest.approx(5.129141, abs=5e-7)  # R: deviance(glm.D93)
    assert models.null_deviance(res) == pytest.approx(10.5814, abs=R_PRINTED["null"])
    assert res.aic == pytest.approx(56.761, abs=R_PRINTED["aic"])
    assert res.bic == pytest.approx(res.aic - 2 * 5 + 5 * math.log(9), rel=ARITH_RTOL)
    small = _fit("poisson", y, X[:, [0, 3, 4]])  # counts ~ treatment
    t = res.lr_test(small)
    assert t.df == 2
    assert t.statistic == pytest.approx(5.4523, abs=R_PRINTED["deviance"])
    assert t.pvalue == pytest.approx(0.06547, abs=R_PRINTED["p"])
    # for Poisson the LR statistic is the deviance difference exactly
    assert t.statistic == pytest.approx(small.deviance - res.deviance, rel=1e-9)
    assert t.loglik_alt == res.loglik and t.loglik_null == small.loglik


def test_dobson_matches_statsmodels() -> None:
    y, X = _dobson()
    res = _fit("poisson", y, X)
    ref = _quiet(sm.GLM(y, X, family=sm.families.Poisson()).fit, **SM_IRLS)
    assert res.deviance == pytest.approx(ref.deviance, rel=FIT_RTOL)
    assert models.null_deviance(res) == pytest.approx(ref.null_deviance, rel=FIT_RTOL)
    assert res.aic == pytest.approx(ref.aic, rel=FIT_RTOL)  # no dispersion: the same k = p
    assert res.bic == pytest.approx(ref.bic_llf, rel=FIT_RTOL)


# --------------------------------------------------------------------------- AIC / BIC / deviance


def test_gaussian_closed_form(rng: np.random.Generator) -> None:
    """AIC counts sigma (R's AIC(lm)); statsmodels' GLM aic does not (2 less)."""
    X = _design(rng)
    y = X @ np.array([1.0, 2.0, -0.5]) + rng.normal(scale=0.7, size=X.shape[0])
    n, p = X.shape
    res = _fit("gaussian", y, X)
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    rss = float(np.sum((y - X @ beta) ** 2))
    ll = -n / 2 * (math.log(2 * math.pi * rss / n) + 1)
    assert res.loglik == pytest.approx(ll, rel=FIT_RTOL)
    assert res.aic == pytest.approx(-2 * ll + 2 * (p + 1), rel=FIT_RTOL)
    assert res.bic == pytest.approx(-2 * ll + (p + 1) * math.log(n), rel=FIT_RTOL)
    assert res.deviance == pytest.approx(rss, rel=FIT_RTOL)
    ref = _quiet(sm.GLM(y, X, family=sm.families.Gaussian()).fit)
    assert res.aic == pytest.approx(ref.aic + 2, rel=FIT_RTOL)
    assert res.bic == pytest.approx(ref.bic_llf + math.log(n), rel=FIT_RTOL)
    assert models.null_deviance(res) == pytest.approx(np.sum((y - y.mean()) ** 2), rel=ARITH_RTOL)


def test_binomial_with_trials_matches_statsmodels(rng: np.random.Generator) -> None:
    """Binomial counts: the log-likelihood, AIC and deviance include the trials as R's do."""
    X = _design(rng, 60)
    trials = rng.integers(1, 12, size=60).astype(float)
    prob = 1 / (1 + np.exp(-(X @ np.array([0.2, 0.8, -0.6]))))
    y = rng.binomial(trials.astype(int), prob).astype(float)
    res = _fit("binomial", y, {"X": X, "trials": trials})
    ref = _quiet(sm.GLM(np.column_stack([y, trials - y]), X, family=sm.families.Binomial()).fit, **SM_IRLS)
    assert res.loglik == pytest.approx(ref.llf, rel=FIT_RTOL)
    assert res.aic == pytest.approx(ref.aic, rel=FIT_RTOL)
    assert res.deviance == pytest.approx(ref.deviance, rel=FIT_RTOL)
    assert models.null_deviance(res) == pytest.approx(ref.null_deviance, rel=FIT_RTOL)


def test_bernoulli_probit_deviance_is_minus_twice_loglik(rng: np.random.Generator) -> None:
    """A 0/1 outcome: the saturated log-likelihood is 0, so D = -2 loglik (any link)."""
    X = _design(rng, 150)
    y = (rng.uniform(size=150) < scipy.stats.norm.cdf(X @ np.array([0.1, 1.0, 0.5]))).astype(float)
    res = _fit("binomial", y, X, "probit")
    assert res.deviance == pytest.approx(-2 * res.loglik, rel=ARITH_RTOL * 100)
    ref = _quiet(sm.GLM(y, X, family=sm.families.Binomial(sm.families.links.Probit())).fit, **SM_IRLS)
    assert res.deviance == pytest.approx(ref.deviance, rel=FIT_RTOL)


def test_gamma_deviance_and_aic(rng: np.random.Generator) -> None:
    """Deviance as R/statsmodels; AIC at the ML shape, below R's (dispersion D/N) AIC."""
    X = _design(rng)
    mu = np.exp(X @ np.array([0.5, 0.3, -0.2]))
    y = rng.gamma(3.0, mu / 3.0)
    n, p = X.shape
    res = _fit("gamma", y, X, "log")
    ref = _quiet(sm.GLM(y, X, family=sm.families.Gamma(sm.families.links.Log())).fit, **SM_IRLS)
    assert res.deviance == pytest.approx(ref.deviance, rel=FIT_RTOL)
    mu_hat = models.glm("gamma", "log").mean(res.params, X)
    assert res.deviance == pytest.approx(_quiet(sm.families.Gamma).deviance(y, mu_hat), rel=ARITH_RTOL * 100)
    shape = float(res.params["shape"])
    ll = float(np.sum(scipy.stats.gamma.logpdf(y, a=shape, scale=mu_hat / shape)))
    assert res.aic == pytest.approx(-2 * ll + 2 * (p + 1), rel=1e-10)
    # R's Gamma()$aic: the likelihood at dispersion D/N, plus 2 for it; AIC adds 2 * rank
    disp = res.deviance / n
    r_aic = -2 * float(np.sum(scipy.stats.gamma.logpdf(y, a=1 / disp, scale=mu_hat * disp))) + 2 + 2 * p
    assert res.aic <= r_aic
    assert r_aic - res.aic < 1.0  # close: the ML shape and N/D differ by O(1/N) relative


def test_inverse_gaussian_aic_is_r_closed_form(rng: np.random.Generator) -> None:
    """R's inverse.gaussian()$aic is the likelihood at the ML dispersion D/N: equal to ours."""
    X = _design(rng, 120)
    mu = np.exp(X @ np.array([0.3, 0.2, 0.1]))
    y = scipy.stats.invgauss.rvs(mu / 4.0, scale=4.0, random_state=rng)  # shape lambda = 4
    n, p = X.shape
    res = _fit("inverse_gaussian", y, X, "log")
    mu_hat = models.glm("inverse_gaussian", "log").mean(res.params, X)
    dev = float(np.sum((y - mu_hat) ** 2 / (mu_hat**2 * y)))
    assert res.deviance == pytest.approx(dev, rel=ARITH_RTOL * 100)
    r_aic = n * (math.log(2 * math.pi * dev / n) + 1) + 3 * np.sum(np.log(y)) + 2 + 2 * p
    assert res.aic == pytest.approx(r_aic, rel=FIT_RTOL)
    ref = _quiet(sm.GLM(y, X, family=sm.families.InverseGaussian(sm.families.links.Log())).fit, **SM_IRLS)
    assert res.deviance == pytest.approx(ref.deviance, rel=FIT_RTOL)


def test_negative_binomial_counts_alpha(rng: np.random.Generator) -> None:
    """AIC/BIC count alpha (MASS::glm.nb counts theta); deviance at theta = 1/alpha."""
    X = _design(rng, 300)
    mu = np.exp(X @ np.array([1.0, 0.4, -0.3]))
    y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu)).astype(float)
    res = _fit("negative_binomial", y, X)
    alpha = float(res.params["alpha"])
    ref = _quiet(sm.NegativeBinomial(y, X, loglike_method="nb2").fit, disp=0, maxiter=200, method="newton")
    assert res.loglik == pytest.approx(ref.llf, rel=1e-6)
    assert res.aic == pytest.approx(ref.aic, rel=1e-6)
    assert res.bic == pytest.approx(ref.bic, rel=1e-6)
    mu_hat = models.glm("negative_binomial").mean(res.params, X)
    dev = sm.families.NegativeBinomial(alpha=alpha).deviance(y, mu_hat)
    assert res.deviance == pytest.approx(dev, rel=1e-10)


def test_deviance_unavailable_and_prior() -> None:
    """A user model has no deviance; a MAP fit has no AIC/BIC/LR test."""
    m = fl.Model(lambda th, x: fl.dist.Normal(th["mu"], 1.0))
    res = fl.fit(m, np.array([0.1, 0.5, -0.3]), init={"mu": 0.0})
    with pytest.raises(fl.MethodUnavailableError, match="deviance"):
        _ = res.deviance
    with pytest.raises(fl.MethodUnavailableError, match="predict"):
        res.predict(np.ones((2, 1)))
    assert res.aic == pytest.approx(-2 * res.loglik + 2, rel=ARITH_RTOL)
    assert res.bic == pytest.approx(-2 * res.loglik + math.log(3), rel=ARITH_RTOL)
    map_fit = fl.fit(m, np.array([0.1, 0.5, -0.3]), init={"mu": 0.0}, prior={"mu": fl.dist.Normal(0.0, 1.0)})
    with pytest.raises(fl.MethodUnavailableError, match="prior"):
        _ = map_fit.aic


# --------------------------------------------------------------------------- LR test


def test_lr_test_gaussian_is_n_log_rss_ratio(rng: np.random.Generator) -> None:
    """Gaussian: LR = N log(RSS_small / RSS_big) with ML sigma in both (lmtest::lrtest)."""
    X = _design(rng, 80)
    y = X @ np.array([1.0, 0.3, 0.2]) + rng.normal(size=80)
    big, small = _fit("gaussian", y, X), _fit("gaussian", y, X[:, :2])
    rss = [float(np.sum((y - Z @ np.linalg.lstsq(Z, y, rcond=None)[0]) ** 2)) for Z in (X, X[:, :2])]
    t = big.lr_test(small)
    assert t.df == 1
    assert t.statistic == pytest.approx(80 * math.log(rss[1] / rss[0]), rel=1e-6)
    assert t.pvalue == pytest.approx(scipy.stats.chi2.sf(80 * math.log(rss[1] / rss[0]), 1), rel=1e-5)


def test_lr_test_refuses_what_is_not_nested(rng: np.random.Generator) -> None:
    X = _design(rng, 50)
    y = rng.poisson(np.exp(X @ np.array([0.5, 0.3, 0.0]))).astype(float)
    big = _fit("poisson", y, X)
    small = _fit("poisson", y, X[:, :2])
    with pytest.raises(fl.ModelError, match="fewer parameters"):
        small.lr_test(big)
    with pytest.raises(fl.ModelError, match="different observations"):
        big.lr_test(_fit("poisson", y[::-1].copy(), X[:, :2]))
    with pytest.raises(fl.ModelError, match="rows"):
        big.lr_test(_fit("poisson", y[:40], X[:40, :2]))
    other = np.column_stack([np.ones(50), rng.normal(size=50)])
    with pytest.raises(fl.ModelError, match="column space"):
        big.lr_test(_fit("poisson", y, other))
    with pytest.raises(fl.ModelError, match="different links"):
        big.lr_test(_fit("poisson", y, X[:, :2], "sqrt"))
    with pytest.raises(fl.FisherlabArgumentError, match="FitResult"):
        big.lr_test("small")  # type: ignore[arg-type]
    assert big.lr_test(small).df == 1


def test_lr_test_refuses_poisson_inside_negative_binomial(rng: np.random.Generator) -> None:
    """alpha = 0 is on the boundary: the chi-square LR test does not apply (overdispersion_test)."""
    X = _design(rng, 50)
    y = rng.poisson(np.exp(X @ np.array([0.5, 0.3, 0.0]))) + rng.poisson(3.0, 50) * rng.poisson(1.0, 50)
    nb = _fit("negative_binomial", y.astype(float), X)
    with pytest.raises(fl.ModelError, match="overdispersion_test"):
        nb.lr_test(_fit("poisson", y.astype(float), X[:, :2]))


# --------------------------------------------------------------------------- predict


def _sm_frame(ref: Any, X: np.ndarray) -> pd.DataFrame:
    return ref.get_prediction(X).summary_frame(alpha=0.05)


@pytest.mark.parametrize(
    ("family", "link", "sm_family"),
    [
        ("poisson", None, lambda: sm.families.Poisson()),
        ("binomial", None, lambda: sm.families.Binomial()),
        ("binomial", "cloglog", lambda: sm.families.Binomial(sm.families.links.CLogLog())),
    ],
)
def test_predict_matches_statsmodels(
    rng: np.random.Generator, family: str, link: str | None, sm_family: Any
) -> None:
    """Mean, its delta-method se and the link-scale interval mapped back (expected information)."""
    X = _design(rng, 120)
    eta = X @ np.array([0.2, 0.5, -0.4])
    if family == "poisson":
        y = rng.poisson(np.exp(eta)).astype(float)
    else:
        y = (rng.uniform(size=120) < 1 / (1 + np.exp(-eta))).astype(float)
    res = _fit(family, y, X, link)
    ref = _quiet(sm.GLM(y, X, family=_quiet(sm_family)).fit, **SM_IRLS)
    new = _design(rng, 7)
    got = res.predict(new, kind="expected")
    want = _sm_frame(ref, new)
    np.testing.assert_allclose(got["mean"], want["mean"], rtol=FIT_RTOL)
    np.testing.assert_allclose(got["se"], want["mean_se"], rtol=1e-6)
    np.testing.assert_allclose(got["lower"], want["mean_ci_lower"], rtol=1e-6)
    np.testing.assert_allclose(got["upper"], want["mean_ci_upper"], rtol=1e-6)
    lin = ref.get_prediction(new, which="linear").summary_frame()
    np.testing.assert_allclose(got["eta"], lin["predicted"], rtol=FIT_RTOL, atol=1e-9)
    np.testing.assert_allclose(got["se_eta"], lin["se"], rtol=1e-6)


def test_predict_gamma_inverse_link_and_dataframe(rng: np.random.Generator) -> None:
    """A decreasing link (1/mu): the interval is ordered; statsmodels at the ML scale; DataFrame input."""
    X = _design(rng, 150)
    mu = 1 / (1.0 + 0.2 * X[:, 1] ** 2 + 0.1 * X[:, 2])
    y = rng.gamma(4.0, mu / 4.0)
    res = _fit("gamma", y, X)
    shape = float(res.params["shape"])
    ref = _quiet(lambda: sm.GLM(y, X, family=sm.families.Gamma()).fit(scale=1 / shape, **SM_IRLS))
    new = _design(rng, 5)
    got = res.predict(new, kind="expected", level=0.9)
    want = _quiet(lambda: ref.get_prediction(new).summary_frame(alpha=0.1))
    np.testing.assert_allclose(got["mean"], want["mean"], rtol=FIT_RTOL)
    np.testing.assert_allclose(got["se"], want["mean_se"], rtol=1e-6)
    # statsmodels maps the eta interval's ends through 1/eta without reordering them
    np.testing.assert_allclose(got["lower"], want["mean_ci_upper"], rtol=1e-6)
    np.testing.assert_allclose(got["upper"], want["mean_ci_lower"], rtol=1e-6)
    assert np.all(got["lower"] < got["mean"]) and np.all(got["mean"] < got["upper"])
    renamed = res.rename(["Intercept", "x1", "x2", "shape"])
    frame = pd.DataFrame(new, columns=["Intercept", "x1", "x2"], index=list("abcde"))
    by_name = renamed.predict(frame[["x2", "x1", "Intercept"]], kind="expected", level=0.9)
    assert list(by_name.index) == list("abcde")
    np.testing.assert_allclose(by_name.to_numpy(), got.to_numpy(), rtol=ARITH_RTOL)
    with pytest.raises(fl.InvalidDataError, match="x2"):
        renamed.predict(frame[["Intercept", "x1"]])
    with pytest.raises(fl.InvalidDataError, match=r"\(M, 3\)"):
        res.predict(np.ones((2, 4)))


def test_predict_gaussian_observed_and_offset(rng: np.random.Generator) -> None:
    """Gaussian identity: the observed covariance is sigma_ML^2 (X'X)^-1; an offset shifts eta."""
    X = _design(rng, 40)
    y = X @ np.array([1.0, -1.0, 0.5]) + rng.normal(size=40)
    res = _fit("gaussian", y, X)
    sigma2 = float(res.params["sigma"]) ** 2
    new = _design(rng, 4)
    offset = np.array([0.0, 1.0, -2.0, 0.5])
    got = res.predict({"X": new, "offset": offset})
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    se = np.sqrt(sigma2 * np.einsum("ij,jk,ik->i", new, np.linalg.inv(X.T @ X), new))
    np.testing.assert_allclose(got["mean"], new @ beta + offset, rtol=1e-8)
    np.testing.assert_allclose(got["se"], se, rtol=1e-6)
    z = scipy.stats.norm.ppf(0.975)
    np.testing.assert_allclose(got["upper"] - got["lower"], 2 * z * se, rtol=1e-6)


# --------------------------------------------------------------------------- the CLI


def test_cli_dispersion_r_t_intervals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--dispersion r``: gaussian intervals use t on N - p df with R's se; AIC/BIC/deviance in JSON."""
    rng = np.random.default_rng(7)
    n = 12
    x = rng.normal(size=n)
    y = 1.0 + 0.5 * x + rng.normal(scale=0.4, size=n)
    path = tmp_path / "d.csv"
    pd.DataFrame({"y": y, "x": x}).to_csv(path, index=False)
    code, out, err = call(
        capsys, "fit", str(path), "-f", "y ~ x", "--family", "gaussian", "--dispersion", "r", "--json",
        "--no-check", "--level", "0.9",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    X = np.column_stack([np.ones(n), x])
    beta, rss = np.linalg.lstsq(X, y, rcond=None)[:2]
    se_r = np.sqrt(float(rss[0]) / (n - 2) * np.diag(np.linalg.inv(X.T @ X)))  # summary.lm
    q = scipy.stats.t.ppf(0.95, n - 2)
    for name, b, s in zip(["Intercept", "x"], beta, se_r, strict=True):
        assert doc["se"][name] == pytest.approx(s, rel=1e-6)
        lo, hi = doc["conf_int"][name]
        assert lo == pytest.approx(b - q * s, rel=1e-6)
        assert hi == pytest.approx(b + q * s, rel=1e-6)
    ll = -n / 2 * (math.log(2 * math.pi * float(rss[0]) / n) + 1)
    assert doc["aic"] == pytest.approx(-2 * ll + 2 * 3, rel=1e-7)
    assert doc["bic"] == pytest.approx(-2 * ll + 3 * math.log(n), rel=1e-7)
    assert doc["deviance"] == pytest.approx(float(rss[0]), rel=1e-7)
    code, out, err = call(capsys, "fit", str(path), "-f", "y ~ x", "--family", "gaussian", "--no-check")
    assert code == 0, err
    assert "AIC" in out and "BIC" in out and "deviance" in out


def test_cli_poisson_dispersion_r_keeps_normal_quantiles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    y, X = _dobson()
    path = tmp_path / "dobson.csv"
    pd.DataFrame({"counts": y, "t2": X[:, 3], "t3": X[:, 4]}).to_csv(path, index=False)
    code, out, err = call(
        capsys, "fit", str(path), "-f", "counts ~ t2 + t3", "--family", "poisson", "--dispersion", "r",
        "--json", "--no-check",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    z = scipy.stats.norm.ppf(0.975)
    lo, hi = doc["conf_int"]["t2"]
    assert hi - lo == pytest.approx(2 * z * doc["se"]["t2"], rel=1e-10)
