"""Robust covariances: HC0-HC3 sandwiches and one-way cluster-robust covariances.

Oracles, computed independently of fisherlab:

- the linear model: statsmodels ``OLS(...).get_robustcov_results(cov_type="HC0".."HC3")``
  (the textbook HC0-HC3, equal to R's ``sandwich::vcovHC`` for ``lm``);
- logistic and Poisson GLMs: R ``sandwich``'s definitions (Zeileis 2004, 2006) written
  out in NumPy at statsmodels' estimate: bread :math:`(X^\\top W X)^{-1}`, scores
  :math:`(y_i-\\mu_i)x_i` (canonical links), hat values
  :math:`h_i = w_i x_i^\\top (X^\\top W X)^{-1} x_i`, HC1 factor :math:`N/(N-P)`;
  statsmodels' GLM itself returns HC0 for every HCk, so it is not the oracle there;
- cluster: statsmodels ``Logit``/``GLM(Poisson)`` with ``cov_type="cluster"``. Its default
  ``use_correction=True`` multiplies by :math:`G/(G-1)\\cdot(N-1)/(N-K)`; fisherlab's default is
  Stata's :math:`G/(G-1)`, so we compare with ``use_correction=False`` times :math:`G/(G-1)`,
  and the default with the extra :math:`(N-1)/(N-K)`;
- a non-GLM model with a constrained parameter: per-row scores and Hessians of a
  hand-written log-density by ``jax.grad``/``jax.hessian``, the generalised leverage
  :math:`h_i = \\operatorname{tr}[(\\sum_k H_k)^{-1}H_i]` in NumPy.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import scipy.stats
import statsmodels.api as sm

import fisherlab as fl
from cli_support import assert_one_error_line, call
from fisherlab import models
from fisherlab._options import HCType

# Both sides are exact to rounding; the estimates agree with statsmodels' to ~1e-12, so
# covariances built from them agree far below this.
RTOL = 1e-8
N = 150
P = 3


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


def _design(seed: int) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(N), rng.normal(size=N), rng.uniform(size=N)])
    groups = rng.integers(0, 17, size=N)
    return X, groups, rng


@pytest.fixture(scope="module")
def logit() -> dict[str, object]:
    X, g, rng = _design(11)
    p = 1.0 / (1.0 + np.exp(-(X @ np.array([0.3, 1.0, -0.8]))))
    y = (rng.uniform(size=N) < p).astype(float)
    m = models.glm("binomial")
    res = fl.fit(m, y, X, init=models.glm_start(m, y, X))
    return {"X": X, "y": y, "g": g, "res": res}


@pytest.fixture(scope="module")
def poisson() -> dict[str, object]:
    X, g, rng = _design(12)
    # overdispersed counts, so the robust covariances differ from the model-based ones
    mu = np.exp(X @ np.array([0.5, 0.4, -0.6])) * rng.gamma(2.0, 0.5, size=N)
    y = rng.poisson(mu).astype(float)
    m = models.glm("poisson")
    res = fl.fit(m, y, X, init=models.glm_start(m, y, X))
    return {"X": X, "y": y, "g": g, "res": res}


@pytest.fixture(scope="module")
def ols() -> dict[str, object]:
    X, g, rng = _design(13)
    y = X @ np.array([1.0, 2.0, -1.0]) + rng.normal(size=N) * (0.5 + np.abs(X[:, 1]))
    m = models.linear_regression()
    res = fl.fit(m, y, X, init=models.glm_start(m, y, X))
    return {"X": X, "y": y, "g": g, "res": res}


def _zeileis(X: np.ndarray, y: np.ndarray, mu: np.ndarray, w: np.ndarray, hc: str) -> np.ndarray:
    """R sandwich's vcovHC for a canonical-link GLM with unit dispersion, in plain NumPy."""
    n, p = X.shape
    bread = np.linalg.inv(X.T @ (w[:, None] * X))
    hat = w * np.einsum("ij,jk,ik->i", X, bread, X)
    scores = (y - mu)[:, None] * X
    omega = {
        "HC0": np.ones(n),
        "HC1": np.full(n, n / (n - p)),
        "HC2": 1.0 / (1.0 - hat),
        "HC3": 1.0 / (1.0 - hat) ** 2,
    }[hc]
    return bread @ ((scores * omega[:, None]).T @ scores) @ bread


@pytest.mark.parametrize("hc", ["HC0", "HC1", "HC2", "HC3"])
def test_logit_hc_matches_r_sandwich_formulas(logit: dict[str, object], hc: str) -> None:
    X, y, res = logit["X"], logit["y"], logit["res"]
    assert isinstance(X, np.ndarray) and isinstance(y, np.ndarray) and isinstance(res, fl.FitResult)
    beta = sm.Logit(y, X).fit(disp=0, tol=1e-14, maxiter=200).params
    np.testing.assert_allclose(res.flat_params, beta, rtol=1e-9)
    mu = 1.0 / (1.0 + np.exp(-X @ beta))
    ref = _zeileis(X, y, mu, mu * (1.0 - mu), hc)
    got = res.cov("sandwich", hc=hc)
    assert _rel(got.matrix, ref) < RTOL
    assert got.method == ("sandwich" if hc == "HC0" else f"sandwich ({hc})")
    if hc != "HC0":  # the variants differ from HC0 by far more than the tolerance
        assert _rel(res.cov("sandwich").matrix, ref) > 1e-3


@pytest.mark.parametrize("hc", ["HC0", "HC1", "HC2", "HC3"])
def test_poisson_hc_matches_r_sandwich_formulas(poisson: dict[str, object], hc: str) -> None:
    X, y, res = poisson["X"], poisson["y"], poisson["res"]
    assert isinstance(X, np.ndarray) and isinstance(y, np.ndarray) and isinstance(res, fl.FitResult)
    fit = sm.GLM(y, X, family=sm.families.Poisson()).fit(tol=1e-14, maxiter=200)
    np.testing.assert_allclose(res.flat_params, fit.params, rtol=1e-9)
    mu = np.exp(X @ fit.params)
    ref = _zeileis(X, y, mu, mu, hc)
    assert _rel(res.cov("sandwich", hc=hc).matrix, ref) < RTOL
    se = res.se("sandwich", hc=hc)
    np.testing.assert_allclose(list(se.values()), np.sqrt(np.diag(ref)), rtol=RTOL)
    if hc == "HC0":  # statsmodels' own GLM HC0 as a second oracle
        hc0 = sm.GLM(y, X, family=sm.families.Poisson()).fit(tol=1e-14, cov_type="HC0")
        assert _rel(res.cov("sandwich").matrix, hc0.cov_params()) < RTOL


@pytest.mark.parametrize("hc", ["HC0", "HC1", "HC2", "HC3"])
def test_linear_model_hc_matches_statsmodels_ols(ols: dict[str, object], hc: str) -> None:
    """The coefficient block of the Gaussian GLM (sigma fitted too) is OLS's HCk; P counts coefficients."""
    X, y, res = ols["X"], ols["y"], ols["res"]
    assert isinstance(res, fl.FitResult)
    ref = sm.OLS(y, X).fit().get_robustcov_results(cov_type=hc).cov_params()
    got = res.cov("sandwich", hc=hc)
    assert got.names[:P] == ["beta[0]", "beta[1]", "beta[2]"]
    assert _rel(got.matrix[:P, :P], ref) < RTOL


def test_hc0_is_the_default_sandwich_bit_for_bit(poisson: dict[str, object]) -> None:
    res = poisson["res"]
    assert isinstance(res, fl.FitResult)
    default = res.cov("sandwich").matrix
    assert np.array_equal(res.cov("sandwich", hc="HC0").matrix, default)
    assert np.array_equal(res.cov("sandwich", hc=HCType.HC0).matrix, default)
    hc1 = res.cov("sandwich", hc="HC1").matrix
    np.testing.assert_allclose(hc1, default * N / (N - P), rtol=1e-13)


def _cluster_reference(
    fit_cls: str, X: np.ndarray, y: np.ndarray, g: np.ndarray, correction: bool
) -> np.ndarray:
    kw = {"cov_type": "cluster", "cov_kwds": {"groups": g, "use_correction": correction}}
    if fit_cls == "logit":
        return np.asarray(sm.Logit(y, X).fit(disp=0, tol=1e-14, maxiter=200, **kw).cov_params())
    return np.asarray(sm.GLM(y, X, family=sm.families.Poisson()).fit(tol=1e-14, **kw).cov_params())


@pytest.mark.parametrize("which", ["logit", "poisson"])
def test_cluster_matches_statsmodels(
    which: str, logit: dict[str, object], poisson: dict[str, object]
) -> None:
    case = logit if which == "logit" else poisson
    X, y, g, res = case["X"], case["y"], case["g"], case["res"]
    assert isinstance(X, np.ndarray) and isinstance(y, np.ndarray) and isinstance(g, np.ndarray)
    assert isinstance(res, fl.FitResult)
    n_groups = len(np.unique(g))
    plain = _cluster_reference(which, X, y, g, correction=False)
    default = _cluster_reference(which, X, y, g, correction=True)
    ours = res.cov("cluster", groups=g)
    assert ours.method == f"cluster (G={n_groups})"
    # fisherlab (Stata): x G/(G-1); statsmodels' use_correction=False: no factor
    assert _rel(ours.matrix, plain * n_groups / (n_groups - 1)) < RTOL
    assert _rel(res.cov("cluster", groups=g, small_sample=False).matrix, plain) < RTOL
    # statsmodels' default adds (N-1)/(N-K)
    assert _rel(ours.matrix * (N - 1) / (N - P), default) < RTOL
    assert _rel(ours.matrix, default) > 1e-3  # the two conventions do differ


def test_cluster_groups_of_any_label_type(poisson: dict[str, object]) -> None:
    g, res = poisson["g"], poisson["res"]
    assert isinstance(g, np.ndarray) and isinstance(res, fl.FitResult)
    ref = res.cov("cluster", groups=g).matrix
    as_text = np.array([f"firm-{k:02d}" for k in g])
    series = pd.Series(as_text, index=np.arange(N)[::-1] + 1000)  # the index is ignored: order is rows
    for groups in (as_text, list(as_text), series, pd.Categorical(as_text), g.astype(float)):
        assert np.array_equal(res.cov("cluster", groups=groups).matrix, ref)
    # one cluster per row is HC0 times N/(N-1)
    singletons = res.cov("cluster", groups=np.arange(N), small_sample=False).matrix
    np.testing.assert_allclose(singletons, res.cov("sandwich").matrix, rtol=1e-12)


def test_se_conf_int_summary_take_the_robust_kinds(poisson: dict[str, object]) -> None:
    g, res = poisson["g"], poisson["res"]
    assert isinstance(g, np.ndarray) and isinstance(res, fl.FitResult)
    cov = res.cov("cluster", groups=g).matrix
    se = np.sqrt(np.diag(cov))
    assert list(res.se("cluster", groups=g).values()) == pytest.approx(se, rel=1e-14)
    z = scipy.stats.norm.ppf(0.95)
    ci = res.conf_int(0.90, "cluster", groups=g)
    np.testing.assert_allclose(ci["lower"], res.flat_params - z * se, rtol=1e-12)
    np.testing.assert_allclose(ci["upper"], res.flat_params + z * se, rtol=1e-12)
    summ = res.summary("cluster", groups=g)
    assert f"covariance: cluster (G={len(np.unique(g))})" in str(summ)
    np.testing.assert_allclose(summ.table["se"].to_numpy(), se, rtol=1e-14)
    hc3 = res.summary("sandwich", hc="HC3")
    assert "covariance: sandwich (HC3)" in str(hc3)
    np.testing.assert_allclose(hc3.table["se"], np.sqrt(np.diag(res.cov("sandwich", hc="HC3").matrix)))
    d = res.derived(lambda th: th["beta"][1] - th["beta"][2], "cluster", groups=g)
    assert d.se == pytest.approx(np.sqrt(cov[1, 1] + cov[2, 2] - 2 * cov[1, 2]), rel=1e-12)


def _normal_logpdf(th: dict[str, jax.Array], y: jax.Array, x: jax.Array) -> jax.Array:
    r = (y - th["a"] - th["b"] * x) / th["sigma"]
    return -0.5 * r**2 - jnp.log(th["sigma"]) - 0.5 * jnp.log(2 * jnp.pi)


def test_generalised_leverage_for_a_non_glm_model_with_a_constraint() -> None:
    """Block = every parameter; the sigma > 0 constraint maps back to the same J^-1 M J^-1 in theta."""
    rng = np.random.default_rng(3)
    n = 60
    x = rng.uniform(-1, 1, size=n)
    y = 0.5 + 2.0 * x + rng.normal(size=n) * (0.3 + x**2)
    m = fl.Model(
        lambda th, x: fl.dist.Normal(th["a"] + th["b"] * x, th["sigma"]), constraints={"sigma": "positive"}
    )
    res = fl.fit(m, y, x, init={"a": 0.0, "b": 0.0, "sigma": 1.0})
    th = {k: jnp.asarray(v) for k, v in res.params.items()}
    names = ["a", "b", "sigma"]  # param_names order (sorted keys)
    assert res.names == names

    def flat(v: jax.Array, yi: jax.Array, xi: jax.Array) -> jax.Array:
        return _normal_logpdf(dict(zip(names, v, strict=True)), yi, xi)

    v = jnp.array([th[k] for k in names])
    scores = np.asarray(jax.vmap(jax.grad(flat), in_axes=(None, 0, 0))(v, y, x))
    curv = -np.asarray(jax.vmap(jax.hessian(flat), in_axes=(None, 0, 0))(v, y, x))
    total = curv.sum(axis=0)
    bread = np.linalg.inv(total)
    hat = np.einsum("jk,ikj->i", bread, curv)
    assert hat.sum() == pytest.approx(3.0, rel=1e-12)
    for hc, omega in [("HC1", np.full(n, n / (n - 3))), ("HC2", 1 / (1 - hat)), ("HC3", 1 / (1 - hat) ** 2)]:
        ref = bread @ ((scores * omega[:, None]).T @ scores) @ bread
        assert _rel(res.cov("sandwich", hc=hc).matrix, ref) < RTOL
    # the Wald interval of sigma is built on log(sigma) and mapped back
    z = scipy.stats.norm.ppf(0.975)
    se_u = np.sqrt(res.cov("sandwich", hc="HC3", scale="unconstrained").matrix[2, 2])
    ci = res.conf_int(kind="sandwich", hc="HC3")
    sigma = float(res.params["sigma"])
    assert ci.loc["sigma", "lower"] == pytest.approx(sigma * np.exp(-z * se_u), rel=1e-12)
    assert ci.loc["sigma", "upper"] == pytest.approx(sigma * np.exp(z * se_u), rel=1e-12)


def test_errors_are_named(poisson: dict[str, object]) -> None:
    g, res = poisson["g"], poisson["res"]
    assert isinstance(g, np.ndarray) and isinstance(res, fl.FitResult)
    with pytest.raises(fl.InvalidDataError, match="groups has 149 labels but the fit has N = 150"):
        res.cov("cluster", groups=g[:-1])
    with_nan = g.astype(float)
    with_nan[7] = np.nan
    with pytest.raises(fl.InvalidDataError, match=r"missing .* at row 7"):
        res.cov("cluster", groups=with_nan)
    with pytest.raises(fl.InvalidDataError, match=r"missing .* at row 3"):
        res.cov("cluster", groups=pd.Series(["a"] * 3 + [None] + ["b"] * (N - 4)))
    with pytest.raises(fl.InvalidDataError, match=r"1 cluster; .* at least 2"):
        res.cov("cluster", groups=np.zeros(N))
    with pytest.raises(fl.FisherlabArgumentError, match=r"cov\('cluster'\) needs groups="):
        res.cov("cluster")
    with pytest.raises(fl.FisherlabArgumentError, match="one cluster label per row"):
        res.cov("cluster", groups="firm")
    with pytest.raises(fl.InvalidOptionError, match="hc='HC3' applies to kind='sandwich' only"):
        res.cov("observed", hc="HC3")
    with pytest.raises(fl.InvalidOptionError, match="hc='HC1' applies to kind='sandwich' only"):
        res.cov("cluster", groups=g, hc="HC1")
    with pytest.raises(fl.InvalidOptionError, match="groups= applies to kind='cluster' only"):
        res.cov("sandwich", groups=g)
    with pytest.raises(fl.InvalidOptionError, match="small_sample= applies to kind='cluster' only"):
        res.se("sandwich", small_sample=False)
    with pytest.raises(fl.InvalidOptionError, match=r"hc='HC4' is not one of \['HC0', 'HC1', 'HC2', 'HC3'\]"):
        res.cov("sandwich", hc="HC4")
    with pytest.raises(fl.InvalidOptionError, match="groups= applies"):
        res.conf_int(kind="observed", groups=g)
    with pytest.raises(fl.InvalidOptionError, match="a covariance, not an information"):
        res.information("cluster")


def test_leverage_one_is_refused_with_the_row() -> None:
    """A dummy column for row 4 alone fits it exactly: h = 1, so HC2/HC3 are undefined there."""
    X, _, rng = _design(14)
    X = np.column_stack([X, np.eye(N)[4]])
    y = X[:, :3] @ np.array([1.0, 2.0, -1.0]) + rng.normal(size=N)
    m = models.linear_regression()
    res = fl.fit(m, y, X, init=models.glm_start(m, y, X))
    for hc in ("HC2", "HC3"):
        with pytest.raises(fl.InvalidDataError, match=f"hc='{hc}': row 4 has leverage"):
            res.cov("sandwich", hc=hc)
    assert np.all(np.isfinite(res.cov("sandwich", hc="HC1").matrix))


def test_leverage_above_one_is_refused_with_the_reason() -> None:
    """Outside a regression's hat values: an outlier's curvature in sigma, 3r²/σ⁴ - 1/σ², is larger
    than the total's, so its generalised leverage over (a, b, sigma) exceeds 1."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    y = 1 + 2 * x + rng.normal(size=30)
    y[0] += 25.0
    m = fl.Model(lambda th, x: fl.dist.Normal(th["a"] + th["b"] * x, th["sigma"]))
    res = fl.fit(m, y, x, init={"a": 0.0, "b": 0.0, "sigma": 1.0})
    with pytest.raises(fl.InvalidDataError, match=r"row 0 has generalised leverage h = 1\.4\d* > 1") as err:
        res.cov("sandwich", hc="HC3")
    assert "dummy column" not in str(err.value) and "hc='HC0' or 'HC1'" in str(err.value)
    assert np.all(np.isfinite(res.cov("sandwich", hc="HC1").matrix))


# ---------------------------------------------------------------------- the command line
@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    X, g, rng = _design(15)
    y = rng.poisson(np.exp(X @ np.array([0.5, 0.4, -0.6])) * rng.gamma(2.0, 0.5, size=N))
    df = pd.DataFrame({"y": y, "x1": X[:, 1], "x2": X[:, 2], "firm": [f"f{k}" for k in g], "id": g})
    path = tmp_path_factory.mktemp("robust") / "data.csv"
    df.to_csv(path, index=False)
    return path, df


def _fit_json(capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> dict[str, object]:
    code, out, err = call(
        capsys,
        "fit",
        str(path),
        "--formula",
        "y ~ x1 + x2",
        "--family",
        "poisson",
        "--json",
        "--no-check",
        *extra,
    )
    assert code == 0, err
    doc = json.loads(out)
    assert isinstance(doc, dict)
    return doc


def test_cli_cluster_matches_statsmodels(
    capsys: pytest.CaptureFixture[str], table: tuple[Path, pd.DataFrame]
) -> None:
    path, df = table
    doc = _fit_json(capsys, path, "--cov", "cluster", "--cluster", "firm")
    n_groups = df["firm"].nunique()
    assert doc["cov_kind"] == f"cluster (G={n_groups})"
    X = np.column_stack([np.ones(N), df["x1"], df["x2"]])
    ref = _cluster_reference("poisson", X, df["y"].to_numpy(float), df["firm"].to_numpy(), correction=False)
    se = np.sqrt(np.diag(ref) * n_groups / (n_groups - 1))
    got = doc["se"]
    assert isinstance(got, dict)
    np.testing.assert_allclose([got["Intercept"], got["x1"], got["x2"]], se, rtol=RTOL)
    # integer labels give the same clusters (summed in another order: rounding only)
    by_id = _fit_json(capsys, path, "--cov", "cluster", "--cluster", "id")["se"]
    assert isinstance(by_id, dict)
    np.testing.assert_allclose(list(by_id.values()), list(got.values()), rtol=1e-13)


def test_cli_hc(capsys: pytest.CaptureFixture[str], table: tuple[Path, pd.DataFrame]) -> None:
    path, df = table
    doc = _fit_json(capsys, path, "--cov", "sandwich", "--hc", "hc3")
    assert doc["cov_kind"] == "sandwich (HC3)"
    X = np.column_stack([np.ones(N), df["x1"], df["x2"]])
    y = df["y"].to_numpy(float)
    beta = sm.GLM(y, X, family=sm.families.Poisson()).fit(tol=1e-14).params
    mu = np.exp(X @ beta)
    se = np.sqrt(np.diag(_zeileis(X, y, mu, mu, "HC3")))
    got = doc["se"]
    assert isinstance(got, dict)
    np.testing.assert_allclose([got["Intercept"], got["x1"], got["x2"]], se, rtol=RTOL)
    assert _fit_json(capsys, path, "--cov", "sandwich")["cov_kind"] == "sandwich"
    code, out, _ = call(
        capsys, "fit", str(path), "--formula", "y ~ x1 + x2", "--family", "poisson", "--no-check",
        "--cov", "cluster", "--cluster", "firm",
    )  # fmt: skip
    assert code == 0 and f"[cluster (G={df['firm'].nunique()})]" in out


def test_cli_cluster_with_dropped_rows_and_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--dropna drops the rows with a missing value in the model's columns or in the cluster column;
    the labels of the rows fitted are used: the same as fitting the complete rows by hand. Data on
    standard input work the same (the column is not read again)."""
    rng = np.random.default_rng(5)
    n = 60
    df = pd.DataFrame(
        {"y": rng.poisson(2.0, n), "x1": rng.normal(size=n), "firm": rng.choice(list("abcdefg"), n)}
    )
    df.loc[[4, 17], "x1"] = np.nan
    df.loc[[30], "firm"] = np.nan
    path = tmp_path / "gaps.csv"
    df.to_csv(path, index=False)
    args = ["--formula", "y ~ x1", "--family", "poisson", "--dropna", "--no-check", "--json"]
    args += ["--cov", "cluster", "--cluster", "firm"]
    code, out, err = call(capsys, "fit", str(path), *args)
    assert code == 0, err
    doc = json.loads(out)
    complete = df.dropna()
    assert doc["nobs"] == len(complete) == n - 3 and doc["rows_dropped"] == 3
    want = fl.glm("y ~ x1", complete, family="poisson").se("cluster", groups=complete["firm"].to_numpy())
    np.testing.assert_allclose([doc["se"][k] for k in want], list(want.values()), rtol=1e-9)
    monkeypatch.setattr("sys.stdin", io.StringIO(path.read_text()))
    code, out, err = call(capsys, "fit", "-", *args)
    assert code == 0, err
    np.testing.assert_allclose(json.loads(out)["se"]["x1"], doc["se"]["x1"], rtol=1e-12)
    code, _, err = call(capsys, "fit", str(path), *[a for a in args if a != "--dropna"])
    assert_one_error_line(code, err, "3 of 60 rows have missing values", "firm (1)", "--dropna")


def test_cli_dispersion_r_goes_with_model_based_covariances(
    capsys: pytest.CaptureFixture[str], table: tuple[Path, pd.DataFrame]
) -> None:
    path, _ = table
    code, _, err = call(
        capsys, "fit", str(path), "--formula", "y ~ x1 + x2", "--family", "poisson", "--dispersion", "r",
        "--cov", "sandwich",
    )  # fmt: skip
    assert_one_error_line(code, err, "--dispersion r (R's summary.glm covariance) goes with --cov observed")


def test_report_shows_the_cluster_and_hc_columns(table: tuple[Path, pd.DataFrame]) -> None:
    from fisherlab.report import build_html

    _, df = table
    res = fl.glm("y ~ x1 + x2", df, family="poisson")
    page = build_html(res, profile=False, hc="HC3", groups=df["firm"], check_error="not run")
    g = df["firm"].nunique()
    assert f"cluster (G={g})" in page and "sandwich (HC3)" in page
    want = res.se("cluster", groups=df["firm"])["x1"]
    assert f"{want:.6g}" in page


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--cov", "cluster"], ["--cov cluster needs --cluster COLUMN"]),
        (["--cov", "cluster", "--cluster", "plant"], ["--cluster 'plant' is not a column", "firm"]),
        (["--cluster", "firm"], ["--cluster goes with --cov cluster, not --cov observed"]),
        (["--hc", "HC1"], ["--hc goes with --cov sandwich, not --cov observed"]),
        (["--cov", "sandwich", "--hc", "HC9"], ["--hc 'HC9' is not one of HC0, HC1, HC2, HC3"]),
    ],
)
def test_cli_errors(
    capsys: pytest.CaptureFixture[str],
    table: tuple[Path, pd.DataFrame],
    extra: list[str],
    fragments: list[str],
) -> None:
    path, _ = table
    code, _, err = call(capsys, "fit", str(path), "--formula", "y ~ x1 + x2", "--family", "poisson", *extra)
    assert_one_error_line(code, err, *fragments)
