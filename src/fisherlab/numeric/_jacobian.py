"""The Jacobian of a black-box vector function."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

import numpy as np

from ._constants import LEVELS
from ._engine import _differentiate
from ._executor import SupportsMap
from ._results import JacobianResult


def jacobian(
    f: Callable[[np.ndarray], Any],
    x: Any,
    *,
    names: Sequence[str] | None = None,
    step: Any = None,
    lower: Any = None,
    upper: Any = None,
    levels: int = LEVELS,
    noise: float = 0.0,
    executor: str | SupportsMap | None = None,
    workers: int | None = None,
    cache: MutableMapping[bytes, Any] | None = None,
) -> JacobianResult:
    r"""Jacobian :math:`J_{na} = \partial f_n / \partial \theta_a` of a black-box vector function, with error.

    Every column uses the stencil of :func:`gradient`, applied to all outputs at once: the
    central difference :math:`(f(\theta + t h_a e_a) - f(\theta - t h_a e_a)) / (2 t h_a)`
    (one-sided next to a bound) on the steps ``h, h/2, ..., h/2^(levels-1)``,
    Richardson-extrapolated (Richardson 1911) entry by entry with Ridders' (1982) error
    estimate plus a rounding bound :math:`\propto \delta_{f_n} / (t h_a)` per output
    :math:`n`. Each call of ``f`` evaluates all :math:`N` outputs (all rows of a
    log-likelihood), so the cost is :math:`1 + 2 L P` calls when no bound is near (the points
    of all columns are one batch, for ``executor``). Within :math:`4 h_a` of a bound a central
    stencil with a quarter of the distance as step is tried as well and kept unless the
    default stencil agrees with it in every output and reports a smaller worst error (as in
    :func:`gradient`; at most :math:`2L` more calls). A column whose outputs are not finite at
    a perturbed point is retried with a smaller step.

    Args:
        f: ``f(theta) -> array (N,)`` on a NumPy float64 vector ``(P,)``.
        x: the point :math:`\theta`, shape ``(P,)``.
        names, step, lower, upper, levels, noise, executor, workers, cache: as for
            :func:`gradient` (a ``cache`` holds the ``(N,)`` vectors of this ``f``).

    Returns:
        :class:`JacobianResult` with ``value`` ``(N,)``, ``jacobian`` and ``error``
        ``(N, P)``, ``evaluations``.

    Raises:
        NumericDerivativeError: ``f`` raised (chained; the message names the values), returned
            a different shape, was not finite at ``x``, or stayed non-finite at a perturbed
            point after the retries with smaller steps.
        InvalidOptionError, InvalidParameterError, ModelError: a bad argument (each a
            ``ValueError``).

    Warns:
        NumericAccuracyWarning: an entry's error estimate exceeds :data:`ACCURACY_RTOL` of the
            scale of its column (:mod:`fisherlab.numeric._accuracy`); one warning per call.

    Examples:
        >>> import numpy as np
        >>> from fisherlab.numeric import jacobian
        >>> t = np.array([0.0, 1.0, 2.0])
        >>> r = jacobian(lambda v: v[0] * np.exp(v[1] * t), [2.0, 0.5])
        >>> bool(np.allclose(r.jacobian[:, 1], 2.0 * t * np.exp(0.5 * t), rtol=1e-12))
        True
        >>> r.evaluations
        17
    """
    f0, d = _differentiate(
        f,
        x,
        names,
        step,
        lower,
        upper,
        levels,
        noise,
        executor,
        workers,
        cache,
        second=False,
        vectorized=False,
        vector=True,
    )
    return JacobianResult(f0, d.first, d.first_err, d.evaluations)
