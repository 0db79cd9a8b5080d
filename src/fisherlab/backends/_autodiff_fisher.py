r"""Autodiff kernels for the expected Fisher information and the family parameters' Jacobian.

With :math:`\eta_i(\theta)` the family's parameters of row i (as the registry of
:mod:`fisherlab.dist` orders them) and :math:`J_i = \partial\eta_i/\partial\theta`:

- :func:`eta_gram_kernel`: :math:`\sum_i J_i^\top W_i J_i` (the chain rule with
  :math:`W_i = I(\eta_i)`), :math:`J_i` by reverse mode per row (cost grows with the few family
  parameters, not with P), summed over row blocks, contracted by
  :func:`~._chain_rule.weighted_gram` (which the numeric backend uses too);
- :func:`eta_jvp_kernel` / :func:`eta_vjp_kernel`: :math:`J v` and :math:`\sum_i J_i^\top w_i`
  by ``jax.jvp`` / ``jax.vjp`` (no Jacobian is formed);
- :func:`summation_kernel`: :math:`\sum_y p(y)\, s(y) s(y)^\top` over a finite support;
- :func:`quadrature_kernel`: tanh-sinh quadrature over :math:`u = F(y)` for a 1-D continuous
  family with an inverse CDF; the error estimate is the difference to the half-step rule plus a
  bound on the dropped tail;
- :func:`mc_kernel`: per-block moments of :math:`\sum_i s_i(y) s_i(y)^\top` over draws
  :math:`y \sim p(\cdot\mid x,\theta)` (combined by
  :meth:`~fisherlab.backends.MonteCarloMoments.combine`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .._errors import MethodUnavailableError
from ..data._blocks import sum_over_blocks
from ..data._prepare import as_observations
from ..dist._quadrature import tanh_sinh_nodes
from ..model._model import Model, call_user, validity
from ._chain_rule import weighted_gram

__all__ = [
    "eta_gram_kernel",
    "eta_jvp_kernel",
    "eta_rows_kernel",
    "eta_vjp_kernel",
    "mc_block_size",
    "mc_kernel",
    "quadrature_kernel",
    "summation_kernel",
]

# Rows x samples x parameters (and samples x P^2) held in memory by one Monte-Carlo block.
_MC_BLOCK_ELEMENTS = 2**23

Kernel = Callable[..., Any]


def rows(x: Any) -> Callable[..., Any]:
    """vmap over the rows of x, or evaluate once with a batch axis of 1 when x is None."""

    def apply(fn: Any, *args: Any) -> Any:
        if x is None:
            return jax.tree_util.tree_map(lambda a: a[None], fn(*args, None))
        return jax.vmap(fn, in_axes=(*(None for _ in args), 0))(*args, x)

    return apply


def eta_gram_kernel(model: Model, family: Callable[[Any], tuple[Any, Any]]) -> Kernel:
    """``(params, x) -> (sum_i J_i^T W_i J_i, flags, finite)``, ``family(d) = (eta, W)``."""

    def kernel(params: Any, x: Any) -> Any:
        flat, unravel = ravel_pytree(params)

        def eta(f: jax.Array, x_row: Any) -> jax.Array:
            return family(model.distribution(unravel(f), x_row))[0]

        def info(x_row: Any) -> Any:
            d = model.distribution(params, x_row)
            return family(d)[1], validity(d)

        p = flat.shape[0]

        def block(xb: Any) -> Any:
            apply = rows(xb)
            jac = apply(jax.jacrev(eta), flat)
            mat, flags = apply(info)
            k, n = mat.shape[-1], mat.shape[0]
            jac = jac.reshape(-1, k, p)
            mat = mat.reshape(-1, k, k)
            finite = jnp.all(jnp.isfinite(mat.reshape(n, -1)), axis=1)
            return weighted_gram(jac, mat), (flags, finite)

        if x is None:
            f, (flags, finite) = block(None)
        else:
            f, (flags, finite) = sum_over_blocks(block, x)
        return f, flags, finite

    return kernel


def eta_rows_kernel(model: Model, family: Callable[[Any], tuple[Any, Any]]) -> Kernel:
    """``(params, x) -> (J (N, B, K, P), W (N, B, K, K), flags)``: :func:`eta_gram_kernel`'s parts per
    row, ``B`` the distribution's batch elements in one row."""

    def kernel(params: Any, x: Any) -> Any:
        flat, unravel = ravel_pytree(params)
        p = flat.shape[0]

        def eta(f: jax.Array, x_row: Any) -> jax.Array:
            return family(model.distribution(unravel(f), x_row))[0]

        def info(x_row: Any) -> Any:
            d = model.distribution(params, x_row)
            return family(d)[1], validity(d)

        def block(xb: Any) -> Any:
            apply = rows(xb)
            jac = apply(jax.jacrev(eta), flat)
            mat, flags = apply(info)
            k, n = mat.shape[-1], mat.shape[0]
            return None, (jac.reshape(n, -1, k, p), mat.reshape(n, -1, k, k), flags)

        _, (jac, mat, flags) = block(None) if x is None else sum_over_blocks(block, x)
        return jac, mat, flags

    return kernel


def _eta_all(model: Model, eta: Callable[[Any], Any], unravel: Any, x: Any) -> Callable[[jax.Array], Any]:
    def all_rows(f: jax.Array) -> jax.Array:
        out = rows(x)(lambda x_row: jnp.ravel(eta(model.distribution(unravel(f), x_row))))
        return out.reshape(out.shape[0], -1)

    return all_rows


def eta_jvp_kernel(model: Model, eta: Callable[[Any], Any]) -> Kernel:
    def kernel(params: Any, x: Any, v: jax.Array) -> Any:
        flat, unravel = ravel_pytree(params)
        return jax.jvp(_eta_all(model, eta, unravel, x), (flat,), (v,))[1]

    return kernel


def eta_vjp_kernel(model: Model, eta: Callable[[Any], Any]) -> Kernel:
    def kernel(params: Any, x: Any, w: jax.Array) -> Any:
        flat, unravel = ravel_pytree(params)
        _, pullback = jax.vjp(_eta_all(model, eta, unravel, x), flat)
        return pullback(w)[0]

    return kernel


def _point_scores(model: Model, flat: jax.Array, unravel: Any, ys: jax.Array, x_row: Any) -> Any:
    """Scores (M, P) and log-likelihoods (M,) of one row at M values of y (treated as data)."""
    ys = jax.lax.stop_gradient(ys)

    def ll(f: jax.Array, y: jax.Array) -> jax.Array:
        return model.row_loglik(unravel(f), y, x_row)[0]

    return jax.vmap(jax.value_and_grad(ll), in_axes=(None, 0))(flat, ys)


def _row_values(d: Any, values: jax.Array) -> jax.Array:
    """Candidate y values (M, 1-component batch) -> M rows of y for ``row_loglik``."""
    size = int(np.prod(d.batch_shape)) if d.batch_shape else 1
    if size != 1:
        raise MethodUnavailableError(
            f"summation/quadrature needs one {type(d).__name__} per row, got batch shape "
            f"{d.batch_shape}; use method='mc' or register a closed form"
        )
    return values.reshape((values.shape[0], *d.event_shape))


def summation_kernel(model: Model, per_row: bool = False) -> Kernel:
    """``(params, x) -> (information, flags, complete)``, summed over rows (``per_row``: ``(N, P, P)``)."""

    def kernel(params: Any, x: Any) -> Any:
        flat, unravel = ravel_pytree(params)

        def row(x_row: Any) -> Any:
            d = model.distribution(params, x_row)
            ys = _row_values(d, d.enumerate_support(expand=False))
            logp, g = _point_scores(model, flat, unravel, ys, x_row)
            p = jnp.exp(logp)
            return g.T @ (p[:, None] * g), validity(d), jnp.abs(p.sum() - 1.0) < 1e-8

        mats, flags, complete = rows(x)(row)
        return (mats if per_row else mats.sum(0)), flags, complete

    return kernel


def quadrature_kernel(model: Model, per_row: bool = False) -> Kernel:
    """``(params, x) -> (information, error, flags)``, summed over rows (``per_row``: ``(N, P, P)``)."""
    u_np, wf_np, wc_np, tail = tanh_sinh_nodes()

    def kernel(params: Any, x: Any) -> Any:
        flat, unravel = ravel_pytree(params)
        u, wf, wc = jnp.asarray(u_np), jnp.asarray(wf_np), jnp.asarray(wc_np)

        def row(x_row: Any) -> Any:
            d = model.distribution(params, x_row)
            shape = (u.shape[0], *(1 for _ in d.batch_shape))
            ys = _row_values(d, d.icdf(u.reshape(shape)))
            _, g = _point_scores(model, flat, unravel, ys, x_row)
            fine, coarse = g.T @ (wf[:, None] * g), g.T @ (wc[:, None] * g)
            # the dropped upper tail (mass `tail`), bounded by 4x the integrand at the last node
            dropped = 4.0 * tail * jnp.abs(g[-1][:, None] * g[-1][None, :])
            return fine, jnp.abs(fine - coarse) + dropped, validity(d)

        fine, error, flags = rows(x)(row)
        if per_row:
            return fine, error, flags
        return fine.sum(0), error.sum(0), flags

    return kernel


def mc_block_size(num_samples: int, rows: int, p: int) -> int:
    """The largest divisor of ``num_samples`` whose block of draws fits the memory budget."""
    limit = max(1, _MC_BLOCK_ELEMENTS // max(rows * p, p * p, 1))
    return max(b for b in range(1, min(num_samples, limit) + 1) if num_samples % b == 0)


def mc_kernel(model: Model, num_samples: int) -> Kernel:
    """``(params, x, key) -> (block means (B, P, P), block sums of squares (B, P, P), flags)``."""

    def kernel(params: Any, x: Any, key: jax.Array) -> Any:
        flat, unravel = ravel_pytree(params)
        p = flat.shape[0]
        n_rows = 1 if x is None else jax.tree_util.tree_leaves(x)[0].shape[0]
        axes = (None, 0, None if x is None else 0)

        def row_ll(f: jax.Array, y_row: Any, x_row: Any) -> jax.Array:
            return model.row_loglik(unravel(f), y_row, x_row)[0]

        def draw(key: jax.Array) -> Any:
            if model.kind == "loglik":
                assert model.sampler is not None
                return as_observations(call_user(model.sampler, "the sampler", params, x, key))

            def one(k: jax.Array, x_row: Any) -> jax.Array:
                d = model.distribution(params, x_row)
                y = d.sample(k)
                return y[0] if (x_row is not None and d.batch_shape) else y

            if x is None:
                return as_observations(one(key, None))[None]
            return as_observations(jax.vmap(one)(jax.random.split(key, n_rows), x))

        def total(key: jax.Array) -> jax.Array:
            g = jax.vmap(jax.grad(row_ll), in_axes=axes)(flat, draw(key), x)
            return g.T @ g

        block = mc_block_size(num_samples, n_rows, p)
        keys = jax.random.split(key, num_samples).reshape(num_samples // block, block, -1)

        def step(carry: None, block_keys: jax.Array) -> Any:
            t = jax.vmap(total)(block_keys)
            mean = t.mean(0)
            return carry, (mean, ((t - mean) ** 2).sum(0))

        _, (means, squares) = jax.lax.scan(step, None, keys)
        if model.kind == "distribution":
            flags = rows(x)(lambda x_row: validity(model.distribution(params, x_row)))
        else:
            flags = {}
        return means, squares, flags

    return kernel
