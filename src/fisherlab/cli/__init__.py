"""The ``fisherlab`` command line (Typer + Rich): ``fit``, ``check``, ``info``, ``demo``.

Run ``fisherlab --help``. Exit status: 0 success; 2 bad input (missing file,
unreadable data, duplicate column names, unknown column, family, link or
distribution, a numeric column with typos, a formula term outside the allowed
Python, a design entry too large for float64, a response outside the family's
support, missing values without ``--dropna``, a report that exists without
``--force`` or cannot be written, a ``--model`` file that raises or exits);
3 a fit that did not converge or whose estimate is at infinity; 130 interrupted
by Ctrl-C (SIGINT), 143 by SIGTERM, with one line ``fisherlab: interrupted`` and
no report written; 1 an unexpected internal error (set ``FISHERLAB_DEBUG=1`` for
its traceback). Errors print one line, ``fisherlab: error: <message>``, on stderr.

Security: formula terms are Python that formulaic evaluates, so by default they
may only use column names, numbers, arithmetic, comparisons and a documented list
of transforms (:func:`fisherlab.formula.check_formula`); ``--allow-code`` runs them as arbitrary
Python. ``--model FILE.py:FUNCTION`` runs FILE.py: trusted files only.

:func:`main` runs a command in process and returns its exit status (tests use it);
:func:`run` is the console script's entry (through the launcher ``_fisherlab_launch``,
which handles signals before ``fisherlab`` is imported): it ends the process with
``os._exit`` after flushing, so that no interpreter or XLA-thread teardown runs
after an interrupt.

Startup: ``fisherlab --help``, ``fisherlab COMMAND --help`` and argument errors import
neither JAX nor pandas (the commands import what they compute with once their options
are checked), so they answer in the time Typer and Rich take to load. A signal that
arrives while a module is being imported (JAX and its C extensions, at the start of a
command) is delivered again every 10 ms until the import has finished, so that the
interrupt never unwinds a half-initialised extension module.
"""

from __future__ import annotations

import _thread
import functools
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, NoReturn, TextIO

from . import _interrupt

__all__ = ["main", "run"]

_EXIT_INTERNAL = 1

# The import system's own modules: a frame of theirs on the stack means an import is under way.
_IMPORT_MACHINERY = frozenset(
    {
        "_frozen_importlib",
        "_frozen_importlib_external",
        "importlib._bootstrap",
        "importlib._bootstrap_external",
    }
)


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
    """Run the ``fisherlab`` command with ``argv`` in this process and return its exit status.

    SIGINT and SIGTERM are handled while it runs (from the main thread; the previous
    handlers are restored afterwards): the command stops, ``fisherlab: interrupted`` is
    printed on stderr and the status is 130 or 143.

    Args:
        argv: the arguments, e.g. ``["fit", "data.csv", "-f", "y ~ x", "--family", "poisson"]``;
            default ``sys.argv[1:]``.

    Returns:
        The exit status: 0, 1 (internal error), 2 (bad input), 3 (not converged), 130/143.
    """
    with _interrupt.handling():
        _defer_during_imports()
        return _guarded(argv)


def run() -> NoReturn:
    """The console script: :func:`main` on ``sys.argv[1:]``, then flush and ``os._exit`` with its status.

    The signals are handled from here on (the launcher ``_fisherlab_launch`` handles those that
    arrive while ``fisherlab`` is imported); once the command has ended they are only recorded,
    so the flush cannot be interrupted, and ``os._exit`` skips the interpreter's teardown (which
    can crash while XLA threads are still busy after an interrupt).
    """
    code = _EXIT_INTERNAL
    try:
        _interrupt.install()
        _defer_during_imports()
        code = _guarded(None)
    except KeyboardInterrupt:  # a signal before _guarded's own handler
        code = _interrupted()
    finally:
        _interrupt.hold()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (fisherlab ... | head): nothing more to say
            pass
    os._exit(code)


def _defer_during_imports() -> None:
    """Wrap the installed SIGINT/SIGTERM handlers so that a signal is not raised inside an import.

    The commands import JAX (C extensions, XLA) after their options are checked; an exception
    raised half-way through an extension's initialisation can crash the interpreter, so a
    signal that arrives while any import is under way is delivered again 10 ms later (as
    :mod:`._interrupt` does for one raised where Python would drop it), until the import is done.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in _interrupt.SIGNALS:
        handler = signal.getsignal(sig)
        if callable(handler):
            signal.signal(sig, functools.partial(_unless_importing, handler))


def _unless_importing(
    handler: Callable[[int, FrameType | None], Any], signum: int, frame: FrameType | None
) -> None:
    """``handler(signum, frame)``, or the same signal again in 10 ms when ``frame`` is inside an import."""
    f = frame
    while f is not None:
        if f.f_globals.get("__name__") in _IMPORT_MACHINERY:
            retry = threading.Timer(0.01, _thread.interrupt_main, (signum,))
            retry.daemon = True
            retry.start()
            return
        f = f.f_back
    handler(signum, frame)


def _interrupted() -> int:
    """Stop raising on signals, say so in one line, return 130 or 143."""
    _interrupt.hold()
    print("fisherlab: interrupted", file=sys.stderr)
    return _interrupt.exit_status()


def _guarded(argv: Sequence[str] | None) -> int:
    """:func:`_main` with warnings on one line and every way an interrupt can show up turned into 130/143."""
    try:
        with warnings.catch_warnings():
            if os.environ.get("FISHERLAB_DEBUG", "") in ("", "0"):
                warnings.showwarning = _show_warning
            code = _main(argv)
    except KeyboardInterrupt:
        return _interrupted()
    # Typer turns KeyboardInterrupt into a silent exit status 130; a library may have swallowed it.
    if _interrupt.received() is not None or code == 130:
        return _interrupted()
    return code


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
    except typer.Abort:  # Typer's own interrupt (EOF at a prompt): reported as an interrupt by _guarded
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
