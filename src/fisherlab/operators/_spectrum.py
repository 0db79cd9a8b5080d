r"""The spectral density of a curvature by stochastic Lanczos quadrature (SLQ).

For a symmetric :math:`C` of size :math:`P` the eigenvalue density
:math:`\phi(t) = \frac1P \sum_k \delta(t - \lambda_k)` satisfies
:math:`\frac1P \operatorname{tr} f(C) = \int f\,\phi = \mathbb E_z[\tilde z^\top f(C) \tilde z]`
for a random unit vector :math:`\tilde z` (normal, normalised). Lanczos started at
:math:`\tilde z` (``steps`` products, full reorthogonalisation; matfree) gives a tridiagonal
:math:`T = U \Theta U^\top` whose Gauss quadrature :math:`\tilde z^\top f(C)\tilde z \approx
\sum_j \tau_j f(\theta_j)`, :math:`\tau_j = U_{0j}^2`, is exact for polynomials of degree
below :math:`2\cdot` ``steps`` (Golub & Meurant; Ubaru, Chen & Saad 2017; the Hessian spectra
of Ghorbani, Krishnan & Xiao 2019). Averaging over probes and smoothing each node with a
Gaussian of width :math:`\sigma`:

.. math:: \hat\phi(t) = \frac1V \sum_{v=1}^V \sum_j \tau_j^{(v)}\,
          \mathcal N(t;\,\theta_j^{(v)}, \sigma^2), \qquad \int \hat\phi = 1.

Multiply by :math:`P` for a density of eigenvalue counts. With ``steps`` :math:`\ge P` every
probe's nodes are the exact eigenvalues (those its start vector sees).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np

__all__ = ["SpectralDensity", "slq_density"]


class SpectralDensity(NamedTuple):
    """A smoothed eigenvalue density and the quadrature it comes from.

    Attributes:
        grid: ``(num_points,)`` the points :math:`t` (the nodes' range, widened by :math:`3\\sigma`).
        density: ``(num_points,)`` :math:`\\hat\\phi(t)`, integrating to 1 (times :math:`P`:
            eigenvalues per unit).
        nodes: ``(num_probes, steps)`` Ritz values :math:`\\theta_j` of each probe.
        weights: ``(num_probes, steps)`` their weights :math:`\\tau_j` (each row sums to 1).
        sigma: the Gaussian width used.
    """

    grid: np.ndarray
    density: np.ndarray
    nodes: np.ndarray
    weights: np.ndarray
    sigma: float


def slq_density(
    matvec: Callable[[jax.Array], jax.Array],
    probes: jax.Array,
    steps: int,
    num_points: int,
    sigma: float | None,
) -> SpectralDensity:
    """SLQ of ``matvec`` from the rows of ``probes`` ``(V, P)`` (see the module docstring).

    ``sigma=None`` takes 1% of the nodes' range (1.0 when all nodes coincide)."""
    from matfree import decomp

    tridiag = decomp.tridiag_sym(steps, reortho="full")
    small = jax.vmap(lambda z: tridiag(matvec, z).J_small)(probes)
    theta, u = np.linalg.eigh(np.asarray(small, dtype=np.float64))
    weights = u[:, 0, :] ** 2
    weights = weights / weights.sum(axis=1, keepdims=True)
    low, high = float(theta.min()), float(theta.max())
    width = float(sigma) if sigma is not None else (0.01 * (high - low) or 1.0)
    grid = np.linspace(low - 3 * width, high + 3 * width, num_points)
    z = (grid[:, None, None] - theta[None]) / width  # (points, probes, steps)
    kernel = np.exp(-0.5 * z * z) / (width * np.sqrt(2 * np.pi))
    density = (kernel * weights[None]).sum(axis=2).mean(axis=1)
    return SpectralDensity(grid, density, theta, weights, width)
