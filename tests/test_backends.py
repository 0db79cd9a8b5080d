"""The derivative-backend interface: autodiff and numeric against dense JAX references and each other.

Every operation of :class:`fisherlab.backends.Backend` is checked on one model (a Normal
regression whose scale is a parameter, so the family has two parameters per row) against an
independent dense reference written here with ``jax.hessian`` / ``jax.jacobian`` of a
hand-written log-density, and the numeric backend's error bounds are checked to cover its
actual error.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fisherlab as fl
from fisherlab.backends import (
    AutodiffBackend,
    Backend,
    MonteCarloMoments,
    NumericBackend,
    backend_for,
)
from fisherlab.data import prepare_data
from fisherlab.information import family_parts
from fisherlab.params import ParamCodec, as_params

# Autodiff and the dense JAX reference are both exact to rounding.
EXACT_RTOL = 1e-11
# Finite differences (Richardson-extrapolated) reach ~1e-9 relative; their bounds must cover it.
NUMERIC_RTOL = 1e-7

RNG = np.random.default_rng(3)
N = 40
X = np.column_stack([np.ones(N), RNG.normal(size=N)])
PARAMS = {"beta": np.array([0.3, -0.7]), "log_sigma": np.array(-0.2)}
Y = X @ PARAMS["beta"] + np.exp(-0.2) * RNG.normal(size=N)


def _jax_fn(th, x):
    return fl.dist.Normal(x @ th["beta"], jnp.exp(th["log_sigma"]))


def _numpy_fn(th, x):
    return fl.dist.Normal(np.asarray(x) @ np.asarray(th["beta"]), np.exp(np.asarray(th["log_sigma"])))


def _flat_loglik(v):
    """Hand-written total log-likelihood, v = (beta0, beta1, log_sigma): the dense reference."""
    mu = jnp.asarray(X) @ v[:2]
    return jnp.sum(-0.5 * ((jnp.asarray(Y) - mu) / jnp.exp(v[2])) ** 2 - v[2] - 0.5 * jnp.log(2 * jnp.pi))


def _rows_loglik(v):
    mu = jnp.asarray(X) @ v[:2]
    return -0.5 * ((jnp.asarray(Y) - mu) / jnp.exp(v[2])) ** 2 - v[2] - 0.5 * jnp.log(2 * jnp.pi)


def _eta(v):
    """Family parameters per row in the registry's order for Normal: (loc, scale)."""
    return jnp.stack([jnp.asarray(X) @ v[:2], jnp.full(N, jnp.exp(v[2]))], axis=1)


V = jnp.asarray(np.array([0.3, -0.7, -0.2]))


def _loc_scale(d):
    return family_parts(d)[0]


@pytest.fixture(params=["autodiff", "numeric"])
def backend(request) -> Backend:
    fn = _jax_fn if request.param == "autodiff" else _numpy_fn
    model = fl.Model(fn, derivatives=request.param)
    b = backend_for(model, PARAMS, Y, X)
    assert isinstance(b, AutodiffBackend if request.param == "autodiff" else NumericBackend)
    return b


def _close(value, reference, error, rtol):
    reference = np.asarray(reference)
    scale = np.max(np.abs(reference))
    np.testing.assert_allclose(value, reference, rtol=0, atol=rtol * scale)
    if error is not None:  # numeric: the bound covers the true error
        assert np.all(np.abs(np.asarray(value) - reference) <= error + 1e-12 * scale)


def _tol(b: Backend) -> float:
    return EXACT_RTOL if isinstance(b, AutodiffBackend) else NUMERIC_RTOL


def test_rows_of_data(backend: Backend) -> None:
    params, data = as_params(PARAMS), prepare_data(Y, X)
    np.testing.assert_allclose(backend.loglik(params, data), np.asarray(_rows_loglik(V)), rtol=1e-13)
    s = backend.scores(params, data)
    _close(s.value, jax.jacobian(_rows_loglik)(V), s.error, _tol(backend))
    k = backend.score_gram(params, data)
    ref_s = np.asarray(jax.jacobian(_rows_loglik)(V))
    _close(k.value, ref_s.T @ ref_s, k.error, _tol(backend))
    h = backend.negative_hessian(params, data)
    ref_h = -np.asarray(jax.hessian(_flat_loglik)(V))
    _close(h.value, ref_h, h.error, _tol(backend))
    v = np.array([1.0, -2.0, 0.5])
    _close(backend.negative_hessian_mv(params, data, v), ref_h @ v, None, _tol(backend))


def test_row_curvature_and_third_derivatives(backend: Backend) -> None:
    params, data = as_params(PARAMS), prepare_data(Y, X)
    rows = backend.row_curvature(params, data)
    assert rows.exact is isinstance(backend, AutodiffBackend)
    per_row_h = np.asarray(
        jax.vmap(jax.hessian(lambda v, i: _rows_loglik(v)[i]), in_axes=(None, 0))(V, jnp.arange(N))
    )
    _close(rows.hessians, per_row_h, None, 10 * _tol(backend))
    third = backend.third_derivatives(params, data)
    _close(third, jax.jacfwd(jax.hessian(_flat_loglik))(V), None, 1e3 * _tol(backend))


def test_eta_products_and_chain_rule(backend: Backend) -> None:
    params = as_params(PARAMS)
    jac = np.asarray(jax.jacobian(_eta)(V))  # (N, 2, 3)
    v, w = np.array([0.5, 1.0, -1.5]), RNG.normal(size=(N, 2))
    _close(backend.eta_jvp(params, X, v, _loc_scale), jac @ v, None, _tol(backend))
    _close(backend.eta_vjp(params, X, w, _loc_scale), np.einsum("nkp,nk->p", jac, w), None, _tol(backend))
    # Normal(loc, scale): I = diag(1/scale^2, 2/scale^2), so F = sum_i J_i^T I J_i
    scale = np.exp(-0.2)
    ref = np.einsum("nkp,k,nkq->pq", jac, np.array([1.0, 2.0]) / scale**2, jac)
    f = backend.eta_gram(params, X, family_parts)
    _close(f.value, ref, f.error, _tol(backend))
    assert fl.fisher(backend.model, PARAMS, X).matrix == pytest.approx(f.value, rel=1e-12)


def test_monte_carlo_moments_within_standard_errors(backend: Backend) -> None:
    params = as_params(PARAMS)
    moments = backend.mc_score_outer(params, X, 400, seed=1)
    mean, se = moments.combine()
    exact = backend.eta_gram(params, X, family_parts).value
    assert np.all(se > 0)
    assert np.max(np.abs(mean - exact) / se) < 4.5  # ~5e-5 chance per entry for a normal error


def test_moments_combine_is_the_pooled_mean_and_standard_error() -> None:
    draws = RNG.normal(size=(30, 2, 2)) ** 2
    blocks = [draws[:7], draws[7:20], draws[20:]]
    m = MonteCarloMoments(
        counts=np.array([len(b) for b in blocks]),
        means=np.stack([b.mean(0) for b in blocks]),
        squares=np.stack([((b - b.mean(0)) ** 2).sum(0) for b in blocks]),
    )
    mean, se = m.combine()
    np.testing.assert_allclose(mean, draws.mean(0), rtol=1e-14)
    np.testing.assert_allclose(se, draws.std(0, ddof=1) / np.sqrt(30), rtol=1e-12)


def test_backend_is_chosen_once_per_model() -> None:
    model = fl.Model(_numpy_fn)  # "auto": NumPy code cannot be traced
    with pytest.warns(UserWarning, match="numeric derivatives"):
        first = backend_for(model, PARAMS, Y, X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert backend_for(model, PARAMS, Y, X) is first
        assert model.state.backend is first
        fl.observed_information(model, PARAMS, Y, X)  # no second warning: decided once
    assert isinstance(first, NumericBackend)
    assert isinstance(backend_for(fl.Model(_jax_fn), PARAMS, Y, X), AutodiffBackend)


def test_a_new_backend_plugs_in_without_touching_the_callers() -> None:
    """A subclass set on the model's state serves fisher, observed information and fit unchanged."""

    class Counting(AutodiffBackend):
        name = "counting"
        calls: ClassVar[list[str]] = []

        def negative_hessian(self, params, data):
            self.calls.append("negative_hessian")
            return super().negative_hessian(params, data)

        def eta_gram(self, params, x, family):
            self.calls.append("eta_gram")
            return super().eta_gram(params, x, family)

    model = fl.Model(_jax_fn)
    model.state.backend = Counting(model)
    ref = fl.observed_information(fl.Model(_jax_fn), PARAMS, Y, X).matrix
    np.testing.assert_allclose(fl.observed_information(model, PARAMS, Y, X).matrix, ref, rtol=1e-14)
    fl.fisher(model, PARAMS, X)
    res = fl.fit(model, Y, X, init=PARAMS)
    direct = fl.observed_information(model, res.params, Y, X).matrix  # through negative_hessian
    # res.cov("observed") reuses the fit's own Hessian, from the same backend's log_posterior
    np.testing.assert_allclose(np.linalg.inv(res.cov("observed").matrix), direct, rtol=1e-10)
    assert Counting.calls.count("eta_gram") == 1 and Counting.calls.count("negative_hessian") == 2


def test_param_codec_round_trip() -> None:
    tree = {"W": np.arange(6.0).reshape(2, 3), "b": np.array([7.0, 8.0]), "s": 9.0}
    codec = ParamCodec(tree)
    assert codec.names == fl.param_names(tree)
    np.testing.assert_array_equal(codec.flat, [0.0, 1, 2, 3, 4, 5, 7, 8, 9])
    back = codec.to_numpy_tree(codec.flat)
    np.testing.assert_array_equal(back["W"], tree["W"])
    assert back["s"] == 9.0 and isinstance(back["s"], np.float64)


@pytest.mark.parametrize(
    ("call", "argument", "valid"),
    [
        (lambda m: fl.fisher(m, PARAMS, X, method="bogus"), "method", "'exact'"),
        (lambda m: fl.observed_information(m, PARAMS, Y, X, reduction="avg"), "reduction", "'mean'"),
        (lambda m: fl.check(m, PARAMS, Y, X, variant="bogus"), "variant", "'opg'"),
        (lambda m: fl.fit(m, Y, X, init=PARAMS, method="bfgs"), "method", "'lbfgs'"),
        (lambda m: fl.hessian(lambda th: th["a"] ** 2, {"a": 1.0}, method="fd"), "method", "'numeric'"),
    ],
)
def test_bad_options_name_argument_value_and_valid_values(call, argument, valid) -> None:
    with pytest.raises(fl.InvalidOptionError, match=f"{argument}=.* is not one of .*{valid}") as info:
        call(fl.Model(_jax_fn))
    assert isinstance(info.value, fl.FisherlabError) and isinstance(info.value, ValueError)


def test_bad_result_options_name_the_argument() -> None:
    res = fl.fit(fl.Model(_jax_fn), Y, X, init=PARAMS)
    with pytest.raises(fl.InvalidOptionError, match=r"kind='bogus' is not one of \['observed'"):
        res.cov("bogus")
    with pytest.raises(fl.InvalidOptionError, match=r"method='bogus' is not one of \['wald', 'profile'\]"):
        res.conf_int(method="bogus")
    with pytest.raises(fl.InvalidOptionError, match=r"scale='theta'"):
        res.cov(scale="theta")
    with pytest.raises(fl.ModelError, match=r"derivatives='jax' is not one of \['autodiff', 'numeric'"):
        fl.Model(_jax_fn, derivatives="jax")
