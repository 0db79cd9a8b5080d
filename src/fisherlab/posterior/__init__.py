r"""The Laplace approximation of a network's posterior: ``fl.laplace``.

:func:`laplace` returns a :class:`NetworkLaplace`: the posterior :math:`N(\theta^*, (H+\Lambda)^{-1})`
on any curvature structure (:mod:`._forms`), its log marginal likelihood and the prior precision
that maximises it, the predictive (:class:`Predictive`: linearised, probit, Monte-Carlo), samples,
and ``posterior_precision`` as a curvature object (:class:`PosteriorPrecision`). One concept per
module: :mod:`._network` (the entry point and the evidence), :mod:`._forms` (:math:`H+\Lambda`
per structure), :mod:`._posterior_precision` (as a curvature), :mod:`._prior_precision` (what the
user gives as a prior), :mod:`._subset` (all, last layer, named parameters) and
:mod:`._predictive`.
"""

from ._network import NetworkLaplace as NetworkLaplace, laplace as laplace
from ._posterior_precision import PosteriorPrecision as PosteriorPrecision
from ._predictive import Predictive as Predictive

__all__ = ["NetworkLaplace", "PosteriorPrecision", "Predictive", "laplace"]
