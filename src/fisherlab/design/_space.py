r"""Where a design may put its runs: candidate points, a box around them, and the prior nodes.

:class:`PointSpace` gives the information of one observation :math:`I_s(x)` at any points
:math:`x` for every prior node :math:`\theta_s` (one node for a locally optimal design), factored
for the algorithms of :mod:`._engine`; and, for the continuous refinement of :mod:`._refine`,
the design objective and a point's sensitivity as functions of the points' coordinates with
their gradients: by autodiff through
:math:`I(x) = \sum_b J_b(x)^\top W_b(x) J_b(x)` when the model is traced by JAX and its family
has a closed form, by finite differences (SciPy's) otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .._errors import FisherlabArgumentError, InvalidDataError
from ..backends import backend_for
from ..backends._chain_rule import weighted_gram
from ..information._fisher import family_parts
from ..information._points import point_information
from ..model._model import Model
from ._criteria import Spec, psi

__all__ = ["PointSpace", "as_bounds"]


def as_bounds(bounds: Any, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """``bounds`` (``(lo, hi)``, or one pair per coordinate) as two ``(dim,)`` arrays.

    Raises:
        FisherlabArgumentError: not pairs of finite numbers with ``lo < hi``, or the wrong count.
    """
    try:
        arr = np.asarray(bounds, dtype=np.float64)
    except (TypeError, ValueError):
        raise FisherlabArgumentError(
            f"bounds= must be (lo, hi) or one (lo, hi) pair per coordinate, got {bounds!r:.80}"
        ) from None
    if arr.shape == (2,) and dim == 1:
        arr = arr[None]
    if arr.shape != (dim, 2):
        raise FisherlabArgumentError(
            f"bounds= needs one (lo, hi) pair for each of the {dim} coordinates of a point, "
            f"got shape {arr.shape}"
        )
    bad = np.flatnonzero(~(np.isfinite(arr).all(axis=1) & (arr[:, 0] < arr[:, 1])))
    if bad.size:
        raise FisherlabArgumentError(
            f"bounds= for coordinate {int(bad[0])} is {arr[bad[0]].tolist()}: give finite lo < hi"
        )
    return arr[:, 0], arr[:, 1]


def _point_info(model: Model, params: Any, x_row: Any) -> jax.Array:
    """:math:`I(x) = \\sum_b J_b^\\top W_b J_b` of one point, a JAX function of params and x."""
    flat, unravel = ravel_pytree(params)

    def eta(f: jax.Array) -> jax.Array:
        return family_parts(model.distribution(unravel(f), x_row))[0]

    jac = jax.jacrev(eta)(flat)
    weights = family_parts(model.distribution(params, x_row))[1]
    k = weights.shape[-1]
    return weighted_gram(jac.reshape(-1, k, flat.shape[0]), weights.reshape(-1, k, k))


def _objective_kernel(model: Model, spec_kind: Any) -> Any:
    def objective(nodes: Any, pi: Any, xs: Any, w: Any, c: Any, keep: Any) -> Any:
        def node(params: Any) -> Any:
            infos = jax.vmap(lambda x: _point_info(model, params, x))(xs)
            return psi(spec_kind)(jnp.einsum("m,mpq->pq", w, infos), c, keep)

        return pi @ jax.vmap(node)(nodes)

    return jax.value_and_grad(objective, argnums=2)


def _sensitivity_kernel(model: Model) -> Any:
    def sensitivity(nodes: Any, pi: Any, x: Any, grads: Any) -> Any:
        infos = jax.vmap(lambda params: _point_info(model, params, x))(nodes)
        return jnp.einsum("s,spq,sqp->", pi, grads, infos)

    return jax.value_and_grad(sensitivity, argnums=2)


class PointSpace:
    """The information at any points for every prior node (module docstring).

    Args:
        model: the model.
        nodes: the parameter pytrees :math:`\\theta_s`, ``S`` of them.
        pi: their weights ``(S,)``, summing to 1.
        scalar_rows: the model's ``x`` rows are scalars (candidates of shape ``(N,)``).
        route: the information's route (``"exact"`` with autodiff gives exact gradients in x).
    """

    def __init__(self, model: Model, nodes: Sequence[Any], pi: np.ndarray, scalar_rows: bool) -> None:
        self.model, self.nodes, self.pi = model, list(nodes), np.asarray(pi, dtype=np.float64)
        self.scalar_rows = scalar_rows
        self.stacked = jax.tree_util.tree_map(lambda *a: jnp.stack([jnp.asarray(v) for v in a]), *self.nodes)
        self.autodiff: bool | None = None  # known after the first factors()
        self.names: list[str] = []

    def rows(self, xs: np.ndarray) -> Any:
        """``(m, d)`` coordinates as the model's rows of ``x``."""
        return xs[:, 0] if self.scalar_rows else xs

    def factors(self, x: Any) -> np.ndarray:
        """``(S, N, P, R)``: the factored :math:`I_s(x_i)` of every node at the points ``x``."""
        out = []
        for params in self.nodes:
            pts = point_information(self.model, params, x)
            out.append(pts.factors)
            self.names = pts.names
            if self.autodiff is None:
                backend = backend_for(self.model, params, None, x)
                self.autodiff = backend.name == "autodiff" and pts.route == "exact"
        widest = max(f.shape[-1] for f in out)
        return np.stack([np.pad(f, ((0, 0), (0, 0), (0, widest - f.shape[-1]))) for f in out])

    def objective(self, xs: np.ndarray, w: np.ndarray, spec: Spec) -> tuple[float, np.ndarray | None]:
        """The design objective :math:`\\sum_s \\pi_s \\psi(\\sum_j w_j I_s(x_j))` and its gradient in
        the coordinates ``(m, d)`` (``None`` without autodiff)."""
        if self.autodiff:
            kernel = self.model.state.kernel(
                ("design_objective", spec.kind.value), lambda: _objective_kernel(self.model, spec.kind)
            )
            value, grad = kernel(
                self.stacked, self.pi, jnp.asarray(self.rows(xs)), jnp.asarray(w), spec.c, spec.keep
            )
            grad = np.asarray(grad).reshape(xs.shape)
            return float(value), grad
        f = self.factors(self.rows(xs))
        m = np.einsum("j,sjpr,sjqr->spq", w, f, f)
        fn = psi(spec.kind)
        c, keep = jnp.asarray(spec.c), jnp.asarray(spec.keep)
        values = [float(fn(jnp.asarray(mi), c, keep)) for mi in m]
        return float(self.pi @ np.array(values)), None

    def sensitivity(self, x: np.ndarray, grads: np.ndarray) -> tuple[float, np.ndarray | None]:
        """A point's sensitivity :math:`\\sum_s \\pi_s \\operatorname{tr}(G_s I_s(x))` and its gradient."""
        if self.autodiff:
            kernel = self.model.state.kernel("design_sensitivity", lambda: _sensitivity_kernel(self.model))
            row = x[0] if self.scalar_rows else x
            value, grad = kernel(self.stacked, self.pi, jnp.asarray(row), jnp.asarray(grads))
            return float(value), np.asarray(grad).reshape(x.shape)
        f = self.factors(self.rows(x[None]))[:, 0]
        return float(np.einsum("s,spr,spq,sqr->", self.pi, f, grads, f)), None


def check_inside(xs: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    """Candidates outside ``bounds=`` are refused (a design must stay where runs can be made)."""
    bad = np.flatnonzero(((xs < lo) | (xs > hi)).any(axis=1))
    if bad.size:
        i = int(bad[0])
        raise InvalidDataError(
            f"candidate {i} ({xs[i].tolist()}) lies outside bounds= {np.stack([lo, hi], 1).tolist()}; "
            "widen the bounds or drop the candidate"
        )
