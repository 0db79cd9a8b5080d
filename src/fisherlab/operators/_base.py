r"""``fl.Curvature``: what every structure answers, on pytrees shaped like the parameters.

A structure (:mod:`._structures`, :mod:`._kfac`) keeps its approximation of
:math:`C` (:mod:`._exact`) and implements the flat, float64 NumPy forms ``_mv_flat``,
``_diagonal_flat``, ``_solve_flat``, ``_logdet`` and ``_eigh``; this class checks the
arguments, converts pytrees, and runs everything in the curvature's precision (JAX's 64-bit mode
as the parameters': float32 networks stay float32, :mod:`fisherlab._precision`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import (
    FisherlabArgumentError,
    InvalidOptionError,
    MethodUnavailableError,
    SingularInformationError,
)
from .._options import count, positive_number, seed_value
from .._precision import x64_scope
from ..information._matrix import InfoMatrix
from ..params._pytree import param_names
from ._exact import Exact, layer_groups
from ._spectrum import SpectralDensity, slq_density

__all__ = ["MAX_DENSE_BYTES", "Curvature", "Estimate"]

#: Largest dense matrix :meth:`Curvature.to_dense` (and ``structure="dense"``/``"block"``) builds
#: without ``force=True``: 2 GiB.
MAX_DENSE_BYTES = 2 * 2**30

F = TypeVar("F", bound=Callable[..., Any])


class Estimate(NamedTuple):
    """A number and its standard error (``error`` is 0.0 where the value is exact)."""

    value: float
    error: float


def _scoped(method: F) -> F:
    """Run a public method in the curvature's precision (:attr:`Curvature.x64`)."""

    @functools.wraps(method)
    def wrapper(self: Curvature, *args: Any, **kwargs: Any) -> Any:
        with x64_scope(self.x64):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class Curvature:
    """A curvature of a model on data (see :func:`fisherlab.curvature`); one subclass per structure.

    Attributes:
        kind, structure: as given to :func:`~fisherlab.curvature`.
        n: rows of the data (all chunks); p: parameters.
        scale: 1 (``reduction="sum"``) or :math:`1/N`.
        layers: ``(name, start, stop)`` of each layer's range in the flat vector (leaves grouped
            by their path without the last key).
        error: per-entry standard errors of an estimated diagonal (the Hessian's), or the
            standard error of the last stochastic ``logdet``; ``None`` where exact.
        x64: whether this curvature works with JAX's 64-bit mode on (the parameters' dtype).
    """

    structure = "operator"

    def __init__(self, exact: Exact, *args: Any, **kwargs: Any) -> None:
        if not isinstance(exact, Exact) or args or kwargs:
            raise FisherlabArgumentError(
                "a Curvature is made by fl.curvature(model, params, y, x, kind=..., structure=...), "
                "not by calling the class"
            )
        self.exact = exact
        self.model, self.kind, self.params = exact.model, exact.kind, exact.params
        self.n, self.p, self.scale, self.dtype = exact.n, exact.p, exact.scale, exact.dtype
        self.num_samples = exact.num_samples
        self.x64 = exact.x64
        self.layers = layer_groups(self.params)
        self.error: Any = None
        self._trace_error = 0.0
        self._names: list[str] | None = None

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

    # ------------------------------------------------------------------ pytrees
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
        return self.exact.unravel(jnp.asarray(flat, dtype=self.dtype))

    def _check_size(self, size: int, force: bool) -> None:
        need = size * size * np.dtype(self.dtype).itemsize
        if need > MAX_DENSE_BYTES and not force:
            raise MethodUnavailableError(
                f"a dense {size} x {size} matrix needs {need / 2**30:.1f} GiB (more than "
                f"{MAX_DENSE_BYTES / 2**30:.0f} GiB); use structure='diagonal', 'lowrank' or "
                "'operator', or pass force=True"
            )

    # ------------------------------------------------------------------ public
    @_scoped
    def mv(self, v: Any) -> Any:
        """:math:`C v` for a pytree ``v`` shaped like ``params`` (this structure's :math:`C`)."""
        return self._tree(self._mv_flat(np.asarray(self._flat(v), dtype=np.float64)))

    @_scoped
    def diagonal(self) -> Any:
        """The diagonal of this structure's :math:`C`, a pytree shaped like ``params``.

        Exact for every kind but ``"hessian"`` on the operator and diagonal structures (a
        Hutchinson estimate then, its standard errors in ``.error`` after the call).
        """
        return self._tree(self._diagonal_flat())

    @_scoped
    def to_dense(self, *, force: bool = False) -> InfoMatrix:
        """This structure's :math:`C` as a labelled :math:`P\\times P` matrix.

        Raises:
            MethodUnavailableError: the matrix would take more than :data:`MAX_DENSE_BYTES`
                (2 GiB; the message gives the size) and ``force`` is false.
        """
        self._check_size(self.p, force)
        return InfoMatrix(self._dense_matrix(), self.names, method=f"{self.kind} ({self.structure})")

    @_scoped
    def solve(self, v: Any, damping: float = 0.0) -> Any:
        """:math:`(C + \\delta I)^{-1} v` for a pytree ``v`` shaped like ``params``.

        Dense, block, diagonal and K-FAC structures solve directly; low rank by Woodbury's
        identity; the operator by conjugate gradients (for a positive definite :math:`C+\\delta I`).

        Raises:
            SingularInformationError: :math:`C + \\delta I` is singular or, for conjugate
                gradients, not positive definite (add ``damping``).
            NotConvergedError: conjugate gradients did not reach a relative residual of 1e-10.
        """
        delta = _damping(damping)
        return self._tree(self._solve_flat(delta, np.asarray(self._flat(v), dtype=np.float64)))

    @_scoped
    def logdet(self, damping: float = 0.0) -> float:
        """:math:`\\log\\det(C + \\delta I)` of this structure's :math:`C`.

        Exact for dense, block, diagonal, low-rank and K-FAC structures; for the operator,
        stochastic Lanczos quadrature (its standard error is ``.error`` after the call), exact up
        to ``EXACT_LOGDET_MAX_PARAMS`` parameters (:mod:`._structures`) (the matrix is built).

        Raises:
            SingularInformationError: :math:`C + \\delta I` is not positive definite.
        """
        return self._logdet(_damping(damping))

    @_scoped
    def trace(self) -> Estimate:
        """:math:`\\operatorname{tr} C`: exact (error 0.0) but for the Hessian's operator and
        diagonal structures (Hutchinson's estimate with its standard error)."""
        d = self._diagonal_flat()
        return Estimate(float(d.sum()), self._trace_error)

    @_scoped
    def eigh(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` largest eigenvalues (descending), eigenvectors ``(P, k)``, of this structure's :math:`C`.

        Rows of the vectors follow :func:`fisherlab.param_names`. Dense and block structures are
        exact (``numpy.linalg.eigh``), the diagonal's are its largest entries, low rank its
        stored pairs, K-FAC's the products of its factors' eigenpairs, and the operator's come
        from Lanczos with full reorthogonalisation.
        """
        k = count(k, "eigh: k", what="eigenpairs")
        if k > self.p:
            raise InvalidOptionError(f"eigh: k = {k} is more than the {self.p} parameters")
        return self._eigh(k)

    @_scoped
    def spectral_density(
        self,
        *,
        num_points: int = 200,
        num_probes: int = 10,
        steps: int = 80,
        sigma: float | None = None,
        seed: int | None = None,
    ) -> SpectralDensity:
        """The eigenvalue density of this structure's :math:`C` by stochastic Lanczos quadrature
        (:mod:`._spectrum`): ``num_probes`` normal start vectors, ``steps`` Lanczos products each
        (at most :math:`P`; full reorthogonalisation, matfree), every node smoothed by a Gaussian
        of width ``sigma`` (default 1% of the nodes' range). For the operator the products are the
        exact curvature's (batched over the probes); for the other structures their own matrix's.

        Returns:
            A :class:`SpectralDensity`: ``grid``, ``density`` (integrating to 1), the quadrature's
            ``nodes`` and ``weights`` per probe, and ``sigma``.
        """
        num_points = count(num_points, "spectral_density: num_points", what="grid points")
        num_probes = count(num_probes, "spectral_density: num_probes", what="probes")
        steps = min(count(steps, "spectral_density: steps", what="Lanczos steps"), self.p)
        if sigma is not None:
            sigma = positive_number(sigma, "spectral_density: sigma")
        key = (
            self.exact.key if seed is None else jax.random.PRNGKey(seed_value(seed, "spectral_density: seed"))
        )
        probes = jax.random.normal(jax.random.fold_in(key, 1), (num_probes, self.p), dtype=self.dtype)
        with self.exact.traced():
            return slq_density(self._traceable_matvec(), probes, steps, num_points, sigma)

    def _traceable_matvec(self) -> Callable[[jax.Array], jax.Array]:
        """``u -> C u`` of this structure, traceable and batched over vmapped probes (a host
        callback running :meth:`_mv_flat` per vector)."""

        def host(v: Any) -> np.ndarray:
            v = np.asarray(v, dtype=np.float64)
            rows = [self._mv_flat(r) for r in v.reshape(-1, self.p)]
            return np.stack(rows).reshape(v.shape).astype(self.dtype)

        def matvec(u: jax.Array) -> jax.Array:
            shape = jax.ShapeDtypeStruct(u.shape, self.dtype)
            return jax.pure_callback(host, shape, u, vmap_method="expand_dims")

        return matvec

    # ------------------------------------------------------------------ per structure
    def _mv_flat(self, v: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover

    def _diagonal_flat(self) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover

    def _solve_flat(self, delta: float, rhs: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover

    def _logdet(self, delta: float) -> float:
        raise NotImplementedError  # pragma: no cover

    def _eigh(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError  # pragma: no cover

    def _dense_matrix(self) -> np.ndarray:
        """This structure's matrix, one product per unit vector (structures that hold it override)."""
        return np.stack([self._mv_flat(e) for e in np.eye(self.p)], axis=1)

    def _singular(self, delta: float) -> SingularInformationError:
        return SingularInformationError(
            f"the {self.kind} curvature ({self.structure}) plus damping {delta:g}·I is not positive "
            "definite (a direction the data do not inform, or an indefinite GGN/Hessian); add damping"
        )

    def _positive_diagonal_solve(self, d: np.ndarray, rhs: np.ndarray, delta: float) -> np.ndarray:
        if np.any(d <= 0):
            raise self._singular(delta)
        return rhs / d

    def _positive_logdet(self, values: np.ndarray, delta: float) -> float:
        """:math:`\\sum \\log` of eigenvalues already shifted by ``delta``; raises when one is <= 0."""
        if np.any(values <= 0):
            raise self._singular(delta)
        return float(np.sum(np.log(values)))


def _damping(damping: Any) -> float:
    try:
        delta = float(damping)
    except (TypeError, ValueError) as exc:
        raise FisherlabArgumentError(f"damping must be a number >= 0, got {damping!r}") from exc
    if not math.isfinite(delta) or delta < 0:
        raise InvalidOptionError(f"damping must be a finite number >= 0, got {damping!r}")
    return delta


def dense_solve(m: np.ndarray, delta: float, rhs: np.ndarray) -> np.ndarray:
    """:math:`(M + \\delta I)^{-1}` ``rhs``; raises :class:`SingularInformationError` when singular."""
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


def top_eigenpairs(w: np.ndarray, v: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest of eigenpairs ``(w, v)`` (vectors as columns), descending."""
    order = np.argsort(w)[::-1][:k]
    return w[order], v[:, order]
