r"""Dense and convolutional layers found in the traced model, for Kronecker factors and fast exact diagonals.

Layers are found automatically in the jaxpr of :math:`\theta \mapsto \eta(\theta)` (as
kfac-jax's tagging does), through nested ``jit`` calls, without asking the user to rewrite the
network:

- a *dense layer* is a ``dot_general`` of a parameter leaf :math:`W` (2-D as the product sees
  it, used nowhere else) with an activation :math:`a` of shape :math:`(N, d_\text{in})`,
  optionally followed by the addition of a 1-D parameter leaf :math:`b` broadcast over the
  rows: :math:`z_i = a_i W + b` (:class:`DenseLayer`);
- a *convolutional layer* is a ``conv_general_dilated`` whose kernel is a parameter leaf used
  nowhere else, whose input has the rows on its batch dimension, with
  ``feature_group_count == batch_group_count == 1`` (1-, 2- or 3-D, any layout
  ``dimension_numbers`` expresses: NCHW/OIHW, NHWC/HWIO...), optionally followed by the
  addition of a parameter leaf of :math:`c_\text{out}` numbers broadcast over rows and spatial
  positions (Equinox's ``(c_out, 1, 1)``, Flax's ``(c_out,)``) (:class:`ConvLayer`).

A leaf reaches its product through shape-only operations (transpose, reshape, squeeze,
convert); they are recorded, and each layer's :meth:`~DenseLayer.to_matrix` /
:meth:`~DenseLayer.from_matrix` map the leaf to and from its matrix :math:`W` of shape
:math:`(d_\text{in}, d_\text{out})`.

The model is then evaluated by an interpreter of that jaxpr which adds a zero perturbation
:math:`\epsilon_l` to every layer's output :math:`z_l` (a convolution's before its bias: the
same gradient) and records its input :math:`a_l`; a reverse pass with respect to
:math:`\epsilon` for each column :math:`b_{\cdot r}` of the head's factor gives every row's
:math:`g_{ir} = J_{z_i}^\top b_{ir}` at once (rows are independent).

Layouts. Statistics are ``(d_in [+1], d_out)``, the bias (when there is one) as the last row:
:math:`\tilde V = [W; b]`, :math:`\tilde a = (a, 1)`. A dense layer's :math:`W` is the weight
(``a @ W``) or its transpose (``W @ a``). A convolution's output positions
:math:`t = 1..T` (:math:`T = \prod` of the output's spatial sizes, row-major in the logical
spatial order of ``dimension_numbers``) share its weight; its patch
:math:`\tilde a_{it} \in \mathbb R^{d_\text{in}}`, :math:`d_\text{in} = c_\text{in}\prod_s k_s`,
is ordered *channel-major*: index :math:`c \prod_s k_s + \kappa`, :math:`\kappa` the row-major
index of the kernel offset over the kernel's spatial axes in logical order (what
``conv_general_dilated_patches`` gives with the default ``NC...``/``OI...`` numbers), and
:math:`W` is the kernel as ``(c_in, *kernel_spatial, c_out)`` reshaped to
``(d_in, d_out)``, so that :math:`z_{it} = \tilde a_{it}^\top \tilde V`. A dense layer is the
case :math:`T = 1`.

The statistics of these layers are :mod:`._layer_stats`'s.

A weight used more than once (shared across layers), a ``dot_general`` with batch dimensions, a
grouped or depthwise convolution, or an input without the rows on one axis is not a layer here;
its parameters take the per-row path (:mod:`._kernels`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

__all__ = ["ConvLayer", "DenseLayer", "Layer", "Tagged", "find_layers", "layer_index"]

_SHAPE_OPS = frozenset({"transpose", "reshape", "convert_element_type", "copy", "squeeze", "expand_dims"})
_CALLS = frozenset({"pjit", "closed_call", "core_call", "jit"})
#: Ops a convolution's output may pass through before its bias is added.
_OUT_OPS = frozenset({"transpose", "reshape", "convert_element_type", "copy", "squeeze", "expand_dims"})

View = tuple[tuple[str, tuple[int, ...]], ...]  # ("reshape", shape) / ("transpose", perm), leaf -> operand


def _apply_view(w: Any, view: View) -> Any:
    for op, arg in view:
        w = w.reshape(arg) if op == "reshape" else w.transpose(arg)
    return w


def _undo_view(w: Any, view: View, shape: tuple[int, ...]) -> Any:
    shapes = [tuple(shape)]
    for op, arg in view:
        shapes.append(arg if op == "reshape" else tuple(shapes[-1][p] for p in arg))
    for (op, arg), before in zip(reversed(view), reversed(shapes[:-1]), strict=True):
        w = w.reshape(before) if op == "reshape" else w.transpose(tuple(int(p) for p in np.argsort(arg)))
    return w.reshape(shape)


class DenseLayer(NamedTuple):
    """One dense layer: the leaves of its weight and bias, and how the weight is laid out.

    Attributes:
        name: the weight's path without its last key (``l1``, ``layers[0]``).
        w: index of the weight among ``jax.tree_util.tree_leaves(params)``.
        b: index of the bias, or ``None``.
        w_in_axis: the axis of the weight leaf contracted with the activation (0: ``a @ W``,
            ``W`` is ``(d_in, d_out)``; 1: ``W @ a`` or ``a @ W.T``, ``W`` is ``(d_out, d_in)``).
            Where the leaf reaches the product through a reshape, the product's axis; use
            :meth:`to_matrix`.
        view: the shape-only operations from the leaf to the product's operand.
        dot_in_axis: the contracted axis of that operand (``None``: ``w_in_axis``, no view).
    """

    name: str
    w: int
    b: int | None
    w_in_axis: int
    view: View = ()
    dot_in_axis: int | None = None

    def to_matrix(self, w: Any) -> Any:
        """The weight leaf ``w`` (NumPy or JAX) as its ``(d_in, d_out)`` matrix."""
        if not self.view:
            return w if self.w_in_axis == 0 else w.T
        m = _apply_view(w, self.view)
        return m if self.dot_in_axis == 0 else m.T

    def from_matrix(self, m: Any, shape: tuple[int, ...]) -> Any:
        """Inverse of :meth:`to_matrix`: ``(d_in, d_out)`` back to the leaf's ``shape``."""
        if not self.view:
            return (m if self.w_in_axis == 0 else m.T).reshape(shape)
        return _undo_view(m if self.dot_in_axis == 0 else m.T, self.view, shape)


class ConvLayer(NamedTuple):
    """One convolutional layer (``conv_general_dilated``, no feature or batch groups).

    Spatial tuples are in the *logical* spatial order of ``dimension_numbers`` (``lhs_spec[2:]``
    of the input pairs with ``rhs_spec[2:]`` of the kernel and ``out_spec[2:]`` of the output).

    Attributes:
        name: the kernel's path without its last key.
        w: index of the kernel among the parameter leaves.
        b: index of the bias (``c_out`` numbers broadcast over rows and positions), or ``None``.
        lhs_spec, rhs_spec, out_spec: ``ConvDimensionNumbers``' axes: (batch, feature,
            spatial...) of the input and output, (out feature, in feature, spatial...) of the kernel.
        window_strides, padding, lhs_dilation, rhs_dilation: as the convolution's.
        kernel_shape: the kernel's spatial sizes.
        c_in, c_out: input and output channels.
        out_spatial: the output's spatial sizes.
        view: the shape-only operations from the kernel leaf to the convolution's operand.
    """

    name: str
    w: int
    b: int | None
    lhs_spec: tuple[int, ...]
    rhs_spec: tuple[int, ...]
    out_spec: tuple[int, ...]
    window_strides: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    lhs_dilation: tuple[int, ...]
    rhs_dilation: tuple[int, ...]
    kernel_shape: tuple[int, ...]
    c_in: int
    c_out: int
    out_spatial: tuple[int, ...]
    view: View = ()

    @property
    def d_in(self) -> int:
        """:math:`c_\\text{in} \\prod_s k_s` (without the bias row)."""
        return self.c_in * math.prod(self.kernel_shape)

    @property
    def d_out(self) -> int:
        return self.c_out

    @property
    def positions(self) -> int:
        """:math:`T`, the output positions per row (the weight's uses per row)."""
        return math.prod(self.out_spatial)

    def to_matrix(self, w: Any) -> Any:
        """The kernel leaf ``w`` (NumPy or JAX) as ``(d_in, d_out)``: row
        :math:`c \\prod_s k_s + \\kappa` (channel-major, :math:`\\kappa` the row-major kernel
        offset), the order of the patches of :func:`layer_stats_kernel`."""
        k = _apply_view(w, self.view).transpose(self.rhs_spec)  # (O, I, *kernel_spatial)
        return k.reshape(self.c_out, self.d_in).T

    def from_matrix(self, m: Any, shape: tuple[int, ...]) -> Any:
        """Inverse of :meth:`to_matrix`: ``(d_in, d_out)`` back to the leaf's ``shape``."""
        k = m.T.reshape(self.c_out, self.c_in, *self.kernel_shape)
        k = k.transpose(tuple(int(p) for p in np.argsort(self.rhs_spec)))
        return _undo_view(k, self.view, shape)


Layer = DenseLayer | ConvLayer


def layer_index(
    layer: Layer, w: tuple[int, int], b: tuple[int, int] | None, shape: tuple[int, ...]
) -> np.ndarray:
    """The flat positions of a layer's parameters in its ``(d_in [+1], d_out)`` layout: the weight
    leaf at ``w`` (its ``(start, stop)`` in the flat vector; ``shape`` the leaf's) as
    :meth:`~DenseLayer.to_matrix` lays it out, the bias at ``b`` as the last row. ``v[index]`` is
    the layer's matrix of a flat vector ``v``; ``v[index] = m`` writes one back."""
    idx = layer.to_matrix(np.arange(w[0], w[1]).reshape(shape))
    if b is not None:
        idx = np.vstack([idx, np.arange(b[0], b[1])[None, :]])
    return np.asarray(idx)


class Tagged(NamedTuple):
    """The layers of a model, and ``run(leaves, x, eps) -> (eta, activations)``.

    Attributes:
        layers: the layers, in the order of the computation.
        run: the interpreter; ``eps[l]`` has shape ``out_shapes[l]``; ``activations[l]`` is the
            layer's input as the product saw it (rows on axis ``act_rows_axis[l]``).
        out_shapes: the shape of each layer's (perturbed) output (a convolution's: the
            convolution's own output, before any bias or reshape).
        act_rows_axis: the rows axis of each layer's recorded input.
        out_rows_axis: the rows axis of each layer's output.
        out_dtypes: the dtype of each layer's output.
    """

    layers: list[Layer]
    run: Callable[..., Any]
    out_shapes: list[tuple[int, ...]]
    act_rows_axis: list[int]
    out_rows_axis: list[int]
    out_dtypes: list[Any]


class _Scan:
    """What the discovery pass learns: layers by equation, and uses of every parameter leaf."""

    def __init__(self, shapes: list[tuple[int, ...]], n_rows: int) -> None:
        self.uses = [0] * len(shapes)
        self.shapes = shapes
        self.dots: dict[int, list[Any]] = {}  # id(eqn) -> [leaf, w_in_axis, x position, bias, out shape]
        self.convs: dict[int, dict[str, Any]] = {}  # id(eqn) -> what ConvLayer needs
        self.order: list[int] = []  # ids of dots and convolutions, in the order of the computation
        self.adds: dict[int, int] = {}  # id(add eqn) -> id(dot eqn) whose output it biases
        self.flips: dict[Any, bool] = {}  # a dot's output seen through a transpose
        self.views: dict[Any, View | None] = {}  # leaf-derived var -> ops from its leaf (None: broadcast)
        self.baxis: dict[Any, int | None] = {}  # leaf-derived var -> the one axis its values vary on
        self.n_rows = n_rows


def _sources(eqn: Any, src: dict[Any, int]) -> list[int | None]:
    return [src.get(v) if isinstance(v, jcore.Var) else None for v in eqn.invars]


def _shape(v: Any) -> tuple[int, ...]:
    return tuple(v.aval.shape)


def _uses(jaxpr: Any) -> Counter[Any]:
    out: Counter[Any] = Counter()
    for eqn in jaxpr.eqns:
        out.update(v for v in eqn.invars if isinstance(v, jcore.Var))
    out.update(v for v in jaxpr.outvars if isinstance(v, jcore.Var))
    return out


def _follow_axis(in_shape: tuple[int, ...], out_shape: tuple[int, ...], axis: int) -> int | None:
    """Where ``axis`` goes through a reshape that only inserts or drops size-1 axes; -1 where
    it has size 1 (then anywhere), ``None`` for any other reshape."""
    if axis < 0 or in_shape[axis] == 1:
        return -1
    ia = [i for i, s in enumerate(in_shape) if s != 1]
    oa = [j for j, s in enumerate(out_shape) if s != 1]
    if [in_shape[i] for i in ia] != [out_shape[j] for j in oa]:
        return None
    return oa[ia.index(axis)]


def _one_axis(shape: tuple[int, ...]) -> int | None:
    """The one axis of size > 1 (-1: none), ``None`` if several."""
    big = [i for i, s in enumerate(shape) if s != 1]
    return -1 if not big else big[0] if len(big) == 1 else None


def _derive(eqn: Any, scan: _Scan) -> None:
    """The view and varying axis of a shape-only operation's output, from its operand's."""
    name, v, out = eqn.primitive.name, eqn.invars[0], eqn.outvars[0]
    in_shape, out_shape = _shape(v), _shape(out)
    view, ax = scan.views.get(v), scan.baxis.get(v)
    new_view: View | None = None
    new_ax: int | None = None
    if name in ("convert_element_type", "copy"):
        new_view, new_ax = view, ax
    elif name == "transpose":
        perm = tuple(int(p) for p in eqn.params["permutation"])
        new_view = None if view is None else (*view, ("transpose", perm))
        new_ax = None if ax is None else -1 if ax < 0 else perm.index(ax)
    elif name == "broadcast_in_dim":
        if math.prod(out_shape) == math.prod(in_shape):  # only size-1 axes added
            new_view = None if view is None else (*view, ("reshape", out_shape))
        bdims = tuple(int(d) for d in eqn.params["broadcast_dimensions"])
        new_ax = None if ax is None else -1 if ax < 0 else bdims[ax]
    else:  # reshape, squeeze, expand_dims
        dims = eqn.params.get("dimensions") if name == "reshape" else None
        if view is not None:
            pre: View = () if dims is None else (("transpose", tuple(int(d) for d in dims)),)
            new_view = (*view, *pre, ("reshape", out_shape))
        if ax is not None and dims is None:
            new_ax = _follow_axis(in_shape, out_shape, ax)
    scan.views[out], scan.baxis[out] = new_view, new_ax


def _walk(
    jaxpr: Any, src: dict[Any, int], outs: dict[Any, int], scan: _Scan, couts: dict[Any, tuple[int, int]]
) -> None:
    """Discovery: follow parameter leaves through shape-only operations to products and bias adds.

    ``src`` maps a variable to the leaf it is a reshaped copy of; ``outs`` maps a variable to the
    ``id`` of the dense dot whose output it is; ``couts`` a variable used once to the ``id`` of
    the convolution whose output it is (through shape-only operations) and its channel axis.
    """
    uses = _uses(jaxpr)
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        from_leaf = _sources(eqn, src)
        if name == "transpose" and isinstance(eqn.invars[0], jcore.Var) and eqn.invars[0] in outs:
            dot = scan.dots[outs[eqn.invars[0]]]
            if dot[3] is None and tuple(eqn.params["permutation"]) == (1, 0):
                outs[eqn.outvars[0]] = outs[eqn.invars[0]]
                scan.flips[eqn.outvars[0]] = not scan.flips.get(eqn.invars[0], False)
                continue
        if name in _OUT_OPS and isinstance(eqn.invars[0], jcore.Var) and eqn.invars[0] in couts:
            conv_id, ch = couts[eqn.invars[0]]
            v, out = eqn.invars[0], eqn.outvars[0]
            new: int | None
            if name == "transpose":
                perm = tuple(eqn.params["permutation"])
                new = -1 if ch < 0 else perm.index(ch)
            elif name in ("convert_element_type", "copy"):
                new = ch
            elif name == "reshape" and eqn.params.get("dimensions") is not None:
                new = None
            else:
                new = _follow_axis(_shape(v), _shape(out), ch)
            if new is not None and uses[out] == 1:
                couts[out] = (conv_id, new)
        if (name in _SHAPE_OPS or name == "broadcast_in_dim") and from_leaf[0] is not None:
            src[eqn.outvars[0]] = from_leaf[0]
            _derive(eqn, scan)
            continue
        if name in _CALLS:
            inner = eqn.params["jaxpr"]
            inner_src = {iv: s for iv, s in zip(inner.jaxpr.invars, from_leaf, strict=True) if s is not None}
            inner_outs: dict[Any, int] = {}
            inner_couts: dict[Any, tuple[int, int]] = {}
            inner_uses = _uses(inner.jaxpr)
            for iv, ov in zip(inner.jaxpr.invars, eqn.invars, strict=True):
                if isinstance(ov, jcore.Var):
                    if ov in outs:
                        inner_outs[iv] = outs[ov]
                    if ov in couts and inner_uses[iv] == 1:
                        inner_couts[iv] = couts[ov]
                    if ov in src:
                        scan.views[iv], scan.baxis[iv] = scan.views.get(ov), scan.baxis.get(ov)
            _walk(inner.jaxpr, inner_src, inner_outs, scan, inner_couts)
            for ov, iv in zip(eqn.outvars, inner.jaxpr.outvars, strict=True):
                if isinstance(iv, jcore.Var):
                    if iv in inner_outs:
                        outs[ov] = inner_outs[iv]
                    if iv in inner_couts and uses[ov] == 1:
                        couts[ov] = inner_couts[iv]
                    if iv in inner_src:
                        src[ov] = inner_src[iv]
                        scan.views[ov], scan.baxis[ov] = scan.views.get(iv), scan.baxis.get(iv)
            continue
        if name == "dot_general" and _dense_dot(eqn, from_leaf, scan):
            outs[eqn.outvars[0]] = id(eqn)
            continue
        if name == "conv_general_dilated" and _conv(eqn, from_leaf, scan):
            out = eqn.outvars[0]
            if uses[out] == 1:
                couts[out] = (id(eqn), int(scan.convs[id(eqn)]["out_spec"][1]))
            continue
        if name == "add" and _bias_add(eqn, from_leaf, outs, scan):
            continue
        if name == "add" and _conv_bias(eqn, from_leaf, couts, scan):
            continue
        for s in from_leaf:  # any other use of a parameter: not a layer's
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
        view = scan.views.get(eqn.invars[w_pos], ())
        if view is None:  # a weight broadcast to its operand: shared, not a dense layer
            return False
        w_in, x_in = contract[w_pos][0], contract[1 - w_pos][0]
        if x_aval.shape[1 - x_in] != scan.n_rows:
            return False
        scan.uses[leaf] += 1
        # [leaf, W's input axis, rows axis of the output, bias, output shape, x's contracted axis,
        #  x operand, dtype, view]
        out = eqn.outvars[0].aval
        entry = [leaf, w_in, 1 - w_pos, None, tuple(out.shape), x_in, 1 - w_pos, out.dtype, view]
        scan.dots[id(eqn)] = entry
        scan.order.append(id(eqn))
        return True
    return False


def _conv(eqn: Any, from_leaf: list[int | None], scan: _Scan) -> bool:
    leaf, p = from_leaf[1], eqn.params
    if leaf is None or from_leaf[0] is not None:
        return False
    if p["feature_group_count"] != 1 or p["batch_group_count"] != 1:
        return False
    lhs_spec, rhs_spec, out_spec = (tuple(int(d) for d in s) for s in p["dimension_numbers"])
    lhs_shape, rhs_shape = tuple(eqn.invars[0].aval.shape), tuple(eqn.invars[1].aval.shape)
    view = scan.views.get(eqn.invars[1], ())
    if lhs_shape[lhs_spec[0]] != scan.n_rows or view is None:
        return False
    out = eqn.outvars[0].aval
    scan.uses[leaf] += 1
    scan.convs[id(eqn)] = {
        "w": leaf,
        "b": None,
        "lhs_spec": lhs_spec,
        "rhs_spec": rhs_spec,
        "out_spec": out_spec,
        "window_strides": tuple(int(s) for s in p["window_strides"]),
        "padding": tuple((int(lo), int(hi)) for lo, hi in p["padding"]),
        "lhs_dilation": tuple(int(s) for s in p["lhs_dilation"]),
        "rhs_dilation": tuple(int(s) for s in p["rhs_dilation"]),
        "kernel_shape": tuple(int(rhs_shape[d]) for d in rhs_spec[2:]),
        "c_in": int(rhs_shape[rhs_spec[1]]),
        "c_out": int(rhs_shape[rhs_spec[0]]),
        "out_spatial": tuple(int(out.shape[d]) for d in out_spec[2:]),
        "view": view,
        "out_shape": tuple(out.shape),
        "dtype": out.dtype,
    }
    scan.order.append(id(eqn))
    return True


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


def _conv_bias(eqn: Any, from_leaf: list[int | None], couts: dict[Any, tuple[int, int]], scan: _Scan) -> bool:
    """A leaf of ``c_out`` numbers varying only along the channel axis of a convolution's output
    (the output used by this addition only): its bias."""
    for b_pos in (0, 1):
        leaf, other = from_leaf[b_pos], eqn.invars[1 - b_pos]
        if leaf is None or not isinstance(other, jcore.Var) or other not in couts:
            continue
        conv_id, ch = couts[other]
        conv = scan.convs[conv_id]
        ax = scan.baxis.get(eqn.invars[b_pos])
        if conv["b"] is not None or _shape(other) != _shape(eqn.outvars[0]):
            return False
        if math.prod(scan.shapes[leaf]) != conv["c_out"] or ax is None:
            return False
        if conv["c_out"] > 1 and (ch < 0 or ax != ch):
            return False
        scan.uses[leaf] += 1
        conv["b"] = leaf
        return True
    return False


def _dense_in_axis(shape: tuple[int, ...], view: View, w_in: int) -> int:
    """The leaf's axis contracted by the product (the product's own where the leaf is reshaped)."""
    if not view or len(shape) != 2:
        return w_in
    idx = np.arange(math.prod(shape)).reshape(shape)
    seen = _apply_view(idx, view)
    if seen.shape == idx.shape and np.array_equal(seen, idx):
        return w_in
    if seen.shape == idx.T.shape and np.array_equal(seen, idx.T):
        return 1 - w_in
    return w_in


def find_layers(
    eta_of_leaves: Callable[..., Any], leaves: list[Any], x: Any, n_rows: int, names: list[str]
) -> Tagged:
    """The layers of ``eta_of_leaves(leaves, x)``, and an interpreter perturbing their outputs.

    Args:
        eta_of_leaves: ``(leaves, x) -> eta``.
        leaves: the parameter leaves (``jax.tree_util.tree_leaves(params)``).
        x: the inputs (all rows).
        n_rows: N.
        names: the layer name of every leaf (its path without the last key).
    """
    closed = jax.make_jaxpr(eta_of_leaves)(leaves, x)
    n = len(leaves)
    scan = _Scan([tuple(np.shape(leaf)) for leaf in leaves], n_rows)
    src = {v: i for i, v in enumerate(closed.jaxpr.invars[:n])}
    for v in closed.jaxpr.invars[:n]:
        scan.views[v], scan.baxis[v] = (), _one_axis(tuple(v.aval.shape))
    _walk(closed.jaxpr, src, {}, scan, {})
    layers: list[Layer] = []
    order: list[int] = []  # product ids, in layer order
    out_shapes: list[tuple[int, ...]] = []
    out_dtypes: list[Any] = []
    x_pos: list[int] = []
    act_rows: list[int] = []
    out_rows: list[int] = []
    for op_id in scan.order:
        if op_id in scan.convs:
            c = scan.convs[op_id]
            if scan.uses[c["w"]] != 1 or (c["b"] is not None and scan.uses[c["b"]] != 1):
                continue
            fields = {k: c[k] for k in ConvLayer._fields if k != "name"}
            layers.append(ConvLayer(name=names[c["w"]], **fields))
            out_shapes.append(c["out_shape"])
            out_dtypes.append(c["dtype"])
            x_pos.append(0)
            act_rows.append(c["lhs_spec"][0])
            out_rows.append(c["out_spec"][0])
            order.append(op_id)
            continue
        leaf, w_in, rows, bias, shape, x_in, xp, dtype, view = scan.dots[op_id]
        if scan.uses[leaf] != 1 or (bias is not None and scan.uses[bias] != 1):
            continue
        if bias is not None and jnp.ndim(leaves[bias]) != 1:
            continue
        in_axis = _dense_in_axis(scan.shapes[leaf], view, w_in)
        layers.append(DenseLayer(names[leaf], leaf, bias, in_axis, view, w_in if view else None))
        out_shapes.append(tuple(shape))
        out_dtypes.append(dtype)
        x_pos.append(xp)
        act_rows.append(1 - x_in)
        out_rows.append(rows)
        order.append(op_id)
    index = {op_id: k for k, op_id in enumerate(order)}
    bias_of = {add_id: index[dot_id] for add_id, dot_id in scan.adds.items() if dot_id in index}
    # the perturbation goes on the product's output, except a dense layer's with a bias (after it)
    at_product = set(range(len(order))) - set(bias_of.values())

    def run(leaves_: list[Any], x_: Any, eps: list[jax.Array]) -> tuple[Any, list[jax.Array]]:
        acts: list[Any] = [None] * len(order)
        args = [*leaves_, *jax.tree_util.tree_leaves(x_)]
        out = _eval(closed.jaxpr, closed.consts, args, index, bias_of, at_product, eps, acts, x_pos)
        return out[0], acts

    return Tagged(layers, run, out_shapes, act_rows, out_rows, out_dtypes)


def _eval(
    jaxpr: Any,
    consts: list[Any],
    args: list[Any],
    index: dict[int, int],
    bias_of: dict[int, int],
    at_product: set[int],
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
            outvals = _eval(inner.jaxpr, inner.consts, invals, index, bias_of, at_product, eps, acts, x_axes)
        else:
            with eqn.ctx.manager:
                ans = eqn.primitive.bind(*invals, **eqn.primitive.get_bind_params(eqn.params))
            outvals = list(ans) if eqn.primitive.multiple_results else [ans]
            k = index.get(id(eqn))
            if k is not None:  # a layer's product: record its input
                acts[k] = invals[x_axes[k]]
                if k in at_product:
                    outvals = [outvals[0] + eps[k]]
            k = bias_of.get(id(eqn))
            if k is not None:
                outvals = [outvals[0] + eps[k]]
        for v, val in zip(eqn.outvars, outvals, strict=True):
            env[v] = val
    return [read(v) for v in jaxpr.outvars]
