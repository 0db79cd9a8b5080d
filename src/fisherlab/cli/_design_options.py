"""The ``design`` command's options: parsed and checked before JAX is imported (no JAX here).

``--grid`` axes, ``--bounds`` boxes, ``NAME=VALUE`` lists (commas inside brackets do not
separate), the criterion and its arguments, and the ``--out`` target (refused when it exists
without ``--force``; written atomically). The command itself is :mod:`._design`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import secrets
from pathlib import Path

from fisherlab._options import DesignCriterion, values

from ._choices import or_list
from ._errors import CliError

__all__ = [
    "CRITERIA",
    "CRITERION_HELP",
    "DESIGN_HELP",
    "LARGER_IS_BETTER",
    "MAX_GRID_POINTS",
    "OPTIMAL_RTOL",
    "Options",
    "check_out",
    "parse_options",
    "write_atomically",
]

CRITERIA = values(DesignCriterion)
CRITERION_HELP = {
    DesignCriterion.D.value: "log det M",
    DesignCriterion.A.value: "trace of M⁻¹",
    DesignCriterion.E.value: "smallest eigenvalue of M",
    DesignCriterion.DS.value: "log det of M marginalised to --names",
    DesignCriterion.C.value: "cᵀM⁻¹c for --c",
}
# Whether a larger value of the criterion is better (the others are variances: smaller is better).
LARGER_IS_BETTER = {DesignCriterion.D.value, DesignCriterion.E.value, DesignCriterion.DS.value}
MAX_GRID_POINTS = 1_000_000
"""Largest number of candidate points a --grid may make (the product over its columns)."""
# An approximate design is called optimal when its largest sensitivity exceeds the equivalence
# theorem's bound by at most this fraction (the algorithm stops at 1e-9).
OPTIMAL_RTOL = 1e-6
_EXIT = (
    "Exit status: 0 ok, 2 bad input, 3 the pilot fit or the design algorithm did not converge, "
    "130 interrupted, 1 internal error. Errors are one line on stderr."
)

DESIGN_HELP = (
    "Optimal design of an experiment for a GLM given by a formula: at which covariate values to take "
    "the runs, and what fraction (or, with --n, how many) at each.\n\n"
    "Example: fisherlab design 'y ~ x + I(x**2)' --grid x=-1:1:201  (weights 1/3 at -1, 0, 1)\n\n"
    "Example: fisherlab design 'y ~ dose' --family binomial --data pilot.csv --candidates doses.csv "
    "--n 40 --out plan.csv\n\n"
    "Candidates: --candidates FILE (CSV/TSV/Parquet with the columns the formula reads; other columns "
    "are ignored) or --grid NAME=LO:HI:K (K equally spaced values; NAME=V for one value), the product "
    "over several columns (--grid x=0:1:11,z=1:3:3). Each candidate's design-matrix row comes from the "
    "formula's right-hand side (the response, if written, is not read).\n\n"
    "Parameters: the design of a nonlinear model depends on the coefficients. --data PILOT.csv fits "
    "the formula to pilot data (fl.glm) and designs at the estimates, for that fit's design columns "
    "and factor levels; --at 'Intercept=-1,x=0.5' gives every coefficient (design-column names) "
    "instead. A gaussian model with the identity link does not depend on them: without --data or "
    "--at they are taken as 0. The family's dispersion (sigma for gaussian, shape for gamma and "
    "inverse_gaussian) only scales the information: without a value it is 1 (standard errors in its "
    "units); the negative binomial's alpha changes the design and must be given (--at alpha=0.5) "
    "or fitted. The design is over the coefficients; the dispersion is held at its value.\n\n"
    "Criteria (M the information of one run): "
    f"{or_list([f'{k} ({v})' for k, v in CRITERION_HELP.items()])}. "
    "The output shows the support (candidate values, weight, count), the criterion, the equivalence "
    "theorem's certificate (max sensitivity <= bound: optimal; else a lower bound on the efficiency) "
    "and, with --n or --runs, the Cramér–Rao standard errors of that many runs. --bounds "
    "x=LO:HI moves the support points off the candidates within the box (numeric covariates; a "
    "covariate not named keeps the candidates' range, a constant one its value).\n\n"
    "Names with commas (poly(x, 2)[1]) may be given: commas inside brackets do not separate; every "
    "list option may also be repeated (--at a=1 --at b=2).\n\n"
    f"{_EXIT}"
)


# --------------------------------------------------------------------------- parsing (no JAX)


def _split(items: list[str] | None) -> list[str]:
    """Each item split at the commas outside brackets and quotes; blanks stripped, empties dropped."""
    out: list[str] = []
    for item in items or []:
        depth, quote, start = 0, "", 0
        for k, ch in enumerate(item):
            if quote:
                quote = "" if ch == quote else quote
            elif ch in "'\"`":
                quote = ch
            elif ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth = max(depth - 1, 0)
            elif ch == "," and depth == 0:
                out.append(item[start:k])
                start = k + 1
        out.append(item[start:])
    return [part.strip() for part in out if part.strip()]


def _pairs(items: list[str] | None, option: str, example: str) -> list[tuple[str, str]]:
    """``NAME=VALUE`` entries (split at the last ``=``), each name once."""
    pairs: list[tuple[str, str]] = []
    for entry in _split(items):
        name, sep, value = entry.rpartition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise CliError(f"{option} takes NAME=VALUE entries such as {example}; got {entry!r}")
        pairs.append((name, value))
    seen = [name for name, _ in pairs]
    twice = sorted({n for n in seen if seen.count(n) > 1})
    if twice:
        raise CliError(f"{option} names {', '.join(map(repr, twice))} more than once")
    return pairs


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CliError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise CliError(f"{what}: {text!r} is not a finite number")
    return value


@dataclasses.dataclass(frozen=True)
class _Axis:
    """One column of a --grid: ``count`` equally spaced values from ``lo`` to ``hi``."""

    name: str
    lo: float
    hi: float
    count: int


def _grid(items: list[str] | None) -> list[_Axis]:
    axes = []
    for name, spec in _pairs(items, "--grid", "x=-1:1:21"):
        parts = spec.split(":")
        what = f"--grid {name}={spec}"
        if len(parts) == 1:
            v = _number(parts[0], what)
            axes.append(_Axis(name, v, v, 1))
            continue
        if len(parts) != 3:
            raise CliError(f"{what}: write NAME=LO:HI:K (K values from LO to HI) or NAME=VALUE")
        lo, hi = _number(parts[0], what), _number(parts[1], what)
        try:
            count = int(parts[2])
        except ValueError:
            raise CliError(f"{what}: the number of values K = {parts[2]!r} is not an integer") from None
        if count < 2:
            raise CliError(f"{what}: K = {count}; give K >= 2 values (or NAME=VALUE for one)")
        if not lo < hi:
            raise CliError(f"{what}: LO = {lo:g} must be below HI = {hi:g}")
        axes.append(_Axis(name, lo, hi, count))
    size = math.prod(a.count for a in axes)
    if size > MAX_GRID_POINTS:
        raise CliError(
            f"--grid makes {size:,} candidate points (the product of "
            f"{' x '.join(str(a.count) for a in axes)}); keep it at most {MAX_GRID_POINTS:,}: fewer values "
            "per column, or --bounds to refine between them"
        )
    return axes


def _bounds(items: list[str] | None) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for name, spec in _pairs(items, "--bounds", "x=0:10"):
        parts = spec.split(":")
        what = f"--bounds {name}={spec}"
        if len(parts) != 2:
            raise CliError(f"{what}: write NAME=LO:HI")
        lo, hi = _number(parts[0], what), _number(parts[1], what)
        if not lo < hi:
            raise CliError(f"{what}: LO = {lo:g} must be below HI = {hi:g}")
        out[name] = (lo, hi)
    return out


def _criterion(value: str) -> str:
    lookup = {v.lower(): v for v in CRITERIA}
    key = value.strip().lower()
    if key not in lookup:
        raise CliError(f"--criterion {value!r} is not one of {', '.join(CRITERIA)}")
    return lookup[key]


@dataclasses.dataclass(frozen=True)
class Options:
    """The checked options of one ``design`` call."""

    formula: str
    criterion: str
    names: list[str]
    c: dict[str, float]
    at: dict[str, float]
    grid: list[_Axis]
    bounds: dict[str, tuple[float, float]]
    n: int | None
    runs: int | None


def parse_options(
    formula: str,
    candidates: str | None,
    grid: list[str] | None,
    data: str | None,
    at: list[str] | None,
    criterion: str,
    names: list[str] | None,
    c: list[str] | None,
    n: int | None,
    runs: int | None,
    bounds: list[str] | None,
) -> Options:
    if not formula.strip():
        raise CliError("the formula is empty; write it as 'y ~ x + I(x**2)' (or '~ x + I(x**2)')")
    if (candidates is None) == (not grid):
        raise CliError(
            "give the candidate points either as --candidates FILE (a table of covariate values) or as "
            "--grid NAME=LO:HI:K (e.g. --grid x=-1:1:21), not both"
            if candidates is not None
            else "give the candidate points: --candidates FILE (a table of covariate values) or --grid "
            "NAME=LO:HI:K (e.g. --grid x=-1:1:21)"
        )
    if candidates == "-" and data == "-":
        raise CliError("standard input can feed one table: give --candidates or --data as a file")
    if data is not None and at:
        raise CliError(
            "give the parameter values either by --data PILOT (fitted) or by --at NAME=VALUE, not both"
        )
    kind = _criterion(criterion)
    wanted = _split(names)
    if kind == DesignCriterion.DS.value and not wanted:
        raise CliError("--criterion Ds needs --names: the coefficients of interest, e.g. --names x,I(x**2)")
    if kind != DesignCriterion.DS.value and wanted:
        raise CliError(f"--names goes with --criterion Ds (coefficients of interest), not {kind}")
    combination = {k: _number(v, f"--c {k}") for k, v in _pairs(c, "--c", "x=1")}
    if kind == DesignCriterion.C.value and not combination:
        raise CliError("--criterion c needs --c: the combination of coefficients, e.g. --c x=1")
    if kind != DesignCriterion.C.value and combination:
        raise CliError(f"--c goes with --criterion c (a linear combination), not {kind}")
    if kind == DesignCriterion.C.value and not any(combination.values()):
        raise CliError("--c is all zeros: give at least one non-zero coefficient")
    if n is not None and n < 1:
        raise CliError(f"--n must be a number of runs >= 1, got {n}")
    if runs is not None and runs < 1:
        raise CliError(f"--runs must be a number of runs >= 1, got {runs}")
    if n is not None and runs is not None:
        raise CliError(
            "--runs gives the standard errors of an approximate design; with --n they are of n runs"
        )
    return Options(
        formula=formula,
        criterion=kind,
        names=wanted,
        c=combination,
        at={k: _number(v, f"--at {k}") for k, v in _pairs(at, "--at", "x=0.5")},
        grid=_grid(grid),
        bounds=_bounds(bounds),
        n=n,
        runs=runs,
    )


def check_out(path: Path, force: bool) -> None:
    """Fail before any computing if the design CSV could not be written to ``path``."""
    if os.path.lexists(path) and not force:
        raise CliError(f"{path} already exists; pass --force to overwrite it")
    if path.is_dir():
        raise CliError(f"{path} is a directory; give a file name such as design.csv")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise CliError(f"cannot write {path}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CliError(f"cannot write {path}: the directory {parent} is not writable")


def write_atomically(path: Path, text: str, force: bool) -> None:
    """Write ``text`` atomically (a temporary file moved into place); never over a file without ``force``."""
    check_out(path, force)
    parent = path.parent if str(path.parent) else Path(".")
    tmp = parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    try:
        with open(tmp, "x", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
