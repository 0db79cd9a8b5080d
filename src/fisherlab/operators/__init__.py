r"""Curvature as an object: Fisher, GGN, empirical Fisher and Hessian of a model (a network) on data.

:func:`curvature` returns a :class:`Curvature` with ``mv``, ``diagonal``, ``to_dense``,
``solve``, ``logdet``, ``trace`` and ``eigh``; see :mod:`fisherlab.operators._curvature` for the
kinds and structures and :mod:`fisherlab.operators._head` for the math of each kind.
"""

from ._curvature import (
    MAX_DENSE_BYTES as MAX_DENSE_BYTES,
    Curvature as Curvature,
    Estimate as Estimate,
    curvature as curvature,
)

__all__ = ["MAX_DENSE_BYTES", "Curvature", "Estimate", "curvature"]
