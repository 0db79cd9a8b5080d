r"""Bayesian designs: the criterion averaged over a prior on the parameters.

A locally optimal design is optimal at one guess :math:`\theta_0`; a nonlinear model's optimum
moves with :math:`\theta`. A Bayesian (pseudo-Bayesian, Chaloner & Verdinelli 1995) design maximises
:math:`\mathbb{E}_{\theta\sim\pi}\,\psi(M(\xi;\theta))` instead, approximated by a weighted set of
nodes :math:`\sum_s \pi_s \psi(M(\xi;\theta_s))`:

- ``"quadrature"``: a tensor product of ``points`` nodes per uncertain parameter: Gauss–Hermite
  in the underlying standard normal variable for a Normal or LogNormal prior
  (:math:`\theta = \mu + \sigma z`, or :math:`e^{\mu + \sigma z}`; exponential convergence for
  a smooth criterion), otherwise Gauss–Legendre in :math:`u = F(\theta)` (the prior's CDF; each
  node is :math:`F^{-1}(u)`). The error estimate is the change of the expected criterion from the
  rule with :math:`\lceil (p+1)/2 \rceil` nodes per parameter to the one with :math:`p`: an
  estimate of the coarser rule's error, so a conservative one of the finer rule's;
- ``"mc"``: ``points`` draws from the prior; the error is the Monte-Carlo standard error
  :math:`\mathrm{sd}_s(\psi_s)/\sqrt{S}` of the expected criterion.

Parameters not in the prior keep their value in ``params``.

References:
    K. Chaloner, I. Verdinelli (1995). Bayesian experimental design: a review. Statist. Sci. 10.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
from jax.flatten_util import ravel_pytree

from .._errors import FisherlabArgumentError, InvalidParameterError, MethodUnavailableError
from .._options import PriorExpectation, choose, count, seed_value
from ..params._pytree import as_params, param_names

__all__ = ["MAX_NODES", "prior_nodes"]

# More nodes than this (a tensor product in many dimensions) is refused: use Monte-Carlo.
MAX_NODES = 4096


def prior_nodes(
    params: Any, prior: Mapping[str, Any] | None, method: str, points: int | None, seed: int
) -> tuple[list[Any], np.ndarray]:
    """The parameter pytrees :math:`\\theta_s` and weights :math:`\\pi_s` of the prior's nodes.

    Raises:
        InvalidParameterError: a prior on an unknown parameter name (the known ones are listed).
        FisherlabArgumentError: a prior that is not a scalar NumPyro distribution.
        MethodUnavailableError: quadrature on a distribution without an inverse CDF, or too
            many nodes (use ``prior_method="mc"``).
    """
    params = as_params(params)
    if prior is None:
        return [params], np.ones(1)
    choice = choose(PriorExpectation, method, "prior_method")
    names = param_names(params)
    flat, unravel = ravel_pytree(params)
    if not isinstance(prior, Mapping) or not prior:
        raise FisherlabArgumentError(
            "prior= must be a dict parameter name -> distribution "
            f"(e.g. {{{names[0]!r}: fl.dist.LogNormal(0, 0.3)}})"
        )
    unknown = [k for k in prior if k not in names]
    if unknown:
        raise InvalidParameterError(f"prior= names unknown parameter(s) {unknown}; known: {names}")
    for key, d in prior.items():
        if not isinstance(d, nd.Distribution) or d.batch_shape or d.event_shape:
            raise FisherlabArgumentError(
                f"the prior of {key} must be one scalar distribution (fl.dist.Normal(0, 1), ...), "
                f"got {d!r:.60}"
            )
    index = np.array([names.index(k) for k in prior])
    dists = list(prior.values())
    if choice is PriorExpectation.MC:
        size = count(5 * 40 if points is None else points, "prior_points", 2, "draws from the prior")
        keys = jax.random.split(jax.random.PRNGKey(seed_value(seed)), len(dists))
        draws = np.stack(
            [np.asarray(d.sample(k, (size,)), dtype=np.float64) for d, k in zip(dists, keys, strict=True)], 1
        )
        weights = np.full(size, 1.0 / size)
    else:
        per = count(5 if points is None else points, "prior_points", 1, "quadrature nodes per parameter")
        draws, weights = _tensor_nodes(dists, list(prior), per)
    values = np.tile(np.asarray(flat, dtype=np.float64), (draws.shape[0], 1))
    values[:, index] = draws
    nodes = [unravel(jnp.asarray(v)) for v in values]
    return nodes, weights


def _tensor_nodes(dists: list[Any], names: list[str], per: int) -> tuple[np.ndarray, np.ndarray]:
    total = per ** len(dists)
    if total > MAX_NODES:
        raise MethodUnavailableError(
            f"{per} quadrature nodes on each of {len(dists)} parameters make {total} nodes (limit "
            f"{MAX_NODES}); use prior_method='mc' or fewer prior_points"
        )
    u, w = np.polynomial.legendre.leggauss(per)
    u, w = 0.5 * (u + 1.0), 0.5 * w
    z, wz = np.polynomial.hermite_e.hermegauss(per)
    wz = wz / wz.sum()
    axes, weights_1d = [], []
    for name, d in zip(names, dists, strict=True):
        if isinstance(d, (nd.Normal, nd.LogNormal)):
            loc, scale = float(d.loc), float(d.scale)
            axes.append(loc + scale * z if isinstance(d, nd.Normal) else np.exp(loc + scale * z))
            weights_1d.append(wz)
            continue
        try:
            values = np.asarray(d.icdf(jnp.asarray(u)), dtype=np.float64)
        except NotImplementedError:
            raise MethodUnavailableError(
                f"the prior of {name} ({type(d).__name__}) has no inverse CDF for quadrature; "
                "use prior_method='mc'"
            ) from None
        if not np.all(np.isfinite(values)):
            raise MethodUnavailableError(
                f"the prior of {name} gave non-finite quadrature nodes; use prior_method='mc'"
            )
        axes.append(values)
        weights_1d.append(w)
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(dists))
    weights = np.prod(np.stack(np.meshgrid(*weights_1d, indexing="ij"), -1).reshape(-1, len(dists)), axis=1)
    return grid, weights
