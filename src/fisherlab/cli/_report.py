"""HTML reports from the command line: check the target before fitting, then fisherlab.report writes.

:func:`check_target` runs before any fitting, so a report that could not be written
fails in a second, not after the fit: an existing directory entry (a file, a
directory, a symbolic link, dangling or not) without ``--force``, a missing
directory, or a directory this process cannot write into. :func:`write_report`
builds the page and writes it atomically; it does not start once Ctrl-C or SIGTERM
has been received, and an operating-system error names the user's path.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _interrupt
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


def _existing_ancestor(path: Path) -> Path:
    for candidate in [path, *path.parents]:
        if candidate.is_dir():
            return candidate
    return Path(".")


def _check_writable(target: Path, directory: Path) -> None:
    """Refuse a directory the report cannot be created in (permissions, read-only file system).

    ``os.access`` first (it knows the permissions and ACLs), then a real temporary file (it
    also sees read-only mounts, a full disk, and what root may not do); the failure's own
    reason is named when there is one.
    """
    allowed = os.access(directory, os.W_OK | os.X_OK)
    reason = None if allowed else "permission denied"
    try:
        with tempfile.TemporaryFile(dir=directory):  # O_TMPFILE on Linux: never a visible name
            pass
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
    if reason is not None:
        raise CliError(
            f"cannot write the report {str(target)!r}: the directory {str(directory)!r} is not writable "
            f"({reason}); choose another --report path"
        )


def check_target(path: Path, force: bool, *, create_parent: bool = False) -> Any:
    """Fail early (before any fitting) if the report could not be written to ``path``.

    Args:
        path: the report file the user asked for.
        force: ``--force``: an existing file may be replaced.
        create_parent: the directory will be created (``demo --out``): check its nearest
            existing ancestor instead.

    Returns:
        The ``fisherlab.report`` module.

    Raises:
        CliError: ``path`` exists (any directory entry, a dangling symbolic link included)
            without ``force``, is a directory, its directory is missing or not writable,
            or this installation lacks ``fisherlab.report`` (exit 1).
    """
    if os.path.lexists(path) and not force:
        link = f" (a symbolic link to {os.readlink(path)!r})" if path.is_symlink() else ""
        raise CliError(f"{path} already exists{link}; pass --force to overwrite it")
    if path.is_dir():
        raise CliError(f"{path} is a directory; give a file name such as report.html")
    parent = path.parent
    if create_parent:
        parent = _existing_ancestor(parent)
    elif not parent.is_dir():
        raise CliError(f"cannot write {path}: the directory {parent} does not exist")
    _check_writable(path, parent)
    report = _report_module()
    if report is None:
        raise CliError("writing an HTML report needs fisherlab.report, which this installation lacks", 1)
    return report


def _command_line() -> str:
    """The command as typed, shell-quoted (``shlex.join``) so it can be pasted back into a shell."""
    return shlex.join(["fisherlab", *COMMAND_LINE])


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
    robust: Mapping[str, Any] | None = None,
) -> Path:
    """Build the report of ``f`` with ``report_mod.build_html`` and write it to ``path``.

    Args:
        report_mod: ``fisherlab.report`` (from :func:`check_target`).
        f: the fit.
        path: the report file.
        force: replace an existing file.
        level: confidence level of the intervals.
        profile: add profile-likelihood intervals and contours.
        source: where the data came from, for the page.
        timer: the command's phase timer.
        title: the page title.
        robust: ``hc`` (``--hc``) and ``groups`` (``--cluster``'s labels) of a robust ``--cov``:
            the page's sandwich column uses that ``hc``, and the labels add a cluster column.

    Returns:
        The path written.

    Raises:
        KeyboardInterrupt: Ctrl-C or SIGTERM was received: nothing is written.
        CliError: the file exists (without ``force``) or the operating system refused the
            write; the message names ``path``.
    """
    _interrupt.checkpoint()
    with timer.phase("report", f"writing {path}"):
        html = report_mod.build_html(
            f.res,
            check=f.check,
            check_error=f.check_error or None,
            title=title,
            command=_command_line(),
            source=source,
            level=level,
            profile=profile,
            **dict(robust or {}),
        )
        _interrupt.checkpoint()  # building took a while: a signal since then means no file
        try:
            return Path(report_mod.write_report(path, html, force=force))
        except FileExistsError as exc:
            raise CliError(f"{path} already exists; pass --force to overwrite it") from exc
        except OSError as exc:
            raise CliError(f"cannot write the report {str(path)!r}: {exc.strerror or exc}") from exc
