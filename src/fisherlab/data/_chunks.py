r"""``fl.data.chunks``: data as a re-iterable source of ``(y, x)`` chunks (mini-batches).

Every quantity fisherlab computes over rows is a sum over rows, so it can be computed one chunk
at a time with memory that does not grow with :math:`N`. A :class:`Chunks` source stands in for
``y`` (with ``x`` omitted) where a function accepts one; each computation reads the source once
or several times (a product of a curvature operator is one pass), so the source must be
*re-iterable*: a function that returns a fresh iterator, or a sequence.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import ctypes
import functools
import gc
import inspect
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import jax
import numpy as np

from .._errors import (
    FisherlabArgumentError,
    FisherlabError,
    InvalidDataError,
    InvalidParameterError,
    with_message,
)
from ._prepare import Data, prepare_data
from ._spill import Scratch

__all__ = [
    "Chunks",
    "CompensatedSum",
    "StreamedData",
    "check_columns",
    "chunk_label",
    "chunks",
    "in_parts",
    "labelled",
    "prepare_chunk",
    "prepared_chunks",
    "read_ahead",
]

#: Chunks computed at once by a pass whose work is thread-safe (:meth:`Chunks.reduce`): the
#: per-chunk kernels run in row blocks on one core each, so chunks in parallel use the cores;
#: memory grows by one chunk per thread.
COMPUTE_THREADS = max(1, min(os.cpu_count() or 1, 4))
#: Chunks read ahead of the one being computed (:func:`prepared_chunks`): reading and checking the
#: next chunk overlaps the compiled work on this one, at the memory of one more chunk.
PREFETCH = 1


class Chunks:
    """A re-iterable source of ``(y, x)`` chunks; made by :func:`chunks`.

    Iterating gives ``(index, y, x)`` triples (``x`` is ``None`` for a chunk given as ``(y,)``
    or ``(y, None)``), reading the source afresh each time.
    """

    #: Whether reading the source costs more than reading its arrays back from disk (a Parquet
    #: file, a formula's design): :meth:`keep_passes` then keeps a scratch copy.
    spill = False
    _scratch: Scratch | None = None

    def __init__(self, factory: Callable[[], Iterable[Any]] | Sequence[Any]) -> None:
        self._factory = factory

    def keep_passes(self) -> None:
        """Read the source once more at most, if it is costly to read (``spill``): the next full
        pass is written, as it is read, to a scratch file, and later passes read that (see
        :mod:`fisherlab.data._spill`; ``FISHERLAB_SCRATCH`` says where, or ``off``). A fit, which
        reads its data once per iterate, calls this."""
        if self.spill and self._scratch is None:
            self._scratch = Scratch.open()

    @property
    def replayed(self) -> bool:
        """Whether passes now read the scratch copy that :meth:`keep_passes` asked for."""
        return self._scratch is not None and self._scratch.complete

    def __repr__(self) -> str:
        what = f"{len(self._factory)} chunks" if isinstance(self._factory, Sequence) else "factory"
        return f"fl.data.chunks({what})"

    def __iter__(self) -> Iterator[tuple[int, Any, Any]]:
        scratch = self._scratch
        if scratch is not None and scratch.complete:
            yield from scratch.replay()
            return
        source = self._factory() if callable(self._factory) else self._factory
        if source is None or not isinstance(source, Iterable):
            raise FisherlabArgumentError(
                f"the chunk factory returned {type(source).__name__}, not an iterator of (y, x) chunks"
            )
        recorder = None if scratch is None else scratch.recorder()
        try:
            count = -1
            for count, item in enumerate(source):
                y, x = _pair(count, item)
                if recorder is not None:
                    recorder.add(y, x)
                yield count, y, x
            if count < 0:
                raise InvalidDataError("the data source gave no chunks: it needs at least one (y, x) chunk")
            if recorder is not None:
                recorder.finish()
        finally:
            if recorder is not None:
                recorder.abandon()

    def reduce(self, fn: Callable[[Data], Sequence[Any]]) -> tuple[list[np.ndarray], int]:
        """One pass: ``fn`` of every chunk (checked, :func:`prepared_chunks`), each of its outputs
        summed over the chunks, in chunk order, in float64 with compensation (:class:`CompensatedSum`).

        An ``fn`` whose ``thread_safe`` attribute is true (compiled JAX work, which releases the
        GIL) runs on :data:`COMPUTE_THREADS` chunks at once, in threads that keep the caller's
        JAX precision; the first chunk runs alone (it compiles the kernels). An
        :class:`~fisherlab.InvalidDataError` or :class:`~fisherlab.InvalidParameterError` that
        ``fn`` raises is prefixed with the chunk's label (index and first row); the first failing
        chunk in order is the one raised. A source that computes elsewhere (a cluster's workers)
        overrides this method; ``fn`` is then shipped to them and must be picklable.

        Returns:
            The sums, one per output of ``fn``, and the number of rows.
        """
        sums: list[CompensatedSum] = []
        rows = 0

        def add(out: Sequence[Any]) -> None:
            if not sums:
                sums.extend(CompensatedSum() for _ in out)
            for total, value in zip(sums, out, strict=True):
                total.add(value)

        x64 = bool(jax.config.read("jax_enable_x64"))  # the caller's scope, for the threads

        def call(label: str, data: Data) -> Sequence[Any]:
            with jax.enable_x64(x64), labelled(label):
                return fn(data)

        threads = 1  # known after the first chunk, which runs alone (it compiles, decides backends)
        with concurrent.futures.ThreadPoolExecutor(COMPUTE_THREADS, "fisherlab-chunk") as pool:
            pending: collections.deque[concurrent.futures.Future[Sequence[Any]]] = collections.deque()
            try:
                for label, data in prepared_chunks(self, transient=True):
                    if threads == 1:
                        add(call(label, data))
                        threads = COMPUTE_THREADS if getattr(fn, "thread_safe", False) else 1
                    else:
                        if len(pending) >= threads:
                            add(pending.popleft().result())
                        pending.append(pool.submit(call, label, data))
                    rows += data.n
                while pending:
                    add(pending.popleft().result())
            finally:
                for future in pending:
                    future.cancel()
        return [total.value for total in sums], rows


def _trailing(tree: Any) -> Any:
    """A chunk's fields without their row counts: structure, trailing shapes and dtypes."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return str(treedef), tuple((tuple(np.shape(a)[1:]), str(a.dtype)) for a in leaves)


class Schema:
    """The fields of a source's first chunk, which every later chunk must repeat."""

    def __init__(self) -> None:
        self.first: Any = None

    def check(self, index: int, data: Data) -> None:
        """Raise :class:`~fisherlab.InvalidDataError` naming chunk ``index`` if its fields, trailing
        shapes or dtypes differ from the first chunk's."""
        schema = (_trailing(data.y), _trailing(data.x))
        if self.first is None:
            self.first = schema
        elif schema != self.first:
            raise InvalidDataError(
                f"chunk {index}: its fields, trailing shapes or dtypes differ from chunk 0's "
                f"({schema} vs {self.first}); every chunk needs the same columns"
            )


def check_columns(caller: str, wanted: list[str], available: list[str], where: str) -> None:
    """Raise :class:`~fisherlab.InvalidDataError` if a column of ``wanted`` is not in ``available``
    (``where``: the file or table, for the message) or one is named twice."""
    missing = [c for c in wanted if c not in available]
    if missing:
        raise InvalidDataError(
            f"{caller}: column {missing[0]!r} is not in {where}; its columns are {available}"
        )
    if len(set(wanted)) != len(wanted):
        raise InvalidDataError(f"{caller}: a column is named twice in y and x: {wanted}")


@contextlib.contextmanager
def labelled(
    label: str, kinds: tuple[type[FisherlabError], ...] = (InvalidDataError, InvalidParameterError)
) -> Iterator[None]:
    """An error of ``kinds`` raised inside, raised again as a copy (same class and attributes)
    whose message starts with ``label`` (a chunk's), chained to the original."""
    try:
        yield
    except kinds as exc:
        raise with_message(exc, f"{label}: {exc}") from exc


def chunk_label(index: int, start: int | None = None) -> str:
    """``"chunk 3"``, or with the source's row where it starts ``"chunk 3 (from row 384)"``."""
    return f"chunk {index}" if start is None else f"chunk {index} (from row {start})"


def prepare_chunk(
    index: int, y: Any, x: Any, schema: Schema, *, start: int | None = None, transient: bool = False
) -> Data:
    """One chunk checked like in-memory data (:func:`prepare_data`; an error names the chunk, and
    the row of the source where it starts if ``start`` is given) and against the source's
    ``schema``."""
    try:
        data = prepare_data(y, x, transient=transient)
    except InvalidDataError as exc:
        raise InvalidDataError(f"{chunk_label(index, start)}: {exc}") from exc
    schema.check(index, data)
    return data


def _checked(source: Chunks, transient: bool) -> Iterator[tuple[str, Data]]:
    schema = Schema()
    start = 0
    for index, y, x in source:
        data = prepare_chunk(index, y, x, schema, start=start, transient=transient)
        yield chunk_label(index, start), data
        start += data.n


_DONE = object()


def read_ahead(items: Iterator[Any], depth: int) -> Iterator[Any]:
    """``items`` read by a background thread, ``depth`` items ahead of the consumer.

    Reading a chunk (pyarrow's decoding, NumPy's checks) releases the GIL for most of its time,
    as does the compiled work on the previous chunk, so the two overlap. An error of the reader
    is raised in the consumer at the item where it occurred; a consumer that stops early stops
    the reader.
    """
    ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
        except BaseException as exc:  # delivered to the consumer, raised there
            put((False, exc))
            return
        finally:  # a consumer that stopped early: the source's own clean-up runs now, here
            close = getattr(items, "close", None)
            if close is not None:
                close()
        put((True, _DONE))

    thread = threading.Thread(target=reader, name="fisherlab-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = ready.get()
            if not ok:
                raise item
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        thread.join()


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or ``None`` on another C library."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


def _passed(items: Iterator[tuple[str, Data]]) -> Iterator[tuple[str, Data]]:
    """``items``, then the memory of the pass's chunks collected and handed back to the system.

    Building a chunk (a formula's design matrix above all) leaves reference cycles that hold the
    chunk's arrays until Python's cyclic collector runs, which it does by counts of objects, not
    bytes: over many passes a streamed fit grew by tens of megabytes a pass (measured: 750 MB to
    1.5 GB in 10 passes of 27 chunks of 381,300 rows). The cycles are young: a collection of the
    young generations after each pass (under a millisecond; a full one costs 0.1 s and more with
    JAX's objects, longer than a pass over a small source) keeps it flat. glibc then keeps freed
    memory in per-thread arenas (the chunks are read in one thread and freed in another): its
    ``malloc_trim`` returns it."""
    try:
        yield from items
    finally:
        gc.collect(1)
        trim = _malloc_trim()
        if trim is not None:
            trim(0)


def prepared_chunks(source: Chunks, *, transient: bool = False) -> Iterator[tuple[str, Data]]:
    """One pass over ``source``: ``(label, data)`` per chunk, each checked (:func:`prepare_chunk`);
    ``label`` names the chunk and the source's row where it starts, for errors. The next
    :data:`PREFETCH` chunks are read and checked in a background thread while the caller
    computes on this one (I/O overlapped with compute); at the end of the pass freed memory is
    returned to the system (:func:`_passed`)."""
    items = _checked(source, transient)
    return _passed(read_ahead(items, PREFETCH) if PREFETCH > 0 else items)


class StreamedData:
    """The data of a fit on a chunk source, standing where in-memory :class:`Data` would.

    ``y`` is the source and ``x`` ``None`` (every function that takes ``(y, x)`` streams it);
    ``n`` counts the rows of a full pass (known from the source's metadata, or from the first
    pass); ``first`` is the first chunk, checked, on which a backend is chosen and the model's
    rows are inspected.
    """

    __slots__ = ("_n", "first", "source", "x", "y")

    def __init__(self, source: Chunks, first: Data, n: int | None = None) -> None:
        self.source, self.first, self._n = source, first, n
        self.y: Any = source
        self.x: Any = None

    @classmethod
    def first_chunk(cls, source: Chunks) -> StreamedData:
        """The source with its first chunk read and checked (the rest is read by the passes)."""
        for _, data in prepared_chunks(source, transient=True):
            known = getattr(source, "num_rows", None)
            return cls(source, data, None if known is None else int(known))
        raise InvalidDataError("the data source gave no chunks: it needs at least one (y, x) chunk")

    @property
    def n(self) -> int:
        if self._n is None:
            raise InvalidDataError("the rows of a chunk source are known after a pass over it")
        return self._n

    def count(self, rows: int) -> None:
        """Record the rows of a full pass; every pass must give the same rows."""
        if self._n is None:
            self._n = int(rows)
        elif rows != self._n:
            raise InvalidDataError(
                f"the data source gave {rows} rows on this pass and {self._n} before: every pass "
                "over a source must give the same rows (did the file change during the fit?)"
            )

    def __iter__(self) -> Iterator[tuple[str, Data]]:
        return prepared_chunks(self.source, transient=True)


class CompensatedSum:
    """A float64 sum of arrays (or numbers) over chunks with Neumaier's compensation: the rounding
    error of each addition is carried, so a sum of many partial sums loses no more than one
    rounding whatever the number of chunks (Neumaier 1974)."""

    def __init__(self) -> None:
        self.total: np.ndarray | None = None
        self._carry: np.ndarray | None = None

    def add(self, value: Any) -> None:
        v = np.asarray(value, dtype=np.float64)
        if self.total is None or self._carry is None:
            self.total, self._carry = v.copy(), np.zeros_like(v)
            return
        t = self.total + v
        big = np.abs(self.total) >= np.abs(v)
        self._carry += np.where(big, (self.total - t) + v, (v - t) + self.total)
        self.total = t

    @property
    def value(self) -> np.ndarray:
        if self.total is None or self._carry is None:
            raise InvalidDataError("the data source gave no chunks: it needs at least one (y, x) chunk")
        return self.total + self._carry


def _pair(index: int, item: Any) -> tuple[Any, Any]:
    if isinstance(item, (tuple, list)) and len(item) in (1, 2):
        return item[0], (item[1] if len(item) == 2 else None)
    raise FisherlabArgumentError(
        f"chunk {index} is a {type(item).__name__}, not a (y, x) pair: each chunk is a tuple "
        "(y, x) of arrays with the same rows, or (y,) without covariates"
    )


def chunks(factory: Callable[[], Iterable[Any]] | Sequence[Any]) -> Chunks:
    """Data given as chunks of rows: ``factory()`` returns a fresh iterator of ``(y, x)`` chunks.

    Pass the result where ``y`` goes (``x`` omitted), e.g.
    ``fl.curvature(model, params, fl.data.chunks(batches), kind="ggn")``: sums over rows are
    accumulated chunk by chunk, so memory is that of one chunk plus the result. Each chunk is
    checked like in-memory data (NaN/inf and disagreeing rows are named with the chunk's index);
    all chunks must have the same fields, trailing shapes and dtypes, and every pass over the
    source must give the same rows. Compiled kernels are specialised to a chunk's length: keep
    the chunks the same length (the last may be shorter; it compiles once more).

    Args:
        factory: a function of no arguments returning an iterator (a generator function, say)
            of ``(y, x)`` tuples, or a sequence (list, tuple) of them. A bare iterator or
            generator object can be read only once and is refused.

    Raises:
        FisherlabArgumentError: ``factory`` is an iterator, or neither callable nor a sequence.

    Examples:
        >>> import numpy as np
        >>> import fisherlab as fl
        >>> y, x = np.arange(6.0), np.ones((6, 2))
        >>> src = fl.data.chunks(lambda: ((y[i : i + 2], x[i : i + 2]) for i in range(0, 6, 2)))
        >>> [int(c[1].shape[0]) for c in src]
        [2, 2, 2]
    """
    if isinstance(factory, Chunks):
        return factory
    if inspect.isgenerator(factory) or isinstance(factory, Iterator):
        raise FisherlabArgumentError(
            "chunks: an iterator or generator can be read only once, and fisherlab reads the data "
            "several times; pass a function that returns a fresh one, e.g. "
            "fl.data.chunks(lambda: make_batches())"
        )
    if isinstance(factory, (str, bytes)) or not (callable(factory) or isinstance(factory, Sequence)):
        raise FisherlabArgumentError(
            f"chunks: expected a function returning an iterator of (y, x) chunks, or a list of them; "
            f"got {type(factory).__name__}"
        )
    return Chunks(factory)


def in_parts(data: Data | StreamedData) -> Iterator[tuple[int, Data]]:
    """``(first row, rows)`` of in-memory data (one part) or of each chunk of a streamed source:
    diagnostics that name rows run on either and count rows from the source's start."""
    if not isinstance(data, StreamedData):
        yield 0, data
        return
    start = 0
    for _, chunk in data:
        yield start, chunk
        start += chunk.n
