"""``fisherlab fit --weights/--offset/--exposure COLUMN``: R's prior weights and offsets, from the shell.

The options name columns of the data, passed to the formula GLM as ``fl.glm(..., weights="w",
offset="o", exposure="t")`` takes them. Oracles: ``fl.glm`` on the same file and statsmodels'
``smf.glm(..., exposure=..., var_weights=...)`` (R's ``glm(n ~ x + offset(log(t)), poisson)`` and
``glm(y ~ x, Gamma, weights = w)``), both fitted to the table read back from the CSV the command
reads; the streamed path (``--stream``) against the same command in memory.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fisherlab as fl
from cli_support import assert_one_error_line, call

sm = pytest.importorskip("statsmodels.api")
smf = pytest.importorskip("statsmodels.formula.api")

TOL = 1e-8
"""Relative agreement of the command with fl.glm and statsmodels (IRLS run to tol=1e-13)."""


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded Poisson rate table (counts over exposures ``years``) and a weighted Gamma response."""
    rng = np.random.default_rng(20)
    n = 400
    x = rng.uniform(-1.0, 1.0, n)
    g = rng.choice(["a", "b", "c"], n)
    years = rng.uniform(0.5, 4.0, n)
    w = rng.uniform(0.3, 3.0, n)
    eta = -0.4 + 0.6 * x + np.select([g == "b", g == "c"], [0.3, -0.2], 0.0)
    mu_cost = np.exp(0.5 + 0.3 * x)
    shape = 3.0 * w  # row i has dispersion phi / w_i
    df = pd.DataFrame(
        {
            "n": rng.poisson(years * np.exp(eta)),
            "years": years,
            "logt": np.log(years),
            "cost": rng.gamma(shape, mu_cost / shape),
            "w": w,
            "x": x,
            "g": g,
        }
    )
    path = tmp_path_factory.mktemp("glm_columns") / "rates.csv"
    df.to_csv(path, index=False)
    return path


def _fit(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    code, out, err = call(capsys, "fit", *args, "--json", "--no-check")
    assert code == 0, err
    assert len(out.strip().splitlines()) == 1
    return json.loads(out)


def _agree(doc: dict, names: list[str], params: object, se: object, rtol: float = TOL) -> None:
    np.testing.assert_allclose([doc["params"][k] for k in names], np.asarray(params), rtol=rtol)
    np.testing.assert_allclose([doc["se"][k] for k in names], np.asarray(se), rtol=rtol)


def test_exposure_and_offset_are_the_rate_model(table: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--exposure years``: fl.glm(exposure="years") and statsmodels' exposure=; so is ``--offset logt``."""
    df = pd.read_csv(table)
    formula = "n ~ x + C(g)"
    base = [str(table), "--formula", formula, "--family", "poisson"]
    doc = _fit(capsys, *base, "--exposure", "years")
    res = fl.glm(formula, df, family="poisson", exposure="years")
    names = list(res.names)
    assert doc["names"] == names == ["Intercept", "x", "C(g)[T.b]", "C(g)[T.c]"]
    assert doc["model"] == f"{formula}, family poisson, link log, exposure years"
    table_fl = res.to_pandas()
    _agree(doc, names, table_fl["estimate"], table_fl["se"])
    # the canonical link: observed = expected information, dispersion 1 — statsmodels' bse
    ref = smf.glm(formula, df, family=sm.families.Poisson(), exposure=df["years"]).fit(tol=1e-13)
    _agree(doc, names, ref.params[names], ref.bse[names])
    assert doc["loglik"] == pytest.approx(ref.llf, rel=1e-10)
    assert doc["deviance"] == pytest.approx(ref.deviance, rel=1e-9)
    by_offset = _fit(capsys, *base, "--offset", "logt")
    _agree(by_offset, names, [doc["params"][k] for k in names], [doc["se"][k] for k in names], rtol=1e-10)
    assert by_offset["model"].endswith("offset logt")
    # both: the offset plus log(exposure), as fl.glm and statsmodels add them
    both = _fit(capsys, *base, "--offset", "logt", "--exposure", "years")
    ref = smf.glm(formula, df, family=sm.families.Poisson(), offset=df["logt"], exposure=df["years"])
    ref = ref.fit(tol=1e-13)
    _agree(both, names, ref.params[names], ref.bse[names])


def test_weights_are_r_prior_weights(table: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--weights w`` on a Gamma: fl.glm(weights="w") and statsmodels' var_weights (R's summary.glm)."""
    df = pd.read_csv(table)
    formula = "cost ~ x"
    args = [str(table), "-f", formula, "--family", "gamma", "--link", "log", "--weights", "w"]
    doc = _fit(capsys, *args, "--dispersion", "r")
    res = fl.glm(formula, df, family="gamma", link="log", weights="w", dispersion="r")
    names = ["Intercept", "x"]
    assert doc["model"] == f"{formula}, family gamma, link log, weights w"
    table_fl = res.to_pandas()
    _agree(doc, names, table_fl.loc[names, "estimate"], table_fl.loc[names, "se"])
    sm_family = sm.families.Gamma(link=sm.families.links.Log())
    ref = smf.glm(formula, df, family=sm_family, var_weights=df["w"]).fit(tol=1e-13)
    _agree(doc, names, ref.params[names], ref.bse[names])
    assert doc["dispersion_r"] == pytest.approx(ref.scale, rel=TOL)
    assert doc["deviance"] == pytest.approx(ref.deviance, rel=1e-9)
    unweighted = _fit(capsys, *args[:-2], "--dispersion", "r")
    assert abs(unweighted["params"]["x"] - doc["params"]["x"]) > 1e-4  # the weights matter
    ml = _fit(capsys, *args)  # the default table: ML, every parameter, as fl.glm's
    ml_fl = fl.glm(formula, df, family="gamma", link="log", weights="w").to_pandas()
    _agree(ml, [*names, "shape"], ml_fl["estimate"], ml_fl["se"])


def test_streamed_equals_in_memory(table: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--stream --chunk-rows 64`` gives the in-memory numbers, the header line included."""
    for extra in (
        ["-f", "n ~ x + C(g)", "--family", "poisson", "--exposure", "years", "--offset", "logt"],
        ["-f", "cost ~ x", "--family", "gamma", "--link", "log", "--weights", "w", "--dispersion", "r"],
    ):
        memory = _fit(capsys, str(table), *extra, "--no-stream")
        streamed = _fit(capsys, str(table), *extra, "--stream", "--chunk-rows", "64")
        assert streamed["names"] == memory["names"] and streamed["model"] == memory["model"]
        _agree(streamed, memory["names"], list(memory["params"].values()), list(memory["se"].values()), 1e-10)
        assert streamed["loglik"] == pytest.approx(memory["loglik"], rel=1e-10)


def test_bad_columns_and_options_are_one_line(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = [str(table), "-f", "n ~ x", "--family", "poisson"]
    columns = "columns are: n, years, logt, cost, w, x, g"
    for option in ("--weights", "--offset", "--exposure"):
        code, _, err = call(capsys, "fit", *base, option, "nope")
        assert_one_error_line(code, err, f"{option} 'nope' is not a column of {table}", columns)
    code, _, err = call(capsys, "fit", *base, "--exposure", "nope", "--stream", "--chunk-rows", "64")
    assert_one_error_line(code, err, "--exposure 'nope'", columns)
    model = [str(table), "--model", "m.py:f", "--init", "{}"]
    code, _, err = call(capsys, "fit", *model, "--weights", "w")
    assert_one_error_line(code, err, "--weights goes with --formula, not with --model")
    code, _, err = call(capsys, "fit", *model, "--offset", "logt", "--exposure", "years")
    assert_one_error_line(code, err, "--offset/--exposure go with --formula")
    code, _, err = call(capsys, "fit", *base[:3], "--family", "binomial", "--trials", "n", "--weights", "w")
    assert_one_error_line(code, err, "--trials and --weights")

    df = pd.read_csv(table)
    df.loc[5, "years"] = 0.0
    df.loc[9, "w"] = -1.0
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    bad_base = [str(bad), *base[1:]]
    code, _, err = call(capsys, "fit", *bad_base, "--exposure", "years")
    assert_one_error_line(code, err, "exposure 'years' at row 5 is 0", "positive")
    code, _, err = call(capsys, "fit", *bad_base, "--exposure", "years", "--stream", "--chunk-rows", "64")
    assert_one_error_line(code, err, "chunk 0", "exposure 'years' at row", "is 0")
    code, _, err = call(capsys, "fit", str(bad), "-f", "cost ~ x", "--family", "gamma", "--weights", "w")
    assert_one_error_line(code, err, "weight 'w' at row 9 is -1", "positive")
    # the binomial's weights are its trials, the response a proportion (R's glm(binomial, weights = n))
    code, _, err = call(capsys, "fit", *base[:3], "--family", "binomial", "--weights", "w")
    assert_one_error_line(code, err, "'w'", "trials")
    # fl.check refuses a likelihood-weighted fit: fisherlab check says so in one line
    code, _, err = call(capsys, "check", *base, "--weights", "w")
    assert_one_error_line(code, err, "likelihood weights")
