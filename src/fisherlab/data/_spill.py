r"""A source's chunks kept on scratch disk, so that the passes of a fit after the first read raw arrays.

A Newton fit on a chunk source reads it once per iterate, and a source that is costly to read
(a Parquet file: decompression and decoding; a table with a formula: the design matrix built
per chunk) would spend most of each pass reading. A source whose ``spill`` attribute is true
(:class:`~fisherlab.data.ParquetSource`, the design of :func:`fisherlab.glm` on a table) and on
which :meth:`fisherlab.data.Chunks.keep_passes` was called (``fl.fit`` does) writes the chunks
of its next full pass, as they are read, to an anonymous scratch file, and every later pass
reads them back from it: the bytes of the float64 arrays, read into fresh buffers with
``preadv``. Memory stays one chunk (the file is in the operating system's page cache, not in
the process); the disk holds the source's rows once as raw arrays, while the source object
lives (the fit's result holds it; the file is deleted when the source is collected, when the
process exits, or when it is interrupted: it never has a name).

Where (``FISHERLAB_SCRATCH``, an environment variable): a directory, or ``off`` to read the
source at every pass. By default ``$TMPDIR`` if set, else ``/var/tmp`` (disk, where ``/tmp``
may be memory), else the system's temporary directory; a directory on a memory file system
(``tmpfs``, ``ramfs``) is not used unless named explicitly. A pass records only while the disk
keeps :data:`RESERVE` bytes free after each chunk; short of that, or on any write error, the
copy is dropped and every pass reads the source, as without it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import jax
import numpy as np

from .._errors import InvalidOptionError

__all__ = ["ALIGN", "RESERVE", "Recorder", "Scratch", "aligned_empty", "scratch_directory"]

#: Free bytes a recording leaves on the scratch disk (it stops short of them).
RESERVE = 2 * 2**30
#: File systems in memory: a copy there would take memory, not disk.
MEMORY_FILE_SYSTEMS = frozenset({"tmpfs", "ramfs"})
OFF = frozenset({"off", "0", "no", "none", "false"})


def _file_system(path: Path) -> str | None:
    """The type of the file system holding ``path`` (``/proc/self/mounts``), ``None`` off Linux."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    best, kind = "", None
    target = str(path.resolve())
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def scratch_directory() -> Path | None:
    """Where scratch copies go (see the module docstring), or ``None`` for none.

    Raises:
        InvalidOptionError: ``FISHERLAB_SCRATCH`` names something that is not a directory.
    """
    named = os.environ.get("FISHERLAB_SCRATCH")
    if named is not None and named.strip().lower() in OFF:
        return None
    if named:
        path = Path(named).expanduser()
        if not path.is_dir():
            raise InvalidOptionError(
                f"FISHERLAB_SCRATCH={named!r} is not a directory: name a directory on a disk with room "
                "for the data, or set it to 'off' to read the source at every pass"
            )
        return path
    for candidate in (os.environ.get("TMPDIR"), "/var/tmp", tempfile.gettempdir()):
        if not candidate:
            continue
        path = Path(candidate)
        if path.is_dir() and os.access(path, os.W_OK) and _file_system(path) not in MEMORY_FILE_SYSTEMS:
            return path
    return None


#: Bytes to which chunk buffers are aligned: JAX on CPU then computes on a NumPy array in place
#: (``device_put`` aliases an aligned buffer) instead of copying it for each kernel.
ALIGN = 64


def aligned_empty(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """``np.empty(shape, dtype)`` whose data start at a multiple of :data:`ALIGN` bytes."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(size + ALIGN, dtype=np.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start : start + size].view(dtype).reshape(shape)


def _numeric(leaf: Any) -> bool:
    return isinstance(leaf, np.ndarray) and leaf.dtype.kind in "biuf"


class Scratch:
    """The scratch copy of one source's chunks (see the module docstring).

    ``recorder()`` gives the writer of a pass (at most one at a time, until one completes);
    once one has, ``complete`` is true and ``replay()`` gives the chunks back.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._file: IO[bytes] | None = None
        self._index: list[tuple[Any, list[tuple[tuple[int, ...], np.dtype, int]]]] = []
        self._lock = threading.Lock()
        self._busy = False
        self.complete = False
        self.failed = False

    @classmethod
    def open(cls) -> Scratch | None:
        directory = scratch_directory()
        return None if directory is None else cls(directory)

    def recorder(self) -> Recorder | None:
        """The writer of this pass's chunks, or ``None`` (recorded already, being recorded, given up)."""
        with self._lock:
            if self.complete or self.failed or self._busy:
                return None
            self._busy = True
        return Recorder(self)

    def _release(self, ok: bool) -> None:
        with self._lock:
            self._busy = False
            if ok:
                self.complete = True
            else:
                self._index = []
                if self._file is not None:
                    self._file.close()
                    self._file = None

    def _fd(self) -> int:
        if self._file is None:
            self._file = tempfile.TemporaryFile(dir=self.directory, prefix="fisherlab-spill-")
            weakref.finalize(self, self._file.close)  # the disk is freed with the source
        return self._file.fileno()

    def replay(self) -> Iterator[tuple[int, Any, Any]]:
        """The recorded pass: ``(index, y, x)`` per chunk, read back from the file."""
        assert self._file is not None
        fd = self._file.fileno()
        for index, (treedef, leaves) in enumerate(self._index):
            arrays = []
            for shape, dtype, offset in leaves:
                array = aligned_empty(shape, dtype)
                _read_into(fd, array, offset)
                arrays.append(array)
            y, x = jax.tree_util.tree_unflatten(treedef, arrays)
            yield index, y, x


class Recorder:
    """Writes one pass's chunks to a :class:`Scratch` (``add`` per chunk, then ``finish``)."""

    def __init__(self, scratch: Scratch) -> None:
        self.scratch = scratch
        self.live = True
        self._offset = 0

    def add(self, y: Any, x: Any) -> None:
        """Append one chunk; on a leaf that is not a numeric NumPy array, a disk short of
        :data:`RESERVE` or a write error, the copy is dropped (the pass goes on)."""
        if not self.live:
            return
        leaves, treedef = jax.tree_util.tree_flatten((y, x))
        if not all(_numeric(a) for a in leaves):
            self.abandon(give_up=True)
            return
        arrays = [np.ascontiguousarray(a) for a in leaves]
        size = sum(a.nbytes for a in arrays)
        try:
            fd = self.scratch._fd()
            if shutil.disk_usage(self.scratch.directory).free - size < RESERVE:
                self.abandon(give_up=True)
                return
            entries = []
            for a in arrays:
                _write_all(fd, a, self._offset)
                entries.append((a.shape, a.dtype, self._offset))
                self._offset += a.nbytes
        except OSError:
            self.abandon(give_up=True)
            return
        self.scratch._index.append((treedef, entries))

    def finish(self) -> None:
        """The pass is complete: later passes replay it."""
        if self.live:
            self.live = False
            self.scratch._release(True)

    def abandon(self, give_up: bool = False) -> None:
        """Drop the copy: of a pass left incomplete (the next full pass records), or, with
        ``give_up``, for good (no room, a write error, data that are not arrays)."""
        if self.live:
            self.live = False
            self.scratch.failed = self.scratch.failed or give_up
            self.scratch._release(False)


def _write_all(fd: int, array: np.ndarray, offset: int) -> None:
    view = array.reshape(-1).view(np.uint8).data
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)


def _read_into(fd: int, array: np.ndarray, offset: int) -> None:
    view = array.reshape(-1).view(np.uint8).data
    done = 0
    while done < len(view):
        got = os.preadv(fd, [view[done:]], offset + done)
        if got <= 0:
            raise OSError(f"the scratch copy of the data ended early (at byte {offset + done})")
        done += got
