"""Kernels of built-in models kept on disk as exported StableHLO (``fisherlab.model._stored``).

The store may change how long a call takes, never what it returns or raises: every case
compares with the same computation by plain ``jax.jit`` (with ``FISHERLAB_NO_CACHE=1``: no
store, no persistent cache).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fisherlab as fl
from fisherlab import models
from fisherlab.model import _stored


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("FISHERLAB_NO_CACHE", raising=False)
    monkeypatch.setenv("FISHERLAB_CACHE_DIR", str(tmp_path))
    return tmp_path / "kernels"


def _nb_data(rng: np.random.Generator, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    mu = np.exp(X @ np.array([0.5, 0.3, -0.2]))
    y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu)).astype(np.float64)
    return y, X


def _fit_and_check(y: np.ndarray, X: np.ndarray, family: str) -> tuple[np.ndarray, np.ndarray, float]:
    m = models.glm(family)
    res = fl.fit(m, y, X, init=models.glm_start(m, y, X))
    chk = fl.check(m, res.params, y, X, pvalue="asymptotic")
    flat = np.concatenate([np.ravel(res.params[k]) for k in sorted(res.params)])
    return flat, res.cov("expected").matrix, np.array(chk.im_test_statistic)


@pytest.mark.parametrize(
    "family", ["poisson", pytest.param("negative_binomial", marks=pytest.mark.slow)]
)  # the negative binomial's kernels take about 30 s to compile three times over
def test_stored_kernels_give_the_plain_numbers(
    store: Path, rng: np.random.Generator, monkeypatch, family: str
) -> None:
    y, X = _nb_data(rng)
    monkeypatch.setenv("FISHERLAB_NO_CACHE", "1")
    plain = _fit_and_check(y, X, family)
    monkeypatch.delenv("FISHERLAB_NO_CACHE")
    first = _fit_and_check(y, X, family)  # exports and writes
    files = sorted(store.iterdir())
    assert len(files) >= 5, files
    for a, b in zip(plain, first, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)

    # a new model instance (a new process, as far as the kernels know) reads them back: no export
    def refuse(*args, **kwargs):
        raise AssertionError("a stored kernel was exported again")

    monkeypatch.setattr("jax.export.export", refuse)
    second = _fit_and_check(y, X, family)
    for a, b in zip(plain, second, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    assert sorted(store.iterdir()) == files


def test_shapes_and_models_get_their_own_files(store: Path, rng: np.random.Generator) -> None:
    y, X = _nb_data(rng, 200)
    m = models.glm("poisson")
    fl.loglik(m, {"beta": np.zeros(3)}, y, X)
    one = set(store.iterdir())
    fl.loglik(m, {"beta": np.zeros(3)}, y[:150], X[:150])  # another N: another file
    two = set(store.iterdir())
    assert len(one) == 1 and len(two) == 2
    fl.loglik(models.glm("poisson", "sqrt"), {"beta": np.ones(3)}, y, X)  # another link
    assert len(set(store.iterdir())) == 3
    ll = fl.loglik(models.glm("poisson"), {"beta": np.full(3, 0.1)}, y, X)  # the first file again
    assert len(set(store.iterdir())) == 3
    mu = np.exp(X @ np.full(3, 0.1))
    from scipy.special import gammaln

    np.testing.assert_allclose(np.asarray(ll), y * np.log(mu) - mu - gammaln(y + 1), rtol=1e-13)


def test_only_builtin_models_with_stable_names_are_stored(store: Path, rng: np.random.Generator) -> None:
    y, X = _nb_data(rng, 100)
    user = fl.Model(lambda th, x: fl.dist.Poisson(np.exp(0.0) * th["rate"]), constraints={"rate": "positive"})
    fl.fit(user, y, init={"rate": 1.0})
    assert not store.exists() or not any(store.iterdir())  # a user's function: memory only

    class MyGLM(models.GLM):
        pass

    assert MyGLM("poisson").state.token is None  # a subclass may change the function
    # a prior is keyed by its id in this process: the fit's kernels stay in memory
    m = models.glm("poisson")
    prior = {"beta": fl.dist.Normal(np.zeros(3), 10.0)}
    fl.fit(m, y, X, init={"beta": np.zeros(3)}, prior=prior)
    names = [k for k in m.state.kernels if isinstance(k, tuple) and str(k[0]).startswith("fit_")]
    assert names and all(not isinstance(m.state.kernels[k], _stored.StoredKernel) for k in names)
    assert _stored.stable_text(("x", _stored.Local(5))) is None
    assert _stored.stable_text(lambda: 0) is None
    assert _stored.stable_text(_fit_and_check) == f"{__name__}._fit_and_check"


def test_a_corrupt_or_unwritable_store_is_skipped(store: Path, rng: np.random.Generator, monkeypatch) -> None:
    y, X = _nb_data(rng, 150)
    beta = {"beta": np.array([0.1, 0.2, 0.3])}
    reference = np.asarray(fl.score(models.glm("poisson"), beta, y, X))
    for f in store.iterdir():
        f.write_bytes(b"not an exported kernel")
    np.testing.assert_array_equal(np.asarray(fl.score(models.glm("poisson"), beta, y, X)), reference)
    assert all(f.stat().st_size > 100 for f in store.iterdir())  # written again
    # a store that cannot be written (a file where the folder should be): computed all the same
    blocked = store.parent / "blocked"
    blocked.write_text("")
    monkeypatch.setenv("FISHERLAB_CACHE_DIR", str(blocked))
    np.testing.assert_array_equal(np.asarray(fl.score(models.glm("poisson"), beta, y, X)), reference)


def test_errors_are_the_same_through_the_store(store: Path, rng: np.random.Generator, monkeypatch) -> None:
    y, X = _nb_data(rng, 50)
    bad_y = y.copy()
    bad_y[7] = -1.0
    cases = [(bad_y, {"beta": np.zeros(3)}), (y, {"beta": np.zeros(4)})]

    def errors() -> list[tuple[type, str]]:
        out = []
        for yy, params in cases:
            with pytest.raises(fl.FisherlabError) as info:
                fl.loglik(models.glm("poisson"), params, yy, X)
            out.append((type(info.value), str(info.value)))
        return out

    monkeypatch.setenv("FISHERLAB_NO_CACHE", "1")
    plain = errors()
    monkeypatch.delenv("FISHERLAB_NO_CACHE")
    assert errors() == plain
    assert plain[0][0] is fl.InvalidDataError and "row 7" in plain[0][1]
    assert plain[1][0] is fl.ModelError and "shape (3,)" in plain[1][1]


@pytest.mark.slow
def test_a_second_process_traces_nothing(tmp_path: Path) -> None:
    code = (
        "import collections, numpy as np, jax, fisherlab as fl\n"
        "from jax import monitoring\n"
        "traced = collections.Counter()\n"
        "monitoring.register_event_duration_secs_listener(lambda e, d, **k: traced.update("
        "[k.get('fun_name')] if e.endswith('jaxpr_trace_duration') else []))\n"
        "rng = np.random.default_rng(1); X = np.column_stack([np.ones(300), rng.normal(size=300)])\n"
        "y = rng.poisson(np.exp(0.2 + 0.5 * X[:, 1])).astype(float)\n"
        "m = fl.models.glm('negative_binomial')\n"
        "res = fl.fit(m, y, X, init=fl.models.glm_start(m, y, X))\n"
        "print(sum(v for k, v in traced.items() if k in ('hessian', 'value_and_grad', 'kernel')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FISHERLAB_", "JAX_COMPILATION"))}
    env["FISHERLAB_CACHE_DIR"] = str(tmp_path)

    def run() -> int:
        cmd = [sys.executable, "-c", code]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        return int(out.stdout.strip().splitlines()[-1])

    assert run() > 0
    assert run() == 0
