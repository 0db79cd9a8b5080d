"""Maximum-likelihood estimates that do not exist, for every family, and the negative binomial's boundary.

Oracles: the existence conditions of the literature (Haberman 1974 for log-linear counts,
Albert & Anderson 1984 for binomial responses; a Student-t's degrees of freedom run to
infinity on platykurtic data; a Normal's scale to 0 on constant data), and for the negative
binomial an independent maximum-likelihood fit with SciPy's ``nbinom`` (and statsmodels'
Poisson GLM) for the boundary LR test.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import scipy.stats
import statsmodels.api as sm

import fisherlab as fl
from fisherlab import models


def _groups(sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    g = np.repeat(np.arange(len(sizes)), sizes)
    X = np.column_stack([np.ones(g.size)] + [(g == k).astype(float) for k in range(1, len(sizes))])
    return g, X


def test_poisson_group_with_all_zero_counts_is_named() -> None:
    rng = np.random.default_rng(1)
    g, X = _groups([20, 15, 25])
    y = rng.poisson(3.0, g.size).astype(float)
    y[g == 1] = 0.0
    m = models.glm("poisson")
    with pytest.raises(fl.EstimateAtInfinityError) as info:
        fl.fit(m, y, X, init=models.glm_start(m, y, X))
    exc = info.value
    assert isinstance(exc, fl.NotConvergedError) and isinstance(exc, ArithmeticError)
    assert list(exc.direction) == ["beta[1]"] and exc.direction["beta[1]"] < 0
    assert exc.rows == list(np.flatnonzero(g == 1))
    text = str(exc)
    assert "beta[1] → −∞" in text and "all of them have y = 0" in text and "15 of 60 rows" in text
    assert "mean runs to 0" in text


def test_binomial_group_with_all_successes_and_all_failures() -> None:
    rng = np.random.default_rng(2)
    g, X = _groups([30, 30, 30])
    y = rng.binomial(1, 0.5, g.size).astype(float)
    y[g == 2] = 1.0
    m = models.glm("binomial")
    with pytest.raises(fl.EstimateAtInfinityError) as info:
        fl.fit(m, y, X, init=models.glm_start(m, y, X))
    assert "beta[2] → +∞" in str(info.value) and "y = 1" in str(info.value)
    y[g == 2] = 0.0
    m = models.glm("binomial", "probit")
    with pytest.raises(fl.EstimateAtInfinityError, match=r"beta\[2\] → −∞"):
        fl.fit(m, y, X, init=models.glm_start(m, y, X))


def test_complete_separation_on_a_continuous_covariate() -> None:
    x = np.linspace(-2, 2, 40)
    X = np.column_stack([np.ones(40), x])
    y = (x > 0.1).astype(float)
    m = models.glm("binomial")
    with pytest.raises(fl.EstimateAtInfinityError, match="separation") as info:
        fl.fit(m, y, X, init=models.glm_start(m, y, X))
    assert info.value.direction["beta[1]"] > 0


def test_degrees_of_freedom_at_infinity() -> None:
    # Uniform data have lighter tails than any Student t: the MLE of df is +infinity.
    y = np.linspace(-1.0, 1.0, 400)
    t = fl.Model(
        lambda th, x: fl.dist.StudentT(th["df"], th["loc"], th["scale"]),
        constraints={"df": "positive", "scale": "positive"},
    )
    with pytest.raises(fl.EstimateAtInfinityError, match=r"df → \+∞"):
        fl.fit(t, y, init={"df": 5.0, "loc": 0.0, "scale": 0.5})


def test_poisson_rate_with_only_zero_counts() -> None:
    m = fl.Model(lambda th, x: fl.dist.Poisson(th["rate"]), constraints={"rate": "positive"})
    with pytest.raises(fl.EstimateAtInfinityError, match="rate → 0"):
        fl.fit(m, np.zeros(5), init={"rate": 1.0})


def test_a_prior_gives_a_finite_map_estimate() -> None:
    _, X = _groups([10, 10])
    y = np.r_[np.full(10, 3.0), np.zeros(10)]
    m = models.glm("poisson")
    prior = {"beta": fl.dist.Normal(np.zeros(2), 5.0)}
    res = fl.fit(m, y, X, init=models.glm_start(m, y, X), prior=prior)
    assert np.all(np.isfinite(res.params["beta"])) and res.params["beta"][1] < -3


@pytest.mark.parametrize(
    ("family", "draw"),
    [
        ("poisson", lambda r, n: r.poisson(2.0, n)),
        ("binomial", lambda r, n: r.binomial(1, 0.3, n)),
        ("gaussian", lambda r, n: r.normal(1.0, 2.0, n)),
        ("gamma", lambda r, n: r.gamma(2.0, 1.5, n)),
        ("inverse_gaussian", lambda r, n: r.wald(2.0, 3.0, n)),
        ("negative_binomial", lambda r, n: r.negative_binomial(2, 0.4, n)),
    ],
)
def test_no_false_alarm_on_ordinary_fits(family: str, draw) -> None:
    # Small groups (8 rows), where likelihoods are far from quadratic, but every MLE exists.
    rng = np.random.default_rng(7)
    g, X = _groups([8, 8, 8])
    m = models.glm(family)  # one model: its kernels compile once for the five data sets
    for _ in range(5):
        y = draw(rng, g.size).astype(float)
        if family in ("poisson", "negative_binomial", "binomial") and any(
            np.all(y[g == k] == 0) or (family == "binomial" and np.all(y[g == k] == 1)) for k in range(3)
        ):
            continue  # a boundary group: the MLE does not exist (tested above)
        try:
            res = models.fit_glm(m, y, X)
        except fl.EstimateAtInfinityError as exc:
            pytest.fail(f"{family}: false alarm on y = {y.tolist()}: {exc}")
        assert res.converged and np.all(np.isfinite(list(res.se().values())))


def test_negative_binomial_on_underdispersed_counts_lands_on_the_boundary() -> None:
    y = np.tile([2.0, 3.0, 4.0, 3.0, 1.0, 5.0], 30)
    x = np.tile(np.linspace(-1, 1, 6), 30)
    X = np.column_stack([np.ones(y.size), x])
    m = models.glm("negative_binomial")
    with pytest.raises(fl.EstimateAtInfinityError, match="alpha → 0"):
        fl.fit(m, y, X, init=models.glm_start(m, y, X))
    res = models.fit_glm(m, y, X)
    assert res.names == ["beta[0]", "beta[1]"]
    assert any("boundary" in note and "chibar2(01) = 0" in note for note in res.notes)
    # The boundary fit is the Poisson GLM (statsmodels' IRLS as the oracle).
    ref = sm.GLM(y, X, family=sm.families.Poisson()).fit()
    np.testing.assert_allclose(res.params["beta"], ref.params, rtol=1e-9)
    np.testing.assert_allclose(list(res.se().values()), ref.bse, rtol=1e-6)
    np.testing.assert_allclose(res.loglik, ref.llf, rtol=1e-12)
    test = models.overdispersion_test(res)
    assert (test.statistic, test.pvalue, test.distribution) == (0.0, 1.0, "chibar2(01)")


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_the_sign_of_a_rounding_level_curvature_does_not_decide(
    monkeypatch: pytest.MonkeyPatch, sign: float
) -> None:
    """At log alpha ≈ -35 the curvature along alpha is 1e-13 of either sign, depending on how the
    machine rounds (XLA's optimisation level, the CPU); a positive one made the "standard error"
    2e6 on the log scale, both probes overflowed and a fit with alpha = 1e-15 was reported as
    converged. Both signs must give the EstimateAtInfinityError."""
    import scipy.linalg

    from fisherlab.inference import _recession

    plain = scipy.linalg.eigh

    def rounded(a, *args, **kwargs):  # type: ignore[no-untyped-def]
        lam, vecs = plain(a, *args, **kwargs)
        tiny = np.abs(lam) < 1e-9 * np.max(np.abs(lam))
        return np.where(tiny, sign * np.maximum(np.abs(lam), 1e-13), lam), vecs

    monkeypatch.setattr(_recession.scipy.linalg, "eigh", rounded)
    y = np.tile([2.0, 3.0, 4.0, 3.0, 1.0, 5.0], 30)
    X = np.column_stack([np.ones(y.size), np.tile(np.linspace(-1, 1, 6), 30)])
    m = models.glm("negative_binomial")
    with pytest.raises(fl.EstimateAtInfinityError, match="alpha → 0"):
        fl.fit(m, y, X, init=models.glm_start(m, y, X))


def _nb_loglik_scipy(y: np.ndarray, X: np.ndarray) -> float:
    """The NB2 maximum log-likelihood by an independent fit with scipy.stats.nbinom."""

    def nll(theta: np.ndarray) -> float:
        mu, alpha = np.exp(X @ theta[:-1]), np.exp(theta[-1])
        r = 1.0 / alpha
        return -float(np.sum(scipy.stats.nbinom.logpmf(y, r, r / (r + mu))))

    start = np.r_[np.log(y.mean()), np.zeros(X.shape[1] - 1), np.log(0.5)]
    opt = scipy.optimize.minimize(
        nll, start, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000}
    )
    return -float(opt.fun)


def test_overdispersion_test_against_an_independent_fit() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=400)
    X = np.column_stack([np.ones(400), x])
    mu = np.exp(0.5 + 0.4 * x)
    y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu)).astype(float)  # alpha = 0.5
    res = models.fit_glm(models.glm("negative_binomial"), y, X)
    test = models.overdispersion_test(res)
    ll_pois = sm.GLM(y, X, family=sm.families.Poisson()).fit().llf
    ll_nb = _nb_loglik_scipy(y, X)
    lr = 2 * (ll_nb - ll_pois)
    np.testing.assert_allclose(test.loglik_null, ll_pois, rtol=1e-10)
    np.testing.assert_allclose(test.loglik_alt, ll_nb, rtol=1e-8)
    np.testing.assert_allclose(test.statistic, lr, rtol=1e-6)
    np.testing.assert_allclose(test.pvalue, 0.5 * scipy.stats.chi2.sf(lr, 1), rtol=1e-6)
    assert test.pvalue < 1e-6
    with pytest.raises(fl.ModelError):
        models.overdispersion_test(models.fit_glm(models.glm("poisson"), y, X))


def test_big_data_screen_still_finds_a_zero_group() -> None:
    # Above ALL_SIZE (N·P) a converged fit probes only the flat eigen-directions.
    from fisherlab.inference._recession import ALL_SIZE

    rng = np.random.default_rng(3)
    g, X = _groups([int(ALL_SIZE / 3), 40_000, 30])
    y = rng.poisson(2.0, g.size).astype(float)
    y[g == 2] = 0.0
    with pytest.raises(fl.EstimateAtInfinityError, match=r"beta\[2\] → −∞") as info:
        models.fit_glm(models.glm("poisson"), y, X)
    assert info.value.rows == list(np.flatnonzero(g == 2))
