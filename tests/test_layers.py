"""Layer discovery and statistics (:mod:`fisherlab.operators._layers`) for convolutions.

References are built independently of the interpreter: the Jacobian of the logits by
``jax.jacobian`` contracted with the softmax Fisher :math:`\\operatorname{diag}(p) - pp^\\top`
(factored here by its eigendecomposition), patches cut by explicit loops in NumPy, and output
gradients from ``jax.vjp`` of the network's head at the convolution's output.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from fisherlab.operators import _layer_stats
from fisherlab.operators._layer_stats import conv_patches, layer_stats_kernel
from fisherlab.operators._layers import ConvLayer, DenseLayer, find_layers

K = 3  # classes


def _conv(x, w, spec, stride=1, padding="SAME", rhs_dilation=None, lhs_dilation=None, groups=1):
    nd = w.ndim - 2
    return jax.lax.conv_general_dilated(
        x,
        w,
        (stride,) * nd,
        padding,
        lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation,
        dimension_numbers=spec,
        feature_group_count=groups,
    )


# (name, dimension numbers, input shape per row, kernel shape, bias shape or None, conv keywords)
CASES = {
    "nchw_bias_same": (("NCHW", "OIHW", "NCHW"), (2, 5, 5), (3, 2, 3, 3), (3, 1, 1), {}),
    "nhwc_bias_stride2": (("NHWC", "HWIO", "NHWC"), (6, 5, 2), (3, 2, 2, 3), (3,), {"stride": 2}),
    "nchw_valid_no_bias": (("NCHW", "OIHW", "NCHW"), (2, 5, 4), (2, 2, 2, 3), None, {"padding": "VALID"}),
    "odd_layout": (
        ("HNWC", "WHIO", "CNHW"),
        (4, 5, 2),
        (2, 3, 2, 3),
        (3,),
        {"stride": 2, "padding": "VALID"},
    ),
    "conv1d_dilated": (("NCW", "OIW", "NCW"), (2, 9), (3, 2, 3), (3, 1), {"rhs_dilation": (2,)}),
    "conv1d_lhs_dilated": (
        ("NWC", "WIO", "NWC"),
        (4, 2),
        (2, 2, 3),
        (3,),
        {"lhs_dilation": (2,), "padding": ((1, 2),)},
    ),
    "conv3d": (
        ("NCDHW", "OIDHW", "NCDHW"),
        (1, 3, 3, 4),
        (2, 1, 2, 2, 2),
        (2, 1, 1, 1),
        {"padding": "VALID"},
    ),
}


def _to_rows_first(z, spec):
    """The conv output with rows first, then flattened."""
    out = spec[2]
    return jnp.moveaxis(z, out.index("N"), 0).reshape(z.shape[out.index("N")], -1)


def _make(case: str, n: int, seed: int = 0):
    spec, x_row, w_shape, b_shape, kw = CASES[case]
    rng = np.random.default_rng(seed)
    n_axis = spec[0].index("N")
    x_shape = (*x_row[:n_axis], n, *x_row[n_axis:])
    x = jnp.asarray(rng.normal(size=x_shape))
    params: dict[str, Any] = {"conv": {"w": jnp.asarray(rng.normal(size=w_shape) * 0.5)}}
    if b_shape is not None:
        params["conv"]["b"] = jnp.asarray(rng.normal(size=b_shape) * 0.3)
    out_ch = spec[2].index("C")

    def body(th, xx):  # the conv layer's output z (before the nonlinearity)
        z = _conv(xx, th["conv"]["w"], spec, **kw)
        if "b" in th["conv"]:
            b = th["conv"]["b"]
            if b.ndim == 1:  # (c_out,) on the output's channel axis
                b = b.reshape([-1 if i == out_ch else 1 for i in range(z.ndim)])
            else:  # (c_out, 1, ...): channel-first without the rows
                b = b[None]
            z = z + b
        return z

    def head(th, z):
        return jnp.tanh(_to_rows_first(z, spec)) @ th["dense"]["w"] + th["dense"]["b"]

    features = _to_rows_first(body(params, x), spec).shape[1]
    params["dense"] = {
        "w": jnp.asarray(rng.normal(size=(features, K)) * 0.3),
        "b": jnp.asarray(rng.normal(size=K) * 0.1),
    }

    def net(th, xx):
        return head(th, body(th, xx))

    return net, body, head, params, x


def _factor(logits):
    """The softmax Fisher diag(p) - p pᵀ per row as B diag(σ) Bᵀ, ``(N, 1, K, K)`` and ``(N, 1, K)``."""
    p = jax.nn.softmax(logits)
    m = jax.vmap(lambda q: jnp.diag(q) - jnp.outer(q, q))(p)
    w, v = jnp.linalg.eigh(m)
    return (v * jnp.sqrt(jnp.abs(w))[:, None, :])[:, None], jnp.sign(w)[:, None], m


def _names(params):
    return [jax.tree_util.keystr(path[:-1]) for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]


def _tagged(net, params, x):
    leaves, treedef = jax.tree_util.tree_flatten(params)

    def eta_of_leaves(lv, xx):
        return net(jax.tree_util.tree_unflatten(treedef, lv), xx)[:, None, :]

    return find_layers(eta_of_leaves, leaves, x, net(params, x).shape[0], _names(params))


def _stats(net, params, x, kfac, reduce=False, rotations=None, tagged=None):
    leaves = jax.tree_util.tree_leaves(params)
    tagged = _tagged(net, params, x) if tagged is None else tagged
    factor, signs, _ = _factor(net(params, x))
    kernel = jax.jit(layer_stats_kernel(tagged, kfac, reduce=reduce))
    return tagged, kernel(leaves, x, factor, signs, rotations)


def _reference(net, params, x):
    """Σ_i J_iᵀ M_i J_i in ravel_pytree order, and the unravel function."""
    flat, unravel = ravel_pytree(params)
    jac = jax.jacobian(lambda f: net(unravel(f), x))(flat)  # (N, K, P)
    _, _, m = _factor(net(params, x))
    return np.asarray(jnp.einsum("nkp,nkl,nlq->pq", jac, m, jac)), unravel


def _leaf_diagonals(tagged, stats, params):
    """The layers' diagonals as a tree of the parameters' shapes (zero outside the layers)."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    out = [np.zeros(np.shape(leaf)) for leaf in leaves]
    for layer, d in zip(tagged.layers, stats, strict=True):
        d = np.asarray(d)
        has_b = layer.b is not None
        out[layer.w] = np.asarray(layer.from_matrix(d[: d.shape[0] - has_b], np.shape(leaves[layer.w])))
        if has_b:
            out[layer.b] = d[-1].reshape(np.shape(leaves[layer.b]))
    return jax.tree_util.tree_unflatten(treedef, out)


DEFAULT_CASES = ("nchw_bias_same", "nhwc_bias_stride2", "odd_layout")


def _cases():
    """Every layout; those beyond three representative ones run in the slow suite."""
    return [c if c in DEFAULT_CASES else pytest.param(c, marks=pytest.mark.slow) for c in CASES]


@pytest.mark.parametrize("case", _cases())
def test_exact_diagonal_matches_the_jacobian(case) -> None:
    net, _, _, params, x = _make(case, n=4)
    tagged, stats = _stats(net, params, x, kfac=False)
    kinds = [type(layer) for layer in tagged.layers]
    assert kinds == [ConvLayer, DenseLayer]
    conv = tagged.layers[0]
    assert conv.name == "['conv']" and (conv.b is not None) == (CASES[case][3] is not None)
    ref, _ = _reference(net, params, x)
    got = _leaf_diagonals(tagged, stats, params)
    np.testing.assert_allclose(np.asarray(ravel_pytree(got)[0]), np.diag(ref), rtol=1e-10, atol=1e-13)


def test_rows_in_small_blocks_give_the_same_statistics(monkeypatch) -> None:
    net, _, _, params, x = _make("nhwc_bias_stride2", n=7)
    tagged, diag = _stats(net, params, x, kfac=False)
    _, kfac = _stats(net, params, x, kfac=True)
    _, red = _stats(net, params, x, kfac=True, reduce=True)
    # 81 numbers a row (T d_in = r T d_out = r d_in d_out = 81): 3 rows a block, 2 padded rows
    monkeypatch.setattr(_layer_stats, "BLOCK_ELEMENTS", 250)
    _, diag2 = _stats(net, params, x, kfac=False, tagged=tagged)
    _, kfac2 = _stats(net, params, x, kfac=True, tagged=tagged)
    _, red2 = _stats(net, params, x, kfac=True, reduce=True, tagged=tagged)
    before = jax.tree_util.tree_leaves((diag, kfac, red))
    for a, b in zip(before, jax.tree_util.tree_leaves((diag2, kfac2, red2)), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-14)


def _block_in_matrix_layout(net, params, x, layer):
    """The exact block of one layer on Ṽ = [to_matrix(W); b] (row-major vec of (d_in [+1], d_out))."""
    leaves, treedef = jax.tree_util.tree_flatten(params)

    def logits_of(v):  # Ṽ -> logits
        lv = list(leaves)
        has_b = layer.b is not None
        lv[layer.w] = layer.from_matrix(v[: v.shape[0] - has_b], np.shape(leaves[layer.w]))
        if has_b:
            lv[layer.b] = v[-1].reshape(np.shape(leaves[layer.b]))
        return net(jax.tree_util.tree_unflatten(treedef, lv), x)

    v0 = layer.to_matrix(leaves[layer.w])
    if layer.b is not None:
        v0 = jnp.concatenate([v0, leaves[layer.b].reshape(1, -1)])
    np.testing.assert_allclose(np.asarray(logits_of(v0)), np.asarray(net(params, x)), rtol=1e-13)
    logits = net(params, x)
    jac = jax.jacobian(logits_of)(v0).reshape(logits.shape[0], K, -1)
    _, _, m = _factor(logits)
    return np.asarray(jnp.einsum("nkp,nkl,nlq->pq", jac, m, jac))


@pytest.mark.parametrize("reduce", [False, True])
def test_kfac_is_exact_for_one_row_and_a_one_by_one_output(reduce) -> None:
    spec = ("NCHW", "OIHW", "NCHW")
    CASES["one_by_one"] = (spec, (2, 4, 4), (3, 2, 3, 3), (3, 1, 1), {"stride": 2, "padding": "VALID"})
    try:
        net, _, _, params, x = _make("one_by_one", n=1)
    finally:
        del CASES["one_by_one"]
    tagged, stats = _stats(net, params, x, kfac=True, reduce=reduce)
    conv = tagged.layers[0]
    assert isinstance(conv, ConvLayer) and conv.out_spatial == (1, 1) and conv.positions == 1
    for layer, (big_a, big_g) in zip(tagged.layers, stats, strict=True):
        block = _block_in_matrix_layout(net, params, x, layer)
        np.testing.assert_allclose(
            np.kron(np.asarray(big_a), np.asarray(big_g)), block, rtol=1e-10, atol=1e-13
        )


def _numpy_patches(x, kernel, stride, pads):
    """NHWC input -> (N, T, C·kh·kw) patches, channel-major, by explicit loops."""
    x = np.pad(np.asarray(x), ((0, 0), pads[0], pads[1], (0, 0)))
    n, h, w, c = x.shape
    kh, kw = kernel
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    out = np.zeros((n, oh * ow, c * kh * kw))
    for i in range(oh):
        for j in range(ow):
            for ch in range(c):
                for di in range(kh):
                    for dj in range(kw):
                        out[:, i * ow + j, ch * kh * kw + di * kw + dj] = x[
                            :, i * stride + di, j * stride + dj, ch
                        ]
    return out


def _same_pads(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return (total // 2, total - total // 2)


def test_kfac_expand_and_reduce_factors_against_explicit_patches() -> None:
    net, body, head, params, x = _make("nhwc_bias_stride2", n=6)
    _, _, (kh, kw, _, c_out), _, _ = CASES["nhwc_bias_stride2"]
    tagged, expand = _stats(net, params, x, kfac=True)
    _, reduce = _stats(net, params, x, kfac=True, reduce=True)
    conv = tagged.layers[0]
    pads = (_same_pads(x.shape[1], kh, 2), _same_pads(x.shape[2], kw, 2))
    assert conv.padding == pads and conv.positions == 9 and conv.d_in == 2 * kh * kw
    p = _numpy_patches(x, (kh, kw), 2, pads)
    p = np.concatenate([p, np.ones((*p.shape[:2], 1))], axis=2)  # the bias
    t = p.shape[1]
    # output gradients of the head at z, one reverse pass per column of each row's factor
    z = body(params, x)  # (N, H', W', O)
    factor, signs, _ = _factor(net(params, x))
    _, vjp = jax.vjp(lambda zz: head(params, zz), z)
    g = np.stack([np.asarray(vjp(factor[:, 0, :, r])[0]) for r in range(K)])  # (r, N, H', W', O)
    g = g.reshape(K, x.shape[0], t, c_out)
    sigma = np.asarray(signs[:, 0, :]).T  # (r, N)
    want_a = np.einsum("ntf,nte->fe", p, p) / t
    want_g = np.einsum("rn,rntd,rnte->de", sigma, g, g)
    np.testing.assert_allclose(np.asarray(expand[0][0]), want_a, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(np.asarray(expand[0][1]), want_g, rtol=1e-10, atol=1e-13)
    a_bar, g_bar = p.mean(axis=1), g.sum(axis=2)
    np.testing.assert_allclose(np.asarray(reduce[0][0]), a_bar.T @ a_bar, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(
        np.asarray(reduce[0][1]), np.einsum("rn,rnd,rne->de", sigma, g_bar, g_bar), rtol=1e-10, atol=1e-13
    )
    # the dense head: the same statistics either way, as before
    for (a1, g1), (a2, g2) in [(expand[1], reduce[1])]:
        np.testing.assert_array_equal(np.asarray(a1), np.asarray(a2))
        np.testing.assert_array_equal(np.asarray(g1), np.asarray(g2))
    # and patches from the layer agree with the loops
    np.testing.assert_allclose(np.asarray(conv_patches(conv, x)), p[..., :-1], rtol=0, atol=0)


@pytest.mark.parametrize("case", list(CASES))
def test_to_matrix_round_trip_and_patch_order(case) -> None:
    net, _, _, params, x = _make(case, n=3)
    tagged = _tagged(net, params, x)
    conv = tagged.layers[0]
    w = params["conv"]["w"]
    m = conv.to_matrix(np.asarray(w))
    assert m.shape == (conv.d_in, conv.d_out)
    np.testing.assert_array_equal(conv.from_matrix(m, w.shape), np.asarray(w))
    mj = conv.to_matrix(w)  # JAX arrays too
    assert isinstance(mj, jax.Array)
    np.testing.assert_array_equal(np.asarray(conv.from_matrix(mj, w.shape)), np.asarray(w))
    # the convolution is patches @ to_matrix(W), positions row-major in the output's logical order
    spec, _, _, _, kw = CASES[case]
    z = _conv(x, w, spec, **kw)
    out = spec[2]
    z = z.transpose([out.index("N"), *(out.index(s) for s in spec[1] if s not in "OI"), out.index("C")])
    z = z.reshape(z.shape[0], -1, z.shape[-1])  # (N, T, O)
    np.testing.assert_allclose(np.asarray(conv_patches(conv, x) @ m), np.asarray(z), rtol=1e-12, atol=1e-13)
    dense = tagged.layers[1]
    wd = np.asarray(params["dense"]["w"])
    np.testing.assert_array_equal(dense.to_matrix(wd), wd)
    np.testing.assert_array_equal(dense.from_matrix(dense.to_matrix(wd), wd.shape), wd)


def test_dense_weight_through_a_transpose() -> None:
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(5, 3)))
    params = {"l1": {"w": jnp.asarray(rng.normal(size=(3, 3))), "b": jnp.zeros(3)}}

    def net(th, xx):
        return xx @ th["l1"]["w"].T + th["l1"]["b"]

    tagged, stats = _stats(net, params, x, kfac=False)
    (layer,) = tagged.layers
    assert layer.w_in_axis == 1  # the leaf's axis: W is (d_out, d_in)
    w = np.asarray(params["l1"]["w"])
    np.testing.assert_array_equal(layer.to_matrix(w), w.T)
    np.testing.assert_array_equal(layer.from_matrix(w.T, w.shape), w)
    ref, _ = _reference(net, params, x)
    got = _leaf_diagonals(tagged, stats, params)
    np.testing.assert_allclose(np.asarray(ravel_pytree(got)[0]), np.diag(ref), rtol=1e-10, atol=1e-13)


@pytest.mark.slow
def test_kernels_reaching_the_convolution_through_a_reshape_or_a_transpose() -> None:
    rng = np.random.default_rng(7)
    x = jnp.asarray(rng.normal(size=(4, 2, 5, 5)))
    spec = ("NCHW", "OIHW", "NCHW")
    params = {
        "flat": {"w": jnp.asarray(rng.normal(size=(3 * 2 * 9,)) * 0.5)},  # stored flat
        "io": {"w": jnp.asarray(rng.normal(size=(3, 2, 3, 3)) * 0.3)},  # stored (I, O, kh, kw)
    }

    def net(th, xx):
        h = jnp.tanh(_conv(xx, th["flat"]["w"].reshape(3, 2, 3, 3), spec, padding="VALID"))
        h = _conv(h, th["io"]["w"].transpose(1, 0, 2, 3), spec, padding="VALID")  # (N, 2, 1, 1)
        return jnp.concatenate([h.reshape(h.shape[0], -1), jnp.zeros((h.shape[0], 1))], axis=1)

    tagged, stats = _stats(net, params, x, kfac=False)
    assert [layer.name for layer in tagged.layers] == ["['flat']", "['io']"]
    for layer in tagged.layers:
        w = np.asarray(jax.tree_util.tree_leaves(params)[layer.w])
        assert layer.view and layer.to_matrix(w).shape == (layer.c_in * 9, layer.c_out)
        np.testing.assert_array_equal(layer.from_matrix(layer.to_matrix(w), w.shape), w)
    ref, _ = _reference(net, params, x)
    got = _leaf_diagonals(tagged, stats, params)
    np.testing.assert_allclose(np.asarray(ravel_pytree(got)[0]), np.diag(ref), rtol=1e-10, atol=1e-13)


def test_identity_rotations_give_the_diagonal() -> None:
    net, _, _, params, x = _make("nchw_bias_same", n=4)
    tagged, diag = _stats(net, params, x, kfac=False)
    _, kfac = _stats(net, params, x, kfac=True)
    rotations = [(jnp.eye(a.shape[0]), jnp.eye(g.shape[0])) for a, g in kfac]
    _, rotated = _stats(net, params, x, kfac=False, rotations=rotations, tagged=tagged)
    for a, b in zip(diag, rotated, strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-13, atol=1e-15)
    # a random rotation: the diagonal of the exact block in that basis
    rng = np.random.default_rng(5)
    rotations = [
        (
            np.linalg.qr(rng.normal(size=(a.shape[0],) * 2))[0],
            np.linalg.qr(rng.normal(size=(g.shape[0],) * 2))[0],
        )
        for a, g in kfac
    ]
    _, rotated = _stats(net, params, x, kfac=False, rotations=[tuple(map(jnp.asarray, r)) for r in rotations])
    for layer, (q_a, q_g), got in zip(tagged.layers, rotations, rotated, strict=True):
        block = _block_in_matrix_layout(net, params, x, layer)
        q = np.kron(q_a, q_g)  # row-major vec of (d_in + 1, d_out)
        want = np.diag(q.T @ block @ q).reshape(q_a.shape[0], q_g.shape[0])
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-9, atol=1e-12)


def test_depthwise_and_shared_kernels_are_not_layers() -> None:
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(4, 2, 5, 5)))
    spec = ("NCHW", "OIHW", "NCHW")
    params = {
        "dw": {"w": jnp.asarray(rng.normal(size=(4, 1, 3, 3)))},  # depthwise, 2 groups of 2 outputs
        "shared": {"w": jnp.asarray(rng.normal(size=(4, 4, 3, 3)) * 0.3)},
        "out": {"w": jnp.asarray(rng.normal(size=(4 * 25, K)) * 0.1)},
    }

    def net(th, xx):
        h = jnp.tanh(_conv(xx, th["dw"]["w"], spec, groups=2))
        h = jnp.tanh(_conv(h, th["shared"]["w"], spec))
        h = jnp.tanh(_conv(h, th["shared"]["w"], spec))  # the same kernel twice
        return h.reshape(h.shape[0], -1) @ th["out"]["w"]

    tagged = _tagged(net, params, x)
    assert [(type(layer), layer.name) for layer in tagged.layers] == [(DenseLayer, "['out']")]


def test_conv_bias_used_elsewhere_or_not_per_channel_is_not_a_bias() -> None:
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(4, 2, 4, 4)))
    spec = ("NCHW", "OIHW", "NCHW")
    params = {
        "c1": {"w": jnp.asarray(rng.normal(size=(3, 2, 3, 3))), "b": jnp.asarray(rng.normal(size=(1, 4, 4)))},
        "c2": {
            "w": jnp.asarray(rng.normal(size=(3, 3, 3, 3)) * 0.3),
            "b": jnp.asarray(rng.normal(size=(3, 1, 1))),
        },
    }

    def net(th, xx):
        z = _conv(xx, th["c1"]["w"], spec) + th["c1"]["b"][None]  # a per-position "bias": not a layer's
        z2 = _conv(jnp.tanh(z), th["c2"]["w"], spec)
        h = jnp.tanh(z2 + th["c2"]["b"][None]) + 0.1 * z2  # the output used beyond its bias
        return h.reshape(h.shape[0], -1)[:, :K]

    tagged, stats = _stats(net, params, x, kfac=False)
    # c1's kernel is a layer without bias; c2's kernel too (its output has two uses), biases not
    assert [(layer.name, layer.b) for layer in tagged.layers] == [("['c1']", None), ("['c2']", None)]
    ref, _ = _reference(net, params, x)
    got = _leaf_diagonals(tagged, stats, params)
    ref_tree = ravel_pytree(params)[1](jnp.asarray(np.diag(ref)))
    for name in ("c1", "c2"):
        np.testing.assert_allclose(np.asarray(got[name]["w"]), np.asarray(ref_tree[name]["w"]), rtol=1e-10)


def _module_stats(model, params, x):
    from fisherlab.operators._head import head_map

    leaves, treedef = jax.tree_util.tree_flatten(params)
    n = x.shape[0]

    def eta_of_leaves(lv, xx):
        return head_map(model, "fisher", xx, n)(jax.tree_util.tree_unflatten(treedef, lv))

    tagged = find_layers(eta_of_leaves, leaves, x, n, _names(params))
    logits = jax.jit(eta_of_leaves)(leaves, x)[:, 0, :]  # (eager numpyro is slow)
    factor, signs, m = _factor(logits)
    stats = jax.jit(layer_stats_kernel(tagged, False))(leaves, x, factor, signs, None)
    flat, unravel = ravel_pytree(params)
    jac_fn = jax.jacobian(lambda f: eta_of_leaves(jax.tree_util.tree_leaves(unravel(f)), x)[:, 0, :])
    jac = jax.jit(jac_fn)(flat)
    ref = np.diag(np.asarray(jnp.einsum("nkp,nkl,nlq->pq", jac, m, jac)))
    got = np.asarray(ravel_pytree(_leaf_diagonals(tagged, stats, params))[0])
    return tagged, got, ref


def test_equinox_conv2d_is_found() -> None:
    eqx = pytest.importorskip("equinox")
    import fisherlab as fl

    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    net = eqx.nn.Sequential(
        [
            eqx.nn.Conv2d(2, 3, 3, stride=2, padding=1, key=keys[0]),
            eqx.nn.Lambda(jnp.tanh),
            eqx.nn.Lambda(jnp.ravel),
            eqx.nn.Linear(3 * 3 * 3, K, key=keys[1]),
        ]
    )
    model, params = fl.Model.from_equinox(net, lambda z: fl.dist.Categorical(logits=z))
    x = jnp.asarray(np.random.default_rng(4).normal(size=(5, 2, 5, 5)))
    tagged, got, ref = _module_stats(model, params, x)
    conv, dense = tagged.layers
    assert isinstance(conv, ConvLayer) and isinstance(dense, DenseLayer)
    assert conv.b is not None and conv.window_strides == (2, 2) and conv.out_spatial == (3, 3)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-13)


@pytest.mark.slow
def test_flax_conv_is_found() -> None:
    nnx = pytest.importorskip("flax.nnx")
    import fisherlab as fl

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.c = nnx.Conv(2, 3, (3, 3), strides=2, rngs=rngs, param_dtype=jnp.float64)
            self.d = nnx.Linear(27, K, rngs=rngs, param_dtype=jnp.float64)

        def __call__(self, x):
            return self.d(jnp.tanh(self.c(x)).reshape(x.shape[0], -1))

    model, params = fl.Model.from_flax(Net(nnx.Rngs(0)), lambda z: fl.dist.Categorical(logits=z))
    x = jnp.asarray(np.random.default_rng(6).normal(size=(5, 5, 5, 2)))
    tagged, got, ref = _module_stats(model, params, x)
    conv = tagged.layers[0]
    assert isinstance(conv, ConvLayer) and conv.b is not None and conv.kernel_shape == (3, 3)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-13)
