"""The gradient of a black-box scalar function: central differences or the complex step."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

import numpy as np

from .._options import GradientMethod, choose
from ._complex_step import _complex_gradient
from ._constants import LEVELS
from ._engine import _differentiate
from ._executor import SupportsMap, _Pool
from ._results import GradientResult


def gradient(
    f: Callable[[np.ndarray], Any],
    x: Any,
    *,
    method: str = "central",
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
) -> GradientResult:
    r"""Gradient :math:`\nabla f(\theta)` of a black-box scalar function, with an error estimate per entry.

    Args:
        f: ``f(theta) -> float`` on a NumPy float64 vector ``(P,)`` (``(M, P) -> (M,)``
            with ``vectorized=True``).
        x: the point :math:`\theta`, shape ``(P,)``.
        method: ``"central"`` (central differences, Richardson-extrapolated over
            ``levels`` halvings of the step; one-sided next to a bound) or ``"complex"``
            (complex step: ``f`` must accept complex input; tried once, and
            :class:`~fisherlab.MethodUnavailableError` if it does not).
        names: parameter names for messages (default ``theta[i]``).
        step: base step(s) ``h_i``, scalar or ``(P,)`` (NaN entries: the default
            :data:`RELATIVE_STEP` ``* max(|x_i|, 1)``).
        lower, upper: open bounds, scalar or ``(P,)`` (``None``/NaN: unbounded);
            ``f`` is never evaluated on or outside them.
        vectorized: ``f`` evaluates a batch of points at once (with an executor, the batch
            is split into ``workers`` chunks).
        levels: Richardson levels (steps ``h, h/2, ..., h/2^(levels-1)``).
        noise: absolute noise level of ``f`` beyond float64 rounding, used in the error
            estimate; default 0 (rounding only). A simulator or ODE/optimisation solver run to
            a tolerance, or a Monte-Carlo estimate, should pass the size of its error here
            (e.g. the absolute tolerance of the solver times the sensitivity of ``f`` to it):
            the error bars then cover it, and the accuracy warning explains it.
        executor: ``None`` (serial), ``"threads"``, ``"processes"`` (spawned worker
            processes; ``f`` must be picklable, e.g. defined at module level) or any object
            with a :class:`concurrent.futures.Executor`-style ``map(fn, iterable)``: every
            batch of stencil points is submitted at once. A given executor is not shut down.
        workers: size of the pool made for ``"threads"``/``"processes"`` (default
            ``os.cpu_count()``).
        cache: a mutable mapping ``point.tobytes() -> f(point)`` shared between calls on the
            same ``f`` (e.g. an LRU mapping): points found there are neither evaluated nor
            counted, new ones are stored. Not used by ``method="complex"``.

    Returns:
        :class:`GradientResult` with ``gradient``, ``error`` (``(P,)``) and ``evaluations``.

    Raises:
        NumericDerivativeError: ``f`` raised (chained; the message names the values), or
            stayed non-finite at a perturbed point after the retries with smaller steps.
        InvalidOptionError, InvalidParameterError, ModelError: a bad argument (each a
            ``ValueError``), e.g. ``executor="processes"`` with an ``f`` that cannot
            be pickled.

    Warns:
        NumericAccuracyWarning: an entry's error estimate exceeds :data:`ACCURACY_RTOL` of its
            scale (:mod:`fisherlab.numeric._accuracy`); one warning per call.

    Examples:
        >>> import numpy as np
        >>> from fisherlab.numeric import gradient
        >>> r = gradient(lambda v: np.sin(v[0]) * np.exp(v[1]), [0.5, 0.0])
        >>> bool(np.allclose(r.gradient, [np.cos(0.5), np.sin(0.5)], rtol=1e-12))
        True
        >>> r.evaluations
        17
    """
    choice = choose(GradientMethod, method, "method")
    if choice is GradientMethod.COMPLEX:
        with _Pool(executor, workers, f) as pool:
            return _complex_gradient(f, x, names, vectorized, pool)
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
        vectorized=vectorized,
        vector=False,
    )
    return GradientResult(float(f0[0]), d.first[0], d.first_err[0], d.evaluations)
