"""fl.fit and FitResult against closed forms, statsmodels and quadrature."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import scipy.stats
import statsmodels.api as sm
from scipy.special import expit

import fisherlab as fl

# Estimates converge to a Newton decrement of 1e-8 standard errors: relative agreement with
# closed forms is limited by that and by float64 round-off in sums over N rows.
EST = 1e-9
# Standard errors are evaluated at an estimate within 1e-8 standard errors of the optimum, so the
# curvature there (and the SE) differs from the closed form at the exact optimum by ~1e-9 relative.
SE = 1e-8


@pytest.fixture
def normal_data(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(3.0, 2.0, size=60)


def _normal_model() -> fl.Model:
    return fl.Model(
        lambda th, x: fl.dist.Normal(th["mu"], th["sigma"]),
        constraints={"sigma": "positive"},
    )


def test_normal_mle_closed_form(normal_data) -> None:
    y = normal_data
    res = fl.fit(_normal_model(), y, init={"mu": 0.0, "sigma": 1.0})
    n, s = len(y), np.std(y)
    assert res.converged and res.decrement <= 1e-8
    assert float(res.params["mu"]) == pytest.approx(y.mean(), rel=EST)
    assert float(res.params["sigma"]) == pytest.approx(s, rel=EST)
    # Observed = expected information at the MLE: diag(n / s^2, 2 n / s^2).
    se = res.se()
    assert se["mu"] == pytest.approx(s / np.sqrt(n), rel=SE)
    assert se["sigma"] == pytest.approx(s / np.sqrt(2 * n), rel=SE)
    assert res.se("expected")["sigma"] == pytest.approx(s / np.sqrt(2 * n), rel=SE)
    assert res.loglik == pytest.approx(np.sum(scipy.stats.norm.logpdf(y, y.mean(), s)), rel=1e-12)
    # Standard errors on the fitting scale: se(log sigma) = 1 / sqrt(2n).
    cov_u = res.cov(scale="unconstrained")
    assert cov_u.names == ["mu", "u(sigma)"]
    assert np.sqrt(cov_u.matrix[1, 1]) == pytest.approx(1 / np.sqrt(2 * n), rel=SE)


def test_logistic_matches_statsmodels_and_hc0(rng: np.random.Generator) -> None:
    n = 400
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    y = (rng.random(n) < expit(X @ np.array([-0.5, 1.0, -0.7]))).astype(float)
    model = fl.Model(lambda th, x: fl.dist.Bernoulli(logits=x @ th["beta"]))
    res = fl.fit(model, y, X, init={"beta": np.zeros(3)})
    ref = sm.Logit(y, X).fit(method="newton", tol=1e-14, disp=False)
    np.testing.assert_allclose(res.params["beta"], ref.params, rtol=1e-8)
    np.testing.assert_allclose(list(res.se().values()), ref.bse, rtol=1e-8)
    hc0 = sm.Logit(y, X).fit(method="newton", tol=1e-14, disp=False, cov_type="HC0")
    np.testing.assert_allclose(list(res.se("sandwich").values()), hc0.bse, rtol=1e-7)
    # OPG ("empirical") covariance is the inverse of the summed outer products of scores
    s = fl.score(model, res.params, y, X)
    np.testing.assert_allclose(res.cov("empirical").matrix, np.linalg.inv(s.T @ s), rtol=1e-9)


def test_wald_interval_of_constrained_parameter_stays_in_support() -> None:
    # Poisson rate with few counts: the log-scale Wald interval is exp(log(m) -/+ z / sqrt(sum y)).
    y = np.array([0.0, 1.0, 0.0, 0.0, 1.0])
    model = fl.Model(lambda th, x: fl.dist.Poisson(th["rate"]), constraints={"rate": "positive"})
    res = fl.fit(model, y, init={"rate": 1.0})
    ci = res.conf_int(0.95)
    z = scipy.stats.norm.ppf(0.975)
    m = y.mean()
    assert ci.loc["rate", "lower"] == pytest.approx(m * np.exp(-z / np.sqrt(y.sum())), rel=1e-9)
    assert ci.loc["rate", "upper"] == pytest.approx(m * np.exp(z / np.sqrt(y.sum())), rel=1e-9)
    assert ci.loc["rate", "lower"] > 0


def test_profile_interval_poisson_rate_against_root_finding() -> None:
    y = np.array([0.0, 1.0, 0.0, 2.0])
    model = fl.Model(lambda th, x: fl.dist.Poisson(th["rate"]), constraints={"rate": "positive"})
    res = fl.fit(model, y, init={"rate": 1.0})
    prof = res.conf_int(0.95, method="profile")
    n, total, m = len(y), y.sum(), y.mean()
    crit = scipy.stats.chi2.ppf(0.95, 1)

    def deviance(lam: float) -> float:
        return 2 * ((total * np.log(m) - n * m) - (total * np.log(lam) - n * lam)) - crit

    lo = scipy.optimize.brentq(deviance, 1e-8, m, xtol=1e-14)
    hi = scipy.optimize.brentq(deviance, m, 50.0, xtol=1e-14)
    assert prof.loc["rate", "lower"] == pytest.approx(lo, rel=1e-8)
    assert prof.loc["rate", "upper"] == pytest.approx(hi, rel=1e-8)
    wald = res.conf_int(0.95)
    # Visibly different from the Wald interval (asymmetric likelihood).
    assert abs(wald.loc["rate", "lower"] - lo) > 0.03


def test_profile_interval_normal_sigma_with_nuisance_mean(normal_data) -> None:
    y = normal_data[:15]
    res = fl.fit(_normal_model(), y, init={"mu": 0.0, "sigma": 1.0})
    prof = res.conf_int(0.9, method="profile")
    n, ss = len(y), np.sum((y - y.mean()) ** 2)
    s_hat = np.sqrt(ss / n)
    crit = scipy.stats.chi2.ppf(0.9, 1)

    def lp(s: float) -> float:  # profile log-likelihood: mu profiled out at the sample mean
        return -n * np.log(s) - ss / (2 * s**2)

    lo = scipy.optimize.brentq(lambda s: 2 * (lp(s_hat) - lp(s)) - crit, 1e-3, s_hat, xtol=1e-14)
    hi = scipy.optimize.brentq(lambda s: 2 * (lp(s_hat) - lp(s)) - crit, s_hat, 100.0, xtol=1e-14)
    assert prof.loc["sigma", "lower"] == pytest.approx(lo, rel=1e-7)
    assert prof.loc["sigma", "upper"] == pytest.approx(hi, rel=1e-7)
    # mu: profile over sigma gives n log(1 + (ybar - mu)^2 / s_hat^2) = crit.
    half = s_hat * np.sqrt(np.exp(crit / n) - 1)
    assert prof.loc["mu", "lower"] == pytest.approx(y.mean() - half, rel=1e-7)
    assert prof.loc["mu", "upper"] == pytest.approx(y.mean() + half, rel=1e-7)


def test_delta_method(normal_data) -> None:
    y = normal_data
    res = fl.fit(_normal_model(), y, init={"mu": 0.0, "sigma": 1.0})
    d = res.derived(lambda th: th["mu"] / th["sigma"])
    mu, s, n = y.mean(), np.std(y), len(y)
    # grad = (1/s, -mu/s^2); cov = diag(s^2/n, s^2/(2n))
    expected_se = np.sqrt((1 / s) ** 2 * s**2 / n + (mu / s**2) ** 2 * s**2 / (2 * n))
    assert d.estimate == pytest.approx(mu / s, rel=EST)
    assert d.se == pytest.approx(expected_se, rel=SE)
    vec = res.derived(lambda th: jnp.stack([th["mu"], 2 * th["sigma"]]))
    np.testing.assert_allclose(vec.se, [s / np.sqrt(n), 2 * s / np.sqrt(2 * n)], rtol=SE)


def test_laplace_evidence_exact_for_conjugate_normal(normal_data) -> None:
    y = normal_data
    model = fl.Model(lambda th, x: fl.dist.Normal(th["mu"], 2.0))
    res = fl.fit(model, y, init={"mu": 0.0}, prior={"mu": fl.dist.Normal(1.0, 3.0)})
    la = res.laplace()
    n = len(y)
    cov = 4.0 * np.eye(n) + 9.0 * np.ones((n, n))
    exact = scipy.stats.multivariate_normal(np.ones(n), cov).logpdf(y)
    assert la.log_evidence == pytest.approx(exact, rel=1e-11)
    post_var = 1 / (n / 4 + 1 / 9)
    post_mean = post_var * (y.sum() / 4 + 1 / 9)
    assert float(la.mean["mu"]) == pytest.approx(post_mean, rel=1e-10)
    assert la.cov.matrix[0, 0] == pytest.approx(post_var, rel=1e-10)
    draws = la.sample(20000, seed=3)
    assert draws["mu"].shape == (20000,)
    assert abs(draws["mu"].mean() - post_mean) < 5 * np.sqrt(post_var / 20000)


def test_laplace_evidence_against_quadrature_non_conjugate(rng: np.random.Generator) -> None:
    # 1-D logistic regression (slope only) with a Normal(0, 2) prior.
    n = 300
    x = rng.normal(size=n)
    y = (rng.random(n) < expit(0.8 * x)).astype(float)
    model = fl.Model(lambda th, xx: fl.dist.Bernoulli(logits=th["b"] * xx))
    res = fl.fit(model, y, x, init={"b": 0.0}, prior={"b": fl.dist.Normal(0.0, 2.0)})

    def log_joint(b: float) -> float:
        eta = b * x
        return float(np.sum(y * eta - np.logaddexp(0, eta)) + scipy.stats.norm.logpdf(b, 0, 2))

    b_hat = scipy.optimize.minimize_scalar(
        lambda b: -log_joint(b), bounds=(-5, 5), method="bounded", options={"xatol": 1e-12}
    ).x
    p = expit(b_hat * x)
    h = np.sum(p * (1 - p) * x**2) + 1 / 4
    laplace_ref = log_joint(b_hat) + 0.5 * np.log(2 * np.pi) - 0.5 * np.log(h)
    assert res.laplace().log_evidence == pytest.approx(laplace_ref, abs=1e-8)
    peak = log_joint(b_hat)
    integral, _ = scipy.integrate.quad(
        lambda b: np.exp(log_joint(b) - peak), -5, 5, epsabs=0, epsrel=1e-12, points=[b_hat]
    )
    exact = peak + np.log(integral)
    # Laplace's error is O(1/N): well below 0.01 nats here.
    assert abs(res.laplace().log_evidence - exact) < 0.01


def test_laplace_without_prior_has_mean_and_cov_but_no_evidence(normal_data) -> None:
    res = fl.fit(_normal_model(), normal_data, init={"mu": 0.0, "sigma": 1.0})
    la = res.laplace()
    assert la.cov.names == ["mu", "sigma"]
    with pytest.raises(fl.MethodUnavailableError, match="proper prior"):
        _ = la.log_evidence


def test_map_with_callable_prior_matches_pytree_prior(normal_data) -> None:
    y = normal_data
    model = fl.Model(lambda th, x: fl.dist.Normal(th["mu"], 2.0))
    a = fl.fit(model, y, init={"mu": 0.0}, prior={"mu": fl.dist.Normal(1.0, 3.0)})
    b = fl.fit(model, y, init={"mu": 0.0}, prior=lambda th: fl.dist.Normal(1.0, 3.0).log_prob(th["mu"]))
    assert float(a.params["mu"]) == pytest.approx(float(b.params["mu"]), rel=1e-12)
    assert a.logprior == pytest.approx(b.logprior, rel=1e-12)


def test_summary_and_to_pandas(normal_data) -> None:
    res = fl.fit(_normal_model(), normal_data, init={"mu": 0.0, "sigma": 1.0})
    table = res.to_pandas()
    assert list(table.columns) == ["estimate", "se", "z", "p", "lower 95%", "upper 95%"]
    assert table.loc["mu", "z"] == pytest.approx(table.loc["mu", "estimate"] / table.loc["mu", "se"])
    assert table.loc["mu", "p"] == pytest.approx(2 * scipy.stats.norm.sf(abs(table.loc["mu", "z"])))
    text = str(res.summary())
    assert "maximum likelihood" in text and "mu" in text and "sigma" in text
    from rich.console import Console

    console = Console(record=True, width=120)
    console.print(res.summary())
    assert "estimate" in console.export_text()


def test_gamma_rate_mle_with_nonconvex_start(rng: np.random.Generator) -> None:
    y = rng.gamma(3.0, 1 / 2.0, size=500)
    model = fl.Model(
        lambda th, x: fl.dist.Gamma(th["a"], th["b"]), constraints={"a": "positive", "b": "positive"}
    )
    res = fl.fit(model, y, init={"a": 0.1, "b": 30.0})
    # MLE: log(a) - digamma(a) = log(mean) - mean(log y), b = a / mean.
    from scipy.special import digamma

    target = np.log(y.mean()) - np.log(y).mean()
    a = scipy.optimize.brentq(lambda a: np.log(a) - digamma(a) - target, 1e-3, 1e3, xtol=1e-14)
    assert float(res.params["a"]) == pytest.approx(a, rel=1e-8)
    assert float(res.params["b"]) == pytest.approx(a / y.mean(), rel=1e-8)


# ---------------------------------------------------------------------------- bad input


def test_separation_is_detected() -> None:
    x = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])
    y = (x > 0).astype(float)
    model = fl.Model(lambda th, xx: fl.dist.Bernoulli(logits=th["a"] + th["b"] * xx))
    with pytest.raises(fl.NotConvergedError, match="separation"):
        fl.fit(model, y, x, init={"a": 0.0, "b": 0.0})


def test_init_outside_support_and_constraints(normal_data) -> None:
    with pytest.raises(fl.InvalidParameterError, match="sigma"):
        fl.fit(_normal_model(), normal_data, init={"mu": 0.0, "sigma": -1.0})
    free = fl.Model(lambda th, x: fl.dist.Normal(th["mu"], th["sigma"]))
    with pytest.raises(fl.InvalidParameterError, match="'scale'"):
        fl.fit(free, normal_data, init={"mu": 0.0, "sigma": -1.0})
    with pytest.raises(fl.ModelError, match="not in the parameters"):
        fl.fit(
            fl.Model(lambda th, x: fl.dist.Normal(th["mu"], 1.0), constraints={"tau": "positive"}),
            normal_data,
            init={"mu": 0.0},
        )
    with pytest.raises(fl.ModelError, match="unknown constraint"):
        fl.Model(lambda th, x: fl.dist.Normal(th["mu"], 1.0), constraints={"mu": "blue"})


def test_prior_must_cover_every_parameter(normal_data) -> None:
    with pytest.raises(fl.ModelError, match=r"does not cover parameter\(s\) \['sigma'\]"):
        fl.fit(
            _normal_model(),
            normal_data,
            init={"mu": 0.0, "sigma": 1.0},
            prior={"mu": fl.dist.Normal(0.0, 1.0)},
        )
    with pytest.raises(fl.InvalidParameterError, match="outside the support of its prior"):
        fl.fit(
            _normal_model(),
            normal_data,
            init={"mu": 0.0, "sigma": 1.0},
            prior={"mu": fl.dist.Normal(0.0, 1.0), "sigma": fl.dist.Uniform(2.0, 3.0)},
        )


def test_non_convergence_reports_gradient_and_advice(normal_data) -> None:
    with pytest.raises(fl.NotConvergedError, match=r"gradient norm .* Newton decrement"):
        fl.fit(_normal_model(), normal_data, init={"mu": 0.0, "sigma": 1.0}, max_iter=1, method="lbfgs")


def test_unidentified_parameter_at_optimum_named() -> None:
    # a and b enter only through a + b: the Hessian is singular along (1, -1).
    y = np.array([0.5, 1.5, 1.0, 2.0])
    model = fl.Model(lambda th, x: fl.dist.Normal(th["a"] + th["b"], 1.0))
    with pytest.raises(fl.SingularInformationError, match=r"0\.707·a − 0\.707·b|0\.707·b − 0\.707·a"):
        res = fl.fit(model, y, init={"a": 0.0, "b": 0.0})
        res.cov()


def test_bad_options(normal_data) -> None:
    with pytest.raises(ValueError, match="method"):
        fl.fit(_normal_model(), normal_data, init={"mu": 0.0, "sigma": 1.0}, method="sgd")
    res = fl.fit(_normal_model(), normal_data, init={"mu": 0.0, "sigma": 1.0})
    with pytest.raises(ValueError, match="kind"):
        res.cov("hessian")
    with pytest.raises(ValueError, match="level"):
        res.conf_int(1.5)
    with pytest.raises(ValueError, match="sandwich is a covariance"):
        res.information("sandwich")


def test_rename_relabels_every_output(normal_data) -> None:
    res = fl.fit(_normal_model(), normal_data, init={"mu": 0.0, "sigma": 1.0})
    named = res.rename(["location", "spread"])
    assert named.cov().names == ["location", "spread"]
    assert list(named.conf_int().index) == ["location", "spread"]
    assert named.se()["spread"] == res.se()["sigma"]
    assert res.names == ["mu", "sigma"]
    with pytest.raises(ValueError, match="distinct names"):
        res.rename(["a"])


@pytest.mark.parametrize("value", [1e308, 1e200, -1e160])
def test_overflowing_covariate_is_named_not_a_scipy_error(value: float) -> None:
    # A finite covariate whose score (x * residual) overflows float64: the row and column are named,
    # with no RuntimeWarning first (warnings are errors in this suite).
    rng = np.random.default_rng(0)
    x = rng.normal(size=50)
    x[7] = value
    X = np.column_stack([np.ones(50), x])
    y = rng.poisson(2.0, 50).astype(float)
    m = fl.models.glm("poisson")
    with pytest.raises(fl.InvalidDataError, match=r"row 7 \(x\[:, 1\] = .*\) has a score of .* in beta\[1\]"):
        fl.fit(m, y, X, init=fl.models.glm_start(m, y, X))
    # A dict of covariates names the field.
    model = fl.Model(lambda th, x: fl.dist.Normal(th["a"] + th["b"] * x["dose"], 1.0))
    with pytest.raises(fl.InvalidDataError, match=r"row 7 .*x\['dose'\] = "):
        fl.fit(model, y, {"dose": x}, init={"a": 0.0, "b": 0.0})


def test_observed_information_of_a_fit_is_the_direct_one_on_every_scale() -> None:
    """res.information("observed") comes from the fit's own Hessian on the unconstrained scale,
    mapped back exactly (with the gradient term of the map); it equals the information computed
    directly at the estimate, prior curvature included, for positive and unit-interval maps."""
    rng = np.random.default_rng(8)
    y = rng.binomial(1, 0.3, 40).astype(float)
    z = rng.normal(2.0, 1.5, 40)
    model = fl.Model(
        lambda th, x: fl.dist.Normal(th["mu"] + 0.0 * th["p"], th["sigma"]),
        constraints={"sigma": "positive", "p": "unit_interval"},
    )
    prior = {
        "mu": fl.dist.Normal(0.0, 5.0),
        "sigma": fl.dist.LogNormal(0.0, 1.0),
        "p": fl.dist.Beta(2.0, 3.0),
    }
    res = fl.fit(model, z, init={"mu": 0.0, "sigma": 1.0, "p": 0.5}, prior=prior)
    direct = (
        fl.observed_information(model, res.params, z).matrix
        + fl.hessian(
            lambda th: (
                -(
                    prior["mu"].log_prob(th["mu"])
                    + prior["sigma"].log_prob(th["sigma"])
                    + prior["p"].log_prob(th["p"])
                )
            ),
            res.params,
        ).matrix
    )
    np.testing.assert_allclose(res.information("observed").matrix, direct, rtol=1e-9, atol=1e-12)
    bern = fl.Model(lambda th, x: fl.dist.Bernoulli(probs=th["p"]), constraints={"p": "unit_interval"})
    fit = fl.fit(bern, y, init={"p": 0.5})
    p_hat = float(fit.params["p"])
    closed = y.sum() / p_hat**2 + (1 - y).sum() / (1 - p_hat) ** 2  # -d2/dp2 of the Bernoulli log-lik
    assert fit.information("observed").matrix[0, 0] == pytest.approx(closed, rel=1e-10)
