r"""``fl.data.chunks``: data as a re-iterable source of ``(y, x)`` chunks (mini-batches).

Every quantity fisherlab computes over rows is a sum over rows, so it can be computed one chunk
at a time with memory that does not grow with :math:`N`. A :class:`Chunks` source stands in for
``y`` (with ``x`` omitted) where a function accepts one; each computation reads the source once
or several times (a product of a curvature operator is one pass), so the source must be
*re-iterable*: a function that returns a fresh iterator, or a sequence.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import jax
import numpy as np

from .._errors import FisherlabArgumentError, InvalidDataError
from ._prepare import Data, prepare_data

__all__ = ["Chunks", "CompensatedSum", "chunk_label", "chunks", "prepare_chunk", "prepared_chunks"]


class Chunks:
    """A re-iterable source of ``(y, x)`` chunks; made by :func:`chunks`.

    Iterating gives ``(index, y, x)`` triples (``x`` is ``None`` for a chunk given as ``(y,)``
    or ``(y, None)``), reading the source afresh each time.
    """

    def __init__(self, factory: Callable[[], Iterable[Any]] | Sequence[Any]) -> None:
        self._factory = factory

    def __repr__(self) -> str:
        what = f"{len(self._factory)} chunks" if isinstance(self._factory, Sequence) else "factory"
        return f"fl.data.chunks({what})"

    def __iter__(self) -> Iterator[tuple[int, Any, Any]]:
        source = self._factory() if callable(self._factory) else self._factory
        if source is None or not isinstance(source, Iterable):
            raise FisherlabArgumentError(
                f"the chunk factory returned {type(source).__name__}, not an iterator of (y, x) chunks"
            )
        count = -1
        for count, item in enumerate(source):
            yield (count, *_pair(count, item))
        if count < 0:
            raise InvalidDataError("the data source gave no chunks: it needs at least one (y, x) chunk")


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


def prepared_chunks(source: Chunks, *, transient: bool = False) -> Iterator[tuple[str, Data]]:
    """One pass over ``source``: ``(label, data)`` per chunk, each checked (:func:`prepare_chunk`);
    ``label`` names the chunk and the source's row where it starts, for errors."""
    schema = Schema()
    start = 0
    for index, y, x in source:
        data = prepare_chunk(index, y, x, schema, start=start, transient=transient)
        yield chunk_label(index, start), data
        start += data.n


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

    Example:
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
