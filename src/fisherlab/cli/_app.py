"""The ``fisherlab`` command: Typer commands ``fit``, ``check``, ``info`` and ``demo``.

Exit status: 0 success; 2 bad input (one ``fisherlab: error:`` line on stderr);
3 a fit that did not converge; 1 an unexpected internal error. Progress
spinners go to stderr (and only when it is a terminal); stdout carries the
tables, or exactly one JSON object with ``--json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import inspect
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.console import Console

from ._errors import EXIT_BAD_INPUT, EXIT_NOT_CONVERGED, CliError
from ._formula import Design, build_design, missing_report
from ._io import read_table
from ._render import check_dict, check_table, dump_json, info_table, stdout_console, summary_table

__all__ = ["app"]

COV_KINDS = ("observed", "expected", "sandwich", "empirical")
DISPERSIONS = ("ml", "r")
# Families whose R summary estimates the dispersion by Pearson's statistic (t tests in R).
PEARSON_FAMILIES = ("gaussian", "gamma", "inverse_gaussian")
# fit runs fl.check by default only up to this N·P² (per-row Hessians: ~30 s and 6 GB at 1.2e8).
CHECK_AUTO_LIMIT = 2e7
# Distribution parameters that are counts, held fixed rather than differentiated.
FIXED_DIST_PARAMS = ("total_count",)

# The command line as typed, for the report (set by main()).
COMMAND_LINE: list[str] = []

app = typer.Typer(
    name="fisherlab",
    help=(
        "Score, Fisher information and the uncertainty built on them, from the command line.\n\n"
        "Example: fisherlab fit data.csv --formula 'y ~ x1 + x2' --family poisson"
    ),
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


# --------------------------------------------------------------------------- small helpers


class _Timer:
    """Wall-clock time per phase, with a Rich spinner on stderr while a phase runs."""

    def __init__(self, err: Console) -> None:
        self.err = err
        self.phases: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(self, name: str, message: str) -> Iterator[None]:
        t0 = time.perf_counter()
        with self.err.status(message):
            yield
        self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - t0


def _choice(value: str, allowed: tuple[str, ...], option: str) -> str:
    v = value.strip().lower()
    if v not in allowed:
        raise CliError(f"{option} {value!r} is not one of {', '.join(allowed)}")
    return v


def _check_level(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise CliError(f"--level must be in (0, 1), e.g. 0.95; got {level}")
    return level


def _report_module() -> Any:
    try:
        from fisherlab import report
    except ImportError:
        return None
    return report


def _check_target(path: Path, force: bool, *, create_parent: bool = False) -> Any:
    """Fail early (before any fitting) if ``path`` exists without ``--force``; return fisherlab.report."""
    if path.exists() and not force:
        raise CliError(f"{path} already exists; pass --force to overwrite it")
    if path.exists() and path.is_dir():
        raise CliError(f"{path} is a directory; give a file name such as report.html")
    if not create_parent and not path.parent.is_dir():
        raise CliError(f"cannot write {path}: the directory {path.parent} does not exist")
    report = _report_module()
    if report is None:
        raise CliError("writing an HTML report needs fisherlab.report, which this installation lacks", 1)
    return report


def _command_line() -> str:
    return "fisherlab " + " ".join(COMMAND_LINE) if COMMAND_LINE else "fisherlab"


# --------------------------------------------------------------------------- fitting


@dataclasses.dataclass
class Fitted:
    """A fit ready to print: the (renamed) result and what is needed for its tables."""

    res: Any
    model: Any
    y: Any
    x: Any
    family: str | None  # GLM family, None for a user model
    link: str | None
    description: str
    beta_index: list[int]  # positions of the coefficients among res.names (GLM)
    original_names: list[str] = dataclasses.field(default_factory=list)  # the fit's own names (beta[0], ...)
    dropped: int = 0
    check: Any = None
    check_error: str = ""


def _coefficient_names(text: str, columns: list[str]) -> str:
    """``text`` with ``beta[i]`` replaced by the i-th design column's name."""
    return re.sub(r"beta\[(\d+)\]", lambda m: columns[int(m.group(1))], text)


def _fit_glm(design: Design, family: str, link: str | None, timer: _Timer, description: str) -> Fitted:
    import fisherlab as fl

    model = fl.models.glm(family, link)
    with timer.phase("fit", f"fitting a {model.family.value} GLM to {len(design.y):,} rows"):
        init = fl.models.glm_start(model, design.y, design.x)
        try:
            res = fl.fit(model, design.y, design.x, init=init)
        except fl.FisherlabError as exc:  # name the design columns, not beta[i]
            code = EXIT_NOT_CONVERGED if isinstance(exc, fl.NotConvergedError) else EXIT_BAD_INPUT
            raise CliError(_coefficient_names(str(exc), design.columns), code) from exc
    names, beta_index = [], []
    for i, name in enumerate(res.names):
        if name.startswith("beta[") and name.endswith("]"):
            names.append(design.columns[int(name[5:-1])])
            beta_index.append(i)
        else:
            names.append(name)
    return Fitted(
        res=res.rename(names),
        model=model,
        y=design.y,
        x=design.x,
        family=model.family.value,
        link=model.link.value,
        description=description,
        beta_index=beta_index,
        dropped=design.dropped,
        original_names=list(res.names),
    )


def _load_function(spec: str) -> Callable[..., Any]:
    path_text, sep, name = spec.rpartition(":")
    if not sep or not path_text or not name:
        raise CliError(f"--model must be FILE.py:FUNCTION, got {spec!r}")
    path = Path(path_text)
    if not path.is_file():
        raise CliError(f"no such model file: {path_text}")
    module_spec = importlib.util.spec_from_file_location(f"_fisherlab_user_model_{path.stem}", path)
    if module_spec is None or module_spec.loader is None:
        raise CliError(f"cannot load {path_text} as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        raise CliError(f"running {path_text} failed: {type(exc).__name__}: {exc}") from exc
    fn = getattr(module, name, None)
    from ..model._model import Model

    if isinstance(fn, Model):  # a ready fl.Model: derivatives=, executor=, constraints= chosen in Python
        return fn  # type: ignore[return-value]
    if not callable(fn):
        found = sorted(k for k, v in vars(module).items() if inspect.isfunction(v) and not k.startswith("_"))
        raise CliError(
            f"{path_text} defines no function {name!r}; functions there: {', '.join(found) or 'none'}"
        )
    return fn  # type: ignore[no-any-return]


def _parse_init(text: str) -> Any:
    source = text
    if text.startswith("@") or (text.endswith(".json") and Path(text).is_file()):
        path = Path(text.removeprefix("@"))
        try:
            source = path.read_text()
        except OSError as exc:
            raise CliError(f"cannot read --init file {path}: {exc.strerror or exc}") from exc
    try:
        value = json.loads(source)
    except json.JSONDecodeError as exc:
        raise CliError(f"--init is not valid JSON ({exc.msg} at position {exc.pos}): {text!r}") from exc

    def leaf(v: Any, where: str) -> Any:
        if isinstance(v, dict):
            if not v:
                raise CliError(f"--init: {where or 'the top level'} is an empty object")
            return {str(k): leaf(u, f"{where}.{k}" if where else str(k)) for k, u in v.items()}
        try:
            arr = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise CliError(f"--init: {where} must be a number or a list of numbers, got {v!r}") from None
        return float(arr) if arr.ndim == 0 else arr

    if not isinstance(value, dict):
        raise CliError(
            f'--init must be a JSON object of parameters, e.g. \'{{"mu": 0, "sigma": 1}}\'; got {text!r}'
        )
    return leaf(value, "")


def _fit_user_model(
    df: pd.DataFrame,
    spec: str,
    init_text: str,
    y_col: str,
    x_cols: str | None,
    positive: str | None,
    dropna: bool,
    timer: _Timer,
) -> Fitted:
    import fisherlab as fl

    fn = _load_function(spec)
    init = _parse_init(init_text)
    xs = [c.strip() for c in x_cols.split(",") if c.strip()] if x_cols else []
    missing = [c for c in [y_col, *xs] if c not in df.columns]
    if missing:
        raise CliError(
            f"column(s) {', '.join(map(repr, missing))} not in the data; columns are: {', '.join(df.columns)}"
            + ("" if y_col in df.columns else " (choose the response with --y COLUMN)")
        )
    bad, report = missing_report(df, [y_col, *xs])
    dropped = 0
    if report:
        if not dropna:
            raise CliError(f"{report}; pass --dropna to drop them")
        df, dropped = df.loc[~bad], int(bad.sum())
    for c in [y_col, *xs]:
        if not (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c])):
            raise CliError(f"column {c!r} is not numeric (dtype {df[c].dtype})")
    y = df[y_col].to_numpy(dtype=np.float64)
    x = {c: df[c].to_numpy(dtype=np.float64) for c in xs} if xs else None
    constraints = {p.strip(): "positive" for p in positive.split(",") if p.strip()} if positive else None
    if isinstance(fn, fl.Model) and constraints:
        raise CliError(
            f"{spec} is an fl.Model: declare its constraints there (constraints=...), not with --positive"
        )
    try:
        model = fn if isinstance(fn, fl.Model) else fl.Model(fn, constraints=constraints)
        with timer.phase("fit", f"fitting {spec} to {len(y):,} rows"):
            res = fl.fit(model, y, x, init=init)
    except (fl.FisherlabError, CliError):
        raise
    except Exception as exc:  # an error inside the user's function is bad input, said in one line
        raise CliError(f"the model {spec} failed: {type(exc).__name__}: {exc}") from exc
    return Fitted(
        res=res,
        model=model,
        y=y,
        x=x,
        family=None,
        link=None,
        description=f"{spec}, y = {y_col}" + (f", x = {', '.join(xs)}" if xs else ""),
        beta_index=[],
        dropped=dropped,
    )


def _fit_from_options(
    data: str,
    formula: str | None,
    family: str | None,
    link: str | None,
    trials: str | None,
    dropna: bool,
    model: str | None,
    init: str | None,
    y: str | None,
    x: str | None,
    positive: str | None,
    timer: _Timer,
    before_fit: Callable[[], None] = lambda: None,
) -> Fitted:
    """Validate the model options, read the data, fit. ``before_fit`` runs after validation."""
    if (formula is None) == (model is None):
        raise CliError("give either --formula (with --family) or --model FILE.py:FUNCTION (with --init)")
    if formula is not None:
        if family is None:
            raise CliError("--formula needs --family (gaussian, binomial, poisson, gamma, ...)")
        import fisherlab as fl

        glm = fl.models.glm(family, link)  # unknown family / link: ModelError listing the valid ones
        before_fit()
        with timer.phase("read", f"reading {data}"):
            df = read_table(data)
        with timer.phase("design", "building the design matrix"):
            design = build_design(df, formula, family=glm.family.value, trials=trials, dropna=dropna)
        desc = f"{formula}, family {glm.family.value}, link {glm.link.value}" + (
            f", trials {trials}" if trials else ""
        )
        return _fit_glm(design, glm.family.value, glm.link.value, timer, desc)
    if init is None:
        raise CliError(
            '--model needs --init with starting values as JSON, e.g. --init \'{"mu": 0, "sigma": 1}\''
        )
    if family is not None or trials is not None:
        raise CliError("--family/--trials go with --formula, not with --model")
    before_fit()
    with timer.phase("read", f"reading {data}"):
        df = read_table(data)
    assert model is not None
    return _fit_user_model(df, model, init, y or "y", x, positive, dropna, timer)


def _relabel(text: str, f: Fitted) -> str:
    """Replace the fit's own parameter names (``beta[3]``) by the design-column names in ``text``."""
    for old, new in zip(f.original_names, f.res.names, strict=True):
        if old != new:
            text = text.replace(old, new)
    return text


def _check(f: Fitted, variant: str) -> Any:
    """``fl.check`` at the estimate, with the design-column names in its names, pairs and verdict."""
    import fisherlab as fl

    chk = fl.check(f.model, f.res.params, f.y, f.x, variant=variant)
    if not f.original_names:
        return chk
    rename = dict(zip(f.original_names, f.res.names, strict=True))
    return dataclasses.replace(
        chk,
        names=list(f.res.names),
        im_test_indicators=[(rename[a], rename[b]) for a, b in chk.im_test_indicators],
        im_test_dropped=[(rename[a], rename[b]) for a, b in chk.im_test_dropped],
        verdict=_relabel(chk.verdict, f),
    )


def _run_check(f: Fitted, timer: _Timer, variant: str = "white") -> None:
    import fisherlab as fl

    with timer.phase("check", "checking the information identities"):
        try:
            f.check = _check(f, variant)
        except (fl.FisherlabError, ValueError) as exc:
            f.check_error = _relabel(" ".join(str(exc).split()), f)


# --------------------------------------------------------------------------- tables


def _covariance(f: Fitted, kind: str, dispersion: str) -> tuple[np.ndarray, str]:
    """The covariance the table uses and its label (``cov_kind``)."""
    cov = np.array(f.res.cov(kind).matrix)
    if dispersion == "ml" or f.family is None:
        return cov, kind
    import fisherlab as fl

    r_cov = fl.models.glm_covariance(f.res, "auto").matrix
    b = np.asarray(f.beta_index)
    cov[b, :] = 0.0
    cov[:, b] = 0.0
    cov[np.ix_(b, b)] = r_cov
    return cov, "r"


def _table(f: Fitted, kind: str, dispersion: str, level: float, prof: pd.DataFrame | None) -> dict[str, Any]:
    import scipy.stats

    import fisherlab as fl

    res = f.res
    names = list(res.names)
    theta = res.flat_params
    cov, cov_kind = _covariance(f, kind, dispersion)
    se = np.sqrt(np.diag(cov))
    stat = theta / se
    use_t = cov_kind == "r" and f.family in PEARSON_FAMILIES
    df_resid = res.nobs - len(f.beta_index)
    p = 2 * scipy.stats.norm.sf(np.abs(stat))
    if use_t:
        b = np.asarray(f.beta_index)
        p[b] = 2 * scipy.stats.t.sf(np.abs(stat[b]), df_resid)
    ci = res.conf_int(level, kind)
    lower, upper = ci["lower"].to_numpy().copy(), ci["upper"].to_numpy().copy()
    if cov_kind == "r":
        zq = float(scipy.stats.norm.ppf(0.5 + level / 2))
        b = np.asarray(f.beta_index)
        lower[b], upper[b] = theta[b] - zq * se[b], theta[b] + zq * se[b]
    pct = f"{100 * level:g}%"
    table = pd.DataFrame(
        {
            "estimate": theta,
            "se": se,
            "t" if use_t else "z": stat,
            "p": p,
            f"lower {pct}": lower,
            f"upper {pct}": upper,
        },
        index=names,
    )
    se_r: dict[str, float] = {}
    phi_r = None
    if f.family is not None:
        phi_r = fl.models.glm_dispersion(f.res, "auto")
        if cov_kind != "r" and f.family in PEARSON_FAMILIES:
            r_se = np.sqrt(np.diag(fl.models.glm_covariance(f.res, "auto").matrix))
            col = np.full(len(names), np.nan)
            col[np.asarray(f.beta_index)] = r_se
            table["se (R)"] = col
            se_r = {names[i]: float(r_se[k]) for k, i in enumerate(f.beta_index)}
    if prof is not None:
        table[f"profile lower {pct}"] = prof["lower"].to_numpy()
        table[f"profile upper {pct}"] = prof["upper"].to_numpy()
    return {
        "table": table,
        "names": names,
        "theta": theta,
        "se": se,
        "cov": cov,
        "cov_kind": cov_kind,
        "lower": lower,
        "upper": upper,
        "se_r": se_r,
        "dispersion_r": phi_r,
        "profile": prof,
        "use_t": use_t,
        "df_resid": df_resid,
    }


def _cov_description(kind: str, cov_kind: str, family: str | None, use_t: bool, df_resid: int) -> str:
    what = {
        "observed": "inverse observed information",
        "expected": "inverse expected Fisher information",
        "sandwich": "sandwich J⁻¹KJ⁻¹ (robust to misspecification)",
        "empirical": "inverse empirical Fisher (outer product of scores)",
    }[kind]
    if cov_kind == "r":
        disp = "Pearson dispersion" if family in PEARSON_FAMILIES else "dispersion 1"
        test = f"; t tests on {df_resid} df" if use_t else ""
        return f"coefficients: R's summary.glm, φ̂ (XᵀWX)⁻¹ with the {disp}{test}; other parameters: {what}"
    return f"{what}, maximum likelihood (ML dispersion)"


def _fit_document(f: Fitted, t: dict[str, Any], level: float, timer: _Timer, timings: bool) -> dict[str, Any]:
    res = f.res
    names = t["names"]
    doc: dict[str, Any] = {
        "names": names,
        "params": {n: float(v) for n, v in zip(names, t["theta"], strict=True)},
        "se": {n: float(v) for n, v in zip(names, t["se"], strict=True)},
        "cov": t["cov"].tolist(),
        "loglik": float(res.loglik),
        "conf_int": {
            n: [float(lo), float(hi)] for n, lo, hi in zip(names, t["lower"], t["upper"], strict=True)
        },
        "cov_kind": t["cov_kind"],
        "level": level,
        "nobs": int(res.nobs),
        "converged": bool(res.converged),
        "n_iter": int(res.n_iter),
        "model": f.description,
        "family": f.family,
        "link": f.link,
        "rows_dropped": f.dropped,
        "notes": list(res.notes),
        "check": check_dict(f.check) if f.check is not None else None,
    }
    if f.check is None and f.check_error:
        doc["check_error"] = f.check_error
    if t["se_r"]:
        doc["se_r"] = t["se_r"]
    if t["dispersion_r"] is not None:
        doc["dispersion_r"] = t["dispersion_r"]
    if t["profile"] is not None:
        prof = t["profile"]
        doc["profile_conf_int"] = {
            n: [float(prof.loc[n, "lower"]), float(prof.loc[n, "upper"])] for n in names
        }
    if timings:
        doc["timings"] = dict(timer.phases)
    return doc


def _print_fit(f: Fitted, t: dict[str, Any], kind: str, out: Console) -> None:
    res = f.res
    title = f"fisherlab fit: {f.description}"
    out.print(summary_table(t["table"], title), soft_wrap=False)
    out.print(
        f"covariance: {_cov_description(kind, t['cov_kind'], f.family, t['use_t'], t['df_resid'])}",
        highlight=False,
        markup=False,
    )
    if "se (R)" in t["table"].columns:
        out.print(
            f"se (R): R's summary.glm standard errors (Pearson dispersion {t['dispersion_r']:.6g}); "
            "--dispersion r puts them in the table",
            highlight=False,
            markup=False,
        )
    dropped = f" ({f.dropped} rows with missing values dropped)" if f.dropped else ""
    out.print(
        f"log-likelihood {res.loglik:.8g}, N = {res.nobs}{dropped}, converged in {res.n_iter} iterations "
        f"({res.method}, Newton decrement {res.decrement:.1e})",
        highlight=False,
        markup=False,
    )
    for note in res.notes:
        out.print(f"note: {note}", highlight=False, markup=False)
    if f.check is not None:
        out.print(f"identity check: {f.check.verdict}", highlight=False, markup=False)
    elif f.check_error:
        out.print(f"identity check: not available ({f.check_error})", highlight=False, markup=False)


def _write_report(
    report_mod: Any,
    f: Fitted,
    path: Path,
    force: bool,
    level: float,
    profile: bool,
    source: str,
    timer: _Timer,
    title: str,
) -> Path:
    with timer.phase("report", f"writing {path}"):
        html = report_mod.build_html(
            f.res,
            check=f.check,
            title=title,
            command=_command_line(),
            source=source,
            level=level,
            profile=profile,
        )
        return Path(report_mod.write_report(path, html, force=force))


# --------------------------------------------------------------------------- commands

_DATA_HELP = "CSV (.csv), TSV (.tsv) or Parquet (.parquet, .pq) file; - reads CSV from standard input."


@app.command(
    help=(
        "Fit a GLM from a formula, or a Python model, and print estimates with standard errors.\n\n"
        "Example: fisherlab fit data.csv --formula 'y ~ x1 + C(group)' --family poisson --json\n\n"
        "Parameter names are the design-matrix column names (Intercept, x1, ...) plus the family's "
        "extra parameter (sigma for gaussian, shape for gamma and inverse_gaussian, alpha for "
        "negative_binomial). The table's standard errors come from --cov (default: inverse observed "
        "information) with every parameter, dispersion included, fitted by maximum likelihood "
        "(--dispersion ml). --dispersion r gives the coefficients R's summary.glm standard errors "
        "instead (Pearson dispersion for gaussian, gamma, inverse_gaussian, with t tests on N-p df; "
        "expected information with dispersion 1 for binomial, poisson, negative_binomial): estimates "
        "and standard errors then equal R's. For gaussian, gamma and inverse_gaussian the ML table "
        "also shows R's standard errors in a 'se (R)' column.\n\n"
        "With --model FILE.py:FUNCTION the function fn(params, x) returns a distribution for each row "
        "(as fl.Model takes it); params start at --init (JSON object, or @file.json); y is the column "
        "--y (default y); x is a dict of the --x columns (name -> float array of length N), or None "
        "without --x. A function JAX cannot trace (NumPy, SciPy, a simulator) is fitted with numeric "
        "derivatives, with a warning; FUNCTION may also name an fl.Model built in the file, e.g. "
        "fl.Model(fn, derivatives='numeric', executor='threads').\n\n"
        "Exit status: 0 ok, 2 bad input, 3 the fit did not converge."
    )
)
def fit(
    data: Annotated[str, typer.Argument(help=_DATA_HELP, show_default=False)],
    formula: Annotated[
        str | None, typer.Option("--formula", "-f", help="Wilkinson formula, e.g. 'y ~ x1 + x2' (formulaic).")
    ] = None,
    family: Annotated[
        str | None,
        typer.Option(help="gaussian, binomial, poisson, gamma, inverse_gaussian, negative_binomial."),
    ] = None,
    link: Annotated[str | None, typer.Option(help="Link function (default: the family's R default).")] = None,
    trials: Annotated[
        str | None, typer.Option(help="Binomial: column of trials; the response counts successes.")
    ] = None,
    cov: Annotated[
        str, typer.Option(help="Covariance: observed, expected, sandwich or empirical.")
    ] = "observed",
    dispersion: Annotated[
        str, typer.Option(help="ml (maximum likelihood) or r (R's summary.glm) for GLM coefficients.")
    ] = "ml",
    level: Annotated[float, typer.Option(help="Confidence level of the intervals.")] = 0.95,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout, nothing else.")
    ] = False,
    report: Annotated[Path | None, typer.Option(help="Write an HTML report to this file.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing report.")] = False,
    dropna: Annotated[bool, typer.Option(help="Drop rows with missing values in the columns used.")] = False,
    profile: Annotated[bool, typer.Option(help="Add profile-likelihood intervals (slower).")] = False,
    run_check: Annotated[
        bool | None,
        typer.Option(
            "--check/--no-check",
            help="Run the identity diagnostics (fl.check). Default: only when N·P² is at most 2e7 "
            "(they cost O(N·P²) time and memory).",
            show_default=False,
        ),
    ] = None,
    timings: Annotated[
        bool, typer.Option(help="Print the time of each phase (read, fit, ...) on stderr.")
    ] = False,
    model: Annotated[
        str | None, typer.Option(help="A Python model instead of a formula: FILE.py:FUNCTION.")
    ] = None,
    init: Annotated[
        str | None, typer.Option(help="Starting values for --model: JSON object or @file.json.")
    ] = None,
    y: Annotated[str | None, typer.Option("--y", help="Response column for --model (default y).")] = None,
    x: Annotated[
        str | None, typer.Option("--x", help="Covariate columns for --model, comma-separated.")
    ] = None,
    positive: Annotated[
        str | None, typer.Option(help="--model parameters constrained positive, comma-separated.")
    ] = None,
) -> None:
    """``fisherlab fit``: read, fit, print the summary (or JSON), optionally write a report."""
    out, err = stdout_console(), Console(stderr=True)
    timer = _Timer(err)
    kind = _choice(cov, COV_KINDS, "--cov")
    disp = _choice(dispersion, DISPERSIONS, "--dispersion")
    level = _check_level(level)
    report_mod = None

    def before_fit() -> None:
        nonlocal report_mod
        if report is not None:
            report_mod = _check_target(report, force)

    f = _fit_from_options(
        data, formula, family, link, trials, dropna, model, init, y, x, positive, timer, before_fit
    )
    size = f.res.nobs * len(f.res.names) ** 2
    if run_check or (run_check is None and size <= CHECK_AUTO_LIMIT):
        _run_check(f, timer)
    elif run_check is None:
        f.check_error = (
            f"skipped: N·P² = {size:.3g} is above {CHECK_AUTO_LIMIT:.0e}; pass --check to run it (O(N·P²) "
            "time and memory) or use fisherlab check"
        )
    prof = None
    if profile:
        with timer.phase("profile", "profile-likelihood intervals"):
            prof = f.res.conf_int(level, kind, method="profile")
    with timer.phase("summary", "standard errors and intervals"):
        t = _table(f, kind, disp, level, prof)
    written = None
    if report is not None:
        written = _write_report(
            report_mod,
            f,
            report,
            force,
            level,
            profile or size <= CHECK_AUTO_LIMIT,  # profile intervals re-fit P times: not by default when big
            data,
            timer,
            f"fisherlab report: {f.description}",
        )
    if json_out:
        doc = _fit_document(f, t, level, timer, timings)
        if written is not None:
            doc["report"] = str(written)
        sys.stdout.write(dump_json(doc) + "\n")
    else:
        _print_fit(f, t, kind, out)
        if written is not None:
            out.print(f"report written to {written}", highlight=False, markup=False)
    if timings:
        total = sum(timer.phases.values())
        phases = ", ".join(f"{k} {v:.3f} s" for k, v in timer.phases.items())
        print(f"timings: {phases} (total {total:.3f} s)", file=sys.stderr)


@app.command(
    help=(
        "Fit, then test the identities of the curvature: score mean, information-matrix test, "
        "eigenvalues of J⁻¹K, F⁻¹K, F⁻¹J, condition numbers and a verdict.\n\n"
        "Example: fisherlab check data.csv --formula 'y ~ x1 + x2' --family poisson"
    )
)
def check(
    data: Annotated[str, typer.Argument(help=_DATA_HELP, show_default=False)],
    formula: Annotated[
        str | None, typer.Option("--formula", "-f", help="Wilkinson formula, e.g. 'y ~ x1 + x2'.")
    ] = None,
    family: Annotated[str | None, typer.Option(help="GLM family, as for fit.")] = None,
    link: Annotated[str | None, typer.Option(help="Link function.")] = None,
    trials: Annotated[str | None, typer.Option(help="Binomial: column of trials.")] = None,
    variant: Annotated[str, typer.Option(help="Information-matrix test: white or opg.")] = "white",
    dropna: Annotated[bool, typer.Option(help="Drop rows with missing values in the columns used.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    model: Annotated[str | None, typer.Option(help="A Python model: FILE.py:FUNCTION.")] = None,
    init: Annotated[str | None, typer.Option(help="Starting values for --model (JSON).")] = None,
    y: Annotated[str | None, typer.Option("--y", help="Response column for --model (default y).")] = None,
    x: Annotated[
        str | None, typer.Option("--x", help="Covariate columns for --model, comma-separated.")
    ] = None,
    positive: Annotated[str | None, typer.Option(help="--model parameters constrained positive.")] = None,
) -> None:
    """``fisherlab check``: fit, then print the identity diagnostics of ``fl.check`` in full."""

    out, err = stdout_console(), Console(stderr=True)
    timer = _Timer(err)
    variant = _choice(variant, ("white", "opg"), "--variant")
    f = _fit_from_options(data, formula, family, link, trials, dropna, model, init, y, x, positive, timer)
    with timer.phase("check", "checking the information identities"):
        chk = _check(f, variant)
    if json_out:
        sys.stdout.write(
            dump_json({"names": list(f.res.names), "model": f.description, **check_dict(chk)}) + "\n"
        )
        return
    out.print(f"fisherlab check: {f.description}", highlight=False, markup=False)
    check_table(chk, out)


def _dist_names() -> dict[str, Any]:
    import fisherlab as fl

    skip = {"Distribution", "FamilyFisher", "family_fisher", "register_fisher", "registered_families"}
    return {n: getattr(fl.dist, n) for n in fl.dist.__all__ if n not in skip}


def _parse_value(text: str, name: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise CliError(
            f"--param {name}={text}: the value must be a number or a JSON list of numbers"
        ) from None
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CliError(
            f"--param {name}={text}: the value must be a number or a JSON list of numbers"
        ) from None
    return float(arr) if arr.ndim == 0 else arr


@app.command(
    help=(
        "Fisher information of one observation of a distribution, in its own parameters.\n\n"
        "Example: fisherlab info --dist Gamma --param concentration=2 --param rate=3\n\n"
        "Parameters use the distribution's own names (fl.dist, NumPyro's); values are numbers or JSON "
        "lists. A count such as total_count is held fixed. --n gives the information of n iid "
        "observations; --method mc estimates it by Monte Carlo."
    )
)
def info(
    dist: Annotated[
        str, typer.Option("--dist", help="Distribution name in fl.dist, e.g. Normal, Gamma, Poisson.")
    ],
    param: Annotated[list[str], typer.Option("--param", "-p", help="Parameter as NAME=VALUE; repeat.")],
    method: Annotated[
        str, typer.Option(help="exact (closed form / summation / quadrature), mc or auto.")
    ] = "exact",
    n: Annotated[int, typer.Option(help="Number of iid observations.")] = 1,
    num_samples: Annotated[int, typer.Option(help="Monte-Carlo samples (--method mc).")] = 100_000,
    seed: Annotated[int, typer.Option(help="Monte-Carlo seed.")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """``fisherlab info``: the Fisher information of one observation (or ``--n``) of a distribution."""
    import fisherlab as fl

    out = stdout_console()
    method = _choice(method, ("exact", "mc", "auto"), "--method")
    if n < 1:
        raise CliError(f"--n must be a positive number of observations, got {n}")
    dists = _dist_names()
    lookup = {k.lower(): k for k in dists}
    if dist.lower() not in lookup:
        raise CliError(f"unknown distribution {dist!r}; valid: {', '.join(sorted(dists))}")
    name = lookup[dist.lower()]
    cls = dists[name]
    valid = [p for p in inspect.signature(cls).parameters if p not in ("validate_args", "is_sparse")]
    values: dict[str, Any] = {}
    for item in param:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CliError(f"--param must be NAME=VALUE, got {item!r}")
        if key not in valid:
            raise CliError(f"{name} has no parameter {key!r}; valid: {', '.join(valid)}")
        values[key] = _parse_value(text.strip(), key)
    try:
        cls(**values, validate_args=True)
    except (ValueError, TypeError) as exc:
        raise CliError(
            f"{name}({', '.join(values)}): {' '.join(str(exc).split())}; parameters: {', '.join(valid)}"
        ) from exc
    fixed = {k: v for k, v in values.items() if k in FIXED_DIST_PARAMS}
    free = {k: v for k, v in values.items() if k not in FIXED_DIST_PARAMS}
    if not free:
        raise CliError(f"no free parameter to take the information of; {name} takes: {', '.join(valid)}")
    fl_model = fl.Model(lambda th, _x: cls(**th, **fixed))
    kwargs: dict[str, Any] = {"n": n, "method": method}
    if method == "mc":
        kwargs.update(num_samples=num_samples, seed=seed)
    with Console(stderr=True).status(f"Fisher information of {name}"):
        F = fl.fisher(fl_model, free, **kwargs)
    matrix, names = np.asarray(F.matrix), list(F.names)
    error = getattr(F, "error", None)
    try:
        crb: dict[str, float] | None = F.se()
    except fl.SingularInformationError:
        crb = None
    label = ", ".join(f"{k}={v}" for k, v in values.items())
    if json_out:
        doc = {
            "dist": name,
            "params": values,
            "names": names,
            "matrix": matrix.tolist(),
            "n": n,
            "method": F.method if hasattr(F, "method") else method,
            "cramer_rao_se": crb,
        }
        if error is not None:
            doc["error"] = np.asarray(error).tolist()
        sys.stdout.write(dump_json(doc) + "\n")
        return
    what = "one observation" if n == 1 else f"{n} iid observations"
    out.print(info_table(matrix, names, f"Fisher information of {what} of {name}({label}), method {method}"))
    if error is not None:
        out.print(info_table(np.asarray(error), names, "Monte-Carlo standard error"))
    if crb is not None:
        out.print(
            "Cramér–Rao bound (se): " + ", ".join(f"{k} {v:.6g}" for k, v in crb.items()),
            highlight=False,
            markup=False,
        )
    else:
        out.print("the information is singular: no Cramér–Rao bound", highlight=False, markup=False)


@app.command(
    help=(
        "Fit the bundled Challenger O-ring data (logistic regression of incident on temperature), "
        "print the summary and write DIR/report.html.\n\n"
        "Example: fisherlab demo --out fisherlab-demo"
    )
)
def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Directory for report.html (created if missing).")
    ] = Path("fisherlab-demo"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing report.html.")] = False,
) -> None:
    """``fisherlab demo``: the Challenger logistic regression, its summary and DIR/report.html."""
    import fisherlab as fl

    out, err = stdout_console(), Console(stderr=True)
    timer = _Timer(err)
    target = out_dir / "report.html"
    if out_dir.exists() and not out_dir.is_dir():
        raise CliError(f"--out {out_dir} is a file, not a directory")
    report_mod = _check_target(target, force, create_parent=True)
    df = fl.datasets.challenger()
    design = build_design(df, "incident ~ temperature", family="binomial")
    f = _fit_glm(
        design, "binomial", None, timer, "Challenger O-rings: incident ~ temperature, binomial (logit)"
    )
    _run_check(f, timer)
    t = _table(f, "observed", "ml", 0.95, None)
    _print_fit(f, t, "observed", out)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = _write_report(
        report_mod,
        f,
        target,
        force,
        0.95,
        True,
        "fl.datasets.challenger(): Presidential Commission on the Space Shuttle Challenger Accident (1986)",
        timer,
        "fisherlab demo: Challenger O-ring incidents vs launch temperature",
    )
    out.print(f"report written to {written}", highlight=False, markup=False)
