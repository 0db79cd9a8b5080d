"""Kernels of built-in models kept between processes as exported StableHLO (:mod:`jax.export`).

JAX's persistent compilation cache (:mod:`fisherlab._config`) saves the compile step of a
second run, not the tracing and lowering before it, which for the kernels of a fit, its
summary and :func:`~fisherlab.check` cost a few seconds in every fresh process. A model
whose function is fully described by a string, its *token* (``ModelState.token``, set by
the built-in models such as :class:`~fisherlab.models.GLM`), therefore keeps its kernels on
disk as :func:`jax.export.export` artifacts: the first process traces and lowers a kernel
once, serialises it, and compiles it; later processes deserialise it (milliseconds) and
compile ``jax.jit(exported.call)``, which the compilation cache then answers.

The file of a kernel is named by a SHA-256 of

- the *environment*: the text of every fisherlab source file (so an edit, an upgrade or an
  editable checkout on another commit never meets a stale kernel), the versions of JAX,
  jaxlib and NumPyro, the JAX settings that change what is traced (64-bit mode, dtype and
  rank promotion, matmul precision, PRNG implementation), read where the kernel is called (64-bit
  mode is thread-local: fisherlab turns it on around its own calls), and the backend platform;
- the model's token and the kernel's name, written out by :func:`stable_text`: strings,
  numbers, tuples, tree definitions and module-level functions only. A name holding
  anything else (a process-local id wrapped in :class:`Local`, a closure, a bound method)
  has no stable text, and its kernel is an ordinary ``jax.jit`` kept in memory only;
- the structure, shapes, dtypes and weak types of the call's arguments.

Any failure of the store (a kernel :func:`jax.export.export` cannot express, such as one
with host callbacks; an unreadable, unwritable or corrupt file) falls back to the ordinary
``jax.jit`` of the same function, so the store changes how long a call takes, never what it
returns or raises. Files are written atomically (a temporary file, then :func:`os.replace`).
The store lives in ``kernels/`` beside JAX's cache (:func:`fisherlab._config.kernel_dir`) and
is off with ``FISHERLAB_NO_CACHE=1``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import jax

from .._config import kernel_dir

__all__ = ["Local", "StoredKernel", "environment_digest", "stable_text", "stored_kernel", "trace_settings"]

_ENVIRONMENT: dict[str, str] = {}


class Local:
    """A part of a kernel name that means something in this process only (an ``id``).

    Hashable and comparable like its value, so the in-memory cache works as before; it has no
    :func:`stable_text`, so a kernel named with it is never written to disk.
    """

    __slots__ = ("value",)

    def __init__(self, value: Hashable) -> None:
        self.value = value

    def __hash__(self) -> int:
        return hash((Local, self.value))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Local) and other.value == self.value


def stable_text(name: Any) -> str | None:
    """The same text for the same ``name`` in every process, or ``None`` when there is none.

    Strings, numbers, booleans and ``None`` by ``repr``; tuples and lists element by
    element; tree definitions by ``str``; functions defined at module level by their module
    and qualified name (their code is in the environment digest). Anything else, closures,
    bound methods, :class:`Local` values included, has none.

    Examples:
        >>> from fisherlab.model._stored import Local, stable_text
        >>> stable_text(("fit_hessian", 3, None))
        "('fit_hessian', 3, None)"
        >>> stable_text(("fit_hessian", Local(140230))) is None
        True
    """
    if name is None or isinstance(name, (str, int, float, bool)):
        return repr(name)
    if isinstance(name, (tuple, list)):
        parts = [stable_text(part) for part in name]
        return None if any(p is None for p in parts) else "(" + ", ".join(str(p) for p in parts) + ")"
    if isinstance(name, jax.tree_util.PyTreeDef):
        return str(name)
    if callable(name) and not hasattr(name, "__self__"):
        module, qualname = getattr(name, "__module__", None), getattr(name, "__qualname__", None)
        if isinstance(module, str) and isinstance(qualname, str) and "<" not in qualname:
            return f"{module}.{qualname}"
    return None


#: The JAX settings that change what is traced. Each is read where the kernel is called: 64-bit
#: mode is thread-local (``jax.enable_x64``, entered by fisherlab's public calls, and left off by
#: :func:`fisherlab.curvature` for float32 parameters), so ``jax.config`` gives the value in force.
_TRACE_FLAGS = (
    "jax_enable_x64",
    "jax_numpy_dtype_promotion",
    "jax_numpy_rank_promotion",
    "jax_default_matmul_precision",
    "jax_default_prng_impl",
)


def trace_settings() -> tuple[str, ...]:
    """The values in force, in this thread, of the JAX settings that shape a trace (:data:`_TRACE_FLAGS`)."""
    return tuple(str(getattr(jax.config, flag, None)) for flag in _TRACE_FLAGS)


def _source_digest() -> str:
    """SHA-256 of the text of every fisherlab source file and the versions of JAX, jaxlib and NumPyro."""
    digest = _ENVIRONMENT.get("source")
    if digest is None:
        import jaxlib
        import numpyro

        h = hashlib.sha256()
        root = Path(__file__).resolve().parents[1]
        for path in sorted(root.rglob("*.py")):
            h.update(path.relative_to(root).as_posix().encode())
            h.update(path.read_bytes())
        h.update(repr((jax.__version__, getattr(jaxlib, "__version__", "?"), numpyro.__version__)).encode())
        digest = _ENVIRONMENT["source"] = h.hexdigest()
    return digest


def environment_digest() -> str:
    """SHA-256 of fisherlab's source text, the library versions and the JAX settings that shape a trace.

    The settings are those in force where it is called (:func:`trace_settings`): a kernel traced in
    float64 and one traced in float32 have different digests, so neither is ever read for the other.
    """
    platform = jax.default_backend()
    key = repr((platform, trace_settings()))
    digest = _ENVIRONMENT.get(key)
    if digest is None:
        h = hashlib.sha256(_source_digest().encode())
        h.update(key.encode())
        digest = _ENVIRONMENT[key] = h.hexdigest()
    return digest


def _signature(args: tuple[Any, ...]) -> tuple[Any, tuple[tuple[Any, ...], ...]]:
    """Tree structure and ``(shape, dtype, weak type)`` of every leaf: what a compiled call depends on."""
    leaves, treedef = jax.tree_util.tree_flatten(args)
    avals = []
    for leaf in leaves:
        aval = jax.typeof(leaf)
        avals.append((tuple(aval.shape), str(aval.dtype), bool(getattr(aval, "weak_type", False))))
    return treedef, tuple(avals)


class StoredKernel:
    """``jax.jit(fn)``, with its trace kept on disk per argument signature (module docstring)."""

    def __init__(self, fn: Callable[..., Any], text: str, directory: str) -> None:
        self._fn = fn
        self._text = text
        self._directory = directory
        self._calls: dict[Any, Callable[..., Any]] = {}
        self._plain: Callable[..., Any] | None = None

    def _jit(self) -> Callable[..., Any]:
        if self._plain is None:
            self._plain = jax.jit(self._fn)
        return self._plain

    def __call__(self, *args: Any) -> Any:
        try:
            signature = _signature(args)
        except TypeError:  # a leaf JAX cannot type: jit says what is wrong with it
            return self._jit()(*args)
        key = (trace_settings(), signature)  # 64-bit mode is per thread: part of the key
        call = self._calls.get(key)
        if call is None:
            call = self._calls[key] = self._load(signature, args)
        return call(*args)

    def path(self, signature: Any) -> Path:
        """The file of this kernel for one argument signature."""
        treedef, avals = signature
        key = repr((environment_digest(), self._text, str(treedef), avals))
        return Path(self._directory) / (hashlib.sha256(key.encode()).hexdigest() + ".jaxexport")

    def _load(self, signature: Any, args: tuple[Any, ...]) -> Callable[..., Any]:
        from jax import export

        path = self.path(signature)
        try:
            exported = export.deserialize(bytearray(path.read_bytes()))
        except Exception:  # absent, unreadable or written by something else: export it again
            exported = None
        if exported is None:
            try:
                exported = export.export(jax.jit(self._fn))(*args)
            except Exception:  # not exportable (or the trace fails: jit raises it again)
                return self._jit()
            try:
                blob = bytes(exported.serialize())
            except Exception:  # serialisation unavailable: this process still uses the trace
                blob = b""
            if blob:
                _write(path, blob)
        return jax.jit(exported.call)


def _write(path: Path, blob: bytes) -> None:
    """Write ``blob`` to ``path`` atomically; a store that cannot be written is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass


def stored_kernel(fn: Callable[..., Any], token: str | None, name: Hashable) -> StoredKernel | None:
    """A :class:`StoredKernel` for kernel ``name`` of the model with ``token``, or ``None``.

    ``None`` (use a plain ``jax.jit``) when the model has no token, the name has no
    :func:`stable_text`, or the store is off (``FISHERLAB_NO_CACHE=1``).
    """
    if token is None:
        return None
    text = stable_text(name)
    directory = kernel_dir()
    if text is None or directory is None:
        return None
    return StoredKernel(fn, f"{token}\n{text}", directory)
