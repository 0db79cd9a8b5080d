"""Results of the public functions: frozen dataclasses of the estimates, their errors and the cost."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GradientResult:
    """A finite-difference gradient.

    Attributes:
        value: :math:`f(\\theta)`.
        gradient: ``(P,)`` estimate of :math:`\\nabla f(\\theta)`.
        error: ``(P,)`` estimated absolute error of each entry.
        evaluations: the number of calls of ``f`` (distinct points not found in ``cache``;
            rows for a vectorised ``f``).
    """

    value: float
    gradient: np.ndarray
    error: np.ndarray
    evaluations: int


@dataclass(frozen=True)
class HessianResult:
    """A finite-difference Hessian and the gradient from the same evaluations.

    Attributes:
        value: :math:`f(\\theta)`.
        gradient, gradient_error: ``(P,)`` gradient and its estimated absolute error.
        hessian, hessian_error: ``(P, P)`` symmetric Hessian and its estimated absolute error.
        evaluations: the number of calls of ``f`` (distinct points not found in ``cache``;
            rows for a vectorised ``f``).
    """

    value: float
    gradient: np.ndarray
    gradient_error: np.ndarray
    hessian: np.ndarray
    hessian_error: np.ndarray
    evaluations: int


@dataclass(frozen=True)
class VectorHessianResult:
    """Finite-difference Hessians of every output of a vector function, and its Jacobian.

    Attributes:
        value: ``(N,)`` :math:`f(\\theta)`.
        jacobian, jacobian_error: ``(N, P)`` :math:`\\partial f_n / \\partial \\theta_a` and its
            estimated absolute error.
        hessian, hessian_error: ``(N, P, P)`` :math:`\\partial^2 f_n / \\partial \\theta_a
            \\partial \\theta_b`, symmetric for each output, and its estimated absolute error.
        evaluations: the number of calls of ``f`` (each call evaluates all ``N`` outputs;
            points found in ``cache`` are not counted).
    """

    value: np.ndarray
    jacobian: np.ndarray
    jacobian_error: np.ndarray
    hessian: np.ndarray
    hessian_error: np.ndarray
    evaluations: int


@dataclass(frozen=True)
class JacobianResult:
    """A finite-difference Jacobian of a vector-valued function.

    Attributes:
        value: ``(N,)`` :math:`f(\\theta)`.
        jacobian: ``(N, P)`` estimate of :math:`\\partial f_n / \\partial \\theta_a`.
        error: ``(N, P)`` estimated absolute error of each entry.
        evaluations: the number of calls of ``f`` (each call evaluates all ``N`` outputs;
            points found in ``cache`` are not counted).
    """

    value: np.ndarray
    jacobian: np.ndarray
    error: np.ndarray
    evaluations: int
