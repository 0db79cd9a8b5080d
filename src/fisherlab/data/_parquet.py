r"""``fl.data.from_parquet``: a Parquet file or dataset as a streamed source of ``(y, x)`` chunks, or a table.

pyarrow reads the file batch by batch (``ParquetFile.iter_batches`` for a file,
``pyarrow.dataset`` for a directory of files), decoding only the columns asked for
(column projection), so memory is one chunk: ``chunk_rows`` rows of the needed columns as
float64 plus pyarrow's buffer for the row group being read. Two modes, one class:

- with ``y=`` (and ``x=``), a :class:`~fisherlab.data.Chunks` source: each chunk becomes
  ``(y, x)``, ``y`` the column named by ``y`` and ``x`` the ``x`` columns side by side
  (``(rows, k)``; one name gives ``(rows,)``), in the order given. A null is a missing value and
  is named (chunk and row) like a NaN.
- without ``y=``, a :class:`~fisherlab.data.TableSource` for :func:`fisherlab.glm`:
  ``tables(columns)`` gives pandas DataFrames of exactly ``chunk_rows`` rows of only those
  columns (pyarrow's ``to_pandas`` types: text as pandas strings, dictionary columns as
  categoricals), rows named by their 0-based position in the file or dataset.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._errors import FisherlabArgumentError, InvalidDataError, MethodUnavailableError
from ._chunks import Chunks, check_columns
from ._spill import aligned_empty
from ._tables import TableSource

__all__ = ["ParquetSource", "default_chunk_rows", "from_parquet"]

#: The most memory one chunk's columns may take by default (float64), and the share of the
#: machine's available memory it may take at most. Several chunks are in memory at once (one per
#: compute thread, one read ahead, one being read; a formula's design builds in about three
#: times a chunk): measured on a streamed Poisson GLM fit of 5M rows, 10 covariates, 2 cores,
#: peak RSS 1.17 GB with 32 MiB chunks, 1.07 GB with 16 MiB, 0.74-0.80 GB with 8 MiB, in the
#: same or less time (4 MiB: 0.74 GB, slower).
CHUNK_BYTES = 8 * 2**20
#: Rows of each batch pyarrow decodes (see ``ParquetSource._record_batches``).
READ_ROWS = 65536
CHUNK_SHARE = 1 / 16


def default_chunk_rows(columns: int) -> int:
    """Rows per chunk: ``CHUNK_BYTES`` of float64 columns, less where the machine's available
    memory is short (at most ``CHUNK_SHARE`` of it); at least 1,024 rows."""
    budget = CHUNK_BYTES
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        budget = int(min(budget, available * CHUNK_SHARE))
    except (ValueError, OSError, AttributeError):  # not Linux: the fixed budget
        pass
    return max(1024, budget // (8 * max(columns, 1)))


def _dataset_module() -> Any:
    """``pyarrow.dataset``, imported when a Parquet source is made (pyarrow is optional)."""
    try:
        import pyarrow.dataset as ds
    except ImportError as exc:
        raise MethodUnavailableError(
            "reading Parquet needs pyarrow: pip install fisherlab[parquet] (or pyarrow)"
        ) from exc
    return ds


class ParquetSource(Chunks, TableSource):
    """A Parquet file or directory read in chunks; made by :func:`from_parquet`.

    With ``y`` it is a source of ``(y, x)`` chunks (a :class:`~fisherlab.data.Chunks`); without,
    iterating it is an error and it is a table source (:class:`~fisherlab.data.TableSource`,
    :meth:`tables`) for :func:`fisherlab.glm`. Both modes read tables.

    Attributes:
        path: the file or directory.
        y, x: the response column and the covariate columns (``None`` for a table source).
        columns: the columns a table can be read from: those given as ``columns=`` to a table
            source, else all the file's.
        chunk_rows: rows per chunk (the last chunk of a file may be shorter).
        num_rows: rows in the file or dataset (from its metadata).
    """

    spill = True  # decoding costs more than reading raw arrays back (Chunks.keep_passes)

    def __init__(
        self,
        path: Path,
        y: str | None,
        x: list[str] | str | None,
        chunk_rows: int,
        columns: list[str] | None = None,
    ) -> None:
        super().__init__(self._batches)
        self.path, self.y, self.x, self.chunk_rows = path, y, x, chunk_rows
        self.name = path.name
        self._names = [] if y is None else [y] + ([] if x is None else [x] if isinstance(x, str) else list(x))
        dataset = self._dataset()
        self.columns = list(dataset.schema.names if columns is None else columns)
        self.num_rows = int(dataset.count_rows())

    def __repr__(self) -> str:
        where = str(self.path)
        if self.y is None:
            return f"fl.data.from_parquet({where!r}, columns={self.columns!r}, chunk_rows={self.chunk_rows})"
        return f"fl.data.from_parquet({where!r}, y={self.y!r}, x={self.x!r}, chunk_rows={self.chunk_rows})"

    def _dataset(self) -> Any:
        return _dataset_module().dataset(str(self.path), format="parquet")

    def _record_batches(self, columns: list[str]) -> Iterator[Any]:
        """pyarrow's record batches of ``columns``, file by file (a dataset's files in its order)
        and row group by row group, in batches of at most :data:`READ_ROWS` rows (cut into chunks
        afterwards). Memory is one batch and pyarrow's buffers of one row group: the dataset
        scanner's read-ahead holds many row groups (gigabytes on a big file), and one
        ``iter_batches`` reader across row groups keeps growing its buffers in pyarrow 26 when the
        batch size does not divide the row groups (measured: +60 MB a chunk), hence one reader per
        row group."""
        import pyarrow.parquet as pq

        for name in self._dataset().files:
            # pages read through a 1 MiB buffer, not whole column chunks at once: a row group's
            # compressed columns are never all in memory (measured: 103 MB instead of 180 MB)
            reader = pq.ParquetFile(name, buffer_size=2**20, pre_buffer=False)
            try:
                for group in range(reader.metadata.num_row_groups):
                    yield from reader.iter_batches(
                        batch_size=min(READ_ROWS, self.chunk_rows or READ_ROWS),
                        row_groups=[group],
                        columns=columns,
                    )
            finally:
                reader.close()

    def _pieces(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        """pyarrow's batches of ``columns`` (at most one row group each) as DataFrames."""
        for batch in self._record_batches(columns):
            if batch.num_rows:
                yield batch.to_pandas()

    def _batches(self) -> Iterator[tuple[Any, Any]]:
        """Chunks of exactly ``chunk_rows`` rows (the last may be shorter), whatever the file's row
        groups: pyarrow's batches (at most one row group each) are gathered and cut, so that every
        chunk but the last has one length and the kernels compile once."""
        if self.y is None:
            raise FisherlabArgumentError(
                f"{self!r} is a table source (made without y=): pass it to fl.glm as data, or make "
                "a source of (y, x) chunks with fl.data.from_parquet(path, y='...', x=[...])"
            )
        rows = self.chunk_rows
        assert rows is not None  # a (y, x) source always has its chunk length
        held: list[Any] = []  # pyarrow record batches not yet handed out
        count = 0
        for batch in self._record_batches(self._names):
            if batch.num_rows == 0:
                continue
            held.append(batch)
            count += batch.num_rows
            while count >= rows:
                yield self._assemble(held, rows)
                held, count = _after(held, rows), count - rows
        if count:
            yield self._assemble(held, count)

    def _assemble(self, batches: list[Any], rows: int) -> tuple[Any, Any]:
        """The first ``rows`` rows of ``batches`` as ``(y, x)``, each value copied once from
        pyarrow's buffers into its place (``x`` row-major ``(rows, k)``)."""
        k = len(self._names) - 1
        y = aligned_empty((rows,), np.float64)
        shape = (rows,) if isinstance(self.x, str) else (rows, k)
        x = None if self.x is None else aligned_empty(shape, np.float64)
        start = 0
        for batch in batches:
            take = min(batch.num_rows, rows - start)
            if take <= 0:
                break
            part = batch.slice(0, take)
            y[start : start + take] = part.column(0).to_numpy(zero_copy_only=False)
            if x is not None and x.ndim == 1:
                x[start : start + take] = part.column(1).to_numpy(zero_copy_only=False)
            elif x is not None:
                for j in range(k):
                    x[start : start + take, j] = part.column(j + 1).to_numpy(zero_copy_only=False)
            start += take
        return y, x


def _after(batches: list[Any], rows: int) -> list[Any]:
    """``batches`` without their first ``rows`` rows (zero-copy slices)."""
    rest, skip = [], rows
    for batch in batches:
        if skip >= batch.num_rows:
            skip -= batch.num_rows
            continue
        rest.append(batch.slice(skip))
        skip = 0
    return rest


def from_parquet(
    path: str | os.PathLike[str],
    columns: Sequence[str] | None = None,
    chunk_rows: int | None = None,
    *,
    y: str | None = None,
    x: Sequence[str] | str | None = None,
) -> ParquetSource:
    """A Parquet file (or a directory of them) as a streamed source of ``(y, x)`` chunks, or of tables.

    With ``y=``: a source of ``(y, x)`` chunks. Pass it where ``y`` goes, ``x`` omitted
    (``fl.loglik``, ``fl.score``, ``fl.empirical_fisher``, ``fl.observed_information``,
    ``fl.curvature``, ``fl.laplace``; as ``x`` of ``fl.fisher``): sums over rows are accumulated
    chunk by chunk in float64 with compensated summation, and equal the in-memory results.

    Without ``y=``: a table source (:class:`~fisherlab.data.TableSource`) for
    :func:`fisherlab.glm`, which reads only the columns its formula uses, ``chunk_rows`` rows at
    a time; rows are named by their 0-based position in the file (or dataset) in messages.

    Args:
        path: a ``.parquet`` file or a directory of them (a dataset).
        columns: with ``y``, the covariate columns when ``x`` is not given (``x=columns``);
            without, the columns the table source offers (default: all the file's).
        chunk_rows: rows per chunk; default :func:`default_chunk_rows` (8 MiB of float64
            columns, less where the machine's free memory is short).
        y: the response column of a ``(y, x)`` source.
        x: the covariate columns, in order (``(rows, k)``), one name (``(rows,)``), or none.

    Raises:
        FisherlabArgumentError: no such file; ``x`` without ``y``; ``columns`` and ``x`` both
            given; a bad ``chunk_rows``.
        InvalidDataError: a column that is not in the file (the file's columns are listed); a
            file that is not Parquet.
        MethodUnavailableError: pyarrow is not installed.

    Examples:
        >>> import numpy as np, pandas as pd, tempfile, os, fisherlab as fl
        >>> path = os.path.join(tempfile.mkdtemp(), "d.parquet")
        >>> pd.DataFrame({"y": [0.0, 1.0, 3.0], "a": [1.0, 2.0, 3.0]}).to_parquet(path)
        >>> src = fl.data.from_parquet(path, y="y", x=["a"], chunk_rows=2)
        >>> [c[1].shape for c in src], src.num_rows
        ([(2,), (1,)], 3)
        >>> table = fl.data.from_parquet(path, chunk_rows=2)    # a table source, for fl.glm
        >>> [t.shape for t in table.tables(["a"])], table.columns
        ([(2, 1), (1, 1)], ['y', 'a'])
    """
    where = Path(os.fspath(path))
    if not where.exists():
        raise FisherlabArgumentError(f"from_parquet: no such file or directory: {str(where)!r}")
    if y is not None and not isinstance(y, str):
        raise FisherlabArgumentError(f"from_parquet: y names the response column, got {type(y).__name__}")
    if y is None and x is not None:
        raise FisherlabArgumentError(
            "from_parquet: name the response column, y='...', with the covariates x=['...', ...] (or "
            "neither, for a table source that fl.glm reads)"
        )
    if columns is not None and x is not None:
        raise FisherlabArgumentError("from_parquet: give the covariates as x= or as columns=, not both")
    cols: list[str] | str | None = x if isinstance(x, str) else (None if x is None else list(x))
    if columns is not None:
        cols = [str(c) for c in columns]
    ds = _dataset_module()
    try:
        available = ds.dataset(str(where), format="parquet").schema.names
    except Exception as exc:  # pyarrow's own errors: not Parquet, unreadable
        raise InvalidDataError(f"from_parquet: {str(where)!r} is not readable as Parquet ({exc})") from exc
    listed = [] if cols is None else [cols] if isinstance(cols, str) else cols
    wanted = ([] if y is None else [y]) + listed
    check_columns("from_parquet", wanted, available, where.name)
    rows = default_chunk_rows(len(wanted) or len(available)) if chunk_rows is None else chunk_rows
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 1:
        raise FisherlabArgumentError(f"from_parquet: chunk_rows must be an integer >= 1, got {chunk_rows!r}")
    if y is None:
        return ParquetSource(where, None, None, int(rows), columns=available if cols is None else listed)
    return ParquetSource(where, y, cols, int(rows), columns=available)
