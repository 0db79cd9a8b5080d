"""``fl.laplace``: the network Laplace against dense references built independently.

References: the Jacobian of the logits by ``jax.jacrev`` contracted with the softmax Fisher
diag(p) - p pᵀ (the GGN of a categorical head), ``jax.hessian`` of the total log-likelihood, the
log marginal likelihood written out as log p(D|θ*) - ½[log det(H + Λ) - log det Λ + θ*ᵀΛθ*] with
NumPy's ``slogdet``, predictive moments J Σ Jᵀ with ``np.linalg.inv``, the probit approximation
and the Gaussian integral of the sigmoid by ``scipy.integrate.quad``, and the closed-form
evidence log N(y; 0, σ²I + X Λ⁻¹ Xᵀ) of a linear-Gaussian model. A structure other than
``"full"`` is checked against its own matrix (``la.curvature.to_dense()``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import scipy.stats
from jax.flatten_util import ravel_pytree
from scipy.special import expit, log_softmax, softmax

import fisherlab as fl

N, D, H, K = 100, 3, 8, 3
P = D * H + H + H * K + K  # 59
STRUCTURES = ["block", "diagonal", "kfac", "lowrank"]


def _net(th, x):
    return jnp.tanh(x @ th["l1"]["w"] + th["l1"]["b"]) @ th["l2"]["w"] + th["l2"]["b"]


def _flat(tree):
    return np.asarray(ravel_pytree(tree)[0], dtype=np.float64)


def _init(rng, k=K, scale=0.7):
    return {
        "l1": {"w": jnp.asarray(rng.normal(size=(D, H)) * scale), "b": jnp.asarray(rng.normal(size=H) * 0.1)},
        "l2": {"w": jnp.asarray(rng.normal(size=(H, k)) * scale), "b": jnp.asarray(rng.normal(size=k) * 0.1)},
    }


def _per_layer(params, values):
    """λ per parameter (in ``ravel_pytree`` order) of a prior given per top-level layer."""
    return _flat(
        {
            name: jax.tree_util.tree_map(lambda a, v=values[name]: jnp.full(a.shape, v), sub)
            for name, sub in params.items()
        }
    )


def _lml(loglik, h, lam, theta):
    """log p(D|θ*) - ½[log det(H + Λ) - log det Λ + θ*ᵀΛθ*], written out."""
    sign, logdet = np.linalg.slogdet(h + np.diag(lam))
    assert sign > 0
    return loglik - 0.5 * (logdet - np.sum(np.log(lam)) + theta @ (lam * theta))


def _jacobian(params, x):
    """Per-row Jacobian of the logits ``(n, K, P)`` and the logits ``(n, K)``, by ``jax.jacrev``."""
    flat, unravel = ravel_pytree(params)
    x = jnp.asarray(x)
    jac = jax.jit(jax.vmap(lambda xi: jax.jacrev(lambda f: _net(unravel(f), xi[None])[0])(flat)))(x)
    return np.asarray(jac), np.asarray(_net(params, x))


@pytest.fixture(scope="module")
def problem():
    """A 3-8-tanh-3 classifier at its MAP under a N(0, 1) prior, on labels from a teacher network."""
    rng = np.random.default_rng(7)
    x_all = rng.normal(size=(N + 60, D))
    teacher = _init(rng, scale=1.5)
    logits_t = np.asarray(_net(teacher, jnp.asarray(x_all)))
    u = rng.random(N + 60)[:, None]
    y_all = np.argmax(np.cumsum(softmax(logits_t, axis=1), axis=1) > u, axis=1).astype(np.int32)
    x, y, x_val, y_val = x_all[:N], y_all[:N], x_all[N:], y_all[N:]
    flat0, unravel = ravel_pytree(_init(rng))

    def loss(f):
        ll = jax.nn.log_softmax(_net(unravel(f), jnp.asarray(x)))[jnp.arange(N), y]
        return -jnp.sum(ll) + 0.5 * jnp.sum(f**2)

    value_and_grad = jax.jit(jax.value_and_grad(loss))
    res = scipy.optimize.minimize(
        lambda f: tuple(np.asarray(a, dtype=np.float64) for a in value_and_grad(jnp.asarray(f))),
        np.asarray(flat0),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-9},
    )
    params = unravel(jnp.asarray(res.x))
    theta = _flat(params)
    J, logits = _jacobian(params, x)
    p = softmax(logits, axis=1)
    M = np.einsum("nk,kl->nkl", p, np.eye(K)) - np.einsum("nk,nl->nkl", p, p)
    ggn = np.einsum("nkp,nkl,nlq->pq", J, M, J)
    loglik = float(np.sum(log_softmax(logits, axis=1)[np.arange(N), y]))
    model = fl.Model(lambda th, x: fl.dist.Categorical(logits=_net(th, x)))
    return {
        "model": model,
        "params": params,
        "theta": theta,
        "x": x,
        "y": y,
        "x_val": x_val,
        "y_val": y_val,
        "ggn": ggn,
        "loglik": loglik,
    }


@pytest.fixture(scope="module")
def full(problem):
    return fl.laplace(problem["model"], problem["params"], problem["y"], problem["x"], structure="full")


@pytest.fixture(scope="module")
def structured(problem):
    m, th, y, x = problem["model"], problem["params"], problem["y"], problem["x"]
    return {s: fl.laplace(m, th, y, x, structure=s, rank=10) for s in STRUCTURES}


# ---------------------------------------------------------------------- the evidence


def test_full_log_marginal_likelihood_matches_dense_formula(problem, full) -> None:
    params, theta, ggn, loglik = problem["params"], problem["theta"], problem["ggn"], problem["loglik"]
    assert full.structure == "full" and full.kind == "ggn"
    assert full.p == P and full.n == N
    assert full.layers == [("l1", 0, D * H + H), ("l2", D * H + H, P)]
    assert full.curvature.names == fl.param_names(params)
    np.testing.assert_allclose(
        full.curvature.to_dense().matrix, ggn, rtol=1e-10, atol=1e-12 * np.abs(ggn).max()
    )
    # log p(D|θ*) is the sum of log-softmax at the labels
    assert full.log_likelihood == pytest.approx(loglik, rel=1e-12)
    # scalar prior (the one given, and others without a new pass)
    assert full.prior_precision == 1.0
    assert full.log_marginal_likelihood() == pytest.approx(_lml(loglik, ggn, np.ones(P), theta), rel=1e-8)
    for s in (1e-3, 0.37, 25.0):
        want = _lml(loglik, ggn, np.full(P, s), theta)
        assert full.log_marginal_likelihood(s) == pytest.approx(want, rel=1e-8)
    # per layer: a dict, and a sequence in layer order
    per_layer = {"l1": 0.3, "l2": 4.0}
    want = _lml(loglik, ggn, _per_layer(params, per_layer), theta)
    assert full.log_marginal_likelihood(per_layer) == pytest.approx(want, rel=1e-8)
    assert full.log_marginal_likelihood([0.3, 4.0]) == pytest.approx(want, rel=1e-8)
    # per parameter: a pytree like the parameters, and P numbers
    lam = np.random.default_rng(1).uniform(0.1, 10.0, size=P)
    _, unravel = ravel_pytree(params)
    tree = jax.tree_util.tree_map(np.asarray, unravel(jnp.asarray(lam)))
    want = _lml(loglik, ggn, lam, theta)
    assert full.log_marginal_likelihood(tree) == pytest.approx(want, rel=1e-8)
    assert full.log_marginal_likelihood(lam) == pytest.approx(want, rel=1e-8)
    # a Laplace built with that prior says the same, and returns the prior as given
    la = fl.laplace(
        problem["model"], params, problem["y"], problem["x"], structure="dense", prior_precision=per_layer
    )
    assert la.structure == "full"
    assert la.prior_precision == pytest.approx(per_layer)
    assert la.log_marginal_likelihood() == pytest.approx(
        _lml(loglik, ggn, _per_layer(params, per_layer), theta), rel=1e-8
    )


def test_full_posterior_precision_covariance_and_variance(problem, full) -> None:
    params, ggn = problem["params"], problem["ggn"]
    a = ggn + np.eye(P)
    sigma = np.linalg.inv(a)
    np.testing.assert_allclose(full.posterior_covariance.matrix, sigma, rtol=1e-8, atol=1e-12)
    assert isinstance(full.posterior_covariance, fl.Covariance)
    np.testing.assert_allclose(_flat(full.posterior_variance), np.diag(sigma), rtol=1e-8)
    pp = full.posterior_precision
    v = jax.tree_util.tree_map(lambda t: jnp.linspace(-1.0, 2.0, t.size).reshape(t.shape), params)
    np.testing.assert_allclose(_flat(pp.mv(v)), a @ _flat(v), rtol=1e-10, atol=1e-12 * np.abs(a).max())
    np.testing.assert_allclose(_flat(pp.solve(v)), np.linalg.solve(a, _flat(v)), rtol=1e-8)
    np.testing.assert_allclose(_flat(pp.diagonal()), np.diag(a), rtol=1e-10)
    np.testing.assert_allclose(pp.to_dense().matrix, a, rtol=1e-10, atol=1e-12 * np.abs(a).max())
    assert pp.logdet() == pytest.approx(np.linalg.slogdet(a)[1], rel=1e-10)
    assert pp.logdet(0.5) == pytest.approx(np.linalg.slogdet(a + 0.5 * np.eye(P))[1], rel=1e-10)
    assert pp.trace().value == pytest.approx(np.trace(a), rel=1e-10)
    w, vecs = pp.eigh(4)
    np.testing.assert_allclose(w, np.linalg.eigvalsh(a)[::-1][:4], rtol=1e-8)
    np.testing.assert_allclose(a @ vecs, vecs * w, atol=1e-7 * w[0])


@pytest.mark.parametrize("structure", STRUCTURES)
def test_structures_match_their_own_matrix(problem, structured, structure) -> None:
    params, theta, loglik = problem["params"], problem["theta"], problem["loglik"]
    la = structured[structure]
    assert la.structure == structure
    assert la.log_likelihood == pytest.approx(loglik, rel=1e-12)
    h = la.curvature.to_dense().matrix
    assert h.shape == (P, P)
    np.testing.assert_allclose(h, h.T, atol=1e-10 * np.abs(h).max())
    # the structure's diagonal is the GGN's (K-FAC: only an approximation of it)
    if structure != "kfac":
        np.testing.assert_allclose(np.diag(h), np.diag(problem["ggn"]), rtol=1e-8, atol=1e-12)
    priors = [1.0, 0.05, {"l1": 0.3, "l2": 4.0}]
    rng = np.random.default_rng(2)
    if structure != "kfac":
        priors.append(rng.uniform(0.1, 10.0, size=P))
    v = jax.tree_util.tree_map(lambda t: jnp.asarray(rng.normal(size=t.shape)), params)
    for i, prior in enumerate(priors):
        if isinstance(prior, dict):
            lam = _per_layer(params, prior)
        else:
            lam = np.broadcast_to(np.asarray(prior, dtype=np.float64), (P,)).copy()
        a = h + np.diag(lam)
        want = _lml(loglik, h, lam, theta)
        assert la.log_marginal_likelihood(prior) == pytest.approx(want, rel=1e-8), prior
        other = (
            la
            if i == 0
            else fl.laplace(
                problem["model"],
                params,
                problem["y"],
                problem["x"],
                structure=structure,
                rank=10,
                prior_precision=prior,
            )
        )
        assert other.log_marginal_likelihood() == pytest.approx(want, rel=1e-8)
        sigma = np.linalg.inv(a)
        np.testing.assert_allclose(_flat(other.posterior_variance), np.diag(sigma), rtol=1e-8)
        np.testing.assert_allclose(
            other.posterior_covariance.matrix, sigma, rtol=1e-7, atol=1e-10 * np.abs(sigma).max()
        )
        pp = other.posterior_precision
        np.testing.assert_allclose(_flat(pp.solve(v)), np.linalg.solve(a, _flat(v)), rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(_flat(pp.mv(v)), a @ _flat(v), rtol=1e-9, atol=1e-10 * np.abs(a).max())
        assert pp.logdet() == pytest.approx(np.linalg.slogdet(a)[1], rel=1e-9)
        np.testing.assert_allclose(_flat(pp.diagonal()), np.diag(a), rtol=1e-9)


# ---------------------------------------------------------------------- the predictive


def _predictive_moments(J, sigma):
    return np.einsum("nkp,pq,nlq->nkl", J, sigma, J)


def test_glm_and_probit_predictive_match_dense_moments(problem, full, structured) -> None:
    params, ggn = problem["params"], problem["ggn"]
    x_new = np.random.default_rng(4).normal(size=(7, D)) * 2.0
    J, logits = _jacobian(params, x_new)
    lam_tree = np.random.default_rng(5).uniform(0.2, 5.0, size=P)
    per_param = fl.laplace(
        problem["model"], params, problem["y"], problem["x"], structure="full", prior_precision=lam_tree
    )
    kfac = structured["kfac"]
    cases = [
        (full, np.linalg.inv(ggn + np.eye(P))),
        (per_param, np.linalg.inv(ggn + np.diag(lam_tree))),
        (kfac, np.linalg.inv(kfac.curvature.to_dense().matrix + np.eye(P))),
    ]
    for la, sigma in cases:
        want = _predictive_moments(J, sigma)
        pred = la.predictive(x_new, num_samples=20000, seed=2)
        assert pred.method == "glm" and len(pred.names) == K
        np.testing.assert_allclose(pred.mean, logits, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(pred.covariance, want, rtol=1e-8, atol=1e-12 * np.abs(want).max())
        np.testing.assert_allclose(pred.variance, np.diagonal(want, axis1=1, axis2=2), rtol=1e-8)
        # E[softmax f] with f ~ N(mean, cov): the draws of fisherlab against draws of our own
        z = np.random.default_rng(9).standard_normal((200000, 7, K))
        own = softmax(logits + np.einsum("nij,snj->sni", np.linalg.cholesky(want), z), axis=-1).mean(axis=0)
        np.testing.assert_allclose(pred.probs, own, atol=0.01)
        np.testing.assert_allclose(pred.probs.sum(axis=1), 1.0, rtol=1e-12)
        probit = la.predictive(x_new, method="probit")
        np.testing.assert_allclose(probit.covariance, want, rtol=1e-8, atol=1e-12 * np.abs(want).max())
        var = np.diagonal(want, axis1=1, axis2=2)
        np.testing.assert_allclose(
            probit.probs, softmax(logits / np.sqrt(1 + np.pi / 8 * var), axis=1), rtol=1e-8
        )
        labels = np.arange(7) % K
        np.testing.assert_allclose(
            probit.log_prob(labels), np.log(probit.probs[np.arange(7), labels]), rtol=1e-12
        )
    # the uncertainty matters here: the predictive is not the plug-in softmax
    assert np.abs(full.predictive(x_new, method="probit").probs - softmax(logits, axis=1)).max() > 0.02


@pytest.fixture(scope="module")
def bernoulli(problem):
    rng = np.random.default_rng(11)
    x = problem["x"]
    y = (x[:, 0] - x[:, 1] + 0.7 * rng.normal(size=N) > 0).astype(np.int32)
    params = _init(rng, k=1, scale=1.0)
    model = fl.Model(lambda th, x: fl.dist.Bernoulli(logits=_net(th, x)[:, 0]))
    J, logits = _jacobian(params, x)
    q = expit(logits[:, 0])
    ggn = np.einsum("n,np,nq->pq", q * (1 - q), J[:, 0], J[:, 0])
    return model, params, x, y, ggn


def test_probit_of_a_bernoulli_head_against_quadrature_and_sampling(bernoulli) -> None:
    model, params, x, y, ggn = bernoulli
    lam = 0.2
    la = fl.laplace(model, params, y, x, structure="full", prior_precision=lam)
    x_new = np.random.default_rng(12).normal(size=(8, D)) * np.linspace(0.3, 4.0, 8)[:, None]
    J, logits = _jacobian(params, x_new)
    sigma = np.linalg.inv(ggn + lam * np.eye(len(ggn)))
    mu, var = logits[:, 0], np.einsum("np,pq,nq->n", J[:, 0], sigma, J[:, 0])
    probit = la.predictive(x_new, method="probit")
    assert probit.mean.shape == (8,) and probit.probs.shape == (8,)
    np.testing.assert_allclose(probit.mean, mu, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(probit.variance, var, rtol=1e-8)
    np.testing.assert_allclose(probit.probs, expit(mu / np.sqrt(1 + np.pi / 8 * var)), rtol=1e-10)
    glm = la.predictive(x_new, method="glm", num_samples=100000, seed=3)
    sd = np.sqrt(var)
    quad = np.array(
        [
            scipy.integrate.quad(
                lambda f, m=m, s=s: expit(f) * scipy.stats.norm.pdf(f, m, s),
                m - 12 * s,
                m + 12 * s,
                epsabs=1e-12,
            )[0]
            for m, s in zip(mu, sd, strict=True)
        ]
    )
    assert np.abs(quad - expit(mu)).max() > 0.05  # wide enough that the integral is not the plug-in
    np.testing.assert_allclose(glm.probs, quad, atol=5e-3)
    np.testing.assert_allclose(probit.probs, glm.probs, atol=0.02)
    np.testing.assert_allclose(probit.probs, quad, atol=0.02)
    yy = np.arange(8) % 2
    np.testing.assert_allclose(
        probit.log_prob(yy), yy * np.log(probit.probs) + (1 - yy) * np.log1p(-probit.probs), rtol=1e-10
    )


def test_mc_predictive_of_a_linear_model_has_the_linear_moments(problem) -> None:
    x, y = problem["x"], problem["y"]
    rng = np.random.default_rng(13)
    params = {"w": jnp.asarray(rng.normal(size=(D, K))), "b": jnp.asarray(rng.normal(size=K) * 0.1)}

    def lin(th, x):
        return x @ th["w"] + th["b"]

    model = fl.Model(lambda th, x: fl.dist.Categorical(logits=lin(th, x)))
    flat, unravel = ravel_pytree(params)
    jac = jax.jit(jax.jacrev(lambda f, xx: lin(unravel(f), xx)))
    J = np.asarray(jac(flat, jnp.asarray(x)))
    p = softmax(np.asarray(lin(params, x)), axis=1)
    ggn = np.einsum(
        "nkp,nkl,nlq->pq", J, np.einsum("nk,kl->nkl", p, np.eye(K)) - np.einsum("nk,nl->nkl", p, p), J
    )
    lam = 0.5
    sigma = np.linalg.inv(ggn + lam * np.eye(flat.size))
    la = fl.laplace(model, params, y, x, structure="full", prior_precision=lam)
    x_new = rng.normal(size=(5, D))
    J_new = np.asarray(jac(flat, jnp.asarray(x_new)))
    want = _predictive_moments(J_new, sigma)
    logits = np.asarray(lin(params, x_new))
    S = 20000
    mc = la.predictive(x_new, method="mc", num_samples=S, seed=1)
    assert mc.method == "mc" and mc.samples.shape == (S, 5, K)
    scale = np.sqrt(
        np.einsum("nk,nl->nkl", np.diagonal(want, axis1=1, axis2=2), np.diagonal(want, axis1=1, axis2=2))
    )
    assert np.all(np.abs(mc.covariance - want) <= 0.1 * scale)
    assert np.all(np.abs(mc.mean - logits) <= 5 * np.sqrt(np.diagonal(want, axis1=1, axis2=2) / S))
    np.testing.assert_allclose(mc.probs, softmax(mc.samples, axis=-1).mean(axis=0), rtol=1e-10)
    # the same seed, the same draws; another seed, others
    again = la.predictive(x_new, method="mc", num_samples=50, seed=1)
    np.testing.assert_array_equal(again.samples, mc.samples[:50])
    assert not np.allclose(la.predictive(x_new, method="mc", num_samples=50, seed=2).samples, again.samples)
    # linear in the weights: the linearised predictive is exact
    np.testing.assert_allclose(
        la.predictive(x_new).covariance, want, rtol=1e-8, atol=1e-12 * np.abs(want).max()
    )


# ---------------------------------------------------------------------- samples


def _lam_of(prior, params):
    if isinstance(prior, dict):
        return _per_layer(params, prior)
    return np.broadcast_to(np.asarray(prior, dtype=np.float64), (P,)).copy()


SAMPLE_CASES = [
    ("full", "scalar"),
    ("full", "parameter"),
    ("diagonal", "parameter"),
    ("kfac", "layer"),
    ("lowrank", "parameter"),
    ("block", "layer"),
]


@pytest.mark.parametrize(("structure", "prior_kind"), SAMPLE_CASES)
def test_sample_covariance_is_the_posterior_covariance(problem, structure, prior_kind) -> None:
    params, theta = problem["params"], problem["theta"]
    prior = {
        "scalar": 0.7,
        "layer": {"l1": 0.3, "l2": 3.0},
        "parameter": np.random.default_rng(6).uniform(0.2, 5.0, size=P),
    }[prior_kind]
    la = fl.laplace(
        problem["model"],
        params,
        problem["y"],
        problem["x"],
        structure=structure,
        rank=10,
        prior_precision=prior,
    )
    S = 20000
    draws = la.sample(S, seed=5)
    for got, leaf in zip(jax.tree_util.tree_leaves(draws), jax.tree_util.tree_leaves(params), strict=True):
        assert got.shape == (S, *leaf.shape)
    flat = np.asarray(jax.vmap(lambda t: ravel_pytree(t)[0])(draws))
    sigma = np.linalg.inv(la.curvature.to_dense().matrix + np.diag(_lam_of(prior, params)))
    sd = np.sqrt(np.diag(sigma))
    assert np.all(np.abs(flat.mean(axis=0) - theta) <= 5 * sd / np.sqrt(S))
    emp = np.cov(flat, rowvar=False)
    tol = 5 * np.sqrt((np.outer(sd**2, sd**2) + sigma**2) / S)
    assert np.all(np.abs(emp - sigma) <= tol), np.max(np.abs(emp - sigma) / tol)
    np.testing.assert_allclose(la.posterior_covariance.matrix, sigma, rtol=1e-7, atol=1e-10 * sd.max() ** 2)
    # seeded
    first = la.sample(3, seed=5)
    np.testing.assert_allclose(
        _flat(jax.tree_util.tree_map(lambda a: a[:3], draws)), _flat(first), rtol=1e-12
    )


def test_subset_samples_keep_the_other_parameters(problem) -> None:
    params = problem["params"]
    la = fl.laplace(problem["model"], params, problem["y"], problem["x"], structure="full", subset=["l2"])
    draws = la.sample(2000, seed=1)
    assert draws["l2"]["w"].shape == (2000, H, K) and draws["l1"]["w"].shape == (2000, D, H)
    np.testing.assert_array_equal(draws["l1"]["w"], np.broadcast_to(params["l1"]["w"], (2000, D, H)))
    np.testing.assert_array_equal(draws["l1"]["b"], np.broadcast_to(params["l1"]["b"], (2000, H)))
    sd = np.sqrt(np.diag(np.linalg.inv(problem["ggn"][D * H + H :, D * H + H :] + np.eye(P - D * H - H))))
    got = np.concatenate([draws["l2"]["b"], draws["l2"]["w"].reshape(2000, -1)], axis=1).std(axis=0)
    np.testing.assert_allclose(got, sd, rtol=0.1)


# ---------------------------------------------------------------------- the prior precision


def test_optimize_prior_precision_marglik_against_a_grid(problem, full) -> None:
    params, theta, ggn, loglik = problem["params"], problem["theta"], problem["ggn"], problem["loglik"]
    w = np.linalg.eigvalsh(ggn)
    grid = np.logspace(-3, 3, 400)
    values = np.array(
        [loglik - 0.5 * (np.sum(np.log(w + g)) - P * np.log(g) + g * theta @ theta) for g in grid]
    )
    best = int(np.argmax(values))
    assert 0 < best < len(grid) - 1  # an interior optimum
    before = full.log_marginal_likelihood()
    opt = full.optimize_prior_precision()
    assert isinstance(opt, fl.NetworkLaplace) and opt is not full
    assert full.prior_precision == 1.0 and full.log_marginal_likelihood() == before
    lam = opt.prior_precision
    assert isinstance(lam, float)
    assert abs(np.log(lam) - np.log(grid[best])) <= np.log(grid[1] / grid[0])
    own = _lml(loglik, ggn, np.full(P, lam), theta)
    assert opt.log_marginal_likelihood() == pytest.approx(own, rel=1e-8)
    assert own >= values.max() - 1e-9
    # one per layer: at least as good as the scalar, and a maximum of the dense evidence
    layer = full.optimize_prior_precision(prior_structure="layer")
    per = layer.prior_precision
    assert set(per) == {"l1", "l2"}
    own_layer = _lml(loglik, ggn, _per_layer(params, per), theta)
    assert layer.log_marginal_likelihood() == pytest.approx(own_layer, rel=1e-8)
    assert own_layer >= own - 1e-9
    for name in per:
        for factor in (1.02, 1 / 1.02):
            moved = dict(per, **{name: per[name] * factor})
            assert _lml(loglik, ggn, _per_layer(params, moved), theta) <= own_layer + 1e-9
    # a layer prior optimises to a layer prior; from it, a scalar one is asked for by name
    again = layer.optimize_prior_precision()
    assert set(again.prior_precision) == {"l1", "l2"}
    assert layer.optimize_prior_precision(prior_structure="scalar").prior_precision == pytest.approx(
        lam, rel=1e-4
    )


def test_optimize_prior_precision_cv_picks_the_least_validation_nll(problem, full) -> None:
    params, ggn = problem["params"], problem["ggn"]
    y_val, x_val = problem["y_val"], problem["x_val"]
    grid = np.logspace(-2, 2, 9)
    J, logits = _jacobian(params, x_val)
    nll = []
    for g in grid:
        var = np.diagonal(_predictive_moments(J, np.linalg.inv(ggn + g * np.eye(P))), axis1=1, axis2=2)
        probs = softmax(logits / np.sqrt(1 + np.pi / 8 * var), axis=1)
        nll.append(-np.sum(np.log(probs[np.arange(len(y_val)), y_val])))
    nll = np.array(nll)
    assert np.ptp(nll) > 1e-2  # the grid values are told apart
    cv = full.optimize_prior_precision("cv", val=(y_val, x_val), grid=grid)
    assert cv is not full and full.prior_precision == 1.0
    assert cv.prior_precision == pytest.approx(grid[np.argmin(nll)], rel=1e-12)
    # the default grid: 1e-4 ... 1e4, 21 values
    default = full.optimize_prior_precision("cv", val=(y_val, x_val)).prior_precision
    assert np.isclose(np.log10(default) * 2.5, np.round(np.log10(default) * 2.5)) and 1e-4 <= default <= 1e4


# ---------------------------------------------------------------------- subsets


def test_last_layer_is_the_model_of_the_last_layer_alone(problem) -> None:
    model, params, y, x = problem["model"], problem["params"], problem["y"], problem["x"]
    cut = D * H + H
    la = fl.laplace(model, params, y, x, structure="full", subset="last_layer", prior_precision=0.5)
    assert set(la.subset) == {"l2.w", "l2.b"} and la.p == P - cut
    fixed = params["l1"]
    closure = fl.Model(lambda s, x: fl.dist.Categorical(logits=_net({"l1": fixed, "l2": s}, x)))
    ref = fl.laplace(closure, params["l2"], y, x, structure="full", prior_precision=0.5)
    assert la.log_marginal_likelihood() == pytest.approx(ref.log_marginal_likelihood(), rel=1e-10)
    own = _lml(problem["loglik"], problem["ggn"][cut:, cut:], np.full(P - cut, 0.5), problem["theta"][cut:])
    assert la.log_marginal_likelihood() == pytest.approx(own, rel=1e-8)
    x_new = np.random.default_rng(8).normal(size=(6, D))
    J, _ = _jacobian(params, x_new)
    want = _predictive_moments(
        J[:, :, cut:], np.linalg.inv(problem["ggn"][cut:, cut:] + 0.5 * np.eye(P - cut))
    )
    got = la.predictive(x_new)
    np.testing.assert_allclose(got.variance, ref.predictive(x_new).variance, rtol=1e-10)
    np.testing.assert_allclose(got.covariance, want, rtol=1e-8, atol=1e-12 * np.abs(want).max())
    # by name: the layer, and one leaf of it
    named = fl.laplace(model, params, y, x, structure="full", subset=["l2"], prior_precision=0.5)
    assert named.log_marginal_likelihood() == pytest.approx(own, rel=1e-8)
    leaf = fl.laplace(model, params, y, x, structure="full", subset=["l2.w"])
    w_idx = slice(cut + K, P)
    own_w = _lml(problem["loglik"], problem["ggn"][w_idx, w_idx], np.ones(H * K), problem["theta"][w_idx])
    assert leaf.subset == ["l2.w"] and leaf.p == H * K
    assert leaf.log_marginal_likelihood() == pytest.approx(own_w, rel=1e-8)
    for bad in (["l3"], ["l2.v"]):
        with pytest.raises(fl.InvalidOptionError, match=bad[0].replace(".", r"\.")):
            fl.laplace(model, params, y, x, structure="full", subset=bad)
    with pytest.raises(fl.InvalidOptionError, match="first_layer"):
        fl.laplace(model, params, y, x, subset="first_layer")


# ---------------------------------------------------------------------- evidence shared with fl.fit


def test_linear_gaussian_evidence_is_exact_and_shared_with_fit() -> None:
    rng = np.random.default_rng(21)
    n, d, sigma, lam = 40, 3, 0.7, 2.5
    X = rng.normal(size=(n, d))
    y = X @ np.array([0.5, -1.0, 0.25]) + sigma * rng.normal(size=n)
    model = fl.Model(lambda th, x: fl.dist.Normal(x @ th["beta"], sigma))
    res = fl.fit(
        model, y, X, init={"beta": np.zeros(d)}, prior={"beta": fl.dist.Normal(0.0, 1 / np.sqrt(lam))}
    )
    exact = scipy.stats.multivariate_normal(np.zeros(n), sigma**2 * np.eye(n) + X @ X.T / lam).logpdf(y)
    beta = np.linalg.solve(X.T @ X / sigma**2 + lam * np.eye(d), X.T @ y / sigma**2)
    np.testing.assert_allclose(np.asarray(res.params["beta"]), beta, rtol=1e-8)
    evidence = res.laplace().log_evidence
    assert evidence == pytest.approx(exact, rel=1e-8)
    la = fl.laplace(model, res.params, y, X, structure="full", prior_precision=lam)
    assert la.log_marginal_likelihood() == pytest.approx(evidence, rel=1e-8)
    assert la.log_marginal_likelihood() == pytest.approx(exact, rel=1e-8)
    np.testing.assert_allclose(la.posterior_covariance.matrix, res.laplace().cov.matrix, rtol=1e-8)


# ---------------------------------------------------------------------- chunked data


@pytest.mark.parametrize("structure", ["kfac", "diagonal"])
def test_chunks_give_the_in_memory_laplace(problem, structured, structure) -> None:
    y, x = problem["y"], problem["x"]
    source = fl.data.chunks(lambda: iter([(y[:50], x[:50]), (y[50:], x[50:])]))
    la = fl.laplace(problem["model"], problem["params"], source, structure=structure)
    ref = structured[structure]
    assert la.n == N
    assert la.log_likelihood == pytest.approx(ref.log_likelihood, rel=1e-10)
    assert la.log_marginal_likelihood() == pytest.approx(ref.log_marginal_likelihood(), rel=1e-10)
    assert la.log_marginal_likelihood(0.1) == pytest.approx(ref.log_marginal_likelihood(0.1), rel=1e-10)
    np.testing.assert_allclose(_flat(la.posterior_variance), _flat(ref.posterior_variance), rtol=1e-10)


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("prior", "match"),
    [
        (0.0, "every parameter"),
        (-1.0, "every parameter"),
        (float("nan"), "every parameter"),
        ([1.0, 2.0, 3.0], "3 values"),
        ({"l1": 1.0}, "'l2'"),
        ({"l1": 1.0, "l2": 1.0, "l3": 1.0}, "'l3'"),
        ({"l1": 1.0, "l2": -2.0}, "l2"),
    ],
)
def test_bad_prior_precisions_are_named(problem, full, prior, match) -> None:
    with pytest.raises(fl.InvalidOptionError, match=match):
        full.log_marginal_likelihood(prior)
    with pytest.raises(fl.InvalidOptionError, match=match):
        fl.laplace(problem["model"], problem["params"], problem["y"], problem["x"], prior_precision=prior)


def test_an_indefinite_hessian_is_singular_and_a_definite_one_is_the_dense_formula(problem) -> None:
    model, y, x = problem["model"], problem["y"], problem["x"]
    params = _init(np.random.default_rng(31), scale=1.5)  # untrained: the Hessian is indefinite
    flat, unravel = ravel_pytree(params)

    def total(f):
        return jnp.sum(jax.nn.log_softmax(_net(unravel(f), jnp.asarray(x)))[jnp.arange(N), y])

    hessian = -np.asarray(jax.jit(jax.hessian(total))(flat))
    lowest = np.linalg.eigvalsh(hessian)[0]
    assert lowest < -1e-3
    with pytest.raises(fl.SingularInformationError, match="not positive definite"):
        fl.laplace(model, params, y, x, kind="hessian", structure="full", prior_precision=1e-8)
    lam = 2.0 - lowest
    la = fl.laplace(model, params, y, x, kind="hessian", structure="full", prior_precision=lam)
    assert la.kind == "hessian"
    want = _lml(float(total(flat)), hessian, np.full(P, lam), np.asarray(flat))
    assert la.log_marginal_likelihood() == pytest.approx(want, rel=1e-8)
    with pytest.raises(fl.SingularInformationError):
        la.log_marginal_likelihood(1e-8)


def test_option_and_argument_errors(problem, full, structured) -> None:
    model, params, y, x = problem["model"], problem["params"], problem["y"], problem["x"]
    kfac = structured["kfac"]
    with pytest.raises(fl.MethodUnavailableError, match="kfac"):
        kfac.optimize_prior_precision(prior_structure="diagonal")
    with pytest.raises(fl.MethodUnavailableError, match="layer l1"):
        kfac.log_marginal_likelihood(np.linspace(0.5, 2.0, P))
    with pytest.raises(fl.FisherlabArgumentError, match="val"):
        full.optimize_prior_precision("cv")
    with pytest.raises(fl.InvalidOptionError, match="bogus"):
        full.optimize_prior_precision("bogus")
    with pytest.raises(fl.InvalidOptionError, match="bogus"):
        full.optimize_prior_precision(prior_structure="bogus")
    with pytest.raises(fl.InvalidOptionError, match="sparse"):
        fl.laplace(model, params, y, x, structure="sparse")
    with pytest.raises(fl.InvalidOptionError, match="operator"):
        fl.laplace(model, params, y, x, structure="operator")
    with pytest.raises(fl.InvalidOptionError, match="bogus"):
        fl.laplace(model, params, y, x, kind="bogus")
    with pytest.raises(fl.InvalidOptionError, match="bogus"):
        full.predictive(x[:3], method="bogus")
    with pytest.raises(fl.FisherlabArgumentError, match="x_new"):
        full.predictive(None)
    with pytest.raises(fl.InvalidOptionError):
        full.sample(0)
    for error in (
        fl.InvalidOptionError,
        fl.SingularInformationError,
        fl.MethodUnavailableError,
        fl.FisherlabArgumentError,
    ):
        assert issubclass(error, fl.FisherlabError)


# ---------------------------------------------------------------------- Equinox, float32


def test_equinox_mlp_end_to_end(problem) -> None:
    eqx = pytest.importorskip("equinox")
    y, x = problem["y"], problem["x"]
    net = eqx.nn.MLP(D, K, H, 1, activation=jnp.tanh, key=jax.random.PRNGKey(3))
    model, params = fl.Model.from_equinox(net, lambda z: fl.dist.Categorical(logits=z))
    la = fl.laplace(model, params, y, x)
    assert la.structure == "kfac" and la.p == P
    assert [name for name, _, _ in la.layers] == ["layers[0]", "layers[1]"]
    lml = la.log_marginal_likelihood()
    assert np.isfinite(lml)
    # the same network as a dict of (in, out) weights: the same K-FAC evidence and predictive
    lin = net.layers
    as_dict = {
        "l1": {"w": jnp.asarray(lin[0].weight.T), "b": jnp.asarray(lin[0].bias)},
        "l2": {"w": jnp.asarray(lin[1].weight.T), "b": jnp.asarray(lin[1].bias)},
    }
    ref = fl.laplace(problem["model"], as_dict, y, x)
    assert lml == pytest.approx(ref.log_marginal_likelihood(), rel=1e-8)
    x_new = x[:10]
    for method in ("glm", "probit"):
        pred = la.predictive(x_new, method=method)
        assert pred.probs.shape == (10, K)
        np.testing.assert_allclose(pred.probs.sum(axis=1), 1.0, rtol=1e-10)
    np.testing.assert_allclose(la.predictive(x_new).variance, ref.predictive(x_new).variance, rtol=1e-8)
    opt = la.optimize_prior_precision()
    assert np.isfinite(opt.log_marginal_likelihood()) and opt.log_marginal_likelihood() >= lml - 1e-9
    draws = la.sample(4)
    assert draws.layers[0].weight.shape == (4, H, D)


@pytest.mark.parametrize("structure", ["kfac", "full"])
def test_float32_parameters(problem, full, structured, structure) -> None:
    params32 = jax.tree_util.tree_map(lambda a: np.asarray(a, dtype=np.float32), problem["params"])
    la = fl.laplace(problem["model"], params32, problem["y"], problem["x"], structure=structure)
    assert la.x64 is False
    ref = full if structure == "full" else structured[structure]
    assert la.log_marginal_likelihood() == pytest.approx(ref.log_marginal_likelihood(), rel=1e-4)
    np.testing.assert_allclose(_flat(la.posterior_variance), _flat(ref.posterior_variance), rtol=1e-3)
    pred = la.predictive(problem["x"][:5], method="probit")
    np.testing.assert_allclose(pred.probs, ref.predictive(problem["x"][:5], method="probit").probs, atol=1e-4)
    draws = la.sample(3)
    assert draws["l1"]["w"].dtype == np.float32


@pytest.mark.parametrize("structure", ["kfac", "full"])
def test_float32_rounding_never_makes_a_psd_posterior_singular(problem, full, structured, structure) -> None:
    # float32 sums leave rounding-level negative eigenvalues in a GGN that is PSD by construction;
    # any prior precision > 0 must still give a positive definite posterior, and the optimiser,
    # which tries precisions far below them, must reach the float64 optimum
    params32 = jax.tree_util.tree_map(lambda a: np.asarray(a, dtype=np.float32), problem["params"])
    la = fl.laplace(problem["model"], params32, problem["y"], problem["x"], structure=structure)
    ref = full if structure == "full" else structured[structure]
    assert np.isfinite(la.log_marginal_likelihood(1e-9))  # eigenvalues below float32's resolution: noise
    assert la.log_marginal_likelihood(0.1) == pytest.approx(ref.log_marginal_likelihood(0.1), rel=1e-4)
    opt, opt64 = la.optimize_prior_precision(), ref.optimize_prior_precision()
    assert opt.prior_precision == pytest.approx(opt64.prior_precision, rel=1e-2)


@pytest.mark.parametrize("structure", ["kfac", "diagonal"])
@pytest.mark.parametrize("head", ["categorical", "normal"])
def test_layer_factored_predictive_is_the_jacobian_one(monkeypatch, structure, head) -> None:
    # K-FAC and diagonal posteriors of a network of dense layers take J Σ Jᵀ from the layers'
    # factors (ã gᵀ per row); it must equal the per-row-Jacobian path, here with a transposed
    # weight (W @ a), a per-layer prior, and a Normal head whose fixed scale is not an output
    from fisherlab.posterior import _predictive

    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 3))

    def net(th, xx):
        h = jnp.tanh(xx @ th["l1"]["w"] + th["l1"]["b"])
        return h @ th["l2"]["w"].T + th["l2"]["b"]

    th = {
        "l1": {"w": jnp.asarray(rng.normal(size=(3, 8))), "b": jnp.zeros(8)},
        "l2": {"w": jnp.asarray(rng.normal(size=(3, 8))), "b": jnp.zeros(3)},
    }
    if head == "categorical":
        model = fl.Model(lambda p, xx: fl.dist.Categorical(logits=net(p, xx)))
        y = rng.integers(0, 3, size=60).astype(np.int32)
    else:
        model = fl.Model(lambda p, xx: fl.dist.Normal(net(p, xx)[:, 0], 0.5))
        y = x[:, 0]
    la = fl.laplace(model, th, y, x, structure=structure, prior_precision={"l1": 0.5, "l2": 2.0})
    calls = []
    original = _predictive.Outputs._layer_moments
    monkeypatch.setattr(_predictive.Outputs, "_layer_moments", lambda *a: calls.append(1) or original(*a))
    fast = la.predictive(x[:7])
    monkeypatch.setattr(_predictive.Outputs, "_layer_moments", lambda *a: None)
    slow = la.predictive(x[:7])
    assert calls and fast.names == slow.names == (
        ["logits[0]", "logits[1]", "logits[2]"] if head == "categorical" else ["loc"]
    )
    np.testing.assert_allclose(fast.covariance, slow.covariance, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(fast.mean, slow.mean, rtol=1e-12)


def test_hostile_inputs_get_named_errors(problem, full) -> None:
    x = problem["x"]
    pred = full.predictive(x[:3], method="probit")
    with pytest.raises(fl.InvalidDataError, match="row 2"):
        pred.log_prob(np.array([0, 1, 7]))
    with pytest.raises(fl.InvalidDataError, match="row 0"):
        full.predictive(np.vstack([np.full(x.shape[1], np.nan), x[:2]]))
    with pytest.raises(fl.ModelError):
        full.predictive(np.ones((4, x.shape[1] + 2)))
    with pytest.raises(fl.FisherlabArgumentError, match="subset"):
        fl.laplace(problem["model"], problem["params"], problem["y"], x, subset=3)
    with pytest.raises(fl.FisherlabArgumentError, match="must be numbers"):
        fl.laplace(problem["model"], problem["params"], problem["y"], x, prior_precision="big")
    with pytest.raises(fl.InvalidDataError, match="outside the support"):
        fl.laplace(problem["model"], problem["params"], problem["y"] + K, x)
