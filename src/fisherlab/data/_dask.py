r"""``fl.data.from_dask``, ``fl.data.from_arrays``: Dask collections and arrays beyond memory, in chunks.

Every quantity fisherlab computes over rows is a sum :math:`\sum_{i=1}^N g_i(\theta)` (the
empirical Fisher :math:`\sum_i s_i s_i^\top`, the observed information
:math:`-\sum_i \nabla^2 \ell_i`, the expected Fisher :math:`\sum_i J_i^\top I(\eta_i) J_i`, the
value, gradient and Hessian of a fit's objective), and a sum over rows is the sum of the sums of
any split of the rows into blocks. So data that do not fit in memory are read one block at a
time, and data spread over a cluster are summed where they lie.

- :func:`from_arrays`: a pair of arrays that can be sliced by rows without being read whole (a
  :class:`numpy.memmap`, ``np.load(path, mmap_mode="r")``, an h5py or zarr dataset, or NumPy
  arrays), read ``chunk_rows`` rows at a time. Memory: one chunk, plus one read ahead.
- :func:`from_dask`: a ``dask.dataframe.DataFrame`` (one chunk per partition) or a pair
  ``(y, X)`` of ``dask.array`` arrays chunked along rows only (one chunk per row block).
  Iterating the source computes one partition at a time in this process (memory: one
  partition, plus one read ahead). A one-pass sum (:meth:`DaskSource.reduce`, which
  ``fl.empirical_fisher``, ``fl.observed_information``, ``fl.fisher`` and a fit's passes use)
  runs on the cluster when there is a ``distributed`` client (given, or Dask's default one):
  each partition is checked and its terms computed on the worker that holds it, the partial
  sums are added in a tree on the cluster (:data:`SPLIT_EVERY` at a time), and only the final
  sums (a :math:`P \times P` matrix and a few vectors) come back. Without a client the
  partitions are summed one after another here.

Numbers: partial sums are float64 with compensated summation (Neumaier) in both paths, so a
source gives the in-memory results to rounding (well within 1e-10 relative; the tree adds the
same partial sums in another order). Errors are those of a pass in memory, of the same type and
message: the first failing chunk, in row order, named with the source row it starts at, even
when the partitions ran on several workers (a failing chunk does not stop the others there; the
failure is chosen where the partial sums meet). Warnings raised while a chunk is computed on a
worker are raised again here.

The function a pass applies to each chunk (``fn``) travels to the workers with cloudpickle,
with the :class:`~fisherlab.Model` inside it (which pickles without its compiled kernels:
:meth:`fisherlab.Model.__reduce__`); a worker compiles a kernel once per partition length and
keeps it for the later passes.

Performance: a pass costs the partitions' compute plus about a millisecond of scheduling per
task (one per partition, one per :data:`SPLIT_EVERY` partial sums), so partitions of some
10^4 to 10^5 rows suit (a chunk's kernel holds per-row intermediates: far larger partitions
page through memory). ``distributed`` starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``,
which turns off glibc's adaptive ``mmap`` threshold, so every large temporary array is mapped
and unmapped afresh (measured: a Poisson regression's pass 1.5x slower); start the cluster with
``dask.config.set({"distributed.nanny.pre-spawn-environ": env})``, ``env`` that dict without the
variable, to keep glibc's default (``benchmarks/bench_dask.py``).
"""

from __future__ import annotations

import copy
import math
import sys
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .._errors import (
    FisherlabArgumentError,
    FisherlabError,
    InvalidDataError,
    InvalidParameterError,
    ModelError,
)
from .._precision import float64, float64_methods, x64_scope
from ._chunks import PREFETCH, Chunks, CompensatedSum, Schema, check_columns, chunk_label, read_ahead
from ._parquet import default_chunk_rows
from ._prepare import Data, prepare_data

__all__ = ["SPLIT_EVERY", "ArraySource", "DaskSource", "IndexedTerm", "from_arrays", "from_dask"]

#: Partial sums added by one task of the tree reduction on a cluster (as ``dask.array``'s
#: reductions' ``split_every``): 16 partitions take 4 + 1 additions, two levels.
SPLIT_EVERY = 4


class IndexedTerm:
    """A per-chunk function of a pass that needs the chunk's position (a Monte-Carlo seed per chunk).

    Subclasses define :meth:`term`. :meth:`fisherlab.data.Chunks.reduce` calls the object as
    ``fn(data)`` once per chunk, in order, in one process: it counts the chunks itself. A
    source that computes elsewhere (:class:`DaskSource`) passes the partition's index.
    """

    def __init__(self) -> None:
        self._next = 0

    def __call__(self, data: Data) -> Sequence[Any]:
        index, self._next = self._next, self._next + 1
        return self.term(index, data)

    def term(self, index: int, data: Data) -> Sequence[Any]:
        raise NotImplementedError


# --------------------------------------------------------------------------- one chunk, anywhere


def _columns(frame: Any, names: list[str]) -> list[np.ndarray]:
    """Columns of a pandas partition as NumPy; a pandas missing value (``pd.NA``) as NaN."""
    out = []
    for name in names:
        column = frame[name]
        if getattr(column.dtype, "na_value", None) is not None and column.dtype.kind in "iufb":
            out.append(column.to_numpy(dtype=np.float64, na_value=np.nan))  # nullable Int64, Float64
        else:
            out.append(column.to_numpy())
    return out


class _FrameLayout:
    """How a DataFrame partition becomes ``(y, x)``: ``y`` one column, ``x`` columns side by side."""

    def __init__(self, y: str, x: list[str] | str | None) -> None:
        self.y, self.x = y, x

    def pair(self, frame: Any) -> tuple[np.ndarray, np.ndarray | None]:
        if self.x is None:
            return _columns(frame, [self.y])[0], None
        if isinstance(self.x, str):
            y, x = _columns(frame, [self.y, self.x])
            return y, x
        cols = _columns(frame, [self.y, *self.x])
        return cols[0], np.column_stack(cols[1:])


class _ArrayLayout:
    """How a row block of ``(y, X)`` arrays becomes ``(y, x)``."""

    def pair(self, y: Any, x: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
        return np.asarray(y), None if x is None else np.asarray(x)


class _Partial:
    """The sums of a run of consecutive partitions, as the tree reduction carries them.

    ``failure`` is the first chunk whose check or terms failed, ``(partition, stage, type,
    message)`` with stage 0 for its data and 2 for its terms; ``mismatch`` the first whose
    fields differ from the run's first, ``(partition, its schema, the first's)``; ``schema``
    is the run's first chunk's fields.
    """

    __slots__ = ("failure", "first", "mismatch", "rows", "schema", "sums", "warnings")

    def __init__(self, first: int) -> None:
        self.first = first
        self.failure: tuple[int, int, type[Exception], str] | None = None
        self.mismatch: tuple[int, Any, Any] | None = None
        self.rows = 0
        self.schema: Any = None
        self.sums: list[CompensatedSum] | None = None
        self.warnings: list[tuple[type[Warning], str]] = []


def _chunk_partial(index: int, layout: Any, fn: Callable[[Data], Sequence[Any]], *blocks: Any) -> _Partial:
    """Partition ``index``: its blocks as ``(y, x)``, checked (:func:`prepare_data`), and ``fn`` of it.

    Runs in float64 wherever it runs (a worker thread too). A failure of the data check or an
    :class:`~fisherlab.InvalidDataError` / :class:`~fisherlab.InvalidParameterError` of ``fn``
    is recorded, not raised, so that the first failing chunk in row order is the one reported.
    """
    part = _Partial(index)
    with x64_scope(True), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y, x = layout.pair(*blocks)
        if len(y) == 0:
            return part  # an empty partition (after a filter): no chunk
        try:
            data = prepare_data(y, x, transient=True)
        except InvalidDataError as exc:
            part.failure = (index, 0, type(exc), str(exc))
            return part
        schema = Schema()
        schema.check(index, data)
        part.schema = schema.first
        try:
            out = fn.term(index, data) if isinstance(fn, IndexedTerm) else fn(data)
        except (InvalidDataError, InvalidParameterError) as exc:
            part.failure = (index, 2, type(exc), str(exc))
            return part
        part.sums = []
        for value in out:
            total = CompensatedSum()
            total.add(value)
            part.sums.append(total)
        part.rows = data.n
    for w in caught:
        item = (w.category, str(w.message))
        if item not in part.warnings:
            part.warnings.append(item)
    return part


def _merged(*parts: _Partial) -> _Partial:
    """Consecutive runs' partials (in row order) as one: sums added with compensation, the
    first failure and the first change of fields kept. Returns a new object."""
    first = parts[0]
    out = _Partial(first.first)
    out.failure, out.mismatch, out.schema = first.failure, first.mismatch, first.schema
    out.rows, out.warnings = first.rows, list(first.warnings)
    if first.sums is not None:
        out.sums = [copy.deepcopy(s) for s in first.sums]  # its compensation carried on
    for part in parts[1:]:
        if out.mismatch is None:
            if out.schema is not None and part.schema is not None and part.schema != out.schema:
                out.mismatch = (part.first, part.schema, out.schema)
            elif part.mismatch is not None:
                out.mismatch = part.mismatch
        if out.schema is None:
            out.schema = part.schema
        if out.failure is None:
            out.failure = part.failure
        if part.sums is not None:
            if out.sums is None:
                out.sums = [CompensatedSum() for _ in part.sums]
            for total, s in zip(out.sums, part.sums, strict=True):
                total.add(s.value)
        out.rows += part.rows
        out.warnings += [w for w in part.warnings if w not in out.warnings]
    return out


def _length(*blocks: Any) -> int:
    return len(blocks[0])


# --------------------------------------------------------------------------- sources


@float64_methods
class DaskSource(Chunks):
    """A Dask DataFrame or a pair of Dask arrays as a source of ``(y, x)`` chunks; made by :func:`from_dask`.

    One chunk per partition (empty partitions are skipped). See the module docstring for where
    each pass runs, its memory and its numbers.

    Attributes:
        npartitions: the partitions (row blocks) of the collection.
        num_rows: the rows, where the collection knows them (Dask arrays), else ``None`` (a
            DataFrame's rows are counted by the first pass).
    """

    def __init__(
        self,
        parts: list[tuple[Any, ...]],
        layout: Any,
        *,
        what: str,
        rows: list[int] | None,
        client: Any = None,
        scheduler: str | None = None,
        collection: Any = None,
    ) -> None:
        super().__init__(self._pairs)
        self._collection = collection  # held: a persisted collection's data stay on the cluster
        self._parts, self._layout, self._what = parts, layout, what
        self._rows = rows
        self._client, self._scheduler = client, scheduler
        self.npartitions = len(parts)
        self.num_rows: int | None = None if rows is None else int(sum(rows))

    def __repr__(self) -> str:
        return f"fl.data.from_dask({self._what}, {self.npartitions} partitions)"

    # ------------------------------------------------------------------ where it runs
    def client(self) -> Any:
        """The ``distributed`` client a pass runs on: the one given to :func:`from_dask` (or
        connected to its ``scheduler``), else Dask's default client if there is one, else
        ``None`` (passes run here)."""
        if self._client is None and self._scheduler is not None:
            from distributed import Client

            self._client = Client(self._scheduler, set_as_default=False)
            weakref.finalize(self, self._client.close)
        if self._client is not None:
            if getattr(self._client, "status", "running") in ("closing", "closed"):
                raise InvalidDataError(
                    "the Dask client this source was made with is closed; keep it open while the "
                    "source, and what was computed from it (a fit's covariances read it again), are in use"
                )
            return self._client
        distributed = sys.modules.get("distributed")  # no client exists unless it was imported
        if distributed is None:
            return None
        try:
            return distributed.default_client()
        except ValueError:  # none
            return None

    def _compute(self, index: int, part: tuple[Any, ...], client: Any) -> tuple[Any, ...]:
        import dask

        try:
            if client is not None:
                return tuple(client.gather(client.compute(list(part))))
            return tuple(dask.compute(*part))
        except FisherlabError:
            raise
        except Exception as exc:  # Dask's own: a lost dependency, a worker that died, a read error
            raise InvalidDataError(
                f"partition {index} of the Dask collection could not be computed "
                f"({type(exc).__name__}: {exc}); a collection persisted on a cluster that has since "
                "closed cannot be read again: keep the client open while the source, and what was "
                "computed from it (a fit's covariances read it again), are in use"
            ) from exc

    def _partitions(self) -> Iterator[tuple[int, tuple[Any, ...]]]:
        client = self.client()
        for index, part in enumerate(self._parts):
            yield index, self._compute(index, part, client)

    def _pairs(self) -> Iterator[tuple[Any, Any]]:
        for _, blocks in self._partitions():
            y, x = self._layout.pair(*blocks)
            if len(y):
                yield y, x

    # ------------------------------------------------------------------ one pass
    def reduce(self, fn: Callable[[Data], Sequence[Any]]) -> tuple[list[np.ndarray], int]:
        """One pass: ``fn`` of every chunk, each of its outputs summed over the chunks.

        On a cluster (:meth:`client`) each partition's check and ``fn`` run on the worker that
        holds it and the sums meet in a tree there; ``fn`` (with the model inside it) must
        pickle with cloudpickle. Without a client, one partition after another here (memory:
        one partition, plus one read ahead). Numbers, errors and warnings as in memory (see
        the module docstring).

        Returns:
            The sums, float64, one per output of ``fn``, and the number of rows.

        Raises:
            InvalidDataError, InvalidParameterError: the first failing chunk's, prefixed with
                its label (``"chunk 2 (from row 2048): ..."``), as a pass in memory raises them.
        """
        client = self.client()
        seen: list[int] | None = None  # rows of the partitions a pass here has read
        if client is not None:
            total = self._on_cluster(client, fn)
        else:
            total, seen = self._here(fn)
        for category, message in total.warnings:
            warnings.warn(message, category, stacklevel=2)
        self._raise_first_failure(total, client, seen)
        if total.sums is None:
            raise InvalidDataError("the data source gave no chunks: it needs at least one (y, x) chunk")
        return [s.value for s in total.sums], total.rows

    def _here(self, fn: Callable[[Data], Sequence[Any]]) -> tuple[_Partial, list[int]]:
        total: _Partial | None = None
        seen = []
        for index, blocks in read_ahead(self._partitions(), PREFETCH):
            part = _chunk_partial(index, self._layout, fn, *blocks)
            seen.append(part.rows)
            total = part if total is None else _merged(total, part)
            if total.failure is not None or total.mismatch is not None:
                break  # the first failure in row order: a pass here stops at it
        assert total is not None  # a collection has at least one partition
        return total, seen

    def _on_cluster(self, client: Any, fn: Callable[[Data], Sequence[Any]]) -> _Partial:
        import dask

        try:
            shipped = client.scatter(fn, hash=False)  # once, however many partitions
        except Exception as exc:  # cloudpickle's errors: a lock, an open file, a C object
            raise ModelError(
                f"a pass on the cluster sends {type(fn).__name__} (the model and its function) to the "
                f"workers with cloudpickle, which failed ({type(exc).__name__}: {exc}); the model "
                "function must not hold unpicklable objects (locks, open files, clients), or make "
                "the source without a client to compute here"
            ) from exc
        level = [
            dask.delayed(_chunk_partial, pure=False)(index, self._layout, shipped, *part)
            for index, part in enumerate(self._parts)
        ]
        while len(level) > 1:
            level = [
                dask.delayed(_merged, pure=False)(*level[k : k + SPLIT_EVERY])
                for k in range(0, len(level), SPLIT_EVERY)
            ]
        return client.compute(level[0]).result()  # type: ignore[no-any-return]

    def _position(self, index: int, client: Any, seen: list[int] | None) -> tuple[int, int]:
        """Partition ``index``'s chunk number and first row, counted as a pass here counts them:
        the non-empty partitions before it, and their rows."""
        if self._rows is not None:
            before = self._rows[:index]
        elif seen is not None:
            before = seen[:index]
        else:  # a DataFrame's partition lengths, computed on the cluster for an error only
            import dask

            lengths = [dask.delayed(_length, pure=True)(*p) for p in self._parts[:index]]
            before = list(client.gather(client.compute(lengths)))
        return sum(1 for n in before if n), int(sum(before))

    def _raise_first_failure(self, total: _Partial, client: Any, seen: list[int] | None) -> None:
        failure, mismatch = total.failure, total.mismatch
        if mismatch is not None and (failure is None or (mismatch[0], 1) < failure[:2]):
            index, schema, first = mismatch
            number, _ = self._position(index, client, seen)
            raise InvalidDataError(
                f"{chunk_label(number)}: its fields, trailing shapes or dtypes differ from chunk 0's "
                f"({schema} vs {first}); every chunk needs the same columns"
            )
        if failure is not None:
            index, _, kind, message = failure
            raise kind(f"{chunk_label(*self._position(index, client, seen))}: {message}")


@float64_methods
class ArraySource(Chunks):
    """A pair of row-sliceable arrays read ``chunk_rows`` rows at a time; made by :func:`from_arrays`.

    Attributes:
        y, x: the arrays (``x`` may be ``None``).
        chunk_rows: rows per chunk (the last may be shorter).
        num_rows: rows of ``y``.
    """

    def __init__(self, y: Any, x: Any, chunk_rows: int) -> None:
        super().__init__(self._slices)
        self.y, self.x, self.chunk_rows = y, x, chunk_rows
        self.num_rows = int(y.shape[0])

    def __repr__(self) -> str:
        return (
            f"fl.data.from_arrays({type(self.y).__name__}{tuple(self.y.shape)}, chunk_rows={self.chunk_rows})"
        )

    def _slices(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        for start in range(0, self.num_rows, self.chunk_rows):
            stop = min(start + self.chunk_rows, self.num_rows)
            # np.array reads the rows of a memory-mapped file (or a dataset) into memory: one chunk
            y = np.array(self.y[start:stop])
            yield y, None if self.x is None else np.array(self.x[start:stop])


# --------------------------------------------------------------------------- constructors


def _rows_of(array: Any, name: str) -> int:
    shape = getattr(array, "shape", None)
    if shape is None or not hasattr(array, "__getitem__"):
        raise FisherlabArgumentError(
            f"from_arrays: {name} must be an array that can be sliced by rows (NumPy, a memmap, "
            f"np.load(..., mmap_mode='r'), an h5py or zarr dataset); got {type(array).__name__}"
        )
    if len(shape) == 0:
        raise InvalidDataError(f"from_arrays: {name} is a scalar; observations need a leading axis of rows")
    return int(shape[0])


@float64
def from_arrays(y: Any, x: Any = None, chunk_rows: int | None = None) -> ArraySource:
    """Arrays that need not fit in memory (a memory-mapped file) as a streamed source of ``(y, x)`` chunks.

    Rows ``[k c, (k+1) c)`` are read (``np.array`` of a slice: for a memmap, only those rows'
    pages) and checked one chunk at a time, so memory is one chunk of ``c = chunk_rows`` rows
    plus one read ahead, whatever the arrays' size. Pass the source where ``y`` goes, ``x``
    omitted: sums over rows are accumulated in float64 with compensated summation and equal
    the in-memory results to rounding (within 1e-10 relative).

    Args:
        y: observations, leading axis N: any array sliceable by rows (NumPy,
            :class:`numpy.memmap`, ``np.load(path, mmap_mode="r")``, h5py, zarr).
        x: covariates with the same N rows (``(N,)`` or ``(N, k)``), or ``None``.
        chunk_rows: rows per chunk; default as :func:`~fisherlab.data.from_parquet`'s (8 MiB of
            float64 columns, less where free memory is short).

    Raises:
        FisherlabArgumentError: ``y`` or ``x`` is not a sliceable array; a bad ``chunk_rows``.
        InvalidDataError: ``y`` and ``x`` have different rows; no rows.

    Examples:
        >>> import numpy as np, tempfile, os, fisherlab as fl
        >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
        >>> np.save(path, np.ones((5, 2)))
        >>> src = fl.data.from_arrays(np.arange(5.0), np.load(path, mmap_mode="r"), chunk_rows=2)
        >>> [c[2].shape for c in src], src.num_rows
        ([(2, 2), (2, 2), (1, 2)], 5)
    """
    n = _rows_of(y, "y")
    if x is not None and _rows_of(x, "x") != n:
        raise InvalidDataError(
            f"from_arrays: rows of y and x disagree: y has {n}, x has {x.shape[0]}; every field needs "
            "the same N rows"
        )
    if n == 0:
        raise InvalidDataError("from_arrays: no rows: y and x are empty")
    if chunk_rows is None:
        width = math.prod(y.shape[1:]) + (0 if x is None else math.prod(x.shape[1:]))
        chunk_rows = default_chunk_rows(int(width))
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise FisherlabArgumentError(f"from_arrays: chunk_rows must be an integer >= 1, got {chunk_rows!r}")
    return ArraySource(y, x, int(chunk_rows))


def _is_frame(obj: Any) -> bool:
    return type(obj).__module__.startswith("dask") and hasattr(obj, "columns") and hasattr(obj, "to_delayed")


def _frame_parts(obj: Any, y: Any, x: Any) -> tuple[list[tuple[Any, ...]], _FrameLayout, str]:
    if not isinstance(y, str):
        raise FisherlabArgumentError(
            "from_dask: name the response column of the DataFrame, y='...', and the covariates, "
            f"x=['...', ...] (got y={y!r})"
        )
    cols: list[str] | str | None = x if (x is None or isinstance(x, str)) else list(x)
    wanted = [y] + ([] if cols is None else [cols] if isinstance(cols, str) else cols)
    available = [str(c) for c in obj.columns]
    check_columns("from_dask", wanted, available, "the DataFrame")
    frame = obj if available == wanted else obj[wanted]  # projection: only these columns are read
    parts = [(d,) for d in frame.to_delayed()]
    return parts, _FrameLayout(y, cols), f"DataFrame, y={y!r}, x={cols!r}"


def _array_parts(obj: tuple[Any, ...]) -> tuple[list[tuple[Any, ...]], list[int], str]:
    import dask.array as da

    if len(obj) not in (1, 2) or not isinstance(obj[0], da.Array):
        raise FisherlabArgumentError(
            "from_dask: pass a dask DataFrame with y= and x=, or a pair (y, X) of dask arrays; "
            f"got a {type(obj).__name__} of {[type(a).__name__ for a in obj]}"
        )
    arrays = {"y": obj[0]} | ({} if len(obj) == 1 or obj[1] is None else {"X": obj[1]})
    rows = arrays["y"].chunks[0] if arrays["y"].ndim else ()
    for name, a in arrays.items():
        if not isinstance(a, da.Array):
            raise FisherlabArgumentError(
                f"from_dask: {name} must be a dask array too, got {type(a).__name__}"
            )
        if a.ndim == 0:
            raise InvalidDataError(f"from_dask: {name} is a scalar; observations need a leading axis of rows")
        if any(math.isnan(c) for c in a.chunks[0]):
            raise InvalidDataError(
                f"from_dask: {name}'s row blocks have unknown sizes; call "
                f"{name} = {name}.compute_chunk_sizes() first"
            )
        if any(len(c) != 1 for c in a.chunks[1:]):
            whole = ", ".join(f"{k}: -1" for k in range(1, a.ndim))
            raise InvalidDataError(
                f"from_dask: {name} is chunked along its columns too (chunks {a.chunks}); a chunk must "
                f"hold whole rows: rechunk along rows only, {name} = {name}.rechunk({{{whole}}})"
            )
        if a.chunks[0] != rows:
            raise InvalidDataError(
                f"from_dask: y and {name} have different row blocks ({rows} vs {a.chunks[0]}); rechunk one "
                f"like the other: {name} = {name}.rechunk({{0: y.chunks[0]}})"
            )
    # unoptimised: an optimised graph of a persisted array drops the futures that hold its blocks
    blocks = [a.to_delayed(optimize_graph=False).reshape(len(rows)) for a in arrays.values()]
    parts = list(zip(*blocks, strict=True))
    shapes = ", ".join(f"{k}{tuple(a.shape)}" for k, a in arrays.items())
    return parts, [int(r) for r in rows], f"dask arrays {shapes}"


@float64
def from_dask(
    obj: Any,
    y: str | None = None,
    x: Sequence[str] | str | None = None,
    *,
    client: Any = None,
    scheduler: str | None = None,
) -> DaskSource:
    """A Dask DataFrame, or a pair of Dask arrays, as a source of ``(y, x)`` chunks that sums on a cluster.

    One chunk per partition (row block). Pass it where ``y`` goes, ``x`` omitted
    (``fl.empirical_fisher``, ``fl.observed_information``, ``fl.loglik``, ``fl.score``, a fit),
    or as ``x`` of ``fl.fisher``. A sum over rows with a ``distributed`` client runs on the
    cluster: each partition on the worker that holds it (persist the collection first to read
    it once: ``df = client.persist(df)``), the partial sums added in a tree there, only the final
    :math:`P \\times P` result sent back; memory here is that result. Without a client the
    partitions are computed here one at a time (memory: one partition plus one read ahead). In
    both cases the sums are float64 with compensated summation and equal the in-memory results to
    rounding (within 1e-10 relative), and errors are the in-memory ones, naming the chunk and the
    source row it starts at. Per-row results (``fl.loglik``, ``fl.score``) are computed here, one
    partition at a time. The model travels to the workers with cloudpickle (without its
    compiled kernels, which each worker compiles once).

    Args:
        obj: a ``dask.dataframe.DataFrame``, or ``(y, X)`` (or ``(y,)``) of ``dask.array``
            arrays with the same row blocks, each chunked along rows only.
        y: the response column (DataFrame only).
        x: the covariate columns, in order (``(rows, k)``), one name (``(rows,)``), or none
            (DataFrame only).
        client: a ``distributed.Client`` the passes run on; default Dask's default client at the
            time of each pass, if there is one.
        scheduler: instead of ``client``, the address of a running scheduler
            (``"tcp://host:8786"``); a client is connected on the first pass.

    Raises:
        FisherlabArgumentError: ``obj`` is neither; no ``y`` for a DataFrame; ``client`` and
            ``scheduler`` both given.
        InvalidDataError: a column that is not in the DataFrame; arrays chunked along their
            columns, with different row blocks or unknown block sizes (the message says how to
            rechunk).

    Examples:
        >>> import numpy as np, dask.array as da, fisherlab as fl
        >>> X = da.from_array(np.ones((6, 2)), chunks=(2, 2))
        >>> src = fl.data.from_dask((da.arange(6.0, chunks=2), X))
        >>> src.npartitions, src.num_rows
        (3, 6)
        >>> fl.data.from_dask((da.arange(6.0, chunks=2), X.rechunk((2, 1))))
        Traceback (most recent call last):
        ...
        fisherlab._errors.InvalidDataError: from_dask: X is chunked along its columns too ...
    """
    if client is not None and scheduler is not None:
        raise FisherlabArgumentError("from_dask: give client= or scheduler=, not both")
    if client is not None and not (hasattr(client, "compute") and hasattr(client, "scatter")):
        raise FisherlabArgumentError(
            f"from_dask: client must be a distributed.Client, got {type(client).__name__}"
        )
    if scheduler is not None and not isinstance(scheduler, str):
        raise FisherlabArgumentError(f"from_dask: scheduler must be an address string, got {scheduler!r}")
    if _is_frame(obj):
        parts, layout, what = _frame_parts(obj, y, x)
        return DaskSource(
            parts, layout, what=what, rows=None, client=client, scheduler=scheduler, collection=obj
        )
    if isinstance(obj, (tuple, list)):
        if y is not None or x is not None:
            raise FisherlabArgumentError(
                "from_dask: y= and x= name DataFrame columns; a pair (y, X) of arrays needs neither"
            )
        array_parts, rows, what = _array_parts(tuple(obj))
        return DaskSource(
            array_parts, _ArrayLayout(), what=what, rows=rows, client=client, scheduler=scheduler
        )
    raise FisherlabArgumentError(
        "from_dask: expected a dask DataFrame (with y= and x=) or a pair (y, X) of dask arrays; "
        f"got {type(obj).__name__}"
    )
