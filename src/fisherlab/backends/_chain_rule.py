r"""The chain rule :math:`\sum_i J_i^\top W_i J_i`, and the bound on its error, written once.

With :math:`\eta_i(\theta)` the family's parameters of row i and :math:`J_i = \partial\eta_i/\partial\theta`,
the expected Fisher information is :math:`F = \sum_i J_i^\top I(\eta_i) J_i` (the family's
Fisher :math:`I` from :mod:`fisherlab.dist`); the generalized Gauss–Newton matrix has the same
shape with :math:`W_i = \nabla^2_\eta(-\log p(y_i\mid\eta_i))`, and the empirical Fisher
:math:`\sum_i s_i s_i^\top` is the case :math:`K = 1`, :math:`W = 1`, :math:`J_i = s_i^\top`.
Both backends contract with :func:`weighted_gram` (inside a compiled kernel under autodiff,
on NumPy arrays for the numeric backend); :func:`gram_error_bound` propagates a bound
:math:`|\hat J - J| \le E` on a numeric Jacobian:

.. math:: |\delta F| \le \sum_i \big(|J_i|^\top |W_i|\, E_i + E_i^\top |W_i|\, |J_i|
          + E_i^\top |W_i|\, E_i\big)

(first order plus the second-order term, so a bound).

Examples:
    >>> import numpy as np
    >>> from fisherlab.backends._chain_rule import weighted_gram
    >>> J = np.array([[[1.0, 2.0]], [[0.0, 1.0]]])       # two rows, K = 1, P = 2
    >>> np.asarray(weighted_gram(J, np.array([[[2.0]], [[3.0]]]))).tolist()
    [[2.0, 4.0], [4.0, 11.0]]
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

__all__ = ["gram_error_bound", "weighted_gram"]


def weighted_gram(jac: Any, weights: Any) -> Any:
    r""":math:`\sum_m J_m^\top W_m J_m` for ``jac`` ``(M, K, P)`` and ``weights`` ``(M, K, K)``."""
    p = jac.shape[-1]
    weighted = jnp.einsum("nkl,nlp->nkp", weights, jac)
    return jac.reshape(-1, p).T @ weighted.reshape(-1, p)


def gram_error_bound(jac: np.ndarray, err: np.ndarray, weights: np.ndarray) -> np.ndarray:
    r"""Entrywise bound on the error of :func:`weighted_gram` given :math:`|\hat J - J| \le E` (``err``)."""
    a_w, a_j = np.abs(weights), np.abs(jac)
    bound = np.einsum("mkp,mkl,mlq->pq", a_j, a_w, err)
    return np.asarray(bound + bound.T + np.einsum("mkp,mkl,mlq->pq", err, a_w, err))
