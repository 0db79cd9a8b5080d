"""Bayesian model updating of a shear building: storey stiffnesses from measured modal frequencies.

An n-storey shear building has known floor masses m_1..m_n and unknown storey
stiffnesses k_i = theta_i * k_nominal. Its natural frequencies solve the generalised
eigenproblem K phi = omega^2 M phi (f = omega / 2 pi). Several noisy measurements of
each modal frequency are taken; with a log-normal prior on the stiffness multipliers
theta, the most probable theta (MAP) and the posterior covariance (the inverse Hessian
of J(theta) = -log p(theta | data) at the MAP) are computed

- by ``fl.fit`` on a black-box model whose simulator is SciPy's eigen-solver
  (``derivatives="numeric"``: finite differences with error estimates), as one would
  do with a finite-element code;
- by ``fl.fit`` on the same model written in JAX (exact derivatives by autodiff), the
  reference for the numeric derivatives;
- optionally (``--nuts``) by NumPyro's NUTS sampler, the reference for the Gaussian
  (Laplace) approximation of the posterior.

It writes pairwise posterior ellipses to DIR/shear_building_posterior.svg.

Run:  python examples/shear_building.py [--out DIR] [--nuts] [--force]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

import fisherlab as fl

# ----------------------------------------------------------------------------- the building

# A 3-storey building: floor masses (kg, ground floor first; the roof is lighter) and the
# nominal storey stiffness (N/m). theta_i = k_i / K_NOMINAL are the unknowns, O(1).
MASSES = np.array([2.0e4, 2.0e4, 1.5e4])
K_NOMINAL = 2.5e7
# The "true" building: storey 2 has lost 20% of its stiffness (the damage to detect).
THETA_TRUE = np.array([1.0, 0.8, 1.05])
# Measurement design: each modal frequency measured REPEATS times with Gaussian noise
# of standard deviation NOISE_REL * (true frequency) (known).
REPEATS = 20
NOISE_REL = 0.005
SEED = 20240605
# Prior on each stiffness multiplier: log-normal, median 1, about +-30% (a design-code guess).
PRIOR_SCALE = 0.3


def stiffness_matrix(k: np.ndarray) -> np.ndarray:
    """Tridiagonal stiffness matrix of a shear building with storey stiffnesses ``k`` (ground first).

    Storey i connects floor i-1 to floor i (floor 0 is the ground), so
    K[i, i] = k_i + k_{i+1} (k_{n+1} = 0) and K[i, i+1] = K[i+1, i] = -k_{i+1}.
    """
    k = np.asarray(k, dtype=np.float64)
    upper = np.append(k[1:], 0.0)
    return np.diag(k + upper) - np.diag(k[1:], 1) - np.diag(k[1:], -1)


def frequencies(theta: np.ndarray, masses: np.ndarray = MASSES, k_nominal: float = K_NOMINAL) -> np.ndarray:
    """Natural frequencies (Hz, ascending) by SciPy's generalised symmetric eigen-solver (LAPACK).

    This is the black box: any finite-element code returning the modal frequencies would do.
    """
    stiffness = stiffness_matrix(k_nominal * np.asarray(theta, dtype=np.float64))
    eigenvalues = scipy.linalg.eigh(stiffness, np.diag(masses), eigvals_only=True)
    return np.sqrt(eigenvalues) / (2.0 * np.pi)


def frequencies_jax(theta: jax.Array, masses: np.ndarray = MASSES, k_nominal: float = K_NOMINAL) -> jax.Array:
    """The same frequencies in JAX (differentiable for distinct eigenvalues).

    M is diagonal, so K phi = omega^2 M phi is the standard symmetric problem
    (M^{-1/2} K M^{-1/2}) psi = omega^2 psi.
    """
    k = k_nominal * theta
    upper = jnp.append(k[1:], 0.0)
    stiffness = jnp.diag(k + upper) - jnp.diag(k[1:], 1) - jnp.diag(k[1:], -1)
    w = 1.0 / jnp.sqrt(jnp.asarray(masses))
    eigenvalues = jnp.linalg.eigvalsh(w[:, None] * stiffness * w[None, :])
    return jnp.sqrt(eigenvalues) / (2.0 * jnp.pi)


# ----------------------------------------------------------------------------- data and models


def simulate(
    theta: np.ndarray = THETA_TRUE,
    repeats: int = REPEATS,
    noise_rel: float = NOISE_REL,
    seed: int = SEED,
    masses: np.ndarray = MASSES,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Measured frequencies: ``(mode, f, sigma)``, one row per measurement.

    ``mode`` is the mode index (0 = fundamental) of each row, ``f`` the measured
    frequency (Hz) and ``sigma`` the noise standard deviation of each mode.
    """
    f_true = frequencies(theta, masses)
    sigma = noise_rel * f_true
    mode = np.repeat(np.arange(len(f_true)), repeats)
    rng = np.random.default_rng(seed)
    return mode, f_true[mode] + sigma[mode] * rng.standard_normal(mode.size), sigma


def numeric_model(sigma: np.ndarray, masses: np.ndarray = MASSES) -> fl.Model:
    """The black-box model: the SciPy simulator, with numeric derivatives.

    The function receives NumPy parameters and ALL rows of ``x`` (the mode indices) at
    once: one eigen-solve per parameter point.
    """
    sigma = np.asarray(sigma, dtype=np.float64)

    def fn(params: Any, mode: np.ndarray) -> Any:
        f = frequencies(params["theta"], masses)
        i = np.asarray(mode).astype(np.intp)  # fisherlab hands covariates over as float64
        return fl.dist.Normal(f[i], sigma[i])

    return fl.Model(fn, derivatives="numeric", constraints={"theta": "positive"})


def jax_model(sigma: np.ndarray, masses: np.ndarray = MASSES) -> fl.Model:
    """The same model in JAX, differentiated exactly (fisherlab calls it once per row, under vmap)."""
    sigma_j = jnp.asarray(sigma, dtype=jnp.float64)

    def fn(params: Any, mode: jax.Array) -> Any:
        f = frequencies_jax(params["theta"], masses)
        i = mode.astype(jnp.int32)  # fisherlab hands covariates over as float64
        return fl.dist.Normal(f[i], sigma_j[i])

    return fl.Model(fn, constraints={"theta": "positive"})


def prior(n: int) -> dict[str, Any]:
    """Independent log-normal priors, median 1 and log-scale PRIOR_SCALE, on the n multipliers."""
    return {"theta": fl.dist.LogNormal(jnp.zeros(n), PRIOR_SCALE)}


def fit(model: fl.Model, mode: np.ndarray, f: np.ndarray) -> Any:
    """The MAP fit, started at the nominal building (theta = 1)."""
    n = int(mode.max()) + 1
    return fl.fit(model, f, mode, init={"theta": np.ones(n)}, prior=prior(n))


# ----------------------------------------------------------------------------- NUTS reference


def nuts(
    mode: np.ndarray,
    f: np.ndarray,
    sigma: np.ndarray,
    masses: np.ndarray = MASSES,
    *,
    warmup: int = 1000,
    samples: int = 10000,
    chains: int = 2,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior draws of theta by NumPyro's NUTS: ``(draws (chains, S, n), ESS per theta_i)``.

    Every chain starts at the nominal building (theta = 1), where the fit starts: frequencies
    alone can fit more than one stiffness distribution (see the tutorial), and a chain
    started at random may settle in another mode.
    """
    import numpyro
    import numpyro.distributions as nd
    from numpyro.diagnostics import effective_sample_size
    from numpyro.infer import MCMC, NUTS, init_to_value

    n = len(masses)

    def model() -> None:
        theta = numpyro.sample("theta", nd.LogNormal(jnp.zeros(n), PRIOR_SCALE).to_event(1))
        freq = frequencies_jax(theta, masses)
        numpyro.sample("f", nd.Normal(freq[mode], jnp.asarray(sigma)[mode]), obs=jnp.asarray(f))

    mcmc = MCMC(
        NUTS(model, init_strategy=init_to_value(values={"theta": jnp.ones(n)})),
        num_warmup=warmup,
        num_samples=samples,
        num_chains=chains,
        progress_bar=False,
        chain_method="sequential",
    )
    mcmc.run(jax.random.PRNGKey(seed))
    draws = np.asarray(mcmc.get_samples(group_by_chain=True)["theta"])  # (chains, S, n)
    return draws, np.asarray(effective_sample_size(draws))


def mc_moments(chains: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Posterior mean and covariance from MCMC draws ``(chains, S, n)``, with Monte-Carlo standard errors.

    Each statistic is an average of draws of g(theta) (theta_i for the mean, the centred
    products (theta_i - m_i)(theta_j - m_j) for the covariance); its standard error is
    sd(g) / sqrt(ESS(g)), with the effective sample size of that g (NumPyro's estimator,
    which accounts for the autocorrelation of the chain).

    Returns:
        ``(mean (n,), cov (n, n), se of mean (n,), se of cov (n, n))``.
    """
    from numpyro.diagnostics import effective_sample_size

    n = chains.shape[-1]
    mean = chains.reshape(-1, n).mean(axis=0)
    centred = chains - mean
    products = centred[..., :, None] * centred[..., None, :]  # (chains, S, n, n)
    cov = products.reshape(-1, n, n).mean(axis=0)
    se_mean = chains.reshape(-1, n).std(axis=0) / np.sqrt(effective_sample_size(chains))
    se_cov = products.reshape(-1, n, n).std(axis=0) / np.sqrt(effective_sample_size(products))
    return mean, cov, se_mean, se_cov


# ----------------------------------------------------------------------------- figure


def ellipse(mean: np.ndarray, cov: np.ndarray, radius: float, points: int = 200) -> np.ndarray:
    """Points of the ellipse (x - mean)^T cov^{-1} (x - mean) = radius^2, shape (points, 2)."""
    t = np.linspace(0.0, 2.0 * np.pi, points)
    return mean + radius * np.column_stack([np.cos(t), np.sin(t)]) @ np.linalg.cholesky(cov).T


def plot(
    path: Path, mean: np.ndarray, cov: np.ndarray, truth: np.ndarray, draws: np.ndarray | None = None
) -> None:
    """Pairwise Laplace ellipses (1 and 2 sigma, i.e. 39% and 86% of the 2-D mass), NUTS draws if given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(mean)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.2 * len(pairs), 4.0), squeeze=False)
    for ax, (i, j) in zip(axes[0], pairs, strict=True):
        idx = [i, j]
        if draws is not None:
            # a thinned, rasterised cloud: 20,000 vector points would make a 9 MB SVG
            shown = draws[:: max(1, len(draws) // 3000)]
            ax.scatter(
                shown[:, i], shown[:, j], s=2, alpha=0.25, color="0.5", label="NUTS draws", rasterized=True
            )
        sub = cov[np.ix_(idx, idx)]
        for r, style in ((1.0, "-"), (2.0, "--")):
            e = ellipse(mean[idx], sub, r)
            ax.plot(e[:, 0], e[:, 1], style, color="C0", label=f"Laplace {r:g}σ")
        ax.plot(*mean[idx], "o", color="C0", label="MAP")
        ax.plot(*truth[idx], "x", color="C3", markersize=9, label="true")
        ax.set_xlabel(f"θ{i + 1} = k{i + 1} / k_nominal")
        ax.set_ylabel(f"θ{j + 1} = k{j + 1} / k_nominal")
    axes[0][0].legend(fontsize=8, loc="best")
    fig.suptitle("Shear building: posterior of the storey stiffness multipliers")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="shear-building", help="folder for the figure")
    parser.add_argument("--nuts", action="store_true", help="also sample the posterior with NUTS")
    parser.add_argument("--force", action="store_true", help="overwrite an existing figure")
    args = parser.parse_args(argv)
    figure = Path(args.out) / "shear_building_posterior.svg"
    if figure.exists() and not args.force:
        raise SystemExit(f"{figure} exists; pass --force to overwrite it, or --out DIR for another folder")

    mode, f, sigma = simulate()
    n = len(MASSES)
    print(f"{n}-storey shear building, masses {MASSES.tolist()} kg, k_nominal {K_NOMINAL:.3g} N/m")
    print(f"true theta {THETA_TRUE.tolist()}, frequencies {np.round(frequencies(THETA_TRUE), 4).tolist()} Hz")
    print(f"data: {REPEATS} measurements of each of the {n} frequencies, noise sd {NOISE_REL:.1%} of each\n")

    t0 = time.perf_counter()
    res = fit(numeric_model(sigma), mode, f)
    t_numeric = time.perf_counter() - t0
    theta = np.asarray(res.params["theta"])
    cov = res.cov("observed").matrix  # H^{-1}, H = Hessian of J = -log p(theta | data) at the MAP
    sd = np.sqrt(np.diag(cov))
    print(f"numeric model (SciPy eigen-solver, finite differences): {t_numeric:.1f} s")
    print(f"  MAP theta          {np.array2string(theta, precision=5)}")
    print(f"  posterior sd       {np.array2string(sd, precision=5)}")
    print(f"  correlation\n{np.array2string(cov / np.outer(sd, sd), precision=3)}")
    info = res.information("observed")  # H, the posterior precision, with a finite-difference error
    cov_err = res.cov("observed").error  # that error propagated to H^{-1}: |H^-1| E |H^-1|
    print(
        f"  H: max error estimate {np.max(info.error) / np.abs(info.matrix).max():.1e} (relative to max |H|)"
    )
    print(f"  H^-1: max error estimate {np.max(cov_err) / np.abs(cov).max():.1e} (relative to max |cov|)")

    t0 = time.perf_counter()
    ref = fit(jax_model(sigma), mode, f)
    t_jax = time.perf_counter() - t0
    theta_j = np.asarray(ref.params["theta"])
    cov_j = ref.cov("observed").matrix
    print(f"\nJAX model (autodiff, the reference): {t_jax:.1f} s")
    print(f"  max |MAP difference| / theta     {np.max(np.abs(theta - theta_j) / theta_j):.1e}")
    print(f"  max |MAP difference| / sd        {np.max(np.abs(theta - theta_j) / sd):.1e}")
    print(f"  max |cov difference| / max |cov| {np.max(np.abs(cov - cov_j)) / np.abs(cov_j).max():.1e}")
    print(f"  |cov difference| <= its error estimate: {bool(np.all(np.abs(cov - cov_j) <= cov_err))}")

    draws = None
    if args.nuts:
        t0 = time.perf_counter()
        chains, ess = nuts(mode, f, sigma)
        draws = chains.reshape(-1, n)
        mean_mc, cov_mc, se_mean, se_cov = mc_moments(chains)
        sd_mc = np.sqrt(np.diag(cov_mc))
        t_nuts = time.perf_counter() - t0
        print(f"\nNUTS ({len(draws)} draws, ESS {np.round(ess).astype(int).tolist()}): {t_nuts:.1f} s")
        print(f"  posterior mean     {np.array2string(mean_mc, precision=5)}")
        print(f"  (mean - MAP) / se  {np.array2string((mean_mc - theta) / se_mean, precision=2)}  (MC se)")
        print(f"  posterior sd       {np.array2string(sd_mc, precision=5)}")
        print(f"  sd / Laplace sd    {np.array2string(sd_mc / sd, precision=3)}")
        print(f"  (cov - Laplace) / se, largest {np.max(np.abs(cov_mc - cov) / se_cov):.2f}  (MC se)")

    figure.parent.mkdir(parents=True, exist_ok=True)
    plot(figure, theta, cov, THETA_TRUE, draws)
    print(f"\nwrote {figure}")


if __name__ == "__main__":
    main()
