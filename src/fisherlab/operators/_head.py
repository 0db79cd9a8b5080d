r"""The head of a model: its distribution's parameters per row, :math:`\eta_i(\theta)`, and its curvature.

Every kind of curvature but the Hessian has the form

.. math:: C = \sum_{i=1}^N J_i^\top M_i J_i, \qquad J_i = \partial\eta_i/\partial\theta,
          \qquad M_i = B_i \operatorname{diag}(\sigma) B_i^\top,

with :math:`\eta_i \in \mathbb R^k` the parameters of row :math:`i`'s distribution and
:math:`M_i` a :math:`k\times k` matrix in :math:`\eta`-space, written through a factor
:math:`B_i` (:math:`k\times r`) and signs :math:`\sigma \in \{\pm1\}^r`:

- ``"fisher"``: :math:`M_i = I(\eta_i)`, the closed form of the registry
  (:func:`fisherlab.dist.family_fisher`), :math:`\eta_i` the registry's parameters
  (``logits``; ``rate``; ``loc, scale``...); :math:`B_i` a square root from its
  eigendecomposition (for a softmax head the closed form
  :math:`\operatorname{diag}(\sqrt p) - p\sqrt p^\top`);
- ``"ggn"``: :math:`M_i = \nabla^2_\eta[-\log p(y_i\mid\eta_i)]` at the observed :math:`y_i`
  (the generalised Gauss–Newton), :math:`\eta_i` the distribution's own floating-point
  parameters; :math:`B_i` from its eigendecomposition, :math:`\sigma` the eigenvalues' signs
  (a head whose negative log-likelihood is not convex in :math:`\eta`, a Normal's scale, has
  an indefinite GGN; a softmax head's is the Fisher's closed-form root, whatever :math:`y_i`);
- ``"empirical"``: :math:`M_i = g_i g_i^\top`, :math:`g_i = \nabla_\eta \log p(y_i\mid\eta_i)`
  (so :math:`C = \sum_i s_i s_i^\top`);
- ``"mc_fisher"``: :math:`M_i = \frac1S\sum_s g_{is} g_{is}^\top` with
  :math:`y_{is} \sim p(\cdot\mid\eta_i)`, ``num_samples`` :math:`S` draws per row.

The model function is called once on all rows (``fn(params, x)`` with ``x`` of leading axis
:math:`N` returns a distribution of batch shape :math:`(N, \ldots)`, as fisherlab's models
are written), so a network evaluates its batch in one pass. A distribution of batch shape
``()`` (no covariates) is the same for every row. Further batch axes (several independent
outputs per row) are folded into :math:`\eta_i`, with :math:`M_i` block-diagonal.
Parameters shared by all rows (a scale ``sigma`` beside per-row means) are broadcast to
every row, so that :math:`g_i` stays row :math:`i`'s own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpyro.distributions as nd

from .._errors import MethodUnavailableError, ModelError
from ..backends._curvature import _float_leaves, _leaf_names
from ..dist._registry import family_fisher, softmax_complement
from ..model._model import Model, call_user

__all__ = ["Head", "HeadKind", "head_factor", "head_map", "output_names", "rows_distribution"]

HeadKind = str  # "fisher" | "ggn" | "empirical" | "mc_fisher"


class Head(NamedTuple):
    """``eta(flat) -> (N, R, k)`` and the factor of :math:`M` at the current point.

    Attributes:
        factor: :math:`B`, shape ``(N, R, k, r)``.
        signs: :math:`\\sigma`, shape ``(N, R, r)`` (+1 / -1 / 0).
        loglik: the rows' log-likelihoods at the point, ``(N,)`` (for checks).
        valid: whether each row's ``y`` is in the support of its distribution, ``(N,)``.
    """

    factor: jax.Array
    signs: jax.Array
    loglik: jax.Array
    valid: jax.Array


def _distribution(model: Model, params: Any, x: Any) -> nd.Distribution:
    d = call_user(model.fn, "the model function", params, x)
    if not isinstance(d, nd.Distribution):
        raise ModelError(
            f"the model function returned {type(d).__name__}, not a distribution; return one, e.g. "
            "fl.dist.Categorical(logits=net(params, x)) (for an Equinox/Flax module use "
            "fl.Model.from_equinox / from_flax with a likelihood)"
        )
    return d


def _rows_shape(d: nd.Distribution, n: int) -> tuple[int, ...]:
    """The batch shape ``(N, ...)`` every row's parameters are broadcast to."""
    batch = tuple(d.batch_shape)
    if not batch:
        return (n,)
    if batch[0] != n:
        raise ModelError(
            f"the model's distribution has batch shape {batch} for {n} rows of data; its leading "
            "axis must be the rows (one distribution per row of x and y)"
        )
    return batch


def _event_ndim(d: nd.Distribution, name: str, leaf: jax.Array, nb: int) -> int:
    """Number of trailing axes of a parameter leaf that belong to one distribution (not the batch)."""
    short = name.rsplit(".", 1)[-1]
    constraint = d.arg_constraints.get(short)
    if constraint is not None:
        return int(getattr(constraint, "event_dim", 0))
    return max(0, jnp.ndim(leaf) - nb)


def _layout(d: nd.Distribution, rows: tuple[int, ...]) -> list[tuple[int, tuple[int, ...]]]:
    """``(position in tree_leaves, per-batch-element shape)`` of every floating leaf, in name order."""
    names = _leaf_names(d)
    out = []
    for i, leaf in _float_leaves(d):
        name = names[i] if i < len(names) else str(i)
        e = _event_ndim(d, name, leaf, len(rows))
        shape = tuple(jnp.shape(leaf))
        out.append((i, shape[len(shape) - e :] if e else ()))
    return out


def _eta_of(d: nd.Distribution, rows: tuple[int, ...], keep: frozenset[int] | None = None) -> jax.Array:
    """The floating leaves of ``d`` (those at ``keep``'s positions, if given) broadcast to the
    rows, as ``(N, R, k)``."""
    leaves = jax.tree_util.tree_leaves(d)
    parts = []
    for i, event in _layout(d, rows):
        if keep is not None and i not in keep:
            continue
        leaf = jnp.broadcast_to(jnp.asarray(leaves[i]), (*rows, *event))
        parts.append(leaf.reshape(rows[0], -1 if len(rows) == 1 else _prod(rows[1:]), _prod(event)))
    return jnp.concatenate(parts, axis=-1)


def output_names(d: nd.Distribution, rows: tuple[int, ...], keep: frozenset[int]) -> list[str]:
    """Labels of the ``k`` columns of :func:`_eta_of` with ``keep``: the parameter's name, with the
    index of an event element (``logits[2]``) or of a further batch axis (``loc[1]``)."""
    names = _leaf_names(d)
    out = []
    extra = _prod(rows[1:])
    for r in range(extra):
        for i, event in _layout(d, rows):
            if i not in keep:
                continue
            base = names[i] if i < len(names) else str(i)
            base = base.rsplit(".", 1)[-1]
            size = _prod(event)
            if size == 1 and extra == 1:
                out.append(base)
            elif size == 1:
                out.append(f"{base}[{r}]")
            else:
                out.extend(f"{base}[{j}]" if extra == 1 else f"{base}[{r},{j}]" for j in range(size))
    return out


def rows_distribution(model: Model, params: Any, x: Any, n: int) -> tuple[nd.Distribution, tuple[int, ...]]:
    """The model's distribution on all rows of ``x`` and its batch shape ``(N, ...)`` (checked)."""
    d = _distribution(model, params, x)
    return d, _rows_shape(d, n)


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for s in shape:
        out *= int(s)
    return out


def _rebuild(template: nd.Distribution, rows: tuple[int, ...], eta: jax.Array) -> nd.Distribution:
    """``template`` with its floating leaves replaced by the rows' ``eta`` ``(N, R, k)``."""
    leaves, treedef = jax.tree_util.tree_flatten(template)
    out, offset = list(leaves), 0
    for i, event in _layout(template, rows):
        size = _prod(event)
        out[i] = eta[..., offset : offset + size].reshape(*rows, *event)
        offset += size
    return jax.tree_util.tree_unflatten(treedef, out)


def head_map(model: Model, kind: HeadKind, x: Any, n: int) -> Callable[[Any], jax.Array]:
    """``params -> eta (N, R, k)``: the registry's parameters for ``"fisher"``, the leaves otherwise."""

    def eta(params: Any) -> jax.Array:
        d = _distribution(model, params, x)
        rows = _rows_shape(d, n)
        if kind == "fisher":
            fam = _registry(d)
            p = jnp.broadcast_to(fam.params, (*rows, fam.params.shape[-1]))
            return p.reshape(rows[0], _prod(rows[1:]), p.shape[-1])
        return _eta_of(d, rows)

    return eta


def _registry(d: nd.Distribution) -> Any:
    try:
        return family_fisher(d)
    except MethodUnavailableError as exc:
        raise MethodUnavailableError(
            f"kind='fisher' needs the closed-form Fisher of the head, and {type(d).__name__} has none "
            f"registered ({exc}); use kind='mc_fisher' (sampled labels), 'ggn' or 'empirical', or "
            "register one with fl.dist.register_fisher"
        ) from exc


def _row_logliks(d: nd.Distribution, y: Any, n: int) -> jax.Array:
    """Each row's log-likelihood ``(N,)`` (further batch axes summed)."""
    lp = d.log_prob(y)
    lp = jnp.broadcast_to(lp, (n, *jnp.shape(lp)[1:])) if jnp.ndim(lp) else jnp.broadcast_to(lp, (n,))
    return lp.reshape(n, -1).sum(axis=1)


def _support(d: nd.Distribution, y: Any, n: int) -> jax.Array:
    """Whether each row's observation is in the support of its distribution, ``(N,)``."""
    ok = jnp.asarray(d.support(y), dtype=bool)
    ok = jnp.broadcast_to(ok, (n, *jnp.shape(ok)[1:])) if jnp.ndim(ok) else jnp.broadcast_to(ok, (n,))
    return ok.reshape(n, -1).all(axis=1)


def _softmax_root(logits: jax.Array) -> jax.Array:
    r"""A square root of the softmax Fisher: :math:`B = \operatorname{diag}(\sqrt p) - p\sqrt p^\top`,
    :math:`BB^\top = \operatorname{diag}(p) - pp^\top` (no eigendecomposition per row).

    The diagonal :math:`\sqrt{p_k}(1 - p_k)` takes :math:`1 - p_k` from the registry's
    :func:`~fisherlab.dist._registry.softmax_complement` (summed in log space), so a class with
    :math:`p_k \to 1` keeps its digits.
    """
    k = logits.shape[-1]
    p, complement = softmax_complement(logits)
    root = jnp.sqrt(p)
    off = -p[..., :, None] * root[..., None, :]
    return jnp.where(jnp.eye(k, dtype=bool), (root * complement)[..., None, :], off)


def _eigen_factor(m: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``M = B diag(sign) B^T`` from the eigendecomposition of each symmetric ``M`` (…, k, k)."""
    w, v = jnp.linalg.eigh(0.5 * (m + jnp.swapaxes(m, -1, -2)))
    return v * jnp.sqrt(jnp.abs(w))[..., None, :], jnp.sign(w)


def head_factor(
    model: Model, kind: HeadKind, params: Any, y: Any, x: Any, n: int, num_samples: int, key: jax.Array
) -> Head:
    """The factor :math:`B_i`, signs :math:`\\sigma` and the rows' log-likelihoods at ``params``."""
    d = _distribution(model, params, x)
    rows = _rows_shape(d, n)
    y_rows = y
    if kind in ("fisher", "ggn") and isinstance(d, nd.CategoricalLogits):
        # a softmax head: the GGN in the logits is the Fisher, diag(p) - pp^T, whatever y is
        fam = _registry(d)
        factor = _softmax_root(fam.params)
        factor = jnp.broadcast_to(factor, (*rows, *factor.shape[-2:])).reshape(
            rows[0], _prod(rows[1:]), *factor.shape[-2:]
        )
        signs = jnp.ones(factor.shape[:-2] + factor.shape[-1:], factor.dtype)
        return Head(factor, signs, _row_logliks(d, y_rows, n), _support(d, y_rows, n))
    if kind == "fisher":
        fam = _registry(d)
        k = fam.params.shape[-1]
        mat = jnp.broadcast_to(fam.matrix, (*rows, k, k)).reshape(rows[0], _prod(rows[1:]), k, k)
        chol_ok = jnp.all(jnp.isfinite(mat))
        factor, signs = _eigen_factor(jnp.where(chol_ok, mat, jnp.nan).astype(fam.params.dtype))
        return Head(factor, signs, _row_logliks(d, y_rows, n), _support(d, y_rows, n))
    template = d
    eta0 = _eta_of(d, rows)

    def total(eta: jax.Array, yy: Any) -> jax.Array:
        return _row_logliks(_rebuild(template, rows, eta), yy, n).sum()

    if kind == "empirical":
        g = jax.grad(total)(eta0, y_rows)  # (N, R, k): rows are independent
        ones = jnp.ones((*g.shape[:-1], 1), g.dtype)
        return Head(g[..., None], ones, _row_logliks(d, y_rows, n), _support(d, y_rows, n))
    if kind == "mc_fisher":
        keys = jax.random.split(key, num_samples)
        draws = jax.vmap(lambda k_: d.sample(k_))(keys)  # (S, *batch, ...)
        if not d.batch_shape:
            draws = jax.vmap(lambda k_: d.sample(k_, (n,)))(keys)
        g = jax.vmap(lambda yy: jax.grad(total)(eta0, yy))(draws)  # (S, N, R, k)
        factor = jnp.moveaxis(g, 0, -1) / jnp.sqrt(num_samples)
        ones = jnp.ones((*factor.shape[:-2], num_samples), g.dtype)
        return Head(factor, ones, _row_logliks(d, y_rows, n), _support(d, y_rows, n))
    if kind == "ggn":
        k = eta0.shape[-1]
        basis = jnp.eye(k, dtype=eta0.dtype)

        def column(e: jax.Array) -> jax.Array:  # the same unit tangent in every row: rows are independent
            tangent = jnp.broadcast_to(e, eta0.shape)
            return jax.jvp(lambda v: jax.grad(total)(v, y_rows), (eta0,), (tangent,))[1]

        hess = -jnp.moveaxis(jax.vmap(column)(basis), 0, -1)  # (N, R, k, k) of -log p
        factor, signs = _eigen_factor(hess)
        return Head(factor, signs, _row_logliks(d, y_rows, n), _support(d, y_rows, n))
    raise ValueError(kind)  # pragma: no cover - checked by the caller
