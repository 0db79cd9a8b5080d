r"""Hessian of any scalar function of a parameter pytree.

:math:`H_{ab} = \partial^2 f / \partial\theta_a \partial\theta_b`, by forward-over-reverse
autodiff (``jax.jacfwd(jax.grad(f))``), labelled with the flattened parameter
names. For :math:`f = -\log \mathcal N(\theta; \theta^*, \Sigma)` the Hessian is
:math:`\Sigma^{-1}` everywhere, the founding note's identity (A.4).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from ._errors import InvalidParameterError, MethodUnavailableError
from ._matrix import LabelledMatrix
from ._options import choose
from ._params import as_params, flatten_params, param_names

__all__ = ["hessian"]


class HessianMethod(str, enum.Enum):
    """``method`` of :func:`hessian`."""

    AUTODIFF = "autodiff"
    NUMERIC = "numeric"


def hessian(f: Callable[[Any], Any], params: Any, *, method: str = "autodiff") -> LabelledMatrix:
    r"""Hessian :math:`\nabla^2 f(\theta)` of a scalar function of a parameter pytree.

    Args:
        f: ``f(params) -> scalar``, written with ``jax.numpy``.
        params: the point, a pytree of scalars/arrays.
        method: ``"autodiff"`` (exact, forward-over-reverse); ``"numeric"``
            (finite differences) is not available in this version.

    Returns:
        :class:`~fisherlab.LabelledMatrix` ``(P, P)`` over :func:`~fisherlab.param_names`.

    Raises:
        InvalidParameterError: the Hessian is not finite at ``params``.

    Example:
        The Hessian of :math:`-\log \mathcal N(\theta; \theta^*, \Sigma)` is :math:`\Sigma^{-1}`:

        >>> import fisherlab as fl, jax.numpy as jnp
        >>> cov = jnp.array([[2.0, 0.5], [0.5, 1.0]])
        >>> mvn = fl.dist.MultivariateNormal(jnp.zeros(2), covariance_matrix=cov)
        >>> H = fl.hessian(lambda th: -mvn.log_prob(th["theta"]), {"theta": jnp.ones(2)})
        >>> bool(jnp.allclose(H.matrix, jnp.linalg.inv(cov)))
        True
    """
    choice = choose(HessianMethod, method, "method")
    if choice is HessianMethod.NUMERIC:
        raise MethodUnavailableError(
            'method="numeric" (finite differences) is not available in this version; use "autodiff"'
        )
    params = as_params(params)
    flat, unravel = flatten_params(params)
    h = np.asarray(jax.jit(jax.hessian(lambda v: f(unravel(v))))(flat))
    if h.shape != (flat.size, flat.size):
        raise ValueError(f"f must return a scalar; its Hessian has shape {h.shape}")
    if not np.all(np.isfinite(h)):
        raise InvalidParameterError("the Hessian is not finite at these parameters; f may be undefined there")
    return LabelledMatrix(h, param_names(params), method="hessian")
