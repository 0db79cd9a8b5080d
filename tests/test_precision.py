"""Float64 scoped to fisherlab's own calls (:mod:`fisherlab._precision`).

``import fisherlab`` leaves JAX's 64-bit mode as the user set it; every public function and
every public method of the public classes runs with it on for the duration of the call. Here:
a fresh process whose JAX stays 32-bit gets exactly the float64 numbers of this (64-bit)
process and keeps ``jnp.ones(3).dtype == float32`` around every call; every public callable
is wrapped (a new one that forgets the decorator fails :func:`test_every_public_callable_runs_in_float64`);
the stored kernels are keyed by the precision in force.
"""

from __future__ import annotations

import enum
import functools
import importlib
import inspect
import json
import logging
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
import pytest

import fisherlab as fl
from fisherlab import _precision
from fisherlab._precision import float64, float64_methods, is_float64, x64_scope

# The same computations in both processes: the fresh one runs them with JAX left 32-bit, this one
# (64-bit by tests/conftest.py) gives the float64 reference. ``mark()`` records the user's dtype
# after each public call; ``res.cov("sandwich")`` and ``info.cov()`` are computed later, on the
# results (the lazy paths); the numeric model evaluates its distribution in worker threads.
WORKLOAD = """
import jax
import jax.numpy as jnp
import numpy as np
import fisherlab as fl

def run():
    out = {"dtypes": []}
    mark = lambda: out["dtypes"].append(str(jnp.ones(3).dtype))
    mark()
    res = fl.glm("incident ~ temperature", fl.datasets.challenger(), family="binomial")
    mark()
    out["glm_estimates"] = res.flat_params.tolist()
    out["glm_se"] = list(res.se().values())
    out["glm_sandwich"] = res.cov("sandwich").matrix.tolist()
    out["glm_summary"] = str(res.summary())
    mark()
    x = np.linspace(0.0, 1.0, 15)
    y = 1.0 + 2.0 * x + np.sin(np.arange(15.0))
    model = fl.Model(
        lambda th, x: fl.dist.Normal(th["a"] + th["b"] * x, th["sigma"]), constraints={"sigma": "positive"}
    )
    fit = fl.fit(model, y, x, init={"a": 0.0, "b": 0.0, "sigma": 1.0})
    mark()
    out["fit_estimates"] = fit.flat_params.tolist()
    out["fit_se"] = list(fit.se().values())
    info = fl.fisher(model, fit.params, x)
    mark()
    out["fisher_dtype"] = str(info.matrix.dtype)
    out["fisher_cov"] = info.cov().matrix.tolist()
    check = fl.check(model, fit.params, y, x, pvalue="asymptotic")
    mark()
    out["check_pvalues"] = [check.im_test_pvalue, check.score_mean_pvalue]
    numeric = fl.Model(
        lambda th, x: fl.dist.Normal(th["a"] + th["b"] * x, 0.5),
        derivatives="numeric", executor="threads", workers=2,
    )
    out["numeric_threads"] = fl.observed_information(numeric, {"a": 0.3, "b": -0.2}, y, x).matrix.tolist()
    mark()
    out["x64"] = bool(jax.config.jax_enable_x64)
    return out
"""

NUMBERS = (
    "glm_estimates",
    "glm_se",
    "glm_sandwich",
    "fit_estimates",
    "fit_se",
    "fisher_cov",
    "check_pvalues",
    "numeric_threads",
)


def _fresh_env() -> dict[str, str]:
    """This environment without JAX's and fisherlab's settings: a process whose JAX stays 32-bit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "FISHERLAB_", "XLA_"))}
    env["FISHERLAB_NO_CACHE"] = "1"
    return env


@pytest.fixture(scope="module")
def in_x32() -> dict[str, Any]:
    """:data:`WORKLOAD` in a fresh process with JAX's 64-bit mode off (warnings are errors there too)."""
    code = WORKLOAD + "\nimport json\nprint(json.dumps(run()))\n"
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], env=_fresh_env(), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def in_x64() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(WORKLOAD, namespace)
    return namespace["run"]()  # type: ignore[no-any-return]


def test_the_users_jax_stays_32_bit_around_every_call(in_x32: dict[str, Any]) -> None:
    assert in_x32["dtypes"] == ["float32"] * 7
    assert in_x32["x64"] is False
    assert in_x32["fisher_dtype"] == "float64"  # what fisherlab returns is float64 all the same


@pytest.mark.parametrize("key", NUMBERS)
def test_same_numbers_as_in_float64(in_x32: dict[str, Any], in_x64: dict[str, Any], key: str) -> None:
    """Estimates, standard errors, covariances computed later on a result, an InfoMatrix method,
    a check's p-values and numeric derivatives evaluated in worker threads: float64 in both."""
    got, want = np.asarray(in_x32[key]), np.asarray(in_x64[key])
    scale = np.max(np.abs(want))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * scale)


def test_same_summary_as_in_float64(in_x32: dict[str, Any], in_x64: dict[str, Any]) -> None:
    assert in_x32["glm_summary"] == in_x64["glm_summary"]


def test_a_call_inside_a_32_bit_scope_is_float64_and_restores_it() -> None:
    """A user's code running with 64-bit mode off in this thread (``jax.enable_x64(False)``)."""
    model = fl.Model(lambda th, x: fl.dist.Gamma(th["shape"], th["rate"]))
    params = {"shape": 2.5, "rate": 1.5}
    want = fl.fisher(model, params, n=10).cov().matrix
    with jax.enable_x64(False):
        info = fl.fisher(model, params, n=10)
        assert jnp.ones(1).dtype == jnp.float32
        got = info.cov().matrix
        assert jnp.ones(1).dtype == jnp.float32
    np.testing.assert_array_equal(got, want)


def test_the_scope_reuses_fisherlab_kernels_without_compiling() -> None:
    """Kernels compiled in one call are reused by the next from a 32-bit thread: no compilation."""
    compiled: list[str] = []

    class Compiles(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("Finished XLA compilation of "):
                compiled.append(record.getMessage())

    y = np.random.default_rng(1).gamma(2.5, 1 / 1.5, size=200)
    model = fl.Model(lambda th, x: fl.dist.Gamma(th["concentration"], th["rate"]))
    fl.observed_information(model, {"concentration": 2.5, "rate": 1.5}, y)  # compiles
    logger, handler = logging.getLogger("jax"), Compiles(logging.DEBUG)
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        with jax.log_compiles(True), jax.enable_x64(False):
            fl.observed_information(model, {"concentration": 2.0, "rate": 1.2}, y)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    assert compiled == []


# --------------------------------------------------------------------------- the decorators


def test_decorators_scope_and_mark() -> None:
    @float64
    def inside() -> str:
        return str(jnp.ones(1).dtype)

    @float64_methods
    class Result:
        def method(self) -> str:
            return str(jnp.ones(1).dtype)

        @property
        def value(self) -> str:
            return str(jnp.ones(1).dtype)

        @functools.cached_property
        def lazy(self) -> str:
            return str(jnp.ones(1).dtype)

        def _private(self) -> str:
            return str(jnp.ones(1).dtype)

    with x64_scope(False):
        r = Result()
        assert (inside(), r.method(), r.value, r.lazy) == ("float64",) * 4
        assert r._private() == "float32"  # private helpers run inside a wrapped call
        assert jnp.ones(1).dtype == jnp.float32
    assert float64(inside) is inside  # wrapping twice is wrapping once
    assert is_float64(inside) and is_float64(vars(Result)["value"]) and is_float64(vars(Result)["lazy"])
    assert not is_float64(vars(Result)["_private"])


# --------------------------------------------------------------------------- every public callable

# Public names that are not wrapped, and why. Exceptions, enums, modules and constants are
# recognised by their kind (:func:`_exempt_kind`); everything else is named here.
ALLOWED = {
    # fl.curvature follows the parameters' dtype (float32 parameters: float32 work, as trained)
    "fisherlab.Curvature": "precision of the parameters",
    "fisherlab.Estimate": "precision of the parameters",
    "fisherlab.curvature": "precision of the parameters",
    "fisherlab.laplace": "precision of the parameters",
    "fisherlab.NetworkLaplace": "precision of the parameters",
    "fisherlab.Predictive": "a record of NumPy results",
    # building blocks that fisherlab evaluates inside its own computations (and inside
    # fl.curvature's float32 kernels, so they must follow the dtype of what they are given)
    "fisherlab.dist.Bernoulli": "distribution",
    "fisherlab.dist.Binomial": "distribution",
    "fisherlab.dist.Categorical": "distribution",
    "fisherlab.dist.Geometric": "distribution",
    "fisherlab.dist.family_fisher": "follows its distribution's dtype; called inside fl.curvature's kernels",
    "fisherlab.models.ExtraParameter": "a record: its functions are evaluated inside fits",
    "fisherlab.models.FamilyRecord": "a record: its functions are evaluated inside fits",
    "fisherlab.models.LinkRecord": "a record: its functions are evaluated inside fits",
    # members, by their defining class: they split a module into arrays (no arithmetic), and a
    # float32 network's parameters stay float32
    "Model.from_equinox": "keeps float32 networks float32",
    "Model.from_flax": "keeps float32 networks float32",
    # one-row building blocks traced inside fisherlab's kernels (fl.curvature's float32 ones too)
    "Model.distribution": "traced inside kernels",
    "Model.row_loglik": "traced inside kernels",
    "Model.distribution_loglik": "traced inside kernels",
    # no JAX at all
    "fisherlab.dist.FamilyFisher": "a NamedTuple of results",
    "fisherlab.dist.register_fisher": "no JAX",
    "fisherlab.dist.registered_families": "no JAX",
    "fisherlab.models.FamilyTraits": "no JAX",
    "fisherlab.models.takes_weights": "no JAX",
    "fisherlab.datasets.challenger": "pandas only",
    # fl.data: sources of rows (no JAX), and the helpers its docstring reserves for the other
    # layers (they follow the data's dtype; fl.curvature calls them)
    "fisherlab.data.Chunks": "no JAX",
    "fisherlab.data.ParquetSource": "no JAX (pyarrow)",
    "fisherlab.data.ArraySource": "no JAX (row slices of arrays)",
    "fisherlab.data.DaskSource": "no JAX here; the chunk functions it ships enter float64 on the workers",
    "fisherlab.data.StreamedData": "no JAX (a fit's data: the source, its first chunk, its rows)",
    "fisherlab.data.from_parquet": "no JAX (pyarrow)",
    "fisherlab.data.chunks": "no JAX",
    "fisherlab.data.Data": "helper of the other layers",
    "fisherlab.data.as_observations": "helper of the other layers",
    "fisherlab.data.data_dtype": "helper of the other layers",
    "fisherlab.data.prepare_data": "helper of the other layers",
    "fisherlab.data.sum_over_blocks": "helper of the other layers",
}

# Public callables reached other than through ``__all__``: results returned by public methods,
# and the public functions the command line and the report use.
REACHED = (
    "fisherlab.inference._comparison.LikelihoodRatioTest",  # FitResult.lr_test
    "fisherlab.information._matrix.Eigen",  # InfoMatrix.eig
    "fisherlab.inference._objective.Objective",  # FitResult.objective
    "fisherlab.inference._profile2d.ProfileGrid",  # profile_grid
    "fisherlab.inference._profile2d.profile_grid",
    "fisherlab.formula._fit.fit_design",
    "fisherlab.report._html.build_html",
)


def _exempt_kind(obj: Any) -> bool:
    """Exceptions, warnings, enums, modules and constants need no JAX."""
    if isinstance(obj, type):
        return issubclass(obj, (BaseException, enum.Enum, nd.Distribution))
    return isinstance(obj, types.ModuleType) or not callable(obj)


def _public() -> dict[str, Any]:
    """Every public name: ``fisherlab.__all__``, its public submodules' ``__all__``, and :data:`REACHED`."""
    out: dict[str, Any] = {}
    for name in fl.__all__:
        obj = getattr(fl, name)
        out[f"fisherlab.{name}"] = obj
        if isinstance(obj, types.ModuleType):
            for sub in obj.__all__:
                out[f"fisherlab.{name}.{sub}"] = getattr(obj, sub)
    for path in REACHED:
        module, _, name = path.rpartition(".")
        out[path] = getattr(importlib.import_module(module), name)
    return out


def _members(cls: type) -> dict[str, Any]:
    """``{"Class.name": member}``: the public methods and properties of ``cls`` and of its
    fisherlab bases, by defining class, and the dunders that ``float64_methods`` wraps."""
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if not klass.__module__.startswith("fisherlab."):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") and name not in _precision._DUNDERS:
                continue
            if isinstance(value, (property, functools.cached_property, staticmethod, classmethod)) or (
                inspect.isfunction(value)
            ):
                out[f"{klass.__name__}.{name}"] = value
    return out


def test_every_public_callable_runs_in_float64() -> None:
    missing = []
    classes = 0
    for path, obj in _public().items():
        if path in ALLOWED or _exempt_kind(obj):
            continue
        if not isinstance(obj, type):
            if not is_float64(obj):
                missing.append(path)
            continue
        classes += 1
        missing += [
            f"{path} ({key})"
            for key, member in _members(obj).items()
            if key not in ALLOWED and not is_float64(member)
        ]
    assert not missing, (
        "public callables that do not run in float64 (decorate them with fisherlab._precision's "
        f"float64 / float64_methods, or add them to ALLOWED with the reason): {missing}"
    )
    assert classes >= 15  # the walk above reached the result classes


def test_wrapped_functions_keep_name_signature_and_doc() -> None:
    for fn in (fl.fit, fl.fisher, fl.glm, fl.models.fit_glm, fl.FitResult.cov):
        assert inspect.signature(fn) == inspect.signature(fn.__wrapped__)  # type: ignore[attr-defined]
        assert fn.__doc__ and fn.__name__ == fn.__wrapped__.__name__  # type: ignore[attr-defined]


def test_model_from_equinox_keeps_float32() -> None:
    eqx = pytest.importorskip("equinox")
    net = eqx.nn.MLP(2, 2, 3, 1, key=jax.random.PRNGKey(0), dtype=jnp.float32)
    with jax.enable_x64(False):
        model, params = fl.Model.from_equinox(net, lambda z: fl.dist.Categorical(logits=z))
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(params)} == {jnp.dtype("float32")}
    assert isinstance(model, fl.Model)


# --------------------------------------------------------------------------- stored kernels


def test_stored_kernels_are_keyed_by_the_precision_in_force(tmp_path: Path) -> None:
    """A kernel traced in float64 is never read for a float32 call, nor the other way round."""
    from fisherlab.model._stored import StoredKernel, environment_digest, trace_settings

    with jax.enable_x64(False):
        digest32, settings32 = environment_digest(), trace_settings()
    assert (digest32, settings32) != (environment_digest(), trace_settings())

    kernel = StoredKernel(lambda v: v * 2.0 + jnp.ones(()), "test-kernel", str(tmp_path))
    arg = np.ones(3, dtype=np.float32)
    wide = kernel(arg)  # 64-bit mode on: the constant is float64
    with jax.enable_x64(False):
        narrow = kernel(arg)
    again = kernel(arg)
    assert (wide.dtype, narrow.dtype, again.dtype) == (jnp.float64, jnp.float32, jnp.float64)
    assert len(list(tmp_path.glob("*.jaxexport"))) == 2  # one file per precision
