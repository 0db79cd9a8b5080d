r"""Per-row curvature through the distribution's own parameters.

Row i's log-likelihood depends on :math:`\theta` only through the numbers
:math:`\eta_i(\theta)` inside its distribution object (NumPyro distributions are
pytrees: their floating-point leaves). With :math:`L_i(\eta) = \log p(y_i\mid\eta)`
and :math:`J_i = \partial\eta_i/\partial\theta`,

.. math:: \nabla^2_\theta \ell_i = J_i^\top\, \nabla^2_\eta L_i\, J_i
          + \nabla^2_\theta \big[\, \bar g_i^\top \eta_i(\theta) \big],
          \qquad \bar g_i = \nabla_\eta L_i \text{ (held fixed)}.

The first term is a Gauss–Newton-shaped product that costs a reverse pass per
family parameter per row and one matrix product; the second vanishes, and
compiles away, when :math:`\eta` is linear in :math:`\theta` (every GLM), and
otherwise costs what the plain forward-over-reverse Hessian costs. Summed over
row blocks (:func:`~fisherlab.data.sum_over_blocks`). Used for the observed
information and for the Hessian in :func:`~fisherlab.fit`; the plain Hessian
serves ``Model.from_loglik`` models and distributions with more parameters
than the model itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from ..data._blocks import sum_over_blocks
from ..model._model import Model

__all__ = ["negative_hessian"]


def _is_float(leaf: Any) -> bool:
    return bool(jnp.issubdtype(jnp.result_type(leaf), jnp.floating))


def _eta(model: Model, params_of: Callable[[jax.Array], Any]) -> Callable[[jax.Array, Any], jax.Array]:
    def eta(f: jax.Array, x_row: Any) -> jax.Array:
        leaves = jax.tree_util.tree_leaves(model.distribution(params_of(f), x_row))
        # the leaves' own (promoted) dtype: float32 parameters and data stay float32
        return jnp.concatenate([jnp.ravel(jnp.asarray(leaf)) for leaf in leaves if _is_float(leaf)])

    return eta


def _rebuild(template: Any, eta: jax.Array) -> Any:
    """The distribution ``template`` with its floating-point leaves replaced by ``eta``."""
    leaves, treedef = jax.tree_util.tree_flatten(template)
    out, offset = [], 0
    for leaf in leaves:
        if not _is_float(leaf):
            out.append(leaf)
            continue
        shape = jnp.shape(leaf)
        size = int(jnp.size(jnp.asarray(leaf)))
        out.append(eta[offset : offset + size].reshape(shape))
        offset += size
    return jax.tree_util.tree_unflatten(treedef, out)


def _family_size(model: Model, params: Any, x: Any) -> int:
    """Number of floating-point numbers in one row's distribution (traced; unused ops compile away)."""
    row = None if x is None else jax.tree_util.tree_map(lambda a: a[0], x)
    leaves = jax.tree_util.tree_leaves(model.distribution(params, row))
    return sum(int(jnp.size(jnp.asarray(leaf))) for leaf in leaves if _is_float(leaf))


def _plain(
    model: Model, params_of: Callable[[jax.Array], Any], flat: jax.Array, y: Any, x: Any
) -> tuple[jax.Array, jax.Array, dict[str, jax.Array]]:
    axes = (None, 0, None if x is None else 0)

    def block(data: Any) -> Any:
        yb, xb = data

        def total(f: jax.Array) -> Any:
            ll, flags = jax.vmap(model.row_loglik, in_axes=axes)(params_of(f), yb, xb)
            return ll.sum(), (ll, flags)

        hess, (ll, flags) = jax.jacfwd(jax.grad(total, has_aux=True), has_aux=True)(flat)
        return -hess, (ll, flags)

    neg, (ll, flags) = sum_over_blocks(block, (y, x))
    return neg, ll, flags


def negative_hessian(
    model: Model, params_of: Callable[[jax.Array], Any], flat: jax.Array, y: Any, x: Any
) -> tuple[jax.Array, jax.Array, dict[str, jax.Array]]:
    r""":math:`-\sum_i \nabla^2 \ell_i` with respect to ``flat``, per-row log-likelihoods and flags.

    Args:
        model: the model.
        params_of: ``flat -> params`` (the unravel map, or a reparametrisation).
        flat: the point, a vector.
        y, x: the data (leading axis N).
    """
    params = params_of(flat)
    if model.kind != "distribution" or _family_size(model, params, x) > flat.shape[0]:
        return _plain(model, params_of, flat, y, x)
    eta = _eta(model, params_of)
    axes_x = None if x is None else 0

    def row(y_row: Any, x_row: Any) -> Any:
        template = model.distribution(params, x_row)
        e = eta(flat, x_row)

        def loglik(v: jax.Array) -> Any:
            return model.distribution_loglik(_rebuild(template, v), y_row, x_row)

        (ll, flags), grad = jax.value_and_grad(loglik, has_aux=True)(e)
        hess = jax.hessian(lambda v: loglik(v)[0])(e)
        jac = jax.jacrev(eta)(flat, x_row)
        return ll, flags, grad, hess, jac

    def block(data: Any) -> Any:
        yb, xb = data
        ll, flags, grad, hess, jac = jax.vmap(row, in_axes=(0, axes_x))(yb, xb)
        p = flat.shape[0]
        gauss_newton = jac.reshape(-1, p).T @ jnp.einsum("nkl,nlp->nkp", hess, jac).reshape(-1, p)
        weights = jax.lax.stop_gradient(grad)

        def linear_in_eta(f: jax.Array) -> jax.Array:
            if xb is None:  # iid rows share one distribution
                return jnp.sum(weights.sum(0) * eta(f, None))
            return jnp.sum(weights * jax.vmap(eta, in_axes=(None, 0))(f, xb))

        second = jax.hessian(linear_in_eta)(flat)
        return -(gauss_newton + second), (ll, flags)

    neg, (ll, flags) = sum_over_blocks(block, (y, x))
    return neg, ll, flags
