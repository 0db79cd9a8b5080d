r"""Parallel evaluation: the executor of one call.

The points of one stencil batch (all :math:`2LP` axis points, then all mixed points, then the
retries) are known before any is evaluated, so with ``executor="threads"``, ``"processes"`` or
any object with a :class:`concurrent.futures.Executor`-style ``map(fn, iterable)`` (a
``ThreadPoolExecutor``, ``ProcessPoolExecutor``, or Dask's
``distributed.Client.get_executor()``) they are all submitted at once; ``f`` runs under the
caller's NumPy error state, results are identical to the serial ones. A pool the engine
creates (``workers`` of them) is shut down at the end of the call; a given executor is not.
``"processes"`` uses the ``spawn`` start method (forking a process that has imported JAX is
unsafe) and needs a picklable ``f`` (a module-level function).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import pickle
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import numpy as np

from .._errors import InvalidOptionError, ModelError
from .._options import ExecutorKind, choose


class SupportsMap(Protocol):
    """An executor: ``map(fn, iterable)`` yields ``fn(item)`` in order, as ``concurrent.futures``."""

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any]) -> Iterator[Any]: ...  # pragma: no cover


def _require_picklable(f: Callable[..., Any]) -> None:
    """Raise a clear :class:`~fisherlab.ModelError` if ``f`` cannot be sent to worker processes."""
    try:
        pickle.dumps(f)
    except Exception as exc:
        raise ModelError(
            'executor="processes" sends f to worker processes, so f must be picklable; '
            f"pickling {f!r} failed ({type(exc).__name__}: {exc}). Define f at module level "
            '(not a lambda or a nested function), or use executor="threads"'
        ) from exc


class _Pool:
    """The executor of one call: none (serial), a pool made here (shut down on close), or the caller's."""

    def __init__(self, executor: Any, workers: int | None, f: Callable[..., Any]) -> None:
        if workers is not None and (
            isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1
        ):
            raise InvalidOptionError(
                f"workers must be a positive integer or None (os.cpu_count()), got {workers!r}"
            )
        self.workers = int(workers) if workers is not None else (os.cpu_count() or 1)
        self.kind: ExecutorKind | None = None
        self.executor: Any = None
        self._own: concurrent.futures.Executor | None = None
        if executor is None:
            return
        if isinstance(executor, str):
            self.kind = choose(ExecutorKind, executor, "executor")
            if self.kind is ExecutorKind.PROCESSES:
                _require_picklable(f)
        elif callable(getattr(executor, "map", None)):
            if isinstance(executor, concurrent.futures.ProcessPoolExecutor):
                _require_picklable(f)
            self.executor = executor
        else:
            raise InvalidOptionError(
                "executor must be None, 'threads', 'processes' or an object with a "
                f"concurrent.futures.Executor-style map(fn, iterable); got {executor!r}"
            )

    @property
    def active(self) -> bool:
        return self.kind is not None or self.executor is not None

    def map(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterator[Any]:
        """``fn`` over ``items``, all submitted at once; the pool is made on first use."""
        if self.executor is None:
            if self.kind is ExecutorKind.THREADS:
                self._own = concurrent.futures.ThreadPoolExecutor(max_workers=self.workers)
            else:
                self._own = concurrent.futures.ProcessPoolExecutor(
                    max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
                )
            self.executor = self._own
        if isinstance(self.executor, concurrent.futures.ProcessPoolExecutor):
            # one pickled copy of f per chunk, a few chunks per worker
            chunksize = max(1, len(items) // (4 * self.workers))
            return self.executor.map(fn, items, chunksize=chunksize)
        return iter(self.executor.map(fn, items))

    def close(self) -> None:
        if self._own is not None:
            self._own.shutdown(wait=True)
            self._own = None
            self.executor = None

    def __enter__(self) -> _Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
