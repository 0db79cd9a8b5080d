r"""Autodiff kernels over rows of data: log-likelihood, scores, their Gram matrix, per-row curvature.

Each builder returns a function of ``(params, y, x)`` that :class:`~fisherlab.backends.AutodiffBackend`
jit-compiles once per model (``model.state.kernels``). Per-row work is ``vmap`` over rows; sums
over rows run in blocks (:func:`~fisherlab.data._blocks.sum_over_blocks`) so that no
``(N, P)`` intermediate larger than a block is held. Every kernel also returns the per-row
validity flags (:func:`~fisherlab.model._model.validity`).

- scores :math:`s_i = \nabla_\theta \ell_i`: ``vmap`` of ``value_and_grad``;
- :math:`\sum_i s_i s_i^\top`: per block :math:`S_b^\top S_b`;
- per-row Hessians :math:`\nabla^2 \ell_i`: forward over reverse (``jacfwd`` of ``grad``) per row;
- third derivatives of the total: ``jacfwd`` of ``hessian``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ..data._blocks import sum_over_blocks
from ..model._model import Model

__all__ = [
    "flat_row",
    "gram_kernel",
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


def loglik_kernel(model: Model) -> Kernel:
    def kernel(params: Any, y: Any, x: Any) -> Any:
        return jax.vmap(model.row_loglik, in_axes=row_axes(x))(params, y, x)

    return kernel


def score_kernel(model: Model) -> Kernel:
    def kernel(params: Any, y: Any, x: Any) -> Any:
        flat, unravel = ravel_pytree(params)
        row = jax.value_and_grad(flat_row(model, unravel), has_aux=True)
        (ll, flags), g = jax.vmap(row, in_axes=row_axes(x))(flat, y, x)
        return ll, g, flags

    return kernel


def gram_kernel(model: Model) -> Kernel:
    def kernel(params: Any, y: Any, x: Any) -> Any:
        flat, unravel = ravel_pytree(params)
        row = jax.value_and_grad(flat_row(model, unravel), has_aux=True)

        def block(data: Any) -> Any:
            (ll, flags), g = jax.vmap(row, in_axes=row_axes(x))(flat, *data)
            return g.T @ g, (ll, jnp.all(jnp.isfinite(g), axis=1), flags)

        m, (ll, finite, flags) = sum_over_blocks(block, (y, x))
        return ll, m, finite, flags

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
    r"""Third derivatives of the total log-likelihood, :math:`\sum_i \partial^3 \ell_i`, (P, P, P)."""

    def kernel(params: Any, y: Any, x: Any) -> Any:
        flat, unravel = ravel_pytree(params)
        row = flat_row(model, unravel)

        def total(f: jax.Array) -> jax.Array:
            ll, _ = jax.vmap(row, in_axes=row_axes(x))(f, y, x)
            return ll.sum()

        return jax.jacfwd(jax.hessian(total))(flat)

    return kernel
