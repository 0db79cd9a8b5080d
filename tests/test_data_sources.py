"""Data sources beyond memory (issue 14, first part): fl.data.from_parquet and chunk sources in the
information functions, against the in-memory results."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import fisherlab as fl
from fisherlab.data._chunks import CompensatedSum

N, BETA = 1003, np.array([0.3, -0.5, 0.2])


@pytest.fixture(scope="module")
def poisson(tmp_path_factory) -> dict:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 3))
    y = rng.poisson(np.exp(x @ BETA)).astype(np.float64)
    path = tmp_path_factory.mktemp("parquet") / "d.parquet"
    frame = pd.DataFrame({"y": y, "a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "unused": rng.normal(size=N)})
    frame.to_parquet(path, row_group_size=300)
    model = fl.Model(lambda th, xx: fl.dist.Poisson(rate=jnp.exp(xx @ th["beta"])))
    return {"x": x, "y": y, "path": path, "frame": frame, "model": model, "params": {"beta": BETA}}


def _source(p: dict, chunk_rows: int = 128) -> fl.data.ParquetSource:
    return fl.data.from_parquet(p["path"], y="y", x=["a", "b", "c"], chunk_rows=chunk_rows)


@pytest.mark.parametrize("chunk_rows", [128, 1003, 5000])
def test_parquet_source_equals_in_memory(poisson, chunk_rows) -> None:
    m, th, y, x = poisson["model"], poisson["params"], poisson["y"], poisson["x"]
    src = _source(poisson, chunk_rows)
    assert src.num_rows == N
    np.testing.assert_array_equal(fl.loglik(m, th, src), fl.loglik(m, th, y, x))
    np.testing.assert_array_equal(fl.score(m, th, src), fl.score(m, th, y, x))
    for fn in (fl.empirical_fisher, fl.observed_information):
        for reduction in ("sum", "mean"):
            got = fn(m, th, src, reduction=reduction).matrix
            want = fn(m, th, y, x, reduction=reduction).matrix
            np.testing.assert_allclose(got, want, rtol=1e-12)
    # the expected information of the source's covariates, and its closed form X^T diag(mu) X
    mu = np.exp(x @ BETA)
    np.testing.assert_allclose(fl.fisher(m, th, src).matrix, x.T @ (mu[:, None] * x), rtol=1e-12)
    assert fl.fisher(m, th, src, n=3).matrix == pytest.approx(3 * fl.fisher(m, th, x).matrix, rel=1e-12)


def test_chunks_only_read_the_columns_asked_for(poisson, monkeypatch) -> None:
    import pyarrow.parquet as pq

    seen: list[list[str]] = []
    original = pq.ParquetFile.iter_batches

    def spy(self, *args, **kwargs):
        seen.append(list(kwargs["columns"]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    chunks = list(_source(poisson))
    assert seen and all(cols == ["y", "a", "b", "c"] for cols in seen)  # "unused" is never decoded
    # chunks of exactly chunk_rows across the file's row groups of 300 (one compile), the last shorter
    assert [c[1].shape[0] for c in chunks] == [128] * 7 + [N - 7 * 128]
    assert chunks[0][2].shape == (128, 3)
    np.testing.assert_array_equal(np.concatenate([c[2] for c in chunks]), poisson["x"])


def test_single_covariate_and_columns_keyword(poisson) -> None:
    one = fl.data.from_parquet(poisson["path"], y="y", x="a", chunk_rows=500)
    assert [c[2].shape for c in one] == [(500,), (500,), (3,)]
    np.testing.assert_array_equal(np.concatenate([c[1] for c in one]), poisson["y"])
    cols = fl.data.from_parquet(poisson["path"], ["a", "b"], 400, y="y")
    assert next(iter(cols))[2].shape == (400, 2)


def test_curvature_and_laplace_read_a_parquet_source(poisson) -> None:
    m, th, y, x = poisson["model"], poisson["params"], poisson["y"], poisson["x"]
    src = _source(poisson)
    got = fl.curvature(m, th, src, kind="fisher", structure="dense").to_dense().matrix
    np.testing.assert_allclose(got, fl.fisher(m, th, x).matrix, rtol=1e-10)
    lml = fl.laplace(m, th, src, structure="full").log_marginal_likelihood()
    assert lml == pytest.approx(
        fl.laplace(m, th, y, x, structure="full").log_marginal_likelihood(), rel=1e-10
    )


def test_bad_sources_are_named(poisson, tmp_path) -> None:
    m, th, frame = poisson["model"], poisson["params"], poisson["frame"]
    with pytest.raises(fl.InvalidDataError, match=r"'zz' is not in d\.parquet.*'unused'"):
        fl.data.from_parquet(poisson["path"], y="y", x=["a", "zz"])
    with pytest.raises(fl.FisherlabArgumentError, match="no such file"):
        fl.data.from_parquet(tmp_path / "nope.parquet", y="y")
    text = tmp_path / "not.parquet"
    text.write_text("y,a\n1,2\n")
    with pytest.raises(fl.InvalidDataError, match="not readable as Parquet"):
        fl.data.from_parquet(text, y="y")
    with pytest.raises(fl.FisherlabArgumentError, match="y="):
        fl.data.from_parquet(poisson["path"], x=["a"])
    with pytest.raises(fl.FisherlabArgumentError, match="chunk_rows"):
        fl.data.from_parquet(poisson["path"], y="y", chunk_rows=0)
    with pytest.raises(fl.InvalidDataError, match="named twice"):
        fl.data.from_parquet(poisson["path"], y="y", x=["a", "a"])
    bad = frame.copy()
    bad.loc[500, "b"] = np.nan  # a missing value: chunk 3 starts at row 384, so its row 116
    path = tmp_path / "nan.parquet"
    bad.to_parquet(path)
    with pytest.raises(fl.InvalidDataError, match=r"chunk 3 \(from row 384\): x row 116"):
        fl.empirical_fisher(m, th, fl.data.from_parquet(path, y="y", x=["a", "b", "c"], chunk_rows=128))
    bad = frame.copy()
    bad.loc[700, "y"] = -1.0  # outside the Poisson's support: chunk 5 from row 640, its row 60
    bad.to_parquet(path)
    with pytest.raises(fl.InvalidDataError, match=r"chunk 5 \(from row 640\): y at row 60"):
        fl.observed_information(m, th, fl.data.from_parquet(path, y="y", x=["a", "b", "c"], chunk_rows=128))
    with pytest.raises(fl.FisherlabArgumentError, match="leave x out"):
        fl.loglik(m, th, _source(poisson), poisson["x"])
    nulls = frame.astype({"y": "Int64"}).copy()
    nulls.loc[3, "y"] = pd.NA
    nulls.to_parquet(path)
    with pytest.raises(fl.InvalidDataError, match=r"chunk 0 .*row 3"):
        fl.loglik(m, th, fl.data.from_parquet(path, y="y", x=["a", "b", "c"], chunk_rows=128))


def test_chunks_with_other_columns_are_named(poisson) -> None:
    m, th, y, x = poisson["model"], poisson["params"], poisson["y"], poisson["x"]
    src = fl.data.chunks([(y[:500], x[:500]), (y[500:], x[500:, :2])])
    with pytest.raises(fl.InvalidDataError, match="chunk 1: its fields"):
        fl.empirical_fisher(m, th, src)


def test_compensated_sum_keeps_the_digits_a_plain_sum_loses() -> None:
    parts = [1e16, 1.0, -1e16, 1.0] * 1000
    total = CompensatedSum()
    for v in parts:
        total.add(np.array([v]))
    assert total.value[0] == 2000.0
    assert sum(parts) != 2000.0  # the plain running sum loses every 1.0 next to 1e16
