"""Where to put the accelerometers: D-optimal sensor placement on a shear building with fl.design.optimal.

An n-storey shear building (floor masses m_1..m_n, storey stiffnesses k_i = theta_i * k_nominal)
vibrates in the modes of K phi = omega^2 M phi. A sensor on floor j records the building's
ambient vibration; modal analysis of that record gives the first MODES natural frequencies and
the amplitudes phi_r(j) of the first MODES mode shapes at floor j (mass-normalised, sign fixed),
each with Gaussian noise. Which floors should k sensors go on to learn the stiffness multipliers
theta best?

- the model is written in JAX (``jnp.linalg.eigh`` of M^{-1/2} K M^{-1/2}, so the mode shapes
  are differentiated exactly by autodiff);
- ``fl.design.optimal`` gives the D-optimal approximate design over the candidate floors (how
  the sensing effort should be shared) and exact designs for k sensors (repeats allowed: two
  sensors on one floor halve its noise variance);
- exhaustive enumeration of all k-sensor layouts, each scored with
  ``fl.design.point_information(...).info(counts)`` and ``fl.design.criterion``, is the check.

It writes the mode shapes and the design to DIR/design_sensor_placement.svg.

Run:  python examples/design_sensor_placement.py [--out DIR] [--force]
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import fisherlab as fl

# ----------------------------------------------------------------------------- the building

# A 5-storey building: floor masses (kg, first floor first; the roof is lighter) and the nominal
# storey stiffness (N/m); theta_i = k_i / K_NOMINAL are the unknowns, O(1).
MASSES = np.array([2.0e4, 2.0e4, 2.0e4, 2.0e4, 1.5e4])
K_NOMINAL = 2.5e7
# Mode shapes are mass-normalised in units of a reference mass: phi^T M phi = M_REF, so the
# amplitudes are dimensionless and O(1/sqrt(n)).
M_REF = 2.0e4
# The modes identified from each sensor's record.
MODES = 3
# Noise: each frequency to 0.5% (standard deviation), each mode-shape amplitude to 0.01 (about
# 2% of a mode's largest amplitude); known, the same for every floor.
FREQ_NOISE_REL = 0.005
SHAPE_NOISE = 0.01
# The candidate floors: 1 (above the ground) .. 5 (the roof).
FLOORS = np.arange(1.0, MASSES.size + 1.0)
# The design is made before the test, at the nominal building.
NOMINAL = np.ones(MASSES.size)
# A damaged building (storey 2 lost 20% of its stiffness): how much does the design move?
DAMAGED = np.array([1.0, 0.8, 1.05, 1.0, 0.95])
# Sensor counts compared with exhaustive enumeration.
SENSOR_COUNTS = (1, 2, 3, 4, 5)


def stiffness_matrix(k: jax.Array) -> jax.Array:
    """Tridiagonal stiffness matrix: K[i, i] = k_i + k_{i+1} (k_{n+1} = 0), K[i, i+1] = -k_{i+1}."""
    upper = jnp.append(k[1:], 0.0)
    return jnp.diag(k + upper) - jnp.diag(k[1:], 1) - jnp.diag(k[1:], -1)


def modal(
    theta: jax.Array, masses: np.ndarray = MASSES, k_nominal: float = K_NOMINAL
) -> tuple[jax.Array, jax.Array]:
    """Frequencies (Hz, ascending, ``(n,)``) and mode shapes (``(n floors, n modes)``), in JAX.

    M is diagonal, so K phi = omega^2 M phi becomes the symmetric problem A psi = omega^2 psi
    with A = M^{-1/2} K M^{-1/2} and phi = M^{-1/2} psi; ``jnp.linalg.eigh`` returns orthonormal
    psi, hence phi^T M phi = 1, scaled here to phi^T M phi = M_REF. An eigenvector's sign is
    arbitrary (and may flip between nearby theta), so each mode is signed to make its roof
    amplitude positive (never zero for a shear building). Eigenvalues are simple, so autodiff
    through ``eigh`` is exact.
    """
    w = 1.0 / jnp.sqrt(jnp.asarray(masses))
    lam, psi = jnp.linalg.eigh(w[:, None] * stiffness_matrix(k_nominal * theta) * w[None, :])
    phi = math.sqrt(M_REF) * w[:, None] * psi
    phi = phi * jnp.sign(phi[-1])[None, :]
    return jnp.sqrt(lam) / (2.0 * jnp.pi), phi


def noise(theta: np.ndarray = NOMINAL) -> tuple[np.ndarray, np.ndarray]:
    """The known noise sds: ``(mode-shape amplitudes (MODES,), frequencies (MODES,))``."""
    with jax.enable_x64(True):
        f, _ = modal(jnp.asarray(theta, dtype=jnp.float64))
    return np.full(MODES, SHAPE_NOISE), FREQ_NOISE_REL * np.asarray(f[:MODES])


def sensor_model(frequencies: bool = True) -> fl.Model:
    """What one sensor on floor ``x`` measures: MODES amplitudes (+ MODES frequencies), independent Normals.

    ``x`` holds the floor numbers of a batch of rows (shape ``(B,)``); each row is a vector
    observation, so the distribution has batch shape ``(B, MODES)`` or ``(B, 2 MODES)``.
    """
    sd_shape, sd_freq = (jnp.asarray(v) for v in noise())

    def fn(params: Any, x: jax.Array) -> Any:
        f, phi = modal(params["theta"])
        floor = x.astype(jnp.int32) - 1  # fisherlab hands covariates over as float64
        amp = phi[floor, :MODES]  # (B, MODES)
        loc, scale = amp, jnp.broadcast_to(sd_shape, amp.shape)
        if frequencies:
            loc = jnp.concatenate([loc, jnp.broadcast_to(f[:MODES], amp.shape)], axis=-1)
            scale = jnp.concatenate([scale, jnp.broadcast_to(sd_freq, amp.shape)], axis=-1)
        return fl.dist.Normal(loc, scale)

    return fl.Model(fn)


def params_at(theta: np.ndarray) -> dict[str, np.ndarray]:
    return {"theta": np.asarray(theta, dtype=np.float64)}


# ----------------------------------------------------------------------------- designs


def approximate(theta: np.ndarray = NOMINAL) -> fl.design.Design:
    """The D-optimal approximate design over the floors: the share of sensing effort per floor."""
    return fl.design.optimal(sensor_model(), params_at(theta), FLOORS, "D")


def exact(k: int, theta: np.ndarray = NOMINAL) -> fl.design.Design:
    """The D-optimal design of ``k`` sensors (several on one floor allowed)."""
    return fl.design.optimal(sensor_model(), params_at(theta), FLOORS, "D", n=k)


class Layout(NamedTuple):
    """One k-sensor layout: its floors (with repeats), log det of the information of k sensors."""

    floors: tuple[int, ...]
    log_det: float


def enumerate_layouts(k: int, repeats: bool, theta: np.ndarray = NOMINAL) -> list[Layout]:
    """Every layout of ``k`` sensors, best first: log det of the total information sum_j n_j I(floor j).

    ``repeats=False``: distinct floors (C(n, k) layouts); ``True``: any floors, repeats allowed
    (C(n + k - 1, k) layouts), the set ``fl.design.optimal(..., n=k)`` searches.
    """
    points = fl.design.point_information(sensor_model(), params_at(theta), FLOORS)
    combos = (
        itertools.combinations_with_replacement(range(FLOORS.size), k)
        if repeats
        else itertools.combinations(range(FLOORS.size), k)
    )
    layouts = []
    for combo in combos:
        counts = np.bincount(np.array(combo, dtype=int), minlength=FLOORS.size).astype(np.float64)
        try:
            value = fl.design.criterion(points.info(counts), "D")
        except fl.SingularInformationError:
            value = -math.inf
        layouts.append(Layout(tuple(int(FLOORS[i]) for i in combo), value))
    return sorted(layouts, key=lambda layout: -layout.log_det)


def per_sensor_efficiency(log_det_total: float, k: int, best: fl.design.Design) -> float:
    """Per-sensor D-efficiency of a k-sensor layout vs the approximate optimum, (det(F/k) / det M*)^(1/P)."""
    p = best.info.matrix.shape[0]
    return math.exp((log_det_total - p * math.log(k) - best.value) / p)


# ----------------------------------------------------------------------------- figure


def plot(path: Path, design: fl.design.Design) -> None:
    """The first MODES mode shapes; the design's weight per floor; its sensitivity per floor and bound."""
    from matplotlib.figure import Figure

    with jax.enable_x64(True):
        phi = np.asarray(modal(jnp.asarray(NOMINAL))[1])
    fig = Figure(figsize=(11.0, 4.0))
    ax1, ax2, ax3 = fig.subplots(1, 3, sharey=True)
    heights = np.concatenate([[0.0], FLOORS])
    for r in range(MODES):
        ax1.plot(np.concatenate([[0.0], phi[:, r]]), heights, "o-", label=f"mode {r + 1}")
    ax1.axvline(0.0, color="0.7", linewidth=0.8)
    ax1.set_xlabel("amplitude (phi^T M phi = M_REF)")
    ax1.set_ylabel("floor (0 = ground)")
    ax1.set_title("mode shapes, nominal building")
    ax1.legend(fontsize=8)
    weights = np.zeros(FLOORS.size)
    weights[np.searchsorted(FLOORS, design.points)] = design.weights
    ax2.barh(FLOORS, weights, color="C0")
    ax2.set_xlabel("weight (share of the sensors)")
    ax2.set_title("D-optimal approximate design")
    ax3.plot(design.sensitivity, FLOORS, "s", color="C3")
    ax3.axvline(design.bound, color="C3", linestyle=":", label=f"bound P = {design.bound:g}")
    ax3.set_xlabel("sensitivity tr(M^-1 I(floor))")
    ax3.set_title("equivalence theorem")
    ax3.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="design-sensor-placement", help="folder for the figure")
    parser.add_argument("--force", action="store_true", help="overwrite an existing figure")
    args = parser.parse_args(argv)
    figure = Path(args.out) / "design_sensor_placement.svg"
    if figure.exists() and not args.force:
        raise SystemExit(f"{figure} exists; pass --force to overwrite it, or --out DIR for another folder")

    n = MASSES.size
    with jax.enable_x64(True):
        f, phi = modal(jnp.asarray(NOMINAL))
    _, sd_freq = noise()
    print(f"{n}-storey shear building, masses {MASSES.tolist()} kg, k_nominal {K_NOMINAL:.3g} N/m")
    print(f"frequencies {np.round(np.asarray(f), 3).tolist()} Hz; first {MODES} modes measured")
    print(f"mode shapes (rows: floors 1..{n}; phi^T M phi = {M_REF:g} kg):")
    print(np.array2string(np.asarray(phi[:, :MODES]), precision=4))
    print(f"noise sd: amplitudes {SHAPE_NOISE:g}, frequencies {np.round(sd_freq, 5).tolist()} Hz")

    try:
        fl.design.optimal(sensor_model(frequencies=False), params_at(NOMINAL), FLOORS, "D")
    except fl.SingularInformationError as exc:
        print(f"\nmode shapes alone (no frequencies): {exc}")

    t0 = time.perf_counter()
    best = approximate()
    t_best = time.perf_counter() - t0
    print(f"\nD-optimal approximate design ({t_best:.1f} s):")
    for floor, w in zip(best.points, best.weights, strict=True):
        print(f"  floor {floor:g}: weight {w:.4f}")
    print(f"  sensitivities (bound {best.bound:g}): {np.round(best.sensitivity, 4).tolist()}")
    print(f"  log det M = {best.value:.6f} (one sensor's worth of information)")
    damaged = approximate(DAMAGED)
    print(
        f"  at the damaged building {DAMAGED.tolist()}: weights {np.round(damaged.weights, 4).tolist()} "
        f"on floors "
        f"{damaged.points.tolist()}"
    )

    print("\nk sensors: fl.design.optimal(n=k) | exhaustive (repeats allowed) | best on distinct floors")
    for k in SENSOR_COUNTS:
        t0 = time.perf_counter()
        design = exact(k)
        t_k = time.perf_counter() - t0
        floors = tuple(int(p) for p, c in zip(design.points, design.counts, strict=True) for _ in range(c))
        total = design.value + best.info.matrix.shape[0] * math.log(k)
        multi = enumerate_layouts(k, repeats=True)
        distinct = enumerate_layouts(k, repeats=False)
        runner_up = distinct[1] if len(distinct) > 1 else None
        print(
            f"  k={k}: {floors} log det {total:.4f} ({t_k:.1f} s) | "
            f"{multi[0].floors} {multi[0].log_det:.4f} | "
            f"{distinct[0].floors} {distinct[0].log_det:.4f}, efficiency "
            f"{per_sensor_efficiency(distinct[0].log_det, k, best):.4f}"
            + (f" (next {runner_up.floors} {runner_up.log_det:.4f})" if runner_up else "")
        )
    top = enumerate_layouts(2, repeats=False)
    roof = next(layout for layout in top if layout.floors == (4, 5))
    rank = [layout.floors for layout in top].index((4, 5)) + 1
    print(
        f"  the two top floors (4, 5): log det {roof.log_det:.4f}, rank {rank} of {len(top)}, efficiency "
        f"{per_sensor_efficiency(roof.log_det, 2, best):.4f}"
    )

    figure.parent.mkdir(parents=True, exist_ok=True)
    plot(figure, best)
    print(f"\nwrote {figure}")


if __name__ == "__main__":
    main()
