"""The command line against hostile and careless input: no silent wrong results (issue 10).

Each case ends in one line ``fisherlab: error: ...`` on stderr naming the column,
row and token and what to do, with its exit status (2 bad input, 3 not converged,
130/143 interrupted), never a traceback: a numeric column with a typo, duplicate
column names, covariates too large for float64, formula terms that would run code,
``--model`` files that call ``sys.exit``, report targets that cannot be written, and
Ctrl-C / SIGTERM at any moment of a run. Most cases call :func:`fisherlab.cli.main`
in process; the signal cases run the console script's launcher in a subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_support import assert_one_error_line as one_error_line, call

# --------------------------------------------------------------------------- helpers


def poisson_frame(n: int = 60, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    g = rng.choice(["a", "b"], n)
    return pd.DataFrame({"y": rng.poisson(np.exp(0.3 + 0.8 * x + 0.3 * (g == "b"))), "x": x, "g": g})


def with_tokens(df: pd.DataFrame, column: str, tokens: dict[int, str]) -> pd.DataFrame:
    """``df`` with ``column`` as text and the given rows replaced by ``tokens`` (typos)."""
    out = df.copy()
    text = out[column].map(repr).astype(object)
    for row, token in tokens.items():
        text.iloc[row] = token
    out[column] = text
    return out


POISSON = ["--family", "poisson", "--no-check"]

# --------------------------------------------------------------------------- 1. typos in numbers


@pytest.mark.parametrize(
    ("tokens", "fragments"),
    [
        ({5: "abc"}, ["1 of 60 rows", "row 5 is 'abc'"]),
        ({7: "1,5"}, ["1 of 60 rows", "row 7 is '1,5'"]),
        ({2: "3.2.1", 9: "abc"}, ["2 of 60 rows", "row 2 is '3.2.1'", "row 9 is 'abc'"]),
        ({1: "a", 2: "b", 3: "c", 4: "d"}, ["4 of 60 rows", "row 1 is 'a'", "row 3 is 'c'", "and 1 more"]),
    ],
)
@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_typo_in_a_numeric_column_is_named(
    tokens: dict[int, str], fragments: list[str], family: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """A few non-numbers in a numeric column: exit 2 naming column, rows, tokens, count and C(x)."""
    df = poisson_frame()
    if family == "binomial":
        df["y"] = (df["y"] > 1).astype(int)
    path = tmp_path / "typo.csv"
    with_tokens(df, "x", tokens).to_csv(path, index=False)
    code, out, err = call(capsys, "fit", str(path), "-f", "y ~ x + g", "--family", family, "--no-check")
    one_error_line(code, err, "column 'x'", *fragments, "write C(x) in the formula")
    assert out == ""
    # A numeric use inside a transform is a numeric use too.
    code, _, err = call(capsys, "fit", str(path), "-f", "y ~ np.exp(x)", "--family", family, "--no-check")
    one_error_line(code, err, "column 'x'", *fragments)


def test_categorical_uses_are_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A mostly-numeric code column is categorical inside C(); a textual column used bare stays a factor."""
    df = poisson_frame(90)
    rng = np.random.default_rng(2)
    df["code"] = rng.choice(["1", "2", "x"], len(df))  # two of three levels look like numbers
    path = tmp_path / "codes.csv"
    df.to_csv(path, index=False)
    code, _, err = call(capsys, "fit", str(path), "-f", "y ~ code", *POISSON)
    one_error_line(code, err, "column 'code'", "write C(code)")
    code, out, err = call(capsys, "fit", str(path), "-f", "y ~ C(code) + g", *POISSON, "--json")
    assert code == 0, err
    assert json.loads(out)["names"] == ["Intercept", "C(code)[T.2]", "C(code)[T.x]", "g[T.b]"]


def test_malformed_numbers_count_as_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two numbers, two malformed numbers and a word: a numeric column with three typos, not 5 levels."""
    path = tmp_path / "few.csv"
    path.write_text('y,x\n1,1.5\n2,abc\n3,2\n4,"1,5"\n5,3.2.1\n')
    code, _, err = call(capsys, "fit", str(path), "-f", "y ~ x", *POISSON)
    one_error_line(code, err, "3 of 5 rows", "row 1 is 'abc'", "row 3 is '1,5'", "row 4 is '3.2.1'", "C(x)")


def test_typo_in_the_response_and_in_model_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The response's message does not suggest C(); --model names the row and the token too."""
    path = tmp_path / "typo_y.csv"
    with_tokens(poisson_frame(), "y", {4: "7..0"}).to_csv(path, index=False)
    code, _, err = call(capsys, "fit", str(path), "-f", "y ~ x", *POISSON)
    line = one_error_line(code, err, "column 'y'", "row 4 is '7..0'", "fix those values")
    assert "C(y)" not in line

    module = tmp_path / "m.py"
    module.write_text(
        "import fisherlab as fl\nimport jax.numpy as jnp\n\n"
        "def pois(th, x):\n    return fl.dist.Poisson(jnp.exp(th['a'] + th['b'] * x['x']))\n"
    )
    path = tmp_path / "typo_x.csv"
    with_tokens(poisson_frame(), "x", {11: "abc"}).to_csv(path, index=False)
    code, _, err = call(
        capsys, "fit", str(path), "--model", f"{module}:pois", "--init", '{"a": 0, "b": 0}', "--x", "x"
    )
    one_error_line(code, err, "column 'x'", "1 of 60 rows", "row 11 is 'abc'")


# --------------------------------------------------------------------------- 2. duplicate names


@pytest.mark.parametrize(
    ("header", "fragments"),
    [
        ("y,x, x", ["'x' at columns 2, 3"]),  # equal after stripping spaces
        ("y,x,x", ["'x' at columns 2, 3"]),  # pandas would rename the second x.1
        ("x,y,x,g,g", ["'x' at columns 1, 3", "'g' at columns 4, 5"]),
    ],
)
def test_duplicate_column_names(header: str, fragments: list[str], tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """Duplicate names (CSV, TSV, stdin): exit 2 listing the names and their positions; nothing fitted."""
    width = len(header.split(","))
    rows = "\n".join(",".join(str(r + c) for c in range(width)) for r in range(1, 6))
    path = tmp_path / "dup.csv"
    path.write_text(f"{header}\n{rows}\n")
    code, out, err = call(capsys, "fit", str(path), "-f", "y ~ x", *POISSON)
    one_error_line(code, err, "duplicate column names", *fragments, "rename")
    assert out == ""
    tsv = tmp_path / "dup.tsv"
    tsv.write_text(path.read_text().replace(",", "\t"))
    code, _, err = call(capsys, "fit", str(tsv), "-f", "y ~ x", *POISSON)
    one_error_line(code, err, *fragments)


def test_duplicate_names_on_stdin_and_in_parquet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("y,x,x\n1,2,3\n2,3,4\n"))
    code, _, err = call(capsys, "fit", "-", "-f", "y ~ x", *POISSON)
    one_error_line(code, err, "standard input", "'x' at columns 2, 3")
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"y": [1, 2, 3], "x": [1.0, 2.0, 3.0], " x": [3.0, 1.0, 2.0]})
    pq.write_table(table, tmp_path / "dup.parquet")
    code, _, err = call(capsys, "fit", str(tmp_path / "dup.parquet"), "-f", "y ~ x", *POISSON)
    one_error_line(code, err, "'x' at columns 2, 3")


# --------------------------------------------------------------------------- 3. overflow


def test_covariate_too_large_for_float64(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """1e308 (finite, but X'WX overflows): exit 2 naming the design column and row, before any warning.

    The suite runs with warnings as errors, so a RuntimeWarning on the way would change the message.
    """
    df = poisson_frame()
    df.loc[3, "x"] = 1e308
    path = tmp_path / "big.csv"
    df.to_csv(path, index=False)
    code, out, err = call(capsys, "fit", str(path), "-f", "y ~ x + g", *POISSON)
    one_error_line(code, err, "design column 'x'", "1e+308 at row 3", "rescale", "1e+300")
    assert "warning" not in err.lower() and out == ""
    # Two entries of 1e151: each square is finite, their sum of squares is not below 1e300.
    df = poisson_frame()
    df.loc[[8, 20], "x"] = 1e151
    df.to_csv(path, index=False)
    code, _, err = call(capsys, "fit", str(path), "-f", "y ~ x", *POISSON)
    one_error_line(code, err, "design column 'x'", "at row 8", "rescale")
    # An overflow made by a transform is named as such, without a RuntimeWarning first.
    df.loc[[8, 20], "x"] = 1e200
    df.to_csv(path, index=False)
    code, _, err = call(capsys, "fit", str(path), "-f", "y ~ I(x**2)", *POISSON)
    one_error_line(code, err, "'I(x ** 2)'", "inf at row 8", "overflowed")
    # The response too.
    df = poisson_frame()
    df["y"] = df["y"].astype(float)
    df.loc[6, "y"] = -1e308
    df.to_csv(path, index=False)
    code, _, err = call(capsys, "fit", str(path), "-f", "y ~ x", "--family", "gaussian", "--no-check")
    one_error_line(code, err, "response 'y'", "at row 6", "too large")


# --------------------------------------------------------------------------- 4. formulas that run code


def test_formula_cannot_run_shell_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The classic exploit is refused before evaluation: no file created, token and --allow-code named."""
    path = tmp_path / "d.csv"
    poisson_frame().to_csv(path, index=False)
    pwned = tmp_path / "pwned"
    formula = f"y ~ x + I(np.f2py.os.system('touch {pwned}') + x)"
    for command in ("fit", "check"):
        code, out, err = call(capsys, command, str(path), "-f", formula, "--family", "poisson")
        one_error_line(code, err, "'np.f2py.os.system'", "not an allowed function", "--allow-code")
        assert out == ""
        assert not pwned.exists()


@pytest.mark.parametrize(
    ("formula", "token"),
    [
        ("y ~ I(x.__class__)", "'x.__class__'"),
        ("y ~ I(__import__('os').getcwd())", "__import__('os').getcwd"),
        ("y ~ I(getattr(np, 'f2py'))", "'getattr'"),
        ("y ~ I((lambda v: v)(x))", "lambda v: v"),
        ("y ~ I(x[0] + x)", "'x[0]'"),
        ("y ~ I(9**9**9 + x)", "9 ** 9 ** 9"),
        ("y ~ I(np.lib.format.open_memmap)", "np.lib.format.open_memmap"),
        ("y ~ hashed(x, 2, hash_func=eval)", "'eval'"),  # a builtin passed as a value
        ("y ~ I([v for v in x])", "[v for v in x]"),
        ("y ~ C(g, _state={})", "_state={}"),
    ],
)
def test_formula_allow_list(
    formula: str, token: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Attributes, unknown calls, dunders, lambdas, subscripts, huge powers, builtins: exit 2, token named."""
    path = tmp_path / "d.csv"
    poisson_frame().to_csv(path, index=False)
    code, out, err = call(capsys, "fit", str(path), "-f", formula, *POISSON)
    one_error_line(code, err, token)
    assert out == ""


ORDINARY_FORMULAS = {
    "y ~ np.log(x)": ["Intercept", "np.log(x)"],
    "y ~ I(x**2)": ["Intercept", "I(x ** 2)"],
    "y ~ C(g)": ["Intercept", "C(g)[T.b]", "C(g)[T.c]"],
    "y ~ C(g, contr.treatment('b'))": 3,
    "y ~ C(g, Treatment('c'))": 3,
    "y ~ C(g, levels=['c', 'b', 'a'])": 3,
    "y ~ x1:x2": ["Intercept", "x1:x2"],
    "y ~ x1*x2": ["Intercept", "x1", "x2", "x1:x2"],
    "y ~ center(x)": ["Intercept", "center(x)"],
    "y ~ scale(x1) + standardize(x2)": 3,
    "y ~ bs(x, df=3)": 4,
    "y ~ cr(x, df=3)": 4,
    "y ~ poly(x, 2)": 3,
    "y ~ x - 1": ["x"],
    "y ~ Q('my col')": ["Intercept", "Q('my col')"],
    "y ~ `my col`": ["Intercept", "my col"],
    "y ~ np.where(x1 > 0, x1, 0) + np.sqrt(np.abs(x2)) + I(-x / np.pi)": 4,
    "y ~ I((x1 > 0) & (x2 < 1)) + np.clip(x, 0.6, 1.5)": 3,
    "np.log1p(y) ~ x": ["Intercept", "x"],
}


@pytest.fixture
def ordinary_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    n = 80
    x = rng.uniform(0.5, 2, n)
    x1, x2, z = rng.normal(size=(3, n))
    g = rng.choice(["a", "b", "c"], n)
    y = rng.poisson(np.exp(0.2 + 0.3 * x + 0.2 * x1))
    path = tmp_path / "ok.csv"
    pd.DataFrame({"y": y, "x": x, "x1": x1, "x2": x2, "g": g, "my col": z}).to_csv(path, index=False)
    return path


def test_ordinary_formulas_build(ordinary_csv: Path) -> None:
    """Every documented transform passes the check and builds its design (the fit is tested below)."""
    from fisherlab.cli._formula import build_design
    from fisherlab.cli._io import read_table

    df = read_table(str(ordinary_csv))
    for formula, expected in ORDINARY_FORMULAS.items():
        design = build_design(df, formula, family="gaussian")
        if isinstance(expected, int):
            assert len(design.columns) == expected, (formula, design.columns)
        else:
            assert design.columns == expected, (formula, design.columns)


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ np.log(x) + I(x**2) + C(g, contr.treatment('b')) + x1:x2",
        "y ~ x1*x2 + center(x) + Q('my col') + C(g, levels=['c', 'b', 'a']) - 1",
        "y ~ bs(x, df=3) + `my col` + poly(x1, 2)",
    ],
)
def test_ordinary_formulas_fit(formula: str, ordinary_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = call(capsys, "fit", str(ordinary_csv), "-f", formula, *POISSON, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["converged"] is True and all(np.isfinite(list(doc["se"].values())))


def test_allow_code_runs_the_formula_as_python(
    ordinary_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--allow-code restores formulaic's Python: methods and builtins; the help says it runs code."""
    for formula, token in [("y ~ I(x1.clip(lower=0))", "'x1.clip'"), ("y ~ I(abs(x1))", "'abs'")]:
        code, _, err = call(capsys, "fit", str(ordinary_csv), "-f", formula, *POISSON)
        one_error_line(code, err, token, "--allow-code")
        code, out, err = call(
            capsys, "fit", str(ordinary_csv), "-f", formula, *POISSON, "--json", "--allow-code"
        )
        assert code == 0, err
        assert len(json.loads(out)["names"]) == 2
    code, out, _ = call(capsys, "fit", "--help")
    text = " ".join(out.replace("│", " ").split())
    assert "--allow-code" in text and "Python code" in text
    assert "executed as Python code" in text  # --model FILE.py
    assert "130" in text and "143" in text


# --------------------------------------------------------------------------- 5. sys.exit in --model


@pytest.mark.parametrize(
    ("source", "fragments"),
    [
        ("import sys\nsys.exit(7)\n", ["model.py", "called sys.exit(7) at import"]),
        ("raise SystemExit('bye')\n", ["model.py", "sys.exit('bye') at import"]),
        ("class Boom(BaseException):\n    pass\n\nraise Boom('no')\n", ["model.py", "Boom: no"]),
        (
            "import sys\n\ndef pois(th, x):\n    sys.exit(3)\n",
            ["model.py:pois", "called sys.exit(3) during the fit"],
        ),
    ],
)
def test_model_file_that_exits(source: str, fragments: list[str], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """A --model file or function that calls sys.exit: exit 2 naming the file, not its own status."""
    module = tmp_path / "model.py"
    module.write_text(source)
    path = tmp_path / "d.csv"
    poisson_frame().to_csv(path, index=False)
    code, out, err = call(capsys, "fit", str(path), "--model", f"{module}:pois", "--init", '{"a": 0}')
    one_error_line(code, err, *fragments)
    assert out == ""


def test_model_file_that_exits_in_a_real_process(tmp_path: Path) -> None:
    module = tmp_path / "model.py"
    module.write_text("import sys\nsys.exit(7)\n")
    (tmp_path / "d.csv").write_text("y,x\n1,2\n2,3\n")
    proc = subprocess.run(
        [sys.executable, "-m", "fisherlab.cli", "fit", str(tmp_path / "d.csv"), "--model",
         f"{module}:f", "--init", '{"a": 0}'],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    one_error_line(proc.returncode, proc.stderr, "model.py", "sys.exit(7)")


# --------------------------------------------------------------------------- 6. report targets


def _fit_args(path: Path, report: Path) -> list[str]:
    return ["fit", str(path), "-f", "y ~ x", *POISSON, "--report", str(report)]


def test_report_target_checked_before_fitting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Existing file, dangling symlink, unwritable folder: exit 2 before the fit, the user's path named."""
    from fisherlab.cli import _fitting

    path = tmp_path / "d.csv"
    poisson_frame().to_csv(path, index=False)

    def no_fit(*args: object, **kwargs: object) -> None:
        raise AssertionError("fitted before checking the report target")

    monkeypatch.setattr(_fitting, "fit_glm", no_fit)
    existing = tmp_path / "r.html"
    existing.write_text("keep me")
    code, _, err = call(capsys, *_fit_args(path, existing))
    one_error_line(code, err, str(existing), "already exists", "--force")
    assert existing.read_text() == "keep me"

    link = tmp_path / "link.html"
    link.symlink_to(tmp_path / "missing" / "target.html")
    code, _, err = call(capsys, *_fit_args(path, link))
    one_error_line(code, err, str(link), "already exists", "symbolic link", "--force")
    assert link.is_symlink() and not link.exists()

    folder = tmp_path / "ro"
    folder.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == folder else real_access(p, mode))
    code, _, err = call(capsys, *_fit_args(path, folder / "r.html"))
    one_error_line(code, err, str(folder / "r.html"), "not writable", "--report")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_report_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "d.csv"
    poisson_frame().to_csv(path, index=False)
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code, _, err = call(capsys, *_fit_args(path, folder / "r.html"))
        one_error_line(code, err, str(folder / "r.html"), "not writable", "permission denied")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_report_write_failure_names_the_users_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An OSError at the very end names r.html, never the temporary file; none is left."""
    path = tmp_path / "d.csv"
    poisson_frame().to_csv(path, index=False)
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    def refuse(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied", str(src))

    import fisherlab.report

    monkeypatch.setattr(fisherlab.report, "build_html", lambda *a, **k: "<html></html>")  # fast
    monkeypatch.setattr(os, "replace", refuse)
    code, _, err = call(capsys, *_fit_args(path, out_dir / "r.html"))
    line = one_error_line(code, err, str(out_dir / "r.html"), "Permission denied")
    assert ".tmp" not in line
    assert list(out_dir.iterdir()) == []


def test_write_report_treats_a_dangling_symlink_as_existing(tmp_path: Path) -> None:
    import fisherlab as fl
    from fisherlab.report import write_report

    link = tmp_path / "r.html"
    link.symlink_to(tmp_path / "nowhere.html")
    with pytest.raises(fl.OutputExistsError, match="already exists"):
        write_report(link, "<p>x</p>")
    assert link.is_symlink() and not (tmp_path / "nowhere.html").exists()
    write_report(link, "<p>x</p>", force=True)  # replaces the link itself
    assert not link.is_symlink() and link.read_text() == "<p>x</p>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


# --------------------------------------------------------------------------- 7. interrupts


def test_interrupt_in_process_writes_no_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGTERM while the report is built: 143, one line, no report, no temporary; handlers restored."""
    import threading

    import fisherlab.report

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")

    path = tmp_path / "d.csv"
    poisson_frame().to_csv(path, index=False)
    report = tmp_path / "r.html"

    def build_then_signal(*args: object, **kwargs: object) -> str:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.5)  # the handler runs here, as it would in the middle of a long build
        return "<html></html>"

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    monkeypatch.setattr(fisherlab.report, "build_html", build_then_signal)
    code, out, err = call(capsys, *_fit_args(path, report))
    assert code == 143, err
    assert err.strip() == "fisherlab: interrupted" and out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_swallowed_interrupt_still_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A library that swallows the KeyboardInterrupt: the next phase boundary stops the command (130)."""
    import threading

    from fisherlab.cli import _fitting

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")

    path = tmp_path / "d.csv"
    poisson_frame().to_csv(path, index=False)
    real_read = _fitting.read_table

    def read_and_swallow(source: str) -> pd.DataFrame:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)  # the handler runs here and raises
        except KeyboardInterrupt:
            pass
        return real_read(source)

    monkeypatch.setattr(_fitting, "read_table", read_and_swallow)
    code, out, err = call(capsys, *_fit_args(path, tmp_path / "r.html"))
    assert code == 130, err
    assert err.strip() == "fisherlab: interrupted" and out == ""
    assert not (tmp_path / "r.html").exists()


def test_interrupt_inside_a_gc_callback_is_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A signal handled inside a gc callback (JAX has one) would be printed and dropped: it comes later."""
    import gc
    import threading

    from fisherlab.cli import _fitting

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")
    path = tmp_path / "d.csv"
    poisson_frame().to_csv(path, index=False)
    real_read = _fitting.read_table
    fired: list[str] = []

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and not fired:
            fired.append(phase)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs here, inside the callback

    def read_with_gc(source: str) -> pd.DataFrame:
        gc.callbacks.append(callback)
        try:
            gc.collect()
        finally:
            gc.callbacks.remove(callback)
        time.sleep(0.5)  # the interrupt is delivered again here
        return real_read(source)

    monkeypatch.setattr(_fitting, "read_table", read_with_gc)
    code, out, err = call(capsys, *_fit_args(path, tmp_path / "r.html"))
    assert fired and code == 130, err
    assert err.strip() == "fisherlab: interrupted" and out == ""


def _handles_sigterm(pid: int) -> bool:
    """Whether process ``pid`` catches SIGTERM yet (its launcher installed the handlers), or has ended."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    except FileNotFoundError:
        return True
    return False


@pytest.fixture(scope="module")
def signal_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Poisson regression whose fit, identity check and report take a few seconds after import."""
    rng = np.random.default_rng(5)
    n = 2000
    x1, x2 = rng.normal(size=(2, n))
    path = tmp_path_factory.mktemp("signals") / "d.csv"
    y = rng.poisson(np.exp(0.2 + 0.3 * x1 - 0.2 * x2))
    pd.DataFrame({"y": y, "x1": x1, "x2": x2}).to_csv(path, index=False)
    return path


def _interrupt_run(signal_csv: Path, tmp_path: Path, sig: signal.Signals, delay: float) -> None:
    """Run the console script, signal it ``delay`` s after its handlers exist, check how it ended."""
    report = tmp_path / "r.html"
    proc = subprocess.Popen(
        [sys.executable, "-m", "_fisherlab_launch", "fit", str(signal_csv), "-f", "y ~ x1 + x2",
         "--family", "poisson", "--report", str(report)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not _handles_sigterm(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(delay)
    sent = time.time()
    if proc.poll() is None:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode >= 0, f"died by signal {-proc.returncode}: {err}"
    assert "Traceback" not in err, err
    assert not list(tmp_path.glob(".r.html.*")), "temporary file left"
    if proc.returncode == 0:  # finished before the signal: a complete report
        assert report.read_text().rstrip().endswith("</html>")
        return
    assert proc.returncode == 128 + sig, err
    assert lines and lines[-1] == "fisherlab: interrupted", err
    assert sum("fisherlab:" in line for line in lines) == 1, err
    if report.exists():  # only if it was complete before the signal
        assert report.stat().st_mtime <= sent, "report written after the interrupt"


signal_runs = pytest.mark.skipif(
    not os.path.exists(f"/proc/{os.getpid()}/status"), reason="needs /proc to see when handlers exist"
)


@signal_runs
@pytest.mark.parametrize(("sig", "delay"), [(signal.SIGINT, 0.3), (signal.SIGTERM, 4.0)])
def test_interrupt_console_script(
    sig: signal.Signals, delay: float, signal_csv: Path, tmp_path: Path
) -> None:
    """Ctrl-C while importing, SIGTERM while fitting: 130/143, one line, no report, no temp file."""
    _interrupt_run(signal_csv, tmp_path, sig, delay)


@pytest.mark.slow
@signal_runs
@pytest.mark.parametrize("delay", [0.0, 0.05, 0.5, 1.5, 2.5, 3.0, 3.5, 4.5, 5.5, 6.5, 8.0])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_console_script_sweep(
    sig: signal.Signals, delay: float, signal_csv: Path, tmp_path: Path
) -> None:
    """The same at many moments: import, read, fit, check, report, exit."""
    _interrupt_run(signal_csv, tmp_path, sig, delay)


# --------------------------------------------------------------------------- estimates at infinity


def test_group_with_all_zero_counts_exits_3_naming_the_level(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    df = poisson_frame()
    df.loc[df["g"] == "b", "y"] = 0
    path = tmp_path / "zero.csv"
    df.to_csv(path, index=False)
    code, out, err = call(capsys, "fit", str(path), "-f", "y ~ x + g", *POISSON)
    line = one_error_line(
        code, err, "does not exist", "g[T.b] → −∞", "y = 0", "exactly the rows where g[T.b] ≠ 0", status=3
    )
    assert f"{int((df['g'] == 'b').sum())} of 60 rows" in line and out == ""


@pytest.mark.slow  # > 7 s: keeps the default suite within its budget
def test_negative_binomial_on_its_boundary_and_its_overdispersion_test(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import fisherlab as fl
    from fisherlab import models

    x = np.tile(np.linspace(-1, 1, 6), 30)
    under = pd.DataFrame({"y": np.tile([2, 3, 4, 3, 1, 5], 30), "x": x})
    path = tmp_path / "under.csv"
    under.to_csv(path, index=False)
    args = ["-f", "y ~ x", "--family", "negative_binomial", "--json", "--no-check"]  # the fit, not the check
    code, out, err = call(capsys, "fit", str(path), *args)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["names"] == ["Intercept", "x"] and doc["boundary"] == {"alpha": 0.0}
    assert (
        doc["tests"]["overdispersion"]["statistic"] == 0.0 and doc["tests"]["overdispersion"]["pvalue"] == 1.0
    )
    assert any("boundary" in note for note in doc["notes"])
    X = np.column_stack([np.ones(x.size), x])
    pois = models.fit_glm(models.glm("poisson"), under["y"].to_numpy(float), X)
    np.testing.assert_allclose(doc["loglik"], pois.loglik, rtol=1e-12)

    rng = np.random.default_rng(11)
    mu = np.exp(0.5 + 0.4 * x)
    over = pd.DataFrame({"y": rng.negative_binomial(2.0, 2.0 / (2.0 + mu)), "x": x})
    path = tmp_path / "over.csv"
    over.to_csv(path, index=False)
    code, out, err = call(capsys, "fit", str(path), *args)
    assert code == 0, err
    doc = json.loads(out)
    test = doc["tests"]["overdispersion"]
    nb = models.fit_glm(models.glm("negative_binomial"), over["y"].to_numpy(float), X)
    pois = fl.fit(models.glm("poisson"), over["y"].to_numpy(float), X, init={"beta": np.zeros(2)})
    np.testing.assert_allclose(test["statistic"], 2 * (nb.loglik - pois.loglik), rtol=1e-8)
    assert test["distribution"] == "chibar2(01)" and 0 < test["pvalue"] < 0.5 and "boundary" not in doc
