"""The cosmology forecast tutorial (examples/forecast_cosmology.py) against independent oracles.

- the Gauss-Legendre distance integral against adaptive quadrature (SciPy's ``quad``);
- each experiment's Fisher matrix against J^T Sigma^-1 J with J by Richardson-extrapolated
  central differences of a SciPy implementation of the observables;
- the forecast algebra (prior, combination, marginalisation, fixing, figure of merit,
  information gain, KL divergence, reparametrisation) against NumPy linear algebra;
- the GetDist export against the covariance it should carry, and back;
- a Monte-Carlo check: SN + BAO data sets simulated at the fiducial cosmology and fitted with
  ``fl.fit``; the scatter of the estimates against the Fisher covariance, in MC standard errors
  (and, marked slow, the SN-only case where the Fisher forecast of Omega_m fails).
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.integrate

import fisherlab as fl

_PATH = Path(__file__).resolve().parents[1] / "examples" / "forecast_cosmology.py"
_spec = importlib.util.spec_from_file_location("forecast_cosmology_example", _PATH)
assert _spec is not None and _spec.loader is not None
fc = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = fc
_spec.loader.exec_module(fc)

# 64-point Gauss-Legendre on an analytic integrand vs quad at epsrel 1e-13: both exact to a few
# ulps of the integral.
QUAD_RTOL = 1e-12
# Richardson-extrapolated central differences (steps 1e-3, 5e-4) of quad-based observables:
# truncation O(h^4) ~ 1e-12, quad's own error 1e-13 / h ~ 1e-10 relative to the derivative. The
# Fisher matrices then agree to ~1e-9 relative; 1e-7 is still sharp (a wrong sign, factor or
# missing (1 + z) changes entries at O(1)).
FISHER_RTOL = 1e-7
# Pure linear algebra on the same matrices (inverses of 3x3 with cond < 1e4).
ALGEBRA_RTOL = 1e-10
# Monte Carlo: |statistic - expectation| <= Z_MC standard errors; 3 means + 6 covariance entries,
# 4 se each: family-wise false alarm < 1e-3 for a Gaussian estimator.
Z_MC = 4.0


# ----------------------------------------------------------------------------- SciPy oracle


def scipy_comoving(z: float, om: float, w: float, h: float) -> float:
    def inv_e(x: float) -> float:
        a = 1.0 + x
        return 1.0 / math.sqrt(om * a**3 + (1 - om) * a ** (3 * (1 + w)))

    value, _ = scipy.integrate.quad(inv_e, 0.0, z, epsabs=0.0, epsrel=1e-13, limit=200)
    return fc.C_KM_S / (100.0 * h) * value


def scipy_observable(theta: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The observables of ``rows`` at theta = (Om, h, w) (fisherlab's name order), by quad."""
    om, h, w = theta
    out = np.empty(rows.shape[0])
    for i, (z, kind, _) in enumerate(rows):
        if kind == fc.MU:
            out[i] = 5 * math.log10((1 + z) * scipy_comoving(z, om, w, h)) + 25
        elif kind == fc.DM:
            out[i] = scipy_comoving(z, om, w, h) / fc.R_DRAG
        else:
            a = 1.0 + z
            e = math.sqrt(om * a**3 + (1 - om) * a ** (3 * (1 + w)))
            out[i] = fc.C_KM_S / (100.0 * h * e) / fc.R_DRAG
    return out


def oracle_fisher(rows: np.ndarray, h_step: float = 1e-3) -> np.ndarray:
    theta = np.array([fc.FIDUCIAL[n] for n in fc.NAMES])

    def central(step: float) -> np.ndarray:
        cols = []
        for i in range(3):
            e = np.zeros(3)
            e[i] = step
            cols.append((scipy_observable(theta + e, rows) - scipy_observable(theta - e, rows)) / (2 * step))
        return np.stack(cols, axis=-1)

    jac = (4 * central(h_step / 2) - central(h_step)) / 3
    return jac.T @ (jac / rows[:, 2:3] ** 2)


@pytest.fixture(scope="module")
def f() -> fc.Forecasts:
    return fc.forecasts()


def _block(info: fl.InfoMatrix, names: list[str]) -> np.ndarray:
    return info.matrix[np.ix_(info.index(names), info.index(names))]


# ----------------------------------------------------------------------------- model


@pytest.mark.parametrize("om, w", [(0.3, -1.0), (0.25, -0.8), (0.4, -1.3)])
def test_distance_quadrature_matches_adaptive_quadrature(om: float, w: float) -> None:
    z = np.array([0.01, 0.5, 1.2, 2.33, 3.0])
    import jax

    with jax.enable_x64(True):
        got = np.asarray(fc.comoving_distance(z, om, w, 0.7))
    expected = [scipy_comoving(zi, om, w, 0.7) for zi in z]
    np.testing.assert_allclose(got, expected, rtol=QUAD_RTOL)


def test_fiducial_values_match_scipy() -> None:
    rows = np.vstack([fc.sn_rows(7), fc.bao_rows()])
    theta = np.array([fc.FIDUCIAL[n] for n in fc.NAMES])
    np.testing.assert_allclose(
        fc.fiducial_values(rows[:, 0], rows[:, 1]), scipy_observable(theta, rows), rtol=QUAD_RTOL
    )


def test_fisher_matrices_match_finite_difference_oracle(f: fc.Forecasts) -> None:
    assert f.sn.names == f.bao.names == fc.NAMES
    assert f.sn.center == fc.FIDUCIAL
    for info, rows in ((f.sn, fc.sn_rows()), (f.bao, fc.bao_rows())):
        expected = oracle_fisher(rows)
        assert np.max(np.abs(info.matrix - expected)) <= FISHER_RTOL * np.max(np.abs(expected))


def test_fisher_of_all_rows_is_the_sum(f: fc.Forecasts) -> None:
    joint = fl.fisher(fc.model(), fc.FIDUCIAL, np.vstack([fc.sn_rows(), fc.bao_rows()]))
    np.testing.assert_allclose(joint.matrix, f.sn.matrix + f.bao.matrix, rtol=1e-12)
    np.testing.assert_array_equal(f.combined.matrix, f.sn.matrix + f.bao.matrix)
    np.testing.assert_array_equal(f.sn.combine(f.bao).matrix, f.combined.matrix)


# ----------------------------------------------------------------------------- algebra


def test_prior_on_h(f: fc.Forecasts) -> None:
    expected = f.combined.matrix.copy()
    i = f.combined.names.index("h")
    expected[i, i] += 1 / fc.H_PRIOR**2
    np.testing.assert_array_equal(f.with_h_prior.matrix, expected)
    h_only = fl.InfoMatrix([[1 / fc.H_PRIOR**2]], ["h"])
    np.testing.assert_array_equal(f.combined.combine(h_only).matrix, expected)
    assert f.with_h_prior.center == fc.FIDUCIAL


def test_marginalise_fix_and_figure_of_merit(f: fc.Forecasts) -> None:
    F = f.with_h_prior
    cov = np.linalg.inv(F.matrix)
    keep = F.index(["Om", "w"])
    c2 = cov[np.ix_(keep, keep)]
    np.testing.assert_allclose(F.marginalize(["Om", "w"]).matrix, np.linalg.inv(c2), rtol=ALGEBRA_RTOL)
    np.testing.assert_array_equal(F.fix(["h"]).matrix, F.matrix[np.ix_(keep, keep)])
    assert fc.dark_energy_fom(F) == pytest.approx(1 / math.sqrt(np.linalg.det(c2)), rel=ALGEBRA_RTOL)
    assert F.figure_of_merit(["Om", "w"]) == pytest.approx(
        -0.5 * math.log(np.linalg.det(c2)), rel=ALGEBRA_RTOL
    )
    assert 1400 < fc.dark_energy_fom(F) < 1500  # the tutorial's 1449


def test_information_gain_and_kl(f: fc.Forecasts) -> None:
    p = np.diag([1 / fc.BROAD_PRIOR[n] ** 2 for n in fc.NAMES])
    for info in (f.sn, f.bao, f.combined):
        expected = 0.5 * (np.linalg.slogdet(info.matrix + p)[1] - np.linalg.slogdet(p)[1])
        assert info.information_gain(fc.BROAD_PRIOR) == pytest.approx(expected, rel=ALGEBRA_RTOL)
    a, b = f.combined.matrix, f.with_h_prior.matrix
    kl = 0.5 * (np.trace(b @ np.linalg.inv(a)) - 3 + np.linalg.slogdet(a)[1] - np.linalg.slogdet(b)[1])
    assert f.combined.kl_divergence(f.with_h_prior) == pytest.approx(kl, rel=1e-9)


def test_reparametrise_to_physical_matter_density(f: fc.Forecasts) -> None:
    F = f.with_h_prior
    new = F.reparametrize(fc.to_omh2, ["omh2", "w", "h"])
    om, h = fc.FIDUCIAL["Om"], fc.FIDUCIAL["h"]
    # G = d(omh2, w, h) / d(Om, h, w), rows new, columns in F's order (Om, h, w)
    G = np.array([[h**2, 2 * om * h, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    expected = G @ np.linalg.inv(F.matrix) @ G.T
    np.testing.assert_allclose(new.cov().matrix, expected, rtol=ALGEBRA_RTOL)
    # equivalently F_new = J^T F J with J = G^-1 = d(old)/d(new)
    J = np.linalg.inv(G)
    np.testing.assert_allclose(new.matrix, J.T @ F.matrix @ J, rtol=ALGEBRA_RTOL)
    assert new.center == pytest.approx({"omh2": om * h**2, "w": -1.0, "h": h}, rel=1e-15)


def test_getdist_round_trip(f: fc.Forecasts) -> None:
    g = fc.to_getdist(f.with_h_prior, "all")
    cov = np.linalg.inv(f.with_h_prior.matrix)
    idx = f.with_h_prior.index(fc.SHOWN)
    assert g.names == fc.SHOWN and g.label == "all"
    np.testing.assert_array_equal(g.means[0], [fc.FIDUCIAL[n] for n in fc.SHOWN])
    np.testing.assert_allclose(g.covs[0], cov[np.ix_(idx, idx)], rtol=ALGEBRA_RTOL)
    back = fl.InfoMatrix(np.linalg.inv(g.covs[0]), fc.SHOWN)
    np.testing.assert_allclose(back.matrix, _block(f.with_h_prior, fc.SHOWN), rtol=1e-9)


def test_triangle_plot(f: fc.Forecasts) -> None:
    fig = fc.triangle(f)
    assert len(fig.axes) == 6
    assert fig.axes[1].get_ylabel() == r"$w$" and fig.axes[-1].get_xlabel() == r"$h$"


# ----------------------------------------------------------------------------- Monte Carlo


@pytest.mark.slow  # 400 fits (the forecast itself is checked against J^T Sigma^-1 J above)
def test_monte_carlo_scatter_matches_fisher_covariance(f: fc.Forecasts) -> None:
    rows = np.vstack([fc.sn_rows(), fc.bao_rows()])
    estimates = fc.monte_carlo(rows, runs=fc.MC_RUNS)
    check = fc.mc_check(estimates, f.combined)
    assert np.all(np.abs(check.mean_z) <= Z_MC)
    assert np.all(np.abs(check.cov_z) <= Z_MC)
    # an independent reading of the same numbers: the sd ratio within 4 MC se (se ~ 1/sqrt(2R))
    assert np.all(np.abs(check.sd_ratio - 1) <= Z_MC / math.sqrt(2 * fc.MC_RUNS))


@pytest.mark.slow
def test_monte_carlo_sn_alone_shows_the_forecast_failing(f: fc.Forecasts) -> None:
    # 300 supernovae alone: the Omega_m - w degeneracy is curved, the MLE of Omega_m is biased low
    # and skewed, and the Fisher (Gaussian) forecast misses it (Wolz et al. 2012).
    check = fc.mc_check(fc.monte_carlo(fc.sn_rows(), runs=fc.MC_RUNS), f.sn)
    om = fc.NAMES.index("Om")
    assert check.mean_z[om] < -Z_MC
    assert check.skewness[om] < -1.0


# ----------------------------------------------------------------------------- the script


def test_script_runs_and_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fc.main(["--out", str(tmp_path), "--mc", "5"])
    out = capsys.readouterr().out
    assert "DETF FoM 1449.2" in out
    figure = tmp_path / "forecast_cosmology_triangle.svg"
    assert figure.read_text().lstrip().startswith("<?xml")
    with pytest.raises(SystemExit, match="--force"):
        fc.main(["--out", str(tmp_path), "--mc", "0"])
