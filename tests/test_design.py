"""fl.design: criteria, optimal approximate / exact / Bayesian designs, against textbook optima.

Oracles: the closed-form optimal designs of the literature (Atkinson, Donev & Tobias 2007,
ch. 9-11; Pukelsheim 1993; Dette et al. 2010), the equivalence theorem recomputed here with
NumPy from the analytic gradient of the mean function, exhaustive enumeration of exact designs,
and Gauss-Legendre quadrature of the Bayesian criterion written independently with SciPy.
"""

from __future__ import annotations

import functools
import itertools
import math

import jax.numpy as jnp
import numpy as np
import pytest

import fisherlab as fl

# Textbook optima must be found to 1e-6 (the figure); the algorithm's Newton step on the
# support solves them to rounding, so 1e-9 on the weights is the sharp check.
WEIGHT_TOL = 1e-9
# Points moved off the grid (bounds=) by L-BFGS-B with exact gradients: the criterion is flat
# (zero first derivative) at the optimum, so a point is determined to ~sqrt(eps) at worst; 1e-6 is
# the figure.
POINT_TOL = 1e-6
# The equivalence theorem: d(x) <= bound everywhere with equality on the support, to the
# algorithm's tolerance (tol=1e-9, relative) plus rounding.
EQUIV_TOL = 1e-8

GRID = np.linspace(-1.0, 1.0, 201)


@functools.cache  # one model: its kernels compile once for the whole file
def quadratic() -> fl.Model:
    return fl.Model(lambda th, x: fl.dist.Normal(th["b"][0] + th["b"][1] * x + th["b"][2] * x**2, 1.0))


def support(d: fl.design.Design) -> tuple[list[float], list[float]]:
    return np.asarray(d.points).round(9).tolist(), d.weights.tolist()


@pytest.mark.parametrize(
    ("criterion", "kwargs", "points", "weights"),
    [
        ("D", {}, [-1, 0, 1], [1 / 3, 1 / 3, 1 / 3]),  # Atkinson et al. (2007) 11.3
        ("A", {}, [-1, 0, 1], [1 / 4, 1 / 2, 1 / 4]),  # Pukelsheim (1993) 9.6 (tr M^-1 = 8)
        ("E", {}, [-1, 0, 1], [1 / 5, 3 / 5, 1 / 5]),  # Pukelsheim (1993) 9.13 (lambda_min = 1/5)
        ("Ds", {"names": ["b[2]"]}, [-1, 0, 1], [1 / 4, 1 / 2, 1 / 4]),  # the quadratic term
        ("c", {"c": {"b[1]": 1.0}}, [-1, 1], [1 / 2, 1 / 2]),  # the slope at 0
    ],
)
def test_quadratic_regression_optima(criterion: str, kwargs: dict, points: list, weights: list) -> None:
    d = fl.design.optimal(quadratic(), {"b": np.zeros(3)}, GRID, criterion, **kwargs)
    got_points, got_weights = support(d)
    assert got_points == points
    np.testing.assert_allclose(got_weights, weights, atol=WEIGHT_TOL)
    assert d.max_sensitivity <= d.bound * (1 + EQUIV_TOL)
    assert d.efficiency_bound > 1 - 1e-6


def test_d_optimal_equivalence_theorem_recomputed() -> None:
    """d(x) = f(x)^T M^-1 f(x) <= P = 3 on [-1, 1], = 3 at the support (NumPy, f = (1, x, x^2))."""
    d = fl.design.optimal(quadratic(), {"b": np.zeros(3)}, GRID)
    f = np.stack([np.ones_like(GRID), GRID, GRID**2], 1)
    fs = np.stack([np.ones(3), d.points, d.points**2], 1)
    m = fs.T @ (d.weights[:, None] * fs)
    sens = np.einsum("np,pq,nq->n", f, np.linalg.inv(m), f)
    np.testing.assert_allclose(d.sensitivity, sens, rtol=1e-12)
    assert d.bound == pytest.approx(3.0, rel=1e-12)
    on_support = sens[np.isin(GRID.round(9), d.points.round(9))]
    np.testing.assert_allclose(on_support, 3.0, rtol=EQUIV_TOL)
    assert sens.max() <= 3.0 * (1 + EQUIV_TOL)
    np.testing.assert_allclose(d.info.matrix, m, rtol=1e-12)
    assert d.value == pytest.approx(np.linalg.slogdet(m)[1], rel=1e-12)


def test_c_optimal_extrapolation_elfving() -> None:
    """Linear regression on [-1, 1], c = (1, 2) (the mean at x = 2): weights 3/4 at 1, 1/4 at -1."""
    m = fl.Model(lambda th, x: fl.dist.Normal(th["a"] + th["b"] * x, 1.0))
    d = fl.design.optimal(m, {"a": 0.0, "b": 0.0}, GRID, "c", c=[1.0, 2.0])
    assert support(d)[0] == [-1, 1]
    np.testing.assert_allclose(d.weights, [0.25, 0.75], atol=WEIGHT_TOL)
    # variance of the prediction at 2: c^T M^-1 c with M = diag(1, 1) + off-diagonal 0.5
    assert d.value == pytest.approx(np.array([1, 2]) @ np.linalg.inv([[1, 0.5], [0.5, 1]]) @ [1, 2], rel=1e-9)


@functools.cache
def michaelis_menten(derivatives: str = "auto") -> fl.Model:
    if derivatives == "numeric":
        return fl.Model(
            lambda th, x: fl.dist.Normal(th["V"] * np.asarray(x) / (th["K"] + np.asarray(x)), 0.1),
            derivatives="numeric",
        )
    return fl.Model(lambda th, x: fl.dist.Normal(th["V"] * x / (th["K"] + x), 0.1))


@pytest.mark.parametrize("derivatives", ["auto", pytest.param("numeric", marks=pytest.mark.slow)])
def test_michaelis_menten_two_point_design(derivatives: str) -> None:
    """Locally D-optimal: weights 1/2 at x* = K x_max / (2K + x_max) and at x_max (Duggleby 1979)."""
    k, xmax = 0.7, 2.0
    grid = np.linspace(0.0, xmax, 41)
    d = fl.design.optimal(michaelis_menten(derivatives), {"V": 1.3, "K": k}, grid, bounds=(0.0, xmax))
    np.testing.assert_allclose(d.points, [k * xmax / (2 * k + xmax), xmax], atol=POINT_TOL)
    np.testing.assert_allclose(d.weights, [0.5, 0.5], atol=POINT_TOL)
    assert d.max_sensitivity <= 2.0 * (1 + 1e-6)


def test_black_box_model_matches_autodiff() -> None:
    """A NumPy (numeric-derivative) Michaelis-Menten model gives the autodiff design on the grid."""
    grid = np.linspace(0.0, 2.0, 41)
    params = {"V": 1.3, "K": 0.5}
    numeric = fl.design.optimal(michaelis_menten("numeric"), params, grid)
    exact = fl.design.optimal(michaelis_menten(), params, grid)
    np.testing.assert_array_equal(numeric.points, exact.points)
    np.testing.assert_allclose(numeric.weights, exact.weights, atol=1e-7)


def test_exponential_decay_single_point() -> None:
    """One parameter, E y = exp(-k x): the locally D-optimal design is one point at x = 1/k."""
    m = fl.Model(lambda th, x: fl.dist.Normal(jnp.exp(-th["k"] * x), 0.1))
    d = fl.design.optimal(m, {"k": 0.7}, np.linspace(0.0, 5.0, 51), bounds=(0.0, 5.0))
    np.testing.assert_allclose(d.points, [1 / 0.7], atol=POINT_TOL)
    np.testing.assert_allclose(d.weights, [1.0])
    assert d.bound == pytest.approx(1.0) and d.max_sensitivity == pytest.approx(1.0, rel=1e-8)


def test_two_dimensional_points_and_logistic() -> None:
    """A 2-factor first-order logistic model: the design's sensitivity <= P on every candidate, its
    information equals fl.fisher of the support weighted (oracle: fl.fisher)."""
    m = fl.Model(
        lambda th, x: fl.dist.Bernoulli(logits=th["b"][0] + x[..., 0] * th["b"][1] + x[..., 1] * th["b"][2])
    )
    g = np.linspace(-2, 2, 21)
    cands = np.array(list(itertools.product(g, g)))
    params = {"b": np.array([0.3, 1.0, -0.5])}
    d = fl.design.optimal(m, params, cands)
    assert d.points.shape == (d.weights.size, 2)
    assert d.max_sensitivity <= 3 * (1 + EQUIV_TOL)
    total = sum(w * fl.fisher(m, params, p[None]).matrix for p, w in zip(d.points, d.weights, strict=True))
    np.testing.assert_allclose(d.info.matrix, total, rtol=1e-10)


def test_exact_designs_match_enumeration() -> None:
    """n = 4 runs on 11 points: the exchange algorithm's log det equals the best of all 1001 designs."""
    grid = np.linspace(-1, 1, 11)
    m = quadratic()
    d = fl.design.optimal(m, {"b": np.zeros(3)}, grid, n=4)
    f = np.stack([np.ones_like(grid), grid, grid**2], 1)
    best = -np.inf
    for combo in itertools.combinations_with_replacement(range(11), 4):
        mm = f[list(combo)].T @ f[list(combo)] / 4
        sign, logdet = np.linalg.slogdet(mm)
        if sign > 0:
            best = max(best, logdet)
    assert d.value == pytest.approx(best, rel=1e-12)
    assert d.counts is not None and d.counts.sum() == 4 and d.n == 4
    np.testing.assert_allclose(d.weights, d.counts / 4)
    # the Cramér-Rao covariance of the 4 runs
    ref = np.linalg.inv(4 * d.info.matrix)  # entries that are 0 in exact arithmetic: to rounding
    np.testing.assert_allclose(d.cov().matrix, ref, rtol=1e-10, atol=1e-13 * np.abs(ref).max())


def test_exact_design_with_bounds_moves_runs() -> None:
    """Michaelis-Menten, n = 6 runs: three at x* and three at x_max (the approximate optimum)."""
    k, xmax = 0.5, 2.0
    d = fl.design.optimal(
        michaelis_menten(), {"V": 1.0, "K": k}, np.linspace(0, xmax, 21), n=6, bounds=(0, xmax)
    )
    np.testing.assert_allclose(d.points, [k * xmax / (2 * k + xmax), xmax], atol=POINT_TOL)
    assert d.counts.tolist() == [3, 3]


def test_bayesian_design_expected_criterion() -> None:
    """A LogNormal prior on K: the design's expected log det equals Gauss-Hermite quadrature in
    log K computed here with NumPy; its equivalence theorem holds (bound P = 2), and the reported
    error bounds the distance to an 80-node reference."""
    k0, s, xmax = 0.5, 0.5, 2.0
    grid = np.linspace(0.0, xmax, 41)
    prior = {"K": fl.dist.LogNormal(np.log(k0), s)}
    d = fl.design.optimal(michaelis_menten(), {"V": 1.0, "K": k0}, grid, prior=prior, prior_points=7)
    assert d.prior_nodes == 7 and d.max_sensitivity <= 2 * (1 + EQUIV_TOL)
    z, w = np.polynomial.hermite_e.hermegauss(7)
    w = w / w.sum()
    ks = k0 * np.exp(s * z)

    def logdet(k: float) -> float:
        x = np.asarray(d.points)
        grad = np.stack([x / (k + x), -x / (k + x) ** 2], 1) / 0.1  # d mean / d(V, K), sigma = 0.1
        return float(np.linalg.slogdet(grad.T @ (d.weights[:, None] * grad))[1])

    expected = sum(wi * logdet(k) for wi, k in zip(w, ks, strict=True))
    assert d.value == pytest.approx(expected, rel=1e-10)
    z80, w80 = np.polynomial.hermite_e.hermegauss(80)
    reference = sum(wi * logdet(k) for wi, k in zip(w80 / w80.sum(), k0 * np.exp(s * z80), strict=True))
    assert d.value_error is not None and abs(d.value - reference) <= d.value_error < 0.05
    local = fl.design.optimal(michaelis_menten(), {"V": 1.0, "K": k0}, grid)
    local_expected = sum(wi * logdet_of(local, k) for wi, k in zip(w, ks, strict=True))
    assert expected >= local_expected - 1e-12  # the Bayesian design is better on average


def logdet_of(design: fl.design.Design, k: float) -> float:
    x = np.asarray(design.points)
    grad = np.stack([x / (k + x), -x / (k + x) ** 2], 1) / 0.1
    return float(np.linalg.slogdet(grad.T @ (design.weights[:, None] * grad))[1])


def test_bayesian_monte_carlo_has_standard_error() -> None:
    prior = {"K": fl.dist.LogNormal(np.log(0.5), 0.3)}
    d = fl.design.optimal(
        michaelis_menten(),
        {"V": 1.0, "K": 0.5},
        np.linspace(0, 2, 21),
        prior=prior,
        prior_method="mc",
        prior_points=50,
    )
    assert d.prior_nodes == 50 and d.value_error is not None and d.value_error > 0


def test_point_information_adds_to_fisher_and_routes() -> None:
    m = fl.Model(lambda th, x: fl.dist.Poisson(jnp.exp(th["a"] + th["b"] * x)))
    x = np.linspace(0, 1, 7)
    params = {"a": 0.2, "b": -0.4}
    pts = fl.design.point_information(m, params, x)
    np.testing.assert_allclose(pts.info().matrix, fl.fisher(m, params, x).matrix, rtol=1e-12)
    mu = np.exp(0.2 - 0.4 * x)  # Poisson: I(x) = mu (1, x)(1, x)^T
    np.testing.assert_allclose(pts.matrices()[3], mu[3] * np.outer([1, x[3]], [1, x[3]]), rtol=1e-12)
    assert pts.center == {"a": 0.2, "b": -0.4} and pts.route == "exact"
    bb = fl.Model(lambda th, x: fl.dist.BetaBinomial(jnp.exp(th["a"] + x), jnp.exp(th["b"]), 5))
    rows = fl.design.point_information(bb, params, x)
    assert rows.route == "summation"
    np.testing.assert_allclose(rows.info().matrix, fl.fisher(bb, params, x).matrix, rtol=1e-10)


def test_criteria_and_efficiency_against_numpy() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 4))
    mat = a @ a.T + 4 * np.eye(4)
    names = ["p", "q", "r", "s"]
    F = fl.InfoMatrix(mat, names)
    inv = np.linalg.inv(mat)
    assert fl.design.criterion(F, "D") == pytest.approx(np.linalg.slogdet(mat)[1], rel=1e-12)
    assert fl.design.criterion(F, "A") == pytest.approx(np.trace(inv), rel=1e-12)
    assert fl.design.criterion(F, "E") == pytest.approx(np.linalg.eigvalsh(mat)[0], rel=1e-12)
    c = np.array([1.0, -2.0, 0.0, 0.5])
    assert fl.design.criterion(F, "c", c=c) == pytest.approx(c @ inv @ c, rel=1e-12)
    ds = np.linalg.slogdet(np.linalg.inv(inv[:2, :2]))[1]
    assert fl.design.criterion(F, "Ds", names=["p", "q"]) == pytest.approx(ds, rel=1e-12)
    G = fl.InfoMatrix(mat + np.diag([1.0, 0, 0, 0]), names)
    eff = np.exp((np.linalg.slogdet(mat)[1] - np.linalg.slogdet(G.matrix)[1]) / 4)
    assert fl.design.efficiency(F, G, "D") == pytest.approx(eff, rel=1e-12)
    assert fl.design.efficiency(F, G, "A") == pytest.approx(np.trace(np.linalg.inv(G.matrix)) / np.trace(inv))
    assert fl.design.efficiency(F, 3 * F, "D") == pytest.approx(1 / 3, rel=1e-12)


def test_naive_design_efficiency_is_below_one() -> None:
    m = quadratic()
    opt = fl.design.optimal(m, {"b": np.zeros(3)}, GRID)
    naive = fl.design.point_information(m, {"b": np.zeros(3)}, np.linspace(-1, 1, 5)).info(np.full(5, 0.2))
    eff = fl.design.efficiency(naive, opt, "D")
    # closed form: M = mean of (1, x, x^2)(...)^T over 5 equispaced points
    f = np.stack([np.ones(5), np.linspace(-1, 1, 5), np.linspace(-1, 1, 5) ** 2], 1)
    expected = (np.linalg.det(f.T @ f / 5) / np.linalg.det(opt.info.matrix)) ** (1 / 3)
    assert eff == pytest.approx(expected, rel=1e-12) and eff < 1
    assert opt.efficiency_bound >= eff


def test_summary_and_table() -> None:
    d = fl.design.optimal(quadratic(), {"b": np.zeros(3)}, GRID, n=6)
    table = d.to_pandas()
    assert list(table.columns) == ["x", "weight", "count"] and table["count"].sum() == 6
    text = d.summary()
    assert "D-optimal design (exact, n = 6" in text and "equivalence theorem" in text
    assert set(d.se(10)) == {"b[0]", "b[1]", "b[2]"}


# ---------------------------------------------------------------------------------- hostile input


def test_hostile_inputs() -> None:
    m = quadratic()
    p = {"b": np.zeros(3)}
    with pytest.raises(fl.InvalidDataError, match="row 2"):
        fl.design.optimal(m, p, np.array([-1.0, 0.0, np.nan, 1.0]))
    with pytest.raises(fl.SingularInformationError, match="cannot identify"):
        fl.design.optimal(m, p, np.array([0.5, 0.5, 0.5]))
    with pytest.raises(fl.InvalidOptionError, match="criterion"):
        fl.design.optimal(m, p, GRID, "G")
    with pytest.raises(fl.InvalidParameterError, match="Ds needs names"):
        fl.design.optimal(m, p, GRID, "Ds")
    with pytest.raises(fl.FisherlabArgumentError, match="c= has 2 entries"):
        fl.design.optimal(m, p, GRID, "c", c=[1.0, 2.0])
    with pytest.raises(fl.InvalidParameterError, match="unknown"):
        fl.design.optimal(m, p, GRID, "c", c={"zz": 1.0})
    with pytest.raises(fl.FisherlabArgumentError, match="names= is for the Ds"):
        fl.design.optimal(m, p, GRID, "D", names=["b[0]"])
    with pytest.raises(fl.FisherlabArgumentError, match="coordinate 0"):
        fl.design.optimal(m, p, GRID, bounds=(1.0, -1.0))
    with pytest.raises(fl.InvalidDataError, match="outside bounds"):
        fl.design.optimal(m, p, GRID, bounds=(-0.5, 1.0))
    with pytest.raises(fl.InvalidOptionError, match="n"):
        fl.design.optimal(m, p, GRID, n=0)
    with pytest.raises(fl.FisherlabArgumentError, match="n"):
        fl.design.optimal(m, p, GRID, n=2.5)
    with pytest.raises(fl.SingularInformationError, match="2 runs"):
        fl.design.optimal(m, p, GRID, n=2)
    with pytest.raises(fl.InvalidParameterError, match="unknown parameter"):
        fl.design.optimal(m, p, GRID, prior={"c": fl.dist.Normal(0, 1)})
    with pytest.raises(fl.FisherlabArgumentError, match="scalar distribution"):
        fl.design.optimal(m, p, GRID, prior={"b[0]": 1.0})
    with pytest.raises(fl.InvalidOptionError, match="prior_method"):
        fl.design.optimal(m, p, GRID, prior={"b[0]": fl.dist.Normal(0, 1)}, prior_method="sobol")
    with pytest.raises(fl.FisherlabArgumentError, match="tol"):
        fl.design.optimal(m, p, GRID, tol=0.5)
    with pytest.raises(fl.FisherlabArgumentError, match="candidates"):
        fl.design.optimal(m, p, None)
    with pytest.raises(fl.FisherlabArgumentError, match=r"fl\.Model"):
        fl.design.optimal(lambda th, x: None, p, GRID)


def test_hostile_models() -> None:
    sampler_only = fl.Model.from_loglik(
        lambda th, y, x: -0.5 * (y - th["a"] * x) ** 2, sampler=lambda th, x, key: th["a"] * x
    )
    with pytest.raises(fl.MethodUnavailableError, match="Monte-Carlo"):
        fl.design.optimal(sampler_only, {"a": 1.0}, GRID)
    negative_scale = fl.Model(lambda th, x: fl.dist.Normal(th["a"] * x, th["s"] * x))
    with pytest.raises(fl.InvalidParameterError, match="row 0"):
        fl.design.optimal(negative_scale, {"a": 1.0, "s": 1.0}, np.array([-1.0, 0.5, 1.0]))
    assert math.isfinite(fl.design.optimal(negative_scale, {"a": 1.0, "s": 1.0}, np.array([0.5, 1.0])).value)


def test_named_covariate_candidates() -> None:
    """Candidates as a dict of columns: the 2^2 factorial corners for a first-order model."""
    m = fl.Model(lambda th, x: fl.dist.Normal(th["a"] + th["b"] * x["dose"] + th["c"] * x["age"], 1.0))
    g = np.linspace(-1, 1, 5)
    dose, age = np.meshgrid(g, g)
    d = fl.design.optimal(m, {"a": 0.0, "b": 0.0, "c": 0.0}, {"dose": dose.ravel(), "age": age.ravel()})
    table = d.to_pandas()
    assert sorted(zip(table["dose"], table["age"], strict=True)) == [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    np.testing.assert_allclose(d.weights, 0.25, atol=WEIGHT_TOL)
    np.testing.assert_allclose(d.info.matrix, np.eye(3), atol=1e-12)


def test_e_certificate_is_the_eigenvector_bound() -> None:
    """E: sensitivity v^T I(x) v with v the eigenvector of lambda_min, bound lambda_min = 1/5."""
    d = fl.design.optimal(quadratic(), {"b": np.zeros(3)}, GRID, "E")
    _, vectors = np.linalg.eigh(d.info.matrix)
    f = np.stack([np.ones_like(GRID), GRID, GRID**2], 1)
    np.testing.assert_allclose(d.sensitivity, (f @ vectors[:, 0]) ** 2, rtol=1e-10, atol=1e-14)
    assert d.bound == pytest.approx(0.2, rel=1e-9) and d.value == pytest.approx(0.2, rel=1e-9)
    assert d.efficiency_bound == pytest.approx(1.0, abs=1e-8)
