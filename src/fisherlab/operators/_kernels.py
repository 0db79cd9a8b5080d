r"""Compiled kernels of the curvature objects, kept on the model (``model.state.kernels``).

All work on flat parameter vectors (:func:`jax.flatten_util.ravel_pytree` order, which is
:func:`fisherlab.param_names` order) and on all rows at once; per-row work is ``vmap``:

- :func:`factor_kernel`, :func:`leaves_head_kernel`: the head's factor :math:`B_i`, signs and
  the rows' log-likelihoods, with the data checks reduced to three booleans
  (:func:`head_checks`);
- :func:`vjp_kernel` / :func:`mv_kernel`: :math:`C v = \sum_i J_i^\top B_i \sigma B_i^\top J_i v`
  from one reverse linearisation of :math:`\eta(\theta)` kept with the curvature
  (``jax.vjp``: :math:`J^\top w`; its transpose, ``jax.linear_transpose``: :math:`Jv`), never
  forming :math:`J` nor running the network again; :func:`hessian_mv_kernel`, for
  ``"hessian"``, the Hessian-vector product of :math:`-\sum_i\ell_i` (forward over reverse);
- :func:`gram_kernel`: the dense blocks :math:`\sum_i G_i \sigma G_i^\top` with
  :math:`G_i = J_i^\top B_i` restricted to groups of parameters (all parameters: ``"dense"``;
  one group per layer: ``"block"``; one per parameter: ``"diagonal"``, where only
  :math:`\sum_i \sum_r \sigma_r G_{i,pr}^2` is kept). :math:`G_i` comes from row :math:`i`'s
  own reverse pass (the model on that row alone, ``vmap`` over rows), in blocks of rows so that
  memory stays :math:`O(\text{block}\cdot r\cdot P)`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ..model._model import Model
from ._head import Head, _distribution, _row_logliks, head_factor, head_map

__all__ = [
    "BLOCK_ELEMENTS",
    "BLOCK_ROWS",
    "factor_kernel",
    "gram_kernel",
    "head_checks",
    "hessian_mv_kernel",
    "leaves_head_kernel",
    "mv_kernel",
    "vjp_kernel",
]

#: Numbers held by one block of per-row gradients in :func:`gram_kernel` (rows x columns x P):
#: 2^21 (16 MiB in float64: larger blocks ran many times slower on the CPU); at least one row, at most 256.
BLOCK_ELEMENTS = 2**21
BLOCK_ROWS = 256


def _n_rows(y: Any) -> int:
    return int(jax.tree_util.tree_leaves(y)[0].shape[0])


def head_checks(head: Head) -> jax.Array:
    """``(3,)`` booleans: every row's ``y`` in the support, no log-likelihood NaN or :math:`+\\infty`
    (:math:`-\\infty` passes), the factor finite. The caller reads the rows themselves (to name
    the first bad one) only where one is false."""
    ll = head.loglik
    return jnp.stack(
        [
            jnp.all(head.valid),
            jnp.all(~(jnp.isnan(ll) | (ll == jnp.inf))),
            jnp.all(jnp.isfinite(head.factor)),
        ]
    )


def factor_kernel(
    model: Model, kind: str, num_samples: int, unravel: Callable[[jax.Array], Any]
) -> Callable[..., Any]:
    """``(flat, y, x, key) -> (Head, checks)`` (:func:`~._head.head_factor` at ``unravel(flat)``,
    :func:`head_checks`)."""

    def kernel(flat: jax.Array, y: Any, x: Any, key: jax.Array) -> Any:
        head = head_factor(model, kind, unravel(flat), y, x, _n_rows(y), num_samples, key)
        return head, head_checks(head)

    return kernel


def leaves_head_kernel(model: Model, kind: str, num_samples: int, treedef: Any) -> Callable[..., Any]:
    """:func:`factor_kernel` on the parameter leaves (``(leaves, y, x, key) -> (Head, checks)``):
    the model sees the same arrays as :mod:`._layers`' interpreter, so that XLA can merge their
    forward passes (:func:`~._layer_stats.fused_stats_kernel`). The same sampling code and key
    as :func:`factor_kernel`: the same labels."""

    def kernel(leaves: list[Any], y: Any, x: Any, key: jax.Array) -> Any:
        params = jax.tree_util.tree_unflatten(treedef, leaves)
        head = head_factor(model, kind, params, y, x, _n_rows(y), num_samples, key)
        return head, head_checks(head)

    return kernel


def vjp_kernel(model: Model, kind: str, unravel: Callable[[jax.Array], Any]) -> Callable[..., Any]:
    """``(flat, y, x) -> vjp``: the reverse-mode linearisation of :math:`\\eta(\\theta)` at ``flat``,
    a pytree holding the network's residuals (its activations), reused by every product."""

    def kernel(flat: jax.Array, y: Any, x: Any) -> Any:
        eta = head_map(model, kind, x, _n_rows(y))
        return jax.vjp(lambda f: eta(unravel(f)), flat)[1]

    return kernel


def mv_kernel() -> Callable[..., Any]:
    """``(vjp, factor, signs, V (m, P)) -> C V`` for ``m`` vectors: :math:`Jv` by transposing the
    stored reverse pass, :math:`J^\\top w` by the pass itself (the network is not run again)."""

    def kernel(vjp: Any, factor: jax.Array, signs: jax.Array, vs: jax.Array) -> Any:
        jvp = jax.linear_transpose(vjp, jax.ShapeDtypeStruct(factor.shape[:-1], factor.dtype))

        def one(v: jax.Array) -> jax.Array:
            u = jvp((v,))[0]  # (N, R, k)
            w = jnp.einsum("nrkq,nrq,nrjq,nrj->nrk", factor, signs, factor, u)
            return vjp(w)[0]

        return jax.lax.map(one, vs)

    return kernel


def hessian_mv_kernel(model: Model, unravel: Callable[[jax.Array], Any]) -> Callable[..., Any]:
    r"""``(flat, y, x, V (m, P)) -> -\nabla^2 \sum_i \ell_i \; V`` (forward over reverse)."""

    def kernel(flat: jax.Array, y: Any, x: Any, vs: jax.Array) -> Any:
        def total(f: jax.Array) -> jax.Array:
            d = _distribution(model, unravel(f), x)
            return -_row_logliks(d, y, _n_rows(y)).sum()

        grad = jax.grad(total)
        return jax.lax.map(lambda v: jax.jvp(grad, (flat,), (v,))[1], vs)

    return kernel


def gram_kernel(
    model: Model,
    kind: str,
    unravel: Callable[[jax.Array], Any],
    groups: Sequence[tuple[int, int]],
    diagonal: bool,
) -> Callable[..., Any]:
    """``(flat, x, factor, signs) -> blocks``: per group ``(start, stop)`` of the flat vector the
    block :math:`\\sum_i G_i \\sigma G_i^\\top` (or, ``diagonal``, its diagonal), summed over rows."""

    def kernel(flat: jax.Array, x: Any, factor: jax.Array, signs: jax.Array) -> Any:
        n = factor.shape[0]

        def row_eta(f: jax.Array, x_row: Any) -> jax.Array:
            xb = None if x is None else jax.tree_util.tree_map(lambda a: a[None], x_row)
            return head_map(model, kind, xb, 1)(unravel(f))[0]  # (R, k)

        def row_terms(x_row: Any, b: jax.Array, s: jax.Array) -> Any:
            # b: (R, k, r), s: (R, r): G = J^T B, one reverse pass per column of B and output
            _, vjp = jax.vjp(lambda f: row_eta(f, x_row), flat)
            big_r, k, r = b.shape
            cols = jnp.einsum("ab,bkq->aqbk", jnp.eye(big_r, dtype=b.dtype), b).reshape(big_r * r, big_r, k)
            g = jax.vmap(lambda c: vjp(c)[0])(cols)  # (R r, P)
            return g, s.reshape(big_r * r)

        def block(args: Any) -> Any:
            # the block's rows' G stacked, (B R r, P): one product per group, not one per row
            xb, bb, sb = args
            if x is None:
                g, sign = jax.vmap(lambda b, s: row_terms(None, b, s))(bb, sb)
            else:
                g, sign = jax.vmap(row_terms)(xb, bb, sb)
            g, sign = g.reshape(-1, g.shape[-1]), sign.reshape(-1)
            out = []
            for start, stop in groups:
                gg = g[:, start:stop]
                if diagonal:
                    out.append(jnp.einsum("r,rp->p", sign, gg * gg))
                else:
                    out.append((gg * sign[:, None]).T @ gg)
            return out

        per_row = factor.shape[1] * factor.shape[3] * flat.shape[0]  # R r P numbers per row
        size = max(1, min(BLOCK_ROWS, n, BLOCK_ELEMENTS // max(per_row, 1)))
        blocks = -(-n // size)
        pad = blocks * size - n

        def padded(a: jax.Array, zero: bool) -> jax.Array:
            if not pad:
                return a.reshape(blocks, size, *a.shape[1:])
            fill = jnp.zeros((pad, *a.shape[1:]), a.dtype) if zero else jnp.repeat(a[:1], pad, axis=0)
            return jnp.concatenate([a, fill]).reshape(blocks, size, *a.shape[1:])

        xs = None if x is None else jax.tree_util.tree_map(lambda a: padded(a, False), x)
        # padded rows get a zero factor: they add nothing
        parts = jax.lax.map(block, (xs, padded(factor, True), padded(signs, True)))
        return [p.sum(axis=0) for p in parts]

    return kernel
