r"""Curvature as an object: Fisher, GGN, empirical Fisher and Hessian of a model (a network) on data.

:func:`curvature` returns a :class:`Curvature` with ``mv``, ``diagonal``, ``to_dense``,
``solve``, ``logdet``, ``trace``, ``eigh`` and ``spectral_density``. One concept per module:
:mod:`._curvature` (the entry point and its precision), :mod:`._base` (the interface every
structure answers), :mod:`._structures` (operator, dense, diagonal, block, low rank),
:mod:`._kfac` (Kronecker factors), :mod:`._spectrum` (spectral density), :mod:`._exact` (the
exact curvature and its passes over in-memory or chunked data), :mod:`._kernels` (compiled
products and per-row blocks), :mod:`._layers` (dense and convolution layers found in the traced
model), :mod:`._layer_stats` (their statistics) and :mod:`._head` (the math of each kind).
"""

from ._base import MAX_DENSE_BYTES as MAX_DENSE_BYTES, Curvature as Curvature, Estimate as Estimate
from ._curvature import curvature as curvature
from ._spectrum import SpectralDensity as SpectralDensity

__all__ = ["MAX_DENSE_BYTES", "Curvature", "Estimate", "SpectralDensity", "curvature"]
