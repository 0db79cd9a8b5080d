r"""``fl.curvature``: the curvature of a model's log-likelihood on data as an object, not a matrix.

.. math:: C = \sum_{i=1}^N J_i^\top M_i J_i \quad (\text{or } -\nabla^2_\theta \textstyle\sum_i \ell_i),

with the kinds of :mod:`._head` (``"fisher"``, ``"ggn"``, ``"empirical"``, ``"mc_fisher"``) and
``"hessian"``; ``reduction="mean"`` divides by :math:`N`. A *structure* decides what is
computed and kept:

=============  ==============================================================================
``operator``   nothing is materialised: :meth:`~Curvature.mv` is one linearisation of the
               network and its transpose (``jax.linearize``, ``jax.linear_transpose``);
               ``diagonal`` and ``trace`` are exact (per-row reverse passes), ``solve`` is
               conjugate gradients, ``logdet`` stochastic Lanczos quadrature, ``eigh`` Lanczos
``dense``      the :math:`P\times P` matrix (refused above :data:`MAX_DENSE_BYTES` unless
               ``force=True``)
``diagonal``   the exact diagonal :math:`\sum_i\sum_r \sigma_r (J_i^\top b_{ir})^2` (for the
               Hessian a Hutchinson estimate with its standard error)
``block``      a dense block per layer (parameters grouped by their pytree path without its
               last key: ``layers[0].weight`` and ``layers[0].bias`` form ``layers[0]``), zero
               between layers
``lowrank``    the top ``rank`` eigenpairs by Lanczos with full reorthogonalisation (matfree),
               plus the diagonal of what they leave out
=============  ==============================================================================

Every structure answers :meth:`~Curvature.mv`, :meth:`~Curvature.diagonal`,
:meth:`~Curvature.to_dense`, :meth:`~Curvature.solve`, :meth:`~Curvature.logdet`,
:meth:`~Curvature.trace` and :meth:`~Curvature.eigh` *of its own approximation* (a diagonal
structure's ``logdet`` is that of the diagonal matrix). Lanczos, stochastic Lanczos quadrature
and Hutchinson's estimator come from matfree (a small, JAX-native library of matrix-free
linear algebra with reorthogonalised Lanczos and stochastic trace estimators that report their
standard errors), conjugate gradients from ``jax.scipy.sparse.linalg``.
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import (
    FisherlabArgumentError,
    InvalidDataError,
    InvalidOptionError,
    MethodUnavailableError,
    NotConvergedError,
    SingularInformationError,
)
from .._options import CurvatureKind, CurvatureStructure, Reduction, choose, count, seed_value
from ..backends._validity import check_finite
from ..data._prepare import prepare_data
from ..information._matrix import InfoMatrix
from ..model._model import Model, require_model
from ..params._pytree import as_params, flatten_params, param_names, path_name, tree_signature
from ._head import head_map
from ._kernels import factor_kernel, gram_kernel, hessian_mv_kernel, mv_kernel, vjp_kernel
from ._layers import DenseLayer, Tagged, find_layers, layer_stats_kernel

__all__ = ["MAX_DENSE_BYTES", "Curvature", "Estimate", "curvature"]

#: Largest dense matrix :meth:`Curvature.to_dense` (and ``structure="dense"``/``"block"``) builds
#: without ``force=True``: 2 GiB.
MAX_DENSE_BYTES = 2 * 2**30

#: Random vectors of the stochastic estimates (Hutchinson, stochastic Lanczos quadrature).
NUM_PROBES = 100

#: Up to this many parameters the operator's ``logdet`` builds the matrix and is exact.
EXACT_LOGDET_MAX_PARAMS = 2000


#: The dense layers found in each model's computation, per curvature signature.
_LAYERS: weakref.WeakKeyDictionary[Model, dict[Any, Tagged | None]] = weakref.WeakKeyDictionary()


class Estimate(NamedTuple):
    """A number and its standard error (``error`` is 0.0 where the value is exact)."""

    value: float
    error: float


def _layer_name(path: tuple[Any, ...]) -> str:
    """A leaf's layer: its path without the last key (``l1.w`` -> ``l1``); a top-level leaf is its own."""
    return path_name(path[:-1]) if len(path) > 1 else path_name(path)


def _layer_groups(params: Any, sizes: list[int]) -> list[tuple[str, int, int]]:
    """``(layer name, start, stop)`` of the flat vector: leaves grouped by :func:`_layer_name`."""
    paths = [path for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    out: list[tuple[str, int, int]] = []
    start = 0
    for path, size in zip(paths, sizes, strict=True):
        layer = _layer_name(path)
        if out and out[-1][0] == layer and len(path) > 1:
            out[-1] = (layer, out[-1][1], start + size)
        else:
            out.append((layer, start, start + size))
        start += size
    return out


class Curvature:
    """A curvature of a model on data (see the module docstring); made by :func:`curvature`."""

    def __init__(
        self,
        model: Model,
        params: Any,
        y: Any,
        x: Any,
        *,
        kind: str,
        structure: str,
        reduction: str,
        num_samples: int,
        seed: int,
        rank: int,
        force: bool,
        ekfac: bool = False,
    ) -> None:
        kind = choose(CurvatureKind, kind, "curvature: kind").value
        structure = choose(CurvatureStructure, structure, "curvature: structure").value
        reduction = choose(Reduction, reduction, "curvature: reduction").value
        self.model, self.kind, self.structure = model, kind, structure
        self.params = params
        self._y, self._x = y, x
        self.n = int(jax.tree_util.tree_leaves(y)[0].shape[0])
        self.scale = 1.0 / self.n if reduction == "mean" else 1.0
        self.flat, self._unravel = flatten_params(params)
        self._names: list[str] | None = None
        self.p = int(self.flat.shape[0])
        self.dtype = self.flat.dtype
        self._key = jax.random.PRNGKey(seed)
        self.num_samples = num_samples
        self.error: Any = None  # per-entry standard errors where the structure is an estimate
        self._eigen_correction = bool(ekfac)
        self._trace_error = 0.0  # Hutchinson's, for the Hessian's estimated diagonal
        state = model.state
        sig = ("curvature", kind, num_samples, tree_signature(params), tree_signature(x), tree_signature(y))
        # the head's factor; for the Hessian the empirical one's pass, only to check the data
        head_kind = "empirical" if kind == "hessian" else kind
        fk = state.kernel(
            ("curvature", head_kind, num_samples, *sig[3:], "factor"),
            lambda: factor_kernel(model, head_kind, num_samples, self._unravel),
        )
        head = fk(self.flat, y, x, self._key)
        self._factor, self._signs = head.factor, head.signs
        # every kind: rows outside the support are named before anything is computed
        valid = np.asarray(head.valid)
        if not valid.all():
            row = int(np.flatnonzero(~valid)[0])
            raise InvalidDataError(
                f"y at row {row} = {np.asarray(jax.tree_util.tree_leaves(y)[0][row])} is outside the "
                f"support of the model's distribution ({int((~valid).sum())} rows); for a "
                "Categorical head labels are integers 0..K-1"
            )
        ll = np.asarray(head.loglik)
        check_finite("log-likelihood", np.where(np.isneginf(ll), 0.0, ll))
        check_finite(f"head's {head_kind} matrix", np.asarray(self._factor))
        if kind == "hessian":
            self._mv = state.kernel((*sig, "mv"), lambda: hessian_mv_kernel(model, self._unravel))
        else:
            self._vjp_kernel = state.kernel((*sig, "vjp"), lambda: vjp_kernel(model, kind, self._unravel))
            self._vjp: Any = None  # the stored reverse pass, made on the first product
            self._mv = state.kernel(("curvature", "mv"), mv_kernel)
        self._sig = sig
        sizes = [int(np.size(leaf)) for leaf in jax.tree_util.tree_leaves(params)]
        self.layers = _layer_groups(params, sizes)
        self._dense: np.ndarray | None = None
        self._diag: np.ndarray | None = None
        self._blocks: list[np.ndarray] | None = None
        self._low: tuple[np.ndarray, np.ndarray] | None = None
        self._kfac: list[_Kron] | None = None
        self._rest: list[tuple[int, int]] = []
        self._rest_diag = np.zeros(0)
        if structure == "dense":
            self._check_size(self.p, force)
            self._dense = self._gram([(0, self.p)], diagonal=False)[0]
        elif structure == "diagonal":
            self._diag = self._layer_diagonal() if kind != "hessian" else self._exact_diagonal()
        elif structure == "block":
            for _, a, b in self.layers:
                self._check_size(b - a, force)
            self._blocks = self._gram([(a, b) for _, a, b in self.layers], diagonal=False)
        elif structure == "lowrank":
            values, vectors = self._lanczos(min(rank, self.p))
            self._low = (values, vectors)
            remainder = self._exact_diagonal() - (vectors**2) @ values
            # what the top eigenpairs leave of a positive semi-definite C is PSD: its diagonal is
            # >= 0 up to rounding; a GGN or Hessian may be indefinite and keeps its sign
            psd = kind in ("fisher", "mc_fisher", "empirical")
            self._diag = np.maximum(remainder, 0.0) if psd else remainder
        elif structure == "kfac":
            self._build_kfac()

    # ------------------------------------------------------------------ helpers
    @property
    def names(self) -> list[str]:
        """The parameter names (:func:`fisherlab.param_names`), made on first use (a network has many)."""
        if self._names is None:
            self._names = param_names(self.params)
        return self._names

    def __repr__(self) -> str:
        return (
            f"Curvature(kind={self.kind!r}, structure={self.structure!r}, P={self.p}, N={self.n}, "
            f"layers={len(self.layers)})"
        )

    def _check_size(self, size: int, force: bool) -> None:
        need = size * size * np.dtype(self.dtype).itemsize
        if need > MAX_DENSE_BYTES and not force:
            raise MethodUnavailableError(
                f"a dense {size} x {size} matrix needs {need / 2**30:.1f} GiB (more than "
                f"{MAX_DENSE_BYTES / 2**30:.0f} GiB); use structure='diagonal', 'lowrank' or "
                "'operator', or pass force=True"
            )

    def _flat(self, v: Any, what: str = "v") -> jax.Array:
        try:
            leaves_v, tree_v = jax.tree_util.tree_flatten(v)
            leaves_p, tree_p = jax.tree_util.tree_flatten(self.params)
        except Exception as exc:  # pragma: no cover - tree_flatten takes anything
            raise FisherlabArgumentError(f"{what} must be a pytree shaped like params") from exc
        shapes_v, shapes_p = [np.shape(a) for a in leaves_v], [np.shape(b) for b in leaves_p]
        if str(tree_v) != str(tree_p) or shapes_v != shapes_p:
            raise FisherlabArgumentError(
                f"{what} must be a pytree shaped like params ({tree_p}, shapes {shapes_p}); got "
                f"{tree_v} with shapes {shapes_v}"
            )
        flat = jnp.concatenate([jnp.ravel(jnp.asarray(a, dtype=self.dtype)) for a in leaves_v])
        if not bool(jnp.all(jnp.isfinite(flat))):
            raise FisherlabArgumentError(f"{what} has NaN or infinite entries")
        return flat

    def _tree(self, flat: Any) -> Any:
        return self._unravel(jnp.asarray(flat, dtype=self.dtype))

    def _apply_jax(self, vs: jax.Array) -> jax.Array:
        """The exact curvature (not the structure's approximation) times the rows of ``vs`` (m, P),
        traceable (for conjugate gradients, Lanczos and stochastic Lanczos quadrature)."""
        if self.kind == "hessian":
            out = self._mv(self.flat, self._y, self._x, vs)
        else:
            out = self._mv(self._stored_vjp(), self._factor, self._signs, vs)
        return out if self.scale == 1.0 else out * jnp.asarray(self.scale, dtype=out.dtype)

    def _apply(self, vs: jax.Array) -> np.ndarray:
        """:meth:`_apply_jax` as float64 NumPy."""
        return np.asarray(self._apply_jax(vs), dtype=np.float64)

    def _stored_vjp(self) -> Any:
        """The stored reverse pass of the network, made on first use (outside any trace: the
        closures of :meth:`_matvec` are traced by conjugate gradients and Lanczos)."""
        if self._vjp is None:
            self._vjp = self._vjp_kernel(self.flat, self._y, self._x)
        return self._vjp

    def _matvec(self, delta: float = 0.0) -> Callable[[jax.Array], jax.Array]:
        """``u -> (C + delta I) u`` on one flat vector, traceable."""
        if self.kind != "hessian":
            self._stored_vjp()

        def matvec(u: jax.Array) -> jax.Array:
            return self._apply_jax(u[None])[0] + delta * u

        return matvec

    def _gram(self, groups: list[tuple[int, int]], diagonal: bool) -> list[np.ndarray]:
        if self.kind == "hessian":
            if diagonal:
                raise AssertionError("the Hessian's diagonal is estimated")  # pragma: no cover
            out = []
            for a, b in groups:  # P Hessian-vector products per block: exact
                eye = jnp.eye(self.p, dtype=self.dtype)[a:b]
                cols = self._apply(eye)
                out.append(0.5 * (cols[:, a:b] + cols[:, a:b].T))
            return out
        key = (*self._sig, "gram", tuple(groups), diagonal)
        kernel = self.model.state.kernel(
            key, lambda: gram_kernel(self.model, self.kind, self._unravel, groups, diagonal)
        )
        blocks = kernel(self.flat, self._x, self._factor, self._signs)
        return [np.asarray(b, dtype=np.float64) * self.scale for b in blocks]

    def _exact_diagonal(self) -> np.ndarray:
        if self.kind == "hessian":
            est = self._hutchinson_diagonal()
            self.error, self._trace_error = est[1], est[2]
            return est[0]
        return self._gram([(0, self.p)], diagonal=True)[0]

    def _hutchinson_diagonal(self) -> tuple[np.ndarray, np.ndarray, float]:
        """Hutchinson's diagonal :math:`\\frac1S\\sum_s z_s \\odot C z_s` (Rademacher :math:`z_s`),
        the standard error of each entry, and that of the trace: the entries share their probes, so
        the trace's error comes from the probes' totals :math:`z_s^\\top C z_s`."""
        if self.p <= NUM_PROBES:  # as cheap to be exact: P products with unit vectors
            cols = self._apply(jnp.eye(self.p, dtype=self.dtype))
            return np.diag(cols).copy(), np.zeros(self.p), 0.0
        z = jax.random.rademacher(self._key, (NUM_PROBES, self.p), dtype=self.dtype)
        cz = self._apply(z)
        samples = np.asarray(z, dtype=np.float64) * cz
        root = math.sqrt(NUM_PROBES)
        trace_error = float(samples.sum(axis=1).std(ddof=1) / root)
        return samples.mean(axis=0), samples.std(axis=0, ddof=1) / root, trace_error

    def _lanczos(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` eigenpairs (descending) of the exact curvature by Lanczos, full reorthogonalisation."""
        steps = min(self.p, max(2 * k + 20, 40))
        if steps >= self.p:  # the whole space: exact (P products)
            dense = self._apply(jnp.eye(self.p, dtype=self.dtype))
            w, v = np.linalg.eigh(0.5 * (dense + dense.T))
        else:
            start = jax.random.normal(self._key, (self.p,), dtype=self.dtype)
            w, v = _ritz_pairs(self._matvec(), start, steps)
        order = np.argsort(w)[::-1][:k]
        return np.asarray(w[order]), np.asarray(v[:, order])

    # ------------------------------------------------------------------ dense layers
    def _leaf_ranges(self) -> list[tuple[int, int]]:
        out, start = [], 0
        for leaf in jax.tree_util.tree_leaves(self.params):
            size = int(np.size(leaf))
            out.append((start, start + size))
            start += size
        return out

    def _find_layers(self) -> Tagged | None:
        """The model's dense layers (:mod:`._layers`), or ``None`` where none can be used (kept per
        model and shapes: the jaxpr is traced once)."""
        if self.kind == "hessian" or self._factor.shape[1] != 1:
            return None
        cache = _LAYERS.setdefault(self.model, {})
        if self._sig not in cache:
            cache[self._sig] = self._trace_layers()
        return cache[self._sig]

    def _trace_layers(self) -> Tagged | None:
        leaves, treedef = jax.tree_util.tree_flatten(self.params)
        model, kind, n = self.model, self.kind, self.n

        def eta_of_leaves(lv: list[Any], xx: Any) -> Any:
            return head_map(model, kind, xx, n)(jax.tree_util.tree_unflatten(treedef, lv))

        names = [_layer_name(p) for p, _ in jax.tree_util.tree_flatten_with_path(self.params)[0]]
        try:
            tagged = find_layers(eta_of_leaves, leaves, self._x, n, names)
        except Exception:  # a computation the interpreter does not follow: the per-row path
            return None
        return tagged if tagged.layers else None

    def _layer_stats(self, tagged: Tagged, kfac: bool, rotations: Any = None) -> list[Any]:
        key = (*self._sig, "layers", kfac, rotations is not None, tuple(tagged.layers))
        kernel = self.model.state.kernel(key, lambda: layer_stats_kernel(tagged, kfac))
        leaves = jax.tree_util.tree_leaves(self.params)
        out = kernel(leaves, self._x, self._factor, self._signs, rotations)
        return jax.tree_util.tree_map(lambda a: np.asarray(a, dtype=np.float64), out)

    def _uncovered_diagonal(self, covered: set[int]) -> tuple[list[tuple[int, int]], np.ndarray]:
        """The flat ranges of the leaves outside ``covered`` (the dense layers' leaves) and a
        ``(P,)`` vector holding the exact diagonal there (the Hessian's estimated), zero elsewhere."""
        rest = [r for i, r in enumerate(self._leaf_ranges()) if i not in covered and r[1] > r[0]]
        diag = np.zeros(self.p)
        if rest and self.kind == "hessian":  # estimated over all parameters at once
            estimate = self._exact_diagonal()
            for a, b in rest:
                diag[a:b] = estimate[a:b]
        elif rest:
            for (a, b), d in zip(rest, self._gram(rest, diagonal=True), strict=True):
                diag[a:b] = d
        return rest, diag

    def _layer_diagonal(self) -> np.ndarray:
        """The exact diagonal: dense layers by one product each (:mod:`._layers`), the rest per row."""
        tagged = self._find_layers()
        if tagged is None:
            return self._exact_diagonal()
        ranges = self._leaf_ranges()
        diag = np.zeros(self.p)
        covered: set[int] = set()
        for layer, d in zip(tagged.layers, self._layer_stats(tagged, kfac=False), strict=True):
            d = d * self.scale
            a, b = ranges[layer.w]
            d_w = d[: d.shape[0] - (layer.b is not None)]
            diag[a:b] = (d_w if layer.w_in_axis == 0 else d_w.T).ravel()
            covered.add(layer.w)
            if layer.b is not None:
                a, b = ranges[layer.b]
                diag[a:b] = d[-1]
                covered.add(layer.b)
        _, rest_diag = self._uncovered_diagonal(covered)
        return diag + rest_diag

    def _build_kfac(self) -> None:
        """Kronecker factors per dense layer; every other parameter keeps its exact diagonal."""
        tagged = self._find_layers()
        ranges = self._leaf_ranges()
        self._kfac = []
        covered: set[int] = set()
        if tagged is not None:
            for layer, (big_a, big_g) in zip(
                tagged.layers, self._layer_stats(tagged, kfac=True), strict=True
            ):
                big_g = big_g * (self.scale / self.n)
                wa, wb = ranges[layer.w]
                ba = ranges[layer.b] if layer.b is not None else None
                shape = tuple(np.shape(jax.tree_util.tree_leaves(self.params)[layer.w]))
                self._kfac.append(_Kron(layer, (wa, wb), ba, shape, big_a, big_g))
                covered.add(layer.w)
                if layer.b is not None:
                    covered.add(layer.b)
            if self._eigen_correction:  # EKFAC: the exact diagonal in each layer's Kronecker eigenbasis
                rotations = [(k.qa, k.qg) for k in self._kfac]
                for k, values in zip(self._kfac, self._layer_stats(tagged, False, rotations), strict=True):
                    k.correct(values * self.scale)
        self._rest, self._rest_diag = self._uncovered_diagonal(covered)
        if self._rest:
            names = sorted({self.names[a].split("[")[0] for a, _ in self._rest})
            warnings.warn(
                f"structure='kfac': {', '.join(names)} {'is' if len(names) == 1 else 'are'} not in a "
                "dense layer fisherlab can factor (a weight used more than once, a convolution, a "
                "parameter outside a layer, or kind='hessian'); their diagonal is used instead",
                UserWarning,
                stacklevel=4,
            )

    # ------------------------------------------------------------------ public
    def mv(self, v: Any) -> Any:
        """:math:`C v` for a pytree ``v`` shaped like ``params`` (this structure's :math:`C`)."""
        flat = self._flat(v)
        if self.structure == "operator":  # stays in JAX, in the parameters' dtype
            return self._unravel(self._apply_jax(flat[None])[0])
        return self._tree(self._mv_flat(np.asarray(flat, dtype=np.float64)))

    def _mv_flat(self, v: np.ndarray) -> np.ndarray:
        if self._kfac is not None:
            out = self._rest_diag * v
            for k in self._kfac:
                k.put(out, k.apply(k.take(v)))
            return out
        if self._dense is not None:
            return self._dense @ v
        if self.structure == "diagonal":
            assert self._diag is not None
            return self._diag * v
        if self._blocks is not None:
            out = np.zeros_like(v)
            for (_, a, b), block in zip(self.layers, self._blocks, strict=True):
                out[a:b] = block @ v[a:b]
            return out
        if self._low is not None:
            values, vectors = self._low
            assert self._diag is not None
            return vectors @ (values * (vectors.T @ v)) + self._diag * v
        return self._apply(jnp.asarray(v, dtype=self.dtype)[None])[0]

    def diagonal(self) -> Any:
        """The diagonal of this structure's :math:`C`, a pytree shaped like ``params``.

        Exact for every kind but ``"hessian"`` on the operator and diagonal structures (a
        Hutchinson estimate then, its standard errors in ``.error`` after the call).
        """
        return self._tree(self._diagonal_flat())

    def _diagonal_flat(self) -> np.ndarray:
        if self._kfac is not None:
            out = self._rest_diag.copy()
            for k in self._kfac:
                k.put(out, k.diagonal())
            return out
        if self._dense is not None:
            return np.diag(self._dense).copy()
        if self._blocks is not None:
            return np.concatenate([np.diag(b) for b in self._blocks])
        if self._low is not None:
            values, vectors = self._low
            assert self._diag is not None
            return (vectors**2) @ values + self._diag
        if self._diag is None:
            self._diag = self._exact_diagonal()
        return self._diag.copy()

    def to_dense(self, *, force: bool = False) -> InfoMatrix:
        """This structure's :math:`C` as a labelled :math:`P\\times P` matrix.

        Raises:
            MethodUnavailableError: the matrix would take more than :data:`MAX_DENSE_BYTES`
                (2 GiB; the message gives the size) and ``force`` is false.
        """
        self._check_size(self.p, force)
        if self._dense is not None:
            m = self._dense
        elif self.structure == "operator":
            self._dense = m = self._gram([(0, self.p)], diagonal=False)[0]
        else:
            m = np.stack([self._mv_flat(e) for e in np.eye(self.p)], axis=1)
        return InfoMatrix(m, self.names, method=f"{self.kind} ({self.structure})")

    def solve(self, v: Any, damping: float = 0.0) -> Any:
        """:math:`(C + \\delta I)^{-1} v` for a pytree ``v`` shaped like ``params``.

        Dense, block and diagonal structures solve directly; low rank by Woodbury's identity;
        the operator by conjugate gradients (for a positive definite :math:`C + \\delta I`).

        Raises:
            SingularInformationError: :math:`C + \\delta I` is singular or, for conjugate
                gradients, not positive definite (add ``damping``).
            NotConvergedError: conjugate gradients did not reach a relative residual of 1e-10.
        """
        delta = _damping(damping)
        rhs = np.asarray(self._flat(v), dtype=np.float64)
        if self._kfac is not None:
            d = self._rest_diag + delta
            out = np.zeros(self.p)
            for a, b in self._rest:
                if np.any(d[a:b] <= 0):
                    raise SingularInformationError(_singular_message(self, delta))
                out[a:b] = rhs[a:b] / d[a:b]
            for k in self._kfac:
                lam = k.eigenvalues() + delta
                if np.any(lam <= 0):
                    raise SingularInformationError(_singular_message(self, delta))
                k.put(out, k.solve(k.take(rhs), lam))
            return self._tree(out)
        if self._dense is not None:
            out = _dense_solve(self._dense, delta, rhs)
        elif self.structure == "diagonal":
            d = self._diagonal_flat() + delta
            if np.any(d <= 0):
                raise SingularInformationError(_singular_message(self, delta))
            out = rhs / d
        elif self._blocks is not None:
            out = np.concatenate(
                [
                    _dense_solve(b, delta, rhs[a:c])
                    for (_, a, c), b in zip(self.layers, self._blocks, strict=True)
                ]
            )
        elif self._low is not None:
            out = self._woodbury(delta, rhs)
        else:
            out = self._cg(delta, rhs)
        return self._tree(out)

    def _woodbury(self, delta: float, rhs: np.ndarray) -> np.ndarray:
        assert self._low is not None and self._diag is not None
        values, vectors = self._low
        d: np.ndarray = self._diag + delta
        if np.any(d <= 0) or np.any(values <= 0):
            raise SingularInformationError(_singular_message(self, delta))
        inner = np.diag(1.0 / values) + (vectors.T / d) @ vectors
        return rhs / d - (vectors / d[:, None]) @ np.linalg.solve(inner, (vectors.T @ (rhs / d)))

    def _cg(self, delta: float, rhs: np.ndarray) -> np.ndarray:
        from jax.scipy.sparse.linalg import cg

        matvec = self._matvec(delta)
        b = jnp.asarray(rhs, dtype=self.dtype)
        sol, _ = cg(matvec, b, tol=1e-12, maxiter=10 * self.p)
        out = np.asarray(sol, dtype=np.float64)
        scale = max(float(np.linalg.norm(rhs)), 1e-300)
        resid = float(np.linalg.norm(np.asarray(matvec(jnp.asarray(out, dtype=self.dtype))) - rhs)) / scale
        if not np.isfinite(resid) or resid > 1e-6:
            raise NotConvergedError(
                f"conjugate gradients for (C + {delta:g} I) x = v stopped at relative residual "
                f"{resid:.2e}: C + damping·I may not be positive "
                "definite or is badly conditioned; add damping or use structure='dense'"
            )
        return out

    def logdet(self, damping: float = 0.0) -> float:
        """:math:`\\log\\det(C + \\delta I)` of this structure's :math:`C`.

        Exact for dense, block, diagonal and low-rank structures; for the operator, stochastic
        Lanczos quadrature (:data:`NUM_PROBES` probes; its standard error is ``.error`` after
        the call), exact up to :data:`EXACT_LOGDET_MAX_PARAMS` parameters (the matrix is built).

        Raises:
            SingularInformationError: :math:`C + \\delta I` is not positive definite.
        """
        delta = _damping(damping)
        if self._kfac is not None:
            values = np.concatenate(
                [k.eigenvalues().ravel() for k in self._kfac] + [self._rest_diag[a:b] for a, b in self._rest]
            )
            if np.any(values + delta <= 0):
                raise SingularInformationError(_singular_message(self, delta))
            return float(np.sum(np.log(values + delta)))
        if self._dense is not None or (self.structure == "operator" and self.p <= EXACT_LOGDET_MAX_PARAMS):
            m = self._dense if self._dense is not None else self.to_dense().matrix
            return _dense_logdet(self, m, delta)
        if self._blocks is not None:
            return float(sum(_dense_logdet(self, b, delta) for b in self._blocks))
        if self.structure == "diagonal":
            d = self._diagonal_flat() + delta
            if np.any(d <= 0):
                raise SingularInformationError(_singular_message(self, delta))
            return float(np.sum(np.log(d)))
        if self._low is not None:
            assert self._diag is not None
            values, vectors = self._low
            d = self._diag + delta
            if np.any(d <= 0) or np.any(values <= 0):
                raise SingularInformationError(_singular_message(self, delta))
            inner = np.diag(1.0 / values) + (vectors.T / d) @ vectors
            _, logdet_inner = np.linalg.slogdet(inner)
            return float(np.sum(np.log(d)) + logdet_inner + np.sum(np.log(values)))
        return self._slq_logdet(delta)

    def _slq_logdet(self, delta: float) -> float:
        from matfree import decomp, funm, stochtrace

        matvec = self._matvec(delta)
        integrand = funm.monte_carlo_funm_sym_logdet(decomp.tridiag_sym(min(self.p, 30), reortho="full"))
        sampler = stochtrace.sampler_normal(jnp.zeros(self.p, self.dtype), num=NUM_PROBES)
        mean, sem = stochtrace.estimator_monte_carlo_mean_and_sem(integrand, sampler)(matvec, self._key)
        self.error = float(sem)
        return float(mean)

    def trace(self) -> Estimate:
        """:math:`\\operatorname{tr} C`: exact (error 0.0) but for the Hessian's operator and
        diagonal structures (Hutchinson's estimate with its standard error)."""
        if self.kind == "hessian" and self.structure in ("operator", "diagonal"):
            d = self._diagonal_flat()
            return Estimate(float(d.sum()), self._trace_error)
        return Estimate(float(self._diagonal_flat().sum()), 0.0)

    def _kfac_eigh(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        assert self._kfac is not None
        cands: list[tuple[float, int, int, int]] = []  # (value, factor or -1, i, j)
        for f, kr in enumerate(self._kfac):
            vals = kr.eigenvalues()
            for flat_index in np.argsort(vals, axis=None)[::-1][:k]:
                i, j = np.unravel_index(flat_index, vals.shape)
                cands.append((float(vals[i, j]), f, int(i), int(j)))
        for a, b in self._rest:
            for idx in range(a, b):
                cands.append((float(self._rest_diag[idx]), -1, idx, 0))
        cands.sort(key=lambda c: -c[0])
        values, vectors = [], []
        for value, f, i, j in cands[:k]:
            vec = np.zeros(self.p)
            if f < 0:
                vec[i] = 1.0
            else:
                kr = self._kfac[f]
                kr.put(vec, np.outer(kr.qa[:, i], kr.qg[:, j]))
            values.append(value)
            vectors.append(vec)
        return np.array(values), np.stack(vectors, axis=1)

    def eigh(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` largest eigenvalues (descending), eigenvectors ``(P, k)``, of this structure's :math:`C`.

        Rows of the vectors follow :func:`fisherlab.param_names`. Dense and block structures are
        exact (``numpy.linalg.eigh``), the diagonal's are its largest entries, low rank its
        stored pairs, and the operator's come from Lanczos with full reorthogonalisation.
        """
        k = count(k, "eigh: k", what="eigenpairs")
        if k > self.p:
            raise InvalidOptionError(f"eigh: k = {k} is more than the {self.p} parameters")
        if self._kfac is not None:
            return self._kfac_eigh(k)
        if self._dense is not None:
            w, v = np.linalg.eigh(self._dense)
            order = np.argsort(w)[::-1][:k]
            return w[order], v[:, order]
        if self._blocks is not None:
            ws, vs = [], []
            for (_, a, b), block in zip(self.layers, self._blocks, strict=True):
                w, v = np.linalg.eigh(block)
                full = np.zeros((self.p, v.shape[1]))
                full[a:b] = v
                ws.append(w)
                vs.append(full)
            w, v = np.concatenate(ws), np.concatenate(vs, axis=1)
            order = np.argsort(w)[::-1][:k]
            return w[order], v[:, order]
        if self.structure == "diagonal":
            d = self._diagonal_flat()
            order = np.argsort(d)[::-1][:k]
            return d[order], np.eye(self.p)[:, order]
        if self._low is not None and k <= self._low[0].size:
            return self._low[0][:k].copy(), self._low[1][:, :k].copy()
        return self._lanczos(k)


class _Kron:
    """One dense layer's Kronecker factors: :math:`C_l \\approx A \\otimes G` on
    :math:`\\tilde V = [W; b]` laid out as ``(d_in [+1], d_out)``, with their eigendecompositions."""

    def __init__(
        self,
        layer: DenseLayer,
        w: tuple[int, int],
        b: tuple[int, int] | None,
        shape: tuple[int, ...],
        big_a: np.ndarray,
        big_g: np.ndarray,
    ) -> None:
        self.layer, self.w, self.b, self.shape = layer, w, b, shape
        self.big_a, self.big_g = 0.5 * (big_a + big_a.T), 0.5 * (big_g + big_g.T)
        self._eig: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self.corrected: np.ndarray | None = None

    def correct(self, values: np.ndarray) -> None:
        """EKFAC: the layer's matrix becomes :math:`(Q_A \\otimes Q_G)\\,\\operatorname{diag}(s)\\,
        (Q_A \\otimes Q_G)^\\top` with ``values`` :math:`s` ``(d_in [+1], d_out)``."""
        self.corrected = values

    def eigenvalues(self) -> np.ndarray:
        """``(d_in [+1], d_out)``: :math:`\\lambda_a \\lambda_g` (K-FAC) or the corrected ones (EKFAC)."""
        return self.corrected if self.corrected is not None else np.outer(self.la, self.lg)

    def apply(self, m: np.ndarray) -> np.ndarray:
        """The layer's matrix times ``m`` ``(d_in [+1], d_out)``."""
        if self.corrected is None:
            return self.big_a @ m @ self.big_g
        qa, qg = self.qa, self.qg
        return qa @ ((qa.T @ m @ qg) * self.corrected) @ qg.T

    def solve(self, m: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """The layer's matrix inverse times ``m``, with ``lam`` its (damped) eigenvalues."""
        return self.qa @ ((self.qa.T @ m @ self.qg) / lam) @ self.qg.T

    def diagonal(self) -> np.ndarray:
        if self.corrected is None:
            return np.outer(np.diag(self.big_a), np.diag(self.big_g))
        return (self.qa**2) @ self.corrected @ (self.qg**2).T

    def _eigh(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if self._eig is None:  # made on the first solve, logdet or eigh
            la, qa = np.linalg.eigh(self.big_a)
            lg, qg = np.linalg.eigh(self.big_g)
            self._eig = (la, qa, lg, qg)
        return self._eig

    @property
    def la(self) -> np.ndarray:
        return self._eigh()[0]

    @property
    def qa(self) -> np.ndarray:
        return self._eigh()[1]

    @property
    def lg(self) -> np.ndarray:
        return self._eigh()[2]

    @property
    def qg(self) -> np.ndarray:
        return self._eigh()[3]

    def take(self, v: np.ndarray) -> np.ndarray:
        """The layer's entries of a flat vector as ``(d_in [+1], d_out)``."""
        m = v[self.w[0] : self.w[1]].reshape(self.shape)
        m = m if self.layer.w_in_axis == 0 else m.T
        if self.b is not None:
            m = np.vstack([m, v[self.b[0] : self.b[1]][None, :]])
        return m

    def put(self, out: np.ndarray, m: np.ndarray) -> None:
        """Write ``(d_in [+1], d_out)`` back into the layer's entries of a flat vector."""
        if self.b is not None:
            out[self.b[0] : self.b[1]] = m[-1]
            m = m[:-1]
        out[self.w[0] : self.w[1]] = (m if self.layer.w_in_axis == 0 else m.T).ravel()


def _ritz_pairs(
    matvec: Callable[[jax.Array], jax.Array], start: jax.Array, steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Ritz pairs from matfree's Lanczos (full reorthogonalisation), eigenvectors as columns."""
    from matfree import decomp, eig

    values, vectors = eig.eigh_partial(decomp.tridiag_sym(steps, reortho="full"))(matvec, start)
    v = np.asarray(vectors, dtype=np.float64)
    if v.shape[0] != start.shape[0]:
        v = v.T
    return np.asarray(values, dtype=np.float64), v


def _damping(damping: Any) -> float:
    try:
        delta = float(damping)
    except (TypeError, ValueError) as exc:
        raise FisherlabArgumentError(f"damping must be a number >= 0, got {damping!r}") from exc
    if not math.isfinite(delta) or delta < 0:
        raise InvalidOptionError(f"damping must be a finite number >= 0, got {damping!r}")
    return delta


def _singular_message(c: Curvature, delta: float) -> str:
    return (
        f"the {c.kind} curvature ({c.structure}) plus damping {delta:g}·I is not positive definite "
        "(a direction the data do not inform, or an indefinite GGN/Hessian); add damping"
    )


def _dense_solve(m: np.ndarray, delta: float, rhs: np.ndarray) -> np.ndarray:
    a = m + delta * np.eye(m.shape[0])
    try:
        out = np.linalg.solve(a, rhs)
    except np.linalg.LinAlgError as exc:
        raise SingularInformationError(
            f"the curvature plus damping {delta:g}·I is singular; add damping"
        ) from exc
    if not np.all(np.isfinite(out)):
        raise SingularInformationError(f"the curvature plus damping {delta:g}·I is singular; add damping")
    return out


def _dense_logdet(c: Curvature, m: np.ndarray, delta: float) -> float:
    w = np.linalg.eigvalsh(0.5 * (m + m.T) + delta * np.eye(m.shape[0]))
    if w[0] <= 0:
        raise SingularInformationError(_singular_message(c, delta))
    return float(np.sum(np.log(w)))


def curvature(
    model: Model,
    params: Any,
    y: Any,
    x: Any = None,
    *,
    kind: str = "fisher",
    structure: str = "operator",
    reduction: str = "sum",
    num_samples: int = 1,
    seed: int = 0,
    rank: int = 20,
    force: bool = False,
    ekfac: bool = False,
) -> Curvature:
    r"""The curvature of ``model``'s log-likelihood on ``(y, x)`` at ``params``, as an object.

    .. math:: C = \sum_{i=1}^N J_i^\top M_i J_i, \qquad J_i = \partial\eta_i/\partial\theta

    (``reduction="mean"``: :math:`C/N`), :math:`\eta_i` the parameters of row :math:`i`'s
    distribution, :math:`M_i` the kind's matrix (:mod:`fisherlab.operators`): ``"fisher"``
    the registry's closed form :math:`I(\eta_i)` (any registered family as the head),
    ``"mc_fisher"`` the outer products of scores at ``num_samples`` labels per row drawn from
    the model (seeded), ``"empirical"`` :math:`g_i g_i^\top` at the observed labels,
    ``"ggn"`` :math:`\nabla^2_\eta[-\log p(y_i\mid\eta_i)]`; ``"hessian"`` is
    :math:`-\nabla^2_\theta \sum_i \log p(y_i\mid x_i,\theta)`.

    Args:
        model: an :class:`~fisherlab.Model` whose function takes all rows at once
            (``fn(params, x)`` with ``x`` of leading axis N returns a distribution of batch
            shape ``(N, ...)``).
        params: the parameter pytree (float32 stays float32).
        y: observations, leading axis N (integer class labels are kept as integers).
        x: inputs, leading axis N, or ``None``.
        kind: ``"fisher"``, ``"mc_fisher"``, ``"empirical"``, ``"ggn"`` or ``"hessian"``.
        structure: ``"operator"``, ``"dense"``, ``"diagonal"``, ``"block"``, ``"lowrank"``
            (``"kfac"`` is not available yet).
        reduction: ``"sum"`` or ``"mean"``.
        num_samples: labels drawn per row for ``"mc_fisher"``.
        seed: the seed of the sampled labels and of the stochastic estimates.
        rank: eigenpairs kept by ``structure="lowrank"``.
        force: build a dense matrix larger than :data:`MAX_DENSE_BYTES` anyway.
        ekfac: with ``structure="kfac"``, EKFAC's eigenvalue correction (George et al. 2018):
            in each layer's Kronecker eigenbasis :math:`Q_A \otimes Q_G` the eigenvalues
            :math:`\lambda_a\lambda_g/N` are replaced by the exact diagonal of the layer's block
            in that basis (the Frobenius-nearest matrix diagonal in it; one more pass).

    Returns:
        A :class:`Curvature`.

    Raises:
        InvalidOptionError: an unknown kind, structure or reduction; ``num_samples`` or
            ``rank`` below 1.
        InvalidDataError: NaN/inf data, rows that disagree.
        ModelError: the model function does not return a distribution, or one whose batch
            does not have the rows on its leading axis.
        MethodUnavailableError: ``kind="fisher"`` for a head without a closed form (use
            ``"mc_fisher"``); a dense matrix too large for memory (estimated size given);
            ``structure="kfac"``.
        FisherlabArgumentError: ``model`` is not an ``fl.Model``; bad parameters.

    Example:
        >>> import fisherlab as fl, jax.numpy as jnp, numpy as np
        >>> x = np.linspace(-1.0, 1.0, 50)[:, None]
        >>> y = (x[:, 0] > 0).astype(np.int32)
        >>> m = fl.Model(lambda th, x: fl.dist.Categorical(logits=x @ th["w"]))
        >>> C = fl.curvature(m, {"w": jnp.ones((1, 2))}, y, x, kind="fisher", structure="dense")
        >>> bool(np.allclose(C.to_dense().matrix, C.to_dense().matrix.T))
        True
    """
    require_model(model, "curvature")
    kind = choose(CurvatureKind, kind, "curvature: kind").value
    structure = choose(CurvatureStructure, structure, "curvature: structure").value
    reduction = choose(Reduction, reduction, "curvature: reduction").value
    num_samples = count(num_samples, "curvature: num_samples", what="sampled labels per row")
    rank = count(rank, "curvature: rank", what="eigenpairs")
    seed = seed_value(seed, "curvature: seed")
    if model.kind != "distribution":
        raise MethodUnavailableError(
            "curvature needs a model that returns a distribution (fl.Model(fn)); a Model.from_loglik "
            "model has no head to take the Fisher, GGN or sampled labels of"
        )
    params = as_params(params)
    data = prepare_data(y, x)
    return Curvature(
        model,
        params,
        data.y,
        data.x,
        kind=kind,
        structure=structure,
        reduction=reduction,
        num_samples=num_samples,
        seed=seed,
        rank=rank,
        force=bool(force),
        ekfac=bool(ekfac),
    )
