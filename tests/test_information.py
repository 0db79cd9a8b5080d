"""Score, Fisher, empirical Fisher and observed information against closed forms and dense references."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import expit

import fisherlab as fl

# Closed forms evaluated in float64 by a different route (numpy BLAS vs JAX): agreement is
# limited by summation order over N rows, a few ulps times sqrt(N).
TIGHT = 1e-12


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


@pytest.fixture
def logistic(rng: np.random.Generator):
    n, d = 500, 4
    X = np.column_stack([np.ones(n), rng.normal(size=(n, d - 1))])
    beta = np.array([0.3, -0.8, 0.5, 0.1])
    p = expit(X @ beta)
    y = (rng.random(n) < p).astype(float)
    model = fl.Model(lambda th, x: fl.dist.Bernoulli(logits=x @ th["beta"]))
    return model, {"beta": beta}, X, y, p


def test_logistic_closed_forms(logistic) -> None:
    model, params, X, y, p = logistic
    w = p * (1 - p)
    expected = X.T @ (w[:, None] * X)
    assert _rel(fl.fisher(model, params, X, method="exact").matrix, expected) < TIGHT
    assert _rel(fl.observed_information(model, params, y, X).matrix, expected) < TIGHT
    emp = X.T @ (((y - p) ** 2)[:, None] * X)
    assert _rel(fl.empirical_fisher(model, params, y, X).matrix, emp) < TIGHT
    scores = fl.score(model, params, y, X)
    assert _rel(scores, (y - p)[:, None] * X) < TIGHT
    ll = y * np.log(p) + (1 - y) * np.log1p(-p)
    assert _rel(fl.loglik(model, params, y, X), ll) < TIGHT


def test_reduction_mean(logistic) -> None:
    model, params, X, y, _ = logistic
    total = fl.empirical_fisher(model, params, y, X).matrix
    mean = fl.empirical_fisher(model, params, y, X, reduction="mean").matrix
    np.testing.assert_allclose(mean, total / len(y), rtol=TIGHT)
    obs = fl.observed_information(model, params, y, X, reduction="mean").matrix
    np.testing.assert_allclose(obs * len(y), fl.observed_information(model, params, y, X).matrix, rtol=TIGHT)
    with pytest.raises(ValueError, match="reduction"):
        fl.empirical_fisher(model, params, y, X, reduction="avg")


def test_linear_regression_fisher(rng: np.random.Generator) -> None:
    # Normal(X beta, sigma): F_beta = X^T X / sigma^2, F_sigma = 2N / sigma^2, no cross term.
    n = 200
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    model = fl.Model(lambda th, x: fl.dist.Normal(x @ th["beta"], th["sigma"]))
    params = {"beta": np.array([1.0, 2.0]), "sigma": 0.7}
    F = fl.fisher(model, params, X)
    assert F.names == ["beta[0]", "beta[1]", "sigma"]
    expected = np.zeros((3, 3))
    expected[:2, :2] = X.T @ X / 0.49
    expected[2, 2] = 2 * n / 0.49
    assert _rel(F.matrix, expected) < TIGHT


def test_poisson_glm_fisher(rng: np.random.Generator) -> None:
    X = np.column_stack([np.ones(50), rng.uniform(-1, 1, size=50)])
    beta = np.array([0.5, 1.5])
    model = fl.Model(lambda th, x: fl.dist.Poisson(jnp.exp(x @ th["b"])))
    lam = np.exp(X @ beta)
    assert _rel(fl.fisher(model, {"b": beta}, X).matrix, X.T @ (lam[:, None] * X)) < TIGHT


def test_iid_model_one_observation_and_n() -> None:
    model = fl.Model(lambda th, x: fl.dist.Normal(th["mu"], th["sigma"]))
    params = {"mu": 1.0, "sigma": 2.0}
    one = fl.fisher(model, params).matrix
    np.testing.assert_allclose(one, np.diag([0.25, 0.5]), rtol=TIGHT)
    np.testing.assert_allclose(fl.fisher(model, params, n=40).matrix, 40 * one, rtol=TIGHT)
    with pytest.raises(fl.InvalidOptionError, match=r"n must be an integer >= 1 .*got 0"):
        fl.fisher(model, params, n=0)


def test_observed_matches_dense_jax_hessian(rng: np.random.Generator) -> None:
    # A nonlinear model: Gamma regression with a log link and a free shape.
    n = 300
    x = rng.uniform(0, 2, size=n)
    y = rng.gamma(3.0, np.exp(0.2 + 0.5 * x) / 3.0)

    def make(th, xx):
        mean = jnp.exp(th["a"] + th["b"] * xx)
        return fl.dist.Gamma(th["shape"], th["shape"] / mean)

    model = fl.Model(make)
    params = {"a": 0.1, "b": 0.4, "shape": 2.5}

    def total(v):
        th = {"a": v[0], "b": v[1], "shape": v[2]}
        return make(th, jnp.asarray(x)).log_prob(jnp.asarray(y)).sum()

    v = jnp.array([params["a"], params["b"], params["shape"]])
    dense = -np.asarray(jax.hessian(total)(v))
    assert _rel(fl.observed_information(model, params, y, x).matrix, dense) < TIGHT
    dense_scores = np.asarray(
        jax.vmap(
            jax.grad(lambda v, xi, yi: make({"a": v[0], "b": v[1], "shape": v[2]}, xi).log_prob(yi)),
            in_axes=(None, 0, 0),
        )(v, jnp.asarray(x), jnp.asarray(y))
    )
    assert _rel(fl.score(model, params, y, x), dense_scores) < TIGHT


def test_score_mean_zero_and_hessian_identity(rng: np.random.Generator) -> None:
    # At the truth, mean score is 0 within its standard error and -E[H] = F (regular family).
    n = 200_000
    model = fl.Model(lambda th, x: fl.dist.Gamma(th["a"], th["b"]))
    params = {"a": 2.0, "b": 3.0}
    y = rng.gamma(2.0, 1 / 3.0, size=n)
    s = fl.score(model, params, y)
    z = s.mean(0) / (s.std(0, ddof=1) / np.sqrt(n))
    assert np.all(np.abs(z) < 5.0)
    F = fl.fisher(model, params).matrix
    emp = fl.empirical_fisher(model, params, y, reduction="mean").matrix
    obs = fl.observed_information(model, params, y, reduction="mean").matrix
    # Monte-Carlo standard error of each entry of the empirical Fisher / observed information.
    se_emp = np.sqrt(np.var(s[:, :, None] * s[:, None, :], axis=0, ddof=1) / n)
    assert np.all(np.abs(emp - F) < 5 * se_emp)
    # Observed information of Gamma(a, b): [[psi'(a), -1/b], [-1/b, a/b^2]] does not depend on y.
    np.testing.assert_allclose(obs, F, rtol=TIGHT)


def test_laplace_location_hessian_is_zero_but_fisher_is_not(rng: np.random.Generator) -> None:
    model = fl.Model(lambda th, x: fl.dist.Laplace(th["loc"], 2.0))
    y = rng.laplace(0.0, 2.0, size=1000)
    assert fl.observed_information(model, {"loc": 0.0}, y).matrix[0, 0] == 0.0
    assert fl.fisher(model, {"loc": 0.0}).matrix[0, 0] == pytest.approx(0.25, rel=TIGHT)


def test_mvn_hessian_identity() -> None:
    cov = np.array([[2.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 0.5]])
    mvn = fl.dist.MultivariateNormal(jnp.array([1.0, -1.0, 0.0]), covariance_matrix=cov)
    H = fl.hessian(lambda th: -mvn.log_prob(th["theta"]), {"theta": np.array([0.3, 0.2, -0.4])})
    assert _rel(H.matrix, np.linalg.inv(cov)) < TIGHT
    assert H.names == ["theta[0]", "theta[1]", "theta[2]"]
    # and the covariance comes back from the information
    back = fl.InfoMatrix(H.matrix, H.names).cov().matrix
    assert _rel(back, cov) < 1e-11


def test_categorical_and_multioutput(rng: np.random.Generator) -> None:
    # Multinomial logit with K=3 classes: F = sum_i (diag(p_i) - p_i p_i^T) (x) x_i x_i^T.
    n, d, k = 40, 2, 3
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(d, k))
    model = fl.Model(lambda th, x: fl.dist.Categorical(logits=x @ th["W"]))
    F = fl.fisher(model, {"W": W}, X).matrix
    P = np.exp(X @ W)
    P /= P.sum(1, keepdims=True)
    expected = sum(np.kron(np.outer(X[i], X[i]), np.diag(P[i]) - np.outer(P[i], P[i])) for i in range(n))
    assert _rel(F, expected) < TIGHT


def test_from_loglik_matches_model(logistic) -> None:
    model, params, X, y, _ = logistic

    def ll(th, yy, xx):
        eta = xx @ th["beta"]
        return yy * eta - jnp.logaddexp(0.0, eta)

    custom = fl.Model.from_loglik(ll)
    np.testing.assert_allclose(fl.loglik(custom, params, y, X), fl.loglik(model, params, y, X), rtol=TIGHT)
    np.testing.assert_allclose(
        fl.observed_information(custom, params, y, X).matrix,
        fl.observed_information(model, params, y, X).matrix,
        rtol=TIGHT,
    )
    with pytest.raises(fl.MethodUnavailableError, match="sampler"):
        fl.fisher(custom, params, X)

    def sampler(th, xx, key):
        return jax.random.bernoulli(key, jax.nn.sigmoid(xx @ th["beta"])).astype(jnp.float64)

    with_sampler = fl.Model.from_loglik(ll, sampler=sampler)
    F_mc = fl.fisher(with_sampler, params, X, num_samples=400, seed=1)
    F = fl.fisher(model, params, X).matrix
    assert F_mc.method == "mc"
    assert np.all(np.abs(F_mc.matrix - F) <= 5 * F_mc.error + 1e-12)


def test_no_recompilation_with_new_values(logistic) -> None:
    _, params, X, y, _ = logistic
    traces = {"n": 0}

    def fn(th, x):
        traces["n"] += 1
        return fl.dist.Bernoulli(logits=x @ th["beta"])

    counted = fl.Model(fn)
    fl.observed_information(counted, params, y, X)
    first = traces["n"]
    fl.observed_information(counted, {"beta": params["beta"] + 0.1}, y, X)
    assert traces["n"] == first
    fl.fisher(counted, params, X)
    second = traces["n"]
    fl.fisher(counted, {"beta": params["beta"] * 2}, X)
    assert traces["n"] == second


def test_nested_pytree_names() -> None:
    params = {"layer": {"W": np.zeros((2, 2)), "b": np.zeros(2)}, "sigma": 1.0, "list": [1.0, 2.0]}
    assert fl.param_names(params) == [
        "layer.W[0,0]",
        "layer.W[0,1]",
        "layer.W[1,0]",
        "layer.W[1,1]",
        "layer.b[0]",
        "layer.b[1]",
        "list[0]",
        "list[1]",
        "sigma",
    ]


def test_logit_families_are_smooth_at_zero() -> None:
    # NumPyro's BCE-with-logits form has a kink at logits = 0 (autodiff gives y x there);
    # fl.dist's logit families must give the true score (y - n/2) x at beta = 0.
    X = np.array([[1.0, 2.0], [1.0, -1.0], [1.0, 0.5]])
    y = np.array([1.0, 0.0, 1.0])
    bern = fl.Model(lambda th, x: fl.dist.Bernoulli(logits=x @ th["beta"]))
    np.testing.assert_allclose(
        fl.score(bern, {"beta": np.zeros(2)}, y, X), (y - 0.5)[:, None] * X, rtol=TIGHT
    )
    counts = np.array([3.0, 0.0, 5.0])
    binom = fl.Model(lambda th, x: fl.dist.Binomial(5, logits=x @ th["beta"]))
    np.testing.assert_allclose(
        fl.score(binom, {"beta": np.zeros(2)}, counts, X), (counts - 2.5)[:, None] * X, rtol=TIGHT
    )
    # and the log-mass is unchanged
    from scipy.stats import binom as binom_ref

    beta = np.array([0.3, -0.4])
    p = expit(X @ beta)
    np.testing.assert_allclose(
        fl.loglik(binom, {"beta": beta}, counts, X), binom_ref.logpmf(counts, 5, p), rtol=TIGHT
    )
