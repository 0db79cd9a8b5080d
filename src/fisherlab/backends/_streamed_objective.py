r"""The fit's objective on a chunk source: one streamed pass per point.

.. math:: f(u) = -\Big[\sum_{c}\sum_{i \in c} \ell_i(T(u)) + \log p(T(u))\Big]

The data term is a sum over chunks :math:`c`: each pass over the source
(:meth:`fisherlab.data.Chunks.reduce`) evaluates, per chunk and in one compiled kernel, the
chunk's :math:`-\sum_i \ell_i`, its gradient and (for Newton fits) its Hessian with respect to
:math:`u`, and adds them in float64 with compensated summation; the prior's term is added
once, on the host. A pass is made at most once per point: the value, gradient and Hessian at
the last point are kept, so SciPy's trust region (which asks for :math:`f`, then
:math:`\nabla f`, then :math:`\nabla^2 f` at an accepted point) and the Newton polish read the
data once per iterate, as Newton's method on data that stream should.

Compiled kernels are specialised to a chunk's length. A chunk shorter than the source's
first (the last chunk of a file) is padded to that length by repeating its own first row,
and the padding is masked out of every sum (:func:`~fisherlab.backends._curvature.negative_hessian`
with ``mask``), so each kernel compiles once per fit whatever the number of rows. Rows outside
the support make :math:`f = +\infty` (gradient 0), as in memory; the rows are named by
the fit (:func:`fisherlab.inference._fit`), which re-reads the chunks only then.

:class:`ChunkPass` (the work on one chunk) holds only the model, the reparametrisation, the
prior-free kernel's name and the point, and fetches its kernel from ``model.state`` where it
runs: a source that computes on a cluster's workers ships it there.
"""

from __future__ import annotations

import collections
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import MethodUnavailableError
from ..data._blocks import sum_over_blocks
from ._base import LogPosterior
from ._curvature import negative_hessian
from ._validity import run

if TYPE_CHECKING:
    from ..data._chunks import StreamedData
    from ..data._prepare import Data
    from ..model._model import Model
    from ..params._constraints import Reparam
    from ..params._prior import Prior

__all__ = ["ChunkPass", "StreamedLogPosterior", "require_autodiff"]

# Above this many parameters "auto" fits use L-BFGS (a dense Hessian per chunk: O(P^2) each).
NEWTON_MAX_PARAMS = 400
#: Points whose pass results are kept (value, gradient, Hessian: O(P²) each).
KEPT = 8


def _chunk_kernel(model: Model, reparam: Reparam, hessian: bool) -> Any:
    r"""``(u, y, x, mask) -> (value, grad[, hess], bad)`` of one chunk: ``value`` the chunk's
    :math:`-\sum_i \ell_i` over the rows ``mask`` marks, ``bad`` the count of failed row checks
    plus 1 for a non-finite result (the sums are then 0). The rows are taken in cache-sized
    blocks (:func:`~fisherlab.data.sum_over_blocks`), each block's value, gradient and Hessian in
    one go, so a chunk of any length never materialises its per-row intermediates."""

    def kernel(u: jax.Array, y: Any, x: Any, mask: jax.Array) -> Any:
        axes = (None, 0, None if x is None else 0)

        def block(data: Any) -> Any:
            yb, xb, mb = data

            def neg(v: jax.Array) -> tuple[jax.Array, Any]:
                ll, flags = jax.vmap(model.row_loglik, in_axes=axes)(reparam.to_params(v), yb, xb)
                return -jnp.where(mb, ll, 0.0).sum(), flags

            (value, flags), grad = jax.value_and_grad(neg, has_aux=True)(u)
            bad = sum((jnp.sum(~f) for f in flags.values()), start=jnp.asarray(0))
            if not hessian:
                return (value, grad, bad), ()
            neg_h, invalid = negative_hessian(model, reparam.to_params, u, yb, xb, mb)
            return (value, grad, neg_h, bad + invalid), ()

        sums, _ = sum_over_blocks(block, (y, x, mask))
        *terms, bad = sums
        ok = (bad == 0) & jnp.all(jnp.stack([jnp.all(jnp.isfinite(t)) for t in terms]))
        return (*(jnp.where(ok, t, 0.0) for t in terms), bad + (~ok).astype(bad.dtype))

    return jax.jit(kernel)


def _padded(data: Data, length: int) -> tuple[Any, Any, np.ndarray]:
    """``data``'s rows padded to ``length`` with copies of its first row, and the mask of the real rows."""
    mask = np.arange(max(length, data.n)) < data.n
    if data.n >= length:
        return data.y, data.x, mask
    index = np.concatenate([np.arange(data.n), np.zeros(length - data.n, dtype=np.int64)])

    def pad(tree: Any) -> Any:
        return None if tree is None else jax.tree_util.tree_map(lambda a: np.asarray(a)[index], tree)

    return pad(data.y), pad(data.x), mask


class ChunkPass:
    """The work of one pass on one chunk at the point ``u`` (see the module docstring).

    Calling it on a chunk's :class:`~fisherlab.data.Data` gives NumPy ``(value, grad, bad)``,
    or ``(value, grad, hess, bad)`` with ``hessian``; the sums over chunks are the pass. It is
    compiled JAX work only (``thread_safe``: a pass computes several chunks at once).
    """

    thread_safe = True

    def __init__(
        self, model: Model, reparam: Reparam, key: Hashable, u: np.ndarray, *, hessian: bool, length: int
    ) -> None:
        self.model, self.reparam, self.key = model, reparam, key
        self.u, self.hessian, self.length = u, hessian, length

    def __call__(self, data: Data) -> tuple[np.ndarray, ...]:
        name = "stream_fit_vgh" if self.hessian else "stream_fit_vg"
        kernel = self.model.state.kernel(
            (name, self.key), lambda: _chunk_kernel(self.model, self.reparam, self.hessian)
        )
        y, x, mask = _padded(data, self.length)
        out = run(kernel, jnp.asarray(self.u), y, x, mask)
        return tuple(np.asarray(a, dtype=np.float64) for a in out)


class StreamedLogPosterior(LogPosterior):
    """:class:`~fisherlab.backends.LogPosterior` of a chunk source (see the module docstring).

    Attributes:
        passes: the passes over the data so far.
    """

    newton_max_params = NEWTON_MAX_PARAMS

    def __init__(
        self, model: Model, reparam: Reparam, prior: Prior | None, data: StreamedData, key: Hashable
    ):
        self.model, self.reparam, self.prior, self.data, self.key = model, reparam, prior, data, key
        self.passes = 0
        self.newton = reparam.size <= NEWTON_MAX_PARAMS
        self._kept: collections.OrderedDict[bytes, dict[str, Any]] = collections.OrderedDict()
        if prior is not None:

            def neg_log_prior(u: jax.Array) -> jax.Array:
                return -prior.log_density(reparam.to_params(u))

            self._prior_vg = jax.jit(jax.value_and_grad(neg_log_prior))
            self._prior_h = jax.jit(jax.hessian(neg_log_prior))

    def _pass(self, u: np.ndarray, hessian: bool) -> dict[str, Any]:
        """The sums of one pass at ``u``; the last :data:`KEPT` points' are kept, so a later call
        at one of them (the estimate, after the checks that probe around it) reads no data."""
        key = np.asarray(u, dtype=np.float64).tobytes()
        last = self._kept.get(key)
        if last is not None and (not hessian or "hess" in last):
            self._kept.move_to_end(key)
            return last
        fn = ChunkPass(self.model, self.reparam, self.key, u, hessian=hessian, length=self.data.first.n)
        sums, rows = self.data.source.reduce(fn)
        self.passes += 1
        self.data.count(rows)
        value, grad, *rest = sums
        bad = rest[-1]
        out: dict[str, Any] = {"loglik": -float(value)}
        if hessian:
            out["hess"] = rest[0]
        if bad > 0:
            out.update(value=np.inf, grad=np.zeros_like(grad), loglik=-np.inf)
            if hessian:
                out["hess"] = np.full((u.size, u.size), np.nan)
        else:
            out["value"], out["grad"] = float(value), grad
            if self.prior is not None:
                pv, pg = self._prior_vg(jnp.asarray(u))
                out["value"] += float(pv)
                out["grad"] = grad + np.asarray(pg)
                if hessian:
                    out["hess"] = out["hess"] + np.asarray(self._prior_h(jnp.asarray(u)))
        self._kept[key] = out
        while len(self._kept) > KEPT:
            self._kept.popitem(last=False)
        return out

    def value_and_grad(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        out = self._pass(u, self.newton)
        return float(out["value"]), np.asarray(out["grad"]).copy()

    def value(self, u: np.ndarray) -> float:
        return self.value_and_grad(u)[0]

    def hessian(self, u: np.ndarray) -> np.ndarray:
        return np.asarray(self._pass(u, True)["hess"]).copy()

    def loglik(self, u: np.ndarray) -> float:
        r""":math:`\sum_i \ell_i(T(u))` (no prior), from the pass at ``u``."""
        return float(self._pass(u, False)["loglik"])


def require_autodiff(backend: Any) -> None:
    """Refuse a fit on a chunk source with numeric derivatives (each pass would be P² model runs)."""
    from ._autodiff import AutodiffBackend

    if not isinstance(backend, AutodiffBackend):
        raise MethodUnavailableError(
            "a fit on a chunk source needs a model JAX can differentiate (derivatives='autodiff'); "
            "numeric derivatives would re-read the data for every finite difference: load the data "
            "in memory, or write the model with jax.numpy"
        )
