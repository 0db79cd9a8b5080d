r"""Dense layers found in the traced model, for Kronecker factors and fast exact diagonals.

A *dense layer* is a ``dot_general`` of a parameter leaf :math:`W` (2-D, used nowhere else)
with an activation :math:`a` of shape :math:`(N, d_\text{in})`, optionally followed by the
addition of a 1-D parameter leaf :math:`b` broadcast over the rows: :math:`z_i = a_i W + b`.
They are found automatically in the jaxpr of :math:`\theta \mapsto \eta(\theta)` (as
kfac-jax's tagging does), through nested ``jit`` calls, without asking the user to rewrite the
network. The model is then evaluated by an interpreter of that jaxpr which adds a zero
perturbation :math:`\epsilon_l` to every layer's output :math:`z_l` and records its input
:math:`a_l`; a reverse pass with respect to :math:`\epsilon` for each column :math:`b_{\cdot r}`
of the head's factor gives every row's :math:`g_{ir} = J_{z_i}^\top b_{ir}` at once (rows
are independent). With :math:`\tilde a_i = (a_i, 1)` (the 1 for the bias):

- exact diagonal: :math:`\operatorname{diag} C_W = \sum_i \tilde a_i^{2} \otimes
  \sum_r \sigma_r g_{ir}^2` — one matrix product per layer, whatever the number of columns;
- Kronecker factors (K-FAC, Martens & Grosse 2015): :math:`C_l \approx \frac1N A \otimes G`,
  :math:`A = \sum_i \tilde a_i \tilde a_i^\top`, :math:`G = \sum_i \sum_r \sigma_r g_{ir}
  g_{ir}^\top`, exact for one row (:math:`N = 1`).

A weight used more than once (shared across positions or layers), a ``dot_general`` with batch
dimensions (a convolution written as one), or an activation without the rows on one axis is not
a dense layer here; its parameters take the per-row path (:mod:`._kernels`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.extend import core as jcore

__all__ = ["DenseLayer", "Tagged", "find_layers", "layer_stats_kernel"]

_SHAPE_OPS = frozenset({"transpose", "reshape", "convert_element_type", "copy", "squeeze", "expand_dims"})
_CALLS = frozenset({"pjit", "closed_call", "core_call", "jit"})


class DenseLayer(NamedTuple):
    """One dense layer: the leaves of its weight and bias, and how the weight is laid out.

    Attributes:
        name: the weight's path without its last key (``l1``, ``layers[0]``).
        w: index of the weight among ``jax.tree_util.tree_leaves(params)``.
        b: index of the bias, or ``None``.
        w_in_axis: the axis of :math:`W` contracted with the activation (0: ``a @ W``, ``W`` is
            ``(d_in, d_out)``; 1: ``W @ a``, ``W`` is ``(d_out, d_in)``).
    """

    name: str
    w: int
    b: int | None
    w_in_axis: int


class Tagged(NamedTuple):
    """The dense layers of a model, and ``run(leaves, x, eps) -> (eta, activations)``.

    Attributes:
        layers: the layers, in the order of the computation.
        run: the interpreter; ``eps[l]`` has shape ``out_shapes[l]``; ``activations[l]`` is the
            layer's input as the product saw it (rows on axis ``act_rows_axis[l]``).
        out_shapes: the shape of each layer's (perturbed) output.
        act_rows_axis: the rows axis of each layer's recorded input.
        out_rows_axis: the rows axis of each layer's output.
        out_dtypes: the dtype of each layer's output.
    """

    layers: list[DenseLayer]
    run: Callable[..., Any]
    out_shapes: list[tuple[int, ...]]
    act_rows_axis: list[int]
    out_rows_axis: list[int]
    out_dtypes: list[Any]


class _Scan:
    """What the discovery pass learns: layers by equation, and uses of every parameter leaf."""

    def __init__(self, n_leaves: int, n_rows: int) -> None:
        self.uses = [0] * n_leaves
        self.dots: dict[int, list[Any]] = {}  # id(eqn) -> [leaf, w_in_axis, x position, bias, out shape]
        self.adds: dict[int, int] = {}  # id(add eqn) -> id(dot eqn) whose output it biases
        self.flips: dict[Any, bool] = {}  # a dot's output seen through a transpose
        self.n_rows = n_rows


def _sources(eqn: Any, src: dict[Any, int]) -> list[int | None]:
    return [src.get(v) if isinstance(v, jcore.Var) else None for v in eqn.invars]


def _walk(jaxpr: Any, src: dict[Any, int], outs: dict[Any, int], scan: _Scan) -> None:
    """Discovery: follow parameter leaves through shape-only operations to dots and bias adds.

    ``src`` maps a variable to the leaf it is a reshaped copy of; ``outs`` maps a variable to the
    ``id`` of the dense dot whose output it is.
    """
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        from_leaf = _sources(eqn, src)
        if name == "transpose" and isinstance(eqn.invars[0], jcore.Var) and eqn.invars[0] in outs:
            dot = scan.dots[outs[eqn.invars[0]]]
            if dot[3] is None and tuple(eqn.params["permutation"]) == (1, 0):
                outs[eqn.outvars[0]] = outs[eqn.invars[0]]
                scan.flips[eqn.outvars[0]] = not scan.flips.get(eqn.invars[0], False)
                continue
        if name in _SHAPE_OPS and from_leaf[0] is not None:
            src[eqn.outvars[0]] = from_leaf[0]
            continue
        if name == "broadcast_in_dim" and from_leaf[0] is not None:
            src[eqn.outvars[0]] = from_leaf[0]
            continue
        if name in _CALLS:
            inner = eqn.params["jaxpr"]
            inner_src = {iv: s for iv, s in zip(inner.jaxpr.invars, from_leaf, strict=True) if s is not None}
            inner_outs: dict[Any, int] = {}
            for iv, ov in zip(inner.jaxpr.invars, eqn.invars, strict=True):
                if isinstance(ov, jcore.Var) and ov in outs:
                    inner_outs[iv] = outs[ov]
            _walk(inner.jaxpr, inner_src, inner_outs, scan)
            for ov, iv in zip(eqn.outvars, inner.jaxpr.outvars, strict=True):
                if isinstance(iv, jcore.Var):
                    if iv in inner_outs:
                        outs[ov] = inner_outs[iv]
                    if iv in inner_src:
                        src[ov] = inner_src[iv]
            continue
        if name == "dot_general" and _dense_dot(eqn, from_leaf, scan):
            outs[eqn.outvars[0]] = id(eqn)
            continue
        if name == "add" and _bias_add(eqn, from_leaf, outs, scan):
            continue
        for s in from_leaf:  # any other use of a parameter: not a dense layer's
            if s is not None:
                scan.uses[s] += 2


def _dense_dot(eqn: Any, from_leaf: list[int | None], scan: _Scan) -> bool:
    (contract, batch) = eqn.params["dimension_numbers"]
    if batch[0] or batch[1] or len(contract[0]) != 1:
        return False
    for w_pos in (0, 1):
        leaf = from_leaf[w_pos]
        if leaf is None or from_leaf[1 - w_pos] is not None:
            continue
        w_aval, x_aval = eqn.invars[w_pos].aval, eqn.invars[1 - w_pos].aval
        if len(w_aval.shape) != 2 or len(x_aval.shape) != 2:
            return False
        w_in, x_in = contract[w_pos][0], contract[1 - w_pos][0]
        if x_aval.shape[1 - x_in] != scan.n_rows:
            return False
        scan.uses[leaf] += 1
        # [leaf, W's input axis, rows axis of the output, bias, output shape, x's contracted axis, x operand]
        out = eqn.outvars[0].aval
        scan.dots[id(eqn)] = [leaf, w_in, 1 - w_pos, None, tuple(out.shape), x_in, 1 - w_pos, out.dtype]
        return True
    return False


def _bias_add(eqn: Any, from_leaf: list[int | None], outs: dict[Any, int], scan: _Scan) -> bool:
    for b_pos in (0, 1):
        leaf, other = from_leaf[b_pos], eqn.invars[1 - b_pos]
        if leaf is None or not isinstance(other, jcore.Var) or other not in outs:
            continue
        dot = scan.dots.get(outs[other])
        if dot is None or dot[3] is not None:
            return False
        scan.uses[leaf] += 1
        dot[3] = leaf
        scan.adds[id(eqn)] = outs[other]
        if scan.flips.get(other, False):  # the bias is added to the transposed output
            dot[4] = tuple(eqn.outvars[0].aval.shape)
            dot[2] = 1 - dot[2]  # rows now on the other axis of the (perturbed) output
        return True
    return False


def find_layers(
    eta_of_leaves: Callable[..., Any], leaves: list[Any], x: Any, n_rows: int, names: list[str]
) -> Tagged:
    """The dense layers of ``eta_of_leaves(leaves, x)``, and an interpreter perturbing their outputs.

    Args:
        eta_of_leaves: ``(leaves, x) -> eta``.
        leaves: the parameter leaves (``jax.tree_util.tree_leaves(params)``).
        x: the inputs (all rows).
        n_rows: N.
        names: the layer name of every leaf (its path without the last key).
    """
    closed = jax.make_jaxpr(eta_of_leaves)(leaves, x)
    n = len(leaves)
    scan = _Scan(n, n_rows)
    src = {v: i for i, v in enumerate(closed.jaxpr.invars[:n])}
    _walk(closed.jaxpr, src, {}, scan)
    layers: list[DenseLayer] = []
    order: list[int] = []  # dot ids, in layer order
    for dot_id, (leaf, w_in, _, bias, *_) in scan.dots.items():
        if scan.uses[leaf] != 1 or (bias is not None and scan.uses[bias] != 1):
            continue
        if bias is not None and jnp.ndim(leaves[bias]) != 1:
            continue
        layers.append(DenseLayer(names[leaf], leaf, bias, w_in))
        order.append(dot_id)
    index = {dot_id: k for k, dot_id in enumerate(order)}
    bias_of = {add_id: index[dot_id] for add_id, dot_id in scan.adds.items() if dot_id in index}
    with_bias = set(bias_of.values())
    out_shapes = [tuple(scan.dots[d][4]) for d in order]
    out_dtypes = [scan.dots[d][7] for d in order]
    x_pos = [scan.dots[d][6] for d in order]
    out_rows = [scan.dots[d][2] for d in order]

    def run(leaves_: list[Any], x_: Any, eps: list[jax.Array]) -> tuple[Any, list[jax.Array]]:
        acts: list[Any] = [None] * len(order)
        args = [*leaves_, *jax.tree_util.tree_leaves(x_)]
        out = _eval(closed.jaxpr, closed.consts, args, index, bias_of, with_bias, eps, acts, x_pos)
        return out[0], acts

    return Tagged(layers, run, out_shapes, [1 - scan.dots[d][5] for d in order], out_rows, out_dtypes)


def _eval(
    jaxpr: Any,
    consts: list[Any],
    args: list[Any],
    index: dict[int, int],
    bias_of: dict[int, int],
    with_bias: set[int],
    eps: list[jax.Array],
    acts: list[Any],
    x_axes: list[int],
) -> list[Any]:
    """Evaluate ``jaxpr``, adding ``eps[l]`` to layer ``l``'s output and recording its input."""
    env: dict[Any, Any] = {}

    def read(v: Any) -> Any:
        return v.val if isinstance(v, jcore.Literal) else env[v]

    for v, val in zip(jaxpr.constvars, consts, strict=True):
        env[v] = val
    for v, val in zip(jaxpr.invars, args, strict=True):
        env[v] = val
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        name = eqn.primitive.name
        if name in _CALLS:
            inner = eqn.params["jaxpr"]
            outvals = _eval(inner.jaxpr, inner.consts, invals, index, bias_of, with_bias, eps, acts, x_axes)
        else:
            with eqn.ctx.manager:
                ans = eqn.primitive.bind(*invals, **eqn.primitive.get_bind_params(eqn.params))
            outvals = list(ans) if eqn.primitive.multiple_results else [ans]
            k = index.get(id(eqn))
            if k is not None:  # a dense layer's product: record its input
                acts[k] = invals[x_axes[k]]
                if k not in with_bias:
                    outvals = [outvals[0] + eps[k]]
            k = bias_of.get(id(eqn))
            if k is not None:
                outvals = [outvals[0] + eps[k]]
        for v, val in zip(eqn.outvars, outvals, strict=True):
            env[v] = val
    return [read(v) for v in jaxpr.outvars]


def layer_stats_kernel(tagged: Tagged, kfac: bool) -> Callable[..., Any]:
    r"""``(leaves, x, factor, signs, rotations) -> per layer`` statistics of the dense layers.

    ``kfac``: the Kronecker factors ``(A, G)``. Otherwise the diagonal
    :math:`\sum_i \tilde a_i^2 \otimes \sum_r \sigma_r g_{ir}^2` as ``(d_in [+1], d_out)``; with
    ``rotations`` (per layer ``(Q_A, Q_G)``, else ``None``) the same in the rotated coordinates
    :math:`\tilde a_i Q_A`, :math:`g_{ir} Q_G`: the exact diagonal of the layer's block in the
    Kronecker eigenbasis, EKFAC's eigenvalues (George et al. 2018).

    One forward pass of the interpreter and one reverse pass per column of the head's factor
    (``vmap`` over the columns) with respect to the layers' output perturbations.
    """

    def kernel(leaves: list[Any], x: Any, factor: jax.Array, signs: jax.Array, rotations: Any) -> Any:
        eps0 = [jnp.zeros(s, d) for s, d in zip(tagged.out_shapes, tagged.out_dtypes, strict=True)]

        def fun(eps: list[jax.Array]) -> Any:
            eta, acts = tagged.run(leaves, x, eps)
            return eta, acts

        eta, vjp, acts = jax.vjp(fun, eps0, has_aux=True)
        cols = jnp.moveaxis(factor, -1, 0).astype(eta.dtype)  # (r, N, R, k)
        gs = jax.vmap(lambda c: vjp(c)[0])(cols)  # per layer (r, *out_shape)
        sign = jnp.moveaxis(signs[:, 0, :], -1, 0)  # (r, N)
        out = []
        for index, (layer, g, a, a_rows, g_rows) in enumerate(
            zip(tagged.layers, gs, acts, tagged.act_rows_axis, tagged.out_rows_axis, strict=True)
        ):
            a = a if a_rows == 0 else a.T  # (N, d_in)
            g = g if g_rows == 0 else jnp.swapaxes(g, 1, 2)  # (r, N, d_out)
            if layer.b is not None:
                a = jnp.concatenate([a, jnp.ones((a.shape[0], 1), a.dtype)], axis=1)
            if kfac:
                big_a = a.T @ a
                big_g = jnp.einsum("rn,rnd,rne->de", sign, g, g)
                out.append((big_a, big_g))
                continue
            if rotations is not None:
                q_a, q_g = rotations[index]
                a, g = a @ q_a.astype(a.dtype), g @ q_g.astype(g.dtype)
            g2 = jnp.einsum("rn,rnd->nd", sign, g * g)
            out.append((a * a).T @ g2)  # (d_in [+1], d_out)
        return out

    return kernel
