"""Models with numeric derivatives (finite differences) against the same model in JAX (autodiff)."""

import warnings

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
    from fisherlab._numeric import jacobian

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


def test_unavailable_for_numeric_models(rng) -> None:
    _, nm, params, y, _ = _gamma(rng)
    dm = fl.Model(lambda th, x: fl.dist.Gamma(float(th["a"]), float(th["b"])), derivatives="numeric")
    with pytest.raises(fl.MethodUnavailableError, match="expected Fisher with numeric derivatives"):
        fl.fisher(dm, params)
    with pytest.raises(fl.MethodUnavailableError, match="fit with numeric derivatives"):
        fl.fit(nm, y, init=params)
    with pytest.raises(fl.MethodUnavailableError, match="check with numeric derivatives"):
        fl.check(nm, params, y)
    auto = fl.Model(lambda th, x: fl.dist.Gamma(float(th["a"]), float(th["b"])))
    with pytest.warns(UserWarning, match="cannot be traced"), pytest.raises(fl.MethodUnavailableError):
        fl.fisher(auto, params)


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
