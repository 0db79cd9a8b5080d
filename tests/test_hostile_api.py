"""Hostile input to the Python API: no silent wrong result, one error type everywhere (issue 10).

Every bad argument raises a :class:`fisherlab.FisherlabError` subclass (and the matching
built-in: ``ValueError`` for a value out of range, ``TypeError`` for an argument of the wrong
kind) whose message names the argument, the value given and what is valid. Also here: the
delta method at a point where the function is undefined, the algebra of information matrices
(positive semidefinite in, positive semidefinite out), complex input, the dtypes data and
parameters keep (float32, integer labels), the multinomial logit against statsmodels, and
every registry family fitted to data simulated from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
import pandas as pd
import pytest
import statsmodels.api as sm
from numpyro.distributions import constraints

import fisherlab as fl

# Monte-Carlo checks: |exact - Monte-Carlo| below this many Monte-Carlo standard errors per entry
# (a two-sided normal tail of 6e-7; the seeds are fixed, so the check is deterministic).
MC_SE = 5.0
# A maximum-likelihood estimate from N = 2000 simulated rows lies within this many of its own
# standard errors of the truth (two-sided normal tail 6e-5 per parameter; seeded).
FIT_SE = 4.0
# The multinomial logit against statsmodels' MNLogit (Newton to gradient 1e-12 there, decrement
# 1e-8 here): estimates agree to ~1e-9 relative, standard errors (inverse Hessians of the same
# log-likelihood, by JAX vs by statsmodels' analytic formula) to ~1e-8.
STATSMODELS_RTOL = 1e-6
# The same float64 computation by two routes (a hand-written log-softmax differentiated by JAX
# vs NumPyro's Categorical through fisherlab's kernels): a few ulps of sums over 300 rows.
DENSE_RTOL = 1e-11
# float32 results against the same computation in float64: the float32 unit roundoff (6e-8)
# times the few operations and the sum over rows of these small problems.
FLOAT32_RTOL = 1e-5

N = 2000
# |J_aa / F_aa - 1| at the estimate from N = 2000 rows (see test_family_fit_to_simulated_data).
J_OVER_F_RTOL = 0.15


def _linear() -> fl.Model:
    return fl.Model(
        lambda th, x: fl.dist.Normal(th["a"] + th["b"] * x, th["s"]), constraints={"s": "positive"}
    )


GOOD = {"a": 0.5, "b": 1.0, "s": 1.2}
X = np.linspace(-1.0, 1.0, 40)
Y = 0.5 + X + 0.3 * np.sin(7.0 * X)


@pytest.fixture(scope="module")
def model() -> fl.Model:
    return _linear()


@pytest.fixture(scope="module")
def res(model: fl.Model) -> fl.FitResult:
    return fl.fit(model, Y, X, init=GOOD)


@pytest.fixture(scope="module")
def F() -> fl.InfoMatrix:
    return fl.InfoMatrix([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]], ["a", "b", "s"], method="exact")


def _raises(
    thunk: Callable[[], Any], cls: type[Exception], base: type[Exception], *fragments: str
) -> Exception:
    """Run ``thunk``; assert it raises ``cls`` (a FisherlabError and ``base``) naming every fragment."""
    with pytest.raises(cls) as info:
        thunk()
    exc = info.value
    assert isinstance(exc, fl.FisherlabError)
    assert isinstance(exc, base)
    message = str(exc)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return exc


# =========================================================================== 1. each bad argument

OPT, ARG, PAR, DATA = (
    fl.InvalidOptionError,
    fl.FisherlabArgumentError,
    fl.InvalidParameterError,
    fl.InvalidDataError,
)

# (id, call(model, res, F), error class, builtin base, fragments the message must contain:
#  the argument, the value given, what is valid)
CASES: list[tuple[str, Callable[..., Any], type[Exception], type[Exception], tuple[str, ...]]] = [
    (
        "fisher method",
        lambda m, r, F: fl.fisher(m, GOOD, X, method="bogus"),
        OPT,
        ValueError,
        ("method", "'bogus'", "'auto', 'exact', 'mc'"),
    ),
    (
        "fisher n=0",
        lambda m, r, F: fl.fisher(m, GOOD, X, n=0),
        OPT,
        ValueError,
        ("n must be", "got 0", ">= 1"),
    ),
    (
        "fisher n=-1",
        lambda m, r, F: fl.fisher(m, GOOD, X, n=-1),
        OPT,
        ValueError,
        ("n must be", "-1", ">= 1"),
    ),
    (
        "fisher n=1.5",
        lambda m, r, F: fl.fisher(m, GOOD, X, n=1.5),
        ARG,
        TypeError,
        ("n must be an integer", "1.5", ">= 1"),
    ),
    (
        "fisher n=True",
        lambda m, r, F: fl.fisher(m, GOOD, X, n=True),
        ARG,
        TypeError,
        ("n must be an integer", "True", "bool"),
    ),
    (
        "fisher num_samples=1",
        lambda m, r, F: fl.fisher(m, GOOD, X, method="mc", num_samples=1),
        OPT,
        ValueError,
        ("num_samples", "got 1", ">= 2"),
    ),
    (
        "fisher num_samples=0",
        lambda m, r, F: fl.fisher(m, GOOD, X, method="mc", num_samples=0),
        OPT,
        ValueError,
        ("num_samples", "got 0", ">= 2"),
    ),
    (
        "fisher num_samples=2.5",
        lambda m, r, F: fl.fisher(m, GOOD, X, method="mc", num_samples=2.5),
        ARG,
        TypeError,
        ("num_samples", "2.5", "integer"),
    ),
    (
        "fisher seed='x'",
        lambda m, r, F: fl.fisher(m, GOOD, X, method="mc", seed="x"),
        ARG,
        TypeError,
        ("seed", "'x'", "integer >= 0"),
    ),
    (
        "fisher seed=-1",
        lambda m, r, F: fl.fisher(m, GOOD, X, method="mc", seed=-1),
        OPT,
        ValueError,
        ("seed", "-1", ">= 0"),
    ),
    (
        "fisher seed=1.5",
        lambda m, r, F: fl.fisher(m, GOOD, X, method="mc", seed=1.5),
        ARG,
        TypeError,
        ("seed", "1.5", "integer"),
    ),
    (
        "fisher empty params",
        lambda m, r, F: fl.fisher(m, {}, X),
        PAR,
        ValueError,
        ("params", "{}", "real numbers"),
    ),
    (
        "score None params",
        lambda m, r, F: fl.score(m, None, Y, X),
        ARG,
        TypeError,
        ("params is None", "real numbers"),
    ),
    (
        "empirical reduction",
        lambda m, r, F: fl.empirical_fisher(m, GOOD, Y, X, reduction="avg"),
        OPT,
        ValueError,
        ("reduction", "'avg'", "'sum', 'mean'"),
    ),
    (
        "observed reduction",
        lambda m, r, F: fl.observed_information(m, GOOD, Y, X, reduction="avg"),
        OPT,
        ValueError,
        ("reduction", "'avg'", "'sum', 'mean'"),
    ),
    ("conf_int 1.5", lambda m, r, F: r.conf_int(1.5), OPT, ValueError, ("level", "1.5", "(0, 1)")),
    ("conf_int 0", lambda m, r, F: r.conf_int(0), OPT, ValueError, ("level", "0.0", "(0, 1)")),
    ("conf_int 1", lambda m, r, F: r.conf_int(1), OPT, ValueError, ("level", "1.0", "(0, 1)")),
    ("conf_int -0.1", lambda m, r, F: r.conf_int(-0.1), OPT, ValueError, ("level", "-0.1", "(0, 1)")),
    ("conf_int nan", lambda m, r, F: r.conf_int(float("nan")), OPT, ValueError, ("level", "nan", "(0, 1)")),
    ("conf_int '0.9'", lambda m, r, F: r.conf_int("0.9"), ARG, TypeError, ("level", "'0.9'", "(0, 1)")),
    ("conf_int True", lambda m, r, F: r.conf_int(True), ARG, TypeError, ("level", "True", "(0, 1)")),
    (
        "conf_int profile 1.2",
        lambda m, r, F: r.conf_int(1.2, method="profile"),
        OPT,
        ValueError,
        ("level", "1.2", "(0, 1)"),
    ),
    (
        "conf_int kind",
        lambda m, r, F: r.conf_int(0.9, kind="bogus"),
        OPT,
        ValueError,
        ("kind", "'bogus'", "'observed'", "'sandwich'"),
    ),
    (
        "conf_int method",
        lambda m, r, F: r.conf_int(0.9, method="bogus"),
        OPT,
        ValueError,
        ("method", "'bogus'", "'wald', 'profile'"),
    ),
    ("summary level", lambda m, r, F: r.summary(level=2), OPT, ValueError, ("level", "2.0", "(0, 1)")),
    (
        "summary kind",
        lambda m, r, F: r.summary(kind="bogus"),
        OPT,
        ValueError,
        ("kind", "'bogus'", "'observed'"),
    ),
    ("to_pandas level", lambda m, r, F: r.to_pandas(level=-1), OPT, ValueError, ("level", "-1.0", "(0, 1)")),
    (
        "cov kind",
        lambda m, r, F: r.cov("bogus"),
        OPT,
        ValueError,
        ("kind", "'bogus'", "'observed'", "'sandwich'"),
    ),
    ("cov scale", lambda m, r, F: r.cov(scale="bogus"), OPT, ValueError, ("scale", "'bogus'", "'user'")),
    ("se kind", lambda m, r, F: r.se("bogus"), OPT, ValueError, ("kind", "'bogus'", "'expected'")),
    (
        "information kind",
        lambda m, r, F: r.information("bogus"),
        OPT,
        ValueError,
        ("kind", "'bogus'", "'observed'"),
    ),
    (
        "information sandwich",
        lambda m, r, F: r.information("sandwich"),
        OPT,
        ValueError,
        ("kind='sandwich'", "cov('sandwich')", "'observed', 'expected', 'empirical'"),
    ),
    (
        "derived kind",
        lambda m, r, F: r.derived(lambda th: th["a"], kind="bogus"),
        OPT,
        ValueError,
        ("kind", "'bogus'", "'observed'"),
    ),
    ("derived not callable", lambda m, r, F: r.derived(3), ARG, TypeError, ("fn", "int", "function")),
    (
        "rename count",
        lambda m, r, F: r.rename(["x"]),
        PAR,
        ValueError,
        ("rename", "3 distinct names", "['x']"),
    ),
    (
        "laplace sample n",
        lambda m, r, F: r.laplace().sample(0),
        OPT,
        ValueError,
        ("n must be", "got 0", ">= 1"),
    ),
    ("laplace sample seed", lambda m, r, F: r.laplace().sample(2, seed="x"), ARG, TypeError, ("seed", "'x'")),
    (
        "check alpha",
        lambda m, r, F: fl.check(m, GOOD, Y, X, alpha=2),
        OPT,
        ValueError,
        ("alpha", "2.0", "(0, 1)"),
    ),
    ("check alpha str", lambda m, r, F: fl.check(m, GOOD, Y, X, alpha="a"), ARG, TypeError, ("alpha", "'a'")),
    (
        "check variant",
        lambda m, r, F: fl.check(m, GOOD, Y, X, variant="x"),
        OPT,
        ValueError,
        ("variant", "'x'", "'white', 'opg'"),
    ),
    (
        "F + G names",
        lambda m, r, F: F + fl.InfoMatrix(np.eye(3), ["a", "b", "z"]),
        PAR,
        ValueError,
        ("different parameters", "only in the first: ['s']", "only in the second: ['z']"),
    ),
    (
        "F + G size",
        lambda m, r, F: F + fl.InfoMatrix(np.eye(2), ["a", "b"]),
        PAR,
        ValueError,
        ("different parameters", "['a', 'b']", "only in the first: ['s']"),
    ),
    ("F + 1", lambda m, r, F: F + 1, ARG, TypeError, ("InfoMatrix", "int")),
    ("F + array", lambda m, r, F: F + np.eye(3), ARG, TypeError, ("InfoMatrix", "ndarray")),
    ("array + F", lambda m, r, F: np.eye(3) + F, ARG, TypeError, ("InfoMatrix", "ndarray")),
    ("F + Covariance", lambda m, r, F: F + F.cov(), ARG, TypeError, ("InfoMatrix", "Covariance")),
    (
        "marginalize unknown",
        lambda m, r, F: F.marginalize(["nope"]),
        PAR,
        ValueError,
        ("'nope'", "known: ['a', 'b', 's']"),
    ),
    ("fix unknown", lambda m, r, F: F.fix(["nope"]), PAR, ValueError, ("'nope'", "known: ['a', 'b', 's']")),
    ("marginalize empty", lambda m, r, F: F.marginalize([]), PAR, ValueError, ("at least one", "known")),
    ("marginalize repeated", lambda m, r, F: F.marginalize(["a", "a"]), PAR, ValueError, ("repeat", "['a']")),
    ("fix repeated", lambda m, r, F: F.fix(["b", "b"]), PAR, ValueError, ("repeat", "['b']")),
    (
        "fix all",
        lambda m, r, F: F.fix(["a", "b", "s"]),
        PAR,
        ValueError,
        ("every parameter", "['a', 'b', 's']"),
    ),
    ("marginalize not names", lambda m, r, F: F.marginalize(3), ARG, TypeError, ("parameter name", "int")),
    ("covariance index", lambda m, r, F: F.cov().index(["zz"]), PAR, ValueError, ("'zz'", "known")),
    ("cov pinv", lambda m, r, F: F.cov(pinv="yes"), ARG, TypeError, ("pinv", "'yes'", "True or False")),
    (
        "InfoMatrix shape",
        lambda m, r, F: fl.InfoMatrix(np.ones((2, 3)), ["a", "b"]),
        DATA,
        ValueError,
        ("square", "(2, 3)"),
    ),
    (
        "InfoMatrix names",
        lambda m, r, F: fl.InfoMatrix(np.eye(2), ["a"]),
        PAR,
        ValueError,
        ("1 names ['a']", "2x2", "one name per row"),
    ),
    (
        "InfoMatrix nan",
        lambda m, r, F: fl.InfoMatrix([[1.0, np.nan], [np.nan, 1.0]], ["a", "b"]),
        DATA,
        ValueError,
        ("[a, b]", "nan", "finite"),
    ),
    (
        "InfoMatrix complex",
        lambda m, r, F: fl.InfoMatrix(np.eye(2) * (1 + 1j), ["a", "b"]),
        ARG,
        TypeError,
        ("real numbers", "complex128"),
    ),
    (
        "hessian non-scalar",
        lambda m, r, F: fl.hessian(lambda th: th["a"] * jnp.ones(3), {"a": 1.0}),
        ARG,
        TypeError,
        ("f must return a real scalar", "shape (3,)", "jnp.sum"),
    ),
    (
        "hessian shape (1,)",
        lambda m, r, F: fl.hessian(lambda th: th["a"] ** 2 * jnp.ones(1), {"a": 1.0}),
        ARG,
        TypeError,
        ("real scalar", "shape (1,)"),
    ),
    (
        "hessian complex",
        lambda m, r, F: fl.hessian(lambda th: th["a"] * 1j, {"a": 1.0}),
        ARG,
        TypeError,
        ("real scalar", "complex"),
    ),
    (
        "hessian not callable",
        lambda m, r, F: fl.hessian(3, {"a": 1.0}),
        ARG,
        TypeError,
        ("f must be a function", "int"),
    ),
    (
        "hessian untraceable",
        lambda m, r, F: fl.hessian(lambda th: float(th["a"]) ** 2, {"a": 1.0}),
        ARG,
        TypeError,
        ("traced by JAX", 'method="numeric"'),
    ),
    (
        "hessian step autodiff",
        lambda m, r, F: fl.hessian(lambda th: th["a"] ** 2, {"a": 1.0}, step=0.1),
        OPT,
        ValueError,
        ("step", 'method="numeric" only'),
    ),
    (
        "hessian step unknown",
        lambda m, r, F: fl.hessian(lambda th: th["a"] ** 2, {"a": 1.0}, method="numeric", step={"zz": 0.1}),
        PAR,
        ValueError,
        ("step", "['zz']", "known: ['a']"),
    ),
    (
        "hessian step str",
        lambda m, r, F: fl.hessian(lambda th: th["a"] ** 2, {"a": 1.0}, method="numeric", step="x"),
        ARG,
        TypeError,
        ("step", "'x'", "real number"),
    ),
]
for _name, _call in [
    ("loglik", lambda m: fl.loglik(m, GOOD, Y, X)),
    ("score", lambda m: fl.score(m, GOOD, Y, X)),
    ("fisher", lambda m: fl.fisher(m, GOOD, X)),
    ("empirical_fisher", lambda m: fl.empirical_fisher(m, GOOD, Y, X)),
    ("observed_information", lambda m: fl.observed_information(m, GOOD, Y, X)),
    ("check", lambda m: fl.check(m, GOOD, Y, X)),
]:
    CASES.append(
        (
            f"{_name} of a function",
            lambda m, r, F, c=_call: c(lambda th, x: fl.dist.Normal(th["a"], 1.0)),
            ARG,
            TypeError,
            (f"{_name}: model must be an fl.Model", "function", "fl.Model(fn)"),
        )
    )
    CASES.append(
        (
            f"{_name} of None",
            lambda m, r, F, c=_call: c(None),
            ARG,
            TypeError,
            (f"{_name}: model must be an fl.Model", "NoneType", "fl.Model(fn)"),
        )
    )


@pytest.mark.parametrize(
    ("call", "cls", "base", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_argument(model, res, F, call, cls, base, fragments) -> None:
    _raises(lambda: call(model, res, F), cls, base, *fragments)


def test_fit_of_a_function_names_the_model_argument() -> None:
    with pytest.raises(TypeError) as info:
        fl.fit(lambda th, x: fl.dist.Normal(th["a"], 1.0), Y, init={"a": 0.0})  # type: ignore[arg-type]
    assert isinstance(info.value, fl.FisherlabArgumentError)
    assert "fit: model must be an fl.Model" in str(info.value)


def test_good_arguments_of_the_same_kinds_are_accepted(res, F) -> None:
    # the validators accept every real number type where a number is asked for
    a = res.conf_int(np.float32(0.9))
    b = res.conf_int(0.9)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-7)  # 0.9 as float32 is 0.8999999762
    np.testing.assert_allclose(
        fl.fisher(_linear(), GOOD, X, n=np.int64(3)).matrix,
        3 * fl.fisher(_linear(), GOOD, X).matrix,
        rtol=1e-15,
    )
    assert F.marginalize("a").names == ["a"]  # one name as a string
    assert F.fix([]).matrix.tolist() == F.matrix.tolist()  # fixing nothing
    np.testing.assert_array_equal(fl.InfoMatrix(np.eye(2), ["a", "b"]).index(["b", "a"]), [1, 0])


# =========================================================================== the loop: every public function

BAD_MODELS = [None, "model", 3, lambda th, x: fl.dist.Normal(th["a"], 1.0)]
BAD_PARAMS: list[Any] = [
    {},
    None,
    {**GOOD, "a": 1 + 2j},
    {**GOOD, "a": np.array([1.0, 2.0 + 1j])},
    {**GOOD, "a": "x"},
    {**GOOD, "a": None},
    {**GOOD, "a": True},
    {**GOOD, "s": np.nan},
    {**GOOD, "s": -1.0},
    {"b": 1.0, "s": 1.0},  # 'a' missing: the model function's KeyError
]
BAD_Y: list[Any] = [
    Y + 1j,
    np.where(np.arange(X.size) == 3, np.nan, Y),
    Y[:-1],
    np.array(["a"] * X.size),
    3.0,
    [[1.0], [1.0, 2.0]],
]
BAD_X: list[Any] = [X + 1j, np.where(np.arange(X.size) == 5, np.inf, X), X[:-2], np.array(["x"] * X.size)]


def _loop_cases() -> list[tuple[str, Callable[[fl.Model, fl.FitResult, fl.InfoMatrix], Any]]]:
    cases: list[tuple[str, Callable[..., Any]]] = []
    data_functions = {
        "loglik": lambda m, p, y, x, **k: fl.loglik(m, p, y, x, **k),
        "score": lambda m, p, y, x, **k: fl.score(m, p, y, x, **k),
        "empirical_fisher": lambda m, p, y, x, **k: fl.empirical_fisher(m, p, y, x, **k),
        "observed_information": lambda m, p, y, x, **k: fl.observed_information(m, p, y, x, **k),
        "check": lambda m, p, y, x, **k: fl.check(m, p, y, x, **k),
        "fit": lambda m, p, y, x, **k: fl.fit(m, y, x, init=p, **k),
    }
    options: dict[str, list[dict[str, Any]]] = {
        "loglik": [],
        "score": [],
        "empirical_fisher": [{"reduction": "avg"}, {"reduction": None}, {"reduction": 1}],
        "observed_information": [{"reduction": "avg"}, {"reduction": "MEAN"}],
        "check": [
            {"alpha": 0.0},
            {"alpha": float("nan")},
            {"alpha": "x"},
            {"variant": "bogus"},
            {"fisher_method": "bogus"},
        ],
        "fit": [{"method": "sgd"}, {"prior": 3}, {"prior": {"a": 1.0}}],
    }
    for name, fn in data_functions.items():
        for i, m in enumerate(BAD_MODELS):
            if name != "fit":  # fit's model check is the lead's (test_fit_of_a_function_...)
                cases.append((f"{name} model{i}", lambda model, r, F, fn=fn, m=m: fn(m, GOOD, Y, X)))
        for i, p in enumerate(BAD_PARAMS):
            cases.append((f"{name} params{i}", lambda model, r, F, fn=fn, p=p: fn(model, p, Y, X)))
        for i, y in enumerate(BAD_Y):
            cases.append((f"{name} y{i}", lambda model, r, F, fn=fn, y=y: fn(model, GOOD, y, X)))
        for i, x in enumerate(BAD_X):
            cases.append((f"{name} x{i}", lambda model, r, F, fn=fn, x=x: fn(model, GOOD, Y, x)))
        for i, kw in enumerate(options[name]):
            cases.append((f"{name} option{i}", lambda model, r, F, fn=fn, kw=kw: fn(model, GOOD, Y, X, **kw)))
    fisher_bad: list[dict[str, Any]] = [
        {"method": "bogus"},
        {"method": None},
        {"n": 0},
        {"n": 2.5},
        {"n": "3"},
        {"n": False},
        {"num_samples": 1, "method": "mc"},
        {"num_samples": 10.0, "method": "mc"},
        {"seed": "x", "method": "mc"},
        {"seed": -3, "method": "mc"},
        {"seed": None, "method": "mc"},
    ]
    for i, m in enumerate(BAD_MODELS):
        cases.append((f"fisher model{i}", lambda model, r, F, m=m: fl.fisher(m, GOOD, X)))
    for i, p in enumerate(BAD_PARAMS):
        cases.append((f"fisher params{i}", lambda model, r, F, p=p: fl.fisher(model, p, X)))
    for i, x in enumerate(BAD_X):
        if x.shape[0] == X.shape[0]:  # a shorter x is just another design for fisher
            cases.append((f"fisher x{i}", lambda model, r, F, x=x: fl.fisher(model, GOOD, x)))
    for i, kw in enumerate(fisher_bad):
        cases.append((f"fisher option{i}", lambda model, r, F, kw=kw: fl.fisher(model, GOOD, X, **kw)))
    for i, p in enumerate([{}, None, {"a": 1j}, {"a": "x"}, {"a": np.inf}, {"a": False}]):
        cases.append((f"hessian params{i}", lambda model, r, F, p=p: fl.hessian(lambda th: th["a"] ** 2, p)))
    for i, f in enumerate([None, 3, lambda th: jnp.ones(2) * th["a"], lambda th: jnp.log(th["a"] - 2.0)]):
        cases.append((f"hessian f{i}", lambda model, r, F, f=f: fl.hessian(f, {"a": 1.0})))
    cases.append(
        ("hessian method", lambda model, r, F: fl.hessian(lambda th: th["a"] ** 2, {"a": 1.0}, method="x"))
    )
    result_calls: list[tuple[str, Callable[[fl.FitResult], Any]]] = [
        ("cov kind", lambda r: r.cov("hessian")),
        ("cov kind None", lambda r: r.cov(None)),
        ("cov scale", lambda r: r.cov(scale="log")),
        ("se kind", lambda r: r.se(3)),
        ("information kind", lambda r: r.information("sandwich")),
        ("conf_int level", lambda r: r.conf_int(95)),
        ("conf_int level str", lambda r: r.conf_int("95%")),
        ("conf_int level array", lambda r: r.conf_int(np.array([0.9, 0.95]))),
        ("conf_int kind", lambda r: r.conf_int(0.9, "sandwhich")),
        ("summary level", lambda r: r.summary(level=float("inf"))),
        ("to_pandas kind", lambda r: r.to_pandas("x")),
        ("derived undefined", lambda r: r.derived(lambda th: jnp.log(-th["s"]))),
        ("derived gradient", lambda r: r.derived(lambda th: jnp.sqrt(th["a"] - r.params["a"]))),
        ("derived str", lambda r: r.derived(lambda th: "x")),
        ("derived complex", lambda r: r.derived(lambda th: th["a"] * 1j)),
        ("derived not callable", lambda r: r.derived("a")),
        ("rename", lambda r: r.rename("abc")),
        ("laplace sample", lambda r: r.laplace().sample(-1)),
        ("laplace evidence", lambda r: r.laplace().log_evidence),
    ]
    for label, call in result_calls:
        cases.append((f"FitResult {label}", lambda model, r, F, call=call: call(r)))
    matrix_calls: list[tuple[str, Callable[[fl.InfoMatrix], Any]]] = [
        ("nan * F", lambda F: float("nan") * F),
        ("-1 * F", lambda F: -1 * F),
        ("F * inf", lambda F: F * np.inf),
        ("True * F", lambda F: True * F),
        ("complex * F", lambda F: (1 + 0j) * F),
        ("array * F", lambda F: F * np.array([1.0, 2.0])),
        ("F * F", lambda F: F * F),
        ("F / 0", lambda F: F / 0),
        ("F / -2", lambda F: F / -2.0),
        ("1 / F", lambda F: 1 / F),
        ("F - F", lambda F: F - F),
        ("2 - F", lambda F: 2 - F),
        ("-F", lambda F: -F),
        ("F + 0.5", lambda F: F + 0.5),
        ("marginalize", lambda F: F.marginalize(["a", "nope"])),
        ("fix", lambda F: F.fix("nope")),
        ("fix None", lambda F: F.fix(None)),
        ("index", lambda F: F.index([0])),
        ("cov pinv", lambda F: F.cov(pinv=None)),
        ("Covariance index", lambda F: F.cov().index(["nope"])),
        ("zero cov", lambda F: (0 * F).cov()),
        ("InfoMatrix names str", lambda F: fl.InfoMatrix(np.eye(2), "ab")),
        ("InfoMatrix empty", lambda F: fl.InfoMatrix(np.zeros((0, 0)), [])),
        ("InfoMatrix inf", lambda F: fl.InfoMatrix([[np.inf]], ["a"])),
        ("InfoMatrix strings", lambda F: fl.InfoMatrix([["a"]], ["a"])),
        ("InfoMatrix error shape", lambda F: fl.InfoMatrix(np.eye(2), ["a", "b"], error=np.ones(3))),
        ("LabelledMatrix bool", lambda F: fl.LabelledMatrix(np.eye(2, dtype=bool), ["a", "b"])),
        ("Covariance negative variance", lambda F: fl.Covariance([[-1.0]], ["a"]).se()),
        ("Covariance zero variance corr", lambda F: fl.Covariance(np.diag([0.0, 1.0]), ["a", "b"]).corr()),
    ]
    for label, call in matrix_calls:
        cases.append((f"InfoMatrix {label}", lambda model, r, F, call=call: call(F)))
    model_calls: list[tuple[str, Callable[[], Any]]] = [
        ("Model fn", lambda: fl.Model(3)),
        ("Model derivatives", lambda: fl.Model(lambda th, x: None, derivatives="symbolic")),
        ("Model constraints", lambda: fl.Model(lambda th, x: None, constraints={"s": "pos"})),
        ("Model constraints type", lambda: fl.Model(lambda th, x: None, constraints=["s"])),
        ("Model executor", lambda: fl.Model(lambda th, x: None, executor="gpu")),
        ("Model workers", lambda: fl.Model(lambda th, x: None, workers=0)),
        ("from_loglik fn", lambda: fl.Model.from_loglik(None)),
        (
            "from_loglik returns None",
            lambda: fl.loglik(fl.Model.from_loglik(lambda th, y, x: None), {"a": 1.0}, Y),
        ),
        (
            "from_loglik fisher",
            lambda: fl.fisher(fl.Model.from_loglik(lambda th, y, x: -(y**2) * th["a"]), {"a": 1.0}),
        ),
        ("not a distribution", lambda: fl.loglik(fl.Model(lambda th, x: th["a"] * x), {"a": 1.0}, Y, X)),
        ("dist family_fisher unregistered", lambda: fl.dist.family_fisher(fl.dist.Uniform(0.0, 1.0))),
        ("dist register_fisher not a class", lambda: fl.dist.register_fisher(3)),
        ("glm family", lambda: fl.glm("y ~ x", _FRAME, family="tweedie")),
        ("glm link", lambda: fl.glm("y ~ x", _FRAME, family="poisson", link="bogus")),
        ("glm data", lambda: fl.glm("y ~ x", [1, 2, 3], family="poisson")),
        ("glm column", lambda: fl.glm("y ~ nope", _FRAME, family="poisson")),
        ("glm formula", lambda: fl.glm("y ~ (x", _FRAME, family="poisson")),
        ("glm code", lambda: fl.glm("y ~ I(__import__('os'))", _FRAME, family="poisson")),
        ("glm dispersion", lambda: fl.glm("y ~ x", _FRAME, family="poisson", dispersion="bogus")),
        ("glm exposure", lambda: fl.glm("y ~ x", _FRAME, family="poisson", exposure=-(_FRAME["x"] ** 2) - 1)),
        ("curvature kind", lambda: fl.curvature(_POISSON, {"rate": 1.0}, Y, kind="fisherr")),
        ("curvature structure", lambda: fl.curvature(_POISSON, {"rate": 1.0}, Y, structure="sparse")),
        ("curvature rank", lambda: fl.curvature(_POISSON, {"rate": 1.0}, Y, structure="lowrank", rank=0)),
        (
            "curvature samples",
            lambda: fl.curvature(_POISSON, {"rate": 1.0}, Y, kind="mc_fisher", num_samples=0),
        ),
        ("curvature params", lambda: fl.curvature(_POISSON, {"rate": float("nan")}, Y)),
        ("curvature y", lambda: fl.curvature(_POISSON, {"rate": 1.0}, -np.abs(Y) - 1.0)),
        ("curvature model", lambda: fl.curvature(3, {"rate": 1.0}, Y)),
        (
            "curvature loglik model",
            lambda: fl.curvature(fl.Model.from_loglik(lambda th, y, x: -y), {"a": 1.0}, Y),
        ),
        ("curvature mv shape", lambda: fl.curvature(_POISSON, {"rate": 1.0}, Y).mv({"rate": np.ones(2)})),
        (
            "curvature damping",
            lambda: fl.curvature(_POISSON, {"rate": 1.0}, Y).solve({"rate": 1.0}, damping=-1),
        ),
        ("curvature eigh", lambda: fl.curvature(_POISSON, {"rate": 1.0}, Y).eigh(2)),
        (
            "curvature estimate",
            lambda: fl.Estimate(1.0, 0.0).value + fl.curvature(_POISSON, {"rate": 0.0}, Y).logdet(),
        ),
        (
            "Curvature class",
            lambda: fl.Curvature(
                _POISSON,
                {"rate": 1.0},
                Y,
                None,
                kind="x",
                structure="y",
                reduction="sum",
                num_samples=1,
                seed=0,
                rank=1,
                force=False,
            ).mv(1),
        ),
    ]
    for label, call in model_calls:
        cases.append((label, lambda model, r, F, call=call: call()))
    return cases


_FRAME = pd.DataFrame({"y": [0.0, 1.0, 3.0, 2.0, 4.0], "x": [0.1, 0.5, 0.9, 1.3, 1.7]})
_POISSON = fl.Model(lambda th, x: fl.dist.Poisson(th["rate"]))
LOOP = _loop_cases()


@pytest.mark.parametrize("call", [c[1] for c in LOOP], ids=[c[0] for c in LOOP])
def test_every_public_function_raises_a_fisherlab_error(model, res, F, call) -> None:
    with pytest.raises(Exception) as info:  # the point is the class, asserted below
        call(model, res, F)
    assert isinstance(info.value, fl.FisherlabError), f"{type(info.value).__name__}: {info.value}"
    assert str(info.value).strip(), "an error without a message"


def test_loop_covers_the_public_surface() -> None:
    covered = " ".join(label for label, _ in LOOP)
    for name in [
        "loglik",
        "score",
        "fisher",
        "empirical_fisher",
        "observed_information",
        "check",
        "fit",
        "hessian",
        "FitResult",
        "InfoMatrix",
        "Model",
        "from_loglik",
    ]:
        assert name in covered
    public_functions = {
        n for n in fl.__all__ if callable(getattr(fl, n)) and not isinstance(getattr(fl, n), type)
    }
    assert public_functions - {"param_names"} <= set(covered.replace(":", " ").split()), public_functions


# =========================================================================== 2. the delta method


def test_derived_undefined_at_the_estimate_names_function_and_estimate(res) -> None:
    def log_of_minus_b(th: Any) -> jax.Array:
        return jnp.log(-th["b"])

    exc = _raises(
        lambda: res.derived(log_of_minus_b), PAR, ValueError, "log_of_minus_b", "nan", "at the estimate", "b="
    )
    assert f"b={float(res.params['b']):.6g}" in str(exc)
    # an array output: the first undefined element is named
    _raises(
        lambda: res.derived(lambda th: jnp.stack([th["a"], jnp.log(-th["s"])])),
        PAR,
        ValueError,
        "output [1]",
        "nan",
    )


def test_derived_non_finite_gradient(res) -> None:
    a_hat = res.params["a"]
    _raises(
        lambda: res.derived(lambda th: jnp.sqrt(th["a"] - a_hat)),
        PAR,
        ValueError,
        "gradient",
        "with respect to a",
        "not differentiable",
    )


def test_derived_still_right_where_defined(res) -> None:
    # closed form of the delta method for a ratio: grad = (1/b, -a/b^2)
    d = res.derived(lambda th: th["a"] / th["b"])
    a, b = float(res.params["a"]), float(res.params["b"])
    g = np.array([1.0 / b, -a / b**2, 0.0])
    assert d.estimate == pytest.approx(a / b, rel=1e-14)
    assert d.se == pytest.approx(math.sqrt(g @ res.cov().matrix @ g), rel=1e-12)


# =========================================================================== 3. information algebra


def test_scalar_multiplication_keeps_an_information_matrix(F) -> None:
    np.testing.assert_array_equal((2.5 * F).matrix, 2.5 * F.matrix)
    np.testing.assert_array_equal((F * np.float32(2.0)).matrix, 2.0 * F.matrix)
    np.testing.assert_array_equal((np.float64(3.0) * F).matrix, 3.0 * F.matrix)
    assert isinstance(np.float64(3.0) * F, fl.InfoMatrix)
    np.testing.assert_allclose((F / 4).matrix, F.matrix / 4, rtol=1e-15)
    zero = 0 * F  # a valid (positive semidefinite) information: nothing is known
    np.testing.assert_array_equal(zero.matrix, np.zeros((3, 3)))
    _raises(zero.cov, fl.SingularInformationError, ArithmeticError, "not identified")
    for bad, fragment in [(-1, "-1.0"), (float("nan"), "nan"), (float("inf"), "inf"), (-1e-300, "-1e-300")]:
        _raises(lambda bad=bad: bad * F, OPT, ValueError, "scale factor", fragment, "finite real number >= 0")
    for bad in [True, 1 + 0j, np.ones(3), "2"]:
        _raises(lambda bad=bad: F * bad, ARG, TypeError, "scale factor", "finite real number >= 0")
    _raises(lambda: F / 0, OPT, ValueError, "divisor", "0.0", "> 0")
    _raises(lambda: F - F, ARG, TypeError, "do not subtract", "F.matrix - G.matrix")
    _raises(lambda: -F, ARG, TypeError, "-F.matrix")
    _raises(lambda: 1 / F, ARG, TypeError, "F.cov()")


def test_sum_of_information_matrices(F) -> None:
    G = fl.InfoMatrix(np.diag([1.0, 2.0, 3.0]), ["s", "b", "a"])
    total = sum([F, G])
    assert isinstance(total, fl.InfoMatrix)
    np.testing.assert_allclose(total.matrix, F.matrix + np.diag([3.0, 2.0, 1.0]), rtol=1e-15)


# =========================================================================== 4. complex input


def test_complex_parameters_are_refused(model) -> None:
    _raises(
        lambda: fl.score(model, {**GOOD, "a": 1 + 2j}, Y, X),
        ARG,
        TypeError,
        "parameter a is complex",
        "(1+2j)",
        "real parameters",
    )
    vector = fl.Model(lambda th, x: fl.dist.Normal(th["beta"][0] + th["beta"][1] * x, 1.0))
    _raises(
        lambda: fl.fisher(vector, {"beta": np.array([1.0, 2.0 - 3j])}, X),
        ARG,
        TypeError,
        "parameter beta[1] is complex",
        "(2-3j)",
    )
    _raises(lambda: fl.hessian(lambda th: th["a"] ** 2, {"a": np.complex64(1)}), ARG, TypeError, "complex")


def test_complex_data_are_refused(model) -> None:
    y = Y.astype(complex)
    y[4] += 0.5j
    _raises(lambda: fl.loglik(model, GOOD, y, X), DATA, ValueError, "y row 4 is complex", "0.5j", "real data")
    dose = fl.Model(lambda th, x: fl.dist.Normal(th["a"] + th["b"] * x["dose"], th["s"]))
    _raises(
        lambda: fl.score(dose, GOOD, Y, {"dose": X + 0j}),
        DATA,
        ValueError,
        "x['dose'] row 0 is complex",
        "real data",
    )


def test_integer_parameters_are_floats_and_bool_parameters_are_refused(model) -> None:
    ints = {"a": 0, "b": 1, "s": 2}
    floats = {"a": 0.0, "b": 1.0, "s": 2.0}
    np.testing.assert_array_equal(fl.score(model, ints, Y, X), fl.score(model, floats, Y, X))
    _raises(
        lambda: fl.score(model, {**floats, "a": True}, Y, X), ARG, TypeError, "parameter a is a bool", "True"
    )
    _raises(lambda: fl.score(model, {**floats, "a": None}, Y, X), ARG, TypeError, "parameter a is None")


def test_blame_only_the_users_function_for_its_own_failures() -> None:
    missing = fl.Model(lambda th, x: fl.dist.Normal(th["mu"], 1.0))
    _raises(
        lambda: fl.score(missing, {"m": 0.0}, Y),
        fl.ModelError,
        ValueError,
        "model function",
        "KeyError",
        "'mu'",
    )

    class Picky(nd.Distribution):
        """A distribution whose log_prob fails on any y (a failure after the model function returned)."""

        support = constraints.real

        def __init__(self, loc: Any) -> None:
            self.loc = loc
            super().__init__(batch_shape=jnp.shape(loc))

        def log_prob(self, value: Any) -> Any:
            raise TypeError("indices must be of integer type")

    picky = fl.Model(lambda th, x: Picky(th["mu"] * jnp.ones(1)), derivatives="autodiff")
    exc = _raises(
        lambda: fl.loglik(picky, {"mu": 0.0}, Y, X), fl.ModelError, ValueError, "after the model function"
    )
    assert "write it with jax.numpy" not in str(exc)


# =========================================================================== 5. dtypes


def _recording_model(seen: list[tuple[str, str]]) -> fl.Model:
    def fn(th: Any, x: Any) -> Any:
        seen.append((str(th["a"].dtype), str(x.dtype)))
        return fl.dist.Normal(th["a"] + th["b"] * x, th["s"])

    return fl.Model(fn)


def test_float32_parameters_and_data_compute_in_float32() -> None:
    p64 = {"a": 0.25, "b": 1.5, "s": 0.75}
    p32 = {k: np.float32(v) for k, v in p64.items()}
    x32, y32 = X.astype(np.float32), Y.astype(np.float32)
    for name, call in [
        ("loglik", lambda m, p, y, x: fl.loglik(m, p, y, x)),
        ("score", lambda m, p, y, x: fl.score(m, p, y, x)),
        ("fisher", lambda m, p, y, x: fl.fisher(m, p, x).matrix),
        ("empirical", lambda m, p, y, x: fl.empirical_fisher(m, p, y, x).matrix),
        ("observed", lambda m, p, y, x: fl.observed_information(m, p, y, x).matrix),
    ]:
        seen: list[tuple[str, str]] = []
        out32 = call(_recording_model(seen), p32, y32, x32)
        assert seen and set(seen) == {("float32", "float32")}, (name, seen)
        if name in ("loglik", "score"):
            assert out32.dtype == np.float32, name  # raw arrays come back in the computation's dtype
        else:
            assert out32.dtype == np.float64, name  # labelled matrices are float64 (copies of float32 work)
        seen64: list[tuple[str, str]] = []
        out64 = call(_recording_model(seen64), p64, Y, X)
        assert set(seen64) == {("float64", "float64")}
        np.testing.assert_allclose(out32, out64, rtol=FLOAT32_RTOL, atol=FLOAT32_RTOL * np.max(np.abs(out64)))
    # mixed: float32 parameters with float64 data promote to float64 (JAX's rule)
    seen = []
    ll = fl.loglik(_recording_model(seen), p32, Y, X)
    assert set(seen) == {("float32", "float64")} and ll.dtype == np.float64


def test_data_dtypes_are_kept() -> None:
    seen: list[str] = []

    def ll(th: Any, y: Any, x: Any) -> Any:
        seen.append(str(y.dtype))
        return -((y - th["mu"]) ** 2)

    for y, dtype in [
        (np.array([0, 1, 2]), "int64"),
        (np.array([0, 1, 2], dtype=np.uint8), "int64"),
        (np.array([True, False, True]), "int64"),
        (np.array([0.0, 1.0, 2.0], dtype=np.float32), "float32"),
        (np.array([0.0, 1.0, 2.0]), "float64"),
    ]:
        seen.clear()
        m = fl.Model.from_loglik(ll)  # a new model: its kernels are traced (and record) afresh
        np.testing.assert_array_equal(fl.loglik(m, {"mu": 1.0}, y), -((y.astype(float) - 1.0) ** 2))
        assert set(seen) == {dtype}, (y.dtype, seen)


def test_integer_covariates_index_parameters() -> None:
    # a group effect: x holds integer group labels used as indices (was cast to float64 and failed)
    groups = np.array([0, 1, 2, 1, 0, 2])
    y = np.array([0.1, 1.2, 2.1, 0.8, -0.2, 1.9])
    m = fl.Model(lambda th, x: fl.dist.Normal(th["mu"][x], 1.0))
    mu = np.array([0.0, 1.0, 2.0])
    np.testing.assert_allclose(fl.score(m, {"mu": mu}, y, groups).sum(0), [-0.1, 0.0, 0.0], atol=1e-14)


# =========================================================================== 6. discrete observations


def _multinomial_data(n: int = 300, d: int = 3, k: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    X_ = np.column_stack([np.ones(n), rng.normal(size=(n, d - 1))])
    W = rng.normal(scale=0.8, size=(d, k - 1))
    logits = np.column_stack([np.zeros(n), X_ @ W])
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    return X_, y, W


def _multinomial_logit() -> fl.Model:
    return fl.Model(
        lambda th, x: fl.dist.Categorical(
            logits=jnp.concatenate([jnp.zeros((x.shape[0], 1)), x @ th["W"]], axis=-1)
        )
    )


def test_multinomial_logit_matches_statsmodels() -> None:
    X_, y, W = _multinomial_data()
    m = _multinomial_logit()
    res = fl.fit(m, y, X_, init={"W": np.zeros_like(W)})
    ref = sm.MNLogit(y, X_).fit(method="newton", disp=0, tol=1e-12, maxiter=100)
    np.testing.assert_allclose(res.params["W"], ref.params, rtol=STATSMODELS_RTOL)
    np.testing.assert_allclose(
        np.array(list(res.se().values())).reshape(W.shape), ref.bse, rtol=STATSMODELS_RTOL
    )
    assert res.loglik == pytest.approx(ref.llf, rel=1e-12)
    # float labels that are integral give the same fit
    res_f = fl.fit(m, y.astype(np.float64), X_, init={"W": np.zeros_like(W)})
    np.testing.assert_allclose(res_f.params["W"], res.params["W"], rtol=1e-12)


def test_multinomial_logit_observed_information_against_dense_jax() -> None:
    X_, y, W = _multinomial_data()
    m = _multinomial_logit()

    def total(w: jax.Array) -> jax.Array:  # written by hand: log-softmax, no NumPyro
        logits = jnp.concatenate([jnp.zeros((X_.shape[0], 1)), X_ @ w.reshape(W.shape)], axis=1)
        return jnp.sum(jax.nn.log_softmax(logits)[jnp.arange(y.size), y])

    ref = -np.asarray(jax.hessian(total)(jnp.asarray(W.ravel())))
    for labels in (y, y.astype(np.float64), y.astype(np.int32)):
        J = fl.observed_information(m, {"W": W}, labels, X_)
        np.testing.assert_allclose(J.matrix, ref, rtol=DENSE_RTOL, atol=DENSE_RTOL * np.abs(ref).max())
        np.testing.assert_allclose(
            fl.loglik(m, {"W": W}, labels, X_).sum(), total(jnp.asarray(W.ravel())), rtol=1e-13
        )


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        (1.5, "y at row 7 = 1.5"),
        (4, "y at row 7 = 4"),
        (-1, "y at row 7 = -1"),
        (3.0000001, "y at row 7 = 3.0000001"),
    ],
)
def test_categorical_labels_outside_0_to_k_minus_1_name_the_row(bad: float, fragment: str) -> None:
    X_, y, W = _multinomial_data(n=20)
    labels = y.astype(type(bad))
    labels[7] = bad
    m = _multinomial_logit()
    for call in (fl.loglik, fl.score, fl.observed_information):
        _raises(
            lambda call=call: call(m, {"W": W}, labels, X_), DATA, ValueError, fragment, "outside the support"
        )


def test_categorical_event_labels_as_floats() -> None:
    # one row = two labels (an Independent Categorical): float labels are cast after the check
    m = fl.Model(lambda th, x: fl.dist.Categorical(logits=th["l"]).to_event(1))
    logits = np.array([[0.0, 1.0, -1.0], [0.5, 0.0, 0.2]])
    y = np.array([[0, 2], [1, 1], [2, 0]])
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = log_p[0, y[:, 0]] + log_p[1, y[:, 1]]
    for labels in (y, y.astype(np.float64)):
        np.testing.assert_allclose(fl.loglik(m, {"l": logits}, labels), expected, rtol=1e-14)
    _raises(
        lambda: fl.loglik(m, {"l": logits}, y + 0.5), DATA, ValueError, "y at row 0", "outside the support"
    )


def test_categorical_numeric_backend_takes_integer_and_float_labels() -> None:
    X_, y, W = _multinomial_data(n=40)
    auto = _multinomial_logit()
    numeric = fl.Model(auto.fn, derivatives="numeric")
    ref = fl.loglik(auto, {"W": W}, y, X_)
    for labels in (y, y.astype(np.float64)):
        np.testing.assert_allclose(fl.loglik(numeric, {"W": W}, labels, X_), ref, rtol=1e-13)


def test_discrete_families_take_integer_observations() -> None:
    # Poisson, Binomial, Bernoulli, NegativeBinomial2, Geometric: int y and float y agree
    y = np.array([0, 3, 1, 2, 5, 0, 1])
    x = np.linspace(-1.0, 1.0, y.size)
    for family in [
        lambda eta: fl.dist.Poisson(jnp.exp(eta)),
        lambda eta: fl.dist.Binomial(5, logits=eta),
        lambda eta: fl.dist.NegativeBinomial2(jnp.exp(eta), 2.0),
        lambda eta: fl.dist.Geometric(logits=eta),
    ]:
        m = fl.Model(lambda th, x, family=family: family(th["a"] + th["b"] * x))
        p = {"a": 0.3, "b": -0.2}
        a = fl.observed_information(m, p, y, x).matrix
        b = fl.observed_information(m, p, y.astype(np.float64), x).matrix
        np.testing.assert_allclose(a, b, rtol=1e-14)
    bern = fl.Model(lambda th, x: fl.dist.Bernoulli(logits=th["a"] + th["b"] * x))
    yb = y > 1
    np.testing.assert_array_equal(
        fl.score(bern, {"a": 0.1, "b": 0.2}, yb, x), fl.score(bern, {"a": 0.1, "b": 0.2}, yb.astype(float), x)
    )


# --------------------------------------------------------------------------- every registry family


def _mvn(th: Any) -> nd.Distribution:
    s1, s2, r = th["s"][0], th["s"][1], th["rho"]
    cov = jnp.array([[s1**2, r * s1 * s2], [r * s1 * s2, s2**2]])
    return fl.dist.MultivariateNormal(th["loc"], covariance_matrix=cov)


def _laplace_known_loc(th: Any) -> nd.Distribution:
    return fl.dist.Laplace(1.0, th["scale"])


POS = "positive"
# family -> (build(params) -> distribution, truth, constraints, fitted model if not the same).
# Laplace: the log-likelihood is not twice differentiable in the location (its observed
# information is 0 almost everywhere), so its fit is of the scale with the location known; the
# Fisher checks use both parameters.
FAMILIES: dict[str, tuple[Callable[[Any], nd.Distribution], dict[str, Any], dict[str, str], Any]] = {
    "Normal": (
        lambda th: fl.dist.Normal(th["loc"], th["scale"]),
        {"loc": 1.0, "scale": 2.0},
        {"scale": POS},
        None,
    ),
    "LogNormal": (
        lambda th: fl.dist.LogNormal(th["loc"], th["scale"]),
        {"loc": 0.3, "scale": 0.7},
        {"scale": POS},
        None,
    ),
    "HalfNormal": (lambda th: fl.dist.HalfNormal(th["scale"]), {"scale": 1.5}, {"scale": POS}, None),
    "Laplace": (
        lambda th: fl.dist.Laplace(th["loc"], th["scale"]),
        {"loc": 1.0, "scale": 2.0},
        {"scale": POS},
        (_laplace_known_loc, {"scale": 2.0}),
    ),
    "Cauchy": (
        lambda th: fl.dist.Cauchy(th["loc"], th["scale"]),
        {"loc": 1.0, "scale": 2.0},
        {"scale": POS},
        None,
    ),
    "Logistic": (
        lambda th: fl.dist.Logistic(th["loc"], th["scale"]),
        {"loc": 1.0, "scale": 2.0},
        {"scale": POS},
        None,
    ),
    "Gumbel": (
        lambda th: fl.dist.Gumbel(th["loc"], th["scale"]),
        {"loc": 1.0, "scale": 2.0},
        {"scale": POS},
        None,
    ),
    "StudentT": (
        lambda th: fl.dist.StudentT(th["df"], th["loc"], th["scale"]),
        {"df": 5.0, "loc": 1.0, "scale": 2.0},
        {"df": POS, "scale": POS},
        None,
    ),
    "Exponential": (lambda th: fl.dist.Exponential(th["rate"]), {"rate": 1.5}, {"rate": POS}, None),
    "Gamma": (lambda th: fl.dist.Gamma(th["a"], th["b"]), {"a": 2.5, "b": 1.5}, {"a": POS, "b": POS}, None),
    "InverseGamma": (
        lambda th: fl.dist.InverseGamma(th["a"], th["b"]),
        {"a": 3.0, "b": 2.0},
        {"a": POS, "b": POS},
        None,
    ),
    "Weibull": (
        lambda th: fl.dist.Weibull(th["scale"], th["k"]),
        {"scale": 2.0, "k": 1.5},
        {"scale": POS, "k": POS},
        None,
    ),
    "Beta": (lambda th: fl.dist.Beta(th["a"], th["b"]), {"a": 2.0, "b": 3.0}, {"a": POS, "b": POS}, None),
    "Dirichlet": (lambda th: fl.dist.Dirichlet(th["c"]), {"c": np.array([1.5, 2.0, 3.0])}, {"c": POS}, None),
    "VonMises": (lambda th: fl.dist.VonMises(th["loc"], th["k"]), {"loc": 0.5, "k": 2.0}, {"k": POS}, None),
    "MultivariateNormal": (
        _mvn,
        {"loc": np.array([1.0, -1.0]), "s": np.array([1.0, 2.0]), "rho": 0.5},
        {"s": POS},
        None,
    ),
    "Poisson": (lambda th: fl.dist.Poisson(th["rate"]), {"rate": 3.0}, {"rate": POS}, None),
    "BernoulliProbs": (lambda th: fl.dist.Bernoulli(probs=th["p"]), {"p": 0.3}, {"p": "unit_interval"}, None),
    "BernoulliLogits": (lambda th: fl.dist.Bernoulli(logits=th["l"]), {"l": -0.5}, {}, None),
    "BinomialProbs": (
        lambda th: fl.dist.Binomial(10, probs=th["p"]),
        {"p": 0.3},
        {"p": "unit_interval"},
        None,
    ),
    "BinomialLogits": (lambda th: fl.dist.Binomial(10, logits=th["l"]), {"l": -0.5}, {}, None),
    "GeometricProbs": (lambda th: fl.dist.Geometric(probs=th["p"]), {"p": 0.3}, {"p": "unit_interval"}, None),
    "GeometricLogits": (lambda th: fl.dist.Geometric(logits=th["l"]), {"l": -0.5}, {}, None),
    "CategoricalProbs": (
        lambda th: fl.dist.Categorical(probs=th["p"]),
        {"p": np.array([0.2, 0.3, 0.5])},
        {"p": "simplex"},
        None,
    ),
    "CategoricalLogits": (
        lambda th: fl.dist.Categorical(logits=jnp.concatenate([jnp.zeros(1), th["l"]])),
        {"l": np.array([0.5, -0.3])},
        {},
        None,
    ),
    "NegativeBinomial2": (
        lambda th: fl.dist.NegativeBinomial2(th["mean"], th["c"]),
        {"mean": 3.0, "c": 2.0},
        {"mean": POS, "c": POS},
        None,
    ),
    "InverseGaussian": (
        lambda th: fl.dist.InverseGaussian(th["mean"], th["c"]),
        {"mean": 2.0, "c": 3.0},
        {"mean": POS, "c": POS},
        None,
    ),
}
# In the default suite: Categorical with integer and with float labels (the dtype bug of issue 10;
# the other integer families are checked quickly in test_discrete_families_take_integer_observations).
# Every family (about 100 s of compilation and fitting on two cores) runs with -m slow.
FAST = {"CategoricalLogits"}


def test_every_registered_family_is_in_the_simulation_table() -> None:
    built = {type(build(truth)).__name__ for build, truth, _, _ in FAMILIES.values()}
    registered = {  # the library's own entries, not ones other tests register in this process
        cls.__name__
        for cls in fl.dist.registered_families()
        if cls.__module__.startswith(("numpyro.", "fisherlab."))
    }
    assert registered <= built, registered - built


def _family_params() -> list[Any]:
    out = []
    for name in FAMILIES:
        labels = ["int", "float"] if name.startswith("Categorical") else ["as sampled"]
        for label in labels:
            marks = [] if name in FAST else [pytest.mark.slow]
            out.append(pytest.param(name, label, id=f"{name}-{label}", marks=marks))
    return out


@pytest.mark.parametrize(("name", "labels"), _family_params())
def test_family_fit_to_simulated_data(name: str, labels: str) -> None:
    build, truth, cons, fitted = FAMILIES[name]
    y = np.asarray(build(truth).sample(jax.random.PRNGKey(3), (N,)))
    if labels == "float":
        y = y.astype(np.float64)
    elif labels == "int":
        assert np.issubdtype(y.dtype, np.integer)
    model = fl.Model(lambda th, x: build(th), constraints=cons)
    # expected Fisher: the registry's closed form against Monte-Carlo over y ~ p(.|theta)
    exact = fl.fisher(model, truth, method="exact", n=N)
    assert exact.method == "exact"
    mc = fl.fisher(model, truth, method="mc", num_samples=4000, n=N, seed=1)
    assert mc.error is not None
    assert np.all(np.abs(exact.matrix - mc.matrix) <= MC_SE * mc.error + 1e-12 * np.abs(exact.matrix).max())
    fit_build, fit_truth = (build, truth) if fitted is None else fitted
    fit_model = model if fitted is None else fl.Model(lambda th, x: fit_build(th), constraints=cons)
    res = fl.fit(fit_model, y, init=fit_truth)
    se = np.array(list(res.se().values()))
    flat_truth = np.concatenate([np.ravel(np.asarray(fit_truth[k], dtype=float)) for k in sorted(fit_truth)])
    assert np.all(np.isfinite(se)) and np.all(se > 0)
    assert np.all(np.abs(res.flat_params - flat_truth) <= FIT_SE * se), (res.flat_params, flat_truth, se)
    # the information equality at the estimate: J(theta_hat) / N -> F(theta_hat) / N (law of large
    # numbers; at N = 2000 the diagonals agree within 2% for these seeds, 15% leaves room for
    # the heavy-tailed families without hiding a wrong curvature, which is off by factors)
    observed = fl.observed_information(fit_model, res.params, y)
    expected = fl.fisher(fit_model, res.params, method="exact", n=N)
    ratio = np.diag(observed.matrix) / np.diag(expected.matrix)
    assert np.all(np.abs(ratio - 1.0) <= J_OVER_F_RTOL), ratio
