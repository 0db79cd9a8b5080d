r"""Autodiff kernels over rows of data: log-likelihood, scores, their Gram matrix, per-row curvature.

Each builder returns a function of ``(params, y, x)`` that :class:`~fisherlab.backends.AutodiffBackend`
jit-compiles once per model (``model.state.kernels``). Per-row work is ``vmap`` over rows; sums
over rows run in blocks (:func:`~fisherlab.data._blocks.sum_over_blocks`) so that no
``(N, P)`` intermediate larger than a block is held. The kernels behind the public
functions reduce the per-row validity flags (:func:`~fisherlab.model._model.validity`) to
counts inside the compiled function (:func:`invalid_rows`), so a valid call moves no per-row
flags to the host; :func:`loglik_kernel` returns the flags themselves, for naming the first
invalid row when a count is not zero.

- scores :math:`s_i = \nabla_\theta \ell_i`: ``vmap`` of ``value_and_grad``;
- :math:`\sum_i s_i s_i^\top`: per block :math:`S_b^\top S_b`;
- per-row Hessians :math:`\nabla^2 \ell_i`: forward over reverse (``jacfwd`` of ``grad``) per row;
- third derivatives of the total: forward-over-forward over ``grad``, one slice per symmetric pair.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ..data._blocks import sum_over_blocks
from ..model._model import Model

__all__ = [
    "checked_loglik_kernel",
    "flat_row",
    "gram_kernel",
    "invalid_rows",
    "loglik_kernel",
    "row_axes",
    "rows_kernel",
    "score_kernel",
    "third_kernel",
]

Kernel = Callable[..., Any]


def row_axes(x: Any) -> tuple[None, int, int | None]:
    """``vmap`` axes of ``(params, y_row, x_row)``: parameters shared, rows mapped (x may be None)."""
    return (None, 0, None if x is None else 0)


def flat_row(model: Model, unravel: Callable[[jax.Array], Any]) -> Callable[..., Any]:
    """``(flat, y_row, x_row) -> (loglik, flags)`` of one row, as a function of the flat parameters."""

    def row(flat: jax.Array, y_row: Any, x_row: Any) -> Any:
        return model.row_loglik(unravel(flat), y_row, x_row)

    return row


def invalid_rows(ll: jax.Array | None, flags: dict[str, jax.Array]) -> jax.Array:
    """The number of failed row checks: validity flags, and (``ll`` given) log-likelihoods that are
    NaN or +inf. Zero exactly when every row passes.

    ``-inf`` (an observation impossible under the parameters) is a correct log-likelihood and
    not counted; the flags of the rows (:func:`~fisherlab.model._model.validity`) are. Each
    check is reduced on its own (a row failing two counts twice), so that a check shared by
    all rows (a parameter of iid rows) reduces to one value.
    """
    count = jnp.asarray(0) if ll is None else jnp.sum(jnp.isnan(ll) | jnp.isposinf(ll))
    for v in flags.values():
        count = count + jnp.sum(~v)
    return count


def _nonfinite_rows(g: jax.Array) -> jax.Array:
    return jnp.sum(~jnp.all(jnp.isfinite(g), axis=1))


def loglik_kernel(model: Model) -> Kernel:
    """Per-row log-likelihood and validity flags (the pass that names an invalid row)."""

    def kernel(params: Any, y: Any, x: Any) -> Any:
        return jax.vmap(model.row_loglik, in_axes=row_axes(x))(params, y, x)

    return kernel


def checked_loglik_kernel(model: Model) -> Kernel:
    """Per-row log-likelihood and the number of invalid rows."""

    def kernel(params: Any, y: Any, x: Any) -> Any:
        ll, flags = jax.vmap(model.row_loglik, in_axes=row_axes(x))(params, y, x)
        return ll, invalid_rows(ll, flags)

    return kernel


def score_kernel(model: Model) -> Kernel:
    """Scores (N, P), the number of invalid rows and the number of rows with a non-finite score."""

    def kernel(params: Any, y: Any, x: Any) -> Any:
        flat, unravel = ravel_pytree(params)
        row = jax.value_and_grad(flat_row(model, unravel), has_aux=True)
        (ll, flags), g = jax.vmap(row, in_axes=row_axes(x))(flat, y, x)
        return g, invalid_rows(ll, flags), _nonfinite_rows(g)

    return kernel


def gram_kernel(model: Model) -> Kernel:
    """:math:`\\sum_i s_i s_i^\\top`, the number of invalid rows and of rows with a non-finite score."""

    def kernel(params: Any, y: Any, x: Any) -> Any:
        flat, unravel = ravel_pytree(params)
        row = jax.value_and_grad(flat_row(model, unravel), has_aux=True)

        def block(data: Any) -> Any:
            (ll, flags), g = jax.vmap(row, in_axes=row_axes(x))(flat, *data)
            return (g.T @ g, invalid_rows(ll, flags), _nonfinite_rows(g)), ()

        return sum_over_blocks(block, (y, x))[0]

    return kernel


def row_curvature(row: Callable[..., Any]) -> Callable[..., Any]:
    """``(f, y_row, x_row) -> (ll, score, Hessian, aux)`` of a row function ``row(f, y_row, x_row) ->
    (ll, aux)``: one forward-over-reverse pass (the score is the Hessian pass's own primal)."""

    def per_row(f: jax.Array, y_row: Any, x_row: Any) -> Any:
        def grad_aux(g: jax.Array) -> Any:
            (ll, aux), s = jax.value_and_grad(row, has_aux=True)(g, y_row, x_row)
            return s, (ll, s, aux)

        h, (ll, s, aux) = jax.jacfwd(grad_aux, has_aux=True)(f)
        return ll, s, h, aux

    return per_row


def rows_kernel(model: Model) -> Kernel:
    """Per-row log-likelihood, score (N, P) and Hessian (N, P, P), with validity flags."""

    def kernel(params: Any, y: Any, x: Any) -> Any:
        flat, unravel = ravel_pytree(params)
        per_row = row_curvature(flat_row(model, unravel))
        return jax.vmap(per_row, in_axes=row_axes(x))(flat, y, x)

    return kernel


def third_kernel(model: Model) -> Kernel:
    r"""Third derivatives of the total log-likelihood, :math:`T_{jkl} = \sum_i \partial^3 \ell_i`, (P, P, P).

    :math:`T` is symmetric, so only its :math:`P(P+1)/2` slices :math:`T_{jk\cdot}`, :math:`j \le k`,
    are computed: each a forward-over-forward derivative of the gradient along
    :math:`(e_j, e_k)`, batched by ``vmap`` (15 passes at :math:`P = 5`, against :math:`P^2 = 25`
    for ``jacfwd(hessian)``); the others are copies.
    """

    def kernel(params: Any, y: Any, x: Any) -> Any:
        flat, unravel = ravel_pytree(params)
        row = flat_row(model, unravel)

        def total(f: jax.Array) -> jax.Array:
            ll, _ = jax.vmap(row, in_axes=row_axes(x))(f, y, x)
            return ll.sum()

        grad = jax.grad(total)
        p = flat.shape[0]
        j, k = np.triu_indices(p)
        eye = jnp.eye(p, dtype=flat.dtype)

        def slice_jk(ej: jax.Array, ek: jax.Array) -> jax.Array:
            return jax.jvp(lambda f: jax.jvp(grad, (f,), (ej,))[1], (flat,), (ek,))[1]

        slices = jax.vmap(slice_jk)(eye[j], eye[k])  # (P(P+1)/2, P): T[j, k, :]
        out = jnp.zeros((p, p, p), dtype=slices.dtype)
        return out.at[j, k].set(slices).at[k, j].set(slices)

    return kernel
