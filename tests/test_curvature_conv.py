"""``fl.curvature(..., structure="kfac")`` on convolutional networks, through the public API.

References: the exact dense curvature (``structure="dense"``, itself checked against
``jax.jacobian`` in ``test_curvature.py``), and Kronecker factors rebuilt independently from
patches cut by explicit NumPy loops and output gradients from ``jax.vjp``.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fisherlab as fl

C_IN, C1, C2, K = 2, 3, 2, 3


def _cnn(th, x):
    """NCHW conv (3x3, SAME) + tanh + conv (2x2, stride 2, VALID) + dense head."""
    spec = ("NCHW", "OIHW", "NCHW")
    z = jax.lax.conv_general_dilated(x, th["c1"]["w"], (1, 1), "SAME", dimension_numbers=spec)
    z = jnp.tanh(z + th["c1"]["b"][None, :, None, None])
    z = jax.lax.conv_general_dilated(z, th["c2"]["w"], (2, 2), "VALID", dimension_numbers=spec)
    z = jnp.tanh(z + th["c2"]["b"][None, :, None, None])
    return z.reshape(z.shape[0], -1) @ th["out"]["w"] + th["out"]["b"]


def _params(rng, side):
    out = (side // 2) ** 2 * C2
    return {
        "c1": {
            "w": jnp.asarray(rng.normal(size=(C1, C_IN, 3, 3)) * 0.5),
            "b": jnp.asarray(rng.normal(size=C1) * 0.1),
        },
        "c2": {
            "w": jnp.asarray(rng.normal(size=(C2, C1, 2, 2)) * 0.5),
            "b": jnp.asarray(rng.normal(size=C2) * 0.1),
        },
        "out": {"w": jnp.asarray(rng.normal(size=(out, K)) * 0.5), "b": jnp.zeros(K)},
    }


def _model():
    return fl.Model(lambda th, x: fl.dist.Categorical(logits=_cnn(th, x)))


def _block(C, params, layer):
    names = fl.param_names(params)
    idx = [i for i, n in enumerate(names) if n.startswith(layer + ".")]
    m = C.to_dense().matrix
    return m[np.ix_(idx, idx)]


@pytest.mark.parametrize("approx", ["expand", pytest.param("reduce", marks=pytest.mark.slow)])
def test_kfac_is_every_layers_exact_block_for_one_row_and_one_output_position(approx) -> None:
    """N = 1 and a 2x2 input: the second convolution's output map is 1x1 (T = 1), so K-FAC is
    exact there and in the dense head; the first convolution has T = 4 positions (not exact)."""
    rng = np.random.default_rng(0)
    params = _params(rng, 2)
    x = rng.normal(size=(1, C_IN, 2, 2))
    y = np.array([1])
    exact = fl.curvature(_model(), params, y, x, structure="dense")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every layer is factored: no fallback warning
        C = fl.curvature(_model(), params, y, x, structure="kfac", kfac_approx=approx)
    for layer in ("c2", "out"):
        np.testing.assert_allclose(
            _block(C, params, layer), _block(exact, params, layer), rtol=1e-10, atol=1e-14
        )
    assert not np.allclose(_block(C, params, "c1"), _block(exact, params, "c1"), rtol=1e-3)


def _patches(x, kh, kw, stride, pad):
    """(N, T, C*kh*kw) patches, channel-major, cut by loops (the reference of the layout)."""
    n, _, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    rows = []
    for i in range(0, h + 2 * pad - kh + 1, stride):
        for j in range(0, w + 2 * pad - kw + 1, stride):
            rows.append(xp[:, :, i : i + kh, j : j + kw].reshape(n, -1))
    return np.stack(rows, axis=1)


@pytest.mark.parametrize("approx", ["expand", "reduce"])
def test_kfac_factors_of_a_convolution_from_explicit_patches(approx) -> None:
    """The first convolution's block equals (1/N) A ⊗ G with A, G rebuilt from loop-cut patches
    and the exact Fisher's output gradients (softmax root columns back-propagated by jax.vjp)."""
    rng = np.random.default_rng(1)
    side, n = 4, 5
    params = _params(rng, side)
    x = rng.normal(size=(n, C_IN, side, side))
    y = rng.integers(0, K, size=n)
    C = fl.curvature(_model(), params, y, x, structure="kfac", kfac_approx=approx)

    def logits_from_z1(z1):  # the network after the first convolution's product
        th = params
        z = jnp.tanh(z1 + th["c1"]["b"][None, :, None, None])
        z = jax.lax.conv_general_dilated(
            z, th["c2"]["w"], (2, 2), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW")
        )
        z = jnp.tanh(z + th["c2"]["b"][None, :, None, None])
        return z.reshape(n, -1) @ th["out"]["w"] + th["out"]["b"]

    z1 = jax.lax.conv_general_dilated(
        jnp.asarray(x), params["c1"]["w"], (1, 1), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW")
    )
    p = np.asarray(jax.nn.softmax(logits_from_z1(z1)))
    _, vjp = jax.vjp(logits_from_z1, z1)
    a = _patches(x, 3, 3, 1, 1)  # (N, T, C_IN*9)
    a = np.concatenate([a, np.ones((*a.shape[:2], 1))], axis=2)  # the bias
    t = a.shape[1]
    big_a = np.zeros((a.shape[2], a.shape[2]))
    big_g = np.zeros((C1, C1))
    for i in range(n):
        w, v = np.linalg.eigh(np.diag(p[i]) - np.outer(p[i], p[i]))
        for col in range(K):  # columns of a square root of the row's softmax Fisher
            b = np.zeros((n, K))
            b[i] = v[:, col] * np.sqrt(max(w[col], 0.0))
            g = np.asarray(vjp(jnp.asarray(b))[0])[i].reshape(C1, t).T  # (T, C1)
            if approx == "expand":
                big_g += g.T @ g
            else:
                big_g += np.outer(g.sum(0), g.sum(0))
        if approx == "expand":
            big_a += a[i].T @ a[i] / t
        else:
            big_a += np.outer(a[i].mean(0), a[i].mean(0))
    # the block in fisherlab's order (pytree keys sorted): the bias, then the weight (C1, C_IN, 3, 3)
    kron = np.kron(big_a, big_g) / n  # rows (patch feature f, out channel o)
    f_w = C_IN * 9
    order = [f_w * C1 + o for o in range(C1)] + [f * C1 + o for o in range(C1) for f in range(f_w)]
    want = kron[np.ix_(order, order)]
    np.testing.assert_allclose(_block(C, params, "c1"), want, rtol=1e-9, atol=1e-13)


def test_ekfac_on_convolutions_is_never_further_from_the_exact_blocks() -> None:
    rng = np.random.default_rng(2)
    params = _params(rng, 4)
    x = rng.normal(size=(6, C_IN, 4, 4))
    y = rng.integers(0, K, size=6)
    exact = fl.curvature(_model(), params, y, x, structure="dense")
    kfac = fl.curvature(_model(), params, y, x, structure="kfac")
    ekfac = fl.curvature(_model(), params, y, x, structure="kfac", ekfac=True)
    for layer in ("c1", "c2"):
        ref = _block(exact, params, layer)
        assert np.linalg.norm(_block(ekfac, params, layer) - ref) <= np.linalg.norm(
            _block(kfac, params, layer) - ref
        )
    # the diagonal structure is exact on convolutions (their layer path) and the logdet is the
    # sum over the Kronecker eigenvalues: equal to the dense determinant of K-FAC's own matrix
    diag = fl.curvature(_model(), params, y, x, structure="diagonal").diagonal()
    np.testing.assert_allclose(
        np.concatenate([np.ravel(a) for a in jax.tree_util.tree_leaves(diag)]),
        np.diag(exact.to_dense().matrix),
        rtol=1e-10,
    )
    dense_kfac = kfac.to_dense().matrix
    assert kfac.logdet(0.1) == pytest.approx(
        np.linalg.slogdet(dense_kfac + 0.1 * np.eye(len(dense_kfac)))[1], rel=1e-10
    )


def test_equinox_cnn_is_factored_without_a_warning() -> None:
    eqx = pytest.importorskip("equinox")
    key = jax.random.PRNGKey(0)
    k1, k2, k3 = jax.random.split(key, 3)

    class Net(eqx.Module):
        c1: eqx.nn.Conv2d
        c2: eqx.nn.Conv2d
        out: eqx.nn.Linear

        def __call__(self, x):  # one row (C, H, W)
            z = jnp.tanh(self.c1(x))
            z = jnp.tanh(self.c2(z))
            return self.out(z.ravel())

    net = Net(
        eqx.nn.Conv2d(1, 3, 3, padding=1, key=k1),
        eqx.nn.Conv2d(3, 2, 2, stride=2, key=k2),
        eqx.nn.Linear(2 * 2 * 2, K, key=k3),
    )
    model, params = fl.Model.from_equinox(net, lambda z: fl.dist.Categorical(logits=z))
    rng = np.random.default_rng(3)
    x = rng.normal(size=(7, 1, 4, 4))
    y = rng.integers(0, K, size=7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        C = fl.curvature(model, params, y, x, structure="kfac", kind="mc_fisher")
    assert C.trace().value > 0
    names = [name for name, _, _ in C.layers]
    assert names == ["c1", "c2", "out"]
