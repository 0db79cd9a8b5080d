r"""Accuracy of the estimates: the natural scale of each entry, and the accuracy warning.

**Accuracy.** An entry whose error estimate exceeds :data:`ACCURACY_RTOL` of its natural
scale cannot be made accurate by any step (``f`` is noisy, or not smooth at the point:
a kink, a discontinuity); one :class:`~fisherlab.NumericAccuracyWarning` per call lists
the worst. The scales, with :math:`s_i = \max(|\theta_i|, 1)` and :math:`F_{ni}` the largest
:math:`|f_n|` over the stencil of parameter :math:`i`: a first derivative
:math:`J_{ni}` (a gradient entry when :math:`N = 1`) is judged against its column,
:math:`\max_n \max(|J_{ni}|, F_{ni} / s_i)` (the change of :math:`f` over a unit step
bounds the scale from below, so a zero gradient at an optimum is judged against
:math:`|f|`); a second derivative :math:`H_{n,ij}` against
:math:`\max_n \max(|H_{n,ij}|, \sqrt{|H_{n,ii} H_{n,jj}|}, |J_{ni}| / s_j, |J_{nj}| / s_i)`.
An entry whose estimate lies within its rounding bound of zero is not flagged when ``f`` is
flat along that parameter (its stencil's :math:`F_{ni}` at most twice :math:`|f_n|` at the
point): ``f`` does not depend on the parameter there, and the estimate is zero to the precision
of ``f``. Where the stencil reaches values far larger than the point's (a step into a region
where ``f`` explodes), the rounding bound itself is the error, and the entry is flagged.
"""

from __future__ import annotations

import warnings

import numpy as np

from .._errors import NumericAccuracyWarning
from ._constants import ACCURACY_RTOL, ACCURACY_SHOWN
from ._derivatives import _Derivatives
from ._evaluator import _describe

FLAT_RATIO = 2.0  # F_ni / |f_n| up to which f counts as flat along parameter i (module docstring)


def _inaccurate(d: _Derivatives, x: np.ndarray, names: list[str], *, outputs: bool) -> str | None:
    """The message of a :class:`NumericAccuracyWarning` for ``d``, or ``None`` if every entry is accurate.

    Scales (module docstring): a first derivative against its column over the outputs,
    ``max_n max(|J_ni|, F_ni / s_i)``; a second derivative against
    ``max_n max(|H_n,ij|, sqrt|H_n,ii H_n,jj|, |J_ni| / s_j, |J_nj| / s_i)``. Entries within
    their rounding bound of zero are exact to the precision of ``f`` and not flagged.
    """
    s = np.maximum(np.abs(x), 1.0)
    jabs = np.abs(d.first)
    with np.errstate(all="ignore"):
        scale1 = np.maximum(jabs, d.fmax / s).max(axis=0)  # (P,)
        ratio1 = d.first_err / scale1
    flat = d.fmax <= FLAT_RATIO * np.abs(np.asarray(d.value, dtype=np.float64)).reshape(-1, 1)  # (N, P)
    flagged1 = (d.first_err > ACCURACY_RTOL * scale1) & ((jabs > d.first_round) | ~flat)
    entries = [
        (
            float(ratio1[n, i]),
            f"df{f'[{n}]' if outputs else ''}/d({names[i]})",
            d.first[n, i],
            d.first_err[n, i],
        )
        for n, i in zip(*np.nonzero(flagged1), strict=True)
    ]
    if d.second is not None and d.second_err is not None and d.second_round is not None:
        habs = np.abs(d.second)
        diag = np.abs(np.diagonal(d.second, axis1=1, axis2=2))  # (N, P)
        per_output = np.maximum.reduce(
            [
                habs,
                np.sqrt(diag[:, :, None] * diag[:, None, :]),
                jabs[:, :, None] / s[None, None, :],
                jabs[:, None, :] / s[None, :, None],
            ]
        )
        scale2 = per_output.max(axis=0)  # (P, P)
        upper = np.triu(np.ones(scale2.shape, dtype=bool))
        zero_ok = flat[:, :, None] | flat[:, None, :]  # f flat along one of the two parameters
        flagged2 = (d.second_err > ACCURACY_RTOL * scale2) & ((habs > d.second_round) | ~zero_ok) & upper
        with np.errstate(all="ignore"):
            ratio2 = d.second_err / scale2
        for n, i, j in zip(*np.nonzero(flagged2), strict=True):
            wrt = f"d({names[i]})^2" if i == j else f"d({names[i]})d({names[j]})"
            label = f"d2f{f'[{n}]' if outputs else ''}/{wrt}"
            entries.append((float(ratio2[n, i, j]), label, d.second[n, i, j], d.second_err[n, i, j]))
    if not entries:
        return None
    entries.sort(key=lambda e: -e[0])
    shown = "; ".join(f"{label}: {v:.3g} ± {e:.2g}" for _, label, v, e in entries[:ACCURACY_SHOWN])
    more = f" (and {len(entries) - ACCURACY_SHOWN} more)" if len(entries) > ACCURACY_SHOWN else ""
    return (
        f"{len(entries)} finite-difference derivative(s) at {_describe(x, names)} have an estimated error "
        f"above {ACCURACY_RTOL:g} of their scale: {shown}{more}. No step makes them accurate: f is "
        "noisy (a simulator solved to a tolerance: pass noise=) or not smooth at this point (a kink, "
        "a discontinuity, a switching branch), or its steps reach where f is far larger than at the "
        "point (declare the parameter's bound, or give a smaller step). The error fields of the "
        "result hold the estimates."
    )


def _warn_inaccurate(d: _Derivatives, x: np.ndarray, names: list[str], *, outputs: bool) -> None:
    message = _inaccurate(d, x, names, outputs=outputs)
    if message is not None:
        warnings.warn(message, NumericAccuracyWarning, stacklevel=3)
