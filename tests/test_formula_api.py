"""``fl.glm(formula, data, family=...)`` against statsmodels' ``smf.glm`` on the same formula (issue 11).

Estimates and standard errors agree to :data:`TOL`: the ML standard errors (``res.se()``,
inverse observed information) for the canonical links, whose observed and expected
information coincide and whose dispersion is 1; R's ``summary.glm`` covariance
(``fl.models.glm_covariance``, Pearson dispersion) for Gamma and gaussian, as statsmodels
reports it. The Python API refuses the formulas and data that the command line refuses, with
the same messages.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import statsmodels.api as sm
import statsmodels.formula.api as smf

import fisherlab as fl
from cli_support import call

TOL = 1e-7
"""Relative agreement with statsmodels: both fits are converged far below it (statsmodels' IRLS
run to ``tol=1e-13``; fisherlab's Newton polish to its decrement floor)."""


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 200
    x = rng.uniform(-1.0, 1.0, n)
    z = rng.uniform(0.5, 3.0, n)
    g = rng.choice(["a", "b", "c"], n)
    eta = 0.3 + 0.5 * x + 0.4 * np.log(z) + np.select([g == "b", g == "c"], [0.3, -0.2], 0.0)
    t = rng.uniform(0.5, 2.0, n)  # exposures
    trials = rng.integers(1, 12, n)
    mu_gamma = np.exp(0.5 + 0.3 * x)
    return pd.DataFrame(
        {
            "count": rng.poisson(np.exp(eta)),
            "events": rng.poisson(t * np.exp(0.2 + 0.4 * x)),
            "t": t,
            "success": (rng.uniform(size=n) < 1 / (1 + np.exp(-(0.2 + 1.1 * x)))).astype(int),
            "prop": rng.binomial(trials, 1 / (1 + np.exp(-(0.1 - 0.8 * x)))) / trials,
            "trials": trials,
            "cost": rng.gamma(3.0, mu_gamma / 3.0),
            "height": 1.0 + 2.0 * x - 0.5 * z + rng.normal(0.0, 0.7, n),
            "x": x,
            "z": z,
            "g": g,
        }
    )


def _fit_sm(formula: str, data: pd.DataFrame, family: object, **kw: object) -> object:
    return smf.glm(formula, data, family=family, **kw).fit(tol=1e-13, maxiter=200)


def _agree(res: fl.FitResult, sm_res: object, se: dict[str, float]) -> None:
    """Estimates and standard errors by design-column name (patsy may order the columns otherwise)."""
    params, bse = sm_res.params, sm_res.bse  # type: ignore[attr-defined]
    estimate = dict(zip(res.names, res.flat_params.tolist(), strict=True))
    assert set(params.index) <= set(res.names)
    names = list(params.index)
    np.testing.assert_allclose([estimate[n] for n in names], params.to_numpy(), rtol=TOL, atol=TOL)
    np.testing.assert_allclose([se[n] for n in names], bse.to_numpy(), rtol=TOL)


def _r_se(res: fl.FitResult) -> dict[str, float]:
    """R's summary.glm standard errors, under the design-column names."""
    cov = fl.models.glm_covariance(res)
    by_index = cov.se()
    return {res.names[int(k[5:-1])]: v for k, v in by_index.items()}


def test_poisson_factor_and_log_transform(frame: pd.DataFrame) -> None:
    formula = "count ~ x + C(g) + np.log(z)"
    res = fl.glm(formula, frame, family="poisson")
    ref = _fit_sm(formula, frame, sm.families.Poisson())
    assert res.names == ["Intercept", "x", "C(g)[T.b]", "C(g)[T.c]", "np.log(z)"]  # the formula's order
    _agree(res, ref, res.se())


def test_binomial_logit_and_proportions_with_weights(frame: pd.DataFrame) -> None:
    res = fl.glm("success ~ x", frame, family="binomial")
    _agree(res, _fit_sm("success ~ x", frame, sm.families.Binomial()), res.se())
    # R: glm(prop ~ x, binomial, weights = trials); statsmodels: (successes, failures) as the response
    res = fl.glm("prop ~ x", frame, family="binomial", weights="trials")
    successes = np.round(frame["prop"] * frame["trials"])
    endog = np.column_stack([successes, frame["trials"] - successes])
    ref = sm.GLM(endog, sm.add_constant(frame[["x"]]), family=sm.families.Binomial()).fit(tol=1e-13)
    np.testing.assert_allclose(res.params["beta"], ref.params.to_numpy(), rtol=TOL)
    np.testing.assert_allclose(list(res.se().values()), ref.bse.to_numpy(), rtol=TOL)
    assert res.names == ["Intercept", "x"]
    # the same weights as an array
    same = fl.glm("prop ~ x", frame, family="binomial", weights=frame["trials"].to_numpy())
    np.testing.assert_allclose(same.params["beta"], res.params["beta"], rtol=1e-12)


def test_gamma_log_link(frame: pd.DataFrame) -> None:
    res = fl.glm("cost ~ x", frame, family="gamma", link="log")
    ref = _fit_sm("cost ~ x", frame, sm.families.Gamma(link=sm.families.links.Log()))
    _agree(res, ref, _r_se(res))
    assert res.names == ["Intercept", "x", "shape"]  # the extra parameter after the columns


def test_gaussian(frame: pd.DataFrame) -> None:
    formula = "height ~ x + z + C(g)"
    res = fl.glm(formula, frame, family="gaussian", dispersion="r")
    ref = _fit_sm(formula, frame, sm.families.Gaussian())
    _agree(res, ref, _r_se(res))
    assert res.names == ["Intercept", "x", "z", "C(g)[T.b]", "C(g)[T.c]", "sigma"]
    rss = float(np.sum((frame["height"] - ref.fittedvalues) ** 2))
    np.testing.assert_allclose(float(res.params["sigma"]) ** 2, rss / len(frame), rtol=TOL)


def test_offset_and_exposure(frame: pd.DataFrame) -> None:
    ref = _fit_sm("events ~ x", frame, sm.families.Poisson(), exposure=frame["t"])
    by_column = fl.glm("events ~ x", frame, family="poisson", exposure="t")
    _agree(by_column, ref, by_column.se())
    by_array = fl.glm("events ~ x", frame, family="poisson", exposure=frame["t"].to_numpy())
    _agree(by_array, ref, by_array.se())
    log_t = np.log(frame["t"].to_numpy())
    ref_offset = _fit_sm("events ~ x", frame, sm.families.Poisson(), offset=log_t)
    with_offset = fl.glm("events ~ x", frame, family="poisson", offset=log_t)
    _agree(with_offset, ref_offset, with_offset.se())
    # both: offset + log(exposure), as statsmodels adds them
    both = fl.glm("events ~ x", frame, family="poisson", offset=0.5 * log_t, exposure="t")
    ref_both = _fit_sm("events ~ x", frame, sm.families.Poisson(), offset=0.5 * log_t, exposure=frame["t"])
    _agree(both, ref_both, both.se())
    bad = frame.assign(t=frame["t"].where(frame.index != 7, 0.0))
    with pytest.raises(fl.InvalidDataError, match=r"exposure 't' at row 7 is 0: exposures must be positive"):
        fl.glm("events ~ x", bad, family="poisson", exposure="t")
    with pytest.raises(fl.InvalidDataError, match=r"offset= must be a column name or an array of one value"):
        fl.glm("events ~ x", frame, family="poisson", offset=np.ones(3))


def test_dict_of_columns_and_negative_binomial_names(frame: pd.DataFrame) -> None:
    columns = {k: frame[k].to_numpy() for k in ("count", "x")}
    res = fl.glm("count ~ x", columns, family="poisson")
    ref = _fit_sm("count ~ x", frame, sm.families.Poisson())
    _agree(res, ref, res.se())
    rng = np.random.default_rng(2)
    nb = pd.DataFrame({"y": rng.negative_binomial(2, 0.3, 300), "x": rng.normal(size=300)})
    fit = fl.glm("y ~ x", nb, family="negative_binomial")
    assert fit.names == ["alpha", "Intercept", "x"]  # pytree keys sorted: alpha before beta


def test_guard_refuses_code(tmp_path: Path, frame: pd.DataFrame) -> None:
    pwned = tmp_path / "pwned"
    formula = f"count ~ x + I(np.f2py.os.system('touch {pwned}'))"
    with pytest.raises(fl.UnsafeFormulaError, match=r"'np.f2py.os.system'.*allow_code=True") as info:
        fl.glm(formula, frame, family="poisson")
    assert isinstance(info.value, fl.FisherlabError) and isinstance(info.value, fl.FormulaError)
    assert info.value.token == "np.f2py.os.system"
    assert not pwned.exists()
    # allow_code=True lifts the allow-list: Python's builtins and methods run
    res = fl.glm("count ~ I(abs(x))", frame, family="poisson", allow_code=True)
    assert res.names == ["Intercept", "I(abs(x))"]


def test_missing_values(frame: pd.DataFrame) -> None:
    holes = frame.copy()
    holes.loc[[3, 17], "x"] = np.nan
    holes.loc[40, "g"] = None
    with pytest.raises(fl.InvalidDataError, match=r"3 of 200 rows have missing values \(in g \(1\), x \(2\); "
                       r"first at row 3\); pass missing='drop'"):  # fmt: skip
        fl.glm("count ~ x + C(g)", holes, family="poisson")
    res = fl.glm("count ~ x + C(g)", holes, family="poisson", missing="drop")
    ref = _fit_sm("count ~ x + C(g)", holes, sm.families.Poisson(), missing="drop")
    _agree(res, ref, res.se())
    assert res.nobs == 197 and any("3 of 200 rows" in note for note in res.notes)
    with pytest.raises(fl.InvalidOptionError, match=r"missing='omit' is not one of \['raise', 'drop'\]"):
        fl.glm("count ~ x", frame, family="poisson", missing="omit")


def test_bad_family_link_and_options(frame: pd.DataFrame) -> None:
    with pytest.raises(fl.ModelError, match="poison"):
        fl.glm("count ~ x", frame, family="poison")
    with pytest.raises(fl.ModelError, match="logit"):
        fl.glm("cost ~ x", frame, family="gamma", link="logit")
    with pytest.raises(fl.InvalidOptionError, match=r"dispersion='pearson' is not one of \['ml', 'r'\]"):
        fl.glm("count ~ x", frame, family="poisson", dispersion="pearson")
    with pytest.raises(fl.FisherlabArgumentError, match="pandas DataFrame or a dict"):
        fl.glm("count ~ x", [[1, 2]], family="poisson")
    with pytest.raises(fl.FormulaError, match="needs a response"):
        fl.glm("~ x", frame, family="poisson")
    with pytest.raises(fl.InvalidDataError, match=r"column\(s\) 'w' not in the data"):
        fl.glm("count ~ x + w", frame, family="poisson")
    with pytest.raises(fl.InvalidDataError, match=r"response 'x' at row \d+ is -0.\d+: the poisson family"):
        fl.glm("x ~ z", frame, family="poisson")


def test_typos_named_as_the_command_line_names_them(
    frame: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = frame[["count", "x"]].copy()
    text = typo["x"].map(repr).astype(object)
    text.iloc[5] = "abc"
    text.iloc[9] = "1,5"
    typo["x"] = text
    with pytest.raises(fl.InvalidDataError) as info:
        fl.glm("count ~ x", typo, family="poisson")
    message = str(info.value)
    for fragment in ("column 'x'", "2 of 200 rows", "row 5 is 'abc'", "row 9 is '1,5'", "write C(x)"):
        assert fragment in message
    path = tmp_path / "typo.csv"
    typo.to_csv(path, index=False)
    code, _, err = call(capsys, "fit", str(path), "-f", "count ~ x", "--family", "poisson", "--no-check")
    assert code == 2 and err.strip() == f"fisherlab: error: {message}"


def test_estimate_at_infinity_names_the_column(frame: pd.DataFrame) -> None:
    zero = frame.copy()
    zero.loc[zero["g"] == "b", "count"] = 0
    with pytest.raises(fl.EstimateAtInfinityError) as info:
        fl.glm("count ~ x + g", zero, family="poisson")
    assert "g[T.b] → −∞" in str(info.value) and "beta[" not in str(info.value)
    assert "exactly the rows where g[T.b] ≠ 0" in str(info.value)
    assert set(info.value.direction) == {"g[T.b]"}


def test_binomial_weights_are_checked() -> None:
    """R's proportions-and-weights binomial: y in [0, 1], y·w whole, w positive integers; rows named."""
    data = {"p": [0.5, 0.2, 1.5, 0.25], "x": [1.0, 2.0, 3.0, 4.0], "n": [2, 5, 4, 4]}
    with pytest.raises(fl.InvalidDataError, match=r"response 'p' at row 2 is 1.5: .* between 0 and 1"):
        fl.glm("p ~ x", data, family="binomial", weights="n")
    data["p"][2] = 0.3
    with pytest.raises(fl.InvalidDataError, match=r"row 2 is 0.3 with weight 4: 1.2 successes"):
        fl.glm("p ~ x", data, family="binomial", weights="n")
    data["p"][2], data["n"][1] = 0.5, 0
    with pytest.raises(fl.InvalidDataError, match=r"the weight 'n' \(the trials\) at row 1 is 0"):
        fl.glm("p ~ x", data, family="binomial", weights="n")


@pytest.mark.parametrize(
    ("family", "sm_family", "link", "t_tests"),
    [
        ("gaussian", sm.families.Gaussian(), None, True),
        ("gamma", sm.families.Gamma(link=sm.families.links.Log()), "log", True),
        ("poisson", sm.families.Poisson(), None, False),
    ],
)
def test_dispersion_r_is_summary_glm(
    frame: pd.DataFrame, family: str, sm_family: object, link: object, t_tests: bool
) -> None:
    # R: summary(glm(...)) — phi (X'WX)^-1 standard errors, t tests on N - p df where R estimates
    # phi by Pearson (gaussian, Gamma), z tests with phi = 1 (Poisson); t-quantile intervals.
    response = {"gaussian": "height", "gamma": "cost", "poisson": "count"}[family]
    formula = f"{response} ~ x + C(g)"
    res = fl.glm(formula, frame, family=family, link=link, dispersion="r")
    ref = _fit_sm(formula, frame, sm_family)
    assert isinstance(res, fl.models.GLMFit) and res.dispersion == "r"
    cols = list(ref.params.index)
    table = res.to_pandas()
    np.testing.assert_allclose(table.loc[cols, "se"], ref.bse.to_numpy(), rtol=TOL)
    stat = "t" if t_tests else "z"
    assert stat in table.columns
    np.testing.assert_allclose(table.loc[cols, stat], ref.tvalues.to_numpy(), rtol=TOL)
    df = len(frame) - len(cols)
    assert res.df_resid == int(ref.df_resid) == df
    ref_p = 2 * scipy.stats.t.sf(np.abs(ref.tvalues), df) if t_tests else ref.pvalues.to_numpy()
    np.testing.assert_allclose(table.loc[cols, "p"], ref_p, rtol=1e-6)
    q = scipy.stats.t.ppf(0.975, df) if t_tests else scipy.stats.norm.ppf(0.975)
    ci = res.conf_int(0.95)
    np.testing.assert_allclose(ci.loc[cols, "lower"], ref.params - q * ref.bse, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(ci.loc[cols, "upper"], ref.params + q * ref.bse, rtol=TOL, atol=TOL)
    # the extra parameter keeps its ML variance, orthogonal to the coefficients
    ml = fl.glm(formula, frame, family=family, link=link)
    assert ml.dispersion == "ml" and "z" in ml.to_pandas().columns
    extra = [i for i in range(len(res.names)) if i not in set(res.beta_index.tolist())]
    for i in extra:
        assert res.cov().matrix[i, i] == pytest.approx(ml.cov().matrix[i, i], rel=1e-10)
        assert not np.any(res.cov().matrix[i, res.beta_index])
    # robust kinds are the same under either dispersion
    np.testing.assert_allclose(res.cov("sandwich").matrix, ml.cov("sandwich").matrix, rtol=1e-12)
    assert res.dispersion_r == pytest.approx(float(ref.scale), rel=TOL)
    assert "t tests on" in str(res.summary()) if t_tests else "t tests" not in str(res.summary())


def test_r_degrees_of_freedom_and_null_deviance(frame: pd.DataFrame) -> None:
    res = fl.glm("count ~ x + C(g)", frame, family="poisson")
    ref = _fit_sm("count ~ x + C(g)", frame, sm.families.Poisson())
    assert (res.df_resid, res.df_null) == (int(ref.df_resid), len(frame) - 1)
    assert res.null_deviance == pytest.approx(ref.null_deviance, rel=1e-9)
    assert res.deviance == pytest.approx(ref.deviance, rel=1e-9)
    no_intercept = fl.glm("count ~ x - 1", frame, family="poisson")
    assert no_intercept.df_null == len(frame)


def test_predict_builds_new_rows_from_the_formula(frame: pd.DataFrame) -> None:
    # statsmodels' formula predict: the same factor levels and transforms on new raw rows
    formula = "count ~ x + C(g) + np.log(z)"
    res = fl.glm(formula, frame, family="poisson")
    ref = _fit_sm(formula, frame, sm.families.Poisson())
    new = pd.DataFrame({"x": [0.0, 0.5, -0.3], "g": ["c", "a", "b"], "z": [1.0, 2.5, 0.7]}, index=[7, 8, 9])
    got = res.predict(new)
    want = ref.get_prediction(new).summary_frame()
    assert list(got.index) == [7, 8, 9]
    np.testing.assert_allclose(got["mean"], want["mean"], rtol=1e-7)
    np.testing.assert_allclose(got["se"], want["mean_se"], rtol=1e-6)
    np.testing.assert_allclose(got["lower"], want["mean_ci_lower"], rtol=1e-6)
    # one level, in any order of rows, still gets its column (C(g)[T.c] from the fit's levels)
    one = res.predict(pd.DataFrame({"x": [0.0], "g": ["c"], "z": [1.0]}))
    assert one["mean"].iloc[0] == pytest.approx(got["mean"].iloc[0], rel=1e-12)
    with pytest.raises(fl.InvalidDataError, match=r"lacks the column\(s\) 'z'"):
        res.predict(pd.DataFrame({"x": [0.0], "g": ["a"]}))
    with pytest.raises(fl.InvalidDataError, match="cannot build the design of newdata"):
        res.predict(pd.DataFrame({"x": [0.0], "g": ["zzz"], "z": [1.0]}))
    with pytest.raises(fl.InvalidDataError, match="not finite"):
        res.predict(pd.DataFrame({"x": [np.nan], "g": ["a"], "z": [1.0]}))


def test_predict_with_exposure_reads_its_column(frame: pd.DataFrame) -> None:
    res = fl.glm("events ~ x", frame, family="poisson", exposure="t")
    ref = smf.glm("events ~ x", frame, family=sm.families.Poisson(), exposure=frame["t"]).fit(tol=1e-13)
    new = pd.DataFrame({"x": [0.1, -0.4], "t": [2.0, 0.5]})
    got = res.predict(new)
    want = ref.get_prediction(new, exposure=new["t"]).summary_frame()
    np.testing.assert_allclose(got["mean"], want["mean"], rtol=1e-7)
    with pytest.raises(fl.InvalidDataError, match="'t'"):
        res.predict(pd.DataFrame({"x": [0.1]}))


def test_cluster_groups_by_column_name_follow_dropped_rows(frame: pd.DataFrame) -> None:
    # missing="drop" fits fewer rows: a column name, or labels for every row of the table, are
    # restricted to the fitted rows — the same covariance as fitting the complete rows by hand.
    holes = frame.copy()
    holes.loc[[3, 50, 51], "x"] = np.nan
    res = fl.glm("count ~ x", holes, family="poisson", missing="drop")
    complete = holes.dropna(subset=["x"])
    by_hand = fl.glm("count ~ x", complete, family="poisson")
    want = by_hand.cov("cluster", groups=complete["g"].to_numpy()).matrix
    np.testing.assert_allclose(res.cov("cluster", groups="g").matrix, want, rtol=1e-9)
    np.testing.assert_allclose(res.cov("cluster", groups=holes["g"]).matrix, want, rtol=1e-9)
    with pytest.raises(fl.InvalidDataError, match="'firm' is not a column of the data"):
        res.cov("cluster", groups="firm")


@pytest.mark.parametrize(
    ("family", "link", "sm_family"),
    [
        ("gaussian", None, sm.families.Gaussian()),
        ("gamma", "log", sm.families.Gamma(link=sm.families.links.Log())),
        ("inverse_gaussian", "log", sm.families.InverseGaussian(link=sm.families.links.Log())),
    ],
)
def test_prior_weights_divide_the_dispersion(
    frame: pd.DataFrame, family: str, link: str | None, sm_family: object
) -> None:
    # R: glm(y ~ x, family, weights = w); statsmodels: GLM(..., var_weights=w). Row i has
    # dispersion phi/w_i: same coefficients, summary.glm standard errors, weighted deviances.
    data = frame.assign(w=np.random.default_rng(2).uniform(0.3, 4.0, len(frame)))
    response = "height" if family == "gaussian" else "cost"
    res = fl.glm(f"{response} ~ x + z", data, family=family, link=link, weights="w", dispersion="r")
    ref = smf.glm(f"{response} ~ x + z", data, family=sm_family, var_weights=data["w"]).fit(tol=1e-13)
    table = res.to_pandas()
    cols = list(ref.params.index)
    np.testing.assert_allclose(table.loc[cols, "estimate"], ref.params, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(table.loc[cols, "se"], ref.bse, rtol=TOL)
    assert res.dispersion_r == pytest.approx(ref.scale, rel=TOL)
    assert res.deviance == pytest.approx(ref.deviance, rel=1e-9)
    assert res.null_deviance == pytest.approx(ref.null_deviance, rel=1e-9)
    unweighted = fl.glm(f"{response} ~ x + z", data, family=family, link=link)
    assert not np.allclose(unweighted.params["beta"], res.params["beta"], rtol=1e-6)  # the weights matter
    same = fl.glm(f"{response} ~ x + z", data, family=family, link=link, weights=data["w"].to_numpy())
    np.testing.assert_allclose(same.params["beta"], res.params["beta"], rtol=1e-12)


def test_poisson_prior_weights_are_r_weights(frame: pd.DataFrame) -> None:
    # R: glm(y ~ x + z, poisson, weights = w) maximises sum w_i log p(y_i); statsmodels' var_weights
    # is the same: estimates, standard errors (dispersion 1), log-likelihood, AIC, deviances,
    # and the HC0 sandwich with the weighted scores w_i s_i (R's sandwich::vcovHC(type = "HC0")).
    data = frame.assign(w=np.random.default_rng(5).uniform(0.3, 4.0, len(frame)))
    res = fl.glm("count ~ x + z", data, family="poisson", weights="w")
    ref = smf.glm("count ~ x + z", data, family=sm.families.Poisson(), var_weights=data["w"]).fit(tol=1e-13)
    cols = list(ref.params.index)
    table = res.to_pandas()
    np.testing.assert_allclose(table.loc[cols, "estimate"], ref.params, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(table.loc[cols, "se"], ref.bse, rtol=TOL)
    assert res.loglik == pytest.approx(ref.llf, rel=1e-10)
    assert res.aic == pytest.approx(ref.aic, rel=1e-10)
    assert res.deviance == pytest.approx(ref.deviance, rel=1e-9)
    assert res.null_deviance == pytest.approx(ref.null_deviance, rel=1e-9)
    hc0 = smf.glm("count ~ x + z", data, family=sm.families.Poisson(), var_weights=data["w"]).fit(
        tol=1e-13, cov_type="HC0"
    )
    se = res.se("sandwich")
    np.testing.assert_allclose([se[c] for c in cols], hc0.bse, rtol=1e-6)
    np.testing.assert_allclose([res.se("expected")[c] for c in cols], ref.bse, rtol=1e-6)
    unweighted = fl.glm("count ~ x + z", data, family="poisson")
    assert not np.allclose(unweighted.params["beta"], res.params["beta"], rtol=1e-4)


@pytest.mark.slow  # about 12 s (the negative binomial's kernels); Poisson weights stay in the default suite
def test_negative_binomial_integer_weights_are_replicated_rows(frame: pd.DataFrame) -> None:
    # MASS::glm.nb(weights = w): the weighted log-likelihood, alpha included. With integer weights
    # that is the fit of the data with row i repeated w_i times (an independent oracle): same
    # estimates, log-likelihood, deviances and observed/expected information.
    rng = np.random.default_rng(6)
    w = rng.integers(1, 4, len(frame)).astype(float)
    mu = np.exp(0.4 + 0.6 * frame["x"].to_numpy())
    data = frame.assign(w=w, nb=rng.negative_binomial(2.0, 2.0 / (2.0 + mu)))  # alpha = 0.5
    res = fl.glm("nb ~ x", data, family="negative_binomial", weights="w")
    repeated = data.loc[data.index.repeat(w.astype(int))].reset_index(drop=True)
    ref = fl.glm("nb ~ x", repeated, family="negative_binomial")
    assert set(res.params) == set(ref.params) == {"alpha", "beta"}
    for name in ref.params:
        np.testing.assert_allclose(res.params[name], ref.params[name], rtol=1e-7)
    assert res.loglik == pytest.approx(ref.loglik, rel=1e-10)
    assert res.deviance == pytest.approx(ref.deviance, rel=1e-8)
    assert res.null_deviance == pytest.approx(ref.null_deviance, rel=1e-8)
    for kind in ("observed", "expected"):
        np.testing.assert_allclose(res.cov(kind).matrix, ref.cov(kind).matrix, rtol=1e-6, atol=1e-14)
    assert res.df_resid == len(frame) - 2  # R: rows with non-zero weight minus the coefficients
    # a weighted log-likelihood is not a likelihood of y: no identity check, no simulation
    with pytest.raises(fl.MethodUnavailableError, match="likelihood weights"):
        fl.check(res.model, res.params, res.data.y, res.data.x)
    with pytest.raises(fl.MethodUnavailableError, match="no sampler"):
        fl.fisher(res.model, res.params, res.data.x, method="mc")


def test_weighted_distribution_scales_log_density_and_fisher() -> None:
    base = fl.dist.NegativeBinomial2(np.array([1.5, 4.0]), 2.0)
    d = fl.dist.Weighted(base, np.array([0.5, 3.0]))
    y = np.array([2.0, 7.0])
    np.testing.assert_allclose(d.log_prob(y), np.array([0.5, 3.0]) * base.log_prob(y), rtol=1e-15)
    f, fb = fl.dist.family_fisher(d), fl.dist.family_fisher(base)
    assert f.names == fb.names
    np.testing.assert_allclose(f.matrix, np.array([0.5, 3.0])[:, None, None] * fb.matrix, rtol=1e-15)
    with pytest.raises(fl.FisherlabArgumentError):
        fl.dist.Weighted(np.ones(2), 1.0)
    # rows outside the support are named through the wrapper, as for the base family
    m = fl.Model(lambda th, x: fl.dist.Weighted(fl.dist.Poisson(th["rate"] * x), 2.0))
    with pytest.raises(fl.InvalidParameterError, match="row 1"):
        fl.loglik(m, {"rate": 1.0}, np.array([1.0, 2.0]), np.array([1.0, -1.0]))


def test_weighted_gaussian_loglik_is_r_loglik(frame: pd.DataFrame) -> None:
    # R's logLik(glm(y ~ x, gaussian, weights = w)): y_i ~ N(mu_i, sigma^2/w_i), sigma^2 = D/N
    w = np.random.default_rng(4).uniform(0.5, 2.0, len(frame))
    res = fl.glm("height ~ x", frame.assign(w=w), family="gaussian", weights="w")
    X = np.column_stack([np.ones(len(frame)), frame["x"]])
    sw = np.sqrt(w)
    beta = np.linalg.lstsq(X * sw[:, None], frame["height"] * sw, rcond=None)[0]
    mu = X @ beta
    sigma2 = float(np.sum(w * (frame["height"] - mu) ** 2)) / len(frame)
    ll = float(np.sum(scipy.stats.norm.logpdf(frame["height"], mu, np.sqrt(sigma2 / w))))
    assert res.loglik == pytest.approx(ll, rel=1e-10)
    assert res.aic == pytest.approx(-2 * ll + 2 * 3, rel=1e-10)


def test_bad_prior_weights_name_the_row(frame: pd.DataFrame) -> None:
    w = np.ones(len(frame))
    w[7] = 0.0
    with pytest.raises(
        fl.InvalidDataError, match=r"the weight 'w' at row 7 is 0: prior weights must be positive"
    ):
        fl.glm("height ~ x", frame.assign(w=w), family="gaussian", weights="w")
    w[7] = -1.0
    with pytest.raises(fl.InvalidDataError, match=r"the weight 'w' at row 7 is -1"):
        fl.glm("count ~ x", frame.assign(w=w), family="negative_binomial", weights="w")
    with pytest.raises(fl.ModelError, match=r"'weights'.*not binomial.*'trials'"):
        x = {"X": np.ones((3, 1)), "weights": np.ones(3)}
        fl.fit(fl.models.glm("binomial"), np.ones(3), x, init={"beta": np.zeros(1)})
    # at the model level a weight is checked inside the kernel, its row named
    x = {"X": np.ones((3, 1)), "weights": np.array([1.0, -2.0, 1.0])}
    with pytest.raises(fl.InvalidParameterError, match=r"row 1.*weight"):
        fl.loglik(fl.models.glm("poisson"), {"beta": np.zeros(1)}, np.ones(3), x)
