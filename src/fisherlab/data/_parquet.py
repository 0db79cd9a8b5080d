r"""``fl.data.from_parquet``: a Parquet file or dataset as a streamed source of ``(y, x)`` chunks.

pyarrow reads the file batch by batch (``ParquetFile.iter_batches`` for a file,
``pyarrow.dataset`` for a directory of files), decoding only the columns asked for
(column projection), so memory is one chunk: ``chunk_rows`` rows of the needed columns as
float64 plus pyarrow's buffer for the row group being read. Each chunk becomes
``(y, x)``: ``y`` the column named by ``y`` and ``x`` the ``x`` columns side by side
(``(rows, k)``; one name gives ``(rows,)``), in the order given. A null is a missing value and is
named (chunk and row) like a NaN.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import FisherlabArgumentError, InvalidDataError, MethodUnavailableError
from ._chunks import Chunks

__all__ = ["ParquetSource", "default_chunk_rows", "from_parquet"]

#: The most memory one chunk's columns may take by default (float64), and the share of the
#: machine's available memory it may take at most.
CHUNK_BYTES = 64 * 2**20
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


class ParquetSource(Chunks):
    """A Parquet file or directory read in chunks of ``(y, x)``; made by :func:`from_parquet`.

    Attributes:
        path: the file or directory.
        y, x: the response column and the covariate columns.
        chunk_rows: rows per chunk (the last chunk of a file may be shorter).
        num_rows: rows in the file or dataset (from its metadata).
    """

    def __init__(self, path: Path, y: str, x: list[str] | str | None, chunk_rows: int) -> None:
        super().__init__(self._batches)
        self.path, self.y, self.x, self.chunk_rows = path, y, x, chunk_rows
        self._names = [y] + ([] if x is None else [x] if isinstance(x, str) else list(x))
        self.num_rows = int(self._dataset().count_rows())

    def __repr__(self) -> str:
        where = str(self.path)
        return f"fl.data.from_parquet({where!r}, y={self.y!r}, x={self.x!r}, chunk_rows={self.chunk_rows})"

    def _dataset(self) -> Any:
        return _dataset_module().dataset(str(self.path), format="parquet")

    def _batches(self) -> Iterator[tuple[Any, Any]]:
        """Chunks of exactly ``chunk_rows`` rows (the last may be shorter), whatever the file's row
        groups: pyarrow's batches (at most one row group each) are gathered and cut, so that every
        chunk but the last has one length and the kernels compile once."""
        scanner = self._dataset().scanner(columns=self._names, batch_size=self.chunk_rows)
        held: list[list[np.ndarray]] = []
        count = 0
        for batch in scanner.to_batches():
            if batch.num_rows == 0:
                continue
            held.append([batch.column(i).to_numpy(zero_copy_only=False) for i in range(len(self._names))])
            count += batch.num_rows
            while count >= self.chunk_rows:
                cols = [np.concatenate([h[j] for h in held]) for j in range(len(self._names))]
                yield self._pair([c[: self.chunk_rows] for c in cols])
                rest = [c[self.chunk_rows :] for c in cols]
                count -= self.chunk_rows
                held = [rest] if count else []
        if count:
            yield self._pair([np.concatenate([h[j] for h in held]) for j in range(len(self._names))])

    def _pair(self, cols: list[np.ndarray]) -> tuple[Any, Any]:
        if self.x is None:
            return cols[0], None
        if isinstance(self.x, str):
            return cols[0], cols[1]
        return cols[0], np.column_stack(cols[1:])


def from_parquet(
    path: str | os.PathLike[str],
    columns: Sequence[str] | None = None,
    chunk_rows: int | None = None,
    *,
    y: str | None = None,
    x: Sequence[str] | str | None = None,
) -> ParquetSource:
    """A Parquet file (or a directory of them) as a streamed source of ``(y, x)`` chunks.

    Pass it where ``y`` goes, ``x`` omitted (``fl.loglik``, ``fl.score``,
    ``fl.empirical_fisher``, ``fl.observed_information``, ``fl.curvature``, ``fl.laplace``; as
    ``x`` of ``fl.fisher``): sums over rows are accumulated chunk by chunk in float64 with
    compensated summation, and equal the in-memory results.

    Args:
        path: a ``.parquet`` file or a directory of them (a dataset).
        columns: the covariate columns when ``x`` is not given (``x=columns``).
        chunk_rows: rows per chunk; default :func:`default_chunk_rows` (64 MiB of float64
            columns, less where the machine's free memory is short).
        y: the response column (required).
        x: the covariate columns, in order (``(rows, k)``), one name (``(rows,)``), or none.

    Raises:
        FisherlabArgumentError: no such file; no ``y``; ``columns`` and ``x`` both given.
        InvalidDataError: a column that is not in the file (the file's columns are listed).
        MethodUnavailableError: pyarrow is not installed.

    Example:
        >>> import numpy as np, pandas as pd, tempfile, os, fisherlab as fl
        >>> path = os.path.join(tempfile.mkdtemp(), "d.parquet")
        >>> pd.DataFrame({"y": [0.0, 1.0, 3.0], "a": [1.0, 2.0, 3.0]}).to_parquet(path)
        >>> src = fl.data.from_parquet(path, y="y", x=["a"], chunk_rows=2)
        >>> [c[1].shape for c in src], src.num_rows
        ([(2,), (1,)], 3)
    """
    where = Path(os.fspath(path))
    if not where.exists():
        raise FisherlabArgumentError(f"from_parquet: no such file or directory: {str(where)!r}")
    if y is None or not isinstance(y, str):
        raise FisherlabArgumentError(
            "from_parquet: name the response column, y='...', and the covariates, x=['...', ...]"
        )
    if columns is not None and x is not None:
        raise FisherlabArgumentError("from_parquet: give the covariates as x= or as columns=, not both")
    cols: list[str] | str | None = x if isinstance(x, str) else (None if x is None else list(x))
    if columns is not None:
        cols = list(columns)
    ds = _dataset_module()
    try:
        available = ds.dataset(str(where), format="parquet").schema.names
    except Exception as exc:  # pyarrow's own errors: not Parquet, unreadable
        raise InvalidDataError(f"from_parquet: {str(where)!r} is not readable as Parquet ({exc})") from exc
    wanted = [y] + ([] if cols is None else [cols] if isinstance(cols, str) else cols)
    missing = [c for c in wanted if c not in available]
    if missing:
        raise InvalidDataError(
            f"from_parquet: column {missing[0]!r} is not in {where.name}; its columns are {available}"
        )
    if len(set(wanted)) != len(wanted):
        raise InvalidDataError(f"from_parquet: a column is named twice in y and x: {wanted}")
    rows = default_chunk_rows(len(wanted)) if chunk_rows is None else chunk_rows
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 1:
        raise FisherlabArgumentError(f"from_parquet: chunk_rows must be an integer >= 1, got {chunk_rows!r}")
    return ParquetSource(where, y, cols, int(rows))
