"""The ``fisherlab`` command line (Typer + Rich): ``fit``, ``check``, ``info``, ``demo``.

Run ``fisherlab --help``. Exit status: 0 success; 1 an unexpected internal error
(set ``FISHERLAB_DEBUG=1`` for its traceback); 2 bad input (missing file,
unreadable data, unknown column, family, link or distribution, a response
outside the family's support, missing values without ``--dropna``, a report
that exists without ``--force``); 3 a fit that did not converge. Errors print
one line, ``fisherlab: error: <message>``, on stderr.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from typing import TextIO

__all__ = ["main"]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Warnings on one stderr line, like errors (no source line)."""
    print(f"fisherlab: warning: {category.__name__}: {_one_line(str(message))}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fisherlab`` command with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    with warnings.catch_warnings():
        if os.environ.get("FISHERLAB_DEBUG", "") in ("", "0"):
            warnings.showwarning = _show_warning
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    import typer

    try:
        from typer._click.exceptions import ClickException
    except ImportError:  # a Typer that uses the click package
        from click.exceptions import ClickException  # type: ignore[no-redef,assignment,unused-ignore]

    from . import _app, _report
    from ._errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_NOT_CONVERGED, CliError

    args = list(sys.argv[1:] if argv is None else argv)
    _report.COMMAND_LINE[:] = args
    debug = os.environ.get("FISHERLAB_DEBUG", "") not in ("", "0")
    command = typer.main.get_command(_app.app)

    def fail(message: str, code: int) -> int:
        print(f"fisherlab: error: {_one_line(message)}", file=sys.stderr)
        return code

    try:
        rv = command.main(args=args, prog_name="fisherlab", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except CliError as exc:
        if debug:
            raise
        return fail(str(exc), exc.code)
    except ClickException as exc:  # usage errors: missing option, bad value
        if debug:
            raise
        ctx = getattr(exc, "ctx", None)
        hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        return fail(exc.format_message() + hint, EXIT_BAD_INPUT if exc.exit_code == 2 else exc.exit_code)
    except typer.Abort:
        print("fisherlab: aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("fisherlab: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        from fisherlab import FisherlabError, NotConvergedError

        if isinstance(exc, NotConvergedError):
            return fail(str(exc), EXIT_NOT_CONVERGED)
        if isinstance(exc, (FisherlabError, ValueError, OSError, LookupError)):
            return fail(str(exc), EXIT_BAD_INPUT)
        return fail(
            f"internal error: {type(exc).__name__}: {exc} (set FISHERLAB_DEBUG=1 for the traceback and "
            "please report it)",
            EXIT_INTERNAL,
        )
