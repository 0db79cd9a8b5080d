"""A Fisher forecast for dark energy: supernovae, BAO and their combination, with the forecast algebra.

Flat wCDM has a matter density Omega_m, a constant dark-energy equation of state w and the Hubble
constant H0 = 100 h km/s/Mpc. Two planned experiments measure distances:

- a supernova survey: distance moduli mu(z_i) = 5 log10(D_L(z_i) / 10 pc) of SN_COUNT supernovae
  with 0.15 mag scatter each (absolute magnitude calibrated, so h enters through D_L ~ 1/h);
- a BAO survey: the transverse and radial BAO scales D_M(z)/r_d and D_H(z)/r_d at five effective
  redshifts, with given percent errors (r_d, the sound horizon, fixed).

The luminosity distance is D_L = (1 + z) (c/H0) int_0^z dz'/E(z'), with the integral by a fixed
GL_ORDER-point Gauss-Legendre rule in JAX, so fisherlab differentiates it exactly. The script
computes each experiment's Fisher matrix (``fl.fisher``), adds a Gaussian prior on h
(``with_prior``), combines the experiments (``+`` and ``combine``), marginalises to (Omega_m, w),
the DETF figure of merit, the expected information gain, a triangle plot (``fl.plot.triangle``),
the GetDist export, a change of parameters to (Omega_m h^2, w, h) (``reparametrize``), and a
Monte-Carlo check: data sets simulated at the fiducial cosmology and fitted with ``fl.fit``.

It writes the triangle plot to DIR/forecast_cosmology_triangle.svg.

Run:  python examples/forecast_cosmology.py [--out DIR] [--force] [--mc RUNS]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import fisherlab as fl

# ----------------------------------------------------------------------------- cosmology

C_KM_S = 299792.458  # speed of light, km/s
# The fiducial cosmology (Planck-like).
FIDUCIAL = {"Om": 0.3, "w": -1.0, "h": 0.7}
# Gauss-Legendre nodes of the distance integral: 1/E(z) is analytic on [0, z], so the rule
# converges geometrically; 64 nodes are exact to float64 up to z ~ 3 (the tests check 1e-12).
GL_ORDER = 64
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(GL_ORDER)
# The sound horizon at the drag epoch (Mpc), taken as known (from the CMB).
R_DRAG = 147.09

# Observable kinds (the second column of a row of x).
DM, DH, MU = 0, 1, 2

# The supernova survey: SN_COUNT supernovae spread evenly over SN_Z, 0.15 mag each.
SN_COUNT = 300
SN_Z = (0.02, 1.2)
SN_SIGMA = 0.15
# The BAO survey: effective redshifts and the percent errors of D_M/r_d and D_H/r_d (DESI-like).
BAO_Z = np.array([0.51, 0.71, 0.93, 1.32, 2.33])
BAO_DM_ERROR = np.array([0.020, 0.015, 0.012, 0.015, 0.020])
BAO_DH_ERROR = np.array([0.030, 0.025, 0.020, 0.025, 0.020])
# A Gaussian prior on h from the distance ladder (sigma).
H_PRIOR = 0.01
# The prior against which the information gain is measured (independent Gaussians, sigma).
BROAD_PRIOR = {"Om": 0.1, "w": 0.5, "h": 0.1}
# Monte-Carlo runs of the fit check (each an fl.fit of a simulated data set) and their seed.
MC_RUNS = 400
MC_SEED = 20250101
# Names in fisherlab's order (dict keys sorted) and the order in which the tutorial shows them.
NAMES = ["Om", "h", "w"]
SHOWN = ["Om", "w", "h"]
LABELS = {"Om": r"$\Omega_m$", "w": r"$w$", "h": r"$h$", "omh2": r"$\Omega_m h^2$"}


def hubble_e(z: Any, om: Any, w: Any) -> Any:
    """E(z) = H(z)/H0 = sqrt(Om (1+z)^3 + (1 - Om) (1+z)^{3(1+w)}) (flat; radiation neglected)."""
    a = 1.0 + z
    return jnp.sqrt(om * a**3 + (1.0 - om) * a ** (3.0 * (1.0 + w)))


def comoving_distance(z: Any, om: Any, w: Any, h: Any) -> Any:
    """D_M(z) = (c/H0) int_0^z dz'/E(z') in Mpc, by GL_ORDER-point Gauss-Legendre on [0, z]."""
    z = jnp.asarray(z)
    nodes = 0.5 * z[..., None] * (jnp.asarray(_GL_NODES) + 1.0)  # (..., GL_ORDER)
    integral = 0.5 * z * jnp.sum(jnp.asarray(_GL_WEIGHTS) / hubble_e(nodes, om, w), axis=-1)
    return C_KM_S / (100.0 * h) * integral


def distance_modulus(z: Any, om: Any, w: Any, h: Any) -> Any:
    """mu(z) = 5 log10(D_L / Mpc) + 25, D_L = (1 + z) D_M."""
    return 5.0 * jnp.log10((1.0 + z) * comoving_distance(z, om, w, h)) + 25.0


def observable(params: Any, z: Any, kind: Any) -> Any:
    """The mean of a measurement of ``kind`` at redshift ``z``: D_M/r_d, D_H/r_d = c/(H(z) r_d), or mu."""
    om, w, h = params["Om"], params["w"], params["h"]
    dm = comoving_distance(z, om, w, h)
    dh = C_KM_S / (100.0 * h * hubble_e(z, om, w))
    mu = 5.0 * jnp.log10((1.0 + z) * dm) + 25.0
    return jnp.where(kind == DM, dm / R_DRAG, jnp.where(kind == DH, dh / R_DRAG, mu))


def model() -> fl.Model:
    """One measurement per row of x = (z, kind, sigma): Normal(observable, sigma^2), sigma known."""
    return fl.Model(lambda params, x: fl.dist.Normal(observable(params, x[..., 0], x[..., 1]), x[..., 2]))


def fiducial_values(z: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """The observables at the fiducial cosmology (NumPy)."""
    with jax.enable_x64(True):
        params = {k: jnp.asarray(v) for k, v in FIDUCIAL.items()}
        return np.asarray(observable(params, jnp.asarray(z), jnp.asarray(kind)))


def sn_rows(count: int = SN_COUNT) -> np.ndarray:
    """The supernova survey's rows (z, MU, sigma), ``(count, 3)``."""
    z = np.linspace(*SN_Z, count)
    return np.column_stack([z, np.full(count, MU), np.full(count, SN_SIGMA)])


def bao_rows() -> np.ndarray:
    """The BAO survey's rows (z, DM or DH, sigma = percent error x fiducial value), ``(10, 3)``."""
    kinds = np.concatenate([np.full(BAO_Z.size, DM), np.full(BAO_Z.size, DH)])
    z = np.concatenate([BAO_Z, BAO_Z])
    sigma = np.concatenate([BAO_DM_ERROR, BAO_DH_ERROR]) * fiducial_values(z, kinds)
    return np.column_stack([z, kinds, sigma])


# ----------------------------------------------------------------------------- forecasts


class Forecasts(NamedTuple):
    """The information matrices of the forecast (all over NAMES, centered on FIDUCIAL)."""

    sn: fl.InfoMatrix
    bao: fl.InfoMatrix
    combined: fl.InfoMatrix  # sn + bao
    with_h_prior: fl.InfoMatrix  # combined + the Gaussian prior on h


def forecasts() -> Forecasts:
    """Each experiment's Fisher matrix at the fiducial cosmology, their sum, and the h prior."""
    sn = fl.fisher(model(), FIDUCIAL, sn_rows())
    bao = fl.fisher(model(), FIDUCIAL, bao_rows())
    combined = sn + bao
    return Forecasts(sn, bao, combined, combined.with_prior({"h": H_PRIOR}))


def dark_energy_fom(info: fl.InfoMatrix) -> float:
    """The DETF figure of merit on (Omega_m, w): 1/sqrt(det C), C the marginal covariance."""
    return info.figure_of_merit(["Om", "w"], detf=True)


def to_omh2(params: Any) -> dict[str, Any]:
    """The physical matter density omega_m = Omega_m h^2, keeping w and h."""
    return {"omh2": params["Om"] * params["h"] ** 2, "w": params["w"], "h": params["h"]}


def to_getdist(info: fl.InfoMatrix, label: str) -> Any:
    """The forecast as a GetDist GaussianND over SHOWN (mean FIDUCIAL, covariance F^-1 marginalised)."""
    labels = {k: v.strip("$") for k, v in LABELS.items() if k in SHOWN}
    return info.to_getdist(FIDUCIAL, names=SHOWN, labels=labels, label=label)


def triangle(f: Forecasts) -> Any:
    """The triangle plot of SN, BAO and SN + BAO + h prior (1 and 2 sigma regions)."""
    return fl.plot.triangle(
        [f.sn, f.bao, f.with_h_prior],
        center=FIDUCIAL,
        names=SHOWN,
        labels={n: LABELS[n] for n in SHOWN},
        legend=["SN", "BAO", f"SN + BAO + h prior ({H_PRIOR:g})"],
    )


# ----------------------------------------------------------------------------- Monte Carlo


def simulate(rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One data set at the fiducial cosmology: observable + sigma * N(0, 1) for each row."""
    return fiducial_values(rows[:, 0], rows[:, 1]) + rows[:, 2] * rng.standard_normal(rows.shape[0])


def monte_carlo(rows: np.ndarray, runs: int = MC_RUNS, seed: int = MC_SEED) -> np.ndarray:
    """Maximum-likelihood estimates of ``runs`` simulated data sets, ``(runs, 3)`` in NAMES order."""
    rng = np.random.default_rng(seed)
    m = model()
    estimates = np.empty((runs, len(NAMES)))
    for i in range(runs):
        res = fl.fit(m, simulate(rows, rng), rows, init=FIDUCIAL)
        if not res.converged:
            raise fl.NotConvergedError(f"Monte-Carlo fit {i} did not converge")
        estimates[i] = [float(res.params[n]) for n in NAMES]
    return estimates


class MCCheck(NamedTuple):
    """The scatter of the estimates against the Fisher covariance, in Monte-Carlo standard errors."""

    sd_ratio: np.ndarray  # MC sd / Fisher sd, per parameter (NAMES order)
    mean_z: np.ndarray  # (mean - fiducial) / (Fisher sd / sqrt(R))
    cov_z: np.ndarray  # (S_ij - C_ij) / sqrt((C_ii C_jj + C_ij^2) / R), Gaussian-theory MC se
    skewness: np.ndarray  # of each parameter's estimates (0 for a Gaussian)


def mc_check(estimates: np.ndarray, info: fl.InfoMatrix) -> MCCheck:
    """Compare the estimates' mean and covariance with the fiducial and ``info``'s inverse.

    For R draws of a Gaussian with covariance C, the sample covariance S has
    Var(S_ij) = (C_ii C_jj + C_ij^2) / R (to O(1/R^2)), and the mean has Var = C_ii / R.
    """
    runs = estimates.shape[0]
    cov = info.cov().matrix[np.ix_(info.index(NAMES), info.index(NAMES))]
    sd = np.sqrt(np.diag(cov))
    truth = np.array([FIDUCIAL[n] for n in NAMES])
    sample = np.cov(estimates.T)
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / runs)
    centred = (estimates - estimates.mean(axis=0)) / estimates.std(axis=0)
    return MCCheck(
        sd_ratio=np.sqrt(np.diag(sample)) / sd,
        mean_z=(estimates.mean(axis=0) - truth) / (sd / math.sqrt(runs)),
        cov_z=(sample - cov) / se_cov,
        skewness=np.mean(centred**3, axis=0),
    )


# ----------------------------------------------------------------------------- main


def _se(info: fl.InfoMatrix) -> str:
    se = info.se()
    return ", ".join(f"{n} {se[n]:.4f}" for n in [*SHOWN, "omh2"] if n in se)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="forecast-cosmology", help="folder for the figure")
    parser.add_argument("--force", action="store_true", help="overwrite an existing figure")
    parser.add_argument("--mc", type=int, default=MC_RUNS, help="Monte-Carlo runs (0: skip)")
    args = parser.parse_args(argv)
    figure = Path(args.out) / "forecast_cosmology_triangle.svg"
    if figure.exists() and not args.force:
        raise SystemExit(f"{figure} exists; pass --force to overwrite it, or --out DIR for another folder")

    print(f"flat wCDM, fiducial {FIDUCIAL}")
    print(
        f"SN: {SN_COUNT} supernovae, z in {SN_Z}, {SN_SIGMA} mag; "
        f"BAO: D_M/r_d and D_H/r_d at z = {BAO_Z.tolist()}"
    )
    t0 = time.perf_counter()
    f = forecasts()
    print(f"Fisher matrices ({time.perf_counter() - t0:.1f} s), marginal standard errors:")
    for label, info in (
        ("SN", f.sn),
        ("BAO", f.bao),
        ("SN + BAO", f.combined),
        (f"SN + BAO + h prior {H_PRIOR:g}", f.with_h_prior),
    ):
        corr = info.cov().corr().loc["Om", "w"]
        print(f"  {label:24s} {_se(info)}; corr(Om, w) {corr:+.3f}; DETF FoM {dark_energy_fom(info):.1f}")
    combined_diff = f.sn.combine(f.bao).matrix - f.combined.matrix
    print(f"  SN + BAO via combine(): max |difference| from F_SN + F_BAO {np.max(np.abs(combined_diff)):.1e}")
    h_only = fl.InfoMatrix([[1.0 / H_PRIOR**2]], ["h"])
    print(
        f"  the h prior as an information matrix over ['h'], combine()d: max |difference| from with_prior "
        f"{np.max(np.abs(f.combined.combine(h_only).matrix - f.with_h_prior.matrix)):.1e}"
    )
    marginal = f.with_h_prior.marginalize(["Om", "w"])
    print(f"  (Om, w) marginal information:\n{np.array2string(marginal.matrix, precision=2)}")
    fixed = f.with_h_prior.fix(["h"])
    print(f"  with h fixed instead: se {_se(fixed)}; FoM {fixed.figure_of_merit(['Om', 'w'], detf=True):.1f}")

    print(f"\nexpected information gain over the prior {BROAD_PRIOR} (nats):")
    for label, info in (("SN", f.sn), ("BAO", f.bao), ("SN + BAO", f.combined)):
        print(f"  {label:10s} {info.information_gain(BROAD_PRIOR):.4f}")
    print(f"  KL(SN + BAO || SN + BAO + h prior) {f.combined.kl_divergence(f.with_h_prior):.4f} nats")

    g = to_getdist(f.with_h_prior, "SN + BAO + h prior")
    cov = f.with_h_prior.cov().matrix[np.ix_(f.with_h_prior.index(SHOWN), f.with_h_prior.index(SHOWN))]
    back = fl.InfoMatrix(np.linalg.inv(g.covs[0]), SHOWN)
    print(f"\nGetDist GaussianND {g.names}: means {g.means[0].tolist()}")
    print(
        f"  max |covariance difference| / max |cov| "
        f"{np.max(np.abs(g.covs[0] - cov)) / np.max(np.abs(cov)):.1e}"
    )
    round_trip = (
        back.matrix - f.with_h_prior.matrix[np.ix_(f.with_h_prior.index(SHOWN), f.with_h_prior.index(SHOWN))]
    )
    print(
        f"  information back from it: max relative difference "
        f"{np.max(np.abs(round_trip)) / np.max(np.abs(back.matrix)):.1e}"
    )

    physical = f.with_h_prior.reparametrize(to_omh2, ["omh2", "w", "h"])
    center = ", ".join(f"{k} {v:.4f}" for k, v in physical.center.items())
    print(f"\nreparametrised to (Om h^2, w, h) at ({center}): se {_se(physical)}")
    print(
        f"  corr(Om h^2, h) {physical.cov().corr().loc['omh2', 'h']:+.3f} "
        f"(corr(Om, h) {f.with_h_prior.cov().corr().loc['Om', 'h']:+.3f})"
    )

    if args.mc > 0:
        for label, rows, info in (
            ("SN + BAO", np.vstack([sn_rows(), bao_rows()]), f.combined),
            ("SN alone", sn_rows(), f.sn),
        ):
            t0 = time.perf_counter()
            estimates = monte_carlo(rows, args.mc)
            check = mc_check(estimates, info)
            print(
                f"\nMonte Carlo, {label}: {args.mc} simulated data sets fitted "
                f"({time.perf_counter() - t0:.1f} s)"
            )
            print(f"  names               {NAMES}")
            print(f"  sd(MC) / sd(Fisher) {np.round(check.sd_ratio, 3).tolist()}")
            print(f"  (mean - fiducial) / MC se   {np.round(check.mean_z, 2).tolist()}")
            print(f"  (cov(MC) - Fisher cov) / MC se, largest |.| {np.max(np.abs(check.cov_z)):.2f}")
            print(f"  skewness            {np.round(check.skewness, 3).tolist()}")

    figure.parent.mkdir(parents=True, exist_ok=True)
    triangle(f).savefig(figure)
    print(f"\nwrote {figure}")


if __name__ == "__main__":
    main()
