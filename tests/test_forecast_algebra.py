"""The forecasting algebra of InfoMatrix against independent dense oracles.

Each quantity is checked against a formula written independently of fisherlab's: inverses and
determinants by ``numpy.linalg.inv`` / ``slogdet``, Jacobians by hand from the analytic
derivatives, the Kullback–Leibler divergence in its covariance form, the information gain as
the expected divergence from prior to posterior.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

import fisherlab as fl

# Well-conditioned (cond < 1e3) 2x2 to 5x5 matrices: inverses, solves and determinants in float64
# agree to a few hundred ulps, far below this.
TOL = 1e-12
# A divergence of a matrix from itself is a sum of x - log1p(x) with |x| ~ 1e-15: ~1e-30 in exact
# arithmetic, a few ulps of the terms in float64.
ZERO_KL = 1e-14

NAMES = ["a", "b", "c", "d"]


def spd(rng: np.random.Generator, p: int) -> np.ndarray:
    """A random symmetric positive definite matrix with condition number < 1e3."""
    a = rng.normal(size=(p + 3, p))
    return a.T @ a + 0.5 * np.eye(p)


@pytest.fixture
def F(rng: np.random.Generator) -> fl.InfoMatrix:
    return fl.InfoMatrix(spd(rng, 4), NAMES, method="exact", center={"a": 0.3, "b": 1.7, "c": -2.0, "d": 5.0})


def close(actual: np.ndarray, expected: np.ndarray, tol: float = TOL) -> None:
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * np.max(np.abs(expected)))


# ----------------------------------------------------------------------------- fix / marginalize
def test_marginalize_is_the_inverse_of_the_covariance_block(F) -> None:
    m = F.marginalize(["d", "b"])
    cov = np.linalg.inv(F.matrix)
    close(m.matrix, np.linalg.inv(cov[np.ix_([3, 1], [3, 1])]))
    assert m.names == ["d", "b"] and m.center == {"d": 5.0, "b": 1.7}


def test_fix_is_the_sub_block(F) -> None:
    f = F.fix(["a", "c"])
    np.testing.assert_array_equal(f.matrix, F.matrix[np.ix_([1, 3], [1, 3])])
    assert f.names == ["b", "d"] and f.center == {"b": 1.7, "d": 5.0}


# ----------------------------------------------------------------------------- reparametrize
def _product_log(p):
    return {"ab": p["a"] * p["b"], "lb": jnp.log(p["b"])}


@pytest.fixture
def F2(rng: np.random.Generator) -> fl.InfoMatrix:
    return fl.InfoMatrix(spd(rng, 2), ["a", "b"], method="exact")


def test_reparametrize_square_nonlinear_maps_covariance_and_information(F2) -> None:
    a, b = 0.8, 2.5
    H = F2.reparametrize(_product_log, ["ab", "lb"], at={"a": a, "b": b})
    # by hand: G = ∂(ab, log b)/∂(a, b) and J = ∂(a, b)/∂(ab, lb) with a = ab·e^{-lb}, b = e^{lb}
    G = np.array([[b, a], [0.0, 1.0 / b]])
    J = np.array([[1.0 / b, -a], [0.0, b]])
    cov = np.linalg.inv(F2.matrix)
    close(H.cov().matrix, G @ cov @ G.T)
    close(H.matrix, J.T @ F2.matrix @ J)
    assert H.names == ["ab", "lb"] and H.method == "reparametrized(exact)"
    assert H.center == pytest.approx({"ab": a * b, "lb": math.log(b)}, rel=TOL)


def test_reparametrize_returns_a_sequence_too_and_keeps_a_singular_information(F2) -> None:
    at = {"a": 0.8, "b": 2.5}
    by_dict = F2.reparametrize(_product_log, ["ab", "lb"], at=at)
    by_list = F2.reparametrize(lambda p: [p["a"] * p["b"], jnp.log(p["b"])], ["ab", "lb"], at=at)
    close(by_list.matrix, by_dict.matrix)
    # a change of variables of a singular information is fine: J^T F J with J = G^-1
    singular = fl.InfoMatrix([[1.0, 1.0], [1.0, 1.0]], ["a", "b"])
    G = np.array([[2.5, 0.8], [0.0, 0.4]])
    J = np.linalg.inv(G)
    close(singular.reparametrize(_product_log, ["ab", "lb"], at=at).matrix, J.T @ singular.matrix @ J)


def test_reparametrize_takes_the_jacobian_at_the_center(F2) -> None:
    F = fl.InfoMatrix(F2.matrix, ["a", "b"], center={"a": 0.8, "b": 2.5})
    at_center = F.reparametrize(_product_log, ["ab", "lb"])
    explicit = F2.reparametrize(_product_log, ["ab", "lb"], at={"a": 0.8, "b": 2.5})
    np.testing.assert_array_equal(at_center.matrix, explicit.matrix)
    assert at_center.center == explicit.center
    # at= overrides the center
    elsewhere = F.reparametrize(_product_log, ["ab", "lb"], at={"a": 1.0, "b": 1.0})
    assert elsewhere.center == {"ab": 1.0, "lb": 0.0}


def test_reparametrize_four_parameters_against_hand_jacobian(F) -> None:
    def fn(p):
        return {
            "s": p["a"] + p["b"],
            "r": p["b"] / p["d"],
            "e": jnp.exp(p["c"]),
            "q": p["a"] * p["d"] ** 2,
        }

    x = F.center
    a, b, c, d = (x[n] for n in NAMES)
    G = np.array(
        [
            [1.0, 1.0, 0.0, 0.0],
            [0.0, 1.0 / d, 0.0, -b / d**2],
            [0.0, 0.0, math.exp(c), 0.0],
            [d**2, 0.0, 0.0, 2 * a * d],
        ]
    )
    H = F.reparametrize(fn, ["s", "r", "e", "q"])
    close(H.cov().matrix, G @ np.linalg.inv(F.matrix) @ G.T)
    Jinv = np.linalg.inv(G)
    close(H.matrix, Jinv.T @ F.matrix @ Jinv)


def test_derived_parameters_are_the_delta_method(F) -> None:
    x = F.center
    a, b, d = x["a"], x["b"], x["d"]

    def fn(p):
        return {"ab": p["a"] * p["b"], "r": p["d"] / p["b"]}

    G = np.array([[b, a, 0.0, 0.0], [0.0, -d / b**2, 0.0, 1.0 / b]])
    cov_phi = G @ np.linalg.inv(F.matrix) @ G.T
    H = F.reparametrize(fn, ["ab", "r"])
    close(H.matrix, np.linalg.inv(cov_phi))
    close(H.cov().matrix, cov_phi)
    assert H.center == pytest.approx({"ab": a * b, "r": d / b}, rel=TOL)
    # keeping coordinates is marginalisation
    close(F.reparametrize(lambda p: [p["c"], p["a"]], ["c", "a"]).matrix, F.marginalize(["c", "a"]).matrix)


def test_affine_map_without_a_point_and_the_jacobian_as_an_array(F) -> None:
    plain = fl.InfoMatrix(F.matrix, NAMES)  # no center
    A = np.array([[1.0, 2.0, 0.0, 0.0], [1.0, -1.0, 0.0, 3.0], [0.0, 0.0, 1.0, 0.5], [0.0, 0.0, 0.0, 2.0]])

    def affine(p):
        v = jnp.stack([p[n] for n in NAMES])
        return jnp.asarray(A) @ v + 7.0

    H = plain.reparametrize(affine, ["u", "v", "w", "z"])
    assert H.center is None
    close(H.cov().matrix, A @ np.linalg.inv(F.matrix) @ A.T)
    np.testing.assert_allclose(plain.reparametrize(A, ["u", "v", "w", "z"]).matrix, H.matrix, rtol=TOL)
    # an array Jacobian knows no point: no center even when F has one
    assert F.reparametrize(A, ["u", "v", "w", "z"]).center is None
    derived = plain.reparametrize(A[:2], ["u", "v"])
    close(derived.matrix, np.linalg.inv(A[:2] @ np.linalg.inv(F.matrix) @ A[:2].T))


def test_nonlinear_map_without_a_point_is_refused(F2) -> None:
    with pytest.raises(
        fl.InvalidParameterError, match="fn is not linear; give at= or compute F with a center"
    ):
        F2.reparametrize(_product_log, ["ab", "lb"])
    with pytest.raises(fl.InvalidParameterError, match="not linear"):
        F2.reparametrize(lambda p: [p["a"] * p["b"], p["b"]], ["ab", "b"])


def test_reparametrize_propagates_the_error(F2) -> None:
    E = np.array([[0.1, 0.02], [0.02, 0.3]])
    F = fl.InfoMatrix(F2.matrix, ["a", "b"], error=E)
    G = np.array([[2.0, 1.0], [0.5, -1.0]])
    B = np.abs(np.linalg.inv(G))
    close(F.reparametrize(G, ["u", "v"]).error, B.T @ E @ B)


# ----------------------------------------------------------------------------- priors
def test_with_prior_adds_inverse_variances(F) -> None:
    P = F.with_prior({"a": 2.0, "c": math.inf})
    expected = F.matrix.copy()
    expected[0, 0] += 0.25
    np.testing.assert_array_equal(P.matrix, expected)
    assert P.method == "exact+prior" and P.names == NAMES and P.center == F.center


def test_with_prior_information_matrix_is_aligned_by_name(F) -> None:
    prior = fl.InfoMatrix([[2.0, 0.5], [0.5, 1.0]], ["d", "b"], error=[[0.1, 0.0], [0.0, 0.2]])
    P = F.with_prior(prior)
    expected = F.matrix.copy()
    expected[3, 3] += 2.0
    expected[1, 1] += 1.0
    expected[1, 3] += 0.5
    expected[3, 1] += 0.5
    close(P.matrix, expected)
    err = np.zeros((4, 4))
    err[3, 3], err[1, 1] = 0.1, 0.2
    np.testing.assert_array_equal(P.error, err)


# ----------------------------------------------------------------------------- combine
def test_combine_disjoint_and_overlapping_against_padded_sums(rng) -> None:
    A = fl.InfoMatrix(spd(rng, 2), ["a", "b"], error=np.full((2, 2), 0.3))
    B = fl.InfoMatrix(spd(rng, 2), ["c", "b"], error=np.full((2, 2), 0.4))
    C = fl.InfoMatrix(spd(rng, 1), ["e"])
    total = A.combine(B, C)
    assert total.names == ["a", "b", "c", "e"]
    expected = np.zeros((4, 4))
    expected[:2, :2] += A.matrix
    # B is over (c, b): c -> 2, b -> 1
    expected[np.ix_([2, 1], [2, 1])] += B.matrix
    expected[3, 3] += C.matrix[0, 0]
    close(total.matrix, expected)
    err2 = np.zeros((4, 4))
    err2[:2, :2] += 0.3**2
    err2[np.ix_([2, 1], [2, 1])] += 0.4**2
    close(total.error, np.sqrt(err2))
    # disjoint: block diagonal
    disjoint = A.combine(C)
    close(disjoint.matrix, np.block([[A.matrix, np.zeros((2, 1))], [np.zeros((1, 2)), C.matrix]]))
    # same names: as F + G
    close(A.combine(A).matrix, (A + A).matrix)
    assert A.combine().matrix.tolist() == A.matrix.tolist()


def test_combine_centers() -> None:
    F = fl.InfoMatrix(np.eye(2), ["a", "b"], center={"a": 1.0, "b": 2.0})
    G = fl.InfoMatrix(np.eye(2), ["b", "c"], center={"b": 2.0, "c": 3.0})
    assert F.combine(G).center == {"a": 1.0, "b": 2.0, "c": 3.0}
    assert F.combine(fl.InfoMatrix(np.eye(2), ["b", "c"], center={"b": 2.5, "c": 3.0})).center is None
    assert F.combine(fl.InfoMatrix(np.eye(2), ["b", "c"])).center is None  # c has no value
    assert F.combine(fl.InfoMatrix(np.eye(2), ["b", "a"])).center == {"a": 1.0, "b": 2.0}


# ----------------------------------------------------------------------------- figures
def test_figure_of_merit_against_slogdet(F) -> None:
    sign, logdet = np.linalg.slogdet(F.matrix)
    assert sign > 0
    assert F.figure_of_merit() == pytest.approx(0.5 * logdet, rel=TOL)
    marginal = np.linalg.inv(np.linalg.inv(F.matrix)[np.ix_([2, 0, 3], [2, 0, 3])])
    assert F.figure_of_merit(["c", "a", "d"]) == pytest.approx(0.5 * np.linalg.slogdet(marginal)[1], rel=TOL)
    assert F.figure_of_merit("b") == pytest.approx(-0.5 * math.log(np.linalg.inv(F.matrix)[1, 1]), rel=TOL)


def test_detf_figure_is_one_over_sqrt_det_of_the_pair_covariance(F) -> None:
    pair = np.linalg.inv(F.matrix)[np.ix_([0, 1], [0, 1])]
    assert F.figure_of_merit(["a", "b"], detf=True) == pytest.approx(
        1.0 / math.sqrt(np.linalg.det(pair)), rel=TOL
    )


def test_information_gain_is_the_expected_divergence_from_prior_to_posterior(F) -> None:
    sigmas = {"a": 0.5, "b": 2.0, "c": 1.0, "d": 3.0}
    P = np.diag([1.0 / s**2 for s in sigmas.values()])
    gain = F.information_gain(sigmas)
    assert gain == pytest.approx(
        0.5 * (np.linalg.slogdet(F.matrix + P)[1] - np.linalg.slogdet(P)[1]), rel=TOL
    )
    # E_y KL(posterior || prior) for the Gaussian linear model: the posterior mean varies with
    # covariance Σ_prior - Σ_post under the prior predictive, so the expected mean term is
    # tr(P (P⁻¹ - Σ_post)) (Lindley 1956's mutual information)
    post = np.linalg.inv(F.matrix + P)
    k = len(sigmas)
    expected_kl = 0.5 * (
        np.trace(P @ post)
        - k
        + np.trace(P @ (np.linalg.inv(P) - post))
        + np.linalg.slogdet(F.matrix + P)[1]
        - np.linalg.slogdet(P)[1]
    )
    assert gain == pytest.approx(expected_kl, rel=TOL)
    # a full prior information matrix, names in another order
    Pm = spd(np.random.default_rng(5), 4)
    perm = [2, 0, 3, 1]
    prior = fl.InfoMatrix(Pm[np.ix_(perm, perm)], [NAMES[i] for i in perm])
    assert F.information_gain(prior) == pytest.approx(
        0.5 * (np.linalg.slogdet(F.matrix + Pm)[1] - np.linalg.slogdet(Pm)[1]), rel=TOL
    )


def _kl_covariance_form(mu0, cov0, mu1, cov1) -> float:
    """KL(N(mu0, cov0) || N(mu1, cov1)), the textbook form in covariances."""
    k = len(mu0)
    inv1 = np.linalg.inv(cov1)
    diff = np.asarray(mu1) - np.asarray(mu0)
    return 0.5 * (
        np.trace(inv1 @ cov0)
        - k
        + diff @ inv1 @ diff
        + np.linalg.slogdet(cov1)[1]
        - np.linalg.slogdet(cov0)[1]
    )


def test_kl_divergence_against_the_covariance_form(rng) -> None:
    f, g = spd(rng, 3), spd(rng, 3)
    mu_f, mu_g = np.array([0.1, -1.0, 2.0]), np.array([0.4, 0.0, 1.5])
    F = fl.InfoMatrix(f, ["a", "b", "c"], center=dict(zip("abc", mu_f, strict=True)))
    perm = [2, 0, 1]
    G = fl.InfoMatrix(g[np.ix_(perm, perm)], ["c", "a", "b"], center=dict(zip("abc", mu_g, strict=True)))
    expected = _kl_covariance_form(mu_f, np.linalg.inv(f), mu_g, np.linalg.inv(g))
    assert F.kl_divergence(G) == pytest.approx(expected, rel=TOL)
    # explicit centers override; no centers: the mean term is 0
    no_mean = _kl_covariance_form(mu_f, np.linalg.inv(f), mu_f, np.linalg.inv(g))
    Fn, Gn = fl.InfoMatrix(f, ["a", "b", "c"]), fl.InfoMatrix(g, ["a", "b", "c"])
    assert Fn.kl_divergence(Gn) == pytest.approx(no_mean, rel=TOL)
    centre = dict(zip("abc", mu_f.tolist(), strict=True))
    assert Fn.kl_divergence(Gn, center=centre, other_center=dict(zip("abc", mu_g, strict=True))) == (
        pytest.approx(expected, rel=TOL)
    )
    # one dimension: log(σ1/σ0) + (σ0² + Δμ²) / (2σ1²) - ½
    s0, s1, dm = 0.5, 2.0, 1.5
    one = fl.InfoMatrix([[1 / s0**2]], ["x"], center={"x": 0.0})
    two = fl.InfoMatrix([[1 / s1**2]], ["x"], center={"x": dm})
    assert one.kl_divergence(two) == pytest.approx(
        math.log(s1 / s0) + (s0**2 + dm**2) / (2 * s1**2) - 0.5, rel=TOL
    )


def test_kl_divergence_of_a_matrix_from_itself_is_zero_and_never_negative(rng) -> None:
    F = fl.InfoMatrix(spd(rng, 4), NAMES)
    assert abs(F.kl_divergence(F)) <= ZERO_KL
    for _ in range(20):
        G = fl.InfoMatrix(spd(rng, 4), NAMES)
        assert F.kl_divergence(G) >= 0.0 and G.kl_divergence(F) >= 0.0


# ----------------------------------------------------------------------------- centers
def test_center_propagates_through_the_algebra(F) -> None:
    assert (2.0 * F).center == F.center and (F / 4).center == F.center
    assert (F + F).center == F.center
    assert (F + fl.InfoMatrix(F.matrix, NAMES)).center == F.center
    shifted = fl.InfoMatrix(F.matrix, NAMES, center={**F.center, "a": 0.31})
    assert (F + shifted).center is None
    assert (0 + F).center == F.center
    assert F.marginalize(NAMES).center == F.center
    big = fl.InfoMatrix(np.eye(2), ["a", "b"], center={"a": 1, "b": np.float32(2.0), "extra": 9.0})
    assert big.center == {"a": 1.0, "b": 2.0} and all(type(v) is float for v in big.center.values())


# ----------------------------------------------------------------------------- hostile input
@pytest.mark.parametrize(
    ("sigma", "error", "match"),
    [
        (math.nan, fl.InvalidParameterError, "σ of 'a' is nan"),
        (0.0, fl.InvalidParameterError, "σ of 'a' is 0.0"),
        (-1.0, fl.InvalidParameterError, "σ of 'a' is -1.0"),
        (-math.inf, fl.InvalidParameterError, "σ of 'a' is -inf"),
        (True, fl.FisherlabArgumentError, "σ of 'a' must be a real number"),
        ("1", fl.FisherlabArgumentError, "σ of 'a' must be a real number"),
        (1 + 0j, fl.FisherlabArgumentError, "σ of 'a' must be a real number"),
    ],
)
def test_bad_sigmas_are_named(F, sigma, error, match) -> None:
    with pytest.raises(error, match=match):
        F.with_prior({"a": sigma})
    with pytest.raises(error, match=match):
        F.information_gain({"a": sigma, "b": 1.0, "c": 1.0, "d": 1.0})


def test_bad_priors(F) -> None:
    with pytest.raises(fl.InvalidParameterError, match=r"unknown parameter name\(s\) \['z'\]"):
        F.with_prior({"z": 1.0})
    with pytest.raises(fl.InvalidParameterError, match=r"the prior is over \['z'\]"):
        F.with_prior(fl.InfoMatrix(np.eye(2), ["a", "z"]))
    for bad in (1.0, [1.0, 2.0], np.eye(4), F.cov(), None):
        with pytest.raises(
            fl.FisherlabArgumentError, match="dict parameter name -> prior standard deviation"
        ):
            F.with_prior(bad)
    with pytest.raises(fl.SingularInformationError, match="no information on 'b'") as info:
        F.information_gain({"a": 1.0, "c": 1.0, "d": 1.0})
    assert info.value.direction == {"b": 1.0}
    with pytest.raises(fl.SingularInformationError, match="no information on 'c'"):
        F.information_gain({"a": 1.0, "b": 1.0, "c": math.inf, "d": 1.0})
    rank_one = fl.InfoMatrix(np.ones((4, 4)) + np.diag([0, 0, 0, 0.0]), NAMES)
    with pytest.raises(fl.SingularInformationError, match="the prior is singular"):
        F.information_gain(rank_one)


def test_bad_combine_and_kl_arguments(F) -> None:
    for bad in (1, np.eye(4), F.cov(), "F"):
        with pytest.raises(fl.FisherlabArgumentError, match=f"argument 2 is {type(bad).__name__}"):
            F.combine(F, bad)
        with pytest.raises(fl.FisherlabArgumentError, match="kl_divergence"):
            F.kl_divergence(bad)
    with pytest.raises(fl.InvalidParameterError, match="different parameters"):
        F.kl_divergence(F.fix("a"))
    with pytest.raises(fl.InvalidParameterError, match="give other_center="):
        F.kl_divergence(fl.InfoMatrix(F.matrix, NAMES))
    with pytest.raises(fl.InvalidParameterError, match="give center="):
        fl.InfoMatrix(F.matrix, NAMES).kl_divergence(F)
    singular = fl.InfoMatrix(np.ones((4, 4)), NAMES, center=F.center)
    with pytest.raises(fl.SingularInformationError):
        F.kl_divergence(singular)
    with pytest.raises(fl.SingularInformationError):
        singular.kl_divergence(F)


def test_bad_figure_of_merit(F) -> None:
    with pytest.raises(fl.FisherlabArgumentError, match="detf"):
        F.figure_of_merit(detf="yes")
    with pytest.raises(fl.InvalidParameterError, match="unknown"):
        F.figure_of_merit(["a", "zz"])
    with pytest.raises(fl.SingularInformationError, match="not identified"):
        fl.InfoMatrix([[1.0, 1.0], [1.0, 1.0]], ["a", "b"]).figure_of_merit()


@pytest.mark.parametrize(
    ("center", "error", "match"),
    [
        ({"a": 1.0}, fl.InvalidParameterError, "no value for 'b'"),
        ({"a": 1.0, "b": math.nan}, fl.InvalidParameterError, r"center\['b'\] is nan"),
        ({"a": 1.0, "b": math.inf}, fl.InvalidParameterError, r"center\['b'\] is inf"),
        ({"a": True, "b": 1.0}, fl.FisherlabArgumentError, r"center\['a'\] must be a real number"),
        ({"a": "1", "b": 1.0}, fl.FisherlabArgumentError, r"center\['a'\] must be a real number"),
        ({"a": np.ones(2), "b": 1.0}, fl.FisherlabArgumentError, r"center\['a'\] must be a real number"),
        ([1.0, 2.0], fl.FisherlabArgumentError, "center must be a dict"),
    ],
)
def test_bad_centers(center, error, match) -> None:
    with pytest.raises(error, match=match):
        fl.InfoMatrix(np.eye(2), ["a", "b"], center=center)


def test_bad_reparametrizations(F, F2) -> None:
    at = {"a": 0.8, "b": 2.5}
    with pytest.raises(fl.InvalidParameterError, match=r"more parameters than it has.*combine"):
        F2.reparametrize(lambda p: [p["a"], p["b"], p["a"] + p["b"]], ["x", "y", "z"], at=at)
    with pytest.raises(fl.InvalidParameterError, match="∂r/∂b is inf"):
        F2.reparametrize(lambda p: {"r": jnp.sqrt(p["b"]), "a": p["a"]}, ["r", "a"], at={"a": 1.0, "b": 0.0})
    with pytest.raises(fl.SingularInformationError, match="not independent") as info:
        F2.reparametrize(lambda p: [p["a"] + p["b"], 2 * p["a"] + 2 * p["b"]], ["s", "t"], at=at)
    assert set(info.value.direction) == {"s", "t"} and info.value.condition_number > 1e12
    with pytest.raises(fl.SingularInformationError, match="not independent"):
        F.reparametrize(np.array([[1.0, 1.0, 0.0, 0.0], [2.0, 2.0, 0.0, 0.0]]), ["s", "t"])
    with pytest.raises(fl.SingularInformationError, match="not independent"):
        F2.reparametrize(np.array([[1.0, 0.0], [0.0, 0.0]]), ["s", "t"])
    with pytest.raises(fl.InvalidParameterError, match=r"keys \['ab'\].*missing: \['lb'\]"):
        F2.reparametrize(lambda p: {"ab": p["a"] * p["b"]}, ["ab", "lb"], at=at)
    with pytest.raises(fl.InvalidParameterError, match=r"shape \(3,\), expected \(2,\)"):
        F2.reparametrize(lambda p: [p["a"], p["b"], p["a"]], ["x", "y"], at=at)
    with pytest.raises(fl.InvalidParameterError, match=r"Jacobian has shape \(2, 3\), expected \(2, 2\)"):
        F2.reparametrize(np.ones((2, 3)), ["x", "y"])
    with pytest.raises(fl.FisherlabArgumentError, match="at= is only used when fn is a function"):
        F2.reparametrize(np.eye(2), ["x", "y"], at=at)
    with pytest.raises(fl.FisherlabArgumentError, match="differentiable by JAX"):
        F2.reparametrize(lambda p: [float(p["a"]), p["b"]], ["x", "y"], at=at)
    with pytest.raises(fl.FisherlabArgumentError, match="real numbers"):
        F2.reparametrize(np.eye(2, dtype=bool), ["x", "y"])
    for bad in ("ab", None, {"x": 1}):
        with pytest.raises(fl.FisherlabArgumentError, match="fn must be a function"):
            F2.reparametrize(bad, ["x", "y"])
    for names in ([], [1, 2], None):
        with pytest.raises(fl.FisherlabArgumentError, match="new_names"):
            F2.reparametrize(np.eye(2), names)
    with pytest.raises(fl.InvalidParameterError, match=r"repeat \['x'\]"):
        F2.reparametrize(np.eye(2), ["x", "x"])
    with pytest.raises(fl.InvalidParameterError, match="no value for 'b'"):
        F2.reparametrize(_product_log, ["ab", "lb"], at={"a": 1.0})
    with pytest.raises(fl.InvalidParameterError, match="fn gives lb = -inf"):
        F2.reparametrize(
            lambda p: [p["a"] * p["b"], jnp.log(p["b"]) + 0 * p["a"]], ["ab", "lb"], at={"a": 1.0, "b": 0.0}
        )
    # derived parameters need an invertible F
    with pytest.raises(fl.SingularInformationError):
        fl.InfoMatrix(np.ones((2, 2)), ["a", "b"]).reparametrize([[1.0, 0.0]], ["a"])
