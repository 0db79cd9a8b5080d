"""The ``demo`` command: the Challenger O-ring logistic regression, its summary and DIR/report.html."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

import fisherlab as fl
from fisherlab._options import CovKind
from fisherlab.models import Family

from ._choices import SummaryDispersion
from ._errors import CliError
from ._float64 import use_float64
from ._report import check_target, write_report
from ._timer import Timer

__all__ = ["DEMO_HELP", "demo"]

DEMO_HELP = (
    "Fit the bundled Challenger O-ring data (logistic regression of incident on temperature), "
    "print the summary and write DIR/report.html.\n\n"
    "Example: fisherlab demo --out fisherlab-demo"
)


def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Directory for report.html (created if missing).")
    ] = Path("fisherlab-demo"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing report.html.")] = False,
) -> None:
    """``fisherlab demo``: the Challenger logistic regression, its summary and DIR/report.html."""
    use_float64()  # JAX, pandas: not needed for --help
    from ._fitting import attach_check, fit_glm
    from ._formula import build_design
    from ._render import stdout_console
    from ._tables import print_fit, summary

    out, err = stdout_console(), Console(stderr=True)
    timer = Timer(err)
    target = out_dir / "report.html"
    if out_dir.exists() and not out_dir.is_dir():
        raise CliError(f"--out {out_dir} is a file, not a directory")
    report_mod = check_target(target, force, create_parent=True)
    df = fl.datasets.challenger()
    family = Family.BINOMIAL
    design = build_design(df, "incident ~ temperature", family=family)
    f = fit_glm(
        design, family.value, None, timer, "Challenger O-rings: incident ~ temperature, binomial (logit)"
    )
    attach_check(f, timer)
    kind = CovKind.OBSERVED.value
    t = summary(f, kind, SummaryDispersion.ML.value, 0.95, None)
    print_fit(f, t, kind, out)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = write_report(
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
