"""``fl.curvature`` on mini-batches (``fl.data.chunks``) and in the parameters' precision.

Chunked results are compared with the same curvature on the data in memory (itself checked
against dense references in ``test_curvature.py``) and with an explicit dense reference.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import fisherlab as fl
from mlp_support import small_mlp

N, D, H, K = 37, 3, 4, 3
SIZES = (16, 16, 5)  # the last chunk shorter


@pytest.fixture(scope="module")
def problem():
    return small_mlp(N, D, H, K, seed=21)


def _chunks(x, y, sizes=SIZES):
    edges = np.cumsum((0, *sizes))

    def factory():
        for a, b in itertools.pairwise(edges):
            yield y[a:b], x[a:b]

    return fl.data.chunks(factory)


def _flat(tree):
    return np.asarray(ravel_pytree(tree)[0])


# three in the default suite, the rest in the slow one
PAIRS = [("fisher", "operator"), ("fisher", "kfac"), ("hessian", "operator")] + [
    pytest.param(kind, structure, marks=pytest.mark.slow)
    for kind, structure in [
        ("fisher", "dense"),
        ("fisher", "diagonal"),
        ("fisher", "block"),
        ("fisher", "lowrank"),
        ("empirical", "kfac"),
        ("ggn", "diagonal"),
        ("hessian", "dense"),
    ]
]


@pytest.mark.parametrize(("kind", "structure"), PAIRS)
def test_chunks_give_the_in_memory_curvature(problem, kind, structure) -> None:
    model, params, x, y = problem
    opts = {"kind": kind, "structure": structure, "rank": 5, "reduction": "mean"}
    want = fl.curvature(model, params, y, x, **opts)
    got = fl.curvature(model, params, _chunks(x, y), **opts)
    assert got.n == N
    v = jax.tree_util.tree_map(lambda a: jnp.linspace(-1.0, 1.0, a.size).reshape(a.shape), params)
    np.testing.assert_allclose(_flat(got.diagonal()), _flat(want.diagonal()), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(_flat(got.mv(v)), _flat(want.mv(v)), rtol=1e-9, atol=1e-12)
    if kind != "hessian":
        np.testing.assert_allclose(_flat(got.solve(v, 0.5)), _flat(want.solve(v, 0.5)), rtol=1e-8)
        assert got.logdet(0.5) == pytest.approx(want.logdet(0.5), rel=1e-9)
    w_got, _ = got.eigh(3)
    w_want, _ = want.eigh(3)
    np.testing.assert_allclose(w_got, w_want, rtol=1e-7, atol=1e-10)


def test_chunked_operator_solves_and_lanczos_against_dense(problem) -> None:
    """CG and Lanczos trace the chunked product: it runs on the host (a callback), and agrees."""
    model, params, x, y = problem
    ref = fl.curvature(model, params, y, x, structure="dense").to_dense().matrix
    C = fl.curvature(model, params, _chunks(x, y))
    v = jax.tree_util.tree_map(jnp.ones_like, params)
    want = np.linalg.solve(ref + 0.3 * np.eye(len(ref)), _flat(v))
    np.testing.assert_allclose(_flat(C.solve(v, 0.3)), want, rtol=1e-8)
    big = np.random.default_rng(0)
    xb = big.normal(size=(60, 3))
    yb = big.integers(0, 3, size=60)
    wide = {"l1": {"w": jnp.asarray(big.normal(size=(3, 12))), "b": jnp.zeros(12)}, "l2": params["l2"]}
    wide["l2"] = {"w": jnp.asarray(big.normal(size=(12, 3))), "b": jnp.zeros(3)}  # P = 87 > 40 steps
    dense = fl.curvature(model, wide, yb, xb, structure="dense").to_dense().matrix
    w, _ = fl.curvature(model, wide, _chunks(xb, yb, (25, 25, 10))).eigh(3)
    np.testing.assert_allclose(w, np.linalg.eigvalsh(dense)[::-1][:3], rtol=1e-8)


def test_chunked_mc_fisher_is_seeded_per_chunk(problem) -> None:
    model, params, x, y = problem
    a = fl.curvature(model, params, _chunks(x, y), kind="mc_fisher", structure="diagonal", seed=3)
    b = fl.curvature(model, params, _chunks(x, y), kind="mc_fisher", structure="diagonal", seed=3)
    c = fl.curvature(model, params, _chunks(x, y), kind="mc_fisher", structure="diagonal", seed=4)
    assert np.array_equal(_flat(a.diagonal()), _flat(b.diagonal()))
    assert not np.array_equal(_flat(a.diagonal()), _flat(c.diagonal()))
    # products read the source again: the same labels each pass (the operator is one matrix)
    op = fl.curvature(model, params, _chunks(x, y), kind="mc_fisher", seed=3)
    np.testing.assert_allclose(_flat(op.diagonal()), _flat(a.diagonal()), rtol=1e-10)
    e = np.eye(op.p)
    cols = np.stack([_flat(op.mv(op.exact.unravel(jnp.asarray(u)))) for u in e[:5]])
    np.testing.assert_allclose(np.diag(cols[:, :5]), _flat(a.diagonal())[:5], rtol=1e-10)


def test_a_pass_holds_one_chunk_at_a_time(problem) -> None:
    model, params, x, y = problem
    live: set[int] = set()
    most = [0]

    def factory():
        for a in range(0, N, 8):
            yc, xc = np.array(y[a : a + 8]), np.array(x[a : a + 8])
            live.add(id(xc))
            weakref.finalize(xc, live.discard, id(xc))
            most[0] = max(most[0], len(live))
            yield yc, xc

    C = fl.curvature(model, params, fl.data.chunks(factory), structure="operator")
    C.mv(params)
    C.diagonal()
    assert most[0] <= 2, f"{most[0]} chunks were alive at once"


def test_bad_sources_get_named_errors(problem) -> None:
    model, params, x, y = problem
    gen = ((y[a : a + 10], x[a : a + 10]) for a in range(0, N, 10))
    with pytest.raises(fl.FisherlabArgumentError, match="read only once"):
        fl.data.chunks(gen)
    with pytest.raises(fl.FisherlabArgumentError, match="function returning an iterator"):
        fl.data.chunks(42)
    with pytest.raises(fl.FisherlabArgumentError, match="leave x out"):
        fl.curvature(model, params, _chunks(x, y), x)
    bad = x.copy()
    bad[20, 1] = np.nan
    with pytest.raises(fl.InvalidDataError, match=r"chunk 1: .*row 4"):
        fl.curvature(model, params, _chunks(bad, y))
    labels = y.copy()
    labels[33] = K
    with pytest.raises(fl.InvalidDataError, match=r"chunk 2: y at row 1 = 3 is outside the support"):
        fl.curvature(model, params, _chunks(x, labels), structure="diagonal")
    with pytest.raises(fl.InvalidDataError, match="differ from chunk 0"):
        fl.curvature(
            model, params, fl.data.chunks([(y[:10], x[:10]), (y[10:20], x[10:20].astype(np.float32))])
        )
    with pytest.raises(fl.FisherlabArgumentError, match=r"chunk 1 is a ndarray, not a \(y, x\) pair"):
        fl.curvature(model, params, fl.data.chunks([(y[:10], x[:10]), x[10:20]]))
    with pytest.raises(fl.InvalidDataError, match="no chunks"):
        fl.curvature(model, params, fl.data.chunks([]))
    passes = [0]

    def shrinking():
        passes[0] += 1
        stop = N if passes[0] == 1 else N - 5
        yield y[:stop], x[:stop]

    C = fl.curvature(model, params, fl.data.chunks(shrinking))
    with pytest.raises(fl.InvalidDataError, match="32 rows on this pass and 37 on the first"):
        C.mv(params)


_X32_SCRIPT = textwrap.dedent(
    """
    import warnings, json, sys
    warnings.simplefilter("error")
    import numpy as np, jax, jax.numpy as jnp
    import fisherlab as fl
    assert jnp.ones(3).dtype == jnp.float32
    rng = np.random.default_rng(5)
    x = rng.normal(size=(30, 3)); y = rng.integers(0, 3, size=30)
    def net(th, x):
        return jnp.tanh(x @ th["w1"]) @ th["w2"]
    model = fl.Model(lambda th, x: fl.dist.Categorical(logits=net(th, x)))
    p64 = {"w1": rng.normal(size=(3, 4)), "w2": rng.normal(size=(4, 3))}
    p32 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), p64)
    out = {}
    for name, p in (("f32", p32), ("f64", p64)):
        for structure in ("operator", "diagonal", "kfac"):
            C = fl.curvature(model, p, y, x, structure=structure)
            d = C.diagonal()
            out[f"{name}-{structure}-dtype"] = str(d["w1"].dtype)
            out[f"{name}-{structure}"] = np.concatenate([np.ravel(d["w1"]), np.ravel(d["w2"])]).tolist()
        out[f"{name}-mv-dtype"] = str(fl.curvature(model, p, y, x).mv(p)["w1"].dtype)
    assert jnp.ones(3).dtype == jnp.float32, "fisherlab changed the process's JAX precision"
    assert not jax.config.jax_enable_x64
    json.dump(out, sys.stdout)
    """
)


def test_curvature_follows_the_parameters_precision_without_changing_jax() -> None:
    """A float32 process (x64 off): float32 parameters are worked on in float32 with no
    float64 request (warnings are errors), float64 parameters in float64, equal to this
    (float64) process's numbers; JAX stays 32-bit outside fisherlab."""
    import json

    env = {**os.environ, "JAX_ENABLE_X64": "0", "FISHERLAB_NO_CACHE": "1", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", _X32_SCRIPT], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(30, 3))
    y = rng.integers(0, 3, size=30)
    p64 = {"w1": rng.normal(size=(3, 4)), "w2": rng.normal(size=(4, 3))}
    model = fl.Model(lambda th, x: fl.dist.Categorical(logits=jnp.tanh(x @ th["w1"]) @ th["w2"]))
    for structure in ("operator", "diagonal", "kfac"):
        d = fl.curvature(model, p64, y, x, structure=structure).diagonal()
        want = np.concatenate([np.ravel(d["w1"]), np.ravel(d["w2"])])
        assert out[f"f32-{structure}-dtype"] == "float32"
        assert out[f"f64-{structure}-dtype"] == "float64"
        np.testing.assert_allclose(out[f"f64-{structure}"], want, rtol=1e-12)
        np.testing.assert_allclose(out[f"f32-{structure}"], want, rtol=2e-5, atol=1e-6)
    assert out["f32-mv-dtype"] == "float32" and out["f64-mv-dtype"] == "float64"


def test_chunked_stochastic_logdet_runs_its_probes_in_one_pass_each(problem, monkeypatch) -> None:
    """Stochastic Lanczos quadrature vmaps the product over its probes: a chunked product runs
    all of them in one pass per Lanczos step (a host callback batched over the probes)."""
    from fisherlab.operators import _structures

    model, params, x, y = problem
    monkeypatch.setattr(_structures, "EXACT_LOGDET_MAX_PARAMS", 0)
    calls = [0]

    def factory():
        calls[0] += 1
        for a in range(0, N, 16):
            yield y[a : a + 16], x[a : a + 16]

    C = fl.curvature(model, params, fl.data.chunks(factory))
    dense = fl.curvature(model, params, y, x, structure="dense").to_dense().matrix
    before = calls[0]
    value = C.logdet(0.5)
    want = np.linalg.slogdet(dense + 0.5 * np.eye(len(dense)))[1]
    assert abs(value - want) <= 4 * C.error + 1e-9
    assert calls[0] - before <= 40  # one pass per Lanczos step, not one per probe and step
