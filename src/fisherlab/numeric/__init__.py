r"""Finite-difference gradients, Hessians and Jacobians of black-box functions, with error estimates.

The function :math:`f: \mathbb R^P \to \mathbb R` (or :math:`\mathbb R^N` for
:func:`jacobian` and :func:`vector_hessian`, e.g. the :math:`N` per-row log-likelihood
terms) is any Python callable on a NumPy float64 vector: it may call NumPy, SciPy or an
external program; it is never traced. A scalar ``f`` is the case :math:`N = 1` of one engine:
every stencil table carries a trailing output axis.

The engine, one concept per module (each module's docstring holds its part of the method):

- :mod:`._stencils`: central and one-sided difference stencils on the steps
  :math:`h_i, h_i/2, \ldots` (the gradient, the Hessian diagonal and the mixed entries share
  points: a Hessian costs :math:`1 + L(P^2 + P)` evaluations and contains the gradient).
- :mod:`._richardson`: Richardson extrapolation over the levels, Ridders' error estimate plus
  a rounding bound from the noise of the function values.
- :mod:`._setup`: the point, the base steps and the stencils next to ``lower``/``upper``
  bounds (one-sided, or a short central stencil for a function singular at the bound).
- :mod:`._derivatives`: first and second derivatives of every output, retrying a non-finite
  value with a smaller step (:class:`~fisherlab.NumericDerivativeError` after the retries).
- :mod:`._accuracy`: the natural scale of each entry and the
  :class:`~fisherlab.NumericAccuracyWarning` for an entry no step makes accurate.
- :mod:`._executor`, :mod:`._evaluator`: parallel evaluation of each stencil batch
  (``executor``, ``workers``) and the values of ``f`` by point (``cache``).
- :mod:`._complex_step`: the complex-step gradient (``method="complex"``).
- :mod:`._engine`: one call: the pool, the stencils, the derivatives, the warning.
- :mod:`._constants`: steps, levels, retries, noise and accuracy thresholds.
- :mod:`._gradient`, :mod:`._hessian`, :mod:`._jacobian`: the public functions, returning
  the dataclasses of :mod:`._results`.

References:
    L. F. Richardson (1911), The approximate arithmetical solution by finite
    differences of physical problems, Phil. Trans. R. Soc. A 210, 307-357.
    C. J. F. Ridders (1982), Accurate computation of F'(x) and F'(x)F''(x),
    Adv. Eng. Software 4(2), 75-76.
    W. Squire, G. Trapp (1998), Using complex variables to estimate derivatives of real
    functions, SIAM Review 40(1), 110-112.
    J. R. R. A. Martins, P. Sturdza, J. J. Alonso (2003), The complex-step derivative
    approximation, ACM Trans. Math. Softw. 29(3), 245-262.
    J. Nocedal, S. J. Wright (2006), Numerical Optimization, 2nd ed., ch. 8.
"""

from .._options import ExecutorKind as ExecutorKind, GradientMethod as GradientMethod
from ._constants import (
    ACCURACY_RTOL as ACCURACY_RTOL,
    LEVELS as LEVELS,
    RELATIVE_STEP as RELATIVE_STEP,
)
from ._executor import SupportsMap as SupportsMap
from ._gradient import gradient as gradient
from ._hessian import hessian as hessian, vector_hessian as vector_hessian
from ._jacobian import jacobian as jacobian
from ._results import (
    GradientResult as GradientResult,
    HessianResult as HessianResult,
    JacobianResult as JacobianResult,
    VectorHessianResult as VectorHessianResult,
)

__all__ = [
    "ACCURACY_RTOL",
    "LEVELS",
    "RELATIVE_STEP",
    "ExecutorKind",
    "GradientMethod",
    "GradientResult",
    "HessianResult",
    "JacobianResult",
    "SupportsMap",
    "VectorHessianResult",
    "gradient",
    "hessian",
    "jacobian",
    "vector_hessian",
]
