"""Hessians of a black-box scalar function, and of every output of a vector function."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

import numpy as np

from ._constants import LEVELS
from ._engine import _differentiate
from ._executor import SupportsMap
from ._results import HessianResult, VectorHessianResult


def hessian(
    f: Callable[[np.ndarray], Any],
    x: Any,
    *,
    names: Sequence[str] | None = None,
    step: Any = None,
    lower: Any = None,
    upper: Any = None,
    vectorized: bool = False,
    levels: int = LEVELS,
    noise: float = 0.0,
    executor: str | SupportsMap | None = None,
    workers: int | None = None,
    cache: MutableMapping[bytes, Any] | None = None,
) -> HessianResult:
    r"""Hessian :math:`\nabla^2 f(\theta)` and gradient of a black-box scalar function, with error estimates.

    Central differences (one-sided next to a bound) on the steps
    ``h, h/2, ..., h/2^(levels-1)``, Richardson-extrapolated entry by entry; the gradient
    comes from the same evaluations. Cost: :math:`1 + L(P^2 + P)` evaluations of ``f``
    for :math:`L` levels and no bounds hit (fewer when points repeat or are in ``cache``).
    This is :func:`vector_hessian` for a single output.

    Args:
        f: ``f(theta) -> float`` on a NumPy float64 vector ``(P,)`` (``(M, P) -> (M,)``
            with ``vectorized=True``).
        x: the point :math:`\theta`, shape ``(P,)``.
        names: parameter names for messages (default ``theta[i]``).
        step: base step(s) ``h_i``, scalar or ``(P,)`` (NaN entries: the default
            :data:`RELATIVE_STEP` ``* max(|x_i|, 1)``).
        lower, upper: open bounds, scalar or ``(P,)`` (``None``/NaN: unbounded);
            ``f`` is never evaluated on or outside them.
        vectorized: ``f`` evaluates a batch of points at once.
        levels: Richardson levels.
        noise: absolute noise level of ``f`` beyond float64 rounding, used in the error
            estimate; a simulator solved to a tolerance should pass it (as for :func:`gradient`).
        executor, workers, cache: parallel evaluation of each stencil batch and evaluations
            shared between calls, as for :func:`gradient`.

    Returns:
        :class:`HessianResult`: ``hessian`` and ``hessian_error`` ``(P, P)``, ``gradient``
        and ``gradient_error`` ``(P,)``, ``evaluations``.

    Raises:
        NumericDerivativeError: ``f`` raised (chained; the message names the values), or
            stayed non-finite at a perturbed point after the retries with smaller steps.
        InvalidOptionError, InvalidParameterError, ModelError: a bad argument (each a
            ``ValueError``).

    Warns:
        NumericAccuracyWarning: an entry's error estimate exceeds :data:`ACCURACY_RTOL` of its
            scale (:mod:`fisherlab.numeric._accuracy`); one warning per call.

    Examples:
        >>> import numpy as np
        >>> from fisherlab.numeric import hessian
        >>> r = hessian(lambda v: v[0] ** 2 * np.exp(v[1]), [1.0, 0.0])
        >>> bool(np.allclose(r.hessian, [[2.0, 2.0], [2.0, 1.0]], rtol=1e-10))
        True
        >>> bool(np.all(np.abs(r.hessian - [[2.0, 2.0], [2.0, 1.0]]) <= r.hessian_error))
        True
        >>> r.evaluations
        25
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
        second=True,
        vectorized=vectorized,
        vector=False,
    )
    assert d.second is not None and d.second_err is not None
    return HessianResult(
        float(f0[0]), d.first[0], d.first_err[0], d.second[0], d.second_err[0], d.evaluations
    )


def vector_hessian(
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
) -> VectorHessianResult:
    r"""Hessians :math:`\nabla^2 f_n(\theta)` of all outputs of a black-box vector function, and its Jacobian.

    For :math:`f: \mathbb R^P \to \mathbb R^N` (the per-row log-likelihood terms
    :math:`\ell_n(\theta)` of :math:`N` observations, say), the stencils of :func:`hessian`
    applied to all outputs at once: every call of ``f`` returns all :math:`N` outputs, so the
    cost is that of one scalar Hessian, :math:`1 + L(P^2 + P)` calls with no bounds hit,
    and the result holds :math:`J_{na} = \partial f_n / \partial \theta_a` and
    :math:`H_{n,ab} = \partial^2 f_n / \partial \theta_a \partial \theta_b` (their sums over
    :math:`n` are the gradient and Hessian of :math:`\sum_n f_n`; the per-row terms give e.g.
    the sandwich :math:`\sum_n J_n J_n^\top` and per-row curvature). Each entry is
    Richardson-extrapolated (Richardson 1911) with Ridders' (1982) error estimate plus a
    rounding bound from the largest :math:`|f_n|` over its stencil, per output. Next to a bound
    the stencil of a parameter is chosen by the worst output; a parameter whose stencil gives
    a non-finite value in any output is retried with a smaller step.

    Args:
        f: ``f(theta) -> array (N,)`` on a NumPy float64 vector ``(P,)``; the same ``N`` at
            every point.
        x: the point :math:`\theta`, shape ``(P,)``.
        names, step, lower, upper, levels, noise, executor, workers, cache: as for
            :func:`gradient` (a ``cache`` holds the ``(N,)`` vectors of this ``f``).

    Returns:
        :class:`VectorHessianResult`: ``value`` ``(N,)``, ``jacobian`` and ``jacobian_error``
        ``(N, P)``, ``hessian`` and ``hessian_error`` ``(N, P, P)``, ``evaluations``.

    Raises:
        NumericDerivativeError: ``f`` raised (chained; the message names the values), returned
            a different shape, was not finite at ``x``, or stayed non-finite at a perturbed
            point after the retries with smaller steps.
        InvalidOptionError, InvalidParameterError, ModelError: a bad argument (each a
            ``ValueError``).

    Warns:
        NumericAccuracyWarning: an entry's error estimate exceeds :data:`ACCURACY_RTOL` of the
            scale of its column over the outputs (:mod:`fisherlab.numeric._accuracy`); one warning per call.

    Examples:
        >>> import numpy as np
        >>> from fisherlab.numeric import vector_hessian
        >>> t = np.array([0.0, 1.0, 2.0])
        >>> r = vector_hessian(lambda v: v[1] * np.exp(v[0] * t), [0.5, 2.0])
        >>> r.hessian.shape
        (3, 2, 2)
        >>> bool(np.allclose(r.hessian[:, 0, 1], t * np.exp(0.5 * t), rtol=1e-10))
        True
        >>> r.evaluations
        25
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
        second=True,
        vectorized=False,
        vector=True,
    )
    assert d.second is not None and d.second_err is not None
    return VectorHessianResult(f0, d.first, d.first_err, d.second, d.second_err, d.evaluations)
