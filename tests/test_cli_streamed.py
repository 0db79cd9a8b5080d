"""``fisherlab fit FILE --stream``: a formula GLM fitted to a Parquet or CSV file read in chunks.

The oracle is the same command on the same file read in memory (``--no-stream``), whose numbers
the rest of the suite holds against R and statsmodels; streamed and in-memory must agree to
1e-10 relative, for every covariance kind the command prints.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_support import assert_one_error_line, call

RTOL = 1e-10


def _frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "g": rng.choice(["a", "b", "c"], size=n),
            "firm": rng.integers(0, 40, size=n),
            "trials": rng.integers(1, 6, size=n),
        }
    )
    df.loc[n - 5 :, "g"] = "d"  # a level seen only in the last chunk
    eta = 0.3 + 0.2 * df.x1 - 0.1 * df.x2 + 0.2 * (df.g == "b")
    df["y"] = rng.poisson(np.exp(eta))
    df["succ"] = rng.binomial(df.trials, 1 / (1 + np.exp(-eta)))
    return df


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    code, out, err = call(capsys, "fit", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def _same(a: dict, b: dict) -> None:
    assert a["names"] == b["names"]
    for key in ("params", "se"):
        x, y = np.array(list(a[key].values())), np.array(list(b[key].values()))
        assert np.max(np.abs(x - y)) <= RTOL * np.max(np.abs(y)), key
    x, y = np.asarray(a["cov"]), np.asarray(b["cov"])
    assert np.max(np.abs(x - y)) <= RTOL * np.max(np.abs(y))
    assert a["loglik"] == pytest.approx(b["loglik"], rel=RTOL)


_COVS = {
    "observed": ["--cov", "observed"],
    "expected": ["--cov", "expected"],
    "hc3": ["--cov", "sandwich", "--hc", "HC3"],
    "cluster": ["--cov", "cluster", "--cluster", "firm"],
}
# two combinations by default; every one with the slow tests (each is two fits of the command)
_CASES = [
    pytest.param(
        suffix,
        name,
        marks=() if (suffix, name) in {("parquet", "hc3"), ("csv", "cluster")} else pytest.mark.slow,
    )
    for suffix in ("parquet", "csv")
    for name in _COVS
]


@pytest.mark.parametrize(("suffix", "cov"), _CASES)
def test_streamed_fit_equals_in_memory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str, cov: str
) -> None:
    df = _frame()
    path = tmp_path / f"d.{suffix}"
    if suffix == "parquet":
        df.to_parquet(path, row_group_size=700)
    else:
        df.to_csv(path, index=False)
    args = [str(path), "--formula", "y ~ x1 + x2 + C(g)", "--family", "poisson", *_COVS[cov], "--no-check"]
    streamed = _json(capsys, *args, "--stream", "--chunk-rows", "512")
    _same(streamed, _json(capsys, *args, "--no-stream"))
    assert "C(g)[T.d]" in streamed["names"]


def test_trials_dropna_and_the_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    df = _frame(seed=1)
    df.loc[[17, 1900], "x1"] = np.nan
    path = tmp_path / "d.parquet"
    df.to_parquet(path, row_group_size=1000)
    args = [
        str(path),
        "--formula",
        "succ ~ x1 + x2",
        "--family",
        "binomial",
        "--trials",
        "trials",
        "--dropna",
    ]
    streamed = _json(capsys, *args, "--stream", "--chunk-rows", "700", "--check")
    memory = _json(capsys, *args, "--no-stream", "--no-check")  # the check's own oracle: test_check_streamed
    _same(streamed, memory)
    assert "2 of 3000 rows with missing values dropped" in streamed["notes"]
    assert "im_test_pvalue" in json.dumps(streamed["check"])


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    df = _frame(seed=2)
    df.loc[2100, "x2"] = np.nan
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    args = [str(path), "--formula", "y ~ x1 + x2", "--family", "poisson", "--stream", "--chunk-rows", "500"]
    code, _, err = call(capsys, "fit", *args)
    assert_one_error_line(code, err, "chunk 4", "2100", "x2")
    code, _, err = call(capsys, "fit", *args[:5], "--family", "poisson", "--stream", "--formula", "y ~ nope")
    assert_one_error_line(code, err, "nope")
    code, _, err = call(capsys, "fit", "-", "--formula", "y ~ x1", "--family", "poisson", "--stream")
    assert_one_error_line(code, err, "--stream")
    code, _, err = call(capsys, "fit", str(path), "--model", "m.py:f", "--init", "{}", "--stream")
    assert_one_error_line(code, err, "--stream")


def test_an_interrupted_streamed_fit_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGINT during the third pass over the file: exit 130, one line, no report, no temporary."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")
    from fisherlab.cli import _streaming

    path = tmp_path / "d.parquet"
    _frame(seed=3).to_parquet(path)
    report = tmp_path / "r.html"
    real = _streaming.ProgressTable._pieces

    def pieces(self: _streaming.ProgressTable, columns: list[str]):  # type: ignore[no-untyped-def]
        for piece in real(self, columns):
            if self.passes == 3:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.5)
            yield piece

    monkeypatch.setattr(_streaming.ProgressTable, "_pieces", pieces)
    args = [
        "fit",
        str(path),
        "--formula",
        "y ~ x1",
        "--family",
        "poisson",
        "--stream",
        "--report",
        str(report),
    ]
    code, out, err = call(capsys, *args)
    assert code == 130, err
    assert err.strip() == "fisherlab: interrupted" and out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.parquet"]
