"""The shear-building example (examples/shear_building.py) against independent oracles.

- the simulator's frequencies against closed forms (a uniform n-storey shear building,
  a two-storey building with any masses and stiffnesses);
- the numeric (finite-difference) observed information of the SciPy-simulator model
  against the autodiff Hessian of the same model written in JAX;
- the numeric-model MAP fit and posterior covariance against the JAX model's;
- the Laplace approximation against the exact posterior moments by Gauss-Hermite
  quadrature, and NUTS draws against both (two storeys).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import fisherlab as fl

_PATH = Path(__file__).resolve().parents[1] / "examples" / "shear_building.py"
_spec = importlib.util.spec_from_file_location("shear_building_example", _PATH)
assert _spec is not None and _spec.loader is not None
sb = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = sb
_spec.loader.exec_module(sb)

# LAPACK's symmetric eigen-solver is backward stable: each eigenvalue carries an absolute
# error of a few eps * ||A||; relative to the smallest eigenvalue of these matrices
# (condition ||A|| / lambda_min < 100) that is < 1e-13. Frequencies are square roots.
EIG_RTOL = 1e-12
# A finite-difference Hessian with Richardson extrapolation of a smooth O(1)-scaled
# function: fisherlab's error estimate is ~1e-10 of the largest entry here; we require
# it to be below 1e-8 (so the comparison is a sharp one) AND to bound the actual error.
INFO_RTOL = 1e-8
# Both fits stop at a Newton decrement <= 1e-8 (distance to the optimum in posterior
# standard deviations); the numeric gradient's error (~1e-10 relative) moves the
# stationary point by far less. 1e-6 (in posterior sd, and relative to theta) leaves room
# for neither fit to be exactly at its stopping point while still catching a wrong
# derivative, which moves the MAP by O(1) sd.
MAP_TOL = 1e-6
# The posterior covariance H^-1 inherits the relative error of H times cond(H) (< 1e3 here):
# ~1e-8 at most; 1e-6 relative to the largest entry.
COV_RTOL = 1e-6
# Monte-Carlo checks: |NUTS - reference| <= Z_MC standard errors (each se from the effective
# sample size of the statistic); 4 se for a family of 5 checks: false alarm ~3e-4.
Z_MC = 4.0


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


# ----------------------------------------------------------------------------- simulator


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_uniform_building_matches_closed_form(n: int) -> None:
    # Equal masses m and stiffnesses k, fixed at the ground, free at the roof:
    # omega_r^2 = 4 k / m sin^2((2r - 1) pi / (2 (2n + 1))), r = 1..n
    # (e.g. Chopra, Dynamics of Structures, the uniform shear-frame / spring-mass chain).
    m, k = 3.0e4, 4.0e7
    r = np.arange(1, n + 1)
    omega = 2.0 * np.sqrt(k / m) * np.sin((2 * r - 1) * np.pi / (2 * (2 * n + 1)))
    expected = omega / (2 * np.pi)
    masses = np.full(n, m)
    np.testing.assert_allclose(sb.frequencies(np.ones(n), masses, k), expected, rtol=EIG_RTOL)
    np.testing.assert_allclose(np.asarray(sb.frequencies_jax(np.ones(n), masses, k)), expected, rtol=EIG_RTOL)


def test_two_storey_matches_quadratic_formula() -> None:
    # det(K - lambda M) = 0:  m1 m2 lambda^2 - (m2 (k1 + k2) + m1 k2) lambda + k1 k2 = 0
    masses = np.array([2.0e4, 1.5e4])
    k_nominal = 2.5e7
    theta = np.array([1.3, 0.7])
    k1, k2 = k_nominal * theta
    m1, m2 = masses
    a, b, c = m1 * m2, -(m2 * (k1 + k2) + m1 * k2), k1 * k2
    disc = np.sqrt(b * b - 4 * a * c)
    lam = np.array([2 * c / (-b + disc), (-b + disc) / (2 * a)])  # cancellation-free roots
    expected = np.sqrt(lam) / (2 * np.pi)
    np.testing.assert_allclose(sb.frequencies(theta, masses, k_nominal), expected, rtol=EIG_RTOL)
    np.testing.assert_allclose(
        np.asarray(sb.frequencies_jax(theta, masses, k_nominal)), expected, rtol=EIG_RTOL
    )


def test_stiffness_matrix_is_tridiagonal_shear_frame() -> None:
    K = sb.stiffness_matrix(np.array([5.0, 3.0, 2.0]))
    np.testing.assert_array_equal(K, [[8.0, -3.0, 0.0], [-3.0, 5.0, -2.0], [0.0, -2.0, 2.0]])


# ----------------------------------------------------------------------------- numeric vs autodiff


@pytest.fixture(scope="module")
def three_storey() -> dict:
    mode, f, sigma = sb.simulate()
    numeric = sb.fit(sb.numeric_model(sigma), mode, f)
    reference = sb.fit(sb.jax_model(sigma), mode, f)
    return {"mode": mode, "f": f, "sigma": sigma, "numeric": numeric, "reference": reference}


def test_numeric_information_matches_autodiff_hessian() -> None:
    mode, f, sigma = sb.simulate()
    params = {"theta": np.array([0.95, 0.85, 1.1])}  # away from the MAP: the gradient is not 0
    num = fl.observed_information(sb.numeric_model(sigma), params, f, mode)
    ref = fl.observed_information(sb.jax_model(sigma), params, f, mode)
    assert num.error is not None and num.evaluations > 0
    assert np.max(num.error) <= INFO_RTOL * np.max(np.abs(ref.matrix))
    assert _rel(num.matrix, ref.matrix) <= INFO_RTOL
    assert np.all(np.abs(num.matrix - ref.matrix) <= num.error)  # the error estimate is a bound


def test_numeric_fit_matches_autodiff_fit(three_storey: dict) -> None:
    num, ref = three_storey["numeric"], three_storey["reference"]
    theta, theta_ref = np.asarray(num.params["theta"]), np.asarray(ref.params["theta"])
    cov, cov_ref = num.cov("observed"), ref.cov("observed")
    sd = np.sqrt(np.diag(cov_ref.matrix))
    assert np.max(np.abs(theta - theta_ref) / theta_ref) <= MAP_TOL
    assert np.max(np.abs(theta - theta_ref) / sd) <= MAP_TOL
    assert _rel(cov.matrix, cov_ref.matrix) <= COV_RTOL
    # the error propagated from the finite-difference Hessian covers the actual difference
    # (plus the covariance's change over the MAP difference, second order here)
    assert cov.error is not None
    assert np.all(np.abs(cov.matrix - cov_ref.matrix) <= cov.error + 1e-12 * np.max(np.abs(cov_ref.matrix)))
    # the posterior precision is positive definite: H = +Sigma^-1 (never -Sigma^-1)
    info = num.information("observed").matrix
    assert np.all(np.linalg.eigvalsh(info) > 0)
    np.testing.assert_allclose(info @ cov.matrix, np.eye(3), atol=1e-9)
    lap, lap_ref = num.laplace(), ref.laplace()
    assert abs(lap.log_evidence - lap_ref.log_evidence) <= 1e-6


def test_example_script_runs_and_refuses_to_overwrite(tmp_path: Path, capsys) -> None:
    sb.main(["--out", str(tmp_path)])
    out = capsys.readouterr().out
    figure = tmp_path / "shear_building_posterior.svg"
    assert figure.read_text().lstrip().startswith("<?xml") and "<svg" in figure.read_text()
    assert "MAP theta" in out and "|cov difference| <= its error estimate: True" in out
    with pytest.raises(SystemExit, match="exists"):
        sb.main(["--out", str(tmp_path)])
    sb.main(["--out", str(tmp_path), "--force"])


# ----------------------------------------------------------------------------- posterior checks

TWO_MASSES = np.array([2.0e4, 1.5e4])
TWO_THETA = np.array([1.0, 0.8])


@pytest.fixture(scope="module")
def two_storey() -> dict:
    mode, f, sigma = sb.simulate(TWO_THETA, masses=TWO_MASSES)
    res = sb.fit(sb.numeric_model(sigma, TWO_MASSES), mode, f)
    return {"mode": mode, "f": f, "sigma": sigma, "res": res}


def _log_posterior(theta: np.ndarray, mode: np.ndarray, f: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """log p(data | theta) + log p(theta) up to a constant, for rows of theta, with the NumPy simulator."""
    freq = np.array([sb.frequencies(t, TWO_MASSES) for t in theta])
    z = (f - freq[:, mode]) / sigma[mode]
    log_theta = np.log(theta)
    log_prior = np.sum(-log_theta - 0.5 * (log_theta / sb.PRIOR_SCALE) ** 2, axis=1)
    return -0.5 * np.sum(z * z, axis=1) + log_prior


def _quadrature_moments(two_storey: dict, points: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact posterior mean and covariance by Gauss-Hermite quadrature around the Laplace Gaussian.

    With theta = MAP + L z (L L^T = Laplace covariance) the posterior is q(z) r(z), q the
    standard normal and r = p / q smooth, so a tensor Gauss-Hermite rule integrates
    r, z r and z z^T r to near machine precision.
    """
    res = two_storey["res"]
    mean = np.asarray(res.params["theta"])
    chol = np.linalg.cholesky(res.cov("observed").matrix)
    nodes, weights = np.polynomial.hermite_e.hermegauss(points)
    z = np.stack(np.meshgrid(nodes, nodes, indexing="ij"), axis=-1).reshape(-1, 2)
    w = np.outer(weights, weights).ravel()
    theta = mean + z @ chol.T
    log_r = _log_posterior(theta, two_storey["mode"], two_storey["f"], two_storey["sigma"])
    log_r = log_r + 0.5 * np.sum(z * z, axis=1)
    r = w * np.exp(log_r - log_r.max())
    r /= r.sum()
    m = r @ theta
    c = ((theta - m).T * r) @ (theta - m)
    return m, c


def test_laplace_close_to_exact_posterior(two_storey: dict) -> None:
    """The case is nearly Gaussian: Laplace mean and covariance within a few % of exact moments."""
    m20, c20 = _quadrature_moments(two_storey, 20)
    m, c = _quadrature_moments(two_storey, 30)
    assert _rel(m20, m) < 1e-10 and _rel(c20, c) < 1e-8  # the quadrature has converged
    res = two_storey["res"]
    mean, cov = np.asarray(res.params["theta"]), res.cov("observed").matrix
    sd = np.sqrt(np.diag(c))
    # Laplace's mean is the mode: the skewness of the posterior puts the mean O(sd^2) away
    assert np.max(np.abs(m - mean) / sd) < 0.05
    assert _rel(cov, c) < 0.03


@pytest.mark.slow  # > 7 s: keeps the default suite within its budget
def test_nuts_agrees_with_laplace_and_exact_posterior(two_storey: dict) -> None:
    mode, f, sigma = two_storey["mode"], two_storey["f"], two_storey["sigma"]
    chains, _ = sb.nuts(mode, f, sigma, TWO_MASSES, warmup=500, samples=3000, chains=2, seed=1)
    mean_mc, cov_mc, se_mean, se_cov = sb.mc_moments(chains)
    m_exact, c_exact = _quadrature_moments(two_storey, 30)
    # NUTS against the exact moments: pure Monte-Carlo error
    assert np.all(np.abs(mean_mc - m_exact) <= Z_MC * se_mean)
    assert np.all(np.abs(cov_mc - c_exact) <= Z_MC * se_cov)
    # NUTS against Laplace: Monte-Carlo error plus the (measured) Gaussian-approximation gap
    res = two_storey["res"]
    mean, cov = np.asarray(res.params["theta"]), res.cov("observed").matrix
    assert np.all(np.abs(mean_mc - mean) <= Z_MC * se_mean + np.abs(m_exact - mean))
    assert np.all(np.abs(cov_mc - cov) <= Z_MC * se_cov + np.abs(c_exact - cov))
    # and the comparison is sharp: the MC standard errors are a few % of the posterior sd
    assert np.all(se_mean < 0.05 * np.sqrt(np.diag(cov)))
