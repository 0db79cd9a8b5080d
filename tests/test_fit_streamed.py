"""``fl.fit`` on a chunk source: streamed Newton passes, every covariance kind, named errors.

The oracle of every number is the in-memory fit of the same rows (``np.concatenate`` of the
chunks), computed in the test; agreement is asked to 1e-10 relative (sums of float64 partial
sums differ from one sum by a few roundings only).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import fisherlab as fl

RTOL = 1e-10


def _close(a: np.ndarray, b: np.ndarray, rtol: float = RTOL) -> None:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert np.max(np.abs(a - b)) <= rtol * np.max(np.abs(b)), np.max(np.abs(a - b)) / np.max(np.abs(b))


def _source(y: np.ndarray, x: np.ndarray | None, size: int) -> fl.data.Chunks:
    def batches():
        for i in range(0, y.shape[0], size):
            yield (y[i : i + size], None if x is None else x[i : i + size])

    return fl.data.chunks(batches)


def _poisson(n: int = 2503, seed: int = 0) -> tuple[np.ndarray, np.ndarray, fl.Model]:
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.ones(n), rng.normal(size=(n, 3))])
    y = rng.poisson(np.exp(x @ np.array([0.4, 0.3, -0.2, 0.1]))).astype(float)
    model = fl.Model(lambda th, x: fl.dist.Poisson(jnp.exp(x @ th["b"])))
    return y, x, model


def _normal(n: int = 1501, seed: int = 1) -> tuple[np.ndarray, np.ndarray, fl.Model]:
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = x @ np.array([1.0, -0.5]) + 0.7 * rng.standard_t(5, size=n)
    model = fl.Model(
        lambda th, x: fl.dist.Normal(x @ th["b"], th["sigma"]), constraints={"sigma": "positive"}
    )
    return y, x, model


@pytest.mark.parametrize("kind", ["observed", "expected", "empirical", "sandwich"])
def test_poisson_every_covariance_equals_in_memory(kind: str) -> None:
    y, x, model = _poisson()
    init = {"b": np.zeros(4)}
    ref = fl.fit(model, y, x, init=init)
    res = fl.fit(model, _source(y, x, 400), init=init)  # 6 full chunks and one of 103 rows
    assert res.nobs == ref.nobs == y.size
    _close(res.params["b"], ref.params["b"])
    assert res.loglik == pytest.approx(ref.loglik, rel=RTOL)
    _close(res.cov(kind).matrix, ref.cov(kind).matrix)
    assert res.cov(kind).names == ref.cov(kind).names


@pytest.mark.parametrize("hc", ["HC1", "HC2", "HC3"])
def test_robust_variants_and_cluster_equal_in_memory(hc: str) -> None:
    y, x, model = _normal()
    init = {"b": np.zeros(2), "sigma": 1.0}
    ref = fl.fit(model, y, x, init=init)
    res = fl.fit(model, _source(y, x, 500), init=init)
    _close(res.cov("sandwich", hc=hc).matrix, ref.cov("sandwich", hc=hc).matrix)
    groups = np.random.default_rng(5).integers(0, 40, size=y.size)
    _close(res.cov("cluster", groups=groups).matrix, ref.cov("cluster", groups=groups).matrix)


@pytest.mark.parametrize("method", ["newton", "lbfgs"])
def test_constrained_parameters_prior_and_lbfgs(method: str) -> None:
    y, x, model = _normal()
    init = {"b": np.zeros(2), "sigma": 1.0}
    prior = {"b": fl.dist.Normal(0.0, 2.0), "sigma": fl.dist.HalfNormal(3.0)}
    ref = fl.fit(model, y, x, init=init, prior=prior, method=method)
    res = fl.fit(model, _source(y, x, 300), init=init, prior=prior, method=method)
    # Newton ends on the same iterate; L-BFGS's path depends on the last bits of each gradient,
    # and both ends lie within the convergence tolerance (1e-8 standard errors) of the optimum
    rtol = RTOL if method == "newton" else 1e-8
    se = np.sqrt(np.diag(ref.cov().matrix))
    assert np.all(np.abs(res.flat_params - ref.flat_params) <= (rtol * np.abs(ref.flat_params) + 1e-8 * se))
    _close(res.cov("observed").matrix, ref.cov("observed").matrix, rtol)
    assert res.logprior == pytest.approx(ref.logprior, rel=rtol)


def test_iid_model_and_summary() -> None:
    y = np.random.default_rng(2).gamma(3.0, 2.0, size=999)
    model = fl.Model(
        lambda th, x: fl.dist.Gamma(th["k"], th["k"] / th["mean"]),
        constraints={"k": "positive", "mean": "positive"},
    )
    init = {"k": 1.0, "mean": 1.0}
    ref = fl.fit(model, y, init=init)
    res = fl.fit(model, _source(y, None, 250), init=init)
    for kind in ("observed", "expected", "empirical"):
        _close(res.cov(kind).matrix, ref.cov(kind).matrix)
    assert "N = 999" in str(res.summary())


def test_parquet_source(tmp_path) -> None:
    y, x, model = _poisson(n=3000, seed=3)
    path = tmp_path / "d.parquet"
    frame = pd.DataFrame({"y": y, "a": x[:, 1], "b": x[:, 2], "c": x[:, 3], "one": x[:, 0]})
    frame.to_parquet(path, row_group_size=700)
    src = fl.data.from_parquet(path, y="y", x=["one", "a", "b", "c"], chunk_rows=512)
    init = {"b": np.zeros(4)}
    ref = fl.fit(model, y, x, init=init)
    res = fl.fit(model, src, init=init)
    _close(res.params["b"], ref.params["b"])
    _close(res.cov("sandwich").matrix, ref.cov("sandwich").matrix)


def test_one_pass_per_iterate_and_one_compilation_for_a_padded_last_chunk() -> None:
    y, x, model = _poisson(n=2050, seed=4)
    res = fl.fit(model, _source(y, x, 500), init={"b": np.zeros(4)})  # last chunk: 50 rows, padded
    passes = res.objective.source.passes
    assert passes <= res.n_iter + 12  # iterates, trial points and the recession probes
    kernels = [
        v for k, v in model.state.kernels.items() if isinstance(k, tuple) and "stream_fit" in str(k[0])
    ]
    assert kernels and all(k._cache_size() == 1 for k in kernels)


def test_separation_is_named_on_a_source() -> None:
    x = np.column_stack([np.ones(400), np.linspace(-2, 2, 400)])
    y = (x[:, 1] > 0.3).astype(float)
    model = fl.Model(lambda th, x: fl.dist.BernoulliLogits(x @ th["b"]))
    with pytest.raises(fl.EstimateAtInfinityError, match="separation"):
        fl.fit(model, _source(y, x, 150), init={"b": np.zeros(2)})


def test_bad_data_and_bad_calls_are_named() -> None:
    y, x, model = _poisson(n=1000, seed=6)
    init = {"b": np.zeros(4)}
    bad = x.copy()
    bad[537, 2] = np.nan  # chunk 2 of 250-row chunks starts at row 500
    with pytest.raises(fl.InvalidDataError, match=r"chunk 2 \(from row 500\).*row 37"):
        fl.fit(model, _source(y, bad, 250), init=init)
    negative = y.copy()
    negative[801] = -1.0  # outside the Poisson's support, in chunk 3
    with pytest.raises(fl.InvalidDataError, match=r"chunk 3 \(from row 750\): y at row 51"):
        fl.fit(model, _source(negative, x, 250), init=init)
    with pytest.raises(fl.FisherlabArgumentError, match="leave x out"):
        fl.fit(model, _source(y, x, 250), x, init=init)
    numeric = fl.Model(lambda th, x: fl.dist.Poisson(jnp.exp(x @ th["b"])), derivatives="numeric")
    with pytest.raises(fl.MethodUnavailableError, match="chunk source"):
        fl.fit(numeric, _source(y, x, 250), init=init)


def test_a_source_whose_rows_change_between_passes_is_refused() -> None:
    y, x, model = _poisson(n=1000, seed=7)
    calls = {"n": 0}

    def batches():
        calls["n"] += 1
        stop = 1000 if calls["n"] < 3 else 750
        for i in range(0, stop, 250):
            yield y[i : i + 250], x[i : i + 250]

    with pytest.raises(fl.InvalidDataError, match="same rows"):
        fl.fit(model, fl.data.chunks(batches), init={"b": np.zeros(4)})
