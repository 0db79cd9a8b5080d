r"""Table sources: a table too big for memory, read as re-iterable pandas DataFrames of ``chunk_rows`` rows.

A *table source* is what :func:`fisherlab.glm` reads where a pandas DataFrame would be: the same
columns, delivered one chunk of rows at a time, as often as the computation needs (a fit reads
its data once per Newton step). The protocol, :class:`TableSource`, is small:

- ``columns``: the names of the columns the source can give;
- ``num_rows``: the number of rows, or ``None`` where it is unknown without reading the data;
- ``tables(columns)``: a fresh iterator of DataFrames holding only ``columns``, exactly
  ``chunk_rows`` rows each (the last may be shorter), in the source's row order, each indexed by
  the row names that error messages use (:attr:`TableSource.row_naming`);
- ``chunk_label(index, frame)``: ``"d.parquet, chunk 3 (rows 384-511)"``, for messages.

The sources: :func:`~fisherlab.data.from_parquet` without ``y=`` (pyarrow, column projection),
:func:`~fisherlab.data.from_csv` (pandas ``read_csv(chunksize=...)``), :class:`DaskTable` (a dask
DataFrame given to ``fl.glm``, one partition computed at a time) and :func:`frames` (a function
returning an iterator of DataFrames: anything else). Rows are cut into chunks of exactly ``chunk_rows`` rows
whatever the sizes of the pieces the reader gives (row groups, partitions), so that compiled
kernels see one chunk length.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._errors import FisherlabArgumentError, InvalidDataError
from .._precision import float64, float64_methods

__all__ = ["DaskTable", "FrameSource", "TableSource", "frames", "is_dask_frame", "recut"]


def _rows_option(value: Any, caller: str) -> int | None:
    """``chunk_rows`` checked: ``None`` or an integer >= 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise FisherlabArgumentError(f"{caller}: chunk_rows must be an integer >= 1, got {value!r}")
    return int(value)


def recut(pieces: Iterable[pd.DataFrame], rows: int) -> Iterator[pd.DataFrame]:
    """``pieces`` (DataFrames of any lengths, in row order) as DataFrames of exactly ``rows`` rows,
    the last one shorter; empty pieces are skipped. Memory: one chunk plus one piece."""
    held: list[pd.DataFrame] = []
    count = 0
    for piece in pieces:
        if len(piece) == 0:
            continue
        held.append(piece)
        count += len(piece)
        while count >= rows:
            whole = held[0] if len(held) == 1 else pd.concat(held)
            yield whole.iloc[:rows]
            rest = whole.iloc[rows:]
            count -= rows
            held = [rest] if count else []
    if count:
        yield held[0] if len(held) == 1 else pd.concat(held)


@float64_methods
class TableSource(abc.ABC):
    """A table read in chunks of rows (module docstring): the protocol :func:`fisherlab.glm` reads.

    Attributes:
        columns: the names of the columns the source gives.
        num_rows: the number of rows, or ``None`` where it is unknown without a pass.
        chunk_rows: rows per chunk (``None``: the pieces as the reader gives them).
        name: what the source is called in messages (a file name).
        row_naming: how rows are named in messages: ``"row"`` (0-based position in the source),
            or ``"line"`` (the line of a text file, the header being line 1).
    """

    columns: list[str]
    num_rows: int | None
    chunk_rows: int | None
    name: str = "the table"
    row_naming: str = "row"

    @abc.abstractmethod
    def _pieces(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        """DataFrames of ``columns`` in row order, of any lengths (the reader's own pieces)."""

    def _row_names(self, start: int, piece: pd.DataFrame) -> pd.Index:
        """The index of a chunk whose first row is the source's ``start``-th (0-based)."""
        return pd.RangeIndex(start, start + len(piece))

    def tables(self, columns: Sequence[str]) -> Iterator[pd.DataFrame]:
        """One pass: DataFrames of only ``columns``, ``chunk_rows`` rows each (the last may be
        shorter), indexed by the rows' names (:attr:`row_naming`).

        Raises:
            InvalidDataError: a column the source does not have (its columns are listed).
        """
        wanted = list(dict.fromkeys(str(c) for c in columns))
        missing = [c for c in wanted if c not in self.columns]
        if missing:
            raise InvalidDataError(
                f"{self.name} has no column(s) {', '.join(map(repr, missing))}; its columns are: "
                f"{', '.join(map(str, self.columns))}"
            )
        return self._chunks(wanted)

    def _chunks(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        pieces = self._pieces(columns)
        if self.chunk_rows is not None:
            pieces = recut(pieces, self.chunk_rows)
        start = 0
        for piece in pieces:
            if len(piece) == 0:
                continue
            frame = piece.loc[:, columns].copy(deep=False)
            frame.index = self._row_names(start, frame)
            start += len(frame)
            yield frame

    def chunk_label(self, index: int, frame: pd.DataFrame) -> str:
        """``"d.csv, chunk 3 (lines 386-513)"``: chunk ``index`` of this source and its rows."""
        if len(frame) == 0:
            return f"{self.name}, chunk {index}"
        plural = f"{self.row_naming}s"
        return f"{self.name}, chunk {index} ({plural} {frame.index[0]}-{frame.index[-1]})"


@float64_methods
class FrameSource(TableSource):
    """A table source from a function that returns an iterator of DataFrames; made by :func:`frames`.

    Rows are named by their position in the whole table (0-based), whatever the DataFrames' own
    indexes.
    """

    def __init__(
        self, factory: Callable[[], Iterable[pd.DataFrame]], columns: list[str], chunk_rows: int | None
    ) -> None:
        self._factory = factory
        self.columns = columns
        self.num_rows = None
        self.chunk_rows = chunk_rows
        self.name = "the table"

    def __repr__(self) -> str:
        return f"fl.data.frames(<factory>, chunk_rows={self.chunk_rows})"

    def _pieces(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        pieces = self._factory()
        if pieces is None or not isinstance(pieces, Iterable):
            raise FisherlabArgumentError(
                f"frames: the factory returned {type(pieces).__name__}, not an iterator of DataFrames"
            )
        count = -1
        for count, piece in enumerate(pieces):
            if not isinstance(piece, pd.DataFrame):
                raise FisherlabArgumentError(
                    f"frames: piece {count} is a {type(piece).__name__}, not a pandas DataFrame"
                )
            missing = [c for c in columns if c not in piece.columns]
            if missing:
                raise InvalidDataError(
                    f"frames: piece {count} has no column(s) {', '.join(map(repr, missing))}; its columns "
                    f"are: {', '.join(map(str, piece.columns))}"
                )
            yield piece.loc[:, columns]
        if count < 0:
            raise InvalidDataError("frames: the factory gave no DataFrames; the table needs at least one")


@float64
def frames(factory: Callable[[], Iterable[pd.DataFrame]], chunk_rows: int | None = None) -> FrameSource:
    """A table given as pieces: ``factory()`` returns a fresh iterator of pandas DataFrames.

    Pass it to :func:`fisherlab.glm` as ``data``: the rows of all the pieces, in order, are the
    table (each piece has the table's columns; extra columns are ignored). The source is read
    several times, so ``factory`` must give the same rows each time.

    Args:
        factory: a function of no arguments returning an iterator (a generator function) of
            DataFrames, or a list of them. Its first piece's columns are the table's.
        chunk_rows: cut the rows into chunks of exactly this many rows (the last shorter);
            ``None`` keeps the pieces as they come.

    Returns:
        A :class:`FrameSource`.

    Raises:
        FisherlabArgumentError: ``factory`` is an iterator (readable once), not callable, or
            gives something other than DataFrames; a bad ``chunk_rows``.

    Examples:
        >>> import pandas as pd, fisherlab as fl
        >>> table = pd.DataFrame({"y": [1, 0, 2, 4, 3], "x": [0.1, 0.2, 0.3, 0.4, 0.5]})
        >>> src = fl.data.frames(lambda: (table.iloc[i : i + 2] for i in range(0, 5, 2)))
        >>> [len(t) for t in src.tables(["y"])], src.columns
        ([2, 2, 1], ['y', 'x'])
    """
    if inspect.isgenerator(factory) or isinstance(factory, Iterator):
        raise FisherlabArgumentError(
            "frames: an iterator or generator can be read only once, and a fit reads the table several "
            "times; pass a function that returns a fresh one, e.g. fl.data.frames(lambda: read_pieces())"
        )
    if isinstance(factory, Sequence) and not isinstance(factory, (str, bytes)):
        items = list(factory)
        factory = lambda: iter(items)  # noqa: E731
    if not callable(factory):
        raise FisherlabArgumentError(
            f"frames: expected a function returning an iterator of DataFrames, got {type(factory).__name__}"
        )
    rows = _rows_option(chunk_rows, "frames")
    first = next(iter(factory()), None)
    if not isinstance(first, pd.DataFrame):
        raise FisherlabArgumentError(
            f"frames: the factory's first piece is a {type(first).__name__}, not a pandas DataFrame"
        )
    return FrameSource(factory, [str(c) for c in first.columns], rows)


def is_dask_frame(data: Any) -> bool:
    """Whether ``data`` is a dask DataFrame (duck-typed: partitions and columns)."""
    return (
        hasattr(data, "npartitions")
        and hasattr(data, "columns")
        and hasattr(data, "get_partition")
        and not isinstance(data, pd.DataFrame)
    )


@float64_methods
class DaskTable(TableSource):
    """A dask DataFrame read one partition at a time (``get_partition(i).compute()``), only the
    columns asked for; :func:`fisherlab.glm` makes one of a dask DataFrame given as ``data``. Rows
    keep the DataFrame's own index (the row names ``compute()`` would give).

    Args:
        frame: a dask DataFrame.
        chunk_rows: cut the rows into chunks of exactly this many rows (the last shorter);
            ``None`` reads the partitions as they are.
    """

    def __init__(self, frame: Any, chunk_rows: int | None = None) -> None:
        if not is_dask_frame(frame):
            raise FisherlabArgumentError(f"DaskTable: expected a dask DataFrame, got {type(frame).__name__}")
        self.frame = frame
        self.columns = [str(c) for c in frame.columns]
        self.num_rows = None
        self.chunk_rows = _rows_option(chunk_rows, "DaskTable")
        self.name = "the dask DataFrame"

    def __repr__(self) -> str:
        return f"DaskTable(<{self.frame.npartitions} partitions>, chunk_rows={self.chunk_rows})"

    def _pieces(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        for i in range(int(self.frame.npartitions)):
            yield self.frame[columns].get_partition(i).compute()

    def _row_names(self, start: int, piece: pd.DataFrame) -> pd.Index:
        return piece.index
