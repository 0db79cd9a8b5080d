"""The ``design`` command: the optimal design of an experiment for a GLM given by a formula.

The candidate points are rows of covariate values (``--candidates FILE`` or a ``--grid``); the
formula's right-hand side turns each into a design-matrix row
(:func:`fisherlab.formula.design_candidates`), and :func:`fisherlab.design.optimal` chooses the
weights (or the ``--n`` run counts) at the GLM's parameter values: fitted on pilot data
(``--data``) or given (``--at``). With ``--bounds`` the support points move off the candidates
within a box of covariate values. The command prints the support, the criterion, the
equivalence-theorem certificate and the Cramér–Rao standard errors of ``--n``/``--runs`` runs;
``--json`` prints one JSON object; ``--out`` writes the design as CSV (never over an existing
file without ``--force``). Every option is checked before JAX is imported.
"""

from __future__ import annotations

import itertools
import math
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from fisherlab._options import DesignCriterion

from . import _interrupt
from ._choices import FAMILY_NAMES, choice, or_list
from ._design_options import (
    CRITERIA,
    CRITERION_HELP,
    LARGER_IS_BETTER,
    OPTIMAL_RTOL,
    Options,
    check_out,
    parse_options,
    write_atomically,
)
from ._errors import EXIT_BAD_INPUT, EXIT_NOT_CONVERGED, CliError
from ._float64 import use_float64

__all__ = ["design"]

# --------------------------------------------------------------------------- the command


def design(
    formula: Annotated[
        str,
        typer.Argument(
            help="Wilkinson formula, e.g. 'y ~ x + I(x**2)' (the response is not read).", show_default=False
        ),
    ],
    candidates: Annotated[
        str | None,
        typer.Option(help="Table of candidate covariate values (CSV, TSV, Parquet; - for CSV on stdin)."),
    ] = None,
    grid: Annotated[
        list[str] | None,
        typer.Option(
            help="Candidates on a grid instead: NAME=LO:HI:K (or NAME=VALUE), the product over columns."
        ),
    ] = None,
    data: Annotated[
        str | None, typer.Option(help="Pilot data: fit the formula (fl.glm) and design at the estimates.")
    ] = None,
    at: Annotated[
        list[str] | None,
        typer.Option(
            help="Parameter values instead: every coefficient by design-column name, e.g. 'Intercept=-1,x=2'."
        ),
    ] = None,
    family: Annotated[str, typer.Option(help=f"{', '.join(FAMILY_NAMES)}.")] = FAMILY_NAMES[0],
    link: Annotated[str | None, typer.Option(help="Link function (default: the family's R default).")] = None,
    criterion: Annotated[
        str, typer.Option(help=f"{or_list(CRITERIA)} (see above).")
    ] = DesignCriterion.D.value,
    names: Annotated[
        list[str] | None, typer.Option(help="Ds: the coefficients of interest, comma-separated.")
    ] = None,
    c: Annotated[
        list[str] | None, typer.Option("--c", help="c: the combination, NAME=COEF entries, e.g. 'x=1'.")
    ] = None,
    n: Annotated[
        int | None, typer.Option("--n", help="An exact design of N runs (counts per point).")
    ] = None,
    runs: Annotated[
        int | None, typer.Option(help="Standard errors of an approximate design for this many runs.")
    ] = None,
    bounds: Annotated[
        list[str] | None,
        typer.Option(help="Move the support points within NAME=LO:HI (numeric covariates), e.g. 'x=0:10'."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the design (support, weight, count) as CSV.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing --out file.")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout, nothing else.")
    ] = False,
    dropna: Annotated[bool, typer.Option(help="Pilot data: drop rows with missing values.")] = False,
    allow_code: Annotated[
        bool,
        typer.Option("--allow-code", help="Run the formula's terms as arbitrary Python (trusted formulas)."),
    ] = False,
) -> None:
    """``fisherlab design``: an optimal design for a GLM on candidate covariate values."""
    opts = parse_options(formula, candidates, grid, data, at, criterion, names, c, n, runs, bounds)
    family = choice(family, FAMILY_NAMES, "--family")
    if out is not None:
        check_out(out, force)
    use_float64()  # JAX: after the checks of the options
    _Run(opts, family, link, candidates, data, out, force, json_out, dropna, allow_code).run()


_BETA = re.compile(r"beta\[(\d+)\]")


class _Run:
    """One ``design`` call after its options were checked: read, fit, design, print."""

    def __init__(
        self,
        opts: Options,
        family: str,
        link: str | None,
        candidates: str | None,
        data: str | None,
        out: Path | None,
        force: bool,
        json_out: bool,
        dropna: bool,
        allow_code: bool,
    ) -> None:
        self.opts, self.family, self.link = opts, family, link
        self.candidates_path, self.data, self.out, self.force = candidates, data, out, force
        self.json_out, self.dropna, self.allow_code = json_out, dropna, allow_code
        self.notes: list[str] = []

    # ------------------------------------------------------------------ steps
    def run(self) -> None:
        import fisherlab as fl

        try:
            glm = fl.models.glm(self.family, self.link)
        except fl.FisherlabError as exc:
            raise CliError(str(exc)) from exc
        self.family, self.link = glm.family.value, glm.link.value
        fit = self._pilot(glm) if self.data is not None else None
        cands = self._candidates(fit)
        self.columns = list(cands.columns)
        beta, fixed, source = self._parameters(glm, fit, cands.columns)
        model = fl.models.glm(self.family, self.link, fixed=fixed) if fixed else glm
        params = {"beta": beta}
        self.pnames = {col: f"beta[{i}]" for i, col in enumerate(cands.columns)}
        kwargs = self._criterion_arguments()
        if self.opts.bounds:
            coords, held, box = self._box(cands)
            design_model = cands.model(model, coords, held)
            points = cands.table[coords].to_numpy(dtype=float)
            kwargs["bounds"] = box
        else:
            coords, held, design_model, points = [], {}, model, cands.X
        try:
            d = fl.design.optimal(design_model, params, points, self.opts.criterion, self.opts.n, **kwargs)
        except fl.FisherlabError as exc:
            code = EXIT_NOT_CONVERGED if isinstance(exc, fl.NotConvergedError) else EXIT_BAD_INPUT
            raise CliError(self._relabel(str(exc)), code) from exc
        runs = self.opts.n or self.opts.runs
        se = None
        if runs is not None:
            try:
                se = d.se(runs)
            except fl.SingularInformationError as exc:
                self.notes.append(
                    "no standard error of each coefficient: the design does not identify them all "
                    f"({self._relabel(str(exc)).split(' is not identified')[0]}), as a c- or Ds-optimal "
                    "design need not"
                )
        support = self._support(d, cands, coords, held)
        doc = self._document(d, cands, beta, fixed, source, support, runs, se)
        if self.out is not None:
            _interrupt.checkpoint()  # Ctrl-C or SIGTERM while designing: no file
            write_atomically(self.out, support.to_csv(index=False), self.force)
            doc["out"] = str(self.out)
        self._print(doc, support)

    def _pilot(self, glm: Any) -> Any:
        import fisherlab as fl
        from fisherlab.formula import Spelling, build_design

        from ._io import read_table

        assert self.data is not None
        df = read_table(self.data)
        spelling = Spelling(
            drop_missing="--dropna",
            allow_code="--allow-code",
            trials="fisherlab fit --trials (fisherlab design takes a 0/1 pilot response)",
            help="fisherlab design --help",
        )
        try:
            pilot = build_design(
                df,
                self.opts.formula,
                family=glm.family,
                dropna=self.dropna,
                allow_code=self.allow_code,
                spelling=spelling,
            )
            rows = df if not pilot.dropped else df.iloc[pilot.rows]
            res = fl.glm(self.opts.formula, rows, self.family, self.link, allow_code=self.allow_code)
        except fl.FisherlabError as exc:
            code = EXIT_NOT_CONVERGED if isinstance(exc, fl.NotConvergedError) else EXIT_BAD_INPUT
            raise CliError(f"the pilot fit on {self.data}: {exc}", code) from exc
        dropped = f", {pilot.dropped} rows with missing values dropped" if pilot.dropped else ""
        self.notes.append(f"parameters fitted on the pilot data {self.data} ({res.nobs} rows{dropped})")
        return res

    def _candidates(self, fit: Any) -> Any:
        import numpy as np
        import pandas as pd

        import fisherlab as fl
        from fisherlab.formula import Spelling, design_candidates

        from ._io import read_table

        if self.candidates_path is not None:
            table = read_table(self.candidates_path)
            where = self.candidates_path
        else:
            axes = self.opts.grid
            spaced = [np.linspace(a.lo, a.hi, a.count) if a.count > 1 else np.array([a.lo]) for a in axes]
            table = pd.DataFrame(list(itertools.product(*spaced)), columns=[a.name for a in axes])
            where = "--grid"
        self.total = int(table.shape[0])
        spelling = Spelling(
            drop_missing="(drop those candidates from the file)",
            allow_code="--allow-code",
            trials="--trials",
            help="fisherlab design --help",
        )
        try:
            cands = design_candidates(
                self.opts.formula, table, fit=fit, allow_code=self.allow_code, spelling=spelling
            )
        except fl.FisherlabError as exc:
            message = str(exc)
            if where == "--grid" and "lack the column" in message:
                message += " (add it to --grid)"
            raise CliError(message) from exc
        if self.opts.grid:
            unused = [a.name for a in self.opts.grid if a.name not in cands.variables]
            if unused:
                raise CliError(
                    f"--grid names {', '.join(map(repr, unused))}, which the formula does not read; it reads "
                    f"{', '.join(cands.variables) or 'no column'}"
                )
        if cands.dropped:
            self.notes.append(
                f"{cands.dropped} of {self.total} candidate rows repeat the design row of an earlier one "
                "(the same experiment): the first of each is kept"
            )
        return cands

    def _parameters(self, glm: Any, fit: Any, columns: list[str]) -> tuple[Any, dict[str, float], str]:
        """The coefficients (in design-column order), the fixed extra parameter, and where they came from."""
        import numpy as np

        import fisherlab as fl

        record = fl.models.FAMILIES[glm.family]
        extra = record.extra.name if record.extra is not None else None
        fixed: dict[str, float] = {}
        if fit is not None:
            beta = np.asarray(fit.params["beta"], dtype=float)
            if extra is not None:
                value = fit.params[extra] if extra in fit.params else fit.model.fixed[extra]
                fixed[extra] = float(np.asarray(value))
            return beta, fixed, "data"
        given = dict(self.opts.at)
        known = [*columns, *([extra] if extra else [])]
        unknown = [k for k in given if k not in known]
        if unknown:
            raise CliError(
                f"--at names {', '.join(map(repr, unknown))}, not a parameter of this model; the parameters "
                f"are {', '.join(known)}"
            )
        if extra is not None:
            if extra in given:
                value = given.pop(extra)
                if not (value > 0 or (value == 0 and record.extra is not None and record.extra.in_variance)):
                    raise CliError(f"--at {extra}={value:g}: {extra} must be positive")
                fixed[extra] = value
            elif record.extra is not None and record.extra.in_variance:
                raise CliError(
                    f"the {glm.family.value} family's {extra} changes the design: give it with "
                    f"--at {extra}=VALUE or fit it with --data PILOT"
                )
            else:
                fixed[extra] = 1.0
                self.notes.append(
                    f"{extra} = 1 (not given): it scales the information only, so the design does not depend "
                    f"on it; the standard errors are in its units"
                )
        identity = glm.family.value == "gaussian" and glm.link.value == "identity"
        if not given and identity:
            self.notes.append(
                "coefficients taken as 0 (none given): a gaussian model with the identity link has the "
                "same design for every value"
            )
            return np.zeros(len(columns)), fixed, "default"
        missing = [col for col in columns if col not in given]
        if missing:
            hint = "" if given else " (the design of this model depends on them)"
            raise CliError(
                f"--at lacks the coefficient(s) {', '.join(map(repr, missing))}{hint}: give every one of "
                f"{', '.join(columns)}, e.g. --at '{columns[0]}=0', or fit them with --data PILOT"
            )
        return np.array([given[col] for col in columns], dtype=float), fixed, "at"

    def _criterion_arguments(self) -> dict[str, Any]:
        known = list(self.pnames)
        if self.opts.names:
            unknown = [x for x in self.opts.names if x not in self.pnames]
            if unknown:
                raise CliError(
                    f"--names {', '.join(map(repr, unknown))}: not a coefficient; the coefficients are "
                    f"{', '.join(known)}"
                )
            if len(set(self.opts.names)) == len(known):
                raise CliError(
                    "--names lists every coefficient: Ds of all of them is D; name a subset, or use "
                    "--criterion D"
                )
            return {"names": [self.pnames[x] for x in self.opts.names]}
        if self.opts.c:
            unknown = [x for x in self.opts.c if x not in self.pnames]
            if unknown:
                raise CliError(
                    f"--c {', '.join(map(repr, unknown))}: not a coefficient; the coefficients are "
                    f"{', '.join(known)}"
                )
            return {"c": {self.pnames[k]: v for k, v in self.opts.c.items()}}
        return {}

    def _box(self, cands: Any) -> tuple[list[str], dict[str, Any], list[tuple[float, float]]]:
        """The coordinates that move (with their box) and the covariates held at their one value."""
        import numpy as np
        import pandas as pd

        table = cands.table
        unknown = [v for v in self.opts.bounds if v not in cands.variables]
        if unknown:
            raise CliError(
                f"--bounds names {', '.join(map(repr, unknown))}, not a covariate the formula reads; it "
                f"reads {', '.join(cands.variables)}"
            )
        coords: list[str] = []
        held: dict[str, Any] = {}
        box: list[tuple[float, float]] = []
        ranges: list[str] = []
        for name in cands.variables:
            col = table[name]
            if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
                if name in self.opts.bounds or col.nunique() > 1:
                    raise CliError(
                        f"--bounds moves numeric covariates, and {name!r} is not numeric (categorical); drop "
                        "--bounds to design on the candidates as given"
                    )
                held[name] = col.iloc[0]
                continue
            values_ = col.to_numpy(dtype=float)
            if name in self.opts.bounds:
                lo, hi = self.opts.bounds[name]
                outside = np.flatnonzero((values_ < lo) | (values_ > hi))
                if outside.size:
                    i = int(outside[0])
                    raise CliError(
                        f"candidate row {table.index[i]}, column {name!r} is {values_[i]:g}, outside "
                        f"--bounds {name}={lo:g}:{hi:g} ({outside.size} candidates outside); widen the "
                        "bounds or drop them"
                    )
            elif values_.min() < values_.max():
                lo, hi = float(values_.min()), float(values_.max())
                ranges.append(f"{name} in [{lo:g}, {hi:g}]")
            else:
                held[name] = float(values_[0])
                continue
            coords.append(name)
            box.append((lo, hi))
        if ranges:
            self.notes.append(f"--bounds: the candidates' range for {', '.join(ranges)}")
        if held:
            self.notes.append(
                f"held at their one candidate value: {', '.join(f'{k} = {v}' for k, v in held.items())}"
            )
        return coords, held, box

    # ------------------------------------------------------------------ results
    def _relabel(self, text: str) -> str:
        """``beta[i]`` in a message replaced by the design-column names."""
        columns = getattr(self, "columns", [])

        def name(match: re.Match[str]) -> str:
            i = int(match.group(1))
            return columns[i] if i < len(columns) else match.group(0)

        return _BETA.sub(name, text)

    def _support(self, d: Any, cands: Any, coords: list[str], held: dict[str, Any]) -> Any:
        """The support as a table: the candidate covariate values, weight and count."""
        import numpy as np
        import pandas as pd

        if coords:
            points = np.asarray(d.points, dtype=float).reshape(len(d.weights), len(coords))
            table = pd.DataFrame(points, columns=coords)
            for name, value in held.items():
                table[name] = value
            table = table[cands.variables]
        else:
            where = {np.ascontiguousarray(row).tobytes(): i for i, row in enumerate(cands.X)}
            rows = np.array(
                [where[np.ascontiguousarray(np.asarray(p, dtype=float)).tobytes()] for p in d.points]
            )
            order = np.argsort(rows, kind="stable")  # in the candidates' order
            table = cands.table.iloc[rows[order]][cands.variables].reset_index(drop=True)
            table["weight"] = d.weights[order]
            if d.counts is not None:
                table["count"] = d.counts[order]
            return table
        table["weight"] = d.weights
        if d.counts is not None:
            table["count"] = d.counts
        return table

    def _label(self) -> str:
        kind = self.opts.criterion
        if kind == DesignCriterion.DS.value:
            return f"Ds({', '.join(self.opts.names)})"
        if kind == DesignCriterion.C.value:
            return "c (" + " + ".join(f"{v:g}·{k}" for k, v in self.opts.c.items()) + ")"
        return kind

    def _document(
        self,
        d: Any,
        cands: Any,
        beta: Any,
        fixed: dict[str, float],
        source: str,
        support: Any,
        runs: int | None,
        se: dict[str, float] | None,
    ) -> dict[str, Any]:
        exact = d.counts is not None
        slack = OPTIMAL_RTOL * max(1.0, abs(d.bound))
        return {
            "formula": self.opts.formula,
            "family": self.family,
            "link": self.link,
            "criterion": self.opts.criterion,
            "criterion_label": self._label(),
            "criterion_meaning": CRITERION_HELP[self.opts.criterion] + ", M the information of one run",
            "params": dict(zip(cands.columns, [float(b) for b in beta], strict=True)),
            "fixed": fixed,
            "params_from": source,
            "candidates": self.total,
            "distinct_candidates": int(cands.X.shape[0]),
            "covariates": list(cands.variables),
            "support": support.to_dict(orient="records"),
            "value": d.value,
            "max_sensitivity": d.max_sensitivity,
            "bound": d.bound,
            "optimal": None if exact else bool(d.max_sensitivity <= d.bound + slack),
            "efficiency_bound": d.efficiency_bound,
            "n": d.n,
            "runs": runs,
            "se": None if se is None else {self._relabel(k): v for k, v in se.items()},
            # c: the criterion is the variance of the combination for one run, c'M^-1c
            "se_combination": (
                math.sqrt(d.value / runs)
                if runs is not None and self.opts.criterion == DesignCriterion.C.value
                else None
            ),
            "notes": list(self.notes),
            "out": None,
        }

    def _print(self, doc: dict[str, Any], support: Any) -> None:
        from rich.markup import escape
        from rich.table import Table

        from fisherlab._format import format_number

        from ._render import dump_json, stdout_console

        if self.json_out:
            sys.stdout.write(dump_json(doc) + "\n")
            return
        console = stdout_console()

        def say(text: str) -> None:
            console.print(text, markup=False, highlight=False)

        exact = doc["n"] is not None
        kind = f"exact, {doc['n']} runs" if exact else "approximate: fractions of the runs"
        say(f"fisherlab design: {doc['formula']}, family {doc['family']}, link {doc['link']}")
        at = ", ".join(f"{k} = {format_number(v)}" for k, v in {**doc["params"], **doc["fixed"]}.items())
        say(f"parameters ({doc['params_from']}): {at}")
        say(
            f"{doc['criterion_label']}-optimal design ({kind}): {len(support)} support points of "
            f"{doc['distinct_candidates']} candidates"
        )
        table = Table()
        for col in support.columns:
            table.add_column(escape(str(col)), justify="right")
        for row in support.itertuples(index=False):
            cells = []
            for col, value in zip(support.columns, row, strict=True):
                if col == "count":
                    cells.append(str(int(value)))
                elif isinstance(value, float):
                    cells.append(format_number(value))
                else:
                    cells.append(escape(str(value)))
            table.add_row(*cells)
        console.print(table)
        better = "larger" if doc["criterion"] in LARGER_IS_BETTER else "smaller"
        say(
            f"criterion {doc['criterion_label']} = {format_number(doc['value'])}: "
            f"{doc['criterion_meaning']}, {better} is better"
        )
        ms, bound, eff = (
            format_number(doc["max_sensitivity"]),
            format_number(doc["bound"]),
            doc["efficiency_bound"],
        )
        if exact:
            say(
                f"equivalence theorem: max sensitivity {ms}, bound {bound}: efficiency >= {eff:.6f} "
                "relative to the optimal approximate design"
            )
        elif doc["optimal"]:
            say(f"equivalence theorem: max sensitivity {ms} <= bound {bound}: optimal")
        else:
            say(f"equivalence theorem: max sensitivity {ms} > bound {bound}: efficiency >= {eff:.6f}")
        if doc["se"] is not None:
            say(f"Cramér–Rao standard errors for {doc['runs']} runs:")
            se = Table()
            se.add_column("coefficient")
            se.add_column("se", justify="right")
            for name, value in doc["se"].items():
                se.add_row(escape(name), format_number(value))
            console.print(se)
        if doc["se_combination"] is not None:
            say(
                f"standard error of the combination for {doc['runs']} runs: "
                f"{format_number(doc['se_combination'])}"
            )
        for note in doc["notes"]:
            say(f"note: {note}")
        if doc["out"] is not None:
            say(f"design written to {doc['out']}")
