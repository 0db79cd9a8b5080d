r"""Evaluation of ``f``: batches of points, each distinct point once, and the cache of values.

Identical points of the stencils are evaluated once (the values are kept by the point's
bytes). ``cache``, a mutable mapping from ``point.tobytes()`` (float64 points) to the value of
``f``, shares evaluations between calls: a point found there is neither evaluated nor counted.
A cache belongs to one function ``f``; the complex step does not use it. An exception raised
by ``f`` is chained into a :class:`~fisherlab.NumericDerivativeError` with the parameter values.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

import numpy as np

from .._errors import InvalidOptionError, NumericDerivativeError
from ._executor import _Pool


def _describe(point: np.ndarray, names: Sequence[str]) -> str:
    return "{" + ", ".join(f"{n}={v!r}" for n, v in zip(names, point.tolist(), strict=True)) + "}"


class _Call:
    """``f`` at one point (or one batch of points) under the caller's NumPy error state.

    The engine evaluates perturbed points with floating-point warnings off (a NaN is detected
    and retried); a worker thread or process gets the same state. Picklable when ``f`` is.
    """

    def __init__(self, f: Callable[[np.ndarray], Any], errstate: dict[str, str]) -> None:
        self.f = f
        self.errstate = errstate

    def __call__(self, point: np.ndarray) -> Any:
        with np.errstate(**self.errstate):  # type: ignore[arg-type]
            return self.f(point)


_MISSING = object()


class _Evaluator:
    """Calls ``f`` on batches of points, once per distinct point, counting the calls.

    Returns ``(M, N)`` values for ``M`` points: ``N = 1`` for a scalar ``f``, ``N`` outputs for
    a vector ``f`` (``vector=True``; every call must return the same shape ``(N,)``).
    """

    def __init__(
        self,
        f: Callable[[np.ndarray], Any],
        names: Sequence[str],
        lower: np.ndarray,
        upper: np.ndarray,
        *,
        vectorized: bool = False,
        vector: bool = False,
        pool: _Pool | None = None,
        cache: MutableMapping[bytes, Any] | None = None,
    ) -> None:
        self.f = f
        self.names = list(names)
        self.vectorized = vectorized
        self.vector = vector
        self.lower = lower
        self.upper = upper
        self.pool = pool if pool is not None else _Pool(None, None, f)
        self.shared = cache
        self.values: dict[bytes, Any] = {}
        self.shape: tuple[int, ...] | None = None
        self.count = 0

    def _raised(self, exc: Exception, point: np.ndarray, batch: int = 0) -> NumericDerivativeError:
        where = _describe(point.real, self.names)
        what = f"on a batch of {batch} points, the first {where}" if batch else f"at {where}"
        return NumericDerivativeError(
            f"f raised {type(exc).__name__} {what}: {exc}",
            point=dict(zip(self.names, point.real.tolist(), strict=True)),
        )

    def _accept(self, out: Any, point: np.ndarray) -> Any:
        """The checked value of ``f`` at ``point``: a scalar, or a float64 ``(N,)`` vector."""
        if not self.vector:
            arr = np.asarray(out)
            if arr.size != 1:
                raise NumericDerivativeError(
                    f"f must return a scalar, got an array of shape {arr.shape} at "
                    f"{_describe(point.real, self.names)}",
                    point=dict(zip(self.names, point.real.tolist(), strict=True)),
                )
            return arr.reshape(())[()]
        vec = np.array(out, dtype=np.float64)
        if vec.ndim != 1 or (self.shape is not None and vec.shape != self.shape):
            expected = f" (expected {self.shape})" if self.shape is not None else ""
            raise NumericDerivativeError(
                f"f must return a vector of the same shape at every point; got {vec.shape} at "
                f"{_describe(point.real, self.names)}{expected}",
                point=dict(zip(self.names, point.real.tolist(), strict=True)),
            )
        self.shape = vec.shape
        vec.flags.writeable = False
        return vec

    def _from_cache(self, value: Any) -> Any:
        shape = np.shape(value)
        if (self.vector and (len(shape) != 1 or (self.shape is not None and shape != self.shape))) or (
            not self.vector and np.size(value) != 1
        ):
            raise InvalidOptionError(
                f"cache holds a value of shape {shape} for this point, not what f returns "
                f"({'a vector' if self.vector else 'a scalar'}); a cache belongs to one function f"
            )
        if self.vector:
            self.shape = shape
        return value

    def _call_one(self, point: np.ndarray) -> Any:
        try:
            out = self.f(point.copy())
        except NumericDerivativeError:
            raise
        except Exception as exc:
            raise self._raised(exc, point) from exc
        return self._accept(out, point)

    def _check_batch(self, out: Any, points: np.ndarray) -> np.ndarray:
        arr = np.asarray(out)
        if arr.shape != (len(points),):
            raise NumericDerivativeError(
                f"vectorized f must map ({len(points)}, P) points to shape ({len(points)},), got {arr.shape}"
            )
        return arr

    def _evaluate(self, points: np.ndarray) -> list[Any]:
        """``f`` at the (distinct, uncached) rows of ``points``, all submitted at once to the executor."""
        if self.pool.active:
            call = _Call(self.f, {k: str(v) for k, v in np.geterr().items()})
            if self.vectorized:
                items = np.array_split(points, min(len(points), self.pool.workers))
            else:
                items = [p.copy() for p in points]
            results = self.pool.map(call, items)
            outs: list[Any] = []
            for item in items:
                first = item[0] if self.vectorized else item
                try:
                    outs.append(next(results))
                except NumericDerivativeError:
                    raise
                except Exception as exc:
                    raise self._raised(exc, first, len(item) if self.vectorized else 0) from exc
            if self.vectorized:
                return list(
                    np.concatenate([self._check_batch(o, c) for o, c in zip(outs, items, strict=True)])
                )
            return [self._accept(o, p) for o, p in zip(outs, items, strict=True)]
        if self.vectorized:
            try:
                out = self.f(points.copy())
            except Exception as exc:
                raise self._raised(exc, points[0], len(points)) from exc
            return list(self._check_batch(out, points))
        return [self._call_one(p) for p in points]

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """``f`` at each row of ``points`` (``(M, P)``); returns ``(M, N)``."""
        real = points.real
        if np.any(real <= self.lower) or np.any(real >= self.upper):  # pragma: no cover - a bug guard
            raise AssertionError("internal error: a stencil point lies outside the bounds")
        shared = self.shared if points.dtype == np.float64 else None
        keys = [p.tobytes() for p in points]
        missing: dict[bytes, int] = {}
        for idx, key in enumerate(keys):
            if key in self.values or key in missing:
                continue
            if shared is not None:
                hit = shared.get(key, _MISSING)
                if hit is not _MISSING:
                    self.values[key] = self._from_cache(hit)
                    continue
            missing[key] = idx
        if missing:
            rows = np.fromiter(missing.values(), dtype=int, count=len(missing))
            values = self._evaluate(points[rows])
            self.count += len(rows)
            for key, value in zip(missing, values, strict=True):
                self.values[key] = value
                if shared is not None:
                    shared[key] = value
        return np.array([self.values[k] for k in keys]).reshape(len(keys), -1)
