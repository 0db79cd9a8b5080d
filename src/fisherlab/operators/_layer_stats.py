r"""Statistics of the layers :mod:`._layers` finds: exact diagonals, Kronecker factors, EKFAC.

Layouts are :mod:`._layers`'s: ``(d_in [+1], d_out)``, the bias as the last row,
:math:`\tilde V = [W; b]`, :math:`\tilde a = (a, 1)`; a convolution's output positions
:math:`t = 1..T` share its weight, a dense layer is the case :math:`T = 1`.

Sums. :math:`C_l = \sum_i \sum_r \sigma_r\, \operatorname{vec}(\nabla_{\tilde V} z)
\operatorname{vec}(\cdot)^\top` with the per-row, per-column gradient
:math:`\Gamma_{ir} = \sum_t \tilde a_{it} g_{itr}^\top` (``(d_in [+1], d_out)``):

- exact diagonal: :math:`\operatorname{diag} C_l = \sum_{i,r} \sigma_r \Gamma_{ir}^{\odot 2}`;
  for a dense layer :math:`\sum_i \tilde a_i^{2} \otimes \sum_r \sigma_r g_{ir}^2`, one matrix
  product; for a convolution over blocks of rows (at most about :math:`2^{21}` numbers of
  per-row gradients at a time);
- Kronecker factors (K-FAC, Martens & Grosse 2015), always with :math:`C_l \approx \frac1N
  A \otimes G` (``(A, G)`` returned; the caller divides by :math:`N` only):

  * dense: :math:`A = \sum_i \tilde a_i \tilde a_i^\top` (by blocks of its upper triangle,
    :func:`_dense_gram`), :math:`G = \sum_{i,r} \sigma_r g_{ir} g_{ir}^\top`, exact for one row;
  * convolution, *expand* (the default; Grosse & Martens 2016, Eschenhagen et al. 2023):
    :math:`C_l \approx \frac1{NT} \sum_{i,t} \tilde a_{it}\tilde a_{it}^\top \otimes
    \sum_{i,r,t} \sigma_r g_{itr} g_{itr}^\top`; returned as :math:`A = \frac1T \sum_{i,t}
    \tilde a_{it} \tilde a_{it}^\top` (**already divided by** :math:`T`,
    :attr:`ConvLayer.positions`) and :math:`G = \sum_{i,r,t} \sigma_r g_{itr}g_{itr}^\top`;
    exact for one row and a 1×1 output map;
  * convolution, *reduce* (``reduce=True``; Eschenhagen et al. 2023, eq. K-FAC-reduce
    :math:`\frac{1}{NR^2}\sum_n(\sum_r a)(\sum_r a)^\top \otimes \sum_n (\sum_r g)(\sum_r
    g)^\top`): :math:`\bar a_i = \frac1T\sum_t \tilde a_{it}`, :math:`\bar g_{ir} = \sum_t
    g_{itr}`, :math:`A = \sum_i \bar a_i \bar a_i^\top`, :math:`G = \sum_{i,r} \sigma_r
    \bar g_{ir}\bar g_{ir}^\top`; for a dense layer the same as expand.
- EKFAC (George et al. 2018): the exact diagonal in the rotated coordinates
  :math:`Q_A^\top \Gamma_{ir} Q_G`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from ._kernels import BLOCK_ELEMENTS
from ._layers import ConvLayer, Tagged

__all__ = [
    "SYMMETRIC_BLOCK",
    "conv_patches",
    "fused_stats_kernel",
    "layer_stats_kernel",
    "output_factors_kernel",
]

#: Columns of a block of :func:`_dense_gram` (a K-FAC factor :math:`A` computed by blocks of its
#: upper triangle).
SYMMETRIC_BLOCK = 320


def _gram(m: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    r""":math:`\sum_j w_j m_j m_j^\top` over all leading axes of ``m`` (``weights`` shaped like
    them, or none): one matrix product (an ``einsum`` over three operands ran 3.5 times slower)."""
    flat = m.reshape(-1, m.shape[-1])
    left = flat if weights is None else flat * weights.reshape(-1, 1).astype(flat.dtype)
    return left.T @ flat


def conv_patches(layer: ConvLayer, a: jax.Array) -> jax.Array:
    """The patches ``(N, T, d_in)`` of a convolution's input ``a`` (the layout the convolution
    saw), channel-major as :meth:`ConvLayer.to_matrix`: ``conv(a, W)`` at row ``i`` and position
    ``t`` (row-major over the output's logical spatial axes) is ``patches[i, t] @ to_matrix(W)``."""
    a = a.transpose(layer.lhs_spec)  # (N, C, *spatial), the default numbers' layout
    p = jax.lax.conv_general_dilated_patches(
        a,
        layer.kernel_shape,
        layer.window_strides,
        layer.padding,
        lhs_dilation=layer.lhs_dilation,
        rhs_dilation=layer.rhs_dilation,
        precision=jax.lax.Precision.HIGHEST,
    )  # (N, C * K, *out_spatial), feature c * K + kappa
    return jnp.swapaxes(p.reshape(p.shape[0], layer.d_in, layer.positions), 1, 2)


def _conv_stats(
    layer: ConvLayer,
    a: jax.Array,
    g: jax.Array,
    signs: jax.Array,
    kfac: bool,
    reduce: bool,
    rotation: Any,
) -> Any:
    """One convolution's statistics, over blocks of rows. ``a``: its input; ``g``: ``(r,
    *out_shape)``; ``signs``: ``(N, r)``."""
    r, n, t_len, d_out = g.shape[0], signs.shape[0], layer.positions, layer.c_out
    d_in = layer.d_in + (layer.b is not None)
    a = jnp.moveaxis(a, layer.lhs_spec[0], 0)  # (N, ...)
    lhs_spec = tuple(0 if d == layer.lhs_spec[0] else d + (d < layer.lhs_spec[0]) for d in layer.lhs_spec)
    one = layer._replace(lhs_spec=lhs_spec)
    g = g.transpose((0, *(1 + d for d in layer.out_spec)))  # (r, N, O, *out_spatial)
    g = jnp.moveaxis(g.reshape(r, n, d_out, t_len), 0, 1)  # (N, r, O, T)
    g = jnp.swapaxes(g, 2, 3)  # (N, r, T, O)
    per_row = max(t_len * d_in, r * t_len * d_out, 0 if kfac else r * d_in * d_out, 1)
    size = max(1, min(n, BLOCK_ELEMENTS // per_row))
    blocks = -(-n // size)
    pad = blocks * size - n
    mask = jnp.ones((n,), g.dtype)

    def blocked(v: jax.Array) -> jax.Array:
        if pad:
            v = jnp.concatenate([v, jnp.zeros((pad, *v.shape[1:]), v.dtype)])
        return v.reshape(blocks, size, *v.shape[1:])

    def block(carry: Any, args: Any) -> Any:
        a_b, g_b, s_b, m_b = args
        p = conv_patches(one, a_b)  # (B, T, d_in)
        if layer.b is not None:
            p = jnp.concatenate([p, jnp.ones((*p.shape[:2], 1), p.dtype)], axis=2)
        p = p * m_b[:, None, None].astype(p.dtype)  # padded rows add nothing
        part: Any
        if kfac and not reduce:
            weights = jnp.broadcast_to(s_b[:, :, None], g_b.shape[:3])
            part = (_gram(p) / max(t_len, 1), _gram(g_b, weights))
        elif kfac:
            a_bar, g_bar = p.mean(axis=1), g_b.sum(axis=2)
            part = (_gram(a_bar), _gram(g_bar, s_b))
        else:
            if rotation is not None:
                q_a, q_g = rotation
                p, g_b = p @ q_a.astype(p.dtype), g_b @ q_g.astype(g_b.dtype)
            grad = jnp.einsum("btf,brtd->brfd", p, g_b)  # the rows' weight gradients
            part = jnp.einsum("br,brfd->fd", s_b, grad * grad)
        return jax.tree_util.tree_map(jnp.add, carry, part), None

    if kfac:
        init: Any = (jnp.zeros((d_in, d_in), a.dtype), jnp.zeros((d_out, d_out), g.dtype))
    else:
        init = jnp.zeros((d_in, d_out), jnp.result_type(a.dtype, g.dtype))
    xs = (blocked(a), blocked(g), blocked(signs.astype(g.dtype)), blocked(mask))
    return jax.lax.scan(block, init, xs)[0]


def _dense_gram(a: jax.Array, ones: bool) -> jax.Array:
    r""":math:`a^\top a`, or with ``ones`` :math:`\tilde a^\top \tilde a` for :math:`\tilde a =
    (a, 1)` (from :math:`a^\top 1` and :math:`N`, without copying ``a`` into :math:`\tilde a`).

    The product is symmetric: over blocks of about ``SYMMETRIC_BLOCK`` columns :math:`a_j`, only
    :math:`a_j^\top (a_j, a_{j+1}, \ldots)` is computed and written with its transpose into the
    result (``(k + 1) / 2k`` of the products for ``k`` blocks); the blocks on the diagonal are
    made exactly symmetric (:func:`_symmetric`), so the result is. For 785 columns from 2,048 rows
    (3 blocks) this ran in 0.7 of the time of one product on the CPU; more and smaller blocks
    were slower again.
    """
    n, d = a.shape
    k = -(-d // SYMMETRIC_BLOCK)
    if k <= 1 and not ones:
        return _symmetric(a.T @ a)
    width = -(-d // k)
    out = jnp.zeros((d + ones, d + ones), a.dtype)
    for lo in range(0, d, width):
        hi = min(d, lo + width)
        block = a[:, lo:hi].T @ a[:, lo:]  # (hi - lo, d - lo): this block row from the diagonal on
        out = out.at[lo:hi, lo:hi].set(_symmetric(block[:, : hi - lo]))
        if hi < d:
            out = out.at[lo:hi, hi:d].set(block[:, hi - lo :]).at[hi:d, lo:hi].set(block[:, hi - lo :].T)
    if ones:
        s = a.sum(axis=0)
        out = out.at[:d, d].set(s).at[d, :d].set(s).at[d, d].set(n)
    return out


def _symmetric(m: jax.Array) -> jax.Array:
    """:math:`(M + M^\\top)/2`: exactly symmetric (floating-point addition commutes)."""
    return 0.5 * (m + m.T)


def layer_stats_kernel(tagged: Tagged, kfac: bool, reduce: bool = False) -> Callable[..., Any]:
    r"""``(leaves, x, factor, signs, rotations) -> per layer`` statistics of the layers.

    ``kfac``: the Kronecker factors ``(A, G)`` with :math:`C_l \approx \frac1N A \otimes G`
    for every layer: for a convolution :math:`A` is already divided by its positions :math:`T`
    (K-FAC-expand), or with ``reduce`` built from the rows' mean patches and summed output
    gradients (K-FAC-reduce); see the module's docstring. The factors are exactly symmetric
    (:func:`_dense_gram`, :func:`_symmetric`), so sums of them over chunks are too. Otherwise
    the exact diagonal :math:`\sum_{i,r} \sigma_r \Gamma_{ir}^{\odot 2}` as ``(d_in [+1], d_out)``; with
    ``rotations`` (per layer ``(Q_A, Q_G)``, else ``None``) the same in the rotated coordinates
    :math:`Q_A^\top \Gamma_{ir} Q_G`: the exact diagonal of the layer's block in the Kronecker
    eigenbasis, EKFAC's eigenvalues (George et al. 2018). ``reduce`` changes nothing for dense
    layers nor for diagonals.

    One forward pass of the interpreter, then one reverse pass per column :math:`r` of the head's
    factor with respect to the layers' output perturbations, the columns one after the other
    (``lax.scan``): a dense layer adds column :math:`r`'s :math:`\sigma_r g_{ir}^{\odot 2}`
    (``(N, d_out)``; diagonal) or :math:`\sum_i \sigma_r g_{ir} g_{ir}^\top` (K-FAC) to its
    running sum, so memory holds one column's output gradients (a 10-column softmax factor ran
    2.4 times faster than all columns at once, ``vmap``, whose ``(r, N, d_out)`` arrays left
    the cache); a convolution's are stacked over the columns for :func:`_conv_stats`.
    """

    def kernel(leaves: list[Any], x: Any, factor: jax.Array, signs: jax.Array, rotations: Any) -> Any:
        eps0 = [jnp.zeros(s, d) for s, d in zip(tagged.out_shapes, tagged.out_dtypes, strict=True)]

        def fun(eps: list[jax.Array]) -> Any:
            eta, acts = tagged.run(leaves, x, eps)
            return eta, acts

        eta, vjp, acts = jax.vjp(fun, eps0, has_aux=True)
        cols = jnp.moveaxis(factor, -1, 0).astype(eta.dtype)  # (r, N, R, k)
        sign = jnp.moveaxis(signs[:, 0, :], -1, 0)  # (r, N)
        dense = [i for i, layer in enumerate(tagged.layers) if not isinstance(layer, ConvLayer)]
        conv = [i for i, layer in enumerate(tagged.layers) if isinstance(layer, ConvLayer)]
        rotate = rotations is not None and not kfac
        rows = {}  # a dense layer's input (N, d_in), rotated for EKFAC
        for i in dense:
            a = acts[i] if tagged.act_rows_axis[i] == 0 else acts[i].T
            if rotate:
                if tagged.layers[i].b is not None:
                    a = jnp.concatenate([a, jnp.ones((a.shape[0], 1), a.dtype)], axis=1)
                a = a @ rotations[i][0].astype(a.dtype)
            rows[i] = a

        def column(carry: list[jax.Array], args: Any) -> Any:
            c, s = args
            gs = vjp(c)[0]  # per layer its output's gradient, shaped as the output
            new = []
            for i, total in zip(dense, carry, strict=True):
                g = gs[i] if tagged.out_rows_axis[i] == 0 else gs[i].T  # (N, d_out)
                if rotate:
                    g = g @ rotations[i][1].astype(g.dtype)
                sg = s[:, None].astype(g.dtype) * g
                new.append(total + (sg.T @ g if kfac else sg * g))
            return new, [gs[i] for i in conv]

        init = []
        for i in dense:
            d_out = tagged.out_shapes[i][1 - tagged.out_rows_axis[i]]
            dtype = jnp.result_type(tagged.out_dtypes[i], cols.dtype)
            init.append(jnp.zeros((d_out, d_out) if kfac else (sign.shape[1], d_out), dtype))
        sums, conv_gs = jax.lax.scan(column, init, (cols, sign))
        out: list[Any] = [None] * len(tagged.layers)
        for i, total in zip(dense, sums, strict=True):
            a, layer = rows[i], tagged.layers[i]
            if kfac:
                out[i] = (_dense_gram(a, layer.b is not None), _symmetric(total))
                continue
            if layer.b is not None and not rotate:
                a = jnp.concatenate([a, jnp.ones((a.shape[0], 1), a.dtype)], axis=1)
            out[i] = (a * a).T @ total  # (d_in [+1], d_out)
        for i, g in zip(conv, conv_gs, strict=True):  # g: (r, *out_shape)
            layer, rotation = tagged.layers[i], None if rotations is None else rotations[i]
            assert isinstance(layer, ConvLayer)
            stats = _conv_stats(layer, acts[i], g, signs[:, 0, :], kfac, reduce, rotation)
            out[i] = tuple(_symmetric(m) for m in stats) if kfac else stats
        return out

    return kernel


def fused_stats_kernel(
    tagged: Tagged, kfac: bool, head: Callable[..., Any], reduce: bool = False
) -> Callable[..., Any]:
    r"""``(leaves, y, x, key, rotations) -> (statistics, head, checks)``: :func:`layer_stats_kernel`
    with the head's factor computed in the same program, ``head(leaves, y, x, key) -> (Head,
    checks)`` (:func:`~._kernels.leaves_head_kernel`).

    The head calls the model function on the same leaves and data as the interpreter runs, so
    XLA's common-subexpression elimination merges the two forward passes (the interpreter's
    zero perturbations fold away): the network runs forward once where a separate head pass
    (:func:`~._kernels.factor_kernel`) and statistics pass ran it twice. Where XLA cannot merge
    them the result is the same, at the cost of the second forward pass. Memory: the statistics
    pass's and the factor it returns (``(N, R, k, r)``, kept by the caller for later products).
    """
    stats = layer_stats_kernel(tagged, kfac, reduce)

    def kernel(leaves: list[Any], y: Any, x: Any, key: jax.Array, rotations: Any) -> Any:
        h, checks = head(leaves, y, x, key)
        return stats(leaves, x, h.factor, h.signs, rotations), h, checks

    return kernel


def output_factors_kernel(tagged: Tagged, columns: tuple[int, ...]) -> Callable[..., Any]:
    r"""``(leaves, x) -> (f, acts, grads)`` for dense layers: the Jacobian of outputs by its factors.

    For row :math:`i`, output :math:`f_{ik}` (column ``columns[k]`` of :math:`\eta_i`) and dense
    layer :math:`l`, :math:`\partial f_{ik}/\partial\tilde V_l = \tilde a_{il}\, g_{ilk}^\top`
    (one row: rank one), :math:`g_{ilk} = \partial f_{ik}/\partial z_{il}`. Returns ``f``
    ``(N, m)``, per dense layer its input ``a`` ``(N, d_in)`` (without the bias's 1) and ``g``
    ``(m, N, d_out)``: one forward pass of the interpreter and one reverse pass per output
    (``lax.scan``), never the ``(N, m, P)`` Jacobian. Convolutions are not handled (their
    Jacobian is a sum over positions); the caller checks that every layer is dense.
    """
    dense = [i for i, layer in enumerate(tagged.layers) if not isinstance(layer, ConvLayer)]

    def kernel(leaves: list[Any], x: Any) -> Any:
        eps0 = [jnp.zeros(s, d) for s, d in zip(tagged.out_shapes, tagged.out_dtypes, strict=True)]
        eta, vjp, acts = jax.vjp(lambda eps: tagged.run(leaves, x, eps), eps0, has_aux=True)
        basis = jnp.eye(eta.shape[-1], dtype=eta.dtype)[jnp.asarray(columns)]  # (m, k)
        cols = jnp.broadcast_to(basis[:, None, None, :], (len(columns), *eta.shape))

        def column(carry: None, c: jax.Array) -> Any:
            gs = vjp(c)[0]
            return None, [gs[i] if tagged.out_rows_axis[i] == 0 else gs[i].T for i in dense]

        _, grads = jax.lax.scan(column, None, cols)
        inputs = [acts[i] if tagged.act_rows_axis[i] == 0 else acts[i].T for i in dense]
        return eta[:, 0, jnp.asarray(columns)], inputs, grads

    return kernel
