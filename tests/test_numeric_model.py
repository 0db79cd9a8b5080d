"""Models with numeric derivatives (finite differences) against the same model in JAX (autodiff)."""

import warnings
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as st

import fisherlab as fl


def _gamma(rng):
    y = rng.gamma(3.0, 1 / 2.0, size=400)
    ad = fl.Model(lambda th, x: fl.dist.Gamma(th["a"], th["b"]), derivatives="autodiff")
    nm = fl.Model.from_loglik(
        lambda th, y, x: st.gamma.logpdf(y, th["a"], scale=1 / th["b"]), derivatives="numeric"
    )
    return ad, nm, {"a": 2.7, "b": 1.8}, y, None


def _poisson(rng):
    X = np.column_stack([np.ones(300), rng.normal(size=300), rng.uniform(-1, 1, size=300)])
    beta = np.array([0.5, 0.3, -0.4])
    y = rng.poisson(np.exp(X @ beta)).astype(float)
    ad = fl.Model(lambda th, x: fl.dist.Poisson(jnp.exp(x @ th["beta"])), derivatives="autodiff")
    nm = fl.Model.from_loglik(
        lambda th, y, x: st.poisson.logpmf(y, np.exp(x @ th["beta"])), derivatives="numeric"
    )
    return ad, nm, {"beta": beta + 0.05}, y, X


def _normal(rng):
    x = rng.uniform(0, 3, size=250)
    y = 1.0 + 0.7 * x + 0.4 * rng.normal(size=250)
    ad = fl.Model(lambda th, x: fl.dist.Normal(th["a"] + th["b"] * x, th["sigma"]), derivatives="autodiff")
    # a distribution model whose function uses NumPy on the parameters
    nm = fl.Model(
        lambda th, x: fl.dist.Normal(np.add(th["a"], np.multiply(th["b"], x)), float(th["sigma"])),
        derivatives="numeric",
    )
    return ad, nm, {"a": 0.9, "b": 0.75, "sigma": 0.45}, y, x


CASES = {"gamma": _gamma, "poisson": _poisson, "normal": _normal}


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("case", list(CASES))
def test_numeric_agrees_with_autodiff(case, rng) -> None:
    ad, nm, params, y, x = CASES[case](rng)
    ll0, ll1 = fl.loglik(ad, params, y, x), fl.loglik(nm, params, y, x)
    np.testing.assert_allclose(ll1, ll0, rtol=1e-12, atol=1e-12)
    s0, s1 = fl.score(ad, params, y, x), fl.score(nm, params, y, x)
    assert s1.shape == s0.shape
    assert _rel(s1, s0) <= 1e-8
    for reduction in ("sum", "mean"):
        j0 = fl.observed_information(ad, params, y, x, reduction=reduction)
        j1 = fl.observed_information(nm, params, y, x, reduction=reduction)
        assert j1.names == j0.names and j1.method == "observed"
        assert _rel(j1.matrix, j0.matrix) <= 1e-8
        assert np.all(np.abs(j1.matrix - j0.matrix) <= j1.error)  # the estimate bounds the true error
        assert j1.evaluations is not None and j1.evaluations <= 1 + 4 * (len(j1.names) ** 2 + len(j1.names))
        f0 = fl.empirical_fisher(ad, params, y, x, reduction=reduction)
        f1 = fl.empirical_fisher(nm, params, y, x, reduction=reduction)
        assert _rel(f1.matrix, f0.matrix) <= 1e-8
        assert np.all(np.abs(f1.matrix - f0.matrix) <= f1.error)
        assert np.max(f1.error) <= 1e-6 * np.max(np.abs(f0.matrix))


def test_jacobian_error_bounds_truth() -> None:
    from fisherlab.numeric import jacobian

    t = np.linspace(0.0, 3.0, 50)
    r = jacobian(lambda v: v[0] * np.exp(v[1] * t) + sp.gammaln(v[0] + t), [2.0, -0.3])
    true = np.column_stack([np.exp(-0.3 * t) + sp.digamma(2.0 + t), 2.0 * t * np.exp(-0.3 * t)])
    assert np.all(np.abs(r.jacobian - true) <= r.error)
    assert r.evaluations == 1 + 2 * 4 * 2


def test_auto_falls_back_with_one_warning(rng) -> None:
    ad, _, params, y, _ = _gamma(rng)
    auto = fl.Model(lambda th, x: fl.dist.Gamma(float(th["a"]), np.asarray(th["b"])))
    with pytest.warns(UserWarning, match='derivatives="numeric"') as record:
        s = fl.score(auto, params, y)
    assert len(record) == 1 and "cannot be traced" in str(record[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # decided once: no second warning
        J = fl.observed_information(auto, params, y)
    assert _rel(s, fl.score(ad, params, y)) <= 1e-8
    assert J.error is not None and _rel(J.matrix, fl.observed_information(ad, params, y).matrix) <= 1e-8
    # a loglik model calling SciPy falls back too; a traceable one stays on autodiff silently
    scipy_ll = fl.Model.from_loglik(lambda th, y, x: st.gamma.logpdf(y, th["a"], scale=1 / th["b"]))
    with pytest.warns(UserWarning, match="cannot be traced"):
        fl.loglik(scipy_ll, params, y)
    jax_model = fl.Model(lambda th, x: fl.dist.Gamma(th["a"], th["b"]))
    assert fl.observed_information(jax_model, params, y).error is None


def test_invalid_parameters_and_data(rng) -> None:
    x = rng.uniform(size=20)
    y = rng.normal(size=20)
    nm = fl.Model(
        lambda th, x: fl.dist.Normal(th["a"] * np.ones_like(x), th["b"] * x - 0.5), derivatives="numeric"
    )
    with pytest.raises(fl.InvalidParameterError, match=r"row \d+: Normal parameter 'scale'"):
        fl.score(nm, {"a": 0.0, "b": 1.0}, y, x)
    iid = fl.Model(lambda th, x: fl.dist.Gamma(float(th["a"]), float(th["b"])), derivatives="numeric")
    with pytest.raises(fl.InvalidParameterError, match="rate"):
        fl.observed_information(iid, {"a": 2.0, "b": -1.0}, np.ones(5))
    with pytest.raises(fl.InvalidDataError, match="row 2"):
        fl.loglik(iid, {"a": 2.0, "b": 1.0}, np.array([1.0, 2.0, np.nan]))
    with pytest.raises(fl.InvalidDataError, match="outside the support"):
        fl.empirical_fisher(iid, {"a": 2.0, "b": 1.0}, np.array([1.0, -2.0]))
    with pytest.raises(fl.InvalidParameterError, match="not finite"):
        fl.loglik(iid, {"a": np.nan, "b": 1.0}, np.ones(3))
    with pytest.raises(ValueError, match="reduction"):
        fl.observed_information(iid, {"a": 2.0, "b": 1.0}, np.ones(3), reduction="bogus")
    nan_ll = fl.Model.from_loglik(
        lambda th, y, x: np.where(y > 1, np.nan, -y * th["a"]), derivatives="numeric"
    )
    with pytest.raises(fl.InvalidParameterError, match="row 1"):
        fl.loglik(nan_ll, {"a": 1.0}, np.array([0.5, 2.0]))
    bad_shape = fl.Model.from_loglik(lambda th, y, x: np.sum(y) * th["a"], derivatives="numeric")
    with pytest.raises(fl.ModelError, match="one value per row"):
        fl.score(bad_shape, {"a": 1.0}, np.ones(3))


def test_user_exception_is_chained(rng) -> None:
    def boom(th, y, x):
        if th["a"] > 1.0:
            raise RuntimeError("solver diverged")
        return -((y - th["a"]) ** 2)

    m = fl.Model.from_loglik(boom, derivatives="numeric")
    with pytest.raises(fl.ModelError, match=r"RuntimeError at \{a=1\.5\}") as info:
        fl.loglik(m, {"a": 1.5}, np.ones(3))
    assert isinstance(info.value.__cause__, RuntimeError)
    # at a perturbed point: the engine's error names the point and chains the cause
    with pytest.raises(fl.NumericDerivativeError, match=r"RuntimeError at \{a=1\.00") as info2:
        fl.score(m, {"a": 0.999}, np.ones(3))
    assert isinstance(info2.value.__cause__, RuntimeError)


def _decay(rng):
    """A nonlinear simulator with Gaussian errors whose noise level is a parameter too."""
    t = np.linspace(0.0, 4.0, 60)
    y = 2.0 * np.exp(-0.7 * t) + 0.05 * rng.normal(size=t.size)

    def sim(th, t):  # NumPy only: a black box to JAX
        return np.asarray(th["amp"] * np.exp(-th["k"] * t))

    nm = fl.Model(
        lambda th, t: fl.dist.Normal(sim(th, t), np.exp(th["log_s"]) * np.ones_like(t)), derivatives="numeric"
    )
    ad = fl.Model(
        lambda th, t: fl.dist.Normal(th["amp"] * jnp.exp(-th["k"] * t), jnp.exp(th["log_s"])),
        derivatives="autodiff",
    )
    return ad, nm, {"amp": 1.9, "k": 0.72, "log_s": -3.0}, y, t


def test_numeric_fisher_chain_rule(rng) -> None:
    # Gauss-Newton Fisher J^T S^-1 J plus the covariance term (sigma depends on log_s)
    for make in (_decay, _normal):
        ad, nm, params, _, x = make(rng)
        f0, f1 = fl.fisher(ad, params, x), fl.fisher(nm, params, x)
        assert f1.method == "exact" and f1.names == f0.names
        assert _rel(f1.matrix, f0.matrix) <= 1e-9
        assert np.all(np.abs(f1.matrix - f0.matrix) <= f1.error)
        assert f1.evaluations is not None and f1.evaluations <= 1 + 8 * len(f1.names)
    # iid: one observation's information times n, against the closed form
    gamma = fl.Model(lambda th, x: fl.dist.Gamma(float(th["a"]), float(th["b"])), derivatives="numeric")
    a, b = 2.0, 1.5
    exact = 10 * np.array([[sp.polygamma(1, a), -1 / b], [-1 / b, a / b**2]])
    f = fl.fisher(gamma, {"a": a, "b": b}, n=10)
    assert _rel(f.matrix, exact) <= 1e-9 and np.all(np.abs(f.matrix - exact) <= f.error)
    with pytest.raises(fl.InvalidParameterError, match="rate"):
        fl.fisher(gamma, {"a": 2.0, "b": -1.0})


def test_numeric_fisher_monte_carlo(rng) -> None:
    a, b = 2.0, 1.5
    exact = np.array([[sp.polygamma(1, a), -1 / b], [-1 / b, a / b**2]])
    sampler = lambda th, x, key: jax.random.gamma(key, th["a"]) / th["b"]  # noqa: E731
    ll = fl.Model.from_loglik(
        lambda th, y, x: st.gamma.logpdf(y, th["a"], scale=1 / th["b"]),
        derivatives="numeric",
        sampler=sampler,
    )
    dist = fl.Model(lambda th, x: fl.dist.Gamma(float(th["a"]), float(th["b"])), derivatives="numeric")
    for model in (ll, dist):
        f = fl.fisher(model, {"a": a, "b": b}, method="mc", num_samples=4000, seed=1)
        assert f.method == "mc" and f.error is not None
        z = np.abs(f.matrix - exact) / f.error
        assert np.all(z < 4.5), z  # Monte-Carlo standard errors: a 4.5-sigma miss has p ~ 1e-5
        assert np.all(f.error < 0.1 * np.abs(exact))
    with pytest.raises(fl.MethodUnavailableError, match="no exact Fisher"):
        fl.fisher(ll, {"a": a, "b": b}, method="exact")
    no_sampler = fl.Model.from_loglik(lambda th, y, x: st.gamma.logpdf(y, th["a"]), derivatives="numeric")
    with pytest.raises(fl.MethodUnavailableError, match="sampler"):
        fl.fisher(no_sampler, {"a": a})


def _fit_pair(ad, nm, y, x, init, **kw):
    r0 = fl.fit(ad, y, x, init=init, **kw)
    r1 = fl.fit(nm, y, x, init=init, **kw)
    return r0, r1


@pytest.mark.parametrize("case", ["decay", "poisson", "gamma"])
def test_numeric_fit_matches_autodiff(case, rng) -> None:
    if case == "decay":
        ad, nm, params, y, x = _decay(rng)
        kinds = ["observed", "expected", "empirical", "sandwich"]
    elif case == "poisson":
        ad, nm, params, y, x = _poisson(rng)
        kinds = ["observed", "empirical", "sandwich"]  # a from_loglik model without a sampler
    else:
        y = rng.gamma(3.0, 1 / 2.0, size=400)
        ad = fl.Model(
            lambda th, x: fl.dist.Gamma(th["a"], th["b"]), constraints={"a": "positive", "b": "positive"}
        )
        nm = fl.Model.from_loglik(
            lambda th, y, x: st.gamma.logpdf(y, th["a"], scale=1 / th["b"]),
            derivatives="numeric",
            constraints={"a": "positive", "b": "positive"},
        )
        params, x = {"a": 1.0, "b": 1.0}, None
        kinds = ["observed", "empirical", "sandwich"]
    r0, r1 = _fit_pair(ad, nm, y, x, params)
    assert r1.converged and r1.names == r0.names
    assert _rel(r1.flat_params, r0.flat_params) <= 1e-7
    assert abs(r1.loglik - r0.loglik) <= 1e-9 * abs(r0.loglik)
    assert any("calls of the model function" in note for note in r1.notes)
    for kind in kinds:
        c0, c1 = r0.cov(kind), r1.cov(kind)
        assert _rel(c1.matrix, c0.matrix) <= 1e-6, kind
        if c1.error is not None:
            # the first-order propagated error covers the difference (plus the fits' own offset)
            assert np.all(np.abs(c1.matrix - c0.matrix) <= c1.error + 1e-7 * np.abs(c0.matrix)), kind
    assert r1.cov("observed").error is not None
    w0, w1 = r0.conf_int(), r1.conf_int()
    np.testing.assert_allclose(w1.to_numpy(), w0.to_numpy(), rtol=1e-6)


def test_numeric_fit_with_prior_and_laplace(rng) -> None:
    ad, nm, params, y, x = _decay(rng)
    prior = {
        "amp": fl.dist.Normal(2.0, 1.0),
        "k": fl.dist.LogNormal(0.0, 1.0),
        "log_s": fl.dist.Normal(-3, 2),
    }
    r0, r1 = _fit_pair(ad, nm, y, x, params, prior=prior)
    assert _rel(r1.flat_params, r0.flat_params) <= 1e-7
    l0, l1 = r0.laplace(), r1.laplace()
    assert _rel(l1.cov.matrix, l0.cov.matrix) <= 1e-6
    assert abs(l1.log_evidence - l0.log_evidence) <= 1e-6

    # a prior written with SciPy (untraceable) is differentiated numerically too
    def scipy_prior(th):
        amp, k, log_s = th["amp"], th["k"], th["log_s"]
        return float(st.norm.logpdf(amp, 2.0, 1.0) + st.lognorm.logpdf(k, 1.0) + st.norm.logpdf(log_s, -3, 2))

    r2 = fl.fit(nm, y, x, init=params, prior=scipy_prior)
    assert _rel(r2.flat_params, r0.flat_params) <= 1e-7
    assert _rel(r2.cov().matrix, r0.cov().matrix) <= 1e-6
    assert abs(r2.laplace().log_evidence - l0.log_evidence) <= 1e-6


def test_numeric_fit_many_parameters_lbfgs(rng) -> None:
    """Above 10 parameters a numeric fit runs L-BFGS on numeric gradients: the autodiff fit's numbers."""
    n, d = 1500, 12
    X = np.column_stack([np.ones(n), rng.normal(size=(n, d - 1))])
    y = (rng.uniform(size=n) < sp.expit(X @ (0.3 * rng.normal(size=d)))).astype(float)
    nm = fl.Model.from_loglik(
        lambda th, y, x: y * (x @ th["b"]) - np.logaddexp(0.0, x @ th["b"]), derivatives="numeric"
    )
    ad = fl.Model(lambda th, x: fl.dist.Bernoulli(logits=x @ th["b"]))
    r0, r1 = _fit_pair(ad, nm, y, X, {"b": np.zeros(d)})
    assert r1.method == "lbfgs" and r0.method == "newton"
    assert np.max(np.abs(r1.flat_params - r0.flat_params)) <= 1e-6 * np.max(np.sqrt(np.diag(r0.cov().matrix)))
    assert _rel(r1.cov().matrix, r0.cov().matrix) <= 1e-6


def test_numeric_fit_failures(rng) -> None:
    # a simulator that raises at a trial point: chained, with the parameter values
    def fragile(th, y, x):
        if th["mu"] > 50:
            raise RuntimeError("mesh inverted")
        return st.norm.logpdf(y, th["mu"], 1.0)

    m = fl.Model.from_loglik(fragile, derivatives="numeric")
    with pytest.raises(fl.FisherlabError, match=r"RuntimeError at \{mu=") as info:
        fl.fit(m, np.full(5, 60.0), init={"mu": 0.0})
    cause = info.value.__cause__
    while cause is not None and not isinstance(cause, RuntimeError):
        cause = cause.__cause__
    assert isinstance(cause, RuntimeError)  # the simulator's exception is chained
    # an unidentified direction is named, as for autodiff models
    flat = fl.Model.from_loglik(
        lambda th, y, x: st.norm.logpdf(y, th["a"] + th["b"], 1.0), derivatives="numeric"
    )
    with pytest.raises(fl.SingularInformationError, match="a"):
        fl.fit(flat, rng.normal(size=30), init={"a": 0.0, "b": 0.0})


def test_model_cache_and_threads(rng) -> None:
    _, nm, params, y, x = _decay(rng)
    first = fl.observed_information(nm, params, y, x)
    again = fl.observed_information(nm, params, y, x)
    assert first.evaluations and again.evaluations == 0  # identical evaluations are cached on the model
    np.testing.assert_array_equal(again.matrix, first.matrix)
    _, fresh, _, _, _ = _decay(rng)
    threaded = fl.Model(fresh.fn, derivatives="numeric", executor="threads", workers=4)
    got = fl.observed_information(threaded, params, y, x)
    np.testing.assert_array_equal(got.matrix, first.matrix)
    assert got.evaluations == first.evaluations
    with pytest.raises(fl.ModelError, match="executor"):
        fl.Model(fresh.fn, executor="gpu")
    with pytest.raises(fl.ModelError, match="workers"):
        fl.Model(fresh.fn, workers=0)


@pytest.mark.parametrize("constraints", [None, {"rate": "positive"}])
def test_parameter_next_to_its_bound(constraints) -> None:
    # rate = 0.004 is closer to 0 than the base step: with a declared bound the stencils stay
    # positive (one-sided / shortened); without, the NaN at a negative rate is retried smaller
    y = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    nm = fl.Model(
        lambda th, x: fl.dist.Poisson(float(th["rate"])), derivatives="numeric", constraints=constraints
    )
    ad = fl.Model(lambda th, x: fl.dist.Poisson(th["rate"]), derivatives="autodiff")
    p = {"rate": 0.004}
    assert _rel(fl.score(nm, p, y), fl.score(ad, p, y)) <= 1e-8
    j0, j1 = fl.observed_information(ad, p, y), fl.observed_information(nm, p, y)
    assert _rel(j1.matrix, j0.matrix) <= 1e-8 and np.all(np.abs(j1.matrix - j0.matrix) <= j1.error)
    f0, f1 = fl.empirical_fisher(ad, p, y), fl.empirical_fisher(nm, p, y)
    assert _rel(f1.matrix, f0.matrix) <= 1e-8 and np.all(np.abs(f1.matrix - f0.matrix) <= f1.error)


@pytest.mark.parametrize(
    "variant", [pytest.param("white", marks=pytest.mark.slow), "opg"]
)  # White's variant takes about 12 s: the slow suite; the OPG one stays in the default suite
def test_numeric_check_matches_autodiff(variant, rng) -> None:
    ad, nm, params, y, x = _decay(rng)
    r0 = fl.fit(ad, y, x, init=params)
    at = {k: np.asarray(v) for k, v in r0.params.items()}
    d0 = fl.check(ad, at, y, x, variant=variant, pvalue="asymptotic")
    d1 = fl.check(nm, at, y, x, variant=variant, pvalue="asymptotic")
    assert d1.im_test_df == d0.im_test_df and d1.im_test_indicators == d0.im_test_indicators
    assert abs(d1.im_test_statistic - d0.im_test_statistic) <= 1e-5 * max(1.0, d0.im_test_statistic)
    assert abs(d1.score_mean_pvalue - d0.score_mean_pvalue) <= 1e-4
    np.testing.assert_allclose(d1.empirical_vs_observed, d0.empirical_vs_observed, rtol=1e-6)
    np.testing.assert_allclose(d1.observed_vs_expected, d0.observed_vs_expected, rtol=1e-6)
    assert d1.verdict.split(":")[0] == d0.verdict.split(":")[0]
    # misspecified: heavy-tailed errors under a Gaussian model are flagged as with autodiff
    t = x
    bad_y = 2.0 * np.exp(-0.7 * t) + 0.05 * rng.standard_t(2.5, size=t.size)
    fit_bad = fl.fit(ad, bad_y, t, init=params)
    at_bad = {k: np.asarray(v) for k, v in fit_bad.params.items()}
    b0, b1 = fl.check(ad, at_bad, bad_y, t, variant=variant), fl.check(nm, at_bad, bad_y, t, variant=variant)
    assert abs(b1.im_test_statistic - b0.im_test_statistic) <= 1e-5 * max(1.0, b0.im_test_statistic)


def decay_model(th, t):
    """A module-level (picklable) black-box model for the process-pool test."""
    return fl.dist.Normal(np.asarray(th["amp"] * np.exp(-th["k"] * t)), 0.05 * np.ones_like(t))


@pytest.mark.slow  # > 7 s: keeps the default suite within its budget
def test_process_pool_model(rng) -> None:
    t = np.linspace(0.0, 4.0, 40)
    y = 2.0 * np.exp(-0.7 * t) + 0.05 * rng.normal(size=t.size)
    p = {"amp": 1.9, "k": 0.72}
    serial = fl.Model(decay_model, derivatives="numeric")
    pooled = fl.Model(decay_model, derivatives="numeric", executor="processes", workers=2)
    np.testing.assert_array_equal(
        fl.observed_information(pooled, p, y, t).matrix, fl.observed_information(serial, p, y, t).matrix
    )
    np.testing.assert_array_equal(fl.fisher(pooled, p, t).matrix, fl.fisher(serial, p, t).matrix)
    r0, r1 = fl.fit(serial, y, t, init=p), fl.fit(pooled, y, t, init=p)  # the pool is kept between calls
    np.testing.assert_allclose(r1.flat_params, r0.flat_params, rtol=1e-12)
    unpicklable = fl.Model(lambda th, t: decay_model(th, t), derivatives="numeric", executor="processes")
    with pytest.raises(fl.ModelError, match="picklable"):
        fl.observed_information(unpicklable, p, y, t)


def test_dask_executor(rng) -> None:
    """A Dask client's executor evaluates the perturbed points (any concurrent.futures-style map)."""
    distributed = pytest.importorskip("distributed")
    t = np.linspace(0.0, 4.0, 40)
    y = 2.0 * np.exp(-0.7 * t) + 0.05 * rng.normal(size=t.size)
    p = {"amp": 1.9, "k": 0.72}
    serial = fl.Model(decay_model, derivatives="numeric")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        dask_model = fl.Model(decay_model, derivatives="numeric", executor=client.get_executor())
        got = fl.observed_information(dask_model, p, y, t)
        np.testing.assert_array_equal(got.matrix, fl.observed_information(serial, p, y, t).matrix)
        r0, r1 = fl.fit(serial, y, t, init=p), fl.fit(dask_model, y, t, init=p)
        np.testing.assert_allclose(r1.flat_params, r0.flat_params, rtol=1e-12)
        again = fl.observed_information(dask_model, p, y, t)
        assert again.evaluations == 0  # kept on the model, although the workers evaluated the points


class _MapOnly:
    """An executor of our own: any object with a concurrent.futures-style ``map``, in this process."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(2)

    def map(self, fn, *iterables):
        return self.pool.map(fn, *iterables)


def test_a_custom_in_process_executor_counts_each_call_once(rng) -> None:
    calls = []

    def counted(th, t):
        calls.append(1)
        return decay_model(th, t)

    t = np.linspace(0.0, 4.0, 25)
    y = 2.0 * np.exp(-0.7 * t) + 0.05 * rng.normal(size=t.size)
    p = {"amp": 1.9, "k": 0.72}
    ex = _MapOnly()
    try:
        got = fl.observed_information(fl.Model(counted, derivatives="numeric", executor=ex), p, y, t)
    finally:
        ex.pool.shutdown()
    made = len(calls)
    serial = fl.observed_information(fl.Model(counted, derivatives="numeric"), p, y, t)
    assert got.evaluations == made == serial.evaluations == len(calls) - made
    np.testing.assert_array_equal(got.matrix, serial.matrix)
