"""``fisherlab fit BIG.parquet --formula ...``: a GLM fitted to a file read in chunks, with a progress bar.

A Parquet or CSV file is *streamed* when ``--stream`` asks for it, or by default when its
decoded size (Parquet: from its metadata; CSV: its size on disk) exceeds 2 GiB or an eighth of
the memory available (:func:`should_stream`). Then the file is never loaded: it is a table source
(:func:`fisherlab.data.from_parquet` without ``y``, :func:`fisherlab.data.from_csv`) of
``--chunk-rows`` rows (default: 8 MiB of float64 columns), the design is fixed by a first pass
(categorical levels over the whole file, ``center``/``scale`` state;
:func:`fisherlab.formula.first_pass`) and every Newton step, covariance and the identity check
are one pass each (:func:`fisherlab.formula.fit_plan`). Memory is bounded by a few chunks
(the one being computed, the one read ahead, the design and the compiled kernel's buffers)
plus the imports, whatever the file's size.

While a pass reads the file, a Rich progress bar on standard error counts its rows (only on a
terminal; it is removed when the phase ends); the fit's passes after its first read a scratch
copy of the design (:mod:`fisherlab.data._spill`) and take a fraction of that time. Nothing is
written before the fit ends: an interrupted streamed fit leaves no output and no partial report
(:mod:`._interrupt`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import fisherlab as fl
from fisherlab.data import StreamedData, TableSource
from fisherlab.formula import first_pass, fit_plan

from ._errors import EXIT_BAD_INPUT, EXIT_NOT_CONVERGED, CliError
from ._fitted import Fitted, glm_fitted
from ._formula import CLI_SPELLING, describe
from ._io import FORMATS, check_columns
from ._timer import Timer

__all__ = ["ProgressTable", "should_stream", "stream_glm"]

#: A file whose decoded size exceeds this share of the available memory, or :data:`STREAM_BYTES`,
#: is streamed by default: in memory, a table costs several times its size (the DataFrame, the
#: design matrix, the arrays of the compiled kernels).
STREAM_SHARE = 1 / 8
STREAM_BYTES = 2 * 2**30


def _available_memory() -> int | None:
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _kind(path: Path) -> str | None:
    return FORMATS.get(path.suffix.lower())


def _uncompressed_bytes(path: Path, kind: str) -> int:
    """The bytes of the file's columns once decoded: Parquet's metadata, else the size on disk."""
    if kind == "parquet":
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(path).metadata
        return sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    return path.stat().st_size


def should_stream(data: str, choice: bool | None) -> bool:
    """Whether ``fisherlab fit`` reads ``data`` in chunks: ``--stream``/``--no-stream`` as given;
    by default when the decoded file exceeds :data:`STREAM_BYTES` or :data:`STREAM_SHARE` of the
    available memory.

    Raises:
        CliError: ``--stream`` for standard input, a compressed file or a format other than
            Parquet and CSV.
    """
    if choice is False:
        return False
    path = Path(data)
    kind = None if data == "-" or not path.is_file() else _kind(path)
    if choice is True and kind not in ("parquet", "csv"):
        raise CliError(
            f"--stream reads a .parquet or an uncompressed .csv file in chunks; {data!r} is not one "
            "(stream standard input by writing it to a file first)"
        )
    if kind not in ("parquet", "csv"):
        return False
    if choice is True:
        return True
    available = _available_memory()
    try:
        size = _uncompressed_bytes(path, kind)
    except Exception:  # unreadable: the reader names the problem
        return False
    return size > STREAM_BYTES or (available is not None and size > STREAM_SHARE * available)


class ProgressTable(TableSource):
    """A table source whose passes advance a Rich progress bar (one task per pass, rows counted)."""

    def __init__(self, inner: TableSource, progress: Progress | None) -> None:
        self.inner, self.progress, self.passes = inner, progress, 0
        self.columns, self.num_rows, self.chunk_rows = inner.columns, inner.num_rows, inner.chunk_rows
        self.name, self.row_naming = inner.name, inner.row_naming

    def __repr__(self) -> str:
        return repr(self.inner)

    def _pieces(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        self.passes += 1
        task = None
        if self.progress is not None:
            task = self.progress.add_task(f"pass {self.passes} over {self.name}", total=self.num_rows)
        for piece in self.inner._pieces(columns):
            yield piece
            if self.progress is not None and task is not None:
                self.progress.advance(task, len(piece))
        if self.progress is not None and task is not None:
            self.progress.remove_task(task)

    def _row_names(self, start: int, piece: pd.DataFrame) -> pd.Index:
        return self.inner._row_names(start, piece)


def _progress(err: Console) -> Progress | None:
    """A transient progress bar on standard error, or ``None`` off a terminal."""
    if not err.is_terminal:
        return None
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def _open(data: str, chunk_rows: int | None) -> TableSource:
    path = Path(data)
    try:
        if _kind(path) == "parquet":
            return fl.data.from_parquet(path, chunk_rows=chunk_rows)
        return fl.data.from_csv(path, chunk_rows=chunk_rows)
    except fl.FisherlabError as exc:
        raise CliError(str(exc)) from exc


def stream_glm(
    data: str,
    formula: str,
    family: str,
    link: str | None,
    *,
    trials: str | None,
    dropna: bool,
    allow_code: bool,
    chunk_rows: int | None,
    keep: tuple[str, ...],
    timer: Timer,
    weights: str | None = None,
    offset: str | None = None,
    exposure: str | None = None,
    options: Mapping[str, str] | None = None,
) -> Fitted:
    """Fit ``glm(family, link)`` by ``formula`` to the file ``data`` read in chunks (module docstring).

    ``trials``, ``weights``, ``offset`` and ``exposure`` are columns, as :func:`fisherlab.glm`
    takes them on a table source. ``keep`` (``--cluster``'s column) is read in one more pass,
    on the fitted rows. ``options``: the columns the command's options name
    (``{"--exposure": "years"}``), checked against the file's before the first pass.

    Raises:
        CliError: a bad file, formula or column (exit 2), a fit that did not converge (exit 3).
    """
    model = fl.models.glm(family, link)
    progress = _progress(timer.err)
    table = ProgressTable(_open(data, chunk_rows), progress)
    check_columns(options or {}, table.columns, data)
    shown = table.num_rows if table.num_rows is not None else "its"
    rows = f"{shown:,}" if isinstance(shown, int) else shown
    try:
        with timer.phase(
            "design", f"first pass over {data}: checking {rows} rows, fixing the design", progress
        ):
            plan = first_pass(
                table,
                formula,
                family=model.family,
                trials=trials,
                weights=weights,
                offset=offset,
                exposure=exposure,
                dropna=dropna,
                allow_code=allow_code,
                keep=keep,
                spelling=CLI_SPELLING,
            )
        with timer.phase(
            "fit", f"fitting a {model.family.value} GLM to {plan.n:,} rows, one pass a step", progress
        ):
            res = fit_plan(model, plan)
    except fl.FisherlabError as exc:
        code = EXIT_NOT_CONVERGED if isinstance(exc, fl.NotConvergedError) else EXIT_BAD_INPUT
        raise CliError(str(exc), code) from exc
    kept: dict[str, Any] = {}
    if keep:
        with timer.phase("read", f"reading {', '.join(keep)} on the fitted rows", progress):
            kept = _kept_columns(plan, keep)
    assert isinstance(res.data, StreamedData)
    replayed = " (the later passes read a scratch copy)" if res.data.source.replayed else ""
    chunks = f" in chunks of {table.chunk_rows:,} rows" if table.chunk_rows else ""
    res.notes.append(f"streamed: {data} read {table.passes} times{chunks}{replayed}")
    desc = describe(
        formula,
        model.family.value,
        model.link.value,
        trials=trials,
        weights=weights,
        offset=offset,
        exposure=exposure,
    )
    return glm_fitted(res, plan.columns, res.data.source, None, desc, plan.dropped, kept=kept)


def _kept_columns(plan: Any, keep: tuple[str, ...]) -> dict[str, Any]:
    """The ``keep`` columns on the rows the design kept (after ``--dropna``), one more pass."""
    import numpy as np

    parts: dict[str, list[Any]] = {c: [] for c in keep}
    for index, frame in enumerate(plan.table.tables([*plan.read, *keep])):
        design = plan.chunk_design(plan.table.chunk_label(index, frame), frame)
        rows = np.arange(len(frame)) if design.rows is None else np.asarray(design.rows)
        for c in keep:
            parts[c].append(frame[c].to_numpy()[rows])
    return {c: np.concatenate(v) for c, v in parts.items()}
