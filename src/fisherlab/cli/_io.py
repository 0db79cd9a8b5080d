"""Reading a data table for the command line: CSV, TSV or Parquet by extension, ``-`` for stdin CSV.

Compressed CSV/TSV (``.gz``, ``.bz2``, ``.xz``, ``.zst``, ``.zip``) is read as
pandas reads it. Errors become one-line :class:`CliError` messages.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from ._errors import CliError

__all__ = ["FORMATS", "read_table"]

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


def read_table(source: str) -> pd.DataFrame:
    """Read ``source`` (a path, or ``-`` for CSV on standard input) into a DataFrame.

    Column names are stripped of surrounding white space. Rows keep their
    0-based position as index, which error messages call "row".

    Raises:
        CliError: a missing or unreadable file, an unknown extension, a
            malformed CSV, Parquet without pyarrow, or a table without rows.
    """
    if source == "-":
        kind, handle, label = "csv", sys.stdin, "standard input"
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
    if df.shape[0] == 0:
        raise CliError(f"{label} has no data rows (columns: {list(map(str, df.columns))})")
    df.columns = [str(c).strip() for c in df.columns]
    return df.reset_index(drop=True)
