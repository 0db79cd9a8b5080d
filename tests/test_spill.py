"""Passes over a chunk source: the scratch copy of a costly source (``data/_spill.py``), read
once and replayed exactly, and chunks computed in parallel (``Chunks.reduce``).

Oracles: the same fit with ``FISHERLAB_SCRATCH=off`` (every pass reads the source), or on one
thread, which must be equal bit for bit (the same bytes reach the same kernels, and the sums are
taken in chunk order); the count of reads of the source; the in-memory fit.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import fisherlab as fl
from fisherlab.data import _chunks, _spill


class Counted(fl.data.Chunks):
    """A source that counts its reads; ``spill`` as asked."""

    def __init__(self, y: np.ndarray, x: object, size: int, spill: bool = True) -> None:
        super().__init__(self._read)
        self.y, self.x, self.size, self.reads = y, x, size, 0
        self.spill = spill

    def _read(self):
        self.reads += 1
        for i in range(0, self.y.shape[0], self.size):
            x = self.x if self.x is None else {k: v[i : i + self.size] for k, v in self.x.items()}
            yield self.y[i : i + self.size], x


def _poisson(n: int = 2011, seed: int = 3) -> tuple[np.ndarray, dict[str, np.ndarray], fl.Model]:
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    y = rng.poisson(np.exp(X @ np.array([0.3, 0.4, -0.2]))).astype(float)
    x = {"X": X, "t": np.arange(n)}  # a float and an integer leaf, in a dict
    model = fl.Model(lambda th, x: fl.dist.Poisson(jnp.exp(x["X"] @ th["b"])))
    return y, x, model


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FISHERLAB_SCRATCH", str(tmp_path))
    monkeypatch.setattr(_spill, "RESERVE", 0)
    return tmp_path


def test_fit_reads_a_costly_source_twice_and_equals_reading_it_every_pass(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    y, x, model = _poisson()
    init = {"b": np.zeros(3)}
    kept = Counted(y, x, 300)
    res = fl.fit(model, kept, init=init)
    passes = res.objective.source.passes
    assert passes >= 4
    # the first chunk (the fit's inspection), then one full pass recorded; the rest replayed
    assert kept.reads == 2
    assert res.cov("sandwich").matrix.shape == (3, 3) and kept.reads == 2
    assert os.listdir(scratch) == []  # the copy is an anonymous file

    monkeypatch.setenv("FISHERLAB_SCRATCH", "off")
    fresh = Counted(y, x, 300)
    ref = fl.fit(model, fresh, init=init)
    assert fresh.reads == ref.objective.source.passes + 1
    np.testing.assert_array_equal(res.params["b"], ref.params["b"])
    for kind, hc in (("observed", None), ("sandwich", "HC1"), ("sandwich", "HC3")):
        options = {} if hc is None else {"hc": hc}
        np.testing.assert_array_equal(res.cov(kind, **options).matrix, ref.cov(kind, **options).matrix)
    memory = fl.fit(model, y, x, init=init)
    np.testing.assert_allclose(res.params["b"], memory.params["b"], rtol=1e-10)


def test_a_source_that_is_not_costly_is_read_every_pass(scratch: Path) -> None:
    y, x, model = _poisson()
    plain = Counted(y, x, 500, spill=False)
    res = fl.fit(model, plain, init={"b": np.zeros(3)})
    assert plain.reads == res.objective.source.passes + 1


def test_no_room_on_the_scratch_disk_reads_the_source_every_pass(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    y, x, model = _poisson()
    monkeypatch.setattr(_spill, "RESERVE", 2**62)
    src = Counted(y, x, 500)
    res = fl.fit(model, src, init={"b": np.zeros(3)})
    assert src.reads == res.objective.source.passes + 1
    assert res.converged


def test_chunks_that_are_not_numeric_arrays_are_not_copied(scratch: Path) -> None:
    y, x, model = _poisson(n=600)
    listed = Counted(y, x, 200)
    listed._factory = lambda: (
        (pd.Series(y[i : i + 200]), {k: v[i : i + 200] for k, v in x.items()}) for i in (0, 200, 400)
    )
    res = fl.fit(model, listed, init={"b": np.zeros(3)})
    ref = fl.fit(model, y, x, init={"b": np.zeros(3)})
    np.testing.assert_allclose(res.params["b"], ref.params["b"], rtol=1e-10)
    assert listed._scratch is not None and listed._scratch.failed


def test_a_pass_stopped_early_is_not_kept(scratch: Path) -> None:
    y, x, _ = _poisson(n=900)
    src = Counted(y, x, 300)
    src.keep_passes()
    for index, *_ in src:
        if index == 1:
            break
    assert src._scratch is not None and not src._scratch.complete and not src._scratch.failed
    first = [(a.copy(), b["X"].copy()) for _, a, b in src]  # recorded
    again = [(a, b["X"]) for _, a, b in src]  # replayed
    assert src.reads == 2 and src._scratch.complete
    for (ya, xa), (yb, xb) in zip(first, again, strict=True):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)
        assert xb.dtype == xa.dtype


def test_glm_on_a_parquet_table_reads_the_file_for_the_first_pass_and_one_fit_pass(
    scratch: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(5)
    n = 3000
    frame = pd.DataFrame({"a": rng.normal(size=n), "g": rng.choice(["u", "v", "w"], size=n)})
    frame["y"] = rng.poisson(np.exp(0.2 + 0.3 * frame["a"] + 0.2 * (frame["g"] == "v")))
    path = tmp_path_factory.mktemp("pq") / "d.parquet"
    frame.to_parquet(path, row_group_size=700)
    reads = []
    original = fl.data.ParquetSource._pieces

    def counted(self, columns):
        reads.append(1)
        yield from original(self, columns)

    monkeypatch.setattr(fl.data.ParquetSource, "_pieces", counted)
    res = fl.glm("y ~ a + C(g)", fl.data.from_parquet(path, chunk_rows=512), family="poisson")
    # the first pass; the first chunk, read by the GLM's checks and again by the fit; one full
    # fit pass (recorded): every later pass of the fit replays it
    assert len(reads) == 4
    assert res.objective.source.passes >= 4
    ref = fl.glm("y ~ a + C(g)", frame, family="poisson")
    np.testing.assert_allclose(res.flat_params, ref.flat_params, rtol=1e-10)
    hc1 = res.cov("sandwich", hc="HC1").matrix
    np.testing.assert_allclose(hc1, ref.cov("sandwich", hc="HC1").matrix, rtol=1e-9)


def test_scratch_setting() -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FISHERLAB_SCRATCH", "/no/such/directory")
        with pytest.raises(fl.InvalidOptionError, match="FISHERLAB_SCRATCH"):
            _spill.scratch_directory()
        mp.setenv("FISHERLAB_SCRATCH", "OFF")
        assert _spill.scratch_directory() is None
        mp.delenv("FISHERLAB_SCRATCH")
        where = _spill.scratch_directory()
        assert where is None or _spill._file_system(where) not in _spill.MEMORY_FILE_SYSTEMS
    if Path("/proc/self/mounts").exists():
        assert _spill._file_system(Path("/proc/self")) == "proc"


def test_chunks_in_parallel_equal_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    y, x, model = _poisson(n=3001)
    init = {"b": np.zeros(3)}
    monkeypatch.setattr(_chunks, "COMPUTE_THREADS", 3)
    parallel = fl.fit(model, Counted(y, x, 250, spill=False), init=init)
    monkeypatch.setattr(_chunks, "COMPUTE_THREADS", 1)
    serial = fl.fit(model, Counted(y, x, 250, spill=False), init=init)
    np.testing.assert_array_equal(parallel.params["b"], serial.params["b"])
    np.testing.assert_array_equal(parallel.cov("observed").matrix, serial.cov("observed").matrix)
    assert parallel.loglik == serial.loglik


class _Term:
    """A thread-safe per-chunk function: the sum of ``y``, whether it runs in 64-bit JAX, and an
    error on the chunks starting at 750 (slow) and 1000 (fast, computed at the same time)."""

    thread_safe = True

    def __call__(self, data: fl.data.Data) -> tuple[np.ndarray, np.ndarray]:
        first = float(data.y[0])
        if first == 750.0:
            time.sleep(0.2)  # the later failing chunk finishes first
        if first in (750.0, 1000.0):
            raise fl.InvalidDataError(f"bad value {first}")
        wide = float(jnp.ones(1).dtype == jnp.float64)
        return np.asarray(np.sum(data.y)), np.asarray(wide)


def test_parallel_chunks_keep_precision_order_and_the_first_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_chunks, "COMPUTE_THREADS", 4)
    good = fl.data.chunks(lambda: ((np.arange(i, i + 250.0),) for i in range(2000, 5000, 250)))
    for x64 in (True, False):
        with jax.enable_x64(x64):
            (total, wide), rows = good.reduce(_Term())
        assert rows == 3000 and total == np.sum(np.arange(2000, 5000.0))
        assert wide == (12.0 if x64 else 0.0)  # every chunk ran in the caller's precision
    bad = fl.data.chunks(lambda: ((np.arange(i, i + 250.0),) for i in range(0, 3000, 250)))
    with pytest.raises(fl.InvalidDataError, match=r"chunk 3 \(from row 750\): bad value 750"):
        bad.reduce(_Term())
