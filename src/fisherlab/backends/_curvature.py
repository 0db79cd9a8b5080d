r"""The Hessian of the total log-likelihood, through the distribution's own parameters.

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
row blocks (:func:`~fisherlab.data.sum_over_blocks`). It serves models with
covariates whose distribution has no more parameters than the model.

Models without covariates (iid rows: one distribution for every row), ``Model.from_loglik``
models and distributions with more parameters than the model take the plain
forward-over-reverse Hessian of the total, :math:`-\nabla^2 \sum_i \ell_i`, which for iid rows
is exactly what ``jax.hessian`` of the summed log-likelihood computes (XLA reduces the rows
once, not per row).

Only totals come back: beside the matrix, the number of failed row checks
(:func:`~fisherlab.backends._autodiff_rows.invalid_rows`: a distribution parameter or ``y``
outside its support; a log-likelihood that is NaN or :math:`+\infty` for ``from_loglik``
models, which have no support checks, and on the path through the family's parameters, which
computes every row's log-likelihood anyway), counted inside the compiled function; the caller
names the first failing row only when the count is not zero. The plain path of a distribution
model does not evaluate each row's log-likelihood just to check it: for iid rows that pass
would cost more than the Hessian itself.

The distribution's leaves are taken in the order of their names, not of
``jax.tree_util.tree_leaves`` (NumPyro orders them through a ``set``, which changes with
Python's string hashing from one process to the next): the compiled function is the same in
every process, so JAX's persistent compilation cache finds it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpyro.distributions as nd

from ..data._blocks import BLOCK_ROWS, sum_over_blocks
from ..model._model import Model
from ._autodiff_rows import invalid_rows

__all__ = ["negative_hessian"]

#: Rows times parameters up to which the plain Hessian of the total runs on all rows at once
#: (its forward-over-reverse intermediates are a few arrays of this many numbers); above,
#: it runs in blocks of rows.
_UNBLOCKED_ELEMENTS = 2**22


def _is_float(leaf: Any) -> bool:
    return bool(jnp.issubdtype(jnp.result_type(leaf), jnp.floating))


def _leaf_names(node: Any, prefix: str = "") -> list[str]:
    """A name for each leaf of ``jax.tree_util.tree_leaves(node)``, in that order.

    A NumPyro distribution's children are named by their fields
    (``gather_pytree_data_fields``, the order ``tree_flatten`` uses); other pytrees by their
    key paths.
    """
    if isinstance(node, nd.Distribution):
        names = type(node).gather_pytree_data_fields()
        children = node.tree_flatten()[0]
        return [
            n
            for name, child in zip(names, children, strict=True)
            for n in _leaf_names(child, f"{prefix}.{name}")
        ]
    with_path = jax.tree_util.tree_flatten_with_path(
        node, is_leaf=lambda v: isinstance(v, nd.Distribution) and v is not node
    )[0]
    out: list[str] = []
    for path, leaf in with_path:
        name = prefix + jax.tree_util.keystr(path)
        out.extend(_leaf_names(leaf, name) if isinstance(leaf, nd.Distribution) else [name])
    return out


def _float_leaves(d: Any) -> list[tuple[int, Any]]:
    """``(position in tree_leaves, leaf)`` of the floating leaves of ``d``, ordered by their names."""
    leaves = jax.tree_util.tree_leaves(d)
    names = _leaf_names(d)
    if len(names) != len(leaves):  # a pytree this walk does not know: keep JAX's order
        names = [f"{i:08d}" for i in range(len(leaves))]
    order = sorted(range(len(leaves)), key=lambda i: (names[i], i))
    return [(i, leaves[i]) for i in order if _is_float(leaves[i])]


def _eta(model: Model, params_of: Callable[[jax.Array], Any]) -> Callable[[jax.Array, Any], jax.Array]:
    def eta(f: jax.Array, x_row: Any) -> jax.Array:
        leaves = _float_leaves(model.distribution(params_of(f), x_row))
        # the leaves' own (promoted) dtype: float32 parameters and data stay float32
        return jnp.concatenate([jnp.ravel(jnp.asarray(leaf)) for _, leaf in leaves])

    return eta


def _rebuild(template: Any, eta: jax.Array) -> Any:
    """The distribution ``template`` with its floating-point leaves replaced by ``eta``."""
    leaves, treedef = jax.tree_util.tree_flatten(template)
    out, offset = list(leaves), 0
    for i, leaf in _float_leaves(template):
        shape = jnp.shape(leaf)
        size = int(jnp.size(jnp.asarray(leaf)))
        out[i] = eta[offset : offset + size].reshape(shape)
        offset += size
    return jax.tree_util.tree_unflatten(treedef, out)


def _family_size(model: Model, params: Any, x: Any) -> int:
    """Number of floating-point numbers in one row's distribution (traced; unused ops compile away)."""
    row = None if x is None else jax.tree_util.tree_map(lambda a: a[0], x)
    leaves = jax.tree_util.tree_leaves(model.distribution(params, row))
    return sum(int(jnp.size(jnp.asarray(leaf))) for leaf in leaves if _is_float(leaf))


def _rows(fn: Callable[[Any], tuple[jax.Array, jax.Array]], y: Any, x: Any, mask: Any, p: int) -> Any:
    """``fn`` on all rows at once when small enough (one trace), else summed over row blocks."""
    n = int(jax.tree_util.tree_leaves((y, x))[0].shape[0])
    if n * max(p, 1) <= _UNBLOCKED_ELEMENTS or n < 2 * BLOCK_ROWS:
        return fn((y, x, mask))
    return sum_over_blocks(lambda data: (fn(data), ()), (y, x, mask))[0]


def _plain(
    model: Model, params_of: Callable[[jax.Array], Any], flat: jax.Array, y: Any, x: Any, mask: Any
) -> Any:
    axes = (None, 0, None if x is None else 0)

    def block(data: Any) -> Any:
        yb, xb, mb = data

        def total(f: jax.Array) -> Any:
            ll, flags = jax.vmap(model.row_loglik, in_axes=axes)(params_of(f), yb, xb)
            return (ll.sum() if mb is None else jnp.where(mb, ll, 0.0).sum()), (ll, flags)

        hess, (ll, flags) = jax.jacfwd(jax.grad(total, has_aux=True), has_aux=True)(flat)
        # a distribution's rows are checked by their support flags; evaluating every row's
        # log-likelihood only to see it finite would cost more than the Hessian (iid rows)
        return (-hess, invalid_rows(ll if not flags else None, flags))

    return _rows(block, y, x, mask, flat.shape[0])


def negative_hessian(
    model: Model, params_of: Callable[[jax.Array], Any], flat: jax.Array, y: Any, x: Any, mask: Any = None
) -> tuple[jax.Array, jax.Array]:
    r""":math:`-\sum_i \nabla^2 \ell_i` with respect to ``flat``, and the number of invalid rows.

    Args:
        model: the model.
        params_of: ``flat -> params`` (the unravel map, or a reparametrisation).
        flat: the point, a vector.
        y, x: the data (leading axis N).
        mask: ``None``, or booleans ``(N,)``: only the rows marked ``True`` are summed (a
            chunk padded to a fixed length; the padding's validity still counts).

    Returns:
        ``(matrix (P, P), count)``: ``count`` is :func:`invalid_rows` over all rows (0 when
        every row is valid); the matrix is meaningless when it is not 0.
    """
    params = params_of(flat)
    if x is None or model.kind != "distribution" or _family_size(model, params, x) > flat.shape[0]:
        return _plain(model, params_of, flat, y, x, mask)  # type: ignore[no-any-return]
    eta = _eta(model, params_of)

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
        yb, xb, mb = data
        ll, flags, grad, hess, jac = jax.vmap(row)(yb, xb)
        if mb is not None:
            grad = jnp.where(mb[:, None], grad, 0.0)
            hess = jnp.where(mb[:, None, None], hess, 0.0)
        p = flat.shape[0]
        gauss_newton = jac.reshape(-1, p).T @ jnp.einsum("nkl,nlp->nkp", hess, jac).reshape(-1, p)
        weights = jax.lax.stop_gradient(grad)

        def linear_in_eta(f: jax.Array) -> jax.Array:
            return jnp.sum(weights * jax.vmap(eta, in_axes=(None, 0))(f, xb))

        second = jax.hessian(linear_in_eta)(flat)
        return (-(gauss_newton + second), invalid_rows(ll, flags))

    return _rows(block, y, x, mask, flat.shape[0] * _family_size(model, params, x))  # type: ignore[no-any-return]
