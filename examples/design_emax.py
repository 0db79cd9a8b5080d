"""Optimal doses for a dose-finding trial: designs for the Emax model with fl.design.optimal.

The Emax model E(d) = E0 + Emax * d / (ED50 + d) describes the mean response to a dose
d in [0, DMAX] (Normal errors of known variance). Which doses should a trial use, and how
many patients at each? The script computes, with ``fl.design.optimal``:

- the locally D-optimal design at a guess of ED50 (closed form: 1/3 of the patients at 0,
  d* = ED50 * DMAX / (2 ED50 + DMAX) and DMAX; Dette, Kiss, Bevanda & Bretz 2010), on a grid
  of doses and moved off the grid with ``bounds=``; its equivalence-theorem certificate;
- the D-efficiency of a naive design, six equally spaced doses with equal allocation;
- exact designs for a trial of N_PATIENTS patients;
- a Bayesian D-optimal design that averages over a log-normal prior on ED50, with the
  expected criterion and its quadrature error;
- the Ds-optimal design for ED50 alone (closed form: weights 1/4, 1/2, 1/4 at the same doses).

It writes the sensitivity functions (the equivalence theorem) to DIR/design_emax_sensitivity.svg.

Run:  python examples/design_emax.py [--out DIR] [--force]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

import fisherlab as fl

# ----------------------------------------------------------------------------- the trial

# Doses in mg from placebo (0) to the highest safe dose; the pharmacy can make any whole mg.
DMAX = 150.0
DOSE_GRID = np.arange(0.0, DMAX + 1.0)  # 0, 1, ..., 150 mg
# The guess of the parameters before the trial: placebo response E0, maximal effect Emax (same
# units as the response) and ED50, the dose giving half the maximal effect (mg). The D-optimal
# design does not depend on E0, Emax or the noise level, only on ED50.
GUESS = {"E0": 2.0, "Emax": 10.0, "ED50": 25.0}
# Measurement noise (standard deviation of one patient's response; known).
SIGMA = 2.0
# The prior of the Bayesian design: ED50 log-normal with median 25 mg and log-sd 1 (so the
# central 90% of the prior lies between 4.8 and 130 mg).
PRIOR_LOG_SD = 1.0
# Gauss-Hermite nodes (in the log-normal's underlying normal) of the Bayesian design's expectation.
PRIOR_POINTS = 9
# Patients in the trial (exact designs).
N_PATIENTS = 30
# A naive design: six equally spaced doses, equal allocation.
NAIVE_DOSES = np.linspace(0.0, DMAX, 6)


def emax_mean(params: Any, dose: Any) -> Any:
    """The mean response E0 + Emax * d / (ED50 + d) (NumPy or JAX)."""
    return params["E0"] + params["Emax"] * dose / (params["ED50"] + dose)


def model(sigma: float = SIGMA) -> fl.Model:
    """One patient's response at dose ``x``: Normal(E(x), sigma^2) (``x`` is the dose, a scalar per row)."""
    return fl.Model(lambda params, x: fl.dist.Normal(emax_mean(params, x), sigma))


def d_star(ed50: float, dmax: float = DMAX) -> float:
    """The interior support point of the locally D-optimal design, ED50 * dmax / (2 ED50 + dmax)."""
    return ed50 * dmax / (2.0 * ed50 + dmax)


def prior(log_sd: float = PRIOR_LOG_SD, median: float = GUESS["ED50"]) -> dict[str, Any]:
    """The prior of the Bayesian design: ED50 ~ LogNormal(log median, log_sd^2)."""
    return {"ED50": fl.dist.LogNormal(math.log(median), log_sd)}


# ----------------------------------------------------------------------------- designs


def locally_optimal(continuous: bool = True, criterion: str = "D", **kwargs: Any) -> fl.design.Design:
    """The locally optimal approximate design at GUESS on DOSE_GRID (moved within [0, DMAX] if continuous)."""
    bounds = (0.0, DMAX) if continuous else None
    return fl.design.optimal(model(), GUESS, DOSE_GRID, criterion, bounds=bounds, **kwargs)


def exact(n: int = N_PATIENTS, continuous: bool = False) -> fl.design.Design:
    """The exact D-optimal design of ``n`` patients (on the 1 mg grid, or anywhere in [0, DMAX])."""
    bounds = (0.0, DMAX) if continuous else None
    return fl.design.optimal(model(), GUESS, DOSE_GRID, "D", n=n, bounds=bounds)


def bayesian(prior_points: int = PRIOR_POINTS) -> fl.design.Design:
    """The Bayesian D-optimal design: E[log det M] over the prior on ED50 (Gauss-Hermite in log ED50)."""
    return fl.design.optimal(
        model(),
        GUESS,
        DOSE_GRID,
        "D",
        bounds=(0.0, DMAX),
        prior=prior(),
        prior_method="quadrature",
        prior_points=prior_points,
    )


def expected_log_det(design: fl.design.Design, nodes: int = 80, log_sd: float = PRIOR_LOG_SD) -> float:
    """E[log det M(design; ED50)] over the prior by ``nodes``-point Gauss-Hermite quadrature in log ED50.

    log det M is smooth in log ED50, so Gauss-Hermite in the prior's normal variable converges
    fast: the reference for the criterion the design reports (its own quadrature is in the CDF).
    For a Normal response, I(d) = g g^T / sigma^2 with g the gradient of the mean (here by
    ``jax.jacfwd``, all nodes at once with ``jax.vmap``); the outermost nodes (ED50 of 1e-4 or
    1e6 mg, weight < 1e-20) make M numerically singular, their terms are finite and negligible.
    """
    import jax
    import jax.numpy as jnp

    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    names = design.info.names  # the order of the design's information: E0, ED50, Emax

    def log_det(ed50: jax.Array) -> jax.Array:
        def mean(theta: jax.Array) -> jax.Array:
            return emax_mean(dict(zip(names, theta, strict=True)), jnp.asarray(design.points))

        theta = jnp.array([GUESS[n] if n != "ED50" else ed50 for n in names])
        g = jax.jacfwd(mean)(theta) / SIGMA  # (m, P)
        m = jnp.einsum("j,jp,jq->pq", jnp.asarray(design.weights), g, g)
        return jnp.linalg.slogdet(m)[1]

    with jax.enable_x64(True):
        values = jax.vmap(log_det)(jnp.asarray(GUESS["ED50"] * np.exp(log_sd * z)))
        return float(w @ np.asarray(values))


def design_info(doses: np.ndarray, weights: np.ndarray, params: Any = GUESS) -> fl.InfoMatrix:
    """The information of one patient of the design (doses, weights): sum_j w_j I(d_j)."""
    points = fl.design.point_information(model(), params, np.asarray(doses, dtype=np.float64))
    return points.info(np.asarray(weights, dtype=np.float64))


def local_efficiency_under(ed50: float, local: fl.design.Design) -> float:
    """D-efficiency of the design ``local`` if ED50 is in truth ``ed50`` (vs the optimum there)."""
    truth = {**GUESS, "ED50": ed50}
    best = d_star(ed50)
    optimum = design_info(np.array([0.0, best, DMAX]), np.full(3, 1.0 / 3.0), truth)
    return fl.design.efficiency(design_info(local.points, local.weights, truth), optimum, "D")


# ----------------------------------------------------------------------------- figure


def plot(path: Path, designs: dict[str, tuple[fl.design.Design, float]]) -> None:
    """The sensitivity d(x) of each design over the 1 mg grid, its bound (dotted), its support (dots)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.2))
    ax = fig.add_subplot()
    for k, (label, (design, bound)) in enumerate(designs.items()):
        color = f"C{k}"
        ax.plot(DOSE_GRID, design.sensitivity, color=color, label=label)
        ax.axhline(bound, color=color, linestyle=":", linewidth=1)
        # the support: where the equivalence theorem says the curve touches the bound
        ax.plot(design.points, np.full(design.points.size, bound), "o", color=color)
    ax.set_xlabel("dose d (mg)")
    ax.set_ylabel("sensitivity d(x)")
    ax.set_title("Emax model: equivalence theorem (dotted: the bound; dots: the support)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)


# ----------------------------------------------------------------------------- main


def _table(design: fl.design.Design) -> str:
    rows = [f"    {d:8.4f} mg  weight {w:.6f}" for d, w in zip(design.points, design.weights, strict=True)]
    if design.counts is not None:
        rows = [f"{r}  patients {c}" for r, c in zip(rows, design.counts, strict=True)]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="design-emax", help="folder for the figure")
    parser.add_argument("--force", action="store_true", help="overwrite an existing figure")
    args = parser.parse_args(argv)
    figure = Path(args.out) / "design_emax_sensitivity.svg"
    if figure.exists() and not args.force:
        raise SystemExit(f"{figure} exists; pass --force to overwrite it, or --out DIR for another folder")

    print(f"Emax model, doses 0..{DMAX:g} mg, guess {GUESS}, noise sd {SIGMA:g}")
    t0 = time.perf_counter()
    grid = locally_optimal(continuous=False)
    t_grid = time.perf_counter() - t0
    t0 = time.perf_counter()
    local = locally_optimal()
    t_local = time.perf_counter() - t0
    print(f"\nlocally D-optimal design on the 1 mg grid ({t_grid:.1f} s):\n{_table(grid)}")
    print(f"moved off the grid, bounds=(0, {DMAX:g}) ({t_local:.1f} s):\n{_table(local)}")
    print(f"  closed form d* = ED50 dmax / (2 ED50 + dmax) = {d_star(GUESS['ED50']):.6f} mg")
    print(
        f"  max |dose - closed form| {np.max(np.abs(local.points - [0.0, d_star(GUESS['ED50']), DMAX])):.1e}"
    )
    print(
        f"  log det M = {local.value:.6f}; max sensitivity {local.max_sensitivity:.9f} "
        f"(bound {local.bound:g})"
    )
    print(f"  grid design's D-efficiency {fl.design.efficiency(grid.info, local.info):.6f}")
    se = local.se(N_PATIENTS)
    print(f"  Cramer-Rao se with {N_PATIENTS} patients: " + ", ".join(f"{k} {v:.3f}" for k, v in se.items()))

    naive = design_info(NAIVE_DOSES, np.full(NAIVE_DOSES.size, 1.0 / NAIVE_DOSES.size))
    eff_naive = fl.design.efficiency(naive, local.info, "D")
    print(f"\nnaive design, doses {NAIVE_DOSES.tolist()} mg, equal allocation:")
    print(f"  D-efficiency {eff_naive:.4f}: it needs {1 / eff_naive:.2f} times the patients of the optimum")

    t0 = time.perf_counter()
    trial = exact()
    trial_box = exact(continuous=True)
    t_exact = time.perf_counter() - t0
    print(f"\nexact D-optimal design, {N_PATIENTS} patients, 1 mg grid ({t_exact:.1f} s for both):")
    print(_table(trial))
    print(f"  D-efficiency vs the approximate optimum {fl.design.efficiency(trial.info, local.info):.6f}")
    print(f"  anywhere in [0, {DMAX:g}]:\n{_table(trial_box)}")

    t0 = time.perf_counter()
    bayes = bayesian()
    t_bayes = time.perf_counter() - t0
    print(
        f"\nBayesian D-optimal design, ED50 ~ LogNormal(log {GUESS['ED50']:g}, {PRIOR_LOG_SD:g}^2), "
        f"{PRIOR_POINTS} nodes ({t_bayes:.1f} s):"
    )
    print(_table(bayes))
    print(f"  max sensitivity {bayes.max_sensitivity:.9f} (bound {bayes.bound:g})")
    for ed50 in (5.0, 25.0, 125.0):
        eff_local = local_efficiency_under(ed50, local)
        eff_bayes = local_efficiency_under(ed50, bayes)
        print(
            f"  if ED50 = {ed50:4g} mg: D-efficiency of the local design {eff_local:.4f}, "
            f"Bayesian {eff_bayes:.4f}"
        )
    print("  prior nodes: E[log det M] +- value_error | 80-node Gauss-Hermite | actual error | inner doses")
    for k in (5, PRIOR_POINTS, 15):
        design = bayes if k == PRIOR_POINTS else bayesian(k)
        fine = expected_log_det(design)
        inner = ", ".join(f"{d:.3f}" for d in design.points[1:-1])
        print(
            f"  {k:3d}: {design.value:.5f} +- {design.value_error:.5f} | {fine:.5f} | "
            f"{design.value - fine:+.5f} | {inner}"
        )

    t0 = time.perf_counter()
    ds = locally_optimal(criterion="Ds", names=["ED50"])
    t_ds = time.perf_counter() - t0
    print(f"\nDs-optimal design for ED50 ({t_ds:.1f} s):\n{_table(ds)}")
    print(f"  max sensitivity {ds.max_sensitivity:.9f} (bound {ds.bound:g})")
    se_d, se_ds = local.se(N_PATIENTS)["ED50"], ds.se(N_PATIENTS)["ED50"]
    print(f"  se(ED50) with {N_PATIENTS} patients: {se_ds:.3f} mg (D-optimal design: {se_d:.3f})")
    eff_d_for_ed50 = fl.design.efficiency(local.info, ds.info, "Ds", names=["ED50"])
    eff_naive_for_ed50 = fl.design.efficiency(naive, ds.info, "Ds", names=["ED50"])
    print(f"  D-optimal design's Ds(ED50)-efficiency {eff_d_for_ed50:.6f}")

    print(f"  naive design's Ds(ED50)-efficiency {eff_naive_for_ed50:.4f}")

    figure.parent.mkdir(parents=True, exist_ok=True)
    plot(
        figure,
        {
            "D-optimal (local)": (local, local.bound),
            "D-optimal (Bayesian)": (bayes, bayes.bound),
            "Ds-optimal for ED50": (ds, ds.bound),
        },
    )
    print(f"\nwrote {figure}")


if __name__ == "__main__":
    main()
