"""Per-model state: what a :class:`~fisherlab.Model` keeps between calls, in named fields.

A model is called many times with the same shapes (every iteration of a fit, every
profile point, a ``cov`` after the fit), so it keeps:

- ``kernels``: jit-compiled functions by name (``"score"``, ``"fisher_exact"``, the fit's
  objective for one parameter structure...), compiled once and reused;
- ``backend``: the derivative source chosen for it (:mod:`fisherlab.backends`), decided once;
  ``"auto"`` probes the function on the first call and the choice stays;
- ``routes``: the expected-Fisher route per (method, parameter and covariate structure);
- ``evaluations``: the numeric backend's values of the model function at parameter points
  (:class:`EvaluationCache`, bounded in bytes, shared by every data set and role);
- ``pools``: executor pools made for ``executor="threads"``/``"processes"``, one per kind,
  shut down when the model is garbage-collected;
- ``token``: for a built-in model whose function a string fully describes (``GLM(...)``'s
  ``repr``), that string; its kernels are then also kept on disk between processes
  (:mod:`fisherlab.model._stored`). ``None`` for a user's function.

Only :mod:`fisherlab.backends` writes these fields (and a built-in model its ``token``);
callers above it never read them.

A pickled model (a Dask worker receives it with cloudpickle) leaves its state behind: none of it
is data of the model, and compiled kernels, pools and locks do not travel. The copy gets a state
from :func:`unpickled_state`: empty where the model first arrives in a process, then shared by
every later copy of the same model there (a fit ships its model once per pass), so a worker
compiles each kernel once, not once per pass.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import jax
import numpy as np

from ._stored import stored_kernel

__all__ = ["CACHE_BYTES", "UNPICKLED_MODELS", "EvaluationCache", "ModelState", "unpickled_state"]

#: Bytes of per-row values a numeric model keeps in its evaluation cache (least recently used dropped).
CACHE_BYTES = 256 * 2**20

#: Models unpickled in one process whose states are kept for their later copies (least recently
#: used dropped).
UNPICKLED_MODELS = 16


class EvaluationCache:
    """A least-recently-used map ``bytes -> values``, bounded in bytes (:data:`CACHE_BYTES`).

    One lives on each numeric model; :meth:`view` gives the part of it for one data set and
    one function (keys prefixed by a digest of ``y`` and ``x`` and the function's role), so
    identical evaluations are shared across calls (the score, the Hessian, the Fisher, the
    iterations of a fit and a later :meth:`~fisherlab.FitResult.cov` at the same parameters)
    while all data sets together stay within one budget.
    """

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[bytes, Any] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _size(value: Any) -> int:
        return int(sum(np.asarray(leaf).nbytes for leaf in jax.tree_util.tree_leaves(value))) + 64

    def get(self, key: bytes, default: Any = None) -> Any:
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            return self._items[key]

    def __setitem__(self, key: bytes, value: Any) -> None:
        self.put(key, value)

    def put(self, key: bytes, value: Any) -> None:
        size = self._size(value)
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self.bytes -= self._size(old)

    def __len__(self) -> int:
        return len(self._items)

    def view(self, prefix: bytes) -> CacheView:
        """The keys starting with ``prefix``, as a mapping of the rest (the engine's ``cache=``)."""
        return CacheView(self, prefix)


class CacheView:
    """``get``/``[]=`` on an :class:`EvaluationCache` with every key prefixed."""

    def __init__(self, cache: EvaluationCache, prefix: bytes) -> None:
        self.cache, self.prefix = cache, prefix

    def get(self, key: bytes, default: Any = None) -> Any:
        return self.cache.get(self.prefix + key, default)

    def __setitem__(self, key: bytes, value: Any) -> None:
        self.cache.put(self.prefix + key, value)


@dataclasses.dataclass
class ModelState:
    """The state one :class:`~fisherlab.Model` keeps between calls (see the module docstring)."""

    kernels: dict[Hashable, Callable[..., Any]] = dataclasses.field(default_factory=dict)
    backend: Any = None
    routes: dict[Hashable, str] = dataclasses.field(default_factory=dict)
    evaluations: EvaluationCache = dataclasses.field(default_factory=EvaluationCache)
    pools: dict[str, Any] = dataclasses.field(default_factory=dict)
    token: str | None = None
    executor_here: bool | None = None  # whether a custom executor runs f on this process's objects

    def kernel(self, name: Hashable, build: Callable[[], Callable[..., Any]]) -> Callable[..., Any]:
        """The jit-compiled kernel ``name``, built (``jax.jit(build())``) on first use and kept.

        With a ``token`` and a name that reads the same in every process, the kernel's trace is
        also kept on disk (:func:`~fisherlab.model._stored.stored_kernel`).
        """
        kernel = self.kernels.get(name)
        if kernel is None:
            fn = build()
            kernel = stored_kernel(fn, self.token, name) or jax.jit(fn)
            self.kernels[name] = kernel
        return kernel


_UNPICKLED: OrderedDict[str, ModelState] = OrderedDict()
_UNPICKLED_LOCK = threading.Lock()


def unpickled_state(key: str, token: str | None) -> ModelState:
    """The state of a model unpickled in this process: empty (with the model's ``token``) the
    first time the model ``key`` arrives, then the same object for its later copies, so that
    kernels compiled for one pass serve the next (:data:`UNPICKLED_MODELS` models kept)."""
    with _UNPICKLED_LOCK:
        state = _UNPICKLED.get(key)
        if state is None:
            state = _UNPICKLED[key] = ModelState(token=token)
            while len(_UNPICKLED) > UNPICKLED_MODELS:
                _UNPICKLED.popitem(last=False)
        else:
            _UNPICKLED.move_to_end(key)
        return state
