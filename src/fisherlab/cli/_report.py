"""HTML reports from the command line: refuse to overwrite before fitting, then fisherlab.report writes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import CliError

if TYPE_CHECKING:
    from ._fitting import Fitted
    from ._timer import Timer

__all__ = ["COMMAND_LINE", "check_target", "write_report"]

# The command line as typed, for the report (set by main()).
COMMAND_LINE: list[str] = []


def _report_module() -> Any:
    try:
        from fisherlab import report
    except ImportError:
        return None
    return report


def check_target(path: Path, force: bool, *, create_parent: bool = False) -> Any:
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


def write_report(
    report_mod: Any,
    f: Fitted,
    path: Path,
    force: bool,
    level: float,
    profile: bool,
    source: str,
    timer: Timer,
    title: str,
) -> Path:
    """Build the report of ``f`` with ``report_mod.build_html`` and write it to ``path``; return the path."""
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
