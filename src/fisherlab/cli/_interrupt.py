"""Ctrl-C and SIGTERM for the command line: one line, exit 130 or 143, nothing half-written.

While a command runs, SIGINT and SIGTERM are handled alike: the handler records
the signal and raises :class:`SignalInterrupt` (a ``KeyboardInterrupt``) in the
main thread, which unwinds the command (the report writer removes its temporary
file on the way out) up to ``fisherlab.cli.main``, which prints
``fisherlab: interrupted`` and returns 128 + the signal number (130, 143).

Two ways an interrupt could get lost are closed. A signal handled inside a
garbage-collector callback (JAX runs one at every collection), a weak-reference
callback or a ``__del__`` raises where Python prints "Exception ignored in ..."
and goes on: the ``sys.unraisablehook`` installed here drops that message and
delivers the interrupt again 10 ms later. A library that catches and swallows
the ``KeyboardInterrupt`` is met at the next phase boundary (:func:`checkpoint`,
called by the phase timer and before a report is written), so the command still
stops before it writes anything. Once the command has ended (:func:`hold`)
further signals are only recorded, so the final flush and ``os._exit`` of the
console script cannot be interrupted half-way.

The state is this module's: the signals received since :func:`install` and
whether they still raise. (Signals that arrive while ``fisherlab`` is being
imported are the console-script launcher's: it exits at once.)
"""

from __future__ import annotations

import _thread
import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

__all__ = [
    "SIGNALS",
    "SignalInterrupt",
    "checkpoint",
    "exit_status",
    "handling",
    "hold",
    "install",
    "received",
]

SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals that interrupt a command."""

_received: list[int] = []
_raising = True
_previous_hook: Callable[[Any], None] = sys.__unraisablehook__


class SignalInterrupt(KeyboardInterrupt):
    """The ``KeyboardInterrupt`` raised for SIGINT or SIGTERM.

    Attributes:
        signum: the signal.
    """

    def __init__(self, signum: int) -> None:
        super().__init__()
        self.signum = signum


def _handler(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    if _raising:
        raise SignalInterrupt(signum)


def _unraisable(info: Any) -> None:
    """``sys.unraisablehook``: an interrupt raised where Python drops exceptions comes again in 10 ms."""
    if isinstance(info.exc_value, SignalInterrupt):
        if _raising:
            retry = threading.Timer(0.01, _thread.interrupt_main, (info.exc_value.signum,))
            retry.daemon = True
            retry.start()
        return
    _previous_hook(info)


def received() -> int | None:
    """The first interrupting signal received since :func:`install`.

    Returns:
        The signal number, or ``None`` if none was received.
    """
    return _received[0] if _received else None


def exit_status(signum: int | None = None) -> int:
    """The exit status for an interrupt: 128 + the signal number (SIGINT 130, SIGTERM 143).

    Args:
        signum: the signal; default the first one received, or SIGINT when none was (a
            ``KeyboardInterrupt`` raised by other means).

    Returns:
        The exit status.
    """
    if signum is None:
        signum = received() or signal.SIGINT
    return 128 + int(signum)


def checkpoint() -> None:
    """Raise :class:`SignalInterrupt` if a signal was received (and signals still raise).

    Raises:
        SignalInterrupt: a signal was received since :func:`install`.
    """
    if _received and _raising:
        raise SignalInterrupt(_received[0])


def hold() -> None:
    """From now on, signals are only recorded: the command has ended and is reporting or exiting."""
    global _raising
    _raising = False


def install() -> bool:
    """Handle SIGINT and SIGTERM by recording them and raising :class:`SignalInterrupt`.

    Also installs the ``sys.unraisablehook`` that delivers again an interrupt Python would drop.

    Returns:
        Whether the handlers were installed: only the main thread can (elsewhere signals
        keep their handlers and a ``KeyboardInterrupt`` still ends the command with 130).
    """
    global _received, _raising, _previous_hook
    _received = []
    _raising = True
    if threading.current_thread() is not threading.main_thread():
        return False
    if sys.unraisablehook is not _unraisable:
        _previous_hook = sys.unraisablehook
        sys.unraisablehook = _unraisable
    for sig in SIGNALS:
        signal.signal(sig, _handler)
    return True


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """:func:`install` for the duration of the block, then the previous handlers back (in-process use)."""
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    hook = sys.unraisablehook
    installed = install()
    try:
        yield
    finally:
        hold()
        if installed:
            for sig, old in previous.items():
                signal.signal(sig, old if old is not None else signal.SIG_DFL)
            sys.unraisablehook = hook
