"""Every bad-input path raises a documented fisherlab error that names where and what."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import fisherlab as fl


@pytest.fixture
def linear() -> fl.Model:
    return fl.Model(lambda th, x: fl.dist.Normal(th["a"] + th["b"] * x, th["s"]))


GOOD = {"a": 0.0, "b": 1.0, "s": 1.0}
X = np.arange(5.0)
Y = np.ones(5)


def test_hierarchy() -> None:
    assert issubclass(fl.FisherlabArgumentError, TypeError)
    assert issubclass(fl.FisherlabArgumentError, fl.FisherlabError)
    assert issubclass(fl.InvalidOptionError, ValueError)
    assert issubclass(fl.InvalidDataError, ValueError)
    assert issubclass(fl.InvalidParameterError, ValueError)
    assert issubclass(fl.SingularInformationError, ArithmeticError)
    assert issubclass(fl.NotConvergedError, ArithmeticError)
    assert issubclass(fl.MethodUnavailableError, NotImplementedError)
    for cls in (
        fl.InvalidDataError,
        fl.SingularInformationError,
        fl.NotConvergedError,
        fl.ModelError,
    ):
        assert issubclass(cls, fl.FisherlabError)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_y_names_row(linear, bad) -> None:
    y = Y.copy()
    y[3] = bad
    with pytest.raises(fl.InvalidDataError, match=r"y row 3 is"):
        fl.loglik(linear, GOOD, y, X)


def test_non_finite_x_names_field_and_row(linear) -> None:
    df = pd.DataFrame({"dose": [1.0, 2.0, np.nan, 4.0, 5.0]})
    model = fl.Model(lambda th, x: fl.dist.Normal(th["a"] + th["b"] * x["dose"], th["s"]))
    with pytest.raises(fl.InvalidDataError, match=r"x\['dose'\] row 2 is nan"):
        fl.score(model, GOOD, Y, df)
    X2 = np.ones((5, 3))
    X2[4, 2] = np.inf
    with pytest.raises(fl.InvalidDataError, match=r"x row 4, column \(2,\) is inf"):
        fl.empirical_fisher(linear, GOOD, Y, X2)


def test_row_mismatch(linear) -> None:
    with pytest.raises(fl.InvalidDataError, match="y has 4, x has 5"):
        fl.observed_information(linear, GOOD, Y[:4], X)


def test_non_numeric_and_empty(linear) -> None:
    with pytest.raises(fl.InvalidDataError, match="not numeric"):
        fl.loglik(linear, GOOD, np.array(["a", "b", "c", "d", "e"]), X)
    with pytest.raises(fl.InvalidDataError, match="no rows"):
        fl.loglik(linear, GOOD, np.array([]), np.array([]))


def test_invalid_parameter_names_row_and_parameter(linear) -> None:
    with pytest.raises(fl.InvalidParameterError, match=r"Normal parameter 'scale' = -1"):
        fl.loglik(linear, {**GOOD, "s": -1.0}, Y, X)
    with pytest.raises(fl.InvalidParameterError, match=r"Normal parameter 'scale'"):
        fl.fisher(linear, {**GOOD, "s": -1.0}, X)
    probs = fl.Model(lambda th, x: fl.dist.Bernoulli(probs=th["p"] * x))
    with pytest.raises(fl.InvalidParameterError, match=r"row 4: BernoulliProbs parameter 'probs' = 1.2"):
        fl.fisher(probs, {"p": 0.3}, X)
    gamma = fl.Model(lambda th, x: fl.dist.Gamma(th["a"], th["b"]))
    with pytest.raises(fl.InvalidParameterError, match="'concentration'"):
        fl.fisher(gamma, {"a": -2.0, "b": 1.0}, method="mc", num_samples=10)


def test_non_finite_parameter(linear) -> None:
    with pytest.raises(fl.InvalidParameterError, match="parameter s = nan"):
        fl.score(linear, {**GOOD, "s": np.nan}, Y, X)


def test_y_outside_support() -> None:
    poisson = fl.Model(lambda th, x: fl.dist.Poisson(jnp.exp(th["a"] + th["b"] * x)))
    with pytest.raises(fl.InvalidDataError, match=r"y at row 2 = 1.5 is outside the support of Poisson"):
        fl.score(poisson, {"a": 0.0, "b": 1.0}, np.array([1, 2, 1.5, 3, 1.0]), X)
    bern = fl.Model(lambda th, x: fl.dist.Bernoulli(logits=th["a"] * x))
    with pytest.raises(fl.InvalidDataError, match=r"y at row 0 = 2\.0"):
        fl.loglik(bern, {"a": 1.0}, np.array([2.0, 0, 1, 1, 0]), X)


def test_model_contract_violations() -> None:
    captured = fl.Model(lambda th, x: fl.dist.Normal(th["a"] * jnp.ones(5), 1.0))
    with pytest.raises(fl.ModelError, match="batch shape"):
        fl.loglik(captured, {"a": 0.0}, Y, X)
    untraceable = fl.Model(lambda th, x: fl.dist.Normal(float(th["a"]), 1.0), derivatives="autodiff")
    with pytest.raises(fl.ModelError, match=r"jax\.numpy"):
        fl.score(untraceable, {"a": 0.0}, Y, X)
    not_dist = fl.Model(lambda th, x: th["a"] * x)
    with pytest.raises(fl.ModelError, match="not a distribution"):
        fl.loglik(not_dist, {"a": 0.0}, Y, X)
    mvn = fl.Model(lambda th, x: fl.dist.MultivariateNormal(th["m"], jnp.eye(2)))
    with pytest.raises(fl.ModelError, match="one row of y has shape"):
        fl.loglik(mvn, {"m": np.zeros(2)}, np.zeros((4, 3)))
    with pytest.raises(fl.ModelError):
        fl.Model("not callable")  # type: ignore[arg-type]
    with pytest.raises(fl.ModelError, match="derivatives"):
        fl.Model(lambda th, x: None, derivatives="symbolic")  # type: ignore[arg-type,return-value]
    assert fl.Model(lambda th, x: None, derivatives="numeric").derivatives == "numeric"  # type: ignore[arg-type,return-value]


def test_method_validation(linear) -> None:
    with pytest.raises(fl.InvalidOptionError, match="method='bogus'"):
        fl.fisher(linear, GOOD, X, method="bogus")
    with pytest.raises(fl.InvalidOptionError, match="num_samples"):
        fl.fisher(linear, GOOD, X, method="mc", num_samples=1)
    with pytest.raises(fl.FisherlabArgumentError, match=r"fisher: model must be an fl\.Model"):
        fl.fisher(lambda th, x: None, GOOD, X)  # type: ignore[arg-type]
    with pytest.raises(fl.InvalidOptionError, match="method='bogus'"):
        fl.hessian(lambda th: th["a"] ** 2, {"a": 1.0}, method="bogus")


def test_exact_unavailable_for_untabulated_family() -> None:
    # A continuous family with no closed form, no finite support and no inverse CDF.
    model = fl.Model(lambda th, x: fl.dist.Gamma(th["a"], 1.0).expand([1]).to_event(1))
    with pytest.raises(fl.MethodUnavailableError, match="method='mc'"):
        fl.fisher(model, {"a": 2.0}, method="exact")


def test_non_finite_information(linear) -> None:
    probs = fl.Model(lambda th, x: fl.dist.Bernoulli(probs=th["p"] * x))
    # p * x = 0 on row 0: the Bernoulli information 1/(p(1-p)) is infinite there.
    with pytest.raises(fl.InvalidParameterError, match="not finite"):
        fl.fisher(probs, {"p": 0.1}, X)
    # f itself undefined at the point: its Hessian means nothing
    with pytest.raises(fl.InvalidParameterError, match=r"f is -inf at these parameters \(a=0\)"):
        fl.hessian(lambda th: jnp.log(th["a"]), {"a": 0.0})
    with pytest.raises(fl.InvalidParameterError, match=r"f is nan at these parameters \(a=1\)"):
        fl.hessian(lambda th: jnp.log(th["a"] - 2.0), {"a": 1.0})  # a finite Hessian, -1/(a-2)^2
    # f finite, its Hessian not: a^1.5 at 0
    with pytest.raises(fl.InvalidParameterError, match=r"Hessian is not finite .*entry \[a, a\] is inf"):
        fl.hessian(lambda th: th["a"] ** 1.5, {"a": 0.0})
