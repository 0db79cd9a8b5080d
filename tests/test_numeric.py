"""Finite-difference engine (``fisherlab.numeric``) and ``fl.hessian(method="numeric")``.

Oracles: closed-form Hessians (Gamma observed information, logistic ``X^T W X``,
Rosenbrock), JAX autodiff, and numdifftools' evaluation count. Every case also checks
that the reported error estimate bounds the true error entrywise.
"""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numdifftools as nd
import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as st

import fisherlab as fl
from fisherlab import numeric as _numeric

# The accuracy target for smooth problems in float64 (relative to the largest entry).
TARGET_REL = 1e-8
# Smooth functions of O(1) parameters: Richardson-extrapolated differences reach ~1e-10.
SMOOTH_REL = 1e-9


def rel_err(est: np.ndarray, true: np.ndarray) -> float:
    return float(np.max(np.abs(est - true)) / np.max(np.abs(true)))


def assert_bounded(est: np.ndarray, error: np.ndarray, true: np.ndarray) -> None:
    """The reported error bounds the true error, entry by entry."""
    gap = np.abs(est - true)
    assert np.all(gap <= error), f"true error {gap} exceeds the estimate {error}"


def numdifftools_count(f, x) -> int:
    calls = [0]

    def counted(v):
        calls[0] += 1
        return f(v)

    nd.Hessian(counted)(np.asarray(x, dtype=float))
    return calls[0]


# --------------------------------------------------------------------------- problems


@pytest.fixture(scope="module")
def gamma_problem():
    rng = np.random.default_rng(5)
    a, b = 2.5, 1.5
    y = rng.gamma(a, 1 / b, size=5000)
    n = y.size
    # observed information of the shape/rate Gamma: N [[psi'(a), -1/b], [-1/b, a/b^2]]
    info = n * np.array([[sp.polygamma(1, a), -1 / b], [-1 / b, a / b**2]])
    return y, {"rate": b, "shape": a}, info


@pytest.fixture(scope="module")
def logistic_problem():
    rng = np.random.default_rng(6)
    n, d = 2000, 10
    x = np.column_stack([np.ones(n), rng.standard_normal((n, d - 1))])
    beta = rng.normal(0, 0.5, d)
    p = 1 / (1 + np.exp(-x @ beta))
    y = rng.binomial(1, p).astype(float)
    info = (x.T * (p * (1 - p))) @ x
    return x, y, beta, info


def test_gamma_scipy_loglik(gamma_problem) -> None:
    y, params, info = gamma_problem

    def negloglik(th):
        assert isinstance(th["shape"], float) and not isinstance(th["shape"], jnp.ndarray)
        return -np.sum(st.gamma.logpdf(y, th["shape"], scale=1 / th["rate"]))

    H = fl.hessian(negloglik, params, method="numeric", lower=0.0)
    assert H.names == ["rate", "shape"] and H.method == "numeric"
    true = info[::-1, ::-1]  # names order: rate, shape
    assert rel_err(H.matrix, true) <= TARGET_REL
    assert H.error is not None and H.error.shape == (2, 2)
    assert_bounded(H.matrix, H.error, true)
    assert H.evaluations is not None
    assert H.evaluations <= numdifftools_count(lambda v: negloglik({"rate": v[0], "shape": v[1]}), [1.5, 2.5])


def test_logistic_regression(logistic_problem) -> None:
    x, y, beta, info = logistic_problem

    def negloglik(th):
        eta = x @ th["beta"]
        return -np.sum(y * eta - np.logaddexp(0.0, eta))

    H = fl.hessian(negloglik, {"beta": beta}, method="numeric")
    assert H.names == [f"beta[{i}]" for i in range(10)]
    assert rel_err(H.matrix, info) <= TARGET_REL
    assert H.error is not None
    assert_bounded(H.matrix, H.error, info)
    assert H.evaluations == 1 + _numeric.LEVELS * (10**2 + 10)
    assert H.evaluations <= numdifftools_count(lambda v: negloglik({"beta": v}), beta)


def rosenbrock(v):
    return 100.0 * (v[1] - v[0] ** 2) ** 2 + (1 - v[0]) ** 2


def test_rosenbrock_gradient_and_hessian() -> None:
    x0, x1 = -1.2, 1.0
    grad = np.array([-400 * x0 * (x1 - x0**2) - 2 * (1 - x0), 200 * (x1 - x0**2)])
    hess = np.array([[1200 * x0**2 - 400 * x1 + 2, -400 * x0], [-400 * x0, 200.0]])
    r = _numeric.hessian(rosenbrock, [x0, x1])
    assert rel_err(r.hessian, hess) <= SMOOTH_REL
    assert rel_err(r.gradient, grad) <= SMOOTH_REL
    assert_bounded(r.hessian, r.hessian_error, hess)
    assert_bounded(r.gradient, r.gradient_error, grad)
    g = _numeric.gradient(rosenbrock, [x0, x1])
    assert_bounded(g.gradient, g.error, grad)
    assert g.evaluations == 1 + 2 * 2 * _numeric.LEVELS


def test_zero_parameter_matches_autodiff() -> None:
    def f_np(th):
        return np.exp(th["a"]) * np.cos(th["b"]) + th["a"] ** 2 * th["b"] + np.sum(th["c"] ** 3 * th["a"])

    def f_jax(th):
        return jnp.exp(th["a"]) * jnp.cos(th["b"]) + th["a"] ** 2 * th["b"] + jnp.sum(th["c"] ** 3 * th["a"])

    params = {"a": 0.0, "b": 0.0, "c": np.array([0.0, 2.0])}
    ref = fl.hessian(f_jax, params)
    H = fl.hessian(f_np, params, method="numeric")
    assert H.names == ref.names == ["a", "b", "c[0]", "c[1]"]
    assert rel_err(H.matrix, ref.matrix) <= SMOOTH_REL
    assert H.error is not None
    assert_bounded(H.matrix, H.error, ref.matrix)


def guarded(f, lower):
    """``f`` that raises if it is ever evaluated on or below ``lower``."""

    def g(v):
        if np.any(v <= lower):
            raise AssertionError(f"evaluated outside the domain at {v}")
        return f(v)

    return g


@pytest.mark.parametrize(
    ("f", "x", "hess"),
    [
        # log-singular at the bound: varies on the scale of the distance to it
        (
            lambda v: sp.gammaln(v[0]) + v[0] * v[1] ** 2,
            [0.003, 0.7],
            lambda v: [[sp.polygamma(1, v[0]), 2 * v[1]], [2 * v[1], 2 * v[0]]],
        ),
        (
            lambda v: np.log(v[0]) * v[1] + v[1] ** 3,
            [0.005, 2.0],
            lambda v: [[-v[1] / v[0] ** 2, 1 / v[0]], [1 / v[0], 6 * v[1]]],
        ),
        # smooth up to the bound (only undefined beyond it): one-sided with the full step
        (
            lambda v: np.sqrt(v[0]) ** 6 + np.exp(v[0]) * v[1] ** 2,
            [1e-7, 0.5],
            lambda v: [[6 * v[0] + np.exp(v[0]) * v[1] ** 2, 2 * np.exp(v[0]) * v[1]], [0, 2 * np.exp(v[0])]],
        ),
    ],
)
def test_near_a_bound_never_evaluates_outside(f, x, hess) -> None:
    lower = np.array([0.0, -np.inf])
    r = _numeric.hessian(guarded(f, lower), x, lower=lower, levels=5)
    true = np.array(hess(np.array(x)), dtype=float)
    true[1, 0] = true[0, 1]
    assert rel_err(r.hessian, true) <= 1e-7
    assert_bounded(r.hessian, r.hessian_error, true)


def test_one_sided_stencil_when_smooth_at_the_bound() -> None:
    calls: list[np.ndarray] = []

    def f(v):
        calls.append(v.copy())
        return v[0] ** 3 + np.sin(v[0])

    r = _numeric.gradient(guarded(f, 0.0), [1e-9], lower=0.0)
    assert min(c[0] for c in calls) > 0
    assert max(c[0] for c in calls) > 1e-3  # the full step, not one squeezed below 1e-9
    assert abs(r.gradient[0] - (3e-18 + np.cos(1e-9))) <= r.error[0] <= 1e-8


def test_nan_at_a_perturbed_point_retries_with_smaller_steps() -> None:
    x0 = np.array([1.0, 2.0])

    def f(v):
        # undefined more than 1e-3 away from x0 in the first coordinate
        return np.nan if abs(v[0] - x0[0]) > 1e-3 else np.exp(v[0]) * v[1] ** 2

    r = _numeric.hessian(f, x0)
    true = np.array([[np.e * 4, np.e * 4], [np.e * 4, 2 * np.e]])
    assert rel_err(r.hessian, true) <= 1e-6
    assert_bounded(r.hessian, r.hessian_error, true)


def test_nan_only_off_the_axes_retries_the_mixed_entry() -> None:
    x0 = np.array([1.0, 2.0])

    def f(v):
        # finite on the coordinate axes through x0, NaN where both coordinates move far
        both = abs(v[0] - x0[0]) > 1e-3 and abs(v[1] - x0[1]) > 1e-3
        return np.nan if both else np.exp(v[0]) * v[1] ** 2

    r = _numeric.hessian(f, x0)
    true = np.array([[np.e * 4, np.e * 4], [np.e * 4, 2 * np.e]])
    assert rel_err(r.hessian, true) <= 1e-6
    assert_bounded(r.hessian, r.hessian_error, true)
    assert r.evaluations > 1 + _numeric.LEVELS * 6  # the mixed stencil was evaluated again


def test_nan_everywhere_but_the_point_fails_clearly() -> None:
    def f(v):
        return 1.0 if v[1] == 3.0 else np.inf

    with pytest.raises(fl.NumericDerivativeError, match=r"parameter b .*\{a=1.0, b=3.0\}") as info:
        fl.hessian(lambda th: f(np.array([th["a"], th["b"]])), {"a": 1.0, "b": 3.0}, method="numeric")
    assert info.value.parameter == "b"
    assert info.value.point == {"a": 1.0, "b": 3.0}
    assert isinstance(info.value, fl.NotConvergedError)


def test_f_raising_is_chained_with_the_values() -> None:
    def f(th):
        if th["k"] > 2.0:
            raise RuntimeError("solver diverged")
        return th["k"] ** 2

    with pytest.raises(
        fl.NumericDerivativeError, match=r"RuntimeError at \{k=2.0\d*\}: solver diverged"
    ) as info:
        fl.hessian(f, {"k": 2.0}, method="numeric")
    assert isinstance(info.value.__cause__, RuntimeError)
    assert info.value.point["k"] > 2.0


def test_complex_step_gradient() -> None:
    def f(v):  # Squire & Trapp's test function, times a second coordinate
        return np.exp(v[0]) / np.sqrt(np.sin(v[0]) ** 3 + np.cos(v[0]) ** 3) * v[1] ** 2

    x = np.array([1.5, 0.5])
    s, c = np.sin(x[0]), np.cos(x[0])
    u = s**3 + c**3
    d0 = np.exp(x[0]) / np.sqrt(u) * (1 - (3 * s**2 * c - 3 * c**2 * s) / (2 * u)) * x[1] ** 2
    true = np.array([d0, np.exp(x[0]) / np.sqrt(u) * 2 * x[1]])
    r = _numeric.gradient(f, x, method="complex")
    assert rel_err(r.gradient, true) <= 1e-14
    assert_bounded(r.gradient, r.error, true)
    assert r.evaluations == 3  # P complex points and f(x)
    central = _numeric.gradient(f, x)
    assert_bounded(central.gradient, central.error, true)


def test_complex_step_needs_complex_input() -> None:
    with pytest.raises(fl.MethodUnavailableError, match="complex"):
        _numeric.gradient(lambda v: float(v[0]) ** 2, [1.0], method="complex")
    with pytest.raises(fl.MethodUnavailableError, match="real value"):
        _numeric.gradient(lambda v: np.abs(v[0]) ** 2, [1.0], method="complex")


def test_evaluations_are_shared_and_cached() -> None:
    seen: list[bytes] = []

    def f(v):
        seen.append(v.tobytes())
        return rosenbrock(v) + v[2] ** 4

    r = _numeric.hessian(f, [0.3, -0.2, 0.0], levels=3)
    assert len(seen) == len(set(seen)) == r.evaluations == 1 + 3 * (9 + 3)
    g = _numeric.gradient(f, [0.3, -0.2, 0.0], levels=3)
    np.testing.assert_allclose(r.gradient, g.gradient, rtol=0, atol=1e-12)


def test_vectorized_f_gives_the_same_result() -> None:
    batches: list[int] = []

    def fv(pts):
        batches.append(len(pts))
        return 100.0 * (pts[:, 1] - pts[:, 0] ** 2) ** 2 + (1 - pts[:, 0]) ** 2

    r1 = _numeric.hessian(rosenbrock, [0.5, 0.5])
    r2 = _numeric.hessian(fv, [0.5, 0.5], vectorized=True)
    np.testing.assert_array_equal(r1.hessian, r2.hessian)
    assert r1.evaluations == r2.evaluations == sum(batches)
    assert len(batches) < r2.evaluations


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match='numeric" only'):
        fl.hessian(lambda th: th["a"] ** 2, {"a": 1.0}, lower=0.0)
    with pytest.raises(ValueError, match="not strictly inside"):
        _numeric.hessian(rosenbrock, [0.0, 1.0], lower=[0.0, None])
    with pytest.raises(ValueError, match="unknown parameter"):
        fl.hessian(lambda th: th["a"] ** 2, {"a": 1.0}, method="numeric", upper={"z": 1.0})
    with pytest.raises(fl.NumericDerivativeError, match="not finite at the point itself"):
        _numeric.hessian(lambda v: np.nan if v[0] < 0 else v[0], [-1.0])


# --------------------------------------------------------------------------- vector_hessian


def normal_rows(t: np.ndarray, y: np.ndarray):
    """Per-row log-density of y_n ~ Normal(a + b t_n, exp(c)) and its closed-form derivatives."""

    def f(v):
        sigma = np.exp(v[2])
        r = y - v[0] - v[1] * t
        return -0.5 * np.log(2 * np.pi) - v[2] - 0.5 * (r / sigma) ** 2

    def derivatives(v):
        s2 = np.exp(2 * v[2])
        r = y - v[0] - v[1] * t
        jac = np.column_stack([r / s2, r * t / s2, -1 + r**2 / s2])
        hess = np.empty((y.size, 3, 3))
        hess[:, 0, 0] = -1 / s2
        hess[:, 0, 1] = hess[:, 1, 0] = -t / s2
        hess[:, 1, 1] = -(t**2) / s2
        hess[:, 0, 2] = hess[:, 2, 0] = -2 * r / s2
        hess[:, 1, 2] = hess[:, 2, 1] = -2 * r * t / s2
        hess[:, 2, 2] = -2 * r**2 / s2
        return jac, hess

    return f, derivatives


@pytest.fixture(scope="module")
def normal_problem():
    rng = np.random.default_rng(11)
    t = np.linspace(-1.0, 2.0, 40)
    y = 0.5 + 1.5 * t + 0.3 * rng.standard_normal(t.size)
    f, derivatives = normal_rows(t, y)
    return f, derivatives, np.array([0.4, 1.6, np.log(0.3)])


def test_vector_hessian_matches_per_row_closed_form(normal_problem) -> None:
    f, derivatives, theta = normal_problem
    jac, hess = derivatives(theta)
    r = _numeric.vector_hessian(f, theta, names=["a", "b", "c"])
    assert r.value.shape == (40,) and r.jacobian.shape == (40, 3) and r.hessian.shape == (40, 3, 3)
    np.testing.assert_array_equal(r.hessian, np.swapaxes(r.hessian, 1, 2))
    assert rel_err(r.jacobian, jac) <= SMOOTH_REL
    assert rel_err(r.hessian, hess) <= SMOOTH_REL
    assert_bounded(r.jacobian, r.jacobian_error, jac)
    assert_bounded(r.hessian, r.hessian_error, hess)
    assert r.evaluations == 1 + _numeric.LEVELS * (3**2 + 3)
    # the same stencils as the scalar Hessian of the total
    total = _numeric.hessian(lambda v: np.sum(f(v)), theta)
    assert rel_err(r.hessian.sum(axis=0), total.hessian) <= SMOOTH_REL
    assert total.evaluations == r.evaluations


def test_scalar_hessian_is_the_one_output_case(normal_problem) -> None:
    f, _, theta = normal_problem

    def total(v):
        return float(np.sum(f(v)))

    s = _numeric.hessian(total, theta)
    v = _numeric.vector_hessian(lambda p: np.array([total(p)]), theta)
    np.testing.assert_array_equal(v.hessian[0], s.hessian)
    np.testing.assert_array_equal(v.hessian_error[0], s.hessian_error)
    np.testing.assert_array_equal(v.jacobian[0], s.gradient)
    np.testing.assert_array_equal(v.jacobian_error[0], s.gradient_error)
    assert v.evaluations == s.evaluations == 1 + _numeric.LEVELS * 12


def test_vector_hessian_near_a_bound() -> None:
    t = np.array([0.5, 1.0, 3.0])

    def f(v):  # log-singular at the bound in every row, with a row-dependent weight
        return np.log(v[0]) * t + v[0] * v[1] ** 2 * t**2

    x = np.array([0.004, 0.7])
    r = _numeric.vector_hessian(guarded(f, np.array([0.0, -np.inf])), x, lower=[0.0, None], levels=5)
    true = np.empty((3, 2, 2))
    true[:, 0, 0] = -t / x[0] ** 2
    true[:, 0, 1] = true[:, 1, 0] = 2 * x[1] * t**2
    true[:, 1, 1] = 2 * x[0] * t**2
    assert rel_err(r.hessian, true) <= 1e-7
    assert_bounded(r.hessian, r.hessian_error, true)


def test_vector_hessian_retries_a_nan_in_one_output() -> None:
    x0 = np.array([1.0, 2.0])

    def f(v):
        far = abs(v[0] - x0[0]) > 1e-3 and abs(v[1] - x0[1]) > 1e-3
        return np.array([np.exp(v[0]) * v[1] ** 2, np.nan if far else v[0] * v[1] ** 3])

    r = _numeric.vector_hessian(f, x0)
    true = np.array([[[4 * np.e, 4 * np.e], [4 * np.e, 2 * np.e]], [[0.0, 12.0], [12.0, 12.0]]])
    assert np.max(np.abs(r.hessian - true)) <= 1e-5
    assert_bounded(r.hessian, r.hessian_error, true)
    assert r.evaluations > 1 + _numeric.LEVELS * 6  # the mixed stencil was evaluated again


def test_vector_hessian_rejects_a_changing_shape() -> None:
    def f(v):
        return np.ones(3) if v[0] == 1.0 else np.ones(2)

    with pytest.raises(fl.NumericDerivativeError, match="same shape at every point"):
        _numeric.vector_hessian(f, [1.0])


# --------------------------------------------------------------------------- executor and cache


def slow_rosenbrock(v):
    """Module level, so that ``executor="processes"`` can pickle it."""
    return rosenbrock(v) + v[2] ** 4


def test_threads_give_identical_results(normal_problem) -> None:
    f, _, theta = normal_problem
    cases = [(_numeric.hessian, (slow_rosenbrock, [0.3, -0.2, 0.5])), (_numeric.vector_hessian, (f, theta))]
    for fn, args in cases:
        serial = fn(*args)
        threaded = fn(*args, executor="threads", workers=4)
        for field in serial.__dataclass_fields__:
            np.testing.assert_array_equal(getattr(threaded, field), getattr(serial, field))
    j1 = _numeric.jacobian(f, theta, lower=[-np.inf, -np.inf, np.log(0.3) - 0.01])
    j2 = _numeric.jacobian(f, theta, lower=[-np.inf, -np.inf, np.log(0.3) - 0.01], executor="threads")
    np.testing.assert_array_equal(j1.jacobian, j2.jacobian)
    assert j1.evaluations == j2.evaluations
    g1 = _numeric.gradient(slow_rosenbrock, [0.3, -0.2, 0.5])
    g2 = _numeric.gradient(slow_rosenbrock, [0.3, -0.2, 0.5], executor="threads", workers=3)
    np.testing.assert_array_equal(g1.gradient, g2.gradient)


def test_threads_run_concurrently_and_a_given_executor_stays_open() -> None:
    import time
    from concurrent.futures import ThreadPoolExecutor

    def slow(v):  # a quadratic: two levels are exact
        time.sleep(0.05)
        return float(v @ v + v[0] * v[1])

    x = [0.3, -0.2, 0.5]
    start = time.perf_counter()
    serial = _numeric.hessian(slow, x, levels=2)
    serial_time = time.perf_counter() - start
    with ThreadPoolExecutor(max_workers=8) as pool:
        start = time.perf_counter()
        par = _numeric.hessian(slow, x, levels=2, executor=pool)
        par_time = time.perf_counter() - start
        assert pool.submit(lambda: 42).result() == 42  # not shut down by the engine
    np.testing.assert_array_equal(par.hessian, serial.hessian)
    # 1 + 2 * 12 = 25 calls of 50 ms: ~1.25 s serial, 3 batches of <= 12 points on 8 threads ~0.3 s
    assert par_time < 0.5 * serial_time
    start = time.perf_counter()
    _numeric.hessian(slow, x, levels=2, executor="threads", workers=8)
    assert time.perf_counter() - start < 0.5 * serial_time


def test_processes_need_a_picklable_f() -> None:
    r = _numeric.gradient(slow_rosenbrock, [0.3, -0.2, 0.5], executor="processes", workers=2)
    serial = _numeric.gradient(slow_rosenbrock, [0.3, -0.2, 0.5])
    np.testing.assert_array_equal(r.gradient, serial.gradient)
    with pytest.raises(fl.ModelError, match=r"picklable.*module level.*threads"):
        _numeric.hessian(lambda v: v[0] ** 2, [1.0], executor="processes")


def test_bad_executor_arguments() -> None:
    with pytest.raises(fl.InvalidOptionError, match="executor='fibers' is not one of"):
        _numeric.gradient(rosenbrock, [1.0, 1.0], executor="fibers")
    with pytest.raises(fl.InvalidOptionError, match="map"):
        _numeric.gradient(rosenbrock, [1.0, 1.0], executor=object())  # type: ignore[arg-type]
    with pytest.raises(fl.InvalidOptionError, match="workers"):
        _numeric.gradient(rosenbrock, [1.0, 1.0], executor="threads", workers=0)
    with pytest.raises(fl.InvalidOptionError, match="step must be a number or one number per parameter"):
        _numeric.gradient(rosenbrock, [1.0, 1.0], step=[1e-3, 1e-3, 1e-3])


def test_a_step_into_where_f_explodes_is_flagged() -> None:
    # tau's stencil reaches tau < 0, where f is ~1e18: the rounding bound there is the error
    # (2.4e10 against an estimate of 1e8; the true value is 2.5e5), not "zero to f's precision".
    t = np.linspace(0, 0.01, 11)

    def f(th):
        return np.sum((np.exp(-t / th["tau"]) - 1.01 * np.exp(-t / 0.002)) ** 2)

    with pytest.warns(fl.NumericAccuracyWarning, match=r"d\(tau\)\^2.*steps reach where f is far larger"):
        fl.hessian(f, {"tau": 0.002}, method="numeric")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # bounded away from tau = 0, the same entry is accurate
        h = fl.hessian(f, {"tau": 0.002}, method="numeric", step=1e-4)
    assert h.matrix[0, 0] == pytest.approx(2.507e5, rel=1e-3)


def test_an_exception_in_a_worker_is_chained_with_the_point() -> None:
    def f(v):
        if v[0] > 2.0:
            raise RuntimeError("solver diverged")
        return v[0] ** 2

    with pytest.raises(fl.NumericDerivativeError, match=r"RuntimeError at \{theta\[0\]=2.0\d*\}") as info:
        _numeric.hessian(f, [2.0], executor="threads", workers=2)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_a_shared_cache_reuses_evaluations() -> None:
    calls: list[bytes] = []

    def f(v):
        calls.append(v.tobytes())
        return slow_rosenbrock(v)

    cache: dict[bytes, object] = {}
    x = [0.3, -0.2, 0.5]
    first = _numeric.hessian(f, x, cache=cache)
    assert first.evaluations == len(calls) == len(cache) == 1 + _numeric.LEVELS * 12
    again = _numeric.hessian(f, x, cache=cache)
    assert again.evaluations == 0 and len(calls) == first.evaluations
    np.testing.assert_array_equal(again.hessian, first.hessian)
    # the gradient's points are a subset of the Hessian's
    g = _numeric.gradient(f, x, cache=cache)
    assert g.evaluations == 0
    np.testing.assert_array_equal(g.gradient, first.gradient)
    # and the other way round: a gradient first, then the Hessian needs only the mixed points
    fresh: dict[bytes, object] = {}
    _numeric.gradient(f, x, cache=fresh)
    h = _numeric.hessian(f, x, cache=fresh, executor="threads")
    assert h.evaluations == _numeric.LEVELS * (12 - 2 * 3)
    np.testing.assert_array_equal(h.hessian, first.hessian)
    # the complex step does not use the cache (its complex points are not real ones)
    c = _numeric.gradient(lambda v: v[0] ** 2 + v[1] * v[2], x, method="complex", cache=fresh)
    assert c.evaluations == 4


def test_a_cache_of_vectors_is_shared_by_jacobian_and_vector_hessian(normal_problem) -> None:
    f, _, theta = normal_problem
    cache: dict[bytes, object] = {}
    j = _numeric.jacobian(f, theta, cache=cache)
    v = _numeric.vector_hessian(f, theta, cache=cache)
    assert v.evaluations == _numeric.LEVELS * 6  # the axis points came from the Jacobian
    np.testing.assert_array_equal(v.jacobian, j.jacobian)
    with pytest.raises(fl.InvalidOptionError, match="a cache belongs to one function"):
        _numeric.hessian(lambda p: float(np.sum(f(p))), theta, cache=cache)


# --------------------------------------------------------------------------- accuracy warning


def test_noisy_function_warns() -> None:
    rng = np.random.default_rng(3)

    def noisy(v):
        return float(np.sum(v**2) + 1e-6 * rng.standard_normal())

    with pytest.warns(fl.NumericAccuracyWarning, match=r"d2f/d\(a\)\^2: .* ± ") as record:
        _numeric.hessian(noisy, [1.0, 0.5], names=["a", "b"])
    assert len(record) == 1  # one warning per call

    def noisier(v):
        return float(v[0] ** 2 + 1e-3 * rng.standard_normal())

    with pytest.warns(fl.NumericAccuracyWarning, match=r"df/d\(theta\[0\]\)"):
        _numeric.gradient(noisier, [1.0])


def test_kink_warns() -> None:
    with pytest.warns(fl.NumericAccuracyWarning, match=r"d2f/d\(k\)\^2"):
        _numeric.hessian(lambda v: abs(v[0]) + v[1] ** 2, [0.0, 1.0], names=["k", "m"])
    t = np.array([1.0, 2.0])
    with pytest.warns(fl.NumericAccuracyWarning, match=r"d2f\[\d\]/d\(theta\[0\]\)\^2"):
        _numeric.vector_hessian(lambda v: np.maximum(v[0], 0.0) * t, [0.0])


def test_smooth_functions_do_not_warn(normal_problem) -> None:
    f, _, theta = normal_problem
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", fl.NumericAccuracyWarning)
        _numeric.vector_hessian(f, theta)
        # a tiny entry of a big column is judged against the column
        _numeric.jacobian(lambda v: np.array([1e6 * v[0], 1e-9 * v[0] ** 2 + 1e-3 * v[1]]), [1.0, 2.0])
        # f independent of a parameter: its zero entries are exact to rounding
        _numeric.hessian(lambda v: 1e4 + v[0] ** 2, [1.0, 3.0])
        # at an optimum the gradient is judged against f
        _numeric.gradient(lambda v: 50.0 + (v[0] - 1.0) ** 2, [1.0])
