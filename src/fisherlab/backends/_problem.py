r"""A black-box model on data: the map from flat parameters to per-row log-likelihoods.

For a model whose function cannot be traced by JAX (it calls NumPy, SciPy or an external
program), the per-row log-likelihood

.. math::

    \theta \mapsto \ell(\theta) = (\ell_1(\theta), \dots, \ell_N(\theta)) \in \mathbb R^N,
    \qquad \ell_i(\theta) = \log p(y_i \mid x_i, \theta),

is evaluated for ALL rows in one call of the user's function per parameter point (the
function receives the whole covariate array, and parameters as NumPy float64 scalars /
arrays). :class:`Problem` is that map, with the model's evaluation cache (identical points
are evaluated once per model: :class:`~fisherlab.model._state.EvaluationCache`), the
validity flags of every row (:func:`~fisherlab.model._model.validity` on the NumPy values),
the executor pool of the model (``executor=``), and the bounds its ``constraints`` put on
each parameter (the finite-difference engine never steps across them).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
import warnings
import weakref
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import jax
import numpy as np
import numpyro.distributions as nd
from numpyro.distributions.distribution import validation_enabled

from .._errors import FisherlabError, ModelError
from .._precision import float64
from ..data._prepare import Data
from ..model._model import Model, observation_for, validity
from ..model._state import CacheView
from ..params._pytree import ParamCodec
from ._validity import check_finite, raise_invalid

__all__ = ["Problem", "engine_options"]


def _digest(*trees: Any) -> bytes:
    """A digest of the data (shapes, dtypes and bytes of every leaf), the key of a model's row cache."""
    h = hashlib.blake2b(digest_size=16)
    for tree in trees:
        for leaf in jax.tree_util.tree_leaves(tree):
            arr = np.ascontiguousarray(np.asarray(leaf))
            h.update(f"{arr.shape}{arr.dtype}".encode())
            h.update(arr.tobytes())
        h.update(b"|")
    return h.digest()


def engine_options(model: Model) -> dict[str, Any]:
    """The finite-difference engine's parallel-evaluation options of ``model`` (``executor=``).

    For ``"threads"``/``"processes"`` the pool is made once per model and kept (a fit asks
    for a Hessian per iteration; spawning worker processes each time would dominate), and
    shut down when the model is garbage-collected.
    """
    executor = model.executor
    if executor is None:
        return {}
    if isinstance(executor, str):
        pool = model.state.pools.get(executor)
        if pool is None:
            workers = model.workers or os.cpu_count() or 1
            if executor == "threads":
                pool = ThreadPoolExecutor(max_workers=workers)
            else:
                context = multiprocessing.get_context("spawn")  # fork after JAX is unsafe
                pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
            weakref.finalize(model, pool.shutdown, wait=False)
            model.state.pools[executor] = pool
        executor = pool
    return {"executor": executor, "workers": model.workers}


_PROBES: dict[int, object] = {}


def _is_here(token: object) -> bool:
    """Run by an executor: whether it was handed this process's very ``token``, not a copy."""
    return _PROBES.get(id(token)) is token


def _runs_here(executor: Any) -> bool:
    """Whether ``executor.map`` calls its function on this process's objects (no pickling)."""
    token = object()
    _PROBES[id(token)] = token
    try:
        return bool(next(iter(executor.map(_is_here, [token]))))
    except Exception:  # an executor that cannot run the probe: count as one running elsewhere
        return False
    finally:
        _PROBES.pop(id(token), None)


class Problem:
    """A numeric model on validated NumPy data: the map ``v -> (ell_1..ell_N)`` of the flat parameters.

    ``y`` may be ``None`` (the expected Fisher needs only ``x``). Per-row values at a point are
    cached on the model (:class:`~fisherlab.model._state.EvaluationCache`). The object pickles
    without the model and its cache, so a process pool can evaluate it (the model function must
    then be picklable).
    """

    def __init__(self, model: Model, params: Any, data: Data) -> None:
        self.model: Model | None = model
        self.fn, self.kind = model.fn, model.kind
        self.n = data.n if data.x is not None or data.y is not None else 1
        self.y = None if data.y is None else jax.tree_util.tree_map(np.asarray, data.y)
        self.x = None if data.x is None else jax.tree_util.tree_map(np.asarray, data.x)
        self.codec = ParamCodec(params)
        self.names = self.codec.names
        self.flat = self.codec.flat
        self._digest = _digest(self.y, self.x)
        self.cache: CacheView | None = model.state.evaluations.view(self._digest + b"rows")
        self.calls = 0  # calls of the model function made in this process
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["model"], state["cache"], state["_lock"] = None, None, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def in_process(self) -> bool:
        """Whether the model's evaluations run on this very object (serially or in threads).

        Known executors answer by their kind; any other object with a ``map`` is asked once per
        model (:func:`_runs_here`): an in-process executor that calls ``f`` here must not have
        its calls counted twice, one that ships ``f`` elsewhere (processes, Dask) is counted
        by the engine.
        """
        assert self.model is not None
        executor = self.model.executor
        if executor is None or executor == "threads" or isinstance(executor, ThreadPoolExecutor):
            return True
        if executor == "processes" or isinstance(executor, ProcessPoolExecutor):
            return False
        state = self.model.state
        if state.executor_here is None:
            state.executor_here = _runs_here(executor)
        return state.executor_here

    def engine_cache(self, role: str) -> dict[str, Any]:
        """``cache=`` for the engine when the executor runs elsewhere (processes, Dask).

        Worker processes do not see this process's row cache, so the engine keeps the values
        of the function with this ``role`` (one function per role) on the model instead.
        """
        assert self.model is not None
        if self.in_process:
            return {}
        return {"cache": self.model.state.evaluations.view(self._digest + b"engine:" + role.encode())}

    def spent(self, mark: int, engine_count: int) -> int:
        """Calls of the model function since ``mark`` (``self.calls`` then).

        In this process they are counted here (cache hits are free); an executor running
        elsewhere (processes, Dask) is counted by the engine instead.
        """
        local = self.calls - mark
        return local if self.in_process else local + engine_count

    @property
    def options(self) -> dict[str, Any]:
        """Engine options: the model's executor, and bounds from its constraints."""
        assert self.model is not None
        lo, hi = self.bounds()
        return {"names": self.names, "lower": lo, "upper": hi, **engine_options(self.model)}

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Open bounds per flat parameter from the model's ``constraints`` (``lower_bound``/``upper_bound``).

        A parameter declared ``"positive"`` or ``"unit_interval"`` is then never stepped out of
        its support (the engine uses one-sided or shortened stencils next to a bound). A bound
        the point does not lie strictly inside is ignored (the engine would refuse the point).
        """
        assert self.model is not None
        lo = np.full(self.flat.size, -np.inf)
        hi = np.full(self.flat.size, np.inf)
        for i, name in enumerate(self.names):
            c = self.model.constraints.get(name.split("[", 1)[0])
            for attr, out in (("lower_bound", lo), ("upper_bound", hi)):
                bound = getattr(c, attr, None)
                if bound is not None and np.ndim(bound) == 0 and np.isfinite(float(bound)):
                    out[i] = float(bound)
        inside = (lo < self.flat) & (self.flat < hi)
        lo[~inside], hi[~inside] = -np.inf, np.inf
        return lo, hi

    def params(self, v: np.ndarray) -> Any:
        """The parameter pytree at the flat point ``v``, with NumPy leaves (``np.float64`` scalars)."""
        return self.codec.to_numpy_tree(v)

    def distribution(self, v: np.ndarray) -> nd.Distribution:
        """The model's distribution of all rows at the flat point ``v`` (one call of the function)."""
        self._count()
        with validation_enabled(False):
            d = self.fn(self.params(v), self.x)
        if not isinstance(d, nd.Distribution):
            raise ModelError(
                f"the model function returned {type(d).__name__}, not a distribution; "
                "return e.g. fl.dist.Normal(mean, scale)"
            )
        return d

    def flags(self, d: nd.Distribution) -> dict[str, np.ndarray]:
        """Per-row validity of the distribution's parameters (and of ``y``, when there is one)."""
        flags = validity(d, self.y, rows=self.n, params_by_row=self.x is not None)
        return {name: np.asarray(ok) for name, ok in flags.items()}

    def _count(self) -> None:
        with self._lock:
            self.calls += 1

    def _evaluate(self, v: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        params = self.params(v)
        if self.kind == "loglik":
            self._count()
            out = np.asarray(self.fn(params, self.y, self.x), dtype=np.float64)
            if out.shape != (self.n,):
                raise ModelError(
                    f"the log-likelihood function returned shape {out.shape} for {self.n} rows; "
                    f"it must return one value per row, shape ({self.n},)"
                )
            return out, {}
        d = self.distribution(v)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            # y outside the support is reported by the flags below, naming the row
            warnings.filterwarnings("ignore", message="Out-of-support values", category=UserWarning)
            lp = np.asarray(d.log_prob(observation_for(d, self.y)), dtype=np.float64)
        if lp.ndim == 0 or lp.shape[0] != self.n:
            raise ModelError(
                f"the distribution's log_prob of y has shape {lp.shape}, "
                f"not one value per row ({self.n},); with derivatives='numeric' the function receives "
                "all rows of x at once and must return a distribution with batch shape (N, ...) or ()"
            )
        return lp.reshape(self.n, -1).sum(axis=1), self.flags(d)

    def rows(self, v: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Per-row log-likelihood ``(N,)`` at ``v`` and per-row validity flags (raw user errors pass)."""
        v = np.asarray(v, dtype=np.float64)
        key = v.tobytes()
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return hit  # type: ignore[no-any-return]
        out = self._evaluate(v)
        if self.cache is not None:
            self.cache[key] = out
        return out

    @float64  # also in a worker thread or process of the executor
    def total(self, v: np.ndarray) -> float:
        """The total log-likelihood at ``v`` (the function the Hessian engine differentiates)."""
        return float(np.sum(self.rows(v)[0]))

    @float64  # also in a worker thread or process of the executor
    def vector(self, v: np.ndarray) -> np.ndarray:
        """The per-row log-likelihood at ``v`` (the function the Jacobian engine differentiates)."""
        return self.rows(v)[0]

    def describe(self, v: np.ndarray) -> str:
        return "{" + ", ".join(f"{n}={val!r}" for n, val in zip(self.names, v.tolist(), strict=True)) + "}"

    def checked(self) -> np.ndarray:
        """Per-row log-likelihood at the point itself, with the same checks as the autodiff path."""
        assert self.model is not None
        try:
            ll, flags = self.rows(self.flat)
        except FisherlabError:
            raise
        except Exception as exc:
            raise ModelError(
                f"the model function raised {type(exc).__name__} at {self.describe(self.flat)}: {exc}"
            ) from exc
        if self.kind == "distribution":
            raise_invalid(self.model, self.params(self.flat), flags, self.x, has_rows=True, y=self.y)
        check_finite("log-likelihood", np.where(np.isneginf(ll), 0.0, ll))
        return ll
