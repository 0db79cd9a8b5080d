r"""Tanh-sinh quadrature of expectations over a 1-D continuous distribution.

:math:`\mathbb{E}[g(Y)] = \int_0^1 g(F^{-1}(u))\,du` maps any 1-D continuous law
with an inverse CDF onto the unit interval. The tanh-sinh (double exponential)
rule of Takahasi & Mori (1974) integrates such integrands, including the
integrable endpoint singularities that scores have in the tails, with errors
falling double-exponentially in the number of nodes:

.. math:: u(t) = \sigma(\pi \sinh t), \qquad du = \pi \cosh t \; u (1-u)\, dt,

sampled at :math:`t = kh`, :math:`|t| \le 4`. Two step sizes, :math:`h` and
:math:`h/2` (nested nodes), give the estimate and an error estimate. Nodes with
:math:`1-u < 10^{-15}` are dropped: the inverse CDF cannot resolve them in
float64 and they carry less than 1e-15 of the probability.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["tanh_sinh_nodes"]

_T_MAX = 4.0
_MIN_TAIL = 1e-15


@functools.lru_cache(maxsize=4)
def tanh_sinh_nodes(level: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Nodes ``u`` in (0, 1) and weights of steps ``h = 2**-level`` (fine) and ``2h`` (coarse).

    Returns:
        ``(u, w_fine, w_coarse, tail)``: ascending nodes; the coarse weights are zero
        on the nodes that only the fine rule uses, so both rules evaluate the
        integrand once; ``tail = 1 - u[-1]``, the probability above the last node,
        which the rules leave out (callers add it to their error estimate).
    """
    h = 2.0**-level
    k = np.arange(-int(_T_MAX / h), int(_T_MAX / h) + 1)
    t = k * h
    z = np.pi * np.sinh(t)
    u = 1.0 / (1.0 + np.exp(-z))
    one_minus_u = 1.0 / (1.0 + np.exp(z))
    du = np.pi * np.cosh(t) * u * one_minus_u
    keep = (one_minus_u > _MIN_TAIL) & (u > 0.0)
    w_fine = np.where(keep, h * du, 0.0)
    w_coarse = np.where(keep & (k % 2 == 0), 2.0 * h * du, 0.0)
    sel = w_fine > 0
    return u[sel], w_fine[sel], w_coarse[sel], float(one_minus_u[sel][-1])
