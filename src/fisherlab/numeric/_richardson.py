r"""Richardson extrapolation over the step levels, with Ridders' error estimate.

**Richardson extrapolation** (Richardson 1911) over the levels,
:math:`T_{k,m} = T_{k,m-1} + (T_{k,m-1} - T_{k-1,m-1}) / (2^{p_m} - 1)` with
:math:`p_m = 2m` for central stencils, removes one power of :math:`t` per column.
As in Ridders (1982), each extrapolant's error is estimated by
:math:`\max(|T_{k,m} - T_{k,m-1}|, |T_{k,m} - T_{k-1,m-1}|)`, the smallest is kept,
and a rounding term is added: the noise :math:`\delta_f = \max(64\epsilon\max|f|, \delta)`
of the function values (per output :math:`f_n`, the maximum over the entry's stencil;
:math:`\delta` the ``noise`` argument, for a simulator solved to a tolerance) times the
stencil's absolute coefficients (:math:`\propto \delta_f / (t h)^d` for a derivative of
order :math:`d`), propagated through the extrapolation. Nocedal & Wright (2006, ch. 8)
discuss the truncation/rounding trade-off behind the step choice.
"""

from __future__ import annotations

import numpy as np


@np.errstate(all="ignore")
def _richardson(
    table: np.ndarray, rounding: np.ndarray, powers: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Extrapolate each entry of ``table`` (``(L, ...)``, step halving down the first axis).

    ``powers[m-1]`` (broadcastable to ``(L-1, ...)``) is the power of the step that column
    ``m`` removes; ``rounding`` (broadcastable to ``table``) bounds the rounding error of each
    entry. Returns the best extrapolant of each entry, its error estimate (Ridders' estimate
    plus the propagated rounding bound), and the rounding part of that estimate.
    """
    levels = table.shape[0]
    shape = table.shape[1:]
    rounding = np.broadcast_to(rounding, table.shape)
    best = table[-1].copy()
    best_err = np.full(shape, np.inf)
    best_round = rounding[-1].copy()
    prev, prev_r = table, rounding
    for m in range(1, levels):
        factor = 2.0 ** powers[m - 1] - 1.0
        cur = prev[1:] + (prev[1:] - prev[:-1]) / factor
        cur_r = prev_r[1:] * (1.0 + 1.0 / factor) + prev_r[:-1] / factor
        err = np.maximum(np.abs(cur - prev[1:]), np.abs(cur - prev[:-1])) + cur_r
        for k in range(cur.shape[0]):
            better = err[k] < best_err
            best = np.where(better, cur[k], best)
            best_err = np.where(better, err[k], best_err)
            best_round = np.where(better, cur_r[k], best_round)
        prev, prev_r = cur, cur_r
    return best, best_err, best_round
