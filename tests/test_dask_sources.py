"""Data beyond memory on Dask (issue "data beyond memory", second part): fl.data.from_dask (a dask
DataFrame, a pair of dask arrays) and fl.data.from_arrays (memory-mapped arrays), here and on a
two-worker LocalCluster, against the in-memory functions on the concatenated data (the oracle)."""

from __future__ import annotations

import pickle
import threading
from concurrent.futures import Executor

import cloudpickle
import dask
import dask.array as da
import dask.dataframe as dd
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import fisherlab as fl
from fisherlab.data._dask import DaskSource

distributed = pytest.importorskip("distributed")

# The sums of a source are the in-memory sums added in another order, with compensation: equal to
# rounding (the bound; observed differences are ~1e-15 relative).
RTOL = 1e-10
N, PARTS = 1000, 5  # partitions of 200 rows: chunk 2 starts at row 400
BETA = np.array([0.3, -0.5, 0.2])
COLUMNS = ["a", "b", "c"]


def _poisson(th, x):
    return fl.dist.Poisson(rate=jnp.exp(x @ th["beta"]))


def _normal(th, x):
    return fl.dist.Normal(x @ th["beta"], th["sigma"])


@pytest.fixture(scope="module")
def problems() -> dict:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(N, 3))
    counts = rng.poisson(np.exp(x @ BETA)).astype(np.float64)
    level = x @ BETA + 0.7 * rng.normal(size=N)
    return {
        "poisson": (fl.Model(_poisson), {"beta": BETA}, counts, x),
        "normal": (fl.Model(_normal), {"beta": BETA, "sigma": 0.8}, level, x),
    }


def _frame(y: np.ndarray, x: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"y": y, "a": x[:, 0], "b": x[:, 1], "c": x[:, 2]})


def _dask_frame(y: np.ndarray, x: np.ndarray, client=None) -> DaskSource:
    frame = dd.from_pandas(_frame(y, x), npartitions=PARTS)
    if client is not None:
        frame = client.persist(frame)
    return fl.data.from_dask(frame, y="y", x=COLUMNS, client=client)


def _dask_arrays(y: np.ndarray, x: np.ndarray, client=None) -> DaskSource:
    rows = N // PARTS
    ya, xa = da.from_array(y, chunks=rows), da.from_array(x, chunks=(rows, 3))
    if client is not None:
        ya, xa = client.persist([ya, xa])
    return fl.data.from_dask((ya, xa), client=client)


def _memmap(y: np.ndarray, x: np.ndarray, tmp_path) -> fl.data.ArraySource:
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "x.npy", x)
    ym, xm = np.load(tmp_path / "y.npy", mmap_mode="r"), np.load(tmp_path / "x.npy", mmap_mode="r")
    assert isinstance(xm, np.memmap)
    return fl.data.from_arrays(ym, xm, chunk_rows=N // PARTS)


def _assert_same_numbers(model, params, y, x, src) -> None:
    for fn in (fl.empirical_fisher, fl.observed_information):
        got, want = fn(model, params, src), fn(model, params, y, x)
        np.testing.assert_allclose(got.matrix, want.matrix, rtol=RTOL, atol=0)
        assert got.names == want.names
    np.testing.assert_allclose(
        fl.fisher(model, params, src).matrix, fl.fisher(model, params, x).matrix, rtol=RTOL, atol=0
    )


# --------------------------------------------------------------------------- here (no client)


@pytest.mark.parametrize("kind", ["frame", "arrays", "memmap"])
@pytest.mark.parametrize("name", ["poisson", "normal"])
def test_sources_here_equal_in_memory(problems, kind, name, tmp_path) -> None:
    model, params, y, x = problems[name]
    src = {"frame": _dask_frame, "arrays": _dask_arrays}.get(kind)
    source = _memmap(y, x, tmp_path) if src is None else src(y, x)
    if isinstance(source, DaskSource):
        assert source.client() is None  # no cluster: the partitions are computed here
        assert source.npartitions == PARTS
    assert [c[1].shape[0] for c in source] == [N // PARTS] * PARTS
    _assert_same_numbers(model, params, y, x, source)
    np.testing.assert_array_equal(fl.loglik(model, params, source), fl.loglik(model, params, y, x))


def test_memmap_default_chunks_and_bad_arguments(problems, tmp_path) -> None:
    _, _, y, x = problems["poisson"]
    source = _memmap(y, x, tmp_path)
    whole = fl.data.from_arrays(source.y, source.x)  # default chunk_rows: 64 MiB of rows, one chunk here
    assert [c[1].shape for c in whole] == [(N,)] and whole.num_rows == N
    with pytest.raises(fl.InvalidDataError, match="rows of y and x disagree"):
        fl.data.from_arrays(y, x[:-1])
    with pytest.raises(fl.FisherlabArgumentError, match="chunk_rows"):
        fl.data.from_arrays(y, x, chunk_rows=0)
    with pytest.raises(fl.FisherlabArgumentError, match="sliced by rows"):
        fl.data.from_arrays([1.0, 2.0])


def test_dask_chunkings_other_than_rows_are_refused(problems) -> None:
    _, _, y, x = problems["poisson"]
    ya = da.from_array(y, chunks=200)
    with pytest.raises(fl.InvalidDataError, match=r"X is chunked along its columns.*X\.rechunk\(\{1: -1\}\)"):
        fl.data.from_dask((ya, da.from_array(x, chunks=(200, 2))))
    with pytest.raises(fl.InvalidDataError, match=r"different row blocks.*rechunk"):
        fl.data.from_dask((ya, da.from_array(x, chunks=(250, 3))))
    unknown = da.from_array(x, chunks=(200, 3))[da.from_array(y, chunks=200) >= 0]
    with pytest.raises(fl.InvalidDataError, match="compute_chunk_sizes"):
        fl.data.from_dask((ya, unknown))
    frame = dd.from_pandas(_frame(y, x), npartitions=2)
    with pytest.raises(fl.InvalidDataError, match="'zz' is not in the DataFrame"):
        fl.data.from_dask(frame, y="y", x=["a", "zz"])
    with pytest.raises(fl.FisherlabArgumentError, match="y="):
        fl.data.from_dask(frame, x=["a"])
    with pytest.raises(fl.FisherlabArgumentError, match="dask DataFrame"):
        fl.data.from_dask(_frame(y, x), y="y", x=["a"])


# --------------------------------------------------------------------------- pickling


def _module_level_poisson(th, x):
    return fl.dist.Poisson(rate=jnp.exp(x @ th["beta"]))


def test_model_pickles_without_its_compiled_kernels(problems) -> None:
    model, params, y, x = problems["poisson"]
    want = fl.observed_information(model, params, y, x).matrix  # compiles kernels, decides autodiff
    assert model.state.kernels and model.derivatives == "auto"
    copy = cloudpickle.loads(cloudpickle.dumps(model))
    assert type(copy) is fl.Model and copy is not model
    assert not copy.state.kernels and copy.derivatives == "autodiff"  # the decision travels, kernels don't
    np.testing.assert_array_equal(fl.observed_information(copy, params, y, x).matrix, want)
    again = cloudpickle.loads(cloudpickle.dumps(model))
    assert again.state is copy.state  # later copies in a process share the compiled kernels
    # the standard pickle works for a module-level function; an executor object stays behind
    pool = fl.Model(_module_level_poisson, executor=Executor())
    plain = pickle.loads(pickle.dumps(pool))
    assert plain.executor is None and plain.fn is _module_level_poisson
    # built-in models and networks (cloudpickle)
    glm = fl.models.GLM("poisson")
    glm_copy = cloudpickle.loads(cloudpickle.dumps(glm))
    assert repr(glm_copy) == repr(glm) and glm_copy.fn.__self__ is glm_copy
    design = {"X": np.column_stack([np.ones(N), x[:, 0]])}
    np.testing.assert_array_equal(
        fl.loglik(glm_copy, {"beta": np.array([0.1, 0.2])}, y, design),
        fl.loglik(glm, {"beta": np.array([0.1, 0.2])}, y, design),
    )
    eqx = pytest.importorskip("equinox")
    import jax

    net, net_params = fl.Model.from_equinox(
        eqx.nn.MLP(3, 3, 4, 1, key=jax.random.PRNGKey(0)), lambda z: fl.dist.Categorical(logits=z)
    )
    labels = (y[:20] % 3).astype(int)
    np.testing.assert_array_equal(
        fl.loglik(cloudpickle.loads(cloudpickle.dumps(net)), net_params, labels, x[:20]),
        fl.loglik(net, net_params, labels, x[:20]),
    )


# --------------------------------------------------------------------------- on a cluster


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", host="127.0.0.1"
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as c,
    ):
        yield c


def _ran_here(self, fn):
    raise AssertionError("the pass ran here, not on the cluster")


@pytest.fixture
def on_cluster_only(monkeypatch):
    """A pass that fell back to this process fails the test."""
    monkeypatch.setattr(DaskSource, "_here", _ran_here)


def _workers_models(client) -> list[int]:
    def count() -> int:
        from fisherlab.model import _state

        return len(_state._UNPICKLED)

    return list(client.run(count).values())


@pytest.mark.parametrize("name", ["poisson", "normal"])
def test_cluster_sums_equal_in_memory(problems, client, on_cluster_only, name) -> None:
    model, params, y, x = problems[name]
    for source in (_dask_frame(y, x, client), _dask_arrays(y, x, client)):
        assert source.client() is client
        _assert_same_numbers(model, params, y, x, source)
    if name == "poisson":  # a built-in model: x is its design matrix
        glm = fl.models.GLM("poisson")
        np.testing.assert_allclose(
            fl.observed_information(glm, params, source).matrix,
            fl.observed_information(glm, params, y, x).matrix,
            rtol=RTOL,
            atol=0,
        )
    assert all(n > 0 for n in _workers_models(client))  # both workers received the model


def test_default_client_and_monte_carlo_seeds(problems, client, monkeypatch) -> None:
    model, params, y, x = problems["normal"]
    here = fl.fisher(model, params, _dask_arrays(y, x), method="mc", num_samples=20, seed=3)
    chunks = fl.data.chunks([(y[i : i + 200], x[i : i + 200]) for i in range(0, N, 200)])
    listed = fl.fisher(model, params, chunks, method="mc", num_samples=20, seed=3)
    np.testing.assert_array_equal(here.matrix, listed.matrix)  # chunk i's draws seeded by (seed, i)
    monkeypatch.setattr(DaskSource, "_here", _ran_here)
    with client.as_current():  # Dask's default client: no client= needed
        source = _dask_arrays(y, x)
        assert source.client() is client
        remote = fl.fisher(model, params, source, method="mc", num_samples=20, seed=3)
    np.testing.assert_allclose(remote.matrix, here.matrix, rtol=RTOL, atol=0)
    np.testing.assert_allclose(remote.error, here.error, rtol=RTOL, atol=0)
    assert remote.method == "mc"


def test_cluster_numeric_derivatives_keep_errors_and_evaluations(problems, client, on_cluster_only) -> None:
    _, params, y, x = problems["poisson"]
    model = fl.Model(_poisson, derivatives="numeric")
    local = fl.observed_information(model, params, fl.data.from_arrays(y, x, chunk_rows=200))
    remote = fl.observed_information(model, params, _dask_arrays(y, x, client))
    np.testing.assert_allclose(remote.matrix, local.matrix, rtol=RTOL, atol=0)
    np.testing.assert_allclose(remote.error, local.error, rtol=RTOL, atol=0)
    assert remote.evaluations == local.evaluations > 0


def test_cluster_errors_name_the_first_failing_chunk(problems, client, monkeypatch) -> None:
    model, params, y, x = problems["poisson"]
    bad_x = x.copy()
    bad_x[400 + 7, 1] = np.nan  # partition 2, its row 7
    bad_x[800 + 3, 0] = np.nan  # partition 4 fails too: the first in row order is named
    bad_y = y.copy()
    bad_y[600 + 11] = -1.0  # outside the Poisson's support: the model's check, on the worker
    with pytest.raises(fl.InvalidDataError) as data_here:
        fl.empirical_fisher(model, params, _dask_frame(y, bad_x))
    with pytest.raises(fl.InvalidDataError) as support_here:
        fl.observed_information(model, params, _dask_arrays(bad_y, x))
    assert str(data_here.value).startswith("chunk 2 (from row 400): x row 7")
    assert str(support_here.value).startswith("chunk 3 (from row 600): y at row 11")
    monkeypatch.setattr(DaskSource, "_here", _ran_here)
    with pytest.raises(fl.InvalidDataError) as data_there:
        fl.empirical_fisher(model, params, _dask_frame(y, bad_x, client))
    with pytest.raises(fl.InvalidDataError) as support_there:
        fl.observed_information(model, params, _dask_arrays(bad_y, x, client))
    assert str(data_there.value) == str(data_here.value)
    assert str(support_there.value) == str(support_here.value)


def test_cluster_names_a_partition_with_other_columns_and_an_unpicklable_model(problems, client) -> None:
    model, params, y, x = problems["poisson"]
    pieces = [_frame(y[i : i + 200], x[i : i + 200]) for i in range(0, N, 200)]
    pieces[3] = pieces[3].astype({"y": np.int64})  # partition 3: counts as integers, the others floats
    frame = dd.from_delayed([dask.delayed(p) for p in pieces], meta=pieces[0].iloc[:0], verify_meta=False)
    with pytest.raises(fl.InvalidDataError) as here:
        fl.empirical_fisher(model, params, fl.data.from_dask(frame, y="y", x=COLUMNS))
    with pytest.raises(fl.InvalidDataError) as there:
        fl.empirical_fisher(model, params, fl.data.from_dask(frame, y="y", x=COLUMNS, client=client))
    assert str(here.value).startswith("chunk 3: its fields") and str(there.value) == str(here.value)
    lock = threading.Lock()

    def locked(th, xx):
        with lock:
            return _poisson(th, xx)

    with pytest.raises(fl.ModelError, match="cloudpickle"):
        fl.empirical_fisher(fl.Model(locked), params, _dask_arrays(y, x, client))


def test_cluster_forwards_a_workers_warning(problems, client) -> None:
    _, params, y, x = problems["poisson"]

    def untraceable(th, xx):
        float(th["beta"][0])  # not traceable by JAX: "auto" falls back to numeric, with a warning
        return _poisson(th, xx)

    with pytest.warns(UserWarning, match="cannot be traced by JAX"):
        got = fl.empirical_fisher(fl.Model(untraceable), params, _dask_arrays(y, x, client))
    np.testing.assert_allclose(
        got.matrix, fl.empirical_fisher(fl.Model(_poisson), params, y, x).matrix, rtol=1e-6
    )


def test_fit_on_the_cluster_equals_the_fit_in_memory(problems, client, on_cluster_only) -> None:
    model, _, y, x = problems["poisson"]
    init = {"beta": np.zeros(3)}
    want = fl.fit(model, y, x, init=init)
    got = fl.fit(model, _dask_frame(y, x, client), init=init)
    np.testing.assert_allclose(got.flat_params, want.flat_params, rtol=RTOL, atol=1e-14)
    for kind in ("observed", "sandwich"):
        np.testing.assert_allclose(got.cov(kind).matrix, want.cov(kind).matrix, rtol=RTOL, atol=0)


def test_a_closed_cluster_is_a_named_error_not_dasks(problems) -> None:
    # Data persisted on a cluster that has closed cannot be read again; a fit's covariances read
    # the source again, so this is what a user meets after leaving the `with Client()` block.
    model, params, y, x = problems["poisson"]
    with (
        distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster,
        distributed.Client(cluster, set_as_default=False) as c,
    ):
        persisted = c.persist(dd.from_pandas(_frame(y, x), npartitions=PARTS))
        given = fl.data.from_dask(persisted, y="y", x=COLUMNS, client=c)
        fl.empirical_fisher(model, params, given)  # works while the cluster is up
    with pytest.raises(fl.InvalidDataError, match="client this source was made with is closed"):
        fl.empirical_fisher(model, params, given)
    orphan = fl.data.from_dask(persisted, y="y", x=COLUMNS)  # no client: computed here
    with pytest.raises(fl.InvalidDataError, match="partition 0 of the Dask collection could not be computed"):
        fl.empirical_fisher(model, params, orphan)
