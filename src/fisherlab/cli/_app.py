"""The ``fisherlab`` command: the Typer app, the ``fit`` and ``check`` commands; ``info``, ``demo`` wired in.

Exit status: 0 success; 2 bad input (one ``fisherlab: error:`` line on stderr);
3 a fit that did not converge; 130/143 interrupted (SIGINT/SIGTERM); 1 an unexpected
internal error. Formula terms are restricted to an allow-list of Python unless
``--allow-code``; ``--model FILE.py`` runs the file. Progress
spinners go to stderr (and only when it is a terminal); stdout carries the
tables, or exactly one JSON object with ``--json``. Option choices and the
family lists in the help come from the enums and the GLM family records
(:mod:`._choices`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fisherlab._options import CovKind, IMTestVariant

from ._choices import (
    COV_KINDS,
    DISPERSION_HELP,
    DISPERSIONS,
    FAMILY_NAMES,
    HC_TYPES,
    IM_VARIANTS,
    PEARSON_FAMILIES,
    UNIT_DISPERSION_FAMILIES,
    SummaryDispersion,
    and_list,
    check_dispersion,
    choice,
    described,
    extra_parameters,
    or_list,
)
from ._demo import DEMO_HELP, demo
from ._design import design
from ._design_options import DESIGN_HELP
from ._errors import CliError
from ._float64 import use_float64
from ._info import INFO_HELP, info
from ._report import check_target, write_report
from ._timer import Timer

# What the commands compute with (JAX, pandas, SciPy) is imported inside them, so that
# `fisherlab --help` and argument errors answer without importing JAX.

__all__ = ["app"]


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


def _check_level(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise CliError(f"--level must be in (0, 1), e.g. 0.95; got {level}")
    return level


_DATA_HELP = "CSV (.csv), TSV (.tsv) or Parquet (.parquet, .pq) file; - reads CSV from standard input."
_MODEL_HELP = (
    "A Python model instead of a formula: FILE.py:FUNCTION. FILE.py is executed as Python code: "
    "use trusted files only."
)
_ALLOW_CODE_HELP = (
    "Run the formula's terms as arbitrary Python code (formulaic's own behaviour), e.g. "
    "I(x.clip(lower=0)). Without it a term may only use columns, numbers, arithmetic, comparisons, "
    "np.<elementwise function> and formulaic's transforms. Only for formulas you trust."
)
_FORMULA_HELP = (
    "Formulas: column names (`my col` or Q('my col') when not identifiers), numbers, + - * / ** "
    "and comparisons, interactions a:b and a*b, - 1 to drop the intercept, C(g) (with contr.treatment('b'), "
    "Treatment('b') or levels=[...]), I(...), elementwise np.log, np.log1p, np.exp, np.sqrt, np.abs, "
    "np.power, np.sin, ..., np.clip, np.minimum, np.maximum, np.where, and formulaic's center, scale, "
    "standardize, poly, bs, cr, cs, cc, lag, hashed. Anything else (other attributes or functions, "
    "subscripts, lambda, names with __) is refused unless --allow-code. A text column used outside "
    "C() whose values are mostly numbers (1,5 or 3.2.1 included) is taken for a numeric column with "
    "typos: an error names the rows; write C(col) if it is categorical."
)
_WEIGHTS_HELP = (
    "Column of R's prior weights (fl.glm weights=): for gaussian, Gamma and inverse Gaussian positive "
    "weights that divide the row's dispersion (statsmodels' var_weights); for Poisson and negative "
    "binomial the row's log-likelihood counts w times (integer weights are frequency weights); for the "
    "binomial the trials, the response being the proportion of successes (or use --trials)."
)
_OFFSET_HELP = "Column of a known term added to the linear predictor (R's offset(o); fl.glm offset=)."
_EXPOSURE_HELP = (
    "Column of positive exposures: log(exposure) is added to the linear predictor, and to --offset if "
    "given (a rate model, R's offset(log(t)); fl.glm exposure=)."
)
_EXIT_HELP = (
    "Exit status: 0 ok, 2 bad input, 3 the fit did not converge (or the estimate is at infinity), "
    "130 interrupted (Ctrl-C), 143 terminated (SIGTERM), 1 internal error. Errors are one line on stderr."
)


@app.command(
    help=(
        "Fit a GLM from a formula, or a Python model, and print estimates with standard errors.\n\n"
        "Example: fisherlab fit data.csv --formula 'y ~ x1 + C(group)' --family poisson --json\n\n"
        "Parameter names are the design-matrix column names (Intercept, x1, ...) plus the family's "
        f"extra parameter ({extra_parameters()}). The table's standard errors come from --cov (default: "
        "inverse observed information) with every parameter, dispersion included, fitted by maximum "
        "likelihood (--dispersion ml). --dispersion r gives the coefficients R's summary.glm standard "
        f"errors instead (Pearson dispersion for {', '.join(PEARSON_FAMILIES)}, with t tests on N-p df; "
        f"expected information with dispersion 1 for {', '.join(UNIT_DISPERSION_FAMILIES)}): estimates "
        f"and standard errors then equal R's. For {and_list(PEARSON_FAMILIES)} the ML table "
        "also shows R's standard errors in a 'se (R)' column.\n\n"
        "With --model FILE.py:FUNCTION the function fn(params, x) returns a distribution for each row "
        "(as fl.Model takes it); params start at --init (JSON object, or @file.json); y is the column "
        "--y (default y); x is a dict of the --x columns (name -> float array of length N), or None "
        "without --x. A function JAX cannot trace (NumPy, SciPy, a simulator) is fitted with numeric "
        "derivatives, with a warning; FUNCTION may also name an fl.Model built in the file, e.g. "
        "fl.Model(fn, derivatives='numeric', executor='threads'). The file is executed as Python "
        "code: trusted files only.\n\n"
        f"{_FORMULA_HELP}\n\n"
        f"{_EXIT_HELP}"
    )
)
def fit(
    data: Annotated[str, typer.Argument(help=_DATA_HELP, show_default=False)],
    formula: Annotated[
        str | None, typer.Option("--formula", "-f", help="Wilkinson formula, e.g. 'y ~ x1 + x2' (formulaic).")
    ] = None,
    family: Annotated[
        str | None,
        typer.Option(help=f"{', '.join(FAMILY_NAMES)}."),
    ] = None,
    link: Annotated[str | None, typer.Option(help="Link function (default: the family's R default).")] = None,
    trials: Annotated[
        str | None, typer.Option(help="Binomial: column of trials; the response counts successes.")
    ] = None,
    weights: Annotated[str | None, typer.Option(help=_WEIGHTS_HELP)] = None,
    offset: Annotated[str | None, typer.Option(help=_OFFSET_HELP)] = None,
    exposure: Annotated[str | None, typer.Option(help=_EXPOSURE_HELP)] = None,
    cov: Annotated[str, typer.Option(help=f"Covariance: {or_list(COV_KINDS)}.")] = CovKind.OBSERVED.value,
    hc: Annotated[
        str | None,
        typer.Option(
            "--hc",
            help=f"With --cov sandwich: {or_list(HC_TYPES)} (default HC0; HC1 x N/(N-P), HC2/HC3 "
            "by leverage).",
        ),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster",
            help="With --cov cluster: the column of cluster labels (one-way cluster-robust, x G/(G-1)), "
            "e.g. --cov cluster --cluster firm.",
        ),
    ] = None,
    dispersion: Annotated[
        str, typer.Option(help=f"{or_list(described(DISPERSIONS, DISPERSION_HELP))} for GLM coefficients.")
    ] = SummaryDispersion.ML.value,
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
    model: Annotated[str | None, typer.Option(help=_MODEL_HELP)] = None,
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
    allow_code: Annotated[bool, typer.Option("--allow-code", help=_ALLOW_CODE_HELP)] = False,
    stream: Annotated[
        bool | None,
        typer.Option(
            "--stream/--no-stream",
            help="Read a .parquet or .csv file in chunks (data beyond memory; formula fits). Default: "
            "when the decoded file exceeds 2 GiB or an eighth of the available memory.",
            show_default=False,
        ),
    ] = None,
    chunk_rows: Annotated[
        int | None,
        typer.Option(
            "--chunk-rows", min=1, help="Rows per chunk with --stream (default: 8 MiB of float64 columns)."
        ),
    ] = None,
) -> None:
    """``fisherlab fit``: read, fit, print the summary (or JSON), optionally write a report."""
    kind = choice(cov, COV_KINDS, "--cov")
    hc_type = _robust_options(kind, hc, cluster)
    disp = choice(dispersion, DISPERSIONS, "--dispersion")
    check_dispersion(kind, disp)
    level = _check_level(level)
    use_float64()  # JAX: after the checks of the options
    from fisherlab.inference import AUTO_MAX_SIZE

    from ._fitting import attach_check, fit_from_options
    from ._render import dump_json, stdout_console
    from ._tables import fit_document, print_fit, summary

    out, err = stdout_console(), Console(stderr=True)
    timer = Timer(err)
    report_mod = None

    def before_fit() -> None:
        nonlocal report_mod
        if report is not None:
            report_mod = check_target(report, force)

    f = fit_from_options(
        data,
        formula,
        family,
        link,
        trials,
        dropna,
        model,
        init,
        y,
        x,
        positive,
        timer,
        before_fit,
        allow_code=allow_code,
        keep={"--cluster": cluster} if cluster is not None else None,
        stream=stream,
        chunk_rows=chunk_rows,
        weights=weights,
        offset=offset,
        exposure=exposure,
    )
    size = f.res.nobs * len(f.res.names) ** 2
    if run_check or (run_check is None and size <= AUTO_MAX_SIZE):
        attach_check(f, timer)
    elif run_check is False:
        f.check_error = "not run (--no-check)"
    else:
        f.check_error = (
            f"skipped: N·P² = {size:.3g} is above {AUTO_MAX_SIZE:.0e}; pass --check to run it (O(N·P²) "
            "time and memory) or use fisherlab check"
        )
    prof = None
    if profile:
        with timer.phase("profile", "profile-likelihood intervals"):
            prof = f.res.conf_int(level, kind, method="profile")
    robust: dict[str, object] = {"hc": hc_type} if hc_type is not None else {}
    if cluster is not None:
        robust = {"groups": f.kept[cluster]}
    with timer.phase("summary", "standard errors and intervals"):
        t = summary(f, kind, disp, level, prof, robust)
    written = None
    if report is not None:
        written = write_report(
            report_mod,
            f,
            report,
            force,
            level,
            profile or size <= AUTO_MAX_SIZE,  # profile intervals re-fit P times: not by default when big
            data,
            timer,
            f"fisherlab report: {f.description}",
            robust,
        )
    if json_out:
        doc = fit_document(f, t, level, timer, timings)
        if written is not None:
            doc["report"] = str(written)
        sys.stdout.write(dump_json(doc) + "\n")
    else:
        print_fit(f, t, kind, out)
        if written is not None:
            out.print(f"report written to {written}", highlight=False, markup=False)
    if timings:
        total = sum(timer.phases.values())
        phases = ", ".join(f"{k} {v:.3f} s" for k, v in timer.phases.items())
        print(f"timings: {phases} (total {total:.3f} s)", file=sys.stderr)


def _robust_options(kind: str, hc: str | None, cluster: str | None) -> str | None:
    """Check ``--hc`` / ``--cluster`` against ``--cov`` before any work; the ``--hc`` value (upper case)."""
    if cluster is not None and kind != CovKind.CLUSTER.value:
        raise CliError(f"--cluster goes with --cov cluster, not --cov {kind}")
    if kind == CovKind.CLUSTER.value and cluster is None:
        raise CliError("--cov cluster needs --cluster COLUMN, the column of cluster labels")
    if hc is None:
        return None
    if kind != CovKind.SANDWICH.value:
        raise CliError(f"--hc goes with --cov sandwich, not --cov {kind}")
    value = hc.strip().upper()
    if value not in HC_TYPES:
        raise CliError(f"--hc {hc!r} is not one of {', '.join(HC_TYPES)}")
    return value


@app.command(
    help=(
        "Fit, then test the identities of the curvature: score mean, information-matrix test, "
        "eigenvalues of J⁻¹K, F⁻¹K, F⁻¹J, condition numbers and a verdict.\n\n"
        "Example: fisherlab check data.csv --formula 'y ~ x1 + x2' --family poisson\n\n"
        "Formulas and --model as for fit (--model FILE.py executes the file: trusted files only).\n\n"
        f"{_EXIT_HELP}"
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
    weights: Annotated[str | None, typer.Option(help="Column of prior weights, as for fit.")] = None,
    offset: Annotated[str | None, typer.Option(help="Column of an offset, as for fit.")] = None,
    exposure: Annotated[str | None, typer.Option(help="Column of exposures, as for fit.")] = None,
    variant: Annotated[
        str, typer.Option(help=f"Information-matrix test: {or_list(IM_VARIANTS)}.")
    ] = IMTestVariant.WHITE.value,
    dropna: Annotated[bool, typer.Option(help="Drop rows with missing values in the columns used.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    model: Annotated[str | None, typer.Option(help=_MODEL_HELP)] = None,
    init: Annotated[str | None, typer.Option(help="Starting values for --model (JSON).")] = None,
    y: Annotated[str | None, typer.Option("--y", help="Response column for --model (default y).")] = None,
    x: Annotated[
        str | None, typer.Option("--x", help="Covariate columns for --model, comma-separated.")
    ] = None,
    positive: Annotated[str | None, typer.Option(help="--model parameters constrained positive.")] = None,
    allow_code: Annotated[bool, typer.Option("--allow-code", help=_ALLOW_CODE_HELP)] = False,
) -> None:
    """``fisherlab check``: fit, then print the identity diagnostics of ``fl.check`` in full."""
    variant = choice(variant, IM_VARIANTS, "--variant")
    use_float64()  # JAX: after the check of the options
    from ._fitting import check_fit, fit_from_options
    from ._render import check_dict, check_table, dump_json, stdout_console

    out, err = stdout_console(), Console(stderr=True)
    timer = Timer(err)
    f = fit_from_options(
        data,
        formula,
        family,
        link,
        trials,
        dropna,
        model,
        init,
        y,
        x,
        positive,
        timer,
        allow_code=allow_code,
        weights=weights,
        offset=offset,
        exposure=exposure,
    )
    with timer.phase("check", "checking the information identities"):
        chk = check_fit(f, variant)
    if json_out:
        sys.stdout.write(
            dump_json({"names": list(f.res.names), "model": f.description, **check_dict(chk)}) + "\n"
        )
        return
    out.print(f"fisherlab check: {f.description}", highlight=False, markup=False)
    check_table(chk, out)


app.command(help=INFO_HELP)(info)
app.command(help=DEMO_HELP)(demo)
app.command(help=DESIGN_HELP)(design)
