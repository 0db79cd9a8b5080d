"""Issue 11, "Fast first result": one compiled call per computation, cheap checks that still
catch bad input, compiled code that is the same in every process, no constant folding.

Timings are benchmarks (``benchmarks/bench_overhead.py``, ``benchmarks/bench_glm_startup.py``);
these tests check what makes them fast and must stay true: compilation counts, the persistent
cache's keys, the validity checks on the fast paths, and the absence of XLA's constant-folding
alarm.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fisherlab as fl
from fisherlab.backends._curvature import _float_leaves, _leaf_names
from fisherlab.model._model import validity

# The observed information of the fast paths against jax.hessian: both are exact to rounding.
TOL = 1e-12


class _Compiles(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.names: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith("Finished XLA compilation of "):
            self.names.append(msg)


def _count_compiles(fn):  # type: ignore[no-untyped-def]
    handler = _Compiles()
    logger = logging.getLogger("jax")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        with jax.log_compiles(True):
            fn()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    return handler.names


def _gamma_model() -> fl.Model:
    return fl.Model(lambda th, x: fl.dist.Gamma(th["concentration"], th["rate"]))


def test_observed_information_iid_equals_jax_hessian_and_compiles_once() -> None:
    y = np.random.default_rng(0).gamma(2.5, 1 / 1.5, size=5000)
    model = _gamma_model()

    def total(th):  # type: ignore[no-untyped-def]
        return fl.dist.Gamma(th["concentration"], th["rate"]).log_prob(jnp.asarray(y)).sum()

    fl.observed_information(model, {"concentration": 2.5, "rate": 1.5}, y)  # compiles
    for params in ({"concentration": 2.0, "rate": 1.2}, {"concentration": 3.1, "rate": 0.7}):
        names = _count_compiles(lambda p=params: fl.observed_information(model, p, y))
        assert names == []  # new values, same shapes: no compilation at all (no eager ops either)
        got = fl.observed_information(model, params, y).matrix
        h = jax.hessian(total)({k: jnp.asarray(v) for k, v in params.items()})
        ref = -np.array(
            [[float(h[a][b]) for b in ("concentration", "rate")] for a in ("concentration", "rate")]
        )
        np.testing.assert_allclose(got, ref, rtol=TOL, atol=0)


def test_fast_paths_still_name_bad_rows() -> None:
    model = _gamma_model()
    params = {"concentration": 2.0, "rate": 1.0}
    y = np.array([1.0, 2.0, -3.0, 4.0])
    for fn in (fl.observed_information, fl.score, fl.loglik, fl.empirical_fisher):
        with pytest.raises(fl.InvalidDataError, match=r"y at row 2 = -3\.0 is outside the support"):
            fn(model, params, y)
        with pytest.raises(fl.InvalidDataError, match="row 1"):
            fn(model, params, np.array([1.0, np.nan]))
    with pytest.raises(fl.InvalidParameterError, match="rate"):
        fl.observed_information(model, {"concentration": 2.0, "rate": -1.0}, np.ones(3))
    # a from_loglik model has no support flags: its log-likelihood is checked
    nan_ll = fl.Model.from_loglik(lambda th, y, x: jnp.where(y > 1, jnp.nan, -y * th["a"]))
    with pytest.raises(fl.InvalidParameterError, match="log-likelihood is not finite at row 1"):
        fl.observed_information(nan_ll, {"a": 1.0}, np.array([0.5, 2.0]))
    with pytest.raises(fl.InvalidParameterError, match="log-likelihood is not finite at row 1"):
        fl.score(nan_ll, {"a": 1.0}, np.array([0.5, 2.0]))


def test_data_of_one_call_are_read_in_place_and_a_fit_keeps_its_own() -> None:
    """An aligned array is read in place by a call (never kept); a fit copies its data."""
    raw = np.empty(1000 * 8 + 64, dtype=np.uint8)
    offset = (-raw.ctypes.data) % 64
    y = raw[offset : offset + 8000].view(np.float64)
    y[:] = np.random.default_rng(1).gamma(2.0, 1.0, size=1000)
    model = fl.Model(
        lambda th, x: fl.dist.Gamma(th["concentration"], th["rate"]),
        constraints={"concentration": "positive", "rate": "positive"},
    )
    params = {"concentration": 2.0, "rate": 1.0}
    before = fl.loglik(model, params, y).copy()
    res = fl.fit(model, y, init=params)
    cov = res.cov().matrix.copy()
    y[:] = 1.0
    np.testing.assert_array_equal(res.cov().matrix, cov)  # the fit's data did not change
    assert not np.allclose(fl.loglik(model, params, y), before)  # a new call reads the new values


def test_distribution_leaf_order_does_not_depend_on_string_hashing() -> None:
    """NumPyro orders a distribution's leaves through a set; the kernels use their names."""
    d = fl.dist.NegativeBinomial2(jnp.ones(1), 2.0)
    names = _leaf_names(d)
    assert len(names) == len(jax.tree_util.tree_leaves(d))
    ordered = [names[i] for i, _ in _float_leaves(d)]
    assert ordered == sorted(ordered)
    code = textwrap.dedent(
        """
        import jax.numpy as jnp, fisherlab as fl
        from fisherlab.backends._curvature import _float_leaves, _leaf_names
        d = fl.dist.NegativeBinomial2(jnp.ones(1), 2.0)
        names = _leaf_names(d)
        print([names[i] for i, _ in _float_leaves(d)])
        """
    )
    outs = set()
    for seed in ("1", "2", "3"):
        env = dict(os.environ, PYTHONHASHSEED=seed, FISHERLAB_NO_CACHE="1")
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout)
    assert len(outs) == 1, outs


def test_validity_is_not_constant_folded() -> None:
    """``exp(u) >= 0`` is a runtime check: XLA must not prove it (NaN fails it)."""
    check = jax.jit(lambda b: validity(fl.dist.Poisson(jnp.exp(b)))["rate"])
    assert bool(check(0.0))
    assert not bool(check(jnp.nan))


def test_batched_objective_has_no_constant_folding_alarm() -> None:
    """The report's 2-D profile evaluates the fit's objective at a batch of points; its validity
    flags once made XLA constant-fold a (rows x points) reduction for seconds, with the
    "slow_operation_alarm" on stderr. Run in a fresh process so that XLA's log reaches stderr."""
    code = textwrap.dedent(
        """
        import numpy as np, jax.numpy as jnp, fisherlab as fl
        from fisherlab.backends import backend_for
        from fisherlab.data import prepare_data
        from fisherlab.params._constraints import Reparam
        rng = np.random.default_rng(0)
        n = 20000
        x = np.column_stack([np.ones(n), rng.normal(size=n)])
        y = rng.poisson(np.exp(0.3 + 0.2 * x[:, 1])).astype(float)
        model = fl.Model(lambda th, x: fl.dist.Poisson(jnp.exp(x @ th["beta"])))
        params = {"beta": np.array([0.3, 0.2])}
        reparam = Reparam(params, model.constraints)
        post = backend_for(model, params, y, x).log_posterior(reparam, None, prepare_data(y, x), params)
        us = np.tile(reparam.to_unconstrained(params), (208, 1)) + 0.01 * rng.normal(size=(208, 2))
        f, g = post.batch_value_and_grad(us)
        assert np.all(np.isfinite(f)), f
        print("ok")
        """
    )
    env = dict(os.environ, FISHERLAB_NO_CACHE="1")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ok" in proc.stdout
    assert "slow_operation_alarm" not in proc.stderr
    assert "Constant folding" not in proc.stderr
