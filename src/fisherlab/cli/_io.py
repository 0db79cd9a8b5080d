"""Reading a data table for the command line: CSV, TSV or Parquet by extension, ``-`` for stdin CSV.

Compressed CSV/TSV (``.gz``, ``.bz2``, ``.xz``, ``.zst``, ``.zip``) is read as
pandas reads it. Errors become one-line :class:`CliError` messages. Column names
are stripped of surrounding spaces, and two columns with the same name (``x`` and
`` x``, or ``x`` twice, which pandas would silently rename ``x.1``) are an error:
a formula naming ``x`` would otherwise use one of them without a word.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from ._errors import CliError

__all__ = ["FORMATS", "check_columns", "read_table"]

FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}
_COMPRESSION = (".gz", ".bz2", ".xz", ".zst", ".zip")


def _format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSION:
        suffixes = suffixes[:-1]
    kind = FORMATS.get(suffixes[-1]) if suffixes else None
    if kind is None:
        raise CliError(
            f"cannot tell the format of {str(path)!r} from its extension; use one of "
            f"{sorted(FORMATS)} (optionally compressed: {', '.join(_COMPRESSION)}), or - for CSV on stdin"
        )
    return kind


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _raw_header(handle: object, sep: str) -> list[str] | None:
    """The CSV header's fields as written (pandas renames duplicates), or ``None`` if unreadable."""
    try:
        first = pd.read_csv(
            handle, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False, na_filter=False
        )
    except Exception:  # the table itself was read: fall back to its column names
        return None
    return [str(v) for v in first.iloc[0].tolist()] if first.shape[0] else None


def _check_duplicates(names: Sequence[str], raw: Sequence[str] | None, label: str) -> None:
    """Refuse column names that occur twice after stripping spaces; positions counted from 1."""
    names = [str(c).strip() for c in (raw if raw is not None and len(raw) == len(names) else names)]
    positions: dict[str, list[int]] = {}
    for k, name in enumerate(names, start=1):
        if name:  # unnamed columns cannot be named in a model
            positions.setdefault(name, []).append(k)
    dups = {name: ks for name, ks in positions.items() if len(ks) > 1}
    if dups:
        listed = "; ".join(f"{name!r} at columns {', '.join(map(str, ks))}" for name, ks in dups.items())
        raise CliError(
            f"{label} has duplicate column names (after removing surrounding spaces, counting columns "
            f"from 1): {listed}; rename them so that each name occurs once"
        )


def read_table(source: str) -> pd.DataFrame:
    """Read ``source`` (a path, or ``-`` for CSV on standard input) into a DataFrame.

    Column names are stripped of surrounding white space. Rows keep their
    0-based position as index, which error messages call "row".

    Args:
        source: a file path (format by extension) or ``-``.

    Returns:
        The table, with stripped column names and a 0-based row index.

    Raises:
        CliError: a missing or unreadable file, an unknown extension, a
            malformed CSV, Parquet without pyarrow, a table without rows, or
            duplicate column names (names and positions listed).
    """
    handle: object
    if source == "-":
        kind, handle, label = "csv", io.StringIO(sys.stdin.read()), "standard input"
    else:
        path = Path(source)
        if not path.exists():
            raise CliError(f"no such file: {source}")
        if path.is_dir():
            raise CliError(f"{source} is a directory, not a data file")
        kind, handle, label = _format(path), path, source
    try:
        if kind == "parquet":
            try:
                df = pd.read_parquet(handle)
            except ImportError:
                raise CliError("reading Parquet needs pyarrow: pip install 'fisherlab[parquet]'") from None
        else:
            df = pd.read_csv(handle, sep="\t" if kind == "tsv" else ",", low_memory=False)
    except CliError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for a bad file: all are bad input
        raise CliError(f"cannot read {label} as {kind.upper()}: {_one_line(exc)}") from exc
    raw = None
    if kind != "parquet":
        if isinstance(handle, io.StringIO):
            handle.seek(0)
        raw = _raw_header(handle, "\t" if kind == "tsv" else ",")
    _check_duplicates([str(c) for c in df.columns], raw, label)
    if df.shape[0] == 0:
        raise CliError(f"{label} has no data rows (columns: {list(map(str, df.columns))})")
    df.columns = [str(c).strip() for c in df.columns]
    return df.reset_index(drop=True)


def check_columns(options: Mapping[str, str], columns: Iterable[object], source: str) -> None:
    """Each column an option names (``{"--exposure": "years"}``) is one of ``columns`` of ``source``.

    Raises:
        CliError: the first option whose column is not there, named with the column and the
            columns there are.
    """
    names = [str(c) for c in columns]
    for option, column in options.items():
        if column not in names:
            label = "standard input" if source == "-" else source
            raise CliError(f"{option} {column!r} is not a column of {label}; columns are: {', '.join(names)}")
