r"""The exact curvature of a model on its data, in one piece or chunk by chunk.

.. math:: C = s \sum_{c} \sum_{i \in c} J_i^\top M_i J_i \quad\text{or}\quad
          C = -s \sum_c \nabla^2_\theta \textstyle\sum_{i\in c} \ell_i,

:math:`s = 1` (``reduction="sum"``) or :math:`1/N`, over the chunks :math:`c` of the data: one
for in-memory data, those of an :func:`fisherlab.data.chunks` source otherwise. Every structure
of :mod:`._structures` and :mod:`._kfac` is built from the passes of :class:`Exact`: products
:math:`CV`, dense blocks and diagonals per row (:mod:`._kernels`), dense-layer statistics
(:mod:`._layers`), each summed over chunks in float64.

The head's factor :math:`B_i` and its data checks (labels outside the support, a log-likelihood
NaN or :math:`+\infty`, a factor not finite) come from one forward pass of the network
(:func:`~._kernels.factor_kernel`) or, on a pass of layer statistics, from the same program as
the statistics (:func:`~._layer_stats.fused_stats_kernel`: the network runs forward once for
both). Either way the checks raise their named errors before any result of the pass is returned.

In-memory data keep the head's factor (made once: when the object is built, or with
``defer_head`` on the first pass that needs it) and the network's reverse pass (its
activations, made on the first product) for every product. A chunked source keeps nothing per
chunk: each pass reads the source again and recomputes the chunk's factor and reverse pass, so
memory is one chunk plus :math:`O(P)`; a product inside conjugate gradients or Lanczos runs the
pass on the host (:func:`jax.pure_callback`).
"""

from __future__ import annotations

import contextlib
import functools
import math
import weakref
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import InvalidDataError
from .._precision import x64_scope
from ..backends._validity import check_finite
from ..data._chunks import Chunks, Schema, prepare_chunk
from ..model._model import Model
from ..params._pytree import flatten_params, path_name, tree_signature
from ._head import head_map
from ._kernels import (
    factor_kernel,
    gram_kernel,
    hessian_mv_kernel,
    leaves_head_kernel,
    mv_kernel,
    vjp_kernel,
)
from ._layer_stats import fused_stats_kernel, layer_stats_kernel
from ._layers import Tagged, find_layers

__all__ = ["NUM_PROBES", "Exact", "layer_groups", "layer_name", "leaf_ranges", "trace_layers"]

#: Random vectors of the stochastic estimates (Hutchinson, stochastic Lanczos quadrature).
NUM_PROBES = 100

#: :func:`flatten_params`' inverse map, size and dtype per parameter signature and precision (they
#: depend on shapes and dtypes only): a new curvature concatenates its parameters only when a
#: pass needs the flat vector.
_FLAT_MAPS: dict[Any, tuple[Callable[[jax.Array], Any], int, Any]] = {}

#: The dense layers found in each model's computation, per chunk signature.
_LAYERS: weakref.WeakKeyDictionary[Model, dict[Any, Tagged | None]] = weakref.WeakKeyDictionary()


def layer_name(path: tuple[Any, ...]) -> str:
    """A leaf's layer: its path without the last key (``l1.w`` -> ``l1``); a top-level leaf is its own."""
    return path_name(path[:-1]) if len(path) > 1 else path_name(path)


def layer_groups(params: Any) -> list[tuple[str, int, int]]:
    """``(layer name, start, stop)`` of the flat vector: leaves grouped by :func:`layer_name`."""
    out: list[tuple[str, int, int]] = []
    start = 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        layer, size = layer_name(path), int(np.size(leaf))
        if out and out[-1][0] == layer and len(path) > 1:
            out[-1] = (layer, out[-1][1], start + size)
        else:
            out.append((layer, start, start + size))
        start += size
    return out


def leaf_ranges(params: Any) -> list[tuple[int, int]]:
    """``(start, stop)`` of every leaf of ``params`` in the flat vector."""
    out, start = [], 0
    for leaf in jax.tree_util.tree_leaves(params):
        size = int(np.size(leaf))
        out.append((start, start + size))
        start += size
    return out


def trace_layers(model: Model, kind: str, params: Any, x: Any, n: int) -> Tagged | None:
    """The layers of :math:`\\eta(\\theta)` (``head_map(kind)``) on ``n`` rows of ``x``
    (:func:`~._layers.find_layers`), or ``None`` where none can be used: several distributions
    per row, a computation the interpreter does not follow, no layer."""
    leaves, treedef = jax.tree_util.tree_flatten(params)

    def eta_of_leaves(lv: list[Any], xx: Any) -> Any:
        return head_map(model, kind, xx, n)(jax.tree_util.tree_unflatten(treedef, lv))

    if jax.eval_shape(eta_of_leaves, leaves, x).shape[1] != 1:
        return None  # several distributions per row: the per-row path
    names = [layer_name(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    try:
        tagged = find_layers(eta_of_leaves, leaves, x, n, names)
    except Exception:  # a computation the interpreter does not follow: the per-row path
        return None
    return tagged if tagged.layers else None


class _Part(NamedTuple):
    """One chunk of one pass: its data and its kernels' key (its head: :meth:`Exact.head`)."""

    chunk: int
    y: Any
    x: Any
    rows: int
    sig: tuple[Any, ...]


class Exact:
    """The exact curvature (see the module docstring) and the passes over its data.

    Args:
        model, params: the model and the parameter pytree.
        data: a ``(y, x)`` pair of prepared arrays, or a :class:`~fisherlab.data.Chunks` source.
        kind: a :class:`~fisherlab.CurvatureKind` value.
        num_samples, seed: labels drawn per row for ``"mc_fisher"``, and the seed.
        mean: ``reduction="mean"``.
        x64: JAX's 64-bit mode for this curvature's work (kept for host callbacks, which run
            in another thread).
        defer_head: leave the head's factor and the data checks to the first pass that needs
            them, instead of a pass of their own here (for structures whose constructor makes
            a pass, diagonal and K-FAC: their layer statistics then compute the head in the
            same program, :meth:`layer_stats`, and raise the same errors). ``False``: a bad
            label is named when the object is built, whatever is asked of it next.
    """

    def __init__(
        self,
        model: Model,
        params: Any,
        data: tuple[Any, Any] | Chunks,
        *,
        kind: str,
        num_samples: int,
        seed: int,
        mean: bool,
        x64: bool,
        defer_head: bool = False,
    ) -> None:
        self.model, self.kind, self.params, self.x64 = model, kind, params, x64
        flat_sig = (tree_signature(params), jax.dtypes.canonicalize_dtype(np.float64))
        self._flat: jax.Array | None = None
        if flat_sig not in _FLAT_MAPS:
            self._flat, unravel = flatten_params(params)
            _FLAT_MAPS[flat_sig] = (unravel, int(self._flat.shape[0]), self._flat.dtype)
        self.unravel, self.p, self.dtype = _FLAT_MAPS[flat_sig]
        self._seed = seed
        self._key: jax.Array | None = None
        self.num_samples = num_samples
        self._source = data if isinstance(data, Chunks) else None
        self.chunked = self._source is not None
        self._one: _Part | None = None
        self._one_head: tuple[jax.Array, jax.Array] | None = None  # in-memory data: (factor, signs)
        self._vjp: Any = None  # in-memory data: the stored reverse pass, made on the first product
        self._schema = Schema()  # a chunked source's fields, from its first chunk
        self._failure: Exception | None = None  # an error of a chunked pass inside a callback
        self._logliks: dict[int, float] = {}  # per chunk: the summed log-likelihood of its head pass
        deferred = defer_head and kind != "hessian"  # the Hessian's passes use no factor
        self.n, self._n_chunks = 0, 1
        if self._source is None:
            y, x = data  # type: ignore[misc]
            self._one = self._part(0, y, x)
            self.n = self._one.rows
            if not deferred:
                self.head(self._one)
        else:
            n = 0
            chunks = 0
            for part in self.parts():  # rows, fields and (unless deferred) each chunk's checks
                n += part.rows
                chunks += 1
                if not deferred:
                    self.head(part)
            self.n, self._n_chunks = n, chunks
        self.scale = 1.0 / self.n if mean else 1.0

    @property
    def flat(self) -> jax.Array:
        """The parameters as one vector (:func:`~fisherlab.params._pytree.flatten_params`), made on
        first use (passes over layers do not need it)."""
        if self._flat is None:
            with x64_scope(self.x64):
                self._flat = flatten_params(self.params)[0]
        return self._flat

    @property
    def key(self) -> jax.Array:
        """The seed's random key (sampled labels, probes of the stochastic estimates)."""
        if self._key is None:
            with x64_scope(self.x64):
                self._key = jax.random.PRNGKey(self._seed)
        return self._key

    # ------------------------------------------------------------------ passes over the data
    def parts(self) -> Iterator[_Part]:
        """One pass over the data, chunk by chunk (in-memory data: the one stored part)."""
        if self._one is not None:
            yield self._one
            return
        assert self._source is not None
        total = 0
        for index, y, x in self._source:
            part = self._part(index, y, x)
            total += part.rows
            yield part
        if self.n and total != self.n:
            raise InvalidDataError(
                f"the data source gave {total} rows on this pass and {self.n} on the first: every "
                "pass must give the same rows (a factory that returns a fresh iterator each time)"
            )

    def _part(self, index: int, y: Any, x: Any) -> _Part:
        if self._source is not None:
            data = prepare_chunk(index, y, x, self._schema)
            y, x = data.y, data.x
        n = int(jax.tree_util.tree_leaves(y)[0].shape[0])
        sig = (
            "curvature",
            self.kind,
            self.num_samples,
            tree_signature(self.params),
            tree_signature(x),
            tree_signature(y),
        )
        return _Part(index, y, x, n, sig)

    def _labels_key(self, part: _Part) -> jax.Array:
        """The key of a part's sampled labels: the seed's, folded with the chunk's index."""
        return jax.random.fold_in(self.key, part.chunk) if self.chunked else self.key

    @property
    def _head_kind(self) -> str:
        """The kind of the head's factor: the Hessian's passes use none, its data are checked
        through the empirical one's."""
        return "empirical" if self.kind == "hessian" else self.kind

    def head(self, part: _Part) -> tuple[jax.Array, jax.Array]:
        """The head's factor ``(N, R, k, r)`` and signs ``(N, R, r)`` on ``part``, its data checked
        (:func:`~._kernels.factor_kernel`); in-memory data: made once and kept."""
        if part is self._one and self._one_head is not None:
            return self._one_head
        kind = self._head_kind
        fk = self.model.state.kernel(
            ("curvature", kind, self.num_samples, *part.sig[3:], "factor"),
            lambda: factor_kernel(self.model, kind, self.num_samples, self.unravel),
        )
        head, checks = fk(self.flat, part.y, part.x, self._labels_key(part))
        self._check(part, head, checks)
        out = (head.factor, head.signs)
        if part is self._one:
            self._one_head = out
        return out

    def _check(self, part: _Part, head: Any, checks: jax.Array) -> None:
        """Raise the named error of the first failed check of a part's head
        (:func:`~._kernels.head_checks`): labels outside the support, a NaN log-likelihood, a
        factor that is not finite. Records the part's summed log-likelihood (:meth:`loglik`)."""
        self._logliks[part.chunk] = float(np.sum(np.asarray(head.loglik, dtype=np.float64)))
        if np.asarray(checks).all():
            return
        where = f"chunk {part.chunk}: " if self.chunked else ""
        valid = np.asarray(head.valid)
        if not valid.all():  # every kind: rows outside the support are named before any work
            row = int(np.flatnonzero(~valid)[0])
            raise InvalidDataError(
                f"{where}y at row {row} = {np.asarray(jax.tree_util.tree_leaves(part.y)[0][row])} is "
                f"outside the support of the model's distribution ({int((~valid).sum())} rows); for "
                "a Categorical head labels are integers 0..K-1"
            )
        ll = np.asarray(head.loglik)
        check_finite(f"{where}log-likelihood", np.where(np.isneginf(ll), 0.0, ll))
        check_finite(f"{where}head's {self._head_kind} matrix", np.asarray(head.factor))

    def positive_semidefinite(self) -> bool:
        """Whether :math:`C` is known to be positive semi-definite without a decomposition: the
        Fisher kinds always; the GGN where every row's head matrix has no negative eigenvalue
        (in-memory data whose head is made); not the Hessian."""
        if self.kind in ("fisher", "mc_fisher", "empirical"):
            return True
        if self.kind == "ggn" and self._one_head is not None:
            return bool(np.all(np.asarray(self._one_head[1]) >= 0))
        return False

    def loglik(self) -> float:
        """:math:`\\sum_i \\log p(y_i \\mid x_i, \\theta)` over all rows (all chunks), float64: from
        the head passes already made (each computes it with the factor), else one pass of them."""
        if len(self._logliks) < self._n_chunks:
            for part in self.parts():
                if part.chunk not in self._logliks:
                    self.head(part)
        return float(sum(self._logliks.values()))

    def _kernel(self, part: _Part, name: Any, build: Callable[[], Any]) -> Any:
        return self.model.state.kernel((*part.sig, *name), build)

    # ------------------------------------------------------------------ products
    def apply(self, vs: Any) -> np.ndarray:
        """:math:`C` times the rows of ``vs`` ``(m, P)``, as float64 NumPy."""
        if not self.chunked:
            return np.asarray(self.apply_jax(jnp.asarray(vs, dtype=self.dtype)), dtype=np.float64)
        vs = jnp.asarray(vs, dtype=self.dtype)
        out = np.zeros(vs.shape)
        for part in self.parts():
            out += np.asarray(self._part_apply(part, vs), dtype=np.float64)
        return out * self.scale

    def _part_apply(self, part: _Part, vs: jax.Array) -> jax.Array:
        if self.kind == "hessian":
            mv = self._kernel(part, ("mv",), lambda: hessian_mv_kernel(self.model, self.unravel))
            return mv(self.flat, part.y, part.x, vs)
        mv = self.model.state.kernel(("curvature", "mv"), mv_kernel)
        factor, signs = self.head(part)
        return mv(self._reverse_pass(part), factor, signs, vs)

    def _reverse_pass(self, part: _Part) -> Any:
        """The network's reverse pass on ``part``; in-memory data: made once (outside any trace,
        :meth:`matvec`) and kept."""
        if part is self._one and self._vjp is not None:
            return self._vjp
        vjp_of = self._kernel(part, ("vjp",), lambda: vjp_kernel(self.model, self.kind, self.unravel))
        vjp = vjp_of(self.flat, part.y, part.x)
        if part is self._one:
            self._vjp = vjp
        return vjp

    def apply_jax(self, vs: jax.Array) -> jax.Array:
        """:math:`C` times the rows of ``vs`` ``(m, P)``, traceable (conjugate gradients, Lanczos)."""
        if self.chunked:  # a pass over the source on the host, in this curvature's precision

            def host(v: Any) -> np.ndarray:
                v = np.asarray(v)
                with x64_scope(self.x64):
                    try:  # vmapped (probes of a stochastic estimate): every vector in one pass
                        return self.apply(v.reshape(-1, self.p)).reshape(v.shape).astype(self.dtype)
                    except Exception as exc:  # raised again by traced() in the caller's thread
                        self._failure = exc
                        raise

            shape = jax.ShapeDtypeStruct(vs.shape, self.dtype)
            return jax.pure_callback(host, shape, vs, vmap_method="expand_dims")
        assert self._one is not None
        out = self._part_apply(self._one, vs)
        return out if self.scale == 1.0 else out * jnp.asarray(self.scale, dtype=out.dtype)

    @contextlib.contextmanager
    def traced(self) -> Iterator[None]:
        """Around a traced computation of products (CG, Lanczos): an error of a chunked pass,
        which JAX reports as a runtime error of its callback, is raised as itself."""
        self._failure = None
        try:
            yield
        except Exception:
            if self._failure is not None:
                raise self._failure from None
            raise

    def matvec(self, delta: float = 0.0) -> Callable[[jax.Array], jax.Array]:
        """``u -> (C + delta I) u`` on one flat vector, traceable."""
        if self.kind != "hessian" and self._one is not None:
            self._reverse_pass(self._one)

        def matvec(u: jax.Array) -> jax.Array:
            return self.apply_jax(u[None])[0] + delta * u

        return matvec

    # ------------------------------------------------------------------ per-row blocks and diagonals
    def gram(self, groups: list[tuple[int, int]], diagonal: bool) -> list[np.ndarray]:
        """Per group ``(start, stop)`` the block of :math:`C` (``diagonal``: its diagonal), float64."""
        if self.kind == "hessian":
            if diagonal:
                raise AssertionError("the Hessian's diagonal is estimated")  # pragma: no cover
            out = []
            for a, b in groups:  # P Hessian-vector products per block: exact
                cols = self.apply(np.eye(self.p)[a:b])
                out.append(0.5 * (cols[:, a:b] + cols[:, a:b].T))
            return out
        total: list[np.ndarray] | None = None
        for part in self.parts():
            kernel = self._kernel(
                part,
                ("gram", tuple(groups), diagonal),
                lambda: gram_kernel(self.model, self.kind, self.unravel, groups, diagonal),
            )
            blocks = [np.asarray(b, dtype=np.float64) for b in kernel(self.flat, part.x, *self.head(part))]
            total = blocks if total is None else [t + b for t, b in zip(total, blocks, strict=True)]
        assert total is not None
        return [t * self.scale for t in total]

    def diagonal(self) -> tuple[np.ndarray, np.ndarray | None, float]:
        """The exact diagonal; for the Hessian Hutchinson's estimate. Returns ``(diagonal,
        per-entry standard errors or None, the trace's standard error)``."""
        if self.kind == "hessian":
            return self.hutchinson_diagonal()
        return self.gram([(0, self.p)], diagonal=True)[0], None, 0.0

    def hutchinson_diagonal(self) -> tuple[np.ndarray, np.ndarray, float]:
        """Hutchinson's diagonal :math:`\\frac1S\\sum_s z_s \\odot C z_s` (Rademacher :math:`z_s`),
        the standard error of each entry, and that of the trace: the entries share their probes, so
        the trace's error comes from the probes' totals :math:`z_s^\\top C z_s`."""
        if self.p <= NUM_PROBES:  # as cheap to be exact: P products with unit vectors
            cols = self.apply(np.eye(self.p))
            return np.diag(cols).copy(), np.zeros(self.p), 0.0
        z = jax.random.rademacher(self.key, (NUM_PROBES, self.p), dtype=self.dtype)
        samples = np.asarray(z, dtype=np.float64) * self.apply(z)
        root = math.sqrt(NUM_PROBES)
        trace_error = float(samples.sum(axis=1).std(ddof=1) / root)
        return samples.mean(axis=0), samples.std(axis=0, ddof=1) / root, trace_error

    def lanczos(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` eigenpairs (descending) by Lanczos with full reorthogonalisation (matfree)."""
        steps = min(self.p, max(2 * k + 20, 40))
        if steps >= self.p:  # the whole space: exact (P products)
            dense = self.apply(np.eye(self.p))
            w, v = np.linalg.eigh(0.5 * (dense + dense.T))
        else:
            from matfree import decomp, eig

            start = jax.random.normal(self.key, (self.p,), dtype=self.dtype)
            with self.traced():
                values, vectors = eig.eigh_partial(decomp.tridiag_sym(steps, reortho="full"))(
                    self.matvec(), start
                )
            w, v = np.asarray(values, dtype=np.float64), np.asarray(vectors, dtype=np.float64)
            if v.shape[0] != self.p:
                v = v.T
        order = np.argsort(w)[::-1][:k]
        return np.asarray(w[order]), np.asarray(v[:, order])

    # ------------------------------------------------------------------ dense layers
    def leaf_ranges(self) -> list[tuple[int, int]]:
        """``(start, stop)`` of every parameter leaf in the flat vector (:func:`leaf_ranges`)."""
        return leaf_ranges(self.params)

    def layers(self) -> Tagged | None:
        """The model's dense layers (:mod:`._layers`) on the first chunk's shapes, or ``None``
        where none can be used (the Hessian; several distributions per row)."""
        first = next(self.parts())
        return self._tagged(first)

    def _tagged(self, part: _Part) -> Tagged | None:
        if self.kind == "hessian":
            return None
        cache = _LAYERS.setdefault(self.model, {})
        if part.sig not in cache:
            cache[part.sig] = self._trace_layers(part)
        return cache[part.sig]

    def _trace_layers(self, part: _Part) -> Tagged | None:
        return trace_layers(self.model, self.kind, self.params, part.x, part.rows)

    def layer_stats(self, kfac: bool, rotations: Any = None, **options: Any) -> list[Any]:
        """Per dense layer of :meth:`layers` the statistics of :func:`~._layer_stats.layer_stats_kernel`,
        summed over chunks, float64 (not scaled).

        A part whose head is not known yet (a chunk; in-memory data with ``defer_head``) gets it
        from the same program as its statistics (:func:`~._layer_stats.fused_stats_kernel`), the
        same labels as :meth:`head` draws; its checks raise before any statistics are returned.
        """
        leaves, treedef = jax.tree_util.tree_flatten(self.params)
        total: list[Any] | None = None
        for part in self.parts():
            tagged = self._tagged(part)
            if tagged is None:  # pragma: no cover - the first chunk had layers: the same model
                raise AssertionError("a chunk's dense layers differ from the first chunk's")
            key = (
                "layers",
                kfac,
                rotations is not None,
                tuple(tagged.layers),
                tuple(sorted(options.items())),
            )
            known = self._one_head if part is self._one else None
            if known is None:
                head = leaves_head_kernel(self.model, self.kind, self.num_samples, treedef)
                build = functools.partial(fused_stats_kernel, tagged, kfac, head, **options)
                fused = self._kernel(part, ("head", *key), build)
                stats, h, checks = fused(leaves, part.y, part.x, self._labels_key(part), rotations)
                self._check(part, h, checks)
                if part is self._one:
                    self._one_head = (h.factor, h.signs)
            else:
                build = functools.partial(layer_stats_kernel, tagged, kfac, **options)
                stats = self._kernel(part, key, build)(leaves, part.x, *known, rotations)
            out = jax.tree_util.tree_map(lambda a: np.asarray(a, dtype=np.float64), stats)
            total = out if total is None else jax.tree_util.tree_map(np.add, total, out)
        assert total is not None
        return total

    def uncovered_diagonal(self, covered: set[int]) -> tuple[list[tuple[int, int]], np.ndarray, Any]:
        """The flat ranges of the leaves outside ``covered`` (the dense layers' leaves), a ``(P,)``
        vector holding the exact diagonal there (the Hessian's estimated), zero elsewhere, and the
        Hutchinson result for the Hessian (else ``None``)."""
        rest = [r for i, r in enumerate(self.leaf_ranges()) if i not in covered and r[1] > r[0]]
        diag = np.zeros(self.p)
        estimate = None
        if rest and self.kind == "hessian":  # estimated over all parameters at once
            estimate = self.hutchinson_diagonal()
            for a, b in rest:
                diag[a:b] = estimate[0][a:b]
        elif rest:
            for (a, b), d in zip(rest, self.gram(rest, diagonal=True), strict=True):
                diag[a:b] = d
        return rest, diag, estimate
