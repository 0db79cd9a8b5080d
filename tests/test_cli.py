"""The ``fisherlab`` command line: R's glm reproduced from CSV files, the JSON contract, bad input.

Oracles: R's ``glm`` estimates and ``summary.glm`` standard errors recorded in
statsmodels' test suite (``statsmodels/genmod/tests/results/results_glm.py``,
skipped where statsmodels ships without its tests), on the datasets bundled
with statsmodels, written here to CSV; closed-form Fisher information for
``fisherlab info``. A few cases run the real command in a subprocess
(``python -m fisherlab.cli``); the rest call :func:`fisherlab.cli.main` in
process, which is the same code path after argument parsing and much faster.
"""

from __future__ import annotations

import html
import io
import json
import math
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.special
import scipy.stats

from cli_support import assert_one_error_line, call
from fisherlab.cli import main

# R's glm stops at a relative deviance change of 1e-8 (see tests/test_glm.py): its printed
# estimates carry errors of ~1e-7 and its standard errors a few 1e-6 (cpunish: 8.5e-6).
R_EST_RTOL = 1e-6
R_SE_RTOL = 1e-5
# Closed forms against fisherlab's exact Fisher information.
INFO_RTOL = 1e-10
JSON_KEYS = {"names", "params", "se", "cov", "loglik", "conf_int", "cov_kind"}


# --------------------------------------------------------------------------- helpers


def run_cli(
    *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The real command, in a fresh Python process."""
    return subprocess.run(
        [sys.executable, "-m", "fisherlab.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        cwd=cwd,
        timeout=300,
        check=False,
    )


def _rel(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def _statsmodels_data(name: str) -> pd.DataFrame:
    sm = pytest.importorskip("statsmodels.api")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(sm.datasets, name).load_pandas().data


def _r_results(name: str) -> Any:
    module = pytest.importorskip("statsmodels.genmod.tests.results.results_glm")
    return getattr(module, name)()


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    """A Poisson regression with 60 rows."""
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, 60)
    g = np.where(rng.uniform(size=60) < 0.5, "a", "b")
    y = rng.poisson(np.exp(0.3 + 0.8 * x + 0.4 * (g == "b")))
    path = tmp_path / "small.csv"
    pd.DataFrame({"y": y, "x": x, "g": g}).to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------- R references

# name: (statsmodels dataset, results_glm class, formula, family, extra options, R's coefficient
# order: statsmodels' exog columns with the constant last)
R_CASES: dict[str, tuple[str, str, str, str, list[str], list[str]]] = {
    "longley gaussian": (
        "longley",
        "Longley",
        "TOTEMP ~ GNPDEFL + GNP + UNEMP + ARMED + POP + YEAR",
        "gaussian",
        [],
        ["GNPDEFL", "GNP", "UNEMP", "ARMED", "POP", "YEAR", "Intercept"],
    ),
    "cpunish poisson": (
        "cpunish",
        "Cpunish",
        "EXECUTIONS ~ INCOME + PERPOVERTY + PERBLACK + np.log(VC100k96) + SOUTH + DEGREE",
        "poisson",
        [],
        ["INCOME", "PERPOVERTY", "PERBLACK", "np.log(VC100k96)", "SOUTH", "DEGREE", "Intercept"],
    ),
    "scotland Gamma": (
        "scotland",
        "Scotvote",
        "YES ~ COUTAX + UNEMPF + MOR + ACT + GDP + AGE + COUTAX_FEMALEUNEMP",
        "gamma",
        [],
        ["COUTAX", "UNEMPF", "MOR", "ACT", "GDP", "AGE", "COUTAX_FEMALEUNEMP", "Intercept"],
    ),
    "star98 binomial with trials": (
        "star98",
        "Star98",
        "NABOVE ~ LOWINC + PERASIAN + PERBLACK + PERHISP + PERMINTE + AVYRSEXP + AVSALK + PERSPENK "
        "+ PTRATIO + PCTAF + PCTCHRT + PCTYRRND + PERMINTE_AVYRSEXP + PERMINTE_AVSAL + AVYRSEXP_AVSAL "
        "+ PERSPEN_PTRATIO + PERSPEN_PCTAF + PTRATIO_PCTAF + PERMINTE_AVYRSEXP_AVSAL + PERSPEN_PTRATIO_PCTAF",
        "binomial",
        ["--trials", "NTOTAL"],
        [
            "LOWINC", "PERASIAN", "PERBLACK", "PERHISP", "PERMINTE", "AVYRSEXP", "AVSALK", "PERSPENK",
            "PTRATIO", "PCTAF", "PCTCHRT", "PCTYRRND", "PERMINTE_AVYRSEXP", "PERMINTE_AVSAL",
            "AVYRSEXP_AVSAL", "PERSPEN_PTRATIO", "PERSPEN_PCTAF", "PTRATIO_PCTAF",
            "PERMINTE_AVYRSEXP_AVSAL", "PERSPEN_PTRATIO_PCTAF", "Intercept",
        ],
    ),
}  # fmt: skip
# The first two run as real subprocesses, the others in process.
SUBPROCESS_CASES = ("longley gaussian", "cpunish poisson")


def _r_case_csv(tmp_path: Path, dataset: str) -> Path:
    df = _statsmodels_data(dataset)
    if dataset == "star98":
        df = df.assign(NTOTAL=df["NABOVE"] + df["NBELOW"])
    path = tmp_path / f"{dataset}.csv"
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("name", list(R_CASES))
def test_fit_reproduces_r_glm(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``fit --dispersion r --json`` gives R's glm estimates and summary.glm standard errors."""
    dataset, ref_name, formula, family, extra, order = R_CASES[name]
    ref = _r_results(ref_name)
    path = _r_case_csv(tmp_path, dataset)
    args = ["fit", str(path), "--formula", formula, "--family", family, *extra, "--dispersion", "r"]
    args += ["--json", "--no-check"]
    if name in SUBPROCESS_CASES:
        proc = run_cli(*args)
        assert proc.returncode == 0, proc.stderr
        stdout = proc.stdout
    else:
        code, stdout, err = call(capsys, *args)
        assert code == 0, err
    assert len(stdout.strip().splitlines()) == 1
    doc = json.loads(stdout)
    assert JSON_KEYS <= set(doc)
    assert doc["cov_kind"] == "r"
    assert set(order) <= set(doc["names"])
    est = [doc["params"][k] for k in order]
    se = [doc["se"][k] for k in order]
    assert _rel(est, ref.params) < R_EST_RTOL
    assert _rel(se, ref.bse) < R_SE_RTOL
    assert doc["dispersion_r"] == pytest.approx(ref.scale, rel=R_SE_RTOL)
    # R's summary.glm: t on N - p df for the Pearson-dispersion families, z for the others.
    use_t = family in ("gaussian", "gamma", "Gamma", "inverse_gaussian")
    stat = doc["statistic"]
    assert stat == ("t" if use_t else "z")
    df = doc["nobs"] - len(order)
    for k, b, s in zip(order, np.asarray(ref.params), np.asarray(ref.bse), strict=True):
        tv = b / s  # R's estimate over R's standard error
        pv = 2 * (scipy.stats.t.sf(abs(tv), df) if use_t else scipy.stats.norm.sf(abs(tv)))
        assert doc[stat][k] == pytest.approx(tv, rel=10 * R_SE_RTOL)
        assert doc["p"][k] == pytest.approx(pv, rel=1e-4, abs=1e-300)


def test_json_contract_and_ml_default(small_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json: one object, the contract's keys with consistent shapes; names are design columns."""
    code, out, err = call(
        capsys, "fit", str(small_csv), "-f", "y ~ x + g", "--family", "poisson", "--json", "--level", "0.9"
    )
    assert code == 0, err
    assert len(out.strip().splitlines()) == 1
    doc = json.loads(out)
    assert JSON_KEYS <= set(doc)
    names = doc["names"]
    assert names == ["Intercept", "x", "g[T.b]"]
    assert list(doc["params"]) == names and list(doc["se"]) == names and list(doc["conf_int"]) == names
    cov = np.asarray(doc["cov"])
    assert cov.shape == (3, 3)
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), [doc["se"][n] for n in names], rtol=1e-12)
    assert doc["cov_kind"] == "observed" and isinstance(doc["loglik"], float)
    z = scipy.special.ndtri(0.95)
    for n in names:
        lo, hi = doc["conf_int"][n]
        assert lo == pytest.approx(doc["params"][n] - z * doc["se"][n], rel=1e-10)
        assert hi == pytest.approx(doc["params"][n] + z * doc["se"][n], rel=1e-10)
    assert doc["nobs"] == 60 and doc["converged"] is True
    assert doc["check"]["verdict"]  # the identity diagnostics ran (N·P² is small)
    # Wald z and two-sided p per parameter, from the estimate and se (normal reference).
    assert doc["statistic"] == "z"
    for n in names:
        zn = doc["params"][n] / doc["se"][n]
        assert doc["z"][n] == pytest.approx(zn, rel=1e-12)
        assert doc["p"][n] == pytest.approx(2 * scipy.special.ndtr(-abs(zn)), rel=1e-10)


def test_table_output_and_sandwich(small_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The Rich table names the covariance kind, N, convergence and the check's verdict."""
    code, out, err = call(
        capsys, "fit", str(small_csv), "-f", "y ~ x + g", "--family", "poisson", "--cov", "sandwich"
    )
    assert code == 0, err
    assert "g[T.b]" in out  # square brackets survive Rich markup
    assert "sandwich" in out and "N = 60" in out and "converged in" in out
    assert "identity check:" in out


@pytest.mark.slow  # > 7 s: keeps the default suite within its budget
def test_user_model_matches_formula(
    small_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--model FILE.py:FUNCTION with --init and --x gives the formula fit's estimates."""
    module = tmp_path / "mymodel.py"
    module.write_text(
        "import fisherlab as fl\n"
        "import jax.numpy as jnp\n\n"
        "def pois(th, x):\n"
        "    return fl.dist.Poisson(jnp.exp(th['a'] + th['b'] * x['x']))\n"
    )
    code, out, err = call(
        capsys,
        "fit",
        str(small_csv),
        "--model",
        f"{module}:pois",
        "--init",
        '{"a": 0, "b": 0}',
        "--x",
        "x",
        "--json",
    )
    assert code == 0, err
    user = json.loads(out)
    code, out, err = call(capsys, "fit", str(small_csv), "-f", "y ~ x", "--family", "poisson", "--json")
    assert code == 0, err
    glm = json.loads(out)
    assert user["names"] == ["a", "b"]
    np.testing.assert_allclose(
        [user["params"]["a"], user["params"]["b"]], list(glm["params"].values()), rtol=1e-8
    )
    np.testing.assert_allclose([user["se"]["a"], user["se"]["b"]], list(glm["se"].values()), rtol=1e-6)
    code, _, err = call(capsys, "fit", str(small_csv), "--model", f"{module}:nope", "--init", '{"a": 0}')
    assert_one_error_line(code, err, "nope", "pois")
    code, _, err = call(capsys, "fit", str(small_csv), "--model", f"{module}:pois", "--init", '{"a": 0')
    assert_one_error_line(code, err, "--init")


def test_black_box_user_model(small_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A --model written with SciPy is fitted with numeric derivatives: the formula fit's numbers."""
    module = tmp_path / "scipymodel.py"
    module.write_text(
        "import numpy as np\n"
        "import fisherlab as fl\n\n"
        "def pois(th, x):\n"
        "    return fl.dist.Poisson(np.exp(th['a'] + th['b'] * np.asarray(x['x'])))\n\n"
        "numeric = fl.Model(pois, derivatives='numeric', executor='threads', workers=2)\n"
    )
    code, out, err = call(capsys, "fit", str(small_csv), "-f", "y ~ x", "--family", "poisson", "--json")
    assert code == 0, err
    glm = json.loads(out)
    for name in ("pois", "numeric"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "pois" falls back to numeric with a warning
            code, out, err = call(
                capsys, "fit", str(small_csv), "--model", f"{module}:{name}", "--init", '{"a": 0, "b": 0}',
                "--x", "x", "--json", "--no-check",
            )  # fmt: skip
        assert code == 0, err
        user = json.loads(out)
        np.testing.assert_allclose(list(user["params"].values()), list(glm["params"].values()), rtol=1e-7)
        np.testing.assert_allclose(list(user["se"].values()), list(glm["se"].values()), rtol=1e-6)
    code, _, err = call(
        capsys, "fit", str(small_csv), "--model", f"{module}:numeric", "--init", '{"a": 0, "b": 0}',
        "--x", "x", "--positive", "a",
    )  # fmt: skip
    assert_one_error_line(code, err, "declare its constraints")


def test_stdin_parquet_and_dropna(small_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """CSV on stdin and Parquet give the file's fit; --dropna drops (and reports) NaN rows."""
    base = ["-f", "y ~ x", "--family", "poisson", "--json", "--no-check"]
    code, out, err = call(capsys, "fit", str(small_csv), *base)
    assert code == 0, err
    ref = json.loads(out)
    monkeypatch.setattr(sys, "stdin", io.StringIO(small_csv.read_text()))
    code, out, err = call(capsys, "fit", "-", *base)
    assert code == 0, err
    assert json.loads(out)["params"] == pytest.approx(ref["params"], rel=1e-12)
    pytest.importorskip("pyarrow")
    pq = tmp_path / "small.parquet"
    pd.read_csv(small_csv).to_parquet(pq)
    code, out, err = call(capsys, "fit", str(pq), *base)
    assert code == 0, err
    assert json.loads(out)["params"] == pytest.approx(ref["params"], rel=1e-12)

    df = pd.read_csv(small_csv)
    df.loc[[3, 7], "x"] = np.nan
    holes = tmp_path / "holes.csv"
    df.to_csv(holes, index=False)
    code, _, err = call(capsys, "fit", str(holes), *base)
    assert_one_error_line(code, err, "2 of 60 rows", "x (2)", "row 3", "--dropna")
    code, out, err = call(capsys, "fit", str(holes), *base, "--dropna")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["nobs"] == 58 and doc["rows_dropped"] == 2


# --------------------------------------------------------------------------- bad input


def test_bad_input_in_a_real_process(tmp_path: Path) -> None:
    """A real process: exit 2, one line, no traceback, for a missing file and an unknown family."""
    proc = run_cli("fit", str(tmp_path / "nope.csv"), "-f", "y ~ x", "--family", "poisson")
    assert_one_error_line(proc.returncode, proc.stderr, "no such file")
    assert proc.stdout == ""
    (tmp_path / "d.csv").write_text("y,x\n1,2\n2,3\n")
    proc = run_cli("fit", str(tmp_path / "d.csv"), "-f", "y ~ x", "--family", "poison")
    assert_one_error_line(proc.returncode, proc.stderr, "poison", "gaussian", "negative_binomial")


@pytest.mark.parametrize(
    ("csv", "args", "fragments"),
    [
        ("y,x\n1,2\n2,3\n", ["-f", "y ~ x + z", "--family", "poisson"], ["'z'", "columns are: y, x"]),
        ("y,x\n1,2\n2,3\n", ["-f", "y ~ x", "--family", "poisson", "--link", "logit"], ["log", "sqrt"]),
        ("y,x\n1,2\n2,3\n", ["-f", "y ~ (x", "--family", "poisson"], ["formula"]),
        ("y,x\na,2\nb,3\n", ["-f", "y ~ x", "--family", "gaussian"], ["not numeric", "row 0"]),
        ("y,x\n1,2\n-2,3\n4,1\n", ["-f", "y ~ x", "--family", "poisson"], ["row 1", "-2", "poisson"]),
        ("y,x\n0,2\n1,3\n2,1\n", ["-f", "y ~ x", "--family", "binomial"], ["row 2", "0/1"]),
        (
            "y,x\n0.5,2\n1,3\n2,1\n",
            ["-f", "y ~ x", "--family", "gamma", "--cov", "hessian"],
            ["--cov", "sandwich"],
        ),
        ("y,x\n1,2\n2,3\n", ["--family", "poisson"], ["--formula"]),
        ("y,x\n1,2\n2,3\n", ["-f", "y ~ x", "--family", "poisson", "--level", "95"], ["--level"]),
        ("", ["-f", "y ~ x", "--family", "poisson"], ["cannot read"]),
        ('y,x\n1,2,3\n"4\n', ["-f", "y ~ x", "--family", "poisson"], ["cannot read"]),
        ("y,x\n1,2\n", ["-f", "y ~ x", "--family", "poisson", "--bogus"], ["--bogus"]),
    ],
)
def test_bad_input(
    csv: str, args: list[str], fragments: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each bad input: exit 2 and one line on stderr naming what is wrong."""
    path = tmp_path / "data.csv"
    path.write_text(csv)
    code, out, err = call(capsys, "fit", str(path), *args)
    assert_one_error_line(code, err, *fragments)
    assert out == ""


def test_unknown_extension_and_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "d.xlsx").write_text("y,x\n")
    code, _, err = call(capsys, "fit", str(tmp_path / "d.xlsx"), "-f", "y ~ x", "--family", "poisson")
    assert_one_error_line(code, err, ".parquet", ".csv")
    code, _, err = call(capsys, "fit", str(tmp_path), "-f", "y ~ x", "--family", "poisson")
    assert_one_error_line(code, err, "directory")


def test_not_converged_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Perfect separation: the MLE does not exist, the fit does not converge: exit 3."""
    x = np.linspace(-2, 2, 40)
    path = tmp_path / "sep.csv"
    pd.DataFrame({"y": (x > 0).astype(int), "x": x}).to_csv(path, index=False)
    code, out, err = call(capsys, "fit", str(path), "-f", "y ~ x", "--family", "binomial")
    assert_one_error_line(code, err, "separation", status=3)
    assert out == ""


def test_collinear_design_names_the_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """x2 = 2 x1: exit 2, the unidentified combination in design-column names."""
    path = tmp_path / "col.csv"
    path.write_text("y,x1,x2\n1,1,2\n2,2,4\n3,3,6\n5,4,8\n4,5,10\n")
    code, _, err = call(capsys, "fit", str(path), "-f", "y ~ x1 + x2", "--family", "poisson")
    line = assert_one_error_line(code, err, "x1", "x2", "not identified")
    assert "beta[" not in line


def test_unexpected_error_is_one_line(small_csv: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """An internal bug: exit 1, one line with a hint, no traceback (unless FISHERLAB_DEBUG=1)."""
    from fisherlab.cli import _fitting

    def boom(source: str) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(_fitting, "read_table", boom)
    monkeypatch.delenv("FISHERLAB_DEBUG", raising=False)
    code, _, err = call(capsys, "fit", str(small_csv), "-f", "y ~ x", "--family", "poisson")
    assert_one_error_line(code, err, "internal error", "RuntimeError: boom", "FISHERLAB_DEBUG", status=1)
    monkeypatch.setenv("FISHERLAB_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        main(["fit", str(small_csv), "-f", "y ~ x", "--family", "poisson"])


# --------------------------------------------------------------------------- reports and demo


def _has_report() -> bool:
    try:
        import fisherlab.report  # noqa: F401
    except ImportError:
        return False
    return True


def test_existing_report_is_never_overwritten(small_csv: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """An existing --report file without --force: exit 2 before fitting, file untouched."""
    target = tmp_path / "r.html"
    target.write_text("keep me")
    args = ["fit", str(small_csv), "-f", "y ~ x", "--family", "poisson", "--report", str(target)]
    code, out, err = call(capsys, *args)
    assert_one_error_line(code, err, "already exists", "--force")
    assert target.read_text() == "keep me" and out == ""
    if not _has_report():
        pytest.skip("fisherlab.report is not available")
    code, out, err = call(capsys, *args, "--force", "--no-check")
    assert code == 0, err
    page = target.read_text()
    assert page.lstrip().lower().startswith("<!doctype html")
    assert "report written to" in out
    # The command line in the page is shell-quoted: it pastes back into a shell as one formula.
    assert html.escape(f"-f 'y ~ x' --family poisson --report {target}") in page


def test_demo_writes_report_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """demo fits the Challenger data (R: 15.0429, -0.2322), writes report.html, refuses to overwrite."""
    out_dir = tmp_path / "new" / "demo"
    if not _has_report():
        code, _, err = call(capsys, "demo", "--out", str(out_dir))
        assert code == 1 and "fisherlab.report" in err
        pytest.skip("fisherlab.report is not available")
    code, out, err = call(capsys, "demo", "--out", str(out_dir))
    assert code == 0, err
    assert "15.0429" in out and "-0.232163" in out and "temperature" in out
    report = out_dir / "report.html"
    assert report.is_file() and report.stat().st_size > 1000
    before = report.read_bytes()
    code, _, err = call(capsys, "demo", "--out", str(out_dir))
    assert_one_error_line(code, err, "already exists", "--force")
    assert report.read_bytes() == before


# --------------------------------------------------------------------------- info and check


def _info(capsys: pytest.CaptureFixture[str], dist: str, **params: float) -> dict[str, Any]:
    args = ["info", "--dist", dist, "--json"]
    for k, v in params.items():
        args += ["--param", f"{k}={v}"]
    code, out, err = call(capsys, *args)
    assert code == 0, err
    return json.loads(out)


def test_info_closed_forms(capsys: pytest.CaptureFixture[str]) -> None:
    """Normal, Gamma and Poisson: one observation's Fisher information equals the closed forms."""
    doc = _info(capsys, "Normal", loc=0.3, scale=2.0)
    assert doc["names"] == ["loc", "scale"]
    np.testing.assert_allclose(doc["matrix"], [[1 / 4.0, 0.0], [0.0, 2 / 4.0]], rtol=INFO_RTOL, atol=1e-15)
    a, b = 2.5, 3.0
    doc = _info(capsys, "Gamma", concentration=a, rate=b)
    assert doc["names"] == ["concentration", "rate"]
    expected = [[scipy.special.polygamma(1, a), -1 / b], [-1 / b, a / b**2]]
    np.testing.assert_allclose(doc["matrix"], expected, rtol=INFO_RTOL)
    doc = _info(capsys, "poisson", rate=4.0)  # names are case-insensitive
    np.testing.assert_allclose(doc["matrix"], [[0.25]], rtol=INFO_RTOL)
    assert doc["cramer_rao_se"]["rate"] == pytest.approx(2.0, rel=INFO_RTOL)
    code, out, err = call(capsys, "info", "--dist", "Normal", "--param", "loc=0", "--param", "scale=2")
    assert code == 0, err
    assert "loc" in out and "0.25" in out and "Cramér–Rao" in out


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--dist", "Gaussian", "--param", "loc=0"], ["Gaussian", "Normal", "Poisson"]),
        (["--dist", "Normal", "--param", "mu=0"], ["'mu'", "loc, scale"]),
        (["--dist", "Normal", "--param", "loc=0", "--param", "scale=-1"], ["scale"]),
        (["--dist", "Normal", "--param", "loc=0"], ["every one of its parameters", "missing scale"]),
        (["--dist", "StudentT", "--param", "df=3"], ["missing loc, scale"]),
        (["--dist", "Normal", "--param", "loc"], ["NAME=VALUE"]),
        (["--dist", "Normal", "--param", "loc=abc"], ["number"]),
    ],
)
def test_info_bad_input(args: list[str], fragments: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = call(capsys, "info", *args)
    assert_one_error_line(code, err, *fragments)


def test_check_command(small_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """check prints both tests, the eigenvalue ratios, condition numbers and the verdict."""
    code, out, err = call(capsys, "check", str(small_csv), "-f", "y ~ x + g", "--family", "poisson")
    assert code == 0, err
    for text in (
        "score mean (E[s] = 0)",
        "information matrix",
        "J⁻¹K",
        "F⁻¹K",
        "condition numbers",
        "verdict:",
    ):
        assert text in out
    code, out, err = call(capsys, "check", str(small_csv), "-f", "y ~ x", "--family", "poisson", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["names"] == ["Intercept", "x"]
    assert doc["score_mean_pvalue"] == pytest.approx(1.0)
    assert 0.0 <= doc["im_test_pvalue"] <= 1.0 and doc["im_test_df"] >= 1
    assert all(math.isfinite(v) for v in doc["eig_empirical_vs_observed"])


def test_help_lists_commands_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call(capsys, "--help")
    assert code == 0
    for name in ("fit", "check", "info", "demo"):
        assert name in out
    for name in ("fit", "check", "info", "demo"):
        code, out, _ = call(capsys, name, "--help")
        assert code == 0 and "Example: fisherlab" in out


def test_choices_come_from_the_enums(capsys: pytest.CaptureFixture[str]) -> None:
    """Every covariance kind, family and IM-test variant is offered; a bad one lists them all."""
    import fisherlab as fl

    code, out, _ = call(capsys, "fit", "--help")
    assert code == 0
    text = " ".join(out.replace("│", " ").split())  # Rich wraps the help in a box
    for value in [k.value for k in fl.CovKind] + [f.value for f in fl.models.Family]:
        assert value in text, value
    assert "Covariance: observed, expected, sandwich, empirical or cluster." in text
    code, _, err = call(capsys, "check", "data.csv", "--variant", "bogus")
    assert_one_error_line(code, err, "--variant 'bogus' is not one of white, opg")
    code, _, err = call(capsys, "info", "--dist", "Normal", "--param", "loc=0", "--method", "bogus")
    assert_one_error_line(code, err, "--method 'bogus' is not one of exact, mc, auto")


@pytest.mark.parametrize("width", [80, 60])
def test_summary_never_splits_or_cuts_a_number(width: int) -> None:
    # At 80 (and 60) columns the table stacks its columns instead of wrapping "-0.05253|51" or
    # cutting "0.03195…": every number appears whole on one line, no line is wider than the terminal.
    from rich.console import Console

    from fisherlab._format import cell_text, rich_tables

    table = pd.DataFrame(
        {
            "estimate": [-0.0525351, 15.0429],
            "se": [0.0319539, 7.37864],
            "z": [-1.64411, 2.03871],
            "p": [0.100153, 0.041479],
            "lower 95%": [-0.115163, 0.58104],
            "upper 95%": [0.0100927, 29.5048],
            "se (R)": [0.0301234, 7.31234],
        },
        index=["temperature", "C(group, Treatment('b'))[T.c]"],
    )
    console = Console(width=width, record=True, file=io.StringIO())
    parts = rich_tables(table, "fisherlab fit: y ~ temperature + C(group)", console.width)
    assert len(parts) > 1  # stacked
    for part in parts:
        console.print(part)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= width
    assert "…" not in text
    for col in table.columns:
        for value in table[col]:
            assert any(cell_text(col, value) in line for line in text.splitlines()), cell_text(col, value)
