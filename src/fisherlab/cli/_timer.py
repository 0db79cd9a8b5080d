"""Wall-clock time per phase of a command (read, design, fit, check, ...), with a spinner on stderr.

Each phase boundary is also an interrupt checkpoint (:func:`._interrupt.checkpoint`):
a Ctrl-C or SIGTERM that a library swallowed still stops the command there.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import Progress

from . import _interrupt

__all__ = ["Timer"]


class Timer:
    """Wall-clock time per phase, with a Rich spinner on stderr while a phase runs.

    Attributes:
        phases: ``{name: seconds}``, summed over the phases of one name, in the order first run.
    """

    def __init__(self, err: Console) -> None:
        self.err = err
        self.phases: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(self, name: str, message: str, progress: Progress | None = None) -> Iterator[None]:
        """Time the ``with`` block as phase ``name``, showing ``message`` meanwhile: a spinner, or
        the first line of ``progress`` (a Rich progress bar whose other tasks, the passes over a
        streamed file, the block adds).

        Raises:
            KeyboardInterrupt: a signal was received before or during the phase.
        """
        _interrupt.checkpoint()
        t0 = time.perf_counter()
        if progress is None:
            shown: contextlib.AbstractContextManager[Any] = self.err.status(message)
        else:
            shown = _with_task(progress, message)
        with shown:
            yield
        self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - t0
        _interrupt.checkpoint()


@contextlib.contextmanager
def _with_task(progress: Progress, message: str) -> Iterator[None]:
    """``progress`` shown, with ``message`` as a task without a total, removed at the end."""
    with progress:
        task = progress.add_task(message, total=None)
        try:
            yield
        finally:
            progress.remove_task(task)
