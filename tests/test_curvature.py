"""``fl.curvature``: every kind and structure against dense references built independently.

References: the Jacobian of the network's outputs by ``jax.jacrev`` contracted with textbook
Fisher matrices of the head (softmax: diag(p) - p pᵀ; Normal in (loc, scale): diag(1/σ², 2/σ²);
Poisson: 1/λ; Gamma), the closed-form Hessian of -log N in (loc, scale) for the GGN, per-example
gradients for the empirical Fisher, and ``jax.hessian`` of the total log-likelihood.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from jax.scipy.special import polygamma

import fisherlab as fl
from fisherlab.operators import _base as cbase, _structures as cstruct
from mlp_support import mlp_net, small_mlp

N, D, H, K = 40, 3, 4, 3
STRUCTURES = ["operator", "dense", "diagonal", "block", "lowrank"]


@pytest.fixture(scope="module")
def problem():
    model, params, x, y = small_mlp(N, D, H, K, seed=3)
    flat, unravel = ravel_pytree(params)

    def logits(f):
        return mlp_net(unravel(f), jnp.asarray(x))

    J = jax.jacrev(logits)(flat)  # (N, K, P)
    p = jax.nn.softmax(logits(flat))
    I = jax.vmap(lambda q: jnp.diag(q) - jnp.outer(q, q))(p)
    fisher = np.asarray(jnp.einsum("nkp,nkl,nlq->pq", J, I, J))

    def total(f):
        return jnp.sum(jax.nn.log_softmax(logits(f))[jnp.arange(N), y])

    hessian = -np.asarray(jax.hessian(total)(flat))
    scores = jax.vmap(
        lambda xi, yi: jax.grad(lambda f: jax.nn.log_softmax(mlp_net(unravel(f), xi[None]))[0, yi])(flat)
    )(jnp.asarray(x), jnp.asarray(y))
    empirical = np.asarray(scores.T @ scores)
    refs = {"fisher": fisher, "ggn": fisher, "hessian": hessian, "empirical": empirical}
    return model, params, x, y, refs


def _flat(tree):
    return np.asarray(ravel_pytree(tree)[0])


@pytest.mark.parametrize("kind", ["fisher", "ggn", "empirical", "hessian"])
@pytest.mark.parametrize("structure", STRUCTURES)
def test_kinds_and_structures_match_dense_references(problem, kind, structure) -> None:
    model, params, x, y, refs = problem
    ref = refs[kind]
    C = fl.curvature(model, params, y, x, kind=kind, structure=structure, rank=6)
    scale = np.max(np.abs(ref))
    # every structure's diagonal and trace are exact (the low-rank keeps the exact diagonal)
    np.testing.assert_allclose(_flat(C.diagonal()), np.diag(ref), rtol=1e-10, atol=1e-12 * scale)
    assert C.trace().value == pytest.approx(np.trace(ref), rel=1e-10)
    assert C.trace().error == 0.0
    v = jax.tree_util.tree_map(lambda a: jnp.linspace(-1.0, 1.0, a.size).reshape(a.shape), params)
    if structure in ("operator", "dense"):
        np.testing.assert_allclose(_flat(C.mv(v)), ref @ _flat(v), rtol=1e-10, atol=1e-12 * scale)
        np.testing.assert_allclose(C.to_dense().matrix, ref, rtol=1e-10, atol=1e-12 * scale)
        assert C.to_dense().names == fl.param_names(params)
    if structure == "block":
        dense = C.to_dense().matrix
        for _, a, b in C.layers:
            np.testing.assert_allclose(dense[a:b, a:b], ref[a:b, a:b], rtol=1e-10, atol=1e-12 * scale)
        assert [name for name, _, _ in C.layers] == ["l1", "l2"]
        assert np.all(dense[: C.layers[0][2], C.layers[1][1] :] == 0.0)
    if structure == "lowrank" and kind != "hessian":
        w, V = C.eigh(6)
        ref_w, ref_v = np.linalg.eigh(ref)
        np.testing.assert_allclose(w, ref_w[::-1][:6], rtol=1e-8, atol=1e-10 * scale)
        np.testing.assert_allclose(np.abs(V.T @ ref_v[:, ::-1][:, :3]).max(axis=0), 1.0, rtol=1e-6)


def test_operator_eigh_solve_logdet(problem) -> None:
    model, params, x, y, refs = problem
    ref = refs["fisher"]
    C = fl.curvature(model, params, y, x)
    w, V = C.eigh(4)
    ref_w, _ = np.linalg.eigh(ref)
    np.testing.assert_allclose(w, ref_w[::-1][:4], rtol=1e-8)
    np.testing.assert_allclose(ref @ V, V * w, atol=1e-7 * ref_w[-1])
    v = jax.tree_util.tree_map(jnp.ones_like, params)
    for damping in (0.1, 2.0):
        want = np.linalg.solve(ref + damping * np.eye(len(ref)), _flat(v))
        np.testing.assert_allclose(_flat(C.solve(v, damping=damping)), want, rtol=1e-8)
        assert C.logdet(damping) == pytest.approx(
            np.linalg.slogdet(ref + damping * np.eye(len(ref)))[1], rel=1e-10
        )
    # every structure's solve and logdet are those of its own matrix
    for structure in ("dense", "diagonal", "block", "lowrank"):
        S = fl.curvature(model, params, y, x, structure=structure, rank=5)
        m = S.to_dense().matrix + 0.5 * np.eye(len(ref))
        np.testing.assert_allclose(_flat(S.solve(v, 0.5)), np.linalg.solve(m, _flat(v)), rtol=1e-8)
        assert S.logdet(0.5) == pytest.approx(np.linalg.slogdet(m)[1], rel=1e-9)


def test_stochastic_lanczos_logdet_within_its_error(problem, monkeypatch) -> None:
    model, params, x, y, refs = problem
    monkeypatch.setattr(cstruct, "EXACT_LOGDET_MAX_PARAMS", 0)
    exact = np.linalg.slogdet(refs["fisher"] + np.eye(len(refs["fisher"])))[1]
    C = fl.curvature(model, params, y, x, seed=4)
    estimate = C.logdet(1.0)
    assert 0 < C.error < 0.1 * abs(exact)
    assert abs(estimate - exact) < 4 * C.error


def test_mc_fisher_is_unbiased_within_its_spread(problem) -> None:
    model, params, x, y, refs = problem
    exact = np.trace(refs["fisher"])
    traces = [fl.curvature(model, params, y, x, kind="mc_fisher", seed=s).trace().value for s in range(30)]
    mean, sem = np.mean(traces), np.std(traces, ddof=1) / np.sqrt(len(traces))
    assert abs(mean - exact) < 4 * sem
    many = fl.curvature(model, params, y, x, kind="mc_fisher", structure="dense", num_samples=4000, seed=1)
    assert np.max(np.abs(many.to_dense().matrix - refs["fisher"])) < 0.03 * np.max(np.abs(refs["fisher"]))


def test_hutchinson_hessian_diagonal_within_its_errors() -> None:
    rng = np.random.default_rng(8)
    n, d, h = 60, 6, 16  # P = 6*16 + 16 + 16 + 1 = 129 > NUM_PROBES: estimated
    x = rng.normal(size=(n, d))
    params = {
        "w1": jnp.asarray(rng.normal(size=(d, h)) * 0.5),
        "b1": jnp.zeros(h),
        "w2": jnp.asarray(rng.normal(size=h)),
        "b2": jnp.zeros(()),
    }

    def mean(th, x):
        return jnp.tanh(x @ th["w1"] + th["b1"]) @ th["w2"] + th["b2"]

    y = np.asarray(mean(params, x)) + rng.normal(size=n)
    model = fl.Model(lambda th, x: fl.dist.Normal(mean(th, x), 1.0))
    flat, unravel = ravel_pytree(params)
    exact = -np.diag(
        np.asarray(jax.hessian(lambda f: fl.dist.Normal(mean(unravel(f), x), 1.0).log_prob(y).sum())(flat))
    )
    C = fl.curvature(model, params, y, x, kind="hessian", structure="diagonal")
    est, err = _flat(C.diagonal()), C.error
    assert np.all(err > 0)
    z = (est - exact) / err
    assert np.mean(np.abs(z) < 3) > 0.95
    tr = C.trace()
    assert tr.error > 0 and abs(tr.value - exact.sum()) < 4 * tr.error


def test_heteroscedastic_normal_head_fisher_and_ggn() -> None:
    rng = np.random.default_rng(5)
    n = 30
    x = rng.normal(size=(n, 2))
    params = {"w": jnp.asarray(rng.normal(size=(2, 2))), "b": jnp.asarray([0.1, -0.3])}

    def head(th, x):
        out = x @ th["w"] + th["b"]
        return out[:, 0], jax.nn.softplus(out[:, 1]) + 0.1

    y = rng.normal(size=n)
    model = fl.Model(lambda th, x: fl.dist.Normal(*head(th, x)))
    flat, unravel = ravel_pytree(params)
    J = jax.jacrev(lambda f: jnp.stack(head(unravel(f), x), axis=-1))(flat)  # (N, 2, P)
    mu, s = (np.asarray(a) for a in head(params, x))
    fisher_eta = np.zeros((n, 2, 2))
    fisher_eta[:, 0, 0], fisher_eta[:, 1, 1] = 1 / s**2, 2 / s**2
    r = y - mu  # Hessian of -log N(y | mu, s) in (mu, s): textbook
    ggn_eta = np.stack(
        [np.stack([1 / s**2, 2 * r / s**3], -1), np.stack([2 * r / s**3, 3 * r**2 / s**4 - 1 / s**2], -1)], -2
    )
    for kind, m_eta in (("fisher", fisher_eta), ("ggn", ggn_eta)):
        ref = np.einsum("nkp,nkl,nlq->pq", J, m_eta, J)
        for structure in ("operator", "dense", "diagonal"):
            C = fl.curvature(model, params, y, x, kind=kind, structure=structure)
            np.testing.assert_allclose(_flat(C.diagonal()), np.diag(ref), rtol=1e-10)
        np.testing.assert_allclose(
            fl.curvature(model, params, y, x, kind=kind).to_dense().matrix, ref, rtol=1e-10, atol=1e-12
        )
    # the GGN of a heteroscedastic head can be indefinite; the Fisher never is
    assert (
        np.linalg.eigvalsh(
            fl.curvature(model, params, y, x, kind="fisher", structure="dense").to_dense().matrix
        )[0]
        > 0
    )


@pytest.mark.parametrize("family", ["poisson", "gamma"])
def test_other_registry_heads(family) -> None:
    rng = np.random.default_rng(6)
    n = 25
    x = rng.normal(size=(n, 2))
    params = {"w": jnp.asarray(rng.normal(size=(2, 2)) * 0.3), "b": jnp.asarray([0.2, 0.5])}

    def eta(th, x):
        out = x @ th["w"] + th["b"]
        return jnp.exp(out[:, 0]), jnp.exp(out[:, 1])

    flat, unravel = ravel_pytree(params)
    if family == "poisson":
        model = fl.Model(lambda th, x: fl.dist.Poisson(eta(th, x)[0]))
        y = rng.poisson(2.0, size=n)
        J = jax.jacrev(lambda f: eta(unravel(f), x)[0][:, None])(flat)
        lam = np.asarray(eta(params, x)[0])
        m_eta = (1 / lam)[:, None, None]
    else:
        model = fl.Model(lambda th, x: fl.dist.Gamma(*eta(th, x)))
        y = rng.gamma(2.0, 1.0, size=n)
        J = jax.jacrev(lambda f: jnp.stack(eta(unravel(f), x), -1))(flat)
        a, b = (np.asarray(v) for v in eta(params, x))
        m_eta = np.stack(
            [np.stack([np.asarray(polygamma(1, a)), -1 / b], -1), np.stack([-1 / b, a / b**2], -1)], -2
        )
    ref = np.einsum("nkp,nkl,nlq->pq", J, m_eta, J)
    C = fl.curvature(model, params, y, x, kind="fisher", structure="dense")
    np.testing.assert_allclose(C.to_dense().matrix, ref, rtol=1e-10)


def test_iid_model_and_several_outputs_per_row() -> None:
    rng = np.random.default_rng(7)
    y = rng.normal(1.0, 2.0, size=50)
    iid = fl.Model(lambda th, x: fl.dist.Normal(th["mu"], th["sigma"]))
    C = fl.curvature(iid, {"mu": 1.0, "sigma": 2.0}, y, kind="fisher", structure="dense")
    np.testing.assert_allclose(C.to_dense().matrix, 50 * np.diag([1 / 4.0, 2 / 4.0]), rtol=1e-12)
    # two independent outputs per row: batch shape (N, 2), y (N, 2)
    x = rng.normal(size=(20, 3))
    w = jnp.asarray(rng.normal(size=(3, 2)))
    two = fl.Model(lambda th, x: fl.dist.Normal(x @ th["w"], 0.5))
    C2 = fl.curvature(two, {"w": w}, rng.normal(size=(20, 2)), x, kind="fisher", structure="dense")
    ref = np.kron(x.T @ x, np.eye(2)) / 0.25  # d loc_(i,j) / d w_(a,b) = x_ia [j = b]
    np.testing.assert_allclose(C2.to_dense().matrix, ref, rtol=1e-12)
    assert C2.trace().value == pytest.approx(np.trace(ref), rel=1e-12)


def test_float32_stays_float32(problem) -> None:
    model, params, x, y, refs = problem
    p32 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), params)
    C = fl.curvature(model, p32, y, x.astype(np.float32), structure="diagonal")
    diag = C.diagonal()
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(diag))
    np.testing.assert_allclose(_flat(diag), np.diag(refs["fisher"]), rtol=1e-4)
    out = fl.curvature(model, p32, y, x.astype(np.float32)).mv(p32)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(out))


def test_equinox_and_flax_modules() -> None:
    eqx = pytest.importorskip("equinox")
    nnx = pytest.importorskip("flax.nnx")
    rng = np.random.default_rng(9)
    x = rng.normal(size=(25, 2))
    y = rng.integers(0, 3, size=25)
    net = eqx.nn.MLP(2, 3, 4, 1, activation=jnp.tanh, key=jax.random.PRNGKey(0))
    model, params = fl.Model.from_equinox(net, lambda z: fl.dist.Categorical(logits=z))
    names = fl.param_names(params)
    assert names[0] == "layers[0].weight[0,0]" and names[-1] == "layers[1].bias[2]"
    same = {
        "l1": {"w": net.layers[0].weight.T, "b": net.layers[0].bias},
        "l2": {"w": net.layers[1].weight.T, "b": net.layers[1].bias},
    }
    plain = fl.Model(lambda th, x: fl.dist.Categorical(logits=mlp_net(th, x)))
    got = fl.curvature(model, params, y, x, structure="block")
    want = fl.curvature(plain, same, y, x, structure="block")
    assert [n for n, _, _ in got.layers] == ["layers[0]", "layers[1]"]
    assert got.trace().value == pytest.approx(want.trace().value, rel=1e-12)

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.l1 = nnx.Linear(2, 4, rngs=rngs)
            self.l2 = nnx.Linear(4, 3, rngs=rngs)

        def __call__(self, x):
            return self.l2(jnp.tanh(self.l1(x)))

    module = Net(nnx.Rngs(0))
    fmodel, fparams = fl.Model.from_flax(module, lambda z: fl.dist.Categorical(logits=z))
    assert fl.param_names(fparams)[0] == "l1.bias[0]"
    fsame = {
        "l1": {"w": module.l1.kernel[...], "b": module.l1.bias[...]},
        "l2": {"w": module.l2.kernel[...], "b": module.l2.bias[...]},
    }
    assert fl.curvature(fmodel, fparams, y, x).trace().value == pytest.approx(
        fl.curvature(plain, fsame, y, x).trace().value, rel=1e-12
    )
    with pytest.raises(fl.FisherlabArgumentError, match=r"equinox\.Module"):
        fl.Model.from_equinox(object(), lambda z: z)


def test_bad_input_gets_named_errors(problem, monkeypatch) -> None:
    model, params, x, y, _ = problem
    with pytest.raises(fl.InvalidOptionError, match="kind"):
        fl.curvature(model, params, y, x, kind="fisherr")
    with pytest.raises(fl.InvalidOptionError, match="structure"):
        fl.curvature(model, params, y, x, structure="sparse")
    with pytest.raises(fl.MethodUnavailableError, match="distribution"):
        fl.curvature(fl.Model.from_loglik(lambda th, y, x: -(y**2)), {"a": 1.0}, np.ones(3))
    with pytest.raises(fl.ModelError, match="not a distribution"):
        fl.curvature(fl.Model(lambda th, x: mlp_net(th, x)), params, y, x)
    bad = y.copy()
    bad[5] = 7
    for kind in ("fisher", "hessian"):  # the Hessian checks the labels too (a gather would clamp)
        with pytest.raises(fl.InvalidDataError, match="row 5"):
            fl.curvature(model, params, bad, x, kind=kind)
    with pytest.raises(fl.InvalidDataError):
        fl.curvature(model, params, y, np.where(np.arange(N)[:, None] == 3, np.nan, x))
    C = fl.curvature(model, params, y, x)
    with pytest.raises(fl.FisherlabArgumentError, match="shaped like params"):
        C.mv({"l1": params["l1"]})
    with pytest.raises(fl.InvalidOptionError, match="damping"):
        C.solve(params, damping=-1.0)
    with pytest.raises(fl.SingularInformationError):
        fl.curvature(model, params, y, x, structure="dense").logdet()  # softmax: P > rank
    monkeypatch.setattr(cbase, "MAX_DENSE_BYTES", 1000)
    with pytest.raises(fl.MethodUnavailableError, match=r"GiB.*force=True"):
        C.to_dense()
    assert C.to_dense(force=True).matrix.shape == (C.p, C.p)


@pytest.mark.parametrize("kind", ["fisher", "ggn", "empirical", "mc_fisher"])
def test_dense_layer_diagonals_equal_the_per_row_ones(problem, kind) -> None:
    """The diagonal structure finds the dense layers (one product each); the dense structure
    takes every row's own reverse pass: the two must agree to rounding."""
    model, params, x, y, _ = problem
    fast = _flat(fl.curvature(model, params, y, x, kind=kind, structure="diagonal").diagonal())
    slow = np.diag(fl.curvature(model, params, y, x, kind=kind, structure="dense").to_dense().matrix)
    np.testing.assert_allclose(fast, slow, rtol=1e-11, atol=1e-13 * np.max(slow))


def test_kfac_is_exact_per_layer_for_one_example(problem) -> None:
    model, params, x, y, _ = problem
    C = fl.curvature(model, params, y[:1], x[:1], structure="kfac")
    exact = fl.curvature(model, params, y[:1], x[:1], structure="dense").to_dense().matrix
    kfac = C.to_dense().matrix
    for _, a, b in C.layers:  # each layer's block (its weight and bias together) is exact
        np.testing.assert_allclose(kfac[a:b, a:b], exact[a:b, a:b], rtol=1e-10, atol=1e-14)
    assert np.all(kfac[: C.layers[0][2], C.layers[1][1] :] == 0.0)


def test_kfac_answers_for_its_own_matrix(problem) -> None:
    model, params, x, y, _ = problem
    for kind in ("fisher", "mc_fisher", "empirical"):
        C = fl.curvature(model, params, y, x, kind=kind, structure="kfac")
        m = C.to_dense().matrix
        np.testing.assert_allclose(m, m.T, atol=1e-12)
        v = jax.tree_util.tree_map(lambda a: jnp.linspace(-1.0, 2.0, a.size).reshape(a.shape), params)
        np.testing.assert_allclose(_flat(C.mv(v)), m @ _flat(v), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(_flat(C.diagonal()), np.diag(m), rtol=1e-12)
        damped = m + 0.2 * np.eye(len(m))
        np.testing.assert_allclose(_flat(C.solve(v, 0.2)), np.linalg.solve(damped, _flat(v)), rtol=1e-8)
        assert C.logdet(0.2) == pytest.approx(np.linalg.slogdet(damped)[1], rel=1e-10)
        assert C.trace().value == pytest.approx(np.trace(m), rel=1e-12)
        w, V = C.eigh(5)
        np.testing.assert_allclose(w, np.linalg.eigvalsh(m)[::-1][:5], rtol=1e-9)
        np.testing.assert_allclose(m @ V, V * w, atol=1e-9 * w[0])


def test_kfac_falls_back_to_the_diagonal_with_one_warning(problem) -> None:
    _, params, x, y, _ = problem

    def scaled(th, x):
        return fl.dist.Categorical(logits=mlp_net(th["net"], x) * th["temperature"])

    model = fl.Model(scaled)
    p = {"net": params, "temperature": jnp.asarray(1.0)}
    with pytest.warns(UserWarning, match="temperature is not in a layer") as record:
        C = fl.curvature(model, p, y, x, structure="kfac")
    assert len(record) == 1
    exact = fl.curvature(model, p, y, x, structure="dense").to_dense().matrix
    i = fl.param_names(p).index("temperature")
    assert C.diagonal()["temperature"] == pytest.approx(exact[i, i], rel=1e-12)
    assert [name for name, _, _ in C.layers][:2] == ["net.l1", "net.l2"]


def test_lanczos_on_a_network_larger_than_its_krylov_space() -> None:
    """P = 87 > the 40 Lanczos steps: the operator's products run inside matfree's traced loop."""
    rng = np.random.default_rng(12)
    n, d, h, k = 30, 3, 12, 3
    x = rng.normal(size=(n, d))
    y = rng.integers(0, k, size=n)
    params = {
        "l1": {"w": jnp.asarray(rng.normal(size=(d, h))), "b": jnp.zeros(h)},
        "l2": {"w": jnp.asarray(rng.normal(size=(h, k))), "b": jnp.zeros(k)},
    }
    model = fl.Model(lambda th, x: fl.dist.Categorical(logits=mlp_net(th, x)))
    dense = fl.curvature(model, params, y, x, structure="dense").to_dense().matrix
    want = np.linalg.eigvalsh(dense)[::-1]
    for structure in ("operator", "lowrank"):
        C = fl.curvature(model, params, y, x, structure=structure, rank=4)
        w, V = C.eigh(4)
        assert C.p == 87
        np.testing.assert_allclose(w, want[:4], rtol=1e-8)
        np.testing.assert_allclose(dense @ V, V * w, atol=1e-6 * want[0])
    # the low-rank structure keeps the exact diagonal
    low = fl.curvature(model, params, y, x, structure="lowrank", rank=4)
    np.testing.assert_allclose(_flat(low.diagonal()), np.diag(dense), rtol=1e-9)


def test_ekfac_is_nearer_than_kfac_and_answers_for_its_own_matrix(problem) -> None:
    """EKFAC keeps K-FAC's eigenbasis and takes the exact diagonal of each block in it: the
    Frobenius-nearest matrix of that form, so never further from the exact block than K-FAC."""
    model, params, x, y, _ = problem
    exact = fl.curvature(model, params, y, x, structure="dense").to_dense().matrix
    kfac = fl.curvature(model, params, y, x, structure="kfac")
    ekfac = fl.curvature(model, params, y, x, structure="kfac", ekfac=True)
    k, e = kfac.to_dense().matrix, ekfac.to_dense().matrix
    for _, a, b in kfac.layers:
        err_k = np.linalg.norm(k[a:b, a:b] - exact[a:b, a:b])
        err_e = np.linalg.norm(e[a:b, a:b] - exact[a:b, a:b])
        assert err_e <= err_k * (1 + 1e-12)
        # the same eigenbasis: the two blocks commute
        np.testing.assert_allclose(k[a:b, a:b] @ e[a:b, a:b], e[a:b, a:b] @ k[a:b, a:b], atol=1e-9 * err_k**2)
    assert ekfac.trace().value == pytest.approx(
        np.trace(exact), rel=1e-10
    )  # the diagonal in any basis keeps the trace
    v = jax.tree_util.tree_map(jnp.ones_like, params)
    damped = e + 0.3 * np.eye(len(e))
    np.testing.assert_allclose(_flat(ekfac.solve(v, 0.3)), np.linalg.solve(damped, _flat(v)), rtol=1e-8)
    assert ekfac.logdet(0.3) == pytest.approx(np.linalg.slogdet(damped)[1], rel=1e-10)
    np.testing.assert_allclose(_flat(ekfac.diagonal()), np.diag(e), rtol=1e-10, atol=1e-12)
    w, _ = ekfac.eigh(4)
    np.testing.assert_allclose(w, np.linalg.eigvalsh(e)[::-1][:4], rtol=1e-9)
    # one example: exact, as K-FAC
    one = fl.curvature(model, params, y[:1], x[:1], structure="kfac", ekfac=True).to_dense().matrix
    ref = fl.curvature(model, params, y[:1], x[:1], structure="dense").to_dense().matrix
    for _, a, b in kfac.layers:
        np.testing.assert_allclose(one[a:b, a:b], ref[a:b, a:b], rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("structure", ["operator", "kfac"])
def test_spectral_density_is_gauss_quadrature_of_each_structures_matrix(problem, structure) -> None:
    """SLQ: with P Lanczos steps every probe's nodes are the matrix's eigenvalues, and the
    quadrature reproduces z̃ᵀCᵏz̃ (k = 0..3) of its own unit start vector exactly."""
    model, params, x, y, refs = problem
    C = fl.curvature(model, params, y, x, structure=structure)
    m = C.to_dense().matrix if structure == "kfac" else refs["fisher"]
    p = m.shape[0]
    s = C.spectral_density(num_probes=4, steps=p, seed=7, num_points=400)
    z = np.asarray(jax.random.normal(jax.random.fold_in(jax.random.PRNGKey(7), 1), (4, p)))
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    scale = np.abs(np.linalg.eigvalsh(m)).max()
    for k in range(4):
        want = np.einsum("vp,pq,vq->v", z, np.linalg.matrix_power(m, k), z)
        got = (s.weights * s.nodes**k).sum(axis=1)
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10 * scale**k)
    np.testing.assert_allclose(np.sort(s.nodes[0]), np.linalg.eigvalsh(m), atol=1e-7 * scale)
    assert np.trapezoid(s.density, s.grid) == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(fl.InvalidOptionError, match="sigma"):
        C.spectral_density(sigma=-1.0)
