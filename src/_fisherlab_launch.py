"""The ``fisherlab`` console script: SIGINT and SIGTERM handled from its first line, then fisherlab.cli.

A Ctrl-C or SIGTERM while Python starts and imports ``fisherlab.cli`` (Typer, Rich) would
end the process with a traceback or a death by signal, and an exception raised inside a
C extension's initialisation can crash the interpreter. This launcher lives outside the
``fisherlab`` package so that it runs before that import: a signal received while
importing ends the process at once, from the handler, with the one line ``fisherlab:
interrupted`` and exit status 130 (SIGINT) or 143 (SIGTERM). Nothing has been written
yet, so there is nothing to clean up. Once imported, :func:`fisherlab.cli.run` takes over
the signals. ``import fisherlab.cli`` imports no JAX (``fisherlab --help`` answers in the
time of Typer and Rich); the commands import JAX once their options are checked, and
:mod:`fisherlab.cli` delivers a signal that arrives during that import when it has
finished. ``python -m _fisherlab_launch ARGS`` is the same command.
"""

from __future__ import annotations

import os
import signal
from types import FrameType

__all__ = ["main"]


def _exit_now(signum: int, frame: FrameType | None) -> None:
    """While importing: no file is open for writing, so leave at once (no exception, no teardown)."""
    os.write(2, b"fisherlab: interrupted\n")
    os._exit(128 + signum)


def main() -> None:
    """Run ``fisherlab`` with ``sys.argv[1:]``; the process ends with the command's exit status."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _exit_now)
    try:
        from fisherlab.cli import run
    except Exception as exc:  # a broken installation: one line, exit 1
        text = " ".join(str(exc).split())
        os.write(2, f"fisherlab: error: internal error: {type(exc).__name__}: {text}\n".encode())
        os._exit(1)
    run()


if __name__ == "__main__":
    main()
