"""The sensor-placement tutorial (examples/design_sensor_placement.py) against independent oracles.

- the JAX modal model (frequencies and mass-normalised, signed mode shapes) against SciPy's
  generalised eigen-solver (examples/shear_building.py's simulator and ``scipy.linalg.eigh``),
  the closed form of a uniform building, and the eigen-equations themselves;
- its autodiff Jacobian against Richardson-extrapolated central differences of the SciPy
  model, and fisherlab's per-floor information against J^T Sigma^-1 J built from them;
- the D-optimal approximate design's equivalence theorem recomputed with NumPy;
- the exact k-sensor designs of ``fl.design.optimal`` against exhaustive enumeration of every
  layout (NumPy log det of the oracle information);
- the mode-shapes-only experiment: singular, along the uniform scaling of all stiffnesses.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

import fisherlab as fl


def _load(name: str) -> object:
    path = Path(__file__).resolve().parents[1] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


sp = _load("design_sensor_placement")
sb = _load("shear_building")  # its SciPy simulator is the frequency oracle

# LAPACK's symmetric eigen-solver: eigenvalues to a few eps * ||A||, eigenvectors of well
# separated eigenvalues (gaps > 10% here) to ~eps * ||A|| / gap; 1e-11 leaves two digits.
EIG_RTOL = 1e-11
# Richardson-extrapolated central differences (steps 1e-3 and 5e-4 on O(1) theta): truncation
# O(h^4) ~ 1e-12 and rounding ~ eps / h ~ 1e-13 of the largest derivative; 1e-8 is sharp enough
# to catch a missed normalisation or sign (O(1) errors).
JAC_RTOL = 1e-8
# Information J^T Sigma^-1 J from that Jacobian: the same relative accuracy, squared terms.
INFO_RTOL = 1e-7
# Equivalence theorem: the design's certificate holds to tol = 1e-9 (relative); our matrices
# differ from fisherlab's by INFO_RTOL, which moves tr(M^-1 I) by ~cond * 1e-7 relative.
SENS_RTOL = 1e-5
# log det of the k-sensor informations: the oracle's relative error INFO_RTOL on M changes
# log det by about P * INFO_RTOL.
LOGDET_ATOL = 1e-5


# ----------------------------------------------------------------------------- SciPy oracle


def scipy_modal(theta: np.ndarray, masses: np.ndarray = sp.MASSES) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies and mode shapes by ``scipy.linalg.eigh(K, M)``: phi^T M phi = M_REF, roof positive."""
    stiffness = sb.stiffness_matrix(sp.K_NOMINAL * np.asarray(theta, dtype=np.float64))
    lam, phi = scipy.linalg.eigh(stiffness, np.diag(masses))
    phi = math.sqrt(sp.M_REF) * phi * np.sign(phi[-1])[None, :]
    return np.sqrt(lam) / (2 * np.pi), phi


def observation(theta: np.ndarray) -> np.ndarray:
    """Everything the sensors can measure, flattened: (floors x MODES amplitudes, MODES frequencies)."""
    f, phi = scipy_modal(theta)
    return np.concatenate([phi[:, : sp.MODES].ravel(), f[: sp.MODES]])


def richardson_jacobian(fun, theta: np.ndarray, h: float = 1e-3) -> np.ndarray:
    """d fun / d theta by central differences at steps h and h/2, Richardson-extrapolated (O(h^4))."""

    def central(step: float) -> np.ndarray:
        cols = []
        for i in range(theta.size):
            e = np.zeros(theta.size)
            e[i] = step
            cols.append((fun(theta + e) - fun(theta - e)) / (2 * step))
        return np.stack(cols, axis=-1)

    return (4 * central(h / 2) - central(h)) / 3


def oracle_point_info(theta: np.ndarray = sp.NOMINAL) -> np.ndarray:
    """I(floor j) = J_j^T Sigma^-1 J_j, ``(floors, P, P)``, from the finite-difference Jacobian."""
    jac = richardson_jacobian(observation, theta)
    n, modes = sp.MASSES.size, sp.MODES
    shape_jac = jac[: n * modes].reshape(n, modes, -1)
    freq_jac = jac[n * modes :]
    sd_shape, sd_freq = sp.noise(theta)
    freq_info = freq_jac.T @ (freq_jac / sd_freq[:, None] ** 2)
    return np.einsum("jrp,r,jrq->jpq", shape_jac, 1 / sd_shape**2, shape_jac) + freq_info[None]


@pytest.fixture(scope="module")
def oracle() -> np.ndarray:
    return oracle_point_info()


@pytest.fixture(scope="module")
def best() -> fl.design.Design:
    return sp.approximate()


# ----------------------------------------------------------------------------- the model


def test_frequencies_match_scipy_and_closed_form() -> None:
    theta = np.array([1.1, 0.8, 1.05, 0.9, 1.2])
    with jax.enable_x64(True):
        f, _ = sp.modal(jnp.asarray(theta))
    np.testing.assert_allclose(np.asarray(f), sb.frequencies(theta, sp.MASSES, sp.K_NOMINAL), rtol=EIG_RTOL)
    # uniform building: omega_r = 2 sqrt(k/m) sin((2r - 1) pi / (2 (2n + 1)))
    n, m = 5, 2.0e4
    r = np.arange(1, n + 1)
    omega = 2 * np.sqrt(sp.K_NOMINAL / m) * np.sin((2 * r - 1) * np.pi / (2 * (2 * n + 1)))
    with jax.enable_x64(True):
        f_uniform, _ = sp.modal(jnp.ones(n), np.full(n, m))
    np.testing.assert_allclose(np.asarray(f_uniform), omega / (2 * np.pi), rtol=EIG_RTOL)


def test_mode_shapes_solve_the_eigenproblem_and_are_normalised() -> None:
    theta = np.array([1.1, 0.8, 1.05, 0.9, 1.2])
    with jax.enable_x64(True):
        f, phi = (np.asarray(v) for v in sp.modal(jnp.asarray(theta)))
    stiffness = sb.stiffness_matrix(sp.K_NOMINAL * theta)
    mass = np.diag(sp.MASSES)
    omega2 = (2 * np.pi * f) ** 2
    residual = stiffness @ phi - mass @ phi * omega2[None, :]
    assert np.max(np.abs(residual)) <= EIG_RTOL * np.max(np.abs(stiffness @ phi))
    np.testing.assert_allclose(phi.T @ mass @ phi, sp.M_REF * np.eye(5), atol=EIG_RTOL * sp.M_REF)
    assert np.all(phi[-1] > 0)
    np.testing.assert_allclose(phi, scipy_modal(theta)[1], atol=EIG_RTOL)


def test_autodiff_jacobian_matches_finite_differences() -> None:
    theta = np.array([1.1, 0.8, 1.05, 0.9, 1.2])

    def jax_observation(t: jax.Array) -> jax.Array:
        f, phi = sp.modal(t)
        return jnp.concatenate([phi[:, : sp.MODES].ravel(), f[: sp.MODES]])

    with jax.enable_x64(True):
        jac = np.asarray(jax.jacfwd(jax_observation)(jnp.asarray(theta)))
    fd = richardson_jacobian(observation, theta)
    assert np.max(np.abs(jac - fd)) <= JAC_RTOL * np.max(np.abs(fd))


def test_point_information_matches_jacobian_oracle(oracle: np.ndarray) -> None:
    points = fl.design.point_information(sp.sensor_model(), sp.params_at(sp.NOMINAL), sp.FLOORS)
    assert points.names == [f"theta[{i}]" for i in range(5)]
    got = points.matrices()
    assert np.max(np.abs(got - oracle)) <= INFO_RTOL * np.max(np.abs(oracle))


def test_mode_shapes_alone_cannot_fix_the_stiffness_scale() -> None:
    # K -> c K leaves the mass-normalised mode shapes unchanged: sum(theta) is not identified
    with pytest.raises(fl.SingularInformationError, match="not identified") as info:
        fl.design.optimal(sp.sensor_model(frequencies=False), sp.params_at(sp.NOMINAL), sp.FLOORS)
    direction = np.array([info.value.direction[f"theta[{i}]"] for i in range(5)])
    np.testing.assert_allclose(np.abs(direction), np.full(5, 1 / math.sqrt(5)), atol=1e-6)


# ----------------------------------------------------------------------------- designs


def test_approximate_design_equivalence_theorem(best: fl.design.Design, oracle: np.ndarray) -> None:
    assert best.weights.sum() == pytest.approx(1.0, abs=1e-12)
    w = np.zeros(sp.FLOORS.size)
    w[np.searchsorted(sp.FLOORS, best.points)] = best.weights
    m = np.einsum("j,jpq->pq", w, oracle)
    sens = np.einsum("pq,jqp->j", np.linalg.inv(m), oracle)
    p = oracle.shape[1]
    assert best.bound == p
    assert sens.max() <= p * (1 + SENS_RTOL)
    np.testing.assert_allclose(sens[w > 0], p, rtol=SENS_RTOL)
    np.testing.assert_allclose(best.sensitivity, sens, rtol=SENS_RTOL)
    assert best.value == pytest.approx(np.linalg.slogdet(m)[1], abs=LOGDET_ATOL)
    # the tutorial's design: floors 1-4, the roof unused
    np.testing.assert_array_equal(best.points, [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(best.weights, [0.4807, 0.1765, 0.0553, 0.2875], atol=1e-4)


def _oracle_best(oracle: np.ndarray, k: int, repeats: bool) -> tuple[tuple[int, ...], float]:
    combos = (
        itertools.combinations_with_replacement(range(len(oracle)), k)
        if repeats
        else itertools.combinations(range(len(oracle)), k)
    )
    scored = []
    for combo in combos:
        sign, logdet = np.linalg.slogdet(oracle[list(combo)].sum(axis=0))
        scored.append((logdet if sign > 0 else -math.inf, tuple(int(sp.FLOORS[i]) for i in combo)))
    value, floors = max(scored)
    return floors, value


@pytest.mark.parametrize("k", sp.SENSOR_COUNTS)
def test_exact_designs_match_exhaustive_enumeration(k: int, oracle: np.ndarray) -> None:
    design = sp.exact(k)
    assert design.n == k
    floors = tuple(int(p) for p, c in zip(design.points, design.counts, strict=True) for _ in range(c))
    total = design.value + oracle.shape[1] * math.log(k)  # value is log det of (total / k)
    best_floors, best_value = _oracle_best(oracle, k, repeats=True)
    assert total == pytest.approx(best_value, abs=LOGDET_ATOL)
    assert floors == best_floors
    # the script's enumeration (fisherlab's point information) agrees with the oracle's
    for repeats in (True, False):
        layouts = sp.enumerate_layouts(k, repeats=repeats)
        oracle_floors, oracle_value = _oracle_best(oracle, k, repeats=repeats)
        assert layouts[0].floors == oracle_floors
        assert layouts[0].log_det == pytest.approx(oracle_value, abs=LOGDET_ATOL)
        assert len(layouts) == math.comb(5 + k - 1 if repeats else 5, k)


def test_per_sensor_efficiency(best: fl.design.Design, oracle: np.ndarray) -> None:
    floors, value = _oracle_best(oracle, 2, repeats=False)
    assert floors == (1, 4)
    w = np.zeros(sp.FLOORS.size)
    w[np.searchsorted(sp.FLOORS, best.points)] = best.weights
    m_best = np.einsum("j,jpq->pq", w, oracle)
    m_pair = oracle[[0, 3]].sum(axis=0) / 2
    expected = (np.linalg.det(m_pair) / np.linalg.det(m_best)) ** (1 / 5)
    assert sp.per_sensor_efficiency(value, 2, best) == pytest.approx(expected, rel=1e-6)
    assert expected <= 1.0  # no exact design beats the approximate optimum


# ----------------------------------------------------------------------------- the script


@pytest.mark.slow  # the script's numbers are checked above, function by function
def test_script_runs_and_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sp.main(["--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "k=2: (1, 4)" in out
    figure = tmp_path / "design_sensor_placement.svg"
    assert figure.read_text().lstrip().startswith("<?xml")
    with pytest.raises(SystemExit, match="--force"):
        sp.main(["--out", str(tmp_path)])
