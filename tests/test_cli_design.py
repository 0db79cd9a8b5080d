"""The ``fisherlab design`` command and the formula's candidate rows it designs on.

Oracles: the D-optimal design of quadratic regression on [-1, 1] (weights 1/3 at -1, 0, 1;
Atkinson, Donev & Tobias 2007, ch. 11) and its Ds-optimal design for the quadratic term (1/4,
1/2, 1/4); the locally D-optimal design of two-parameter logistic regression on the real line,
two equal weights at the linear predictors eta = +-1.5434 (Atkinson et al. 2007, sec. 17.3; the
root of eta * tanh(eta / 2) = 1); and ``fl.design.optimal`` called directly on the same GLM,
parameters and design-matrix rows (``fl.glm``'s fit, its ``newdata_design``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.optimize

import fisherlab as fl
from cli_support import assert_one_error_line, call
from fisherlab.formula import design_candidates

# The design algorithm stops when the equivalence theorem holds to 1e-9 (relative): weights and
# values of the same problem solved twice agree far below this.
SAME_RTOL = 1e-7
# Closed-form optimal designs against designs on a grid of step 0.01 (the grid holds the optimum)
CLOSED_FORM_ATOL = 1e-6
# Support points moved within bounds by L-BFGS-B on gradients with finite-difference design rows.
MOVED_ATOL = 1e-4
QUADRATIC = "y ~ x + I(x**2)"


def _logistic_eta() -> float:
    """The logistic D-optimal linear predictor: the root of eta tanh(eta / 2) = 1 (max of eta^2 w(eta)^2)."""
    return float(scipy.optimize.brentq(lambda e: e * np.tanh(e / 2.0) - 1.0, 0.5, 3.0))


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = call(capsys, "design", *args, "--json")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    doc = json.loads(lines[0])
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def pilot(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A logistic pilot study (dose, 0/1 outcome) and a file of candidate doses."""
    folder = tmp_path_factory.mktemp("design")
    rng = np.random.default_rng(11)
    dose = rng.uniform(0.0, 4.0, 150)
    y = (rng.uniform(size=dose.size) < 1.0 / (1.0 + np.exp(-(-2.0 + 1.2 * dose)))).astype(int)
    data = pd.DataFrame({"y": y, "dose": dose, "site": rng.choice(["a", "b"], dose.size)})
    data.to_csv(folder / "pilot.csv", index=False)
    cands = pd.DataFrame({"dose": np.round(np.linspace(0.0, 5.0, 101), 10), "note": "planned"})
    cands.to_csv(folder / "doses.csv", index=False)
    return {"folder": folder, "data": data, "cands": pd.read_csv(folder / "doses.csv")}


# --------------------------------------------------------------------------- designs against oracles


def test_quadratic_regression_d_optimal(capsys: pytest.CaptureFixture[str]) -> None:
    doc = _json(capsys, QUADRATIC, "--grid", "x=-1:1:201")
    xs = [row["x"] for row in doc["support"]]
    ws = [row["weight"] for row in doc["support"]]
    np.testing.assert_allclose(xs, [-1.0, 0.0, 1.0], atol=CLOSED_FORM_ATOL)
    np.testing.assert_allclose(ws, [1 / 3, 1 / 3, 1 / 3], atol=CLOSED_FORM_ATOL)
    assert doc["optimal"] is True and doc["bound"] == pytest.approx(3.0)
    assert doc["max_sensitivity"] == pytest.approx(3.0, rel=1e-8)
    assert doc["params_from"] == "default" and doc["params"] == {"Intercept": 0.0, "x": 0.0, "I(x ** 2)": 0.0}
    # log det M of the design: M = (1/3) sum of (1, x, x^2)(1, x, x^2)^T at -1, 0, 1 with sigma = 1
    rows = np.array([[1, -1, 1], [1, 0, 0], [1, 1, 1]], dtype=float)
    assert doc["value"] == pytest.approx(np.linalg.slogdet(rows.T @ rows / 3)[1], rel=1e-10)
    code, out, err = call(capsys, "design", QUADRATIC, "--grid", "x=-1:1:201")
    assert code == 0, err
    assert "max sensitivity 3 <= bound 3: optimal" in out
    assert "coefficients taken as 0" in out


def test_quadratic_exact_design_and_standard_errors(capsys: pytest.CaptureFixture[str]) -> None:
    doc = _json(
        capsys, QUADRATIC, "--grid", "x=-1:1:201", "--n", "30", "--at", "Intercept=1,x=2,I(x ** 2)=-1"
    )
    assert [row["count"] for row in doc["support"]] == [10, 10, 10]
    assert doc["n"] == 30 and doc["optimal"] is None
    rows = np.array([[1, -1, 1], [1, 0, 0], [1, 1, 1]], dtype=float)
    cov = np.linalg.inv(10 * rows.T @ rows)  # sigma = 1: (X'X)^-1 of the 30 runs
    np.testing.assert_allclose(list(doc["se"].values()), np.sqrt(np.diag(cov)), rtol=1e-10)
    assert list(doc["se"]) == ["Intercept", "x", "I(x ** 2)"]
    sigma = _json(capsys, QUADRATIC, "--grid", "x=-1:1:201", "--n", "30", "--at", "sigma=2")
    np.testing.assert_allclose(list(sigma["se"].values()), 2 * np.sqrt(np.diag(cov)), rtol=1e-10)


def test_quadratic_ds_design_for_the_quadratic_term(capsys: pytest.CaptureFixture[str]) -> None:
    doc = _json(capsys, "~ x + I(x**2)", "--grid", "x=-1:1:201", "--criterion", "ds", "--names", "I(x ** 2)")
    np.testing.assert_allclose([r["x"] for r in doc["support"]], [-1.0, 0.0, 1.0], atol=CLOSED_FORM_ATOL)
    np.testing.assert_allclose(
        [r["weight"] for r in doc["support"]], [0.25, 0.5, 0.25], atol=CLOSED_FORM_ATOL
    )
    assert doc["criterion_label"] == "Ds(I(x ** 2))" and doc["bound"] == pytest.approx(1.0)


def test_c_design_reports_the_combination(capsys: pytest.CaptureFixture[str]) -> None:
    doc = _json(
        capsys,
        QUADRATIC,
        "--grid",
        "x=-1:1:201",
        "--criterion",
        "c",
        "--c",
        "x=1,I(x ** 2)=1",
        "--runs",
        "10",
    )
    assert doc["optimal"] is True
    # the variance of the combination for 10 runs is the criterion (one run) / 10
    assert doc["se_combination"] == pytest.approx(np.sqrt(doc["value"] / 10), rel=1e-12)
    assert doc["se"] is None or all(np.isfinite(list(doc["se"].values())))


def test_logistic_design_from_pilot_data_equals_the_library(
    pilot: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = pilot["folder"]
    args = ["y ~ dose", "--family", "binomial", "--data", str(folder / "pilot.csv")]
    doc = _json(capsys, *args, "--candidates", str(folder / "doses.csv"))
    res = fl.glm("y ~ dose", pilot["data"], family="binomial")
    assert res.newdata_design is not None
    X = res.newdata_design(pilot["cands"])["X"]
    oracle = fl.design.optimal(res.model, res.params, X)
    np.testing.assert_allclose([r["dose"] for r in doc["support"]], oracle.points[:, 1], rtol=0, atol=0)
    np.testing.assert_allclose([r["weight"] for r in doc["support"]], oracle.weights, rtol=SAME_RTOL)
    assert doc["value"] == pytest.approx(oracle.value, rel=SAME_RTOL)
    assert doc["params"] == pytest.approx(dict(zip(res.names, res.params["beta"].tolist(), strict=True)))
    assert doc["params_from"] == "data" and doc["candidates"] == 101
    exact = _json(capsys, *args, "--candidates", str(folder / "doses.csv"), "--n", "20")
    oracle20 = fl.design.optimal(res.model, res.params, X, n=20)
    assert oracle20.counts is not None
    assert [r["count"] for r in exact["support"]] == oracle20.counts.tolist()
    se = oracle20.se()
    assert exact["se"] == pytest.approx({"Intercept": se["beta[0]"], "dose": se["beta[1]"]}, rel=SAME_RTOL)


def test_logistic_design_at_given_values_and_moved_within_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    b0, b1 = -2.0, 1.2
    at = ["--family", "binomial", "--at", f"Intercept={b0}", "--at", f"dose={b1}"]
    grid = _json(capsys, "y ~ dose", *at, "--grid", "dose=0:5:51")
    X = np.column_stack([np.ones(51), np.linspace(0, 5, 51)])
    oracle = fl.design.optimal(fl.models.glm("binomial"), {"beta": np.array([b0, b1])}, X)
    np.testing.assert_allclose([r["weight"] for r in grid["support"]], oracle.weights, rtol=SAME_RTOL)
    np.testing.assert_allclose([r["dose"] for r in grid["support"]], oracle.points[:, 1], atol=1e-12)
    moved = _json(capsys, "y ~ dose", *at, "--grid", "dose=0:5:51", "--bounds", "dose=0:5")
    eta = _logistic_eta()
    expected = [(-eta - b0) / b1, (eta - b0) / b1]
    np.testing.assert_allclose([r["dose"] for r in moved["support"]], expected, atol=MOVED_ATOL)
    np.testing.assert_allclose([r["weight"] for r in moved["support"]], [0.5, 0.5], atol=MOVED_ATOL)
    assert moved["optimal"] is True


def test_bounds_move_a_coarse_grid_to_the_quadratic_optimum(capsys: pytest.CaptureFixture[str]) -> None:
    doc = _json(capsys, QUADRATIC, "--grid", "x=-1:1:4", "--bounds", "x=-1:1")
    np.testing.assert_allclose([r["x"] for r in doc["support"]], [-1.0, 0.0, 1.0], atol=MOVED_ATOL)
    np.testing.assert_allclose([r["weight"] for r in doc["support"]], [1 / 3] * 3, atol=MOVED_ATOL)


def test_categorical_candidates_with_given_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = pd.DataFrame({"g": ["a", "b", "a", "b", "c", "c"], "x": [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]})
    table.to_csv(tmp_path / "c.csv", index=False)
    at = "Intercept=0,C(g)[T.b]=0.5,C(g)[T.c]=1,x=1"
    doc = _json(
        capsys, "y ~ C(g) + x", "--family", "poisson", "--at", at, "--candidates", str(tmp_path / "c.csv")
    )
    cands = design_candidates("y ~ C(g) + x", table)
    assert cands.dropped == 1 and cands.columns == ["Intercept", "C(g)[T.b]", "C(g)[T.c]", "x"]
    oracle = fl.design.optimal(fl.models.glm("poisson"), {"beta": np.array([0.0, 0.5, 1.0, 1.0])}, cands.X)
    got = {(r["g"], r["x"]): r["weight"] for r in doc["support"]}
    want = {}
    for point, w in zip(oracle.points, oracle.weights, strict=True):
        i = int(np.flatnonzero((cands.X == point).all(axis=1))[0])
        want[(cands.table["g"].iloc[i], cands.table["x"].iloc[i])] = w
    assert got.keys() == want.keys()
    np.testing.assert_allclose([got[k] for k in want], list(want.values()), rtol=SAME_RTOL)
    assert any("repeat the design row" in note for note in doc["notes"])


# --------------------------------------------------------------------------- output files and JSON


def test_out_writes_csv_and_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "plan.csv"
    doc = _json(capsys, QUADRATIC, "--grid", "x=-1:1:21", "--n", "9", "--out", str(target))
    assert doc["out"] == str(target)
    written = pd.read_csv(target)
    assert list(written.columns) == ["x", "weight", "count"]
    assert written["count"].tolist() == [3, 3, 3] and written["x"].tolist() == [-1.0, 0.0, 1.0]
    before = target.read_text()
    code, out, err = call(
        capsys, "design", QUADRATIC, "--grid", "x=-1:1:21", "--n", "6", "--out", str(target)
    )
    assert_one_error_line(code, err, "already exists", "--force")
    assert target.read_text() == before and out == ""
    code, out, err = call(
        capsys, "design", QUADRATIC, "--grid", "x=-1:1:21", "--n", "6", "--out", str(target), "--force"
    )
    assert code == 0, err
    assert pd.read_csv(target)["count"].tolist() == [2, 2, 2]
    assert f"design written to {target}" in out
    assert [p.name for p in tmp_path.iterdir()] == ["plan.csv"]  # no temporary file left


@pytest.mark.parametrize(
    ("where", "fragment"),
    [("missing/plan.csv", "does not exist"), (".", "is a directory")],
)
def test_out_to_a_bad_place(
    where: str, fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = call(
        capsys, "design", QUADRATIC, "--grid", "x=-1:1:21", "--out", str(tmp_path / where), "--force"
    )
    assert_one_error_line(code, err, fragment)


def test_json_document(capsys: pytest.CaptureFixture[str]) -> None:
    doc = _json(capsys, QUADRATIC, "--grid", "x=-1:1:21", "--runs", "12")
    assert set(doc) == {
        "formula", "family", "link", "criterion", "criterion_label", "criterion_meaning", "params", "fixed",
        "params_from", "candidates", "distinct_candidates", "covariates", "support", "value",
        "max_sensitivity", "bound", "optimal", "efficiency_bound", "n", "runs", "se", "se_combination",
        "notes", "out",
    }  # fmt: skip
    assert doc["runs"] == 12 and doc["n"] is None and doc["fixed"] == {"sigma": 1.0}
    assert doc["covariates"] == ["x"] and doc["family"] == "gaussian" and doc["link"] == "identity"
    rows = np.array([[1, -1, 1], [1, 0, 0], [1, 1, 1]], dtype=float)
    np.testing.assert_allclose(list(doc["se"].values()), np.sqrt(np.diag(np.linalg.inv(4 * rows.T @ rows))))


# --------------------------------------------------------------------------- hostile input


def _write(path: Path, text: str) -> str:
    path.write_text(textwrap.dedent(text).lstrip())
    return str(path)


G5 = ["--grid", "x=-1:1:5"]
HOSTILE = [
    # (arguments, fragments of the one error line)
    (["--grid", "z=0:1:3"], ["lack the column(s) 'x'", "add it to --grid"]),
    (["--grid", "x=0:1:3", "--grid", "z=0:1:3"], ["--grid names 'z'", "does not read"]),
    (["--grid", "x=0:1"], ["--grid x=0:1", "NAME=LO:HI:K"]),
    (["--grid", "x=1:0:3"], ["LO = 1 must be below HI = 0"]),
    (["--grid", "x=0:1:1"], ["K = 1"]),
    (["--grid", "x=0:1:nan"], ["not an integer"]),
    (["--grid", "x=a:1:3"], ["'a' is not a number"]),
    (["--grid", "x=0:1:2000", "--grid", "w=0:1:2000"], ["4,000,000 candidate points"]),
    (["--grid", "x=0:1:3", "--grid", "x=0:2:3"], ["--grid names 'x' more than once"]),
    ([], ["give the candidate points"]),
    (["--grid", "x=0:1:3", "--candidates", "c.csv"], ["not both"]),
    ([*G5, "--criterion", "F"], ["--criterion 'F' is not one of D, A, E, Ds, c"]),
    ([*G5, "--criterion", "Ds"], ["--criterion Ds needs --names"]),
    ([*G5, "--criterion", "Ds", "--names", "nope"], ["--names 'nope'", "Intercept, x"]),
    ([*G5, "--criterion", "Ds", "--names", "Intercept,x,I(x ** 2)"], ["is D"]),
    ([*G5, "--names", "x"], ["--names goes with --criterion Ds"]),
    ([*G5, "--criterion", "c"], ["--criterion c needs --c"]),
    ([*G5, "--criterion", "c", "--c", "zz=1"], ["--c 'zz'", "not a coefficient"]),
    ([*G5, "--criterion", "c", "--c", "x=0"], ["all zeros"]),
    ([*G5, "--c", "x=1"], ["--c goes with --criterion c"]),
    ([*G5, "--criterion", "c", "--c", "x"], ["NAME=VALUE"]),
    ([*G5, "--bounds", "zz=0:1"], ["--bounds names 'zz'", "reads x"]),
    ([*G5, "--bounds", "x=1:-1"], ["--bounds x=1:-1", "LO = 1 must be below HI = -1"]),
    ([*G5, "--bounds", "x=1:1"], ["must be below"]),
    ([*G5, "--bounds", "x=0:1"], ["outside --bounds x=0:1", "column 'x'"]),
    ([*G5, "--bounds", "x=0"], ["NAME=LO:HI"]),
    ([*G5, "--n", "0"], ["--n must be a number of runs >= 1, got 0"]),
    ([*G5, "--n", "-3"], ["got -3"]),
    ([*G5, "--runs", "0"], ["--runs must be"]),
    ([*G5, "--runs", "5", "--n", "5"], ["--runs gives"]),
    (["--grid", "x=0:1:2"], ["cannot identify the parameters", "x"]),
    ([*G5, "--n", "2"], ["2 runs", "give more runs"]),
    ([*G5, "--family", "nope"], ["--family 'nope' is not one of gaussian"]),
    ([*G5, "--link", "probit"], ["probit"]),
    ([*G5, "--family", "binomial"], ["lacks the coefficient(s) 'Intercept', 'x', 'I(x ** 2)'"]),
    ([*G5, "--family", "binomial", "--at", "x=1"], ["lacks the coefficient(s) 'Intercept', 'I("]),
    ([*G5, "--at", "zeta=1"], ["--at names 'zeta'", "Intercept, x, I(x ** 2), sigma"]),
    ([*G5, "--at", "sigma=-1"], ["sigma must be positive"]),
    ([*G5, "--at", "x=inf"], ["not a finite number"]),
    ([*G5, "--family", "negative_binomial", "--at", "Intercept=0,x=0,I(x ** 2)=0"], ["alpha changes"]),
    ([*G5, "--data", "p.csv", "--at", "x=1"], ["not both"]),
]  # fmt: skip


@pytest.mark.parametrize(("args", "fragments"), HOSTILE)
def test_hostile_options(args: list[str], fragments: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = call(capsys, "design", QUADRATIC, *args)
    assert_one_error_line(code, err, *fragments)
    assert out == ""


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("x,z\n0,1\n1,\n", None),  # z is not read: its empty cell does not matter
        ("z\n0\n1\n", ["lack the column(s) 'x'", "their columns are: z"]),
        ("x,x\n0,1\n1,2\n", ["duplicate column names", "'x' at columns 1, 2"]),
        ("x\n0\n\n1\n", None),  # an empty line is no row
        ("x\n0\nnan\n1\n", ["candidate row 1, column 'x' is missing (NaN)"]),
        ("x\n0\n1\ninf\n", ["candidate row 2, column 'x' is inf"]),
        ("x\n0\n-inf\n1\n", ["candidate row 1, column 'x' is -inf"]),
        ("x\n0\n1\n1.5.2\n2\n3\n", ["'x'", "1.5.2"]),
        ("x\n", ["no data rows"]),
    ],
)
def test_hostile_candidate_files(
    text: str, fragments: list[str] | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path / "c.csv", text)
    code, _, err = call(capsys, "design", "y ~ x", "--candidates", path, "--json")
    if fragments is None:
        assert code == 0, err
    else:
        assert_one_error_line(code, err, *fragments)


def test_hostile_formulas_and_transforms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "c.csv", "x\n0\n1\n2\n")
    code, _, err = call(capsys, "design", "y ~ np.log(x)", "--candidates", path)
    assert_one_error_line(code, err, "design column 'np.log(x)' is -inf at candidate row 0")
    code, _, err = call(capsys, "design", "y ~ I(np.f2py.os.system('ls'))", "--candidates", path)
    assert_one_error_line(code, err, "np.f2py.os.system", "--allow-code")
    code, _, err = call(capsys, "design", "y ~ x +", "--candidates", path)
    assert_one_error_line(code, err, "cannot parse the formula")
    code, _, err = call(capsys, "design", " ", "--candidates", path)
    assert_one_error_line(code, err, "the formula is empty")


def test_bounds_refuse_categorical_covariates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "c.csv", "g,x\na,0\nb,1\na,2\nb,0\n")
    code, _, err = call(capsys, "design", "y ~ C(g) + x", "--candidates", path, "--bounds", "x=0:2")
    assert_one_error_line(code, err, "'g' is not numeric")


def test_hostile_pilot_data(
    pilot: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doses = str(pilot["folder"] / "doses.csv")
    missing = _write(tmp_path / "m.csv", "y,dose\n0,1\n1,\n1,2\n0,0.5\n")
    code, _, err = call(
        capsys, "design", "y ~ dose", "--family", "binomial", "--data", missing, "--candidates", doses
    )
    assert_one_error_line(code, err, "the pilot fit on", "--dropna")
    separated = _write(tmp_path / "s.csv", "y,dose\n0,0\n0,1\n1,2\n1,3\n")
    code, _, err = call(
        capsys, "design", "y ~ dose", "--family", "binomial", "--data", separated, "--candidates", doses
    )
    assert_one_error_line(code, err, "the pilot fit on", status=3)
    code, _, err = call(
        capsys, "design", "y ~ dose", "--family", "binomial", "--data", "nope.csv", "--candidates", doses
    )
    assert_one_error_line(code, err, "no such file: nope.csv")
    levels = _write(tmp_path / "l.csv", "dose,site\n1,a\n2,z\n")
    code, _, err = call(
        capsys, "design", "y ~ dose + C(site)", "--family", "binomial", "--data",
        str(pilot["folder"] / "pilot.csv"), "--candidates", levels,
    )  # fmt: skip
    assert_one_error_line(code, err)


def test_dropna_pilot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=60)
    y = 1.0 + 0.5 * x + rng.normal(size=60)
    frame = pd.DataFrame({"y": y, "x": x})
    frame.loc[4, "x"] = np.nan
    frame.to_csv(tmp_path / "p.csv", index=False)
    doc = _json(
        capsys, "y ~ x", "--data", str(tmp_path / "p.csv"), "--dropna", "--grid", "x=-1:1:5", "--runs", "59"
    )
    res = fl.glm("y ~ x", frame.dropna(), family="gaussian")
    assert doc["fixed"]["sigma"] == pytest.approx(float(res.params["sigma"]), rel=1e-10)
    assert any("1 rows with missing values dropped" in note for note in doc["notes"])


# --------------------------------------------------------------------------- the candidates and their model


def test_candidates_follow_the_fit(pilot: dict[str, Any]) -> None:
    res = fl.glm("y ~ dose + C(site)", pilot["data"], family="binomial")
    table = pd.DataFrame({"dose": [1.0, 2.0, 1.0], "site": ["b", "b", "b"]})
    cands = design_candidates("y ~ dose + C(site)", table, fit=res)
    assert cands.columns == ["Intercept", "dose", "C(site)[T.b]"]
    np.testing.assert_array_equal(cands.X, [[1.0, 1.0, 1.0], [1.0, 2.0, 1.0]])
    assert cands.dropped == 1 and cands.table.index.tolist() == [0, 1]
    alone = design_candidates("y ~ dose + C(site)", table)  # one level only: no contrast column
    assert alone.columns == ["Intercept", "dose"]


def test_candidate_model_has_the_glms_information() -> None:
    """The model on covariate rows (the formula in a host callback) has the GLM's information at its rows."""
    table = pd.DataFrame({"x": np.linspace(0.1, 2.0, 7)})
    cands = design_candidates("y ~ np.log(x) + I(x**2)", table)
    glm = fl.models.glm("poisson")
    params = {"beta": np.array([0.2, -0.3, 0.1])}
    direct = fl.design.point_information(glm, params, cands.X).matrices()
    through = fl.design.point_information(cands.model(glm, ["x"]), params, table[["x"]].to_numpy()).matrices()
    np.testing.assert_allclose(through, direct, rtol=1e-12)


def test_candidate_model_checks_its_variables() -> None:
    cands = design_candidates("y ~ x + z", pd.DataFrame({"x": [0.0, 1.0], "z": [1.0, 2.0]}))
    glm = fl.models.glm("poisson")
    with pytest.raises(fl.FisherlabArgumentError, match="each of the variables"):
        cands.model(glm, ["x"])
    with pytest.raises(fl.FisherlabArgumentError, match="each of the variables"):
        cands.model(glm, ["x", "w"], {"z": 1.0})


# --------------------------------------------------------------------------- help and startup


def test_help_lists_the_criteria(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call(capsys, "design", "--help")
    assert code == 0
    text = " ".join(out.split())
    for fragment in (
        "D (log det M)",
        "A (trace of M⁻¹)",
        "Ds (",
        "--grid",
        "--bounds",
        "--at",
        "Exit status",
    ):
        assert fragment in text, fragment


def test_help_and_argument_errors_import_no_jax() -> None:
    code = """
        import contextlib, io, json, sys
        from fisherlab.cli import main
        runs = []
        for argv in (["design", "--help"], ["design", "y ~ x", "--grid", "x=0:1:3", "--criterion", "Q"],
                     ["design", "y ~ x", "--grid", "x=0:1:3", "--n", "0"], ["design", "y ~ x"]):
            err = io.StringIO()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                runs.append(main(argv))
        heavy = [m for m in ("jax", "numpy", "pandas", "formulaic", "scipy") if m in sys.modules]
        print(json.dumps({"runs": runs, "heavy": heavy}))
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.splitlines()[-1])
    assert doc == {"runs": [0, 2, 2, 2], "heavy": []}
