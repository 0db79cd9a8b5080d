"""``fl.glm(formula, <table read in chunks>)``: the design fixed by a first pass, the fit streamed.

The oracle of every number is ``fl.glm`` on the same table in memory (the concatenated pandas
DataFrame, or ``pd.read_csv`` / ``pd.read_parquet`` of the file), computed in the test. Sources:
``fl.data.frames`` (DataFrame pieces), ``fl.data.from_parquet`` without ``y=`` (a file of several
row groups), ``fl.data.from_csv`` and a dask DataFrame. The hostile half: data errors in a late
chunk named by column, chunk and the source's row; a table that changes between passes.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import fisherlab as fl
from fisherlab.formula import build_design
from fisherlab.formula._streamed import first_pass
from fisherlab.models import Family, glm, glm_start

RTOL = 1e-10
"""Streamed sums are float64 partial sums added with compensation, the in-memory ones one NumPy sum:
they differ by a few roundings (measured: ~1e-12 at most, the covariances' inversions included)."""

N, ROWS = 600, 150  # four chunks of 150 rows


def _close(got: object, want: object, rtol: float = RTOL) -> None:
    """Equal to ``rtol`` relative to the largest entry of ``want``."""
    a, b = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert a.shape == b.shape
    scale = max(float(np.max(np.abs(b))), 1e-300)
    assert float(np.max(np.abs(a - b))) <= rtol * scale, float(np.max(np.abs(a - b))) / scale


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    rng = np.random.default_rng(14)
    x = rng.uniform(0.5, 3.0, N)
    z = rng.normal(size=N)
    g = rng.choice(["a", "c", "e"], N)
    g[460::7] = "b"  # a level seen only in the last chunk, sorted between the others
    h = rng.choice(["u", "v"], N)
    exposure = rng.uniform(0.5, 2.0, N)
    eta = 0.2 + 0.4 * np.log(x) + np.select([g == "b", g == "c", g == "e"], [0.5, -0.3, 0.2], 0.0)
    trials = rng.integers(1, 9, N)
    p = 1 / (1 + np.exp(-(0.3 - 0.6 * z + 0.4 * (h == "v"))))
    return pd.DataFrame(
        {
            "count": rng.poisson(exposure * np.exp(eta)).astype(float),
            "x": x,
            "z": z,
            "g": g,
            "h": h,
            "exposure": exposure,
            "shift": rng.normal(0.0, 0.1, N),
            "prop": rng.binomial(trials, p) / trials,
            "trials": trials.astype(float),
            "height": 1.0 + 0.8 * z - 0.3 * x + rng.normal(0.0, 0.7, N),
            "w": rng.uniform(0.5, 2.0, N),
        }
    )


def _pieces(df: pd.DataFrame) -> fl.data.FrameSource:
    return fl.data.frames(lambda: (df.iloc[i : i + ROWS] for i in range(0, len(df), ROWS)))


POISSON = "count ~ np.log(x) + C(g) + center(x)"


def _same_fit(res: fl.models.GLMFit, ref: fl.models.GLMFit, kinds: tuple[str, ...]) -> None:
    assert type(res.data).__name__ == "StreamedData" and res.nobs == ref.nobs
    assert res.names == ref.names
    _close(res.flat_params, ref.flat_params)
    for kind in kinds:
        _close(res.cov(kind).matrix, ref.cov(kind).matrix)
    for what in ("deviance", "null_deviance", "aic", "bic", "loglik"):
        assert getattr(res, what) == pytest.approx(getattr(ref, what), rel=RTOL), what
    assert (res.df_resid, res.df_null) == (ref.df_resid, ref.df_null)
    assert res.dispersion_r == pytest.approx(ref.dispersion_r, rel=RTOL)
    assert res.table is None and res.rows is None  # nothing of N rows is kept


KINDS = ("observed", "expected", "empirical", "sandwich")


POISSON_OPTIONS: dict[str, Any] = {"family": "poisson", "exposure": "exposure", "offset": "shift"}


@pytest.fixture(scope="module")
def poisson(table: pd.DataFrame) -> tuple[fl.models.GLMFit, fl.models.GLMFit]:
    """The streamed fit on DataFrame pieces, and its oracle in memory."""
    return fl.glm(POISSON, _pieces(table), **POISSON_OPTIONS), fl.glm(POISSON, table, **POISSON_OPTIONS)


def test_poisson_late_level_exposure_transforms_equal_in_memory(table: pd.DataFrame, poisson) -> None:
    res, ref = poisson
    assert "C(g)[T.b]" in res.names  # the level of the last chunk, in its sorted place
    _same_fit(res, ref, KINDS)  # the null deviance: the intercept-only fit with the offset, streamed
    new = table.iloc[455:470]  # rows with the late level: the fixed spec builds their design
    pd.testing.assert_frame_equal(res.predict(new), ref.predict(new), rtol=RTOL, atol=0.0)


def test_lr_test_of_nested_streamed_fits(table: pd.DataFrame, poisson) -> None:
    res, _ = poisson
    smaller = fl.glm("count ~ np.log(x)", _pieces(table), **POISSON_OPTIONS)
    test = res.lr_test(smaller)
    assert test.df == 4 and test.statistic == pytest.approx(2 * (res.loglik - smaller.loglik), rel=RTOL)
    other = fl.glm("count ~ z", _pieces(table), **POISSON_OPTIONS)
    with pytest.raises(
        fl.ModelError, match="column 1 of the smaller fit's design is not in the column space"
    ):
        res.lr_test(other)  # z is not in the span of the bigger design
    with pytest.raises(fl.ModelError, match="same data"):  # streamed against in memory
        res.lr_test(fl.glm("count ~ np.log(x)", table, **POISSON_OPTIONS))


def test_binomial_with_weights_equals_in_memory(table: pd.DataFrame) -> None:
    formula = "prop ~ z + h"
    ref = fl.glm(formula, table, family="binomial", weights="trials")
    res = fl.glm(formula, _pieces(table), family="binomial", weights="trials")
    _same_fit(res, ref, KINDS)


def test_gaussian_r_dispersion_and_scale_equal_in_memory(table: pd.DataFrame) -> None:
    formula = "height ~ scale(z) + x"
    ref = fl.glm(formula, table, family="gaussian", weights="w", dispersion="r")
    res = fl.glm(formula, _pieces(table), family="gaussian", weights="w", dispersion="r")
    _same_fit(res, ref, KINDS)
    assert res.dispersion_r > 0 and res.wald_df()[0] == ref.wald_df()[0] == N - 3


def test_parquet_csv_and_dask_tables_equal_in_memory(table: pd.DataFrame, poisson, tmp_path: Path) -> None:
    _, ref = poisson
    parquet, csv = tmp_path / "t.parquet", tmp_path / "t.csv"
    table.to_parquet(parquet, row_group_size=100)  # row groups of 100, chunks of 150
    table.to_csv(csv, index=False)  # read back to within an ulp: the same fit to far below RTOL
    dd = pytest.importorskip("dask.dataframe")
    for data in (
        fl.data.from_parquet(parquet, chunk_rows=ROWS),
        fl.data.from_csv(csv, chunk_rows=ROWS),
        dd.from_pandas(table, npartitions=4),
    ):
        res = fl.glm(POISSON, data, **POISSON_OPTIONS)
        assert res.names == ref.names
        _close(res.flat_params, ref.flat_params)
        _close(res.cov("sandwich").matrix, ref.cov("sandwich").matrix)
        assert res.deviance == pytest.approx(ref.deviance, rel=RTOL)


def test_missing_drop_per_chunk_equals_in_memory(table: pd.DataFrame) -> None:
    holes = table.copy()
    holes.loc[[170, 171], "x"] = np.nan  # both in chunk 1
    holes.loc[200, "g"] = None
    kw: dict[str, Any] = {"family": "poisson", "exposure": "exposure", "offset": "shift", "missing": "drop"}
    ref = fl.glm(POISSON, holes, **kw)
    res = fl.glm(POISSON, _pieces(holes), **kw)
    assert (
        res.nobs == ref.nobs == N - 3
        and res.notes[-1] == ref.notes[-1] == "3 of 600 rows with missing values dropped"
    )
    assert res.names == ref.names
    _close(res.flat_params, ref.flat_params)
    assert res.deviance == pytest.approx(ref.deviance, rel=RTOL)


# --------------------------------------------------------------------------- the table sources


def test_table_sources_read_only_the_columns_asked_in_chunks(table: pd.DataFrame, tmp_path: Path) -> None:
    parquet, csv = tmp_path / "t.parquet", tmp_path / "t.csv"
    table.to_parquet(parquet, row_group_size=100)
    table.to_csv(csv, index=False)
    src = fl.data.from_parquet(parquet, columns=["x", "g"], chunk_rows=ROWS)
    assert isinstance(src, fl.data.TableSource) and src.num_rows == N and src.columns == ["x", "g"]
    parts = list(src.tables(["g"]))
    assert [p.shape for p in parts] == [(ROWS, 1)] * 4  # across row groups of 100
    assert parts[1].index[0] == ROWS  # rows named by their position in the file
    pd.testing.assert_series_equal(pd.concat(parts)["g"], table["g"], check_dtype=False, check_index=False)
    lines = list(fl.data.from_csv(csv, chunk_rows=ROWS).tables(["x"]))
    assert lines[0].index[0] == 2 and lines[-1].index[-1] == N + 1  # lines of the file, header line 1
    with pytest.raises(fl.FisherlabArgumentError, match="table source"):
        list(src)  # made without y=: not a source of (y, x) chunks


# --------------------------------------------------------------------------- hostile


def test_nan_in_a_late_chunk_names_column_chunk_and_row(table: pd.DataFrame, tmp_path: Path) -> None:
    bad = table.copy()
    bad.loc[520, "x"] = np.nan
    bad.to_parquet(tmp_path / "t.parquet", row_group_size=100)
    with pytest.raises(
        fl.InvalidDataError, match=r"t\.parquet, chunk 3 \(rows 450-599\): .*in x \(1\); first at row 520"
    ):
        fl.glm(POISSON, fl.data.from_parquet(tmp_path / "t.parquet", chunk_rows=ROWS), family="poisson")
    bad.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(fl.InvalidDataError, match=r"t\.csv, chunk 3 \(lines 452-601\): .*first at row 522"):
        fl.glm(POISSON, fl.data.from_csv(tmp_path / "t.csv", chunk_rows=ROWS), family="poisson")


def test_text_typo_in_a_numeric_column_of_chunk_3(table: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    lines = path.read_text().splitlines()
    cells = lines[530 - 1].split(",")  # file line 530: data row 528, in chunk 3
    cells[table.columns.get_loc("z")] = "0.5.1"
    lines[530 - 1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        fl.InvalidDataError,
        match=r"t\.csv, chunk 3 .*column 'z' holds numbers except in 1 of 150 rows: row 530 is '0\.5\.1'",
    ):
        fl.glm("prop ~ z", fl.data.from_csv(path, chunk_rows=ROWS), family="binomial", weights="trials")


def test_a_column_missing_from_the_file(table: pd.DataFrame, tmp_path: Path) -> None:
    table.to_parquet(tmp_path / "t.parquet")
    with pytest.raises(fl.InvalidDataError, match=r"column\(s\) 'zz' not in the data \(t\.parquet\)"):
        fl.glm("count ~ zz + x", fl.data.from_parquet(tmp_path / "t.parquet"), family="poisson")
    with pytest.raises(fl.InvalidDataError, match=r"'zz' is not in t\.parquet"):
        fl.data.from_parquet(tmp_path / "t.parquet", columns=["zz"])


def test_a_level_the_first_pass_did_not_see_is_named(table: pd.DataFrame) -> None:
    calls = itertools.count()

    def factory():  # call 0: frames reads the columns; call 1: the first pass; then row 320 changes
        changed = table.copy()
        if next(calls) > 1:
            changed.loc[320, "g"] = "q"
        return (changed.iloc[i : i + ROWS] for i in range(0, N, ROWS))

    with pytest.raises(
        fl.InvalidDataError,
        match=r"chunk 2 \(rows 300-449\): the column 'g' has the level 'q' at row 320, which the first pass",
    ):
        fl.glm(POISSON, fl.data.frames(factory), family="poisson")


def test_response_outside_support_in_a_late_chunk(table: pd.DataFrame) -> None:
    bad = table.copy()
    bad.loc[470, "count"] = -2.0
    with pytest.raises(
        fl.InvalidDataError, match=r"chunk 3 \(rows 450-599\): response 'count' at row 470 is -2"
    ):
        fl.glm(POISSON, _pieces(bad), family="poisson")


@pytest.mark.parametrize(
    ("formula", "match"),
    [
        ("count ~ bs(x, df=4)", r"bs\(x, df=4\) without knots, lower_bound, upper_bound .*declare it"),
        ("count ~ poly(x, 2)", r"poly\(\) builds orthogonal polynomials .*I\(x\*\*2\)"),
        ("count ~ lag(x)", r"lag\(\) reads the previous row"),
    ],
)
def test_transforms_needing_the_whole_column_are_named(table: pd.DataFrame, formula: str, match: str) -> None:
    with pytest.raises(fl.FormulaError, match=match):
        fl.glm(formula, _pieces(table), family="poisson")


def test_splines_with_declared_state_give_the_in_memory_design(table: pd.DataFrame) -> None:
    formula = "count ~ bs(x, knots=[1.2, 2.0], lower_bound=0.5, upper_bound=3.0) + C(g):z"
    plan = first_pass(_pieces(table), formula, family=Family.POISSON)
    want = build_design(table, formula, family="poisson")
    assert plan.columns == want.columns and plan.n == N
    got = np.concatenate([np.asarray(x) for _, _, x in plan.source()])
    _close(got, want.X, rtol=1e-14)


@pytest.mark.parametrize(
    ("family", "link", "column"),
    [
        ("gaussian", None, "height"),
        ("gamma", None, "x"),
        ("inverse_gaussian", None, "x"),
        ("negative_binomial", None, "count"),
        ("poisson", "identity", "count"),  # shifted into the link's domain, eta > 0
        ("binomial", "log", "any"),  # eta < 0
    ],
)
def test_streamed_starting_values_equal_in_memory(
    table: pd.DataFrame, family: str, link: str | None, column: str
) -> None:
    X = np.column_stack([np.ones(N), table["z"].to_numpy()])
    y = (table["count"] > 0).to_numpy(dtype=float) if column == "any" else table[column].to_numpy()
    model = glm(family, link)
    src = fl.data.chunks(lambda: ((y[i : i + ROWS], X[i : i + ROWS]) for i in range(0, N, ROWS)))
    got, want = glm_start(model, src, None), glm_start(model, y, X)
    assert sorted(got) == sorted(want)
    for key in want:
        _close(got[key], want[key], rtol=1e-12)
