r"""Complex-step gradient of a function that accepts complex input.

**Complex step** (Squire & Trapp 1998; Martins, Sturdza & Alonso 2003): when ``f``
accepts complex input, :math:`g_i = \operatorname{Im} f(\theta + i h e_i) / h` has no
subtractive cancellation, so :math:`h = 10^{-20}\max(|\theta_i|,1)` gives the gradient to
rounding precision in :math:`P + 1` evaluations. The cache of ``f`` values is not used.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._errors import MethodUnavailableError, NumericDerivativeError
from ._constants import COMPLEX_STEP, COMPLEX_ULPS, EPS
from ._evaluator import _describe, _Evaluator
from ._executor import _Pool
from ._results import GradientResult
from ._setup import _setup


def _complex_gradient(
    f: Callable[[np.ndarray], Any], x: Any, names: Sequence[str] | None, vectorized: bool, pool: _Pool
) -> GradientResult:
    x, names_, _, _, lo, hi, _ = _setup(x, names, None, None, None)
    h = COMPLEX_STEP * np.maximum(np.abs(x), 1.0)
    ev = _Evaluator(f, names_, lo, hi, vectorized=vectorized, pool=pool)
    points = x.astype(np.complex128)[None, :] + 1j * np.diag(h)
    trial = points[:1]
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        try:
            first = ev(trial)
        except NumericDerivativeError as exc:
            raise MethodUnavailableError(
                'method="complex" needs an f that accepts complex input; f failed on one '
                f'({exc.__cause__!r}); use method="central"'
            ) from exc
    if not np.iscomplexobj(first):
        raise MethodUnavailableError(
            'method="complex" needs an f that propagates complex input; f returned a real value '
            '(it drops the imaginary part, e.g. through float() or abs()); use method="central"'
        )
    values = ev(points)[:, 0]
    f0 = float(np.real(ev(x.astype(np.complex128)[None, :])[0, 0]))
    if not np.all(np.isfinite(values)) or not np.isfinite(f0):
        raise NumericDerivativeError(
            f"f is not finite at the complex-step points around {_describe(x, names_)}",
            point=dict(zip(names_, x.tolist(), strict=True)),
        )
    g = np.imag(values) / h
    err = COMPLEX_ULPS * EPS * (np.abs(g) + np.abs(f0) / np.maximum(np.abs(x), 1.0))
    return GradientResult(f0, g, err, ev.count)
