"""fl.check on a chunk source (data beyond memory) against fl.check on the same rows in memory.

Oracle: the in-memory check of the concatenated chunks (asymptotic p-value), computed here.
The streamed check accumulates sums and a tall-skinny QR over the chunks, so every number must
agree with the in-memory one to rounding: statistics, p-values, degrees of freedom, the
indicators kept and dropped, the three matrices, the eigenvalue ratios, the condition numbers
and the verdict. Chunks are of unequal length (the last shorter).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.special
from scipy.special import expit

import fisherlab as fl
from fisherlab import CheckResult, check
from test_check import _poisson_mle

# Both checks compute the same sums in another order (chunk by chunk, compensated) and the same
# QR by another route (tall-skinny): they agree to ~1e-12 on these problems.
RTOL = 1e-10
# At the MLE the score mean statistic is rounding noise (~1e-20) in both: compared absolutely.
SCORE_ATOL = 1e-10
CHUNK = 700  # N = 2500: chunks of 700, 700, 700 and 400 rows

POISSON = fl.Model(lambda th, x: fl.dist.Poisson(jnp.exp(x @ th["beta"])))
BETA = np.array([0.3, 0.5, -0.4])
NORMAL = fl.Model(lambda th, x: fl.dist.Normal(th["a"] + th["b"] * x, th["sigma"]))
LOGIT = fl.Model(lambda th, x: fl.dist.Bernoulli(logits=x @ th["beta"]))
GAMMA = fl.Model(lambda th, x: fl.dist.Gamma(th["alpha"], th["beta"]))


def _source(
    y: np.ndarray, x: np.ndarray | None, chunk: int = CHUNK, reads: list | None = None
) -> fl.data.Chunks:
    """A re-iterable source of ``(y, x)`` chunks of ``chunk`` rows (``(y,)`` without x)."""

    def factory():
        if reads is not None:
            reads.append(1)
        for i in range(0, len(y), chunk):
            yield (y[i : i + chunk],) if x is None else (y[i : i + chunk], x[i : i + chunk])

    return fl.data.chunks(factory)


def _close(a: float | np.ndarray, b: float | np.ndarray, what: str, rtol: float = RTOL) -> None:
    np.testing.assert_allclose(a, b, rtol=rtol, atol=0.0, err_msg=what)


def _matrix(a: fl.InfoMatrix | None, b: fl.InfoMatrix | None, what: str) -> None:
    assert (a is None) == (b is None), what
    if a is not None and b is not None:
        assert a.names == b.names and a.method == b.method
        scale = np.max(np.abs(b.matrix))  # entries near 0 (J's off-diagonal at the MLE) are absolute
        assert np.max(np.abs(a.matrix - b.matrix)) <= RTOL * scale, what


def _same(streamed: CheckResult, memory: CheckResult) -> None:
    """Every field of the two results equal, numbers to RTOL."""
    for field in (
        "names",
        "n",
        "score_mean_df",
        "im_test_df",
        "im_test_variant",
        "im_test_indicators",
        "im_test_dropped",
        "at_mle",
        "im_test_pvalue_method",
        "im_test_pvalue_note",
        "verdict",
    ):
        assert getattr(streamed, field) == getattr(memory, field), field
    np.testing.assert_allclose(
        streamed.score_mean_statistic, memory.score_mean_statistic, rtol=RTOL, atol=SCORE_ATOL
    )
    _close(streamed.score_mean_pvalue, memory.score_mean_pvalue, "score p")
    _close(streamed.im_test_statistic, memory.im_test_statistic, "IM statistic")
    # d log p / d T is about -1/2 for a large statistic: p's relative error is T/2 times T's
    p_rtol = RTOL * max(1.0, memory.im_test_statistic)
    _close(streamed.im_test_pvalue_asymptotic, memory.im_test_pvalue_asymptotic, "IM p", p_rtol)
    _close(streamed.im_test_pvalue, memory.im_test_pvalue, "IM p used", p_rtol)
    for name in ("observed", "empirical", "expected"):
        _matrix(getattr(streamed, name), getattr(memory, name), name)
    for name in ("empirical_vs_observed", "empirical_vs_expected", "observed_vs_expected"):
        a, b = getattr(streamed, name), getattr(memory, name)
        assert (a is None) == (b is None), name
        if b is not None:
            _close(a, b, name)
    assert streamed.condition_numbers.keys() == memory.condition_numbers.keys()
    for key, value in memory.condition_numbers.items():
        _close(streamed.condition_numbers[key], value, f"condition number {key}")


def _both(model: fl.Model, params: dict, y: np.ndarray, x: np.ndarray | None, variant: str, **kw) -> tuple:
    memory = check(model, params, y, x, variant=variant, pvalue="asymptotic", **kw)
    streamed = check(model, params, _source(y, x), variant=variant, pvalue="asymptotic", **kw)
    _same(streamed, memory)
    return streamed, memory


@pytest.fixture(scope="module")
def poisson() -> tuple:
    rng = np.random.default_rng(31)
    n = 2500
    X = np.column_stack([np.ones(n), rng.uniform(-1.5, 1.5, size=(n, 2))])
    mu = np.exp(X @ BETA)
    y = rng.poisson(mu).astype(float)
    y_over = rng.negative_binomial(2.0, 2.0 / (2.0 + mu)).astype(float)  # variance mu + mu^2/2
    return X, y, y_over


# --------------------------------------------------------------------------- agreement


@pytest.mark.parametrize("variant", ["white", "opg"])
def test_poisson_regression_well_specified_and_overdispersed(poisson, variant: str) -> None:
    X, y, y_over = poisson
    streamed, _ = _both(POISSON, {"beta": _poisson_mle(X, y, BETA)}, y, X, variant)
    assert streamed.at_mle and streamed.im_test_df == 6 and streamed.n == len(y)
    over, _ = _both(POISSON, {"beta": _poisson_mle(X, y_over, BETA)}, y_over, X, variant)
    assert over.verdict.startswith("MISSPECIFIED") and over.im_test_pvalue_asymptotic < 1e-6
    # away from the MLE the score mean statistic is no longer noise: it must agree too
    off, _ = _both(POISSON, {"beta": BETA + 0.03}, y, X, variant, fisher_method="none")
    assert not off.at_mle and off.score_mean_statistic > 1.0 and off.expected is None


@pytest.mark.parametrize("variant", ["white", "opg"])
def test_normal_regression_drops_the_same_indicator(variant: str) -> None:
    rng = np.random.default_rng(32)
    x = rng.uniform(-2, 2, size=2500)
    y = 1.0 + 0.7 * x + 0.5 * rng.normal(size=2500)
    b, a = np.polyfit(x, y, 1)
    sigma = np.sqrt(np.mean((y - a - b * x) ** 2))
    streamed, _ = _both(NORMAL, {"a": a, "b": b, "sigma": sigma}, y, x, variant)
    # s_a^2 + H_aa = s_sigma / sigma: identically a multiple of a score, left out by both
    assert streamed.im_test_dropped == [("a", "a")] and streamed.im_test_df == 5


@pytest.mark.parametrize("variant", ["white", "opg"])
def test_binary_covariate_drops_the_same_duplicate(variant: str) -> None:
    # x^2 = x for a 0/1 covariate: two indicators are equal; the tie goes to the lower index in both
    rng = np.random.default_rng(33)
    n = 2500
    X = np.column_stack([np.ones(n), (rng.random(n) < 0.4).astype(float), rng.normal(size=n)])
    y = rng.poisson(np.exp(X @ BETA)).astype(float)
    streamed, _ = _both(POISSON, {"beta": _poisson_mle(X, y, BETA)}, y, X, variant, fisher_method="none")
    assert streamed.im_test_dropped == [("beta[1]", "beta[1]")]


@pytest.mark.parametrize("variant", ["white", "opg"])
def test_iid_model_without_x(variant: str) -> None:
    rng = np.random.default_rng(34)
    y = rng.gamma(shape=2.5, scale=1 / 1.5, size=2500)
    # Gamma MLE: log(alpha) - digamma(alpha) = log(mean) - mean(log y), beta = alpha / mean
    target = np.log(y.mean()) - np.log(y).mean()
    alpha = scipy.optimize.brentq(lambda a: np.log(a) - scipy.special.digamma(a) - target, 0.01, 100.0)
    theta = {"alpha": alpha, "beta": alpha / y.mean()}
    streamed, _ = _both(GAMMA, theta, y, None, variant)
    assert streamed.expected is not None  # F of N iid rows (x is None in every chunk), not of one
    np.testing.assert_allclose(streamed.expected.matrix, fl.fisher(GAMMA, theta, n=len(y)).matrix, rtol=1e-12)
    assert streamed.at_mle and streamed.im_test_df == 3


@pytest.mark.parametrize("variant", ["white", "opg"])
def test_bernoulli_logit(variant: str) -> None:
    rng = np.random.default_rng(35)
    n = 2500
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    y = (rng.random(n) < expit(X @ np.array([-0.3, 0.8, -0.5]))).astype(float)
    b = np.zeros(3)
    for _ in range(30):  # Newton (IRLS) in closed form
        p = expit(X @ b)
        b = b + np.linalg.solve(X.T @ ((p * (1 - p))[:, None] * X), X.T @ (y - p))
    streamed, _ = _both(LOGIT, {"beta": b}, y, X, variant)
    assert streamed.observed_vs_expected is not None
    np.testing.assert_allclose(streamed.observed_vs_expected, 1.0, rtol=1e-10)  # canonical link


def test_parquet_source(poisson, tmp_path) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    X, y, _ = poisson
    path = tmp_path / "counts.parquet"
    frame = pd.DataFrame({"y": y, "one": X[:, 0], "a": X[:, 1], "b": X[:, 2]})
    frame.to_parquet(path, row_group_size=1000)  # row groups that cut across the chunks
    theta = {"beta": _poisson_mle(X, y, BETA)}
    source = fl.data.from_parquet(path, y="y", x=["one", "a", "b"], chunk_rows=CHUNK)
    for variant in ("white", "opg"):
        memory = check(POISSON, theta, y, X, variant=variant, pvalue="asymptotic")
        _same(check(POISSON, theta, source, variant=variant, pvalue="asymptotic"), memory)


def test_one_pass_over_the_source(poisson) -> None:
    # the terms of either variant take one pass; the expected Fisher of the covariates one more
    X, y, _ = poisson
    theta = {"beta": _poisson_mle(X, y, BETA)}
    for variant, fisher_method, passes in (("white", "auto", 2), ("opg", "none", 1)):
        reads: list = []
        check(POISSON, theta, _source(y, X, reads=reads), variant=variant, fisher_method=fisher_method)
        assert len(reads) == passes, (variant, reads)


def test_auto_pvalue_is_asymptotic_with_a_note(poisson) -> None:
    X, y, _ = poisson
    theta = {"beta": _poisson_mle(X, y, BETA)}
    res = check(POISSON, theta, _source(y, X), fisher_method="none")
    assert res.im_test_pvalue_method == "asymptotic" and res.im_test_bootstrap is None
    assert res.im_test_pvalue == res.im_test_pvalue_asymptotic
    assert "asymptotic p-value: data streamed from a chunk source" in res.im_test_pvalue_note
    assert "chunk source" in res.verdict


# --------------------------------------------------------------------------- hostile input


def test_bad_sources(poisson) -> None:
    X, y, _ = poisson
    theta = {"beta": _poisson_mle(X, y, BETA)}
    y_nan = y.copy()
    y_nan[2 * CHUNK + 7] = np.nan
    with pytest.raises(fl.InvalidDataError, match=r"chunk 2 \(from row 1400\): y row 7 is nan"):
        check(POISSON, theta, _source(y_nan, X))
    with pytest.raises(fl.MethodUnavailableError, match="pvalue='bootstrap' is unavailable: data streamed"):
        check(POISSON, theta, _source(y, X), pvalue="bootstrap")
    with pytest.raises(fl.FisherlabArgumentError, match="chunk source holds x too"):
        check(POISSON, theta, _source(y, X), X)
    with pytest.raises(fl.InvalidDataError, match=r"too few rows.*N = 9.*3 \+ 6"):
        check(POISSON, theta, _source(y[:9], X[:9], chunk=4))
    mixed = fl.data.chunks([(y[:CHUNK], X[:CHUNK]), (y[CHUNK:], X[CHUNK:, :2])])
    with pytest.raises(fl.InvalidDataError, match="chunk 1: its fields"):
        check(POISSON, theta, mixed)
    y_neg = np.where(np.arange(len(y)) == CHUNK + 3, -1.0, y)
    with pytest.raises(fl.InvalidDataError, match=r"chunk 1 \(from row 700\): y at row 3 = -1.0 is outside"):
        check(POISSON, theta, _source(y_neg, X))


def test_non_finite_score_names_the_source_row() -> None:
    # sqrt(mu - y) has an infinite derivative where y = mu: the score of that row is not finite
    loglik = fl.Model.from_loglik(lambda th, y, x: -0.5 * y**2 + jnp.sqrt(jnp.abs(th["mu"] - y)))
    y = np.linspace(-1.0, 1.0, 2000)
    y[CHUNK + 12] = 0.25
    with pytest.raises(fl.InvalidParameterError, match=r"chunk 1 \(from row 700\).*not finite at row 712"):
        check(loglik, {"mu": 0.25}, _source(y, None), pvalue="asymptotic")
