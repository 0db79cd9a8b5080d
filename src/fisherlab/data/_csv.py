r"""``fl.data.from_csv``: a CSV file as a table source, read ``chunk_rows`` rows at a time.

pandas' ``read_csv(chunksize=chunk_rows, usecols=columns)`` parses only the columns asked for
(the others are skipped while tokenising), so memory is one chunk of those columns. Types are
inferred per chunk, as ``read_csv`` infers them for a whole file: a numeric column with a typo in
one chunk is text in that chunk only, and the formula layer names the column, the row and the
token (:func:`fisherlab.formula.check_numeric_columns`).

Row convention: every line after the header is a row (blank lines are rows of missing values,
``skip_blank_lines=False``), and a row is named in messages by **its line in the file, the
header being line 1** (so the first data row is line 2), which is where an editor shows it. A
quoted field holding a line break would make later line numbers one short per break: pandas
does not report where a record starts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .._errors import FisherlabArgumentError, InvalidDataError
from .._precision import float64, float64_methods
from ._parquet import default_chunk_rows
from ._tables import TableSource, _rows_option

__all__ = ["HEADER_LINES", "CsvSource", "from_csv"]

#: Lines before the first data row: the header. Row ``k`` of the data (0-based) is line ``k + 2``.
HEADER_LINES = 1


@float64_methods
class CsvSource(TableSource):
    """A CSV file read in chunks of rows; made by :func:`from_csv`.

    Attributes:
        path: the file.
        columns: the columns of its header (or those asked for).
        num_rows: ``None`` (a CSV's rows are counted only by reading it).
        chunk_rows: rows per chunk (the last may be shorter).
        options: the ``read_csv`` options used for every read.
    """

    row_naming = "line"

    def __init__(self, path: Path, columns: list[str], chunk_rows: int, options: dict[str, Any]) -> None:
        self.path, self.columns, self.chunk_rows, self.options = path, columns, chunk_rows, options
        self.num_rows = None
        self.name = path.name

    def __repr__(self) -> str:
        return f"fl.data.from_csv({str(self.path)!r}, chunk_rows={self.chunk_rows})"

    def _pieces(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        dtype = self.options.get("dtype")
        options = dict(self.options)
        if isinstance(dtype, Mapping):
            options["dtype"] = {k: v for k, v in dtype.items() if k in columns}
        try:
            reader = pd.read_csv(
                self.path,
                usecols=columns,
                chunksize=self.chunk_rows,
                skip_blank_lines=False,
                **options,
            )
            with reader:
                yield from reader
        except (ValueError, UnicodeDecodeError) as exc:  # pandas' ParserError is a ValueError
            raise InvalidDataError(f"{self.name}: cannot read it as CSV ({exc})") from exc

    def _row_names(self, start: int, piece: pd.DataFrame) -> pd.Index:
        return pd.RangeIndex(start + HEADER_LINES + 1, start + HEADER_LINES + 1 + len(piece))


@float64
def from_csv(
    path: str | os.PathLike[str],
    columns: list[str] | None = None,
    chunk_rows: int | None = None,
    *,
    sep: str = ",",
    decimal: str = ".",
    thousands: str | None = None,
    na_values: Any = None,
    keep_default_na: bool = True,
    dtype: Mapping[str, Any] | None = None,
    encoding: str = "utf-8",
) -> CsvSource:
    """A CSV file with a header line as a table source, for :func:`fisherlab.glm`'s ``data``.

    Each pass reads the file afresh with pandas' ``read_csv(chunksize=chunk_rows)``, parsing only
    the columns the computation needs; results equal those on ``pd.read_csv(path)`` in memory.
    Rows are named in messages by their line in the file, the header being line 1 (module
    docstring).

    Args:
        path: the CSV file; its first line names the columns.
        columns: the columns the source offers (default: all in the header).
        chunk_rows: rows per chunk; default :func:`~fisherlab.data._parquet.default_chunk_rows`
            of the offered columns.
        sep: as ``pandas.read_csv``.
        decimal: as ``pandas.read_csv``.
        thousands: as ``pandas.read_csv``.
        na_values: as ``pandas.read_csv``.
        keep_default_na: as ``pandas.read_csv``.
        encoding: as ``pandas.read_csv``.
        dtype: ``{column: dtype}`` as ``pandas.read_csv`` takes it, e.g. ``{"zip": str}`` for a
            column of codes that should stay text in every chunk.

    Returns:
        A :class:`CsvSource`.

    Raises:
        FisherlabArgumentError: no such file; a bad ``chunk_rows``.
        InvalidDataError: a header that cannot be read, or ``columns`` naming a column the
            header lacks (the header's columns are listed).

    Examples:
        >>> import pandas as pd, tempfile, os, fisherlab as fl
        >>> path = os.path.join(tempfile.mkdtemp(), "d.csv")
        >>> pd.DataFrame({"y": [1, 0, 2], "x": [0.5, 1.5, 2.5]}).to_csv(path, index=False)
        >>> src = fl.data.from_csv(path, chunk_rows=2)
        >>> [t.index.tolist() for t in src.tables(["y"])]    # the lines of the file
        [[2, 3], [4]]
    """
    where = Path(os.fspath(path))
    if not where.is_file():
        raise FisherlabArgumentError(f"from_csv: no such file: {str(where)!r}")
    options: dict[str, Any] = {
        "sep": sep,
        "decimal": decimal,
        "thousands": thousands,
        "na_values": na_values,
        "keep_default_na": keep_default_na,
        "dtype": dtype,
        "encoding": encoding,
    }
    try:
        header = [str(c) for c in pd.read_csv(where, nrows=0, sep=sep, encoding=encoding).columns]
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidDataError(f"from_csv: cannot read the header of {where.name} ({exc})") from exc
    offered = header if columns is None else [str(c) for c in columns]
    missing = [c for c in offered if c not in header]
    if missing:
        raise InvalidDataError(
            f"from_csv: column {missing[0]!r} is not in {where.name}; its columns are {header}"
        )
    rows = _rows_option(chunk_rows, "from_csv")
    return CsvSource(where, offered, default_chunk_rows(len(offered)) if rows is None else rows, options)
